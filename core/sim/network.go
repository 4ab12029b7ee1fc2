// Package sim is a deterministic, in-memory stand-in for the x0x transport:
// a virtual clock, a simulated network of nodes that each implement
// link.Network, and per-node deterministic randomness. The membership
// and pub/sub code runs on it unchanged, so 1,000-node experiments run in
// seconds and the same seed always gives the same result.
//
// # Network model
//
// The real transport is QUIC: every stream class is a reliable, ordered
// stream. The simulator therefore never silently drops a frame on a live
// connection. Instead:
//
//   - Latency: each frame takes the one-way latency of its link (by default a
//     fixed value per pair of nodes, drawn uniformly from [MinLatency,
//     MaxLatency] by hashing the seed and the pair).
//   - Loss: with probability Loss a frame needs a retransmission, which adds a
//     retransmission timeout (2 x link latency + 10 ms) to its delivery; this
//     repeats with the same probability. Because streams are ordered, a late
//     frame also delays the frames behind it on the same stream (head-of-line
//     blocking).
//   - Resets: with probability Resets, sending a frame resets its connection
//     (a middlebox dropping state, a NAT rebinding): that frame and every
//     frame in flight on the connection, both ways, are gone, and both ends
//     see the connection go down (ErrConnReset). Unlike Loss, this loses
//     data; only the protocols' own repair brings it back.
//   - Crash (Kill): the node stops at once: its timers are cancelled and
//     frames sent to it are lost. Its peers notice only through the protocol
//     (no reply) or when their connection idles out after IdleTimeout, as with
//     QUIC. Connect to a dead node fails.
//   - Partition: connections between the two sides go down at once on both
//     ends (a PeerEvent with ErrPartitioned), frames in flight between them
//     are lost, and Connect across the cut fails until Heal.
//   - Queues: each direction of a connection holds at most QueueLimit frames
//     in flight; lower priorities get a smaller share (control 100%, eager
//     75%, lazy 50%), so under pressure lazy frames are refused first. A
//     refused frame returns link.ErrQueueFull and is counted.
//
// Connect does not block in the simulator: it succeeds or fails at once, and
// the Up events reach the dialler immediately and the remote side after one
// link latency. Everything runs on the goroutine that drives the Clock; a
// World and its Nodes are not safe for concurrent use.
package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"lukechampine.com/blake3"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
)

// Errors reported by the simulated network in addition to the transport ones.
var (
	// ErrUnreachable is returned by Connect when the target is dead, unknown,
	// or on the other side of a partition.
	ErrUnreachable = errors.New("sim: peer unreachable")
	// ErrPartitioned is the PeerEvent.Err of a connection cut by a partition.
	ErrPartitioned = errors.New("sim: connection cut by partition")
	// ErrIdleTimeout is the PeerEvent.Err of a connection to a crashed peer.
	ErrIdleTimeout = errors.New("sim: connection idle timeout")
	// ErrPeerClosed is the PeerEvent.Err seen by the side that did not close.
	ErrPeerClosed = errors.New("sim: connection closed by peer")
	// ErrConnReset is the PeerEvent.Err of a connection reset (Config.Resets).
	ErrConnReset = errors.New("sim: connection reset, frames in flight lost")
)

// Config describes the simulated network. The zero value of each field
// selects the default noted beside it.
type Config struct {
	// Seed makes the run deterministic.
	Seed uint64
	// MinLatency and MaxLatency bound the one-way link latency (20 ms, 80 ms).
	MinLatency, MaxLatency time.Duration
	// Latency, if set, overrides the per-link latency; it must be
	// deterministic in its arguments (node indexes in creation order).
	Latency func(from, to int) time.Duration
	// Loss is the probability that a frame needs a retransmission (0..1).
	Loss float64
	// Resets is the probability that sending a frame resets its connection,
	// losing every frame in flight on it (0..1).
	Resets float64
	// MaxFrame is the largest frame Send accepts (4 MiB).
	MaxFrame int
	// QueueLimit bounds frames in flight per connection direction (8192).
	QueueLimit int
	// IdleTimeout is how long a connection to a crashed peer stays up (30 s).
	IdleTimeout time.Duration
	// Start is the initial virtual time (2026-01-01 UTC).
	Start time.Time
}

