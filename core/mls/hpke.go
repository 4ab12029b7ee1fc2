package mls

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"fmt"

	circlhpke "github.com/cloudflare/circl/hpke"
)

// hpkeScheme is HPKE (RFC 9180) in base mode for one KEM/KDF/AEAD triple.
// Keys are byte strings: SerializePublicKey / SerializePrivateKey of the
// KEM. Every failure wraps ErrCrypto.
//
// Go's crypto/hpke covers DHKEM over X25519, P-256, P-384 and P-521 and the
// hybrid MLKEM768-X25519; circl covers DHKEM(X448, HKDF-SHA512), which the
// standard library lacks.
type hpkeScheme interface {
	// kdfSize is the HPKE KDF's Nh, bounding Export lengths.
	kdfSize() int
	generate() (priv, pub []byte, err error)
	derive(ikm []byte) (priv, pub []byte, err error)
	publicKey(priv []byte) ([]byte, error)
	seal(pub, info, aad, plaintext []byte) (enc, ciphertext []byte, err error)
	open(priv, enc, info, aad, ciphertext []byte) ([]byte, error)
	exportSender(pub, info, exporterContext []byte, length int) (enc, secret []byte, err error)
	exportReceiver(priv, enc, info, exporterContext []byte, length int) ([]byte, error)
}

func stdAEAD(a aeadKind) hpke.AEAD {
	switch a {
	case aeadAES128GCM:
		return hpke.AES128GCM()
	case aeadAES256GCM:
		return hpke.AES256GCM()
	default:
		return hpke.ChaCha20Poly1305()
	}
}

func hpkeX25519(a aeadKind) hpkeScheme {
	return stdHPKE{kem: hpke.DHKEM(ecdh.X25519()), kdf: hpke.HKDFSHA256(), aead: stdAEAD(a), nh: 32}
}

func hpkeP256() hpkeScheme {
	return stdHPKE{kem: hpke.DHKEM(ecdh.P256()), kdf: hpke.HKDFSHA256(), aead: hpke.AES128GCM(), nh: 32, scalarLen: 32}
}

func hpkeP384() hpkeScheme {
	return stdHPKE{kem: hpke.DHKEM(ecdh.P384()), kdf: hpke.HKDFSHA384(), aead: hpke.AES256GCM(), nh: 48, scalarLen: 48}
}

func hpkeP521() hpkeScheme {
	return stdHPKE{kem: hpke.DHKEM(ecdh.P521()), kdf: hpke.HKDFSHA512(), aead: hpke.AES256GCM(), nh: 64, scalarLen: 66}
}

func hpkeMLKEM768X25519(a aeadKind) hpkeScheme {
	return stdHPKE{kem: hpke.MLKEM768X25519(), kdf: hpke.HKDFSHA256(), aead: stdAEAD(a), nh: 32}
}

// stdHPKE implements hpkeScheme with crypto/hpke.
type stdHPKE struct {
	kem  hpke.KEM
	kdf  hpke.KDF
	aead hpke.AEAD
	nh   int
	// scalarLen is Nsk of the NIST-curve DHKEMs (0 for the others): a
	// shorter private key is left-padded with zeros, as some
	// implementations (and the official test vectors, for P-521) strip
	// leading zero bytes.
	scalarLen int
}

// privateKey parses an HPKE private key, left-padding a short NIST-curve
// scalar.
func (h stdHPKE) privateKey(priv []byte) (hpke.PrivateKey, error) {
	if h.scalarLen > 0 && len(priv) > 0 && len(priv) < h.scalarLen {
		padded := make([]byte, h.scalarLen)
		copy(padded[h.scalarLen-len(priv):], priv)
		defer zero(padded)
		priv = padded
	}
	return h.kem.NewPrivateKey(priv)
}

func (h stdHPKE) kdfSize() int { return h.nh }

func hpkeErr(what string, err error) error {
	return fmt.Errorf("%w: HPKE %s: %v", ErrCrypto, what, err)
}

func (h stdHPKE) keyPair(sk hpke.PrivateKey) ([]byte, []byte, error) {
	priv, err := sk.Bytes()
	if err != nil {
		return nil, nil, hpkeErr("serialize private key", err)
	}
	return priv, sk.PublicKey().Bytes(), nil
}

func (h stdHPKE) generate() ([]byte, []byte, error) {
	sk, err := h.kem.GenerateKey()
	if err != nil {
		return nil, nil, hpkeErr("generate", err)
	}
	return h.keyPair(sk)
}

