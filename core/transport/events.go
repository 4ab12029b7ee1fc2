package transport

import (
	"fmt"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
)

// EventKind says which fields of an Event are set.
type EventKind uint8

// Event kinds.
const (
	// EventPeerConnected: an authenticated connection to Peer is up. Addr is
	// the peer's address as this node sees it; Agents the agents it carries.
	EventPeerConnected EventKind = iota + 1
	// EventPeerDisconnected: the connection to Peer went down. Err is why
	// (nil when closed locally by Disconnect or Close).
	EventPeerDisconnected
	// EventConnectionFailed: a dial to Addr (expecting Peer, zero if
	// unknown) failed with Err.
	EventConnectionFailed
	// EventExternalAddressDiscovered: Addr is this node's external
	// address: two or more peers at different IPs report seeing it there
	// (core/nat emits it; one peer's report alone never does, so a lying
	// peer cannot make it up). Peer is zero.
	EventExternalAddressDiscovered
	// EventAgentsChanged: Peer's set of agents changed; Agents is the new set.
	EventAgentsChanged
	// EventDirectMessage: agent From on Peer sent Payload to local agent To.
	EventDirectMessage
	// EventNatTypeDetected: this node's NAT mapping behaviour was
	// classified (or changed) as NAT, from the addresses several peers
	// reported; Addr is the external address if one is known. Emitted by
	// core/nat through Notify.
	EventNatTypeDetected
)

// String names the kind.
func (k EventKind) String() string {
	switch k {
	case EventPeerConnected:
		return "PeerConnected"
	case EventPeerDisconnected:
		return "PeerDisconnected"
	case EventConnectionFailed:
		return "ConnectionFailed"
	case EventExternalAddressDiscovered:
		return "ExternalAddressDiscovered"
	case EventAgentsChanged:
		return "AgentsChanged"
	case EventDirectMessage:
		return "DirectMessage"
	case EventNatTypeDetected:
		return "NatTypeDetected"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is something that happened on the node. Which fields are set
// depends on Kind (see the EventKind constants). The receiver owns Agents
// and Payload. Events of one connection arrive in order: connected, then its
// messages and agent changes, then disconnected.
type Event struct {
	Kind    EventKind
	Peer    identity.PeerID    // the peer concerned (the sending machine for DirectMessage)
	Addr    string             // peer address, or the external address for ExternalAddressDiscovered
	Agents  []identity.AgentID // PeerConnected, AgentsChanged: the peer's certified agents, sorted
	Err     error              // PeerDisconnected, ConnectionFailed: why
	From    identity.AgentID   // DirectMessage: the sending agent (certified on Peer)
	To      identity.AgentID   // DirectMessage: the local recipient agent
	Payload []byte             // DirectMessage: the message
	Relayed bool               // PeerConnected, PeerDisconnected: the connection runs through a relay
	NAT     string             // NatTypeDetected: the mapping behaviour (see core/nat)
}

// emit delivers an event to the Events channel (dropping and counting it if
// the channel is full) and, for connection events, to WatchPeers listeners.
// It is serialised so that every consumer sees one order.
func (n *Node) emit(ev Event) {
	n.emitMu.Lock()
	defer n.emitMu.Unlock()
	if n.eventsClosed {
		return
	}
	if ev.Kind == EventPeerConnected || ev.Kind == EventPeerDisconnected {
		pe := link.PeerEvent{Peer: ev.Peer, Addr: ev.Addr, Relayed: ev.Relayed, Up: ev.Kind == EventPeerConnected, Err: ev.Err}
		for _, h := range n.watchers {
			h(pe)
		}
	}
	select {
	case n.events <- ev:
	default:
		n.stats.eventsDropped.Add(1)
	}
}

// Events returns the node's event channel. It is closed after Close has
// stopped every connection. Read it promptly: events that do not fit in
// Config.EventBuffer are dropped and counted (Stats.EventsDropped).
func (n *Node) Events() <-chan Event { return n.events }

// WatchPeers adds a listener for connection events. Listeners run on a
// transport goroutine, in event order, and must not block or call
// WatchPeers.
func (n *Node) WatchPeers(h func(link.PeerEvent)) {
	if h == nil {
		return
	}
	n.emitMu.Lock()
	n.watchers = append(n.watchers, h)
	n.emitMu.Unlock()
}

// Notify posts an event of a kind that a layer above the transport
// produces (EventNatTypeDetected, EventExternalAddressDiscovered) to the
// Events channel, in order with the node's own events. Other kinds are
// ignored: they come only from the transport itself.
func (n *Node) Notify(ev Event) {
	if ev.Kind != EventNatTypeDetected && ev.Kind != EventExternalAddressDiscovered {
		return
	}
	n.emit(ev)
}
