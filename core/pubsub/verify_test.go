package pubsub

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lukechampine.com/blake3"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/sim"
)

// gateVerifier wraps a verifier: each Verify reports on entered and waits
// for release (if set), and the calls and the most running at once are
// counted.
type gateVerifier struct {
	inner   Verifier
	entered chan struct{}
	release chan struct{}
	calls   atomic.Int64
	inside  atomic.Int64
	peak    atomic.Int64
}

func (g *gateVerifier) Verify(origin identity.AgentID, header, sig []byte) error {
	g.calls.Add(1)
	n := g.inside.Add(1)
	defer g.inside.Add(-1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	if g.entered != nil {
		g.entered <- struct{}{}
	}
	if g.release != nil {
		<-g.release
	}
	return g.inner.Verify(origin, header, sig)
}

// gated builds two subscribed nodes whose second checks signatures through
// a gateVerifier, and returns a GOSSIP frame factory signed by the first.
func gated(t *testing.T, g *gateVerifier) (c *tcluster, victim *tnode, sender identity.PeerID, gossip func(n int, topic string) *Frame) {
	c = &tcluster{t: t, w: sim.NewWorld(sim.Config{Seed: 9}), known: map[identity.AgentID]bool{}, keys: StaticKeys{}}
	t.Cleanup(c.close)
	c.add()
	c.tune = func(cfg *Config) {
		g.inner = cfg.Verifier
		cfg.Verifier = g
	}
	victim = c.add()
	c.subscribe(c.nodes[0], "v")
	// A channel subscription: deliveries come from several goroutines.
	if _, err := victim.ps.Subscribe("v"); err != nil {
		t.Fatal(err)
	}
	c.run(5 * time.Second)
	origin := c.nodes[0].agent
	gossip = func(n int, topic string) *Frame {
		payload := fmt.Appendf(nil, "m%d", n)
		h := Header{Topic: TopicIDOf(topic), Origin: origin, Seq: uint64(1000 + n), Time: c.w.Clock.Now().UnixMilli(), PayloadHash: blake3.Sum256(payload)}
		hb, err := h.bytes()
		if err != nil {
			t.Fatal(err)
		}
		return &Frame{Kind: kindGossip, Topic: h.Topic, Msg: &Signed{Header: h, Payload: payload, Sig: SimulatedSigner{ID: origin}.Sign(hb)}, Hops: 1}
	}
	return c, victim, c.nodes[0].net.LocalID(), gossip
}

// TestSignaturesVerifiedOutsideTheLock: while a signature check runs, the
// pub/sub engine stays available (its lock is free) and other frames'
// checks run at the same time.
func TestSignaturesVerifiedOutsideTheLock(t *testing.T) {
	g := &gateVerifier{entered: make(chan struct{}, 4), release: make(chan struct{})}
	_, victim, sender, gossip := gated(t, g)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { victim.ps.onDecoded(sender, gossip(i, "v"), 100, nil) })
	}
	for range 2 {
		select {
		case <-g.entered:
		case <-time.After(10 * time.Second):
			close(g.release)
			t.Fatal("the second check did not start while the first was running: checks are serialised")
		}
	}
	done := make(chan struct{})
	go func() { victim.ps.Stats(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		close(g.release)
		t.Fatal("the pub/sub lock is held during signature checks")
	}
	close(g.release)
	wg.Wait()
	if p := g.peak.Load(); p != 2 {
		t.Errorf("at most %d checks ran at once, want 2", p)
	}
	if st := victim.ps.Stats(); st.Delivered != 2 || st.CheckedUnderLock != 0 {
		t.Errorf("delivered %d, checked under the lock %d; want 2, 0", st.Delivered, st.CheckedUnderLock)
	}
}

// TestDuplicatesAndOtherTopicsAreNotVerified: a copy of a message already
// delivered, or a message of a topic the node does not subscribe to, costs
// no signature check.
func TestDuplicatesAndOtherTopicsAreNotVerified(t *testing.T) {
	g := &gateVerifier{}
	_, victim, sender, gossip := gated(t, g)
	f := gossip(1, "v")
	victim.ps.onDecoded(sender, f, 100, nil)
	if g.calls.Load() != 1 {
		t.Fatalf("%d checks for a new message, want 1", g.calls.Load())
	}
	for range 5 {
		victim.ps.onDecoded(sender, f, 100, nil)
	}
	other := gossip(2, "not-subscribed")
	victim.ps.onDecoded(sender, other, 100, nil)
	victim.ps.onDecoded(sender, &Frame{Kind: kindAEPush, Topic: other.Topic, Msgs: []Signed{*other.Msg, *f.Msg}}, 200, nil)
	if n := g.calls.Load(); n != 1 {
		t.Errorf("%d checks after duplicates and other topics' messages, want 1", n)
	}
	if st := victim.ps.Stats(); st.Duplicates != 5 || st.Delivered != 1 {
		t.Errorf("duplicates %d, delivered %d; want 5, 1", st.Duplicates, st.Delivered)
	}
}
