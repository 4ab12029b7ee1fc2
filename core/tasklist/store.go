package tasklist

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/saorsa-labs/x0x-go/core/crdt"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"
)

// Store layout (bbolt):
//
//	"x0x-tasklist"            root bucket
//	  "format" = storeFormat  marks the file as ours
//	  "lists"                 bucket
//	    <ListID>              bucket per list
//	      "meta" = metaWire
//	      "d"  author||seq(8, big endian) -> signed delta
//	      "o"  index(8, big endian) -> author||seq   (apply order: causal)
//	                                 or 's'||author||lo||hi (8 bytes each: numbers skipped, statesync.go)
//	      "k"  author -> ML-DSA-65 public key
//	      "ck" = ckWire               the state-transfer checkpoint (statesync.go)
//	      "sh" = snapHeader          compacted snapshot (snapshot.go)
//	      "s"  part(8, big endian) -> snapshot part
//
// Every write is one bbolt transaction (fsync on commit), so a kill -9
// leaves either all or none of an operation's records.
var (
	rootBucket  = []byte("x0x-tasklist")
	formatKey   = []byte("format")
	listsBucket = []byte("lists")
	metaKey     = []byte("meta")
	deltaBucket = []byte("d")
	orderBucket = []byte("o")
	keyBucket   = []byte("k")
)

const storeFormat = "x0x-tasklist-store-v1"

var ckKey = []byte("ck")

// ckWire is the persisted state-transfer checkpoint.
type ckWire struct {
	CK crdt.VersionVector `cbor:"1,keyasint"`
}

// readCK decodes list bucket b's checkpoint record (empty if absent).
func readCK(b *bolt.Bucket, id ListID) (crdt.VersionVector, error) {
	v := b.Get(ckKey)
	if v == nil {
		return crdt.VersionVector{}, nil
	}
	var cw ckWire
	if err := wire.UnmarshalLimit(v, &cw, "checkpoint record", wire.LimitMedium); err != nil {
		return crdt.VersionVector{}, fmt.Errorf("%w: list %s checkpoint record: %v", ErrStoreCorrupt, id, err)
	}
	return cw.CK, nil
}

// readOrder reads order record v of list id: a delta's key (its delta
// from db, copied) or a skip entry.
func readOrder(db *bolt.Bucket, id ListID, i uint64, v []byte) ([]byte, error) {
	if len(v) == 40 {
		raw := db.Get(v)
		if raw == nil {
			return nil, fmt.Errorf("%w: list %s: order record %d names a missing delta", ErrStoreCorrupt, id, i)
		}
		return bytes.Clone(raw), nil
	}
	if parseSkipRef(v) == nil {
		return nil, fmt.Errorf("%w: list %s: order record %d: %d-byte value", ErrStoreCorrupt, id, i, len(v))
	}
	return nil, nil
}

type metaWire struct {
	V    uint8  `cbor:"1,keyasint"`
	Name string `cbor:"2,keyasint"`
}

// Store is a crash-safe embedded database (bbolt) holding the signed delta
// log of every task list opened with it. One Store serves many Lists (one
// List per list ID at a time). Safe for concurrent use.
type Store struct {
	path string
	db   *bolt.DB

	mu     sync.Mutex
	closed bool
	open   map[ListID]bool

	noSnapshots bool // tests: snapshots are neither used nor written
}

// StoredList describes a list persisted in a Store.
type StoredList struct {
	// ID names the list.
	ID ListID
	// Name is the list's name ("" if not known yet).
	Name string
	// Deltas is the number of operations stored.
	Deltas int
}

