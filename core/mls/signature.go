package mls

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// signatureScheme is a suite's signature algorithm over byte-string keys
// (formats in the Suite documentation). sign and publicKey fail with an
// error wrapping ErrCrypto on a malformed key; verify returns false for any
// malformed input.
type signatureScheme interface {
	generate() (priv, pub []byte, err error)
	publicKey(priv []byte) ([]byte, error)
	sign(priv, msg []byte) ([]byte, error)
	verify(pub, msg, sig []byte) bool
}

func badKey(alg string, n int) error {
	return fmt.Errorf("%w: malformed %s private key (%d bytes)", ErrCrypto, alg, n)
}

// ed25519Scheme is Ed25519 (RFC 8032); private keys are 32-byte seeds.
type ed25519Scheme struct{}

func (ed25519Scheme) generate() ([]byte, []byte, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCrypto, err)
	}
	return priv.Seed(), pub, nil
}

func (ed25519Scheme) publicKey(priv []byte) ([]byte, error) {
	if len(priv) != ed25519.SeedSize {
		return nil, badKey("Ed25519", len(priv))
	}
	k := ed25519.NewKeyFromSeed(priv)
	defer zero(k)
	return append([]byte{}, k[ed25519.SeedSize:]...), nil
}

func (ed25519Scheme) sign(priv, msg []byte) ([]byte, error) {
	if len(priv) != ed25519.SeedSize {
		return nil, badKey("Ed25519", len(priv))
	}
	k := ed25519.NewKeyFromSeed(priv)
	defer zero(k)
	return ed25519.Sign(k, msg), nil
}

func (ed25519Scheme) verify(pub, msg, sig []byte) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
}

// ed448Scheme is Ed448 (RFC 8032, empty context); private keys are 57-byte
// seeds.
type ed448Scheme struct{}

func (ed448Scheme) generate() ([]byte, []byte, error) {
	pub, priv, err := ed448.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCrypto, err)
	}
	defer zero(priv)
	return append([]byte{}, priv[:ed448.SeedSize]...), pub, nil
}

func (ed448Scheme) publicKey(priv []byte) ([]byte, error) {
	if len(priv) != ed448.SeedSize {
		return nil, badKey("Ed448", len(priv))
	}
	k := ed448.NewKeyFromSeed(priv)
	defer zero(k)
	return append([]byte{}, k[ed448.SeedSize:]...), nil
}

func (ed448Scheme) sign(priv, msg []byte) ([]byte, error) {
	if len(priv) != ed448.SeedSize {
		return nil, badKey("Ed448", len(priv))
	}
	k := ed448.NewKeyFromSeed(priv)
	defer zero(k)
	return ed448.Sign(k, msg, ""), nil
}

func (ed448Scheme) verify(pub, msg, sig []byte) bool {
	return len(pub) == ed448.PublicKeySize && len(sig) == ed448.SignatureSize && ed448.Verify(pub, msg, sig, "")
}

// ecdsaScheme is ECDSA over a NIST curve with the suite's hash; private keys
// are fixed-length big-endian scalars, public keys uncompressed points and
// signatures DER-encoded (RFC 9420 section 5.1.2, as in TLS 1.3).
type ecdsaScheme struct {
	name  string
	curve elliptic.Curve
	hash  func() hash.Hash
}

func ecdsaP256() ecdsaScheme { return ecdsaScheme{"ECDSA P-256", elliptic.P256(), sha256.New} }
func ecdsaP384() ecdsaScheme { return ecdsaScheme{"ECDSA P-384", elliptic.P384(), sha512.New384} }
func ecdsaP521() ecdsaScheme { return ecdsaScheme{"ECDSA P-521", elliptic.P521(), sha512.New} }

func (s ecdsaScheme) generate() ([]byte, []byte, error) {
	k, err := ecdsa.GenerateKey(s.curve, rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCrypto, err)
	}
	priv, err := k.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCrypto, err)
	}
	pub, err := k.PublicKey.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCrypto, err)
	}
	return priv, pub, nil
}

