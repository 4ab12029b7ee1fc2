package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// controlMaxFrame is the frame size limit on the control stream: no data
// or direct frames there, so only the per-type limits of the auth, hello
// and retirement frames apply.
const controlMaxFrame = 0

// errLocalClose marks a deliberate local close (Disconnect, Close): the
// PeerDisconnected event then carries a nil error.
var errLocalClose = errors.New("transport: closed locally")

// Write path tuning.
const (
	writeBatchBytes = 64 << 10 // frames coalesced into one stream write (pooled buffers: 64 KiB is ~45 packets)
	bigFrameBytes   = 32 << 10 // bodies at least this large are written without copying
	readBufferBytes = 16 << 10 // bufio buffer per inbound class stream
)

// urgency maps a class to a QUIC stream urgency (lower is sent first), so
// that membership control traffic is not stuck behind bulk transfers.
func urgency(c link.Class) int8 {
	switch c {
	case link.ClassMembership:
		return 0
	case link.ClassPubSub:
		return 2
	case link.ClassDirect, link.ClassNAT:
		return 3
	case link.ClassRelay:
		return 1 // relayed packets carry other connections' control traffic too
	}
	return 6 // bulk
}

// remoteAgent is an agent a peer carries, with its certificate's expiry.
type remoteAgent struct {
	notAfter int64 // Unix seconds
}

// conn is one QUIC connection to a peer. Its life: handshake (TLS check,
// proof exchange, hello) on the dialling or accepting goroutine, register
// with the node, then runConn supervises it until it closes. Goroutines it
// starts (class writers and readers, the stream acceptor) are counted in wg
// and may only start while closing is false.
type conn struct {
	n        *Node
	qc       *quic.Conn
	role     role
	addr     string          // remote address as seen locally
	expected identity.PeerID // dialler: the PeerID asked for (zero if unknown)
	// A relayed connection runs through via (zero for a direct one); the
	// relay named viaPeer as the other end, which the proof must confirm.
	via, viaPeer identity.PeerID
	inboundIP    netip.Addr // the IP an accepted connection counts against (its source, or its relay's for a relayed one; else invalid)

	// Set by the handshake, then read-only.
	peer        identity.PeerID
	instance    [instanceSize]byte // the peer's per-run nonce
	ekm         []byte             // TLS exporter value, identical at both ends
	ctrl        *quic.Stream
	helloAgents map[identity.AgentID]*remoteAgent
	observed    netip.AddrPort // how the peer sees us (invalid on relayed connections)
	services    Services       // the roles the peer offers
	agentsVer   uint64         // node agents version sent in our hello

	queues [link.NumClasses]classQueue
	queued atomic.Int64 // bytes queued across classes
	// heard is when the last whole frame on a class stream was read
	// (Unix nanoseconds by the node's clock; 0: none yet).
	heard atomic.Int64

	mu       sync.Mutex
	closeErr error // first local reason for closing (nil: not closed locally)
	authDone bool
	closing  bool
	writers  [link.NumClasses]bool
	inbound  [link.NumClasses]bool
	wg       sync.WaitGroup // every goroutine of the connection
	writerWG sync.WaitGroup // the class writers (subset of wg)

	// Retirement of a dedup loser (guarded by mu): each side drains its
	// queues, finishes its class streams and sends frameRetire listing
	// them; once a side has read every stream the peer listed to the end
	// it sends frameDrained; a side that has sent and received
	// frameDrained closes the connection. Nothing is lost in between.
	retiring    bool
	retireTimer interface{ Stop() bool }
	outOpened   uint8 // classes (bit k-1) whose outbound stream we opened
	peerRetired bool
	peerOpened  uint8 // classes the peer opened, from its frameRetire
	inEOF       uint8 // inbound class streams read to the end
	drainedSent bool
	peerDrained bool
	ctrlMu      sync.Mutex // serialises control stream writes after the handshake

	// Guarded by n.mu.
	agents     map[identity.AgentID]*remoteAgent
	registered bool
	regAt      time.Time // when registered (set under n.mu)
	evicted    bool      // closed by the eviction policy (under n.mu)
	silent     bool      // superseded by a dedup swap: no PeerDisconnected
	prev       *conn     // previous connection to the same peer (event ordering)

	upDone     chan struct{} // closed once PeerConnected is emitted (or inherited)
	downDone   chan struct{} // closed once PeerDisconnected is emitted (or skipped)
	superseded chan struct{} // closed when another connection takes this one's place
}

