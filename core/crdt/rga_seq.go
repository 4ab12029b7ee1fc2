package crdt

import "slices"

// The RGA keeps its slots in runs. A run is either one move slot, or
// insert slots of one replica with consecutive counters, each inserted
// right after the previous one, that share their state: all visible at
// their insert slot, or all removed (the removal counters of the slots then
// step by +1 or -1, as forward deletes and backspaces produce). So the
// origin, replica and removal dot of every slot but the first are derived,
// and typing a paragraph costs one run, not one node per character. A run
// is split when one slot needs a state of its own (an insert right after it
// and before the rest, a removal, a move of it); parts that are consecutive
// again after a removal are joined.
//
// Runs are kept in document order in a list of chunks of at most maxChunk
// runs, each with its number of visible slots, plus a Fenwick tree over
// those counts. Finding the i-th visible slot or the position of a slot
// costs O(log #chunks + maxChunk); adding a run after a known one costs
// O(maxChunk), plus an O(#chunks) rebuild when a chunk splits. Per replica,
// a runIndex maps a counter to the run holding it.

const (
	maxChunk      = 128     // runs per chunk
	maxIndexBlock = 64      // entries per runIndex block
	maxRun        = 1 << 30 // slots per run: chunk.cnt holds int32
)

// Run flags.
const (
	runVisible = 1 << iota // every slot shows (an item run: not removed, not moved)
	runMove                // a move slot; otherwise an item run
	runPinned              // an item some move names: a single slot, never split or joined, so pointers to it stay valid
	// runTail: no other run's values lie after this run's in its array, so
	// appending in place is safe. (Runs split from one array share it; the
	// position of a value in an array is always its counter's offset from
	// the array's first counter, and each counter is held by one run.)
	runTail
	runState = runVisible | runMove | runPinned
)

// run is a sequence of slots, described above. Slot i has ID
// (rep, ctr+i); its origin is (origRep, orig) for i = 0 and slot i-1
// otherwise.
type run[T comparable] struct {
	ctr  uint64 // counter of the first slot
	orig uint64 // origin counter of the first slot; 0 = head
	rmv  uint64 // item runs: removal counter of slot 0; 0 = not removed
	vals []T    // item runs: one value per slot; nil for a move slot
	// ref is, for a move slot, the run holding the slot it names; for a
	// pinned item, its winning move slot (nil while its insert slot wins).
	ref     *run[T]
	ch      *chunk[T]
	rep     uint32 // replica index of the slots
	origRep uint32
	rmvRep  uint32 // replica index of the removal dots
	step    int8   // removal counter of slot i is rmv + i*step; 0 for one slot
	flags   uint8
}

func (x *run[T]) isMove() bool  { return x.flags&runMove != 0 }
func (x *run[T]) visible() bool { return x.flags&runVisible != 0 }

func (x *run[T]) size() int {
	if x.isMove() {
		return 1
	}
	return len(x.vals)
}

func (x *run[T]) visCount() int {
	if x.visible() {
		return x.size()
	}
	return 0
}

func (x *run[T]) key(i int) nodeKey { return nodeKey{x.ctr + uint64(i), x.rep} }

func (x *run[T]) origin(i int) nodeKey {
	if i == 0 {
		return nodeKey{x.orig, x.origRep}
	}
	return nodeKey{x.ctr + uint64(i) - 1, x.rep}
}

// rmvKey returns the removal dot of slot i of a removed item run.
func (x *run[T]) rmvKey(i int) nodeKey {
	return nodeKey{uint64(int64(x.rmv) + int64(i)*int64(x.step)), x.rmvRep}
}

type chunk[T comparable] struct {
	runs []*run[T]
	cnt  []int32 // visible slots of each run, beside the runs so that scans do not visit them
	vis  int     // visible slots in this chunk
	idx  int     // position in seq.chunks
}

