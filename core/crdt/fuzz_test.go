package crdt

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/saorsa-labs/x0x-go/core/wire"
)

// Fuzz targets for every decoder of network input. Each checks that
// decoding never panics, that whatever decodes re-encodes to a stable
// canonical form, and, for deltas, that merging the decoded delta into a
// live replica either succeeds idempotently or fails with a documented
// error and leaves the replica unchanged.

// roundTrip decodes b into a fresh value via dec, and if that succeeds,
// checks enc(dec(b)) is a fixed point of decode+encode.
func roundTrip[V any](t *testing.T, b []byte, what string) (*V, bool) {
	v := new(V)
	if err := wire.Unmarshal(b, v, what); err != nil {
		var de *wire.DecodeError
		if !errors.Is(err, ErrMalformed) && !errors.As(err, &de) && !errors.Is(err, wire.ErrTooLarge) {
			t.Fatalf("decode error of unexpected type %T: %v", err, err)
		}
		return nil, false
	}
	e1, err := wire.Marshal(v)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	v2 := new(V)
	if err := wire.Unmarshal(e1, v2, what); err != nil {
		t.Fatalf("canonical re-encoding does not decode: %v", err)
	}
	e2, err := wire.Marshal(v2)
	if err != nil || !bytes.Equal(e1, e2) {
		t.Fatalf("encoding not stable: %v", err)
	}
	return v, true
}

func FuzzVersionVector(f *testing.F) {
	var v VersionVector
	v.Set(rid(1), 3)
	v.Set(rid(2), MaxCounter)
	f.Add(enc(f, v))
	f.Add(enc(f, VersionVector{}))
	f.Add([]byte{0x81, 0x82, 0x41, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, ok := roundTrip[VersionVector](t, b, "vv"); ok {
			for _, r := range got.Replicas() {
				if c := got.Get(r); c < 1 || c > MaxCounter {
					t.Fatalf("decoded counter %d", c)
				}
			}
		}
	})
}

func FuzzTimestamp(f *testing.F) {
	f.Add(enc(f, Timestamp{Wall: 1, Logical: 2, Replica: rid(3)}))
	f.Add([]byte{0x83, 0x00, 0x00, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		roundTrip[Timestamp](t, b, "timestamp")
	})
}

func FuzzLWWRegister(f *testing.F) {
	f.Add(enc(f, NewLWWRegister("title", Timestamp{Wall: 9, Replica: rid(1)})))
	f.Add(enc(f, LWWRegister[string]{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, ok := roundTrip[LWWRegister[string]](t, b, "lww")
		if !ok {
			return
		}
		r := NewLWWRegister("mine", Timestamp{Wall: 9, Logical: 1, Replica: rid(2)})
		before := r
		changed, err := r.Merge(*d)
		if err != nil {
			t.Fatal(err)
		}
		if changed != (r != before) {
			t.Fatal("Merge misreported a change")
		}
		if again, _ := r.Merge(*d); again {
			t.Fatal("Merge not idempotent")
		}
	})
}

func orsetFixture(tb testing.TB) *ORSet[string] {
	a, b := NewORSet[string](rid(1)), NewORSet[string](rid(2))
	for _, v := range []string{"x", "y", "z"} {
		d, err := a.Add(v)
		if err != nil {
			tb.Fatal(err)
		}
		if err := b.Merge(d); err != nil {
			tb.Fatal(err)
		}
	}
	b.Remove("y")
	if _, err := b.Add("x"); err != nil {
		tb.Fatal(err)
	}
	return b
}

func FuzzORSetDelta(f *testing.F) {
	s := orsetFixture(f)
	f.Add(enc(f, s.State()))
	f.Add(enc(f, s.DeltaSince(VersionVector{})))
	d, _ := s.Add("w")
	f.Add(enc(f, d))
	f.Add(enc(f, s.Remove("x")))
	f.Add(enc(f, NewORSetDelta[string]()))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, ok := roundTrip[ORSetDelta[string]](t, b, "orset")
		if !ok {
			return
		}
		s := orsetFixture(t)
		before := enc(t, s.State())
		if err := s.Merge(d); err != nil {
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("merge error %v", err)
			}
			if !bytes.Equal(before, enc(t, s.State())) {
				t.Fatal("failed merge changed the set")
			}
			return
		}
		after := enc(t, s.State())
		if err := s.Merge(d); err != nil || !bytes.Equal(after, enc(t, s.State())) {
			t.Fatalf("merge not idempotent (%v)", err)
		}
		// Every live dot stays inside the context; the state re-decodes.
		for x := range s.k.byDot {
			if !s.k.ctx.Contains(x) {
				t.Fatalf("live dot %v outside the context", x)
			}
		}
		var back ORSetDelta[string]
		if err := wire.Unmarshal(after, &back, "orset"); err != nil {
			t.Fatalf("merged state does not decode: %v", err)
		}
		// Local operations still work.
		if _, err := s.Add("new"); err != nil && !errors.Is(err, ErrCounterRange) {
			t.Fatal(err)
		}
	})
}

