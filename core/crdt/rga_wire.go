package crdt

import (
	"fmt"
	"slices"

	"github.com/saorsa-labs/x0x-go/core/wire"
)

// Wire form of an RGADelta:
//
//	[ replicas: [bstr32 ...] sorted, each used,
//	  inserts:  [[ri, counter, origin ri, origin counter, value], ...],
//	  moves:    [[ri, counter, origin ri, origin counter, item ri, item counter], ...],
//	  removes:  [[ri, counter, item ri, item counter], ...],
//	  context:  [[ri, lo, hi, lo, hi, ...], ...] ]
//
// The head origin is written (0, 0). Each list is sorted by (ri, counter);
// dots are unique across the lists and all in the context; every reference
// has a smaller counter than the operation (Lamport order).
type rgaDeltaWire[T any] struct {
	_        struct{} `cbor:",toarray"`
	Replicas [][]byte
	Inserts  []rgaInsertWire[T]
	Moves    []rgaMoveWire
	Removes  []rgaRemoveWire
	Context  [][]uint64
}

type rgaInsertWire[T any] struct {
	_     struct{} `cbor:",toarray"`
	R, C  uint64
	OR    uint64
	OC    uint64
	Value T
}

type rgaMoveWire struct {
	_      struct{} `cbor:",toarray"`
	R, C   uint64
	OR, OC uint64
	TR, TC uint64
}

type rgaRemoveWire struct {
	_      struct{} `cbor:",toarray"`
	R, C   uint64
	TR, TC uint64
}

const rgaWhat = "rga delta"

// MarshalCBOR encodes d canonically. It fails if a value cannot be encoded
// or the result would exceed what core/wire decodes (a list longer than
// wire.MaxElements, or more than wire.MaxMessageSize bytes); callers with
// sequences that large must split the state (not provided here).
func (d *RGADelta[T]) MarshalCBOR() ([]byte, error) {
	rc := repCollector{}
	rc.addSet(&d.ctx)
	for _, op := range d.ops {
		rc.add(op.id.Replica)
		if !op.origin.IsZero() {
			rc.add(op.origin.Replica)
		}
		if op.kind != opInsert {
			rc.add(op.target.Replica)
		}
	}
	t := rc.table()
	ops := slices.Clone(d.ops)
	slices.SortFunc(ops, func(a, b rgaOp[T]) int { return compareDotByReplica(a.id, b.id) })
	w := rgaDeltaWire[T]{
		Replicas: t.wire(),
		Inserts:  []rgaInsertWire[T]{},
		Moves:    []rgaMoveWire{},
		Removes:  []rgaRemoveWire{},
		Context:  t.encodeDotSet(&d.ctx),
	}
	ref := func(x Dot) (uint64, uint64) {
		if x.IsZero() {
			return 0, 0
		}
		return t.idx[x.Replica], x.Counter
	}
	for _, op := range ops {
		r, c := t.idx[op.id.Replica], op.id.Counter
		or, oc := ref(op.origin)
		tr, tc := ref(op.target)
		switch op.kind {
		case opInsert:
			w.Inserts = append(w.Inserts, rgaInsertWire[T]{R: r, C: c, OR: or, OC: oc, Value: op.value})
		case opMove:
			w.Moves = append(w.Moves, rgaMoveWire{R: r, C: c, OR: or, OC: oc, TR: tr, TC: tc})
		case opRemove:
			w.Removes = append(w.Removes, rgaRemoveWire{R: r, C: c, TR: tr, TC: tc})
		}
	}
	if n := max(len(w.Inserts), len(w.Moves), len(w.Removes)); n > wire.MaxElements {
		return nil, fmt.Errorf("crdt: rga delta list of %d operations exceeds limit %d", n, wire.MaxElements)
	}
	return marshalChecked(rgaWhat, w, w.Context)
}

// UnmarshalCBOR decodes d, replacing its contents. Malformed or
// non-canonical input (bad replica table, unsorted or repeated dots,
// counters outside [1, MaxCounter], a reference whose counter is not
// smaller than its operation's, an operation missing from the context) is
// rejected with a *FormatError; on error d is unchanged. References to
// operations the delta does not contain are allowed: Merge buffers them.
func (d *RGADelta[T]) UnmarshalCBOR(data []byte) error {
	var w rgaDeltaWire[T]
	if err := wire.Unmarshal(data, &w, rgaWhat); err != nil {
		return err
	}
	rd, err := newRepDecoder(rgaWhat, w.Replicas)
	if err != nil {
		return err
	}
	ops := make([]rgaOp[T], 0, len(w.Inserts)+len(w.Moves)+len(w.Removes))
	seen := make(map[Dot]struct{}, cap(ops))
	var prevR, prevC uint64
	// add validates the operation dot (r, c) at position i of a list and
	// its ordering after the previous one.
	add := func(list string, i int, r, c uint64) (Dot, error) {
		field := fmt.Sprintf("%s %d", list, i)
		id, err := rd.dot(r, c, field)
		if err != nil {
			return Dot{}, err
		}
		if i > 0 && (prevR > r || (prevR == r && prevC >= c)) {
			return Dot{}, malformed(rgaWhat, "%s: not strictly ascending", field)
		}
		prevR, prevC = r, c
		if _, dup := seen[id]; dup {
			return Dot{}, malformed(rgaWhat, "%s: dot %v used by two operations", field, id)
		}
		seen[id] = struct{}{}
		return id, nil
	}
	ref := func(list string, i int, what string, r, c uint64, id Dot, headOK bool) (Dot, error) {
		field := fmt.Sprintf("%s %d %s", list, i, what)
		if headOK && r == 0 && c == 0 {
			return Dot{}, nil
		}
		x, err := rd.dot(r, c, field)
		if err != nil {
			return Dot{}, err
		}
		if x.Counter >= id.Counter {
			return Dot{}, malformed(rgaWhat, "%s: counter %d not below the operation's %d", field, x.Counter, id.Counter)
		}
		return x, nil
	}
	for i, e := range w.Inserts {
		id, err := add("insert", i, e.R, e.C)
		if err != nil {
			return err
		}
		o, err := ref("insert", i, "origin", e.OR, e.OC, id, true)
		if err != nil {
			return err
		}
		ops = append(ops, rgaOp[T]{kind: opInsert, id: id, origin: o, value: e.Value})
	}
	for i, e := range w.Moves {
		id, err := add("move", i, e.R, e.C)
		if err != nil {
			return err
		}
		o, err := ref("move", i, "origin", e.OR, e.OC, id, true)
		if err != nil {
			return err
		}
		tg, err := ref("move", i, "item", e.TR, e.TC, id, false)
		if err != nil {
			return err
		}
		ops = append(ops, rgaOp[T]{kind: opMove, id: id, origin: o, target: tg})
	}
	for i, e := range w.Removes {
		id, err := add("remove", i, e.R, e.C)
		if err != nil {
			return err
		}
		tg, err := ref("remove", i, "item", e.TR, e.TC, id, false)
		if err != nil {
			return err
		}
		ops = append(ops, rgaOp[T]{kind: opRemove, id: id, target: tg})
	}
	ctx, err := rd.decodeDotSet(w.Context, "context")
	if err != nil {
		return err
	}
	for _, op := range ops {
		if !ctx.Contains(op.id) {
			return malformed(rgaWhat, "operation %v is not in the context", op.id)
		}
	}
	if err := rd.finish(); err != nil {
		return err
	}
	d.ops, d.ctx = ops, ctx
	return nil
}
