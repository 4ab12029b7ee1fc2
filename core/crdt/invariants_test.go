package crdt

import "fmt"

// fataler is what both *testing.T and *rapid.T provide.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// checkRGAInvariants verifies the internal consistency of r: chunk
// bookkeeping, visibility rules, the position winner of every item, and
// the relation between slots, pending operations and the context.
func checkRGAInvariants[T comparable](t fataler, r *RGA[T]) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("rga invariant: "+format, args...)
	}
	total, count := 0, 0
	best := map[*rnode[T]]*rnode[T]{} // item -> greatest slot naming it
	for ci, c := range r.seq.chunks {
		if c.idx != ci {
			fail("chunk %d has idx %d", ci, c.idx)
		}
		if len(c.nodes) == 0 || len(c.nodes) > maxChunk {
			fail("chunk %d holds %d nodes", ci, len(c.nodes))
		}
		vis := 0
		for _, n := range c.nodes {
			count++
			if n.ch != c {
				fail("node %v points at the wrong chunk", r.dotOf(n.id))
			}
			if r.nodes[n.id] != n {
				fail("node %v missing from the index", r.dotOf(n.id))
			}
			if !r.ctx.Contains(r.dotOf(n.id)) {
				fail("node %v outside the context", r.dotOf(n.id))
			}
			if n.visible {
				vis++
			}
			it := n.item
			if it == nil {
				fail("node %v has no item", r.dotOf(n.id))
			}
			if it.isItem() {
				if b := best[it]; b == nil || r.cmpKey(n.id, b.id) > 0 {
					best[it] = n
				}
			}
			wantVis := it.isItem() && it.pos == n && it.rmv.ctr == 0
			if n.visible != wantVis {
				fail("node %v visible=%v, want %v", r.dotOf(n.id), n.visible, wantVis)
			}
		}
		if vis != c.vis {
			fail("chunk %d counts %d visible, has %d", ci, c.vis, vis)
		}
		total += vis
	}
	for ci := range r.seq.chunks {
		want := 0
		for _, c := range r.seq.chunks[:ci] {
			want += c.vis
		}
		if got := r.seq.fenPrefix(ci); got != want {
			fail("fenwick prefix(%d) = %d, want %d", ci, got, want)
		}
	}
	if total != r.seq.vis {
		fail("sequence counts %d visible, has %d", r.seq.vis, total)
	}
	if count != len(r.nodes) {
		fail("%d nodes in order, %d in the index", count, len(r.nodes))
	}
	for it, b := range best {
		if it.pos != b {
			fail("item %v positioned at %v, greatest slot is %v", r.dotOf(it.id), r.dotOf(it.pos.id), r.dotOf(b.id))
		}
	}
	for id, op := range r.pending {
		if op.id != id {
			fail("pending op filed under %v has id %v", id, op.id)
		}
		if r.ctx.Contains(id) {
			fail("pending op %v inside the context", id)
		}
	}
	seen := map[Dot]bool{}
	for _, id := range r.IDs() {
		if seen[id] {
			fail("element %v visible twice", id)
		}
		seen[id] = true
	}
	if r.lamport < r.ctx.maxAny() {
		fail("lamport %d below context max %d", r.lamport, r.ctx.maxAny())
	}
}

func rgaSummary[T comparable](r *RGA[T]) string { return fmt.Sprint(r.IDs(), r.Values()) }
