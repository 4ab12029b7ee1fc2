package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
)

// Node is an x0x transport endpoint. Create it with Listen and stop it with
// Close; all methods are safe for concurrent use.
type Node struct {
	cfg      Config
	id       identity.PeerID
	instance [instanceSize]byte // random per Listen; tells peers we restarted
	clk      clock.Clock
	rand     io.Reader // serialised cfg.Rand
	log      *slog.Logger

	udp   *net.UDPConn
	tr    *quic.Transport
	ln    *quic.Listener
	qconf *quic.Config
	// The relay path: a second QUIC transport over relayed packets.
	relayPC  *relayConn
	relayTr  *quic.Transport
	relayLn  *quic.Listener
	relaySrv *relayServer // nil unless the node offers ServiceRelay
	// relayTamper, set only by tests before any connection, replaces each
	// forwarded frame body (source || packet) from client to target by the
	// bodies it returns, sent to the peer it returns: a hostile relay.
	relayTamper atomic.Pointer[tamperFunc]
	tlsClient   *tls.Config
	localAddr   string
	// verify caches peers' parsed machine and agent keys and verified agent
	// certificates (reconnecting peers present the same ones).
	verify *identity.VerifyCache

	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup // every goroutine and every tracked connection
	closeOnce sync.Once

	handlers [link.MaxProtocol + 1]atomic.Pointer[link.MessageHandler] // by protocol
	services [maxDirectService + 1]atomic.Pointer[DirectHandler]       // by direct service
	stats    counters
	bufPool  sync.Pool // *[]byte write batch buffers, held by busy class writers only

	emitMu       sync.Mutex
	watchers     []func(link.PeerEvent)
	events       chan Event
	eventsClosed bool

	mu           sync.Mutex
	closed       bool
	pendingDials int
	conns        map[*conn]struct{}              // every open QUIC connection
	peers        map[identity.PeerID]*conn       // the connection carrying each peer
	tail         map[identity.PeerID]*conn       // latest registered connection per peer
	peersChanged chan struct{}                   // closed and replaced when peers changes
	dials        map[identity.PeerID]*dialCall   // dials in flight, to share
	lastFail     map[identity.PeerID]time.Time   // last failed dial, for the cooldown
	persist      map[identity.PeerID]*persistent // peers to keep connected
	local        map[identity.AgentID]*identity.AgentCert
	agentsVer    uint64
	agentIdx     map[identity.AgentID]map[identity.PeerID]struct{}
	relayDials   map[RelayAddr]context.CancelCauseFunc // relayed dials in flight
	evictPick    func([]identity.PeerID) (identity.PeerID, bool)
	nEvicting    int // evicted connections still closing
	// Inbound connections per source IP: all of them, and those still
	// authenticating. A relayed connection counts against the IP of its
	// relay (see acceptLoop).
	ipConns   map[netip.Addr]int
	ipPending map[netip.Addr]int
}

// dialCall is a dial in flight that later callers for the same peer join.
type dialCall struct {
	done chan struct{}
	err  error
}

