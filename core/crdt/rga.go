package crdt

import (
	"bytes"
	"fmt"
	"iter"
	"slices"
)

// nodeKey is a dot with the replica replaced by its index in the RGA's
// local replica table (indexes differ between replicas and never leave
// the process).
type nodeKey struct {
	ctr uint64
	rep uint32
}

type opKind uint8

const (
	opInsert opKind = iota + 1
	opMove
	opRemove
)

// rgaOp is one operation in a delta. Insert: ID, Origin, Value. Move: ID,
// Origin, Target (the item). Remove: ID, Target (the item).
type rgaOp[T comparable] struct {
	kind   opKind
	id     Dot
	origin Dot
	target Dot
	value  T
}

// DefaultMaxPending is the default RGAOptions.MaxPending.
const DefaultMaxPending = 1 << 16

// RGAOptions configures an RGA. The zero value selects the defaults.
type RGAOptions struct {
	// MaxPending bounds how many received operations may wait for an
	// operation they reference (their origin or the item they move or
	// remove) that has not arrived yet. A merge that would exceed it fails
	// with ErrPendingFull. 0 means DefaultMaxPending.
	MaxPending int
}

// RGA is a replicated growable array of values of type T for one replica:
// an ordered sequence supporting insert-after, remove and move, which every
// replica orders identically once it has seen the same operations.
//
// Elements are named by the Dot of the insert that created them. Inserts
// follow RGA: a new slot goes right after its origin, before any concurrent
// sibling with a smaller ID (IDs are Lamport dots, so descendants always
// have greater IDs than their ancestors). A move inserts a new slot for the
// element and the element shows at its slot with the greatest ID, so
// concurrent moves of one element converge to one place and never duplicate
// it. Remove marks the element removed (removal wins over concurrent moves);
// its slots stay as tombstones that later inserts can anchor to.
//
// Received operations whose references are unknown are buffered (up to
// RGAOptions.MaxPending) and applied when the referenced operation arrives;
// operations that reference something that is not a slot are dropped.
//
// Removed elements stay as tombstones (no compaction of causally stable
// tombstones is implemented), so memory grows with every insert ever made;
// but consecutive inserts of one replica (typing) are stored together as a
// run, and so are their removals when consecutive (deleting a range), so it
// grows with the number of such runs rather than of elements.
// DeltaSince and State walk the whole sequence (O(slots)).
//
// T must be encodable with core/wire and must not contain floating-point
// NaNs (a duplicate delivery of a NaN value would compare unequal and be
// reported as ErrConflict). An RGA is not safe for concurrent use.
type RGA[T comparable] struct {
	self    ReplicaID
	selfIdx uint32
	reps    []ReplicaID
	repIdx  map[ReplicaID]uint32
	seq     seq[T] // the slots, in runs (see rga_seq.go)
	ctx     DotSet
	lamport uint64 // greatest counter seen from any replica

	maxPending int
	pending    map[Dot]rgaOp[T] // by op ID
	waiting    map[Dot][]Dot    // missing reference -> IDs of ops waiting for it
}

// NewRGA returns an empty sequence whose own operations carry self.
func NewRGA[T comparable](self ReplicaID, opts RGAOptions) *RGA[T] {
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	r := &RGA[T]{
		self:       self,
		repIdx:     make(map[ReplicaID]uint32),
		maxPending: opts.MaxPending,
		pending:    make(map[Dot]rgaOp[T]),
		waiting:    make(map[Dot][]Dot),
	}
	r.selfIdx = r.intern(self)
	return r
}

func (r *RGA[T]) intern(rep ReplicaID) uint32 {
	if i, ok := r.repIdx[rep]; ok {
		return i
	}
	i := uint32(len(r.reps))
	r.reps = append(r.reps, rep)
	r.repIdx[rep] = i
	r.seq.ids = append(r.seq.ids, runIndex[T]{})
	return i
}

