package crdt

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/fxamacker/cbor/v2"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// Wire form of an ORSetDelta:
//
//	[ replicas: [bstr32 ...] sorted, each used,
//	  entries:  [[element, [ri, counter, ri, counter, ...]], ...]
//	            sorted by the element's canonical encoding; dots sorted,
//	  context:  [[ri, lo, hi, lo, hi, ...], ...] ]
//
// Every store dot must be in the context and belong to one element only.
type orsetDeltaWire struct {
	_        struct{} `cbor:",toarray"`
	Replicas [][]byte
	Entries  []orsetEntryWire
	Context  [][]uint64
}

type orsetEntryWire struct {
	_    struct{} `cbor:",toarray"`
	Elem cbor.RawMessage
	Dots []uint64
}

const orsetWhat = "orset delta"

// MarshalCBOR encodes d canonically. It fails if an element cannot be
// encoded or if the result would exceed what core/wire decodes (more
// entries than wire.MaxElements, or more than wire.MaxMessageSize bytes).
func (d *ORSetDelta[T]) MarshalCBOR() ([]byte, error) {
	if len(d.k.entries) > wire.MaxElements {
		return nil, fmt.Errorf("crdt: orset delta has %d elements, limit %d", len(d.k.entries), wire.MaxElements)
	}
	rc := repCollector{}
	rc.addSet(&d.k.ctx)
	for x := range d.k.byDot {
		rc.add(x.Replica)
	}
	t := rc.table()
	w := orsetDeltaWire{Replicas: t.wire(), Entries: make([]orsetEntryWire, 0, len(d.k.entries)), Context: t.encodeDotSet(&d.k.ctx)}
	for v, ds := range d.k.entries {
		raw, err := wire.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("crdt: encode orset element: %w", err)
		}
		flat := make([]uint64, 0, 2*len(ds))
		for _, x := range sortedDots(ds) {
			flat = append(flat, t.idx[x.Replica], x.Counter)
		}
		w.Entries = append(w.Entries, orsetEntryWire{Elem: raw, Dots: flat})
	}
	slices.SortFunc(w.Entries, func(a, b orsetEntryWire) int { return bytes.Compare(a.Elem, b.Elem) })
	return marshalChecked(orsetWhat, w, w.Context)
}

// UnmarshalCBOR decodes d, replacing its contents. Malformed or
// non-canonical input (bad replica table, unsorted or repeated elements or
// dots, an element whose encoding is not canonical, counters outside
// [1, MaxCounter], a store dot missing from the context) is rejected with a
// *FormatError; on error d is unchanged.
func (d *ORSetDelta[T]) UnmarshalCBOR(data []byte) error {
	var w orsetDeltaWire
	if err := wire.Unmarshal(data, &w, orsetWhat); err != nil {
		return err
	}
	rd, err := newRepDecoder(orsetWhat, w.Replicas)
	if err != nil {
		return err
	}
	k := newKernel[T]()
	for i, e := range w.Entries {
		if i > 0 && bytes.Compare(w.Entries[i-1].Elem, e.Elem) >= 0 {
			return malformed(orsetWhat, "entry %d: elements not strictly ascending", i)
		}
		var v T
		if err := wire.Unmarshal(e.Elem, &v, "orset element"); err != nil {
			return malformed(orsetWhat, "entry %d: element: %v", i, err)
		}
		if again, err := wire.Marshal(v); err != nil || !bytes.Equal(again, e.Elem) {
			return malformed(orsetWhat, "entry %d: element encoding is not canonical", i)
		}
		if len(e.Dots) == 0 || len(e.Dots)%2 != 0 {
			return malformed(orsetWhat, "entry %d: %d dot numbers, want a non-zero even count", i, len(e.Dots))
		}
		for j := 0; j < len(e.Dots); j += 2 {
			x, err := rd.dot(e.Dots[j], e.Dots[j+1], fmt.Sprintf("entry %d dot %d", i, j/2))
			if err != nil {
				return err
			}
			if j > 0 && (e.Dots[j-2] > e.Dots[j] || (e.Dots[j-2] == e.Dots[j] && e.Dots[j-1] >= e.Dots[j+1])) {
				return malformed(orsetWhat, "entry %d: dots not strictly ascending", i)
			}
			if _, dup := k.byDot[x]; dup {
				return malformed(orsetWhat, "entry %d: dot %v also tags another element", i, x)
			}
			k.put(v, x)
		}
	}
	if k.ctx, err = rd.decodeDotSet(w.Context, "context"); err != nil {
		return err
	}
	for x := range k.byDot {
		if !k.ctx.Contains(x) {
			return malformed(orsetWhat, "store dot %v is not in the context", x)
		}
	}
	if err := rd.finish(); err != nil {
		return err
	}
	d.k = k
	return nil
}