// Listen opens the node's UDP socket on cfg.BindAddr and starts accepting
// connections. ctx bounds start-up only; the node runs until Close. It
// fails with an error wrapping ErrBadConfig for an invalid Config, or the
// socket error.
func Listen(ctx context.Context, cfg Config) (*Node, error) {
	cfg.fill()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:          cfg,
		id:           cfg.Machine.ID(),
		clk:          cfg.Clock,
		rand:         &lockedReader{r: cfg.Rand},
		log:          cfg.Logger,
		verify:       identity.NewVerifyCache(verifyCacheKeyBytes, verifyCacheColdKeyBytes, verifyCacheResultBytes),
		events:       make(chan Event, max(1, cfg.EventBuffer)),
		conns:        make(map[*conn]struct{}),
		peers:        make(map[identity.PeerID]*conn),
		tail:         make(map[identity.PeerID]*conn),
		peersChanged: make(chan struct{}),
		dials:        make(map[identity.PeerID]*dialCall),
		lastFail:     make(map[identity.PeerID]time.Time),
		persist:      make(map[identity.PeerID]*persistent),
		local:        make(map[identity.AgentID]*identity.AgentCert),
		agentIdx:     make(map[identity.AgentID]map[identity.PeerID]struct{}),
		relayDials:   make(map[RelayAddr]context.CancelCauseFunc),
		ipConns:      make(map[netip.Addr]int),
		ipPending:    make(map[netip.Addr]int),
	}
	if cfg.Services.Has(ServiceRelay) {
		n.relaySrv = newRelayServer(cfg.Relay, cfg.MaxConnections)
	}
	n.bufPool.New = func() any {
		b := make([]byte, 0, writeBatchBytes+bigFrameBytes)
		return &b
	}
	if _, err := io.ReadFull(n.rand, n.instance[:]); err != nil {
		return nil, fmt.Errorf("transport: reading instance nonce: %w", err)
	}
	serverTLS, clientTLS, err := tlsConfigs(n.rand, n.clk.Now(), &n.stats.tlsRefused)
	if err != nil {
		return nil, err
	}
	n.tlsClient = clientTLS
	var tokenKey quic.TokenGeneratorKey
	if _, err := io.ReadFull(n.rand, tokenKey[:]); err != nil {
		return nil, fmt.Errorf("transport: reading token key: %w", err)
	}
	resetKey := statelessResetKey(cfg.Machine)
	udpAddr, err := net.ResolveUDPAddr("udp", cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("transport: bind address %q: %w", cfg.BindAddr, err)
	}
	n.udp, err = net.ListenUDP("udp", udpAddr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen on %s: %w", cfg.BindAddr, err)
	}
	n.localAddr = n.udp.LocalAddr().String()
	n.tr = &quic.Transport{Conn: n.udp, StatelessResetKey: &resetKey, TokenGeneratorKey: &tokenKey}
	n.qconf = &quic.Config{
		HandshakeIdleTimeout:  cfg.HandshakeTimeout,
		MaxIdleTimeout:        cfg.IdleTimeout,
		KeepAlivePeriod:       cfg.KeepAlive,
		MaxIncomingStreams:    1,               // the control stream
		MaxIncomingUniStreams: link.NumClasses, // one stream per class
		Allow0RTT:             false,
	}
	n.ln, err = n.tr.Listen(serverTLS, n.qconf)
	if err != nil {
		_ = n.tr.Close()
		_ = n.udp.Close()
		return nil, fmt.Errorf("transport: QUIC listen: %w", err)
	}
	n.relayPC = newRelayConn(n)
	n.relayTr = &quic.Transport{Conn: n.relayPC, StatelessResetKey: &resetKey, TokenGeneratorKey: &tokenKey}
	n.relayLn, err = n.relayTr.Listen(serverTLS, n.qconf)
	if err != nil {
		_ = n.ln.Close()
		_ = n.tr.Close()
		_ = n.udp.Close()
		return nil, fmt.Errorf("transport: QUIC listen on the relay path: %w", err)
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.wg.Add(2)
	go n.acceptLoop(n.ln)
	go n.acceptLoop(n.relayLn)
	if cfg.ConnectCachedOnStart > 0 {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if got, err := n.ConnectCached(n.ctx, cfg.ConnectCachedOnStart); err != nil {
				n.log.Info("connecting to cached peers", "connected", got, "err", err)
			}
		}()
	}
	return n, nil
}

// statelessResetKey derives the QUIC stateless reset key from the machine
// key, so that a restarted node resets its peers' stale connections at once.
func statelessResetKey(kp *identity.KeyPair) quic.StatelessResetKey {
	priv := kp.PrivateBytes()
	h := sha256.New()
	h.Write([]byte("x0x/v1/quic-stateless-reset"))
	h.Write(priv)
	clear(priv)
	var k quic.StatelessResetKey
	h.Sum(k[:0])
	return k
}

// Close closes every connection (peers see a CONNECTION_CLOSE), stops every
// goroutine, releases the socket and then closes the Events channel. It is
// idempotent and always returns nil.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		conns := make([]*conn, 0, len(n.conns))
		for c := range n.conns {
			conns = append(conns, c)
		}
		for _, p := range n.persist {
			if p.timer != nil {
				p.timer.Stop()
			}
		}
		n.persist = map[identity.PeerID]*persistent{}
		n.mu.Unlock()
		n.cancel()
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Go(func() { c.fail(codeShutdown, errLocalClose) })
		}
		wg.Wait()
		n.wg.Wait()
		_ = n.ln.Close()
		_ = n.relayLn.Close()
		_ = n.tr.Close()
		_ = n.relayTr.Close()
		_ = n.udp.Close()
		_ = n.relayPC.Close()
		n.emitMu.Lock()
		n.eventsClosed = true
		close(n.events)
		n.emitMu.Unlock()
	})
	return nil
}