func (c Config) withDefaults() Config {
	if c.MinLatency == 0 && c.MaxLatency == 0 {
		c.MinLatency, c.MaxLatency = 20*time.Millisecond, 80*time.Millisecond
	}
	if c.MaxLatency < c.MinLatency {
		c.MaxLatency = c.MinLatency
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = 4 << 20
	}
	if c.QueueLimit == 0 {
		c.QueueLimit = 8192
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return c
}

// Stats counts one node's traffic. Bytes are frame payload bytes.
type Stats struct {
	FramesSent, FramesRecv uint64
	BytesSent, BytesRecv   uint64
	// SentByClass counts bytes sent per stream class (index = link.Class).
	SentByClass [link.NumClasses + 1]uint64
	// QueueFull counts frames refused with ErrQueueFull.
	QueueFull uint64
	// Lost counts frames this node sent that were lost (peer crashed, or a
	// partition or reset cut the connection while they were in flight).
	Lost uint64
	// Resets counts connection resets caused by this node's sends.
	Resets uint64
}

// World is a simulated network with its virtual clock.
type World struct {
	// Clock drives the simulation; run it with Step/RunFor/RunUntil.
	Clock *Clock
	cfg   Config
	rng   *rand.Rand
	nodes []*Node
	byID  map[identity.PeerID]*Node
	// side of each node while partitioned (nil: no partition).
	side map[*Node]int
}

// NewWorld creates an empty simulated network.
func NewWorld(cfg Config) *World {
	cfg = cfg.withDefaults()
	return &World{
		Clock: NewClock(cfg.Start),
		cfg:   cfg,
		rng:   rand.New(rand.NewPCG(cfg.Seed, 0x5eed)),
		byID:  make(map[identity.PeerID]*Node),
	}
}

// Config returns the effective configuration (with defaults filled in).
func (w *World) Config() Config { return w.cfg }

// Nodes returns all nodes ever added, in creation order (dead ones too).
// The caller must not modify the slice.
func (w *World) Nodes() []*Node { return w.nodes }

// NodeByID returns the node with the given PeerID, or nil.
func (w *World) NodeByID(id identity.PeerID) *Node { return w.byID[id] }

// Rand returns the world's own deterministic generator, for the harness
// (choosing victims, publishers...). Protocol code uses Node.Rand.
func (w *World) Rand() *rand.Rand { return w.rng }

// AddNode creates a live node with the given PeerID. Its address is
// "sim:<index>". It fails if the ID is already in use.
func (w *World) AddNode(id identity.PeerID) (*Node, error) {
	if _, dup := w.byID[id]; dup {
		return nil, fmt.Errorf("sim: node %s already exists", id.Short())
	}
	idx := len(w.nodes)
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:8], w.cfg.Seed)
	binary.LittleEndian.PutUint64(seed[8:16], uint64(idx))
	copy(seed[16:], "x0x-sim-node-rnd")
	n := &Node{
		w:        w,
		idx:      idx,
		id:       id,
		addr:     fmt.Sprintf("sim:%d", idx),
		alive:    true,
		clock:    NewNodeClock(w.Clock),
		rnd:      rand.NewChaCha8(seed),
		conns:    make(map[identity.PeerID]*conn),
		reported: make(map[identity.PeerID]*conn),
	}
	w.nodes = append(w.nodes, n)
	w.byID[id] = n
	return n, nil
}

// Kill crashes n: its timers stop, frames to it are lost, and each of its
// peers sees the connection go down IdleTimeout later (unless closed sooner).
func (w *World) Kill(n *Node) {
	if !n.alive {
		return
	}
	n.alive = false
	n.clock.Halt()
	for _, c := range n.sortedConns() {
		c := c
		w.Clock.AfterFunc(w.cfg.IdleTimeout, func() { w.closeConn(c, nil, ErrIdleTimeout) })
	}
}

