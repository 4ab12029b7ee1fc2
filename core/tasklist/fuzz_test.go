package tasklist

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/saorsa-labs/x0x-go/core/crdt"
	"github.com/saorsa-labs/x0x-go/core/identity"
	bolt "go.etcd.io/bbolt"
)

// seedDeltas returns signed deltas of every kind, made by a real replica.
func seedDeltas(t testing.TB) [][]byte {
	l, err := Open(Config{ID: listOf(1, "seed", 9), Name: "seed", Nonce: [16]byte{9}, Self: key(1), Clock: newTestClock(), Transport: nopTransport{}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, _ := l.Add("a", "desc")
	b, _ := l.Add("b", "")
	s, p, who := "t", uint8(3), key(2).ID()
	_ = l.Update(a, Update{Title: &s, Priority: &p, Assignee: &who})
	_ = l.Claim(a)
	_ = l.Complete(a)
	_ = l.Reopen(a)
	_ = l.Move(b, nil)
	_ = l.Move(a, &b)
	_ = l.Remove(b)
	l.mu.Lock()
	defer l.mu.Unlock()
	return rawsOf(l, l.selfID)
}

func FuzzDecodeDelta(f *testing.F) {
	for _, d := range seedDeltas(f) {
		f.Add(d)
	}
	f.Add([]byte{0x82, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := decodeDelta(raw)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if d.seq < 1 || !d.kind.valid() || (d.seq == 1) != (len(d.pub) == identity.PublicKeySize) {
			t.Fatalf("accepted delta breaks invariants: seq %d kind %d", d.seq, d.kind)
		}
		// Verifying never panics, whatever the key.
		_ = d.verify(key(1).Public())
	})
}

func FuzzDecodeFrame(f *testing.F) {
	ds := seedDeltas(f)
	var vv crdt.VersionVector
	vv.Set(key(1).ID(), 3)
	skips := seedSkips()
	self := key(2).ID()
	for _, fr := range []*frameWire{
		{T: frameDelta, List: listOf(1, "seed", 9), Deltas: ds[:1]},
		{T: frameRequest, List: listOf(1, "seed", 9), VV: &vv, Reply: true},
		{T: frameRequest, List: listOf(1, "seed", 9), VV: &vv, Held: &vv, Skips: encodeSkips(&skips, maxSkipBytes), Self: self[:]},
		{T: frameDeltas, List: listOf(1, "seed", 9), Deltas: ds, More: true},
		{T: frameState, List: listOf(1, "seed", 9), Deltas: [][]byte{ds[0], ds[3], ds[7]}, More: true},
	} {
		b, err := encodeFrame(fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		fr, err := decodeFrame(payload)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if fr.T == frameRequest && fr.VV == nil {
			t.Fatal("request without version vector accepted")
		}
	})
}

// FuzzHandleFrame feeds arbitrary payloads to a live replica (as broadcast
// and as direct frames): nothing panics and the replica stays usable.
func FuzzHandleFrame(f *testing.F) {
	ds := seedDeltas(f)
	var vv crdt.VersionVector
	skips := seedSkips()
	for _, fr := range []*frameWire{
		{T: frameDeltas, List: listOf(1, "seed", 9), Deltas: ds},
		{T: frameDelta, List: listOf(1, "seed", 9), Deltas: ds[3:4]},
		{T: frameRequest, List: listOf(1, "seed", 9), VV: &vv},
		{T: frameRequest, List: listOf(1, "seed", 9), VV: &vv, Skips: encodeSkips(&skips, maxSkipBytes)},
		{T: frameState, List: listOf(1, "seed", 9), Deltas: [][]byte{ds[0], ds[2], ds[5], ds[6]}},
	} {
		b, _ := encodeFrame(fr)
		f.Add(b, true)
	}
	l, err := Open(Config{ID: listOf(1, "seed", 9), Self: key(2), Clock: newTestClock(), Transport: nopTransport{}})
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	f.Fuzz(func(t *testing.T, payload []byte, direct bool) {
		l.handleFrame(direct, identity.PeerID{1}, payload)
		_ = l.Snapshot()
		l.mu.Lock()
		failed := l.failed
		l.mu.Unlock()
		if failed != nil {
			t.Fatalf("replica unusable: %v", failed)
		}
	})
}

// FuzzStoreRecord stores arbitrary bytes as a list's first delta record
// and opens the list: the result is a list or a typed error, never a panic.
func FuzzStoreRecord(f *testing.F) {
	ds := seedDeltas(f)
	for _, d := range ds[:3] {
		f.Add(d, []byte{})
	}
	f.Add([]byte{0xa0}, []byte{0xa1, 0x01, 0x01})
	st := openStore(f, f.TempDir())
	st.db.NoSync = true
	f.Fuzz(func(t *testing.T, rec, meta []byte) {
		err := st.update(func(tx *bolt.Tx) error {
			lists := tx.Bucket(rootBucket).Bucket(listsBucket)
			_ = lists.DeleteBucket(listOf(1, "seed", 9).bytes())
			b, err := lists.CreateBucket(listOf(1, "seed", 9).bytes())
			if err != nil {
				return err
			}
			var bk [3]*bolt.Bucket
			for i, n := range [][]byte{deltaBucket, orderBucket, keyBucket} {
				if bk[i], err = b.CreateBucket(n); err != nil {
					return err
				}
			}
			k := deltaKey(key(1).ID(), 1)
			if err := bk[0].Put(k, rec); err != nil {
				return err
			}
			if err := bk[1].Put(binary.BigEndian.AppendUint64(nil, 0), k); err != nil {
				return err
			}
			if len(meta) > 0 {
				return b.Put(metaKey, meta)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Lists(); err != nil && !errors.Is(err, ErrStoreCorrupt) {
			t.Fatalf("Lists: untyped error %v", err)
		}
		l, err := Open(Config{ID: listOf(1, "seed", 9), Self: key(2), Store: st, Clock: newTestClock(), Transport: nopTransport{}})
		if err != nil {
			if !errors.Is(err, ErrStoreCorrupt) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		_ = l.Snapshot()
		_ = l.Close()
	})
}

func (id ListID) bytes() []byte { return id[:] }

// seedSkips is a skip set for fuzz seeds.
func seedSkips() seqSet {
	var s seqSet
	s.add(key(1).ID(), 2, 3)
	s.add(key(1).ID(), 6, 9)
	s.add(key(2).ID(), 4, 1<<40)
	return s
}

// FuzzDecodeSkips decodes arbitrary bytes as the skip set of a sync
// request: a typed error or a valid set (ascending, non-empty ranges
// within [1, 2^53-1]) that encodes back to what decodes to it again.
func FuzzDecodeSkips(f *testing.F) {
	s := seedSkips()
	f.Add(encodeSkips(&s, maxSkipBytes))
	f.Add([]byte{0})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeSkips(b, maxSkipBytes)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		var n uint64
		for _, rs := range got.m {
			for i, r := range rs {
				if r.lo < 1 || r.lo > r.hi || r.hi > crdt.MaxCounter || (i > 0 && rs[i-1].hi+1 >= r.lo) {
					t.Fatalf("bad range %v in %v", r, rs)
				}
				n += r.hi - r.lo + 1
			}
		}
		if n != got.count() {
			t.Fatalf("count %d, ranges hold %d", got.count(), n)
		}
		again, err := decodeSkips(encodeSkips(&got, maxSkipBytes), maxSkipBytes)
		if err != nil || !equalSkips(&again, &got) {
			t.Fatalf("re-encoding: %v", err)
		}
	})
}
