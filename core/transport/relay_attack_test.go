package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
)

// Attacks by a relay on the relayed connections it carries, and its quotas.
// Every test checks delivered direct messages byte for byte against what
// was sent (see checkPayloads): nothing altered, nothing twice, nothing
// missing, in order.

// ---- helpers ----

// sentinel is the payload that closes a batch of tag's messages.
func sentinel(tag string) []byte { return []byte(tag + "/end") }

// seqBatch returns n distinct payloads of size bytes (at least their
// "tag i|" prefix) whose filler depends on tag and i, so that an altered
// byte anywhere makes a payload unequal to every one sent.
func seqBatch(tag string, n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		p := fmt.Appendf(make([]byte, 0, size), "%s %d|", tag, i)
		x := uint32(i)*2654435761 + uint32(len(tag)) + 1
		for len(p) < size {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			p = append(p, byte(x))
		}
		out[i] = p
	}
	return out
}

// sendAll sends msgs in order from src's agent from to agent to.
func sendAll(t *testing.T, src *testNode, from, to *identity.KeyPair, msgs [][]byte) {
	t.Helper()
	for i, m := range msgs {
		if err := src.SendDirect(context.Background(), from.ID(), to.ID(), m); err != nil {
			t.Fatalf("SendDirect %d: %v", i, err)
		}
	}
}

// sealBatch sends tag's sentinel from src's agent from to dst's agent to,
// waits up to limit for dst to deliver it, then grace more so that late
// duplicates are delivered too, and returns dst's events. Direct messages
// travel in order on one stream, so the sentinel arrives after the batch.
func sealBatch(t *testing.T, src, dst *testNode, from, to *identity.KeyPair, tag string, limit, grace time.Duration) []Event {
	t.Helper()
	end := sentinel(tag)
	sendAll(t, src, from, to, [][]byte{end})
	dst.rec.waitWithin(t, limit, tag+" sentinel", func(evs []Event) bool {
		return len(directPayloads(evs, func(p []byte) bool { return bytes.Equal(p, end) })) > 0
	})
	time.Sleep(grace)
	return dst.rec.snapshot()
}

// directPayloads returns the payloads of the direct messages in evs that
// keep accepts (nil: all of them), in order of delivery.
func directPayloads(evs []Event, keep func([]byte) bool) [][]byte {
	var out [][]byte
	for _, e := range evs {
		if e.Kind == EventDirectMessage && (keep == nil || keep(e.Payload)) {
			out = append(out, e.Payload)
		}
	}
	return out
}

// checkPayloads fails unless got is exactly want (distinct payloads): every
// delivered payload was sent byte for byte, none twice, none missing, in
// the order sent.
func checkPayloads(t *testing.T, what string, got, want [][]byte) {
	t.Helper()
	sent := make(map[string]int, len(want))
	for i, w := range want {
		sent[string(w)] = i
	}
	seen := make(map[string]bool, len(got))
	for i, g := range got {
		if _, ok := sent[string(g)]; !ok {
			t.Fatalf("%s: delivered message %d (%d bytes, %q...) is none of the %d expected: altered, forged or stray",
				what, i, len(g), g[:min(len(g), 24)], len(want))
		}
		if seen[string(g)] {
			t.Fatalf("%s: message %d of the batch (%q...) delivered twice", what, sent[string(g)], g[:min(len(g), 24)])
		}
		seen[string(g)] = true
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d of %d messages delivered", what, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: delivery %d is message %d: out of order", what, i, sent[string(got[i])])
		}
	}
}

// relayTap is a relay hook (setTamper) that forwards every packet to its
// real target, records a copy of it and counts the bytes each client had
// admitted, and, while corrupting, flips one byte in the middle of each
// packet (inside the AEAD-protected part of any QUIC packet).
type relayTap struct {
	mu       sync.Mutex
	recorded map[identity.PeerID][][]byte // target -> bodies (source ID || packet) as received
	admitted map[identity.PeerID]int      // client -> bytes charged to its quota
	corrupt  bool
	flipped  int
}

func newRelayTap() *relayTap {
	return &relayTap{recorded: make(map[identity.PeerID][][]byte), admitted: make(map[identity.PeerID]int)}
}

