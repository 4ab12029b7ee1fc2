package pubsub

import (
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/internal/lru"
)

// dedupCache remembers messages (by short ID) for a fixed time, bounded in
// count (the oldest entries go first when full).
type dedupCache struct {
	ttl   time.Duration
	max   int
	seen  map[ShortID]int64 // when added, Unix nanoseconds
	order []ShortID         // insertion order (= expiry order)
	head  int
}

// dedupEntryBytes is what one remembered ID costs at most: its map entry
// (key, time, the table's slack just after it doubled) and its slot in the
// expiry order (with the slice's slack). TestDedupEntryBytesCoversTheCache
// measures it.
const dedupEntryBytes = 128

func newDedup(ttl time.Duration, max int) *dedupCache {
	return &dedupCache{ttl: ttl, max: max, seen: make(map[ShortID]int64)}
}

func (d *dedupCache) has(id ShortID) bool { _, ok := d.seen[id]; return ok }

func (d *dedupCache) add(id ShortID, now time.Time) {
	if _, ok := d.seen[id]; ok {
		return
	}
	if len(d.seen) >= d.max {
		d.popOldest()
	}
	d.seen[id] = now.UnixNano()
	d.order = append(d.order, id)
}

func (d *dedupCache) popOldest() {
	if d.head >= len(d.order) {
		return
	}
	delete(d.seen, d.order[d.head])
	d.order[d.head] = ShortID{}
	d.head++
	if d.head > 1024 && d.head*2 > len(d.order) {
		d.order = append([]ShortID(nil), d.order[d.head:]...)
		d.head = 0
	}
}

// expire drops entries older than the TTL.
func (d *dedupCache) expire(now time.Time) {
	for d.head < len(d.order) {
		if now.Sub(time.Unix(0, d.seen[d.order[d.head]])) < d.ttl {
			return
		}
		d.popOldest()
	}
}

func (d *dedupCache) len() int { return len(d.seen) }

// replayWindow tracks the sequence numbers seen from one origin: the
// highest, and a bitmap of the windowBits below it.
type replayWindow struct {
	highest uint64
	bits    [windowBits / 64]uint64
	ids     map[uint64]MsgID // seq -> ID, for the seqs in the bitmap
}

const windowBits = 1024

// check reports whether seq (with message id) is acceptable: new, or a
// sequence number below the window (then only the dedup cache and the
// timestamp bound protect it). The same seq with another ID inside the
// window is an equivocation or a replay with altered fields: refused.
func (w *replayWindow) check(seq uint64, id MsgID) bool {
	if w.ids == nil || seq > w.highest {
		return true
	}
	if w.highest-seq >= windowBits {
		return true
	}
	if w.bits[(seq%windowBits)/64]&(1<<(seq%64)) == 0 {
		return true
	}
	return w.ids[seq] == id
}

func (w *replayWindow) mark(seq uint64, id MsgID) {
	if w.ids == nil {
		w.ids = make(map[uint64]MsgID)
		w.highest = seq
	}
	if seq > w.highest {
		if seq-w.highest >= windowBits {
			// The whole window slides out (sequence numbers are
			// microsecond timestamps: the usual case for a new message).
			clear(w.ids)
			w.bits = [windowBits / 64]uint64{}
		} else {
			// Slot s%windowBits held s-windowBits, which slides out.
			for s := w.highest + 1; s <= seq; s++ {
				word, bit := (s%windowBits)/64, uint64(1)<<(s%64)
				if w.bits[word]&bit != 0 {
					delete(w.ids, s-windowBits)
					w.bits[word] &^= bit
				}
			}
		}
		w.highest = seq
	}
	if w.highest-seq >= windowBits {
		return
	}
	w.bits[(seq%windowBits)/64] |= 1 << (seq % 64)
	w.ids[seq] = id
}

// replayWindows holds one window per origin within a byte budget, evicting
// the least recently used window one at a time (an evicted origin falls
// back to the dedup and timestamp checks; nothing else is forgotten).
type replayWindows struct {
	c *lru.Cache[identity.AgentID, *replayWindow]
}

// Approximate memory of a window: the bitmap and bookkeeping, plus one map
// entry per remembered sequence number.
const (
	replayWindowBase  = 256
	replayWindowEntry = 64
)

func newReplayWindows(maxBytes int) replayWindows {
	return replayWindows{c: lru.New[identity.AgentID, *replayWindow](maxBytes)}
}

// check reports whether seq/id is acceptable for origin (see
// replayWindow.check); an origin without a window accepts anything.
func (r *replayWindows) check(origin identity.AgentID, seq uint64, id MsgID) bool {
	w, ok := r.c.Peek(origin)
	if !ok {
		return true
	}
	return w.check(seq, id)
}

// mark records seq/id for origin, making its window the most recently used
// and evicting the least recently used ones beyond the budget.
func (r *replayWindows) mark(origin identity.AgentID, seq uint64, id MsgID) {
	w, ok := r.c.Get(origin)
	if !ok {
		w = &replayWindow{}
	}
	w.mark(seq, id)
	r.c.Put(origin, w, replayWindowBase+replayWindowEntry*len(w.ids))
}
