package crdt

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/saorsa-labs/x0x-go/core/wire"
	"pgregory.net/rapid"
)

// crdtUnderTest adapts one CRDT type to the generic convergence harness.
// R is a replica, D a delta (also used for full states).
type crdtUnderTest[R, D any] struct {
	newReplica func(t *rapid.T, id ReplicaID) R
	// op performs one random local operation and returns its delta.
	op    func(t *rapid.T, r R) D
	merge func(r R, d D) error
	state func(r R) D
	// since answers anti-entropy: the delta r's peer needs given the peer's
	// version vector.
	since func(r R, vv VersionVector) D
	vv    func(r R) VersionVector
	// decode is the wire decoder for D.
	decode func(b []byte) (D, error)
	// view renders what a user of the replica observes (elements, order,
	// value), which the encoded state alone may not pin down.
	view func(r R) string
	// check asserts type-specific semantics on the converged replicas,
	// given every delta produced by a local operation.
	check func(t *rapid.T, reps []R, deltas []D)
}

func (c *crdtUnderTest[R, D]) encode(t *rapid.T, d D) []byte {
	b, err := wire.Marshal(d)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

// ship sends d over the wire (encode + decode), as every transfer in the
// simulation does.
func (c *crdtUnderTest[R, D]) ship(t *rapid.T, d D) D {
	out, err := c.decode(c.encode(t, d))
	if err != nil {
		t.Fatalf("decode of an encoded delta failed: %v", err)
	}
	return out
}

func (c *crdtUnderTest[R, D]) mustMerge(t *rapid.T, r R, d D) {
	if err := c.merge(r, d); err != nil {
		t.Fatalf("merge: %v", err)
	}
}

// distinctReplicas returns n replica IDs in a random order, so replica
// index does not correlate with tie-break order.
func distinctReplicas(t *rapid.T, n int) []ReplicaID {
	perm := rapid.Permutation(rapid.Just([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}).Draw(t, "ids")).Draw(t, "perm")
	ids := make([]ReplicaID, n)
	for i := range ids {
		ids[i] = rid(byte(10 + perm[i]))
		ids[i][31] = byte(i) // vary a late byte too
	}
	return ids
}

// runConvergence drives 3-10 replicas through random local operations,
// delivery in random order with duplication and loss, partitions that
// come and go, delta-since-version-vector anti-entropy (sometimes with a
// stale vector) and full-state transfers. After healing and a final
// anti-entropy exchange every replica must have the same encoded state;
// a fresh replica fed every operation delta in a random order, with
// duplicates, must equal it too, and so must one that merges the full
// states of all replicas.
func runConvergence[R, D any](t *rapid.T, c *crdtUnderTest[R, D]) {
	n := rapid.IntRange(3, 10).Draw(t, "replicas")
	ids := distinctReplicas(t, n)
	reps := make([]R, n)
	for i := range reps {
		reps[i] = c.newReplica(t, ids[i])
	}
	queues := make([][]D, n) // deltas in flight to each replica
	group := make([]int, n)  // partition: replicas talk only within a group
	staleVV := make([]VersionVector, n)
	var all []D
	steps := rapid.IntRange(1, 150).Draw(t, "steps")
	for s := 0; s < steps; s++ {
		i := rapid.IntRange(0, n-1).Draw(t, "i")
		j := rapid.IntRange(0, n-1).Draw(t, "j")
		switch rapid.IntRange(0, 9).Draw(t, "action") {
		case 0, 1, 2, 3:
			d := c.op(t, reps[i])
			all = append(all, d)
			for k := range reps {
				if k != i && group[k] == group[i] {
					queues[k] = append(queues[k], d)
				}
			}
		case 4, 5:
			if len(queues[j]) == 0 {
				continue
			}
			k := rapid.IntRange(0, len(queues[j])-1).Draw(t, "msg")
			d := queues[j][k]
			if !rapid.Bool().Draw(t, "duplicate") {
				queues[j] = slices.Delete(queues[j], k, k+1)
			}
			c.mustMerge(t, reps[j], c.ship(t, d))
		case 6:
			if rapid.Bool().Draw(t, "heal") {
				clear(group)
			} else {
				for k := range group {
					group[k] = rapid.IntRange(0, 1).Draw(t, "side")
				}
			}
		case 7:
			if group[i] == group[j] {
				vv := c.vv(reps[j])
				if rapid.Bool().Draw(t, "stale") && staleVV[j].Len() > 0 {
					vv = staleVV[j]
				}
				staleVV[j] = c.vv(reps[j])
				c.mustMerge(t, reps[j], c.ship(t, c.since(reps[i], vv)))
			}
		case 8:
			if group[i] == group[j] {
				c.mustMerge(t, reps[j], c.ship(t, c.state(reps[i])))
			}
		case 9:
			if len(queues[j]) > 0 && rapid.Bool().Draw(t, "lose") {
				queues[j] = queues[j][1:] // message lost
			}
		}
	}
	// Heal: deliver what is still in flight, in random order.
	for j := range queues {
		for len(queues[j]) > 0 {
			k := rapid.IntRange(0, len(queues[j])-1).Draw(t, "final msg")
			c.mustMerge(t, reps[j], c.ship(t, queues[j][k]))
			queues[j] = slices.Delete(queues[j], k, k+1)
		}
	}
	// Anti-entropy: everyone to replica 0, then replica 0 to everyone.
	for k := 1; k < n; k++ {
		c.mustMerge(t, reps[0], c.ship(t, c.since(reps[k], c.vv(reps[0]))))
	}
	for k := 1; k < n; k++ {
		c.mustMerge(t, reps[k], c.ship(t, c.since(reps[0], c.vv(reps[k]))))
	}
	want := c.encode(t, c.state(reps[0]))
	wantView := c.view(reps[0])
	for k := 1; k < n; k++ {
		if got := c.encode(t, c.state(reps[k])); !bytes.Equal(got, want) {
			t.Fatalf("replica %d diverged from replica 0", k)
		}
		if got := c.view(reps[k]); got != wantView {
			t.Fatalf("replica %d shows %s, replica 0 shows %s", k, got, wantView)
		}
	}
	// Deltas in any order, duplicated, equal the converged state.
	fresh := c.newReplica(t, rid(0xEE))
	for _, k := range rapid.Permutation(indexes(len(all))).Draw(t, "delta order") {
		c.mustMerge(t, fresh, all[k])
		if rapid.IntRange(0, 4).Draw(t, "dup") == 0 {
			c.mustMerge(t, fresh, all[k])
		}
	}
	if got := c.encode(t, c.state(fresh)); !bytes.Equal(got, want) || c.view(fresh) != wantView {
		t.Fatal("operation deltas merged in random order differ from the converged state")
	}
	// Merging every replica's full state equals it as well.
	full := c.newReplica(t, rid(0xEF))
	for _, k := range rapid.Permutation(indexes(n)).Draw(t, "state order") {
		c.mustMerge(t, full, c.state(reps[k]))
	}
	if got := c.encode(t, c.state(full)); !bytes.Equal(got, want) || c.view(full) != wantView {
		t.Fatal("full-state merge differs from the converged state")
	}
	if c.check != nil {
		c.check(t, reps, all)
	}
}

func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// ---- OR-Set ----

var orsetAlphabet = []string{"empty", "claimed:a", "claimed:b", "done:a", "done:b"}

func orsetUnderTest() *crdtUnderTest[*ORSet[string], *ORSetDelta[string]] {
	return &crdtUnderTest[*ORSet[string], *ORSetDelta[string]]{
		newReplica: func(_ *rapid.T, id ReplicaID) *ORSet[string] { return NewORSet[string](id) },
		op: func(t *rapid.T, s *ORSet[string]) *ORSetDelta[string] {
			v := rapid.SampledFrom(orsetAlphabet).Draw(t, "elem")
			switch rapid.IntRange(0, 4).Draw(t, "orset op") {
			case 0, 1, 2:
				d, err := s.Add(v)
				if err != nil {
					t.Fatal(err)
				}
				return d
			case 3:
				return s.Remove(v)
			default:
				return s.Clear()
			}
		},
		merge: func(s *ORSet[string], d *ORSetDelta[string]) error { return s.Merge(d) },
		view: func(s *ORSet[string]) string {
			e := s.Elements()
			slices.Sort(e)
			return fmt.Sprint(e)
		},
		state: func(s *ORSet[string]) *ORSetDelta[string] { return s.State() },
		since: func(s *ORSet[string], vv VersionVector) *ORSetDelta[string] { return s.DeltaSince(vv) },
		vv:    func(s *ORSet[string]) VersionVector { return s.VersionVector() },
		decode: func(b []byte) (*ORSetDelta[string], error) {
			var d ORSetDelta[string]
			return &d, wire.Unmarshal(b, &d, "orset")
		},
		check: func(t *rapid.T, reps []*ORSet[string], deltas []*ORSetDelta[string]) {
			// Add-wins model, computed without the join: an element is
			// present iff some add's dot was observed by no operation
			// (an operation observes the dots in its context that it does
			// not itself add).
			observed := map[Dot]bool{}
			for _, d := range deltas {
				d.k.ctx.each(func(x Dot) bool {
					if _, own := d.k.byDot[x]; !own {
						observed[x] = true
					}
					return true
				})
			}
			want := map[string]bool{}
			for _, d := range deltas {
				for x, v := range d.k.byDot {
					if !observed[x] {
						want[v] = true
					}
				}
			}
			for _, v := range orsetAlphabet {
				if got := reps[0].Contains(v); got != want[v] {
					t.Fatalf("element %q: present=%v, add-wins model says %v", v, got, want[v])
				}
			}
		},
	}
}

func TestORSetConvergence(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runConvergence(t, orsetUnderTest()) })
}