func (tp *relayTap) hook(from, to identity.PeerID, body []byte) (identity.PeerID, [][]byte) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.recorded[to] = append(tp.recorded[to], bytes.Clone(body))
	tp.admitted[from] += len(body)
	if tp.corrupt {
		pkt := body[identity.IDSize:]
		pkt[len(pkt)/2] ^= 0x01
		tp.flipped++
	}
	return to, [][]byte{body}
}

// setCorrupt starts or stops corrupting and returns the number of packets
// corrupted so far.
func (tp *relayTap) setCorrupt(on bool) int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.corrupt = on
	return tp.flipped
}

// packets returns the packets forwarded to target so far.
func (tp *relayTap) packets(target identity.PeerID) [][]byte {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([][]byte(nil), tp.recorded[target]...)
}

// bytesFrom returns the bytes of client's packets the relay admitted.
func (tp *relayTap) bytesFrom(client identity.PeerID) int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.admitted[client]
}

// inject makes relay node tn send body (source ID || QUIC packet) to its
// directly connected peer to as a relayed packet, bypassing its quotas
// and hook: a relay replaying packets whenever it likes.
func (tn *testNode) inject(t *testing.T, to identity.PeerID, body []byte) {
	t.Helper()
	c, err := tn.sendConn(to)
	if err != nil {
		t.Fatalf("inject: %v", err)
	}
	it := sendItem{prio: link.PriorityEager, body: bytes.Clone(body), headLen: frameHeaderSize}
	putFrameHeader(it.head[:], frameRelayPkt, len(body))
	if err := tn.enqueuePeer(c, link.ClassRelay, it); err != nil {
		t.Fatalf("inject: %v", err)
	}
}

// isLongHeader reports whether body (source ID || QUIC packet) carries a
// long-header packet, i.e. one of a handshake (Initial, Handshake, Retry).
func isLongHeader(body []byte) bool {
	return len(body) > identity.IDSize && body[identity.IDSize]&0x80 != 0
}

// skewClock is the real clock shifted forward by advance.
type skewClock struct{ skew atomic.Int64 }

func (c *skewClock) Now() time.Time { return time.Now().Add(time.Duration(c.skew.Load())) }

func (c *skewClock) AfterFunc(d time.Duration, f func()) clock.Timer { return time.AfterFunc(d, f) }

func (c *skewClock) advance(d time.Duration) { c.skew.Add(int64(d)) }

// relayAgents adds a fresh agent to each of a and b.
func relayAgents(t *testing.T, a, b *testNode, domain string) (agentA, agentB *identity.KeyPair) {
	t.Helper()
	agentA, agentB = testKey(domain, 1), testKey(domain, 2)
	if _, err := a.AddAgent(agentA); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddAgent(agentB); err != nil {
		t.Fatal(err)
	}
	return agentA, agentB
}

// connectRelayed connects a to b through r and waits until both ends have
// registered the relayed connection.
func connectRelayed(t *testing.T, r, a, b *testNode) {
	t.Helper()
	if err := a.ConnectRelayed(context.Background(), b.LocalID(), r.LocalID()); err != nil {
		t.Fatalf("ConnectRelayed: %v", err)
	}
	b.rec.waitWithin(t, 5*time.Second, "B: a relayed PeerConnected for A", func(evs []Event) bool {
		return hasRelayedUp(evs, a.LocalID())
	})
}

// checkRelayedUp fails unless each of a and b has its relayed connection
// to the other up, connected once and never disconnected.
func checkRelayedUp(t *testing.T, a, b *testNode) {
	t.Helper()
	for _, n := range []*testNode{a, b} {
		peer := otherOf(n, a, b).LocalID()
		evs := n.rec.snapshot()
		up, down := count(evs, EventPeerConnected, peer), count(evs, EventPeerDisconnected, peer)
		if info, ok := n.PeerInfo(peer); !ok || !info.Relayed || up != 1 || down != 0 {
			t.Fatalf("%s: relayed connection to %s: info %+v (up %v), %d PeerConnected, %d PeerDisconnected",
				n.LocalID().Short(), peer.Short(), info, ok, up, down)
		}
	}
}

// shortIdle makes a dead connection idle out within the test's budget.
const shortIdle = 2 * time.Second

func shortIdleConfig(c *Config) {
	c.IdleTimeout = shortIdle
	c.KeepAlive = shortIdle / 5
}

