package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/internal/ratelimit"
	"github.com/saorsa-labs/x0x-go/core/link"
)

// Relayed connections
//
// A node that cannot reach a peer directly can reach it through a third
// node that both are connected to and that offers ServiceRelay. The relay
// forwards packets, not streams: the two ends run an ordinary x0x QUIC
// connection (TLS 1.3 with X25519MLKEM768, the ML-DSA-65 channel binding,
// the same class streams) whose UDP datagrams travel inside relay frames on
// the relay stream of their connections to the relay:
//
//	A --frameRelayFwd{B, packet}--> R --frameRelayPkt{A, packet}--> B
//
// Every node has a second quic.Transport over a virtual packet connection
// (relayConn) whose addresses are RelayAddr{Relay, Peer}; relayed
// connections are dialled and accepted on it and handled like any other.
// The relay sees only QUIC ciphertext. It cannot impersonate either end
// (the ML-DSA proof binds the peer's key to the TLS session), and a
// connection whose proven identity differs from the source the relay
// named is refused. Tampered packets fail QUIC's AEAD and are dropped;
// replayed ones are discarded by packet-number checks.
//
// A relay enforces RelayLimits per client: the number of distinct peers it
// relays to, and a byte rate. Packets over a limit, or for a peer the relay
// has no direct connection to, are dropped and answered (at most once a
// second per client and peer) with frameRelayErr, which fails a relayed
// dial at once. Relay frames are accepted only on direct connections
// (no relaying through relays), and only from a peer that advertised
// ServiceRelay (frameRelayPkt, frameRelayErr) or to a node that offers it
// (frameRelayFwd; anything else is a protocol violation).

// RelayAddr is the address of a connection relayed through another node:
// Relay is the forwarding node, Peer the node at the other end.
type RelayAddr struct {
	Relay identity.PeerID
	Peer  identity.PeerID
}

// Network names the address family for net.Addr.
func (RelayAddr) Network() string { return "x0x-relay" }

// String is "relay:<relay id>/<peer id>" (both in hex).
func (a RelayAddr) String() string { return "relay:" + a.Relay.String() + "/" + a.Peer.String() }

// Relay refusal codes carried by frameRelayErr.
const (
	relayNoTarget  byte = 1 // the relay has no direct connection to the target
	relayOverQuota byte = 2 // the client exceeded its circuits or byte rate
	relayBadTarget byte = 3 // the target is the client or the relay itself
)

// ErrRelayRefused means the relay would not forward to the peer (not
// connected to it, or the client is over its quota). See RelayError.
var ErrRelayRefused = errors.New("transport: relay refused to forward")

// ErrNotRelay means the node asked to relay does not offer ServiceRelay or
// is itself reached through a relay.
var ErrNotRelay = errors.New("transport: peer does not offer relaying")

// ErrRelayLost means the connection to the relay that carried a relayed
// connection went down.
var ErrRelayLost = errors.New("transport: connection to the relay was lost")

// RelayError reports why a relay refused a relayed dial. It matches
// ErrRelayRefused with errors.Is.
type RelayError struct {
	Relay, Peer identity.PeerID
	Code        byte // 1: not connected to Peer, 2: over quota, 3: bad target
}

// Error describes the refusal.
func (e *RelayError) Error() string {
	why := "code " + fmt.Sprint(e.Code)
	switch e.Code {
	case relayNoTarget:
		why = "it has no direct connection to the peer"
	case relayOverQuota:
		why = "this node is over its relay quota"
	case relayBadTarget:
		why = "invalid target"
	}
	return fmt.Sprintf("transport: relay %s refused to forward to %s: %s", e.Relay.Short(), e.Peer.Short(), why)
}

// Unwrap returns ErrRelayRefused.
func (e *RelayError) Unwrap() error { return ErrRelayRefused }

// RelayLimits bounds what a relay does for each client (a directly
// connected peer sending it packets to forward). Zero fields take the
// defaults.
type RelayLimits struct {
	// MaxPeersPerClient caps the distinct peers one client's packets go to
	// within CircuitIdle (default 32).
	MaxPeersPerClient int
	// BytesPerSecond is each client's sustained forwarding rate (default
	// 4 MiB/s) and Burst its bucket size (default 16 MiB).
	BytesPerSecond int
	Burst          int
	// CircuitIdle is how long a client-peer pair counts against
	// MaxPeersPerClient after its last packet (default 2 min).
	CircuitIdle time.Duration
}

// Relay defaults.
const (
	DefaultRelayPeersPerClient = 32
	DefaultRelayBytesPerSecond = 4 << 20
	DefaultRelayBurst          = 16 << 20
	DefaultRelayCircuitIdle    = 2 * time.Minute
	// relayInboundPackets bounds relayed packets waiting for quic-go.
	relayInboundPackets = 1024
)

