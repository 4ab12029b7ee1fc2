package crdt

import (
	"cmp"
	"fmt"
	"slices"
	"unsafe"
)

// fataler is what both *testing.T and *rapid.T provide.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// checkRGAInvariants verifies the internal consistency of r: chunk and
// run bookkeeping, the ID index, visibility rules, the position winner of
// every item, and the relation between slots, pending operations and the
// context.
func checkRGAInvariants[T comparable](t fataler, r *RGA[T]) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("rga invariant: "+format, args...)
	}
	total, runs := 0, 0
	order := map[nodeKey]int{}    // slot -> document position
	best := map[*run[T]]nodeKey{} // pinned item -> greatest slot naming it
	for ci, c := range r.seq.chunks {
		if c.idx != ci {
			fail("chunk %d has idx %d", ci, c.idx)
		}
		if len(c.runs) == 0 || len(c.runs) > maxChunk {
			fail("chunk %d holds %d runs", ci, len(c.runs))
		}
		vis := 0
		if len(c.cnt) != len(c.runs) {
			fail("chunk %d has %d runs, %d counts", ci, len(c.runs), len(c.cnt))
		}
		for j, x := range c.runs {
			runs++
			if int(c.cnt[j]) != x.visCount() {
				fail("run %v counted %d visible, has %d", r.dotOf(x.key(0)), c.cnt[j], x.visCount())
			}
			if x.ch != c {
				fail("run %v points at the wrong chunk", r.dotOf(x.key(0)))
			}
			n := x.size()
			if n == 0 {
				fail("empty run at %v", r.dotOf(x.key(0)))
			}
			vis += x.visCount()
			for off := range n {
				k := x.key(off)
				if y, yo := r.seq.lookup(k); y != x || yo != off {
					fail("slot %v not found in the index", r.dotOf(k))
				}
				if !r.ctx.Contains(r.dotOf(k)) {
					fail("slot %v outside the context", r.dotOf(k))
				}
				if _, dup := order[k]; dup {
					fail("slot %v twice in the sequence", r.dotOf(k))
				}
				order[k] = len(order)
			}
			if x.isMove() {
				it := x.ref
				if it == nil || it.ch == nil || it.size() != 1 {
					fail("move %v names no single slot in the sequence", r.dotOf(x.key(0)))
				}
				if !it.isMove() {
					if it.flags&runPinned == 0 {
						fail("moved item %v not pinned", r.dotOf(it.key(0)))
					}
					if b, ok := best[it]; !ok || r.cmpKey(x.key(0), b) > 0 {
						best[it] = x.key(0)
					}
				}
				want := !it.isMove() && it.ref == x && it.rmv == 0
				if x.visible() != want {
					fail("move %v visible=%v, want %v", r.dotOf(x.key(0)), x.visible(), want)
				}
				continue
			}
			if n > 1 && (x.flags&runPinned != 0 || x.ref != nil) {
				fail("run %v of %d slots is pinned or moved", r.dotOf(x.key(0)), n)
			}
			if x.ref != nil && x.flags&runPinned == 0 {
				fail("moved item %v not pinned", r.dotOf(x.key(0)))
			}
			if want := x.rmv == 0 && x.ref == nil; x.visible() != want {
				fail("item run %v visible=%v, want %v", r.dotOf(x.key(0)), x.visible(), want)
			}
			if x.rmv != 0 {
				if (n == 1) != (x.step == 0) || x.step < -1 || x.step > 1 {
					fail("removed run %v of %d slots has step %d", r.dotOf(x.key(0)), n, x.step)
				}
				for off := range n {
					if k := x.rmvKey(off); k.ctr == 0 || k.ctr > MaxCounter || !r.ctx.Contains(r.dotOf(k)) {
						fail("slot %v has removal counter %d outside the context", r.dotOf(x.key(off)), k.ctr)
					}
				}
			}
			if x.flags&runPinned != 0 {
				if b, ok := best[x]; !ok || r.cmpKey(x.key(0), b) > 0 {
					best[x] = x.key(0)
				}
			}
		}
		if vis != c.vis {
			fail("chunk %d counts %d visible, has %d", ci, c.vis, vis)
		}
		total += vis
	}
	checkRunArrays(fail, r)
	// Every slot follows its origin in document order.
	r.seq.each(func(x *run[T]) bool {
		if o := x.origin(0); o.ctr != 0 {
			if p, ok := order[o]; !ok || p >= order[x.key(0)] {
				fail("slot %v not after its origin %v", r.dotOf(x.key(0)), r.dotOf(o))
			}
		}
		return true
	})
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
	entries := 0
	for rep, ix := range r.seq.ids {
		var prev uint64
		if len(ix.firsts) != len(ix.blocks) {
			fail("replica %d: %d index blocks, %d first counters", rep, len(ix.blocks), len(ix.firsts))
		}
		for bi, b := range ix.blocks {
			if len(b) == 0 || len(b) > maxIndexBlock || ix.firsts[bi] != b[0].ctr {
				fail("replica %d: index block %d of %d entries, first counter %d", rep, bi, len(b), ix.firsts[bi])
			}
			for _, e := range b {
				if e.ctr <= prev || e.r.ctr != e.ctr || e.r.rep != uint32(rep) || e.r.ch == nil {
					fail("replica %d: bad index entry at counter %d", rep, e.ctr)
				}
				prev = e.ctr
				entries++
			}
		}
	}
	if l := r.seq.last; l.r != nil {
		if x, off := r.seq.lookup(l.k); x != l.r || off != l.off {
			fail("lookup cache maps %v to a stale run", r.dotOf(l.k))
		}
	}
	if entries != runs {
		fail("%d runs in order, %d in the index", runs, entries)
	}
	for it, b := range best {
		p, _ := posOf(it, 0)
		if p.key(0) != b {
			fail("item %v positioned at %v, greatest slot is %v", r.dotOf(it.key(0)), r.dotOf(p.key(0)), r.dotOf(b))
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

// checkRunArrays checks how item runs share value arrays: no two runs'
// values overlap, a run marked runTail has no other run's values after its
// own within its capacity, and a run whose next counter is not a slot is
// marked runTail (so growing it in place is safe).
func checkRunArrays[T comparable](fail func(string, ...any), r *RGA[T]) {
	var zero T
	sz := unsafe.Sizeof(zero)
	if sz == 0 {
		return
	}
	type region struct {
		lo, hi, capHi uintptr
		x             *run[T]
	}
	var regs []region
	r.seq.each(func(x *run[T]) bool {
		if x.isMove() {
			return true
		}
		if next, _ := r.seq.lookup(x.key(x.size())); next == nil && x.flags&runTail == 0 {
			fail("run %v can grow but does not own its array's tail", r.dotOf(x.key(0)))
		}
		lo := uintptr(unsafe.Pointer(unsafe.SliceData(x.vals)))
		regs = append(regs, region{lo, lo + uintptr(len(x.vals))*sz, lo + uintptr(cap(x.vals))*sz, x})
		return true
	})
	slices.SortFunc(regs, func(a, b region) int { return cmp.Compare(a.lo, b.lo) })
	for i := 1; i < len(regs); i++ {
		if p := regs[i-1]; regs[i].lo < p.hi {
			fail("runs %v and %v share values", r.dotOf(p.x.key(0)), r.dotOf(regs[i].x.key(0)))
		}
	}
	for i, g := range regs {
		if g.x.flags&runTail != 0 && i+1 < len(regs) && regs[i+1].lo < g.capHi {
			fail("run %v owns its array's tail, but %v lies there", r.dotOf(g.x.key(0)), r.dotOf(regs[i+1].x.key(0)))
		}
	}
}