func rgaFixture(tb testing.TB) (*RGA[rune], []*RGADelta[rune]) {
	a := NewRGA[rune](rid(1), RGAOptions{MaxPending: 8})
	var ds []*RGADelta[rune]
	for i, c := range "abcdef" {
		_, d, err := a.InsertAt(i, c)
		if err != nil {
			tb.Fatal(err)
		}
		ds = append(ds, d)
	}
	d, _ := a.RemoveAt(2)
	ds = append(ds, d)
	id, _, _ := a.At(0)
	d, _ = a.Move(id, Dot{})
	ds = append(ds, d)
	return a, ds
}

func rgaView(r *RGA[rune]) string { return fmt.Sprint(r.IDs(), string(r.Values()), r.Pending()) }

func FuzzRGADelta(f *testing.F) {
	a, ds := rgaFixture(f)
	f.Add(enc(f, a.State()))
	for _, d := range ds {
		f.Add(enc(f, d))
	}
	b := NewRGA[rune](rid(2), RGAOptions{})
	if err := b.Merge(a.State()); err != nil {
		f.Fatal(err)
	}
	vv := b.VersionVector()
	_, d, _ := b.InsertAt(1, 'Z')
	f.Add(enc(f, d))
	b.Move(ds[0].ops[0].id, ds[3].ops[0].id)
	b.RemoveAt(0)
	f.Add(enc(f, b.DeltaSince(vv)))
	f.Add(enc(f, NewRGADelta[rune]()))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, ok := roundTrip[RGADelta[rune]](t, data, "rga")
		if !ok {
			return
		}
		// Merge into a replica that has only part of the fixture, so that
		// the delta may reference operations that are missing.
		r := NewRGA[rune](rid(3), RGAOptions{MaxPending: 8})
		_, fx := rgaFixture(t)
		for _, x := range fx[:4] {
			if err := r.Merge(x); err != nil {
				t.Fatal(err)
			}
		}
		before, beforeView := enc(t, r.State()), rgaView(r)
		if err := r.Merge(d); err != nil {
			if !errors.Is(err, ErrConflict) && !errors.Is(err, ErrPendingFull) {
				t.Fatalf("merge error %v", err)
			}
			if !bytes.Equal(before, enc(t, r.State())) || rgaView(r) != beforeView {
				t.Fatal("failed merge changed the replica")
			}
			return
		}
		if r.Pending() > 8 {
			t.Fatalf("%d pending, limit 8", r.Pending())
		}
		checkRGAInvariants(t, r)
		after, afterView := enc(t, r.State()), rgaView(r)
		if err := r.Merge(d); err != nil || !bytes.Equal(after, enc(t, r.State())) || rgaView(r) != afterView {
			t.Fatalf("merge not idempotent (%v)", err)
		}
		// The state is self-consistent: it decodes, and a fresh replica fed
		// it shows the same elements.
		var back RGADelta[rune]
		if err := wire.Unmarshal(after, &back, "rga"); err != nil {
			t.Fatalf("merged state does not decode: %v", err)
		}
		fresh := NewRGA[rune](rid(4), RGAOptions{})
		if err := fresh.Merge(&back); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(fresh.IDs(), string(fresh.Values())) != fmt.Sprint(r.IDs(), string(r.Values())) {
			t.Fatal("state transfer changes the visible sequence")
		}
		// The rest of the fixture still merges and local edits still work.
		for _, x := range fx[4:] {
			if err := r.Merge(x); err != nil && !errors.Is(err, ErrConflict) && !errors.Is(err, ErrPendingFull) {
				t.Fatal(err)
			}
		}
		if _, _, err := r.InsertAt(r.Len(), '!'); err != nil && !errors.Is(err, ErrCounterRange) {
			t.Fatal(err)
		}
		if r.Len() > 0 {
			if _, err := r.RemoveAt(0); err != nil && !errors.Is(err, ErrCounterRange) {
				t.Fatal(err)
			}
		}
	})
}

