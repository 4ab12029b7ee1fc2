package membership

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"time"

	"lukechampine.com/blake3"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// Records signs this node's address records and checks other nodes'.
//
// Membership dials an address that another peer merely passed on (a
// FORWARDJOIN's joiner, a SHUFFLE's origin and nodes, a PINGREQ target, a
// pub/sub FIND's seeker) only if a record signed by the address's owner
// vouches for it, or if this node saw the owner at that address on an
// authenticated connection. So a peer cannot point this node's dials at a
// victim in another node's name; with its own throwaway keys it can, but
// such dials are rate-limited (Config.ClaimedDialRate) and an address that
// failed is not dialled again for a while.
type Records interface {
	// Sign returns this node's record for addr. Implementations cache it.
	Sign(addr string) ([]byte, error)
	// Check returns nil if rec is a valid, current record of id for addr,
	// else an error wrapping ErrBadRecord.
	Check(id identity.PeerID, addr string, rec []byte) error
}

// ErrBadRecord is wrapped by every error Records.Check returns.
var ErrBadRecord = errors.New("membership: address record does not vouch for the address")

// Address-record lifetimes: a record is valid for RecordValidity after it
// was issued (and up to recordSkew before, for clock skew); a node re-signs
// when its cached record is half that old.
const (
	RecordValidity = 24 * time.Hour
	recordSkew     = 5 * time.Minute
	// MaxRecordLen bounds an encoded record (an ML-DSA-65 key and signature
	// and an address fit in about 5.5 KB).
	MaxRecordLen = 6 << 10
	// recordCacheSize bounds the verified-record cache of MachineRecords.
	recordCacheSize = 4096
)

// addrRecord is the signed statement "the node whose key is Key can be
// reached at Addr", issued at Issued (Unix seconds).
type addrRecord struct {
	Key    []byte `cbor:"1,keyasint"`
	Addr   string `cbor:"2,keyasint"`
	Issued int64  `cbor:"3,keyasint"`
	Sig    []byte `cbor:"4,keyasint,omitempty"`
}

func (r *addrRecord) signedBytes() ([]byte, error) {
	return wire.Marshal(&addrRecord{Key: r.Key, Addr: r.Addr, Issued: r.Issued})
}

// MachineRecords signs with the node's ML-DSA-65 machine key and checks
// records against the key they carry (whose hash must be the peer ID).
// Verified records are cached, so a record passed around again costs a
// hash, not a signature check. Safe for concurrent use.
type MachineRecords struct {
	key  *identity.KeyPair
	clk  clock.Clock
	keys *identity.VerifyCache

	mu       sync.Mutex
	own      []byte // cached record of ownAddr
	ownAddr  string
	ownAt    time.Time
	verified map[[32]byte]time.Time // record hash -> issue time
	order    [][32]byte             // FIFO eviction of verified
}

// NewMachineRecords returns Records for the machine key k on clock clk.
// Keys of other machines' records are parsed through keys (the node's
// shared cache, among its cold keys: a record is checked once per
// issue; nil parses each time).
func NewMachineRecords(k *identity.KeyPair, clk clock.Clock, keys *identity.VerifyCache) *MachineRecords {
	return &MachineRecords{key: k, clk: clk, keys: keys, verified: make(map[[32]byte]time.Time)}
}

// Sign returns this machine's record for addr, re-signed when the cached one
// is half its validity old or names another address.
func (r *MachineRecords) Sign(addr string) ([]byte, error) {
	now := r.clk.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.own != nil && r.ownAddr == addr && now.Sub(r.ownAt) < RecordValidity/2 {
		return r.own, nil
	}
	rec := &addrRecord{Key: r.key.Public().Bytes(), Addr: addr, Issued: now.Unix()}
	msg, err := rec.signedBytes()
	if err != nil {
		return nil, err
	}
	rec.Sig = r.key.Sign(wire.PurposeAddrRecord, msg)
	b, err := wire.Marshal(rec)
	if err != nil {
		return nil, err
	}
	r.own, r.ownAddr, r.ownAt = b, addr, now
	return b, nil
}

// Check verifies rec for id and addr: the key hashes to id, the address is
// addr, the record is current, and the ML-DSA-65 signature verifies.
func (r *MachineRecords) Check(id identity.PeerID, addr string, rec []byte) error {
	if len(rec) == 0 {
		return fmt.Errorf("%w: none", ErrBadRecord)
	}
	if len(rec) > MaxRecordLen {
		return fmt.Errorf("%w: %d bytes", ErrBadRecord, len(rec))
	}
	now := r.clk.Now()
	h := blake3.Sum256(rec)
	r.mu.Lock()
	issued, ok := r.verified[h]
	r.mu.Unlock()
	var ar addrRecord
	if err := wire.UnmarshalLimit(rec, &ar, "address record", wire.LimitSmall); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if ar.Addr != addr {
		return fmt.Errorf("%w: it names %q", ErrBadRecord, ar.Addr)
	}
	if identity.DeriveID(ar.Key) != id {
		return fmt.Errorf("%w: key of another node", ErrBadRecord)
	}
	at := time.Unix(ar.Issued, 0)
	if now.Sub(at) > RecordValidity || at.Sub(now) > recordSkew {
		return fmt.Errorf("%w: issued %s, out of date", ErrBadRecord, at.UTC().Format(time.RFC3339))
	}
	if ok && issued.Equal(at) {
		return nil
	}
	pk, err := r.keys.ParseColdKey(ar.Key)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	msg, err := ar.signedBytes()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if err := pk.Verify(wire.PurposeAddrRecord, msg, ar.Sig); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.verified[h]; !ok {
		if len(r.order) >= recordCacheSize {
			delete(r.verified, r.order[0])
			r.order = r.order[1:]
		}
		r.order = append(r.order, h)
	}
	r.verified[h] = at
	return nil
}

// SimulatedRecords is an INSECURE stand-in for MachineRecords, for the
// simulator only (see pubsub.SimulatedSigner): a record is a BLAKE3 MAC of
// the address keyed by the public node ID, which anyone can compute.
type SimulatedRecords struct{ ID identity.PeerID }

// Sign returns the simulated record of addr.
func (s SimulatedRecords) Sign(addr string) ([]byte, error) { return simRecord(s.ID, addr), nil }

// Check recomputes the simulated record.
func (s SimulatedRecords) Check(id identity.PeerID, addr string, rec []byte) error {
	if subtle.ConstantTimeCompare(simRecord(id, addr), rec) != 1 {
		return fmt.Errorf("%w: simulated record mismatch", ErrBadRecord)
	}
	return nil
}

func simRecord(id identity.PeerID, addr string) []byte {
	h := blake3.New(32, id[:])
	h.Write([]byte(addr))
	return h.Sum(nil)
}
