package crdt

import (
	"slices"
	"sort"
)

// span is an inclusive range of counters, lo <= hi.
type span struct{ lo, hi uint64 }

// DotSet is a set of dots, stored per replica as sorted, disjoint,
// non-adjacent ranges of counters. It is the causal context of ORSet and
// RGA: a contiguous prefix 1..n is one range (a version vector entry), and
// dots seen out of order form further ranges (the "dot cloud") that merge
// into the prefix as gaps fill, so the set stays compact without a separate
// compaction step.
//
// The zero DotSet is empty and ready to use. Copying a DotSet value shares
// its storage; use Clone for an independent copy. A DotSet is not safe for
// concurrent use.
type DotSet struct {
	m map[ReplicaID][]span
}

// validCounter reports whether c may be a dot counter.
func validCounter(c uint64) bool { return c >= 1 && c <= MaxCounter }

// Contains reports whether d is in the set.
func (s *DotSet) Contains(d Dot) bool {
	sp := s.m[d.Replica]
	i := sort.Search(len(sp), func(i int) bool { return sp[i].hi >= d.Counter })
	return i < len(sp) && sp[i].lo <= d.Counter
}

// Add inserts d. Dots whose counter is outside [1, MaxCounter] are ignored.
func (s *DotSet) Add(d Dot) {
	if validCounter(d.Counter) {
		s.addRange(d.Replica, d.Counter, d.Counter)
	}
}

// addRange inserts the counters lo..hi of r; callers guarantee
// 1 <= lo <= hi <= MaxCounter.
func (s *DotSet) addRange(r ReplicaID, lo, hi uint64) {
	if s.m == nil {
		s.m = make(map[ReplicaID][]span)
	}
	sp := s.m[r]
	n := len(sp)
	if n > 0 && lo >= sp[n-1].lo && lo <= sp[n-1].hi+1 {
		sp[n-1].hi = max(sp[n-1].hi, hi) // in place: the common "next dot" case
		return
	}
	switch {
	case n == 0 || lo > sp[n-1].hi+1:
		sp = append(sp, span{lo, hi})
	default:
		// First span that touches or follows lo, first span strictly after hi.
		i := sort.Search(n, func(i int) bool { return sp[i].hi+1 >= lo })
		j := sort.Search(n, func(j int) bool { return sp[j].lo > hi+1 })
		if i == j {
			sp = slices.Insert(sp, i, span{lo, hi})
		} else {
			merged := span{min(lo, sp[i].lo), max(hi, sp[j-1].hi)}
			sp = slices.Replace(sp, i, j, merged)
		}
	}
	s.m[r] = sp
}

// remove deletes d from the set if present.
func (s *DotSet) remove(d Dot) {
	sp := s.m[d.Replica]
	c := d.Counter
	i := sort.Search(len(sp), func(i int) bool { return sp[i].hi >= c })
	if i == len(sp) || sp[i].lo > c {
		return
	}
	cur := sp[i]
	switch {
	case cur.lo == c && cur.hi == c:
		sp = slices.Delete(sp, i, i+1)
	case cur.lo == c:
		sp[i].lo++
	case cur.hi == c:
		sp[i].hi--
	default:
		sp[i].hi = c - 1
		sp = slices.Insert(sp, i+1, span{c + 1, cur.hi})
	}
	if len(sp) == 0 {
		delete(s.m, d.Replica)
		return
	}
	s.m[d.Replica] = sp
}

// Union adds every dot of o to s.
func (s *DotSet) Union(o *DotSet) {
	for r, sp := range o.m {
		for _, x := range sp {
			s.addRange(r, x.lo, x.hi)
		}
	}
}

// Max returns the largest counter of r in the set, or 0 if there is none.
func (s *DotSet) Max(r ReplicaID) uint64 {
	sp := s.m[r]
	if len(sp) == 0 {
		return 0
	}
	return sp[len(sp)-1].hi
}

// maxAny returns the largest counter of any replica in the set.
func (s *DotSet) maxAny() uint64 {
	var m uint64
	for _, sp := range s.m {
		m = max(m, sp[len(sp)-1].hi)
	}
	return m
}

// VersionVector returns, for each replica, the largest n such that all of
// 1..n are in the set (replicas with no such prefix are absent).
func (s *DotSet) VersionVector() VersionVector {
	var v VersionVector
	for r, sp := range s.m {
		if sp[0].lo == 1 {
			v.Set(r, sp[0].hi)
		}
	}
	return v
}

// Clone returns an independent copy of s.
func (s *DotSet) Clone() DotSet {
	var c DotSet
	if len(s.m) == 0 {
		return c
	}
	c.m = make(map[ReplicaID][]span, len(s.m))
	for r, sp := range s.m {
		c.m[r] = slices.Clone(sp)
	}
	return c
}

// Equal reports whether s and o hold the same dots.
func (s *DotSet) Equal(o *DotSet) bool {
	if len(s.m) != len(o.m) {
		return false
	}
	for r, sp := range s.m {
		if !slices.Equal(sp, o.m[r]) {
			return false
		}
	}
	return true
}

// IsEmpty reports whether s holds no dots.
func (s *DotSet) IsEmpty() bool { return len(s.m) == 0 }

// Replicas returns the replicas that have at least one dot in s, sorted by
// their bytes. The slice is newly allocated.
func (s *DotSet) Replicas() []ReplicaID {
	rs := make([]ReplicaID, 0, len(s.m))
	for r := range s.m {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, compareReplica)
	return rs
}

// above returns the dots of s that vv does not contain.
func (s *DotSet) above(vv VersionVector) DotSet {
	var out DotSet
	for r, sp := range s.m {
		floor := vv.Get(r)
		for _, x := range sp {
			if x.hi <= floor {
				continue
			}
			out.addRange(r, max(x.lo, floor+1), x.hi)
		}
	}
	return out
}

// size returns the number of dots in s, saturating at limit.
func (s *DotSet) size(limit uint64) uint64 {
	var n uint64
	for _, sp := range s.m {
		for _, x := range sp {
			n += x.hi - x.lo + 1
			if n >= limit {
				return limit
			}
		}
	}
	return n
}

// each calls f for every dot of s, in no particular replica order; it stops
// early if f returns false. Callers bound the size first.
func (s *DotSet) each(f func(Dot) bool) {
	for r, sp := range s.m {
		for _, x := range sp {
			for c := x.lo; ; c++ {
				if !f(Dot{r, c}) {
					return
				}
				if c == x.hi {
					break
				}
			}
		}
	}
}
