package crdt

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/saorsa-labs/x0x-go/core/wire"
	"pgregory.net/rapid"
)

func newText(b byte) *RGA[rune] { return NewRGA[rune](rid(b), RGAOptions{}) }

// typeAt inserts s at position i and returns the deltas.
func typeAt(t *testing.T, r *RGA[rune], i int, s string) []*RGADelta[rune] {
	t.Helper()
	var ds []*RGADelta[rune]
	for _, c := range s {
		_, d, err := r.InsertAt(i, c)
		if err != nil {
			t.Fatal(err)
		}
		i++
		ds = append(ds, d)
	}
	return ds
}

func mergeAll[T comparable](t *testing.T, r *RGA[T], ds ...*RGADelta[T]) {
	t.Helper()
	for _, d := range ds {
		if err := r.Merge(d); err != nil {
			t.Fatal(err)
		}
	}
}

func sameState[T comparable](t *testing.T, rs ...*RGA[T]) {
	t.Helper()
	want := enc(t, rs[0].State())
	for i, r := range rs[1:] {
		if got := enc(t, r.State()); !bytes.Equal(got, want) {
			t.Fatalf("replica %d state differs from replica 0", i+1)
		}
	}
}

func TestRGASequential(t *testing.T) {
	r := newText(1)
	typeAt(t, r, 0, "hello")
	typeAt(t, r, 5, " world")
	if got := rgaText(r); got != "hello world" {
		t.Fatalf("text %q", got)
	}
	if _, err := r.RemoveAt(0); err != nil {
		t.Fatal(err)
	}
	typeAt(t, r, 0, "H")
	if got := rgaText(r); got != "Hello world" {
		t.Fatalf("text %q", got)
	}
	id, v, ok := r.At(6)
	if !ok || v != 'w' {
		t.Fatalf("At(6) = %v %q %v", id, v, ok)
	}
	if i, ok := r.IndexOf(id); !ok || i != 6 {
		t.Fatalf("IndexOf = %d %v", i, ok)
	}
	if got, ok := r.Get(id); !ok || got != 'w' {
		t.Fatal("Get failed")
	}
	// Move 'w' to the head.
	if _, err := r.Move(id, Dot{}); err != nil {
		t.Fatal(err)
	}
	if got := rgaText(r); got != "wHello orld" {
		t.Fatalf("after move %q", got)
	}
	if i, _ := r.IndexOf(id); i != 0 {
		t.Fatalf("moved element at %d", i)
	}
	// Move it after the 'o' of "Hello" (position 5 now).
	oid, _, _ := r.At(5)
	if _, err := r.Move(id, oid); err != nil {
		t.Fatal(err)
	}
	if got := rgaText(r); got != "Hellow orld" {
		t.Fatalf("after second move %q", got)
	}
	if _, err := r.Remove(id); err != nil {
		t.Fatal(err)
	}
	if got := rgaText(r); got != "Hello orld" {
		t.Fatalf("after remove %q", got)
	}
	if _, ok := r.Get(id); ok {
		t.Fatal("removed element still readable")
	}
	// Local errors.
	if _, err := r.Remove(id); !errors.Is(err, ErrRemoved) {
		t.Errorf("second remove: %v", err)
	}
	if _, err := r.Move(id, Dot{}); !errors.Is(err, ErrRemoved) {
		t.Errorf("move removed: %v", err)
	}
	if _, _, err := r.InsertAfter(Dot{rid(7), 1}, 'x'); !errors.Is(err, ErrUnknownElement) {
		t.Errorf("insert after unknown: %v", err)
	}
	if _, _, err := r.InsertAt(r.Len()+1, 'x'); !errors.Is(err, ErrIndexRange) {
		t.Errorf("insert past end: %v", err)
	}
	if _, err := r.RemoveAt(-1); !errors.Is(err, ErrIndexRange) {
		t.Errorf("remove at -1: %v", err)
	}
	if _, _, ok := r.At(r.Len()); ok {
		t.Error("At(Len()) ok")
	}
	// A removed element is still a valid anchor.
	nid, _, err := r.InsertAfter(id, '!')
	if err != nil {
		t.Fatal(err)
	}
	if i, _ := r.IndexOf(nid); i != 5 || rgaText(r) != "Hello! orld" {
		t.Fatalf("insert after tombstone: %q at %d", rgaText(r), i)
	}
}

