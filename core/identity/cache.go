package identity

import (
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
type VerifyCache struct {
	mu       sync.Mutex
	keys     *lru.Cache[[32]byte, *PublicKey]
	verified *lru.Cache[[32]byte, struct{}]
}

// verifiedEntryCost is what one remembered verification costs (its key,
// list and map overhead).
const verifiedEntryCost = 128

// NewVerifyCache returns a cache of at most keyBytes of parsed keys and
// verifiedBytes of remembered verifications.
func NewVerifyCache(keyBytes, verifiedBytes int) *VerifyCache {
	return &VerifyCache{keys: lru.New[[32]byte, *PublicKey](keyBytes), verified: lru.New[[32]byte, struct{}](verifiedBytes)}
}

// ParsePublicKey is identity.ParsePublicKey through the cache (a nil
// cache parses every time).
func (c *VerifyCache) ParsePublicKey(raw []byte) (*PublicKey, error) {
	if c == nil {
		return ParsePublicKey(raw)
	}
	h := blake3.Sum256(raw)
	c.mu.Lock()
	pk, ok := c.keys.Get(h)
	c.mu.Unlock()
	if ok {
		return pk, nil
	}
	pk, err := ParsePublicKey(raw)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.keys.Put(h, pk, PublicKeyMemory)
	c.mu.Unlock()
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
