// Package adversary is a hostile peer for tests and the soak benchmark:
// a bare transport node with a throwaway ML-DSA-65 key that completes the
// post-quantum handshake like any peer and then sends whatever frames it
// is given, plus builders for the frames of every attack x0x must survive
// (issue 10). It is test tooling: nothing in the library imports it.
//
// Every frame builder returns a frame that decodes (unless it is meant to
// be malformed) and that a correct node must refuse, ignore or bound.
package adversary

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"lukechampine.com/blake3"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/membership"
	"github.com/saorsa-labs/x0x-go/core/pubsub"
	"github.com/saorsa-labs/x0x-go/core/transport"
)

// Peer is one hostile peer: a transport node of its own.
type Peer struct {
	*transport.Node
	// Key is the peer's machine key (fresh for every Peer).
	Key *identity.KeyPair
}

// New starts a hostile peer bound to bind ("127.0.0.1:0" if empty; a
// different loopback address gives it a source IP of its own). Close it
// when done.
func New(ctx context.Context, bind string) (*Peer, error) {
	key, err := identity.GenerateKeyPair(rand.Reader)
	if err != nil {
		return nil, err
	}
	if bind == "" {
		bind = "127.0.0.1:0"
	}
	n, err := transport.Listen(ctx, transport.Config{BindAddr: bind, Machine: key})
	if err != nil {
		return nil, err
	}
	go func() {
		for range n.Events() { // nobody listens: drain
		}
	}()
	return &Peer{Node: n, Key: key}, nil
}

// Send sends frame on class to victim, waiting for room while the send
// queue is full, until ctx ends.
func (p *Peer) Send(ctx context.Context, victim identity.PeerID, class link.Protocol, frame []byte) error {
	for {
		err := p.Node.Send(victim, class, link.PriorityControl, frame)
		if !errors.Is(err, link.ErrQueueFull) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", err, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// Membership frame kinds and pub/sub frame kinds, as on the wire.
const (
	memForwardJoin = 2
	memShuffle     = 6
	memPing        = 8
	memPingReq     = 10
	memUpdate      = 11
	psGossip       = 1
	psIHave        = 2
	psFind         = 6
	psPublish      = 9
)

// DecodeBomb is a membership frame of n bytes or so whose node list is an
// array of n-5 empty maps: decoding it naively allocates ~48 bytes per
// byte received (attack 1).
func DecodeBomb(n int) []byte {
	frame := binary.BigEndian.AppendUint32([]byte{0xa2, 0x01, 0x0b, 0x06, 0x9a}, uint32(n))
	for range n {
		frame = append(frame, 0xa0)
	}
	return frame
}

// ForgedDeath claims node is dead at the largest incarnation (attack 3).
func ForgedDeath(node membership.NodeDesc) ([]byte, error) {
	node.Rec = nil
	return membership.Encode(&membership.Message{Kind: memUpdate,
		Updates: []membership.Update{{Node: node, State: membership.StateDead, Inc: ^uint64(0)}}})
}

// Ping is a SWIM ping: a stranger's way of keeping a connection busy
// (attack 5).
func Ping(seq uint64) ([]byte, error) {
	return membership.Encode(&membership.Message{Kind: memPing, Seq: seq})
}

// ClaimedAddress returns frames that name target (an address the attacker
// wants the victim to dial, with or without a record) in a pub/sub FIND on
// topic, a FORWARDJOIN with TTL 0, a SHUFFLE and a PINGREQ (attack 2). The
// first is a pub/sub frame, the others membership frames.
func ClaimedAddress(topic string, target membership.NodeDesc, seq uint64) (find []byte, membershipFrames [][]byte, err error) {
	if find, err = pubsub.EncodeFrame(&pubsub.Frame{Kind: psFind, Topic: pubsub.TopicIDOf(topic), Node: &target, Hops: 1}); err != nil {
		return nil, nil, err
	}
	for _, m := range []*membership.Message{
		{Kind: memForwardJoin, Node: &target},
		{Kind: memShuffle, Node: &target, Nodes: []membership.NodeDesc{target}},
		{Kind: memPingReq, Seq: seq, Node: &target},
	} {
		b, err := membership.Encode(m)
		if err != nil {
			return nil, nil, err
		}
		membershipFrames = append(membershipFrames, b)
	}
	return find, membershipFrames, nil
}

// SelfSignedTarget is a descriptor of a fresh throwaway key at addr with a
// valid record: the most an attacker can make a node believe about an
// address (attack 2).
func SelfSignedTarget(addr string, clk clock.Clock) (membership.NodeDesc, error) {
	k, err := identity.GenerateKeyPair(rand.Reader)
	if err != nil {
		return membership.NodeDesc{}, err
	}
	rec, err := membership.NewMachineRecords(k, clk, nil).Sign(addr)
	if err != nil {
		return membership.NodeDesc{}, err
	}
	return membership.NodeDesc{ID: k.ID(), Addr: addr, Rec: rec}, nil
}

// ForgedMessage is a GOSSIP frame (or, with walk set, a PUBLISH walk with
// 255 hops) of a message claiming origin, whose signature is garbage
// (attacks 7 and 9).
func ForgedMessage(topic string, origin identity.AgentID, payload []byte, seq uint64, walk bool) ([]byte, error) {
	h := pubsub.Header{Topic: pubsub.TopicIDOf(topic), Origin: origin, Seq: seq, Time: time.Now().UnixMilli(), PayloadHash: blake3.Sum256(payload)}
	f := &pubsub.Frame{Kind: psGossip, Topic: h.Topic, Msg: &pubsub.Signed{Header: h, Payload: payload, Sig: make([]byte, identity.SignatureSize)}}
	if walk {
		f.Kind, f.Hops = psPublish, 255
	}
	return pubsub.EncodeFrame(f)
}

// UnknownOrigin is a GOSSIP frame of a message from a made-up origin (its
// key cannot be fetched), carrying size bytes: the victim holds such
// frames while it asks for the key (attack 9).
func UnknownOrigin(topic string, size int) ([]byte, error) {
	var origin identity.AgentID
	_, _ = rand.Read(origin[:])
	return ForgedMessage(topic, origin, make([]byte, size), 1, false)
}

// IHave is a small pub/sub frame announcing one made-up message ID: the
// cheapest frame to flood with (attack 9).
func IHave(topic string) ([]byte, error) {
	var id pubsub.MsgID
	_, _ = rand.Read(id[:])
	return pubsub.EncodeFrame(&pubsub.Frame{Kind: psIHave, Topic: pubsub.TopicIDOf(topic), IDs: pubsub.IDList{id}})
}