// Partition splits the network: nodes for which side returns different
// values can no longer reach each other. Existing connections across the
// cut go down at once on both ends. A new Partition replaces the old one.
func (w *World) Partition(side func(*Node) int) {
	w.side = make(map[*Node]int, len(w.nodes))
	for _, n := range w.nodes {
		w.side[n] = side(n)
	}
	for _, n := range w.nodes {
		for _, c := range n.sortedConns() {
			if c.a == n && w.side[c.a] != w.side[c.b] {
				c.cut = true
				w.closeConn(c, ErrPartitioned, ErrPartitioned)
			}
		}
	}
}

// Heal ends the partition: every node can reach every live node again.
func (w *World) Heal() { w.side = nil }

// Partitioned reports whether a and b are on different sides of a partition.
func (w *World) Partitioned(a, b *Node) bool {
	return w.side != nil && w.side[a] != w.side[b]
}

// LinkLatency returns the base one-way latency of the link from a to b
// (without retransmissions): the physical limit a protocol's paths are
// measured against.
func (w *World) LinkLatency(a, b *Node) time.Duration { return w.linkLatency(a, b) }

// linkLatency returns the base one-way latency from a to b.
func (w *World) linkLatency(a, b *Node) time.Duration {
	if w.cfg.Latency != nil {
		return w.cfg.Latency(a.idx, b.idx)
	}
	lo, hi := a.idx, b.idx
	if lo > hi {
		lo, hi = hi, lo
	}
	var buf [24]byte
	binary.LittleEndian.PutUint64(buf[0:], w.cfg.Seed)
	binary.LittleEndian.PutUint64(buf[8:], uint64(lo))
	binary.LittleEndian.PutUint64(buf[16:], uint64(hi))
	sum := blake3.Sum256(buf[:])
	span := int64(w.cfg.MaxLatency - w.cfg.MinLatency)
	if span <= 0 {
		return w.cfg.MinLatency
	}
	return w.cfg.MinLatency + time.Duration(binary.LittleEndian.Uint64(sum[:8])%uint64(span+1))
}

// conn is one simulated connection between nodes a (dialler) and b.
type conn struct {
	a, b *Node
	up   bool
	cut  bool
	// last delivery time per direction (0: a->b, 1: b->a) and class, for FIFO.
	last [2][link.NumClasses + 1]time.Time
	// in-flight frames per direction.
	inflight [2]int
	// heard is when the last frame was delivered, per direction.
	heard [2]time.Time
}

func (c *conn) other(n *Node) *Node {
	if c.a == n {
		return c.b
	}
	return c.a
}

func (c *conn) dir(from *Node) int {
	if c.a == from {
		return 0
	}
	return 1
}

// closeConn takes c down. errA/errB are the event errors seen by a and b.
func (w *World) closeConn(c *conn, errA, errB error) {
	if !c.up {
		return
	}
	c.up = false
	for _, n := range []*Node{c.a, c.b} {
		peer := c.other(n)
		if n.conns[peer.id] == c {
			delete(n.conns, peer.id)
		}
	}
	w.Clock.AfterFunc(0, func() { c.a.report(c, false, errA) })
	w.Clock.AfterFunc(0, func() { c.b.report(c, false, errB) })
}

// Node is one simulated machine. It implements link.Network.
type Node struct {
	w        *World
	idx      int
	id       identity.PeerID
	addr     string
	alive    bool
	clock    *NodeClock
	rnd      *rand.ChaCha8
	handlers [link.MaxProtocol + 1]link.MessageHandler // by protocol
	watchers []func(link.PeerEvent)
	conns    map[identity.PeerID]*conn
	reported map[identity.PeerID]*conn
	stats    Stats
}

var _ link.Network = (*Node)(nil)