func TestRGAConcurrentInsertsDoNotInterleave(t *testing.T) {
	a, b := newText(1), newText(2)
	base := typeAt(t, a, 0, "[]")
	mergeAll(t, b, base...)
	da := typeAt(t, a, 1, "abc")
	db := typeAt(t, b, 1, "xyz")
	mergeAll(t, a, db...)
	mergeAll(t, b, da...)
	// Same counters on both sides; rid(2) > rid(1), so b's run goes first.
	if ta, tb := rgaText(a), rgaText(b); ta != "[xyzabc]" || tb != ta {
		t.Fatalf("a=%q b=%q, want both [xyzabc]", ta, tb)
	}
	sameState(t, a, b)
}

func TestRGALaterInsertGoesFirst(t *testing.T) {
	// b has made more operations, so its concurrent insert at the head has
	// the greater Lamport counter and goes first although a's replica ID
	// is greater.
	a, b := newText(2), newText(1)
	dots := typeAt(t, b, 0, "..")
	da := typeAt(t, a, 0, "A")
	db := typeAt(t, b, 0, "B")
	mergeAll(t, a, dots...)
	mergeAll(t, a, db...)
	mergeAll(t, b, da...)
	if ta, tb := rgaText(a), rgaText(b); ta != "BA.." || tb != ta {
		t.Fatalf("a=%q b=%q, want BA..", ta, tb)
	}
	sameState(t, a, b)
}

func TestRGAConcurrentMoves(t *testing.T) {
	a, b, c := NewRGA[string](rid(1), RGAOptions{}), NewRGA[string](rid(2), RGAOptions{}), NewRGA[string](rid(3), RGAOptions{})
	var ids []Dot
	for i, s := range []string{"t1", "t2", "t3", "t4"} {
		id, d, err := a.InsertAt(i, s)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		mergeAll(t, b, d)
		mergeAll(t, c, d)
	}
	// a moves t1 after t4 while b moves t1 after t2 and c removes t3.
	ma, err := a.Move(ids[0], ids[3])
	if err != nil {
		t.Fatal(err)
	}
	mb, err := b.Move(ids[0], ids[1])
	if err != nil {
		t.Fatal(err)
	}
	rc, err := c.Remove(ids[2])
	if err != nil {
		t.Fatal(err)
	}
	mergeAll(t, a, mb, rc)
	mergeAll(t, b, rc, ma)
	mergeAll(t, c, ma, mb, ma) // duplicate delivery
	// Equal counters: b's move (rid(2)) wins.
	want := []string{"t2", "t1", "t4"}
	for i, r := range []*RGA[string]{a, b, c} {
		if got := r.Values(); !slices.Equal(got, want) {
			t.Fatalf("replica %d: %v, want %v", i, got, want)
		}
	}
	sameState(t, a, b, c)
}

func TestRGARemoveBeatsConcurrentMove(t *testing.T) {
	a, b := newText(1), newText(2)
	mergeAll(t, b, typeAt(t, a, 0, "xy")...)
	x, _, _ := a.At(0)
	y, _, _ := a.At(1)
	rm, _ := a.Remove(x)
	mv, err := b.Move(x, y)
	if err != nil {
		t.Fatal(err)
	}
	mergeAll(t, a, mv)
	mergeAll(t, b, rm)
	if rgaText(a) != "y" || rgaText(b) != "y" {
		t.Fatalf("a=%q b=%q", rgaText(a), rgaText(b))
	}
	sameState(t, a, b)
}

func TestRGAOutOfOrderBuffering(t *testing.T) {
	a := newText(1)
	ds := typeAt(t, a, 0, "abcd")
	rm, _ := a.RemoveAt(1)
	ds = append(ds, rm)
	b := newText(2)
	// Deliver in reverse: everything but "a" waits.
	for i := len(ds) - 1; i >= 1; i-- {
		mergeAll(t, b, ds[i])
	}
	if b.Len() != 0 || b.Pending() != 4 {
		t.Fatalf("len %d pending %d, want 0 and 4", b.Len(), b.Pending())
	}
	if vv := b.VersionVector(); vv.Get(rid(1)) != 0 {
		t.Fatalf("buffered operations counted as seen: %v", vv.m)
	}
	mergeAll(t, b, ds[0])
	if rgaText(b) != "acd" || b.Pending() != 0 {
		t.Fatalf("after the missing op: %q, pending %d", rgaText(b), b.Pending())
	}
	sameState(t, a, b)
}