type seq[T comparable] struct {
	chunks []*chunk[T]
	vis    int
	fen    []int         // Fenwick tree over chunks[i].vis, 1-based
	ids    []runIndex[T] // by replica index
	// last is the latest slot found by lookup: a merge checks, then
	// applies, each operation and so looks its references up twice.
	// Splitting, joining and removing runs clear it.
	last struct {
		k   nodeKey
		r   *run[T]
		off int
	}
}

func (s *seq[T]) fenAdd(ci, d int) {
	for i := ci + 1; i < len(s.fen); i += i & -i {
		s.fen[i] += d
	}
}

// fenPrefix returns the visible count of chunks[:ci].
func (s *seq[T]) fenPrefix(ci int) int {
	sum := 0
	for i := ci; i > 0; i -= i & -i {
		sum += s.fen[i]
	}
	return sum
}

// fenFind returns the chunk holding the k-th visible slot (0-based) and
// k minus the visible count before that chunk; 0 <= k < s.vis.
func (s *seq[T]) fenFind(k int) (int, int) {
	pos := 0
	step := 1
	for step*2 < len(s.fen) {
		step *= 2
	}
	for ; step > 0; step /= 2 {
		if next := pos + step; next < len(s.fen) && s.fen[next] <= k {
			pos = next
			k -= s.fen[next]
		}
	}
	return pos, k
}

func (s *seq[T]) rebuild() {
	n := len(s.chunks)
	s.fen = slices.Grow(s.fen[:0], n+1)[:n+1]
	clear(s.fen)
	for i, c := range s.chunks {
		c.idx = i
		s.fen[i+1] += c.vis
		if j := (i + 1) + ((i + 1) & -(i + 1)); j <= n {
			s.fen[j] += s.fen[i+1]
		}
	}
}

// addVis adds d to the visible count of the run at position j of c.
func (s *seq[T]) addVis(c *chunk[T], j, d int) {
	c.cnt[j] += int32(d)
	c.vis += d
	s.vis += d
	s.fenAdd(c.idx, d)
}

// locate returns the chunk index and position in the chunk of x.
func (s *seq[T]) locate(x *run[T]) (int, int) {
	c := x.ch
	for j, y := range c.runs {
		if y == x {
			return c.idx, j
		}
	}
	panic("crdt: rga run not in its chunk") // invariant violation, not input-dependent
}

// before returns the run right before position (ci, j), or nil.
func (s *seq[T]) before(ci, j int) *run[T] {
	if j > 0 {
		return s.chunks[ci].runs[j-1]
	}
	if ci > 0 {
		p := s.chunks[ci-1].runs
		return p[len(p)-1]
	}
	return nil
}

// after returns the run right after the one at (ci, j), or nil.
func (s *seq[T]) after(ci, j int) *run[T] {
	if c := s.chunks[ci]; j+1 < len(c.runs) {
		return c.runs[j+1]
	}
	if ci+1 < len(s.chunks) {
		return s.chunks[ci+1].runs[0]
	}
	return nil
}

// insert places x at position j of chunk ci (anywhere when there are no
// chunks yet), registers it in the index and returns where it ended up.
func (s *seq[T]) insert(ci, j int, x *run[T]) (int, int) {
	if len(s.chunks) == 0 {
		s.chunks = append(s.chunks, &chunk[T]{})
		s.rebuild()
		ci, j = 0, 0
	}
	c := s.chunks[ci]
	c.runs = slices.Insert(c.runs, j, x)
	c.cnt = slices.Insert(c.cnt, j, 0)
	x.ch = c
	if v := x.visCount(); v != 0 {
		s.addVis(c, j, v)
	}
	s.ids[x.rep].add(x)
	s.last.r = nil
	if len(c.runs) > maxChunk {
		half := len(c.runs) / 2
		s.splitChunk(ci)
		if j >= half {
			ci, j = ci+1, j-half
		}
	}
	return ci, j
}