// OpenStore opens (creating if absent) the store file at path. A file that
// is not a bbolt database, or whose task-list records are damaged, gives
// ErrStoreCorrupt; a bbolt database of something else gives
// ErrStoreForeign. Neither is modified. A file locked by another process
// gives an error after one second. The caller must Close the store after
// closing its Lists.
func OpenStore(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		switch {
		case errors.Is(err, bolterr.ErrInvalid), errors.Is(err, bolterr.ErrVersionMismatch),
			errors.Is(err, bolterr.ErrChecksum):
			return nil, fmt.Errorf("%w: %s: %v", ErrStoreCorrupt, path, err)
		}
		return nil, fmt.Errorf("tasklist: open store %s: %w", path, err)
	}
	s := &Store{path: path, db: db, open: make(map[ListID]bool)}
	if err := s.init(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// init checks the file is ours (or empty, and then marks it).
func (s *Store) init() error {
	var state int // 0 empty, 1 ours, 2 foreign/corrupt (err set)
	var bad error
	err := s.view(func(tx *bolt.Tx) error {
		root := tx.Bucket(rootBucket)
		if root == nil {
			c := tx.Cursor()
			if k, _ := c.First(); k != nil {
				bad = fmt.Errorf("%w: %s has no %q bucket", ErrStoreForeign, s.path, rootBucket)
				state = 2
			}
			return nil
		}
		if f := root.Get(formatKey); string(f) != storeFormat {
			bad = fmt.Errorf("%w: %s: format %q, want %q", ErrStoreForeign, s.path, f, storeFormat)
			state = 2
			return nil
		}
		if root.Bucket(listsBucket) == nil {
			bad = fmt.Errorf("%w: %s: no lists bucket", ErrStoreCorrupt, s.path)
			state = 2
			return nil
		}
		state = 1
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrStoreCorrupt, s.path, err)
	}
	switch state {
	case 1:
		return nil
	case 2:
		return bad
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucket(rootBucket)
		if err != nil {
			return err
		}
		if err := root.Put(formatKey, []byte(storeFormat)); err != nil {
			return err
		}
		_, err = root.CreateBucket(listsBucket)
		return err
	})
	if err != nil {
		return fmt.Errorf("tasklist: initialise store %s: %w", s.path, err)
	}
	return nil
}

// Close closes the database. Lists still open on it fail their next
// write with ErrStoreFailed. Idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.db.Close()
}

// Lists returns the lists persisted in the store, in ID order. Errors:
// ErrClosed, ErrStoreCorrupt (damaged list records).
func (s *Store) Lists() ([]StoredList, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	var out []StoredList
	err := s.view(func(tx *bolt.Tx) error {
		lists := tx.Bucket(rootBucket).Bucket(listsBucket)
		return lists.ForEachBucket(func(k []byte) error {
			if len(k) != len(ListID{}) {
				return fmt.Errorf("%w: list key of %d bytes", ErrStoreCorrupt, len(k))
			}
			b := lists.Bucket(k)
			sl := StoredList{ID: ListID(k)}
			if m := b.Get(metaKey); m != nil {
				var mw metaWire
				if err := wire.Unmarshal(m, &mw, "list meta"); err != nil {
					return fmt.Errorf("%w: list %s meta: %v", ErrStoreCorrupt, sl.ID, err)
				}
				sl.Name = mw.Name
			}
			if d := b.Bucket(deltaBucket); d != nil {
				sl.Deltas = d.Stats().KeyN
			}
			out = append(out, sl)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) checkOpen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

// claim reserves id for one List; release undoes it.
func (s *Store) claim(id ListID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.open[id] {
		return fmt.Errorf("%w: list %s is already open on this store", ErrInvalid, id)
	}
	s.open[id] = true
	return nil
}

func (s *Store) release(id ListID) {
	s.mu.Lock()
	delete(s.open, id)
	s.mu.Unlock()
}

// view and update run a transaction, turning a panic inside bbolt (which
// it raises on some kinds of page corruption) into ErrStoreCorrupt.
func (s *Store) view(fn func(*bolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrStoreCorrupt, s.path, r)
		}
	}()
	return s.db.View(fn)
}

func (s *Store) update(fn func(*bolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrStoreCorrupt, s.path, r)
		}
	}()
	return s.db.Update(fn)
}

func deltaKey(a identity.AgentID, seq uint64) []byte {
	k := make([]byte, 0, 40)
	k = append(k, a[:]...)
	return binary.BigEndian.AppendUint64(k, seq)
}

// storedList is what load returns: the list's deltas in apply order and
// its name.
type storedList struct {
	name   string
	deltas [][]byte
	refs   [][]byte // the author||seq key each delta is filed under (a skip entry's record, delta nil)
	keys   map[identity.AgentID][]byte
	ck     crdt.VersionVector // the checkpoint
}