func TestRGAPendingLimit(t *testing.T) {
	a := newText(1)
	ds := typeAt(t, a, 0, "abc")
	b := NewRGA[rune](rid(2), RGAOptions{MaxPending: 1})
	mergeAll(t, b, ds[1])
	before := enc(t, b.State())
	if err := b.Merge(ds[2]); !errors.Is(err, ErrPendingFull) {
		t.Fatalf("Merge = %v, want ErrPendingFull", err)
	}
	if b.Pending() != 1 || !bytes.Equal(before, enc(t, b.State())) {
		t.Fatal("failed merge changed the replica")
	}
	// A delta that resolves the wait is fine even though it is large.
	j := NewRGADelta[rune]()
	for _, d := range ds {
		if err := j.Join(d); err != nil {
			t.Fatal(err)
		}
	}
	mergeAll(t, b, j)
	if rgaText(b) != "abc" || b.Pending() != 0 {
		t.Fatalf("%q pending %d", rgaText(b), b.Pending())
	}
}

func TestRGAConflict(t *testing.T) {
	a := newText(1)
	_, d, _ := a.InsertAt(0, 'x')
	before := enc(t, a.State())
	forged := d.Clone()
	forged.ops[0].value = 'y'
	if err := a.Merge(forged); !errors.Is(err, ErrConflict) {
		t.Fatalf("Merge = %v, want ErrConflict", err)
	}
	if !bytes.Equal(before, enc(t, a.State())) {
		t.Fatal("failed merge changed the replica")
	}
	if err := d.Clone().Join(forged); !errors.Is(err, ErrConflict) {
		t.Fatalf("Join = %v, want ErrConflict", err)
	}
	// A remove for a removal dot already applied is ignored, not a conflict.
	rm, _ := a.RemoveAt(0)
	mergeAll(t, a, rm, rm)
}

// An operation that references a dot which is not a slot (here a removal)
// is dropped, and its dot is recorded as seen, in whichever order the two
// arrive.
func TestRGAReferenceToNonSlotDropped(t *testing.T) {
	a := newText(1)
	ins := typeAt(t, a, 0, "x")
	rm, _ := a.RemoveAt(0)
	rmID := rm.ops[0].id
	bogus := &RGADelta[rune]{ops: []rgaOp[rune]{{kind: opInsert, id: Dot{rid(2), rmID.Counter + 1}, origin: rmID, value: '?'}}}
	bogus.ctx.Add(bogus.ops[0].id)

	b, c := newText(3), newText(4)
	mergeAll(t, b, ins[0], rm, bogus) // reference known to be a removal
	mergeAll(t, c, bogus)             // waits...
	if c.Pending() != 1 {
		t.Fatalf("pending %d", c.Pending())
	}
	mergeAll(t, c, rm, ins[0]) // ...until the removal shows what it is
	if b.Pending() != 0 || c.Pending() != 0 || b.Len() != 0 || c.Len() != 0 {
		t.Fatalf("b len %d pending %d, c len %d pending %d", b.Len(), b.Pending(), c.Len(), c.Pending())
	}
	sameState(t, b, c)
}

func TestRGADeltaSince(t *testing.T) {
	a, b := newText(1), newText(2)
	typeAt(t, a, 0, "abcdef")
	mergeAll(t, b, a.DeltaSince(b.VersionVector()))
	vv := b.VersionVector()
	a.RemoveAt(0)
	typeAt(t, a, 2, "XY")
	x, _, _ := a.At(2)
	a.Move(x, Dot{})
	typeAt(t, b, 6, "!")
	d := a.DeltaSince(vv)
	if d.Len() != 4 { // remove, two inserts, move
		t.Fatalf("delta has %d ops, want 4", d.Len())
	}
	mergeAll(t, b, d)
	mergeAll(t, a, b.DeltaSince(a.VersionVector()))
	if rgaText(a) != "XbcYdef!" || rgaText(b) != rgaText(a) {
		t.Fatalf("a=%q b=%q", rgaText(a), rgaText(b))
	}
	sameState(t, a, b)
	if d := a.DeltaSince(b.VersionVector()); d.Len() != 0 || !d.IsEmpty() {
		t.Fatalf("delta between equal replicas: %d ops", d.Len())
	}
}

func TestRGACounterExhausted(t *testing.T) {
	a := newText(1)
	a.lamport = MaxCounter
	if _, _, err := a.InsertAt(0, 'x'); !errors.Is(err, ErrCounterRange) {
		t.Fatalf("InsertAt = %v, want ErrCounterRange", err)
	}
	if a.Len() != 0 {
		t.Fatal("failed insert changed the sequence")
	}
}