// parse decodes a private scalar. A scalar shorter than the field size is
// left-padded with zeros: some implementations (and the official test
// vectors, for P-521) strip leading zero bytes.
func (s ecdsaScheme) parse(priv []byte) (*ecdsa.PrivateKey, error) {
	size := (s.curve.Params().BitSize + 7) / 8
	if len(priv) == 0 || len(priv) > size {
		return nil, badKey(s.name, len(priv))
	}
	if len(priv) < size {
		padded := make([]byte, size)
		copy(padded[size-len(priv):], priv)
		defer zero(padded)
		priv = padded
	}
	k, err := ecdsa.ParseRawPrivateKey(s.curve, priv)
	if err != nil {
		return nil, badKey(s.name, len(priv))
	}
	return k, nil
}

func (s ecdsaScheme) publicKey(priv []byte) ([]byte, error) {
	k, err := s.parse(priv)
	if err != nil {
		return nil, err
	}
	pub, err := k.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCrypto, err)
	}
	return pub, nil
}

func (s ecdsaScheme) digest(msg []byte) []byte {
	h := s.hash()
	h.Write(msg)
	return h.Sum(nil)
}

func (s ecdsaScheme) sign(priv, msg []byte) ([]byte, error) {
	k, err := s.parse(priv)
	if err != nil {
		return nil, err
	}
	sig, err := ecdsa.SignASN1(rand.Reader, k, s.digest(msg))
	if err != nil {
		return nil, fmt.Errorf("%w: %s sign: %v", ErrCrypto, s.name, err)
	}
	return sig, nil
}

func (s ecdsaScheme) verify(pub, msg, sig []byte) bool {
	pk, err := ecdsa.ParseUncompressedPublicKey(s.curve, pub)
	if err != nil {
		return false
	}
	return ecdsa.VerifyASN1(pk, s.digest(msg), sig)
}

// mldsa65Scheme is ML-DSA-65 (FIPS 204, pure, empty context, as
// draft-ietf-tls-mldsa uses it). Private keys are the 32-byte seed; the
// 4,032-byte packed form is accepted too. Signing is deterministic (the
// FIPS 204 deterministic variant), as in core/identity, so that simulated
// runs reproduce exactly.
type mldsa65Scheme struct{}

func (mldsa65Scheme) generate() ([]byte, []byte, error) {
	var seed [mldsa65.SeedSize]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCrypto, err)
	}
	pk, _ := mldsa65.NewKeyFromSeed(&seed)
	return seed[:], pk.Bytes(), nil
}

func (mldsa65Scheme) parse(priv []byte) (*mldsa65.PrivateKey, error) {
	switch len(priv) {
	case mldsa65.SeedSize:
		var seed [mldsa65.SeedSize]byte
		copy(seed[:], priv)
		_, sk := mldsa65.NewKeyFromSeed(&seed)
		clear(seed[:])
		return sk, nil
	case mldsa65.PrivateKeySize:
		var sk mldsa65.PrivateKey
		if err := sk.UnmarshalBinary(priv); err != nil {
			return nil, badKey("ML-DSA-65", len(priv))
		}
		return &sk, nil
	}
	return nil, badKey("ML-DSA-65", len(priv))
}

func (s mldsa65Scheme) publicKey(priv []byte) ([]byte, error) {
	sk, err := s.parse(priv)
	if err != nil {
		return nil, err
	}
	pk, ok := sk.Public().(*mldsa65.PublicKey)
	if !ok {
		return nil, badKey("ML-DSA-65", len(priv))
	}
	return pk.Bytes(), nil
}

func (s mldsa65Scheme) sign(priv, msg []byte) ([]byte, error) {
	sk, err := s.parse(priv)
	if err != nil {
		return nil, err
	}
	sig := make([]byte, mldsa65.SignatureSize)
	if err := mldsa65.SignTo(sk, msg, nil, false, sig); err != nil {
		return nil, fmt.Errorf("%w: ML-DSA-65 sign: %v", ErrCrypto, err)
	}
	return sig, nil
}

func (mldsa65Scheme) verify(pub, msg, sig []byte) bool {
	if len(pub) != mldsa65.PublicKeySize || len(sig) != mldsa65.SignatureSize {
		return false
	}
	var pk mldsa65.PublicKey
	if err := pk.UnmarshalBinary(pub); err != nil {
		return false
	}
	return mldsa65.Verify(&pk, msg, nil, sig)
}