func newConn(n *Node, qc *quic.Conn, r role, expected identity.PeerID) *conn {
	c := &conn{
		n: n, qc: qc, role: r, expected: expected,
		addr:       qc.RemoteAddr().String(),
		upDone:     make(chan struct{}),
		downDone:   make(chan struct{}),
		superseded: make(chan struct{}),
	}
	if ra, ok := qc.RemoteAddr().(RelayAddr); ok {
		c.via, c.viaPeer = ra.Relay, ra.Peer
	}
	for i := range c.queues {
		c.queues[i] = newClassQueue()
	}
	return c
}

// relayed reports whether the connection runs through a relay.
func (c *conn) relayed() bool { return !c.via.IsZero() }

// fail closes the connection with code, recording err as the local reason
// unless one was recorded before. It blocks until quic-go has closed the
// connection, so callers must not hold node or connection locks.
func (c *conn) fail(code quic.ApplicationErrorCode, err error) {
	c.mu.Lock()
	if c.closeErr == nil {
		c.closeErr = err
	}
	c.mu.Unlock()
	msg := ""
	if err != nil && err != errLocalClose {
		msg = err.Error()
		if len(msg) > 200 {
			msg = msg[:200]
		}
	}
	_ = c.qc.CloseWithError(code, msg) // always nil; the connection is closed afterwards
}

// localErr returns the local close reason, if any.
func (c *conn) localErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

// dead reports whether the QUIC connection has closed.
func (c *conn) dead() bool { return c.qc.Context().Err() != nil }

// closedErr turns an I/O error into the reason the connection closed, if it
// has: the local reason, or the peer's. Other errors are returned as is.
func (c *conn) closedErr(err error) error {
	if !c.dead() {
		if isRemoteClose(err) {
			// A stream can report the peer's CONNECTION_CLOSE before the
			// connection's context is done: same meaning.
			return remoteReason(err)
		}
		return err
	}
	if le := c.localErr(); le != nil {
		return le
	}
	return remoteReason(context.Cause(c.qc.Context()))
}

// spawn starts f on a goroutine owned by the connection, unless it is
// closing.
func (c *conn) spawn(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// codeFor maps a local failure to the close code sent to the peer.
func codeFor(err error) quic.ApplicationErrorCode {
	switch {
	case errors.Is(err, ErrAuthTimeout):
		return codeAuthTimeout
	case errors.Is(err, ErrPeerMismatch):
		return codeMismatch
	case errors.Is(err, ErrAuthFailed), errors.Is(err, ErrSelfConnect):
		return codeAuthFailed
	case errors.Is(err, ErrNotPostQuantum):
		return codeNotPQ
	case errors.Is(err, ErrDuplicate):
		return codeDuplicate
	case errors.Is(err, ErrReplaced):
		return codeReplaced
	case errors.Is(err, ErrConnLimit):
		return codeConnLimit
	}
	return codeProtocol
}

// ---- handshake ----

// handshake checks the TLS parameters, exchanges and verifies the
// channel-binding proofs and the hellos, all within Config.AuthTimeout. On
// failure the connection is closed with a code matching the error.
func (c *conn) handshake(ctx context.Context) error {
	n := c.n
	cs := c.qc.ConnectionState()
	if err := checkTLS(cs.TLS, cs.Used0RTT); err != nil {
		n.stats.tlsRefused.Add(1)
		c.fail(codeNotPQ, err)
		return err
	}
	ekm, err := exportKey(cs.TLS)
	if err != nil {
		n.stats.authFailures.Add(1)
		c.fail(codeAuthFailed, err)
		return err
	}
	timer := n.clk.AfterFunc(n.cfg.AuthTimeout, func() {
		c.mu.Lock()
		late := !c.authDone && c.closeErr == nil
		if late {
			c.closeErr = ErrAuthTimeout
		}
		c.mu.Unlock()
		if late {
			_ = c.qc.CloseWithError(codeAuthTimeout, "authentication timeout")
		}
	})
	defer timer.Stop()
	stop := context.AfterFunc(ctx, func() {
		if n.ctx.Err() != nil {
			c.fail(codeShutdown, errLocalClose) // the node is closing
		} else {
			c.fail(codeNormal, ctx.Err()) // the caller gave up
		}
	})
	defer stop()

	c.ekm = ekm
	err = c.exchange(ekm)
	c.mu.Lock()
	c.authDone = true
	if c.closeErr != nil { // timed out, cancelled or shut down meanwhile
		err = c.closeErr
	}
	c.mu.Unlock()
	if err == nil {
		return nil
	}
	err = c.closedErr(err)
	switch {
	case errors.Is(err, ErrPeerClosed), err == errLocalClose, errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded):
		// Not the peer's fault (or not provably): no auth failure counted.
	default:
		n.stats.authFailures.Add(1)
		if errors.Is(err, ErrMalformed) {
			n.stats.malformed.Add(1)
		}
	}
	if !c.dead() {
		c.fail(codeFor(err), err)
	}
	if err == errLocalClose {
		return link.ErrClosed
	}
	return err
}

