package x0x

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/membership"
	"github.com/saorsa-labs/x0x-go/core/pubsub"
)

// Overlay types, re-exported for watchers.
type (
	// MembershipEvent is a change of the global overlay's neighbours
	// (membership.NeighborUp, NeighborDown, ...).
	MembershipEvent = membership.Event
	// TopicEvent is a change of a subscribed topic's neighbours
	// (pubsub.TopicNeighborUp / TopicNeighborDown).
	TopicEvent = pubsub.Event
	// MsgID identifies a published message.
	MsgID = pubsub.MsgID
)

// SubscriptionBuffer is the capacity of a Subscription's channel.
const SubscriptionBuffer = 1024

// Message is one topic message delivered to a Subscription. Payload is the
// receiver's own copy.
type Message struct {
	Topic   string
	ID      MsgID
	Origin  AgentID   // the publishing agent (its signature was verified)
	Seq     uint64    // the origin's sequence number
	Time    time.Time // the origin's timestamp
	Payload []byte
	// Hops is the number of overlay hops the message took from its origin
	// (0 for this agent's own): tree deliveries have short paths, messages
	// repaired by IWANT or anti-entropy keep the length of theirs.
	Hops int
}

// Subscription is a stream of one topic's messages. Messages that find C
// full are dropped and counted (Dropped); they are not redelivered.
type Subscription struct {
	// C receives the messages. It is closed by Unsubscribe and by the
	// Agent's Close.
	C <-chan Message

	topic string
	c     chan Message
	agent *Agent
	inner *pubsub.Subscription

	mu      sync.Mutex
	closed  bool
	dropped uint64
}

// Topic returns the subscribed topic's name.
func (s *Subscription) Topic() string { return s.topic }

// Dropped returns how many messages were dropped because C was full.
func (s *Subscription) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Unsubscribe stops the subscription and closes C. It is safe to call more
// than once.
func (s *Subscription) Unsubscribe() {
	s.agent.subMu.Lock()
	delete(s.agent.subs, s)
	s.agent.subMu.Unlock()
	s.mu.Lock()
	inner := s.inner
	s.mu.Unlock()
	if inner != nil {
		inner.Unsubscribe()
	}
	s.close()
}

func (s *Subscription) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.c)
	}
}

func (s *Subscription) deliver(d pubsub.Delivery) {
	m := Message{Topic: s.topic, ID: d.ID, Origin: d.Origin, Seq: d.Seq, Time: d.Time,
		Payload: append([]byte(nil), d.Payload...), Hops: d.Hops}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	select {
	case s.c <- m:
	default:
		s.dropped++
	}
}

// startOverlay builds the gossip overlay on the agent's node.
func (a *Agent) startOverlay(clk clock.Clock, rnd io.Reader) error {
	if rnd == nil {
		rnd = rand.Reader
	}
	a.peerAddrs = make(map[PeerID]string)
	a.held = make(map[PeerID]bool)
	a.node.WatchPeers(func(ev link.PeerEvent) {
		a.addrMu.Lock()
		defer a.addrMu.Unlock()
		if ev.Up && ev.Addr != "" && !ev.Relayed {
			a.peerAddrs[ev.Peer] = ev.Addr
		} else if !ev.Up {
			delete(a.peerAddrs, ev.Peer)
		}
	})
	a.keys = newKeyService(a.nat, clk, a.agent.Public())
	ov, err := pubsub.NewOverlay(a.keys, pubsub.OverlayConfig{
		Clock:    clk,
		Rand:     rnd,
		Signer:   pubsub.AgentSigner{Key: a.agent},
		Verifier: pubsub.NewMLDSAVerifier(a.keys, 0),
		Records:  membership.NewMachineRecords(a.machine, clk),
	})
	if err != nil {
		a.keys.close()
		return fmt.Errorf("x0x: start overlay: %w", err)
	}
	a.overlay = ov
	// A full connection table admits a newcomer in place of the longest
	// established inbound peer the overlay does not rely on (issue 10,
	// attack 5): strangers cannot keep honest newcomers out.
	a.node.SetEvictionPolicy(func(cands []PeerID) (PeerID, bool) {
		for _, p := range cands {
			if !ov.Members.Protected(p) {
				return p, true
			}
		}
		return PeerID{}, false
	})
	a.subs = make(map[*Subscription]struct{})
	ov.WatchTopics(a.onTopicEvent)
	a.node.Handle(link.ProtoTaskSync, a.onTaskSync)
	return nil
}

