package x0x

import (
	"fmt"
	"slices"

	"github.com/saorsa-labs/x0x-go/core/membership"
	"github.com/saorsa-labs/x0x-go/core/transport"
)

// EventKind says what an Event reports and which of its fields are set.
type EventKind uint8

// Event kinds.
const (
	// EventPeerConnected: a connection to Peer (at Addr, Relayed if through
	// a relay) authenticated; Agents are the agents it carries.
	EventPeerConnected EventKind = iota + 1
	// EventPeerDisconnected: the connection to Peer closed; Err says why
	// (nil for a local close).
	EventPeerDisconnected
	// EventConnectionFailed: a dial of Peer at Addr failed with Err.
	EventConnectionFailed
	// EventExternalAddressDiscovered: Addr is this node's external address,
	// agreed on by peers at two or more IPs (a new one is reported again;
	// behind a symmetric NAT there is none). It comes with or after the
	// NatTypeDetected event of the same classification.
	EventExternalAddressDiscovered
	// EventAgentsChanged: Peer's set of agents is now Agents.
	EventAgentsChanged
	// EventDirectMessage: agent From on machine Peer sent Payload to the
	// local agent To (see Agent.SendDirect).
	EventDirectMessage
	// EventNatTypeDetected: this node's NAT mapping behaviour is NAT
	// ("none", "endpoint-independent", "endpoint-dependent") and its
	// external address Addr; it is reported again on a change.
	EventNatTypeDetected
	// EventNeighbourUp: Peer (advertising Addr) joined this node's active
	// view of the gossip overlay.
	EventNeighbourUp
	// EventNeighbourDown: Peer left this node's active view.
	EventNeighbourDown
	// EventMemberSuspect: the overlay's failure detector suspects Peer.
	EventMemberSuspect
	// EventMemberDead: the failure detector declared Peer dead.
	EventMemberDead
	// EventGroupInvitation: agent From invited this agent into Group;
	// answer with Agent.AcceptInvitation or Agent.DeclineInvitation
	// (Agent.Invitations lists the pending ones).
	EventGroupInvitation
)

// String returns the kind's name, e.g. "peer-connected".
func (k EventKind) String() string {
	switch k {
	case EventPeerConnected:
		return "peer-connected"
	case EventPeerDisconnected:
		return "peer-disconnected"
	case EventConnectionFailed:
		return "connection-failed"
	case EventExternalAddressDiscovered:
		return "external-address-discovered"
	case EventAgentsChanged:
		return "agents-changed"
	case EventDirectMessage:
		return "direct-message"
	case EventNatTypeDetected:
		return "nat-type-detected"
	case EventNeighbourUp:
		return "neighbour-up"
	case EventNeighbourDown:
		return "neighbour-down"
	case EventMemberSuspect:
		return "member-suspect"
	case EventMemberDead:
		return "member-dead"
	case EventGroupInvitation:
		return "group-invitation"
	}
	return fmt.Sprintf("event-kind(%d)", uint8(k))
}

// Event is something that happened on the agent's node: a connection, an
// agent announcement, a direct message, a NAT classification or a change of
// the gossip overlay's membership. Kind says which fields are set. The
// reader owns Agents and Payload. The events of one connection arrive in
// order (connected, then its direct messages and agent changes, then
// disconnected); overlay membership events come from another source and
// are not ordered with them.
type Event struct {
	Kind    EventKind
	Peer    PeerID    // the peer (machine) concerned; the sending machine of a direct message
	Addr    string    // the peer's address, or this node's external address
	Agents  []AgentID // PeerConnected, AgentsChanged: the peer's certified agents, sorted
	Err     error     // PeerDisconnected, ConnectionFailed: why (matches this package's sentinels)
	From    AgentID   // DirectMessage: the sending agent (certified on Peer); GroupInvitation: the inviter
	To      AgentID   // DirectMessage: the local recipient
	Payload []byte    // DirectMessage: the message
	Relayed bool      // PeerConnected, PeerDisconnected: the connection runs through a relay
	NAT     string    // NatTypeDetected: the mapping behaviour
	Group   GroupID   // GroupInvitation: the group
}

// eventSize is what an Event counts for in a stream's byte budget.
func eventSize(e Event) int { return 64 + len(e.Addr) + len(e.Payload) + len(e.Agents)*len(AgentID{}) }

// cloneEvent copies the slices of e.
func cloneEvent(e Event) Event {
	e.Agents = slices.Clone(e.Agents)
	e.Payload = slices.Clone(e.Payload)
	return e
}

// eventOf converts a transport event; ok is false for kinds this package
// does not report.
func eventOf(ev transport.Event) (Event, bool) {
	var k EventKind
	switch ev.Kind {
	case transport.EventPeerConnected:
		k = EventPeerConnected
	case transport.EventPeerDisconnected:
		k = EventPeerDisconnected
	case transport.EventConnectionFailed:
		k = EventConnectionFailed
	case transport.EventExternalAddressDiscovered:
		k = EventExternalAddressDiscovered
	case transport.EventAgentsChanged:
		k = EventAgentsChanged
	case transport.EventDirectMessage:
		k = EventDirectMessage
	case transport.EventNatTypeDetected:
		k = EventNatTypeDetected
	default:
		return Event{}, false
	}
	return Event{Kind: k, Peer: ev.Peer, Addr: ev.Addr, Agents: ev.Agents, Err: translate(ev.Err),
		From: ev.From, To: ev.To, Payload: ev.Payload, Relayed: ev.Relayed, NAT: ev.NAT}, true
}

// membershipEventOf converts an overlay membership event.
func membershipEventOf(ev membership.Event) (Event, bool) {
	var k EventKind
	switch ev.Kind {
	case membership.NeighborUp:
		k = EventNeighbourUp
	case membership.NeighborDown:
		k = EventNeighbourDown
	case membership.MemberSuspect:
		k = EventMemberSuspect
	case membership.MemberDead:
		k = EventMemberDead
	default:
		return Event{}, false
	}
	return Event{Kind: k, Peer: ev.Peer.ID, Addr: ev.Peer.Addr}, true
}

// Events opens a stream of the agent's events (see Event) from now on:
// events that happened before it was opened are not in it. Every call
// opens an independent stream; close it when done. Errors: ErrClosed,
// *ConfigError (a bad StreamOption).
func (a *Agent) Events(opts ...StreamOption) (*Stream[Event], error) {
	return a.events.open(opts)
}

// pumpEvents moves the node's events to the event streams until the node
// closes its channel (Close waits for it).
func (a *Agent) pumpEvents(ch <-chan transport.Event) {
	defer close(a.pumpDone)
	for ev := range ch {
		if e, ok := eventOf(ev); ok {
			a.events.publish(e)
		}
	}
}