// exchange runs the proof and hello exchange on the control stream. Each
// side sends its proof and its hello in one write: the dialler at once,
// the listener after the dialler's proof verified. The listener reads
// nothing past the proof until it verifies, and a hello holds only what a
// node tells any peer (its agents' public certificates, the address it
// sees), so the dialler loses nothing by not waiting; the listener is
// done one round trip sooner, and each side writes once.
func (c *conn) exchange(ekm []byte) error {
	ctx := c.qc.Context()
	var hdr [frameHeaderSize]byte
	if c.role == roleDialler {
		st, err := c.qc.OpenStreamSync(ctx)
		if err != nil {
			return err
		}
		c.ctrl = st
		proof, err := c.proofFrame(ekm, c.expected)
		if err != nil {
			return err
		}
		if err := c.writeProofAndHello(proof); err != nil {
			return err
		}
		chk, err := c.readAuth(&hdr, ekm, roleListener)
		if err != nil {
			return err
		}
		c.peer, c.instance = chk.pub.ID(), chk.instance
		return c.readHello(&hdr)
	}
	st, err := c.qc.AcceptStream(ctx)
	if err != nil {
		return err
	}
	c.ctrl = st
	chk, err := c.readAuth(&hdr, ekm, roleDialler)
	if err != nil {
		return err
	}
	if c.relayed() && chk.pub.ID() != c.viaPeer {
		// The relay named another source than the key that proved itself:
		// answer nothing, so the dialler learns nothing either.
		return fmt.Errorf("%w: relay %s attributed the connection to %s, it proved to be %s",
			ErrAuthFailed, c.via.Short(), c.viaPeer.Short(), chk.pub.ID().Short())
	}
	c.peer, c.instance = chk.pub.ID(), chk.instance
	proof, err := c.proofFrame(ekm, c.peer)
	if err != nil {
		return err
	}
	if chk.toMismatch {
		// Let the dialler see who we are (it will report a mismatch and
		// close); never accept the connection ourselves. Its hello (two
		// frames) follows its proof; the read after it waits for the
		// dialler's close, or the auth timeout.
		if _, err := c.ctrl.Write(proof); err == nil {
			for range 3 {
				if _, _, err := readFrame(c.ctrl, &hdr, controlMaxFrame); err != nil {
					break
				}
			}
		}
		return fmt.Errorf("%w: dialler expected another peer", ErrAuthFailed)
	}
	if err := c.writeProofAndHello(proof); err != nil {
		return err
	}
	return c.readHello(&hdr)
}

// proofFrame builds this side's channel-binding proof for peer to.
func (c *conn) proofFrame(ekm []byte, to identity.PeerID) ([]byte, error) {
	body, err := wire.Marshal(makeAuth(c.n.cfg.Machine, ekm, c.role, to, c.n.instance))
	if err != nil {
		return nil, err
	}
	return appendFrame(nil, frameAuth, body), nil
}

func (c *conn) readAuth(hdr *[frameHeaderSize]byte, ekm []byte, want role) (authCheck, error) {
	// Before the proof only the proof is read: any other frame type is
	// refused on its header, before its body is allocated or read.
	t, n, err := readFrameHeader(c.ctrl, hdr, controlMaxFrame)
	if err == nil && t != frameAuth {
		err = fmt.Errorf("%w: expected the auth proof, got a %s frame", ErrAuthFailed, t)
	}
	var body []byte
	if err == nil {
		body, err = readFrameBody(c.ctrl, t, n)
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return authCheck{}, fmt.Errorf("%w: control stream closed before the proof", ErrAuthFailed)
		}
		if errors.Is(err, ErrMalformed) {
			return authCheck{}, fmt.Errorf("%w: %w", ErrAuthFailed, err)
		}
		return authCheck{}, err
	}
	m, err := decodeAuth(body)
	if err != nil {
		return authCheck{}, fmt.Errorf("%w: %w", ErrAuthFailed, err)
	}
	return verifyAuthWith(c.n.verify.ParseColdKey, m, ekm, want, c.n.id, c.expected, c.addr)
}