func (l *RelayLimits) fill() {
	if l.MaxPeersPerClient == 0 {
		l.MaxPeersPerClient = DefaultRelayPeersPerClient
	}
	if l.BytesPerSecond == 0 {
		l.BytesPerSecond = DefaultRelayBytesPerSecond
	}
	if l.Burst == 0 {
		l.Burst = DefaultRelayBurst
	}
	if l.CircuitIdle == 0 {
		l.CircuitIdle = DefaultRelayCircuitIdle
	}
}

func (l *RelayLimits) validate() error {
	if l.MaxPeersPerClient < 0 || l.BytesPerSecond < 0 || l.Burst < 0 || l.CircuitIdle < 0 {
		return fmt.Errorf("%w: negative RelayLimits field", ErrBadConfig)
	}
	return nil
}

// ---- the virtual packet connection ----

type relayPacket struct {
	from RelayAddr
	data []byte
}

// relayConn is the net.PacketConn under the node's relay quic.Transport.
// WriteTo wraps packets into relay frames; deliver feeds it packets that
// arrived in relay frames.
type relayConn struct {
	n       *Node
	in      chan relayPacket
	done    chan struct{}
	closeMu sync.Once

	mu       sync.Mutex
	deadline time.Time     // read deadline (zero: none)
	wake     chan struct{} // closed when the deadline changes
}

func newRelayConn(n *Node) *relayConn {
	return &relayConn{n: n, in: make(chan relayPacket, relayInboundPackets), done: make(chan struct{}),
		wake: make(chan struct{})}
}

// errRelayTimeout is ReadFrom's error once the read deadline has passed.
type errRelayTimeout struct{}

func (errRelayTimeout) Error() string   { return "transport: relay path read deadline exceeded" }
func (errRelayTimeout) Timeout() bool   { return true }
func (errRelayTimeout) Temporary() bool { return true }

// ReadFrom blocks until a relayed packet arrives, the read deadline passes
// (quic-go sets one to stop its reader) or the connection closes.
func (rc *relayConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		rc.mu.Lock()
		dl, wake := rc.deadline, rc.wake
		rc.mu.Unlock()
		var expired <-chan time.Time
		var timer *time.Timer
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, nil, errRelayTimeout{}
			}
			timer = time.NewTimer(d)
			expired = timer.C
		}
		var p relayPacket
		var err error
		got := false
		select {
		case p = <-rc.in:
			got = true
		case <-rc.done:
			err = net.ErrClosed
		case <-wake:
		case <-expired:
		}
		if timer != nil {
			timer.Stop()
		}
		if got {
			return copy(b, p.data), p.from, nil
		}
		if err != nil {
			return 0, nil, err
		}
	}
}

// SetReadDeadline sets the deadline for ReadFrom (zero: none).
func (rc *relayConn) SetReadDeadline(t time.Time) error {
	rc.mu.Lock()
	rc.deadline = t
	close(rc.wake)
	rc.wake = make(chan struct{})
	rc.mu.Unlock()
	return nil
}

// SetDeadline sets the read deadline (writes never block).
func (rc *relayConn) SetDeadline(t time.Time) error { return rc.SetReadDeadline(t) }

// WriteTo sends b through the relay named by addr. Like UDP it never
// blocks: a packet that cannot be queued is dropped and counted.
func (rc *relayConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ra, ok := addr.(RelayAddr)
	if !ok {
		return 0, fmt.Errorf("transport: relay path cannot send to %T", addr)
	}
	select {
	case <-rc.done:
		return 0, net.ErrClosed
	default:
	}
	rc.n.relayOut(ra, b)
	return len(b), nil
}

func (rc *relayConn) deliver(p relayPacket) bool {
	select {
	case rc.in <- p:
		return true
	default:
		return false
	}
}

func (rc *relayConn) Close() error {
	rc.closeMu.Do(func() { close(rc.done) })
	return nil
}

// LocalAddr is the relay path's own (placeholder) address.
func (rc *relayConn) LocalAddr() net.Addr { return RelayAddr{Peer: rc.n.id} }

// Writes never block, so write deadlines are accepted and ignored.
// SetReadBuffer/SetWriteBuffer keep quic-go from warning about socket
// buffers this path does not have.
func (rc *relayConn) SetWriteDeadline(time.Time) error { return nil }
func (rc *relayConn) SetReadBuffer(int) error          { return nil }
func (rc *relayConn) SetWriteBuffer(int) error         { return nil }

var _ net.PacketConn = (*relayConn)(nil)

// ---- client side ----

