package crdt

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/wire"
)

func TestTimestampOrder(t *testing.T) {
	ts := []Timestamp{
		{},
		{Wall: 1, Logical: 0, Replica: rid(9)},
		{Wall: 1, Logical: 1, Replica: rid(1)},
		{Wall: 1, Logical: 1, Replica: rid(2)},
		{Wall: 2, Logical: 0, Replica: rid(0)},
	}
	for i := range ts {
		for j := range ts {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := ts[i].Compare(ts[j]); got != want {
				t.Errorf("Compare(%v, %v) = %d, want %d", ts[i], ts[j], got, want)
			}
		}
	}
	// The replica tie-break is plain byte order, not any hash: 0x01ff.. < 0x0200..
	var a, b ReplicaID
	a[0], a[1] = 1, 0xff
	b[0] = 2
	if (Timestamp{Wall: 5, Replica: a}).Compare(Timestamp{Wall: 5, Replica: b}) != -1 {
		t.Fatal("replica tie-break is not lexicographic")
	}
}

func TestHLCMonotonic(t *testing.T) {
	clk := newManualClock(1000)
	h := NewHLC(clk, rid(1), 0)
	t1 := h.Now()
	if t1.Wall != 1000 || t1.Logical != 0 || t1.Replica != rid(1) {
		t.Fatalf("first reading %v", t1)
	}
	t2 := h.Now() // clock stands still
	if t2.Compare(t1) <= 0 || t2.Wall != 1000 || t2.Logical != 1 {
		t.Fatalf("second reading %v not after %v", t2, t1)
	}
	clk.set(500) // clock steps backwards
	t3 := h.Now()
	if t3.Compare(t2) <= 0 {
		t.Fatalf("reading %v went backwards after clock step", t3)
	}
	clk.set(2000)
	if t4 := h.Now(); t4.Wall != 2000 || t4.Logical != 0 {
		t.Fatalf("reading %v did not follow physical time", t4)
	}
}

func TestHLCUpdate(t *testing.T) {
	clk := newManualClock(1000)
	h := NewHLC(clk, rid(1), 10*time.Second)
	remote := Timestamp{Wall: 5000, Logical: 7, Replica: rid(2)}
	if err := h.Update(remote); err != nil {
		t.Fatal(err)
	}
	if got := h.Now(); got.Compare(remote) <= 0 || got.Wall != 5000 || got.Logical != 8 {
		t.Fatalf("after Update(%v), Now() = %v", remote, got)
	}
	// Older remote readings do not move the clock back.
	if err := h.Update(Timestamp{Wall: 10, Replica: rid(2)}); err != nil {
		t.Fatal(err)
	}
	if got := h.Now(); got.Wall != 5000 || got.Logical != 9 {
		t.Fatalf("old remote moved the clock: %v", got)
	}
	// Too far ahead: refused, clock unchanged.
	far := Timestamp{Wall: 1000 + 10_001, Replica: rid(2)}
	if err := h.Update(far); !errors.Is(err, ErrClockDrift) {
		t.Fatalf("Update(far) = %v, want ErrClockDrift", err)
	}
	if got := h.Now(); got.Wall != 5000 {
		t.Fatalf("refused update moved the clock: %v", got)
	}
	// Exactly at the limit is accepted.
	if err := h.Update(Timestamp{Wall: 1000 + 10_000, Replica: rid(2)}); err != nil {
		t.Fatalf("update at the drift limit: %v", err)
	}
}

func TestHLCLogicalOverflow(t *testing.T) {
	clk := newManualClock(1000)
	h := NewHLC(clk, rid(1), 0)
	if err := h.Update(Timestamp{Wall: 1000, Logical: math.MaxUint32, Replica: rid(2)}); err != nil {
		t.Fatal(err)
	}
	got := h.Now()
	if got.Wall != 1001 || got.Logical != 0 {
		t.Fatalf("after logical overflow Now() = %v, want wall 1001 logical 0", got)
	}
}

func TestHLCBeforeEpoch(t *testing.T) {
	h := NewHLC(newManualClock(-5000), rid(1), 0)
	if got := h.Now(); got.Wall != 0 {
		t.Fatalf("pre-epoch clock gave wall %d", got.Wall)
	}
}