func (r *RGA[T]) dotOf(k nodeKey) Dot {
	if k.ctr == 0 {
		return Dot{}
	}
	return Dot{r.reps[k.rep], k.ctr}
}

// slot returns the run holding the slot with ID d and the slot's offset
// in it; nil if there is no such slot.
func (r *RGA[T]) slot(d Dot) (*run[T], int) {
	i, ok := r.repIdx[d.Replica]
	if !ok {
		return nil, 0
	}
	return r.seq.lookup(nodeKey{d.Counter, i})
}

// mslot is slot for merges: through the lookup cache.
func (r *RGA[T]) mslot(d Dot) (*run[T], int) {
	i, ok := r.repIdx[d.Replica]
	if !ok {
		return nil, 0
	}
	return r.seq.lookupCached(nodeKey{d.Counter, i})
}

// hasSlot reports whether d names a slot.
func (r *RGA[T]) hasSlot(d Dot) bool {
	x, _ := r.mslot(d)
	return x != nil
}

// cmpKey orders slot IDs by counter, then replica bytes.
func (r *RGA[T]) cmpKey(a, b nodeKey) int {
	switch {
	case a.ctr < b.ctr:
		return -1
	case a.ctr > b.ctr:
		return 1
	case a.rep == b.rep:
		return 0
	}
	return bytes.Compare(r.reps[a.rep][:], r.reps[b.rep][:])
}

// Replica returns the replica ID this RGA writes with.
func (r *RGA[T]) Replica() ReplicaID { return r.self }

// Len returns the number of visible elements.
func (r *RGA[T]) Len() int { return r.seq.vis }

// Pending returns how many received operations are waiting for an
// operation they reference.
func (r *RGA[T]) Pending() int { return len(r.pending) }

// itemAt returns the item shown by slot off of the visible run x: the
// slot itself, or the item a move slot names.
func itemAt[T comparable](x *run[T], off int) (*run[T], int) {
	if x.isMove() {
		return x.ref, 0
	}
	return x, off
}

// posOf returns the slot where item slot off of x is positioned: its
// winning move slot if it has been moved, else its insert slot.
func posOf[T comparable](x *run[T], off int) (*run[T], int) {
	if x.ref != nil {
		return x.ref, 0
	}
	return x, off
}

// At returns the ID and value of the i-th visible element; ok is false if
// i is out of range.
func (r *RGA[T]) At(i int) (id Dot, v T, ok bool) {
	if i < 0 || i >= r.seq.vis {
		return Dot{}, v, false
	}
	ci, j, off := r.seq.at(i)
	it, k := itemAt(r.seq.chunks[ci].runs[j], off)
	return r.dotOf(it.key(k)), it.vals[k], true
}

// Get returns the value of element id; ok is false if it is unknown or
// removed.
func (r *RGA[T]) Get(id Dot) (v T, ok bool) {
	x, off := r.slot(id)
	if x == nil || x.isMove() || x.rmv != 0 {
		return v, false
	}
	return x.vals[off], true
}

// IndexOf returns the visible position of element id; ok is false if it is
// unknown or removed.
func (r *RGA[T]) IndexOf(id Dot) (int, bool) {
	x, off := r.slot(id)
	if x == nil || x.isMove() || x.rmv != 0 {
		return 0, false
	}
	return r.seq.index(posOf(x, off)), true
}

// All iterates over the visible elements in order as (ID, value) pairs.
// The RGA must not be modified during the iteration.
func (r *RGA[T]) All() iter.Seq2[Dot, T] {
	return func(yield func(Dot, T) bool) {
		r.seq.each(func(x *run[T]) bool {
			if !x.visible() {
				return true
			}
			for off := range x.size() {
				it, k := itemAt(x, off)
				if !yield(r.dotOf(it.key(k)), it.vals[k]) {
					return false
				}
			}
			return true
		})
	}
}

// Values returns the visible values in order, newly allocated.
func (r *RGA[T]) Values() []T {
	out := make([]T, 0, r.seq.vis)
	for _, v := range r.All() {
		out = append(out, v)
	}
	return out
}

