package crdt

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// refRGA is the RGA's specification written naively: every slot in one
// slice in document order, no runs. Operations must be applied in a causal
// order (for example sorted by Dot.Compare) with their references present.
type refRGA struct {
	slots []refSlot
	items map[Dot]*refItem
}

type refSlot struct {
	id, item Dot // item: the insert the slot shows (itself for an insert)
}

type refItem struct {
	val     int
	pos     Dot // the item's slot with the greatest ID
	removed bool
}

func newRefRGA() *refRGA { return &refRGA{items: map[Dot]*refItem{}} }

func (m *refRGA) apply(t fataler, op RGAOp[int]) {
	t.Helper()
	if op.Kind == RGARemove {
		if it := m.items[op.Target]; it != nil {
			it.removed = true
		}
		return
	}
	i := 0
	if !op.Origin.IsZero() {
		i = slices.IndexFunc(m.slots, func(s refSlot) bool { return s.id == op.Origin }) + 1
		if i == 0 {
			t.Fatalf("reference: origin %v of %v missing", op.Origin, op.ID)
		}
	}
	for i < len(m.slots) && m.slots[i].id.Compare(op.ID) > 0 {
		i++
	}
	s := refSlot{id: op.ID, item: op.ID}
	if op.Kind == RGAMove {
		s.item = op.Target
		if it := m.items[op.Target]; it != nil && op.ID.Compare(it.pos) > 0 {
			it.pos = op.ID
		}
	} else {
		m.items[op.ID] = &refItem{val: op.Value, pos: op.ID}
	}
	m.slots = slices.Insert(m.slots, i, s)
}

func (m *refRGA) view() string {
	var ids []Dot
	var vals []int
	for _, s := range m.slots {
		if it := m.items[s.item]; it != nil && !it.removed && it.pos == s.id {
			ids = append(ids, s.item)
			vals = append(vals, it.val)
		}
	}
	return fmt.Sprint(ids, vals)
}

// refOf applies the operations of ds (deduplicated, in Dot order) to a
// fresh reference.
func refOf(t fataler, ds []*RGADelta[int]) *refRGA {
	t.Helper()
	ops := map[Dot]RGAOp[int]{}
	for _, d := range ds {
		for _, op := range d.Ops() {
			ops[op.ID] = op
		}
	}
	all := make([]RGAOp[int], 0, len(ops))
	for _, op := range ops {
		all = append(all, op)
	}
	slices.SortFunc(all, func(a, b RGAOp[int]) int { return a.ID.Compare(b.ID) })
	m := newRefRGA()
	for _, op := range all {
		m.apply(t, op)
	}
	return m
}

func rgaIntView(r *RGA[int]) string { return fmt.Sprint(r.IDs(), r.Values()) }

// runEditor performs the edits that make, split and join runs: typing
// bursts, forward deletes and backspaces over ranges, inserts after any
// element (removed ones too, so inside removed runs), removals and moves
// of single elements (mostly inside runs).
type runEditor struct {
	next int
	ids  []Dot // every element inserted by any replica
}