// writeProofAndHello sends proof, then our full agent set and the address we
// see the peer at, in one write.
func (c *conn) writeProofAndHello(proof []byte) error {
	agents, ver := c.n.agentsSnapshot()
	c.agentsVer = ver
	body, err := wire.Marshal(&agentsMsg{Full: true, Add: agents})
	if err != nil {
		return err
	}
	report := addrReport{Services: uint8(c.n.cfg.Services)}
	if !c.relayed() {
		report.Observed = c.addr
	}
	addr, err := wire.Marshal(&report)
	if err != nil {
		return err
	}
	buf := appendFrame(proof, frameAgents, body)
	buf = appendFrame(buf, frameAddr, addr)
	_, err = c.ctrl.Write(buf)
	return err
}

func (c *conn) readHello(hdr *[frameHeaderSize]byte) error {
	n := c.n
	t, body, err := readFrame(c.ctrl, hdr, controlMaxFrame)
	if err != nil {
		return eofAsMalformed(err, "hello")
	}
	if t != frameAgents {
		return fmt.Errorf("%w: expected the agents hello, got a %s frame", ErrProtocol, t)
	}
	m, err := decodeAgents(body, n.cfg.MaxAgentsPerPeer)
	if err != nil {
		return err
	}
	if !m.Full {
		return fmt.Errorf("%w: hello must carry the full agent set", ErrProtocol)
	}
	c.helloAgents = n.verifyCerts(c.peer, m.Add)
	t, body, err = readFrame(c.ctrl, hdr, controlMaxFrame)
	if err != nil {
		return eofAsMalformed(err, "hello")
	}
	if t != frameAddr {
		return fmt.Errorf("%w: expected the address report, got a %s frame", ErrProtocol, t)
	}
	var services Services
	c.observed, services, err = decodeAddr(body)
	c.services = services
	if err == nil && c.relayed() == c.observed.IsValid() {
		err = fmt.Errorf("%w: a direct connection must report the observed address, a relayed one must not", ErrProtocol)
	}
	return err
}

func eofAsMalformed(err error, what string) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: control stream ended during %s", ErrMalformed, what)
	}
	return err
}

// ---- after registration ----

// readControl reads the control stream until the connection closes. After
// the hello only the retirement frames may follow, once each.
func (c *conn) readControl() error {
	var hdr [frameHeaderSize]byte
	for {
		t, body, err := readFrame(c.ctrl, &hdr, controlMaxFrame)
		if err != nil {
			return eofAsMalformed(err, "the connection")
		}
		switch t {
		case frameRetire:
			if len(body) != 1 || body[0]&^(1<<link.NumClasses-1) != 0 {
				return fmt.Errorf("%w: retire frame %x", ErrMalformed, body)
			}
			c.mu.Lock()
			dup := c.peerRetired
			c.peerRetired, c.peerOpened = true, body[0]
			c.mu.Unlock()
			if dup {
				return fmt.Errorf("%w: second retire frame", ErrProtocol)
			}
			c.checkDrained()
		case frameDrained:
			c.mu.Lock()
			dup := c.peerDrained
			c.peerDrained = true
			c.mu.Unlock()
			if dup {
				return fmt.Errorf("%w: second drained frame", ErrProtocol)
			}
			c.checkDrained()
		default:
			return fmt.Errorf("%w: unexpected %s frame on the control stream", ErrProtocol, t)
		}
	}
}

// writeCtrl writes one frame on the control stream; a failure means the
// connection is closing.
func (c *conn) writeCtrl(t frameType, body []byte) {
	c.ctrlMu.Lock()
	defer c.ctrlMu.Unlock()
	_, _ = c.ctrl.Write(appendFrame(nil, t, body))
}

// retire starts the graceful close of a connection that lost the dedup
// tie-break: no new frames are accepted, queued ones are still written, the
// peer's are still read, and the connection closes once both sides have
// drained (or after HandshakeTimeout at the latest).
func (c *conn) retire() {
	c.mu.Lock()
	if c.retiring || c.closing {
		c.mu.Unlock()
		return
	}
	c.retiring = true
	c.retireTimer = c.n.clk.AfterFunc(c.n.cfg.HandshakeTimeout, func() { c.fail(codeDuplicate, ErrDuplicate) })
	c.mu.Unlock()
	for i := range c.queues {
		signal(c.queues[i].ready) // writers notice, drain and finish
	}
	c.spawn(func() {
		c.writerWG.Wait()
		c.mu.Lock()
		opened := c.outOpened
		c.mu.Unlock()
		c.writeCtrl(frameRetire, []byte{opened})
		c.checkDrained()
	})
}