// LocalID returns this node's PeerID (its MachineID).
func (n *Node) LocalID() identity.PeerID { return n.id }

// LocalAddr returns the UDP address the node is bound to.
func (n *Node) LocalAddr() string { return n.localAddr }

// KeyCache returns the node's cache of parsed ML-DSA public keys and
// verified certificates. The layers above parse the keys they hold through
// it, so that each key is expanded (about 41 KB) once per node and the
// node's parsed keys stay within one byte budget (about 150 keys, least
// recently used out); they keep only a key's 1,952 encoded bytes
// themselves. Safe for concurrent use.
func (n *Node) KeyCache() *identity.VerifyCache { return n.verify }

// Handle sets the handler for inbound frames of proto (replacing any
// previous one; nil removes it). Frames of a protocol without a handler are
// dropped and counted (ClassStats.NoHandler). An unknown protocol is
// ignored and logged.
func (n *Node) Handle(proto link.Protocol, h link.MessageHandler) {
	if !proto.Valid() {
		n.log.Warn("Handle: unknown protocol ignored", "protocol", uint8(proto))
		return
	}
	if h == nil {
		n.handlers[proto].Store(nil)
		return
	}
	n.handlers[proto].Store(&h)
}

// Peers lists the currently connected (authenticated) peers.
func (n *Node) Peers() []identity.PeerID {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]identity.PeerID, 0, len(n.peers))
	for p := range n.peers {
		out = append(out, p)
	}
	return out
}

// LastHeard returns when the last frame on a class stream of peer's current
// connection was read (zero when not connected or none yet).
func (n *Node) LastHeard(peer identity.PeerID) time.Time {
	n.mu.Lock()
	c := n.peers[peer]
	n.mu.Unlock()
	if c == nil {
		return time.Time{}
	}
	if ns := c.heard.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// IsConnected reports whether an authenticated connection to peer is up.
func (n *Node) IsConnected(peer identity.PeerID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.peers[peer] != nil
}

// Disconnect closes the connection to peer, if any, and stops keeping it
// connected (see KeepConnected). The PeerDisconnected event carries a nil
// error.
func (n *Node) Disconnect(peer identity.PeerID) {
	n.mu.Lock()
	n.dropPersistLocked(peer)
	c := n.peers[peer]
	n.mu.Unlock()
	if c != nil {
		c.fail(codeNormal, errLocalClose)
	}
}

// Send queues msg to peer for proto, on the stream of proto's class,
// without blocking. It returns link.ErrNotConnected, link.ErrQueueFull (the
// frame is dropped and counted), link.ErrTooLarge (over
// Config.MaxFrameSize), link.ErrBadProtocol or link.ErrClosed. The caller
// must not modify msg afterwards.
func (n *Node) Send(peer identity.PeerID, proto link.Protocol, prio link.Priority, msg []byte) error {
	if !proto.Valid() {
		return fmt.Errorf("%w: protocol %d", link.ErrBadProtocol, uint8(proto))
	}
	if !prio.Valid() {
		return fmt.Errorf("%w: priority %d", link.ErrBadProtocol, uint8(prio))
	}
	if len(msg) > n.cfg.MaxFrameSize {
		return fmt.Errorf("%w: %d bytes, limit %d", link.ErrTooLarge, len(msg), n.cfg.MaxFrameSize)
	}
	c, err := n.sendConn(peer)
	if err != nil {
		return err
	}
	class := proto.Class()
	it := sendItem{prio: prio, body: msg, headLen: frameHeaderSize}
	putFrameHeader(it.head[:], protoFrame(proto), len(msg))
	if err := n.enqueuePeer(c, class, it); err != nil {
		n.stats.classes[class.Index()].dropped[prio].Add(1)
		return err
	}
	return nil
}

// Dial starts Connect(ctx, peer, addr) on a node goroutine and calls done
// with its result there (never inside Dial). A dial running when the node
// closes ends with link.ErrClosed; done must not block.
func (n *Node) Dial(ctx context.Context, peer identity.PeerID, addr string, done func(error)) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		go done(link.ErrClosed)
		return
	}
	n.wg.Add(1)
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		ctx, stop := context.WithCancel(ctx)
		defer stop()
		unlink := context.AfterFunc(n.ctx, stop)
		defer unlink()
		err := n.Connect(ctx, peer, addr)
		if err != nil && n.ctx.Err() != nil {
			err = link.ErrClosed
		}
		done(err)
	}()
}

