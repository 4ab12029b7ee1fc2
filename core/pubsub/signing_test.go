package pubsub

import (
	"errors"
	"testing"

	"github.com/saorsa-labs/x0x-go/core/identity"
)

type countingResolver struct {
	keys  StaticKeys
	calls int
}

func (c *countingResolver) ResolveKey(a identity.AgentID) (*identity.PublicKey, error) {
	c.calls++
	return c.keys.ResolveKey(a)
}

func TestMLDSAVerifierChecksSignatures(t *testing.T) {
	kp := identity.KeyPairFromSeed([32]byte{1})
	other := identity.KeyPairFromSeed([32]byte{2})
	r := &countingResolver{keys: StaticKeys{kp.ID(): kp.Public(), other.ID(): kp.Public()}}
	v := NewMLDSAVerifier(r)
	hdr := []byte("header bytes")
	sig := AgentSigner{Key: kp}.Sign(hdr)
	for i := 0; i < 5; i++ {
		if err := v.Verify(kp.ID(), hdr, sig); err != nil {
			t.Fatal(err)
		}
	}
	if r.calls != 5 {
		t.Fatalf("resolver called %d times, want 5 (the resolver owns the keys)", r.calls)
	}
	if err := v.Verify(kp.ID(), []byte("other header"), sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("wrong message: %v", err)
	}
	// A signature under another purpose must not verify as a message signature.
	if err := v.Verify(kp.ID(), hdr, kp.Sign("agent-cert", hdr)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("cross-purpose signature: %v", err)
	}
	if err := v.Verify(identity.DeriveID([]byte("nobody")), hdr, sig); !errors.Is(err, ErrUnknownSigner) {
		t.Fatalf("unknown signer: %v", err)
	}
	// A resolver answering with a key that does not derive the asked ID is refused.
	if err := v.Verify(other.ID(), hdr, sig); !errors.Is(err, ErrUnknownSigner) {
		t.Fatalf("substituted key: %v", err)
	}
}

func TestSimulatedSignatures(t *testing.T) {
	id := identity.DeriveID([]byte("a"))
	v := SimulatedVerifier{Known: map[identity.AgentID]bool{id: true}}
	sig := SimulatedSigner{ID: id}.Sign([]byte("h"))
	if len(sig) != SimulatedSigSize || v.Verify(id, []byte("h"), sig) != nil {
		t.Fatal("simulated signature does not verify")
	}
	if !errors.Is(v.Verify(id, []byte("x"), sig), ErrBadSignature) {
		t.Fatal("simulated signature verified another header")
	}
	if !errors.Is(v.Verify(identity.DeriveID([]byte("b")), []byte("h"), sig), ErrUnknownSigner) {
		t.Fatal("unknown simulated signer accepted")
	}
}
