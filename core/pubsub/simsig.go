package pubsub

import (
	"crypto/subtle"
	"fmt"

	"lukechampine.com/blake3"

	"github.com/saorsa-labs/x0x-go/core/identity"
)

// SimulatedSigner is an INSECURE stand-in for ML-DSA signing, for large
// simulations only: the "signature" is a BLAKE3 MAC keyed by the public
// agent ID, which anyone can compute. It exists because ML-DSA verification
// at every delivery would dominate a 1,000-node x 1,000-message simulation;
// simulations that use it must say so in their output. Never use it on a
// real network.
type SimulatedSigner struct{ ID identity.AgentID }

// SimulatedSigSize is the size of a simulated signature (real ML-DSA-65
// signatures are identity.SignatureSize = 3,309 bytes).
const SimulatedSigSize = 32

// AgentID returns the signer's ID.
func (s SimulatedSigner) AgentID() identity.AgentID { return s.ID }

// Sign returns the simulated signature of header.
func (s SimulatedSigner) Sign(header []byte) []byte {
	h := blake3.New(SimulatedSigSize, s.ID[:])
	h.Write(header)
	return h.Sum(nil)
}

// SimulatedVerifier checks SimulatedSigner signatures for a pre-seeded set
// of known agents (the simulation's stand-in for resolved identity
// records). It is INSECURE; see SimulatedSigner. Read-only after setup.
type SimulatedVerifier struct{ Known map[identity.AgentID]bool }

// Verify returns ErrUnknownSigner for agents not in Known, ErrBadSignature
// for a wrong MAC.
func (v SimulatedVerifier) Verify(origin identity.AgentID, header, sig []byte) error {
	if !v.Known[origin] {
		return fmt.Errorf("%w: %s", ErrUnknownSigner, origin.Short())
	}
	want := SimulatedSigner{ID: origin}.Sign(header)
	if subtle.ConstantTimeCompare(want, sig) != 1 {
		return ErrBadSignature
	}
	return nil
}
