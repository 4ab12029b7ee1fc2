package tasklist

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/crdt"
	"github.com/saorsa-labs/x0x-go/core/identity"
)

// rogue makes r ignore its own replica's write checks: it believes it is a
// writer and builds deltas as an attacker with a modified client would.
// Other replicas judge those deltas by the receipt rules.
func rogue(r *replica) {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	cur := &r.l.access[len(r.l.access)-1]
	ws := map[identity.AgentID]bool{r.id: true}
	for a := range cur.writers {
		ws[a] = true
	}
	cur.writers = ws
}

// backdate makes r's next timestamps start at wall (its hybrid logical
// clock forgets what it has seen).
func backdate(r *replica, wall time.Time) {
	clk := newTestClock()
	clk.now = wall
	r.l.mu.Lock()
	r.l.hlc = crdt.NewHLC(clk, r.l.selfID, 0)
	r.l.mu.Unlock()
}

// forceOp makes r's client sign and send a claim or completion of task id
// without the local API's checks.
func forceOp(t *testing.T, r *replica, id TaskID, kind OpKind, elem uint8) {
	t.Helper()
	r.l.mu.Lock()
	err := r.l.checkOp(r.l.tasks[id], kind, elem)
	out := r.l.takeOut()
	r.l.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	r.l.send(out)
}

func dropsOf(rs ...*replica) Drops {
	var sum Drops
	for _, r := range rs {
		d := r.l.Stats().Drops
		sum.NotWriter += d.NotWriter
		sum.BadTime += d.BadTime
		sum.Forbidden += d.Forbidden
	}
	return sum
}

// Writers (issue 10, attack 4): on a list that is not open, a stranger
// who knows the list ID changes nothing, whatever its client does; the
// creator grants and revokes writers, and only the creator can.
func TestOnlyWritersChangeAList(t *testing.T) {
	h := newHub(true)
	h.openLists = false
	a := h.open(t, 1, ListID{1}, "closed", nil, nil)
	w := h.open(t, 2, ListID{1}, "", nil, nil)
	s := h.open(t, 3, ListID{1}, "", nil, nil)
	x, err := a.l.Add("x", "")
	if err != nil {
		t.Fatal(err)
	}
	settle(t, h, a, w, s)
	if _, err := w.l.Add("w", ""); !errors.Is(err, ErrNotWriter) {
		t.Fatalf("Add by a joiner without access: %v", err)
	}
	if err := w.l.AddWriter(s.id); !errors.Is(err, ErrNotWriter) {
		t.Fatalf("AddWriter by a non-creator: %v", err)
	}
	if err := a.l.AddWriter(w.id); err != nil {
		t.Fatal(err)
	}
	settle(t, h, a, w, s)
	if _, err := w.l.Add("by w", ""); err != nil {
		t.Fatalf("Add by a granted writer: %v", err)
	}
	settle(t, h, a, w, s)
	honest := a.l.Snapshot()
	if len(honest) != 2 {
		t.Fatalf("writer's task missing: %s", fmtTasks(honest))
	}
	// The stranger's modified client writes anyway: every kind of
	// operation, then grants itself access.
	rogue(s)
	before := dropsOf(a, w)
	title := "defaced"
	_ = s.l.Update(x, Update{Title: &title})
	_ = s.l.Claim(x)
	_ = s.l.Remove(x)
	_, _ = s.l.Add("spam", "")
	s.l.mu.Lock()
	s.l.creator = s.l.selfID // and pretends to be the creator
	s.l.mu.Unlock()
	_ = s.l.AddWriter(s.id)
	flushAll(t, a, w, s)
	settle(t, h, a, w)
	if got := dropsOf(a, w).NotWriter - before.NotWriter; got < 2 {
		t.Fatalf("stranger's deltas dropped as not a writer: %d", got)
	}
	for _, r := range []*replica{a, w} {
		if !equalTasks(r.l.Snapshot(), honest) || r.l.VersionVector().Get(s.id) != 0 {
			t.Fatalf("the stranger changed the list: %s", fmtTasks(r.l.Snapshot()))
		}
	}
	// Revocation: w's operations made after it saw it are refused, locally
	// and (from a modified client) on receipt.
	if err := a.l.RemoveWriter(w.id); err != nil {
		t.Fatal(err)
	}
	settle(t, h, a, w)
	if _, err := w.l.Add("after", ""); !errors.Is(err, ErrNotWriter) {
		t.Fatalf("Add by a revoked writer: %v", err)
	}
	rogue(w)
	before = dropsOf(a)
	_, _ = w.l.Add("after, modified client", "")
	flushAll(t, a, w)
	if dropsOf(a).NotWriter != before.NotWriter+1 || len(a.l.Snapshot()) != 2 {
		t.Fatalf("revoked writer's delta: drops %+v tasks %s", a.l.Stats().Drops, fmtTasks(a.l.Snapshot()))
	}
	if acc := a.l.Access(); acc.Creator != a.id || len(acc.Writers) != 0 || acc.Open {
		t.Fatalf("access %+v", acc)
	}
}