// Dial connects as Connect does and calls done with the result from the
// world's event loop, after the events already scheduled for now. ctx is
// not consulted.
func (n *Node) Dial(ctx context.Context, peer identity.PeerID, addr string, done func(error)) {
	err := n.Connect(ctx, peer, addr)
	n.w.Clock.AfterFunc(0, func() { done(err) })
}

// Index returns the node's creation index.
func (n *Node) Index() int { return n.idx }

// Alive reports whether the node has not been killed.
func (n *Node) Alive() bool { return n.alive }

// Clock returns the node's clock (stopped when the node is killed).
func (n *Node) Clock() *NodeClock { return n.clock }

// Rand returns the node's deterministic random stream (an io.Reader).
func (n *Node) Rand() *rand.ChaCha8 { return n.rnd }

// Stats returns a copy of the node's traffic counters.
func (n *Node) Stats() Stats { return n.stats }

// LocalID returns the node's PeerID.
func (n *Node) LocalID() identity.PeerID { return n.id }

// LocalAddr returns "sim:<index>".
func (n *Node) LocalAddr() string { return n.addr }

// Connect opens a connection to peer at addr at once, or fails with
// ErrUnreachable (unknown address, wrong ID, dead peer, partition) or
// link.ErrClosed (this node is dead). ctx is not consulted.
func (n *Node) Connect(_ context.Context, peer identity.PeerID, addr string) error {
	if !n.alive {
		return link.ErrClosed
	}
	t := n.w.byID[peer]
	if t == nil || t.addr != addr {
		return fmt.Errorf("%w: no node %s at %q", ErrUnreachable, peer.Short(), addr)
	}
	if t == n {
		return fmt.Errorf("%w: cannot connect to self", ErrUnreachable)
	}
	if !t.alive || n.w.Partitioned(n, t) {
		return fmt.Errorf("%w: %s does not answer", ErrUnreachable, peer.Short())
	}
	if c := n.conns[peer]; c != nil && c.up {
		return nil
	}
	c := &conn{a: n, b: t, up: true}
	n.conns[peer] = c
	t.conns[n.id] = c
	n.w.Clock.AfterFunc(0, func() { n.report(c, true, nil) })
	n.w.Clock.AfterFunc(n.w.linkLatency(n, t), func() { t.report(c, true, nil) })
	return nil
}

// report delivers a connection event for c to n's watchers, keeping Up and
// Down paired per connection even when connections are replaced quickly.
func (n *Node) report(c *conn, up bool, err error) {
	if !n.alive {
		return
	}
	peer := c.other(n)
	if up {
		if n.conns[peer.id] != c || !c.up || n.reported[peer.id] == c {
			return
		}
		if old := n.reported[peer.id]; old != nil {
			// A replaced connection whose Down was not reported yet.
			n.emit(link.PeerEvent{Peer: peer.id, Addr: peer.addr, Up: false, Err: ErrPeerClosed})
		}
		n.reported[peer.id] = c
		n.emit(link.PeerEvent{Peer: peer.id, Addr: peer.addr, Up: true})
		return
	}
	if n.reported[peer.id] != c {
		return
	}
	delete(n.reported, peer.id)
	n.emit(link.PeerEvent{Peer: peer.id, Addr: peer.addr, Up: false, Err: err})
}

func (n *Node) emit(ev link.PeerEvent) {
	for _, h := range n.watchers {
		h(ev)
	}
}

// Disconnect closes the connection to peer. Frames already sent are still
// delivered before the peer sees the connection go down.
func (n *Node) Disconnect(peer identity.PeerID) {
	c := n.conns[peer]
	if c == nil || !c.up {
		return
	}
	c.up = false
	t := c.other(n)
	delete(n.conns, peer)
	if t.conns[n.id] == c {
		delete(t.conns, n.id)
	}
	n.w.Clock.AfterFunc(0, func() { n.report(c, false, nil) })
	at := n.w.Clock.Now().Add(n.w.linkLatency(n, t))
	for _, l := range c.last[c.dir(n)] {
		if l.After(at) {
			at = l
		}
	}
	n.w.Clock.AfterFunc(at.Sub(n.w.Clock.Now()), func() { t.report(c, false, ErrPeerClosed) })
}