// ---- LWW register ----

// lwwReplica is a register with its replica's HLC and physical clock.
type lwwReplica struct {
	reg LWWRegister[string]
	hlc *HLC
	clk *manualClock
	now int64
}

func lwwUnderTest() *crdtUnderTest[*lwwReplica, LWWRegister[string]] {
	return &crdtUnderTest[*lwwReplica, LWWRegister[string]]{
		newReplica: func(t *rapid.T, id ReplicaID) *lwwReplica {
			// Clocks start up to 50 ms apart.
			now := 1_000_000 + rapid.Int64Range(0, 50).Draw(t, "clock offset")
			clk := newManualClock(now)
			return &lwwReplica{hlc: NewHLC(clk, id, 0), clk: clk, now: now}
		},
		op: func(t *rapid.T, r *lwwReplica) LWWRegister[string] {
			r.now += rapid.Int64Range(0, 3).Draw(t, "tick")
			r.clk.set(r.now)
			d, err := r.reg.Set(r.hlc, rapid.StringMatching(`[a-c]{0,2}`).Draw(t, "value"))
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		merge: func(r *lwwReplica, d LWWRegister[string]) error {
			if err := r.hlc.Update(d.Timestamp()); err != nil {
				return err
			}
			_, err := r.reg.Merge(d)
			return err
		},
		state: func(r *lwwReplica) LWWRegister[string] { return r.reg },
		view:  func(r *lwwReplica) string { return fmt.Sprintf("%q@%v", r.reg.Value(), r.reg.Timestamp()) },
		since: func(r *lwwReplica, _ VersionVector) LWWRegister[string] { return r.reg },
		vv:    func(*lwwReplica) VersionVector { return VersionVector{} },
		decode: func(b []byte) (LWWRegister[string], error) {
			var r LWWRegister[string]
			return r, wire.Unmarshal(b, &r, "lww")
		},
		check: func(t *rapid.T, reps []*lwwReplica, deltas []LWWRegister[string]) {
			var best LWWRegister[string]
			for _, d := range deltas {
				if d.Timestamp().Compare(best.Timestamp()) > 0 {
					best = d
				}
			}
			if reps[0].reg != best {
				t.Fatalf("converged to %q@%v, latest write was %q@%v", reps[0].reg.Value(), reps[0].reg.Timestamp(), best.Value(), best.Timestamp())
			}
			// Timestamps of writes are unique (HLC + replica tie-break).
			seen := map[Timestamp]bool{}
			for _, d := range deltas {
				if seen[d.Timestamp()] {
					t.Fatalf("two writes share timestamp %v", d.Timestamp())
				}
				seen[d.Timestamp()] = true
			}
		},
	}
}

func TestLWWConvergence(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runConvergence(t, lwwUnderTest()) })
}

