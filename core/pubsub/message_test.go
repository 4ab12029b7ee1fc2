package pubsub

import (
	"bytes"
	"errors"
	"testing"

	"github.com/saorsa-labs/x0x-go/core/wire"
)

// A GOSSIP frame names its topic once, in the signed header; a frame that
// names another topic beside it is malformed.
func TestGossipFrameCarriesItsTopicOnce(t *testing.T) {
	topic := TopicIDOf("once")
	msg := &Signed{Header: Header{Topic: topic, Seq: 1}, Payload: []byte("p"), Sig: []byte("s")}
	for _, kind := range []uint8{kindGossip, kindPublish} {
		b, err := EncodeFrame(&Frame{Kind: kind, Topic: topic, Msg: msg})
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(b, topic[:]); n != 1 {
			t.Fatalf("kind %d: the topic appears %d times in the frame", kind, n)
		}
		f, err := DecodeFrame(b)
		if err != nil || f.Topic != topic {
			t.Fatalf("kind %d: decoded topic %x, error %v", kind, f.Topic, err)
		}
		other := TopicIDOf("other")
		if _, err := EncodeFrame(&Frame{Kind: kind, Topic: other, Msg: msg}); err == nil {
			t.Fatalf("kind %d: a frame naming another topic than its message was encoded", kind)
		}
		raw, err := wire.Marshal(&Frame{Kind: kind, Topic: other, Msg: msg})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeFrame(raw); !errors.Is(err, ErrMalformed) {
			t.Fatalf("kind %d: a frame naming another topic than its message decoded: %v", kind, err)
		}
	}
}

// IHAVE, GRAFT and IWANT name messages by 16-byte short IDs, back to back.
func TestShortIDsOnTheWire(t *testing.T) {
	ids := make(ShortList, 101)
	for i := range ids {
		ids[i] = idOf(i).Short()
	}
	size := func(n int) int {
		b, err := EncodeFrame(&Frame{Kind: kindIHave, Topic: TopicIDOf("x"), Short: ids[:n]})
		if err != nil {
			t.Fatal(err)
		}
		return len(b)
	}
	if d := size(101) - size(100); d != len(ShortID{}) {
		t.Fatalf("one more announced ID costs %d bytes, want %d", d, len(ShortID{}))
	}
	b, _ := EncodeFrame(&Frame{Kind: kindIWant, Topic: TopicIDOf("x"), Short: ids})
	f, err := DecodeFrame(b)
	if err != nil || len(f.Short) != len(ids) || f.Short[100] != ids[100] {
		t.Fatalf("short IDs did not survive a round trip: %v", err)
	}
	// A list that is not whole short IDs is malformed.
	raw, _ := wire.Marshal(map[int]any{1: kindIHave, 15: make([]byte, 17)})
	if _, err := DecodeFrame(raw); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a 17-byte short ID list decoded: %v", err)
	}
}