// ---- tampering ----

// tamperedSession starts a relay with a tap (not tampering yet) and two
// clients with short idle timeouts, connects them through the relay, and
// checks that 20 messages and a sentinel cross it intact; delivered is
// what B received so far.
func tamperedSession(t *testing.T, agentName string) (r, a, b *testNode, tap *relayTap, agentA, agentB *identity.KeyPair, delivered [][]byte) {
	t.Helper()
	r, a, b = relayTrioTuned(t, shortIdleConfig, shortIdleConfig)
	tap = newRelayTap()
	r.setTamper(tap.hook)
	agentA, agentB = relayAgents(t, a, b, agentName)
	connectRelayed(t, r, a, b)
	before := seqBatch("before", 20, 1000)
	sendAll(t, a, agentA, agentB, before)
	evs := sealBatch(t, a, b, agentA, agentB, "before", 5*time.Second, 0)
	delivered = append(before, sentinel("before"))
	checkPayloads(t, "before tampering", directPayloads(evs, nil), delivered)
	return r, a, b, tap, agentA, agentB, delivered
}

// A relay that forwards faithfully until the relayed session is
// authenticated and carrying messages, then flips a byte in every packet
// it forwards, cannot get anything altered delivered nor keep the session
// alive: every corrupted packet fails QUIC's AEAD and is dropped, nothing
// sent after the tampering began is delivered, and both ends declare the
// connection dead by idle timeout. Once the relay behaves again the peers
// connect through it anew.
func TestRelayTamperingAfterHandshakeKillsConnection(t *testing.T) {
	r, a, b, tap, agentA, agentB, want := tamperedSession(t, "tamper-late-agent")

	tap.setCorrupt(true)
	start := time.Now()
	for i, m := range seqBatch("after", 20, 1000) {
		// Queued while the connection is up; a send after it died fails.
		err := a.SendDirect(context.Background(), agentA.ID(), agentB.ID(), m)
		if err != nil && !errors.Is(err, link.ErrNotConnected) && !errors.Is(err, ErrNoRoute) {
			t.Fatalf("SendDirect %d: %v", i, err)
		}
	}
	for _, n := range []*testNode{a, b} {
		peer := otherOf(n, a, b).LocalID()
		evs := n.rec.waitWithin(t, 3*shortIdle, "the relayed connection's end", func(evs []Event) bool {
			return count(evs, EventPeerDisconnected, peer) > 0
		})
		for _, e := range evs {
			var idle *quic.IdleTimeoutError
			if e.Kind == EventPeerDisconnected && e.Peer == peer && (!e.Relayed || !errors.As(e.Err, &idle)) {
				t.Fatalf("%s: the connection to %s ended by %v (relayed %v), want an idle timeout",
					n.LocalID().Short(), peer.Short(), e.Err, e.Relayed)
			}
		}
	}
	if el := time.Since(start); el < shortIdle/2 {
		t.Fatalf("the connection died %v after tampering began, before it could idle out", el)
	}
	checkPayloads(t, "after tampering", directPayloads(b.rec.snapshot(), nil), want)
	if n := tap.setCorrupt(false); n == 0 {
		t.Fatal("no packet was corrupted: the test did not exercise tampering")
	}
	if !r.IsConnected(a.LocalID()) || !r.IsConnected(b.LocalID()) {
		t.Fatal("the relay's own connections died with the relayed one")
	}

	// The same relay, honest again, carries a new session.
	if err := a.ConnectRelayed(context.Background(), b.LocalID(), r.LocalID()); err != nil {
		t.Fatalf("ConnectRelayed after tampering stopped: %v", err)
	}
	again := seqBatch("again", 10, 1000)
	sendAll(t, a, agentA, agentB, again)
	evs := sealBatch(t, a, b, agentA, agentB, "again", 5*time.Second, 0)
	want = append(want, append(again, sentinel("again"))...)
	checkPayloads(t, "after reconnecting", directPayloads(evs, nil), want)
}

