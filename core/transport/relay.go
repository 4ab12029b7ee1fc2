package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
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
// relays to, a byte rate and a rate of QUIC Initial packets (which bounds
// how fast it opens relayed connections). The two rates are token buckets
// kept per client identity across disconnections (reconnecting does not
// refill them) and charged a second time per source IP, whose bucket the
// identities of one host share. Packets over a limit, or for a peer the
// relay has no direct connection to, are dropped and answered (at most
// once a second per client and peer) with frameRelayErr, which fails a
// relayed dial at once. Relay frames are accepted only on direct connections
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
//
// The byte and Initial budgets belong to the client's identity, not to its
// connection: they survive a disconnection, so reconnecting does not refill
// them. They are also charged to the client's source IP (for IPv6, its
// /64), whose budget is IPBudgetClients times one client's and is shared
// by every identity connecting from there, since identities are free. A
// relay keeps at most max(4096, 4 x MaxConnections) budgets of each kind,
// forgetting only those that have refilled; when the table is full of
// budgets in use, new clients are refused until some refill.
type RelayLimits struct {
	// MaxPeersPerClient caps the distinct peers one client's packets go to
	// within CircuitIdle (default 32).
	MaxPeersPerClient int
	// BytesPerSecond is each client's sustained forwarding rate (default
	// 4 MiB/s) and Burst its bucket size (default 16 MiB).
	BytesPerSecond int
	Burst          int
	// InitialsPerSecond and InitialBurst bound the QUIC Initial packets a
	// client sends through the relay (defaults 4/s and 128). Every new
	// QUIC connection needs at least one from its dialler (two or three
	// with the post-quantum ClientHello), so these cap how fast a client
	// opens relayed connections, to any number of targets, while its
	// handshakes are cheap in bytes. Initials that answer another client's
	// Initials (the accepting side of a handshake) are not counted.
	InitialsPerSecond int
	InitialBurst      int
	// IPBudgetClients is how many clients' worth of bytes and Initials the
	// clients at one source IP share (default 4).
	IPBudgetClients int
	// CircuitIdle is how long a client-peer pair counts against
	// MaxPeersPerClient after its last packet (default 2 min).
	CircuitIdle time.Duration
}

// Relay defaults.
const (
	DefaultRelayPeersPerClient    = 32
	DefaultRelayBytesPerSecond    = 4 << 20
	DefaultRelayBurst             = 16 << 20
	DefaultRelayInitialsPerSecond = 4
	DefaultRelayInitialBurst      = 128
	DefaultRelayIPBudgetClients   = 4
	DefaultRelayCircuitIdle       = 2 * time.Minute
	// relayInboundPackets bounds relayed packets waiting for quic-go.
	relayInboundPackets = 1024
	// relayMinBudgets is the least number of budgets of each kind (per
	// client, per IP) a relay keeps; see RelayLimits.
	relayMinBudgets = 4096
	// relayPruneEvery spaces the scans of a full budget table that found
	// nothing to forget, so that refused newcomers cost no scan each.
	relayPruneEvery = time.Second
	// relayAnswerWindow is how long after a client's Initial the target's
	// Initials to it (addressed to the client's source connection ID)
	// count as answers.
	relayAnswerWindow = 30 * time.Second
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
	if l.InitialsPerSecond == 0 {
		l.InitialsPerSecond = DefaultRelayInitialsPerSecond
	}
	if l.InitialBurst == 0 {
		l.InitialBurst = DefaultRelayInitialBurst
	}
	if l.IPBudgetClients == 0 {
		l.IPBudgetClients = DefaultRelayIPBudgetClients
	}
	if l.CircuitIdle == 0 {
		l.CircuitIdle = DefaultRelayCircuitIdle
	}
}

