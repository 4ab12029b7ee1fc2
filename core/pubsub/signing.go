package pubsub

import (
	"errors"
	"fmt"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// Signer signs messages this node publishes, as its agent.
type Signer interface {
	// AgentID is the origin ID put in published headers.
	AgentID() identity.AgentID
	// Sign returns the signature of an encoded header.
	Sign(header []byte) []byte
}

// Verifier checks an origin's signature over an encoded header. It returns
// ErrUnknownSigner when the origin's key is not known, or another error
// (ErrBadSignature) when the signature does not verify.
type Verifier interface {
	Verify(origin identity.AgentID, header, sig []byte) error
}

// KeyResolver returns the public key of an agent from its signed identity
// record. It must not block: a resolver that fetches keys over the network
// returns ErrUnknownSigner at once and fetches in the background (the
// message will come again through anti-entropy once the key is known).
type KeyResolver interface {
	ResolveKey(agent identity.AgentID) (*identity.PublicKey, error)
}

// Errors of message validation.
var (
	ErrUnknownSigner = errors.New("pubsub: unknown signer")
	ErrBadSignature  = errors.New("pubsub: bad origin signature")
)

// AgentSigner signs with an ML-DSA-65 agent key.
type AgentSigner struct{ Key *identity.KeyPair }

// AgentID returns the key's ID.
func (s AgentSigner) AgentID() identity.AgentID { return s.Key.ID() }

// Sign signs header for wire.PurposePubSubMessage.
func (s AgentSigner) Sign(header []byte) []byte {
	return s.Key.Sign(wire.PurposePubSubMessage, header)
}

// MLDSAVerifier verifies ML-DSA-65 origin signatures with keys from a
// KeyResolver. It keeps no keys itself: the resolver owns them (the
// facade's resolver holds encoded keys and parses them through the node's
// shared, byte-budgeted cache). It is safe for concurrent use if the
// resolver is.
type MLDSAVerifier struct {
	resolver KeyResolver
}

// NewMLDSAVerifier returns a verifier that resolves keys through r.
func NewMLDSAVerifier(r KeyResolver) *MLDSAVerifier { return &MLDSAVerifier{resolver: r} }

// Verify checks sig over header for origin.
func (v *MLDSAVerifier) Verify(origin identity.AgentID, header, sig []byte) error {
	key, err := v.resolver.ResolveKey(origin)
	if err != nil || key == nil {
		return fmt.Errorf("%w: %s", ErrUnknownSigner, origin.Short())
	}
	if key.ID() != origin {
		return fmt.Errorf("%w: resolver gave a key for %s, wanted %s", ErrUnknownSigner, key.ID().Short(), origin.Short())
	}
	if key.Verify(wire.PurposePubSubMessage, header, sig) != nil {
		return ErrBadSignature
	}
	return nil
}

// StaticKeys is a KeyResolver over a fixed set of keys (tests, pre-seeded
// simulations). Add keys before use; it is read-only afterwards.
type StaticKeys map[identity.AgentID]*identity.PublicKey

// ResolveKey returns the key or ErrUnknownSigner.
func (s StaticKeys) ResolveKey(agent identity.AgentID) (*identity.PublicKey, error) {
	if k, ok := s[agent]; ok {
		return k, nil
	}
	return nil, ErrUnknownSigner
}