// IDs returns the IDs of the visible elements in order, newly allocated.
func (r *RGA[T]) IDs() []Dot {
	out := make([]Dot, 0, r.seq.vis)
	for id := range r.All() {
		out = append(out, id)
	}
	return out
}

// item returns the element named id for a local operation.
func (r *RGA[T]) item(id Dot) (*run[T], int, error) {
	x, off := r.slot(id)
	if x == nil || x.isMove() {
		return nil, 0, fmt.Errorf("%w: %v", ErrUnknownElement, id)
	}
	return x, off, nil
}

// anchor returns the slot to insert after for "after element id" (the
// zero Dot is the head, returned as nil).
func (r *RGA[T]) anchor(after Dot) (*run[T], int, error) {
	if after.IsZero() {
		return nil, 0, nil
	}
	x, off, err := r.item(after)
	if err != nil {
		return nil, 0, err
	}
	x, off = posOf(x, off)
	return x, off, nil
}

// nextOp reserves the next Lamport counter for a local operation and
// returns its dot and the context the delta must carry: the counters this
// replica skipped since its previous operation, plus the new one.
func (r *RGA[T]) nextOp() (Dot, DotSet, error) {
	c, err := nextCounter(r.lamport)
	if err != nil {
		return Dot{}, DotSet{}, err
	}
	lo := r.ctx.Max(r.self) + 1
	var ctx DotSet
	ctx.addRange(r.self, lo, c)
	r.ctx.addRange(r.self, lo, c)
	r.lamport = c
	return Dot{r.self, c}, ctx, nil
}

// InsertAfter inserts v right after element after (the zero Dot inserts at
// the head; a removed element is a valid anchor) and returns the new
// element's ID and the delta to send. Errors: ErrUnknownElement,
// ErrCounterRange.
func (r *RGA[T]) InsertAfter(after Dot, v T) (Dot, *RGADelta[T], error) {
	a, off, err := r.anchor(after)
	if err != nil {
		return Dot{}, nil, err
	}
	return r.insertAfterSlot(a, off, v)
}

// InsertAt inserts v so that it becomes the i-th visible element
// (0 <= i <= Len()) and returns its ID and the delta to send. Errors:
// ErrIndexRange, ErrCounterRange.
func (r *RGA[T]) InsertAt(i int, v T) (Dot, *RGADelta[T], error) {
	if i < 0 || i > r.seq.vis {
		return Dot{}, nil, fmt.Errorf("%w: insert at %d, length %d", ErrIndexRange, i, r.seq.vis)
	}
	var a *run[T]
	off := 0
	if i > 0 {
		ci, j, k := r.seq.at(i - 1)
		a, off = r.seq.chunks[ci].runs[j], k
	}
	return r.insertAfterSlot(a, off, v)
}

func (r *RGA[T]) insertAfterSlot(a *run[T], off int, v T) (Dot, *RGADelta[T], error) {
	id, ctx, err := r.nextOp()
	if err != nil {
		return Dot{}, nil, err
	}
	op := rgaOp[T]{kind: opInsert, id: id, value: v}
	if a != nil {
		op.origin = r.dotOf(a.key(off))
	}
	r.integrate(nodeKey{id.Counter, r.selfIdx}, a, off, v, nil)
	return id, &RGADelta[T]{ops: []rgaOp[T]{op}, ctx: ctx}, nil
}

// Remove removes element id and returns the delta to send. Errors:
// ErrUnknownElement, ErrRemoved (already removed), ErrCounterRange.
func (r *RGA[T]) Remove(id Dot) (*RGADelta[T], error) {
	x, off, err := r.item(id)
	if err != nil {
		return nil, err
	}
	return r.removeItem(x, off)
}

// RemoveAt removes the i-th visible element and returns the delta to send.
// Errors: ErrIndexRange, ErrCounterRange.
func (r *RGA[T]) RemoveAt(i int) (*RGADelta[T], error) {
	if i < 0 || i >= r.seq.vis {
		return nil, fmt.Errorf("%w: remove at %d, length %d", ErrIndexRange, i, r.seq.vis)
	}
	ci, j, off := r.seq.at(i)
	return r.removeItem(itemAt(r.seq.chunks[ci].runs[j], off))
}

