package transport

import (
	"fmt"
	"net/netip"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// role is a side of a connection; it is signed into the auth proof so that a
// peer's proof cannot be reflected back to it.
type role uint8

const (
	roleDialler  role = 1
	roleListener role = 2
)

func (r role) String() string {
	switch r {
	case roleDialler:
		return "dialler"
	case roleListener:
		return "listener"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// instanceSize is the size of a node instance nonce.
const instanceSize = 16

// authMsg is the first frame each side sends on the control stream: its
// ML-DSA-65 machine key, its role, both PeerIDs and a signature binding them
// to this TLS session (see auth.go). To is zero only when a dialler does not
// know whom it is dialling (ConnectAddr). Instance is a random nonce drawn
// once per Listen: two connections from the same instance are duplicates,
// a new instance means the peer restarted.
type authMsg struct {
	Key      []byte `cbor:"1,keyasint"`
	Role     uint8  `cbor:"2,keyasint"`
	From     []byte `cbor:"3,keyasint"`
	To       []byte `cbor:"4,keyasint"`
	Sig      []byte `cbor:"5,keyasint"`
	Instance []byte `cbor:"6,keyasint"`
}

// decodeAuth parses an auth frame body and checks its structure (sizes,
// role). Errors wrap ErrMalformed; signatures are checked by verifyAuth.
func decodeAuth(b []byte) (*authMsg, error) {
	var m authMsg
	if err := wire.UnmarshalLimit(b, &m, "auth message", wire.LimitSmall); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	switch {
	case len(m.Key) != identity.PublicKeySize:
		return nil, fmt.Errorf("%w: auth key is %d bytes", ErrMalformed, len(m.Key))
	case len(m.Sig) != identity.SignatureSize:
		return nil, fmt.Errorf("%w: auth signature is %d bytes", ErrMalformed, len(m.Sig))
	case len(m.From) != identity.IDSize || len(m.To) != identity.IDSize:
		return nil, fmt.Errorf("%w: auth IDs must be %d bytes", ErrMalformed, identity.IDSize)
	case len(m.Instance) != instanceSize:
		return nil, fmt.Errorf("%w: auth instance nonce is %d bytes", ErrMalformed, len(m.Instance))
	case role(m.Role) != roleDialler && role(m.Role) != roleListener:
		return nil, fmt.Errorf("%w: auth role %d", ErrMalformed, m.Role)
	}
	return &m, nil
}

// agentsMsg announces the agents a machine carries. Full replaces the whole
// set (the hello after authentication, or a resync); otherwise Add and
// Remove are applied to the current set.
type agentsMsg struct {
	Full   bool                 `cbor:"1,keyasint"`
	Add    []identity.AgentCert `cbor:"2,keyasint"`
	Remove [][]byte             `cbor:"3,keyasint"`
}

// decodeAgents parses an agents frame body. maxItems bounds Add and Remove.
// Errors wrap ErrMalformed; each certificate is verified by the caller.
func decodeAgents(b []byte, maxItems int) (*agentsMsg, error) {
	var m agentsMsg
	if err := wire.UnmarshalLimit(b, &m, "agents message", wire.LimitMedium); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(m.Add) > maxItems || len(m.Remove) > maxItems {
		return nil, fmt.Errorf("%w: agents message lists %d additions and %d removals, limit %d",
			ErrMalformed, len(m.Add), len(m.Remove), maxItems)
	}
	if m.Full && len(m.Remove) != 0 {
		return nil, fmt.Errorf("%w: full agents message with removals", ErrMalformed)
	}
	for _, r := range m.Remove {
		if len(r) != identity.IDSize {
			return nil, fmt.Errorf("%w: removed agent ID is %d bytes", ErrMalformed, len(r))
		}
	}
	return &m, nil
}

// addrReport tells the peer the address its packets come from, as this side
// sees it; peers use it to learn their external address.
// It also states the services the sender offers. On a relayed connection
// Observed is empty: the relay path has no address to report.
type addrReport struct {
	Observed string `cbor:"1,keyasint"`
	Services uint8  `cbor:"2,keyasint,omitempty"`
}

// decodeAddr parses an address frame body. The address must be empty or a
// literal ip:port; unknown service bits are ignored. Errors wrap
// ErrMalformed.
func decodeAddr(b []byte) (netip.AddrPort, Services, error) {
	var m addrReport
	if err := wire.UnmarshalLimit(b, &m, "address report", wire.LimitSmall); err != nil {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	services := Services(m.Services) & allServices
	if m.Observed == "" {
		return netip.AddrPort{}, services, nil
	}
	ap, err := netip.ParseAddrPort(m.Observed)
	if err != nil || ap.Port() == 0 || !ap.Addr().IsValid() {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: observed address %q", ErrMalformed, m.Observed)
	}
	return ap, services, nil
}

// Direct message frame body: from AgentID (32) || to AgentID (32) || payload.
// A fixed layout avoids re-encoding large payloads.

// putDirectIDs writes the two agent IDs into b[:64].
func putDirectIDs(b []byte, from, to identity.AgentID) {
	copy(b[:32], from[:])
	copy(b[32:directIDsSize], to[:])
}

// decodeDirect splits a direct frame body. The payload aliases b.
func decodeDirect(b []byte) (from, to identity.AgentID, payload []byte, err error) {
	if len(b) < directIDsSize {
		return from, to, nil, fmt.Errorf("%w: direct message of %d bytes is shorter than its header", ErrMalformed, len(b))
	}
	copy(from[:], b[:32])
	copy(to[:], b[32:directIDsSize])
	return from, to, b[directIDsSize:], nil
}