func TestRGAWireRoundTrip(t *testing.T) {
	a, b := NewRGA[string](rid(1), RGAOptions{}), NewRGA[string](rid(2), RGAOptions{})
	id1, d1, _ := a.InsertAt(0, "one")
	mergeAll(t, b, d1)
	b.InsertAt(1, "two")
	b.Move(id1, Dot{})
	mergeAll(t, a, b.State())
	a.Remove(id1)
	st := a.State()
	raw := enc(t, st)
	var got RGADelta[string]
	if err := wire.Unmarshal(raw, &got, "rga"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc(t, &got), raw) {
		t.Fatal("re-encoding differs")
	}
	c := NewRGA[string](rid(3), RGAOptions{})
	mergeAll(t, c, &got)
	sameState(t, a, c)
	if !slices.Equal(c.Values(), []string{"two"}) {
		t.Fatalf("values %v", c.Values())
	}
}

func TestRGAWireRejects(t *testing.T) {
	reps := [][]byte{ridb(1)}
	ctx := [][]uint64{{0, 1, 3}}
	good := rgaDeltaWire[rune]{Replicas: reps, Inserts: []rgaInsertWire[rune]{{R: 0, C: 1, Value: 'a'}, {R: 0, C: 2, OR: 0, OC: 1, Value: 'b'}},
		Moves: []rgaMoveWire{}, Removes: []rgaRemoveWire{{R: 0, C: 3, TR: 0, TC: 1}}, Context: ctx}
	var ok RGADelta[rune]
	if err := wire.Unmarshal(enc(t, good), &ok, "rga"); err != nil {
		t.Fatalf("good input rejected: %v", err)
	}
	ins := func(ws ...rgaInsertWire[rune]) rgaDeltaWire[rune] {
		return rgaDeltaWire[rune]{Replicas: reps, Inserts: ws, Context: ctx}
	}
	cases := map[string]rgaDeltaWire[rune]{
		"zero counter":         ins(rgaInsertWire[rune]{R: 0, C: 0}),
		"counter too big":      {Replicas: reps, Inserts: []rgaInsertWire[rune]{{R: 0, C: MaxCounter + 1}}, Context: [][]uint64{{0, 1, MaxCounter}}},
		"replica out of range": ins(rgaInsertWire[rune]{R: 1, C: 1}),
		"origin not before":    ins(rgaInsertWire[rune]{R: 0, C: 2, OR: 0, OC: 2}),
		"origin index bad":     ins(rgaInsertWire[rune]{R: 0, C: 2, OR: 5, OC: 1}),
		"origin counter zero":  ins(rgaInsertWire[rune]{R: 0, C: 2, OR: 0, OC: 0, Value: 1}, rgaInsertWire[rune]{R: 0, C: 3, OR: 1, OC: 0}),
		"unsorted":             ins(rgaInsertWire[rune]{R: 0, C: 2}, rgaInsertWire[rune]{R: 0, C: 1}),
		"duplicate":            ins(rgaInsertWire[rune]{R: 0, C: 1}, rgaInsertWire[rune]{R: 0, C: 1}),
		"not in context":       {Replicas: reps, Inserts: []rgaInsertWire[rune]{{R: 0, C: 5}}, Context: ctx},
		"dup across lists":     {Replicas: reps, Inserts: []rgaInsertWire[rune]{{R: 0, C: 2}}, Removes: []rgaRemoveWire{{R: 0, C: 2, TR: 0, TC: 1}}, Context: ctx},
		"move item not before": {Replicas: reps, Moves: []rgaMoveWire{{R: 0, C: 2, TR: 0, TC: 3}}, Context: ctx},
		"move item head":       {Replicas: reps, Moves: []rgaMoveWire{{R: 0, C: 2, TR: 0, TC: 0}}, Context: ctx},
		"remove item head":     {Replicas: reps, Removes: []rgaRemoveWire{{R: 0, C: 2, TR: 0, TC: 0}}, Context: ctx},
		"unused replica":       {Replicas: [][]byte{ridb(1), ridb(2)}, Context: ctx},
		"replica 33 bytes":     {Replicas: [][]byte{append(ridb(1), 0)}, Context: ctx},
		"context overlap":      {Replicas: reps, Context: [][]uint64{{0, 1, 3, 2, 4}}},
		"context dup row":      {Replicas: reps, Context: [][]uint64{{0, 1, 1}, {0, 3, 3}}},
	}
	for name, c := range cases {
		got := *ok.Clone()
		err := wire.Unmarshal(enc(t, c), &got, "rga")
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
			continue
		}
		if !bytes.Equal(enc(t, &got), enc(t, &ok)) {
			t.Errorf("%s: failed decode changed the delta", name)
		}
	}
	// Structural CBOR errors surface as *wire.DecodeError.
	var de *wire.DecodeError
	if err := wire.Unmarshal([]byte{0x84, 0x80, 0x80, 0x80, 0x80}, &ok, "rga"); !errors.As(err, &de) {
		t.Fatalf("4-element array: %v", err)
	}
}