// ---- RGA ----

// rgaLog records, per local insert, the element it was anchored after, so
// the check can verify that order intention survives concurrency.
type rgaLog struct {
	anchor  map[Dot]Dot // inserted element -> element visible before it at insert time (zero = head)
	moved   map[Dot]bool
	removed map[Dot]bool
}

// withRGAWire fills in c's merge, state, delta and decoding functions,
// which every RGA harness shares.
func withRGAWire(c *crdtUnderTest[*RGA[int], *RGADelta[int]]) *crdtUnderTest[*RGA[int], *RGADelta[int]] {
	c.merge = func(r *RGA[int], d *RGADelta[int]) error { return r.Merge(d) }
	c.state = func(r *RGA[int]) *RGADelta[int] { return r.State() }
	c.since = func(r *RGA[int], vv VersionVector) *RGADelta[int] { return r.DeltaSince(vv) }
	c.vv = func(r *RGA[int]) VersionVector { return r.VersionVector() }
	c.decode = func(b []byte) (*RGADelta[int], error) {
		var d RGADelta[int]
		return &d, wire.Unmarshal(b, &d, "rga")
	}
	return c
}

func rgaUnderTest(log *rgaLog) *crdtUnderTest[*RGA[int], *RGADelta[int]] {
	next := 0
	return withRGAWire(&crdtUnderTest[*RGA[int], *RGADelta[int]]{
		newReplica: func(_ *rapid.T, id ReplicaID) *RGA[int] { return NewRGA[int](id, RGAOptions{}) },
		op: func(t *rapid.T, r *RGA[int]) *RGADelta[int] {
			n := r.Len()
			act := rapid.IntRange(0, 5).Draw(t, "rga op")
			if n == 0 || act <= 2 {
				i := rapid.IntRange(0, n).Draw(t, "at")
				var before Dot
				if i > 0 {
					before, _, _ = r.At(i - 1)
				}
				next++
				id, d, err := r.InsertAt(i, next)
				if err != nil {
					t.Fatal(err)
				}
				log.anchor[id] = before
				return d
			}
			// Mostly pick one of the first two elements, so that replicas
			// often move or remove the same element concurrently.
			w := rapid.IntRange(0, n-1).Draw(t, "which")
			if rapid.IntRange(0, 2).Draw(t, "hot") > 0 {
				w = min(w, 1)
			}
			id, _, _ := r.At(w)
			if act == 3 {
				d, err := r.Remove(id)
				if err != nil {
					t.Fatal(err)
				}
				log.removed[id] = true
				return d
			}
			var after Dot
			if k := rapid.IntRange(-1, n-1).Draw(t, "after"); k >= 0 {
				after, _, _ = r.At(k)
			}
			d, err := r.Move(id, after)
			if err != nil {
				t.Fatal(err)
			}
			log.moved[id] = true
			return d
		},
		view: func(r *RGA[int]) string { return fmt.Sprint(r.IDs(), r.Values(), r.Pending()) },
		check: func(t *rapid.T, reps []*RGA[int], _ []*RGADelta[int]) {
			for _, x := range reps {
				checkRGAInvariants(t, x)
			}
			r := reps[0]
			if r.Pending() != 0 {
				t.Fatalf("%d operations still pending after convergence", r.Pending())
			}
			ids := r.IDs()
			pos := map[Dot]int{}
			for i, id := range ids {
				if _, dup := pos[id]; dup {
					t.Fatalf("element %v appears twice", id)
				}
				pos[id] = i
			}
			// Exactly the inserted, not removed elements are visible.
			for id := range log.anchor {
				_, vis := pos[id]
				if vis == log.removed[id] {
					t.Fatalf("element %v: visible=%v removed=%v", id, vis, log.removed[id])
				}
			}
			if len(pos) != len(log.anchor)-len(log.removed) {
				t.Fatalf("%d visible, want %d", len(pos), len(log.anchor)-len(log.removed))
			}
			// An element stays after the element it was inserted after, as
			// long as neither has moved.
			for id, before := range log.anchor {
				if before.IsZero() || log.moved[id] || log.moved[before] {
					continue
				}
				pi, ok1 := pos[id]
				pb, ok2 := pos[before]
				if ok1 && ok2 && pb >= pi {
					t.Fatalf("element %v ended before its anchor %v", id, before)
				}
			}
		},
	})
}

