package nat

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// Message kinds of link.ProtoNAT.
const (
	msgRequest = 1 // A to C: punch Peer (B) for me; Addrs are A's LAN candidates
	msgOffer   = 2 // C to B: Peer (A) wants to punch; Addrs are its candidates
	msgAnswer  = 3 // B to C: my LAN candidates, for the request Nonce
	msgResult  = 4 // C to A: Peer (B)'s candidates
	msgRefusal = 5 // C to A: cannot coordinate with Peer (Code says why)
	msgSync    = 6 // A to C to B: dial now (Peer is B, then A)
)

// Refusal codes.
const (
	refuseNoTarget  = 1 // the coordinator is not directly connected to the peer
	refuseBusy      = 2 // rate limit or pending table full
	refuseNotCoord  = 3 // the node does not coordinate
	refuseBadTarget = 4 // the target is the requester or the coordinator
)

// Bounds on a message, checked before and after decoding.
const (
	nonceSize     = 16
	MaxCandidates = 8   // addresses per message
	maxAddrLen    = 64  // bytes per address string
	maxMsgBytes   = 768 // a whole encoded message
)

// ErrMalformed means a NAT message did not decode or broke a bound.
var ErrMalformed = errors.New("nat: malformed message")

// message is the one CBOR shape of every NAT message.
type message struct {
	Kind  uint8    `cbor:"1,keyasint"`
	Nonce []byte   `cbor:"2,keyasint"`
	Peer  []byte   `cbor:"3,keyasint,omitempty"`
	Addrs []string `cbor:"4,keyasint,omitempty"`
	NAT   uint8    `cbor:"5,keyasint,omitempty"` // the sender's (or the named peer's) Type
	Code  uint8    `cbor:"6,keyasint,omitempty"`
	Relay bool     `cbor:"7,keyasint,omitempty"` // result/refusal: the coordinator relays
}

// decodeMessage parses and checks a NAT message. Errors wrap ErrMalformed.
func decodeMessage(b []byte) (*message, error) {
	if len(b) > maxMsgBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	var m message
	if err := wire.UnmarshalLimit(b, &m, "nat message", wire.LimitSmall); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	switch {
	case m.Kind < msgRequest || m.Kind > msgSync:
		return nil, fmt.Errorf("%w: kind %d", ErrMalformed, m.Kind)
	case len(m.Nonce) != nonceSize:
		return nil, fmt.Errorf("%w: nonce of %d bytes", ErrMalformed, len(m.Nonce))
	case m.Kind != msgAnswer && len(m.Peer) != identity.IDSize:
		return nil, fmt.Errorf("%w: peer ID of %d bytes", ErrMalformed, len(m.Peer))
	case len(m.Addrs) > MaxCandidates:
		return nil, fmt.Errorf("%w: %d candidates", ErrMalformed, len(m.Addrs))
	case m.NAT > uint8(TypeEndpointDependent):
		return nil, fmt.Errorf("%w: NAT type %d", ErrMalformed, m.NAT)
	}
	for _, a := range m.Addrs {
		if len(a) > maxAddrLen {
			return nil, fmt.Errorf("%w: address of %d bytes", ErrMalformed, len(a))
		}
	}
	return &m, nil
}

func (m *message) peer() identity.PeerID {
	var p identity.PeerID
	copy(p[:], m.Peer)
	return p
}

func (m *message) nonce() [nonceSize]byte {
	var n [nonceSize]byte
	copy(n[:], m.Nonce)
	return n
}

// candidates parses addrs, keeping literal ip:port addresses with a
// non-zero port, at most MaxCandidates, without duplicates. If lanOnly,
// only LAN addresses (see isLAN) are kept.
func candidates(addrs []string, lanOnly bool) []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range addrs {
		ap, err := netip.ParseAddrPort(s)
		if err != nil || ap.Port() == 0 || ap.Addr().IsUnspecified() || ap.Addr().IsMulticast() {
			continue
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if lanOnly && !isLAN(ap.Addr()) {
			continue
		}
		dup := false
		for _, o := range out {
			dup = dup || o == ap
		}
		if !dup {
			out = append(out, ap)
		}
		if len(out) == MaxCandidates {
			break
		}
	}
	return out
}

func addrStrings(aps []netip.AddrPort) []string {
	out := make([]string, len(aps))
	for i, a := range aps {
		out[i] = a.String()
	}
	return out
}