func (e *runEditor) edit(t *rapid.T, r *RGA[int]) []*RGADelta[int] {
	var ds []*RGADelta[int]
	must := func(d *RGADelta[int], err error) {
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	insert := func(i int) {
		e.next++
		id, d, err := r.InsertAt(i, e.next)
		must(d, err)
		e.ids = append(e.ids, id)
	}
	n := r.Len()
	switch act := rapid.IntRange(0, 6).Draw(t, "edit"); {
	case n == 0 || act == 0: // type a word
		i := rapid.IntRange(0, n).Draw(t, "at")
		for k := range rapid.IntRange(1, 8).Draw(t, "len") {
			insert(i + k)
		}
	case act == 1: // delete forward
		i := rapid.IntRange(0, n-1).Draw(t, "at")
		for range min(rapid.IntRange(1, 6).Draw(t, "len"), n-i) {
			must(r.RemoveAt(i))
		}
	case act == 2: // backspace
		i := rapid.IntRange(0, n-1).Draw(t, "at")
		for k := range min(rapid.IntRange(1, 6).Draw(t, "len"), i+1) {
			must(r.RemoveAt(i - k))
		}
	case act == 3: // insert after any known element, removed or not
		at := e.ids[rapid.IntRange(0, len(e.ids)-1).Draw(t, "anchor")]
		for range rapid.IntRange(1, 4).Draw(t, "len") {
			e.next++
			id, d, err := r.InsertAfter(at, e.next)
			if errors.Is(err, ErrUnknownElement) {
				break
			}
			must(d, err)
			e.ids = append(e.ids, id)
			at = id
		}
		if len(ds) == 0 {
			insert(rapid.IntRange(0, n).Draw(t, "at"))
		}
	case act == 4: // remove one element by ID
		id, _, _ := r.At(rapid.IntRange(0, n-1).Draw(t, "which"))
		must(r.Remove(id))
	default: // move one element, often next to where it was
		w := rapid.IntRange(0, n-1).Draw(t, "which")
		id, _, _ := r.At(w)
		var after Dot
		if k := rapid.IntRange(-1, n-1).Draw(t, "after"); k >= 0 {
			if rapid.Bool().Draw(t, "near") {
				k = min(max(w+rapid.IntRange(-2, 2).Draw(t, "delta"), 0), n-1)
			}
			after, _, _ = r.At(k)
		}
		must(r.Move(id, after))
	}
	return ds
}

// TestRGARunsModel edits one replica with run-shaped edits and compares it
// with the reference after every edit.
func TestRGARunsModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := NewRGA[int](rid(1), RGAOptions{})
		ed := &runEditor{}
		var all []*RGADelta[int]
		for range rapid.IntRange(1, 60).Draw(t, "edits") {
			all = append(all, ed.edit(t, r)...)
			checkRGAInvariants(t, r)
			if got, want := rgaIntView(r), refOf(t, all).view(); got != want {
				t.Fatalf("replica shows %s, reference %s", got, want)
			}
		}
		for i, id := range r.IDs() {
			if k, ok := r.IndexOf(id); !ok || k != i {
				t.Fatalf("IndexOf(%v) = %d %v, want %d", id, k, ok, i)
			}
			if gid, v, ok := r.At(i); !ok || gid != id {
				t.Fatalf("At(%d) = %v", i, gid)
			} else if w, ok := r.Get(id); !ok || w != v {
				t.Fatalf("Get(%v) = %d, At says %d", id, w, v)
			}
		}
	})
}

// TestRGARunsConvergence runs the convergence harness with bursts of
// run-shaped edits per delta (joined, or one delta per edit), so that runs
// are split and joined by remote operations arriving in any order, and
// checks the converged sequence against the reference.
func TestRGARunsConvergence(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ed := &runEditor{}
		c := withRGAWire(&crdtUnderTest[*RGA[int], *RGADelta[int]]{
			newReplica: func(_ *rapid.T, id ReplicaID) *RGA[int] { return NewRGA[int](id, RGAOptions{}) },
			op: func(t *rapid.T, r *RGA[int]) *RGADelta[int] {
				d := NewRGADelta[int]()
				for range rapid.IntRange(1, 3).Draw(t, "burst") {
					for _, x := range ed.edit(t, r) {
						if err := d.Join(x); err != nil {
							t.Fatal(err)
						}
					}
				}
				return d
			},
			view: func(r *RGA[int]) string { return fmt.Sprint(rgaIntView(r), r.Pending()) },
			check: func(t *rapid.T, reps []*RGA[int], deltas []*RGADelta[int]) {
				for _, x := range reps {
					checkRGAInvariants(t, x)
				}
				if got, want := rgaIntView(reps[0]), refOf(t, deltas).view(); got != want {
					t.Fatalf("converged to %s, reference %s", got, want)
				}
			},
		})
		runConvergence(t, c)
	})
}

