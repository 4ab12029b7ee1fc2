package tasklist

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/crdt"
	"github.com/saorsa-labs/x0x-go/core/identity"
)

// heavyTasks is the size of the list the late-joiner tests build: 2,000
// tasks with about a dozen operations each. ML-DSA signing is about ten
// times slower under the race detector, so a race build uses fewer.
func heavyTasks() int {
	switch {
	case testing.Short():
		return 300
	case raceEnabled:
		return 250
	}
	return 2000
}

// history builds, on writers ws (fully connected on hub h, list open to
// every writer), n tasks with a heavy history by rotating writers: every
// task is added, its title edited four times, its description and
// priority twice and its assignee once; it is claimed, completed and
// reopened three times, then claimed again and (every other task)
// completed; every seventh is reopened once more, every 25th moved and
// every 10th removed. About 20 operations per task. It returns the task
// IDs.
func history(t tb, h *hub, ws []*replica, n int) []TaskID {
	t.Helper()
	must := func(err error, what string, i int) {
		t.Helper()
		if err != nil {
			t.Fatalf("task %d: %s: %v", i, what, err)
		}
		flushAll(t, ws...) // the next writer has seen it
	}
	w := func(i, k int) *List { return ws[(i+k)%len(ws)].l }
	ids := make([]TaskID, n)
	for i := range n {
		id, err := w(i, 0).Add(fmt.Sprintf("task %d", i), "first description")
		must(err, "add", i)
		ids[i] = id
	}
	for i, id := range ids {
		for k := 1; k <= 4; k++ {
			title := fmt.Sprintf("task %d, edit %d", i, k)
			must(w(i, k).Update(id, Update{Title: &title}), "title", i)
		}
		for k := 1; k <= 2; k++ {
			desc, prio := fmt.Sprintf("description %d of task %d", k, i), uint8((i+k)%5)
			must(w(i, k+1).Update(id, Update{Description: &desc}), "desc", i)
			up := Update{Priority: &prio}
			if k == 2 {
				who := ws[i%len(ws)].id
				up.Assignee = &who
			}
			must(w(i, k).Update(id, up), "priority", i)
		}
		for k := 0; k < 3; k++ {
			must(w(i, k).Claim(id), "claim", i)
			must(w(i, k).Complete(id), "complete", i)
			must(w(i, k+1).Reopen(id), "reopen", i)
		}
		must(w(i, 2).Claim(id), "last claim", i)
		if i%2 == 0 {
			must(w(i, 2).Complete(id), "last complete", i)
		}
		if i%7 == 0 {
			must(w(i, 0).Reopen(id), "last reopen", i)
		}
		if i%25 == 1 && i > 1 {
			after := ids[i-1]
			must(w(i, 0).Move(id, &after), "move", i)
		}
		if i%10 == 3 {
			must(w(i, 1).Remove(id), "remove", i)
		}
	}
	return ids
}

// heavyFixture is a heavy history (see history), signed once per test
// binary: every signed delta in a causal order, and the tasks.
type heavyFixture struct {
	list ListID
	raws [][]byte
	ids  []TaskID
}

var heavyCache struct {
	once sync.Once
	fx   *heavyFixture
	err  string
}

// heavyHistory returns the heavy fixture of heavyTasks() tasks made by
// agents 1 (the creator), 2 and 3, building it on first use (signing
// dominates: it is shared by the tests of this file).
func heavyHistory(t testing.TB) *heavyFixture {
	t.Helper()
	heavyCache.once.Do(func() {
		ft := &fixtureT{}
		func() {
			defer ft.cleanup()
			defer func() {
				if r := recover(); r != nil && r != errFixture {
					panic(r)
				}
			}()
			h := newHub(true)
			a := h.open(ft, 1, heavySeed, "heavy", nil, nil)
			b := h.open(ft, 2, heavySeed, "", nil, nil)
			c := h.open(ft, 3, heavySeed, "", nil, nil)
			settle(ft, h, a, b, c)
			ids := history(ft, h, []*replica{a, b, c}, heavyTasks())
			settle(ft, h, a, b, c)
			a.l.mu.Lock()
			fx := &heavyFixture{list: a.l.ID(), ids: ids}
			for _, as := range a.l.order {
				raw, _ := a.l.logs[as.author].rawAt(as.seq)
				fx.raws = append(fx.raws, raw)
			}
			a.l.mu.Unlock()
			heavyCache.fx = fx
		}()
		heavyCache.err = ft.msg
	})
	if heavyCache.fx == nil {
		t.Fatalf("building the heavy history: %s", heavyCache.err)
	}
	return heavyCache.fx
}

var heavySeed = ListID{0x4e}

// errFixture unwinds a failed fixture build.
var errFixture = fmt.Errorf("fixture failed")

// fixtureT is the tb the shared fixture is built with (it outlives any
// one test).
type fixtureT struct {
	msg      string
	cleanups []func()
}

func (f *fixtureT) Helper() {}
func (f *fixtureT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(errFixture)
}
func (f *fixtureT) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fixtureT) cleanup() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// feed hands raws to l as catch-up frames from peer.
func feed(t testing.TB, l *List, list ListID, peer identity.PeerID, raws [][]byte, typ uint8) {
	t.Helper()
	for _, fr := range chunk(typ, raws) {
		fr.List = list
		f, err := encodeFrame(fr)
		if err != nil {
			t.Fatalf("%v", err)
		}
		l.handleFrame(true, peer, f)
	}
}

