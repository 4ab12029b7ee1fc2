package membership

import (
	"errors"
	"fmt"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// Message kinds on the membership stream class.
const (
	kindJoin uint8 = iota + 1
	kindForwardJoin
	kindNeighbor
	kindNeighborReply
	kindDisconnect
	kindShuffle
	kindShuffleReply
	kindPing
	kindAck
	kindPingReq
	kindUpdate
	kindNack
	kindHold
	kindMax
)

// Limits on decoded membership messages.
const (
	// MaxNodesPerMessage bounds node lists (shuffles) in one message.
	MaxNodesPerMessage = 64
	// MaxUpdatesPerMessage bounds piggybacked SWIM updates in one message.
	MaxUpdatesPerMessage = 64
	// MaxAddrLen bounds the length of an address string.
	MaxAddrLen = 256
	// MaxTTL bounds random-walk TTLs.
	MaxTTL = 16
)

// ErrMalformed is wrapped by every error Decode returns for bad input.
var ErrMalformed = errors.New("membership: malformed message")

// NodeDesc names a node and where to reach it. Rec, when present, is the
// node's own signed record of Addr (see Records); membership dials a
// descriptor it did not observe itself only if Rec vouches for it.
type NodeDesc struct {
	ID   identity.PeerID `cbor:"1,keyasint"`
	Addr string          `cbor:"2,keyasint"`
	Rec  []byte          `cbor:"3,keyasint,omitempty"`
}

// Update is a SWIM membership change about one node.
type Update struct {
	Node  NodeDesc `cbor:"1,keyasint"`
	State State    `cbor:"2,keyasint"`
	Inc   uint64   `cbor:"3,keyasint"`
	// By names the node whose own probe failed (suspicions only; relays keep
	// it): independent accusers shorten the suspicion timeout (Lifeguard).
	By *identity.PeerID `cbor:"4,keyasint,omitempty"`
}

// Message is the single wire type of the membership protocol. Which fields
// are meaningful depends on Kind. The sender of a message is never a field:
// it is the authenticated peer the frame arrived from.
type Message struct {
	Kind    uint8      `cbor:"1,keyasint"`
	TTL     uint8      `cbor:"2,keyasint,omitempty"`
	Node    *NodeDesc  `cbor:"3,keyasint,omitempty"` // JOIN, NEIGHBOR, NEIGHBORREPLY: sender; FORWARDJOIN: joiner; SHUFFLE: origin; PINGREQ: target
	High    bool       `cbor:"4,keyasint,omitempty"` // NEIGHBOR: high priority
	Accept  bool       `cbor:"5,keyasint,omitempty"` // NEIGHBORREPLY
	Nodes   []NodeDesc `cbor:"6,keyasint,omitempty"`
	Seq     uint64     `cbor:"7,keyasint,omitempty"` // PING / ACK / PINGREQ / NACK
	Updates []Update   `cbor:"8,keyasint,omitempty"`
	Hold    bool       `cbor:"9,keyasint,omitempty"` // HOLD: the sender relies on this connection (false: no longer)
}

// Encode returns the deterministic CBOR encoding of m.
func Encode(m *Message) ([]byte, error) { return wire.Marshal(m) }

// Decode parses and validates a membership frame. Errors wrap ErrMalformed.
func Decode(b []byte) (*Message, error) {
	var m Message
	if err := wire.UnmarshalLimit(b, &m, "membership message", wire.LimitSmall); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if m.Kind == 0 || m.Kind >= kindMax {
		return nil, fmt.Errorf("%w: unknown kind %d", ErrMalformed, m.Kind)
	}
	if m.TTL > MaxTTL {
		return nil, fmt.Errorf("%w: ttl %d over %d", ErrMalformed, m.TTL, MaxTTL)
	}
	if len(m.Nodes) > MaxNodesPerMessage {
		return nil, fmt.Errorf("%w: %d nodes over %d", ErrMalformed, len(m.Nodes), MaxNodesPerMessage)
	}
	if len(m.Updates) > MaxUpdatesPerMessage {
		return nil, fmt.Errorf("%w: %d updates over %d", ErrMalformed, len(m.Updates), MaxUpdatesPerMessage)
	}
	check := func(d *NodeDesc) error {
		if len(d.Addr) > MaxAddrLen {
			return fmt.Errorf("%w: address of %d bytes", ErrMalformed, len(d.Addr))
		}
		if len(d.Rec) > MaxRecordLen {
			return fmt.Errorf("%w: address record of %d bytes", ErrMalformed, len(d.Rec))
		}
		if d.ID.IsZero() {
			return fmt.Errorf("%w: zero node ID", ErrMalformed)
		}
		return nil
	}
	if m.Node != nil {
		if err := check(m.Node); err != nil {
			return nil, err
		}
	}
	switch m.Kind {
	case kindForwardJoin, kindShuffle, kindPingReq:
		if m.Node == nil {
			return nil, fmt.Errorf("%w: kind %d needs a node", ErrMalformed, m.Kind)
		}
	}
	for i := range m.Nodes {
		if err := check(&m.Nodes[i]); err != nil {
			return nil, err
		}
	}
	for i := range m.Updates {
		if err := check(&m.Updates[i].Node); err != nil {
			return nil, err
		}
		if m.Updates[i].Node.Rec != nil { // SWIM updates name nodes, they do not vouch
			return nil, fmt.Errorf("%w: address record in a SWIM update", ErrMalformed)
		}
		if m.Updates[i].State < StateAlive || m.Updates[i].State > StateDead {
			return nil, fmt.Errorf("%w: state %d", ErrMalformed, m.Updates[i].State)
		}
		if by := m.Updates[i].By; by != nil {
			if m.Updates[i].State != StateSuspect {
				return nil, fmt.Errorf("%w: accuser on a %v update", ErrMalformed, m.Updates[i].State)
			}
			if by.IsZero() {
				return nil, fmt.Errorf("%w: zero accuser ID", ErrMalformed)
			}
		}
	}
	return &m, nil
}