// relayOut queues one packet of a relayed connection to its relay.
func (n *Node) relayOut(ra RelayAddr, pkt []byte) {
	if len(pkt) > maxRelayPacket {
		n.stats.relayDropped.Add(1)
		return
	}
	c, err := n.sendConn(ra.Relay)
	if err != nil || c.relayed() {
		n.stats.relayDropped.Add(1)
		return
	}
	it := sendItem{prio: link.PriorityEager, body: append([]byte(nil), pkt...), headLen: frameHeaderSize + identity.IDSize}
	putFrameHeader(it.head[:], frameRelayFwd, identity.IDSize+len(pkt))
	copy(it.head[frameHeaderSize:], ra.Peer[:])
	if err := n.enqueuePeer(c, link.ClassRelay, it); err != nil {
		n.stats.classes[link.ClassRelay.Index()].dropped[link.PriorityEager].Add(1)
		n.stats.relayDropped.Add(1)
	}
}

// ConnectRelayed establishes an authenticated connection to peer through
// relay, a directly connected peer that offers ServiceRelay, or returns nil
// at once if any connection to peer is up. The connection is end-to-end:
// the relay forwards QUIC packets it cannot read. Errors: link.ErrNotConnected
// (no connection to relay), ErrNotRelay, *RelayError (the relay refused),
// ErrSelfConnect, link.ErrClosed, or the handshake's error.
func (n *Node) ConnectRelayed(ctx context.Context, peer, relay identity.PeerID) error {
	if peer == n.id {
		return ErrSelfConnect
	}
	if peer == relay || peer.IsZero() {
		return fmt.Errorf("%w: relayed dial needs a peer other than the relay", ErrRelayRefused)
	}
	n.mu.Lock()
	if done, err := n.connectedLocked(peer); done {
		n.mu.Unlock()
		return err
	}
	rc := n.peers[relay]
	n.mu.Unlock()
	if rc == nil {
		return fmt.Errorf("%w: relay %s", link.ErrNotConnected, relay.Short())
	}
	if rc.relayed() || !rc.services.Has(ServiceRelay) {
		return fmt.Errorf("%w: %s", ErrNotRelay, relay.Short())
	}
	ra := RelayAddr{Relay: relay, Peer: peer}
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	n.mu.Lock()
	if _, busy := n.relayDials[ra]; busy {
		n.mu.Unlock()
		return fmt.Errorf("transport: a relayed dial to %s via %s is already running", peer.Short(), relay.Short())
	}
	n.relayDials[ra] = cancel
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.relayDials, ra)
		n.mu.Unlock()
	}()
	_, err := n.dialOn(dctx, peer, n.relayTr, ra, dialOptions{relayed: true})
	if cause := context.Cause(dctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	return err
}

// relayRefused fails a relayed dial that the relay refused.
func (n *Node) relayRefused(relay, target identity.PeerID, code byte) {
	n.mu.Lock()
	cancel := n.relayDials[RelayAddr{Relay: relay, Peer: target}]
	n.mu.Unlock()
	if cancel != nil {
		cancel(&RelayError{Relay: relay, Peer: target, Code: code})
	}
}

// ---- relay side ----

// tamperFunc is a test hook on a relay (Node.relayTamper).
type tamperFunc func(client, target identity.PeerID, body []byte) (identity.PeerID, [][]byte)

// relayServer holds the per-client state of a node offering ServiceRelay.
type relayServer struct {
	limits RelayLimits
	mu     sync.Mutex
	// clients is keyed by connected peers and pruned on disconnect, so it
	// is bounded by MaxConnections.
	clients map[identity.PeerID]*relayClient
}

type relayClient struct {
	bytes    ratelimit.Bucket
	circuits map[identity.PeerID]time.Time // peer -> last packet
	errAt    map[identity.PeerID]time.Time // peer -> last refusal sent
}

func newRelayServer(l RelayLimits) *relayServer {
	return &relayServer{limits: l, clients: make(map[identity.PeerID]*relayClient)}
}

// admit charges a packet of size bytes from client to target and returns 0
// if it may be forwarded, else a refusal code.
func (s *relayServer) admit(now time.Time, client, target identity.PeerID, size int) byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl := s.clientLocked(now, client)
	if _, ok := cl.circuits[target]; !ok && len(cl.circuits) >= s.limits.MaxPeersPerClient {
		for p, last := range cl.circuits { // expire idle circuits, then retry once
			if now.Sub(last) > s.limits.CircuitIdle {
				delete(cl.circuits, p)
			}
		}
		if len(cl.circuits) >= s.limits.MaxPeersPerClient {
			return relayOverQuota
		}
	}
	if !cl.bytes.Take(now, float64(size), float64(s.limits.BytesPerSecond), float64(s.limits.Burst)) {
		return relayOverQuota
	}
	cl.circuits[target] = now
	return 0
}

