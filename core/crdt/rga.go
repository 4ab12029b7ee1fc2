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

// rnode is one slot of the sequence. An insert creates a slot that is also
// an item (item == itself) carrying the value; a move creates a slot that
// points at the item it moves. An item's position is its slot with the
// greatest ID (last writer wins, by Lamport order); only that slot is
// visible, and only while the item is not removed.
type rnode[T comparable] struct {
	id      nodeKey
	origin  nodeKey   // slot this one was inserted after; ctr 0 = head
	item    *rnode[T] // insert: itself; move: the node it names
	pos     *rnode[T] // items only: the winning slot
	rmv     nodeKey   // items only: smallest removal dot; ctr 0 = not removed
	value   T         // items only
	ch      *chunk[T]
	visible bool
}

func (n *rnode[T]) isItem() bool { return n.item == n }

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
// tombstones is implemented), so memory grows with every insert ever made.
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
	nodes   map[nodeKey]*rnode[T]
	seq     seq[T]
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
		nodes:      make(map[nodeKey]*rnode[T]),
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
	return i
}

func (r *RGA[T]) dotOf(k nodeKey) Dot {
	if k.ctr == 0 {
		return Dot{}
	}
	return Dot{r.reps[k.rep], k.ctr}
}

// node returns the slot with ID d, or nil.
func (r *RGA[T]) node(d Dot) *rnode[T] {
	i, ok := r.repIdx[d.Replica]
	if !ok {
		return nil
	}
	return r.nodes[nodeKey{d.Counter, i}]
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

// At returns the ID and value of the i-th visible element; ok is false if
// i is out of range.
func (r *RGA[T]) At(i int) (id Dot, v T, ok bool) {
	if i < 0 || i >= r.seq.vis {
		return Dot{}, v, false
	}
	it := r.seq.at(i).item
	return r.dotOf(it.id), it.value, true
}

// Get returns the value of element id; ok is false if it is unknown or
// removed.
func (r *RGA[T]) Get(id Dot) (v T, ok bool) {
	n := r.node(id)
	if n == nil || !n.isItem() || n.rmv.ctr != 0 {
		return v, false
	}
	return n.value, true
}

// IndexOf returns the visible position of element id; ok is false if it is
// unknown or removed.
func (r *RGA[T]) IndexOf(id Dot) (int, bool) {
	n := r.node(id)
	if n == nil || !n.isItem() || n.rmv.ctr != 0 {
		return 0, false
	}
	return r.seq.index(n.pos), true
}

// All iterates over the visible elements in order as (ID, value) pairs.
// The RGA must not be modified during the iteration.
func (r *RGA[T]) All() iter.Seq2[Dot, T] {
	return func(yield func(Dot, T) bool) {
		r.seq.each(func(n *rnode[T]) bool {
			if !n.visible {
				return true
			}
			return yield(r.dotOf(n.item.id), n.item.value)
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
func (r *RGA[T]) item(id Dot) (*rnode[T], error) {
	n := r.node(id)
	if n == nil || !n.isItem() {
		return nil, fmt.Errorf("%w: %v", ErrUnknownElement, id)
	}
	return n, nil
}

// anchor returns the slot to insert after for "after element id" (the
// zero Dot is the head, returned as nil).
func (r *RGA[T]) anchor(after Dot) (*rnode[T], error) {
	if after.IsZero() {
		return nil, nil
	}
	it, err := r.item(after)
	if err != nil {
		return nil, err
	}
	return it.pos, nil
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
	a, err := r.anchor(after)
	if err != nil {
		return Dot{}, nil, err
	}
	return r.insertAfterSlot(a, v)
}

// InsertAt inserts v so that it becomes the i-th visible element
// (0 <= i <= Len()) and returns its ID and the delta to send. Errors:
// ErrIndexRange, ErrCounterRange.
func (r *RGA[T]) InsertAt(i int, v T) (Dot, *RGADelta[T], error) {
	if i < 0 || i > r.seq.vis {
		return Dot{}, nil, fmt.Errorf("%w: insert at %d, length %d", ErrIndexRange, i, r.seq.vis)
	}
	var a *rnode[T]
	if i > 0 {
		a = r.seq.at(i - 1)
	}
	return r.insertAfterSlot(a, v)
}

func (r *RGA[T]) insertAfterSlot(a *rnode[T], v T) (Dot, *RGADelta[T], error) {
	id, ctx, err := r.nextOp()
	if err != nil {
		return Dot{}, nil, err
	}
	op := rgaOp[T]{kind: opInsert, id: id, value: v}
	n := &rnode[T]{id: nodeKey{id.Counter, r.selfIdx}, value: v, visible: true}
	n.item, n.pos = n, n
	if a != nil {
		n.origin = a.id
		op.origin = r.dotOf(a.id)
	}
	r.integrate(n, a)
	return id, &RGADelta[T]{ops: []rgaOp[T]{op}, ctx: ctx}, nil
}

// Remove removes element id and returns the delta to send. Errors:
// ErrUnknownElement, ErrRemoved (already removed), ErrCounterRange.
func (r *RGA[T]) Remove(id Dot) (*RGADelta[T], error) {
	it, err := r.item(id)
	if err != nil {
		return nil, err
	}
	return r.removeItem(it)
}

// RemoveAt removes the i-th visible element and returns the delta to send.
// Errors: ErrIndexRange, ErrCounterRange.
func (r *RGA[T]) RemoveAt(i int) (*RGADelta[T], error) {
	if i < 0 || i >= r.seq.vis {
		return nil, fmt.Errorf("%w: remove at %d, length %d", ErrIndexRange, i, r.seq.vis)
	}
	return r.removeItem(r.seq.at(i).item)
}

func (r *RGA[T]) removeItem(it *rnode[T]) (*RGADelta[T], error) {
	if it.rmv.ctr != 0 {
		return nil, fmt.Errorf("%w: %v", ErrRemoved, r.dotOf(it.id))
	}
	id, ctx, err := r.nextOp()
	if err != nil {
		return nil, err
	}
	r.applyRemove(it, nodeKey{id.Counter, r.selfIdx})
	op := rgaOp[T]{kind: opRemove, id: id, target: r.dotOf(it.id)}
	return &RGADelta[T]{ops: []rgaOp[T]{op}, ctx: ctx}, nil
}

// Move moves element id to right after element after (the zero Dot moves
// it to the head) and returns the delta to send. Errors: ErrUnknownElement,
// ErrRemoved (id has been removed), ErrCounterRange.
func (r *RGA[T]) Move(id, after Dot) (*RGADelta[T], error) {
	it, err := r.item(id)
	if err != nil {
		return nil, err
	}
	if it.rmv.ctr != 0 {
		return nil, fmt.Errorf("%w: %v", ErrRemoved, id)
	}
	a, err := r.anchor(after)
	if err != nil {
		return nil, err
	}
	mid, ctx, err := r.nextOp()
	if err != nil {
		return nil, err
	}
	n := &rnode[T]{id: nodeKey{mid.Counter, r.selfIdx}, item: it}
	op := rgaOp[T]{kind: opMove, id: mid, target: id}
	if a != nil {
		n.origin = a.id
		op.origin = r.dotOf(a.id)
	}
	r.integrate(n, a)
	r.claimPosition(n)
	return &RGADelta[T]{ops: []rgaOp[T]{op}, ctx: ctx}, nil
}

// integrate places slot n in document order after slot a (nil = head):
// it skips the slots right after a whose IDs are greater than n's and
// inserts before the first smaller one. It records n's ID as seen.
func (r *RGA[T]) integrate(n, a *rnode[T]) {
	ci, off := 0, 0
	if a != nil {
		ci, off = r.seq.locate(a)
		off++
	}
	for ci < len(r.seq.chunks) {
		c := r.seq.chunks[ci]
		if off == len(c.nodes) {
			if ci+1 == len(r.seq.chunks) {
				break
			}
			ci, off = ci+1, 0
			continue
		}
		if r.cmpKey(c.nodes[off].id, n.id) < 0 {
			break
		}
		off++
	}
	r.seq.insert(ci, off, n)
	r.nodes[n.id] = n
	r.ctx.addRange(r.reps[n.id.rep], n.id.ctr, n.id.ctr)
	r.lamport = max(r.lamport, n.id.ctr)
}

// claimPosition makes move slot n its item's position if its ID is the
// greatest of the item's slots. A move naming something that is not an
// item has no effect.
func (r *RGA[T]) claimPosition(n *rnode[T]) {
	it := n.item
	if !it.isItem() || r.cmpKey(n.id, it.pos.id) <= 0 {
		return
	}
	old := it.pos
	it.pos = n
	if it.rmv.ctr == 0 {
		r.seq.setVisible(old, false)
		r.seq.setVisible(n, true)
	}
}

// applyRemove records removal dot k on it; removing a move slot has no
// effect beyond recording the dot.
func (r *RGA[T]) applyRemove(it *rnode[T], k nodeKey) {
	r.ctx.addRange(r.reps[k.rep], k.ctr, k.ctr)
	r.lamport = max(r.lamport, k.ctr)
	if !it.isItem() {
		return
	}
	switch {
	case it.rmv.ctr == 0:
		it.rmv = k
		r.seq.setVisible(it.pos, false)
	case r.cmpKey(k, it.rmv) < 0:
		it.rmv = k
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
	r.seq.each(func(n *rnode[T]) bool {
		id := r.dotOf(n.id)
		if !vv.Contains(id) {
			op := rgaOp[T]{id: id, origin: r.dotOf(n.origin)}
			if n.isItem() {
				op.kind, op.value = opInsert, n.value
			} else {
				op.kind, op.target = opMove, r.dotOf(n.item.id)
			}
			d.ops = append(d.ops, op)
		}
		if n.isItem() && n.rmv.ctr != 0 {
			if rid := r.dotOf(n.rmv); !vv.Contains(rid) {
				d.ops = append(d.ops, rgaOp[T]{kind: opRemove, id: rid, target: id})
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
		if x.IsZero() || r.node(x) != nil {
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
		if n := r.node(op.id); n != nil {
			if !r.sameSlot(n, op) {
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

func (r *RGA[T]) sameSlot(n *rnode[T], op rgaOp[T]) bool {
	if r.dotOf(n.origin) != op.origin {
		return false
	}
	if n.isItem() {
		return op.kind == opInsert && n.value == op.value
	}
	return op.kind == opMove && r.dotOf(n.item.id) == op.target
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
		t := r.node(op.target)
		if t == nil {
			r.wait(op, op.target)
			return Dot{}, false
		}
		r.applyRemove(t, nodeKey{op.id.Counter, r.intern(op.id.Replica)})
		return op.id, true
	}
	if r.node(op.id) != nil || r.ctx.Contains(op.id) {
		return Dot{}, false
	}
	var a *rnode[T]
	if !op.origin.IsZero() {
		if a = r.node(op.origin); a == nil {
			r.wait(op, op.origin)
			return Dot{}, false
		}
	}
	var t *rnode[T]
	if op.kind == opMove {
		if t = r.node(op.target); t == nil {
			r.wait(op, op.target)
			return Dot{}, false
		}
	}
	n := &rnode[T]{id: nodeKey{op.id.Counter, r.intern(op.id.Replica)}}
	if a != nil {
		n.origin = a.id
	}
	if op.kind == opInsert {
		n.item, n.pos, n.value, n.visible = n, n, op.value, true
	} else {
		n.item = t
	}
	r.integrate(n, a)
	if op.kind == opMove {
		r.claimPosition(n)
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
			if !r.ctx.Contains(missing) || r.node(missing) != nil {
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
