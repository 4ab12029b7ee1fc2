package crdt

import (
	"bytes"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

func mustAdd[T comparable](t *testing.T, s *ORSet[T], v T) *ORSetDelta[T] {
	t.Helper()
	d, err := s.Add(v)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustMerge[T comparable](t *testing.T, s *ORSet[T], ds ...*ORSetDelta[T]) {
	t.Helper()
	for _, d := range ds {
		if err := s.Merge(d); err != nil {
			t.Fatal(err)
		}
	}
}

func sortedStrings(s *ORSet[string]) []string {
	out := s.Elements()
	sort.Strings(out)
	return out
}

func TestORSetBasics(t *testing.T) {
	s := NewORSet[string](rid(1))
	mustAdd(t, s, "a")
	mustAdd(t, s, "b")
	mustAdd(t, s, "a") // re-add replaces the old dot, does not duplicate
	if got := sortedStrings(s); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("elements %v", got)
	}
	if ds := s.Dots("a"); len(ds) != 1 || ds[0] != (Dot{rid(1), 3}) {
		t.Fatalf("dots of a: %v", ds)
	}
	s.Remove("a")
	if s.Contains("a") || !s.Contains("b") || s.Len() != 1 {
		t.Fatal("remove failed")
	}
	if d := s.Remove("zzz"); !d.IsEmpty() {
		t.Fatal("removing an absent element produced a non-empty delta")
	}
	s.Clear()
	if s.Len() != 0 {
		t.Fatal("clear failed")
	}
	// The causal context stays one compact range: no tombstones.
	if ctx := s.Context(); len(ctx.m) != 1 || len(ctx.m[rid(1)]) != 1 {
		t.Fatalf("context not compact: %v", ctx.m)
	}
	if vv := s.VersionVector(); vv.Get(rid(1)) != 3 {
		t.Fatalf("version vector %v", vv.m)
	}
}

func TestORSetAddWins(t *testing.T) {
	a, b := NewORSet[string](rid(1)), NewORSet[string](rid(2))
	d1 := mustAdd(t, a, "x")
	mustMerge(t, b, d1)
	// Concurrently: a removes x, b re-adds x.
	rm := a.Remove("x")
	add := mustAdd(t, b, "x")
	mustMerge(t, a, add)
	mustMerge(t, b, rm)
	if !a.Contains("x") || !b.Contains("x") {
		t.Fatalf("concurrent add lost: a=%v b=%v", a.Contains("x"), b.Contains("x"))
	}
	if !bytes.Equal(enc(t, a.State()), enc(t, b.State())) {
		t.Fatal("replicas diverged")
	}
	// A remove that has seen both adds removes x everywhere.
	mustMerge(t, b, a.Remove("x"))
	if b.Contains("x") {
		t.Fatal("observed remove did not remove")
	}
}

func TestORSetConcurrentAddsKeepBoth(t *testing.T) {
	a, b := NewORSet[string](rid(1)), NewORSet[string](rid(2))
	da, db := mustAdd(t, a, "claim"), mustAdd(t, b, "claim")
	mustMerge(t, a, db)
	mustMerge(t, b, da)
	want := []Dot{{rid(1), 1}, {rid(2), 1}}
	if !slices.Equal(a.Dots("claim"), want) || !slices.Equal(b.Dots("claim"), want) {
		t.Fatalf("dots a=%v b=%v want %v", a.Dots("claim"), b.Dots("claim"), want)
	}
}

func TestORSetDeltaSince(t *testing.T) {
	a, b := NewORSet[string](rid(1)), NewORSet[string](rid(2))
	mustAdd(t, a, "keep")
	mustAdd(t, a, "gone")
	mustMerge(t, b, a.DeltaSince(b.VersionVector()))
	if !b.Contains("keep") || !b.Contains("gone") {
		t.Fatal("initial sync failed")
	}
	vv := b.VersionVector()
	a.Remove("gone") // removes a dot b already has (<= vv)
	mustAdd(t, a, "new")
	d := a.DeltaSince(vv)
	if slices.Contains(d.Elements(), "keep") {
		t.Fatal("delta resent an element the peer has")
	}
	mustMerge(t, b, d)
	if !b.Contains("keep") || b.Contains("gone") || !b.Contains("new") {
		t.Fatalf("after delta: %v", sortedStrings(b))
	}
	if !bytes.Equal(enc(t, a.State()), enc(t, b.State())) {
		t.Fatal("delta since vv did not equal full-state merge")
	}
}

func TestORSetMergeConflict(t *testing.T) {
	a := NewORSet[string](rid(1))
	mustAdd(t, a, "x")
	before := enc(t, a.State())
	// A forged delta that files a's dot under another element.
	forged := NewORSetDelta[string]()
	forged.k.put("y", Dot{rid(1), 1})
	forged.k.ctx.Add(Dot{rid(1), 1})
	if err := a.Merge(forged); !errors.Is(err, ErrConflict) {
		t.Fatalf("Merge = %v, want ErrConflict", err)
	}
	if !bytes.Equal(before, enc(t, a.State())) {
		t.Fatal("failed merge changed the set")
	}
	j := a.State()
	if err := j.Join(forged); !errors.Is(err, ErrConflict) {
		t.Fatalf("Join = %v, want ErrConflict", err)
	}
}

func TestORSetCounterExhausted(t *testing.T) {
	a := NewORSet[string](rid(1))
	a.k.ctx.addRange(rid(1), 1, MaxCounter)
	if _, err := a.Add("x"); !errors.Is(err, ErrCounterRange) {
		t.Fatalf("Add = %v, want ErrCounterRange", err)
	}
	if a.Contains("x") {
		t.Fatal("failed add changed the set")
	}
}

func TestORSetWireRoundTrip(t *testing.T) {
	a, b := NewORSet[string](rid(1)), NewORSet[string](rid(2))
	mustAdd(t, a, "x")
	mustAdd(t, a, "y")
	mustMerge(t, b, a.State())
	mustAdd(t, b, "x")
	a.Remove("y")
	mustMerge(t, b, a.State())
	st := b.State()
	raw := enc(t, st)
	var got ORSetDelta[string]
	if err := wire.Unmarshal(raw, &got, "orset"); err != nil {
		t.Fatal(err)
	}
	if again := enc(t, &got); !bytes.Equal(raw, again) {
		t.Fatal("re-encoding differs")
	}
	c := NewORSet[string](rid(3))
	mustMerge(t, c, &got)
	if !bytes.Equal(enc(t, c.State()), raw) {
		t.Fatal("merged decoded state differs")
	}
}

func TestORSetWireRejects(t *testing.T) {
	elem := func(s string) cbor.RawMessage { return enc(t, s) }
	ctx1 := [][]uint64{{0, 1, 1}}
	good := orsetDeltaWire{Replicas: [][]byte{ridb(1)}, Entries: []orsetEntryWire{{Elem: elem("a"), Dots: []uint64{0, 1}}}, Context: ctx1}
	var ok ORSetDelta[string]
	if err := wire.Unmarshal(enc(t, good), &ok, "orset"); err != nil {
		t.Fatalf("good input rejected: %v", err)
	}
	nonCanonical := cbor.RawMessage{0x78, 0x01, 'a'} // "a" with a 1-byte length prefix
	cases := map[string]orsetDeltaWire{
		"short replica":          {Replicas: [][]byte{{1}}, Entries: good.Entries, Context: ctx1},
		"unsorted replicas":      {Replicas: [][]byte{ridb(2), ridb(1)}, Entries: good.Entries, Context: [][]uint64{{0, 1, 1}, {1, 1, 1}}},
		"unused replica":         {Replicas: [][]byte{ridb(1), ridb(2)}, Entries: good.Entries, Context: ctx1},
		"index out of range":     {Replicas: [][]byte{ridb(1)}, Entries: []orsetEntryWire{{Elem: elem("a"), Dots: []uint64{1, 1}}}, Context: ctx1},
		"zero counter":           {Replicas: [][]byte{ridb(1)}, Entries: []orsetEntryWire{{Elem: elem("a"), Dots: []uint64{0, 0}}}, Context: ctx1},
		"odd dots":               {Replicas: [][]byte{ridb(1)}, Entries: []orsetEntryWire{{Elem: elem("a"), Dots: []uint64{0}}}, Context: ctx1},
		"no dots":                {Replicas: [][]byte{ridb(1)}, Entries: []orsetEntryWire{{Elem: elem("a"), Dots: []uint64{}}}, Context: ctx1},
		"dot not in context":     {Replicas: [][]byte{ridb(1)}, Entries: []orsetEntryWire{{Elem: elem("a"), Dots: []uint64{0, 2}}}, Context: ctx1},
		"dot shared by elements": {Replicas: [][]byte{ridb(1)}, Entries: []orsetEntryWire{{Elem: elem("a"), Dots: []uint64{0, 1}}, {Elem: elem("b"), Dots: []uint64{0, 1}}}, Context: ctx1},
		"unsorted elements":      {Replicas: [][]byte{ridb(1)}, Entries: []orsetEntryWire{{Elem: elem("b"), Dots: []uint64{0, 1}}, {Elem: elem("a"), Dots: []uint64{0, 2}}}, Context: [][]uint64{{0, 1, 2}}},
		"non-canonical element":  {Replicas: [][]byte{ridb(1)}, Entries: []orsetEntryWire{{Elem: nonCanonical, Dots: []uint64{0, 1}}}, Context: ctx1},
		"wrong element type":     {Replicas: [][]byte{ridb(1)}, Entries: []orsetEntryWire{{Elem: enc(t, 5), Dots: []uint64{0, 1}}}, Context: ctx1},
		"unsorted dots":          {Replicas: [][]byte{ridb(1)}, Entries: []orsetEntryWire{{Elem: elem("a"), Dots: []uint64{0, 2, 0, 1}}}, Context: [][]uint64{{0, 1, 2}}},
		"context bad range":      {Replicas: [][]byte{ridb(1)}, Context: [][]uint64{{0, 3, 2}}},
		"context touching":       {Replicas: [][]byte{ridb(1)}, Context: [][]uint64{{0, 1, 2, 3, 4}}},
		"context even row":       {Replicas: [][]byte{ridb(1)}, Context: [][]uint64{{0, 1}}},
		"context counter big":    {Replicas: [][]byte{ridb(1)}, Context: [][]uint64{{0, 1, MaxCounter + 1}}},
	}
	for name, c := range cases {
		got := *ok.Clone()
		err := wire.Unmarshal(enc(t, c), &got, "orset")
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
			continue
		}
		var fe *FormatError
		if !errors.As(err, &fe) || fe.What != orsetWhat || !strings.Contains(err.Error(), "malformed orset delta: ") {
			t.Errorf("%s: error %v is not a *FormatError for %q", name, err, orsetWhat)
		}
		if !bytes.Equal(enc(t, &got), enc(t, &ok)) {
			t.Errorf("%s: failed decode changed the delta", name)
		}
	}
}

func TestORSetDeltaAccessors(t *testing.T) {
	a := NewORSet[string](rid(1))
	mustAdd(t, a, "x")
	d := mustAdd(t, a, "y")
	n := 0
	for v, x := range d.All() {
		n++
		if v != "y" || x != (Dot{rid(1), 2}) {
			t.Fatalf("All yielded %q %v", v, x)
		}
	}
	if n != 1 || !slices.Equal(d.Dots(), []Dot{{rid(1), 2}}) || !slices.Equal(d.Elements(), []string{"y"}) {
		t.Fatalf("accessors: n=%d dots=%v elements=%v", n, d.Dots(), d.Elements())
	}
	rm := a.Remove("x")
	if len(rm.Dots()) != 0 || !rm.k.ctx.Contains(Dot{rid(1), 1}) {
		t.Fatal("remove delta should carry only the observed dot in its context")
	}
	var zero ORSetDelta[string] // the zero value is a usable empty delta
	if err := zero.Join(d); err != nil || !slices.Equal(zero.Dots(), d.Dots()) {
		t.Fatalf("join into zero delta: %v", err)
	}
}