func (r *RGA[T]) removeItem(x *run[T], off int) (*RGADelta[T], error) {
	target := r.dotOf(x.key(off))
	if x.rmv != 0 {
		return nil, fmt.Errorf("%w: %v", ErrRemoved, target)
	}
	id, ctx, err := r.nextOp()
	if err != nil {
		return nil, err
	}
	r.applyRemove(x, off, nodeKey{id.Counter, r.selfIdx})
	op := rgaOp[T]{kind: opRemove, id: id, target: target}
	return &RGADelta[T]{ops: []rgaOp[T]{op}, ctx: ctx}, nil
}

// Move moves element id to right after element after (the zero Dot moves
// it to the head) and returns the delta to send. Errors: ErrUnknownElement,
// ErrRemoved (id has been removed), ErrCounterRange.
func (r *RGA[T]) Move(id, after Dot) (*RGADelta[T], error) {
	x, off, err := r.item(id)
	if err != nil {
		return nil, err
	}
	if x.rmv != 0 {
		return nil, fmt.Errorf("%w: %v", ErrRemoved, id)
	}
	if _, _, err := r.anchor(after); err != nil {
		return nil, err
	}
	mid, ctx, err := r.nextOp()
	if err != nil {
		return nil, err
	}
	t := r.seq.pin(x, off)
	a, aoff, _ := r.anchor(after) // again: pinning may have split its run
	op := rgaOp[T]{kind: opMove, id: mid, target: id}
	if a != nil {
		op.origin = r.dotOf(a.key(aoff))
	}
	var zero T
	m := r.integrate(nodeKey{mid.Counter, r.selfIdx}, a, aoff, zero, t)
	r.claimPosition(m)
	return &RGADelta[T]{ops: []rgaOp[T]{op}, ctx: ctx}, nil
}

// integrate places a new slot id in document order after slot aoff of run
// a (nil = head): it skips the slots right after the anchor whose IDs are
// greater than id and inserts before the first smaller one. The slot is an
// insert of v, or, if target is not nil, a move slot naming target's
// first slot. It records id as seen and returns the run now holding the
// slot.
func (r *RGA[T]) integrate(id nodeKey, a *run[T], aoff int, v T, target *run[T]) *run[T] {
	s := &r.seq
	r.ctx.addRange(r.reps[id.rep], id.ctr, id.ctr)
	r.lamport = max(r.lamport, id.ctr)
	ci, j := 0, 0
	var origin nodeKey
	if a != nil {
		origin = a.key(aoff)
		ci, j = s.locate(a)
		// The anchor's successors in its run have increasing IDs: if the
		// first is smaller than id, id goes right after the anchor, else
		// it goes after the whole run.
		if aoff+1 < a.size() && r.cmpKey(a.key(aoff+1), id) < 0 {
			ci, j = s.split(ci, j, aoff+1)
			return r.place(id, origin, ci, j, v, target)
		}
		j++
	}
	// A run's first slot has its smallest ID: skip whole runs.
	for ci < len(s.chunks) {
		c := s.chunks[ci]
		if j == len(c.runs) {
			if ci+1 == len(s.chunks) {
				break
			}
			ci, j = ci+1, 0
			continue
		}
		if r.cmpKey(c.runs[j].key(0), id) < 0 {
			break
		}
		j++
	}
	return r.place(id, origin, ci, j, v, target)
}

