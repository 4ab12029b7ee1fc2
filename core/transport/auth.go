package transport

import (
	"fmt"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// Channel binding (DESIGN.md section 3). Each side signs, with its ML-DSA-65
// machine key and purpose wire.PurposePeerAuth,
//
//	transcript = ekm[32] || role[1] || from[32] || to[32]
//
// where ekm is the TLS exporter value for label EXPORTER-x0x-peer-auth-v1.
// The exporter differs in every TLS session, so a proof captured from one
// session fails in any other (including a man-in-the-middle's two legs);
// the role byte stops a peer's own proof being reflected back to it.

// authTranscript builds the signed bytes.
func authTranscript(ekm []byte, r role, from, to identity.PeerID) []byte {
	b := make([]byte, 0, exporterLen+1+2*identity.IDSize)
	b = append(b, ekm...)
	b = append(b, byte(r))
	b = append(b, from[:]...)
	return append(b, to[:]...)
}

// makeAuth builds this side's proof for the session with exporter ekm.
func makeAuth(kp *identity.KeyPair, ekm []byte, r role, to identity.PeerID, instance [instanceSize]byte) *authMsg {
	from := kp.ID()
	return &authMsg{
		Key:      kp.Public().Bytes(),
		Role:     uint8(r),
		From:     from[:],
		To:       to[:],
		Sig:      kp.Sign(wire.PurposePeerAuth, authTranscript(ekm, r, from, to)),
		Instance: instance[:],
	}
}

// authCheck is the outcome of verifying the peer's proof.
type authCheck struct {
	pub *identity.PublicKey
	// toMismatch is set when a dialler's proof names another listener than
	// us: the listener still answers with its own proof (so the dialler can
	// report whom it reached) but never accepts the connection.
	toMismatch bool
	// instance is the peer's per-run nonce (authenticated by the session).
	instance [instanceSize]byte
}

// verifyAuth checks a proof received by local from a peer that must have
// role want. expected, if non-zero, is the PeerID a dialler asked for; a
// valid proof from anyone else yields a *PeerMismatchError. Other failures
// wrap ErrAuthFailed (or ErrSelfConnect).
func verifyAuth(m *authMsg, ekm []byte, want role, local, expected identity.PeerID, addr string) (authCheck, error) {
	return verifyAuthWith(identity.ParsePublicKey, m, ekm, want, local, expected, addr)
}

// verifyAuthWith is verifyAuth parsing the peer's key with parse (the
// node's cache: a reconnecting peer presents the same key). The proof's
// signature, fresh for every session, is always verified.
func verifyAuthWith(parse func([]byte) (*identity.PublicKey, error), m *authMsg, ekm []byte, want role, local, expected identity.PeerID, addr string) (authCheck, error) {
	if role(m.Role) != want {
		return authCheck{}, fmt.Errorf("%w: proof made for role %v, expected %v", ErrAuthFailed, role(m.Role), want)
	}
	pub, err := parse(m.Key)
	if err != nil {
		return authCheck{}, fmt.Errorf("%w: %w", ErrAuthFailed, err)
	}
	var from, to identity.PeerID
	copy(from[:], m.From)
	copy(to[:], m.To)
	if pub.ID() != from {
		return authCheck{}, fmt.Errorf("%w: key derives %s, proof claims %s", ErrAuthFailed, pub.ID().Short(), from.Short())
	}
	if from == local {
		return authCheck{}, fmt.Errorf("%w: peer presented our own key", ErrSelfConnect)
	}
	if err := pub.Verify(wire.PurposePeerAuth, authTranscript(ekm, want, from, to), m.Sig); err != nil {
		return authCheck{}, fmt.Errorf("%w: proof signature does not verify for this session", ErrAuthFailed)
	}
	var chk authCheck
	chk.pub = pub
	copy(chk.instance[:], m.Instance)
	switch want {
	case roleDialler:
		// A dialler may not know whom it dials (zero To).
		chk.toMismatch = !to.IsZero() && to != local
	case roleListener:
		if to != local {
			return authCheck{}, fmt.Errorf("%w: listener proof names %s, we are %s", ErrAuthFailed, to.Short(), local.Short())
		}
		if !expected.IsZero() && from != expected {
			return authCheck{}, &PeerMismatchError{Expected: expected, Got: from, Addr: addr}
		}
	}
	return chk, nil
}