// load reads list id's records. A missing list gives an empty result.
// Damaged records give ErrStoreCorrupt.
func (s *Store) load(id ListID) (*storedList, error) {
	out := &storedList{keys: make(map[identity.AgentID][]byte)}
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(rootBucket).Bucket(listsBucket).Bucket(id[:])
		if b == nil {
			return nil
		}
		if m := b.Get(metaKey); m != nil {
			var mw metaWire
			if err := wire.Unmarshal(m, &mw, "list meta"); err != nil {
				return fmt.Errorf("%w: list %s meta: %v", ErrStoreCorrupt, id, err)
			}
			out.name = mw.Name
		}
		db, ob, kb := b.Bucket(deltaBucket), b.Bucket(orderBucket), b.Bucket(keyBucket)
		if db == nil || ob == nil || kb == nil {
			return fmt.Errorf("%w: list %s: missing buckets", ErrStoreCorrupt, id)
		}
		var err error
		if out.ck, err = readCK(b, id); err != nil {
			return err
		}
		var want uint64
		nd := 0
		err = ob.ForEach(func(k, v []byte) error {
			if len(k) != 8 || binary.BigEndian.Uint64(k) != want {
				return fmt.Errorf("%w: list %s: order record %x out of sequence", ErrStoreCorrupt, id, k)
			}
			raw, err := readOrder(db, id, want, v)
			if err != nil {
				return err
			}
			want++
			if raw != nil {
				nd++
			}
			out.deltas = append(out.deltas, raw)
			out.refs = append(out.refs, append([]byte(nil), v...))
			return nil
		})
		if err != nil {
			return err
		}
		if db.Stats().KeyN != nd {
			return fmt.Errorf("%w: list %s: %d deltas but %d order records name one", ErrStoreCorrupt, id, db.Stats().KeyN, nd)
		}
		return kb.ForEach(func(k, v []byte) error {
			if len(k) != identity.IDSize {
				return fmt.Errorf("%w: list %s: key record of %d bytes", ErrStoreCorrupt, id, len(k))
			}
			out.keys[identity.AgentID(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	if err != nil {
		if errors.Is(err, ErrStoreCorrupt) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrStoreCorrupt, err)
	}
	return out, nil
}

// appendDeltas durably appends log entries (deltas and skips, in apply
// order, starting at position next) to list id's log, with the author
// keys of seq-1 deltas and, if name is not nil, the list name, and if ck
// is not nil, the checkpoint record. One transaction, fsynced.
func (s *Store) appendDeltas(id ListID, next uint64, es []logEntry, name *string, ck []byte) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(rootBucket).Bucket(listsBucket).CreateBucketIfNotExists(id[:])
		if err != nil {
			return err
		}
		var bk [3]*bolt.Bucket
		for i, n := range [][]byte{deltaBucket, orderBucket, keyBucket} {
			if bk[i], err = b.CreateBucketIfNotExists(n); err != nil {
				return err
			}
		}
		for i, e := range es {
			if e.skip != nil {
				if err := bk[1].Put(binary.BigEndian.AppendUint64(nil, next+uint64(i)), skipRef(e.skip)); err != nil {
					return err
				}
				continue
			}
			d := e.d
			k := deltaKey(d.author, d.seq)
			if err := bk[0].Put(k, d.raw); err != nil {
				return err
			}
			if err := bk[1].Put(binary.BigEndian.AppendUint64(nil, next+uint64(i)), k); err != nil {
				return err
			}
			if d.seq == 1 {
				if err := bk[2].Put(d.author[:], d.pub); err != nil {
					return err
				}
			}
		}
		if name != nil {
			m, err := wire.Marshal(metaWire{V: 1, Name: *name})
			if err != nil {
				return err
			}
			if err := b.Put(metaKey, m); err != nil {
				return err
			}
		}
		if ck != nil {
			return b.Put(ckKey, ck)
		}
		return nil
	})
}

// snapshotLoad is what loadSnapshot returns: a snapshot whose checksum
// holds (not yet decoded) and the log records after it.
type snapshotLoad struct {
	name   string
	ops    uint64   // deltas the snapshot covers
	parts  [][]byte // the snapshot's parts
	deltas [][]byte // the deltas logged after it, in apply order
	refs   [][]byte
	keys   map[identity.AgentID][]byte
	ck     crdt.VersionVector // the checkpoint
}

