// Package identity implements x0x identities: ML-DSA-65 key pairs for
// machines and agents, the 32-byte IDs derived from their public keys, and
// agent certificates that bind an agent to the machine it runs on.
package identity

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// Sizes of ML-DSA-65 objects in bytes.
const (
	PublicKeySize  = mldsa65.PublicKeySize
	PrivateKeySize = mldsa65.PrivateKeySize
	SignatureSize  = mldsa65.SignatureSize
	IDSize         = 32
)

// IDDomain is the domain separator hashed in front of a public key to form
// an ID. It is the derivation the deployed x0x network uses, so an exported
// key keeps its ID across implementations.
const IDDomain = "AUTONOMI_PEER_ID_V2:"

// ID is SHA-256(IDDomain || public key).
type ID [IDSize]byte

// MachineID identifies a machine (its QUIC identity).
type MachineID = ID

// PeerID identifies a transport peer; it is the MachineID.
type PeerID = ID

// AgentID identifies a portable agent identity.
type AgentID = ID

// DeriveID returns SHA-256(IDDomain || pub).
func DeriveID(pub []byte) ID {
	h := sha256.New()
	h.Write([]byte(IDDomain))
	h.Write(pub)
	var id ID
	h.Sum(id[:0])
	return id
}

// String returns the ID as lowercase hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex characters, for logs and transcripts.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is all zeros (unset).
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses a 64-character hex ID.
func ParseID(s string) (ID, error) {
	var id ID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != IDSize {
		return id, fmt.Errorf("identity: %q is not a 64-hex-digit ID", s)
	}
	copy(id[:], b)
	return id, nil
}

// ErrBadSignature is returned when a signature does not verify.
var ErrBadSignature = errors.New("identity: signature does not verify")

// ErrBadKey is returned for bytes that are not an ML-DSA-65 key.
var ErrBadKey = errors.New("identity: not an ML-DSA-65 key")

// PublicKey is an ML-DSA-65 public key with its derived ID.
type PublicKey struct {
	key *mldsa65.PublicKey
	raw []byte
	id  ID
}

// PublicKeyMemory is about what one parsed public key (ParsePublicKey)
// holds in memory, expanded matrix included (measured: 41,009 bytes), for
// caches that budget by bytes.
const PublicKeyMemory = 41 << 10

// ParsePublicKey decodes a packed ML-DSA-65 public key (1,952 bytes).
func ParsePublicKey(b []byte) (*PublicKey, error) {
	if len(b) != PublicKeySize {
		return nil, fmt.Errorf("%w: public key is %d bytes, want %d", ErrBadKey, len(b), PublicKeySize)
	}
	var k mldsa65.PublicKey
	if err := k.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	raw := append([]byte(nil), b...)
	return &PublicKey{key: &k, raw: raw, id: DeriveID(raw)}, nil
}

// Bytes returns the packed key. The caller must not modify it.
func (p *PublicKey) Bytes() []byte { return p.raw }

// ID returns the ID derived from this key.
func (p *PublicKey) ID() ID { return p.id }

// Verify checks sig over msg for the given signing purpose (see wire.SigContext).
// It returns ErrBadSignature if the signature does not verify.
func (p *PublicKey) Verify(purpose string, msg, sig []byte) error {
	if len(sig) != SignatureSize || !mldsa65.Verify(p.key, msg, wire.SigContext(purpose), sig) {
		return ErrBadSignature
	}
	return nil
}

// Equal reports whether two keys are the same.
func (p *PublicKey) Equal(o *PublicKey) bool {
	return o != nil && subtle.ConstantTimeCompare(p.raw, o.raw) == 1
}

// KeyPair is an ML-DSA-65 private key and its public half.
type KeyPair struct {
	priv *mldsa65.PrivateKey
	pub  *PublicKey
}

// GenerateKeyPair creates a key pair from 32 bytes of rand (inject a
// deterministic reader in tests and the simulator).
func GenerateKeyPair(rand io.Reader) (*KeyPair, error) {
	var seed [mldsa65.SeedSize]byte
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return nil, fmt.Errorf("identity: reading key seed: %w", err)
	}
	return KeyPairFromSeed(seed), nil
}

// KeyPairFromSeed derives a key pair deterministically from a 32-byte seed.
func KeyPairFromSeed(seed [32]byte) *KeyPair {
	pk, sk := mldsa65.NewKeyFromSeed(&seed)
	raw := pk.Bytes()
	return &KeyPair{priv: sk, pub: &PublicKey{key: pk, raw: raw, id: DeriveID(raw)}}
}

// ParsePrivateKey decodes a packed ML-DSA-65 private key (4,032 bytes), the
// format other x0x implementations export.
func ParsePrivateKey(b []byte) (*KeyPair, error) {
	if len(b) != PrivateKeySize {
		return nil, fmt.Errorf("%w: private key is %d bytes, want %d", ErrBadKey, len(b), PrivateKeySize)
	}
	var sk mldsa65.PrivateKey
	if err := sk.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	pk, ok := sk.Public().(*mldsa65.PublicKey)
	if !ok {
		return nil, ErrBadKey
	}
	raw := pk.Bytes()
	return &KeyPair{priv: &sk, pub: &PublicKey{key: pk, raw: raw, id: DeriveID(raw)}}, nil
}

// PrivateBytes returns the packed private key. It is secret: the caller owns
// the returned slice and should wipe it when done.
func (k *KeyPair) PrivateBytes() []byte { return k.priv.Bytes() }

// Public returns the public half.
func (k *KeyPair) Public() *PublicKey { return k.pub }

// ID returns the ID of the public key.
func (k *KeyPair) ID() ID { return k.pub.id }

// Sign signs msg for a purpose (the ML-DSA context is wire.SigContext(purpose)).
// Signing is deterministic (FIPS 204 deterministic variant) so that the
// simulator reproduces runs exactly.
func (k *KeyPair) Sign(purpose string, msg []byte) []byte {
	sig := make([]byte, SignatureSize)
	if err := mldsa65.SignTo(k.priv, msg, wire.SigContext(purpose), false, sig); err != nil {
		// Only possible for a context over 255 bytes; purposes are short constants.
		panic("identity: " + err.Error())
	}
	return sig
}