// sendConn returns the connection to send to peer on.
func (n *Node) sendConn(peer identity.PeerID) (*conn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, link.ErrClosed
	}
	c := n.peers[peer]
	if c == nil {
		return nil, link.ErrNotConnected
	}
	return c, nil
}

// enqueuePeer queues it on c, or on the peer's current connection if c is
// being retired by dedup.
func (n *Node) enqueuePeer(c *conn, k link.Class, it sendItem) error {
	for range 3 {
		err := c.enqueue(k, it)
		if err != errRetiring {
			return err
		}
		next, err := n.sendConn(c.peer)
		if err != nil {
			return err
		}
		if next == c {
			break
		}
		c = next
	}
	return link.ErrNotConnected
}

// ---- connecting ----

// Connect establishes an authenticated connection to peer at addr, or
// returns nil at once if one is up. A dial already in flight to peer is
// joined. Errors: *PeerMismatchError if addr proves to be another peer,
// *CooldownError during the redial cooldown, ErrConnLimit, ErrSelfConnect,
// link.ErrClosed, or the dial/handshake error (wrapping ErrAuthFailed,
// ErrNotPostQuantum, ErrPeerClosed, ... where applicable). A zero peer
// behaves like ConnectAddr.
func (n *Node) Connect(ctx context.Context, peer identity.PeerID, addr string) error {
	if peer.IsZero() {
		_, err := n.ConnectAddr(ctx, addr)
		return err
	}
	if peer == n.id {
		return ErrSelfConnect
	}
	n.mu.Lock()
	if done, err := n.connectedLocked(peer); done {
		n.mu.Unlock()
		return err
	}
	if call := n.dials[peer]; call != nil {
		n.mu.Unlock()
		select {
		case <-call.done:
			return call.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	call := &dialCall{done: make(chan struct{})}
	n.dials[peer] = call
	n.mu.Unlock()

	_, call.err = n.dial(ctx, peer, addr, dialOptions{})

	n.mu.Lock()
	delete(n.dials, peer)
	n.mu.Unlock()
	close(call.done)
	return call.err
}

// connectedLocked reports whether a dial to peer has nothing to do: the
// node is closed (link.ErrClosed) or peer is connected (nil). n.mu must be held.
func (n *Node) connectedLocked(peer identity.PeerID) (done bool, err error) {
	if n.closed {
		return true, link.ErrClosed
	}
	return n.peers[peer] != nil, nil
}

// ConnectAddr dials addr without knowing the PeerID there (e.g. a bootstrap
// address) and returns the PeerID that proved itself. If a connected peer
// is already known at addr it is returned without dialling.
func (n *Node) ConnectAddr(ctx context.Context, addr string) (identity.PeerID, error) {
	n.mu.Lock()
	for id, c := range n.peers {
		if c.addr == addr {
			n.mu.Unlock()
			return id, nil
		}
	}
	n.mu.Unlock()
	return n.dial(ctx, identity.PeerID{}, addr, dialOptions{})
}

// dialOptions modify a dial.
type dialOptions struct {
	relayed bool // through the relay path (no cooldown, no peer cache)
	punch   bool // a hole-punch attempt (no cooldown, events or peer cache on failure)
}

// dial opens, authenticates and registers one outbound connection to a UDP
// address.
func (n *Node) dial(ctx context.Context, expected identity.PeerID, addr string, opts dialOptions) (identity.PeerID, error) {
	udpAddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return expected, fmt.Errorf("transport: address %q: %w", addr, err)
	}
	return n.dialOn(ctx, expected, n.tr, udpAddr, opts)
}

// dialOn opens, authenticates and registers one outbound connection on tr.
func (n *Node) dialOn(ctx context.Context, expected identity.PeerID, tr *quic.Transport, raddr net.Addr, opts dialOptions) (identity.PeerID, error) {
	plain := !opts.relayed && !opts.punch
	addr := raddr.String()
	if !expected.IsZero() && plain {
		if err := n.checkCooldown(expected); err != nil {
			return identity.PeerID{}, err
		}
	}
	if opts.punch {
		n.stats.punchDials.Add(1)
	}
	c, err := n.openConn(ctx, expected, tr, raddr)
	if err == nil {
		err = c.handshake(ctx)
		if err == nil {
			_, err = n.register(c)
		}
		if err != nil {
			n.untrack(c)
		}
	}
	peer := expected
	if c != nil && !c.peer.IsZero() {
		peer = c.peer
	}
	if err != nil && !peer.IsZero() && (errors.Is(err, ErrDuplicate)) {
		// We lost (or the peer decided) the simultaneous-dial tie-break:
		// success if the winning connection comes up.
		if n.waitPeer(ctx, peer, n.cfg.AuthTimeout) {
			return peer, nil
		}
	}
	if err != nil {
		if errors.Is(err, link.ErrClosed) || errors.Is(err, ErrConnLimit) || errors.Is(err, ErrDialLimit) {
			return peer, err
		}
		n.stats.dialsFailed.Add(1)
		if !peer.IsZero() && plain {
			n.mu.Lock()
			n.noteFailLocked(peer)
			n.mu.Unlock()
			if n.cfg.PeerCache != nil {
				n.cfg.PeerCache.Record(peer, addr, false, 0)
			}
		}
		n.log.Debug("dial failed", "addr", addr, "peer", expected.Short(), "err", err)
		if !opts.punch {
			n.emit(Event{Kind: EventConnectionFailed, Peer: expected, Addr: addr, Err: err})
		}
		return peer, err
	}
	n.stats.dialsOK.Add(1)
	if n.cfg.PeerCache != nil && plain {
		n.cfg.PeerCache.Record(c.peer, addr, true, c.qc.ConnectionStats().SmoothedRTT)
		n.cfg.PeerCache.RecordServices(c.peer, addr, c.services)
	}
	go n.runConn(c)
	return c.peer, nil
}

// openConn dials raddr on tr with the handshake timeout and tracks the
// connection. The tracked connection holds one count of n.wg until untrack
// or runConn releases it.
func (n *Node) openConn(ctx context.Context, expected identity.PeerID, tr *quic.Transport, raddr net.Addr) (*conn, error) {
	addr := raddr.String()
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, link.ErrClosed
	}
	if len(n.conns)-n.nEvicting >= n.cfg.MaxConnections {
		n.mu.Unlock()
		return nil, ErrConnLimit
	}
	if n.pendingDials >= n.cfg.MaxPendingDials {
		n.mu.Unlock()
		n.stats.dialsRefused.Add(1)
		return nil, fmt.Errorf("%w: %d dials already in flight", ErrDialLimit, n.pendingDials)
	}
	n.pendingDials++
	n.wg.Add(1)
	n.mu.Unlock()

	dctx, cancel := context.WithCancelCause(ctx)
	timer := n.clk.AfterFunc(n.cfg.HandshakeTimeout, func() {
		cancel(fmt.Errorf("transport: handshake with %s timed out after %v", addr, n.cfg.HandshakeTimeout))
	})
	stop := context.AfterFunc(n.ctx, func() { cancel(link.ErrClosed) })
	qc, err := tr.Dial(dctx, raddr, n.tlsClient, n.qconf)
	stop()
	timer.Stop()
	if cause := context.Cause(dctx); err != nil && cause != nil {
		err = cause // our own timeout or shutdown, rather than quic-go's echo of it
	}
	cancel(nil)

	n.mu.Lock()
	n.pendingDials--
	if err == nil && n.closed {
		err = link.ErrClosed
	}
	if err != nil {
		n.mu.Unlock()
		if qc != nil {
			_ = qc.CloseWithError(codeShutdown, "")
		}
		n.wg.Done()
		return nil, err
	}
	c := newConn(n, qc, roleDialler, expected)
	n.conns[c] = struct{}{}
	n.mu.Unlock()
	return c, nil
}

