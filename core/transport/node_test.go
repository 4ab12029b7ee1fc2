package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
)

// checkOrder asserts the per-peer event order: PeerConnected before any
// message or agent change from that peer, and nothing after
// PeerDisconnected until the next PeerConnected.
func checkOrder(t *testing.T, evs []Event) {
	t.Helper()
	up := map[identity.PeerID]bool{}
	for i, e := range evs {
		switch e.Kind {
		case EventPeerConnected:
			if up[e.Peer] {
				t.Fatalf("event %d: second PeerConnected for %s without PeerDisconnected: %v", i, e.Peer.Short(), summarize(evs))
			}
			up[e.Peer] = true
		case EventPeerDisconnected:
			if !up[e.Peer] {
				t.Fatalf("event %d: PeerDisconnected for %s while not connected: %v", i, e.Peer.Short(), summarize(evs))
			}
			up[e.Peer] = false
		case EventDirectMessage, EventAgentsChanged:
			if e.Kind == EventDirectMessage && e.Peer == (identity.PeerID{}) {
				t.Fatalf("event %d: direct message without peer", i)
			}
			if !up[e.Peer] {
				t.Fatalf("event %d: %v from %s while not connected: %v", i, e.Kind, e.Peer.Short(), summarize(evs))
			}
		}
	}
}

func directFrom(evs []Event, from identity.AgentID) [][]byte {
	var out [][]byte
	for _, e := range evs {
		if e.Kind == EventDirectMessage && e.From == from {
			out = append(out, e.Payload)
		}
	}
	return out
}