// Timestamps (issue 10, attack 4): a delta stamped before what it
// depends on, or far ahead of the receiver's clock, is rejected; so a
// backdated claim cannot beat the real claimant, and a field stamped 2^50
// cannot pin itself: the owner's later update wins.
func TestBackdatedAndFutureDeltasAreRejected(t *testing.T) {
	h := newHub(true)
	a := h.open(t, 1, ListID{1}, "open", nil, nil)
	w := h.open(t, 2, ListID{1}, "", nil, nil)
	z := h.open(t, 3, ListID{1}, "", nil, nil)
	x, err := a.l.Add("x", "")
	if err != nil {
		t.Fatal(err)
	}
	settle(t, h, a, w, z)
	if err := w.l.Claim(x); err != nil {
		t.Fatal(err)
	}
	settle(t, h, a, w, z)
	// z has seen w's claim; its client stamps its own claim at wall time 1
	// (and the receipt rule that a claim of a held task is refused is
	// bypassed too: the timestamp alone must be refused first).
	backdate(z, time.UnixMilli(1))
	before := dropsOf(a, w)
	forceOp(t, z, x, OpClaim, elemClaimed)
	flushAll(t, a, w, z)
	if got := dropsOf(a, w).BadTime - before.BadTime; got < 2 {
		t.Fatalf("backdated claim not refused for its time: drops %+v", a.l.Stats().Drops)
	}
	for _, r := range []*replica{a, w} {
		if got, _ := r.l.Task(x); got.Claimant != w.id || len(got.Claims) != 1 {
			t.Fatalf("backdated claim changed the claimant: %+v", got)
		}
	}

	// A field stamped 2^50 ms (year 37648).
	v := h.open(t, 4, ListID{1}, "", nil, nil)
	settle(t, h, a, w, v)
	backdate(v, time.UnixMilli(1<<50))
	title := "pinned"
	if err := v.l.Update(x, Update{Title: &title}); err != nil {
		t.Fatal(err)
	}
	flushAll(t, a, w, v)
	if got, _ := a.l.Task(x); got.Title != "x" || a.l.Stats().Drops.BadTime == 0 {
		t.Fatalf("future-stamped update applied: %+v drops %+v", got, a.l.Stats().Drops)
	}
	owner := "the owner's title"
	if err := a.l.Update(x, Update{Title: &owner}); err != nil {
		t.Fatal(err)
	}
	settle(t, h, a, w)
	for _, r := range []*replica{a, w} {
		if got, _ := r.l.Task(x); got.Title != owner {
			t.Fatalf("owner's later update lost: %q", got.Title)
		}
	}
}

// Claims and completions (issue 10, attack 4): judged on receipt against
// the task as the delta's causal past shows it. Another agent cannot
// complete a task it does not hold, nor claim a task held or done.
func TestCompleteOnlyByTheWinningClaimant(t *testing.T) {
	h := newHub(true)
	a := h.open(t, 1, ListID{1}, "open", nil, nil)
	w := h.open(t, 2, ListID{1}, "", nil, nil)
	z := h.open(t, 3, ListID{1}, "", nil, nil)
	x, _ := a.l.Add("x", "")
	y, _ := a.l.Add("y", "")
	settle(t, h, a, w, z)
	if err := w.l.Claim(x); err != nil {
		t.Fatal(err)
	}
	settle(t, h, a, w, z)
	if err := z.l.Complete(x); !errors.Is(err, ErrClaimedByOther) {
		t.Fatalf("local Complete of another's task: %v", err)
	}
	// z's modified client completes x (held by w) anyway.
	force := func(r *replica, id TaskID, kind OpKind, elem uint8) {
		forceOp(t, r, id, kind, elem)
		flushAll(t, a, w, z)
	}
	before := dropsOf(a, w)
	force(z, x, OpComplete, elemDone)
	if got := dropsOf(a, w).Forbidden - before.Forbidden; got != 2 {
		t.Fatalf("completion by a non-claimant: %d refusals, drops %+v", got, a.l.Stats().Drops)
	}
	for _, r := range []*replica{a, w} {
		if got, _ := r.l.Task(x); got.State != Claimed || got.Claimant != w.id {
			t.Fatalf("x after a stranger's completion: %+v", got)
		}
	}
	// A fresh client (z's deltas are now stuck behind the refused one).
	z2 := h.open(t, 5, ListID{1}, "", nil, nil)
	settle(t, h, a, w, z2)
	before = dropsOf(a, w)
	force(z2, x, OpClaim, elemClaimed) // x is held by w
	if got := dropsOf(a, w).Forbidden - before.Forbidden; got != 2 {
		t.Fatalf("claim of a held task: %d refusals", got)
	}
	// The holder completes; honest claims of other tasks go through.
	if err := w.l.Complete(x); err != nil {
		t.Fatal(err)
	}
	if err := a.l.Claim(y); err != nil {
		t.Fatal(err)
	}
	settle(t, h, a, w)
	if got, _ := a.l.Task(x); got.State != Done || got.Claimant != w.id {
		t.Fatalf("x: %+v", got)
	}
	if got, _ := w.l.Task(y); got.State != Claimed || got.Claimant != a.id {
		t.Fatalf("y: %+v", got)
	}
}