func (h stdHPKE) derive(ikm []byte) ([]byte, []byte, error) {
	sk, err := h.kem.DeriveKeyPair(ikm)
	if err != nil {
		return nil, nil, hpkeErr("derive key pair", err)
	}
	return h.keyPair(sk)
}

func (h stdHPKE) publicKey(priv []byte) ([]byte, error) {
	sk, err := h.privateKey(priv)
	if err != nil {
		return nil, hpkeErr("private key", err)
	}
	return sk.PublicKey().Bytes(), nil
}

func (h stdHPKE) sender(pub, info []byte) ([]byte, *hpke.Sender, error) {
	pk, err := h.kem.NewPublicKey(pub)
	if err != nil {
		return nil, nil, hpkeErr("public key", err)
	}
	enc, s, err := hpke.NewSender(pk, h.kdf, h.aead, info)
	if err != nil {
		return nil, nil, hpkeErr("setup sender", err)
	}
	return enc, s, nil
}

func (h stdHPKE) recipient(priv, enc, info []byte) (*hpke.Recipient, error) {
	sk, err := h.privateKey(priv)
	if err != nil {
		return nil, hpkeErr("private key", err)
	}
	r, err := hpke.NewRecipient(enc, sk, h.kdf, h.aead, info)
	if err != nil {
		return nil, hpkeErr("setup recipient", err)
	}
	return r, nil
}

func (h stdHPKE) seal(pub, info, aad, plaintext []byte) ([]byte, []byte, error) {
	enc, s, err := h.sender(pub, info)
	if err != nil {
		return nil, nil, err
	}
	ct, err := s.Seal(aad, plaintext)
	if err != nil {
		return nil, nil, hpkeErr("seal", err)
	}
	return enc, ct, nil
}

func (h stdHPKE) open(priv, enc, info, aad, ciphertext []byte) ([]byte, error) {
	r, err := h.recipient(priv, enc, info)
	if err != nil {
		return nil, err
	}
	pt, err := r.Open(aad, ciphertext)
	if err != nil {
		return nil, hpkeErr("open", err)
	}
	return pt, nil
}

func (h stdHPKE) exportSender(pub, info, exporterContext []byte, length int) ([]byte, []byte, error) {
	enc, s, err := h.sender(pub, info)
	if err != nil {
		return nil, nil, err
	}
	secret, err := s.Export(string(exporterContext), length)
	if err != nil {
		return nil, nil, hpkeErr("export", err)
	}
	return enc, secret, nil
}

func (h stdHPKE) exportReceiver(priv, enc, info, exporterContext []byte, length int) ([]byte, error) {
	r, err := h.recipient(priv, enc, info)
	if err != nil {
		return nil, err
	}
	secret, err := r.Export(string(exporterContext), length)
	if err != nil {
		return nil, hpkeErr("export", err)
	}
	return secret, nil
}

// x448Size is Nsk, Npk and Nenc of DHKEM(X448, HKDF-SHA512).
const x448Size = 56

func hpkeX448(a aeadKind) hpkeScheme {
	ca := circlhpke.AEAD_AES256GCM
	if a == aeadChaCha20Poly1305 {
		ca = circlhpke.AEAD_ChaCha20Poly1305
	}
	return circlX448{suite: circlhpke.NewSuite(circlhpke.KEM_X448_HKDF_SHA512, circlhpke.KDF_HKDF_SHA512, ca)}
}

// circlX448 implements hpkeScheme for DHKEM(X448, HKDF-SHA512) with
// HKDF-SHA512 using circl. Lengths are checked before circl is called,
// since some of its functions panic on bad sizes.
type circlX448 struct {
	suite circlhpke.Suite
}

func (circlX448) kdfSize() int { return 64 }

func (c circlX448) keyPairFromPrivate(priv []byte) ([]byte, []byte, error) {
	pub, err := c.publicKey(priv)
	if err != nil {
		return nil, nil, err
	}
	return priv, pub, nil
}

func (c circlX448) generate() ([]byte, []byte, error) {
	_, sk, err := circlhpke.KEM_X448_HKDF_SHA512.Scheme().GenerateKeyPair()
	if err != nil {
		return nil, nil, hpkeErr("generate", err)
	}
	priv, err := sk.MarshalBinary()
	if err != nil {
		return nil, nil, hpkeErr("serialize private key", err)
	}
	return c.keyPairFromPrivate(priv)
}

