package pubsub

import (
	"context"
	"errors"
	"io"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/membership"
)

// Overlay is the Go facade over the gossip overlay of one node: global
// membership (HyParView + SWIM) and topics (Plumtree) on one network. The
// public x0x API wires it to the QUIC transport; tests and the simulator
// wire it to core/sim.
type Overlay struct {
	// Members is the membership layer (views, SWIM states, events).
	Members *membership.Membership
	// PubSub is the topic layer.
	PubSub *PubSub
}

// OverlayConfig configures both layers. Clock and Rand are shared (and
// override the ones in the sub-configs); Signer and Verifier go to pub/sub,
// Records (address records) to membership.
type OverlayConfig struct {
	Clock      clock.Clock
	Rand       io.Reader
	Signer     Signer
	Verifier   Verifier
	Records    membership.Records
	Membership membership.Config
	PubSub     Config
}

// NewOverlay starts membership and pub/sub on net. Call Join to enter the
// network and Close to stop.
func NewOverlay(net link.Network, cfg OverlayConfig) (*Overlay, error) {
	if cfg.Clock == nil || cfg.Rand == nil {
		return nil, errors.New("pubsub: NewOverlay needs a clock and a random source")
	}
	mc := cfg.Membership
	mc.Clock, mc.Rand = cfg.Clock, cfg.Rand
	if cfg.Records != nil {
		mc.Records = cfg.Records
	}
	mem, err := membership.New(net, mc)
	if err != nil {
		return nil, err
	}
	pc := cfg.PubSub
	pc.Clock, pc.Rand = cfg.Clock, cfg.Rand
	if cfg.Signer != nil {
		pc.Signer = cfg.Signer
	}
	if cfg.Verifier != nil {
		pc.Verifier = cfg.Verifier
	}
	ps, err := New(net, mem, pc)
	if err != nil {
		mem.Close()
		return nil, err
	}
	return &Overlay{Members: mem, PubSub: ps}, nil
}

// Join enters the network through the first reachable bootstrap peer
// (membership.ErrNoBootstrap if none answers).
func (o *Overlay) Join(ctx context.Context, bootstrap []membership.NodeDesc) error {
	return o.Members.Join(ctx, bootstrap)
}

// Subscribe returns a stream of the topic's messages (see PubSub.Subscribe).
func (o *Overlay) Subscribe(topic string) (*Subscription, error) { return o.PubSub.Subscribe(topic) }

// Publish signs and sends payload to topic (see PubSub.Publish).
func (o *Overlay) Publish(topic string, payload []byte) (MsgID, error) {
	return o.PubSub.Publish(topic, payload)
}

// WatchMembership adds a listener for membership events.
func (o *Overlay) WatchMembership(f func(membership.Event)) { o.Members.Watch(f) }

// WatchTopics adds a listener for topic-neighbour events.
func (o *Overlay) WatchTopics(f func(Event)) { o.PubSub.Watch(f) }

// Close stops pub/sub, then membership (which says DISCONNECT to its neighbours).
func (o *Overlay) Close() {
	o.PubSub.Close()
	o.Members.Close()
}