func TestLWWRegister(t *testing.T) {
	clkA, clkB := newManualClock(1000), newManualClock(900) // B's clock lags
	ha, hb := NewHLC(clkA, rid(1), 0), NewHLC(clkB, rid(2), 0)
	var a, b LWWRegister[string]
	if a.IsSet() {
		t.Fatal("zero register is set")
	}
	da, err := a.Set(ha, "from a")
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := b.Merge(da); err != nil || !changed || b.Value() != "from a" {
		t.Fatalf("merge into b: changed=%v err=%v value=%q", changed, err, b.Value())
	}
	// B's physical clock is behind A's write, but a local write after seeing
	// A's value must still win.
	db, err := b.Set(hb, "from b")
	if err != nil {
		t.Fatal(err)
	}
	if db.Timestamp().Compare(da.Timestamp()) <= 0 {
		t.Fatalf("b's write %v does not beat a's %v", db.Timestamp(), da.Timestamp())
	}
	if changed, _ := a.Merge(db); !changed || a.Value() != "from b" {
		t.Fatalf("a did not take b's later write: %q", a.Value())
	}
	// Stale writes and duplicates are ignored.
	if changed, _ := a.Merge(da); changed || a.Value() != "from b" {
		t.Fatal("stale write won")
	}
	if changed, _ := a.Merge(db); changed {
		t.Fatal("duplicate reported a change")
	}
}

func TestLWWConcurrentTieBreak(t *testing.T) {
	// Same wall and logical: the greater replica ID wins on every replica.
	x := NewLWWRegister("x", Timestamp{Wall: 7, Replica: rid(1)})
	y := NewLWWRegister("y", Timestamp{Wall: 7, Replica: rid(2)})
	r1, r2 := x, y
	if _, err := r1.Merge(y); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Merge(x); err != nil {
		t.Fatal(err)
	}
	if r1.Value() != "y" || r2.Value() != "y" {
		t.Fatalf("got %q and %q, want both y", r1.Value(), r2.Value())
	}
	// Identical timestamps (a faulty replica): the greater encoding wins,
	// whichever side merges.
	ts := Timestamp{Wall: 7, Replica: rid(3)}
	p, q := NewLWWRegister("apple", ts), NewLWWRegister("banana", ts)
	p2, q2 := p, q
	p2.Merge(q)
	q2.Merge(p)
	if p2.Value() != q2.Value() || p2.Value() != "banana" {
		t.Fatalf("exact tie: %q vs %q", p2.Value(), q2.Value())
	}
}

func TestLWWSetRefusesFarFuture(t *testing.T) {
	clk := newManualClock(1000)
	h := NewHLC(clk, rid(1), time.Second)
	r := NewLWWRegister(1, Timestamp{Wall: 1_000_000, Replica: rid(2)})
	if _, err := r.Set(h, 2); !errors.Is(err, ErrClockDrift) {
		t.Fatalf("Set = %v, want ErrClockDrift", err)
	}
	if r.Value() != 1 {
		t.Fatal("refused Set changed the value")
	}
}

func TestLWWWire(t *testing.T) {
	r := NewLWWRegister(uint8(3), Timestamp{Wall: 123456, Logical: 9, Replica: rid(4)})
	var got LWWRegister[uint8]
	if err := wire.Unmarshal(enc(t, r), &got, "lww"); err != nil {
		t.Fatal(err)
	}
	if got != r {
		t.Fatalf("round trip: %+v", got)
	}
	var zero LWWRegister[string]
	var z2 LWWRegister[string]
	if err := wire.Unmarshal(enc(t, zero), &z2, "lww"); err != nil || z2.IsSet() {
		t.Fatalf("zero register round trip: %v %+v", err, z2)
	}
	bad := map[string]any{
		"short replica":   lwwWire[uint8]{Value: 1, Wall: 1, Replica: make([]byte, 5)},
		"unset has value": lwwWire[uint8]{Value: 1, Replica: make([]byte, 32)},
	}
	for name, b := range bad {
		if err := wire.Unmarshal(enc(t, b), &got, "lww"); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	var ts Timestamp
	if err := wire.Unmarshal(enc(t, r.Timestamp()), &ts, "ts"); err != nil || ts != r.Timestamp() {
		t.Fatalf("timestamp round trip: %v %v", err, ts)
	}
	if err := wire.Unmarshal(enc(t, timestampWire{Wall: 1, Replica: []byte{1}}), &ts, "ts"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short timestamp replica: %v", err)
	}
	if err := wire.Unmarshal(enc(t, []uint64{1, 1 << 40, 3}), &ts, "ts"); err == nil {
		t.Fatal("logical > 32 bits accepted")
	}
}