// derive is DeriveKeyPair of RFC 9180 section 7.1.3 for X448, written out
// because circl's accepts only ikm of exactly 56 bytes while MLS derives
// from secrets of any length (Nh = 64 for the X448 suites):
//
//	dkp_prk = LabeledExtract("", "dkp_prk", ikm)
//	sk = LabeledExpand(dkp_prk, "sk", "", Nsk)
func (c circlX448) derive(ikm []byte) ([]byte, []byte, error) {
	var suiteID [5]byte
	copy(suiteID[:], "KEM")
	binary.BigEndian.PutUint16(suiteID[3:], uint16(circlhpke.KEM_X448_HKDF_SHA512))
	extractIn := append(append(append([]byte("HPKE-v1"), suiteID[:]...), "dkp_prk"...), ikm...)
	prk, err := hkdf.Extract(sha512.New, extractIn, nil)
	if err != nil {
		return nil, nil, hpkeErr("derive key pair", err)
	}
	var info []byte
	info = binary.BigEndian.AppendUint16(info, x448Size)
	info = append(append(append(info, "HPKE-v1"...), suiteID[:]...), "sk"...)
	sk, err := hkdf.Expand(sha512.New, prk, string(info), x448Size)
	zero(prk)
	if err != nil {
		return nil, nil, hpkeErr("derive key pair", err)
	}
	return c.keyPairFromPrivate(sk)
}

func (circlX448) publicKey(priv []byte) ([]byte, error) {
	if len(priv) != x448Size {
		return nil, fmt.Errorf("%w: X448 private key is %d bytes, want %d", ErrCrypto, len(priv), x448Size)
	}
	sk, err := circlhpke.KEM_X448_HKDF_SHA512.Scheme().UnmarshalBinaryPrivateKey(priv)
	if err != nil {
		return nil, hpkeErr("private key", err)
	}
	pub, err := sk.Public().MarshalBinary()
	if err != nil {
		return nil, hpkeErr("public key", err)
	}
	return pub, nil
}

func (c circlX448) sender(pub, info []byte) ([]byte, circlhpke.Sealer, error) {
	if len(pub) != x448Size {
		return nil, nil, fmt.Errorf("%w: X448 public key is %d bytes, want %d", ErrCrypto, len(pub), x448Size)
	}
	pk, err := circlhpke.KEM_X448_HKDF_SHA512.Scheme().UnmarshalBinaryPublicKey(pub)
	if err != nil {
		return nil, nil, hpkeErr("public key", err)
	}
	s, err := c.suite.NewSender(pk, info)
	if err != nil {
		return nil, nil, hpkeErr("setup sender", err)
	}
	enc, sealer, err := s.Setup(rand.Reader)
	if err != nil {
		return nil, nil, hpkeErr("setup sender", err)
	}
	return enc, sealer, nil
}

func (c circlX448) recipient(priv, enc, info []byte) (circlhpke.Opener, error) {
	if len(priv) != x448Size || len(enc) != x448Size {
		return nil, fmt.Errorf("%w: X448 key or encapsulation has the wrong size", ErrCrypto)
	}
	sk, err := circlhpke.KEM_X448_HKDF_SHA512.Scheme().UnmarshalBinaryPrivateKey(priv)
	if err != nil {
		return nil, hpkeErr("private key", err)
	}
	r, err := c.suite.NewReceiver(sk, info)
	if err != nil {
		return nil, hpkeErr("setup recipient", err)
	}
	o, err := r.Setup(enc)
	if err != nil {
		return nil, hpkeErr("setup recipient", err)
	}
	return o, nil
}

func (c circlX448) seal(pub, info, aad, plaintext []byte) ([]byte, []byte, error) {
	enc, s, err := c.sender(pub, info)
	if err != nil {
		return nil, nil, err
	}
	ct, err := s.Seal(plaintext, aad)
	if err != nil {
		return nil, nil, hpkeErr("seal", err)
	}
	return enc, ct, nil
}

func (c circlX448) open(priv, enc, info, aad, ciphertext []byte) ([]byte, error) {
	o, err := c.recipient(priv, enc, info)
	if err != nil {
		return nil, err
	}
	pt, err := o.Open(ciphertext, aad)
	if err != nil {
		return nil, hpkeErr("open", err)
	}
	return pt, nil
}

func (c circlX448) exportSender(pub, info, exporterContext []byte, length int) ([]byte, []byte, error) {
	enc, s, err := c.sender(pub, info)
	if err != nil {
		return nil, nil, err
	}
	return enc, s.Export(exporterContext, uint(length)), nil
}

func (c circlX448) exportReceiver(priv, enc, info, exporterContext []byte, length int) ([]byte, error) {
	o, err := c.recipient(priv, enc, info)
	if err != nil {
		return nil, err
	}
	return o.Export(exporterContext, uint(length)), nil
}