// A relay that corrupts every packet for a while and then forwards
// faithfully again only delays the session: nothing is delivered while it
// corrupts, and afterwards QUIC's retransmissions deliver every message
// once, intact and in order, on the same connection.
func TestRelayTransientTamperingIsRepaired(t *testing.T) {
	_, a, b, tap, agentA, agentB, want := tamperedSession(t, "tamper-transient-agent")

	tap.setCorrupt(true)
	during := seqBatch("during", 20, 1000)
	sendAll(t, a, agentA, agentB, during)
	time.Sleep(300 * time.Millisecond) // well below shortIdle
	if got := directPayloads(b.rec.snapshot(), nil); len(got) != len(want) {
		t.Fatalf("%d messages delivered through a relay corrupting every packet", len(got)-len(want))
	}
	if n := tap.setCorrupt(false); n == 0 {
		t.Fatal("no packet was corrupted: the test did not exercise tampering")
	}

	evs := sealBatch(t, a, b, agentA, agentB, "during", 5*time.Second, 100*time.Millisecond)
	want = append(want, append(during, sentinel("during"))...)
	checkPayloads(t, "after tampering stopped", directPayloads(evs, nil), want)
	checkRelayedUp(t, a, b)
}

// ---- replay ----

// A relay that records a relayed session from its first packet and, once
// the session is established, replays every recorded packet (handshake
// and data, both ways) into it, twice, gets nothing delivered twice and no
// second connection. The first replay reaches the live connection, which
// drops the stale handshake packets and the data packets whose numbers it
// has seen; by the second, the target has retired the connection ID the
// ClientHello was sent to and takes it for a new connection attempt,
// which the relay cannot complete. The session carries on unharmed.
func TestRelayDelayedReplayIntoSession(t *testing.T) {
	r, a, b := relayTrio(t, nil)
	tap := newRelayTap()
	r.setTamper(tap.hook)
	agentA, agentB := relayAgents(t, a, b, "replay-late-agent")
	connectRelayed(t, r, a, b)

	first := seqBatch("first", 50, 600)
	sendAll(t, a, agentA, agentB, first)
	evs := sealBatch(t, a, b, agentA, agentB, "first", 5*time.Second, 0)
	want := append(first, sentinel("first"))
	checkPayloads(t, "before the replay", directPayloads(evs, nil), want)

	toB, toA := tap.packets(b.LocalID()), tap.packets(a.LocalID())
	if len(toB) < len(first)/2 || !isLongHeader(toB[0]) || !isLongHeader(toA[0]) {
		t.Fatalf("recorded %d packets to B, %d to A, not starting with the handshake", len(toB), len(toA))
	}
	time.Sleep(200 * time.Millisecond) // delayed: the handshake is long over
	acceptedA, acceptedB := a.Stats().InboundAccepted, b.Stats().InboundAccepted
	inB := b.Stats().Class(link.ClassRelay).FramesIn
	mark := len(tap.packets(a.LocalID()))
	for _, tag := range []string{"second", "third"} {
		for _, p := range toB {
			r.inject(t, b.LocalID(), p)
		}
		for _, p := range toA {
			r.inject(t, a.LocalID(), p)
		}
		// The relay stream is ordered: B has the replay before the batch.
		batch := seqBatch(tag, 50, 600)
		sendAll(t, a, agentA, agentB, batch)
		evs = sealBatch(t, a, b, agentA, agentB, tag, 5*time.Second, 300*time.Millisecond)
		want = append(want, append(batch, sentinel(tag))...)
		checkPayloads(t, "after replaying the session before "+tag, directPayloads(evs, nil), want)
	}
	if got := b.Stats().Class(link.ClassRelay).FramesIn - inB; got < 2*uint64(len(toB)) {
		t.Fatalf("B received %d relayed packets, fewer than the %d replayed", got, 2*len(toB))
	}
	if !slices.ContainsFunc(tap.packets(a.LocalID())[mark:], isLongHeader) {
		t.Fatal("B never answered the replayed ClientHello: the replay did not reach its QUIC stack")
	}
	checkRelayedUp(t, a, b)
	if a.Stats().InboundAccepted != acceptedA || b.Stats().InboundAccepted != acceptedB {
		t.Fatal("the replay produced a new inbound connection")
	}
	if a.Stats().RelayedConns != 1 || b.Stats().RelayedConns != 1 {
		t.Fatalf("relayed connections: %d %d, want 1 each", a.Stats().RelayedConns, b.Stats().RelayedConns)
	}
}

