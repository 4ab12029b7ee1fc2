package crdt

import (
	"fmt"
	"slices"
)

// Snapshot support: exporting a replica's state as plain values and
// rebuilding it without replaying its history. A caller that persists its
// own merged state (core/tasklist keeps a compacted snapshot next to its
// signed operation log) needs to read the causal contexts and dot stores
// exactly, which the wire encodings of deltas give only as one message
// bounded by wire.MaxMessageSize; these functions let it store them in
// pieces of its choosing. Nothing here changes how the types behave.

// DotRange is the counters Lo..Hi (inclusive, 1 <= Lo <= Hi <= MaxCounter)
// of one replica: a run of a DotSet.
type DotRange struct {
	// Replica is the replica whose counters these are.
	Replica ReplicaID
	// Lo and Hi bound the run, inclusive.
	Lo, Hi uint64
}

// Ranges returns s as its maximal runs, sorted by replica bytes then
// counter, newly allocated. AddRange of each run rebuilds s.
func (s *DotSet) Ranges() []DotRange {
	var out []DotRange
	for _, r := range s.Replicas() {
		for _, x := range s.m[r] {
			out = append(out, DotRange{Replica: r, Lo: x.lo, Hi: x.hi})
		}
	}
	return out
}

// AddRange inserts the counters lo..hi of r. It fails, leaving s
// unchanged, if the range is empty or outside [1, MaxCounter], so that a
// damaged snapshot cannot plant impossible counters.
func (s *DotSet) AddRange(r ReplicaID, lo, hi uint64) error {
	if !validCounter(lo) || !validCounter(hi) || lo > hi {
		return fmt.Errorf("%w: dot range [%d, %d]", ErrCounterRange, lo, hi)
	}
	s.addRange(r, lo, hi)
	return nil
}

// ORSetEntry is one element of an ORSet with the live dots that keep it
// in the set.
type ORSetEntry[T comparable] struct {
	// Value is the element.
	Value T
	// Dots are its live dots, sorted by replica bytes then counter.
	Dots []Dot
}

// Entries returns the set's elements with their live dots, in
// unspecified element order, newly allocated. With Context it is the
// set's whole state: RestoreORSet(s.Replica(), s.Entries(), s.Context())
// equals s.
func (s *ORSet[T]) Entries() []ORSetEntry[T] {
	out := make([]ORSetEntry[T], 0, len(s.k.entries))
	for v, ds := range s.k.entries {
		out = append(out, ORSetEntry[T]{Value: v, Dots: sortedDots(ds)})
	}
	return out
}

// RestoreORSet rebuilds a set for replica self from the entries and
// causal context that Entries and Context returned. It takes ownership of
// ctx. It checks the kernel's invariant, so a damaged snapshot is refused
// (ErrConflict) rather than producing a set that merges wrongly: every dot
// is valid, in ctx and tags one element only, and every element has a dot
// and appears once.
func RestoreORSet[T comparable](self ReplicaID, entries []ORSetEntry[T], ctx DotSet) (*ORSet[T], error) {
	s := &ORSet[T]{self: self, k: newKernel[T]()}
	if len(entries) > 0 {
		s.k.entries = make(map[T][]Dot, len(entries))
		s.k.byDot = make(map[Dot]T, len(entries))
	}
	for _, e := range entries {
		if len(e.Dots) == 0 {
			return nil, fmt.Errorf("%w: element without dots", ErrConflict)
		}
		if _, dup := s.k.entries[e.Value]; dup {
			return nil, fmt.Errorf("%w: element listed twice", ErrConflict)
		}
		for _, d := range e.Dots {
			if !validCounter(d.Counter) || !ctx.Contains(d) {
				return nil, fmt.Errorf("%w: dot %v is not in the context", ErrConflict, d)
			}
			if _, dup := s.k.byDot[d]; dup {
				return nil, fmt.Errorf("%w: dot %v tags two elements", ErrConflict, d)
			}
			s.k.byDot[d] = e.Value
		}
		s.k.entries[e.Value] = slices.Clone(e.Dots)
	}
	s.k.ctx = ctx
	return s, nil
}

// NewRGADeltaOf builds a delta from operations (as RGADelta.Ops returns
// them, for example from RGA.State) and their causal context, so that a
// caller can store a state in pieces and merge it back. It takes
// ownership of ctx. It applies the checks UnmarshalCBOR applies: valid
// and unique operation dots, each in ctx; references with smaller
// counters than their operation; a head origin only for inserts and
// moves; no target for inserts. Errors wrap ErrConflict.
func NewRGADeltaOf[T comparable](ops []RGAOp[T], ctx DotSet) (*RGADelta[T], error) {
	d := &RGADelta[T]{ops: make([]rgaOp[T], 0, len(ops)), ctx: ctx}
	seen := make(map[Dot]struct{}, len(ops))
	for i, op := range ops {
		if !validCounter(op.ID.Counter) || !ctx.Contains(op.ID) {
			return nil, fmt.Errorf("%w: operation %d: dot %v is not in the context", ErrConflict, i, op.ID)
		}
		if _, dup := seen[op.ID]; dup {
			return nil, fmt.Errorf("%w: operation %d: dot %v used twice", ErrConflict, i, op.ID)
		}
		seen[op.ID] = struct{}{}
		ref := func(x Dot, headOK bool) error {
			if x.IsZero() && headOK {
				return nil
			}
			if !validCounter(x.Counter) || x.Counter >= op.ID.Counter {
				return fmt.Errorf("%w: operation %v: reference %v is not before it", ErrConflict, op.ID, x)
			}
			return nil
		}
		var k opKind
		switch op.Kind {
		case RGAInsert:
			if !op.Target.IsZero() {
				return nil, fmt.Errorf("%w: insert %v has a target", ErrConflict, op.ID)
			}
			k = opInsert
		case RGAMove:
			k = opMove
		case RGARemove:
			if !op.Origin.IsZero() {
				return nil, fmt.Errorf("%w: remove %v has an origin", ErrConflict, op.ID)
			}
			k = opRemove
		default:
			return nil, fmt.Errorf("%w: operation %v of kind %d", ErrConflict, op.ID, op.Kind)
		}
		if k != opRemove {
			if err := ref(op.Origin, true); err != nil {
				return nil, err
			}
		}
		if k != opInsert {
			if err := ref(op.Target, false); err != nil {
				return nil, err
			}
		}
		var zero T
		if k != opInsert && op.Value != zero {
			return nil, fmt.Errorf("%w: %v %v carries a value", ErrConflict, op.Kind, op.ID)
		}
		d.ops = append(d.ops, rgaOp[T]{kind: k, id: op.ID, origin: op.Origin, target: op.Target, value: op.Value})
	}
	return d, nil
}
