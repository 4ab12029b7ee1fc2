package mls

import (
	"bytes"
	"errors"
	"testing"
)

// allSuites lists every suite this package implements.
var allSuites = []CipherSuite{
	MLS128DHKEMX25519AES128GCMSHA256Ed25519,
	MLS128DHKEMP256AES128GCMSHA256P256,
	MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519,
	MLS256DHKEMX448AES256GCMSHA512Ed448,
	MLS256DHKEMP521AES256GCMSHA512P521,
	MLS256DHKEMX448ChaCha20Poly1305SHA512Ed448,
	MLS256DHKEMP384AES256GCMSHA384P384,
	X0XMLS128MLKEM768X25519ChaCha20Poly1305SHA256MLDSA65,
}

func TestUnsupportedSuite(t *testing.T) {
	for _, cs := range []CipherSuite{0, 8, 0xf000, 0xffff} {
		if _, err := cs.Suite(); !errors.Is(err, ErrUnsupportedSuite) {
			t.Errorf("%v: %v", cs, err)
		}
		if cs.Supported() {
			t.Errorf("%v supported", cs)
		}
	}
	if got := CipherSuite(8).String(); got != "CipherSuite(0x0008)" {
		t.Errorf("String of unknown suite: %q", got)
	}
}

// TestSuiteRoundTrips exercises every component of every suite with fresh
// keys, including x0x's post-quantum suite, which the official vectors do
// not cover.
func TestSuiteRoundTrips(t *testing.T) {
	for _, cs := range allSuites {
		t.Run(cs.String(), func(t *testing.T) {
			s, err := cs.Suite()
			if err != nil {
				t.Fatal(err)
			}
			if s.ID() != cs || !cs.Supported() {
				t.Fatalf("ID %v", s.ID())
			}

			// HPKE.
			priv, pub, err := s.GenerateHPKEKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			if p2, err := s.HPKEPublicKey(priv); err != nil || !bytes.Equal(p2, pub) {
				t.Fatalf("HPKEPublicKey: %v", err)
			}
			kem, ct, err := s.EncryptWithLabel(pub, "Test", []byte("ctx"), []byte("secret message"))
			if err != nil {
				t.Fatal(err)
			}
			pt, err := s.DecryptWithLabel(priv, "Test", []byte("ctx"), kem, ct)
			if err != nil || string(pt) != "secret message" {
				t.Fatalf("DecryptWithLabel: %q, %v", pt, err)
			}
			if _, err := s.DecryptWithLabel(priv, "Other", []byte("ctx"), kem, ct); !errors.Is(err, ErrCrypto) {
				t.Errorf("decrypt under another label: %v", err)
			}
			ct[0] ^= 1
			if _, err := s.DecryptWithLabel(priv, "Test", []byte("ctx"), kem, ct); !errors.Is(err, ErrCrypto) {
				t.Errorf("decrypt tampered ciphertext: %v", err)
			}
			ikm := bytes.Repeat([]byte{7}, s.HashSize())
			d1, dp1, err := s.DeriveHPKEKeyPair(ikm)
			if err != nil {
				t.Fatal(err)
			}
			d2, dp2, _ := s.DeriveHPKEKeyPair(ikm)
			if !bytes.Equal(d1, d2) || !bytes.Equal(dp1, dp2) {
				t.Fatal("DeriveHPKEKeyPair is not deterministic")
			}
			kemOut, secret, err := s.HPKEExportSender(dp1, nil, []byte("MLS 1.0 external init secret"), s.HashSize())
			if err != nil {
				t.Fatal(err)
			}
			secret2, err := s.HPKEExportReceiver(d1, kemOut, nil, []byte("MLS 1.0 external init secret"), s.HashSize())
			if err != nil || !bytes.Equal(secret, secret2) || len(secret) != s.HashSize() {
				t.Fatalf("HPKE export: %v", err)
			}
			if _, _, err := s.HPKEExportSender(dp1, nil, nil, 256*s.HashSize()); !errors.Is(err, ErrCrypto) {
				t.Errorf("oversized export: %v", err)
			}

			// Signatures.
			spriv, spub, err := s.GenerateSignatureKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			if p2, err := s.SignaturePublicKey(spriv); err != nil || !bytes.Equal(p2, spub) {
				t.Fatalf("SignaturePublicKey: %v", err)
			}
			sig, err := s.SignWithLabel(spriv, "Test", []byte("content"))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.VerifyWithLabel(spub, "Test", []byte("content"), sig); err != nil {
				t.Fatal(err)
			}
			for name, f := range map[string]func() error{
				"other label":   func() error { return s.VerifyWithLabel(spub, "Tess", []byte("content"), sig) },
				"other content": func() error { return s.VerifyWithLabel(spub, "Test", []byte("contenu"), sig) },
				"empty sig":     func() error { return s.VerifyWithLabel(spub, "Test", []byte("content"), nil) },
				"empty key":     func() error { return s.VerifyWithLabel(nil, "Test", []byte("content"), sig) },
			} {
				if err := f(); !errors.Is(err, ErrCrypto) {
					t.Errorf("verify with %s: %v", name, err)
				}
			}

			// AEAD.
			key := bytes.Repeat([]byte{1}, s.KeySize())
			nonce := bytes.Repeat([]byte{2}, s.NonceSize())
			sealed, err := s.Seal(key, nonce, []byte("aad"), []byte("pt"))
			if err != nil {
				t.Fatal(err)
			}
			if pt, err := s.Open(key, nonce, []byte("aad"), sealed); err != nil || string(pt) != "pt" {
				t.Fatalf("Open: %v", err)
			}
			if _, err := s.Open(key, nonce, []byte("aae"), sealed); !errors.Is(err, ErrCrypto) {
				t.Errorf("Open with other aad: %v", err)
			}
			if _, err := s.Seal(key[1:], nonce, nil, nil); !errors.Is(err, ErrCrypto) {
				t.Errorf("short key: %v", err)
			}
			if _, err := s.Seal(key, nonce[1:], nil, nil); !errors.Is(err, ErrCrypto) {
				t.Errorf("short nonce: %v", err)
			}

			// KDF bounds.
			if _, err := s.Expand(ikm, nil, 255*s.HashSize()+1); !errors.Is(err, ErrCrypto) {
				t.Errorf("oversized Expand: %v", err)
			}
			if _, err := s.ExpandWithLabel(ikm, "x", nil, 1<<16); !errors.Is(err, ErrCrypto) {
				t.Errorf("oversized ExpandWithLabel: %v", err)
			}
			if !s.VerifyMAC(key, []byte("m"), s.MAC(key, []byte("m"))) || s.VerifyMAC(key, []byte("m"), nil) {
				t.Error("VerifyMAC")
			}
		})
	}
}

