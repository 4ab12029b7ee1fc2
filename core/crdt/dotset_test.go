package crdt

import (
	"errors"
	"testing"

	"github.com/saorsa-labs/x0x-go/core/wire"
	"pgregory.net/rapid"
)

// checkCanonical fails if s's ranges are not sorted, disjoint,
// non-adjacent and within [1, MaxCounter].
func checkCanonical(t *rapid.T, s *DotSet) {
	for r, sp := range s.m {
		if len(sp) == 0 {
			t.Fatalf("replica %v has an empty range list", r.Short())
		}
		for i, x := range sp {
			if x.lo < 1 || x.hi > MaxCounter || x.lo > x.hi {
				t.Fatalf("bad range %v", x)
			}
			if i > 0 && x.lo <= sp[i-1].hi+1 {
				t.Fatalf("ranges %v and %v overlap or touch", sp[i-1], x)
			}
		}
	}
}

// TestDotSetModel checks DotSet against a plain map of dots under random
// adds, range adds, removes and unions.
func TestDotSetModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		reps := []ReplicaID{rid(1), rid(2), rid(3)}
		var s DotSet
		model := map[Dot]bool{}
		const top = 40
		steps := rapid.IntRange(0, 60).Draw(t, "steps")
		for i := 0; i < steps; i++ {
			r := reps[rapid.IntRange(0, 2).Draw(t, "r")]
			lo := rapid.Uint64Range(1, top).Draw(t, "lo")
			switch rapid.IntRange(0, 3).Draw(t, "action") {
			case 0:
				s.Add(Dot{r, lo})
				model[Dot{r, lo}] = true
			case 1:
				hi := rapid.Uint64Range(lo, top).Draw(t, "hi")
				s.addRange(r, lo, hi)
				for c := lo; c <= hi; c++ {
					model[Dot{r, c}] = true
				}
			case 2:
				s.remove(Dot{r, lo})
				delete(model, Dot{r, lo})
			case 3:
				var o DotSet
				hi := rapid.Uint64Range(lo, top).Draw(t, "hi")
				o.addRange(r, lo, hi)
				s.Union(&o)
				for c := lo; c <= hi; c++ {
					model[Dot{r, c}] = true
				}
			}
			checkCanonical(t, &s)
		}
		for _, r := range reps {
			var prefix, mx uint64
			for c := uint64(1); c <= top+1; c++ {
				if got := s.Contains(Dot{r, c}); got != model[Dot{r, c}] {
					t.Fatalf("Contains(%v:%d) = %v, model %v", r.Short(), c, got, model[Dot{r, c}])
				}
				if model[Dot{r, c}] {
					mx = c
					if prefix == c-1 {
						prefix = c
					}
				}
			}
			if got := s.Max(r); got != mx {
				t.Fatalf("Max = %d, want %d", got, mx)
			}
			if got := s.VersionVector().Get(r); got != prefix {
				t.Fatalf("VersionVector()[%v] = %d, want %d", r.Short(), got, prefix)
			}
		}
		c := s.Clone()
		if !c.Equal(&s) {
			t.Fatal("clone differs")
		}
		c.Add(Dot{rid(9), 1})
		if s.Contains(Dot{rid(9), 1}) || c.Equal(&s) {
			t.Fatal("clone shares storage with the original")
		}
	})
}

func TestDotSetIgnoresInvalidCounters(t *testing.T) {
	var s DotSet
	s.Add(Dot{rid(1), 0})
	s.Add(Dot{rid(1), MaxCounter + 1})
	if !s.IsEmpty() {
		t.Fatal("counters outside [1, MaxCounter] were added")
	}
	s.Add(Dot{rid(1), MaxCounter})
	if !s.Contains(Dot{rid(1), MaxCounter}) {
		t.Fatal("MaxCounter not added")
	}
}

func TestDotSetAbove(t *testing.T) {
	var s DotSet
	s.addRange(rid(1), 1, 10)
	s.addRange(rid(1), 15, 20)
	s.addRange(rid(2), 3, 4)
	var vv VersionVector
	vv.Set(rid(1), 16)
	vv.Set(rid(2), 9)
	a := s.above(vv)
	var want DotSet
	want.addRange(rid(1), 17, 20)
	if !a.Equal(&want) {
		t.Fatalf("above = %v, want %v", a.m, want.m)
	}
}

func TestVersionVectorCompare(t *testing.T) {
	mk := func(kv ...uint64) VersionVector {
		var v VersionVector
		for i := 0; i < len(kv); i += 2 {
			v.Set(rid(byte(kv[i])), kv[i+1])
		}
		return v
	}
	cases := []struct {
		a, b VersionVector
		want Ordering
	}{
		{mk(), mk(), Equal},
		{mk(1, 2), mk(1, 2), Equal},
		{mk(1, 1), mk(1, 2), Before},
		{mk(), mk(1, 1), Before},
		{mk(1, 3), mk(1, 2), After},
		{mk(1, 3, 2, 1), mk(1, 3), After},
		{mk(1, 3), mk(1, 2, 2, 1), Concurrent},
		{mk(1, 0), mk(), Equal}, // a zero entry is no entry
	}
	for i, c := range cases {
		if got := c.a.Compare(c.b); got != c.want {
			t.Errorf("case %d: Compare = %v, want %v", i, got, c.want)
		}
	}
	a := mk(1, 3, 2, 1)
	a.Merge(mk(2, 5, 3, 1))
	if !a.Equal(mk(1, 3, 2, 5, 3, 1)) {
		t.Fatalf("Merge = %v", a.m)
	}
	if !a.Contains(Dot{rid(2), 5}) || a.Contains(Dot{rid(2), 6}) || a.Contains(Dot{rid(2), 0}) || a.Contains(Dot{rid(4), 1}) {
		t.Fatal("Contains wrong")
	}
	b := a.Clone()
	b.Set(rid(1), 99)
	if a.Get(rid(1)) != 3 {
		t.Fatal("Clone shares storage")
	}
}

func TestVersionVectorWire(t *testing.T) {
	var v VersionVector
	v.Set(rid(2), 7)
	v.Set(rid(1), MaxCounter)
	b := enc(t, v)
	var got VersionVector
	if err := wire.Unmarshal(b, &got, "vv"); err != nil {
		t.Fatal(err)
	}
	if !got.Equal(v) {
		t.Fatalf("round trip: %v", got.m)
	}
	// Malformed inputs.
	short := []vvEntryWire{{R: make([]byte, 31), C: 1}}
	unsorted := []vvEntryWire{{R: ridb(2), C: 1}, {R: ridb(1), C: 1}}
	dup := []vvEntryWire{{R: ridb(1), C: 1}, {R: ridb(1), C: 2}}
	zero := []vvEntryWire{{R: ridb(1), C: 0}}
	big := []vvEntryWire{{R: ridb(1), C: MaxCounter + 1}}
	for name, bad := range map[string]any{"short": short, "unsorted": unsorted, "dup": dup, "zero": zero, "big": big} {
		err := wire.Unmarshal(enc(t, bad), &got, "vv")
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
		if !got.Equal(v) {
			t.Errorf("%s: failed decode changed the vector", name)
		}
	}
	if err := wire.Unmarshal([]byte{0x01}, &got, "vv"); err == nil {
		t.Error("non-array accepted")
	}
}
