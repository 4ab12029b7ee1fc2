package localapi

import (
	"context"
	"errors"
	"sort"
	"sync"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// feed is a bounded buffer of items with cursors: the one mechanism behind
// every readable sequence of the API (a followed topic's messages, the
// direct-message inbox, a task list's changes, a group's messages). Each
// item gets the next cursor; a reader asks for the items after the cursor
// it last saw, as a page (long-polled) or as a stream. The feed keeps the
// newest items within maxItems and maxBytes and evicts the oldest; a
// reader whose next item was evicted learns how many it missed.
//
// A feed's cursors start at its base, the time it was created in
// microseconds since 1970, so that cursors only grow, also across feeds:
// a cursor from an earlier feed of the same thing (before a daemon
// restart, or before a topic was unfollowed and followed again) is below
// the base, and the reader is told its cursor was reset instead of
// silently skipping the new feed's first items. (A feed would need more
// than one item per microsecond to catch up with the next feed's base.)
type feed[T any] struct {
	mu       sync.Mutex
	items    []feedItem[T] // oldest first
	bytes    int
	maxItems int
	maxBytes int
	base     uint64        // the first cursor
	next     uint64        // the cursor the next item gets
	evicted  uint64        // the cursor of the newest evicted item (base-1: none)
	changed  chan struct{} // closed (and replaced) when an item arrives or the feed closes
	closed   bool
}

type feedItem[T any] struct {
	cursor uint64
	size   int
	v      T
}

// newFeed makes a feed whose first cursor is base (> 0).
func newFeed[T any](maxItems, maxBytes int, base uint64) *feed[T] {
	base = max(base, 1)
	return &feed[T]{maxItems: maxItems, maxBytes: maxBytes, base: base, next: base, evicted: base - 1, changed: make(chan struct{})}
}

// add appends v (counted as size bytes) and returns its cursor; set, if
// not nil, stores the cursor in the item before it becomes visible. An
// item larger than the whole byte budget still goes in (alone): sizes are
// bounded by the agent's own limits before they get here.
func (f *feed[T]) add(v T, size int, set func(*T, uint64)) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0
	}
	c := f.next
	f.next++
	if set != nil {
		set(&v, c)
	}
	f.items = append(f.items, feedItem[T]{cursor: c, size: size, v: v})
	f.bytes += size
	for len(f.items) > 1 && (len(f.items) > f.maxItems || f.bytes > f.maxBytes) {
		f.bytes -= f.items[0].size
		f.evicted = f.items[0].cursor
		var zero feedItem[T]
		f.items[0] = zero
		f.items = f.items[1:]
	}
	close(f.changed)
	f.changed = make(chan struct{})
	return c
}

// noteLost records that the feed's source dropped n items (its own
// buffer overflowed): their cursors are skipped, so readers count them as
// missed like evicted ones.
func (f *feed[T]) noteLost(n uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.next += n
	}
}

// close ends the feed: waiting readers return, later adds are ignored.
func (f *feed[T]) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.changed)
	}
}

// page is what read returns.
type page[T any] struct {
	items   []T
	cursors []uint64 // cursors[i] is items[i]'s
	// next is the cursor to pass as "after" next time: the last item's
	// cursor, or after itself (or the feed's end, if after was beyond it)
	// when there was nothing new.
	next uint64
	// missed counts the items after "after" that were evicted before
	// this read (or dropped by the source) and so are not in items;
	// evicted is how many of the cursors after "after" belong to items
	// the feed held and evicted (the reader was too slow), as opposed to
	// gaps its source left.
	missed, evicted uint64
	// reset: "after" was from an earlier feed (below this feed's base);
	// the read started with this feed's oldest item.
	reset  bool
	closed bool
}

// read returns up to limit items with cursors after "after". If there are
// none and wait is true it waits until one arrives, the feed closes or ctx
// ends (then it returns an empty page, not an error).
func (f *feed[T]) read(ctx context.Context, after uint64, limit int, wait bool) page[T] {
	for {
		f.mu.Lock()
		p, ch := f.readLocked(after, limit), f.changed
		f.mu.Unlock()
		if len(p.items) > 0 || p.missed > 0 || p.closed || !wait {
			return p
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return p
		}
	}
}

func (f *feed[T]) readLocked(after uint64, limit int) page[T] {
	p := page[T]{next: after, closed: f.closed}
	switch {
	case after >= f.next:
		p.next = f.next - 1 // a cursor from the future (a client's bug): start at the end
		return p
	case after < f.base-1:
		// 0 (from the start) or a cursor of an earlier feed.
		p.reset = after != 0
		after = f.base - 1
	}
	if after < f.evicted {
		p.evicted = f.evicted - after // an upper bound: it may include source gaps
	}
	i := sort.Search(len(f.items), func(i int) bool { return f.items[i].cursor > after })
	prev := after
	for ; i < len(f.items) && len(p.items) < limit; i++ {
		c := f.items[i].cursor
		p.missed += c - prev - 1 // evicted, or dropped by the source
		p.items = append(p.items, f.items[i].v)
		p.cursors = append(p.cursors, c)
		prev = c
	}
	if len(p.items) < limit {
		// Everything up to the end was read: cursors after the last item
		// (the source's drops) are missed too.
		p.missed += f.next - 1 - prev
		prev = f.next - 1
	}
	p.next = prev
	return p
}

// end returns the cursor of the newest item (base-1 if none yet): a reader
// that passes it as "after" gets only what arrives from now on.
func (f *feed[T]) end() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.next - 1
}

// pump copies a stream's items into f, converted by conv (which also
// returns the bytes an item counts for) and given their cursors by set,
// until the stream ends or ctx does; then it closes f. Items the stream
// dropped (its reader lagged) are counted as lost.
func pump[S, T any](ctx context.Context, st *x0x.Stream[S], f *feed[T], conv func(S) (T, int), set func(*T, uint64)) {
	defer f.close()
	defer st.Close()
	for {
		item, err := st.Next(ctx)
		var lag *x0x.LaggedError
		if errors.As(err, &lag) {
			f.noteLost(lag.Missed)
			continue
		}
		if err != nil {
			return
		}
		v, size := conv(item)
		f.add(v, size, set)
	}
}
