package adversary

import (
	"errors"
	"testing"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/membership"
	"github.com/saorsa-labs/x0x-go/core/pubsub"
)

// The builders make frames that decode (so that they reach the rules under
// test), except the decode bomb, which the decoder must refuse.
func TestFramesDecode(t *testing.T) {
	if _, err := membership.Decode(DecodeBomb(10_000)); !errors.Is(err, membership.ErrMalformed) {
		t.Fatalf("decode bomb: %v", err)
	}
	target, err := SelfSignedTarget("127.0.0.1:9", clock.Real())
	if err != nil {
		t.Fatal(err)
	}
	if err := membership.NewMachineRecords(identity.KeyPairFromSeed([32]byte{1}), clock.Real(), nil).Check(target.ID, target.Addr, target.Rec); err != nil {
		t.Fatalf("self-signed target's record: %v", err)
	}
	find, mem, err := ClaimedAddress("t", target, 1)
	if err != nil {
		t.Fatal(err)
	}
	death, err := ForgedDeath(target)
	if err != nil {
		t.Fatal(err)
	}
	ping, err := Ping(1)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range append(mem, death, ping) {
		if _, err := membership.Decode(b); err != nil {
			t.Fatalf("membership frame %d: %v", i, err)
		}
	}
	gossip, err := ForgedMessage("t", identity.AgentID{1}, []byte("x"), 1, false)
	if err != nil {
		t.Fatal(err)
	}
	walk, err := ForgedMessage("t", identity.AgentID{1}, []byte("x"), 1, true)
	if err != nil {
		t.Fatal(err)
	}
	held, err := UnknownOrigin("t", 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	ihave, err := IHave("t")
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range [][]byte{find, gossip, walk, held, ihave} {
		if _, err := pubsub.DecodeFrame(b); err != nil {
			t.Fatalf("pub/sub frame %d: %v", i, err)
		}
	}
}
