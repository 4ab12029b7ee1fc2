package nat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/transport"
)

// withHooks sets test hooks on a Service's Config (for startPeer).
func withHooks(h *testHooks, tune func(*Config)) func(*Config) {
	return func(cfg *Config) {
		cfg.hooks = h
		if tune != nil {
			tune(cfg)
		}
	}
}

// DCUtR timing: the requester measures the round trip through the
// coordinator, sends the sync and dials after half of it; the target dials
// as the sync arrives. With every message the coordinator passes on delayed
// by d (a slow path: round trip 2d, sync d), both must start dialling at
// about the same moment; dialling at once would put the requester d ahead.
func TestPunchDialsAreSimultaneous(t *testing.T) {
	// Skews measured here are ~3 ms; d is large so that scheduling delays
	// on a loaded machine (-race, other packages' tests) stay far inside
	// d/2, while dialling without the wait (skew d) still fails.
	const d = 400 * time.Millisecond
	c := startPeer(t, 0, "127.0.0.1:0", transport.ServiceCoordinator, withHooks(&testHooks{
		send: func(_ identity.PeerID, m *message) bool {
			if m.Kind == msgOffer || m.Kind == msgResult || m.Kind == msgSync {
				time.Sleep(d)
			}
			return true
		},
	}, nil))
	aDial, bDial := make(chan time.Time, 1), make(chan time.Time, 1)
	dialAt := func(ch chan time.Time) *testHooks {
		return &testHooks{punchDial: func(identity.PeerID) {
			select {
			case ch <- time.Now():
			default: // only the first dial counts
			}
		}}
	}
	a := startPeer(t, 1, "127.0.0.1:0", 0, withHooks(dialAt(aDial), nil))
	b := startPeer(t, 2, "127.0.0.1:0", 0, withHooks(dialAt(bDial), nil))
	a.connect(t, c)
	b.connect(t, c)
	path, err := a.svc.ConnectPath(context.Background(), b.node.LocalID(), "")
	if err != nil {
		t.Fatalf("ConnectPath: %v", err)
	}
	if path.Relayed || path.Attempts != 1 {
		t.Fatalf("path %+v, want direct after one punch", path)
	}
	var ta, tb time.Time
	for _, w := range []struct {
		ch <-chan time.Time
		at *time.Time
	}{{aDial, &ta}, {bDial, &tb}} {
		select {
		case *w.at = <-w.ch:
		case <-time.After(10 * time.Second):
			t.Fatal("a punch dial never started")
		}
	}
	t.Logf("requester dialled %v after the target", ta.Sub(tb))
	if skew := ta.Sub(tb).Abs(); skew >= d/2 {
		t.Fatalf("requester dialled %v after the target (skew %v, path delay %v): the dials were not synchronised",
			ta.Sub(tb), skew, d)
	}
}

