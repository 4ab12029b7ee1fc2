package mls

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func testSuite(t *testing.T) Suite {
	t.Helper()
	s, err := MLS128DHKEMX25519AES128GCMSHA256Ed25519.Suite()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func isZero(b []byte) bool { return len(b) > 0 && bytes.Count(b, []byte{0}) == len(b) }

func TestSecretTreeErrors(t *testing.T) {
	s := testSuite(t)
	secret := bytes.Repeat([]byte{1}, 32)
	if _, err := newSecretTree(s, secret, 3); !errors.Is(err, errTreeSize) {
		t.Errorf("3 leaves: %v", err)
	}
	if _, err := newSecretTree(s, secret[:31], 4); !errors.Is(err, ErrCrypto) {
		t.Errorf("short secret: %v", err)
	}
	tree, err := newSecretTree(s, secret, 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.keyAt(4, handshakeRatchet, 0); !errors.Is(err, errLeafIndex) {
		t.Errorf("leaf 4 of 4: %v", err)
	}
	// The tree keeps its own copy of the secret.
	secret[0] = 9
	other, _ := newSecretTree(s, bytes.Repeat([]byte{1}, 32), 4)
	a, _ := tree.keyAt(2, applicationRatchet, 0)
	b, _ := other.keyAt(2, applicationRatchet, 0)
	if !bytes.Equal(a.key, b.key) {
		t.Error("the tree aliases the caller's encryption secret")
	}
}

// TestSecretTreeDeletion checks the deletion schedule: node secrets are
// zeroed once expanded, ratchet secrets once advanced, keys once erased,
// and everything on wipe.
func TestSecretTreeDeletion(t *testing.T) {
	s := testSuite(t)
	tree, _ := newSecretTree(s, bytes.Repeat([]byte{1}, 32), 4)
	root := tree.nodes[tree.size.root()]
	if _, err := tree.keyAt(0, handshakeRatchet, 0); err != nil {
		t.Fatal(err)
	}
	if !isZero(root) {
		t.Error("root secret not zeroed after expansion")
	}
	// Leaf 0's path is expanded: left subtree's sibling leaf 1 and the
	// right subtree root remain.
	if len(tree.nodes) != 2 || tree.nodes[nodeOfLeaf(1)] == nil || tree.nodes[5] == nil {
		t.Errorf("undeleted nodes after deriving leaf 0: %v", len(tree.nodes))
	}
	for l := range uint32(4) {
		if _, err := tree.keyAt(l, applicationRatchet, 0); err != nil {
			t.Fatal(err)
		}
	}
	if len(tree.nodes) != 0 {
		t.Errorf("%d node secrets left after deriving every leaf", len(tree.nodes))
	}
	r, _ := tree.ratchet(1, applicationRatchet)
	old := r.secret
	stored := r.keys[0].key
	if _, err := tree.keyAt(1, applicationRatchet, 1); err != nil {
		t.Fatal(err)
	}
	if !isZero(old) {
		t.Error("ratchet secret not zeroed after advancing")
	}
	tree.erase(1, applicationRatchet, 0)
	if !isZero(stored) {
		t.Error("erased key not zeroed")
	}
	if _, err := tree.keyAt(1, applicationRatchet, 0); !errors.Is(err, errGenerationUsed) {
		t.Errorf("erased generation: %v", err)
	}
	cur := r.secret
	tree.wipe()
	if !isZero(cur) || len(tree.ratchets) != 0 {
		t.Error("wipe left secrets")
	}
	if _, err := tree.keyAt(2, applicationRatchet, 5); !errors.Is(err, errTreeWiped) {
		t.Errorf("after wipe: %v", err)
	}
}

// TestRatchetOutOfOrder checks the forward bound and the out-of-order
// window.
func TestRatchetOutOfOrder(t *testing.T) {
	s := testSuite(t)
	send, _ := newSecretTree(s, bytes.Repeat([]byte{1}, 32), 2)
	recv, _ := newSecretTree(s, bytes.Repeat([]byte{1}, 32), 2)
	var keys []ratchetKey
	for g := range uint32(100) {
		gen, k, err := send.nextKey(1, applicationRatchet)
		if err != nil || gen != g {
			t.Fatalf("nextKey: %d, %v", gen, err)
		}
		keys = append(keys, k)
	}
	get := func(g uint32) error {
		k, err := recv.keyAt(1, applicationRatchet, g)
		if err == nil {
			if !bytes.Equal(k.key, keys[g].key) || !bytes.Equal(k.nonce, keys[g].nonce) {
				t.Fatalf("generation %d: key differs from the sender's", g)
			}
			recv.erase(1, applicationRatchet, g)
		}
		return err
	}
	// Out of order within the window.
	for _, g := range []uint32{5, 3, 4, 0, 6} {
		if err := get(g); err != nil {
			t.Fatalf("generation %d: %v", g, err)
		}
	}
	if err := get(4); !errors.Is(err, errGenerationUsed) {
		t.Errorf("replayed generation: %v", err)
	}
	// Jump ahead: only the newest window of skipped keys is kept.
	if err := get(90); err != nil {
		t.Fatal(err)
	}
	r, _ := recv.ratchet(1, applicationRatchet)
	if len(r.keys) > defaultOutOfOrderWindow {
		t.Errorf("%d keys kept, window is %d", len(r.keys), defaultOutOfOrderWindow)
	}
	if err := get(90 - defaultOutOfOrderWindow - 1); !errors.Is(err, errGenerationUsed) {
		t.Errorf("generation beyond the window: %v", err)
	}
	if err := get(89); err != nil {
		t.Errorf("generation within the window: %v", err)
	}
	// Too far ahead.
	if _, err := recv.keyAt(1, applicationRatchet, 91+defaultMaxForwardDistance+1); !errors.Is(err, errGenerationTooFar) {
		t.Errorf("too far ahead: %v", err)
	}
	if _, err := recv.keyAt(1, applicationRatchet, 91+defaultMaxForwardDistance); err != nil {
		t.Errorf("at the forward limit: %v", err)
	}
	if len(r.keys) > defaultOutOfOrderWindow {
		t.Errorf("%d keys kept after a long jump", len(r.keys))
	}
}

func TestRatchetExhaustion(t *testing.T) {
	s := testSuite(t)
	r := newHashRatchet(s, bytes.Repeat([]byte{1}, 32), 10, 4)
	r.next = math.MaxUint32 - 1
	for _, want := range []uint32{math.MaxUint32 - 1, math.MaxUint32} {
		g, _, err := r.nextKey()
		if err != nil || g != want {
			t.Fatalf("generation %d: %d, %v", want, g, err)
		}
	}
	if _, _, err := r.nextKey(); !errors.Is(err, errRatchetExhausted) {
		t.Fatalf("past the last generation: %v", err)
	}
	if _, err := r.keyAt(math.MaxUint32); !errors.Is(err, errRatchetExhausted) {
		t.Fatalf("keyAt past the last generation: %v", err)
	}
}
