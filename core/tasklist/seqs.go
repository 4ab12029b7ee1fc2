package tasklist

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"maps"
	"slices"
	"sort"

	"github.com/saorsa-labs/x0x-go/core/crdt"
	"github.com/saorsa-labs/x0x-go/core/identity"
)

// authorLog holds one author's applied deltas by sequence number: their
// signed encodings (nil for those a snapshot restore left in the store)
// and timestamps. Sequence numbers the list skipped as superseded (see
// statesync.go) are absent, so the log is a list of segments of
// consecutive numbers and its memory follows what was applied, not how
// far the numbers reach.
type authorLog struct {
	segs []logSeg
}

type logSeg struct {
	first uint64
	ts    []crdt.Timestamp
	raw   [][]byte
}

func (s *logSeg) end() uint64 { return s.first + uint64(len(s.ts)) } // one past the last

// locate returns the segment holding seq (ok) or the index a segment
// starting at seq would be inserted at.
func (g *authorLog) locate(seq uint64) (int, bool) {
	i := sort.Search(len(g.segs), func(i int) bool { return g.segs[i].end() > seq })
	return i, i < len(g.segs) && g.segs[i].first <= seq
}

// stamp returns the timestamp of the applied delta seq.
func (g *authorLog) stamp(seq uint64) (crdt.Timestamp, bool) {
	if g == nil {
		return crdt.Timestamp{}, false
	}
	i, ok := g.locate(seq)
	if !ok {
		return crdt.Timestamp{}, false
	}
	return g.segs[i].ts[seq-g.segs[i].first], true
}

// floor returns the timestamp of the greatest applied delta numbered at
// most seq.
func (g *authorLog) floor(seq uint64) (crdt.Timestamp, bool) {
	if g == nil {
		return crdt.Timestamp{}, false
	}
	i, ok := g.locate(seq)
	if ok {
		return g.segs[i].ts[seq-g.segs[i].first], true
	}
	if i == 0 {
		return crdt.Timestamp{}, false
	}
	s := &g.segs[i-1]
	return s.ts[len(s.ts)-1], true
}

// raw returns the applied delta seq's encoding (nil if held only in the
// store) and whether seq is applied.
func (g *authorLog) rawAt(seq uint64) ([]byte, bool) {
	if g == nil {
		return nil, false
	}
	i, ok := g.locate(seq)
	if !ok {
		return nil, false
	}
	return g.segs[i].raw[seq-g.segs[i].first], true
}

// put records the applied delta seq (not yet in the log).
func (g *authorLog) put(seq uint64, ts crdt.Timestamp, raw []byte) {
	if n := len(g.segs); n > 0 && g.segs[n-1].end() == seq { // the common case: the next one
		s := &g.segs[n-1]
		s.ts, s.raw = append(s.ts, ts), append(s.raw, raw)
		return
	}
	i, _ := g.locate(seq)
	switch {
	case i > 0 && g.segs[i-1].end() == seq:
		s := &g.segs[i-1]
		s.ts, s.raw = append(s.ts, ts), append(s.raw, raw)
		if i < len(g.segs) && g.segs[i].first == seq+1 { // it closed a hole: join the two
			s.ts, s.raw = append(s.ts, g.segs[i].ts...), append(s.raw, g.segs[i].raw...)
			g.segs = slices.Delete(g.segs, i, i+1)
		}
	case i < len(g.segs) && g.segs[i].first == seq+1:
		s := &g.segs[i]
		s.first--
		s.ts, s.raw = slices.Insert(s.ts, 0, ts), slices.Insert(s.raw, 0, raw)
	default:
		g.segs = slices.Insert(g.segs, i, logSeg{first: seq, ts: []crdt.Timestamp{ts}, raw: [][]byte{raw}})
	}
}

// last is the greatest applied number (0 if none).
func (g *authorLog) last() uint64 {
	if g == nil || len(g.segs) == 0 {
		return 0
	}
	return g.segs[len(g.segs)-1].end() - 1
}

// count is the number of applied deltas.
func (g *authorLog) count() uint64 {
	var n uint64
	if g != nil {
		for i := range g.segs {
			n += uint64(len(g.segs[i].ts))
		}
	}
	return n
}

// seqRange is the sequence numbers lo..hi (inclusive) of one author.
type seqRange struct{ lo, hi uint64 }