// FuzzRGAMergeSequence builds small, well-formed but arbitrary deltas from
// the fuzz input (operations of three replicas, referencing each other
// freely: missing, removed or move slots, duplicated and conflicting
// dots) and merges them into one replica with a small pending buffer. It
// checks no panic, only documented errors, atomic failure, the internal
// invariants, and that a full-state transfer preserves the visible
// sequence.
func FuzzRGAMergeSequence(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 0, 0, 0, 0, 2, 1, 0, 1, 1, 1, 3, 1, 0, 1, 2, 2, 4, 0, 0, 2})
	f.Add([]byte{0, 1, 5, 0, 0, 0, 2, 1, 6, 0, 1, 5, 1, 2, 7, 1, 1, 5, 0, 0, 3, 3, 1, 5})
	f.Fuzz(rgaMergeSequence)
}

func rgaMergeSequence(t *testing.T, data []byte) {
	{
		reps := []ReplicaID{rid(1), rid(2), rid(3)}
		dot := func(r, c byte) Dot { return Dot{reps[int(r)%3], uint64(c%12) + 1} }
		r := NewRGA[rune](rid(9), RGAOptions{MaxPending: 4})
		cur := NewRGADelta[rune]()
		flush := func() {
			raw, err := wire.Marshal(cur)
			cur = NewRGADelta[rune]()
			if err != nil {
				t.Fatal(err)
			}
			var d RGADelta[rune]
			if err := wire.Unmarshal(raw, &d, "rga"); err != nil {
				return // e.g. a reference not below its operation
			}
			before, view := enc(t, r.State()), rgaSummary(r)
			if err := r.Merge(&d); err != nil {
				if !errors.Is(err, ErrConflict) && !errors.Is(err, ErrPendingFull) {
					t.Fatalf("merge error %v", err)
				}
				if !bytes.Equal(before, enc(t, r.State())) || view != rgaSummary(r) {
					t.Fatal("failed merge changed the replica")
				}
				return
			}
			checkRGAInvariants(t, r)
		}
		for len(data) >= 6 {
			b := data[:6]
			data = data[6:]
			op := rgaOp[rune]{id: dot(b[1], b[2])}
			if b[3]%4 != 0 {
				op.origin = dot(b[3], b[4])
			}
			switch b[0] % 4 {
			case 0, 1:
				op.kind, op.value = opInsert, rune('a'+b[5]%26)
			case 2:
				op.kind, op.target = opMove, dot(b[5], b[4]+1)
			case 3:
				op.kind, op.origin, op.target = opRemove, Dot{}, dot(b[3], b[4])
			}
			one := &RGADelta[rune]{ops: []rgaOp[rune]{op}}
			one.ctx.Add(op.id)
			if b[5]%5 == 0 && op.id.Counter > 1 { // also claim skipped counters
				one.ctx.addRange(op.id.Replica, 1, op.id.Counter)
			}
			if err := cur.Join(one); err != nil {
				flush()
				continue
			}
			if b[0]%3 == 0 {
				flush()
			}
		}
		flush()
		var back RGADelta[rune]
		if err := wire.Unmarshal(enc(t, r.State()), &back, "rga"); err != nil {
			t.Fatalf("state does not decode: %v", err)
		}
		fresh := NewRGA[rune](rid(8), RGAOptions{})
		if err := fresh.Merge(&back); err != nil {
			t.Fatal(err)
		}
		checkRGAInvariants(t, fresh)
		if rgaSummary(fresh) != rgaSummary(r) {
			t.Fatalf("state transfer changed the sequence: %s vs %s", rgaSummary(fresh), rgaSummary(r))
		}
	}
}