// oldReplica opens agent 1 (the list's creator) on h holding the whole
// heavy history: an old member of the list.
func oldReplica(t testing.TB, h *hub, fx *heavyFixture) *replica {
	t.Helper()
	h.mu.Lock()
	h.created[heavySeed] = fx.list
	h.mu.Unlock()
	rs := make([]*replica, 1)
	for i := range rs {
		rs[i] = h.open(t, byte(i+1), heavySeed, "", nil, nil)
		feed(t, rs[i].l, fx.list, identity.PeerID{0xfe}, fx.raws, frameDeltas)
		if got := len(rs[i].l.order); got != len(fx.raws) {
			t.Fatalf("old replica %d applied %d of %d deltas: %+v", i+1, got, len(fx.raws), rs[i].l.Stats())
		}
	}
	return rs[0]
}

// logBytes is the size of every signed delta l holds.
func logBytes(l *List) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, as := range l.order {
		raw, _ := l.logs[as.author].rawAt(as.seq)
		n += len(raw)
	}
	return n
}

// catchUp runs one catch-up of j from peer until j's version vector
// covers want; it returns the bytes that moved.
func catchUp(t testing.TB, h *hub, j, peer *replica, want crdt.VersionVector) int {
	t.Helper()
	h.mu.Lock()
	before := h.bytes
	h.mu.Unlock()
	j.l.PeerUp(peer.id)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i := 0; j.l.VersionVector().Compare(want) != crdt.After && !j.l.VersionVector().Equal(want); i++ {
		if i == 10000 {
			t.Fatalf("joiner did not catch up: %v\n%+v", j.l.VersionVector(), j.l.Stats())
		}
		for _, r := range []*replica{j, peer, j} {
			if err := r.l.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bytes - before
}

// opInfo describes a delta of a history: key, kind, task, title.
type opInfo struct {
	key   authorSeq
	kind  OpKind
	task  TaskID
	title string
	raw   []byte
}

// describe decodes raws.
func describe(t testing.TB, raws [][]byte) []opInfo {
	t.Helper()
	out := make([]opInfo, len(raws))
	for i, raw := range raws {
		d, err := decodeDelta(raw)
		if err != nil {
			t.Fatalf("%v", err)
		}
		out[i] = opInfo{key: d.key(), kind: d.kind, task: d.task, raw: raw}
		if d.title != nil {
			out[i].title = *d.title
		}
	}
	return out
}

// keptRaws returns the deltas a state transfer from l keeps, in apply
// order.
func keptRaws(l *List) []authorSeq {
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := l.keptSet()
	var out []authorSeq
	for _, as := range l.order {
		if _, ok := kept[as]; ok {
			out = append(out, as)
		}
	}
	return out
}

// ruleDrops sums the drops the receipt rules and checks make.
func ruleDrops(rs ...*replica) uint64 {
	var n uint64
	for _, r := range rs {
		d := r.l.Stats().Drops
		n += d.Malformed + d.BadSignature + d.UnknownAuthor + d.WrongList + d.WrongAgent + d.UnknownTask + d.Invalid +
			d.Equivocation + d.NotWriter + d.BadTime + d.Forbidden + d.PendingFull
	}
	return n
}

// writerRound makes every replica in rs operate on the old tasks ids and
// add one: edit, claim and complete, reopen, move and remove, each on a
// task of its own (k picks the round).
func writerRound(t *testing.T, rs []*replica, ids []TaskID, k int) {
	t.Helper()
	live := func(r *replica, want func(Task) bool, skip int) TaskID {
		n := 0
		for _, tk := range r.l.Snapshot() {
			if want(tk) {
				if n == skip {
					return tk.ID
				}
				n++
			}
		}
		t.Fatalf("no task fits")
		return TaskID{}
	}
	for i, r := range rs {
		pick := i + len(rs)*k
		title := fmt.Sprintf("round %d by %s", k, r.id.Short())
		if err := r.l.Update(live(r, func(Task) bool { return true }, pick), Update{Title: &title}); err != nil {
			t.Fatalf("update: %v", err)
		}
		x := live(r, func(tk Task) bool { return tk.State == Empty }, pick)
		if err := r.l.Claim(x); err != nil {
			t.Fatalf("claim: %v", err)
		}
		if err := r.l.Complete(x); err != nil {
			t.Fatalf("complete: %v", err)
		}
		if err := r.l.Reopen(live(r, func(tk Task) bool { return tk.State == Done }, pick+1)); err != nil {
			t.Fatalf("reopen: %v", err)
		}
		first := live(r, func(Task) bool { return true }, 0)
		if err := r.l.Move(live(r, func(Task) bool { return true }, pick+7), &first); err != nil {
			t.Fatalf("move: %v", err)
		}
		if err := r.l.Remove(live(r, func(Task) bool { return true }, pick+3)); err != nil {
			t.Fatalf("remove: %v", err)
		}
		if _, err := r.l.Add(title, "new"); err != nil {
			t.Fatalf("add: %v", err)
		}
		flushAll(t, rs...)
	}
}

// TestLateJoinerReceivesState: a replica joining a list with a heavy
// history (see history) receives the effective deltas only, far fewer
// bytes than the log, reaches exactly the old replicas' state, accepts
// and applies the deltas of every writer afterwards (also of a writer
// that was cut off while it joined, whose deltas it judges with the
// relaxed rules), makes its own that the others accept, keeps its state
// across a reopen (snapshot and full replay), and serves a state transfer
// itself.
func TestLateJoinerReceivesState(t *testing.T) {
	fx := heavyHistory(t)
	h := newHub(true)
	a := oldReplica(t, h, fx)
	full := logBytes(a.l)
	// The other writers catch up by state transfer too (they hold their
	// own deltas only as far as they are effective).
	b := h.open(t, 2, heavySeed, "", nil, nil)
	c := h.open(t, 3, heavySeed, "", nil, nil)
	catchUp(t, h, b, a, a.l.VersionVector())
	catchUp(t, h, c, a, a.l.VersionVector())
	settle(t, h, a, b, c)

	// c is cut off; it and the others keep working on the same tasks.
	x, y := fx.ids[9], fx.ids[11] // x: c holds the claim
	if tk, _ := a.l.Task(x); tk.State != Claimed || tk.Claimant != c.id {
		t.Fatalf("fixture: task 9 is %v by %s", tk.State, tk.Claimant.Short())
	}
	for _, p := range []*replica{a, b} {
		h.setLink(c.id, p.id, false)
	}
	title, desc, prio := "x, by a", "y, by b", uint8(4)
	if err := a.l.Reopen(x); err != nil {
		t.Fatal(err)
	}
	if err := a.l.Claim(x); err != nil {
		t.Fatal(err)
	}
	if err := a.l.Update(x, Update{Title: &title}); err != nil {
		t.Fatal(err)
	}
	if err := b.l.Update(y, Update{Description: &desc}); err != nil {
		t.Fatal(err)
	}
	if err := c.l.Complete(x); err != nil { // c still holds the claim, as far as it knows
		t.Fatal(err)
	}
	ctitle := "y, by c"
	if err := c.l.Update(y, Update{Title: &ctitle}); err != nil {
		t.Fatal(err)
	}
	if err := c.l.Update(x, Update{Priority: &prio}); err != nil {
		t.Fatal(err)
	}
	flushAll(t, a, b, c)

	// The late joiner (persisted) joins from a.
	st := openStore(t, t.TempDir())
	j := h.open(t, 9, heavySeed, "", st, nil)
	h.setLink(c.id, j.id, false)
	got := catchUp(t, h, j, a, a.l.VersionVector())
	ratio := float64(full) / float64(got)
	t.Logf("late joiner of %d tasks (%d deltas, %d bytes of log) received %d bytes: %.2fx fewer; it skipped %d deltas as superseded, applied %d",
		len(fx.ids), len(fx.raws), full, got, ratio, j.l.Stats().Skipped, j.l.Stats().RemoteOps)
	if ratio < 3 {
		t.Fatalf("the late joiner received %d bytes for a %d-byte log: only %.2fx fewer", got, full, ratio)
	}
	if s := j.l.Stats(); s.Skipped == 0 || s.Unverified == 0 || s.RemoteOps >= uint64(len(fx.raws))/2 {
		t.Fatalf("joiner stats %+v", s)
	}
	if n := ruleDrops(j); n != 0 {
		t.Fatalf("joiner dropped %d deltas of an honest transfer: %+v", n, j.l.Stats().Drops)
	}
	mustEqualSnapshots(t, a, b, j)
	if !equalAccess(a.l.Access(), j.l.Access()) {
		t.Fatalf("access differs: %+v vs %+v", a.l.Access(), j.l.Access())
	}

	// c comes back: everyone converges on its deltas (made before it
	// saw the joiner's checkpoint) and theirs.
	for _, p := range []*replica{a, b, j} {
		h.setLink(c.id, p.id, true)
	}
	for i := 0; i < 5; i++ {
		for _, x := range []*replica{a, b, c, j} {
			for _, y := range []*replica{a, b, c, j} {
				if x != y {
					x.l.PeerUp(y.id)
				}
			}
		}
		for range 4 {
			flushAll(t, a, b, c, j)
		}
	}
	settle(t, h, a, b, c, j)
	all := []*replica{a, b, c, j}
	mustEqualSnapshots(t, all...)
	if tk, _ := j.l.Task(x); tk.State != Done || tk.Claimant != c.id || tk.Priority != prio || tk.Title != title {
		t.Fatalf("task x on the joiner: %+v", tk)
	}
	if tk, _ := j.l.Task(y); tk.Description != desc {
		t.Fatalf("task y on the joiner: %+v", tk)
	}

	// Every writer, the joiner included, keeps working: nobody drops
	// anything.
	before := ruleDrops(all...)
	for k := range 2 {
		writerRound(t, all, fx.ids, k)
		settle(t, h, all...)
	}
	if n := ruleDrops(all...) - before; n != 0 {
		t.Fatalf("%d deltas dropped after the join", n)
	}
	want := mustEqualSnapshots(t, all...)

	// The joiner serves a state transfer itself.
	k := h.open(t, 10, heavySeed, "", nil, nil)
	kGot := catchUp(t, h, k, j, j.l.VersionVector())
	settle(t, h, append(all, k)...)
	mustEqualSnapshots(t, j, k)
	t.Logf("a second joiner caught up from the first with %d bytes", kGot)

	// Reopened from its store, by snapshot and by full replay, the joiner
	// has the same state and still judges deltas alike.
	j.l.mu.Lock()
	wantDump := stateDumpLocked(t, j.l)
	j.l.mu.Unlock()
	wantVV := j.l.VersionVector()
	_ = j.l.Close()
	for _, noSnap := range []bool{false, true} {
		st.noSnapshots = noSnap
		l, err := Open(Config{ID: fx.list, Self: key(9), Store: st, Clock: newTestClock(), Transport: nopTransport{}})
		if err != nil {
			t.Fatalf("reopen (noSnapshots %v): %v", noSnap, err)
		}
		if !equalTasks(l.Snapshot(), want) || !l.VersionVector().Equal(wantVV) {
			t.Fatalf("reopened joiner (noSnapshots %v) differs", noSnap)
		}
		if s := l.Stats(); (s.FromSnapshot == 0) != noSnap || s.Unverified != j.l.Stats().Unverified {
			t.Fatalf("reopened joiner (noSnapshots %v): %+v", noSnap, s)
		}
		l.mu.Lock()
		dump := stateDumpLocked(t, l)
		l.mu.Unlock()
		if !bytes.Equal(dump, wantDump) {
			t.Fatalf("reopened joiner (noSnapshots %v): internal state differs", noSnap)
		}
		_ = l.Close()
	}
}

func equalAccess(x, y Access) bool {
	return x.Creator == y.Creator && x.Open == y.Open && slices.Equal(x.Writers, y.Writers)
}

// TestHostileSenderCannotMakeJoinerDiverge: a sender that withholds
// effective deltas (naming them superseded by the gaps in its numbers)
// and sends superseded ones without what superseded them changes the
// joiner's state, but only until an honest peer answers the joiner's
// next sync request: the joiner names what it skipped, the honest peer
// sends what of it is effective (and what removes what the joiner holds
// stale), and the joiner converges and keeps accepting everyone's deltas.
func TestHostileSenderCannotMakeJoinerDiverge(t *testing.T) {
	fx := heavyHistory(t)
	h := newHub(true)
	a := oldReplica(t, h, fx)
	ops := describe(t, fx.raws)
	a.l.mu.Lock()
	task := func(i int) *taskState { return a.l.tasks[fx.ids[i]] }
	withhold := map[authorSeq]bool{}
	// Task 4: the delta holding its title.
	withhold[authorSeq{task(4).title.Timestamp().Replica, task(4).won[wonTitle]}] = true
	// Task 8: its live claim and completion.
	for _, m := range task(8).marks {
		if task(8).check.Contains(m.elem()) {
			withhold[authorSeq{m.agent, m.seq}] = true
		}
	}
	a.l.mu.Unlock()
	stale := map[authorSeq]bool{}
	firstMark := map[OpKind]bool{}
	for _, op := range ops {
		switch {
		case op.task == fx.ids[5] && op.kind != OpAdd:
			withhold[op.key] = true // task 5: all but its creation
		case op.task == fx.ids[6] && op.kind == OpUpdate && op.title != "":
			if op.title == "task 6, edit 2" {
				stale[op.key] = true // task 6: a superseded title...
			} else {
				withhold[op.key] = true // ...without the later ones
			}
		case op.task == fx.ids[10] && (op.kind == OpClaim || op.kind == OpComplete || op.kind == OpReopen):
			if (op.kind == OpClaim || op.kind == OpComplete) && !firstMark[op.kind] {
				firstMark[op.kind] = true
				stale[op.key] = true // task 10: its first claim and completion...
			} else {
				withhold[op.key] = true // ...without the reopens and the rest
			}
		}
	}
	kept := map[authorSeq]bool{}
	for _, as := range keptRaws(a.l) {
		kept[as] = true
	}
	var lie [][]byte
	for _, op := range ops {
		if (kept[op.key] && !withhold[op.key]) || stale[op.key] {
			lie = append(lie, op.raw)
		}
	}

	j := h.open(t, 9, heavySeed, "", nil, nil)
	h.setLink(j.id, a.id, false) // the liar is all it hears from
	liar := identity.PeerID{0x66}
	feed(t, j.l, fx.list, liar, lie, frameState)
	if !j.l.VersionVector().Equal(a.l.VersionVector()) {
		t.Fatalf("the joiner did not take the liar's transfer whole")
	}
	view := func(r *replica, i int) Task {
		tk, err := r.l.Task(fx.ids[i])
		if err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
		return tk
	}
	for _, i := range []int{4, 5, 6, 8, 10} {
		if x, y := view(a, i), view(j, i); equalTasks([]Task{x}, []Task{y}) {
			t.Fatalf("task %d is the same on the joiner: the lie had no effect", i)
		}
	}
	if got := view(j, 6).Title; got != "task 6, edit 2" {
		t.Fatalf("task 6 on the joiner: title %q, want the stale one", got)
	}
	if got := view(j, 10); got.State != Done || got.Claimant == view(a, 10).Claimant {
		t.Fatalf("task 10 on the joiner: %+v, want the stale completion", got)
	}

	// An honest peer answers the joiner's next sync: it converges.
	h.setLink(j.id, a.id, true)
	settle(t, h, a, j)
	mustEqualSnapshots(t, a, j)
	if s := j.l.Stats(); s.Filled == 0 || ruleDrops(j) != 0 {
		t.Fatalf("joiner stats after the honest sync: %+v", s)
	}
	// And keeps taking everyone's deltas, on the tasks lied about too.
	for _, i := range []int{4, 5, 6, 8, 10} {
		title := fmt.Sprintf("after the lie %d", i)
		if err := a.l.Update(fx.ids[i], Update{Title: &title}); err != nil {
			t.Fatal(err)
		}
		if err := j.l.Reopen(fx.ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	writerRound(t, []*replica{a, j}, fx.ids, 0)
	settle(t, h, a, j)
	mustEqualSnapshots(t, a, j)
	if n := ruleDrops(a, j); n != 0 {
		t.Fatalf("%d deltas dropped after the lie was repaired", n)
	}
}

// smallList opens the creator (agent 1) of an open list on h with n
// tasks, each retitled edits times and claimed and completed by agent 2,
// which it returns too.
func smallList(t *testing.T, h *hub, seed ListID, n, edits int) (a, b *replica, ids []TaskID) {
	t.Helper()
	a = h.open(t, 1, seed, "small", nil, nil)
	b = h.open(t, 2, seed, "", nil, nil)
	settle(t, h, a, b)
	for i := range n {
		id, err := a.l.Add(fmt.Sprintf("task %d", i), "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	flushAll(t, a, b)
	for i, id := range ids {
		for k := range edits {
			title := fmt.Sprintf("task %d, edit %d", i, k)
			w := []*replica{a, b}[k%2]
			if err := w.l.Update(id, Update{Title: &title}); err != nil {
				t.Fatal(err)
			}
			flushAll(t, a, b)
		}
		if err := b.l.Claim(id); err != nil {
			t.Fatal(err)
		}
		if err := b.l.Complete(id); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, h, a, b)
	return a, b, ids
}

// TestHostileWriterFarAheadNumbers: a writer signing a delta numbered far
// beyond its history, sent as part of a compacted answer, makes the
// receiver skip the numbers below it only if the delta passes the rules
// (then everyone ends up taking it alike, and the skip costs one range),
// and not at all if it does not (the announced skip is withdrawn).
func TestHostileWriterFarAheadNumbers(t *testing.T) {
	h := newHub(true)
	a, _, ids := smallList(t, h, ListID{7}, 3, 1)
	j := h.open(t, 9, ListID{7}, "", nil, nil)
	m := h.open(t, 7, ListID{7}, "", nil, nil)
	settle(t, h, a, j, m)
	if _, err := m.l.Add("m's task", ""); err != nil {
		t.Fatal(err)
	}
	settle(t, h, a, j, m)
	for _, p := range []*replica{a, j} {
		h.setLink(m.id, p.id, false)
	}
	mID := m.kp.ID()
	x := ids[0]
	// m's numbers in its own replica are far behind: forge from there.
	forgeFar := func(seq uint64, kind OpKind, agent identity.AgentID, elems ...checkElem) []byte {
		deps := a.l.VersionVector()
		deps.Set(mID, seq-1)
		title := "far ahead"
		b := bodyWire{List: a.l.ID(), Author: mID[:], Seq: seq, Deps: deps, Wall: 1_700_000_000_900, Kind: uint8(kind), Task: &x}
		s := crdt.NewORSet[checkElem](mID)
		out := crdt.NewORSetDelta[checkElem]()
		for _, e := range append([]checkElem{aliveElem}, elems...) {
			d, err := s.Add(e)
			if err != nil {
				t.Fatal(err)
			}
			if err := out.Join(d); err != nil {
				t.Fatal(err)
			}
		}
		if kind == OpUpdate {
			b.Title = &title
		} else {
			b.Agent = agent[:]
		}
		return forge(t, m.kp, b, "", nil, out)
	}
	hostile := identity.PeerID{0x77}
	// A far-ahead delta that breaks a rule any replica checks alike (a
	// claim for another agent): rejected, and nothing is skipped.
	bad := forgeFar(2_000_000, OpClaim, a.id, checkElem{Kind: elemClaimed, Agent: agentBytes(a.id), Wall: 1_700_000_000_900})
	feed(t, j.l, a.l.ID(), hostile, [][]byte{bad}, frameState)
	if s := j.l.Stats(); s.Drops.WrongAgent != 1 || s.Skipped != 0 || s.Unverified != 0 || j.l.VersionVector().Get(mID) != 1 {
		t.Fatalf("a rejected far-ahead delta left a skip: vv %d, %+v", j.l.VersionVector().Get(mID), s)
	}
	// One that waits for a dependency and finds no room to wait: dropped,
	// and what it announced withdrawn.
	j.l.mu.Lock()
	j.l.maxPending = 0
	j.l.mu.Unlock()
	waiting := func() []byte {
		deps := a.l.VersionVector()
		deps.Set(mID, 2_999_999)
		deps.Set(a.id, deps.Get(a.id)+5)
		title := "waits"
		b := bodyWire{List: a.l.ID(), Author: mID[:], Seq: 3_000_000, Deps: deps, Wall: 1_700_000_000_900, Kind: uint8(OpUpdate), Task: &x, Title: &title}
		return forge(t, m.kp, b, "", nil, checkDelta(t, mID, aliveElem))
	}()
	feed(t, j.l, a.l.ID(), hostile, [][]byte{waiting}, frameState)
	if s := j.l.Stats(); s.Drops.PendingFull != 1 || s.Skipped != 0 || s.Unverified != 0 || j.l.VersionVector().Get(mID) != 1 {
		t.Fatalf("a far-ahead delta that could not wait left a skip: vv %d, %+v", j.l.VersionVector().Get(mID), s)
	}
	j.l.mu.Lock()
	j.l.maxPending = MaxPending
	j.l.mu.Unlock()
	// One that passes: taken, with one range skipped, and every replica
	// that syncs takes it alike.
	good := forgeFar(1_000_000, OpUpdate, identity.AgentID{})
	feed(t, j.l, a.l.ID(), hostile, [][]byte{good}, frameState)
	if s := j.l.Stats(); s.Skipped != 999_998 || j.l.VersionVector().Get(mID) != 1_000_000 {
		t.Fatalf("far-ahead delta: vv %d, %+v", j.l.VersionVector().Get(mID), s)
	}
	j.l.mu.Lock()
	runs := j.l.skip.runs()
	j.l.mu.Unlock()
	if runs != 1 {
		t.Fatalf("the skip takes %d ranges", runs)
	}
	settle(t, h, a, j)
	mustEqualSnapshots(t, a, j)
	if tk, _ := a.l.Task(x); tk.Title != "far ahead" {
		t.Fatalf("task x on the old replica: %+v", tk)
	}
	if n := ruleDrops(a); n != 0 {
		t.Fatalf("old replica dropped %d deltas", n)
	}
}

// TestTamperedDeltasAreRejected: a delta of a state transfer or of a
// repair whose bytes were changed fails its signature: it is dropped,
// skips nothing and changes nothing; the honest peer's answer then brings
// the genuine one.
func TestTamperedDeltasAreRejected(t *testing.T) {
	h := newHub(true)
	a, b, ids := smallList(t, h, ListID{8}, 30, 4)
	j := h.open(t, 9, ListID{8}, "", nil, nil)
	h.setLink(j.id, a.id, false)
	h.setLink(j.id, b.id, false)
	ops := describe(t, func() [][]byte {
		var raws [][]byte
		a.l.mu.Lock()
		defer a.l.mu.Unlock()
		for _, as := range a.l.order {
			raw, _ := a.l.logs[as.author].rawAt(as.seq)
			raws = append(raws, raw)
		}
		return raws
	}())
	kept := map[authorSeq]bool{}
	for _, as := range keptRaws(a.l) {
		kept[as] = true
	}
	// The title of task 3, as b last set it, tampered with.
	var target authorSeq
	var raws [][]byte
	for _, op := range ops {
		if !kept[op.key] {
			continue
		}
		raw := op.raw
		if op.task == ids[3] && op.title == "task 3, edit 3" {
			raw = bytes.Clone(raw)
			raw[bytes.Index(raw, []byte("edit 3"))] ^= 1
			target = op.key
		}
		raws = append(raws, raw)
	}
	if target.seq == 0 {
		t.Fatal("no delta to tamper with")
	}
	// The joiner has the list's beginning (up to b's first delta, so b's
	// key is known and the tampered delta's signature is checked on
	// receipt), then the transfer.
	var start [][]byte
	for _, op := range ops {
		start = append(start, op.raw)
		if op.key.author == target.author {
			break
		}
	}
	feed(t, j.l, a.l.ID(), identity.PeerID{0x88}, start, frameDeltas)
	j.l.mu.Lock()
	known := j.l.keys[target.author] != nil
	j.l.mu.Unlock()
	if !known {
		t.Fatal("the tampered delta's author is not known yet")
	}
	feed(t, j.l, a.l.ID(), identity.PeerID{0x88}, raws, frameState)
	if s := j.l.Stats(); s.Drops.BadSignature != 1 {
		t.Fatalf("tampered delta not rejected: %+v", s.Drops)
	}
	j.l.mu.Lock()
	_, applied := j.l.logs[target.author].stamp(target.seq)
	skipped := j.l.skip.has(target.author, target.seq)
	j.l.mu.Unlock()
	if applied {
		t.Fatal("tampered delta applied")
	}
	if tk, _ := j.l.Task(ids[3]); tk.Title == "task 3, edit 3" {
		t.Fatalf("task 3 shows the tampered delta's title: %+v", tk)
	}
	// Later deltas of its author skipped its number (unverified): a
	// tampered copy of it sent as a repair is rejected too.
	if !skipped {
		t.Fatal("the tampered delta's number was not skipped")
	}
	unverified := j.l.Stats().Unverified
	for _, op := range ops {
		if op.key == target {
			raw := bytes.Clone(op.raw)
			raw[len(raw)-1] ^= 1
			feed(t, j.l, a.l.ID(), identity.PeerID{0x88}, [][]byte{raw}, frameDeltas)
		}
	}
	if s := j.l.Stats(); s.Drops.BadSignature != 2 || s.Unverified != unverified || s.Filled != 0 {
		t.Fatalf("tampered late delta: %+v", s)
	}
	h.setLink(j.id, a.id, true)
	h.setLink(j.id, b.id, true)
	settle(t, h, a, b, j)
	mustEqualSnapshots(t, a, b, j)
	if tk, _ := j.l.Task(ids[3]); tk.Title != "task 3, edit 3" {
		t.Fatalf("task 3 after the honest sync: %+v", tk)
	}
}

// TestSkipsEncoding: skip sets round-trip through encodeSkips and
// decodeSkips; bad encodings are typed errors.
func TestSkipsEncoding(t *testing.T) {
	var s seqSet
	s.add(key(1).ID(), 2, 9)
	s.add(key(1).ID(), 11, 11)
	s.add(key(2).ID(), 1, crdt.MaxCounter)
	s.add(key(3).ID(), 5, 5)
	got, err := decodeSkips(encodeSkips(&s, maxSkipBytes), maxSkipBytes)
	if err != nil {
		t.Fatal(err)
	}
	if !equalSkips(&got, &s) {
		t.Fatalf("round trip: %v, want %v", got.m, s.m)
	}
	if part := encodeSkips(&s, 80); len(part) > 80 {
		t.Fatalf("limited encoding of %d bytes", len(part))
	} else if p, err := decodeSkips(part, maxSkipBytes); err != nil || p.count() == 0 || p.count() >= s.count() {
		t.Fatalf("partial encoding: %v %v", p.m, err)
	}
	a := key(1).ID()
	// Two runs, each within range, the second starting past 2^53-1.
	sumBeyond := append(append([]byte{1}, idBytes(a)...), 2)
	for _, v := range []uint64{0, 1<<52 - 1, 1 << 52, 0} {
		sumBeyond = binary.AppendUvarint(sumBeyond, v)
	}
	for name, b := range map[string][]byte{
		"truncated":         encodeSkips(&s, maxSkipBytes)[:40],
		"trailing":          append(encodeSkips(&s, maxSkipBytes), 0),
		"authors unordered": append(append(append([]byte{2}, idBytes(key(2).ID())...), 1, 0, 0), append(idBytes(a), 1, 0, 0)...),
		"no runs":           append(append([]byte{1}, idBytes(a)...), 0),
		"beyond 2^53":       append(append([]byte{1}, idBytes(a)...), 1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10),
		"sum beyond 2^53":   sumBeyond,
		"huge count":        {0xff, 0xff, 0xff, 0x0f},
		"over the limit":    make([]byte, maxSkipBytes+1),
	} {
		if _, err := decodeSkips(b, maxSkipBytes); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func equalSkips(x, y *seqSet) bool {
	if x.count() != y.count() || len(x.m) != len(y.m) {
		return false
	}
	for a, rs := range x.m {
		if !slices.Equal(rs, y.m[a]) {
			return false
		}
	}
	return true
}

func idBytes(a identity.AgentID) []byte { return slices.Clone(a[:]) }

// TestFarBehindReplicaCatchesUpByStateTransfer: a replica that holds the
// first third of the heavy history (claims since reopened, titles since
// changed, counters since moved on) catches up by state transfer too: it
// skips the rest of what is superseded, ends with exactly the old
// replica's state, and keeps accepting and making deltas.
func TestFarBehindReplicaCatchesUpByStateTransfer(t *testing.T) {
	fx := heavyHistory(t)
	h := newHub(true)
	a := oldReplica(t, h, fx)
	r := h.open(t, 4, heavySeed, "", nil, nil)
	h.setLink(r.id, a.id, false)
	// It has the history up to the first completion of a task a third of
	// the way in: that claim and completion were reopened since.
	q := len(fx.ids) / 3
	for q%7 == 0 || q%10 == 3 || q%25 == 1 {
		q++
	}
	ops := describe(t, fx.raws)
	cut := 1 + slices.IndexFunc(ops, func(op opInfo) bool { return op.task == fx.ids[q] && op.kind == OpComplete })
	feed(t, r.l, fx.list, a.id, fx.raws[:cut], frameDeltas)
	if got := len(r.l.order); got != cut {
		t.Fatalf("the far-behind replica applied %d of %d", got, cut)
	}
	if tk, _ := r.l.Task(fx.ids[q]); tk.State != Done {
		t.Fatalf("task %d on the far-behind replica: %+v", q, tk)
	}
	h.setLink(r.id, a.id, true)
	rest := logBytes(a.l) - logBytes(r.l)
	got := catchUp(t, h, r, a, a.l.VersionVector())
	t.Logf("a replica holding a third of the history caught up with %d bytes (the rest of the log is %d)", got, rest)
	if s := r.l.Stats(); s.Skipped == 0 || ruleDrops(r) != 0 {
		t.Fatalf("far-behind replica: %+v", s)
	}
	settle(t, h, a, r)
	mustEqualSnapshots(t, a, r)
	writerRound(t, []*replica{a, r}, fx.ids, 0)
	settle(t, h, a, r)
	mustEqualSnapshots(t, a, r)
	if n := ruleDrops(a, r); n != 0 {
		t.Fatalf("%d deltas dropped", n)
	}
}

// TestStateTransferOverKnownTask: a replica that holds a task, then
// misses hundreds of edits of it, gets only the last one: its check-set
// counters jump past those of the edits it skipped, which the rules it
// applies to a state transfer allow.
func TestStateTransferOverKnownTask(t *testing.T) {
	h := newHub(true)
	a := h.open(t, 1, ListID{6}, "edits", nil, nil)
	r := h.open(t, 2, ListID{6}, "", nil, nil)
	x, err := a.l.Add("x", "")
	if err != nil {
		t.Fatal(err)
	}
	settle(t, h, a, r)
	h.setLink(a.id, r.id, false)
	for i := range compactMin + 20 {
		title := fmt.Sprintf("x, edit %d", i)
		if err := a.l.Update(x, Update{Title: &title}); err != nil {
			t.Fatal(err)
		}
	}
	h.setLink(a.id, r.id, true)
	got := catchUp(t, h, r, a, a.l.VersionVector())
	if s := r.l.Stats(); s.Skipped != compactMin+19 || s.RemoteOps != 3 || ruleDrops(r) != 0 {
		t.Fatalf("stats %+v after %d bytes", s, got)
	}
	mustEqualSnapshots(t, a, r)
}

// TestLaggingWriterCompletionIsRepaired: a writer cut off while a reopen
// removed its claim completes the task (it still holds the claim, as far
// as it knows). A replica that joined by state transfer meanwhile skipped
// that claim, so it refuses the completion; it then asks its peers to
// fill in what it skipped again, an honest one sends the claim, and the
// completion, brought again by catch-up, applies: everyone converges.
func TestLaggingWriterCompletionIsRepaired(t *testing.T) {
	h := newHub(true)
	clk := newTestClock()
	a := h.open(t, 1, ListID{4}, "lag", nil, clk)
	c := h.open(t, 3, ListID{4}, "", nil, clk)
	x, err := a.l.Add("x", "")
	if err != nil {
		t.Fatal(err)
	}
	y, err := a.l.Add("y", "")
	if err != nil {
		t.Fatal(err)
	}
	settle(t, h, a, c)
	other := "c was here"
	for _, op := range []func() error{ // c's claim is neither its first delta nor its latest
		func() error { return c.l.Update(y, Update{Title: &other}) },
		func() error { return c.l.Claim(x) },
		func() error { return c.l.Update(y, Update{Title: &other}) },
	} {
		if err := op(); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, h, a, c)
	h.setLink(a.id, c.id, false)
	if err := a.l.Reopen(x); err != nil {
		t.Fatal(err)
	}
	if err := a.l.Claim(x); err != nil {
		t.Fatal(err)
	}
	for i := range compactMin + 10 {
		title := fmt.Sprintf("y, edit %d", i)
		if err := a.l.Update(y, Update{Title: &title}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.l.Complete(x); err != nil {
		t.Fatal(err)
	}
	j := h.open(t, 9, ListID{4}, "", nil, clk)
	h.setLink(j.id, c.id, false)
	catchUp(t, h, j, a, a.l.VersionVector())
	j.l.mu.Lock()
	var claimSeq uint64
	for _, m := range a.l.tasks[x].marks {
		if m.agent == c.id && !m.done {
			claimSeq = m.seq
		}
	}
	skipped := j.l.skip.has(c.id, claimSeq)
	j.l.mu.Unlock()
	if claimSeq == 0 || !skipped {
		t.Fatalf("c's claim (seq %d) was not skipped by the joiner", claimSeq)
	}
	settle(t, h, a, j) // the joiner has told a what it skipped
	// c comes back to a (a takes the completion, and keeps c's claim for
	// it now); the joiner gets the completion from a, refuses it, asks a
	// again to fill in what it skipped, and takes it.
	h.setLink(a.id, c.id, true)
	settle(t, h, a, c)
	for range 2 { // the joiner refuses the completion, asks again, is repaired
		j.l.PeerUp(a.id)
		flushAll(t, j, a, j, a)
	}
	if s := j.l.Stats(); s.Drops.Forbidden == 0 || s.Filled == 0 || j.l.VersionVector().Get(c.id) == a.l.VersionVector().Get(c.id) {
		t.Fatalf("the joiner did not refuse the completion, then get the claim: %+v", s)
	}
	clk.Advance(2 * gapSyncDelay) // the next sync round is not a repeat of the last one
	settle(t, h, a, j)
	settle(t, h, a, j)
	h.setLink(j.id, c.id, true)
	settle(t, h, a, c, j)
	mustEqualSnapshots(t, a, c, j)
	if tk, _ := j.l.Task(x); tk.State != Done || tk.Claimant != c.id {
		t.Fatalf("task x on the joiner: %+v", tk)
	}
	if s := j.l.Stats(); s.Drops.Forbidden == 0 || s.Filled == 0 {
		t.Fatalf("the joiner did not refuse then repair: %+v", s)
	}
}
