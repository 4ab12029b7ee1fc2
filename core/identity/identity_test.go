package identity

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"pgregory.net/rapid"
)

type idVectors struct {
	SeedHex         string `json:"seed_hex"`
	PublicKeyHex    string `json:"public_key_hex"`
	PublicKeySHA256 string `json:"public_key_sha256_hex"`
	IDHex           string `json:"id_hex"`
	EmptyKeyIDHex   string `json:"empty_key_id_hex"`
}

func loadVectors(t *testing.T) idVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/id_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v idVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// The expected IDs were computed with Python's hashlib, independently of this code.
func TestIDVectors(t *testing.T) {
	v := loadVectors(t)
	pub, err := hex.DecodeString(v.PublicKeyHex)
	if err != nil {
		t.Fatal(err)
	}
	if got := DeriveID(pub).String(); got != v.IDHex {
		t.Fatalf("DeriveID = %s, want %s", got, v.IDHex)
	}
	if got := DeriveID(nil).String(); got != v.EmptyKeyIDHex {
		t.Fatalf("DeriveID(empty) = %s, want %s", got, v.EmptyKeyIDHex)
	}
	seed, _ := hex.DecodeString(v.SeedHex)
	var s [32]byte
	copy(s[:], seed)
	kp := KeyPairFromSeed(s)
	if !bytes.Equal(kp.Public().Bytes(), pub) {
		t.Fatal("key generation from the fixed seed changed")
	}
	if kp.ID().String() != v.IDHex {
		t.Fatalf("KeyPair.ID = %s, want %s", kp.ID(), v.IDHex)
	}
	parsed, err := ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.ID().String() != v.IDHex || !parsed.Equal(kp.Public()) {
		t.Fatal("parsed key does not match")
	}
}

func TestParseID(t *testing.T) {
	kp := mustKey(t)
	id, err := ParseID(kp.ID().String())
	if err != nil || id != kp.ID() {
		t.Fatalf("ParseID round trip: %v", err)
	}
	for _, bad := range []string{"", "zz", kp.ID().String()[:62], kp.ID().String() + "00"} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
}

func mustKey(t testing.TB) *KeyPair {
	t.Helper()
	kp, err := GenerateKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func TestSignVerifyDomainSeparation(t *testing.T) {
	kp := mustKey(t)
	msg := []byte("hello")
	sig := kp.Sign("test-a", msg)
	if err := kp.Public().Verify("test-a", msg, sig); err != nil {
		t.Fatal(err)
	}
	if err := kp.Public().Verify("test-b", msg, sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("signature accepted under another purpose: %v", err)
	}
	if err := kp.Public().Verify("test-a", []byte("hellp"), sig); !errors.Is(err, ErrBadSignature) {
		t.Fatal("signature accepted for another message")
	}
	if err := mustKey(t).Public().Verify("test-a", msg, sig); !errors.Is(err, ErrBadSignature) {
		t.Fatal("signature accepted under another key")
	}
	if err := kp.Public().Verify("test-a", msg, sig[:100]); !errors.Is(err, ErrBadSignature) {
		t.Fatal("truncated signature accepted")
	}
}

func TestPrivateKeyRoundTrip(t *testing.T) {
	kp := mustKey(t)
	back, err := ParsePrivateKey(kp.PrivateBytes())
	if err != nil {
		t.Fatal(err)
	}
	if back.ID() != kp.ID() {
		t.Fatal("ID changed through private key round trip")
	}
	sig := back.Sign("x", []byte("m"))
	if err := kp.Public().Verify("x", []byte("m"), sig); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, PrivateKeySize - 1, PrivateKeySize + 1} {
		if _, err := ParsePrivateKey(make([]byte, n)); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParsePrivateKey(%d bytes) err = %v, want ErrBadKey", n, err)
		}
	}
	for _, n := range []int{0, 32, PublicKeySize - 1} {
		if _, err := ParsePublicKey(make([]byte, n)); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParsePublicKey(%d bytes) err = %v, want ErrBadKey", n, err)
		}
	}
}

