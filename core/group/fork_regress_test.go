package group

import (
	"bytes"
	"testing"

	"lukechampine.com/blake3"
)

func lower(x, y []byte) bool {
	hx, hy := blake3.Sum256(x), blake3.Sum256(y)
	return bytes.Compare(hx[:], hy[:]) < 0
}

// Two branches of two commits each; two observers receive the same four
// commits in different orders.
func TestCommitsOfAnotherBranchAreKept(t *testing.T) {
	for attempt := 0; attempt < 40; attempt++ {
		b := newBus(t)
		a, c, e, f := b.agent(1), b.agent(2), b.agent(3), b.agent(4)
		a.create(t)
		b.invite(t, a, c, e, f)
		b.settle(t)
		must := func(err error) {
			if err != nil {
				t.Fatal(err)
			}
		}
		must(a.g.Update())
		a0 := b.lastPublished(a)
		must(c.g.Update())
		c0 := b.lastPublished(c)
		must(a.g.Update())
		a1 := b.lastPublished(a)
		must(c.g.Update())
		c1 := b.lastPublished(c)
		w0, w1, l0, l1 := a0, a1, c0, c1
		if lower(c0, a0) {
			w0, w1, l0, l1 = c0, c1, a0, a1
		}
		if lower(w1, l1) {
			b.closeAll()
			continue
		}
		org := a.id // origin is irrelevant for commits
		for _, m := range []*member{e, f} {
			m.mu.Lock()
			m.inbox = nil
			m.mu.Unlock()
		}
		for _, msg := range [][]byte{l0, l1, w1, w0} {
			e.g.Handle(org, msg)
		}
		for _, msg := range [][]byte{w0, w1, l0, l1} {
			f.g.Handle(org, msg)
		}
		t.Logf("attempt %d: e epoch %d, f epoch %d", attempt, e.g.Epoch(), f.g.Epoch())
		ea, _ := e.g.EpochAuthenticator()
		fa, _ := f.g.EpochAuthenticator()
		if e.g.Epoch() != f.g.Epoch() || !bytes.Equal(ea, fa) {
			t.Errorf("same four commits, e in epoch %d, f in epoch %d", e.g.Epoch(), f.g.Epoch())
		}
		b.closeAll()
		return
	}
	t.Skip("no suitable hashes")
}

// An application message of the winning branch, of an epoch number the
// observer has passed on the losing branch, is dropped for good.
func TestWinningBranchMessageOfAPassedEpochArrives(t *testing.T) {
	b, ms := newGroupOf(t, 3)
	a, c, e := ms[0], ms[1], ms[2]
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.g.Update())
	a0 := b.lastPublished(a)
	must(c.g.Update())
	c0 := b.lastPublished(c)
	w, l := a, c
	w0, l0 := a0, c0
	if lower(c0, a0) {
		w, l, w0, l0 = c, a, c0, a0
	}
	must(w.g.Send([]byte("from the winner")))
	m := b.lastPublished(w)
	must(l.g.Update())
	l1 := b.lastPublished(l)
	e.mu.Lock()
	e.inbox = nil
	e.mu.Unlock()
	e.g.Handle(l.id, l0)
	e.g.Handle(l.id, l1)
	e.g.Handle(w.id, m)
	e.g.Handle(w.id, w0)
	got := e.texts()[w.id]
	t.Logf("e epoch %d, received from winner: %q", e.g.Epoch(), got)
	if len(got) != 1 {
		t.Errorf("the winner's message never reached e")
	}
}

// A crash-restored replica (mustUpdate) that re-receives a commit it had
// already processed before the crash clears mustUpdate and sends with
// ratchet generations it already used.
func TestRestoredReplicaUpdatesDespiteAReplayedCommit(t *testing.T) {
	b, ms := newGroupOf(t, 2)
	a, c := ms[0], ms[1]
	snap, err := c.g.Snapshot() // saved at an epoch change
	if err != nil {
		t.Fatal(err)
	}
	if err := a.g.Update(); err != nil {
		t.Fatal(err)
	}
	commit := b.lastPublished(a)
	b.settle(t)
	if err := c.g.Send([]byte("m1 before the crash")); err != nil {
		t.Fatal(err)
	}
	b.settle(t)
	// crash: the save of the new epoch did not happen (crash or I/O error)
	c.g.Close()
	g2, err := Restore(snap, c.config(), true)
	if err != nil {
		t.Fatal(err)
	}
	c.g = g2
	g2.Handle(a.id, commit) // re-delivered by anti-entropy
	if err := g2.Send([]byte("m2 after the restore")); err != nil {
		t.Fatal(err)
	}
	st := g2.Stats()
	b.settle(t)
	t.Logf("c epoch %d, a epoch %d, c redone %d, a received %q", g2.Epoch(), a.g.Epoch(), st.Redone, a.texts()[c.id])
	if len(a.texts()[c.id]) != 2 {
		t.Errorf("LOST: a did not receive m2 (same ratchet generation as m1)")
	}
}

// Strangers publishing on the topic fill only a small buffer of their own:
// the member buffer and the state are untouched.
func TestStrangersJunkStaysInItsBudget(t *testing.T) {
	b, ms := newGroupOf(t, 2)
	a, c := ms[0], ms[1]
	if err := c.g.Update(); err != nil {
		t.Fatal(err)
	}
	real := b.lastPublished(c)
	stranger := agentKey(99).ID()
	before := a.g.Stats()
	for i := range 2000 {
		junk := bytes.Clone(real)
		junk[len(junk)-6] = byte(i)
		junk[len(junk)-7] = byte(i >> 8)
		a.g.Handle(stranger, junk)
	}
	a.g.mu.Lock()
	unknown, buffered := a.g.unknownSize, a.g.bufSize
	a.g.mu.Unlock()
	if unknown > UnknownBufferBytes || buffered != 0 || a.g.Stats().Buffered != before.Buffered {
		t.Fatalf("stranger's junk: %d bytes in its buffer (limit %d), %d in the members' buffer", unknown, UnknownBufferBytes, buffered)
	}
	b.settle(t)
	sameState(t, a, c)
}