// untrack forgets a connection that never reached runConn.
func (n *Node) untrack(c *conn) {
	if !c.dead() {
		c.fail(codeProtocol, errors.New("transport: setup abandoned"))
	}
	n.mu.Lock()
	n.forgetConnLocked(c)
	n.mu.Unlock()
	n.wg.Done()
}

// forgetConnLocked removes c from the node's connection tables. n.mu must
// be held.
func (n *Node) forgetConnLocked(c *conn) {
	if _, ok := n.conns[c]; !ok {
		return
	}
	delete(n.conns, c)
	n.stats.closedQUIC.add(c)
	if c.evicted {
		n.nEvicting--
	}
	if c.inboundIP.IsValid() {
		n.ipConns[c.inboundIP]--
		if n.ipConns[c.inboundIP] <= 0 {
			delete(n.ipConns, c.inboundIP)
		}
	}
}

// remoteIP is the IP of a UDP remote address (invalid for relayed ones).
func remoteIP(a net.Addr) netip.Addr {
	if ua, ok := a.(*net.UDPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ua.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

// acceptLoop accepts inbound connections on ln until Close.
func (n *Node) acceptLoop(ln *quic.Listener) {
	defer n.wg.Done()
	for {
		qc, err := ln.Accept(n.ctx)
		if err != nil {
			return
		}
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			_ = qc.CloseWithError(codeShutdown, "node closing")
			return
		}
		// A relayed connection counts against the IP of its relay: until
		// it authenticates, the relay is all that vouches for it (the
		// source it names is free to make up), so the relay's host, and
		// everyone behind it, gets one host's share of the table.
		ip := remoteIP(qc.RemoteAddr())
		ra, relayed := qc.RemoteAddr().(RelayAddr)
		if relayed {
			ip = n.relayIPLocked(ra.Relay)
		}
		perIP := relayed && !ip.IsValid() ||
			ip.IsValid() && (n.ipConns[ip] >= n.cfg.MaxConnsPerIP || n.ipPending[ip] >= n.cfg.MaxPendingPerIP)
		if perIP || (len(n.conns)-n.nEvicting >= n.cfg.MaxConnections && !n.evictForNewcomer()) {
			n.mu.Unlock()
			n.stats.connsRefused.Add(1)
			_ = qc.CloseWithError(codeConnLimit, "connection limit reached")
			continue
		}
		c := newConn(n, qc, roleListener, identity.PeerID{})
		c.inboundIP = ip
		if ip.IsValid() {
			n.ipConns[ip]++
			n.ipPending[ip]++
		}
		n.conns[c] = struct{}{}
		n.wg.Add(1)
		n.mu.Unlock()
		n.stats.inboundAccepted.Add(1)
		go n.serveInbound(c)
	}
}

// Budgets of the node's verification cache: about 150 parsed keys that
// verify traffic, 12 machine keys (handshakes, address records: about an
// active view's worth, so a neighbour reconnecting proves itself without a
// parse) and 8,000 remembered certificate verifications.
const (
	verifyCacheKeyBytes     = 6 << 20
	verifyCacheColdKeyBytes = 12 * identity.PublicKeyMemory
	verifyCacheResultBytes  = 1 << 20
)

// SetEvictionPolicy installs pick, consulted when an inbound connection
// finds MaxConnections reached: candidates are the peers of established
// inbound direct connections older than EvictMinAge, longest established
// first, and pick returns the one to close to admit the newcomer (ok
// false: refuse the newcomer). pick runs on the accept goroutine, so it
// must not block; it should keep the connections the upper layers rely
// on (the x0x agent keeps overlay neighbours and held peers). Without a
// policy a full table refuses newcomers.
func (n *Node) SetEvictionPolicy(pick func(candidates []identity.PeerID) (identity.PeerID, bool)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.evictPick = pick
}

// evictionCandidatesLocked lists the peers of established inbound direct
// connections older than EvictMinAge, not already being evicted, longest
// established first; n.mu held.
func (n *Node) evictionCandidatesLocked() []identity.PeerID {
	now := n.clk.Now()
	var cands []*conn
	for c := range n.conns {
		if c.role == roleListener && c.registered && !c.evicted && !c.relayed() && n.peers[c.peer] == c && now.Sub(c.regAt) >= n.cfg.EvictMinAge {
			cands = append(cands, c)
		}
	}
	slices.SortFunc(cands, func(a, b *conn) int { return a.regAt.Compare(b.regAt) })
	ids := make([]identity.PeerID, len(cands))
	for i, c := range cands {
		ids[i] = c.peer
	}
	return ids
}

// evictForNewcomer asks the eviction policy for a connection to close so
// that an inbound newcomer can take its slot, and closes it. It is called
// with n.mu held and returns with it held, releasing it while the policy
// runs. It reports whether a connection was evicted (its slot frees when
// it has closed; until then the table may exceed MaxConnections by the
// connections closing, which are never picked twice).
func (n *Node) evictForNewcomer() bool {
	pick := n.evictPick
	if pick == nil {
		return false
	}
	cands := n.evictionCandidatesLocked()
	if len(cands) == 0 {
		return false
	}
	n.mu.Unlock()
	victim, ok := pick(cands)
	n.mu.Lock()
	c := n.peers[victim]
	if !ok || n.closed || c == nil || !slices.Contains(cands, victim) || c.evicted || c.role != roleListener {
		return false
	}
	c.evicted = true
	n.nEvicting++
	n.stats.evicted.Add(1)
	go c.fail(codeConnLimit, errors.New("transport: evicted to admit a newcomer"))
	return true
}

// serveInbound authenticates and runs an accepted connection.
func (n *Node) serveInbound(c *conn) {
	err := c.handshake(n.ctx)
	if c.inboundIP.IsValid() {
		n.mu.Lock()
		n.ipPending[c.inboundIP]--
		if n.ipPending[c.inboundIP] <= 0 {
			delete(n.ipPending, c.inboundIP)
		}
		n.mu.Unlock()
	}
	if err == nil {
		_, err = n.register(c)
	}
	if err != nil {
		n.log.Debug("inbound connection rejected", "addr", c.addr, "err", err)
		n.untrack(c)
		return
	}
	n.runConn(c)
}

// waitPeer waits up to d for peer to be connected.
func (n *Node) waitPeer(ctx context.Context, peer identity.PeerID, d time.Duration) bool {
	expired := make(chan struct{})
	t := n.clk.AfterFunc(d, func() { close(expired) })
	defer t.Stop()
	for {
		n.mu.Lock()
		up := n.peers[peer] != nil
		ch := n.peersChanged
		n.mu.Unlock()
		if up {
			return true
		}
		select {
		case <-ch:
		case <-expired:
			return false
		case <-ctx.Done():
			return false
		case <-n.ctx.Done():
			return false
		}
	}
}

// notifyPeersLocked wakes waitPeer callers. n.mu must be held.
func (n *Node) notifyPeersLocked() {
	close(n.peersChanged)
	n.peersChanged = make(chan struct{})
}

// ---- registration and teardown ----

// regAction is what registering a new connection does to an existing one.
type regAction int

const (
	regFresh   regAction = iota // no connection to the peer: emit PeerConnected
	regReplace                  // replace the old one: PeerDisconnected(old), PeerConnected(new)
	regSwap                     // silently take the old one's place (dedup winner); retire the old one
	regLose                     // the old one stays; retire the new one (dedup loser)
)

// decide applies the connection dedup rules. Both ends see the same two
// connections and reach the same decision:
//   - an existing connection that has closed is replaced (silently if the
//     peer closed it as a dedup loser, since the peer keeps this one);
//   - if the peer's instance nonce changed, the peer restarted: the new
//     connection replaces the stale one (PeerDisconnected, PeerConnected);
//   - otherwise both connections link the same two running instances:
//     of two in opposite directions the one dialled by the lower PeerID
//     wins; of two in the same direction the one with the lower TLS
//     exporter value wins. The winner carries the peer silently, the loser
//     is retired (drained, then closed).
func (n *Node) decide(nc, old *conn) regAction {
	if old.dead() {
		if isRemoteCode(context.Cause(old.qc.Context()), codeDuplicate) {
			return regSwap
		}
		return regReplace
	}
	if nc.instance != old.instance {
		return regReplace
	}
	if nc.relayed() != old.relayed() {
		// A direct connection always takes over from a relayed one (the
		// upgrade after hole punching); both ends see the same paths.
		if old.relayed() {
			return regSwap
		}
		return regLose
	}
	newWins := false
	if nc.role != old.role {
		newWins = n.dialledByLower(nc)
	} else {
		newWins = bytes.Compare(nc.ekm, old.ekm) < 0
	}
	if newWins {
		return regSwap
	}
	return regLose
}

// dialledByLower reports whether c was dialled by the lower of the two PeerIDs.
func (n *Node) dialledByLower(c *conn) bool {
	localLower := bytes.Compare(n.id[:], c.peer[:]) < 0
	return (c.role == roleDialler) == localLower
}

// register makes c the connection carrying its peer and emits
// PeerConnected in order after the previous connection's PeerDisconnected.
// If c lost the dedup tie-break it is retired instead (it still delivers
// what the peer had sent on it, then closes without events) and register
// returns true; the peer is connected either way.
func (n *Node) register(c *conn) (retired bool, err error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return false, link.ErrClosed
	}
	old := n.peers[c.peer]
	action := regFresh
	if old != nil {
		action = n.decide(c, old)
	}
	c.agents = c.helloAgents
	c.helloAgents = nil
	if old != nil {
		n.log.Debug("second connection to peer", "peer", c.peer.Short(), "action", action,
			"new_role", c.role, "old_role", old.role, "old_dead", old.dead())
	}
	if action == regLose {
		c.silent = true
		n.mu.Unlock()
		n.stats.duplicates.Add(1)
		<-old.upDone // what c delivers comes after the peer's PeerConnected
		c.retire()
		return true, nil
	}
	c.registered = true
	c.regAt = n.clk.Now()
	c.prev = n.tail[c.peer]
	var oldAgents []identity.AgentID
	if old != nil {
		oldAgents = sortedAgents(old.agents)
		n.indexRemoveLocked(old.peer, old.agents)
		if action == regSwap {
			old.silent = true
		}
		close(old.superseded)
	}
	n.peers[c.peer] = c
	n.tail[c.peer] = c
	n.indexAddLocked(c.peer, c.agents)
	agents := sortedAgents(c.agents)
	resync := n.agentsVer != c.agentsVer
	n.notifyPeersLocked()
	if p := n.persist[c.peer]; p != nil {
		p.attempt = 0
	}
	n.mu.Unlock()

	switch action {
	case regSwap:
		n.stats.duplicates.Add(1)
		if old.dead() {
			c.adopt(old) // frames still queued on it go on the winner
		} else {
			old.retire()
		}
		<-old.upDone
		close(c.upDone)
		if !equalAgents(oldAgents, agents) {
			n.emit(Event{Kind: EventAgentsChanged, Peer: c.peer, Addr: c.addr, Agents: agents})
		}
	default:
		if action == regReplace {
			n.stats.replaced.Add(1)
			if !old.dead() { // a dead one keeps the reason it died of
				old.fail(codeReplaced, ErrReplaced)
			}
		}
		if c.prev != nil {
			<-c.prev.downDone
		}
		n.emit(Event{Kind: EventPeerConnected, Peer: c.peer, Addr: c.addr, Agents: agents, Relayed: c.relayed()})
		close(c.upDone)
	}
	if c.relayed() {
		n.stats.relayedConns.Add(1)
	}
	if resync {
		n.sendFullAgents(c)
	}
	return false, nil
}