// loadSnapshot reads list id's snapshot and the log after it. It returns
// (nil, nil) when there is no snapshot, an error wrapping errSnapshot when
// the snapshot is unusable (unknown version, bad checksum, more deltas
// than the log holds) and ErrStoreCorrupt when the records around it are
// damaged; the caller replays the whole log in the last two cases (load
// then decides whether the log itself is readable).
func (s *Store) loadSnapshot(id ListID) (*snapshotLoad, error) {
	var out *snapshotLoad
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(rootBucket).Bucket(listsBucket).Bucket(id[:])
		if b == nil {
			return nil
		}
		hb := b.Get(snapHeaderKey)
		if hb == nil {
			return nil
		}
		var h snapHeader
		if err := wire.UnmarshalLimit(hb, &h, "tasklist snapshot header", wire.LimitSmall); err != nil {
			return fmt.Errorf("%w: header: %w", errSnapshot, err)
		}
		if h.V != snapshotVersion {
			return fmt.Errorf("%w: format version %d, want %d", errSnapshot, h.V, snapshotVersion)
		}
		sb, db, ob, kb := b.Bucket(snapBucket), b.Bucket(deltaBucket), b.Bucket(orderBucket), b.Bucket(keyBucket)
		if sb == nil || db == nil || ob == nil || kb == nil {
			return fmt.Errorf("%w: missing buckets", errSnapshot)
		}
		out = &snapshotLoad{ops: h.Ops, keys: make(map[identity.AgentID][]byte)}
		var err error
		if out.ck, err = readCK(b, id); err != nil {
			return err
		}
		for i := range h.Parts {
			p := sb.Get(binary.BigEndian.AppendUint64(nil, i))
			if p == nil {
				return fmt.Errorf("%w: part %d of %d missing", errSnapshot, i, h.Parts)
			}
			out.parts = append(out.parts, p) // valid until the transaction ends: copied below
		}
		if !bytes.Equal(snapSum(h.V, h.Ops, out.parts), h.Sum) {
			return fmt.Errorf("%w: checksum mismatch", errSnapshot)
		}
		for i, p := range out.parts {
			out.parts[i] = bytes.Clone(p)
		}
		if m := b.Get(metaKey); m != nil {
			var mw metaWire
			if err := wire.Unmarshal(m, &mw, "list meta"); err != nil {
				return fmt.Errorf("%w: list %s meta: %v", ErrStoreCorrupt, id, err)
			}
			out.name = mw.Name
		}
		c := ob.Cursor()
		if h.Ops > 0 {
			if k, _ := c.Seek(binary.BigEndian.AppendUint64(nil, h.Ops-1)); k == nil || binary.BigEndian.Uint64(k) != h.Ops-1 {
				return fmt.Errorf("%w: covers %d deltas, the log holds fewer", errSnapshot, h.Ops)
			}
		}
		want := h.Ops
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, h.Ops)); k != nil; k, v = c.Next() {
			if len(k) != 8 || binary.BigEndian.Uint64(k) != want {
				return fmt.Errorf("%w: list %s: order record %x out of sequence", ErrStoreCorrupt, id, k)
			}
			raw, err := readOrder(db, id, want, v)
			if err != nil {
				return err
			}
			want++
			out.deltas = append(out.deltas, raw)
			out.refs = append(out.refs, bytes.Clone(v))
		}
		return kb.ForEach(func(k, v []byte) error {
			if len(k) != identity.IDSize {
				return fmt.Errorf("%w: list %s: key record of %d bytes", ErrStoreCorrupt, id, len(k))
			}
			out.keys[identity.AgentID(k)] = bytes.Clone(v)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// saveSnapshot replaces list id's snapshot with parts covering its first
// ops logged deltas, in one transaction (fsynced): a crash leaves the old
// snapshot or the new one whole.
func (s *Store) saveSnapshot(id ListID, ops uint64, parts [][]byte) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	h, err := wire.Marshal(snapHeader{V: snapshotVersion, Ops: ops, Parts: uint64(len(parts)), Sum: snapSum(snapshotVersion, ops, parts)})
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(rootBucket).Bucket(listsBucket).Bucket(id[:])
		if b == nil {
			return fmt.Errorf("tasklist: list %s is not in the store", id)
		}
		if b.Bucket(snapBucket) != nil {
			if err := b.DeleteBucket(snapBucket); err != nil {
				return err
			}
		}
		sb, err := b.CreateBucket(snapBucket)
		if err != nil {
			return err
		}
		sb.FillPercent = 1 // parts are written once, in key order
		for i, p := range parts {
			if err := sb.Put(binary.BigEndian.AppendUint64(nil, uint64(i)), p); err != nil {
				return err
			}
		}
		return b.Put(snapHeaderKey, h)
	})
}

// readDeltas runs fn in a read transaction of list id with a function that
// returns the delta filed under author||seq (nil if absent). The bytes
// are valid only until fn returns.
func (s *Store) readDeltas(id ListID, fn func(get func(key []byte) []byte) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	return s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(rootBucket).Bucket(listsBucket).Bucket(id[:])
		var db *bolt.Bucket
		if b != nil {
			db = b.Bucket(deltaBucket)
		}
		return fn(func(key []byte) []byte {
			if db == nil {
				return nil
			}
			return db.Get(key)
		})
	})
}