func (l *RelayLimits) validate() error {
	if l.MaxPeersPerClient < 0 || l.BytesPerSecond < 0 || l.Burst < 0 || l.CircuitIdle < 0 ||
		l.InitialsPerSecond < 0 || l.InitialBurst < 0 || l.IPBudgetClients < 0 {
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
	// The budgets outlive connections (see RelayLimits).
	peerBudgets budgetTable[identity.PeerID]
	ipBudgets   budgetTable[netip.Addr]
}

// relayClient is what a relay holds for a connected client.
type relayClient struct {
	circuits map[identity.PeerID]time.Time // peer -> last packet
	errAt    map[identity.PeerID]time.Time // peer -> last refusal sent
	// initials records the source connection IDs of the client's charged
	// Initials, so that the target's Initials back to them are answers.
	initials map[relayCID]time.Time
}

// relayCID is a QUIC connection ID (at most 20 bytes) used with a peer.
type relayCID struct {
	peer identity.PeerID
	n    uint8
	id   [20]byte
}

func makeRelayCID(peer identity.PeerID, cid []byte) relayCID {
	k := relayCID{peer: peer, n: uint8(len(cid))}
	copy(k.id[:], cid)
	return k
}

// relayBudget is a client's (or a source IP's) byte and Initial buckets.
type relayBudget struct {
	bytes, initials ratelimit.Bucket
}

func newRelayBudget(now time.Time, l *RelayLimits, scale float64) *relayBudget {
	return &relayBudget{bytes: ratelimit.New(now, float64(l.Burst)*scale),
		initials: ratelimit.New(now, float64(l.InitialBurst)*scale)}
}

// take charges size bytes and, if initial, one Initial, or nothing if
// either bucket is short; scale multiplies the limits.
func (b *relayBudget) take(now time.Time, size int, initial bool, l *RelayLimits, scale float64) bool {
	nb := *b
	if !nb.bytes.Take(now, float64(size), float64(l.BytesPerSecond)*scale, float64(l.Burst)*scale) {
		return false
	}
	if initial && !nb.initials.Take(now, 1, float64(l.InitialsPerSecond)*scale, float64(l.InitialBurst)*scale) {
		return false
	}
	*b = nb
	return true
}

// full reports whether both buckets have refilled (forgetting the budget
// then changes nothing).
func (b *relayBudget) full(now time.Time, l *RelayLimits, scale float64) bool {
	return b.bytes.Full(now, float64(l.BytesPerSecond)*scale, float64(l.Burst)*scale) &&
		b.initials.Full(now, float64(l.InitialsPerSecond)*scale, float64(l.InitialBurst)*scale)
}

// budgetTable is a bounded table of budgets that forgets only full ones.
type budgetTable[K comparable] struct {
	m      map[K]*relayBudget
	scale  float64   // the budgets' limits in per-client limits
	limit  int       // most budgets held
	scanAt time.Time // no scan of the full table before this
}

func newBudgetTable[K comparable](scale float64, limit int) budgetTable[K] {
	return budgetTable[K]{m: make(map[K]*relayBudget), scale: scale, limit: limit}
}

// get returns k's budget, creating a full one, or nil if the table is full
// of budgets that have not refilled.
func (t *budgetTable[K]) get(now time.Time, k K, l *RelayLimits) *relayBudget {
	if b := t.m[k]; b != nil {
		return b
	}
	if len(t.m) >= t.limit {
		if now.Before(t.scanAt) {
			return nil
		}
		for k2, b := range t.m {
			if b.full(now, l, t.scale) {
				delete(t.m, k2)
			}
		}
		if len(t.m) >= t.limit {
			t.scanAt = now.Add(relayPruneEvery)
			return nil
		}
	}
	b := newRelayBudget(now, l, t.scale)
	t.m[k] = b
	return b
}

// newRelayServer returns the relay state of a node allowing maxConns
// connections.
func newRelayServer(l RelayLimits, maxConns int) *relayServer {
	l.fill()
	limit := max(relayMinBudgets, 4*maxConns)
	return &relayServer{limits: l, clients: make(map[identity.PeerID]*relayClient),
		peerBudgets: newBudgetTable[identity.PeerID](1, limit),
		ipBudgets:   newBudgetTable[netip.Addr](float64(l.IPBudgetClients), limit)}
}

// relayIPKey is the key of ip's budget: the address, or for IPv6 its /64
// (what one host typically has).
func relayIPKey(ip netip.Addr) netip.Addr {
	if ip.Is6() && !ip.Is4In6() {
		return netip.PrefixFrom(ip, 64).Masked().Addr()
	}
	return ip.Unmap()
}

// quicInitial parses the first packet of a relayed datagram and reports
// whether it is a QUIC v1 or v2 Initial (RFC 9000 17.2.2, RFC 9369 3.2),
// the only packet that can open a connection, with its connection IDs.
func quicInitial(pkt []byte) (dcid, scid []byte, ok bool) {
	if len(pkt) < 7 || pkt[0]&0x80 == 0 {
		return nil, nil, false
	}
	typ := pkt[0] >> 4 & 3
	switch binary.BigEndian.Uint32(pkt[1:5]) {
	case 1: // QUIC v1: Initial is type 0
		if typ != 0 {
			return nil, nil, false
		}
	case 0x6b3343cf: // QUIC v2: Initial is type 1
		if typ != 1 {
			return nil, nil, false
		}
	default:
		return nil, nil, false
	}
	dl := int(pkt[5])
	if dl > 20 || len(pkt) < 7+dl {
		return nil, nil, false
	}
	sl := int(pkt[6+dl])
	if sl > 20 || len(pkt) < 7+dl+sl {
		return nil, nil, false
	}
	return pkt[6 : 6+dl], pkt[7+dl : 7+dl+sl], true
}

// admit charges a packet of size bytes from client, whose direct
// connection comes from ip (invalid: not charged per IP), to target and
// returns 0 if it may be forwarded, else a refusal code. pkt is the QUIC
// datagram (nil: not an Initial).
func (s *relayServer) admit(now time.Time, client identity.PeerID, ip netip.Addr, target identity.PeerID, size int, pkt []byte) byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl := s.clientLocked(client)
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
	dcid, scid, initial := quicInitial(pkt)
	if initial && s.answersLocked(now, client, target, dcid) {
		initial = false
	}
	// Both budgets are checked before either is charged.
	pb := s.peerBudgets.get(now, client, &s.limits)
	if pb == nil {
		return relayOverQuota
	}
	np := *pb
	if !np.take(now, size, initial, &s.limits, s.peerBudgets.scale) {
		return relayOverQuota
	}
	if ip.IsValid() {
		ib := s.ipBudgets.get(now, relayIPKey(ip), &s.limits)
		if ib == nil || !ib.take(now, size, initial, &s.limits, s.ipBudgets.scale) {
			return relayOverQuota
		}
	}
	*pb = np
	if initial {
		s.noteInitialLocked(now, cl, target, scid)
	}
	cl.circuits[target] = now
	return 0
}

