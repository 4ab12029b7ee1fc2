package mls

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

// CipherSuite is an MLS cipher suite code point (RFC 9420 section 17.1).
type CipherSuite uint16

// The cipher suites of RFC 9420 section 17.1, and x0x's post-quantum suite.
const (
	MLS128DHKEMX25519AES128GCMSHA256Ed25519        CipherSuite = 0x0001
	MLS128DHKEMP256AES128GCMSHA256P256             CipherSuite = 0x0002
	MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519 CipherSuite = 0x0003
	MLS256DHKEMX448AES256GCMSHA512Ed448            CipherSuite = 0x0004
	MLS256DHKEMP521AES256GCMSHA512P521             CipherSuite = 0x0005
	MLS256DHKEMX448ChaCha20Poly1305SHA512Ed448     CipherSuite = 0x0006
	MLS256DHKEMP384AES256GCMSHA384P384             CipherSuite = 0x0007

	// X0XMLS128MLKEM768X25519ChaCha20Poly1305SHA256MLDSA65 is x0x's
	// post-quantum suite (DESIGN.md section 7): HPKE with the hybrid KEM
	// MLKEM768-X25519 (KEM 0x647a, draft-ietf-hpke-pq), HKDF-SHA256,
	// ChaCha20-Poly1305, SHA-256 and ML-DSA-65 (FIPS 204, empty context)
	// signatures.
	//
	// Its code point is in the range RFC 9420 section 17.1 reserves for
	// private use (0xF000-0xFFFF): draft-ietf-mls-pq-ciphersuites-06 (July
	// 2026, the latest) assigns no values yet (all are TBD) and lists no
	// suite with this combination (its MLKEM768X25519 suites pair with
	// Ed25519 or with ML-DSA-44 and SHA-384; its ML-DSA-65 suite uses pure
	// ML-KEM-768 and SHA-384). Move to a registered value if one appears.
	X0XMLS128MLKEM768X25519ChaCha20Poly1305SHA256MLDSA65 CipherSuite = 0xF0A1
)

// ErrUnsupportedSuite means a cipher suite code point this package does
// not implement.
var ErrUnsupportedSuite = errors.New("mls: unsupported cipher suite")

// ErrCrypto means a cryptographic operation failed: a malformed key, a
// signature or MAC that does not verify, or a ciphertext that does not
// decrypt. Errors that wrap it say which.
var ErrCrypto = errors.New("mls: cryptographic failure")