// A relay that replays a recorded session (handshake first) to its target
// after that session has ended starts, at best, a new handshake it cannot
// finish: the target answers the stale ClientHello with fresh keys the
// relay cannot use, so no connection is accepted or authenticated, no
// PeerConnected is emitted and nothing is delivered.
func TestRelayReplayedHandshakeIsRefused(t *testing.T) {
	r, a, b := relayTrio(t, nil)
	tap := newRelayTap()
	r.setTamper(tap.hook)
	agentA, agentB := relayAgents(t, a, b, "replay-handshake-agent")
	connectRelayed(t, r, a, b)
	msgs := seqBatch("recorded", 20, 600)
	sendAll(t, a, agentA, agentB, msgs)
	evs := sealBatch(t, a, b, agentA, agentB, "recorded", 5*time.Second, 0)
	want := append(msgs, sentinel("recorded"))
	checkPayloads(t, "recorded session", directPayloads(evs, nil), want)

	toB := tap.packets(b.LocalID())
	if !isLongHeader(toB[0]) {
		t.Fatal("the recording does not start with the handshake")
	}
	a.Disconnect(b.LocalID())
	for _, n := range []*testNode{a, b} {
		peer := otherOf(n, a, b).LocalID()
		n.rec.waitWithin(t, 5*time.Second, "the recorded session's end", func(evs []Event) bool {
			return count(evs, EventPeerDisconnected, peer) == 1
		})
	}
	// Let B forget the closed connection's IDs (kept for 3 PTOs), so that
	// the replayed Initial reads as a new connection attempt.
	time.Sleep(300 * time.Millisecond)

	before := b.Stats()
	beforeA := a.Stats()
	answered := len(tap.packets(a.LocalID()))
	for _, p := range toB {
		r.inject(t, b.LocalID(), p)
	}
	waitFor(t, "B's answer to the replayed ClientHello", func() bool {
		return slices.ContainsFunc(tap.packets(a.LocalID())[answered:], isLongHeader)
	})
	time.Sleep(time.Second) // ample for a loopback handshake to complete

	after := b.Stats()
	if after.InboundAccepted != before.InboundAccepted || after.RelayedConns != before.RelayedConns ||
		a.Stats().InboundAccepted != beforeA.InboundAccepted {
		t.Fatalf("the replayed handshake completed: inbound %d -> %d, relayed %d -> %d",
			before.InboundAccepted, after.InboundAccepted, before.RelayedConns, after.RelayedConns)
	}
	for _, n := range []*testNode{a, b} {
		peer := otherOf(n, a, b).LocalID()
		if up := count(n.rec.snapshot(), EventPeerConnected, peer); up != 1 || n.IsConnected(peer) {
			t.Fatalf("%s: %d PeerConnected for %s (connected %v) after the replay, want the original one only",
				n.LocalID().Short(), up, peer.Short(), n.IsConnected(peer))
		}
	}
	checkPayloads(t, "after the replay", directPayloads(b.rec.snapshot(), nil), want)
}

// ---- quotas ----

// A contact's relayed connection is not capped like libp2p's circuit v2
// (128 KiB, 2 minutes): with the default limits the relay carries 1.5 MiB
// on one connection, intact, and keeps forwarding after its clock has
// moved 10 minutes on (past the 2 min CircuitIdle, which only expires
// idle circuits).
func TestRelayNoCircuitCap(t *testing.T) {
	clk := &skewClock{}
	r, a, b := relayTrio(t, func(c *Config) { c.Clock = clk })
	agentA, agentB := relayAgents(t, a, b, "relay-bulk-agent")
	connectRelayed(t, r, a, b)

	const size, n = 16 << 10, 48 // 768 KiB per batch
	first := seqBatch("bulk1", n, size)
	sendAll(t, a, agentA, agentB, first)
	evs := sealBatch(t, a, b, agentA, agentB, "bulk1", 10*time.Second, 0)
	want := append(first, sentinel("bulk1"))
	checkPayloads(t, "first batch", directPayloads(evs, nil), want)

	clk.advance(10 * time.Minute)
	second := seqBatch("bulk2", n, size)
	sendAll(t, a, agentA, agentB, second)
	evs = sealBatch(t, a, b, agentA, agentB, "bulk2", 10*time.Second, 0)
	want = append(want, append(second, sentinel("bulk2"))...)
	checkPayloads(t, "second batch, 10 minutes later", directPayloads(evs, nil), want)

	checkRelayedUp(t, a, b)
	if s := r.Stats(); s.RelayBytes < 2*n*size || s.RelayRefused != 0 {
		t.Fatalf("relay forwarded %d bytes (want at least %d), refused %d packets", s.RelayBytes, 2*n*size, s.RelayRefused)
	}
}

