package crdt

import "slices"

// The RGA keeps its slots in document order in a list of chunks of at most
// maxChunk slots, each with its number of visible slots, plus a Fenwick
// tree over those counts. Finding the i-th visible slot or the position of
// a slot costs O(log #chunks + maxChunk); inserting after a known slot
// costs O(maxChunk), plus an O(#chunks) rebuild when a chunk splits (once
// per maxChunk/2 inserts into it).

const maxChunk = 256

type chunk[T comparable] struct {
	nodes []*rnode[T]
	vis   int // visible nodes in this chunk
	idx   int // position in seq.chunks
}

type seq[T comparable] struct {
	chunks []*chunk[T]
	vis    int
	fen    []int // Fenwick tree over chunks[i].vis, 1-based
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

// fenFind returns the chunk holding the k-th visible node (0-based) and
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

// locate returns the chunk index and offset of n.
func (s *seq[T]) locate(n *rnode[T]) (int, int) {
	c := n.ch
	for i, x := range c.nodes {
		if x == n {
			return c.idx, i
		}
	}
	panic("crdt: rga node not in its chunk") // invariant violation, not input-dependent
}

// insert places n at offset off of chunk ci (any position when there are
// no chunks yet).
func (s *seq[T]) insert(ci, off int, n *rnode[T]) {
	if len(s.chunks) == 0 {
		s.chunks = append(s.chunks, &chunk[T]{})
		s.rebuild()
		ci, off = 0, 0
	}
	c := s.chunks[ci]
	c.nodes = slices.Insert(c.nodes, off, n)
	n.ch = c
	if n.visible {
		c.vis++
		s.vis++
		s.fenAdd(ci, 1)
	}
	if len(c.nodes) > maxChunk {
		s.split(ci)
	}
}

func (s *seq[T]) split(ci int) {
	c := s.chunks[ci]
	half := len(c.nodes) / 2
	nc := &chunk[T]{nodes: make([]*rnode[T], len(c.nodes)-half, maxChunk+1)}
	copy(nc.nodes, c.nodes[half:])
	clear(c.nodes[half:])
	c.nodes = c.nodes[:half]
	for _, n := range nc.nodes {
		n.ch = nc
		if n.visible {
			nc.vis++
		}
	}
	c.vis -= nc.vis
	s.chunks = slices.Insert(s.chunks, ci+1, nc)
	s.rebuild()
}

func (s *seq[T]) setVisible(n *rnode[T], v bool) {
	if n.visible == v {
		return
	}
	n.visible = v
	d := 1
	if !v {
		d = -1
	}
	n.ch.vis += d
	s.vis += d
	s.fenAdd(n.ch.idx, d)
}

// at returns the i-th visible node, 0 <= i < s.vis.
func (s *seq[T]) at(i int) *rnode[T] {
	ci, k := s.fenFind(i)
	for _, n := range s.chunks[ci].nodes {
		if n.visible {
			if k == 0 {
				return n
			}
			k--
		}
	}
	return nil
}

// index returns the number of visible nodes before n.
func (s *seq[T]) index(n *rnode[T]) int {
	i := s.fenPrefix(n.ch.idx)
	for _, x := range n.ch.nodes {
		if x == n {
			break
		}
		if x.visible {
			i++
		}
	}
	return i
}

// each calls f for every node in document order until f returns false.
func (s *seq[T]) each(f func(*rnode[T]) bool) {
	for _, c := range s.chunks {
		for _, n := range c.nodes {
			if !f(n) {
				return
			}
		}
	}
}
