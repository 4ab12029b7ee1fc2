package group

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"lukechampine.com/blake3"
)

// Sealed payloads of a group's task lists (and anything else that travels
// outside MLS messages but must be read by members only):
//
//	sealed = version:u8 (1) epoch:u64be branch:[8] nonce:[12] ciphertext
//
// The key is BLAKE3-derived (context sealKeyContext) from the epoch's MLS
// exporter secret and the payload's label (a task list's ID); the AEAD is
// ChaCha20-Poly1305 with the header, the group ID and the label as
// associated data. branch (the first bytes of the epoch authenticator)
// tells apart two epochs of the same number on two sides of a fork.

const (
	sealVersion    = 1
	sealHeaderSize = 1 + 8 + 8 + chacha20poly1305.NonceSize
	// sealExporterLabel is the MLS exporter label of the sealing secret.
	sealExporterLabel = "x0x/v1/group-seal"
	sealKeyContext    = "x0x/v1/group-seal-key"
	// SealOverhead is how many bytes Seal adds to a payload.
	SealOverhead = sealHeaderSize + chacha20poly1305.Overhead
)

// epochKey is one epoch's sealing secret.
type epochKey struct {
	epoch  uint64
	branch [8]byte
	secret []byte
	at     time.Time // when this replica entered the epoch
}

// deriveKeyLocked appends the current epoch's sealing secret, dropping
// those of epochs outside the fork window.
func (g *Group) deriveKeyLocked() {
	secret, err := g.cur.Export(sealExporterLabel, nil, 32)
	if err != nil {
		g.cfg.Logger.Debug("group: exporter failed", "group", g.id.Short(), "err", err)
		return
	}
	auth, err := g.cur.EpochAuthenticator()
	if err != nil {
		return
	}
	k := epochKey{epoch: g.cur.Epoch(), secret: secret, at: g.cfg.Clock.Now()}
	copy(k.branch[:], auth)
	g.keys = append(g.keys, k)
	g.trimKeysLocked()
}

// trimKeysLocked forgets the sealing keys of past epochs beyond the fork
// window, by count and by age (an epoch's key ages from when the next
// epoch began): a removed member's key of its last epoch opens nothing
// for long.
func (g *Group) trimKeysLocked() {
	now := g.cfg.Clock.Now()
	for len(g.keys) > 1 && (len(g.keys) > g.cfg.ForkWindow+1 || now.Sub(g.keys[1].at) > g.cfg.ForkTime) {
		clear(g.keys[0].secret)
		g.keys = g.keys[1:]
	}
}

func (g *Group) aead(k epochKey, label []byte) cipher.AEAD {
	var key [32]byte
	in := make([]byte, 0, len(k.secret)+len(label))
	blake3.DeriveKey(key[:], sealKeyContext, append(append(in, k.secret...), label...))
	a, _ := chacha20poly1305.New(key[:]) // a 32-byte key cannot fail
	clear(key[:])
	return a
}

func (g *Group) sealAD(header, label []byte) []byte {
	ad := make([]byte, 0, len(header)+len(g.id)+len(label))
	return append(append(append(ad, header...), g.id[:]...), label...)
}

// Seal encrypts payload for the members of the current epoch under the
// key of label (e.g. a task list's ID) and returns the sealed bytes
// (SealOverhead longer); nonces come from rnd (nil: crypto/rand). Errors:
// ErrClosed, the random source's error.
func (g *Group) Seal(label, payload []byte, rnd io.Reader) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || len(g.keys) == 0 {
		return nil, ErrClosed
	}
	k := g.keys[len(g.keys)-1]
	out := make([]byte, sealHeaderSize, sealHeaderSize+len(payload)+chacha20poly1305.Overhead)
	out[0] = sealVersion
	binary.BigEndian.PutUint64(out[1:], k.epoch)
	copy(out[9:17], k.branch[:])
	if _, err := io.ReadFull(rnd, out[17:sealHeaderSize]); err != nil {
		return nil, fmt.Errorf("group: seal nonce: %w", err)
	}
	return g.aead(k, label).Seal(out, out[17:sealHeaderSize], payload, g.sealAD(out[:sealHeaderSize], label)), nil
}

// Open decrypts what a member sealed under label in one of the epochs
// whose keys this member holds (the current one and the fork window's).
// Errors: ErrMalformed (not a sealed payload, or it does not decrypt),
// ErrUnknownEpoch, ErrClosed.
func (g *Group) Open(label, sealed []byte) ([]byte, error) {
	if len(sealed) < SealOverhead || sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: not a sealed payload", ErrMalformed)
	}
	epoch := binary.BigEndian.Uint64(sealed[1:])
	var branch [8]byte
	copy(branch[:], sealed[9:17])
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, ErrClosed
	}
	var key *epochKey
	for i := range g.keys {
		if g.keys[i].epoch == epoch && g.keys[i].branch == branch {
			k := g.keys[i]
			key = &k
		}
	}
	var a cipher.AEAD
	if key != nil {
		a = g.aead(*key, label)
	}
	g.mu.Unlock()
	if a == nil {
		return nil, fmt.Errorf("%w: epoch %d", ErrUnknownEpoch, epoch)
	}
	pt, err := a.Open(nil, sealed[17:sealHeaderSize], sealed[sealHeaderSize:], g.sealAD(sealed[:sealHeaderSize], label))
	if err != nil {
		return nil, fmt.Errorf("%w: sealed payload does not decrypt", ErrMalformed)
	}
	return pt, nil
}
