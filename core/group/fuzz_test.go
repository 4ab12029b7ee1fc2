package group

import (
	"bytes"
	"errors"
	"testing"

	"lukechampine.com/blake3"
)

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(encodeEnvelope(kindMessage, 7, []byte("hi")))
	f.Add(encodeEnvelope(kindLeave, 1, nil))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, seq, data, err := decodeEnvelope(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !bytes.Equal(encodeEnvelope(k, seq, data), b) {
			t.Fatal("accepted envelope does not re-encode to itself")
		}
	})
}

// FuzzGroupInput feeds arbitrary bytes to a member as a topic message and
// as a sealed payload: nothing may panic or change the group.
func FuzzGroupInput(f *testing.F) {
	b := newBus(f)
	a, c := b.agent(1), b.agent(2)
	a.create(f)
	b.invite(f, a, c)
	b.settle(f)
	defer b.closeAll()
	sealed, _ := a.g.Seal([]byte("l"), []byte("payload"), nil)
	_ = c.g.Send([]byte("m"))
	c.mu.Lock()
	c.inbox = nil
	c.mu.Unlock()
	f.Add(sealed)
	f.Add(b.lastPublished(c))
	f.Add([]byte{0, 1, 0, 2})
	epoch := a.g.Epoch()
	f.Fuzz(func(t *testing.T, in []byte) {
		a.g.Handle(c.id, in)
		if _, err := a.g.Open([]byte("l"), in); err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownEpoch) {
			t.Fatalf("untyped error %v", err)
		}
		if a.g.Epoch() != epoch || a.g.Closed() {
			t.Fatal("garbage changed the group")
		}
	})
}

// FuzzRestore feeds damaged states to Restore, with the checksum both as
// given and recomputed (so that mutations reach the decoder): nothing may
// panic, and every refusal is ErrBadState.
func FuzzRestore(f *testing.F) {
	b := newBus(f)
	a, c := b.agent(1), b.agent(2)
	a.create(f)
	b.invite(f, a, c)
	b.settle(f)
	if err := a.g.Update(); err != nil {
		f.Fatal(err)
	}
	b.settle(f)
	snap, err := c.g.Snapshot()
	if err != nil {
		f.Fatal(err)
	}
	cfg := c.config()
	b.closeAll()
	f.Add(snap)
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, s := range [][]byte{in, resum(in)} {
			g, err := Restore(s, cfg, false)
			if err != nil {
				if !errors.Is(err, ErrBadState) {
					t.Fatalf("untyped error %v", err)
				}
				continue
			}
			g.Close()
		}
	})
}

// resum replaces in's trailing checksum by the right one.
func resum(in []byte) []byte {
	if len(in) < 32 {
		return in
	}
	body := bytes.Clone(in[:len(in)-32])
	sum := blake3.Sum256(body)
	return append(body, sum[:]...)
}