// Connect retries a failed punch after a backoff of 100 ms, doubling: the
// coordinator loses the first offers, so the requests they answer time out
// (PunchTimeout), and the attempt after them connects.
func TestConnectRetriesWithBackoff(t *testing.T) {
	const punchTimeout = time.Second
	for _, tc := range []struct {
		lost    int
		backoff []time.Duration // between attempt i+1 failing and attempt i+2
	}{
		{1, []time.Duration{100 * time.Millisecond}},
		{2, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}},
	} {
		t.Run(fmt.Sprintf("%d offers lost", tc.lost), func(t *testing.T) {
			var mu sync.Mutex
			lost := 0
			c := startPeer(t, 0, "127.0.0.1:0", transport.ServiceCoordinator, withHooks(&testHooks{
				send: func(_ identity.PeerID, m *message) bool {
					mu.Lock()
					defer mu.Unlock()
					if m.Kind == msgOffer && lost < tc.lost {
						lost++
						return false
					}
					return true
				},
			}, nil))
			requests := make(chan time.Time, 8)
			a := startPeer(t, 1, "127.0.0.1:0", 0, withHooks(&testHooks{
				send: func(_ identity.PeerID, m *message) bool {
					if m.Kind == msgRequest {
						requests <- time.Now()
					}
					return true
				},
			}, func(cfg *Config) { cfg.PunchTimeout = punchTimeout }))
			b := startPeer(t, 2, "127.0.0.1:0", 0, nil)
			a.connect(t, c)
			b.connect(t, c)
			path, err := a.svc.ConnectPath(context.Background(), b.node.LocalID(), "")
			if err != nil {
				t.Fatalf("ConnectPath: %v", err)
			}
			if path.Relayed || path.Attempts != tc.lost+1 {
				t.Fatalf("path %+v, want direct after %d punch attempts", path, tc.lost+1)
			}
			if st := a.svc.Stats(); st.Requests != uint64(tc.lost+1) || st.PunchesOK != 1 {
				t.Fatalf("stats %+v, want %d requests and one punch", st, tc.lost+1)
			}
			close(requests)
			var at []time.Time
			for r := range requests {
				at = append(at, r)
			}
			for i, backoff := range tc.backoff {
				// Attempt i+1 failed when its request timed out,
				// punchTimeout after it was sent; attempt i+2 waited out
				// the backoff after that.
				gap := at[i+1].Sub(at[i])
				t.Logf("attempt %d asked %v after attempt %d", i+2, gap, i+1)
				if gap < punchTimeout+backoff {
					t.Errorf("attempt %d asked %v after attempt %d: want at least the answer timeout %v + backoff %v",
						i+2, gap, i+1, punchTimeout, backoff)
				}
			}
		})
	}
}

// A coordinator that is busy (its rate limit) may take the next attempt's
// request: Connect retries. One that is not connected to the peer will not
// be by the next attempt: Connect gives up at once.
func TestConnectRetriesOnlyTransientRefusals(t *testing.T) {
	cclk := newManualClock() // the coordinator's rate limit refills when the test says
	c := startPeer(t, 0, "127.0.0.1:0", transport.ServiceCoordinator, func(cfg *Config) {
		cfg.Clock, cfg.RatePerSecond, cfg.RateBurst = cclk, 1, 1
	})
	var mu sync.Mutex
	requests := 0
	a := startPeer(t, 1, "127.0.0.1:0", 0, withHooks(&testHooks{
		send: func(_ identity.PeerID, m *message) bool {
			if m.Kind == msgRequest {
				mu.Lock()
				requests++
				if requests == 3 { // the second attempt's: a token is back
					cclk.advance(time.Second)
				}
				mu.Unlock()
			}
			return true
		},
	}, nil))
	b := startPeer(t, 2, "127.0.0.1:0", 0, nil)
	a.connect(t, c)
	b.connect(t, c)
	// Take the coordinator's one token.
	if m, err := a.svc.request(context.Background(), c.node.LocalID(), b.node.LocalID()); err != nil || m.Kind != msgResult {
		t.Fatalf("request: %+v %v", m, err)
	}
	path, err := a.svc.ConnectPath(context.Background(), b.node.LocalID(), "")
	if err != nil {
		t.Fatalf("ConnectPath: %v", err)
	}
	if path.Relayed || path.Attempts != 2 {
		t.Fatalf("path %+v, want direct on the second attempt", path)
	}
	cclk.advance(time.Minute)
	before := a.svc.Stats().Requests
	_, err = a.svc.ConnectPath(context.Background(), key(7).ID(), "")
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("ConnectPath to a peer the coordinator does not know: %v", err)
	}
	if n := a.svc.Stats().Requests - before; n != 1 {
		t.Fatalf("%d requests for a peer the coordinator does not know, want 1", n)
	}
}

// manualClock is a clock.Clock whose timers fire only when the test fires
// them (those of zero or negative duration at once, on a new goroutine).
// Firing a timer advances Now by its duration.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	c    *manualClock
	d    time.Duration
	f    func()
	done bool // fired or stopped (c.mu)
}

func newManualClock() *manualClock { return &manualClock{now: time.Unix(1e9, 0)} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	t := &manualTimer{c: c, d: d, f: f}
	if d <= 0 {
		t.done = true
		go f()
		return t
	}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	return t
}

func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

