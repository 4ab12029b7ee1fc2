package group

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"
	"golang.org/x/crypto/chacha20poly1305"
	"lukechampine.com/blake3"

	"github.com/saorsa-labs/x0x-go/core/identity"
)

// Store layout (bbolt):
//
//	bucket "x0x-groups-v1"
//	  key   agent ID (32) || BLAKE3-keyed(index key, group ID) (32)
//	  value version:u8 (1) clean:u8 nonce[24] XChaCha20-Poly1305(group ID || state)
//
// The AEAD and index keys are BLAKE3-DeriveKey(storeKeyContext or
// storeIndexContext, the agent's private key): the agent key is itself
// sealed at rest with the data directory's secret (and passphrase), so
// reading the group store needs what reading the agent key needs, and the
// file does not even tell which groups the agent is in. The associated
// data is the record's key and the clean flag, so records cannot be
// swapped between groups or agents, nor a crash state passed off as a
// clean one. Every write is one bbolt transaction (fsync on commit).

const (
	storeBucket       = "x0x-groups-v1"
	storeKeyContext   = "x0x/v1/group-store"
	storeIndexContext = "x0x/v1/group-store-index"
	storeVersion      = 1
	storeHeader       = 2 + chacha20poly1305.NonceSizeX
)

// ErrStoreCorrupt: the group store, or one of its records, is damaged,
// foreign, or sealed with another agent's key. The store is never
// modified because of it.
var ErrStoreCorrupt = errors.New("group: group store damaged or foreign")

// Store keeps agents' group states in the data directory, sealed.
type Store struct {
	path string
	db   *bolt.DB
	mu   sync.Mutex
}

// StoredState is one group's stored state.
type StoredState struct {
	// Group names the group.
	Group ID
	// State is the replica's Snapshot.
	State []byte
	// Clean is true if it was saved when the replica closed (it is then
	// exact); false if saved on the way (an epoch change), when the
	// replica may have sent messages after it.
	Clean bool
}

// OpenStore opens (creating if needed) the group store at path. Errors:
// ErrStoreCorrupt (not a bbolt database), I/O errors.
func OpenStore(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		switch {
		case errors.Is(err, bolterr.ErrInvalid), errors.Is(err, bolterr.ErrVersionMismatch),
			errors.Is(err, bolterr.ErrChecksum):
			return nil, fmt.Errorf("%w: %s: %v", ErrStoreCorrupt, path, err)
		}
		return nil, fmt.Errorf("group: open store %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte(storeBucket))
		return err
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("group: store %s: %w", path, err)
	}
	return &Store{path: path, db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// sealer holds an agent's store keys.
type sealer struct {
	agent identity.AgentID
	index [32]byte
	a     interface {
		Seal(dst, nonce, plaintext, ad []byte) []byte
		Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
	}
}

func newSealer(self *identity.KeyPair) (*sealer, error) {
	var key [32]byte
	blake3.DeriveKey(key[:], storeKeyContext, self.PrivateBytes())
	a, err := chacha20poly1305.NewX(key[:])
	clear(key[:])
	if err != nil {
		return nil, err
	}
	sl := &sealer{agent: self.ID(), a: a}
	blake3.DeriveKey(sl.index[:], storeIndexContext, self.PrivateBytes())
	return sl, nil
}

// key returns the record key of group id.
func (sl *sealer) key(id ID) []byte {
	h := blake3.New(32, sl.index[:])
	h.Write(id[:])
	return h.Sum(append(make([]byte, 0, 64), sl.agent[:]...))
}

// Save stores self's state of a group (sealed), replacing what was there.
// Errors: I/O errors (the previous record is then intact).
func (s *Store) Save(self *identity.KeyPair, st StoredState, rnd io.Reader) error {
	if rnd == nil {
		rnd = rand.Reader
	}
	sl, err := newSealer(self)
	if err != nil {
		return err
	}
	key := sl.key(st.Group)
	head := make([]byte, storeHeader, storeHeader+len(st.Group)+len(st.State)+chacha20poly1305.Overhead)
	head[0] = storeVersion
	if st.Clean {
		head[1] = 1
	}
	if _, err := io.ReadFull(rnd, head[2:]); err != nil {
		return fmt.Errorf("group: store nonce: %w", err)
	}
	pt := append(append(make([]byte, 0, len(st.Group)+len(st.State)), st.Group[:]...), st.State...)
	val := sl.a.Seal(head, head[2:], pt, append(bytes.Clone(key), head[:2]...))
	clear(pt)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(storeBucket)).Put(key, val) })
}

// Delete forgets self's state of group id.
func (s *Store) Delete(self *identity.KeyPair, id ID) error {
	sl, err := newSealer(self)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(storeBucket)).Delete(sl.key(id)) })
}

// Load returns every group state of self, in group ID order. A record that
// does not open is reported in errs (each wrapping ErrStoreCorrupt and
// naming the group) and left in the store untouched.
func (s *Store) Load(self *identity.KeyPair) (states []StoredState, errs []error) {
	sl, err := newSealer(self)
	if err != nil {
		return nil, []error{err}
	}
	agent := self.ID()
	s.mu.Lock()
	defer s.mu.Unlock()
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(storeBucket)).Cursor()
		for k, v := c.Seek(agent[:]); k != nil && bytes.HasPrefix(k, agent[:]); k, v = c.Next() {
			if len(k) != 64 {
				errs = append(errs, fmt.Errorf("%w: key of %d bytes", ErrStoreCorrupt, len(k)))
				continue
			}
			if len(v) < storeHeader+len(ID{})+chacha20poly1305.Overhead || v[0] != storeVersion || v[1] > 1 {
				errs = append(errs, fmt.Errorf("%w: record %x: bad header", ErrStoreCorrupt, k[32:36]))
				continue
			}
			pt, err := sl.a.Open(nil, v[2:storeHeader], v[storeHeader:], append(bytes.Clone(k), v[:2]...))
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: record %x does not open", ErrStoreCorrupt, k[32:36]))
				continue
			}
			id := ID(pt[:len(ID{})])
			if !bytes.Equal(sl.key(id), k) {
				errs = append(errs, fmt.Errorf("%w: record %x names another group", ErrStoreCorrupt, k[32:36]))
				continue
			}
			states = append(states, StoredState{Group: id, State: pt[len(ID{}):], Clean: v[1] == 1})
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return states, errs
}