// The creation of a list is its creator's: an init delta by another agent
// for the same list ID is refused, and the list keeps its name.
func TestOnlyTheCreatorCreates(t *testing.T) {
	r := openSolo(t, 1, nil)
	thief := key(6)
	tid := thief.ID()
	name := "hijack"
	b := bodyWire{List: r.ID(), Author: tid[:], Seq: 1, Kind: uint8(OpInit), Name: &name, Nonce: make([]byte, 16),
		Wall: uint64(time.UnixMilli(1_700_000_000_001).UnixMilli()), PubKey: thief.Public().Bytes()}
	r.HandleBroadcast(tid, broadcastFrame(t, r.ID(), forge(t, thief, b, "", nil, nil)))
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r.Stats().Drops.NotWriter != 1 || r.Name() != "solo" || r.VersionVector().Get(tid) != 0 {
		t.Fatalf("stats %+v name %q", r.Stats().Drops, r.Name())
	}
}

// A group's list (Config.Writers): the group's members write, nobody else
// does, on receipt as locally, and the creator's grants do not apply.
func TestWritersHookDecidesWhoWrites(t *testing.T) {
	h := newHub(true)
	h.openLists = false
	var mu sync.Mutex
	members := map[identity.AgentID]bool{key(1).ID(): true, key(2).ID(): true}
	h.writers = func(a identity.AgentID) bool { mu.Lock(); defer mu.Unlock(); return members[a] }
	a := h.open(t, 1, ListID{7}, "group list", nil, nil)
	m := h.open(t, 2, ListID{7}, "", nil, nil)
	s := h.open(t, 3, ListID{7}, "", nil, nil)
	if _, err := a.l.Add("by creator", ""); err != nil {
		t.Fatal(err)
	}
	settle(t, h, a, m, s)
	if _, err := m.l.Add("by member", ""); err != nil {
		t.Fatalf("a member without a grant: %v", err)
	}
	if _, err := s.l.Add("by stranger", ""); !errors.Is(err, ErrNotWriter) {
		t.Fatalf("a non-member: %v", err)
	}
	if err := a.l.AddWriter(s.id); !errors.Is(err, ErrNotWriter) {
		t.Fatalf("AddWriter on a group's list: %v", err)
	}
	if err := a.l.SetOpen(true); !errors.Is(err, ErrNotWriter) {
		t.Fatalf("SetOpen on a group's list: %v", err)
	}
	settle(t, h, a, m, s)
	// The stranger's modified client writes anyway: refused on receipt.
	s.l.mu.Lock()
	s.l.writers = func(identity.AgentID) bool { return true }
	s.l.mu.Unlock()
	before := dropsOf(a, m)
	_, _ = s.l.Add("spam", "")
	flushAll(t, a, m, s)
	settle(t, h, a, m)
	if got := dropsOf(a, m).NotWriter - before.NotWriter; got < 2 {
		t.Fatalf("stranger's delta dropped as not a writer %d times, want 2", got)
	}
	if len(a.l.Snapshot()) != 2 || len(m.l.Snapshot()) != 2 {
		t.Fatalf("tasks %s / %s", fmtTasks(a.l.Snapshot()), fmtTasks(m.l.Snapshot()))
	}
	// Once the stranger joins the group, its writes count, and so does
	// what it wrote before (the rule is monotonic, so every replica ends
	// with the same tasks whenever it learns of the membership).
	mu.Lock()
	members[s.id] = true
	mu.Unlock()
	if _, err := s.l.Add("by new member", ""); err != nil {
		t.Fatal(err)
	}
	settle(t, h, a, m, s)
	if len(a.l.Snapshot()) != 4 || !equalTasks(a.l.Snapshot(), m.l.Snapshot()) || !equalTasks(a.l.Snapshot(), s.l.Snapshot()) {
		t.Fatalf("after joining: %s / %s / %s", fmtTasks(a.l.Snapshot()), fmtTasks(m.l.Snapshot()), fmtTasks(s.l.Snapshot()))
	}
}
