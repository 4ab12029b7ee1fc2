package mls

import (
	"fmt"
	"math"
)

// The secret tree (RFC 9420 section 9): from the epoch's encryption_secret
// at the root, each parent's secret yields its children's
//
//	left  = ExpandWithLabel(secret, "tree", "left", Nh)
//	right = ExpandWithLabel(secret, "tree", "right", Nh)
//
// and each leaf's secret seeds two hash ratchets, handshake and application:
//
//	ratchet_secret[0]   = ExpandWithLabel(leaf_secret, "handshake"|"application", "", Nh)
//	key[j]              = DeriveTreeSecret(ratchet_secret[j], "key", j, Nk)
//	nonce[j]            = DeriveTreeSecret(ratchet_secret[j], "nonce", j, Nn)
//	ratchet_secret[j+1] = DeriveTreeSecret(ratchet_secret[j], "secret", j, Nh)
//
// Secrets are derived on demand and deleted (zeroed) as soon as they are
// consumed (section 9.2's deletion schedule): a parent's secret once both
// children are derived, a leaf's once its ratchets exist, a ratchet secret
// once the next one exists, a key once a message has been decrypted with it.
// So a later compromise of the tree reveals no key already used.

// Errors of the secret tree and its ratchets.
var (
	// errGenerationUsed means a key for that generation was already used
	// and deleted, or fell out of the out-of-order window.
	errGenerationUsed = fmt.Errorf("%w: ratchet generation already used or too old", ErrReplay)
	// errGenerationTooFar means a generation lies further ahead of the
	// ratchet than the configured maximum forward distance.
	errGenerationTooFar = fmt.Errorf("%w: ratchet generation too far ahead", ErrInvalidMessage)
	// errRatchetExhausted means a ratchet reached generation 2^32-1.
	errRatchetExhausted = fmt.Errorf("%w: ratchet generations exhausted", ErrInvalidMessage)
	// errLeafIndex means a leaf index outside the secret tree.
	errLeafIndex = fmt.Errorf("%w: leaf index outside the tree", ErrInvalidSender)
	// errTreeWiped means the secret tree was wiped (its epoch ended).
	errTreeWiped = fmt.Errorf("%w: secret tree wiped", ErrInactive)
)

// Default ratchet limits. A receiver ratchets at most
// defaultMaxForwardDistance generations ahead of the last generation it
// derived (bounding the work a single message can cause) and keeps the keys
// of at most defaultOutOfOrderWindow skipped generations per ratchet
// (bounding memory; the oldest is dropped first).
const (
	defaultMaxForwardDistance = 1024
	defaultOutOfOrderWindow   = 32
)

// ratchetType selects one of a leaf's two ratchets.
type ratchetType uint8

const (
	handshakeRatchet ratchetType = iota
	applicationRatchet
)

func (r ratchetType) label() string {
	if r == handshakeRatchet {
		return "handshake"
	}
	return "application"
}

// ratchetKey is the AEAD key and nonce of one ratchet generation.
type ratchetKey struct {
	key, nonce []byte
}

func (k ratchetKey) clone() ratchetKey {
	return ratchetKey{key: append([]byte{}, k.key...), nonce: append([]byte{}, k.nonce...)}
}

func (k ratchetKey) zero() {
	zero(k.key)
	zero(k.nonce)
}

// hashRatchet is one sender's handshake or application ratchet.
type hashRatchet struct {
	s          Suite
	secret     []byte // ratchet_secret[next]; nil once exhausted
	next       uint32 // the next generation not yet derived
	keys       map[uint32]ratchetKey
	maxForward uint32
	window     int
}

func newHashRatchet(s Suite, secret []byte, maxForward uint32, window int) *hashRatchet {
	return &hashRatchet{s: s, secret: secret, keys: map[uint32]ratchetKey{}, maxForward: maxForward, window: window}
}

