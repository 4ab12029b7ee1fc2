package mls

import (
	"bytes"
	"testing"
	"time"
)

// TestStoredKeyPackage stores a key package with its private keys,
// restores it and joins a group with the restored one; corrupt, foreign
// and expired stored packages are refused with typed errors.
func TestStoredKeyPackage(t *testing.T) {
	for _, cs := range []CipherSuite{grpSuite, pqSuite} {
		t.Run(cs.String(), func(t *testing.T) { testStoredKeyPackage(t, cs) })
	}
}

func testStoredKeyPackage(t *testing.T, cs CipherSuite) {
	cfg := &Config{}
	alice, bob := newTestMember(t, cs, "alice"), newTestMember(t, cs, "bob")
	kp := bob.keyPackage(t, cs, cfg)
	stored, err := kp.MarshalPrivate()
	must(t, "marshal", err)
	kp.Wipe()
	if _, err := kp.MarshalPrivate(); !isErr(err, ErrInvalidKeyPackage) {
		t.Fatalf("marshal after wipe: %v", err)
	}

	r, err := UnmarshalPrivateKeyPackage(stored, bob.sigPriv, cfg)
	must(t, "unmarshal", err)
	if !bytes.Equal(r.KeyPackage(), kp.KeyPackage()) || !bytes.Equal(r.Ref(), kp.Ref()) || r.CipherSuite() != cs {
		t.Fatal("restored key package differs")
	}
	if again, err := r.MarshalPrivate(); err != nil || !bytes.Equal(again, stored) {
		t.Fatalf("re-marshal: %v", err)
	}

	// Join with the restored package.
	a, err := CreateGroup(cs, []byte("stored kp group"), alice.cred, alice.sigPriv, cfg)
	must(t, "create", err)
	defer a.Close()
	res := mustCommit(t, a, &CommitOptions{Add: [][]byte{r.KeyPackage()}})
	b := mustJoin(t, res.Welcome, r, cfg)
	defer b.Close()
	checkInSync(t, a, b)
	msg, err := a.Protect([]byte("hi"), nil)
	must(t, "protect", err)
	mustProcess(t, msg, b)

	// Another member's signature key, or a malformed one.
	_, err = UnmarshalPrivateKeyPackage(stored, alice.sigPriv, cfg)
	wantErr(t, "foreign signature key", err, ErrInvalidKeyPackage)
	_, err = UnmarshalPrivateKeyPackage(stored, []byte{1}, cfg)
	wantErr(t, "malformed signature key", err, ErrInvalidKeyPackage)
	// Expired: the stored package is refused like ImportKeyPackage refuses
	// it.
	late := &Config{Now: func() time.Time { return time.Now().Add(DefaultKeyPackageLifetime + 24*time.Hour) }}
	_, err = UnmarshalPrivateKeyPackage(stored, bob.sigPriv, late)
	wantErr(t, "expired", err, ErrInvalidLeafNode)
	// Size limit.
	_, err = UnmarshalPrivateKeyPackage(stored, bob.sigPriv, &Config{MaxStateSize: len(stored) - 1})
	wantErr(t, "over the limit", err, ErrMessageTooLarge)

	// Every truncation and bit flip is refused with a typed error.
	for n := range len(stored) {
		_, err := UnmarshalPrivateKeyPackage(stored[:n], bob.sigPriv, cfg)
		if !isDecodeError(err) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	step := max(1, len(stored)/512)
	for i := 0; i < len(stored); i += step {
		bad := bytes.Clone(stored)
		bad[i] ^= 1 << (i % 8)
		got, err := UnmarshalPrivateKeyPackage(bad, bob.sigPriv, cfg)
		if err == nil {
			// Only a bit that the key's own encoding ignores (X25519
			// clamping) can pass the check against the public key.
			if !bytes.Equal(got.KeyPackage(), kp.KeyPackage()) || i < len(stored)-2*(len(r.initPriv)+1) {
				t.Fatalf("bit flip at byte %d: accepted", i)
			}
			continue
		}
		if !isDecodeError(err) && !isErr(err, ErrInvalidKeyPackage) && !isErr(err, ErrInvalidLeafNode) &&
			!isErr(err, ErrUnsupportedSuite) && !isErr(err, ErrCrypto) {
			t.Fatalf("bit flip at byte %d: undocumented error %v", i, err)
		}
	}
	bad := bytes.Clone(stored)
	bad[0] = 'X'
	_, err = UnmarshalPrivateKeyPackage(bad, bob.sigPriv, cfg)
	if !isDecodeError(err) || !isErr(err, ErrInvalidValue) {
		t.Fatalf("wrong magic: %v", err)
	}
	_, err = UnmarshalPrivateKeyPackage(mustMarshalState(t), bob.sigPriv, cfg)
	if !isDecodeError(err) {
		t.Fatalf("a group state as a key package: %v", err)
	}
	bad = bytes.Clone(stored)
	bad[5] = 9
	_, err = UnmarshalPrivateKeyPackage(bad, bob.sigPriv, cfg)
	wantErr(t, "unknown version", err, ErrUnknownValue)
}

// mustMarshalState returns the state of a fresh one-member group.
func mustMarshalState(t *testing.T) []byte {
	t.Helper()
	g := newTestGroup(t, 1, nil).groups[0]
	defer g.Close()
	return mustMarshal(t, g)
}
