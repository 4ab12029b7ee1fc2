// Package clock abstracts time so that protocol code runs unchanged on the
// real clock and on the simulator's virtual clock.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time and schedules callbacks.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f once after d. On the real clock f runs on its own
	// goroutine; on a virtual clock it runs on the simulator's goroutine.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a scheduled callback.
type Timer interface {
	// Stop cancels the callback; it reports whether it was still pending.
	Stop() bool
}

// Real returns the system clock.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Periodic is a repeating callback started by Every.
type Periodic struct {
	mu      sync.Mutex
	timer   Timer
	stopped bool
}

// Every calls run(f) after first and then every period until Stop. run
// lets the caller execute f in its own context (typically under its lock,
// skipping f once the caller is closed); the next tick is scheduled after
// run returns, so ticks never overlap.
func Every(c Clock, first, period time.Duration, run func(f func()), f func()) *Periodic {
	p := &Periodic{}
	var fire func()
	fire = func() {
		run(f)
		p.mu.Lock()
		if !p.stopped {
			p.timer = c.AfterFunc(period, fire)
		}
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.timer = c.AfterFunc(first, fire)
	p.mu.Unlock()
	return p
}

// Stop cancels future ticks; it reports whether a tick was still pending.
// A tick already running completes but schedules no successor.
func (p *Periodic) Stop() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	return p.timer.Stop()
}
