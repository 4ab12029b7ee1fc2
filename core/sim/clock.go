package sim

import (
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
)

// Clock is a virtual clock driven by an event queue. Time advances only when
// Step, RunFor or RunUntil executes the next scheduled callback, so a
// simulation runs as fast as the CPU allows and is deterministic: callbacks
// due at the same instant run in the order they were scheduled.
//
// A Clock is not safe for concurrent use: the simulator drives it from one
// goroutine, and every callback runs on that goroutine.
type Clock struct {
	now  time.Time
	seq  uint64
	q    eventQueue
	runs uint64
}

// NewClock returns a virtual clock that reads start until events advance it.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the virtual time.
func (c *Clock) Now() time.Time { return c.now }

// AfterFunc schedules f to run d after the current virtual time (d < 0 is
// treated as 0). The returned Timer cancels it.
func (c *Clock) AfterFunc(d time.Duration, f func()) clock.Timer {
	return c.schedule(d, f, nil)
}

func (c *Clock) schedule(d time.Duration, f func(), owner *NodeClock) *event {
	if d < 0 {
		d = 0
	}
	c.seq++
	at := c.now.Add(d)
	e := &event{at: at, f: f, owner: owner}
	c.q.push(entry{key: at.UnixNano(), seq: c.seq, e: e})
	return e
}

// Pending returns the number of scheduled, not yet run or stopped callbacks
// (stopped ones are removed lazily and may still be counted).
func (c *Clock) Pending() int { return len(c.q) }

// Executed returns how many callbacks have run so far.
func (c *Clock) Executed() uint64 { return c.runs }

// Step runs the next due callback, advancing time to it. It reports false
// when nothing is scheduled.
func (c *Clock) Step() bool {
	for len(c.q) > 0 {
		e := c.q.pop().e
		if e.stopped {
			continue
		}
		e.fired = true
		if e.owner != nil {
			delete(e.owner.timers, e)
		}
		if e.at.After(c.now) {
			c.now = e.at
		}
		c.runs++
		e.f()
		return true
	}
	return false
}

// RunUntil runs every callback due at or before t, then sets the time to t
// (if later than now).
func (c *Clock) RunUntil(t time.Time) {
	for len(c.q) > 0 {
		e := c.q[0].e
		if e.stopped {
			c.q.pop()
			continue
		}
		if e.at.After(t) {
			break
		}
		c.Step()
	}
	if t.After(c.now) {
		c.now = t
	}
}

// RunFor runs the simulation for d of virtual time.
func (c *Clock) RunFor(d time.Duration) { c.RunUntil(c.now.Add(d)) }

// event is one scheduled callback; it implements clock.Timer.
type event struct {
	at      time.Time
	f       func()
	owner   *NodeClock
	stopped bool
	fired   bool
}

// Stop cancels the callback and reports whether it was still pending.
func (e *event) Stop() bool {
	if e.stopped || e.fired {
		return false
	}
	e.stopped = true
	if e.owner != nil {
		delete(e.owner.timers, e)
	}
	return true
}

// entry is a heap slot; the ordering key is stored inline so that sifting
// does not chase pointers (the queue holds millions of events at scale).
type entry struct {
	key int64  // due time, Unix nanoseconds
	seq uint64 // scheduling order, for FIFO among equal times
	e   *event
}

func (a entry) less(b entry) bool { return a.key < b.key || (a.key == b.key && a.seq < b.seq) }

// eventQueue is a binary min-heap of entries.
type eventQueue []entry

func (q *eventQueue) push(x entry) {
	*q = append(*q, x)
	h := *q
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].less(h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *eventQueue) pop() entry {
	h := *q
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = entry{}
	h = h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h[r].less(h[l]) {
			m = r
		}
		if !h[m].less(h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}

// NodeClock is one simulated node's view of a shared Clock. Killing the node
// (Halt) cancels every callback it scheduled and turns later AfterFunc calls
// into no-ops, the way a crashed process stops running its timers.
type NodeClock struct {
	c      *Clock
	timers map[*event]struct{}
	halted bool
}

// NewNodeClock returns a per-node view of c.
func NewNodeClock(c *Clock) *NodeClock {
	return &NodeClock{c: c, timers: make(map[*event]struct{})}
}

// Now returns the shared virtual time.
func (n *NodeClock) Now() time.Time { return n.c.now }

// AfterFunc schedules f on the shared clock unless the node has halted.
func (n *NodeClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	if n.halted {
		return &event{stopped: true}
	}
	e := n.c.schedule(d, f, n)
	n.timers[e] = struct{}{}
	return e
}

// Halt cancels all of the node's pending callbacks and refuses new ones.
func (n *NodeClock) Halt() {
	n.halted = true
	for e := range n.timers {
		e.stopped = true
	}
	clear(n.timers)
}

// Halted reports whether Halt was called.
func (n *NodeClock) Halted() bool { return n.halted }