func TestTwoNodesDirectMessagesBothWays(t *testing.T) {
	a := startNode(t, testConfig(testKey("two", 1)))
	b := startNode(t, testConfig(testKey("two", 2)))
	agentA, agentB := testKey("agent", 1), testKey("agent", 2)
	if _, err := a.AddAgent(agentA); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddAgent(agentB); err != nil {
		t.Fatal(err)
	}
	var pubsubAtB atomic.Int64
	var gotMu sync.Mutex
	var got [][]byte
	b.Handle(link.ProtoPubSub, func(from identity.PeerID, msg []byte) {
		if from != a.LocalID() {
			t.Errorf("pubsub frame attributed to %s", from.Short())
		}
		gotMu.Lock()
		got = append(got, msg)
		gotMu.Unlock()
		pubsubAtB.Add(1)
	})

	ctx := context.Background()
	if err := a.Connect(ctx, b.LocalID(), b.LocalAddr()); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	evA := a.rec.wait(t, "A connected", func(e []Event) bool { return count(e, EventPeerConnected, b.LocalID()) == 1 })
	evB := b.rec.wait(t, "B connected", func(e []Event) bool { return count(e, EventPeerConnected, a.LocalID()) == 1 })
	for _, c := range []struct {
		evs   []Event
		peer  identity.PeerID
		agent identity.AgentID
	}{{evA, b.LocalID(), agentB.ID()}, {evB, a.LocalID(), agentA.ID()}} {
		for _, e := range c.evs {
			if e.Kind == EventPeerConnected && (len(e.Agents) != 1 || e.Agents[0] != c.agent || e.Addr == "") {
				t.Fatalf("PeerConnected %+v: want agents [%s] and an address", e, c.agent.Short())
			}
		}
	}
	if got := a.AgentPeers(agentB.ID()); len(got) != 1 || got[0] != b.LocalID() {
		t.Fatalf("A routes agent B via %v", got)
	}
	if !a.IsConnected(b.LocalID()) || len(b.Peers()) != 1 {
		t.Fatal("peer lists disagree with events")
	}

	// Direct messages both ways, several each, in order.
	for i := range 5 {
		if err := a.SendDirect(ctx, agentA.ID(), agentB.ID(), []byte(fmt.Sprintf("a->b %d", i))); err != nil {
			t.Fatal(err)
		}
		if err := b.SendDirect(ctx, agentB.ID(), agentA.ID(), []byte(fmt.Sprintf("b->a %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	evB = b.rec.wait(t, "5 messages at B", func(e []Event) bool { return len(directFrom(e, agentA.ID())) == 5 })
	evA = a.rec.wait(t, "5 messages at A", func(e []Event) bool { return len(directFrom(e, agentB.ID())) == 5 })
	for i, p := range directFrom(evB, agentA.ID()) {
		if want := fmt.Sprintf("a->b %d", i); string(p) != want {
			t.Fatalf("B got %q, want %q", p, want)
		}
	}
	for i, p := range directFrom(evA, agentB.ID()) {
		if want := fmt.Sprintf("b->a %d", i); string(p) != want {
			t.Fatalf("A got %q, want %q", p, want)
		}
	}
	for _, e := range evB {
		if e.Kind == EventDirectMessage && (e.Peer != a.LocalID() || e.To != agentB.ID()) {
			t.Fatalf("direct message attributed to peer %s agent %s", e.Peer.Short(), e.To.Short())
		}
	}

	// link.Class traffic goes to the handler.
	payload := bytes.Repeat([]byte{0xab}, 100<<10)
	if err := a.Send(b.LocalID(), link.ProtoPubSub, link.PriorityEager, []byte("small")); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(b.LocalID(), link.ProtoPubSub, link.PriorityEager, payload); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pubsub frames", func() bool { return pubsubAtB.Load() == 2 })
	gotMu.Lock()
	if string(got[0]) != "small" || !bytes.Equal(got[1], payload) {
		t.Fatal("pubsub payloads corrupted or reordered")
	}
	gotMu.Unlock()
	if st := b.Stats().Class(link.ClassPubSub); st.FramesIn != 2 || st.BytesIn != uint64(2*frameHeaderSize+5+len(payload)) {
		t.Fatalf("B pubsub stats %+v", st)
	}

	// Errors for bad sends.
	if err := a.SendDirect(ctx, agentB.ID(), agentA.ID(), nil); !errors.Is(err, ErrUnknownAgent) {
		t.Fatalf("send from a foreign agent: %v", err)
	}
	if err := a.SendDirect(ctx, agentA.ID(), testKey("agent", 99).ID(), nil); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("send to an unknown agent: %v", err)
	}
	if err := a.Send(b.LocalID(), link.ProtoTaskSync, link.PriorityLazy, make([]byte, DefaultMaxFrameSize+1)); !errors.Is(err, link.ErrTooLarge) {
		t.Fatalf("oversized send: %v", err)
	}
	if err := a.Send(testKey("x", 1).ID(), link.ProtoTaskSync, link.PriorityLazy, nil); !errors.Is(err, link.ErrNotConnected) {
		t.Fatalf("send to a stranger: %v", err)
	}
	if err := a.Send(b.LocalID(), link.Protocol(9), link.PriorityLazy, nil); !errors.Is(err, link.ErrBadProtocol) {
		t.Fatalf("send on class 9: %v", err)
	}

	// Disconnect: both sides see it, after the messages.
	a.Disconnect(b.LocalID())
	evA = a.rec.wait(t, "A disconnected", func(e []Event) bool { return count(e, EventPeerDisconnected, b.LocalID()) == 1 })
	evB = b.rec.wait(t, "B disconnected", func(e []Event) bool { return count(e, EventPeerDisconnected, a.LocalID()) == 1 })
	checkOrder(t, evA)
	checkOrder(t, evB)
	for _, e := range evA {
		if e.Kind == EventPeerDisconnected && e.Err != nil {
			t.Fatalf("local disconnect reported error %v", e.Err)
		}
	}
	for _, e := range evB {
		if e.Kind == EventPeerDisconnected && !errors.Is(e.Err, ErrPeerClosed) {
			t.Fatalf("remote disconnect reported %v, want ErrPeerClosed", e.Err)
		}
	}
	if a.IsConnected(b.LocalID()) {
		t.Fatal("still connected after Disconnect")
	}
	if st := a.Stats(); st.DialsOK != 1 || st.DirectDelivered != 5 || st.AuthFailures != 0 {
		t.Fatalf("A stats %+v", st)
	}
}

func TestLocalAgentDelivery(t *testing.T) {
	a := startNode(t, testConfig(testKey("local", 1)))
	x, y := testKey("lagent", 1), testKey("lagent", 2)
	for _, k := range []*identity.KeyPair{x, y} {
		if _, err := a.AddAgent(k); err != nil {
			t.Fatal(err)
		}
	}
	msg := []byte("hello self")
	if err := a.SendDirect(context.Background(), x.ID(), y.ID(), msg); err != nil {
		t.Fatal(err)
	}
	msg[0] = 'X' // the event owns a copy
	evs := a.rec.wait(t, "local delivery", func(e []Event) bool { return len(directFrom(e, x.ID())) == 1 })
	if got := directFrom(evs, x.ID())[0]; string(got) != "hello self" {
		t.Fatalf("got %q", got)
	}
	if !a.RemoveAgent(y.ID()) || a.RemoveAgent(y.ID()) {
		t.Fatal("RemoveAgent should succeed once")
	}
	if err := a.SendDirect(context.Background(), x.ID(), y.ID(), msg); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("send to removed agent: %v", err)
	}
}

// QUIC's byte and packet counts cover closed connections too, and count
// more than the frames (headers, acknowledgements, the handshake).
func TestQUICCountersSurviveClose(t *testing.T) {
	a := startNode(t, testConfig(testKey("quic-count", 1)))
	b := startNode(t, testConfig(testKey("quic-count", 2)))
	if err := a.Connect(context.Background(), b.LocalID(), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	open := a.Stats()
	var frames uint64
	for _, c := range open.Classes {
		frames += c.BytesOut
	}
	if open.QUICPacketsSent == 0 || open.QUICBytesSent <= frames {
		t.Fatalf("open connection: %d QUIC bytes in %d packets for %d frame bytes", open.QUICBytesSent, open.QUICPacketsSent, frames)
	}
	a.Disconnect(b.LocalID())
	waitFor(t, "connection closed", func() bool { return a.Stats().ConnectionsOpen == 0 })
	if closed := a.Stats(); closed.QUICBytesSent < open.QUICBytesSent || closed.QUICPacketsSent < open.QUICPacketsSent {
		t.Fatalf("after close: %d bytes, %d packets; before: %d, %d", closed.QUICBytesSent, closed.QUICPacketsSent, open.QUICBytesSent, open.QUICPacketsSent)
	}
}

// LastHeard is zero for a peer that is not connected or has sent nothing,
// and moves to the time of each frame read from it, whatever its protocol
// (a frame with no handler counts too: the peer sent it).
func TestLastHeardFollowsFrames(t *testing.T) {
	a := startNode(t, testConfig(testKey("heard", 1)))
	b := startNode(t, testConfig(testKey("heard", 2)))
	if !b.LastHeard(a.LocalID()).IsZero() {
		t.Fatal("LastHeard of an unconnected peer is not zero")
	}
	if err := a.Connect(context.Background(), b.LocalID(), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b connected", func() bool { return b.IsConnected(a.LocalID()) })
	if !b.LastHeard(a.LocalID()).IsZero() {
		t.Fatal("LastHeard set before any frame was sent")
	}
	var last time.Time
	for _, p := range []link.Protocol{link.ProtoMembership, link.ProtoTaskSync} {
		before := time.Now()
		if err := a.Send(b.LocalID(), p, link.PriorityControl, []byte("x")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "frame heard", func() bool { return b.LastHeard(a.LocalID()).After(before) })
		if h := b.LastHeard(a.LocalID()); !h.After(last) {
			t.Fatalf("LastHeard %v did not move past %v", h, last)
		}
		last = b.LastHeard(a.LocalID())
	}
	if !a.LastHeard(b.LocalID()).IsZero() {
		t.Fatal("a heard frames b never sent")
	}
}

// Handshakes prove machine keys, which anyone can mint: each lands in the
// key cache's cold part, and only the agent keys of the peer's hello (which
// verify its traffic) among the traffic keys. Many throwaway machines can
// then never push out the keys every delivery needs.
func TestHandshakeKeysAreCold(t *testing.T) {
	a := startNode(t, testConfig(testKey("coldkeys", 1)))
	if _, err := a.AddAgent(testKey("coldkeys-agent", 1)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 3 {
		b := startNode(t, testConfig(testKey("coldkeys", 10+i)))
		if _, err := b.AddAgent(testKey("coldkeys-agent", 10+i)); err != nil {
			t.Fatal(err)
		}
		if err := b.Connect(ctx, a.LocalID(), a.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a has the dialler", func() bool { return a.IsConnected(b.LocalID()) })
	}
	if traffic, cold := a.KeyCache().Keys(); traffic != 3 || cold != 3 {
		t.Fatalf("after 3 handshakes the listener caches %d traffic and %d cold keys, want 3 (agents) and 3 (machines)", traffic, cold)
	}
}