// pending lists the timers neither fired nor stopped whose duration is not
// in except.
func (c *manualClock) pending(except ...time.Duration) []*manualTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*manualTimer
	for _, t := range c.timers {
		if !t.done && !slices.Contains(except, t.d) {
			out = append(out, t)
		}
	}
	return out
}

// advance moves Now on by d (firing nothing).
func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fire runs t's callback on the calling goroutine, unless it already ran
// or was stopped.
func (c *manualClock) fire(t *manualTimer) {
	c.mu.Lock()
	if t.done {
		c.mu.Unlock()
		return
	}
	t.done = true
	c.now = c.now.Add(t.d)
	c.mu.Unlock()
	t.f()
}

// A relayed connection is upgraded by punch attempts whose delays double
// from UpgradeMin up to UpgradeMax (on the injected clock, fired by hand:
// no real waiting); the first that succeeds ends them.
func TestUpgradeBackoffDoubles(t *testing.T) {
	const upMin, upMax, punchTimeout = time.Second, 5 * time.Second, time.Minute
	clocks := []*manualClock{nil, newManualClock(), newManualClock()}
	tune := func(i int) func(*Config) {
		return func(cfg *Config) {
			cfg.Clock, cfg.UpgradeMin, cfg.UpgradeMax, cfg.PunchTimeout = clocks[i], upMin, upMax, punchTimeout
		}
	}
	c := startPeer(t, 0, "127.0.0.1:0", transport.ServiceCoordinator|transport.ServiceRelay, nil)
	a := startPeer(t, 1, "127.0.0.1:0", 0, tune(1))
	b := startPeer(t, 2, "127.0.0.1:0", 0, tune(2))
	a.connect(t, c)
	b.connect(t, c)
	setNAT := func(typ Type) {
		for _, p := range []*testPeer{a, b} {
			p.svc.mu.Lock()
			p.svc.result = Result{Type: typ}
			p.svc.mu.Unlock()
		}
	}
	setNAT(TypeEndpointDependent) // punches fail at once, without dialling
	path, err := a.svc.ConnectPath(context.Background(), b.node.LocalID(), "")
	if err != nil || !path.Relayed {
		t.Fatalf("ConnectPath: %+v %v, want relayed", path, err)
	}
	// The side with the lower ID drives the upgrade.
	up, clk := a, clocks[1]
	if al, bl := a.node.LocalID(), b.node.LocalID(); string(bl[:]) < string(al[:]) {
		up, clk = b, clocks[2]
	}
	// The one pending timer that is not a request's answer timeout.
	next := func() *manualTimer {
		t.Helper()
		var tm *manualTimer
		waitFor(t, "an upgrade scheduled", func() bool {
			p := clk.pending(punchTimeout)
			if len(p) > 1 {
				t.Fatalf("%d upgrade timers pending", len(p))
			}
			if len(p) == 1 {
				tm = p[0]
			}
			return tm != nil
		})
		return tm
	}
	want := []time.Duration{upMin, 2 * upMin, 4 * upMin, upMax, upMax}
	for i, w := range want {
		tm := next()
		if tm.d != w {
			t.Fatalf("upgrade attempt %d scheduled after %v, want %v (want delays %v)", i+1, tm.d, w, want)
		}
		failed := up.svc.Stats().PunchesFailed
		clk.fire(tm)
		waitFor(t, "the upgrade attempt", func() bool { return up.svc.Stats().PunchesFailed > failed })
	}
	// Punching can work now: the next attempt upgrades, and no other is
	// scheduled.
	setNAT(TypeEndpointIndependent)
	tm := next()
	if tm.d != upMax {
		t.Fatalf("upgrade scheduled after %v, want %v", tm.d, upMax)
	}
	clk.fire(tm)
	waitFor(t, "the upgrade", func() bool { return up.svc.Stats().Upgrades == 1 })
	if info, _ := a.node.PeerInfo(b.node.LocalID()); info.Relayed {
		t.Fatal("still relayed after the upgrade")
	}
	if p := clk.pending(punchTimeout); len(p) != 0 {
		t.Fatalf("%d upgrade timers pending after the upgrade", len(p))
	}
}
