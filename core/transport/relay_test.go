package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
)

// relayTrio starts a relay R and two clients A and B connected to it (but
// not to each other). tune adjusts R's config.
func relayTrio(t *testing.T, tune func(*Config)) (r, a, b *testNode) {
	t.Helper()
	return relayTrioTuned(t, tune, nil)
}

// relayTrioTuned is relayTrio with tuneClients also adjusting A's and B's
// configs.
func relayTrioTuned(t *testing.T, tuneRelay, tuneClients func(*Config)) (r, a, b *testNode) {
	t.Helper()
	rc := testConfig(testKey("relay", 0))
	rc.Services = ServiceRelay | ServiceCoordinator
	if tuneRelay != nil {
		tuneRelay(&rc)
	}
	ac, bc := testConfig(testKey("relay", 1)), testConfig(testKey("relay", 2))
	if tuneClients != nil {
		tuneClients(&ac)
		tuneClients(&bc)
	}
	r = startNode(t, rc)
	a = startNode(t, ac)
	b = startNode(t, bc)
	ctx := context.Background()
	for _, n := range []*testNode{a, b} {
		if err := n.Connect(ctx, r.LocalID(), r.LocalAddr()); err != nil {
			t.Fatalf("connect to relay: %v", err)
		}
	}
	waitFor(t, "relay sees both clients", func() bool { return r.IsConnected(a.LocalID()) && r.IsConnected(b.LocalID()) })
	return r, a, b
}

// directGrace is how long exchangeDirect keeps watching after its sentinel
// arrived, to catch duplicates delivered late.
const directGrace = 50 * time.Millisecond

// exchangeDirect sends n numbered direct messages from src's agent from to
// dst's agent to, then a sentinel, and waits for the sentinel (and
// directGrace more). It fails unless dst delivered exactly the n messages
// and the sentinel, in order, each once and byte for byte: a duplicate of
// any of them, even one arriving after the n-th message, is caught.
func exchangeDirect(t *testing.T, src, dst *testNode, from, to *identity.KeyPair, tag string, n int) {
	t.Helper()
	sent := make([][]byte, n)
	for i := range sent {
		sent[i] = []byte(fmt.Sprintf("%s %d", tag, i))
	}
	sendAll(t, src, from, to, sent)
	evs := sealBatch(t, src, dst, from, to, tag, waitLimit, directGrace)
	got := directPayloads(evs, func(p []byte) bool {
		return bytes.HasPrefix(p, []byte(tag+" ")) || bytes.Equal(p, sentinel(tag))
	})
	checkPayloads(t, tag, got, append(sent, sentinel(tag)))
}

func countPrefix(evs []Event, tag string) int {
	k := 0
	for _, e := range evs {
		if e.Kind == EventDirectMessage && bytes.HasPrefix(e.Payload, []byte(tag+" ")) {
			k++
		}
	}
	return k
}

