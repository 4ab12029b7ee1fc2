package crdt

import (
	"fmt"
	"slices"
)

// RGADelta is a set of RGA operations with the causal context that covers
// them: what a local mutation, State or DeltaSince returns and what Merge
// accepts. Join combines deltas; it encodes with core/wire. Not safe for
// concurrent use.
type RGADelta[T comparable] struct {
	ops []rgaOp[T]
	ctx DotSet
}

// RGAOpKind says what an RGA operation does.
type RGAOpKind uint8

// Kinds of RGA operations.
const (
	// RGAInsert creates element ID holding Value right after slot Origin.
	RGAInsert = RGAOpKind(opInsert)
	// RGAMove gives element Target a new slot ID right after slot Origin.
	RGAMove = RGAOpKind(opMove)
	// RGARemove (dot ID) removes element Target.
	RGARemove = RGAOpKind(opRemove)
)

// String returns the kind's name.
func (k RGAOpKind) String() string {
	switch k {
	case RGAInsert:
		return "insert"
	case RGAMove:
		return "move"
	case RGARemove:
		return "remove"
	}
	return "invalid"
}

// RGAOp describes one operation of a delta, for inspection (for example to
// check that every operation of a signed delta was made by its signer).
// Origin is the zero Dot for the head and for removals; Target is zero
// for inserts; Value is set only for inserts. Origin names a slot: the
// element's insert dot, or a move's dot.
type RGAOp[T comparable] struct {
	// Kind is insert, move or remove.
	Kind RGAOpKind
	// ID is the operation's dot; its Replica is the author.
	ID Dot
	// Origin is the slot an insert or move goes after (zero: the head).
	Origin Dot
	// Target is the element a move or remove applies to.
	Target Dot
	// Value is an insert's value.
	Value T
}

// Ops returns d's operations sorted by replica bytes then counter, newly
// allocated.
func (d *RGADelta[T]) Ops() []RGAOp[T] {
	out := make([]RGAOp[T], len(d.ops))
	for i, op := range d.ops {
		out[i] = RGAOp[T]{Kind: RGAOpKind(op.kind), ID: op.id, Origin: op.origin, Target: op.target, Value: op.value}
	}
	slices.SortFunc(out, func(a, b RGAOp[T]) int { return compareDotByReplica(a.ID, b.ID) })
	return out
}

// NewRGADelta returns an empty delta (the identity for Join).
func NewRGADelta[T comparable]() *RGADelta[T] { return &RGADelta[T]{} }

// Join adds o's operations and context to d, so that merging d afterwards
// equals merging both. It fails with ErrConflict (d unchanged) if the two
// define one dot differently.
func (d *RGADelta[T]) Join(o *RGADelta[T]) error {
	if o == nil {
		return nil
	}
	have := make(map[Dot]int, len(d.ops))
	for i, op := range d.ops {
		have[op.id] = i
	}
	var add []rgaOp[T]
	for _, op := range o.ops {
		if i, ok := have[op.id]; ok {
			if d.ops[i] != op {
				return fmt.Errorf("%w: operation %v defined twice", ErrConflict, op.id)
			}
			continue
		}
		have[op.id] = len(d.ops) + len(add)
		add = append(add, op)
	}
	d.ops = append(d.ops, add...)
	d.ctx.Union(&o.ctx)
	return nil
}

// IsEmpty reports whether d has no operations and no context.
func (d *RGADelta[T]) IsEmpty() bool { return len(d.ops) == 0 && d.ctx.IsEmpty() }

// Len returns the number of operations in d.
func (d *RGADelta[T]) Len() int { return len(d.ops) }

// OpIDs returns the dots of d's operations sorted by replica bytes then
// counter. For a delta from a local mutation it is the one new dot, whose
// replica is the author.
func (d *RGADelta[T]) OpIDs() []Dot {
	out := make([]Dot, len(d.ops))
	for i, op := range d.ops {
		out[i] = op.id
	}
	slices.SortFunc(out, compareDotByReplica)
	return out
}

// Context returns a copy of d's causal context.
func (d *RGADelta[T]) Context() DotSet { return d.ctx.Clone() }

// Clone returns an independent copy of d.
func (d *RGADelta[T]) Clone() *RGADelta[T] {
	return &RGADelta[T]{ops: slices.Clone(d.ops), ctx: d.ctx.Clone()}
}
