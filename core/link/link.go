// Package link defines the message service the overlay's protocols run on:
// the Network interface, its stream classes and named sub-protocols, send
// priorities, peer events and the errors a send or dial returns.
//
// It holds no implementation and does not import quic-go: core/transport
// implements Network over QUIC and core/sim implements it in memory with
// virtual time, so membership, pub/sub, key fetching, task-list sync and
// hole-punch coordination run the same code over both.
package link

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
)

// Class is a stream class. Each class has its own long-lived framed stream
// per peer, so that one class cannot starve another.
type Class uint8

// Stream classes.
const (
	ClassMembership Class = 1 // HyParView / SWIM control traffic
	ClassPubSub     Class = 2 // Plumtree, anti-entropy and key fetching
	ClassBulk       Class = 3 // large transfers (state sync)
	ClassDirect     Class = 4 // agent-to-agent direct messages
	ClassNAT        Class = 5 // hole-punch coordination (core/nat)
	// ClassRelay carries QUIC packets of connections relayed through a
	// node. The transport handles it itself: no Protocol runs on it.
	ClassRelay Class = 6
)

// NumClasses is the number of stream classes; Class(1)..Class(NumClasses)
// are valid.
const NumClasses = 6

// Valid reports whether c is a known class.
func (c Class) Valid() bool { return c >= ClassMembership && c <= ClassRelay }

// Index returns c's position in per-class tables (0 for ClassMembership).
func (c Class) Index() int { return int(c) - 1 }