// runCount returns the number of runs holding r's slots.
func runCount[T comparable](r *RGA[T]) int {
	n := 0
	r.seq.each(func(*run[T]) bool { n++; return true })
	return n
}

// TestRGARunShapes checks that typing makes one run and that removing
// parts of it forwards or backwards leaves one run per state, so memory
// follows the edit structure rather than the character count.
func TestRGARunShapes(t *testing.T) {
	r := newText(1)
	typeAt(t, r, 0, "hello brave new world")
	if n := runCount(r); n != 1 {
		t.Fatalf("typed text in %d runs, want 1", n)
	}
	for range 6 { // delete "brave " forwards
		if _, err := r.RemoveAt(6); err != nil {
			t.Fatal(err)
		}
	}
	for i := 9; i >= 6; i-- { // backspace over "new "
		if _, err := r.RemoveAt(i); err != nil {
			t.Fatal(err)
		}
	}
	if got := rgaText(r); got != "hello world" {
		t.Fatalf("text %q", got)
	}
	checkRGAInvariants(t, r)
	if n := runCount(r); n != 4 { // "hello ", "brave " (removed), "new " (removed), "world"
		t.Fatalf("%d runs, want 4", n)
	}
	// A replica fed the state has the same runs.
	b := newText(2)
	mergeAll(t, b, r.State())
	if n := runCount(b); n != 4 {
		t.Fatalf("replica fed the state has %d runs, want 4", n)
	}
	// Move "w" to the head and type inside the run it came from.
	w, _, _ := r.At(6)
	if _, err := r.Move(w, Dot{}); err != nil {
		t.Fatal(err)
	}
	typeAt(t, r, 8, "X")
	checkRGAInvariants(t, r)
	if got := rgaText(r); got != "whello oXrld" {
		t.Fatalf("text %q", got)
	}
	mergeAll(t, b, r.DeltaSince(b.VersionVector()))
	sameState(t, r, b)
	checkRGAInvariants(t, b)
}

// TestRGASmallerRemovalSplitsRun removes a range on one replica and one
// element of it concurrently, with a smaller dot, on another: the element
// keeps the smaller dot, which splits the removed run, and both replicas
// end with the same state.
func TestRGASmallerRemovalSplitsRun(t *testing.T) {
	a, b := newText(1), newText(2)
	mergeAll(t, b, typeAt(t, a, 0, "abcdef")...)
	var ra []*RGADelta[rune]
	for range 3 { // "bcd": dots a:7, a:8, a:9
		ra = append(ra, mustDelta(a.RemoveAt(1)))
	}
	rb := mustDelta(b.RemoveAt(2)) // "c" with b:7 < a:8
	if n := runCount(a); n != 3 {
		t.Fatalf("%d runs after the range removal, want 3", n)
	}
	mergeAll(t, a, rb)
	mergeAll(t, b, ra...)
	for _, x := range []*RGA[rune]{a, b} {
		checkRGAInvariants(t, x)
		if got := rgaText(x); got != "aef" {
			t.Fatalf("text %q", got)
		}
	}
	sameState(t, a, b)
	if n := runCount(a); n != 5 { // a | b | c | d | ef
		t.Fatalf("%d runs, want 5", n)
	}
	var rmv []Dot
	for _, op := range a.State().Ops() {
		if op.Kind == RGARemove {
			rmv = append(rmv, op.ID)
		}
	}
	want := []Dot{{rid(1), 7}, {rid(1), 9}, {rid(2), 7}}
	if !slices.Equal(rmv, want) {
		t.Fatalf("removal dots %v, want %v", rmv, want)
	}
}
func mustDelta[T comparable](d *RGADelta[T], err error) *RGADelta[T] {
	if err != nil {
		panic(err)
	}
	return d
}
