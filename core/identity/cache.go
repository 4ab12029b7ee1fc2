package identity

import (
	"fmt"
	"sync"

	"lukechampine.com/blake3"

	"github.com/saorsa-labs/x0x-go/core/internal/lru"
)

// VerifyCache saves the work of seeing the same keys and signed objects
// again (peers reconnecting present the same machine key and the same agent
// certificates): it keeps parsed public keys, and the fact that a given
// signature over given bytes verified, within byte budgets, least recently
// used out. A cached verification is exactly as valid as a fresh one (the
// same bytes verify the same way); checks that depend on the time or the
// context (validity periods, expected IDs) are still made by the caller
// every time. Safe for concurrent use.
//
// Keys live in two parts: the keys that verify traffic (message origins,
// through ParsePublicKey) and, in a smaller budget of their own, keys
// checked once in a while (machine keys proving a handshake or signing an
// address record, through ParseColdKey). A parsed key holds about 41 KB
// and takes about 50 µs to parse; kept apart, a crowd of machines each
// seen once (identities are free) cannot push out the keys used for every
// message, which would then be parsed again per message.
type VerifyCache struct {
	mu       sync.Mutex
	keys     *lru.Cache[ID, *PublicKey]
	cold     *lru.Cache[ID, *PublicKey]
	verified *lru.Cache[[32]byte, struct{}]
}

// verifiedEntryCost is what one remembered verification costs (its key,
// list and map overhead).
const verifiedEntryCost = 128

// NewVerifyCache returns a cache of at most keyBytes of parsed keys used
// for traffic, coldKeyBytes of parsed keys checked once in a while, and
// verifiedBytes of remembered verifications.
func NewVerifyCache(keyBytes, coldKeyBytes, verifiedBytes int) *VerifyCache {
	return &VerifyCache{
		keys:     lru.New[ID, *PublicKey](keyBytes),
		cold:     lru.New[ID, *PublicKey](coldKeyBytes),
		verified: lru.New[[32]byte, struct{}](verifiedBytes),
	}
}

// ParsePublicKey is identity.ParsePublicKey through the cache (a nil
// cache parses every time). Keys are cached under their ID: IDs are
// collision-resistant hashes of keys, so one ID names one key.
func (c *VerifyCache) ParsePublicKey(raw []byte) (*PublicKey, error) {
	if c == nil {
		return ParsePublicKey(raw)
	}
	if len(raw) != PublicKeySize {
		return ParsePublicKey(raw) // the error, without hashing
	}
	return c.ParsePublicKeyOf(DeriveID(raw), raw)
}

// ParsePublicKeyOf is ParsePublicKey for a caller that already knows the
// ID raw derives (for instance a store that checked it on insertion): a
// cached key is found without hashing raw again. A key parsed here that
// does not derive id is an ErrBadKey and is not cached.
func (c *VerifyCache) ParsePublicKeyOf(id ID, raw []byte) (*PublicKey, error) {
	if c == nil {
		return parseKeyOf(id, raw)
	}
	return c.parse(id, raw, false)
}

// ParseColdKey is ParsePublicKey for a key checked once in a while (a
// machine's handshake proof or address record): a key cached in either
// part is used, and a new one is kept only among the cold keys.
func (c *VerifyCache) ParseColdKey(raw []byte) (*PublicKey, error) {
	if c == nil || len(raw) != PublicKeySize {
		return ParsePublicKey(raw)
	}
	return c.parse(DeriveID(raw), raw, true)
}

// Keys reports how many parsed keys each part holds.
func (c *VerifyCache) Keys() (traffic, cold int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys.Len(), c.cold.Len()
}

// parse finds id's key in the cache, or parses raw and caches it among the
// cold keys (cold) or the traffic keys. A cold key asked for as a traffic
// key moves to the traffic keys.
func (c *VerifyCache) parse(id ID, raw []byte, cold bool) (*PublicKey, error) {
	c.mu.Lock()
	pk, ok := c.keys.Get(id)
	if !ok {
		if pk, ok = c.cold.Get(id); ok && !cold {
			c.cold.Remove(id)
			c.keys.Put(id, pk, PublicKeyMemory)
		}
	}
	c.mu.Unlock()
	if ok {
		return pk, nil
	}
	pk, err := parseKeyOf(id, raw)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if cold {
		c.cold.Put(id, pk, PublicKeyMemory)
	} else {
		c.keys.Put(id, pk, PublicKeyMemory)
	}
	c.mu.Unlock()
	return pk, nil
}

// parseKeyOf parses raw and checks that it derives id.
func parseKeyOf(id ID, raw []byte) (*PublicKey, error) {
	pk, err := ParsePublicKey(raw)
	if err != nil {
		return nil, err
	}
	if pk.ID() != id {
		return nil, fmt.Errorf("%w: key derives %s, expected %s", ErrBadKey, pk.ID().Short(), id.Short())
	}
	return pk, nil
}

// Verify is pub.Verify, remembering success: the same signature over the
// same bytes by the same key for the same purpose is not verified twice.
func (c *VerifyCache) Verify(pub *PublicKey, purpose string, msg, sig []byte) error {
	h := blake3.New(32, nil)
	for _, part := range [][]byte{[]byte(purpose), pub.raw, msg, sig} {
		var n [8]byte
		for i, l := 0, len(part); i < 8; i, l = i+1, l>>8 {
			n[i] = byte(l)
		}
		h.Write(n[:])
		h.Write(part)
	}
	var k [32]byte
	h.Sum(k[:0])
	c.mu.Lock()
	_, ok := c.verified.Get(k)
	c.mu.Unlock()
	if ok {
		return nil
	}
	if err := pub.Verify(purpose, msg, sig); err != nil {
		return err
	}
	c.mu.Lock()
	c.verified.Put(k, struct{}{}, verifiedEntryCost)
	c.mu.Unlock()
	return nil
}