// checkDrained sends frameDrained once the peer retired and every stream it
// listed was read to the end, and closes the connection once both sides
// have sent frameDrained.
func (c *conn) checkDrained() {
	c.mu.Lock()
	send := c.peerRetired && !c.drainedSent && c.inEOF&c.peerOpened == c.peerOpened
	if send {
		c.drainedSent = true
	}
	done := c.drainedSent && c.peerDrained
	c.mu.Unlock()
	if send {
		c.writeCtrl(frameDrained, nil)
	}
	if done {
		c.fail(codeDuplicate, ErrDuplicate)
	}
}

// acceptStreams accepts the peer's class streams.
func (c *conn) acceptStreams() {
	ctx := c.qc.Context()
	for {
		st, err := c.qc.AcceptUniStream(ctx)
		if err != nil {
			return
		}
		if !c.spawn(func() { c.readClass(st) }) {
			return
		}
	}
}

// readClass reads one inbound class stream until it or the connection ends.
func (c *conn) readClass(st *quic.ReceiveStream) {
	n := c.n
	br := bufio.NewReaderSize(st, readBufferBytes)
	k, err := readClassHeader(br)
	if err != nil {
		c.protocolFailure(err)
		return
	}
	c.mu.Lock()
	if c.inbound[k.Index()] {
		err = fmt.Errorf("%w: second %s stream", ErrProtocol, k)
	}
	c.inbound[k.Index()] = true
	c.mu.Unlock()
	var hdr [frameHeaderSize]byte
	cc := &n.stats.classes[k.Index()]
	for err == nil {
		var t frameType
		var body []byte
		var size int
		t, size, err = readFrameHeader(br, &hdr, n.cfg.MaxFrameSize)
		if err != nil {
			break
		}
		// A frame that has started must finish within FrameTimeout: a peer
		// cannot hold a reader (and its buffer) by stalling mid-frame.
		_ = st.SetReadDeadline(time.Now().Add(n.cfg.FrameTimeout))
		body, err = readFrameBody(br, t, size)
		_ = st.SetReadDeadline(time.Time{})
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				err = fmt.Errorf("%w: %s frame of %d bytes not completed within %v", ErrProtocol, t, size, n.cfg.FrameTimeout)
			}
			break
		}
		cc.framesIn.Add(1)
		cc.bytesIn.Add(uint64(frameHeaderSize + len(body)))
		c.heard.Store(n.clk.Now().UnixNano())
		switch {
		case k == link.ClassRelay:
			err = n.onRelayFrame(c, t, body)
		case t.isProtocolOn(k):
			p, _ := t.protocol()
			if h := n.handlers[p].Load(); h != nil {
				(*h)(c.peer, body)
			} else {
				cc.noHandler.Add(1)
			}
		case t == frameDirect && k == link.ClassDirect:
			err = n.onDirect(c, false, body)
		case t == frameService && k == link.ClassDirect:
			err = n.onDirect(c, true, body)
		case t == frameAgents && k == link.ClassDirect:
			err = n.onAgents(c, body)
		default:
			err = fmt.Errorf("%w: %s frame on the %s stream", ErrProtocol, t, k)
		}
	}
	if errors.Is(err, io.EOF) { // the peer finished its stream (it is retiring)
		c.mu.Lock()
		c.inEOF |= 1 << k.Index()
		c.mu.Unlock()
		c.checkDrained()
		return
	}
	c.protocolFailure(err)
}