// derive returns the key and nonce of generation r.next and advances the
// ratchet, deleting the old ratchet secret.
func (r *hashRatchet) derive() (ratchetKey, error) {
	if r.secret == nil {
		return ratchetKey{}, errRatchetExhausted
	}
	g := r.next
	key, err := r.s.DeriveTreeSecret(r.secret, "key", g, r.s.KeySize())
	if err != nil {
		return ratchetKey{}, err
	}
	nonce, err := r.s.DeriveTreeSecret(r.secret, "nonce", g, r.s.NonceSize())
	if err != nil {
		return ratchetKey{}, err
	}
	var nextSecret []byte
	if g < math.MaxUint32 {
		if nextSecret, err = r.s.DeriveTreeSecret(r.secret, "secret", g, r.s.HashSize()); err != nil {
			return ratchetKey{}, err
		}
		r.next = g + 1
	}
	zero(r.secret)
	r.secret = nextSecret
	return ratchetKey{key: key, nonce: nonce}, nil
}

// nextKey returns the next generation and its key for sending; the ratchet
// keeps nothing of it.
func (r *hashRatchet) nextKey() (uint32, ratchetKey, error) {
	g := r.next
	k, err := r.derive()
	return g, k, err
}

// keyAt returns a copy of generation g's key for receiving, ratcheting
// forward if needed and keeping the keys of skipped generations within the
// out-of-order window. The key stays until erase(g).
func (r *hashRatchet) keyAt(g uint32) (ratchetKey, error) {
	if k, ok := r.keys[g]; ok {
		return k.clone(), nil
	}
	if g < r.next {
		return ratchetKey{}, errGenerationUsed
	}
	if r.secret == nil {
		return ratchetKey{}, errRatchetExhausted
	}
	if g-r.next > r.maxForward {
		return ratchetKey{}, errGenerationTooFar
	}
	for r.secret != nil && r.next <= g {
		cur := r.next
		k, err := r.derive()
		if err != nil {
			return ratchetKey{}, err
		}
		r.keys[cur] = k
		r.evict(g)
		if cur == g {
			return k.clone(), nil
		}
	}
	return ratchetKey{}, errRatchetExhausted
}

// evict drops the oldest kept keys (never keep) while more than the window
// are kept.
func (r *hashRatchet) evict(keep uint32) {
	for len(r.keys) > r.window {
		oldest, found := uint32(0), false
		for g := range r.keys {
			if g != keep && (!found || g < oldest) {
				oldest, found = g, true
			}
		}
		if !found {
			return
		}
		r.keys[oldest].zero()
		delete(r.keys, oldest)
	}
}

// erase deletes generation g's key after it has been used.
func (r *hashRatchet) erase(g uint32) {
	if k, ok := r.keys[g]; ok {
		k.zero()
		delete(r.keys, g)
	}
}

func (r *hashRatchet) wipe() {
	zero(r.secret)
	r.secret = nil
	for g, k := range r.keys {
		k.zero()
		delete(r.keys, g)
	}
}

// secretTree holds the undeleted part of one epoch's secret tree. It is not
// safe for concurrent use: the epoch state that owns it serializes access.
type secretTree struct {
	s     Suite
	size  treeSize
	nodes map[uint32][]byte // node secrets not yet expanded
	// ratchets by leaf index, [handshake, application].
	ratchets   map[uint32]*[2]*hashRatchet
	maxForward uint32
	window     int
}

// newSecretTree starts a secret tree of leaves leaves (a power of two) from
// a copy of encryptionSecret.
func newSecretTree(s Suite, encryptionSecret []byte, leaves uint32) (*secretTree, error) {
	n, err := newTreeSize(uint64(leaves))
	if err != nil {
		return nil, err
	}
	if len(encryptionSecret) != s.HashSize() {
		return nil, fmt.Errorf("%w: encryption secret is %d bytes, want %d", ErrCrypto, len(encryptionSecret), s.HashSize())
	}
	return &secretTree{
		s:          s,
		size:       n,
		nodes:      map[uint32][]byte{n.root(): append([]byte{}, encryptionSecret...)},
		ratchets:   map[uint32]*[2]*hashRatchet{},
		maxForward: defaultMaxForwardDistance,
		window:     defaultOutOfOrderWindow,
	}, nil
}

