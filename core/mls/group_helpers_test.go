package mls

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"testing"
)

// Helpers for group tests: members with generated keys, and a deep copy of
// a member's state (what an attacker who compromised the member holds).

// testMember is a member-to-be: its credential and signature key.
type testMember struct {
	name    string
	cred    Credential
	sigPriv []byte
}

func newTestMember(t testing.TB, cs CipherSuite, name string) *testMember {
	t.Helper()
	s, err := cs.Suite()
	if err != nil {
		t.Fatal(err)
	}
	priv, _, err := s.GenerateSignatureKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return &testMember{name: name, cred: Credential{Identity: []byte(name)}, sigPriv: priv}
}

// keyPackage makes a fresh key package of m.
func (m *testMember) keyPackage(t testing.TB, cs CipherSuite, cfg *Config) *PrivateKeyPackage {
	t.Helper()
	kp, err := NewKeyPackage(cs, m.cred, m.sigPriv, cfg)
	if err != nil {
		t.Fatalf("key package of %s: %v", m.name, err)
	}
	return kp
}

// mustProcess processes msg at each group, failing on error, and returns
// the last result.
func mustProcess(t testing.TB, msg []byte, gs ...*Group) *Received {
	t.Helper()
	var r *Received
	for i, g := range gs {
		var err error
		if r, err = g.Process(msg); err != nil {
			t.Fatalf("member %d (leaf %d): %v", i, g.OwnIndex(), err)
		}
	}
	return r
}

// mustCommit creates and merges a commit of g and returns it.
func mustCommit(t testing.TB, g *Group, opts *CommitOptions) *CommitResult {
	t.Helper()
	res, err := g.Commit(opts)
	if err != nil {
		t.Fatalf("commit by leaf %d: %v", g.OwnIndex(), err)
	}
	if err := g.MergePendingCommit(); err != nil {
		t.Fatalf("merge: %v", err)
	}
	return res
}

// mustJoin joins from a Welcome.
func mustJoin(t testing.TB, welcome []byte, kp *PrivateKeyPackage, cfg *Config) *Group {
	t.Helper()
	g, err := JoinGroup(welcome, kp, nil, cfg)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	kp.Wipe()
	return g
}

// checkInSync fails unless every group is in the same epoch with the same
// epoch authenticator, exporter output, tree and members.
func checkInSync(t testing.TB, gs ...*Group) {
	t.Helper()
	var epoch uint64
	var auth, exp, tree []byte
	for i, g := range gs {
		a, err := g.EpochAuthenticator()
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		x, err := g.Export("x0x test", []byte("ctx"), 32)
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		rt, err := g.RatchetTree()
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		if i == 0 {
			epoch, auth, exp, tree = g.Epoch(), a, x, rt
			continue
		}
		if g.Epoch() != epoch || !bytes.Equal(a, auth) || !bytes.Equal(x, exp) || !bytes.Equal(rt, tree) {
			t.Fatalf("member %d out of sync: epoch %d vs %d", i, g.Epoch(), epoch)
		}
	}
}

// wantErr fails unless err wraps every one of targets.
func wantErr(t testing.TB, what string, err error, targets ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, targets)
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Fatalf("%s: %v, want %v", what, err, target)
		}
	}
}

// isErr is errors.Is.
func isErr(err, target error) bool { return errors.Is(err, target) }

// isDecodeError reports whether err is a *DecodeError.
func isDecodeError(err error) bool {
	var de *DecodeError
	return errors.As(err, &de)
}

// leak returns a deep copy of g's state: what an attacker who compromised
// the member at this moment holds (every secret, private key and ratchet).
func leak(g *Group) *Group {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := &Group{
		cfg:     g.cfg,
		suite:   g.suite,
		sigPriv: bytes.Clone(g.sigPriv),
		st:      cloneEpochState(g.suite, g.st),
		active:  g.active,
	}
	for _, cp := range g.cache {
		c.addToCache(cp)
	}
	if g.ownUpdates != nil {
		c.ownUpdates = map[string]nodeKey{}
		for ref, k := range g.ownUpdates {
			c.ownUpdates[ref] = nodeKey{priv: bytes.Clone(k.priv), pub: bytes.Clone(k.pub)}
		}
	}
	for _, r := range g.resumption {
		c.resumption = append(c.resumption, resumptionPSK{epoch: r.epoch, secret: bytes.Clone(r.secret)})
	}
	return c
}

func cloneEpochState(s Suite, st *epochState) *epochState {
	es := *st.secrets
	for _, p := range []*[]byte{&es.joiner, &es.welcome, &es.senderData, &es.encryption, &es.exporter, &es.external,
		&es.confirmation, &es.membership, &es.resumption, &es.epochAuthenticator, &es.init} {
		*p = bytes.Clone(*p)
	}
	ctx, err := newEpochContext(s, st.gc, es.membership, es.senderData, cloneSecretTree(st.ctx.secretTree))
	if err != nil {
		panic(fmt.Sprintf("cloning epoch context: %v", err))
	}
	ctx.self = st.ctx.self
	return &epochState{gc: st.gc, tree: st.tree.clone(), priv: st.priv.clone(), secrets: &es,
		interim: st.interim, confirmationTag: st.confirmationTag, ctx: ctx}
}

func cloneSecretTree(t *secretTree) *secretTree {
	c := *t
	c.nodes = map[uint32][]byte{}
	for x, s := range t.nodes {
		c.nodes[x] = bytes.Clone(s)
	}
	c.ratchets = map[uint32]*[2]*hashRatchet{}
	for l, rs := range t.ratchets {
		var crs [2]*hashRatchet
		for i, r := range rs {
			cr := *r
			cr.secret = bytes.Clone(r.secret)
			cr.keys = maps.Clone(r.keys)
			for g, k := range cr.keys {
				cr.keys[g] = k.clone()
			}
			crs[i] = &cr
		}
		c.ratchets[l] = &crs
	}
	return &c
}
