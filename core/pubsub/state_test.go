package pubsub

import (
	"testing"
	"time"
)

func TestDedupExpiresAndIsBounded(t *testing.T) {
	d := newDedup(5*time.Minute, 3)
	t0 := time.Unix(1000, 0)
	d.add(idOf(1), t0)
	d.add(idOf(2), t0.Add(time.Minute))
	if !d.has(idOf(1)) || !d.has(idOf(2)) || d.has(idOf(3)) {
		t.Fatal("membership wrong after add")
	}
	d.expire(t0.Add(5*time.Minute + time.Second))
	if d.has(idOf(1)) || !d.has(idOf(2)) {
		t.Fatal("expiry: the 5-minute-old entry should go, the newer stay")
	}
	d.add(idOf(3), t0.Add(2*time.Minute))
	d.add(idOf(4), t0.Add(2*time.Minute))
	d.add(idOf(5), t0.Add(2*time.Minute))
	if d.len() != 3 || d.has(idOf(2)) {
		t.Fatalf("bound: len %d, oldest kept %v", d.len(), d.has(idOf(2)))
	}
}

func TestReplayWindow(t *testing.T) {
	var w replayWindow
	a, b := idOf(1), idOf(2)
	if !w.check(10, a) {
		t.Fatal("first message refused")
	}
	w.mark(10, a)
	if !w.check(10, a) {
		t.Fatal("the same message (a duplicate, handled by dedup) refused by the window")
	}
	if w.check(10, b) {
		t.Fatal("a different message with a seen sequence number was accepted")
	}
	if !w.check(9, b) || !w.check(11, b) {
		t.Fatal("unseen sequence numbers refused")
	}
	w.mark(5000, idOf(3))
	if !w.check(10, b) {
		t.Fatal("a sequence number below the window must fall back to dedup/timestamp checks")
	}
	w.mark(4990, idOf(4))
	if w.check(4990, b) {
		t.Fatal("in-window equivocation accepted after the window moved")
	}
	w.mark(5000+windowBits-1, idOf(5))
	if !w.check(4990, b) { // now below the window
		t.Fatal("old bit not cleared when the window slid")
	}
}

func TestNextSeqIsRestartSafe(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	// A run that published 1,000 messages in one second...
	var seq uint64
	for i := range 1000 {
		seq = nextSeq(seq, t0.Add(time.Duration(i)*time.Millisecond))
	}
	highest := seq
	// ...restarts with its counter at 0 a moment later: the next number is
	// above every number it used before, so a replay window accepts it.
	after := nextSeq(0, t0.Add(1001*time.Millisecond))
	if after <= highest {
		t.Fatalf("restarted publisher's seq %d not above %d", after, highest)
	}
	var w replayWindow
	w.mark(highest, MsgID{1})
	if !w.check(after, MsgID{2}) {
		t.Fatal("replay window refuses the restarted publisher")
	}
	// Within one microsecond the counter still rises by one.
	if a, b := nextSeq(5, t0), nextSeq(nextSeq(5, t0), t0); b != a+1 {
		t.Fatalf("same instant: %d then %d", a, b)
	}
	// A clock before 1970 (the zero time) falls back to counting.
	if got := nextSeq(7, time.Time{}); got != 8 {
		t.Fatalf("zero clock: %d", got)
	}
}