// place puts the new slot id (see integrate) at position (ci, j): it
// extends the run before that position when the slot continues it, else
// it adds a run.
func (r *RGA[T]) place(id, origin nodeKey, ci, j int, v T, target *run[T]) *run[T] {
	s := &r.seq
	if target == nil && len(s.chunks) > 0 {
		// Only a run whose next counter is new can grow, and nothing lies
		// after its values in their array then: append in place is safe.
		if p := s.before(ci, j); p != nil && p.flags&runState == runVisible && p.rep == id.rep {
			if n := len(p.vals); p.ctr+uint64(n) == id.ctr && origin == p.key(n-1) && n < maxRun {
				s.grow(p, v)
				return p
			}
		}
	}
	x := &run[T]{ctr: id.ctr, rep: id.rep, orig: origin.ctr, origRep: origin.rep}
	if target != nil {
		x.flags, x.ref = runMove, target
	} else {
		x.flags, x.vals = runVisible|runTail, []T{v}
	}
	s.insert(ci, j, x)
	return x
}

// claimPosition makes the move slot m its item's position if its ID is the
// greatest of the item's slots. A move naming something that is not an
// item has no effect.
func (r *RGA[T]) claimPosition(m *run[T]) {
	it := m.ref
	if it.isMove() {
		return
	}
	old := it
	if it.ref != nil {
		old = it.ref
	}
	if r.cmpKey(m.key(0), old.key(0)) <= 0 {
		return
	}
	it.ref = m
	if it.rmv == 0 {
		r.seq.setVisible(old, false)
		r.seq.setVisible(m, true)
	}
}

// applyRemove records removal dot k on slot off of x; removing a move slot
// has no effect beyond recording the dot. An item keeps its smallest
// removal dot.
func (r *RGA[T]) applyRemove(x *run[T], off int, k nodeKey) {
	r.ctx.addRange(r.reps[k.rep], k.ctr, k.ctr)
	r.lamport = max(r.lamport, k.ctr)
	if x.isMove() || (x.rmv != 0 && r.cmpKey(k, x.rmvKey(off)) >= 0) {
		return
	}
	wasRemoved := x.rmv != 0
	x = r.seq.isolate(x, off)
	x.rmv, x.rmvRep, x.step = k.ctr, k.rep, 0
	if !wasRemoved {
		p, _ := posOf(x, 0)
		r.seq.setVisible(p, false)
	}
	if x.flags&runPinned == 0 {
		r.seq.coalesce(x)
	}
}

// VersionVector returns the contiguous prefix of the causal context: what
// a peer sends so this replica's owner can answer with DeltaSince.
func (r *RGA[T]) VersionVector() VersionVector { return r.ctx.VersionVector() }

// Context returns a copy of the causal context (every applied operation,
// plus the counters each replica is known to have skipped).
func (r *RGA[T]) Context() DotSet { return r.ctx.Clone() }

// State returns the full state as a delta (an independent copy); pending
// operations are not included.
func (r *RGA[T]) State() *RGADelta[T] {
	return r.collect(VersionVector{}, r.ctx.Clone())
}

// DeltaSince returns the operations whose dots vv does not contain and the
// part of the context above vv. Merged into a replica whose context
// contains vv it has the same effect as State.
func (r *RGA[T]) DeltaSince(vv VersionVector) *RGADelta[T] {
	return r.collect(vv, r.ctx.above(vv))
}

func (r *RGA[T]) collect(vv VersionVector, ctx DotSet) *RGADelta[T] {
	d := &RGADelta[T]{ctx: ctx}
	r.seq.each(func(x *run[T]) bool {
		for off := range x.size() {
			id := r.dotOf(x.key(off))
			if !vv.Contains(id) {
				op := rgaOp[T]{id: id, origin: r.dotOf(x.origin(off))}
				if x.isMove() {
					op.kind, op.target = opMove, r.dotOf(x.ref.key(0))
				} else {
					op.kind, op.value = opInsert, x.vals[off]
				}
				d.ops = append(d.ops, op)
			}
			if !x.isMove() && x.rmv != 0 {
				if rid := r.dotOf(x.rmvKey(off)); !vv.Contains(rid) {
					d.ops = append(d.ops, rgaOp[T]{kind: opRemove, id: rid, target: id})
				}
			}
		}
		return true
	})
	return d
}

