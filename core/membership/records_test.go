package membership

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/sim"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

func TestMachineRecords(t *testing.T) {
	clk := sim.NewClock(time.Unix(1_800_000_000, 0))
	key, err := identity.GenerateKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := identity.GenerateKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := NewMachineRecords(key, clk, nil)
	rec, err := r.Sign("10.0.0.1:5483")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := r.Sign("10.0.0.1:5483"); !bytes.Equal(again, rec) {
		t.Fatal("the record is re-signed on every call")
	}
	checker := NewMachineRecords(other, clk, nil)
	if err := checker.Check(key.ID(), "10.0.0.1:5483", rec); err != nil {
		t.Fatalf("valid record refused: %v", err)
	}
	if err := checker.Check(key.ID(), "10.0.0.1:5483", rec); err != nil { // cached
		t.Fatalf("cached record refused: %v", err)
	}
	// A record whose signature was made over other bytes.
	var ar addrRecord
	if err := wire.Unmarshal(rec, &ar, "record"); err != nil {
		t.Fatal(err)
	}
	ar.Issued++
	tampered, _ := wire.Marshal(&ar)
	// A record of another key, presented for key's ID.
	foreign, _ := NewMachineRecords(other, clk, nil).Sign("10.0.0.1:5483")
	for name, c := range map[string]struct {
		id   identity.PeerID
		addr string
		rec  []byte
	}{
		"none":          {key.ID(), "10.0.0.1:5483", nil},
		"other address": {key.ID(), "10.0.0.2:5483", rec},
		"other node":    {other.ID(), "10.0.0.1:5483", rec},
		"foreign key":   {key.ID(), "10.0.0.1:5483", foreign},
		"tampered":      {key.ID(), "10.0.0.1:5483", tampered},
		"garbage":       {key.ID(), "10.0.0.1:5483", []byte{0xa1, 0x01}},
		"oversized":     {key.ID(), "10.0.0.1:5483", make([]byte, MaxRecordLen+1)},
	} {
		if err := checker.Check(c.id, c.addr, c.rec); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: %v, want ErrBadRecord", name, err)
		}
	}
	// Records expire, including cached ones, and are renewed by Sign.
	clk.AfterFunc(RecordValidity+time.Second, func() {})
	clk.Step()
	if err := checker.Check(key.ID(), "10.0.0.1:5483", rec); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("expired record: %v", err)
	}
	fresh, _ := r.Sign("10.0.0.1:5483")
	if bytes.Equal(fresh, rec) || checker.Check(key.ID(), "10.0.0.1:5483", fresh) != nil {
		t.Fatal("an old record was not renewed")
	}
	// A record issued well in the future (a skewed or forging signer).
	future := NewMachineRecords(key, sim.NewClock(clk.Now().Add(time.Hour)), nil)
	ahead, _ := future.Sign("10.0.0.1:5483")
	if err := checker.Check(key.ID(), "10.0.0.1:5483", ahead); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("record from the future: %v", err)
	}
}

func FuzzRecordCheck(f *testing.F) {
	clk := sim.NewClock(time.Unix(1_800_000_000, 0))
	key := identity.KeyPairFromSeed([32]byte{1})
	rec, _ := NewMachineRecords(key, clk, nil).Sign("127.0.0.1:1")
	f.Add(rec)
	f.Add([]byte{0xa0})
	checker := NewMachineRecords(identity.KeyPairFromSeed([32]byte{2}), clk, nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checker.Check(key.ID(), "127.0.0.1:1", b)
		if err != nil && !errors.Is(err, ErrBadRecord) {
			t.Fatalf("untyped error %v", err)
		}
		if err == nil && !bytes.Equal(b, rec) {
			var ar addrRecord
			if wire.Unmarshal(b, &ar, "record") != nil || ar.Addr != "127.0.0.1:1" {
				t.Fatalf("accepted a record that is not key's: %x", b)
			}
		}
	})
}

// Records come from any machine, and identities are free: their keys go
// to the key cache's cold part, never among the keys that verify traffic.
func TestRecordKeysAreCold(t *testing.T) {
	clk := sim.NewClock(time.Unix(1_800_000_000, 0))
	keys := identity.NewVerifyCache(1<<20, 1<<20, 1<<20)
	self, _ := identity.GenerateKeyPair(rand.Reader)
	checker := NewMachineRecords(self, clk, keys)
	for i := range 3 {
		k, _ := identity.GenerateKeyPair(rand.Reader)
		rec, err := NewMachineRecords(k, clk, nil).Sign("10.0.0.1:5483")
		if err != nil {
			t.Fatal(err)
		}
		if err := checker.Check(k.ID(), "10.0.0.1:5483", rec); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if traffic, cold := keys.Keys(); traffic != 0 || cold != 3 {
		t.Fatalf("after 3 records the cache holds %d traffic and %d cold keys, want 0 and 3", traffic, cold)
	}
}