func TestAgentCert(t *testing.T) {
	agent, machine, other := mustKey(t), mustKey(t), mustKey(t)
	now := time.Unix(1_800_000_000, 0)
	cert, err := IssueAgentCert(agent, machine.ID(), now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cert.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cert, err = UnmarshalAgentCert(b)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := cert.VerifyAgent(agent.ID(), machine.ID(), now.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if pub.ID() != agent.ID() || cert.AgentID() != agent.ID() {
		t.Fatal("wrong agent key returned")
	}

	if _, err := cert.Verify(other.ID(), now); !errors.Is(err, ErrCertWrongMachine) {
		t.Errorf("mismatched machine: err = %v", err)
	}
	if _, err := cert.Verify(machine.ID(), now.Add(2*time.Hour)); !errors.Is(err, ErrCertExpired) {
		t.Errorf("expired: err = %v", err)
	}
	if _, err := cert.Verify(machine.ID(), now.Add(-time.Hour)); !errors.Is(err, ErrCertExpired) {
		t.Errorf("not yet valid: err = %v", err)
	}
	if _, err := cert.VerifyAgent(other.ID(), machine.ID(), now); !errors.Is(err, ErrCertKeyMismatch) {
		t.Errorf("key substitution: err = %v", err)
	}

	// A certificate whose key was swapped for another agent's no longer verifies.
	swapped := *cert
	swapped.AgentKey = other.Public().Bytes()
	if _, err := swapped.Verify(machine.ID(), now); !errors.Is(err, ErrCertBadSignature) {
		t.Errorf("swapped key: err = %v", err)
	}
	// Stretching the expiry breaks the signature.
	stretched := *cert
	stretched.NotAfter += 1
	if _, err := stretched.Verify(machine.ID(), now); !errors.Is(err, ErrCertBadSignature) {
		t.Errorf("tampered expiry: err = %v", err)
	}
	// A certificate signed by someone other than the agent.
	forged := *cert
	body, _ := forged.signedBytes()
	forged.Signature = other.Sign("agent-cert", body)
	if _, err := forged.Verify(machine.ID(), now); !errors.Is(err, ErrCertBadSignature) {
		t.Errorf("forged: err = %v", err)
	}
	if err := VerifyPeerKey(machine.ID(), other.Public()); !errors.Is(err, ErrCertKeyMismatch) {
		t.Errorf("VerifyPeerKey accepted another key: %v", err)
	}
	if err := VerifyPeerKey(machine.ID(), machine.Public()); err != nil {
		t.Error(err)
	}
}

func TestUnmarshalAgentCertRejectsGarbage(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(t, "b")
		c, err := UnmarshalAgentCert(b)
		if err != nil {
			if !errors.Is(err, ErrCertMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if _, err := c.Verify(ID{}, time.Now()); err == nil {
			t.Fatal("random bytes verified as a certificate")
		}
	})
}

func FuzzUnmarshalAgentCert(f *testing.F) {
	agent, machine := mustKey(f), mustKey(f)
	cert, _ := IssueAgentCert(agent, machine.ID(), time.Now(), time.Hour)
	b, _ := cert.Marshal()
	f.Add(b)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := UnmarshalAgentCert(data)
		if err != nil {
			if !errors.Is(err, ErrCertMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		_, _ = c.Verify(machine.ID(), time.Now())
	})
}

// BenchmarkSign signs a different message each time: ML-DSA's rejection
// sampling takes a message-dependent number of rounds (about five on
// average for ML-DSA-65), so signing one fixed message measures that
// message's luck, not the cost of a signature (one fixed message here took
// 0.1 ms, the average over varying ones is 0.45 ms).
func BenchmarkSign(b *testing.B) {
	kp := mustKey(b)
	msg := make([]byte, 256)
	var i uint64
	for b.Loop() {
		i++
		binary.LittleEndian.PutUint64(msg, i)
		kp.Sign("bench", msg)
	}
}

func BenchmarkVerify(b *testing.B) {
	kp := mustKey(b)
	msg := make([]byte, 256)
	sig := kp.Sign("bench", msg)
	for b.Loop() {
		if kp.Public().Verify("bench", msg, sig) != nil {
			b.Fatal("verify failed")
		}
	}
}

// BenchmarkParsePublicKey measures unpacking a key (the expanded matrix
// included): what a key cache saves per use, and what a key parsed for one
// check (a handshake proof, an address record) costs.
func BenchmarkParsePublicKey(b *testing.B) {
	raw := mustKey(b).Public().Bytes()
	for b.Loop() {
		if _, err := ParsePublicKey(raw); err != nil {
			b.Fatal(err)
		}
	}
}
