package crdt

import (
	"bytes"
	"slices"

	"github.com/saorsa-labs/x0x-go/core/wire"
)

// Ordering is the result of comparing two version vectors.
type Ordering int

// Possible results of VersionVector.Compare.
const (
	// Equal: both vectors are the same.
	Equal Ordering = iota
	// Before: the receiver is strictly dominated by the argument.
	Before
	// After: the receiver strictly dominates the argument.
	After
	// Concurrent: each vector has an entry the other lacks.
	Concurrent
)

// String returns the ordering's name.
func (o Ordering) String() string {
	switch o {
	case Equal:
		return "equal"
	case Before:
		return "before"
	case After:
		return "after"
	case Concurrent:
		return "concurrent"
	}
	return "invalid"
}

// VersionVector maps each replica to the number of its operations seen
// contiguously from 1. Missing replicas count as 0. The zero value is an
// empty vector ready to use. Copying a VersionVector shares its storage; use
// Clone for an independent copy. Not safe for concurrent use.
type VersionVector struct {
	m map[ReplicaID]uint64
}

// Get returns the entry for r (0 if absent).
func (v VersionVector) Get(r ReplicaID) uint64 { return v.m[r] }

// Set sets the entry for r to c; c == 0 removes the entry.
func (v *VersionVector) Set(r ReplicaID, c uint64) {
	if c == 0 {
		delete(v.m, r)
		return
	}
	if v.m == nil {
		v.m = make(map[ReplicaID]uint64)
	}
	v.m[r] = c
}

// Merge raises every entry of v to at least the matching entry of o
// (pointwise maximum).
func (v *VersionVector) Merge(o VersionVector) {
	for r, c := range o.m {
		if c > v.m[r] {
			v.Set(r, c)
		}
	}
}

// Contains reports whether the operation d is covered by v, that is
// 1 <= d.Counter <= v[d.Replica].
func (v VersionVector) Contains(d Dot) bool {
	return d.Counter >= 1 && d.Counter <= v.m[d.Replica]
}

// Compare returns how v relates to o in the causal (pointwise) order.
func (v VersionVector) Compare(o VersionVector) Ordering {
	less, greater := false, false
	for r, c := range v.m {
		switch oc := o.m[r]; {
		case c > oc:
			greater = true
		case c < oc:
			less = true
		}
	}
	for r, oc := range o.m {
		if _, ok := v.m[r]; !ok && oc > 0 {
			less = true
		}
	}
	switch {
	case less && greater:
		return Concurrent
	case less:
		return Before
	case greater:
		return After
	}
	return Equal
}

// Equal reports whether v and o have the same entries.
func (v VersionVector) Equal(o VersionVector) bool { return v.Compare(o) == Equal }

// Clone returns an independent copy of v.
func (v VersionVector) Clone() VersionVector {
	var c VersionVector
	for r, n := range v.m {
		c.Set(r, n)
	}
	return c
}

// Len returns the number of non-zero entries.
func (v VersionVector) Len() int { return len(v.m) }

// Replicas returns the replicas with a non-zero entry, sorted by bytes.
func (v VersionVector) Replicas() []ReplicaID {
	rs := make([]ReplicaID, 0, len(v.m))
	for r := range v.m {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, compareReplica)
	return rs
}

type vvEntryWire struct {
	_ struct{} `cbor:",toarray"`
	R []byte
	C uint64
}

// MarshalCBOR encodes v canonically as an array of [replica, counter]
// pairs sorted by replica bytes.
func (v VersionVector) MarshalCBOR() ([]byte, error) {
	rs := v.Replicas()
	ents := make([]vvEntryWire, len(rs))
	for i, r := range rs {
		ents[i] = vvEntryWire{R: r[:], C: v.m[r]}
	}
	return wire.Marshal(ents)
}

// UnmarshalCBOR decodes v, replacing its contents. It rejects (with a
// *FormatError) replicas that are not 32 bytes, unsorted or repeated
// replicas, and counters outside [1, MaxCounter]; on error v is unchanged.
func (v *VersionVector) UnmarshalCBOR(data []byte) error {
	const what = "version vector"
	var ents []vvEntryWire
	if err := wire.Unmarshal(data, &ents, what); err != nil {
		return err
	}
	var out VersionVector
	var prev []byte
	for i, e := range ents {
		if len(e.R) != len(ReplicaID{}) {
			return malformed(what, "entry %d: replica is %d bytes, want 32", i, len(e.R))
		}
		if prev != nil && bytes.Compare(prev, e.R) >= 0 {
			return malformed(what, "entry %d: replicas not strictly ascending", i)
		}
		if !validCounter(e.C) {
			return malformed(what, "entry %d: counter %d outside [1, MaxCounter]", i, e.C)
		}
		prev = e.R
		out.Set(ReplicaID(e.R), e.C)
	}
	*v = out
	return nil
}