// Send queues msg for delivery to peer. See the package doc for the model.
func (n *Node) Send(peer identity.PeerID, proto link.Protocol, prio link.Priority, msg []byte) error {
	if !n.alive {
		return link.ErrClosed
	}
	c := n.conns[peer]
	if c == nil || !c.up {
		return link.ErrNotConnected
	}
	if len(msg) > n.w.cfg.MaxFrame {
		return link.ErrTooLarge
	}
	if !proto.Valid() || !prio.Valid() {
		return fmt.Errorf("%w: protocol %d, priority %d", link.ErrBadProtocol, proto, prio)
	}
	class := proto.Class()
	d := c.dir(n)
	limit := n.w.cfg.QueueLimit
	switch prio {
	case link.PriorityControl:
	case link.PriorityEager:
		limit = limit * 3 / 4
	default:
		limit /= 2
	}
	if c.inflight[d] >= limit {
		n.stats.QueueFull++
		return link.ErrQueueFull
	}
	t := c.other(n)
	if n.w.cfg.Resets > 0 && n.w.rng.Float64() < n.w.cfg.Resets {
		// Sent into a connection that is dying: lost with everything in
		// flight on it.
		n.stats.FramesSent++
		n.stats.BytesSent += uint64(len(msg))
		n.stats.Lost++
		n.stats.Resets++
		c.cut = true
		n.w.closeConn(c, ErrConnReset, ErrConnReset)
		return nil
	}
	lat := n.w.linkLatency(n, t)
	delay := lat
	for n.w.cfg.Loss > 0 && n.w.rng.Float64() < n.w.cfg.Loss {
		delay += 2*lat + 10*time.Millisecond
	}
	at := n.w.Clock.Now().Add(delay)
	if last := c.last[d][class]; last.After(at) {
		at = last
	}
	c.last[d][class] = at
	c.inflight[d]++
	n.stats.FramesSent++
	n.stats.BytesSent += uint64(len(msg))
	n.stats.SentByClass[class] += uint64(len(msg))
	n.w.Clock.AfterFunc(at.Sub(n.w.Clock.Now()), func() {
		c.inflight[d]--
		if c.cut || !t.alive {
			n.stats.Lost++
			return
		}
		t.stats.FramesRecv++
		t.stats.BytesRecv += uint64(len(msg))
		c.heard[d] = n.w.Clock.Now()
		if h := t.handlers[proto]; h != nil {
			h(n.id, slices.Clone(msg))
		}
	})
	return nil
}

// Handle sets the handler for inbound frames of class.
func (n *Node) Handle(proto link.Protocol, h link.MessageHandler) {
	if proto.Valid() {
		n.handlers[proto] = h
	}
}

// WatchPeers adds a connection-event listener.
func (n *Node) WatchPeers(h func(link.PeerEvent)) { n.watchers = append(n.watchers, h) }

// LastHeard returns when the last frame from peer on the current
// connection was delivered (zero when not connected or none yet).
func (n *Node) LastHeard(peer identity.PeerID) time.Time {
	c := n.conns[peer]
	if c == nil || !c.up {
		return time.Time{}
	}
	return c.heard[c.dir(c.other(n))]
}

// Peers lists connected peers, sorted by ID (deterministic).
func (n *Node) Peers() []identity.PeerID {
	out := make([]identity.PeerID, 0, len(n.conns))
	for id, c := range n.conns {
		if c.up {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b identity.PeerID) int { return compareID(a, b) })
	return out
}

func (n *Node) sortedConns() []*conn {
	ids := n.Peers()
	out := make([]*conn, 0, len(ids))
	for _, id := range ids {
		out = append(out, n.conns[id])
	}
	return out
}

func compareID(a, b identity.PeerID) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}