func (s *seq[T]) splitChunk(ci int) {
	c := s.chunks[ci]
	half := len(c.runs) / 2
	nc := &chunk[T]{
		runs: append(make([]*run[T], 0, maxChunk+1), c.runs[half:]...),
		cnt:  append(make([]int32, 0, maxChunk+1), c.cnt[half:]...),
	}
	if cap(c.runs) > maxChunk+1 { // grown by doubling: do not keep it half empty
		c.runs = append(make([]*run[T], 0, maxChunk+1), c.runs[:half]...)
		c.cnt = append(make([]int32, 0, maxChunk+1), c.cnt[:half]...)
	} else {
		clear(c.runs[half:])
		c.runs, c.cnt = c.runs[:half], c.cnt[:half]
	}
	for i, x := range nc.runs {
		x.ch = nc
		nc.vis += int(nc.cnt[i])
	}
	c.vis -= nc.vis
	s.chunks = slices.Insert(s.chunks, ci+1, nc)
	s.rebuild()
}

// remove takes the run at (ci, j) out of the sequence and the index.
func (s *seq[T]) remove(ci, j int) {
	c := s.chunks[ci]
	x := c.runs[j]
	if v := c.cnt[j]; v != 0 {
		s.addVis(c, j, -int(v))
	}
	c.runs = slices.Delete(c.runs, j, j+1)
	c.cnt = slices.Delete(c.cnt, j, j+1)
	s.ids[x.rep].del(x.ctr)
	s.last.r = nil
	x.ch = nil
	if len(c.runs) == 0 {
		s.chunks = slices.Delete(s.chunks, ci, ci+1)
		s.rebuild()
	}
}

// split cuts the item run at (ci, j) before its slot k (0 < k < size) and
// returns the position of the new run holding slots k and on.
func (s *seq[T]) split(ci, j, k int) (int, int) {
	x := s.chunks[ci].runs[j]
	y := &run[T]{
		ctr:     x.ctr + uint64(k),
		orig:    x.ctr + uint64(k) - 1,
		origRep: x.rep,
		rep:     x.rep,
		rmvRep:  x.rmvRep,
		step:    x.step,
		flags:   x.flags, // y takes x's tail
		// x keeps its capacity, which runs into y's values, so that the
		// two can be joined again without copying.
		vals: x.vals[k:],
	}
	x.flags &^= runTail
	if x.rmv != 0 {
		y.rmv = x.rmvKey(k).ctr
	}
	x.vals = x.vals[:k]
	if len(x.vals) == 1 {
		x.step = 0
	}
	if len(y.vals) == 1 {
		y.step = 0
	}
	if x.visible() {
		s.addVis(x.ch, j, -len(y.vals)) // insert adds them back
	}
	return s.insert(ci, j+1, y)
}

// isolate makes slot i of the unpinned item run x a run of its own and
// returns it.
func (s *seq[T]) isolate(x *run[T], i int) *run[T] {
	if x.size() == 1 {
		return x
	}
	ci, j := s.locate(x)
	if i > 0 {
		ci, j = s.split(ci, j, i)
		x = s.chunks[ci].runs[j]
	}
	if x.size() > 1 {
		s.split(ci, j, 1)
	}
	return x
}

// grow appends a slot with value v to the item run x.
func (s *seq[T]) grow(x *run[T], v T) {
	x.vals = append(x.vals, v)
	if x.visible() {
		_, j := s.locate(x)
		s.addVis(x.ch, j, 1)
	}
}

// setVisible shows or hides every slot of x.
func (s *seq[T]) setVisible(x *run[T], v bool) {
	if x.visible() == v {
		return
	}
	d := x.size()
	if v {
		x.flags |= runVisible
	} else {
		x.flags &^= runVisible
		d = -d
	}
	_, j := s.locate(x)
	s.addVis(x.ch, j, d)
}

