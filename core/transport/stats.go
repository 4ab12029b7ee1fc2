package transport

import (
	"sync/atomic"

	"github.com/saorsa-labs/x0x-go/core/link"
)

// ClassStats counts the traffic of one stream class.
type ClassStats struct {
	FramesIn, FramesOut uint64
	BytesIn, BytesOut   uint64 // frame bytes including the 5-byte header
	// Dropped counts frames refused because the send queue was full, per
	// priority (index link.PriorityControl, link.PriorityEager, link.PriorityLazy).
	Dropped [link.NumPriorities]uint64
	// NoHandler counts inbound data frames dropped for lack of a handler.
	NoHandler uint64
}

// Stats is a snapshot of a node's counters (all cumulative except
// ConnectionsOpen and PeersConnected). x0x.Agent.Metrics exports them
// as Prometheus metrics (x0x_transport_*).
type Stats struct {
	ConnectionsOpen    int    // QUIC connections open, authenticated or not
	PeersConnected     int    // authenticated peers
	InboundAccepted    uint64 // inbound QUIC connections accepted for authentication
	ConnectionsRefused uint64 // inbound refused by MaxConnections, MaxConnsPerIP or MaxPendingPerIP
	Evicted            uint64 // inbound connections closed by the eviction policy to admit a newcomer
	DialsOK            uint64 // outbound dials that authenticated
	DialsFailed        uint64 // outbound dials that failed (ConnectionFailed events)
	DialsRefused       uint64 // outbound dials refused by MaxPendingDials
	AuthFailures       uint64 // bad, missing or late proofs; identity mismatches
	TLSRefused         uint64 // ClientHellos without X25519MLKEM768, or non-PQ handshakes
	CertsRejected      uint64 // agent certificates that did not verify or exceeded the cap
	DuplicatesClosed   uint64 // connections closed by simultaneous-dial dedup
	Replaced           uint64 // connections replaced by a newer one to the same peer
	Reconnects         uint64 // successful automatic redials of persistent peers
	MalformedFrames    uint64 // unparseable input; each closed its connection
	ProtocolErrors     uint64 // well-formed but forbidden input; each closed its connection
	DirectDelivered    uint64 // direct messages emitted as events
	DirectDropped      uint64 // direct messages from uncertified agents or to unknown agents
	EventsDropped      uint64 // events lost because the Events channel was full
	PunchDials         uint64 // hole-punch dials started (DialDirect, one per address)
	RelayedConns       uint64 // relayed connections that authenticated (either direction)
	RelayForwarded     uint64 // packets this node forwarded as a relay
	RelayBytes         uint64 // packet bytes this node forwarded as a relay
	RelayRefused       uint64 // packets this node refused to relay (quota, unknown target)
	RelayDropped       uint64 // relayed packets dropped on a full queue or a missing relay
	// QUIC's own counts over every connection, open or closed: bytes and
	// packets sent (headers, acknowledgements, handshakes and
	// retransmissions included, UDP/IP headers not), and packets declared
	// lost. A relayed connection's packets are counted again inside the
	// connection to its relay.
	QUICBytesSent, QUICPacketsSent, QUICPacketsLost uint64
	// Classes is indexed by link.Class-1 (membership, pubsub, bulk, direct, nat, relay).
	Classes [link.NumClasses]ClassStats
}

// link.Class returns the counters of class c (zero for an unknown class).
func (s Stats) Class(c link.Class) ClassStats {
	if !c.Valid() {
		return ClassStats{}
	}
	return s.Classes[c.Index()]
}

type classCounters struct {
	framesIn, framesOut atomic.Uint64
	bytesIn, bytesOut   atomic.Uint64
	dropped             [link.NumPriorities]atomic.Uint64
	noHandler           atomic.Uint64
}

// counters holds the node's live counters.
type counters struct {
	inboundAccepted, connsRefused  atomic.Uint64
	evicted                        atomic.Uint64
	dialsOK, dialsFailed           atomic.Uint64
	dialsRefused                   atomic.Uint64
	authFailures, tlsRefused       atomic.Uint64
	certsRejected                  atomic.Uint64
	duplicates, replaced           atomic.Uint64
	reconnects                     atomic.Uint64
	malformed, protocol            atomic.Uint64
	directDelivered, directDropped atomic.Uint64
	eventsDropped                  atomic.Uint64
	punchDials, relayedConns       atomic.Uint64
	relayForwarded, relayBytes     atomic.Uint64
	relayRefused, relayDropped     atomic.Uint64
	classes                        [link.NumClasses]classCounters
	// QUIC counts of closed connections (guarded by Node.mu).
	closedQUIC quicCounts
}

// quicCounts are the QUIC counters Stats sums over connections.
type quicCounts struct{ bytesSent, packetsSent, packetsLost uint64 }

func (q *quicCounts) add(c *conn) {
	st := c.qc.ConnectionStats()
	q.bytesSent += st.BytesSent
	q.packetsSent += st.PacketsSent
	q.packetsLost += st.PacketsLost
}

// Stats returns a snapshot of the node's counters.
func (n *Node) Stats() Stats {
	c := &n.stats
	s := Stats{
		InboundAccepted:    c.inboundAccepted.Load(),
		ConnectionsRefused: c.connsRefused.Load(),
		Evicted:            c.evicted.Load(),
		DialsOK:            c.dialsOK.Load(),
		DialsFailed:        c.dialsFailed.Load(),
		DialsRefused:       c.dialsRefused.Load(),
		AuthFailures:       c.authFailures.Load(),
		TLSRefused:         c.tlsRefused.Load(),
		CertsRejected:      c.certsRejected.Load(),
		DuplicatesClosed:   c.duplicates.Load(),
		Replaced:           c.replaced.Load(),
		Reconnects:         c.reconnects.Load(),
		MalformedFrames:    c.malformed.Load(),
		ProtocolErrors:     c.protocol.Load(),
		DirectDelivered:    c.directDelivered.Load(),
		DirectDropped:      c.directDropped.Load(),
		EventsDropped:      c.eventsDropped.Load(),
		PunchDials:         c.punchDials.Load(),
		RelayedConns:       c.relayedConns.Load(),
		RelayForwarded:     c.relayForwarded.Load(),
		RelayBytes:         c.relayBytes.Load(),
		RelayRefused:       c.relayRefused.Load(),
		RelayDropped:       c.relayDropped.Load(),
	}
	for i := range c.classes {
		cc := &c.classes[i]
		s.Classes[i] = ClassStats{
			FramesIn: cc.framesIn.Load(), FramesOut: cc.framesOut.Load(),
			BytesIn: cc.bytesIn.Load(), BytesOut: cc.bytesOut.Load(),
			NoHandler: cc.noHandler.Load(),
		}
		for p := range cc.dropped {
			s.Classes[i].Dropped[p] = cc.dropped[p].Load()
		}
	}
	n.mu.Lock()
	s.ConnectionsOpen = len(n.conns)
	s.PeersConnected = len(n.peers)
	q := c.closedQUIC
	for oc := range n.conns {
		q.add(oc)
	}
	n.mu.Unlock()
	s.QUICBytesSent, s.QUICPacketsSent, s.QUICPacketsLost = q.bytesSent, q.packetsSent, q.packetsLost
	return s
}
