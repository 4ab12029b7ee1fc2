package tasklist

import (
	"bytes"
	"slices"
	"testing"

	"github.com/saorsa-labs/x0x-go/core/crdt"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// forge signs body b with signer (whatever b.Author says) under the
// purpose of b's kind, or under purpose if not empty.
func forge(t *testing.T, signer *identity.KeyPair, b bodyWire, purpose string, order *crdt.RGADelta[TaskID], check *crdt.ORSetDelta[checkElem]) []byte {
	t.Helper()
	b.V = deltaVersion
	var err error
	if order != nil {
		if b.Order, err = wire.Marshal(order); err != nil {
			t.Fatal(err)
		}
	}
	if check != nil {
		if b.Check, err = wire.Marshal(check); err != nil {
			t.Fatal(err)
		}
	}
	body, err := wire.Marshal(&b)
	if err != nil {
		t.Fatal(err)
	}
	if purpose == "" {
		purpose = OpKind(b.Kind).purpose()
	}
	raw, err := wire.Marshal(signedWire{Body: body, Sig: signer.Sign(purpose, body)})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func broadcastFrame(t *testing.T, list ListID, raw []byte) []byte {
	t.Helper()
	f, err := encodeFrame(&frameWire{T: frameDelta, List: list, Deltas: [][]byte{raw}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// checkDelta builds a check-set delta minted by author with the given
// elements (counters from 1).
func checkDelta(t *testing.T, author identity.AgentID, elems ...checkElem) *crdt.ORSetDelta[checkElem] {
	t.Helper()
	s := crdt.NewORSet[checkElem](author)
	out := crdt.NewORSetDelta[checkElem]()
	for _, e := range elems {
		d, err := s.Add(e)
		if err != nil {
			t.Fatal(err)
		}
		if err := out.Join(d); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestForgedDeltasNeverChangeState(t *testing.T) {
	h := newHub(true)
	st := openStore(t, t.TempDir())
	a := h.open(t, 1, ListID{1}, "list", nil, nil)
	r := h.open(t, 2, ListID{1}, "", st, nil)
	m := key(3) // a member whose first delta r has
	mr := h.open(t, 3, ListID{1}, "", nil, nil)
	settle(t, h, a, r, mr)
	x, _ := a.l.Add("x", "")
	_, _ = mr.l.Add("m's task", "")
	settle(t, h, a, r, mr)
	h.setLink(mr.id, r.id, false) // m's real later deltas do not reach r
	h.setLink(mr.id, a.id, false)

	// A genuine delta from a, captured while a is cut off from r.
	h.setLink(a.id, r.id, false)
	title := "genuine"
	if err := a.l.Update(x, Update{Title: &title}); err != nil {
		t.Fatal(err)
	}
	a.l.mu.Lock()
	own := rawsOf(a.l, a.id)
	genuine := slices.Clone(own[len(own)-1])
	a.l.mu.Unlock()

	before := r.l.Snapshot()
	beforeVV := r.l.VersionVector()
	storedBefore := storedDeltas(t, st, a.l.ID())

	mID := m.ID()
	rVV := r.l.VersionVector()
	next := rVV.Get(mID) + 1
	alive := checkElem{Kind: elemAlive}
	claimFor := func(agent identity.AgentID, ts crdt.Timestamp) checkElem {
		return checkElem{Kind: elemClaimed, Agent: agentBytes(agent), Wall: ts.Wall, Logical: ts.Logical}
	}
	ts := crdt.Timestamp{Wall: 1_700_000_000_500, Replica: mID}
	base := func(kind OpKind) bodyWire {
		return bodyWire{List: a.l.ID(), Author: mID[:], Seq: next, Deps: rVV.Clone(), Wall: ts.Wall, Kind: uint8(kind), Task: &x}
	}
	aID := a.id
	tampered := slices.Clone(genuine)
	tampered[bytes.Index(tampered, []byte("genuine"))] ^= 1

	cases := []struct {
		name  string
		raw   []byte
		count func(Drops) uint64
	}{
		{"tampered field", tampered, func(d Drops) uint64 { return d.BadSignature }},
		{"wrong signer", func() []byte {
			b := base(OpClaim)
			b.Agent = mID[:]
			return forge(t, key(4), b, "", nil, checkDelta(t, mID, alive, claimFor(mID, ts)))
		}(), func(d Drops) uint64 { return d.BadSignature }},
		{"wrong purpose", func() []byte {
			b := base(OpClaim)
			b.Agent = mID[:]
			return forge(t, m, b, wire.PurposeTaskUpdate, nil, checkDelta(t, mID, alive, claimFor(mID, ts)))
		}(), func(d Drops) uint64 { return d.BadSignature }},
		{"claim for another agent", func() []byte {
			b := base(OpClaim)
			b.Agent = aID[:]
			return forge(t, m, b, "", nil, checkDelta(t, mID, alive, claimFor(aID, ts)))
		}(), func(d Drops) uint64 { return d.WrongAgent }},
		{"claim element for another agent", func() []byte {
			b := base(OpClaim)
			b.Agent = mID[:]
			return forge(t, m, b, "", nil, checkDelta(t, mID, alive, claimFor(aID, ts)))
		}(), func(d Drops) uint64 { return d.WrongAgent }},
		{"completion for another agent", func() []byte {
			b := base(OpComplete)
			b.Agent = aID[:]
			e := claimFor(aID, ts)
			e.Kind = elemDone
			return forge(t, m, b, "", nil, checkDelta(t, mID, alive, e))
		}(), func(d Drops) uint64 { return d.WrongAgent }},
		{"check dots minted for another agent", func() []byte {
			b := base(OpClaim)
			b.Agent = mID[:]
			return forge(t, m, b, "", nil, checkDelta(t, aID, alive, claimFor(mID, ts)))
		}(), func(d Drops) uint64 { return d.WrongAgent }},
		{"claim stamped with another time", func() []byte {
			b := base(OpClaim)
			b.Agent = mID[:]
			return forge(t, m, b, "", nil, checkDelta(t, mID, alive, claimFor(mID, crdt.Timestamp{Wall: 1})))
		}(), func(d Drops) uint64 { return d.Invalid }},
		{"wrong list", func() []byte {
			b := base(OpUpdate)
			b.List = ListID{2}
			b.Title = &title
			return forge(t, m, b, "", nil, checkDelta(t, mID, alive))
		}(), func(d Drops) uint64 { return d.WrongList }},
		{"unknown task", func() []byte {
			b := base(OpUpdate)
			b.Task = &TaskID{0xee}
			b.Title = &title
			return forge(t, m, b, "", nil, checkDelta(t, mID, alive))
		}(), func(d Drops) uint64 { return d.UnknownTask }},
		{"add with a made-up task ID", func() []byte {
			b := base(OpAdd)
			b.Task = &TaskID{0xab}
			b.Title, b.Desc = &title, &title
			rga := crdt.NewRGA[TaskID](mID, crdt.RGAOptions{})
			_, od, _ := rga.InsertAt(0, TaskID{0xab})
			return forge(t, m, b, "", od, checkDelta(t, mID, alive))
		}(), func(d Drops) uint64 { return d.Invalid }},
		{"counter far ahead", func() []byte {
			b := base(OpUpdate)
			b.Title = &title
			s := crdt.NewORSet[checkElem](mID)
			for range 5 {
				_, _ = s.Add(checkElem{Kind: elemClaimed, Agent: agentBytes(mID)})
			}
			_ = s.Remove(checkElem{Kind: elemClaimed, Agent: agentBytes(mID)})
			d, _ := s.Add(alive)
			return forge(t, m, b, "", nil, d)
		}(), func(d Drops) uint64 { return d.Invalid }},
		{"malformed", []byte{0x83, 0x01}, func(d Drops) uint64 { return d.Malformed }},
	}
	for _, c := range cases {
		n := c.count(r.l.Stats().Drops)
		r.l.HandleBroadcast(mID, broadcastFrame(t, a.l.ID(), c.raw))
		flushAll(t, r)
		if got := c.count(r.l.Stats().Drops); got != n+1 {
			t.Errorf("%s: drop counter %d -> %d, want +1 (drops %+v)", c.name, n, got, r.l.Stats().Drops)
		}
		if !equalTasks(r.l.Snapshot(), before) {
			t.Errorf("%s changed state", c.name)
		}
	}
	if !equalTasks(r.l.Snapshot(), before) || !r.l.VersionVector().Equal(beforeVV) {
		t.Fatalf("forged deltas changed state: %s", fmtTasks(r.l.Snapshot()))
	}
	if got := storedDeltas(t, st, a.l.ID()); got != storedBefore {
		t.Fatalf("forged deltas persisted: %d -> %d records", storedBefore, got)
	}

	// The genuine delta applies; replaying it changes nothing.
	r.l.HandleBroadcast(a.id, broadcastFrame(t, a.l.ID(), genuine))
	flushAll(t, r)
	if got, _ := r.l.Task(x); got.Title != "genuine" {
		t.Fatalf("genuine delta not applied: %+v", got)
	}
	after := r.l.Snapshot()
	dups := r.l.Stats().Duplicates
	r.l.HandleBroadcast(a.id, broadcastFrame(t, a.l.ID(), genuine))
	flushAll(t, r)
	if r.l.Stats().Duplicates != dups+1 || !equalTasks(r.l.Snapshot(), after) {
		t.Fatal("replayed delta not ignored")
	}

	// The forged deltas did not use up m's sequence number: m's real next
	// delta still applies once m reconnects.
	if err := mr.l.Claim(x); err != nil {
		t.Fatal(err)
	}
	h.setLink(mr.id, r.id, true)
	h.setLink(mr.id, a.id, true)
	h.setLink(a.id, r.id, true)
	settle(t, h, a, r, mr)
	if got, _ := r.l.Task(x); got.State != Claimed || got.Claimant != mID {
		t.Fatalf("m's genuine claim: %+v", got)
	}
}

func TestUnknownAuthorDeltaIsHeldNotApplied(t *testing.T) {
	r := openSolo(t, 1, nil)
	stranger := key(7)
	sID := stranger.ID()
	var deps crdt.VersionVector
	deps.Set(sID, 1)
	title := "t"
	b := bodyWire{List: r.ID(), Author: sID[:], Seq: 2, Deps: deps, Wall: 1, Kind: uint8(OpUpdate), Task: &TaskID{1}, Title: &title}
	raw := forge(t, stranger, b, "", nil, checkDelta(t, sID, checkElem{Kind: elemAlive}))
	r.HandleBroadcast(sID, broadcastFrame(t, r.ID(), raw))
	ctx := t.Context()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s := r.Stats(); s.Pending != 1 || s.RemoteOps != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestSeqOneKeyMustHashToAuthor: a first delta whose public key is not
// the author's is rejected.
func TestSeqOneKeyMustHashToAuthor(t *testing.T) {
	r := openSolo(t, 1, nil)
	victim, thief := key(5).ID(), key(6)
	name := "hijack"
	b := bodyWire{List: r.ID(), Author: victim[:], Seq: 1, Kind: uint8(OpInit), Name: &name, Nonce: make([]byte, 16), PubKey: thief.Public().Bytes()}
	r.HandleBroadcast(victim, broadcastFrame(t, r.ID(), forge(t, thief, b, "", nil, nil)))
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r.Stats().Drops.BadSignature != 1 || r.Name() != "solo" || r.VersionVector().Get(victim) != 0 {
		t.Fatalf("stats %+v name %q", r.Stats(), r.Name())
	}
}

// TestPendingJunkIsEvictedForVerifiedDeltas: deltas from made-up authors
// (unverifiable) cannot crowd a real out-of-order delta out of the
// pending buffer.
func TestPendingJunkIsEvictedForVerifiedDeltas(t *testing.T) {
	h := newHub(false)
	a := h.open(t, 1, ListID{1}, "p", nil, nil)
	r := h.open(t, 2, ListID{1}, "", nil, nil)
	r.l.mu.Lock()
	r.l.maxPending = 2
	r.l.mu.Unlock()
	// r learns a's key.
	if _, err := a.l.Add("x", ""); err != nil {
		t.Fatal(err)
	}
	for deliverOne(t, h, 0, true) {
	}
	// Junk from two strangers fills the buffer.
	for _, n := range []byte{7, 8} {
		s := key(n)
		sID := s.ID()
		var deps crdt.VersionVector
		deps.Set(sID, 1)
		title := "junk"
		b := bodyWire{List: a.l.ID(), Author: sID[:], Seq: 2, Deps: deps, Kind: uint8(OpUpdate), Task: &TaskID{1}, Title: &title}
		r.l.HandleBroadcast(sID, broadcastFrame(t, a.l.ID(), forge(t, s, b, "", nil, checkDelta(t, sID, checkElem{Kind: elemAlive}))))
	}
	flushAll(t, r)
	if r.l.Stats().Pending != 2 {
		t.Fatalf("pending %d", r.l.Stats().Pending)
	}
	// a's next two deltas arrive out of order: the later one is held,
	// evicting junk, and applies once the earlier one arrives.
	x := a.l.Snapshot()[0].ID
	_ = a.l.Claim(x)
	_ = a.l.Complete(x)
	h.mu.Lock()
	var bc []msg
	for _, m := range h.queue {
		if m.broadcast && m.to == r.id {
			bc = append(bc, m)
		}
	}
	h.queue = nil
	h.mu.Unlock()
	if len(bc) != 2 {
		t.Fatalf("%d broadcasts queued", len(bc))
	}
	first, second := bc[0], bc[1]
	deliver(r.l, second)
	flushAll(t, r)
	if s := r.l.Stats(); s.Pending != 2 || s.Drops.PendingFull != 1 {
		t.Fatalf("after out-of-order delta: %+v", s)
	}
	deliver(r.l, first)
	flushAll(t, r)
	if got, _ := r.l.Task(x); got.State != Done {
		t.Fatalf("held delta not applied: %+v", got)
	}
}