// joinStep reports whether the item runs l and r, adjacent in document
// order, can be one run, and the removal step of the result.
func joinStep[T comparable](l, r *run[T]) (int8, bool) {
	nl := len(l.vals)
	if l.flags&runState != r.flags&runState || l.flags&(runMove|runPinned) != 0 ||
		l.rep != r.rep || l.ctr+uint64(nl) != r.ctr || r.origin(0) != l.key(nl-1) || nl+len(r.vals) > maxRun {
		return 0, false
	}
	if l.rmv == 0 || r.rmv == 0 {
		return 0, l.rmv == r.rmv
	}
	if l.rmvRep != r.rmvRep {
		return 0, false
	}
	st := l.step
	if st == 0 {
		st = r.step
	}
	if st == 0 {
		switch {
		case r.rmv == l.rmv+1:
			st = 1
		case r.rmv+1 == l.rmv:
			st = -1
		default:
			return 0, false
		}
	}
	if (r.step != 0 && r.step != st) || int64(r.rmv) != int64(l.rmv)+int64(st)*int64(nl) {
		return 0, false
	}
	return st, true
}

// coalesce joins x with its neighbours where they form one run.
func (s *seq[T]) coalesce(x *run[T]) {
	ci, j := s.locate(x)
	if l := s.before(ci, j); l != nil && s.join(l, x) {
		x = l
		ci, j = s.locate(x)
	}
	if r := s.after(ci, j); r != nil {
		s.join(x, r)
	}
}

// join appends the run r to the run l right before it if they can be one
// run, and reports whether it did.
func (s *seq[T]) join(l, r *run[T]) bool {
	st, ok := joinStep(l, r)
	if !ok {
		return false
	}
	ci, j := s.locate(r)
	s.remove(ci, j)
	nl, nr := len(l.vals), len(r.vals)
	switch {
	case cap(l.vals) >= nl+nr && &l.vals[:nl+1][nl] == &r.vals[0]:
		l.vals = l.vals[:nl+nr] // split from one array: no copy
		l.flags = l.flags&^runTail | r.flags&runTail
	case l.flags&runTail != 0:
		l.vals = append(l.vals, r.vals...)
	default:
		l.vals = append(l.vals[:nl:nl], r.vals...) // a fresh array
		l.flags |= runTail
	}
	if l.rmv != 0 {
		l.step = st
	}
	if l.visible() {
		_, j := s.locate(l)
		s.addVis(l.ch, j, nr)
	}
	return true
}

// at returns the chunk, position and slot of the i-th visible slot,
// 0 <= i < s.vis.
func (s *seq[T]) at(i int) (ci, j, off int) {
	ci, k := s.fenFind(i)
	for j, n := range s.chunks[ci].cnt {
		if k < int(n) {
			return ci, j, k
		}
		k -= int(n)
	}
	panic("crdt: rga visible counts inconsistent") // invariant violation
}

// index returns the number of visible slots before slot off of x.
func (s *seq[T]) index(x *run[T], off int) int {
	_, j := s.locate(x)
	i := s.fenPrefix(x.ch.idx)
	for _, n := range x.ch.cnt[:j] {
		i += int(n)
	}
	return i + off
}

// each calls f for every run in document order until f returns false.
func (s *seq[T]) each(f func(*run[T]) bool) {
	for _, c := range s.chunks {
		for _, x := range c.runs {
			if !f(x) {
				return
			}
		}
	}
}

// lookup returns the run holding slot k and the slot's offset in it.
func (s *seq[T]) lookup(k nodeKey) (*run[T], int) {
	if int(k.rep) >= len(s.ids) {
		return nil, 0
	}
	return s.ids[k.rep].get(k.ctr)
}

// lookupCached is lookup through the one-entry cache s.last, for merges
// (so that read-only methods do not write).
func (s *seq[T]) lookupCached(k nodeKey) (*run[T], int) {
	if s.last.r != nil && s.last.k == k {
		return s.last.r, s.last.off
	}
	x, off := s.lookup(k)
	if x != nil {
		s.last.k, s.last.r, s.last.off = k, x, off
	}
	return x, off
}