func TestRGAConvergence(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		log := &rgaLog{anchor: map[Dot]Dot{}, moved: map[Dot]bool{}, removed: map[Dot]bool{}}
		runConvergence(t, rgaUnderTest(log))
	})
}

// ---- join laws ----

// runJoinLaws collects deltas and states from a random history and checks
// that merging them into fresh replicas is commutative, associative and
// idempotent, and that joining deltas first gives the same result.
func runJoinLaws[R, D any](t *rapid.T, c *crdtUnderTest[R, D], join func(a, b D) (D, error)) {
	n := 3
	ids := distinctReplicas(t, n)
	reps := make([]R, n)
	for i := range reps {
		reps[i] = c.newReplica(t, ids[i])
	}
	var pool []D
	steps := rapid.IntRange(1, 40).Draw(t, "steps")
	for s := 0; s < steps; s++ {
		i := rapid.IntRange(0, n-1).Draw(t, "i")
		switch rapid.IntRange(0, 3).Draw(t, "action") {
		case 0, 1:
			pool = append(pool, c.op(t, reps[i]))
		case 2:
			j := rapid.IntRange(0, n-1).Draw(t, "j")
			c.mustMerge(t, reps[j], c.state(reps[i]))
		case 3:
			pool = append(pool, c.state(reps[i]))
		}
	}
	if len(pool) == 0 {
		return
	}
	pick := func(name string) D { return pool[rapid.IntRange(0, len(pool)-1).Draw(t, name)] }
	a, b, x := pick("a"), pick("b"), pick("c")
	apply := func(ds ...D) []byte {
		r := c.newReplica(t, rid(0xEE))
		for _, d := range ds {
			c.mustMerge(t, r, d)
		}
		return append(c.encode(t, c.state(r)), c.view(r)...)
	}
	mustJoin := func(p, q D) D {
		// Join must not modify its inputs: work on decoded copies.
		j, err := join(c.ship(t, p), c.ship(t, q))
		if err != nil {
			t.Fatalf("join: %v", err)
		}
		return j
	}
	ab := apply(a, b)
	if !bytes.Equal(ab, apply(b, a)) {
		t.Fatal("merge is not commutative")
	}
	if !bytes.Equal(apply(a, b, x), apply(x, b, a)) || !bytes.Equal(apply(a, b, x), apply(b, x, a)) {
		t.Fatal("merge is not associative/order-independent")
	}
	if !bytes.Equal(apply(a), apply(a, a)) || !bytes.Equal(ab, apply(a, b, a, b)) {
		t.Fatal("merge is not idempotent")
	}
	// Joins of deltas obey the same laws and agree with merging.
	jab, jba := mustJoin(a, b), mustJoin(b, a)
	if !bytes.Equal(c.encode(t, jab), c.encode(t, jba)) {
		t.Fatal("join is not commutative")
	}
	l, r := mustJoin(mustJoin(a, b), x), mustJoin(a, mustJoin(b, x))
	if !bytes.Equal(c.encode(t, l), c.encode(t, r)) {
		t.Fatal("join is not associative")
	}
	if !bytes.Equal(c.encode(t, mustJoin(a, a)), c.encode(t, a)) {
		t.Fatal("join is not idempotent")
	}
	if !bytes.Equal(apply(jab), ab) {
		t.Fatal("merging join(a, b) differs from merging a then b")
	}
}

func TestORSetJoinLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		runJoinLaws(t, orsetUnderTest(), func(a, b *ORSetDelta[string]) (*ORSetDelta[string], error) {
			return a, a.Join(b)
		})
	})
}

func TestLWWJoinLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		runJoinLaws(t, lwwUnderTest(), func(a, b LWWRegister[string]) (LWWRegister[string], error) {
			_, err := a.Merge(b)
			return a, err
		})
	})
}

func TestRGAJoinLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		log := &rgaLog{anchor: map[Dot]Dot{}, moved: map[Dot]bool{}, removed: map[Dot]bool{}}
		runJoinLaws(t, rgaUnderTest(log), func(a, b *RGADelta[int]) (*RGADelta[int], error) {
			return a, a.Join(b)
		})
	})
}

// TestRGAPendingLimitExact checks that the pre-merge simulation is exact:
// with a small MaxPending, a merge fails with ErrPendingFull exactly when
// the same merge on an unlimited replica would leave more than MaxPending
// operations waiting.
func TestRGAPendingLimitExact(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		src := NewRGA[int](rid(1), RGAOptions{})
		var ds []*RGADelta[int]
		log := &rgaLog{anchor: map[Dot]Dot{}, moved: map[Dot]bool{}, removed: map[Dot]bool{}}
		c := rgaUnderTest(log)
		for i := rapid.IntRange(1, 30).Draw(t, "ops"); i > 0; i-- {
			ds = append(ds, c.op(t, src))
		}
		limit := rapid.IntRange(1, 4).Draw(t, "limit")
		dst := NewRGA[int](rid(2), RGAOptions{MaxPending: limit})
		var accepted []*RGADelta[int]
		for _, k := range rapid.Permutation(indexes(len(ds))).Draw(t, "order") {
			d := ds[k]
			if rapid.IntRange(0, 3).Draw(t, "batch") == 0 && k+1 < len(ds) {
				d = d.Clone()
				if err := d.Join(ds[k+1]); err != nil {
					t.Fatal(err)
				}
			}
			err := dst.Merge(d)
			ref := NewRGA[int](rid(3), RGAOptions{MaxPending: 1 << 20})
			for _, a := range accepted {
				c.mustMerge(t, ref, a)
			}
			c.mustMerge(t, ref, d)
			switch {
			case err == nil:
				accepted = append(accepted, d)
				if dst.Pending() != ref.Pending() || dst.Pending() > limit {
					t.Fatalf("pending %d, reference %d, limit %d", dst.Pending(), ref.Pending(), limit)
				}
			case ref.Pending() <= limit:
				t.Fatalf("merge refused (%v) but would leave only %d pending (limit %d)", err, ref.Pending(), limit)
			}
		}
	})
}