// Suite is an MLS cipher suite: a hash, the HKDF and HMAC built on it, an
// AEAD, an HPKE configuration and a signature scheme, plus the labelled
// functions of RFC 9420 section 5 built from them. Keys and secrets are byte
// strings in the formats of the MLS test vectors: HPKE keys as HPKE's
// SerializePublicKey / SerializePrivateKey, signature public keys as in
// SignaturePublicKey, ECDSA private keys as big-endian scalars (shorter ones
// are left-padded) and EdDSA private keys as their seed (ML-DSA-65: the
// 32-byte seed, or the 4,032-byte packed key).
//
// A Suite holds no mutable state and is safe for concurrent use.
type Suite interface {
	// ID returns the suite's code point.
	ID() CipherSuite
	// String returns the suite's name as in the IANA registry (for x0x's
	// private-use suite, the name this package gives it).
	String() string

	// HashSize is Nh: the output size of the hash and of KDF.Extract.
	HashSize() int
	// KeySize is AEAD.Nk.
	KeySize() int
	// NonceSize is AEAD.Nn.
	NonceSize() int

	// Hash returns the suite's hash of data.
	Hash(data []byte) []byte
	// MAC returns HMAC(key, data) with the suite's hash.
	MAC(key, data []byte) []byte
	// VerifyMAC reports in constant time whether tag is MAC(key, data).
	VerifyMAC(key, data, tag []byte) bool
	// Extract is HKDF-Extract(salt, ikm); an empty salt means Nh zeros.
	Extract(salt, ikm []byte) []byte
	// Expand is HKDF-Expand(prk, info, length); it fails with ErrCrypto if
	// length exceeds 255*Nh.
	Expand(prk, info []byte, length int) ([]byte, error)

	// ExpandWithLabel is RFC 9420 section 5.1's ExpandWithLabel; it fails
	// with ErrCrypto if length does not fit HKDF or a uint16.
	ExpandWithLabel(secret []byte, label string, context []byte, length int) ([]byte, error)
	// DeriveSecret is ExpandWithLabel(secret, label, "", Nh).
	DeriveSecret(secret []byte, label string) ([]byte, error)
	// DeriveTreeSecret is ExpandWithLabel(secret, label, uint32 generation,
	// length) (RFC 9420 section 9).
	DeriveTreeSecret(secret []byte, label string, generation uint32, length int) ([]byte, error)
	// RefHash is Hash(RefHashInput{label, value}) (RFC 9420 section 5.2).
	RefHash(label string, value []byte) ([]byte, error)

	// Seal encrypts with the suite's AEAD; key must be KeySize and nonce
	// NonceSize bytes.
	Seal(key, nonce, aad, plaintext []byte) ([]byte, error)
	// Open decrypts with the suite's AEAD; it fails with ErrCrypto if the
	// ciphertext does not authenticate.
	Open(key, nonce, aad, ciphertext []byte) ([]byte, error)

	// GenerateHPKEKeyPair returns a fresh HPKE key pair.
	GenerateHPKEKeyPair() (priv, pub []byte, err error)
	// DeriveHPKEKeyPair is the KEM's DeriveKeyPair(ikm) (RFC 9180 section
	// 7.1.3).
	DeriveHPKEKeyPair(ikm []byte) (priv, pub []byte, err error)
	// HPKEPublicKey returns the public key of an HPKE private key.
	HPKEPublicKey(priv []byte) ([]byte, error)
	// EncryptWithLabel is RFC 9420 section 5.1.3's EncryptWithLabel: HPKE
	// SealBase to pub with info EncryptContext{"MLS 1.0 "+label, context}.
	EncryptWithLabel(pub []byte, label string, context, plaintext []byte) (kemOutput, ciphertext []byte, err error)
	// DecryptWithLabel reverses EncryptWithLabel; it fails with ErrCrypto if
	// the key or ciphertext is malformed or does not authenticate.
	DecryptWithLabel(priv []byte, label string, context, kemOutput, ciphertext []byte) ([]byte, error)
	// HPKEExportSender sets up an HPKE base-mode sender context to pub with
	// info and returns its encapsulation and Export(exporterContext,
	// length) (used by external joins, RFC 9420 section 8.3).
	HPKEExportSender(pub, info, exporterContext []byte, length int) (kemOutput, secret []byte, err error)
	// HPKEExportReceiver is the receiving side of HPKEExportSender.
	HPKEExportReceiver(priv, kemOutput, info, exporterContext []byte, length int) ([]byte, error)

	// GenerateSignatureKeyPair returns a fresh signature key pair.
	GenerateSignatureKeyPair() (priv, pub []byte, err error)
	// SignaturePublicKey returns the public key of a signature private key.
	SignaturePublicKey(priv []byte) ([]byte, error)
	// SignWithLabel signs SignContent{"MLS 1.0 "+label, content} (RFC 9420
	// section 5.1.2).
	SignWithLabel(priv []byte, label string, content []byte) ([]byte, error)
	// VerifyWithLabel checks a SignWithLabel signature; it returns an error
	// wrapping ErrCrypto if the key is malformed or the signature does not
	// verify.
	VerifyWithLabel(pub []byte, label string, content, signature []byte) error
}

// mlsLabelPrefix is prepended to every label of the labelled functions.
const mlsLabelPrefix = "MLS 1.0 "

// aeadKind selects the suite's AEAD.
type aeadKind uint8

const (
	aeadAES128GCM aeadKind = iota + 1
	aeadAES256GCM
	aeadChaCha20Poly1305
)

// suite implements Suite from its components.
type suite struct {
	id      CipherSuite
	name    string
	newHash func() hash.Hash
	nh      int
	aead    aeadKind
	nk, nn  int
	hpke    hpkeScheme
	sig     signatureScheme
}