// runIndex finds the run holding a counter of one replica. It keeps the
// runs' first counters sorted in blocks of at most maxIndexBlock entries,
// so that adding or removing a run costs O(maxIndexBlock + #blocks) word
// moves rather than O(#runs), and runs that grow need no update. firsts
// holds each block's first counter, so the search reads contiguous memory.
type runIndex[T comparable] struct {
	blocks [][]indexEntry[T]
	firsts []uint64
}

type indexEntry[T comparable] struct {
	ctr uint64
	r   *run[T]
}

// find returns the block and position of the last entry whose counter is
// at most c; ok is false if there is none.
func (x *runIndex[T]) find(c uint64) (bi, ei int, ok bool) {
	lo, hi := 0, len(x.firsts)
	if hi > 0 && x.firsts[hi-1] <= c {
		lo = hi // the last block: new operations, typing
	}
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if x.firsts[m] <= c {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0, 0, false
	}
	bi = lo - 1
	b := x.blocks[bi]
	lo, hi = 1, len(b)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if b[m].ctr <= c {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return bi, lo - 1, true
}

// get returns the run holding counter c and c's offset in it, or nil.
func (x *runIndex[T]) get(c uint64) (*run[T], int) {
	bi, ei, ok := x.find(c)
	if !ok {
		return nil, 0
	}
	e := x.blocks[bi][ei]
	if off := c - e.ctr; off < uint64(e.r.size()) {
		return e.r, int(off)
	}
	return nil, 0
}

// add registers run r, whose counters no other run holds.
func (x *runIndex[T]) add(r *run[T]) {
	e := indexEntry[T]{r.ctr, r}
	nb := len(x.blocks)
	bi, ei, ok := x.find(r.ctr)
	switch {
	case nb == 0:
		x.blocks = append(x.blocks, []indexEntry[T]{e})
		x.firsts = append(x.firsts, e.ctr)
		return
	case !ok:
		bi, ei = 0, -1
	case bi == nb-1 && ei == len(x.blocks[bi])-1 && len(x.blocks[bi]) == maxIndexBlock:
		// Appending past a full last block (a replica's new runs): start
		// a new block, so that blocks filled in order stay full.
		x.blocks = append(x.blocks, []indexEntry[T]{e})
		x.firsts = append(x.firsts, e.ctr)
		return
	}
	b := x.blocks[bi]
	if len(b) < maxIndexBlock {
		x.blocks[bi] = slices.Insert(b, ei+1, e)
		x.firsts[bi] = x.blocks[bi][0].ctr
		return
	}
	// Split a full block into two fresh halves (an append would double
	// the array, and the halves would keep that capacity).
	half := len(b) / 2
	lo := append(make([]indexEntry[T], 0, maxIndexBlock), b[:half]...)
	hi := append(make([]indexEntry[T], 0, maxIndexBlock), b[half:]...)
	if ei+1 <= half {
		lo = slices.Insert(lo, ei+1, e)
	} else {
		hi = slices.Insert(hi, ei+1-half, e)
	}
	x.blocks[bi] = lo
	x.firsts[bi] = lo[0].ctr
	x.blocks = slices.Insert(x.blocks, bi+1, hi)
	x.firsts = slices.Insert(x.firsts, bi+1, hi[0].ctr)
}

// del unregisters the run starting at counter c.
func (x *runIndex[T]) del(c uint64) {
	bi, ei, ok := x.find(c)
	if !ok || x.blocks[bi][ei].ctr != c {
		panic("crdt: rga run missing from the index") // invariant violation
	}
	b := slices.Delete(x.blocks[bi], ei, ei+1)
	if len(b) == 0 {
		x.blocks = slices.Delete(x.blocks, bi, bi+1)
		x.firsts = slices.Delete(x.firsts, bi, bi+1)
		return
	}
	x.blocks[bi] = b
	x.firsts[bi] = b[0].ctr
}

// pin makes item slot off of x a pinned run of its own, so that move slots
// can point at it, and returns it.
func (s *seq[T]) pin(x *run[T], off int) *run[T] {
	x = s.isolate(x, off)
	x.flags |= runPinned
	return x
}
