package localapi

import (
	"context"
	"testing"
	"time"
)

func TestFeedCursorsEvictionAndDrops(t *testing.T) {
	f := newFeed[int](3, 1<<20, 1)
	ctx := context.Background()
	if p := f.read(ctx, 0, 10, false); len(p.items) != 0 || p.next != 0 || p.missed != 0 {
		t.Fatalf("empty feed: %+v", p)
	}
	for i := 1; i <= 5; i++ {
		if c := f.add(i, 1, nil); c != uint64(i) {
			t.Fatalf("item %d got cursor %d", i, c)
		}
	}
	// Items 1 and 2 were evicted (3 items kept).
	p := f.read(ctx, 0, 10, false)
	if p.missed != 2 || len(p.items) != 3 || p.items[0] != 3 || p.next != 5 {
		t.Fatalf("after eviction: %+v", p)
	}
	// A limit stops at the last returned item.
	p = f.read(ctx, 2, 2, false)
	if p.missed != 0 || len(p.items) != 2 || p.next != 4 {
		t.Fatalf("limited read: %+v", p)
	}
	// The source dropped 4 items: their cursors are missed, between items too.
	f.noteLost(4)
	f.add(10, 1, nil)
	p = f.read(ctx, 5, 10, false)
	if p.missed != 4 || len(p.items) != 1 || p.items[0] != 10 || p.next != 10 {
		t.Fatalf("after drops: %+v", p)
	}
	p = f.read(ctx, 4, 10, false) // 5, then 4 dropped, then 10
	if p.missed != 4 || len(p.items) != 2 || p.next != 10 {
		t.Fatalf("across drops: %+v", p)
	}
	// A cursor from the future starts at the end.
	if p := f.read(ctx, 99, 10, false); p.next != 10 || len(p.items) != 0 {
		t.Fatalf("future cursor: %+v", p)
	}
	// Bytes bound the feed too.
	g := newFeed[string](100, 10, 1)
	g.add("aaaaaa", 6, nil)
	g.add("bbbbbb", 6, nil)
	if p := g.read(ctx, 0, 10, false); len(p.items) != 1 || p.missed != 1 {
		t.Fatalf("byte budget: %+v", p)
	}
}

func TestFeedReadWaits(t *testing.T) {
	f := newFeed[int](10, 1<<20, 1)
	done := make(chan page[int])
	go func() { done <- f.read(context.Background(), 0, 10, true) }()
	time.Sleep(20 * time.Millisecond)
	f.add(7, 1, nil)
	if p := <-done; len(p.items) != 1 || p.items[0] != 7 {
		t.Fatalf("waiting read: %+v", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if p := f.read(ctx, 1, 10, true); len(p.items) != 0 || p.next != 1 {
		t.Fatalf("timed-out read: %+v", p)
	}
	go func() { done <- f.read(context.Background(), 1, 10, true) }()
	f.close()
	if p := <-done; !p.closed {
		t.Fatalf("read of a closed feed: %+v", p)
	}
}

// Cursors start at the feed's base; a cursor below it (from an earlier
// feed) resets the reader to the oldest item kept instead of skipping the
// new feed's first items, and 0 means "from the oldest kept" without a
// reset.
func TestFeedCursorsFromAnEarlierFeedReset(t *testing.T) {
	ctx := context.Background()
	f := newFeed[int](10, 1<<20, 1000)
	for i := range 3 {
		if c := f.add(i, 1, nil); c != uint64(1000+i) {
			t.Fatalf("item %d got cursor %d", i, c)
		}
	}
	for _, stale := range []uint64{5, 998} { // cursors of an earlier feed of the same thing
		p := f.read(ctx, stale, 10, false)
		if !p.reset || len(p.items) != 3 || p.items[0] != 0 || p.missed != 0 || p.next != 1002 {
			t.Fatalf("read after stale cursor %d: %+v", stale, p)
		}
	}
	if p := f.read(ctx, 0, 10, false); p.reset || len(p.items) != 3 || p.missed != 0 {
		t.Fatalf("read from 0: %+v", p)
	}
	if p := f.read(ctx, 999, 10, false); p.reset || len(p.items) != 3 {
		t.Fatalf("read from base-1: %+v", p)
	}
	// Eviction is told apart from the source's drops: only evicted items
	// count as evicted.
	g := newFeed[int](2, 1<<20, 1)
	g.noteLost(5) // cursors 1-5 never arrived
	if p := g.read(ctx, 0, 10, false); p.missed != 5 || p.evicted != 0 {
		t.Fatalf("source drops on an empty feed: %+v", p)
	}
	g.add(6, 1, nil)
	g.add(7, 1, nil)
	g.add(8, 1, nil) // evicts 6
	if p := g.read(ctx, 5, 10, false); p.evicted != 1 || p.missed != 1 || len(p.items) != 2 {
		t.Fatalf("after an eviction: %+v", p)
	}
}