// buildSuite assembles the implementation of cs from its components. It
// runs on each lookup, so no package-level state is shared.
func buildSuite(cs CipherSuite) (*suite, error) {
	switch cs {
	case MLS128DHKEMX25519AES128GCMSHA256Ed25519:
		return newSuite(cs, "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519", sha256.New, aeadAES128GCM, hpkeX25519(aeadAES128GCM), ed25519Scheme{})
	case MLS128DHKEMP256AES128GCMSHA256P256:
		return newSuite(cs, "MLS_128_DHKEMP256_AES128GCM_SHA256_P256", sha256.New, aeadAES128GCM, hpkeP256(), ecdsaP256())
	case MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519:
		return newSuite(cs, "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519", sha256.New, aeadChaCha20Poly1305, hpkeX25519(aeadChaCha20Poly1305), ed25519Scheme{})
	case MLS256DHKEMX448AES256GCMSHA512Ed448:
		return newSuite(cs, "MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448", sha512.New, aeadAES256GCM, hpkeX448(aeadAES256GCM), ed448Scheme{})
	case MLS256DHKEMP521AES256GCMSHA512P521:
		return newSuite(cs, "MLS_256_DHKEMP521_AES256GCM_SHA512_P521", sha512.New, aeadAES256GCM, hpkeP521(), ecdsaP521())
	case MLS256DHKEMX448ChaCha20Poly1305SHA512Ed448:
		return newSuite(cs, "MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448", sha512.New, aeadChaCha20Poly1305, hpkeX448(aeadChaCha20Poly1305), ed448Scheme{})
	case MLS256DHKEMP384AES256GCMSHA384P384:
		return newSuite(cs, "MLS_256_DHKEMP384_AES256GCM_SHA384_P384", sha512.New384, aeadAES256GCM, hpkeP384(), ecdsaP384())
	case X0XMLS128MLKEM768X25519ChaCha20Poly1305SHA256MLDSA65:
		return newSuite(cs, "X0X_MLS_128_MLKEM768X25519_CHACHA20POLY1305_SHA256_MLDSA65", sha256.New, aeadChaCha20Poly1305, hpkeMLKEM768X25519(aeadChaCha20Poly1305), mldsa65Scheme{})
	}
	return nil, fmt.Errorf("%w: 0x%04x", ErrUnsupportedSuite, uint16(cs))
}

func newSuite(cs CipherSuite, name string, h func() hash.Hash, a aeadKind, hp hpkeScheme, sig signatureScheme) (*suite, error) {
	s := &suite{id: cs, name: name, newHash: h, nh: h().Size(), aead: a, hpke: hp, sig: sig}
	switch a {
	case aeadAES128GCM:
		s.nk, s.nn = 16, 12
	case aeadAES256GCM:
		s.nk, s.nn = 32, 12
	case aeadChaCha20Poly1305:
		s.nk, s.nn = chacha20poly1305.KeySize, chacha20poly1305.NonceSize
	}
	return s, nil
}

// Suite returns the implementation of cs, or an error wrapping
// ErrUnsupportedSuite.
func (cs CipherSuite) Suite() (Suite, error) {
	s, err := buildSuite(cs)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Supported reports whether this package implements cs.
func (cs CipherSuite) Supported() bool {
	_, err := buildSuite(cs)
	return err == nil
}

// String returns the suite's registered name, or its code point in hex.
func (cs CipherSuite) String() string {
	if s, err := buildSuite(cs); err == nil {
		return s.name
	}
	return fmt.Sprintf("CipherSuite(0x%04x)", uint16(cs))
}

func (s *suite) ID() CipherSuite { return s.id }
func (s *suite) String() string  { return s.name }
func (s *suite) HashSize() int   { return s.nh }
func (s *suite) KeySize() int    { return s.nk }
func (s *suite) NonceSize() int  { return s.nn }

func (s *suite) Hash(data []byte) []byte {
	h := s.newHash()
	h.Write(data)
	return h.Sum(nil)
}

func (s *suite) MAC(key, data []byte) []byte {
	m := hmac.New(s.newHash, key)
	m.Write(data)
	return m.Sum(nil)
}

func (s *suite) VerifyMAC(key, data, tag []byte) bool {
	return hmac.Equal(s.MAC(key, data), tag)
}

func (s *suite) Extract(salt, ikm []byte) []byte {
	// HKDF-Extract(salt, ikm) = HMAC-Hash(salt, ikm) (RFC 5869 section
	// 2.2); an empty salt is the same HMAC key as Nh zero bytes.
	m := hmac.New(s.newHash, salt)
	m.Write(ikm)
	return m.Sum(nil)
}

func (s *suite) Expand(prk, info []byte, length int) ([]byte, error) {
	if length < 0 || length > 255*s.nh {
		return nil, fmt.Errorf("%w: HKDF-Expand length %d out of range", ErrCrypto, length)
	}
	out, err := hkdf.Expand(s.newHash, prk, string(info), length)
	if err != nil {
		return nil, fmt.Errorf("%w: HKDF-Expand: %v", ErrCrypto, err)
	}
	return out, nil
}

func (s *suite) ExpandWithLabel(secret []byte, label string, context []byte, length int) ([]byte, error) {
	if length < 0 || length > 0xffff {
		return nil, fmt.Errorf("%w: ExpandWithLabel length %d out of range", ErrCrypto, length)
	}
	// KDFLabel { uint16 length; opaque label<V>; opaque context<V>; }
	var e encoder
	e.u16(uint16(length))
	e.opaque([]byte(mlsLabelPrefix + label))
	e.opaque(context)
	info, err := e.bytes()
	if err != nil {
		return nil, err
	}
	return s.Expand(secret, info, length)
}

func (s *suite) DeriveSecret(secret []byte, label string) ([]byte, error) {
	return s.ExpandWithLabel(secret, label, nil, s.nh)
}

func (s *suite) DeriveTreeSecret(secret []byte, label string, generation uint32, length int) ([]byte, error) {
	var g [4]byte
	binary.BigEndian.PutUint32(g[:], generation)
	return s.ExpandWithLabel(secret, label, g[:], length)
}

func (s *suite) RefHash(label string, value []byte) ([]byte, error) {
	in, err := labelAndBytes(label, value)
	if err != nil {
		return nil, err
	}
	return s.Hash(in), nil
}

// newAEAD returns the suite's AEAD keyed with key.
func (s *suite) newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != s.nk {
		return nil, fmt.Errorf("%w: AEAD key is %d bytes, want %d", ErrCrypto, len(key), s.nk)
	}
	switch s.aead {
	case aeadAES128GCM, aeadAES256GCM:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCrypto, err)
		}
		return cipher.NewGCM(b)
	default:
		return chacha20poly1305.New(key)
	}
}

