package identity

import (
	"crypto/rand"
	"errors"
	"testing"
)

// The cache remembers only successes, keyed by everything that was
// verified: changing the purpose, the key, the message or the signature
// verifies afresh (and fails), never from the cache.
func TestVerifyCache(t *testing.T) {
	k, err := GenerateKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := GenerateKeyPair(rand.Reader)
	c := NewVerifyCache(1<<20, 1<<20, 1<<20)
	pk, err := c.ParsePublicKey(k.Public().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.ParsePublicKey(k.Public().Bytes()); again != pk {
		t.Fatal("a cached key was parsed again")
	}
	if _, err := c.ParsePublicKey([]byte{1, 2, 3}); err == nil {
		t.Fatal("garbage parsed")
	}
	msg := []byte("the signed bytes")
	sig := k.Sign("p", msg)
	for i := range 2 { // fresh, then from the cache
		if err := c.Verify(pk, "p", msg, sig); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	bad := append([]byte(nil), sig...)
	bad[10] ^= 1
	for name, f := range map[string]func() error{
		"purpose":   func() error { return c.Verify(pk, "q", msg, sig) },
		"key":       func() error { return c.Verify(other.Public(), "p", msg, sig) },
		"message":   func() error { return c.Verify(pk, "p", []byte("other bytes"), sig) },
		"signature": func() error { return c.Verify(pk, "p", msg, bad) },
	} {
		for i := range 2 {
			if err := f(); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("changed %s, round %d: %v", name, i, err)
			}
		}
	}
}

// ParsePublicKeyOf finds a key cached by ParsePublicKey under its ID, and
// refuses (without caching) a key that does not derive the ID it is
// given, so a wrong pairing cannot plant a key under another's ID.
func TestParsePublicKeyOf(t *testing.T) {
	k, _ := GenerateKeyPair(rand.Reader)
	other, _ := GenerateKeyPair(rand.Reader)
	c := NewVerifyCache(1<<20, 1<<20, 1<<20)
	if _, err := c.ParsePublicKeyOf(k.ID(), other.Public().Bytes()); !errors.Is(err, ErrBadKey) {
		t.Fatalf("a key under another's ID: %v, want ErrBadKey", err)
	}
	pk, err := c.ParsePublicKeyOf(k.ID(), k.Public().Bytes())
	if err != nil || pk.ID() != k.ID() {
		t.Fatalf("the right key: %v, %v", pk, err)
	}
	if again, _ := c.ParsePublicKey(k.Public().Bytes()); again != pk {
		t.Fatal("ParsePublicKey did not find the key ParsePublicKeyOf cached")
	}
	if again, _ := c.ParsePublicKeyOf(k.ID(), nil); again != pk {
		t.Fatal("a cached key was not found by its ID alone")
	}
	if _, err := (*VerifyCache)(nil).ParsePublicKeyOf(k.ID(), other.Public().Bytes()); !errors.Is(err, ErrBadKey) {
		t.Fatalf("nil cache, wrong key: %v", err)
	}
}

// Keys checked once in a while (ParseColdKey) are kept apart from the keys
// that verify traffic: a crowd of them does not push a traffic key out,
// they are found again while their own budget holds them, and a cold key
// that turns out to verify traffic moves over.
func TestColdKeysKeepTrafficKeys(t *testing.T) {
	keys := make([]*KeyPair, 8)
	for i := range keys {
		keys[i], _ = GenerateKeyPair(rand.Reader)
	}
	c := NewVerifyCache(2*PublicKeyMemory, PublicKeyMemory, 1<<20)
	a, _ := c.ParsePublicKey(keys[0].Public().Bytes())
	b, _ := c.ParsePublicKey(keys[1].Public().Bytes())
	var cold []*PublicKey
	for _, k := range keys[2:7] {
		pk, err := c.ParseColdKey(k.Public().Bytes())
		if err != nil {
			t.Fatal(err)
		}
		cold = append(cold, pk)
	}
	if traffic, cold := c.Keys(); traffic != 2 || cold != 1 {
		t.Fatalf("parts hold %d traffic and %d cold keys, want 2 and 1", traffic, cold)
	}
	if again, _ := c.ParsePublicKey(keys[0].Public().Bytes()); again != a {
		t.Fatal("cold keys pushed out a traffic key")
	}
	if again, _ := c.ParsePublicKey(keys[1].Public().Bytes()); again != b {
		t.Fatal("cold keys pushed out a traffic key")
	}
	if again, _ := c.ParseColdKey(keys[0].Public().Bytes()); again != a {
		t.Fatal("ParseColdKey parsed a key the traffic part holds")
	}
	if again, _ := c.ParseColdKey(keys[6].Public().Bytes()); again != cold[4] {
		t.Fatal("the last cold key was not kept")
	}
	// keys[6] is cold; used for traffic it moves over (pushing out the
	// least recent traffic key) and stays there whatever cold keys follow.
	moved, _ := c.ParsePublicKey(keys[6].Public().Bytes())
	if moved != cold[4] {
		t.Fatal("a cold key asked for as a traffic key was parsed again")
	}
	if again, _ := c.ParseColdKey(keys[2].Public().Bytes()); again == cold[0] {
		t.Fatal("cold keys beyond their budget were kept")
	}
	for _, k := range keys[2:6] {
		_, _ = c.ParseColdKey(k.Public().Bytes())
	}
	if again, _ := c.ParsePublicKey(keys[6].Public().Bytes()); again != moved {
		t.Fatal("a key that moved to the traffic part was pushed out by cold keys")
	}
	if _, err := c.ParseColdKey([]byte{1, 2, 3}); !errors.Is(err, ErrBadKey) {
		t.Fatalf("garbage: %v, want ErrBadKey", err)
	}
	if _, err := (*VerifyCache)(nil).ParseColdKey(keys[0].Public().Bytes()); err != nil {
		t.Fatalf("nil cache: %v", err)
	}
}