// Merge applies a delta or a full state (from State or DeltaSince). Deltas
// may arrive in any order and more than once. Operations whose references
// have not arrived are buffered until they do. Errors (the RGA is then
// unchanged): ErrConflict if an operation contradicts one already seen with
// the same dot, ErrPendingFull if buffering would exceed MaxPending. A nil
// d is a no-op.
func (r *RGA[T]) Merge(d *RGADelta[T]) error {
	if d == nil {
		return nil
	}
	ops := d.ops
	if len(ops) > 1 {
		ops = slices.Clone(ops) // sort a copy: d may be shared
		slices.SortFunc(ops, func(a, b rgaOp[T]) int { return a.id.Compare(b.id) })
	}
	if err := r.check(ops); err != nil {
		return err
	}
	for _, op := range ops {
		r.apply(op)
	}
	r.ctx.Union(&d.ctx)
	r.lamport = max(r.lamport, d.ctx.maxAny())
	if len(r.pending) > 0 {
		r.prunePending()
	}
	return nil
}

// check validates ops (sorted causally) against the state without
// changing it: it detects conflicting redefinitions and simulates which
// operations would be applied, released from the buffer, or left waiting,
// so that a merge that would overflow the buffer fails before it starts.
func (r *RGA[T]) check(ops []rgaOp[T]) error {
	var will map[Dot]struct{} // slots that will exist after the merge (allocated on demand)
	known := func(x Dot) bool {
		if x.IsZero() || r.hasSlot(x) {
			return true
		}
		_, ok := will[x]
		return ok
	}
	ready := func(op rgaOp[T]) bool {
		return known(op.origin) && (op.kind == opInsert || known(op.target))
	}
	nonSlot := func(x Dot) bool { return !known(x) && r.ctx.Contains(x) }
	released := 0
	var rewait map[Dot][]Dot // buffered ops that would move to another missing reference
	settle := func(id Dot) {
		if will == nil {
			will = make(map[Dot]struct{})
		}
		queue := []Dot{id}
		for len(queue) > 0 {
			x := queue[0]
			queue = queue[1:]
			will[x] = struct{}{}
			if len(r.waiting) == 0 && len(rewait) == 0 {
				continue
			}
			for _, wid := range slices.Concat(r.waiting[x], rewait[x]) {
				p, ok := r.pending[wid]
				if _, done := will[wid]; !ok || done {
					continue
				}
				if !ready(p) {
					missing := p.origin
					if known(missing) {
						missing = p.target
					}
					if rewait == nil {
						rewait = make(map[Dot][]Dot)
					}
					rewait[missing] = append(rewait[missing], wid)
					continue
				}
				released++
				if p.kind == opRemove {
					continue
				}
				will[wid] = struct{}{}
				queue = append(queue, wid)
			}
			delete(rewait, x)
		}
	}
	waits := 0
	for _, op := range ops {
		if p, ok := r.pending[op.id]; ok {
			if p != op {
				return fmt.Errorf("%w: operation %v redefined", ErrConflict, op.id)
			}
			continue
		}
		if op.kind == opRemove {
			if r.ctx.Contains(op.id) || nonSlot(op.target) {
				continue // already applied, or will be dropped
			}
			if !known(op.target) {
				waits++
			}
			continue
		}
		if x, off := r.mslot(op.id); x != nil {
			if !r.sameSlot(x, off, op) {
				return fmt.Errorf("%w: operation %v redefined", ErrConflict, op.id)
			}
			continue
		}
		switch {
		case r.ctx.Contains(op.id):
			// seen without a slot (dropped earlier): ignored
		case nonSlot(op.origin) || (op.kind == opMove && nonSlot(op.target)):
			// will be dropped
		case ready(op):
			settle(op.id)
		default:
			waits++
		}
	}
	if n := len(r.pending) - released + waits; n > r.maxPending {
		return fmt.Errorf("%w: %d would wait, limit %d", ErrPendingFull, n, r.maxPending)
	}
	return nil
}