// seqSet is a set of (author, seq) pairs kept as sorted, disjoint,
// non-adjacent ranges per author. The zero value is empty.
type seqSet struct {
	m map[identity.AgentID][]seqRange
	n uint64
}

func (s *seqSet) empty() bool { return s.n == 0 }

// count is the number of pairs.
func (s *seqSet) count() uint64 { return s.n }

// runs is the number of ranges.
func (s *seqSet) runs() int {
	n := 0
	for _, rs := range s.m {
		n += len(rs)
	}
	return n
}

func (s *seqSet) find(a identity.AgentID, seq uint64) (int, bool) {
	rs := s.m[a]
	i := sort.Search(len(rs), func(i int) bool { return rs[i].hi >= seq })
	return i, i < len(rs) && rs[i].lo <= seq
}

func (s *seqSet) has(a identity.AgentID, seq uint64) bool {
	_, ok := s.find(a, seq)
	return ok
}

// add inserts lo..hi, which must not overlap the set.
func (s *seqSet) add(a identity.AgentID, lo, hi uint64) {
	if lo > hi {
		return
	}
	if s.m == nil {
		s.m = make(map[identity.AgentID][]seqRange)
	}
	rs := s.m[a]
	i, _ := s.find(a, lo)
	r := seqRange{lo, hi}
	if i > 0 && rs[i-1].hi+1 == lo {
		i--
		r.lo = rs[i].lo
		rs = slices.Delete(rs, i, i+1)
	}
	if i < len(rs) && rs[i].lo == hi+1 {
		r.hi = rs[i].hi
		rs = slices.Delete(rs, i, i+1)
	}
	s.m[a] = slices.Insert(rs, i, r)
	s.n += hi - lo + 1
}

// remove deletes (a, seq) and reports whether it was there.
func (s *seqSet) remove(a identity.AgentID, seq uint64) bool {
	i, ok := s.find(a, seq)
	if !ok {
		return false
	}
	rs := s.m[a]
	r := rs[i]
	switch {
	case r.lo == r.hi:
		rs = slices.Delete(rs, i, i+1)
	case seq == r.lo:
		rs[i].lo++
	case seq == r.hi:
		rs[i].hi--
	default:
		rs[i].hi = seq - 1
		rs = slices.Insert(rs, i+1, seqRange{seq + 1, r.hi})
	}
	if len(rs) == 0 {
		delete(s.m, a)
	} else {
		s.m[a] = rs
	}
	s.n--
	return true
}

// addFree inserts the numbers lo..hi that are neither in the set nor in
// except, and returns the ranges it inserted.
func (s *seqSet) addFree(a identity.AgentID, lo, hi uint64, except []uint64) []seqRange {
	var cut []seqRange // what to leave out, sorted
	rs := s.m[a]
	for i, _ := s.find(a, lo); i < len(rs) && rs[i].lo <= hi; i++ {
		cut = append(cut, rs[i])
	}
	for _, x := range except {
		cut = append(cut, seqRange{x, x})
	}
	slices.SortFunc(cut, func(x, y seqRange) int { return cmp.Compare(x.lo, y.lo) })
	var out []seqRange
	next := lo
	for _, c := range cut {
		if c.lo > next {
			out = append(out, seqRange{next, min(c.lo-1, hi)})
		}
		next = max(next, c.hi+1)
		if next > hi {
			break
		}
	}
	if next <= hi {
		out = append(out, seqRange{next, hi})
	}
	for _, r := range out {
		s.add(a, r.lo, r.hi)
	}
	return out
}

// addFreeApplied inserts the numbers lo..hi that are neither in the set
// nor applied in g, and returns the ranges it inserted.
func (s *seqSet) addFreeApplied(a identity.AgentID, lo, hi uint64, g *authorLog) []seqRange {
	var out []seqRange
	next := lo
	if g != nil {
		for _, sg := range g.segs {
			if sg.end() <= next || sg.first > hi {
				continue
			}
			if sg.first > next {
				out = append(out, s.addFree(a, next, sg.first-1, nil)...)
			}
			next = sg.end()
		}
	}
	if next <= hi {
		out = append(out, s.addFree(a, next, hi, nil)...)
	}
	return out
}

