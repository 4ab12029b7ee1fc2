package tasklist

import (
	"fmt"
	"testing"
)

// TestLateJoinerCatchesUpInChunks: a list larger than MaxSyncBytes reaches
// a late joiner in frames of at most SyncChunkSize, over several requests,
// and a later catch-up sends only what the joiner lacks.
func TestLateJoinerCatchesUpInChunks(t *testing.T) {
	if testing.Short() {
		t.Skip("signs 1,300 deltas")
	}
	h := newHub(true)
	a := h.open(t, 1, ListID{1}, "big", nil, nil)
	for i := range 1300 {
		if _, err := a.l.Add(fmt.Sprintf("task %d", i), "some description"); err != nil {
			t.Fatal(err)
		}
	}
	b := h.open(t, 2, ListID{1}, "", nil, nil)
	h.mu.Lock()
	h.maxLen = 0
	h.mu.Unlock()
	// One catch-up, started by the joiner: nothing else runs, so nothing
	// may arrive twice.
	b.l.PeerUp(a.id)
	for i := 0; !converged([]*replica{a, b}); i++ {
		if i == 1000 {
			t.Fatal("joiner did not catch up")
		}
		flushAll(t, b, a)
	}
	got := mustEqualSnapshots(t, a, b)
	if len(got) != 1300 {
		t.Fatalf("joiner has %d tasks", len(got))
	}
	if h.maxLen > SyncChunkSize+4096 {
		t.Fatalf("largest frame %d bytes, chunk limit %d", h.maxLen, SyncChunkSize)
	}
	if s := a.l.Stats(); s.SyncRequestsReceived < 2 {
		t.Fatalf("answered in %d requests: the MaxSyncBytes bound was not applied", s.SyncRequestsReceived)
	}
	if s := b.l.Stats(); s.Pending != 0 || s.Duplicates != 0 || s.Drops != (Drops{ChangesFull: s.Drops.ChangesFull}) {
		t.Fatalf("joiner stats %+v", s)
	}

	// Only the missing deltas travel on the next catch-up.
	for i := range 10 {
		h.setLink(a.id, b.id, false)
		_, _ = a.l.Add(fmt.Sprintf("late %d", i), "")
		h.setLink(a.id, b.id, true)
	}
	sent := a.l.Stats().DeltasSent
	b.l.PeerUp(a.id)
	flushAll(t, b, a, b)
	if d := a.l.Stats().DeltasSent - sent; d != 10 {
		t.Fatalf("catch-up sent %d deltas, want the 10 missing", d)
	}
	mustEqualSnapshots(t, a, b)
}

// TestGapTriggersCatchUp: a delta whose predecessor was lost is held and
// the gap is filled by a catch-up the receiver starts itself.
func TestGapTriggersCatchUp(t *testing.T) {
	h := newHub(false)
	a := h.open(t, 1, ListID{1}, "gap", nil, nil)
	b := h.open(t, 2, ListID{1}, "", nil, nil)
	x, _ := a.l.Add("x", "")
	_ = a.l.Claim(x)
	// The broadcasts of both ops are queued; lose the first.
	h.mu.Lock()
	// Queued: the init delta (broadcast with the first op), the add, the
	// claim. Lose the add.
	if len(h.queue) != 3 {
		h.mu.Unlock()
		t.Fatalf("queued %d messages", len(h.queue))
	}
	h.queue = append(h.queue[:1], h.queue[2])
	h.mu.Unlock()
	deliverOne(t, h, 0, true)
	deliverOne(t, h, 0, true)
	if s := b.l.Stats(); s.Pending != 1 {
		t.Fatalf("pending %d", s.Pending)
	}
	// b asked a random peer (a) for the gap; let the exchange run.
	for deliverOne(t, h, 0, true) {
	}
	if s := b.l.Stats(); s.Pending != 0 || s.RemoteOps != 3 {
		t.Fatalf("after catch-up: %+v", s)
	}
	mustEqualSnapshots(t, a, b)
}
