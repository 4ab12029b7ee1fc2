package pubsub

import (
	"errors"
	"fmt"

	"lukechampine.com/blake3"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/membership"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// TopicID identifies a topic: BLAKE3(topic name).
type TopicID [32]byte

// MsgID identifies a published message: BLAKE3 over its encoded signed header.
type MsgID [32]byte

// ShortID is the first 16 bytes of a MsgID. Lazy repair (IHAVE, GRAFT,
// IWANT) names messages by it, and the dedup cache and message store are
// keyed by it: IHAVEs are the most frequent pub/sub frames, and half the
// bytes per ID save about 3% of all bytes per delivery. 128 bits keep
// collisions out of reach: making a message whose short ID equals another
// origin's message is a second preimage (2^128 work), and two of one's own
// messages colliding (2^64 work) would only hide one of them.
type ShortID [16]byte

// Short returns the ID's first 16 bytes.
func (id MsgID) Short() ShortID { return ShortID(id[:16]) }

// TopicIDOf returns BLAKE3(name).
func TopicIDOf(name string) TopicID { return TopicID(blake3.Sum256([]byte(name))) }

// Limits applied to pub/sub input.
const (
	// MaxPayload is the largest payload Publish accepts and a decoder keeps.
	MaxPayload = 1 << 20
	// MaxSignature bounds the signature field (ML-DSA-65 is 3,309 bytes).
	MaxSignature = 4096
	// MaxIDsPerFrame bounds the message IDs in one IHAVE/GRAFT/WANT frame.
	MaxIDsPerFrame = 4096
	// MaxMsgsPerFrame bounds the messages in one anti-entropy push frame.
	MaxMsgsPerFrame = 64
	// MaxTopicsPerFrame bounds a subscription announcement.
	MaxTopicsPerFrame = 256
	// MaxIBLTCells bounds an IBLT sketch.
	MaxIBLTCells = 66 << maxAELevel
)

// Header is what the origin signs. Its encoding's BLAKE3 hash is the MsgID.
type Header struct {
	Topic       TopicID          `cbor:"1,keyasint"`
	Origin      identity.AgentID `cbor:"2,keyasint"`
	Seq         uint64           `cbor:"3,keyasint"`
	Time        int64            `cbor:"4,keyasint"` // Unix milliseconds at the origin
	PayloadHash [32]byte         `cbor:"5,keyasint"` // BLAKE3(payload)
}

// Signed is a published message as it travels: header, payload and the
// origin's signature over the encoded header. Forwarders never change it.
type Signed struct {
	Header  Header `cbor:"1,keyasint"`
	Payload []byte `cbor:"2,keyasint"`
	Sig     []byte `cbor:"3,keyasint"`
}

// bytes returns the encoding the signature and the ID cover.
func (h *Header) bytes() ([]byte, error) { return wire.Marshal(h) }

// ID returns the message ID.
func (s *Signed) ID() (MsgID, error) {
	b, err := s.Header.bytes()
	if err != nil {
		return MsgID{}, err
	}
	return MsgID(blake3.Sum256(b)), nil
}

// Frame kinds on the pub/sub stream class.
const (
	kindGossip     uint8 = iota + 1 // eager push of one message
	kindIHave                       // lazy announcement of IDs
	kindGraft                       // ask for IDs and become eager
	kindPrune                       // become lazy
	kindTopics                      // the sender's subscriptions (announcement)
	kindFind                        // random walk looking for a topic's subscribers
	kindTopicJoin                   // become topic neighbours
	kindTopicLeave                  // stop being topic neighbours
	kindPublish                     // a message from a non-subscriber, walking to a subscriber
	kindAESketch                    // anti-entropy: IBLT of recent IDs
	kindAERetry                     // anti-entropy: sketch did not decode, send a larger one
	kindAEWant                      // anti-entropy: send me these
	kindAEPush                      // anti-entropy: here are messages you lack
	kindAEIDs                       // anti-entropy fallback: my full recent ID list
	kindIWant                       // ask for IDs without joining the tree (answered with AEPUSH)
	kindTree                        // the sender's position in the topic's tree
	kindMax
)

// Frame is the single wire type of the pub/sub protocol; Kind says which
// fields are meaningful. The sender is the authenticated peer, never a field.
type Frame struct {
	Kind   uint8                `cbor:"1,keyasint"`
	Topic  TopicID              `cbor:"2,keyasint,omitempty"`
	Msg    *Signed              `cbor:"3,keyasint,omitempty"` // GOSSIP, PUBLISH
	Hops   uint8                `cbor:"4,keyasint,omitempty"` // GOSSIP, PUBLISH (walk TTL)
	IDs    IDList               `cbor:"5,keyasint,omitempty"` // AEWANT, AEIDS
	Topics []TopicID            `cbor:"6,keyasint,omitempty"` // TOPICS
	Node   *membership.NodeDesc `cbor:"7,keyasint,omitempty"` // FIND: who is looking
	Msgs   []Signed             `cbor:"8,keyasint,omitempty"` // AEPUSH
	Cells  []byte               `cbor:"9,keyasint,omitempty"` // AESKETCH
	Level  uint8                `cbor:"10,keyasint,omitempty"`
	Accept bool                 `cbor:"11,keyasint,omitempty"` // TOPICJOIN reply
	Reply  bool                 `cbor:"12,keyasint,omitempty"` // TOPICJOIN: this is the answer; AEPUSH: answers an IWANT
	// MsgHops (AEPUSH) holds each message's hop count at the receiver, one
	// byte per message of Msgs, so that pulled messages keep the length of
	// the path they took.
	MsgHops []byte     `cbor:"13,keyasint,omitempty"`
	Tree    *TreeState `cbor:"14,keyasint,omitempty"` // TREE
	Short   ShortList  `cbor:"15,keyasint,omitempty"` // IHAVE, GRAFT, IWANT
}

// messages returns the messages f's kind carries: its Msg (GOSSIP,
// PUBLISH; DecodeFrame ensures it is there) or its Msgs (AEPUSH). Fields
// its kind does not use are ignored.
func (f *Frame) messages() []*Signed {
	switch f.Kind {
	case kindGossip, kindPublish:
		return []*Signed{f.Msg}
	case kindAEPush:
		out := make([]*Signed, len(f.Msgs))
		for i := range f.Msgs {
			out[i] = &f.Msgs[i]
		}
		return out
	}
	return nil
}

// IDList is a list of message IDs. On the wire it is one CBOR byte string
// holding the 32-byte IDs back to back: compact, and cheap to encode and
// decode.
type IDList []MsgID

// ShortList is a list of short IDs, encoded like IDList.
type ShortList []ShortID

// MarshalCBOR encodes the list as one byte string.
func (l IDList) MarshalCBOR() ([]byte, error) {
	return marshalFlat(len(l), len(MsgID{}), func(i int) []byte { return l[i][:] })
}

// UnmarshalCBOR decodes a byte string of whole IDs, at most MaxIDsPerFrame.
func (l *IDList) UnmarshalCBOR(b []byte) error {
	return unmarshalFlat(b, len(MsgID{}), func(n int) { *l = make(IDList, n) }, func(i int) []byte { return (*l)[i][:] })
}

// MarshalCBOR encodes the list as one byte string.
func (l ShortList) MarshalCBOR() ([]byte, error) {
	return marshalFlat(len(l), len(ShortID{}), func(i int) []byte { return l[i][:] })
}

// UnmarshalCBOR decodes a byte string of whole short IDs, at most
// MaxIDsPerFrame.
func (l *ShortList) UnmarshalCBOR(b []byte) error {
	return unmarshalFlat(b, len(ShortID{}), func(n int) { *l = make(ShortList, n) }, func(i int) []byte { return (*l)[i][:] })
}

// marshalFlat encodes n fixed-size IDs (the i-th is at(i)) as one byte
// string.
func marshalFlat(n, size int, at func(int) []byte) ([]byte, error) {
	flat := make([]byte, 0, n*size)
	for i := range n {
		flat = append(flat, at(i)...)
	}
	return wire.Marshal(flat)
}

// unmarshalFlat decodes a byte string of whole size-byte IDs, at most
// MaxIDsPerFrame: alloc makes room for n, and the i-th is copied to at(i).
func unmarshalFlat(b []byte, size int, alloc func(n int), at func(int) []byte) error {
	var flat []byte
	if err := wire.UnmarshalLimit(b, &flat, "message id list", wire.LimitMedium); err != nil {
		return err
	}
	if len(flat)%size != 0 || len(flat)/size > MaxIDsPerFrame {
		return fmt.Errorf("id list of %d bytes", len(flat))
	}
	n := len(flat) / size
	alloc(n)
	for i := range n {
		copy(at(i), flat[i*size:])
	}
	return nil
}

// ErrMalformed is wrapped by every error DecodeFrame returns.
var ErrMalformed = errors.New("pubsub: malformed frame")

// EncodeFrame returns the deterministic CBOR encoding of f. A GOSSIP or
// PUBLISH frame's Topic is not encoded: it is its message's.
func EncodeFrame(f *Frame) ([]byte, error) {
	if (f.Kind == kindGossip || f.Kind == kindPublish) && f.Msg != nil && f.Topic != (TopicID{}) {
		if f.Topic != f.Msg.Header.Topic {
			return nil, fmt.Errorf("pubsub: frame topic differs from the message's")
		}
		g := *f
		g.Topic = TopicID{}
		f = &g
	}
	return wire.Marshal(f)
}

// DecodeFrame parses and bounds-checks a pub/sub frame. It does not verify
// signatures. Errors wrap ErrMalformed.
func DecodeFrame(b []byte) (*Frame, error) {
	var f Frame
	if err := wire.UnmarshalLimit(b, &f, "pubsub frame", wire.LimitMedium); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	bad := func(format string, a ...any) (*Frame, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, a...)...)
	}
	if f.Kind == 0 || f.Kind >= kindMax {
		return bad("unknown kind %d", f.Kind)
	}
	if len(f.IDs) > MaxIDsPerFrame || len(f.Short) > MaxIDsPerFrame {
		return bad("%d ids", len(f.IDs)+len(f.Short))
	}
	if len(f.Topics) > MaxTopicsPerFrame {
		return bad("%d topics", len(f.Topics))
	}
	if len(f.Msgs) > MaxMsgsPerFrame {
		return bad("%d messages", len(f.Msgs))
	}
	if len(f.MsgHops) != 0 && len(f.MsgHops) != len(f.Msgs) {
		return bad("%d hop counts for %d messages", len(f.MsgHops), len(f.Msgs))
	}
	if len(f.Cells)%cellSize != 0 || len(f.Cells)/cellSize > MaxIBLTCells {
		return bad("sketch of %d bytes", len(f.Cells))
	}
	if f.Level > maxAELevel {
		return bad("level %d", f.Level)
	}
	if f.Node != nil && (f.Node.ID.IsZero() || len(f.Node.Addr) > membership.MaxAddrLen) {
		return bad("bad node descriptor")
	}
	switch f.Kind {
	case kindGossip, kindPublish:
		if f.Msg == nil {
			return bad("kind %d without a message", f.Kind)
		}
		// The message's signed header names its topic; the frame does not
		// repeat it (EncodeFrame leaves it out).
		if f.Topic != (TopicID{}) && f.Topic != f.Msg.Header.Topic {
			return bad("frame topic differs from the message's")
		}
		f.Topic = f.Msg.Header.Topic
	case kindFind:
		if f.Node == nil {
			return bad("find without a node")
		}
	case kindTree:
		if f.Tree == nil || f.Tree.Root.IsZero() {
			return bad("tree without a root")
		}
	case kindAESketch:
		if len(f.Cells) == 0 {
			return bad("empty sketch")
		}
	}
	check := func(s *Signed) error {
		if len(s.Payload) > MaxPayload {
			return fmt.Errorf("%w: payload of %d bytes", ErrMalformed, len(s.Payload))
		}
		if len(s.Sig) > MaxSignature {
			return fmt.Errorf("%w: signature of %d bytes", ErrMalformed, len(s.Sig))
		}
		return nil
	}
	if f.Msg != nil {
		if err := check(f.Msg); err != nil {
			return nil, err
		}
	}
	for i := range f.Msgs {
		if err := check(&f.Msgs[i]); err != nil {
			return nil, err
		}
	}
	return &f, nil
}