func TestRelayedConnectionThenDirectUpgrade(t *testing.T) {
	r, a, b := relayTrio(t, nil)
	agentA, agentB := testKey("relay-agent", 1), testKey("relay-agent", 2)
	if _, err := a.AddAgent(agentA); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddAgent(agentB); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.ConnectRelayed(ctx, b.LocalID(), r.LocalID()); err != nil {
		t.Fatalf("ConnectRelayed: %v", err)
	}
	waitFor(t, "B sees A", func() bool { return b.IsConnected(a.LocalID()) })
	for _, side := range []struct {
		n    *testNode
		peer identity.PeerID
	}{{a, b.LocalID()}, {b, a.LocalID()}} {
		info, ok := side.n.PeerInfo(side.peer)
		if !ok || !info.Relayed || info.Via != r.LocalID() || info.Observed.IsValid() {
			t.Fatalf("relayed connection info: %+v %v", info, ok)
		}
	}
	a.rec.wait(t, "A: a relayed PeerConnected for B", func(evs []Event) bool { return hasRelayedUp(evs, b.LocalID()) })
	exchangeDirect(t, a, b, agentA, agentB, "a2b-relayed", 50)
	exchangeDirect(t, b, a, agentB, agentA, "b2a-relayed", 50)
	if s := r.Stats(); s.RelayForwarded == 0 || s.RelayBytes == 0 {
		t.Fatalf("relay forwarded nothing: %+v", s)
	}
	if a.Stats().RelayedConns != 1 || b.Stats().RelayedConns != 1 {
		t.Fatalf("relayed connection counts: %d %d", a.Stats().RelayedConns, b.Stats().RelayedConns)
	}

	// Upgrade: a direct connection takes over silently, and messages sent
	// while it does are all delivered once, in order.
	done := make(chan error, 1)
	go func() {
		for i := range 200 {
			if err := a.SendDirect(ctx, agentA.ID(), agentB.ID(), []byte(fmt.Sprintf("during %d", i))); err != nil {
				done <- err
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
		done <- nil
	}()
	if err := a.DialDirect(ctx, b.LocalID(), []string{b.LocalAddr()}); err != nil {
		t.Fatalf("DialDirect: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("sending during the upgrade: %v", err)
	}
	b.rec.wait(t, "messages sent during the upgrade", func(evs []Event) bool { return countPrefix(evs, "during") >= 200 })
	waitFor(t, "both ends direct", func() bool {
		ia, _ := a.PeerInfo(b.LocalID())
		ib, _ := b.PeerInfo(a.LocalID())
		return !ia.Relayed && !ib.Relayed && ia.Observed.IsValid()
	})
	exchangeDirect(t, a, b, agentA, agentB, "a2b-direct", 20)
	for _, n := range []*testNode{a, b} {
		if k := count(n.rec.snapshot(), EventPeerDisconnected, otherOf(n, a, b).LocalID()); k != 0 {
			t.Fatalf("the upgrade emitted %d PeerDisconnected events", k)
		}
	}
	// The relay can now go away without touching the direct connection.
	r.stop()
	exchangeDirect(t, b, a, agentB, agentA, "b2a-after-relay", 10)
}

func otherOf(n, a, b *testNode) *testNode {
	if n == a {
		return b
	}
	return a
}

func hasRelayedUp(evs []Event, peer identity.PeerID) bool {
	for _, e := range evs {
		if e.Kind == EventPeerConnected && e.Peer == peer && e.Relayed {
			return true
		}
	}
	return false
}

// A relay that flips bits cannot get a connection through: QUIC's AEAD
// drops every altered packet, so the handshake never completes and nothing
// is delivered.
func TestRelayTamperingIsDetected(t *testing.T) {
	r, a, b := relayTrio(t, nil)
	r.setTamper(func(_, to identity.PeerID, body []byte) (identity.PeerID, [][]byte) {
		body[len(body)-1] ^= 0x01
		return to, [][]byte{body}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := a.ConnectRelayed(ctx, b.LocalID(), r.LocalID())
	if err == nil {
		t.Fatal("a connection came up through a tampering relay")
	}
	if a.IsConnected(b.LocalID()) || b.IsConnected(a.LocalID()) {
		t.Fatal("peers connected through a tampering relay")
	}
	if r.Stats().RelayForwarded == 0 {
		t.Fatal("the relay forwarded nothing: the test did not exercise tampering")
	}
}

// A relay that replays every packet (sends it twice) changes nothing:
// duplicates are discarded and each message arrives once.
func TestRelayReplayIsHarmless(t *testing.T) {
	r, a, b := relayTrio(t, nil)
	r.setTamper(func(_, to identity.PeerID, body []byte) (identity.PeerID, [][]byte) {
		return to, [][]byte{body, append([]byte(nil), body...)}
	})
	agentA, agentB := testKey("replay-agent", 1), testKey("replay-agent", 2)
	_, _ = a.AddAgent(agentA)
	_, _ = b.AddAgent(agentB)
	if err := a.ConnectRelayed(context.Background(), b.LocalID(), r.LocalID()); err != nil {
		t.Fatalf("ConnectRelayed: %v", err)
	}
	exchangeDirect(t, a, b, agentA, agentB, "replayed", 100)
}

// A relay that names another source than the real one (to make B believe
// it talks to C) is caught by the ML-DSA proof: B refuses the connection.
func TestRelayMisattributionRefused(t *testing.T) {
	r, a, b := relayTrio(t, nil)
	c := startNode(t, testConfig(testKey("relay", 3)))
	if err := c.Connect(context.Background(), r.LocalID(), r.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the relay sees C", func() bool { return r.IsConnected(c.LocalID()) })
	// The relay labels A's packets to B as coming from C, and routes B's
	// answers to "C" back to A, so the whole exchange goes through.
	fake := c.LocalID()
	r.setTamper(func(from, to identity.PeerID, body []byte) (identity.PeerID, [][]byte) {
		switch {
		case from == a.LocalID() && to == b.LocalID():
			copy(body, fake[:])
		case from == b.LocalID() && to == fake:
			to = a.LocalID()
		}
		return to, [][]byte{body}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := a.ConnectRelayed(ctx, b.LocalID(), r.LocalID()); err == nil {
		t.Fatal("connection through a lying relay succeeded")
	}
	if b.IsConnected(fake) || b.IsConnected(a.LocalID()) {
		t.Fatal("B accepted a misattributed connection")
	}
	waitFor(t, "B counts the failed proof", func() bool { return b.Stats().AuthFailures > 0 })
}

func TestRelayRefusals(t *testing.T) {
	r, a, b := relayTrio(t, func(c *Config) { c.Relay.MaxPeersPerClient = 1 })
	ctx := context.Background()

	// A target the relay is not connected to: refused at once, long before
	// the handshake timeout.
	stranger := testKey("relay", 9).ID()
	start := time.Now()
	err := a.ConnectRelayed(ctx, stranger, r.LocalID())
	var re *RelayError
	if !errors.As(err, &re) || re.Code != relayNoTarget || !errors.Is(err, ErrRelayRefused) {
		t.Fatalf("unknown target: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("refusal took %v", el)
	}

	// Over the per-client peer quota: the first target uses the one slot.
	c := startNode(t, testConfig(testKey("relay", 3)))
	if err := c.Connect(ctx, r.LocalID(), r.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the relay sees C", func() bool { return r.IsConnected(c.LocalID()) })
	if err := a.ConnectRelayed(ctx, b.LocalID(), r.LocalID()); err != nil {
		t.Fatalf("first relayed peer: %v", err)
	}
	err = a.ConnectRelayed(ctx, c.LocalID(), r.LocalID())
	if !errors.As(err, &re) || re.Code != relayOverQuota {
		t.Fatalf("second relayed peer over a quota of 1: %v", err)
	}
	if r.Stats().RelayRefused == 0 {
		t.Fatal("refusals not counted")
	}

	// A node that does not offer relaying is not asked.
	if err := b.Connect(ctx, c.LocalID(), c.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if err := b.ConnectRelayed(ctx, stranger, c.LocalID()); !errors.Is(err, ErrNotRelay) {
		t.Fatalf("relaying through a non-relay: %v", err)
	}
}

func TestRelayByteQuota(t *testing.T) {
	// A burst smaller than the handshake's packets: the relay refuses and
	// the dial fails fast with the quota error.
	r, a, b := relayTrio(t, func(c *Config) { c.Relay.Burst = 1500; c.Relay.BytesPerSecond = 1 })
	err := a.ConnectRelayed(context.Background(), b.LocalID(), r.LocalID())
	var re *RelayError
	if !errors.As(err, &re) || re.Code != relayOverQuota {
		t.Fatalf("byte quota: %v", err)
	}
}

func TestRelayedConnectionDiesWithRelay(t *testing.T) {
	r, a, b := relayTrio(t, nil)
	if err := a.ConnectRelayed(context.Background(), b.LocalID(), r.LocalID()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B sees A", func() bool { return b.IsConnected(a.LocalID()) })
	r.stop()
	evs := a.rec.wait(t, "relayed peer down", func(evs []Event) bool {
		return count(evs, EventPeerDisconnected, b.LocalID()) == 1
	})
	for _, e := range evs {
		if e.Kind == EventPeerDisconnected && e.Peer == b.LocalID() && !errors.Is(e.Err, ErrRelayLost) {
			t.Fatalf("relayed connection closed with %v, want ErrRelayLost", e.Err)
		}
	}
}

// Relay frames sent to a node that does not relay are a protocol
// violation: the connection is closed.
func TestRelayFrameToNonRelayCloses(t *testing.T) {
	n := startNode(t, testConfig(testKey("relay", 5)))
	rc, err := rawDial(t, n.LocalAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.close()
	rc.authenticate(testKey("relay", 6), n.LocalID())
	body := make([]byte, identity.IDSize+100)
	rc.openClass(link.ClassRelay, appendFrame(nil, frameRelayFwd, body))
	if code := rc.waitClosed(); code != codeProtocol {
		t.Fatalf("close code %d, want protocol error", code)
	}
	if n.Stats().ProtocolErrors == 0 {
		t.Fatal("protocol error not counted")
	}
}

func (tn *testNode) setTamper(f tamperFunc) { tn.relayTamper.Store(&f) }
