package pubsub

import (
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/sim"
)

// Per-origin flood control (issue 10, attack 9), on the simulator: one
// origin publishes far beyond its rate; every other node accepts (and
// forwards) at most the origin's burst plus its rate over the elapsed
// time, and counts the rest.
func TestOriginFloodIsCapped(t *testing.T) {
	c := newTCluster(t, 8, sim.Config{Seed: 11}, false)
	for _, tn := range c.nodes {
		c.subscribe(tn, "flood")
	}
	c.w.Clock.RunFor(5 * time.Second)
	const sent = 3000
	flooder := c.nodes[0]
	start := c.w.Clock.Now()
	for i := range sent {
		c.publish(flooder, "flood", []byte{byte(i), byte(i >> 8)})
	}
	// Within the flood (anti-entropy later pulls the rest, at the rate).
	c.w.Clock.RunFor(400 * time.Millisecond)
	elapsed := c.w.Clock.Now().Sub(start).Seconds()
	bound := int(float64(DefaultOriginBurst) + DefaultOriginRate*elapsed)
	var limited uint64
	for _, tn := range c.nodes[1:] {
		if got := len(tn.got); got > bound || got < DefaultOriginBurst {
			t.Fatalf("node %d accepted %d of %d messages of one origin, want %d..%d", tn.net.Index(), got, sent, DefaultOriginBurst, bound)
		}
		limited += tn.ps.Stats().RateLimited
	}
	if bound >= sent || limited < uint64(sent-bound) {
		t.Fatalf("%d messages counted as rate-limited, want at least %d", limited, sent-bound)
	}
}

// The per-topic store keeps at most StoreBytes of messages (payload,
// signature, header), evicting the oldest messages first (issue 10, attack
// 9: stores bounded by bytes).
func TestStoreIsBoundedByBytes(t *testing.T) {
	c := &tcluster{t: t, w: sim.NewWorld(sim.Config{Seed: 12}), known: map[identity.AgentID]bool{}, keys: StaticKeys{},
		tune: func(cfg *Config) { cfg.StoreBytes = 64 << 10 }}
	t.Cleanup(c.close)
	tn := c.add()
	c.subscribe(tn, "big")
	payload := make([]byte, 10<<10)
	for i := range 20 {
		payload[0] = byte(i)
		c.publish(tn, "big", payload)
	}
	tn.ps.mu.Lock()
	top := tn.ps.topics[TopicIDOf("big")]
	held, n := top.storeB, len(top.order)
	tn.ps.mu.Unlock()
	if held > 64<<10 || n != 6 {
		t.Fatalf("store holds %d messages, %d bytes; want 6 within 64 KiB", n, held)
	}
	if got := tn.ps.Stats().StoreEvicted; got != 14 {
		t.Fatalf("%d evicted early, want 14", got)
	}
}
