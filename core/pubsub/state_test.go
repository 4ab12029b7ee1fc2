package pubsub

import (
	"fmt"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
)

func TestDedupExpiresAndIsBounded(t *testing.T) {
	d := newDedup(5*time.Minute, 3)
	t0 := time.Unix(1000, 0)
	d.add(idOf(1).Short(), t0)
	d.add(idOf(2).Short(), t0.Add(time.Minute))
	if !d.has(idOf(1).Short()) || !d.has(idOf(2).Short()) || d.has(idOf(3).Short()) {
		t.Fatal("membership wrong after add")
	}
	d.expire(t0.Add(5*time.Minute + time.Second))
	if d.has(idOf(1).Short()) || !d.has(idOf(2).Short()) {
		t.Fatal("expiry: the 5-minute-old entry should go, the newer stay")
	}
	d.add(idOf(3).Short(), t0.Add(2*time.Minute))
	d.add(idOf(4).Short(), t0.Add(2*time.Minute))
	d.add(idOf(5).Short(), t0.Add(2*time.Minute))
	if d.len() != 3 || d.has(idOf(2).Short()) {
		t.Fatalf("bound: len %d, oldest kept %v", d.len(), d.has(idOf(2).Short()))
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

// The window remembers IDs only for the sequence numbers inside it,
// whether it slides by one, by part of its width, or jumps past it (the
// usual case: sequence numbers are microsecond timestamps).
func TestReplayWindowForgetsWhatSlidesOut(t *testing.T) {
	var w replayWindow
	for s := uint64(1); s <= 3*windowBits; s++ {
		w.mark(s, idOf(int(s)))
	}
	if len(w.ids) != windowBits {
		t.Fatalf("%d IDs remembered after sliding by one, want %d", len(w.ids), windowBits)
	}
	top := uint64(3 * windowBits)
	w.mark(top+10, idOf(1)) // slides 10 out
	if len(w.ids) != windowBits-10+1 {
		t.Fatalf("%d IDs after a partial slide, want %d", len(w.ids), windowBits-10+1)
	}
	if w.check(top, idOf(2)) || !w.check(top, idOf(int(top))) {
		t.Fatal("in-window sequence number not checked against its ID after a partial slide")
	}
	w.mark(top+10+windowBits, idOf(3)) // jumps past the window
	if len(w.ids) != 1 || !w.check(top+10, idOf(4)) {
		t.Fatalf("after a jump: %d IDs remembered", len(w.ids))
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

// Replay windows (issue 10, attack 9): within the byte budget the least
// recently used window is evicted, one at a time; before, every window was
// cleared at once when the origin count hit its cap, reopening the replay
// gap for every origin.
func TestReplayWindowsLRUByBytes(t *testing.T) {
	origin := func(i int) identity.AgentID { return identity.DeriveID([]byte(fmt.Sprint("origin", i))) }
	budget := 100 * (replayWindowBase + replayWindowEntry) // room for 100 one-entry windows
	r := newReplayWindows(budget)
	for i := range 100 {
		r.mark(origin(i), 1, MsgID{byte(i)})
	}
	if r.c.Len() != 100 || r.c.Bytes() != budget {
		t.Fatalf("%d windows, %d bytes", r.c.Len(), r.c.Bytes())
	}
	// Origin 0 is used again; then 10 new origins arrive.
	r.mark(origin(0), 2, MsgID{200})
	for i := 100; i < 110; i++ {
		r.mark(origin(i), 1, MsgID{byte(i)})
	}
	if r.c.Bytes() > budget {
		t.Fatalf("%d bytes over the budget of %d", r.c.Bytes(), budget)
	}
	// The least recently used ones (1..) went first; origin 0 and the new
	// ones still refuse a replay of a sequence number with another ID.
	if r.check(origin(0), 1, MsgID{99}) || r.check(origin(105), 1, MsgID{99}) {
		t.Fatal("a recently used window was evicted")
	}
	if !r.check(origin(1), 1, MsgID{99}) {
		t.Fatal("the least recently used window was kept")
	}
	kept := 0
	for i := range 110 {
		if _, ok := r.c.Peek(origin(i)); ok {
			kept++
		}
	}
	if kept < 80 {
		t.Fatalf("only %d windows kept: eviction is not one at a time", kept)
	}
	// A window grows with the sequence numbers it remembers, and its bytes
	// count against the budget.
	for s := uint64(3); s < 50; s++ {
		r.mark(origin(0), s, MsgID{byte(s)})
	}
	if _, ok := r.c.Peek(origin(0)); r.c.Bytes() > budget || !ok {
		t.Fatalf("growth not accounted: %d bytes", r.c.Bytes())
	}
}
