package mls

import (
	"bytes"
	"fmt"
	"testing"
)

// TestEndToEndPQ runs a three-member group under x0x's post-quantum suite
// (MLKEM768-X25519, ChaCha20-Poly1305, SHA-256, ML-DSA-65) through adds,
// an update, a remove and application messages in every direction, and
// checks the security properties the group layer relies on:
//
//   - every member agrees on each epoch (authenticator, exporter, tree);
//   - out-of-order delivery within the secret tree's window works, replays
//     and messages evicted from the window are refused;
//   - post-compromise security: a member's leaked state follows the group
//     until the member's Update is committed, and cannot after;
//   - forward secrecy for removal: a removed member (even keeping its old
//     state) cannot decrypt the removal commit's path or later messages;
//   - tampered commits and messages are refused with typed errors and
//     leave the state unchanged.
func TestEndToEndPQ(t *testing.T) {
	cs := X0XMLS128MLKEM768X25519ChaCha20Poly1305SHA256MLDSA65
	alice, bob, carol := newTestMember(t, cs, "alice"), newTestMember(t, cs, "bob"), newTestMember(t, cs, "carol")
	cfg := &Config{}

	// Alice founds the group and adds Bob by value.
	a, err := CreateGroup(cs, []byte("x0x e2e group"), alice.cred, alice.sigPriv, cfg)
	must(t, "create", err)
	defer a.Close()
	bobKP := bob.keyPackage(t, cs, cfg)
	res := mustCommit(t, a, &CommitOptions{Add: [][]byte{bobKP.KeyPackage()}})
	if res.Welcome == nil || len(res.Info.Added) != 1 {
		t.Fatalf("add commit: %+v", res.Info)
	}
	b := mustJoin(t, res.Welcome, bobKP, cfg)
	defer b.Close()
	checkInSync(t, a, b)

	// Alice proposes adding Carol; Bob commits the proposal by reference.
	carolKP := carol.keyPackage(t, cs, cfg)
	prop, err := a.ProposeAdd(carolKP.KeyPackage())
	must(t, "propose add", err)
	mustProcess(t, prop, b)
	if _, err := a.Protect([]byte("too early"), nil); !isErr(err, ErrPendingProposals) {
		t.Fatalf("application data with a pending proposal: %v", err)
	}
	res = mustCommit(t, b, nil)
	r := mustProcess(t, res.Commit, a)
	if r.Kind != KindCommit || len(r.Commit.Added) != 1 || r.Sender != b.OwnIndex() {
		t.Fatalf("add commit at alice: %+v", r)
	}
	c := mustJoin(t, res.Welcome, carolKP, cfg)
	defer c.Close()
	checkInSync(t, a, b, c)
	if n := len(c.Members()); n != 3 {
		t.Fatalf("%d members", n)
	}

	// Application messages in every direction.
	for _, from := range []*Group{a, b, c} {
		msg, err := from.Protect([]byte(fmt.Sprintf("hello from %d", from.OwnIndex())), []byte("aad"))
		must(t, "protect", err)
		for _, to := range []*Group{a, b, c} {
			if to == from {
				if _, err := to.Process(msg); !isErr(err, ErrOwnMessage) {
					t.Fatalf("own message: %v", err)
				}
				continue
			}
			r := mustProcess(t, msg, to)
			if r.Kind != KindApplication || r.Sender != from.OwnIndex() ||
				string(r.ApplicationData) != fmt.Sprintf("hello from %d", from.OwnIndex()) || string(r.AuthenticatedData) != "aad" {
				t.Fatalf("application message: %+v", r)
			}
		}
	}

	// Out-of-order delivery within the window; replays and evicted
	// generations refused.
	var burst [][]byte
	for i := range defaultOutOfOrderWindow + 8 {
		msg, err := c.Protect([]byte{byte(i)}, nil)
		must(t, "protect", err)
		burst = append(burst, msg)
	}
	for i := len(burst) - 1; i >= len(burst)-defaultOutOfOrderWindow; i-- {
		if r := mustProcess(t, burst[i], a); r.ApplicationData[0] != byte(i) {
			t.Fatalf("message %d decrypted as %d", i, r.ApplicationData[0])
		}
	}
	if _, err := a.Process(burst[len(burst)-1]); !isErr(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	if _, err := a.Process(burst[0]); !isErr(err, ErrReplay) {
		t.Fatalf("message evicted from the window: %v", err)
	}
	for i, msg := range burst { // Bob, in order
		if r := mustProcess(t, msg, b); r.ApplicationData[0] != byte(i) {
			t.Fatalf("in order: message %d", i)
		}
	}

	// Tampered application message and commit: refused, state unchanged.
	msg, err := a.Protect([]byte("intact"), nil)
	must(t, "protect", err)
	for _, at := range []int{len(msg) - 1, len(msg) - 20, 30} {
		bad := bytes.Clone(msg)
		bad[at] ^= 0x80
		if _, err := b.Process(bad); !isErr(err, ErrCrypto) {
			t.Fatalf("tampered message (byte %d): %v", at, err)
		}
	}
	mustProcess(t, msg, b, c)

	// Post-compromise security. Bob's state leaks.
	leaked := leak(b)
	defer leaked.Close()
	msg, err = a.Protect([]byte("secret 1"), nil)
	must(t, "protect", err)
	mustProcess(t, msg, b, c)
	if r := mustProcess(t, msg, leaked); string(r.ApplicationData) != "secret 1" {
		t.Fatal("the leaked state does not decrypt the epoch's messages")
	}
	// The leak survives other members' commits...
	res = mustCommit(t, a, nil)
	mustProcess(t, res.Commit, b, c, leaked)
	checkInSync(t, a, b, c, leaked)
	// ...until Bob's Update is committed.
	prop, err = b.ProposeUpdate()
	must(t, "propose update", err)
	// The attacker sees Bob's Update proposal (it is public) but not the
	// private key Bob generated for it after the leak.
	b.mu.Lock()
	for _, cp := range b.cache {
		leaked.addToCache(cp)
	}
	b.mu.Unlock()
	mustProcess(t, prop, a, c)
	res = mustCommit(t, c, nil)
	if r := mustProcess(t, res.Commit, a, b); len(r.Commit.Updated) != 1 || r.Commit.Updated[0] != b.OwnIndex() {
		t.Fatalf("update commit: %+v", r.Commit)
	}
	checkInSync(t, a, b, c)
	if _, err := leaked.Process(res.Commit); !isErr(err, ErrInvalidCommit) {
		t.Fatalf("the leaked state and the commit of Bob's update: %v", err)
	}
	noKeyDecrypts(t, leaked, b, res.Commit)
	msg, err = a.Protect([]byte("secret 2"), nil)
	must(t, "protect", err)
	mustProcess(t, msg, b, c)
	if _, err := leaked.Process(msg); !isErr(err, ErrWrongEpoch) {
		t.Fatalf("leaked state after healing: %v", err)
	}

	// Removal and forward secrecy: Carol is removed; neither her live state
	// nor a copy kept from before can decrypt what follows.
	carolBefore := leak(c)
	defer carolBefore.Close()
	res = mustCommit(t, a, &CommitOptions{Remove: []uint32{c.OwnIndex()}})
	mustProcess(t, res.Commit, b)
	r = mustProcess(t, res.Commit, c)
	if !r.Commit.SelfRemoved || c.Active() {
		t.Fatalf("removed member: %+v, active %v", r.Commit, c.Active())
	}
	checkInSync(t, a, b)
	noKeyDecrypts(t, carolBefore, b, res.Commit)
	msg, err = b.Protect([]byte("after carol"), nil)
	must(t, "protect", err)
	mustProcess(t, msg, a)
	if _, err := c.Process(msg); !isErr(err, ErrInactive) {
		t.Fatalf("removed member: %v", err)
	}
	if _, err := carolBefore.Process(msg); !isErr(err, ErrWrongEpoch) {
		t.Fatalf("removed member's old state: %v", err)
	}
	if _, err := c.Protect([]byte("x"), nil); !isErr(err, ErrInactive) {
		t.Fatalf("removed member sending: %v", err)
	}

	// A tampered commit: flipped bytes (membership tag, signature, path)
	// and a forged confirmation tag are refused; the genuine one applies.
	res, err = b.Commit(nil)
	must(t, "commit", err)
	for _, at := range []int{len(res.Commit) - 1, len(res.Commit) / 2, 40} {
		bad := bytes.Clone(res.Commit)
		bad[at] ^= 0x04
		if _, err := a.Process(bad); err == nil {
			t.Fatalf("tampered commit (byte %d) accepted", at)
		} else if !isErr(err, ErrCrypto) && !isDecodeError(err) {
			t.Fatalf("tampered commit (byte %d): untyped error %v", at, err)
		}
	}
	forged := forgeConfirmationTag(t, b, res.Commit)
	if _, err := a.Process(forged); !isErr(err, ErrInvalidCommit) || !isErr(err, ErrCrypto) {
		t.Fatalf("commit with a forged confirmation tag: %v", err)
	}
	mustProcess(t, res.Commit, a)
	mustProcess(t, res.Commit, b) // Bob's own commit comes back: merged
	checkInSync(t, a, b)
	msg, err = a.Protect([]byte("bye"), nil)
	must(t, "protect", err)
	mustProcess(t, msg, b)
}

// noKeyDecrypts checks that none of the private keys in leaked opens any
// ciphertext of commit's UpdatePath, while the legitimate member good
// (already past the commit) holds the path keys the commit set.
func noKeyDecrypts(t *testing.T, leaked, good *Group, commitMsg []byte) {
	t.Helper()
	m, err := decodeMLSMessage(commitMsg)
	must(t, "decode commit", err)
	up := m.public.content.commit.path
	if up == nil {
		t.Fatal("commit without a path")
	}
	good.mu.Lock()
	gc := *good.st.gc
	goodHasPathKey := false
	for _, n := range up.nodes {
		for x, k := range good.st.priv.keys {
			if bytes.Equal(k.pub, n.encryptionKey) && !isLeaf(x) {
				goodHasPathKey = true
			}
		}
	}
	good.mu.Unlock()
	if !goodHasPathKey {
		t.Fatal("the legitimate member holds none of the path's keys")
	}
	leaked.mu.Lock()
	defer leaked.mu.Unlock()
	// The provisional context: the new epoch and tree, the old transcript.
	gc.confirmedTranscriptHash = leaked.st.gc.confirmedTranscriptHash
	ctx, err := encodeGroupContext(&gc)
	must(t, "context", err)
	for i, n := range up.nodes {
		for j, ct := range n.encryptedPathSecret {
			for x, k := range leaked.st.priv.keys {
				if _, err := leaked.suite.DecryptWithLabel(k.priv, "UpdatePathNode", ctx, ct.kemOutput, ct.ciphertext); err == nil {
					t.Fatalf("leaked key of node %d decrypts path node %d ciphertext %d", x, i, j)
				}
			}
		}
	}
}

// forgeConfirmationTag returns commitMsg (a PublicMessage of g's pending
// commit) with another confirmation tag and a valid membership tag, as a
// malicious member could make it.
func forgeConfirmationTag(t *testing.T, g *Group, commitMsg []byte) []byte {
	t.Helper()
	m, err := decodeMLSMessage(commitMsg)
	must(t, "decode commit", err)
	pm := m.public
	pm.auth.confirmationTag = bytes.Clone(pm.auth.confirmationTag)
	pm.auth.confirmationTag[0] ^= 1
	g.mu.Lock()
	defer g.mu.Unlock()
	ac := &authenticatedContent{wireFormat: wireFormatPublicMessage, content: pm.content, auth: pm.auth}
	if pm.membershipTag, err = g.st.ctx.membershipTag(ac); err != nil {
		t.Fatal(err)
	}
	b, err := encode(m)
	must(t, "encode", err)
	return b
}
