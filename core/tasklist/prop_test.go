package tasklist

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestPropertyReplicasConverge: 3-6 replicas make random operations while
// their messages are delivered in random order, duplicated, dropped and
// cut by partitions; after healing and catch-up every replica has the same
// snapshot, and no replica ever dropped an honest delta.
func TestPropertyReplicasConverge(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(3, 6).Draw(rt, "replicas")
		h := newHub(false)
		var rs []*replica
		var clocks []*testClock
		for i := range n {
			clk := newTestClock()
			name := ""
			if i == 0 {
				name = "prop"
			}
			rs = append(rs, h.open(rt, byte(i+1), ListID{42}, name, nil, clk))
			clocks = append(clocks, clk)
		}
		var tasks []TaskID
		pickTask := func(label string) TaskID {
			if len(tasks) == 0 {
				return TaskID{}
			}
			return tasks[rapid.IntRange(0, len(tasks)-1).Draw(rt, label)]
		}
		steps := rapid.IntRange(5, 60).Draw(rt, "steps")
		for range steps {
			switch rapid.IntRange(0, 11).Draw(rt, "action") {
			case 0, 1, 2, 3, 4, 5:
				i := rapid.IntRange(0, n-1).Draw(rt, "replica")
				l := rs[i].l
				id := pickTask("task")
				var err error
				switch op := rapid.IntRange(0, 7).Draw(rt, "op"); op {
				case 0, 1:
					var nid TaskID
					nid, err = l.Add(fmt.Sprintf("t%d", len(tasks)), "")
					if err == nil {
						tasks = append(tasks, nid)
					}
				case 2:
					s := rapid.SampledFrom([]string{"x", "y", "z"}).Draw(rt, "title")
					p := uint8(rapid.IntRange(0, 3).Draw(rt, "prio"))
					err = l.Update(id, Update{Title: &s, Priority: &p})
				case 3:
					err = l.Claim(id)
				case 4:
					err = l.Complete(id)
				case 5:
					err = l.Reopen(id)
				case 6:
					if rapid.Bool().Draw(rt, "front") {
						err = l.Move(id, nil)
					} else {
						after := pickTask("after")
						err = l.Move(id, &after)
					}
				case 7:
					err = l.Remove(id)
				}
				if err != nil && !errors.Is(err, ErrTaskNotFound) && !errors.Is(err, ErrTaskDone) &&
					!errors.Is(err, ErrNotClaimed) && !errors.Is(err, ErrClaimedByOther) && !errors.Is(err, ErrInvalid) {
					rt.Fatalf("unexpected error: %v", err)
				}
			case 6, 7:
				deliverOne(rt, h, rapid.IntRange(0, 1<<20).Draw(rt, "msg"), true)
			case 8:
				deliverOne(rt, h, rapid.IntRange(0, 1<<20).Draw(rt, "dup"), false)
			case 9:
				h.mu.Lock()
				if len(h.queue) > 0 {
					k := rapid.IntRange(0, len(h.queue)-1).Draw(rt, "drop")
					h.queue = append(h.queue[:k], h.queue[k+1:]...)
				}
				h.mu.Unlock()
			case 10:
				a, b := rapid.IntRange(0, n-1).Draw(rt, "a"), rapid.IntRange(0, n-1).Draw(rt, "b")
				h.setLink(rs[a].id, rs[b].id, rapid.Bool().Draw(rt, "up"))
			case 11:
				i := rapid.IntRange(0, n-1).Draw(rt, "clock")
				clocks[i].Advance(time.Duration(rapid.IntRange(0, 5).Draw(rt, "ms")) * time.Millisecond)
			}
		}
		// Heal and catch up.
		for _, a := range rs {
			for _, b := range rs {
				h.setLink(a.id, b.id, true)
			}
		}
		for round := 0; ; round++ {
			if round == 50 {
				rt.Fatalf("no convergence after %d catch-up rounds", round)
			}
			for deliverOne(rt, h, 0, true) {
			}
			if converged(rs) {
				break
			}
			for _, c := range clocks {
				c.Advance(gapSyncDelay) // catch-up rounds are spaced in time
			}
			for _, a := range rs {
				for _, b := range rs {
					if a != b {
						a.l.PeerUp(b.id)
					}
				}
			}
			flushAll(rt, rs...)
		}
		mustEqualSnapshots(rt, rs...)
		for i, r := range rs {
			d := r.l.Stats().Drops
			if d.Malformed+d.BadSignature+d.UnknownAuthor+d.WrongList+d.WrongAgent+d.UnknownTask+d.Invalid+d.Equivocation != 0 {
				rt.Fatalf("replica %d dropped honest input: %+v", i, d)
			}
		}
	})
}

// deliverOne hands queued message k (mod queue length) to its receiver and
// waits until it is processed; remove false keeps it queued (a duplicate
// is delivered later). It reports whether there was a message.
func deliverOne(t tb, h *hub, k int, remove bool) bool {
	h.mu.Lock()
	if len(h.queue) == 0 {
		h.mu.Unlock()
		return false
	}
	k %= len(h.queue)
	m := h.queue[k]
	if remove {
		h.queue = append(h.queue[:k], h.queue[k+1:]...)
	}
	l := h.lists[m.to]
	h.mu.Unlock()
	deliver(l, m)
	flushAll(t, &replica{l: l})
	return true
}