// shouldReport rate-limits refusals to one per client, peer and second.
func (s *relayServer) shouldReport(now time.Time, client, target identity.PeerID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl := s.clientLocked(now, client)
	if last, ok := cl.errAt[target]; ok && now.Sub(last) < time.Second {
		return false
	}
	if len(cl.errAt) >= s.limits.MaxPeersPerClient*4 {
		clear(cl.errAt)
	}
	cl.errAt[target] = now
	return true
}

// clientLocked returns client's state, creating it. s.mu must be held.
func (s *relayServer) clientLocked(now time.Time, client identity.PeerID) *relayClient {
	cl := s.clients[client]
	if cl == nil {
		cl = &relayClient{bytes: ratelimit.New(now, float64(s.limits.Burst)),
			circuits: make(map[identity.PeerID]time.Time), errAt: make(map[identity.PeerID]time.Time)}
		s.clients[client] = cl
	}
	return cl
}

func (s *relayServer) forget(client identity.PeerID) {
	s.mu.Lock()
	delete(s.clients, client)
	s.mu.Unlock()
}

// onRelayFrame handles a frame of the relay stream from c.
func (n *Node) onRelayFrame(c *conn, t frameType, body []byte) error {
	if c.relayed() {
		return fmt.Errorf("%w: relay frame on a relayed connection", ErrProtocol)
	}
	if len(body) < identity.IDSize {
		return fmt.Errorf("%w: %s frame of %d bytes", ErrMalformed, t, len(body))
	}
	var id identity.PeerID
	copy(id[:], body[:identity.IDSize])
	switch t {
	case frameRelayFwd:
		if n.relaySrv == nil {
			return fmt.Errorf("%w: relay frame to a node that does not relay", ErrProtocol)
		}
		n.relayForward(c, id, body)
		return nil
	case frameRelayPkt, frameRelayErr:
		if !c.services.Has(ServiceRelay) {
			return fmt.Errorf("%w: relay frame from a peer that does not relay", ErrProtocol)
		}
		if t == frameRelayErr {
			if len(body) != identity.IDSize+1 {
				return fmt.Errorf("%w: relay error frame of %d bytes", ErrMalformed, len(body))
			}
			n.relayRefused(c.peer, id, body[identity.IDSize])
			return nil
		}
		if !n.relayPC.deliver(relayPacket{from: RelayAddr{Relay: c.peer, Peer: id}, data: body[identity.IDSize:]}) {
			n.stats.relayDropped.Add(1)
		}
		return nil
	}
	return fmt.Errorf("%w: %s frame on the relay stream", ErrProtocol, t)
}

// relayForward forwards body (target || packet, owned by us) from client c
// to its target, rewriting the ID in place to name the source.
func (n *Node) relayForward(c *conn, target identity.PeerID, body []byte) {
	now := n.clk.Now()
	code := byte(0)
	var tc *conn
	switch {
	case target == c.peer || target == n.id:
		code = relayBadTarget
	default:
		n.mu.Lock()
		tc = n.peers[target]
		n.mu.Unlock()
		if tc == nil || tc.relayed() {
			code = relayNoTarget
		} else {
			code = n.relaySrv.admit(now, c.peer, target, len(body))
		}
	}
	if code == 0 {
		copy(body, c.peer[:])
		out := [][]byte{body}
		if tamper := n.relayTamper.Load(); tamper != nil {
			var to identity.PeerID
			to, out = (*tamper)(c.peer, target, body)
			n.mu.Lock()
			tc = n.peers[to]
			n.mu.Unlock()
			if tc == nil {
				return
			}
		}
		for _, b := range out {
			it := sendItem{prio: link.PriorityEager, body: b, headLen: frameHeaderSize}
			putFrameHeader(it.head[:], frameRelayPkt, len(b))
			if err := n.enqueuePeer(tc, link.ClassRelay, it); err != nil {
				n.stats.classes[link.ClassRelay.Index()].dropped[link.PriorityEager].Add(1)
				n.stats.relayDropped.Add(1)
				continue
			}
			n.stats.relayForwarded.Add(1)
			n.stats.relayBytes.Add(uint64(len(b) - identity.IDSize))
		}
		return
	}
	n.stats.relayRefused.Add(1)
	if !n.relaySrv.shouldReport(now, c.peer, target) {
		return
	}
	msg := make([]byte, identity.IDSize+1)
	copy(msg, target[:])
	msg[identity.IDSize] = code
	it := sendItem{prio: link.PriorityControl, body: msg, headLen: frameHeaderSize}
	putFrameHeader(it.head[:], frameRelayErr, len(msg))
	_ = n.enqueuePeer(c, link.ClassRelay, it)
}

// relayedThrough lists the open connections carried by relay.
func (n *Node) relayedThroughLocked(relay identity.PeerID) []*conn {
	var out []*conn
	for x := range n.conns {
		if x.via == relay {
			out = append(out, x)
		}
	}
	return out
}