// answersLocked reports whether an Initial from client to target with
// destination connection ID dcid answers one of target's recent Initials
// to client (it is addressed to that Initial's source connection ID).
func (s *relayServer) answersLocked(now time.Time, client, target identity.PeerID, dcid []byte) bool {
	tc := s.clients[target]
	if tc == nil {
		return false
	}
	at, ok := tc.initials[makeRelayCID(client, dcid)]
	return ok && now.Sub(at) <= relayAnswerWindow
}

// noteInitialLocked records the source connection ID of a charged Initial
// from cl to target. The record is bounded by the Initials the client can
// be charged within relayAnswerWindow.
func (s *relayServer) noteInitialLocked(now time.Time, cl *relayClient, target identity.PeerID, scid []byte) {
	limit := s.limits.InitialBurst + s.limits.InitialsPerSecond*int(relayAnswerWindow/time.Second) + 1
	if len(cl.initials) >= limit {
		for k, at := range cl.initials {
			if now.Sub(at) > relayAnswerWindow {
				delete(cl.initials, k)
			}
		}
		if len(cl.initials) >= limit {
			return
		}
	}
	cl.initials[makeRelayCID(target, scid)] = now
}

// shouldReport rate-limits refusals to one per client, peer and second.
func (s *relayServer) shouldReport(now time.Time, client, target identity.PeerID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl := s.clientLocked(client)
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
func (s *relayServer) clientLocked(client identity.PeerID) *relayClient {
	cl := s.clients[client]
	if cl == nil {
		cl = &relayClient{circuits: make(map[identity.PeerID]time.Time),
			errAt: make(map[identity.PeerID]time.Time), initials: make(map[relayCID]time.Time)}
		s.clients[client] = cl
	}
	return cl
}

// forget drops the state of a client that disconnected: its circuits and
// refusal records. Its budgets stay (see RelayLimits).
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
			code = n.relaySrv.admit(now, c.peer, remoteIP(c.qc.RemoteAddr()), target, len(body), body[identity.IDSize:])
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

// relayIPLocked returns the source IP of the direct connection to relay
// (invalid if there is none). n.mu must be held.
func (n *Node) relayIPLocked(relay identity.PeerID) netip.Addr {
	rc := n.peers[relay]
	if rc == nil || rc.relayed() {
		return netip.Addr{}
	}
	return remoteIP(rc.qc.RemoteAddr())
}