// TestRGAModel checks a single replica against a slice under random
// inserts, removes and moves.
func TestRGAModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := NewRGA[int](rid(1), RGAOptions{})
		var ids []Dot
		var vals []int
		next := 0
		steps := rapid.IntRange(0, 200).Draw(t, "steps")
		for s := 0; s < steps; s++ {
			n := len(ids)
			switch act := rapid.IntRange(0, 3).Draw(t, "act"); {
			case act <= 1 || n == 0:
				i := rapid.IntRange(0, n).Draw(t, "i")
				id, _, err := r.InsertAt(i, next)
				if err != nil {
					t.Fatal(err)
				}
				ids = slices.Insert(ids, i, id)
				vals = slices.Insert(vals, i, next)
				next++
			case act == 2:
				i := rapid.IntRange(0, n-1).Draw(t, "i")
				if _, err := r.Remove(ids[i]); err != nil {
					t.Fatal(err)
				}
				ids = slices.Delete(ids, i, i+1)
				vals = slices.Delete(vals, i, i+1)
			default:
				i := rapid.IntRange(0, n-1).Draw(t, "i")
				j := rapid.IntRange(-1, n-1).Draw(t, "after")
				after := Dot{}
				if j >= 0 {
					after = ids[j]
				}
				if _, err := r.Move(ids[i], after); err != nil {
					t.Fatal(err)
				}
				if j != i { // moving after itself keeps the place
					id, v := ids[i], vals[i]
					ids = slices.Delete(ids, i, i+1)
					vals = slices.Delete(vals, i, i+1)
					k := 0
					if j >= 0 {
						k = slices.Index(ids, after) + 1
					}
					ids = slices.Insert(ids, k, id)
					vals = slices.Insert(vals, k, v)
				}
			}
			if !slices.Equal(r.IDs(), ids) || !slices.Equal(r.Values(), vals) || r.Len() != len(ids) {
				t.Fatalf("got %v, want %v", r.Values(), vals)
			}
		}
		for i, id := range ids {
			if k, ok := r.IndexOf(id); !ok || k != i {
				t.Fatalf("IndexOf(%v) = %d %v, want %d", id, k, ok, i)
			}
			if gid, v, ok := r.At(i); !ok || gid != id || v != vals[i] {
				t.Fatalf("At(%d) wrong", i)
			}
		}
	})
}

func TestRGADeltaOps(t *testing.T) {
	a := NewRGA[string](rid(1), RGAOptions{})
	x, dx, _ := a.InsertAfter(Dot{}, "x")
	y, dy, _ := a.InsertAfter(x, "y")
	dm, _ := a.Move(y, Dot{})
	dr, _ := a.Remove(x)
	want := []RGAOp[string]{
		{Kind: RGAInsert, ID: x, Value: "x"},
		{Kind: RGAInsert, ID: y, Origin: x, Value: "y"},
		{Kind: RGAMove, ID: Dot{rid(1), 3}, Target: y},
		{Kind: RGARemove, ID: Dot{rid(1), 4}, Target: x},
	}
	for i, d := range []*RGADelta[string]{dx, dy, dm, dr} {
		ops := d.Ops()
		if len(ops) != 1 || ops[0] != want[i] {
			t.Errorf("delta %d: ops %+v, want %+v", i, ops, want[i])
		}
		if ids := d.OpIDs(); len(ids) != 1 || ids[0] != want[i].ID {
			t.Errorf("delta %d: OpIDs %v", i, ids)
		}
		if ctx := d.Context(); !ctx.Contains(want[i].ID) || len(ctx.Replicas()) != 1 {
			t.Errorf("delta %d: context %v", i, ctx.m)
		}
	}
	if RGAMove.String() != "move" || RGAOpKind(0).String() != "invalid" {
		t.Error("RGAOpKind.String")
	}
}

func TestMarshalRefusesUndecodable(t *testing.T) {
	if _, err := marshalChecked("test", []byte{}, [][]uint64{make([]uint64, wire.MaxElements+1)}); err == nil {
		t.Error("context row over MaxElements accepted")
	}
	if _, err := marshalChecked("test", make([]byte, wire.MaxMessageSize), nil); !errors.Is(err, wire.ErrTooLarge) {
		t.Errorf("oversized message: %v", err)
	}
}