// String names the class for logs and metrics.
func (c Class) String() string {
	switch c {
	case ClassMembership:
		return "membership"
	case ClassPubSub:
		return "pubsub"
	case ClassBulk:
		return "bulk"
	case ClassDirect:
		return "direct"
	case ClassNAT:
		return "nat"
	case ClassRelay:
		return "relay"
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Protocol names a sub-protocol. Each runs on one stream class, and the
// transport tags every frame with its protocol and hands it to that
// protocol's handler, so that protocols sharing a class need no tag bytes
// of their own.
type Protocol uint8

// Sub-protocols.
const (
	ProtoMembership Protocol = 1 // HyParView and SWIM (ClassMembership)
	ProtoPubSub     Protocol = 2 // Plumtree and anti-entropy (ClassPubSub)
	ProtoKeys       Protocol = 3 // agent public-key requests and replies (ClassPubSub)
	ProtoTaskSync   Protocol = 4 // task-list catch-up between neighbours (ClassBulk)
	ProtoNAT        Protocol = 5 // hole-punch coordination (ClassNAT)
)

// MaxProtocol is the largest valid Protocol; Protocol(1)..MaxProtocol are
// valid.
const MaxProtocol = ProtoNAT

// Valid reports whether p is a known protocol.
func (p Protocol) Valid() bool { return p >= ProtoMembership && p <= MaxProtocol }

// Class returns the stream class p runs on (0 for an unknown protocol).
func (p Protocol) Class() Class {
	switch p {
	case ProtoMembership:
		return ClassMembership
	case ProtoPubSub, ProtoKeys:
		return ClassPubSub
	case ProtoTaskSync:
		return ClassBulk
	case ProtoNAT:
		return ClassNAT
	}
	return 0
}

// String names the protocol and its version, for logs and metrics.
func (p Protocol) String() string {
	switch p {
	case ProtoMembership:
		return "x0x/membership/1"
	case ProtoPubSub:
		return "x0x/pubsub/1"
	case ProtoKeys:
		return "x0x/keys/1"
	case ProtoTaskSync:
		return "x0x/tasksync/1"
	case ProtoNAT:
		return "x0x/nat/1"
	}
	return fmt.Sprintf("protocol(%d)", uint8(p))
}

// Priority orders frames within one peer's send queue: control goes before
// eager payloads, which go before lazy / anti-entropy traffic.
type Priority uint8

// Send priorities, highest first.
const (
	PriorityControl Priority = 0
	PriorityEager   Priority = 1
	PriorityLazy    Priority = 2
)

// NumPriorities is the number of send priorities.
const NumPriorities = 3

// Valid reports whether p is a known priority.
func (p Priority) Valid() bool { return p <= PriorityLazy }

// String names the priority for logs and metrics.
func (p Priority) String() string {
	switch p {
	case PriorityControl:
		return "control"
	case PriorityEager:
		return "eager"
	case PriorityLazy:
		return "lazy"
	}
	return fmt.Sprintf("priority(%d)", uint8(p))
}

// Errors returned by Network.Send, Connect and Dial.
var (
	ErrNotConnected = errors.New("link: peer not connected")
	ErrQueueFull    = errors.New("link: send queue full, frame dropped")
	ErrTooLarge     = errors.New("link: frame exceeds size limit")
	ErrClosed       = errors.New("link: network closed")
	// ErrBadProtocol: Send or Handle was given an unknown protocol or
	// priority.
	ErrBadProtocol = errors.New("link: unknown protocol or priority")
)

// MessageHandler receives one inbound frame of a protocol from an
// authenticated peer. It runs on a transport (or simulator) goroutine and
// must not block; msg is owned by the handler.
type MessageHandler func(from identity.PeerID, msg []byte)

// PeerEvent reports an authenticated connection coming up or going down.
type PeerEvent struct {
	Peer    identity.PeerID
	Addr    string // the peer's address as this node sees it
	Relayed bool   // the connection runs through a relay (Addr is a relay address)
	Up      bool
	Err     error // why the connection went down (nil on Up, or on a local close)
}

// Network is the message service the overlay layers (membership, pubsub,
// key fetching, task-list sync, NAT coordination) run on. Protocol code
// calls it only from event handlers (frames, timers, peer events) and never
// blocks on it: Send queues, Dial reports its result through a callback.
type Network interface {
	// LocalID returns this node's PeerID (its MachineID).
	LocalID() identity.PeerID
	// LocalAddr returns the address other nodes should dial to reach this one.
	LocalAddr() string
	// Connect establishes an authenticated connection to peer at addr and
	// waits for it, or returns at once if one exists. A key that does not
	// derive peer fails. For callers outside protocol event handlers.
	Connect(ctx context.Context, peer identity.PeerID, addr string) error
	// Dial starts what Connect does without waiting and calls done exactly
	// once with its result, on a network goroutine (never inside Dial, so
	// the caller may hold its own locks). done must not block. A dial ends
	// with ctx's error when ctx ends first, and with ErrClosed when the
	// network closes.
	Dial(ctx context.Context, peer identity.PeerID, addr string, done func(error))
	// Disconnect closes the connection to peer, if any.
	Disconnect(peer identity.PeerID)
	// Send queues msg to peer for protocol proto without blocking. It
	// returns ErrNotConnected, ErrQueueFull (the frame is dropped and
	// counted), ErrTooLarge, ErrBadProtocol or ErrClosed. The caller must
	// not modify msg afterwards.
	Send(peer identity.PeerID, proto Protocol, prio Priority, msg []byte) error
	// Handle sets the handler for inbound frames of proto (one per
	// protocol; nil removes it). Frames of a protocol without a handler are
	// dropped and counted.
	Handle(proto Protocol, h MessageHandler)
	// WatchPeers adds a listener for connection events. Listeners run on a
	// network goroutine, in event order, and must not block.
	WatchPeers(h func(PeerEvent))
	// Peers lists the currently connected peers.
	Peers() []identity.PeerID
	// LastHeard returns when the network last received a frame of any
	// protocol from peer on its current connection, by the network's
	// clock; zero when peer is not connected or has sent nothing yet.
	// Only peer can cause it (connections are authenticated), so failure
	// detection takes it as evidence that peer is alive.
	LastHeard(peer identity.PeerID) time.Time
}