// protocolFailure closes the connection for a malformed or forbidden input,
// counting it; errors caused by the connection closing are ignored.
func (c *conn) protocolFailure(err error) {
	if err == nil || c.dead() || errors.Is(err, net.ErrClosed) {
		return // the connection is closing; runConn reports why
	}
	var se *quic.StreamError
	switch {
	case errors.Is(err, ErrMalformed):
		c.n.stats.malformed.Add(1)
	case errors.Is(err, ErrProtocol):
		c.n.stats.protocol.Add(1)
	case errors.As(err, &se): // the peer reset or stopped a long-lived stream
		c.n.stats.protocol.Add(1)
		err = fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	c.n.log.Debug("closing connection", "peer", c.peer.Short(), "addr", c.addr, "err", err)
	c.fail(codeFor(err), err)
}

// errRetiring is returned by enqueue on a connection being retired; the
// caller retries on the peer's current connection.
var errRetiring = errors.New("transport: connection retiring")

// enqueue queues a frame for class k. It fails with link.ErrQueueFull if the
// class/priority FIFO or the connection's byte budget is full, and with
// errRetiring once the connection is being retired.
func (c *conn) enqueue(k link.Class, it sendItem) error {
	n := c.n
	sz := int64(it.size())
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.retiring {
		return errRetiring
	}
	if c.queued.Add(sz) > int64(n.cfg.QueueBytes) {
		c.queued.Add(-sz)
		return link.ErrQueueFull
	}
	q := &c.queues[k.Index()]
	if !q.push(it, n.cfg.QueueDepth) {
		c.queued.Add(-sz)
		return link.ErrQueueFull
	}
	if !c.writers[k.Index()] && !c.closing {
		c.writers[k.Index()] = true
		c.wg.Add(1)
		c.writerWG.Add(1)
		go func() {
			defer c.wg.Done()
			defer c.writerWG.Done()
			c.runWriter(k)
		}()
	}
	return nil
}

// isRetiring reports whether retire was called.
func (c *conn) isRetiring() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.retiring
}

// runWriter owns the outbound stream of class k: it opens it on first use
// and writes queued frames, highest priority first, coalescing small ones.
func (c *conn) runWriter(k link.Class) {
	n := c.n
	ctx := c.qc.Context()
	st, err := c.qc.OpenUniStreamSync(ctx)
	if err != nil {
		if !c.dead() {
			c.fail(codeProtocol, fmt.Errorf("opening %s stream: %w", k, err))
		}
		return
	}
	st.SetPriority(urgency(k), true)
	c.mu.Lock()
	c.outOpened |= 1 << k.Index()
	c.mu.Unlock()
	q := &c.queues[k.Index()]
	cc := &n.stats.classes[k.Index()]
	header := []byte{byte(k)} // the class byte opens the stream, sent with the first frames
	var buf *[]byte           // batch buffer, held only while there is work
	var batch []sendItem
	write := func(b []byte) bool {
		if _, err := st.Write(b); err != nil {
			c.protocolFailure(fmt.Errorf("writing %s stream: %w", k, err))
			return false
		}
		return true
	}
	defer func() {
		if buf != nil {
			n.bufPool.Put(buf)
		}
	}()
	for {
		retiring := c.isRetiring() // read before popping: enqueue refuses once it is set
		batch = q.popBatch(batch[:0], writeBatchBytes)
		if len(batch) == 0 {
			if buf != nil { // idle: give the buffer back
				n.bufPool.Put(buf)
				buf = nil
			}
			if retiring {
				_ = st.Close() // FIN: the peer reads to the end, then knows it has everything
				return
			}
			select {
			case <-q.ready:
				continue
			case <-ctx.Done():
				return
			}
		}
		if buf == nil {
			buf = n.bufPool.Get().(*[]byte)
		}
		b := append((*buf)[:0], header...)
		header = nil
		total := 0
		for i := range batch {
			it := &batch[i]
			sz := it.size()
			total += sz
			if len(it.body) >= bigFrameBytes {
				b = append(b, it.head[:it.headLen]...)
				if !write(b) || !write(it.body) {
					return
				}
				b = b[:0]
			} else {
				if len(b)+sz > writeBatchBytes && len(b) > 0 {
					if !write(b) {
						return
					}
					b = b[:0]
				}
				b = append(b, it.head[:it.headLen]...)
				b = append(b, it.body...)
			}
			cc.framesOut.Add(1)
			cc.bytesOut.Add(uint64(sz))
			*it = sendItem{}
		}
		if len(b) > 0 && !write(b) {
			return
		}
		*buf = b[:0]
		c.queued.Add(-int64(total))
		signal(q.space)
	}
}

// adopt moves the frames still queued on old (a connection being replaced
// by c) to c, dropping and counting what does not fit.
func (c *conn) adopt(old *conn) {
	for i := range old.queues {
		k := link.Class(i + 1)
		for _, it := range old.queues[i].drain() {
			old.queued.Add(-int64(it.size()))
			if err := c.enqueue(k, it); err != nil {
				c.n.stats.classes[i].dropped[it.prio].Add(1)
			}
		}
	}
}