// TestSuiteMalformedKeys feeds keys of every wrong length to every suite:
// each call must fail with ErrCrypto, never panic.
func TestSuiteMalformedKeys(t *testing.T) {
	for _, cs := range allSuites {
		s, _ := cs.Suite()
		for _, n := range []int{0, 1, 31, 32, 33, 48, 56, 57, 64, 65, 66, 67, 133, 1216, 4032} {
			junk := bytes.Repeat([]byte{0xff}, n)
			// Some lengths are valid keys for some suites (e.g. 32 bytes of
			// 0xff is an X25519 or Ed25519 key); only absence of panics and
			// of untyped errors is checked for those.
			check := func(what string, err error) {
				if err != nil && !errors.Is(err, ErrCrypto) {
					t.Errorf("%v %s with %d bytes: untyped error %v", cs, what, n, err)
				}
			}
			_, err := s.HPKEPublicKey(junk)
			check("HPKEPublicKey", err)
			_, _, err = s.EncryptWithLabel(junk, "x", nil, nil)
			check("EncryptWithLabel", err)
			_, err = s.DecryptWithLabel(junk, "x", nil, junk, junk)
			check("DecryptWithLabel", err)
			_, _, err = s.HPKEExportSender(junk, nil, nil, 32)
			check("HPKEExportSender", err)
			_, err = s.HPKEExportReceiver(junk, junk, nil, nil, 32)
			check("HPKEExportReceiver", err)
			_, err = s.SignaturePublicKey(junk)
			check("SignaturePublicKey", err)
			_, err = s.SignWithLabel(junk, "x", nil)
			check("SignWithLabel", err)
			check("VerifyWithLabel", s.VerifyWithLabel(junk, "x", nil, junk))
			_, _, err = s.DeriveHPKEKeyPair(junk)
			check("DeriveHPKEKeyPair", err)
		}
	}
}

// TestPQSuite pins the post-quantum suite's parameters.
func TestPQSuite(t *testing.T) {
	cs := X0XMLS128MLKEM768X25519ChaCha20Poly1305SHA256MLDSA65
	if cs < 0xf000 {
		t.Fatalf("code point 0x%04x is not in the private-use range", uint16(cs))
	}
	s, err := cs.Suite()
	if err != nil {
		t.Fatal(err)
	}
	if s.HashSize() != 32 || s.KeySize() != 32 || s.NonceSize() != 12 {
		t.Fatalf("sizes %d %d %d", s.HashSize(), s.KeySize(), s.NonceSize())
	}
	priv, pub, _ := s.GenerateHPKEKeyPair()
	if len(priv) != 32 || len(pub) != 1216 {
		t.Fatalf("MLKEM768-X25519 key sizes %d / %d", len(priv), len(pub))
	}
	spriv, spub, _ := s.GenerateSignatureKeyPair()
	if len(spriv) != 32 || len(spub) != 1952 {
		t.Fatalf("ML-DSA-65 key sizes %d / %d", len(spriv), len(spub))
	}
	sig, err := s.SignWithLabel(spriv, "L", []byte("c"))
	if err != nil || len(sig) != 3309 {
		t.Fatalf("ML-DSA-65 signature: %d bytes, %v", len(sig), err)
	}
	// The packed 4,032-byte private key signs for the same public key.
	sk, _ := mldsa65Scheme{}.parse(spriv)
	packed, _ := sk.MarshalBinary()
	sig2, err := s.SignWithLabel(packed, "L", []byte("c"))
	if err != nil || s.VerifyWithLabel(spub, "L", []byte("c"), sig2) != nil {
		t.Fatalf("packed private key: %v", err)
	}
}

// TestECDSAShortScalar checks that a private scalar with its leading zero
// bytes stripped (as in the official P-521 vectors) is accepted.
func TestECDSAShortScalar(t *testing.T) {
	s := ecdsaP256()
	priv := make([]byte, 32)
	priv[31] = 5
	full, err := s.publicKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	short, err := s.publicKey([]byte{5})
	if err != nil || !bytes.Equal(full, short) {
		t.Fatalf("short scalar: %v", err)
	}
	if _, err := s.publicKey(make([]byte, 33)); !errors.Is(err, ErrCrypto) {
		t.Fatalf("33-byte scalar: %v", err)
	}
}
