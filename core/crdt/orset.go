package crdt

import (
	"fmt"
	"iter"
	"slices"
)

// orKernel is a dot store (element -> live dots) with its causal context.
// Invariant: every live dot is in ctx and belongs to exactly one element.
type orKernel[T comparable] struct {
	entries map[T][]Dot
	byDot   map[Dot]T
	ctx     DotSet
}

// newKernel returns an empty kernel; its maps are allocated on first write
// so that small deltas stay cheap.
func newKernel[T comparable]() orKernel[T] { return orKernel[T]{} }

func (k *orKernel[T]) alloc() {
	if k.entries == nil {
		k.entries = make(map[T][]Dot)
		k.byDot = make(map[Dot]T)
	}
}

func (k *orKernel[T]) put(v T, d Dot) {
	k.alloc()
	k.entries[v] = append(k.entries[v], d)
	k.byDot[d] = v
}

func (k *orKernel[T]) clone() orKernel[T] {
	var c orKernel[T]
	if len(k.byDot) > 0 {
		c.entries = make(map[T][]Dot, len(k.entries))
		c.byDot = make(map[Dot]T, len(k.byDot))
	}
	for v, ds := range k.entries {
		c.entries[v] = slices.Clone(ds)
	}
	for d, v := range k.byDot {
		c.byDot[d] = v
	}
	c.ctx = k.ctx.Clone()
	return c
}

// join merges o into k: a dot survives if both sides have it, or if one
// side has it and the other side has never seen it. It fails with
// ErrConflict, leaving k unchanged, if o files a dot under a different
// element than k does.
func (k *orKernel[T]) join(o *orKernel[T]) error {
	for d, y := range o.byDot {
		if x, ok := k.byDot[d]; ok && x != y {
			return fmt.Errorf("%w: dot %v names two different elements", ErrConflict, d)
		}
	}
	if len(o.byDot) > 0 {
		k.alloc()
	}
	// Elements of k that o does not mention lose the dots o has seen.
	drop := func(d Dot) {
		x, ok := k.byDot[d]
		if !ok {
			return
		}
		if _, inO := o.entries[x]; inO {
			return // handled below
		}
		k.removeDot(x, d)
	}
	if n := uint64(len(k.byDot)); o.ctx.size(n+1) <= n {
		o.ctx.each(func(d Dot) bool { drop(d); return true })
	} else {
		var seen []Dot
		for d := range k.byDot {
			if o.ctx.Contains(d) {
				seen = append(seen, d)
			}
		}
		for _, d := range seen {
			drop(d)
		}
	}
	// Elements o mentions: keep common dots, k's dots o has not seen, and
	// o's dots k has not seen.
	for y, theirs := range o.entries {
		mine := k.entries[y]
		var out []Dot
		for _, d := range mine {
			if slices.Contains(theirs, d) || !o.ctx.Contains(d) {
				out = append(out, d)
			} else {
				delete(k.byDot, d)
			}
		}
		for _, d := range theirs {
			if !slices.Contains(mine, d) && !k.ctx.Contains(d) {
				out = append(out, d)
				k.byDot[d] = y
			}
		}
		if len(out) == 0 {
			delete(k.entries, y)
		} else {
			k.entries[y] = out
		}
	}
	k.ctx.Union(&o.ctx)
	return nil
}

func (k *orKernel[T]) removeDot(v T, d Dot) {
	ds := k.entries[v]
	i := slices.Index(ds, d)
	if i < 0 {
		return
	}
	ds = slices.Delete(ds, i, i+1)
	if len(ds) == 0 {
		delete(k.entries, v)
	} else {
		k.entries[v] = ds
	}
	delete(k.byDot, d)
}

func sortedDots(ds []Dot) []Dot {
	out := slices.Clone(ds)
	slices.SortFunc(out, compareDotByReplica)
	return out
}

// compareDotByReplica orders dots by replica bytes, then counter (the
// order dots are encoded in).
func compareDotByReplica(a, b Dot) int {
	if c := compareReplica(a.Replica, b.Replica); c != 0 {
		return c
	}
	switch {
	case a.Counter < b.Counter:
		return -1
	case a.Counter > b.Counter:
		return 1
	}
	return 0
}

// ORSet is an add-wins observed-remove set of comparable values for one
// replica. Each add tags the element with a fresh dot (and drops the dots
// of earlier adds of the same element that this replica has seen); a remove
// drops the dots it has seen, so a concurrent add, whose dot the remover has
// not seen, survives. Removed dots are remembered only in the compact causal
// context, so there are no per-element tombstones.
//
// T must be encodable with core/wire, round-trip to the same canonical
// encoding, and must not contain floating-point NaNs. An ORSet is not safe
// for concurrent use.
type ORSet[T comparable] struct {
	self ReplicaID
	k    orKernel[T]
}

// NewORSet returns an empty set whose own operations are tagged with self.
func NewORSet[T comparable](self ReplicaID) *ORSet[T] {
	return &ORSet[T]{self: self, k: newKernel[T]()}
}

// Replica returns the replica ID the set tags its operations with.
func (s *ORSet[T]) Replica() ReplicaID { return s.self }

// Contains reports whether v is in the set.
func (s *ORSet[T]) Contains(v T) bool { _, ok := s.k.entries[v]; return ok }

// Len returns the number of elements.
func (s *ORSet[T]) Len() int { return len(s.k.entries) }

// Elements returns the elements in unspecified order, newly allocated.
func (s *ORSet[T]) Elements() []T {
	out := make([]T, 0, len(s.k.entries))
	for v := range s.k.entries {
		out = append(out, v)
	}
	return out
}

