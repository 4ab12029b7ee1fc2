package transport

import (
	"context"
	"errors"

	"github.com/saorsa-labs/x0x-go/core/identity"
)

// Class is a stream class. Each class has its own long-lived framed stream
// per peer, so that one class cannot starve another.
type Class uint8

// Stream classes.
const (
	ClassMembership Class = 1 // HyParView / SWIM control traffic
	ClassPubSub     Class = 2 // Plumtree and anti-entropy
	ClassBulk       Class = 3 // large transfers (state sync)
	ClassDirect     Class = 4 // agent-to-agent direct messages
	ClassNAT        Class = 5 // hole-punch coordination (core/nat)
	// ClassRelay carries QUIC packets of connections relayed through a
	// node. The transport handles it itself: Handle and Send refuse it.
	ClassRelay Class = 6
)

// Priority orders frames within one peer's send queue: control goes before
// eager payloads, which go before lazy / anti-entropy traffic.
type Priority uint8

// Send priorities, highest first.
const (
	PriorityControl Priority = 0
	PriorityEager   Priority = 1
	PriorityLazy    Priority = 2
)

// Errors returned by Network.Send and Connect.
var (
	ErrNotConnected = errors.New("transport: peer not connected")
	ErrQueueFull    = errors.New("transport: send queue full, frame dropped")
	ErrTooLarge     = errors.New("transport: frame exceeds size limit")
	ErrClosed       = errors.New("transport: node closed")
)

// MessageHandler receives one inbound frame of a class from an authenticated
// peer. It runs on a transport (or simulator) goroutine and must not block;
// msg is owned by the handler.
type MessageHandler func(from identity.PeerID, msg []byte)

// PeerEvent reports an authenticated connection coming up or going down.
type PeerEvent struct {
	Peer    identity.PeerID
	Addr    string // the peer's address as this node sees it
	Relayed bool   // the connection runs through a relay (Addr is a RelayAddr)
	Up      bool
	Err     error // why the connection went down (nil on Up, or on a local close)
}

// Network is the message service the overlay layers (membership, pubsub,
// discovery) run on. *Node implements it over QUIC; core/sim implements it
// in memory with virtual time, so the same protocol code runs on both.
type Network interface {
	// LocalID returns this node's PeerID (its MachineID).
	LocalID() identity.PeerID
	// LocalAddr returns the address other nodes should dial to reach this one.
	LocalAddr() string
	// Connect establishes an authenticated connection to peer at addr, or
	// returns at once if one exists. A key that does not derive peer fails.
	Connect(ctx context.Context, peer identity.PeerID, addr string) error
	// Disconnect closes the connection to peer, if any.
	Disconnect(peer identity.PeerID)
	// Send queues msg to peer on class without blocking. It returns
	// ErrNotConnected, ErrQueueFull (the frame is dropped and counted) or
	// ErrTooLarge. The caller must not modify msg afterwards.
	Send(peer identity.PeerID, class Class, prio Priority, msg []byte) error
	// Handle sets the handler for inbound frames of class (one per class).
	Handle(class Class, h MessageHandler)
	// WatchPeers adds a listener for connection events. Listeners run on a
	// transport goroutine, in event order, and must not block.
	WatchPeers(h func(PeerEvent))
	// Peers lists the currently connected peers.
	Peers() []identity.PeerID
}