// ratchet returns leaf's ratchet of type typ, deriving the tree down to the
// leaf on first use.
func (t *secretTree) ratchet(leaf uint32, typ ratchetType) (*hashRatchet, error) {
	if leaf >= t.size.leaves() {
		return nil, errLeafIndex
	}
	if rs, ok := t.ratchets[leaf]; ok {
		return rs[typ], nil
	}
	target := nodeOfLeaf(leaf)
	// Find the lowest undeleted ancestor (or the leaf itself).
	path, err := t.size.directPath(target)
	if err != nil {
		return nil, err
	}
	path = append([]uint32{target}, path...)
	start := -1
	for i, x := range path {
		if _, ok := t.nodes[x]; ok {
			start = i
			break
		}
	}
	if start < 0 {
		// Every ancestor was expanded and the leaf's ratchets are gone:
		// the tree was wiped.
		return nil, errTreeWiped
	}
	// Expand downwards from path[start] to the leaf.
	for i := start; i > 0; i-- {
		x := path[i]
		secret := t.nodes[x]
		l, _ := left(x)
		r, _ := right(x)
		ls, err := t.s.ExpandWithLabel(secret, "tree", []byte("left"), t.s.HashSize())
		if err != nil {
			return nil, err
		}
		rs, err := t.s.ExpandWithLabel(secret, "tree", []byte("right"), t.s.HashSize())
		if err != nil {
			return nil, err
		}
		t.nodes[l], t.nodes[r] = ls, rs
		zero(secret)
		delete(t.nodes, x)
	}
	leafSecret := t.nodes[target]
	var rs [2]*hashRatchet
	for _, typ := range []ratchetType{handshakeRatchet, applicationRatchet} {
		sec, err := t.s.ExpandWithLabel(leafSecret, typ.label(), nil, t.s.HashSize())
		if err != nil {
			return nil, err
		}
		rs[typ] = newHashRatchet(t.s, sec, t.maxForward, t.window)
	}
	zero(leafSecret)
	delete(t.nodes, target)
	t.ratchets[leaf] = &rs
	return rs[typ], nil
}

// nextKey returns the generation and key the sender at leaf uses for its
// next message of type typ.
func (t *secretTree) nextKey(leaf uint32, typ ratchetType) (uint32, ratchetKey, error) {
	r, err := t.ratchet(leaf, typ)
	if err != nil {
		return 0, ratchetKey{}, err
	}
	return r.nextKey()
}

// keyAt returns a copy of the key of generation g of leaf's ratchet typ,
// for decrypting; call erase once the message has been decrypted.
func (t *secretTree) keyAt(leaf uint32, typ ratchetType, g uint32) (ratchetKey, error) {
	r, err := t.ratchet(leaf, typ)
	if err != nil {
		return ratchetKey{}, err
	}
	return r.keyAt(g)
}

// erase deletes the key of generation g of leaf's ratchet typ.
func (t *secretTree) erase(leaf uint32, typ ratchetType, g uint32) {
	if rs, ok := t.ratchets[leaf]; ok {
		rs[typ].erase(g)
	}
}

// wipe zeroes every secret the tree still holds.
func (t *secretTree) wipe() {
	for x, s := range t.nodes {
		zero(s)
		delete(t.nodes, x)
	}
	for l, rs := range t.ratchets {
		rs[0].wipe()
		rs[1].wipe()
		delete(t.ratchets, l)
	}
}

// senderDataKeyNonce derives the key and nonce that protect a
// PrivateMessage's sender data (RFC 9420 section 6.3.2) from the first Nh
// bytes of its content ciphertext.
func senderDataKeyNonce(s Suite, senderDataSecret, ciphertext []byte) (ratchetKey, error) {
	sample := ciphertext[:min(len(ciphertext), s.HashSize())]
	key, err := s.ExpandWithLabel(senderDataSecret, "key", sample, s.KeySize())
	if err != nil {
		return ratchetKey{}, err
	}
	nonce, err := s.ExpandWithLabel(senderDataSecret, "nonce", sample, s.NonceSize())
	if err != nil {
		return ratchetKey{}, err
	}
	return ratchetKey{key: key, nonce: nonce}, nil
}