// runConn supervises a registered connection until it closes, then tears
// it down. It releases the connection's count of n.wg.
func (n *Node) runConn(c *conn) {
	defer n.wg.Done()
	c.spawn(c.acceptStreams)
	c.protocolFailure(c.readControl())
	<-c.qc.Context().Done()
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.wg.Wait()
	n.teardown(c)
}

// teardown removes a closed connection and emits PeerDisconnected unless a
// dedup swap made that unnecessary.
func (n *Node) teardown(c *conn) {
	cause := context.Cause(c.qc.Context())
	n.mu.Lock()
	current := n.peers[c.peer] == c
	n.mu.Unlock()
	c.mu.Lock()
	if c.retireTimer != nil {
		c.retireTimer.Stop()
	}
	c.mu.Unlock()
	if current && isRemoteCode(cause, codeDuplicate) {
		// The peer kept another connection to us; give it time to arrive
		// so that the peer does not flap.
		expired := make(chan struct{})
		t := n.clk.AfterFunc(n.cfg.AuthTimeout, func() { close(expired) })
		select {
		case <-c.superseded:
		case <-expired:
		case <-n.ctx.Done():
		}
		t.Stop()
	}
	n.mu.Lock()
	current = n.peers[c.peer] == c
	if current {
		delete(n.peers, c.peer)
		n.indexRemoveLocked(c.peer, c.agents)
		n.notifyPeersLocked()
	}
	n.forgetConnLocked(c)
	silent := c.silent
	var carried []*conn
	if current && !c.relayed() {
		carried = n.relayedThroughLocked(c.peer)
	}
	n.mu.Unlock()
	for _, x := range carried {
		x.fail(codeNormal, ErrRelayLost)
	}
	if current && n.relaySrv != nil {
		n.relaySrv.forget(c.peer)
	}

	if !silent {
		reason := c.localErr()
		switch {
		case reason == errLocalClose:
			reason = nil
		case reason == nil:
			reason = remoteReason(cause)
		}
		n.emit(Event{Kind: EventPeerDisconnected, Peer: c.peer, Addr: c.addr, Err: reason, Relayed: c.relayed()})
	}
	close(c.downDone)
	n.mu.Lock()
	if n.tail[c.peer] == c {
		delete(n.tail, c.peer)
	}
	n.mu.Unlock()
	if current {
		n.peerDown(c.peer)
	}
}