// keepConnected keeps peer connected at addr (transport.Node.KeepConnected)
// and holds the connection in membership, which would otherwise close it
// after its idle grace if the peer is not an overlay neighbour.
func (a *Agent) keepConnected(peer PeerID, addr string) error {
	a.addrMu.Lock()
	first := !a.held[peer]
	if first {
		a.held[peer] = true
	}
	a.addrMu.Unlock()
	if first {
		a.overlay.Members.Hold(peer)
	}
	return a.node.KeepConnected(peer, addr)
}

// cachedContacts lists connected peers with the address they were reached
// at, as overlay contacts (peers whose address is unknown are skipped).
func (a *Agent) cachedContacts() []membership.NodeDesc {
	a.addrMu.Lock()
	defer a.addrMu.Unlock()
	var out []membership.NodeDesc
	for _, p := range a.node.Peers() {
		if addr := a.peerAddrs[p]; addr != "" {
			out = append(out, membership.NodeDesc{ID: p, Addr: addr})
		}
	}
	return out
}

// joinOverlay makes the connected bootstrap peers HyParView contacts.
func (a *Agent) joinOverlay(ctx context.Context, contacts []membership.NodeDesc) error {
	if len(contacts) == 0 {
		return nil
	}
	return a.overlay.Join(ctx, contacts)
}

// Subscribe joins topic and returns the stream of its messages, each
// verified against its origin's ML-DSA-65 signature. Errors: ErrClosed.
func (a *Agent) Subscribe(topic string) (*Subscription, error) {
	c := make(chan Message, SubscriptionBuffer)
	s := &Subscription{C: c, c: c, topic: topic, agent: a}
	a.subMu.Lock()
	if a.subs == nil {
		a.subMu.Unlock()
		return nil, ErrClosed
	}
	a.subs[s] = struct{}{}
	a.subMu.Unlock()
	inner, err := a.overlay.PubSub.SubscribeFunc(topic, s.deliver)
	if err != nil {
		s.Unsubscribe()
		if errors.Is(err, pubsub.ErrClosed) {
			return nil, ErrClosed
		}
		return nil, err
	}
	s.mu.Lock()
	s.inner = inner
	s.mu.Unlock()
	return s, nil
}

// Publish signs payload as this agent and sends it to topic (the agent
// need not subscribe). It does not wait for delivery: nil means the message
// was accepted and sent to the topic's neighbours. Errors: ErrClosed,
// ErrPayloadTooLarge (over MaxPayload), ctx.Err() if ctx is
// already done. It returns the message's ID. The caller may reuse payload
// afterwards.
func (a *Agent) Publish(ctx context.Context, topic string, payload []byte) (MsgID, error) {
	if err := ctx.Err(); err != nil {
		return MsgID{}, err
	}
	id, err := a.overlay.Publish(topic, append([]byte(nil), payload...))
	if errors.Is(err, pubsub.ErrClosed) {
		return MsgID{}, ErrClosed
	}
	return id, err
}

// WatchMembership adds a listener for changes of the global overlay's
// active view. It runs on a protocol goroutine and must not block.
func (a *Agent) WatchMembership(f func(MembershipEvent)) { a.overlay.WatchMembership(f) }

// WatchTopics adds a listener for changes of subscribed topics'
// neighbours. It runs without locks held and must not block.
func (a *Agent) WatchTopics(f func(TopicEvent)) { a.overlay.WatchTopics(f) }

// OverlayStats returns the pub/sub counters (deliveries and every drop) and
// those of the origin-key resolver.
func (a *Agent) OverlayStats() (pubsub.Stats, KeyStats) {
	return a.overlay.PubSub.Stats(), a.keys.Stats()
}

// MembershipStats returns the overlay membership counters (HyParView and
// SWIM: probes, suspicions, deaths, forged claims dropped, ...).
func (a *Agent) MembershipStats() membership.Stats { return a.overlay.Members.Stats() }

// TopicPeers returns the eager and lazy neighbours of a subscribed topic.
func (a *Agent) TopicPeers(topic string) (eager, lazy []PeerID) {
	return a.overlay.PubSub.TopicPeers(pubsub.TopicIDOf(topic))
}

// closeOverlay stops pub/sub and membership and closes subscriptions.
func (a *Agent) closeOverlay() {
	a.overlay.Close()
	a.keys.close()
	a.subMu.Lock()
	subs := a.subs
	a.subs = nil
	a.subMu.Unlock()
	for s := range subs {
		s.close()
	}
}
