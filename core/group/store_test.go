package group

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestStoreSealsAndRefusesDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "groups.db")
	s, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	me, other := agentKey(1), agentKey(2)
	// Group IDs of high entropy, as real ones are: an ID like {1, 0, 0, ...}
	// also occurs by chance in bbolt's own page headers, so the "no plaintext"
	// check below would fail without any leak.
	a, b := patternID(0x11), patternID(0x5a)
	for _, st := range []StoredState{{Group: a, State: []byte("state a"), Clean: true}, {Group: b, State: []byte("state b")}} {
		if err := s.Save(me, st, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Save(other, StoredState{Group: a, State: []byte("other's")}, nil); err != nil {
		t.Fatal(err)
	}
	got, errs := s.Load(me)
	if len(errs) != 0 || len(got) != 2 || string(got[0].State) != "state a" || !got[0].Clean || got[1].Clean || got[1].Group != b {
		t.Fatalf("load %+v %v", got, errs)
	}
	// The file holds no plaintext.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	for _, p := range []string{"state a", "state b", "other's", string(a[:]), string(b[:])} {
		if containsBytes(raw, p) {
			t.Fatalf("%q in the clear on disk", p)
		}
	}
	// Damage: a record swapped between groups, a clean flag forged.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(storeBucket))
		sl, _ := newSealer(me)
		ka, kb := sl.key(a), sl.key(b)
		va, vb := append([]byte(nil), bk.Get(ka)...), append([]byte(nil), bk.Get(kb)...)
		vb[1] = 1 // "clean"
		if err := bk.Put(ka, vb); err != nil {
			return err
		}
		return bk.Put(kb, va)
	}); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	s, err = OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, errs = s.Load(me)
	if len(got) != 0 || len(errs) != 2 || !errors.Is(errs[0], ErrStoreCorrupt) {
		t.Fatalf("swapped records: %+v %v", got, errs)
	}
	// The other agent's record opens only with its key.
	if got, errs := s.Load(other); len(errs) != 0 || len(got) != 1 || string(got[0].State) != "other's" {
		t.Fatalf("other agent: %+v %v", got, errs)
	}
	if err := s.Delete(other, a); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Load(other); len(got) != 0 {
		t.Fatal("delete")
	}
	// A file that is not a database.
	junk := filepath.Join(t.TempDir(), "junk.db")
	_ = os.WriteFile(junk, []byte("not a database at all, really not"), 0o600)
	if _, err := OpenStore(junk); !errors.Is(err, ErrStoreCorrupt) {
		t.Fatalf("junk file: %v", err)
	}
}

// patternID returns an ID whose bytes are all distinct, seeded by seed.
func patternID(seed byte) ID {
	var id ID
	for i := range id {
		id[i] = seed + byte(i)*37
	}
	return id
}

func containsBytes(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return true
		}
	}
	return false
}