// Dots returns the live dots tagging v (the adds that keep it in the set),
// sorted by replica bytes then counter; nil if v is absent. Concurrent adds
// of v by different replicas leave one dot each.
func (s *ORSet[T]) Dots(v T) []Dot { return sortedDots(s.k.entries[v]) }

// Add inserts v and returns the delta to send. The only error is
// ErrCounterRange when this replica has used up its counters.
func (s *ORSet[T]) Add(v T) (*ORSetDelta[T], error) {
	c, err := nextCounter(s.k.ctx.Max(s.self))
	if err != nil {
		return nil, err
	}
	d := Dot{s.self, c}
	delta := &ORSetDelta[T]{k: newKernel[T]()}
	for _, old := range s.k.entries[v] {
		delta.k.ctx.Add(old)
	}
	delta.k.ctx.Add(d)
	delta.k.put(v, d)
	if err := s.k.join(&delta.k); err != nil {
		return nil, err // unreachable: d is fresh
	}
	return delta, nil
}

// Remove deletes v (the adds this replica has seen) and returns the delta
// to send; the delta is empty if v is absent.
func (s *ORSet[T]) Remove(v T) *ORSetDelta[T] {
	delta := &ORSetDelta[T]{k: newKernel[T]()}
	for _, old := range s.k.entries[v] {
		delta.k.ctx.Add(old)
	}
	_ = s.k.join(&delta.k) // no store dots: cannot conflict
	return delta
}

// Clear removes every element and returns the delta to send.
func (s *ORSet[T]) Clear() *ORSetDelta[T] {
	delta := &ORSetDelta[T]{k: newKernel[T]()}
	for d := range s.k.byDot {
		delta.k.ctx.Add(d)
	}
	_ = s.k.join(&delta.k)
	return delta
}

// Merge joins a delta or a full state (from State or DeltaSince) into s.
// Deltas may arrive in any order, more than once. It fails with ErrConflict
// if d files a dot under a different element than s does; s is then
// unchanged. A nil d is a no-op.
func (s *ORSet[T]) Merge(d *ORSetDelta[T]) error {
	if d == nil {
		return nil
	}
	return s.k.join(&d.k)
}

// State returns the full state as a delta (an independent copy).
func (s *ORSet[T]) State() *ORSetDelta[T] { return &ORSetDelta[T]{k: s.k.clone()} }

// VersionVector returns the contiguous prefix of the causal context: what
// a peer sends so this set's owner can answer with DeltaSince.
func (s *ORSet[T]) VersionVector() VersionVector { return s.k.ctx.VersionVector() }

// Context returns a copy of the set's causal context.
func (s *ORSet[T]) Context() DotSet { return s.k.ctx.Clone() }

// DeltaSince returns a delta that brings a replica whose causal context
// contains vv to the same state as merging s.State(): the elements whose
// dots vv lacks, and a context that is s's context minus the live dots vv
// already covers (so removals of dots the peer holds still reach it).
func (s *ORSet[T]) DeltaSince(vv VersionVector) *ORSetDelta[T] {
	delta := &ORSetDelta[T]{k: newKernel[T]()}
	delta.k.ctx = s.k.ctx.Clone()
	for d, v := range s.k.byDot {
		if vv.Contains(d) {
			delta.k.ctx.remove(d)
		} else {
			delta.k.put(v, d)
		}
	}
	return delta
}

// ORSetDelta is a partial or full ORSet state: a dot store and a causal
// context. Mutations, State and DeltaSince produce it; Join combines
// deltas; it encodes with core/wire. Not safe for concurrent use.
type ORSetDelta[T comparable] struct {
	k orKernel[T]
}

// NewORSetDelta returns an empty delta (the identity for Join).
func NewORSetDelta[T comparable]() *ORSetDelta[T] { return &ORSetDelta[T]{k: newKernel[T]()} }

// Join merges o into d, so that merging d afterwards equals merging both.
// It fails with ErrConflict (d unchanged) if the two file a dot under
// different elements.
func (d *ORSetDelta[T]) Join(o *ORSetDelta[T]) error {
	if o == nil {
		return nil
	}
	return d.k.join(&o.k)
}

// IsEmpty reports whether d carries no dots and no context.
func (d *ORSetDelta[T]) IsEmpty() bool { return len(d.k.byDot) == 0 && d.k.ctx.IsEmpty() }

// Elements returns the elements d adds, in unspecified order.
func (d *ORSetDelta[T]) Elements() []T {
	out := make([]T, 0, len(d.k.entries))
	for v := range d.k.entries {
		out = append(out, v)
	}
	return out
}

// Dots returns every dot in d's store, sorted by replica bytes then
// counter. For a delta returned by Add this is the one new dot, whose
// replica is the author.
func (d *ORSetDelta[T]) Dots() []Dot {
	out := make([]Dot, 0, len(d.k.byDot))
	for x := range d.k.byDot {
		out = append(out, x)
	}
	slices.SortFunc(out, compareDotByReplica)
	return out
}

// All iterates over the (element, dot) pairs of d's store, in
// unspecified order. For a delta returned by Add it yields the added
// element with its one new dot, whose replica is the author.
func (d *ORSetDelta[T]) All() iter.Seq2[T, Dot] {
	return func(yield func(T, Dot) bool) {
		for x, v := range d.k.byDot {
			if !yield(v, x) {
				return
			}
		}
	}
}

// Context returns a copy of d's causal context.
func (d *ORSetDelta[T]) Context() DotSet { return d.k.ctx.Clone() }

// Clone returns an independent copy of d.
func (d *ORSetDelta[T]) Clone() *ORSetDelta[T] {
	return &ORSetDelta[T]{k: d.k.clone()}
}