// The relay enforces a client's sustained byte rate, not only its burst:
// over the whole run the bytes it admitted from A stay within Burst plus
// BytesPerSecond times the elapsed time (the token bucket's bound) and it
// drops what is over, while a transfer six times the burst still
// completes, intact: the rate throttles a client, it does not cut it off.
func TestRelaySustainedRate(t *testing.T) {
	const burst, rate = 64 << 10, 256 << 10
	r, a, b := relayTrio(t, func(c *Config) { c.Relay.Burst, c.Relay.BytesPerSecond = burst, rate })
	tap := newRelayTap()
	r.setTamper(tap.hook)
	agentA, agentB := relayAgents(t, a, b, "relay-rate-agent")
	start := time.Now() // before A's first packet fills its bucket
	connectRelayed(t, r, a, b)

	bulk := seqBatch("rate", 24, 16<<10) // 384 KiB: 6 bursts
	sendAll(t, a, agentA, agentB, bulk)
	evs := sealBatch(t, a, b, agentA, agentB, "rate", 10*time.Second, 0)
	checkPayloads(t, "rate-limited transfer", directPayloads(evs, nil), append(bulk, sentinel("rate")))

	el := time.Since(start)
	sent, limit := tap.bytesFrom(a.LocalID()), burst+int(rate*el.Seconds())
	t.Logf("A: %d bytes admitted in %v (%.0f KiB/s), limit %d; %d packets refused",
		sent, el, float64(sent)/1024/el.Seconds(), limit, r.Stats().RelayRefused)
	if sent > limit {
		t.Fatalf("relay admitted %d bytes from A in %v, over burst + rate x time = %d", sent, el, limit)
	}
	if r.Stats().RelayRefused == 0 {
		t.Fatal("the relay refused nothing: the rate was never reached")
	}
}

// admit, driven by a virtual clock, gives a client exactly its burst at
// once and then exactly BytesPerSecond, and a circuit in constant use
// outlives CircuitIdle (it bounds idleness, not lifetime) while it holds
// the client's only peer slot.
func TestRelayServerRateAndCircuitLifetime(t *testing.T) {
	const pkt, burst, rate = 1000, 10_000, 2_000
	s := newRelayServer(RelayLimits{MaxPeersPerClient: 1, BytesPerSecond: rate, Burst: burst, CircuitIdle: 2 * time.Minute}, 0)
	client, target, other := testKey("admit", 1).ID(), testKey("admit", 2).ID(), testKey("admit", 3).ID()
	now := time.Unix(1_000_000, 0)
	took := 0
	for s.admit(now, client, netip.Addr{}, target, pkt, nil) == 0 {
		took += pkt
	}
	if took != burst {
		t.Fatalf("burst: admitted %d bytes at once, want %d", took, burst)
	}
	// One hour of offering 25 times the rate: exactly the rate gets
	// through, and the busy circuit keeps the only slot throughout.
	const span = time.Hour
	took = 0
	for el := time.Duration(0); el < span; el += 100 * time.Millisecond {
		now = now.Add(100 * time.Millisecond)
		for range 5 {
			if s.admit(now, client, netip.Addr{}, target, pkt, nil) == 0 {
				took += pkt
			}
		}
		if el%(30*time.Second) == 0 && s.admit(now, client, netip.Addr{}, other, 0, nil) != relayOverQuota {
			t.Fatalf("a second peer was admitted %v into the first circuit's life", el)
		}
	}
	if want := int(rate * span.Seconds()); took < want-pkt || took > want+pkt {
		t.Fatalf("sustained: admitted %d bytes in %v, want %d +- %d", took, span, want, pkt)
	}
	// Idle past CircuitIdle, the circuit frees the slot.
	now = now.Add(2*time.Minute + time.Second)
	if code := s.admit(now, client, netip.Addr{}, other, pkt, nil); code != 0 {
		t.Fatalf("a new peer after the circuit idled out: code %d", code)
	}
}
