package pubsub

import (
	"runtime"
	"testing"
	"time"
)

// TestDedupEntryBytesCoversTheCache: the dedup cache's byte budget is
// turned into an entry count with dedupEntryBytes. Filled to that count and
// then kept full while old entries are evicted, the cache must never hold
// more heap than its budget, nor be so pessimistic that the budget buys
// fewer than half the entries it could hold.
func TestDedupEntryBytesCoversTheCache(t *testing.T) {
	heap := func() int {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int(m.HeapAlloc)
	}
	// Budgets from 1 to 16 MiB land at different points of the map's
	// growth (just after a doubling an entry costs most).
	for budget := 1 << 20; budget <= 16<<20; budget += 1 << 20 {
		before := heap()
		d := newDedup(time.Hour, budget/dedupEntryBytes)
		now := time.Unix(1000, 0)
		most, i := 0, 0
		for round := range 12 {
			for range d.max / 4 {
				d.add(idOf(i).Short(), now)
				i++
			}
			if round >= 3 { // full from here on
				most = max(most, heap()-before)
			}
		}
		runtime.KeepAlive(d)
		if most > budget {
			t.Fatalf("%d entries hold %d bytes (%d per entry), over the %d-byte budget", d.len(), most, most/d.len(), budget)
		}
		if most < budget/2 {
			t.Fatalf("%d entries hold at most %d bytes of a %d-byte budget: dedupEntryBytes is too pessimistic", d.len(), most, budget)
		}
	}
}
