package crdt

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/saorsa-labs/x0x-go/core/wire"
)

// Deltas name replicas through a table of 32-byte IDs sorted by their
// bytes; dots are then (table index, counter) pairs. A table entry that no
// dot uses is non-canonical and rejected.

// repTable assigns table indexes to the replicas an encoder uses.
type repTable struct {
	ids []ReplicaID
	idx map[ReplicaID]uint64
}

// repCollector gathers the replicas an encoding will mention.
type repCollector map[ReplicaID]struct{}

func (c repCollector) add(r ReplicaID) { c[r] = struct{}{} }

func (c repCollector) addSet(s *DotSet) {
	for r := range s.m {
		c[r] = struct{}{}
	}
}

// table sorts the collected replicas and indexes them.
func (c repCollector) table() *repTable {
	t := &repTable{ids: make([]ReplicaID, 0, len(c)), idx: make(map[ReplicaID]uint64, len(c))}
	for r := range c {
		t.ids = append(t.ids, r)
	}
	slices.SortFunc(t.ids, compareReplica)
	for i, r := range t.ids {
		t.idx[r] = uint64(i)
	}
	return t
}

// wire returns the table as byte strings.
func (t *repTable) wire() [][]byte {
	out := make([][]byte, len(t.ids))
	for i := range t.ids {
		out[i] = t.ids[i][:]
	}
	return out
}

// encodeDotSet writes s as [[replica index, lo, hi, lo, hi, ...], ...]
// sorted by replica index.
func (t *repTable) encodeDotSet(s *DotSet) [][]uint64 {
	out := make([][]uint64, 0, len(s.m))
	for _, r := range s.Replicas() {
		sp := s.m[r]
		row := make([]uint64, 0, 1+2*len(sp))
		row = append(row, t.idx[r])
		for _, x := range sp {
			row = append(row, x.lo, x.hi)
		}
		out = append(out, row)
	}
	return out
}

// repDecoder resolves table indexes while decoding and checks that the
// table is canonical.
type repDecoder struct {
	what string
	ids  []ReplicaID
	used []bool
}

func newRepDecoder(what string, table [][]byte) (*repDecoder, error) {
	d := &repDecoder{what: what, ids: make([]ReplicaID, len(table)), used: make([]bool, len(table))}
	for i, b := range table {
		if len(b) != len(ReplicaID{}) {
			return nil, malformed(what, "replica %d is %d bytes, want 32", i, len(b))
		}
		if i > 0 && bytes.Compare(table[i-1], b) >= 0 {
			return nil, malformed(what, "replica table not strictly ascending at %d", i)
		}
		d.ids[i] = ReplicaID(b)
	}
	return d, nil
}

func (d *repDecoder) replica(i uint64, field string) (ReplicaID, error) {
	if i >= uint64(len(d.ids)) {
		return ReplicaID{}, malformed(d.what, "%s: replica index %d out of range (table has %d)", field, i, len(d.ids))
	}
	d.used[i] = true
	return d.ids[i], nil
}

// dot decodes a (replica index, counter) pair naming an operation.
func (d *repDecoder) dot(ri, c uint64, field string) (Dot, error) {
	r, err := d.replica(ri, field)
	if err != nil {
		return Dot{}, err
	}
	if !validCounter(c) {
		return Dot{}, malformed(d.what, "%s: counter %d outside [1, MaxCounter]", field, c)
	}
	return Dot{r, c}, nil
}

// finish rejects table entries no dot used.
func (d *repDecoder) finish() error {
	for i, u := range d.used {
		if !u {
			return malformed(d.what, "replica %d in table is never used", i)
		}
	}
	return nil
}

// decodeDotSet reads the encoding written by encodeDotSet, requiring
// ascending replica indexes and sorted, disjoint, non-adjacent ranges.
func (d *repDecoder) decodeDotSet(rows [][]uint64, field string) (DotSet, error) {
	var s DotSet
	for i, row := range rows {
		if len(row) < 3 || len(row)%2 != 1 {
			return DotSet{}, malformed(d.what, "%s row %d: length %d is not 1+2k (k >= 1)", field, i, len(row))
		}
		if i > 0 && rows[i-1][0] >= row[0] {
			return DotSet{}, malformed(d.what, "%s row %d: replica indexes not strictly ascending", field, i)
		}
		r, err := d.replica(row[0], field)
		if err != nil {
			return DotSet{}, err
		}
		var prevHi uint64
		sp := make([]span, 0, len(row)/2)
		for j := 1; j < len(row); j += 2 {
			lo, hi := row[j], row[j+1]
			if !validCounter(lo) || !validCounter(hi) || lo > hi {
				return DotSet{}, malformed(d.what, "%s row %d: bad range [%d, %d]", field, i, lo, hi)
			}
			if j > 1 && lo <= prevHi+1 {
				return DotSet{}, malformed(d.what, "%s row %d: ranges overlap, touch or are unsorted", field, i)
			}
			prevHi = hi
			sp = append(sp, span{lo, hi})
		}
		if s.m == nil {
			s.m = make(map[ReplicaID][]span, len(rows))
		}
		s.m[r] = sp
	}
	return s, nil
}

// marshalChecked encodes w and refuses output that core/wire would refuse
// to decode (too large, or a dot set row longer than wire.MaxElements), so
// that a replica never sends what its peers cannot read.
func marshalChecked(what string, w any, ctx [][]uint64) ([]byte, error) {
	for _, row := range ctx {
		if len(row) > wire.MaxElements {
			return nil, fmt.Errorf("crdt: %s context row of %d numbers exceeds limit %d", what, len(row), wire.MaxElements)
		}
	}
	b, err := wire.Marshal(w)
	if err != nil {
		return nil, err
	}
	if len(b) > wire.MaxMessageSize {
		return nil, fmt.Errorf("crdt: %s encodes to %d bytes, limit %d: %w", what, len(b), wire.MaxMessageSize, wire.ErrTooLarge)
	}
	return b, nil
}