func (s *suite) Seal(key, nonce, aad, plaintext []byte) ([]byte, error) {
	a, err := s.newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, fmt.Errorf("%w: AEAD nonce is %d bytes, want %d", ErrCrypto, len(nonce), a.NonceSize())
	}
	return a.Seal(nil, nonce, plaintext, aad), nil
}

func (s *suite) Open(key, nonce, aad, ciphertext []byte) ([]byte, error) {
	a, err := s.newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, fmt.Errorf("%w: AEAD nonce is %d bytes, want %d", ErrCrypto, len(nonce), a.NonceSize())
	}
	pt, err := a.Open(nil, nonce, ciphertext, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: AEAD open: %v", ErrCrypto, err)
	}
	return pt, nil
}

func (s *suite) GenerateHPKEKeyPair() ([]byte, []byte, error) { return s.hpke.generate() }

func (s *suite) DeriveHPKEKeyPair(ikm []byte) ([]byte, []byte, error) { return s.hpke.derive(ikm) }

func (s *suite) HPKEPublicKey(priv []byte) ([]byte, error) { return s.hpke.publicKey(priv) }

func (s *suite) EncryptWithLabel(pub []byte, label string, context, plaintext []byte) ([]byte, []byte, error) {
	info, err := labelAndBytes(mlsLabelPrefix+label, context)
	if err != nil {
		return nil, nil, err
	}
	return s.hpke.seal(pub, info, nil, plaintext)
}

func (s *suite) DecryptWithLabel(priv []byte, label string, context, kemOutput, ciphertext []byte) ([]byte, error) {
	info, err := labelAndBytes(mlsLabelPrefix+label, context)
	if err != nil {
		return nil, err
	}
	return s.hpke.open(priv, kemOutput, info, nil, ciphertext)
}

func (s *suite) HPKEExportSender(pub, info, exporterContext []byte, length int) ([]byte, []byte, error) {
	if length < 0 || length > 255*s.hpke.kdfSize() {
		return nil, nil, fmt.Errorf("%w: HPKE export length %d out of range", ErrCrypto, length)
	}
	return s.hpke.exportSender(pub, info, exporterContext, length)
}

func (s *suite) HPKEExportReceiver(priv, kemOutput, info, exporterContext []byte, length int) ([]byte, error) {
	if length < 0 || length > 255*s.hpke.kdfSize() {
		return nil, fmt.Errorf("%w: HPKE export length %d out of range", ErrCrypto, length)
	}
	return s.hpke.exportReceiver(priv, kemOutput, info, exporterContext, length)
}

func (s *suite) GenerateSignatureKeyPair() ([]byte, []byte, error) { return s.sig.generate() }

func (s *suite) SignaturePublicKey(priv []byte) ([]byte, error) { return s.sig.publicKey(priv) }

func (s *suite) SignWithLabel(priv []byte, label string, content []byte) ([]byte, error) {
	msg, err := labelAndBytes(mlsLabelPrefix+label, content)
	if err != nil {
		return nil, err
	}
	return s.sig.sign(priv, msg)
}

func (s *suite) VerifyWithLabel(pub []byte, label string, content, signature []byte) error {
	msg, err := labelAndBytes(mlsLabelPrefix+label, content)
	if err != nil {
		return err
	}
	if !s.sig.verify(pub, msg, signature) {
		return fmt.Errorf("%w: %s signature does not verify", ErrCrypto, label)
	}
	return nil
}

// zero overwrites b with zeros (for secrets being deleted).
func zero(b []byte) { clear(b) }
