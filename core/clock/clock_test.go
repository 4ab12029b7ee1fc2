package clock

import (
	"sync"
	"testing"
	"time"
)

// manual is a hand-driven clock for testing Every.
type manual struct {
	mu      sync.Mutex
	pending []func()
}

func (m *manual) Now() time.Time { return time.Time{} }

func (m *manual) AfterFunc(d time.Duration, f func()) Timer {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := &manualTimer{f: f}
	m.pending = append(m.pending, func() {
		if !t.stopped {
			t.fired = true
			f()
		}
	})
	return t
}

type manualTimer struct {
	f              func()
	stopped, fired bool
}

func (t *manualTimer) Stop() bool { was := !t.stopped && !t.fired; t.stopped = true; return was }

func (m *manual) fireNext() bool {
	m.mu.Lock()
	if len(m.pending) == 0 {
		m.mu.Unlock()
		return false
	}
	f := m.pending[0]
	m.pending = m.pending[1:]
	m.mu.Unlock()
	f()
	return true
}

func TestEvery(t *testing.T) {
	c := &manual{}
	n, wrapped := 0, 0
	p := Every(c, time.Second, time.Second, func(f func()) { wrapped++; f() }, func() { n++ })
	for range 3 {
		if !c.fireNext() {
			t.Fatal("no tick scheduled")
		}
	}
	if n != 3 || wrapped != 3 {
		t.Fatalf("n=%d wrapped=%d, want 3", n, wrapped)
	}
	if !p.Stop() {
		t.Fatal("Stop did not cancel a pending tick")
	}
	for c.fireNext() {
	}
	if n != 3 {
		t.Fatalf("ticked after Stop: n=%d", n)
	}
}
