package mls

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// Tests of Group.MarshalState / UnmarshalState: round trips that keep
// behaving exactly like the original, refusal of corrupt and inconsistent
// states with typed errors, a fuzz target, and sizes.

const pqSuite = X0XMLS128MLKEM768X25519ChaCha20Poly1305SHA256MLDSA65

var updateStateSeed = flag.Bool("update-state-seed", false, "rewrite testdata/state_seed.bin")

// suiteGroup is a group of n members in suite cs built by one commit of
// the founder; if join is false only the founder's state exists.
type suiteGroup struct {
	members []*testMember
	groups  []*Group
}

func newSuiteGroup(t testing.TB, cs CipherSuite, n int, cfg *Config, join bool) *suiteGroup {
	t.Helper()
	sg := &suiteGroup{}
	for i := range n {
		sg.members = append(sg.members, newTestMember(t, cs, string(rune('a'+i%26))+string(rune('0'+i/26))))
	}
	gid := make([]byte, 16)
	rand.Read(gid)
	g0, err := CreateGroup(cs, gid, sg.members[0].cred, sg.members[0].sigPriv, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sg.groups = append(sg.groups, g0)
	t.Cleanup(func() {
		for _, g := range sg.groups {
			g.Close()
		}
	})
	if n == 1 {
		return sg
	}
	var kps []*PrivateKeyPackage
	var opts CommitOptions
	for _, m := range sg.members[1:] {
		kp := m.keyPackage(t, cs, cfg)
		kps = append(kps, kp)
		opts.Add = append(opts.Add, kp.KeyPackage())
	}
	res := mustCommit(t, g0, &opts)
	if join {
		for _, kp := range kps {
			sg.groups = append(sg.groups, mustJoin(t, res.Welcome, kp, cfg))
		}
	}
	return sg
}

// richState is a 3-member group whose member b holds every part of a
// state: a past epoch, resumption PSKs, keys kept in its out-of-order
// window, cached proposals including its own Update. late is c's message
// of the past epoch, w1 and w2 c's messages of the current epoch that b
// skipped (their keys are in b's window).
type richState struct {
	*suiteGroup
	a, b, c     *Group
	late        []byte
	w1, w2      []byte
	cfg         *Config
	bobSigPriv  []byte
	proposalMsg [][]byte
}

func newRichState(t testing.TB, cs CipherSuite, cfg *Config) *richState {
	t.Helper()
	sg := newSuiteGroup(t, cs, 3, cfg, true)
	rs := &richState{suiteGroup: sg, a: sg.groups[0], b: sg.groups[1], c: sg.groups[2], cfg: cfg, bobSigPriv: sg.members[1].sigPriv}
	a, b, c := rs.a, rs.b, rs.c
	var err error
	if rs.late, err = c.Protect([]byte("late"), []byte("aad")); err != nil {
		t.Fatal(err)
	}
	res := mustCommit(t, a, nil)
	mustProcess(t, res.Commit, b, c)
	var w [3][]byte
	for i := range w {
		if w[i], err = c.Protect([]byte{'w', byte('1' + i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	mustProcess(t, w[2], b)
	rs.w1, rs.w2 = w[0], w[1]
	updB, err := b.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	mustProcess(t, updB, a, c)
	updA, err := a.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	mustProcess(t, updA, b, c)
	rs.proposalMsg = [][]byte{updB, updA}
	return rs
}

// checkSizeBound fails if marshalling g's state had to grow its buffer
// (leaving copies of secrets behind): the size bound was too small.
func checkSizeBound(t testing.TB, g *Group) {
	t.Helper()
	g.mu.Lock()
	b, grew, err := g.marshalStateLocked()
	g.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if grew {
		t.Fatalf("the state's buffer grew: the size bound is too small (cap %d, len %d)", cap(b), len(b))
	}
}

// mustMarshal marshals g's state.
func mustMarshal(t testing.TB, g *Group) []byte {
	t.Helper()
	b, err := g.MarshalState()
	if err != nil {
		t.Fatalf("marshal state: %v", err)
	}
	return b
}

func TestStateRoundTrip(t *testing.T) {
	for _, cs := range []CipherSuite{grpSuite, pqSuite} {
		t.Run(cs.String(), func(t *testing.T) { testStateRoundTrip(t, cs) })
	}
}

func testStateRoundTrip(t *testing.T, cs CipherSuite) {
	cfg := &Config{PastEpochs: 1}
	rs := newRichState(t, cs, cfg)
	a, b, c := rs.a, rs.b, rs.c
	state := mustMarshal(t, b)
	checkSizeBound(t, b)
	r, err := UnmarshalState(state, rs.bobSigPriv, cfg)
	must(t, "unmarshal", err)
	defer r.Close()
	if got := mustMarshal(t, r); !bytes.Equal(got, state) {
		t.Fatal("the restored state marshals differently")
	}
	checkInSync(t, b, r)
	checkNoSharedMemory(t, b, r)
	if r.OwnIndex() != b.OwnIndex() || r.Epoch() != b.Epoch() || len(r.Members()) != 3 {
		t.Fatal("restored state differs")
	}

	// The restored member decrypts exactly like the original: a message of
	// the past epoch, and one whose key was kept in the window.
	for _, g := range []*Group{b, r} {
		if m := mustProcess(t, rs.late, g); string(m.ApplicationData) != "late" || string(m.AuthenticatedData) != "aad" {
			t.Fatalf("past epoch message: %+v", m)
		}
		if m := mustProcess(t, rs.w1, g); string(m.ApplicationData) != "w1" {
			t.Fatalf("window message: %+v", m)
		}
		_, err := g.Process(rs.w1)
		wantErr(t, "replay", err, ErrReplay)
	}

	// The next commit (c's, with a's and b's Updates by reference) is
	// processed by both; b's Update key was restored.
	res := mustCommit(t, c, nil)
	for _, g := range []*Group{a, b, r} {
		m := mustProcess(t, res.Commit, g)
		if len(m.Commit.Updated) != 2 {
			t.Fatalf("commit: %+v", m.Commit)
		}
	}
	checkInSync(t, a, b, c, r)
	// The previous epoch's window key is now in the past epoch.
	for _, g := range []*Group{b, r} {
		if m := mustProcess(t, rs.w2, g); string(m.ApplicationData) != "w2" {
			t.Fatalf("window message of the past epoch: %+v", m)
		}
	}
	// Same operations, same state.
	if !bytes.Equal(mustMarshal(t, b), mustMarshal(t, r)) {
		t.Fatal("original and restored states differ after the same operations")
	}
	msg, err := a.Protect([]byte("to both"), nil)
	must(t, "protect", err)
	for _, g := range []*Group{b, r} {
		if m := mustProcess(t, msg, g); string(m.ApplicationData) != "to both" {
			t.Fatalf("application message: %+v", m)
		}
	}
	// The restored member replaces the original: it sends and commits.
	b.Close()
	msg, err = r.Protect([]byte("restored"), nil)
	must(t, "protect", err)
	mustProcess(t, msg, a, c)
	res = mustCommit(t, r, nil)
	mustProcess(t, res.Commit, a, c)
	checkInSync(t, a, c, r)
}

// TestStateConfigLimits checks that UnmarshalState applies the given
// configuration: retained epochs and PSKs are trimmed, sizes bounded.
func TestStateConfigLimits(t *testing.T) {
	cfg := &Config{PastEpochs: 1}
	rs := newRichState(t, grpSuite, cfg)
	state := mustMarshal(t, rs.b)
	r, err := UnmarshalState(state, rs.bobSigPriv, &Config{ResumptionPSKEpochs: -1})
	must(t, "unmarshal", err)
	defer r.Close()
	if len(r.past) != 0 || len(r.resumption) != 1 {
		t.Fatalf("%d past epochs and %d resumption PSKs kept", len(r.past), len(r.resumption))
	}
	_, err = r.Process(rs.late)
	wantErr(t, "past epoch dropped", err, ErrWrongEpoch)

	_, err = UnmarshalState(state, rs.bobSigPriv, &Config{MaxStateSize: len(state) - 1})
	wantErr(t, "state over the limit", err, ErrMessageTooLarge)
	g, err := UnmarshalState(state, rs.bobSigPriv, &Config{PastEpochs: 1, MaxStateSize: len(state)})
	must(t, "unmarshal at the limit", err)
	defer g.Close()
	g.cfg.MaxStateSize = len(state) - 1
	_, err = g.MarshalState()
	wantErr(t, "marshal over the limit", err, ErrMessageTooLarge)

	rs.c.Close()
	_, err = rs.c.MarshalState()
	wantErr(t, "marshal closed", err, ErrInactive)
}

// checkStateError fails unless err is a documented error of
// UnmarshalState.
func checkStateError(t *testing.T, err error) {
	t.Helper()
	var de *DecodeError
	switch {
	case errors.As(err, &de):
		checkDecodeError(t, err)
	case errors.Is(err, ErrInvalidState), errors.Is(err, ErrMessageTooLarge):
	default:
		t.Fatalf("undocumented error: %v", err)
	}
}

// reseal returns a copy of b with its trailing checksum recomputed, so
// that changes reach the decoder and validation.
func reseal(b []byte) []byte {
	out := bytes.Clone(b)
	if len(out) >= stateHeaderSize+sha256.Size {
		end := len(out) - sha256.Size
		sum := sha256.Sum256(out[:end])
		copy(out[end:], sum[:])
	}
	return out
}

// TestStateCorruption checks that truncated, extended and bit-flipped
// states are refused with typed errors, and never load.
func TestStateCorruption(t *testing.T) {
	rs := newRichState(t, grpSuite, &Config{PastEpochs: 1})
	state := mustMarshal(t, rs.b)
	sig := rs.bobSigPriv
	for n := range len(state) {
		_, err := UnmarshalState(state[:n], sig, nil)
		if err == nil {
			t.Fatalf("truncated to %d bytes: accepted", n)
		}
		checkStateError(t, err)
	}
	_, err := UnmarshalState(append(bytes.Clone(state), 0), sig, nil)
	wantErr(t, "extended", err, ErrInvalidState)
	for i := range len(state) {
		bad := bytes.Clone(state)
		bad[i] ^= 1 << (i % 8)
		_, err := UnmarshalState(bad, sig, nil)
		if err == nil {
			t.Fatalf("bit flip at byte %d: accepted", i)
		}
		checkStateError(t, err)
		if i >= stateHeaderSize && !errors.Is(err, ErrInvalidState) {
			t.Fatalf("bit flip at byte %d: %v, want a checksum error", i, err)
		}
	}
	// Header errors are decode errors.
	bad := bytes.Clone(state)
	bad[0] = 'X'
	_, err = UnmarshalState(bad, sig, nil)
	if de := (*DecodeError)(nil); !errors.As(err, &de) || !errors.Is(err, ErrInvalidValue) {
		t.Fatalf("wrong magic: %v", err)
	}
	bad = bytes.Clone(state)
	bad[5] = 2
	_, err = UnmarshalState(bad, sig, nil)
	if de := (*DecodeError)(nil); !errors.As(err, &de) || !errors.Is(err, ErrUnknownValue) {
		t.Fatalf("unknown version: %v", err)
	}
	// Truncated or extended bodies with a valid checksum are decode errors.
	body := state[:len(state)-sha256.Size]
	for _, b := range [][]byte{bytes.Clone(body[:len(body)-1]), append(bytes.Clone(body), 0)} {
		_, err := UnmarshalState(reseal(append(b, make([]byte, sha256.Size)...)), sig, nil)
		if !isDecodeError(err) {
			t.Fatalf("resealed body of %d bytes: %v", len(b), err)
		}
	}
	// Single bit flips with a valid checksum: refused with a typed error,
	// or (in secrets, which nothing can check) accepted and re-encoded
	// identically. Never a panic.
	accepted := 0
	for i := stateHeaderSize; i < len(state)-sha256.Size; i++ {
		bad := bytes.Clone(state)
		bad[i] ^= 0x80
		bad = reseal(bad)
		g, err := UnmarshalState(bad, sig, &Config{PastEpochs: 1})
		if err != nil {
			checkStateError(t, err)
			continue
		}
		accepted++
		if !bytes.Equal(mustMarshal(t, g), bad) {
			t.Fatalf("flip at %d: accepted state re-marshals differently", i)
		}
		g.Close()
	}
	t.Logf("%d of %d resealed bit flips accepted (secrets and opaque data)", accepted, len(state)-stateHeaderSize-sha256.Size)
	// A signature key that is not the member's.
	if g, err := UnmarshalState(state, sig, nil); err != nil {
		t.Fatalf("the state was changed: %v", err)
	} else {
		g.Close()
	}
	_, err = UnmarshalState(state, rs.members[0].sigPriv, nil)
	wantErr(t, "another member's signature key", err, ErrInvalidState)
	_, err = UnmarshalState(state, []byte{1, 2, 3}, nil)
	wantErr(t, "malformed signature key", err, ErrInvalidState)
}

// TestStateValidation tampers with one part of a state at a time (in a
// clone, then marshalled with a valid checksum) and checks that
// UnmarshalState refuses it with ErrInvalidState.
func TestStateValidation(t *testing.T) {
	cfg := &Config{PastEpochs: 1}
	rs := newRichState(t, grpSuite, cfg)
	s := rs.b.suite
	me := rs.b.OwnIndex()
	otherKey := func() []byte {
		priv, _, err := s.GenerateHPKEKeyPair()
		must(t, "key", err)
		return priv
	}
	someRatchet := func(g *Group) *hashRatchet {
		for _, r := range g.st.ctx.secretTree.ratchets {
			return r[applicationRatchet]
		}
		t.Fatal("no ratchet")
		return nil
	}
	cases := []struct {
		name   string
		tamper func(g *Group)
	}{
		{"control", func(g *Group) {}},
		{"own leaf index", func(g *Group) { g.st.priv.leaf = 0 }},
		{"own leaf outside the tree", func(g *Group) { g.st.priv.leaf = 1 << 20 }},
		{"leaf private key", func(g *Group) {
			k := g.st.priv.keys[nodeOfLeaf(me)]
			k.priv = otherKey()
			g.st.priv.keys[nodeOfLeaf(me)] = k
		}},
		{"no leaf private key", func(g *Group) { delete(g.st.priv.keys, nodeOfLeaf(me)) }},
		{"private key off the direct path", func(g *Group) { g.st.priv.keys[nodeOfLeaf(2)] = nodeKey{priv: otherKey()} }},
		{"private key of another leaf's path", func(g *Group) { g.st.priv.keys[5] = nodeKey{priv: otherKey()} }},
		{"malformed private key", func(g *Group) { g.st.priv.keys[nodeOfLeaf(me)] = nodeKey{priv: []byte{1}} }},
		{"tree hash", func(g *Group) { g.st.gc.treeHash = bytes.Repeat([]byte{7}, len(g.st.gc.treeHash)) }},
		{"tree shape", func(g *Group) { g.st.tree.nodes[1] = &treeNode{leaf: g.st.tree.nodes[0].leaf} }},
		{"confirmation key", func(g *Group) { g.st.secrets.confirmation[0] ^= 1 }},
		{"confirmation tag", func(g *Group) { g.st.confirmationTag = []byte{1, 2} }},
		{"secret size", func(g *Group) { g.st.secrets.exporter = g.st.secrets.exporter[:8] }},
		{"unknown suite", func(g *Group) { g.st.gc.cipherSuite = 0x7777 }},
		{"secret tree node missing", func(g *Group) {
			for x := range g.st.ctx.secretTree.nodes {
				delete(g.st.ctx.secretTree.nodes, x)
				break
			}
		}},
		{"secret tree node overlapping", func(g *Group) {
			g.st.ctx.secretTree.nodes[g.st.tree.size.root()] = make([]byte, s.HashSize())
		}},
		{"secret tree node outside", func(g *Group) { g.st.ctx.secretTree.nodes[1<<20] = make([]byte, s.HashSize()) }},
		{"secret tree node size", func(g *Group) {
			for x := range g.st.ctx.secretTree.nodes {
				g.st.ctx.secretTree.nodes[x] = []byte{1}
			}
		}},
		{"ratchets outside", func(g *Group) {
			g.st.ctx.secretTree.ratchets[1<<20] = &[2]*hashRatchet{someRatchet(g), someRatchet(g)}
		}},
		{"window overflow", func(g *Group) {
			r := someRatchet(g)
			r.next += 64
			for i := range uint32(defaultOutOfOrderWindow + 1) {
				r.keys[r.next-1-i] = ratchetKey{key: make([]byte, s.KeySize()), nonce: make([]byte, s.NonceSize())}
			}
		}},
		{"kept key ahead", func(g *Group) {
			r := someRatchet(g)
			r.keys[r.next] = ratchetKey{key: make([]byte, s.KeySize()), nonce: make([]byte, s.NonceSize())}
		}},
		{"kept key size", func(g *Group) {
			r := someRatchet(g)
			r.next++
			r.keys[r.next-1] = ratchetKey{key: []byte{1}, nonce: make([]byte, s.NonceSize())}
		}},
		{"ratchet without secret", func(g *Group) { someRatchet(g).secret = nil }},
		{"ratchet secret size", func(g *Group) { someRatchet(g).secret = []byte{1} }},
		{"proposal reference size", func(g *Group) { g.cache[0].ref = []byte{1} }},
		{"proposal twice", func(g *Group) { g.cache = append(g.cache, g.cache[0]) }},
		{"proposal sender", func(g *Group) { g.cache[1].sender = 3 }},
		{"proposal type", func(g *Group) {
			g.cache[1].p = &proposal{typ: proposalExternalInit, kemOutput: []byte{1}}
		}},
		{"too many proposals", func(g *Group) {
			for i := range maxEpochProposals {
				ref := make([]byte, s.HashSize())
				ref[0], ref[1] = byte(i), byte(i>>8)
				ref[2] = 0xee
				g.cache = append(g.cache, &cachedProposal{ref: ref, p: &proposal{typ: proposalRemove, removed: 0}})
			}
		}},
		{"update key", func(g *Group) {
			for ref := range g.ownUpdates {
				g.ownUpdates[ref] = nodeKey{priv: otherKey()}
			}
		}},
		{"update key of another's proposal", func(g *Group) {
			g.ownUpdates[string(g.cache[1].ref)] = nodeKey{priv: otherKey()}
		}},
		{"update key of no proposal", func(g *Group) {
			g.ownUpdates[string(make([]byte, s.HashSize()))] = nodeKey{priv: otherKey()}
		}},
		{"resumption PSK size", func(g *Group) { g.resumption[0].secret = []byte{1} }},
		{"past epoch group", func(g *Group) { g.past[0].ctx.groupContext.groupID = []byte("another group") }},
		{"past epoch later", func(g *Group) { g.past[0].ctx.groupContext.epoch = g.st.gc.epoch }},
		{"past epoch tree", func(g *Group) { g.past[0].tree = g.st.tree }},
		{"past epoch sender data", func(g *Group) { g.past[0].ctx.senderDataSecret = []byte{1} }},
		{"past epoch secret tree", func(g *Group) { clear(g.past[0].ctx.secretTree.nodes) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, err := rs.b.Clone()
			must(t, "clone", err)
			defer g.Close()
			tc.tamper(g)
			state, err := g.MarshalState()
			must(t, "marshal", err)
			r, err := UnmarshalState(state, rs.bobSigPriv, cfg)
			if tc.name == "control" {
				must(t, "unmarshal", err)
				r.Close()
				return
			}
			if err == nil {
				r.Close()
				t.Fatal("tampered state accepted")
			}
			wantErr(t, tc.name, err, ErrInvalidState)
			t.Log(err)
		})
	}
}

// stateSeedPath holds a real state (suite 1, the rich state's member b)
// and its member's signature key, so that every fuzzing process uses the
// same seed and key.
var stateSeedPath = filepath.Join("testdata", "state_seed.bin")

// loadStateSeed returns the stored seed state and signature key.
func loadStateSeed(t testing.TB) (sigPriv, state []byte) {
	t.Helper()
	b, err := os.ReadFile(stateSeedPath)
	if err != nil {
		t.Fatalf("state seed: %v (regenerate with go test -run TestStateSeed -update-state-seed)", err)
	}
	if err := decodeAll("state seed", b, func(d *decoder) {
		sigPriv, state = d.opaque(), d.opaque()
	}); err != nil {
		t.Fatal(err)
	}
	return sigPriv, state
}

// fuzzStateConfig keeps everything a state holds (no trimming), so that
// an accepted state re-marshals to its input.
var fuzzStateConfig = &Config{PastEpochs: 1 << 20, ResumptionPSKEpochs: 1 << 20, MaxStateSize: 1 << 20}

// TestStateSeed checks that the stored seed state still loads and
// re-marshals identically (it fails when the format changes; regenerate
// the seed then).
func TestStateSeed(t *testing.T) {
	if *updateStateSeed {
		rs := newRichState(t, grpSuite, &Config{PastEpochs: 2})
		var e encoder
		e.opaque(rs.bobSigPriv)
		e.opaque(mustMarshal(t, rs.b))
		b, err := e.bytes()
		must(t, "encode", err)
		must(t, "mkdir", os.MkdirAll("testdata", 0o755))
		must(t, "write", os.WriteFile(stateSeedPath, b, 0o644))
	}
	sigPriv, state := loadStateSeed(t)
	g, err := UnmarshalState(state, sigPriv, fuzzStateConfig)
	must(t, "unmarshal seed", err)
	defer g.Close()
	if !bytes.Equal(mustMarshal(t, g), state) {
		t.Fatal("seed state re-marshals differently")
	}
	if len(g.past) != 1 || len(g.cache) != 2 || len(g.ownUpdates) != 1 || len(g.resumption) != 2 {
		t.Fatalf("seed lacks parts: %d past, %d proposals, %d own updates, %d resumption PSKs",
			len(g.past), len(g.cache), len(g.ownUpdates), len(g.resumption))
	}
}

// FuzzUnmarshalState loads arbitrary states, as given and with their
// checksum recomputed (so that changes reach the decoder and validation):
// no panic, only documented errors, and an accepted state re-marshals to
// exactly its input.
func FuzzUnmarshalState(f *testing.F) {
	sigPriv, state := loadStateSeed(f)
	f.Add(state)
	f.Add(state[:len(state)/2])
	f.Add(stateMagic[:])
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, in := range [][]byte{b, reseal(b)} {
			g, err := UnmarshalState(in, sigPriv, fuzzStateConfig)
			if err != nil {
				checkStateError(t, err)
				continue
			}
			out, err := g.MarshalState()
			g.Close()
			if err != nil {
				t.Fatalf("re-marshal: %v", err)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("accepted state re-marshals differently:\n in  %x\n out %x", in, out)
			}
		}
	})
}

// TestStateSizes logs the size of a marshalled state under the
// post-quantum suite, and the time to marshal, unmarshal and clone it.
func TestStateSizes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 100-member group")
	}
	for _, n := range []int{3, 100} {
		cfg := &Config{MaxMessageSize: 8 << 20}
		sg := newSuiteGroup(t, pqSuite, n, cfg, false)
		g := sg.groups[0]
		checkSizeBound(t, g)
		start := time.Now()
		state := mustMarshal(t, g)
		tm := time.Since(start)
		start = time.Now()
		r, err := UnmarshalState(state, sg.members[0].sigPriv, cfg)
		tu := time.Since(start)
		must(t, "unmarshal", err)
		r.Close()
		start = time.Now()
		c, err := g.Clone()
		tc := time.Since(start)
		must(t, "clone", err)
		c.Close()
		t.Logf("%d members (PQ suite): state %d bytes; marshal %v, unmarshal %v, clone %v", n, len(state), tm, tu, tc)
	}
}

func BenchmarkClone(b *testing.B) {
	for _, n := range []int{3, 100} {
		b.Run(fmt.Sprintf("%dmembers", n), func(b *testing.B) {
			sg := newSuiteGroup(b, pqSuite, n, &Config{MaxMessageSize: 8 << 20}, false)
			g := sg.groups[0]
			for b.Loop() {
				c, err := g.Clone()
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

func BenchmarkMarshalState(b *testing.B) {
	sg := newSuiteGroup(b, pqSuite, 100, &Config{MaxMessageSize: 8 << 20}, false)
	g := sg.groups[0]
	var n int
	for b.Loop() {
		state, err := g.MarshalState()
		if err != nil {
			b.Fatal(err)
		}
		n = len(state)
	}
	b.ReportMetric(float64(n), "state-bytes")
}

func BenchmarkUnmarshalState(b *testing.B) {
	sg := newSuiteGroup(b, pqSuite, 100, &Config{MaxMessageSize: 8 << 20}, false)
	state, err := sg.groups[0].MarshalState()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		g, err := UnmarshalState(state, sg.members[0].sigPriv, nil)
		if err != nil {
			b.Fatal(err)
		}
		g.Close()
	}
}

// TestStateCanonicalOrder checks that lists stored in ascending order are
// refused out of order (a state has one encoding).
func TestStateCanonicalOrder(t *testing.T) {
	for _, order := range [][]uint32{{2, 1}, {1, 1}} {
		var e encoder
		e.vector(func(e *encoder) {
			for _, x := range order {
				e.u32(x)
				e.opaque([]byte{byte(x)})
			}
		})
		err := decodeAll("indexed", e.b, func(d *decoder) {
			decodeIndexed(d, func(d *decoder, _ uint32) { d.opaque() })
		})
		if !isDecodeError(err) || !isErr(err, ErrInvalidValue) {
			t.Fatalf("indices %v: %v", order, err)
		}
	}
	cfg := &Config{PastEpochs: 2}
	rs := newRichState(t, grpSuite, cfg)
	res := mustCommit(t, rs.c, nil)
	mustProcess(t, res.Commit, rs.a, rs.b)
	for what, swap := range map[string]func(g *Group){
		"past epochs":     func(g *Group) { g.past[0], g.past[1] = g.past[1], g.past[0] },
		"resumption PSKs": func(g *Group) { g.resumption[0], g.resumption[1] = g.resumption[1], g.resumption[0] },
	} {
		g, err := rs.b.Clone()
		must(t, "clone", err)
		if len(g.past) != 2 || len(g.resumption) != 3 {
			t.Fatalf("%d past epochs, %d resumption PSKs", len(g.past), len(g.resumption))
		}
		checkSizeBound(t, g)
		if _, err := UnmarshalState(mustMarshal(t, g), rs.bobSigPriv, cfg); err != nil {
			t.Fatalf("%s in order: %v", what, err)
		}
		swap(g)
		_, err = UnmarshalState(mustMarshal(t, g), rs.bobSigPriv, cfg)
		if !isDecodeError(err) || !isErr(err, ErrInvalidValue) {
			t.Fatalf("%s out of order: %v", what, err)
		}
		g.Close()
	}
}

// TestStateLoadAmplification bounds what loading a state allocates
// relative to its size, on a state whose ratchet tree is almost all blank
// nodes (one byte each, the most work per input byte: every node is
// hashed).
func TestStateLoadAmplification(t *testing.T) {
	tg := newTestGroup(t, 1, nil)
	g, err := tg.groups[0].Clone()
	must(t, "clone", err)
	defer g.Close()
	const leaves = 1 << 16
	size, err := newTreeSize(leaves)
	must(t, "size", err)
	tree := &publicTree{size: size, nodes: make([]*treeNode, size.width())}
	tree.nodes[nodeOfLeaf(leaves-1)] = g.st.tree.nodes[0]
	g.st.tree = tree // the tree hash will not match: loading fails after hashing
	state := mustMarshal(t, g)
	var best uint64
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := UnmarshalState(state, tg.members[0].sigPriv, nil)
		runtime.ReadMemStats(&after)
		wantErr(t, "tree hash", err, ErrInvalidState)
		if n := after.TotalAlloc - before.TotalAlloc; best == 0 || n < best {
			best = n
		}
	}
	ratio := float64(best) / float64(len(state))
	t.Logf("%d input bytes, %d bytes allocated (%.1fx, garbage included)", len(state), best, ratio)
	// Decoding allocates at most about 40 bytes per input byte (codec.go);
	// hashing the tree about 300 bytes of short-lived garbage per blank
	// node (one input byte). Linear, with this constant.
	if ratio > 400 {
		t.Errorf("loading allocates %.1fx its input", ratio)
	}
}