// removeRange deletes whatever the set holds of lo..hi and returns how
// many numbers it deleted.
func (s *seqSet) removeRange(a identity.AgentID, lo, hi uint64) uint64 {
	var out []seqRange
	var n uint64
	for _, r := range s.m[a] {
		if r.hi < lo || r.lo > hi {
			out = append(out, r)
			continue
		}
		if r.lo < lo {
			out = append(out, seqRange{r.lo, lo - 1})
		}
		n += min(r.hi, hi) - max(r.lo, lo) + 1
		if r.hi > hi {
			out = append(out, seqRange{hi + 1, r.hi})
		}
	}
	if len(out) == 0 {
		delete(s.m, a)
	} else {
		s.m[a] = out
	}
	s.n -= n
	return n
}

func (s *seqSet) authors() []identity.AgentID {
	return slices.SortedFunc(maps.Keys(s.m), func(x, y identity.AgentID) int { return bytes.Compare(x[:], y[:]) })
}

func (s *seqSet) clone() seqSet {
	c := seqSet{n: s.n}
	if s.m != nil {
		c.m = make(map[identity.AgentID][]seqRange, len(s.m))
		for a, rs := range s.m {
			c.m[a] = slices.Clone(rs)
		}
	}
	return c
}

// maxSkipBytes bounds an encoded skip set in a sync request; a larger set
// is sent in part (the lowest authors first).
const maxSkipBytes = 1 << 20

// encodeSkips packs s in at most limit bytes (what does not fit is left
// out: the lowest authors, and an author's lowest runs, go first):
//
//	n-authors {author(32) n-runs {lo-prev-1 hi-lo}}
//
// as unsigned varints, prev being the previous run's hi (0 first).
func encodeSkips(s *seqSet, limit int) []byte {
	var body []byte
	n := 0
	room := limit - binary.MaxVarintLen64
	for _, a := range s.authors() {
		// Author, run count, one run: the least that is worth sending.
		if len(body)+identity.IDSize+3*binary.MaxVarintLen64 > room {
			break
		}
		var runs packer
		k, prev := 0, uint64(0)
		for _, r := range s.m[a] {
			before := len(runs.b)
			runs.u(r.lo-prev-1, r.hi-r.lo)
			if len(body)+identity.IDSize+binary.MaxVarintLen64+len(runs.b) > room {
				runs.b = runs.b[:before]
				break
			}
			prev = r.hi
			k++
		}
		if k == 0 {
			break
		}
		var p packer
		p.b = append(p.b, a[:]...)
		p.u(uint64(k))
		body = append(body, p.b...)
		body = append(body, runs.b...)
		n++
	}
	var p packer
	p.u(uint64(n))
	return append(p.b, body...)
}

// decodeSkips reads what encodeSkips wrote (at most limit bytes),
// checking that authors ascend and every run is non-empty, ascending and
// within [1, 2^53-1]. Every count is bounded by the bytes left, so the
// input bounds what it allocates. Errors wrap ErrMalformed.
func decodeSkips(b []byte, limit int) (seqSet, error) {
	if len(b) > limit {
		return seqSet{}, malformedf("skip set of %d bytes", len(b))
	}
	u := &unpacker{b: b}
	var s seqSet
	var prevA []byte
	for range u.count(identity.IDSize + 3) {
		a := u.raw(identity.IDSize)
		if u.err != nil {
			break
		}
		if prevA != nil && bytes.Compare(prevA, a) >= 0 {
			return seqSet{}, malformedf("skip set authors not ascending")
		}
		prevA = a
		id := identity.AgentID(a)
		prev := uint64(0)
		n := u.count(2)
		if u.err == nil && n == 0 {
			return seqSet{}, malformedf("skip set author without runs")
		}
		for range n {
			gap, span := u.u(), u.u()
			if u.err != nil {
				break
			}
			if gap >= crdt.MaxCounter || span >= crdt.MaxCounter || prev+gap+1+span > crdt.MaxCounter {
				return seqSet{}, malformedf("skip run beyond 2^53-1")
			}
			lo := prev + gap + 1
			s.add(id, lo, lo+span)
			prev = lo + span
		}
	}
	if u.err != nil {
		return seqSet{}, malformedf("skip set: %v", u.err)
	}
	if len(u.b) != 0 {
		return seqSet{}, malformedf("skip set: %d trailing bytes", len(u.b))
	}
	return s, nil
}