func (r *RGA[T]) sameSlot(x *run[T], off int, op rgaOp[T]) bool {
	if r.dotOf(x.origin(off)) != op.origin {
		return false
	}
	if x.isMove() {
		return op.kind == opMove && r.dotOf(x.ref.key(0)) == op.target
	}
	return op.kind == opInsert && x.vals[off] == op.value
}

// apply applies one checked operation, or buffers it if a reference is
// missing, then applies whatever was waiting for it.
func (r *RGA[T]) apply(op rgaOp[T]) {
	done, ok := r.applyOne(op)
	if !ok || len(r.waiting) == 0 {
		return
	}
	var queue []rgaOp[T]
	for {
		for _, wid := range r.waiting[done] {
			if w, ok := r.pending[wid]; ok {
				delete(r.pending, wid)
				queue = append(queue, w)
			}
		}
		delete(r.waiting, done)
		for {
			if len(queue) == 0 {
				return
			}
			op, queue = queue[0], queue[1:]
			if done, ok = r.applyOne(op); ok {
				break
			}
		}
	}
}

// applyOne applies op if all its references are known and returns its ID
// with ok = true; otherwise it buffers op (or drops it if a reference
// names an operation that is not a slot).
func (r *RGA[T]) applyOne(op rgaOp[T]) (Dot, bool) {
	if _, ok := r.pending[op.id]; ok {
		return Dot{}, false
	}
	if op.kind == opRemove {
		if r.ctx.Contains(op.id) {
			return Dot{}, false
		}
		t, off := r.mslot(op.target)
		if t == nil {
			r.wait(op, op.target)
			return Dot{}, false
		}
		r.applyRemove(t, off, nodeKey{op.id.Counter, r.intern(op.id.Replica)})
		return op.id, true
	}
	if r.hasSlot(op.id) || r.ctx.Contains(op.id) {
		return Dot{}, false
	}
	var a *run[T]
	aoff := 0
	if !op.origin.IsZero() {
		if a, aoff = r.mslot(op.origin); a == nil {
			r.wait(op, op.origin)
			return Dot{}, false
		}
	}
	var t *run[T]
	if op.kind == opMove {
		x, off := r.mslot(op.target)
		if x == nil {
			r.wait(op, op.target)
			return Dot{}, false
		}
		if !x.isMove() { // move slots are single slots already
			x = r.seq.pin(x, off)
			if a != nil { // pinning may have split the origin's run
				a, aoff = r.mslot(op.origin)
			}
		}
		t = x
	}
	id := nodeKey{op.id.Counter, r.intern(op.id.Replica)}
	x := r.integrate(id, a, aoff, op.value, t)
	if op.kind == opMove {
		r.claimPosition(x)
	}
	return op.id, true
}

// wait buffers op until missing arrives. If missing is already known to
// be an operation that is not a slot, op can never apply: it is dropped and
// its dot recorded as seen, so every replica ends with the same context
// whichever order the two arrived in.
func (r *RGA[T]) wait(op rgaOp[T], missing Dot) {
	if r.ctx.Contains(missing) {
		r.ctx.Add(op.id)
		return
	}
	r.pending[op.id] = op
	r.waiting[missing] = append(r.waiting[missing], op.id)
}

// prunePending keeps the dots of buffered operations out of the context,
// then drops buffered operations that wait for a dot the context holds
// without a slot (a removal, a skipped counter, or a dropped operation):
// they can never apply. A dropped operation's dot is recorded as seen.
func (r *RGA[T]) prunePending() {
	for id := range r.pending {
		r.ctx.remove(id)
	}
	for changed := true; changed; {
		changed = false
		for missing, ids := range r.waiting {
			if !r.ctx.Contains(missing) || r.hasSlot(missing) {
				continue
			}
			for _, id := range ids {
				if _, ok := r.pending[id]; ok {
					delete(r.pending, id)
					r.ctx.Add(id)
					changed = true
				}
			}
			delete(r.waiting, missing)
		}
	}
}
