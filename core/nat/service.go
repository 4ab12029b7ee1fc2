package nat

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/internal/defaults"
	"github.com/saorsa-labs/x0x-go/core/internal/ratelimit"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/transport"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// Defaults of Config.
const (
	DefaultDirectGrace   = 150 * time.Millisecond
	DefaultPunchTimeout  = 1500 * time.Millisecond
	DefaultPunchAttempts = 3
	DefaultUpgradeMin    = 5 * time.Second
	DefaultUpgradeMax    = 5 * time.Minute
	DefaultRatePerSecond = 10
	DefaultRateBurst     = 20
	DefaultMaxPending    = 1024
	// pendingLife is how long a coordinator waits for a target's answer.
	pendingLife = 10 * time.Second
	// maxObservations bounds the remembered address reports.
	maxObservations = 64
)

// Errors of Connect beyond the transport's.
var (
	// ErrNoCoordinator means no connected coordinator could pass a punch
	// request to the peer (none connected, or none connected to the peer).
	ErrNoCoordinator = errors.New("nat: no coordinator connected to the peer")
	// ErrUnreachable means neither a direct dial, hole punching nor a relay
	// connected the peer.
	ErrUnreachable = errors.New("nat: peer unreachable directly, by hole punching and by relay")
)

// A coordinator's failures that the next punch attempt may not meet (they
// are wrapped in ErrNoCoordinator): no answer within PunchTimeout, and a
// refusal for its rate limit or full table.
var (
	errNoAnswer = errors.New("no answer in time")
	errBusy     = errors.New("busy")
)

// Config configures a Service. Zero values take the defaults.
type Config struct {
	// Node is the transport node to traverse NATs for. Required.
	Node *transport.Node
	// Clock drives timers (default the real clock); Rand draws nonces
	// (default crypto/rand; must be safe for concurrent use).
	Clock clock.Clock
	Rand  io.Reader
	// Logger receives debug logs (nil discards them).
	Logger *slog.Logger
	// DirectGrace is how long Connect lets a plain dial run alone before
	// it starts hole punching beside it (default 150 ms).
	DirectGrace time.Duration
	// PunchTimeout bounds one punch attempt: the coordinator round trip
	// and the dials (default 1.5 s). PunchAttempts is how many Connect
	// makes (default 3), 100 ms apart and doubling; it stops early when no
	// coordinator can pass a request to the peer (none is connected, or
	// each refused for a reason other than being busy) and no relay can
	// carry it.
	PunchTimeout  time.Duration
	PunchAttempts int
	// UpgradeMin and UpgradeMax bound the backoff between attempts to
	// replace a relayed connection by a direct one (defaults 5 s, 5 min).
	UpgradeMin, UpgradeMax time.Duration
	// RatePerSecond and RateBurst bound punch requests per requester (as a
	// coordinator) and offers per coordinator (as a target).
	RatePerSecond float64
	RateBurst     int
	// MaxPending bounds a coordinator's punches awaiting an answer.
	MaxPending int

	// hooks lets this package's tests observe and perturb a Service; it
	// cannot be set from outside the package, and nil (always, in
	// production) means no hooks.
	hooks *testHooks
}

// testHooks are the points where tests watch or disturb a Service. Each
// is optional.
type testHooks struct {
	// send runs before each NAT message this node sends; returning false
	// drops the message. It may block, delaying the message (and the
	// handler that sends it).
	send func(to identity.PeerID, m *message) bool
	// punchDial runs as a hole-punch dial to peer starts: the requester's
	// after its rtt/2 wait, the target's on the sync.
	punchDial func(peer identity.PeerID)
}

// punchDialing calls h.punchDial if set; h may be nil.
func (h *testHooks) punchDialing(peer identity.PeerID) {
	if h != nil && h.punchDial != nil {
		h.punchDial(peer)
	}
}

func (c *Config) fill() {
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	defaults.Positive(&c.DirectGrace, DefaultDirectGrace)
	defaults.Positive(&c.PunchTimeout, DefaultPunchTimeout)
	defaults.Positive(&c.UpgradeMin, DefaultUpgradeMin)
	defaults.Positive(&c.UpgradeMax, DefaultUpgradeMax)
	defaults.Positive(&c.PunchAttempts, DefaultPunchAttempts)
	defaults.Positive(&c.RatePerSecond, DefaultRatePerSecond)
	defaults.Positive(&c.RateBurst, DefaultRateBurst)
	defaults.Positive(&c.MaxPending, DefaultMaxPending)
}

// Stats counts a Service's work.
type Stats struct {
	Requests        uint64 // punch requests this node sent
	Coordinated     uint64 // punch requests this node passed on as a coordinator
	Offers          uint64 // offers this node answered as a target
	Syncs           uint64 // syncs on which this node dialled as a target
	PunchesOK       uint64 // Connect/upgrade attempts that ended direct by punching
	PunchesFailed   uint64 // punch attempts that found no direct path
	RelayFallbacks  uint64 // connections made through a relay
	Upgrades        uint64 // relayed connections replaced by direct ones
	Refused         uint64 // requests or offers refused or ignored (rate, bounds, roles)
	MalformedFrames uint64 // NAT messages that did not decode
}

// Path says how Connect reached a peer.
type Path struct {
	Relayed  bool
	Via      identity.PeerID // the relay, if Relayed
	Attempts int             // punch attempts made (0: the direct dial or an existing connection sufficed)
}

// Service runs NAT traversal on a node. It implements link.Network
// (the overlay runs on it): Connect falls back from a direct dial to hole
// punching and then to a relay, and LocalAddr advertises the best-known
// reachable address. Every other method is the node's.
type Service struct {
	*transport.Node
	cfg Config
	clk clock.Clock

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	obs       []Observation
	result    Result
	waiting   map[[nonceSize]byte]*waiter
	pending   map[[nonceSize]byte]*pendingPunch // as coordinator
	offers    map[[nonceSize]byte]*pendingOffer // as target, until the sync
	reqRate   map[identity.PeerID]*ratelimit.Bucket
	offerRate map[identity.PeerID]*ratelimit.Bucket
	upgrades  map[identity.PeerID]*upgrade
	stats     Stats

	notifyMu  sync.Mutex       // serialises announce
	announced Result           // the last classification announced
	externals []netip.AddrPort // external addresses announced, oldest first (notifyMu)
}

type waiter struct {
	coord identity.PeerID
	ch    chan *message
}

type pendingPunch struct {
	from, to identity.PeerID
	expires  time.Time
	answered bool
}

type pendingOffer struct {
	coord, peer identity.PeerID
	addrs       []string
	expires     time.Time
}

type upgrade struct {
	timer clock.Timer
	delay time.Duration
}

// New starts NAT traversal on cfg.Node: it handles link.ProtoNAT and
// watches the node's connections. Close stops it (before the node closes).
func New(cfg Config) (*Service, error) {
	if cfg.Node == nil {
		return nil, errors.New("nat: Config.Node is required")
	}
	cfg.fill()
	s := &Service{
		Node: cfg.Node, cfg: cfg, clk: cfg.Clock,
		waiting:   make(map[[nonceSize]byte]*waiter),
		pending:   make(map[[nonceSize]byte]*pendingPunch),
		offers:    make(map[[nonceSize]byte]*pendingOffer),
		reqRate:   make(map[identity.PeerID]*ratelimit.Bucket),
		offerRate: make(map[identity.PeerID]*ratelimit.Bucket),
		upgrades:  make(map[identity.PeerID]*upgrade),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	cfg.Node.Handle(link.ProtoNAT, s.onFrame)
	cfg.Node.WatchPeers(s.onPeer)
	return s, nil
}

// Close stops timers and waits for the Service's goroutines. The node is
// left running.
func (s *Service) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for _, u := range s.upgrades {
		u.timer.Stop()
	}
	s.upgrades = map[identity.PeerID]*upgrade{}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.Node.Handle(link.ProtoNAT, nil)
}

// after returns a channel closed after d on the Service's clock, and a
// function that stops the timer.
func (s *Service) after(d time.Duration) (<-chan struct{}, func() bool) {
	ch := make(chan struct{})
	t := s.clk.AfterFunc(d, func() { close(ch) })
	return ch, t.Stop
}

// wait is after without the stop function (for short waits).
func (s *Service) wait(d time.Duration) <-chan struct{} {
	ch, _ := s.after(d)
	return ch
}

// spawn runs f on a goroutine the Service owns, unless it is closed.
func (s *Service) spawn(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// NAT returns the current classification of this node's NAT.
func (s *Service) NAT() Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.result
}

// LocalAddr returns the address peers should dial: the external address
// when peers see the node at its own address (TypeNone), else a local
// interface address (reachable from the same LAN), else the bound
// address. A cone NAT's external mapping is not advertised: only a
// coordinated punch opens it, and an unsolicited dial to it can make some
// NATs (Linux conntrack without an input filter) give the node's own
// later mapping another port.
func (s *Service) LocalAddr() string {
	s.mu.Lock()
	r := s.result
	s.mu.Unlock()
	if r.External.IsValid() && r.Type == TypeNone {
		return r.External.String()
	}
	if c := s.Node.LocalCandidates(); len(c) > 0 {
		return c[0].String()
	}
	return s.Node.LocalAddr()
}

// Connect implements link.Network: see ConnectPath.
func (s *Service) Connect(ctx context.Context, peer identity.PeerID, addr string) error {
	_, err := s.ConnectPath(ctx, peer, addr)
	return err
}

// Dial is link.Network's asynchronous Connect with NAT traversal: it runs
// Connect (direct, then punched, then relayed) on a goroutine the Service
// owns and calls done with the result there. (Without it the embedded
// Node's Dial would be promoted, and dials through the overlay would skip
// traversal.) A dial still running when the Service closes ends with the
// Service's context error; after Close, done gets link.ErrClosed.
func (s *Service) Dial(ctx context.Context, peer identity.PeerID, addr string, done func(error)) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		go done(link.ErrClosed)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		ctx, stop := context.WithCancel(ctx)
		defer stop()
		unlink := context.AfterFunc(s.ctx, stop)
		defer unlink()
		done(s.Connect(ctx, peer, addr))
	}()
}

// ConnectPath connects to peer, trying in turn: an existing connection; a
// direct dial to addr (if it is a usable address); after DirectGrace,
// beside that dial, hole punches coordinated by connected coordinators;
// and after a failed punch, a relay that is connected to the peer. It
// returns how the peer was reached. A relayed connection is upgraded in
// the background. Errors: *transport.PeerMismatchError (addr is another
// peer), transport.ErrSelfConnect, link.ErrClosed, ctx's error, or
// ErrUnreachable joined with what each way returned.
func (s *Service) ConnectPath(ctx context.Context, peer identity.PeerID, addr string) (Path, error) {
	if info, ok := s.Node.PeerInfo(peer); ok {
		return Path{Relayed: info.Relayed, Via: info.Via}, nil
	}
	if peer == s.Node.LocalID() {
		return Path{}, transport.ErrSelfConnect
	}
	var errs []error
	direct := make(chan error, 1)
	if usableAddr(addr) {
		dctx := context.WithoutCancel(ctx) // let it finish: it may still win
		go func() { direct <- s.Node.Connect(dctx, peer, addr) }()
		graceFor := s.cfg.DirectGrace
		if ap := netip.MustParseAddrPort(addr); isLAN(ap.Addr()) && !onLocalNetwork(ap.Addr()) {
			// Another network's private address: the dial can only work
			// by accident (overlapping ranges); punch at once beside it.
			graceFor = 0
		}
		grace, stopGrace := s.after(graceFor)
		select {
		case err := <-direct:
			stopGrace()
			if err == nil {
				return s.pathTo(peer), nil
			}
			if fatalDialError(err) {
				return Path{}, err
			}
			errs = append(errs, fmt.Errorf("direct dial %s: %w", addr, err))
			direct = nil
		case <-grace:
		case <-ctx.Done():
			stopGrace()
			return Path{}, ctx.Err()
		}
	} else {
		direct = nil
	}
	path, err := s.traverse(ctx, peer)
	if err == nil {
		return path, nil
	}
	errs = append(errs, err)
	if direct != nil {
		// The plain dial is still running: it is the last chance.
		select {
		case derr := <-direct:
			if derr == nil {
				return s.pathTo(peer), nil
			}
			errs = append(errs, fmt.Errorf("direct dial %s: %w", addr, derr))
		case <-ctx.Done():
			return Path{}, ctx.Err()
		}
	}
	if s.Node.IsConnected(peer) {
		return s.pathTo(peer), nil
	}
	return Path{}, fmt.Errorf("%w: %w", ErrUnreachable, errors.Join(errs...))
}

func (s *Service) pathTo(peer identity.PeerID) Path {
	info, _ := s.Node.PeerInfo(peer)
	return Path{Relayed: info.Relayed, Via: info.Via}
}

// usableAddr reports whether addr is a literal ip:port worth dialling.
func usableAddr(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	return err == nil && ap.Port() != 0 && !ap.Addr().IsUnspecified()
}

// onLocalNetwork reports whether addr is on a network of one of this
// host's interfaces.
func onLocalNetwork(addr netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true // unknown: assume it may be, and let the dial run
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.Contains(net.IP(addr.AsSlice())) {
			return true
		}
	}
	return false
}

// fatalDialError reports errors that no other path would fix.
func fatalDialError(err error) bool {
	return errors.Is(err, transport.ErrPeerMismatch) || errors.Is(err, transport.ErrSelfConnect) ||
		errors.Is(err, link.ErrClosed)
}

// traverse punches through coordinators and falls back to relays.
func (s *Service) traverse(ctx context.Context, peer identity.PeerID) (Path, error) {
	var errs []error
	tried := map[identity.PeerID]bool{}
	attempts := 0
	for attempt := range s.cfg.PunchAttempts {
		if s.Node.IsConnected(peer) {
			p := s.pathTo(peer)
			p.Attempts = attempts
			return p, nil
		}
		attempts++
		res, relays, err := s.punchOnce(ctx, peer)
		// Relays that are not coordinators may still carry the peer: try
		// them after those known to reach it (a relay without the peer
		// refuses at once).
		relays = append(relays, s.otherRelays(peer, relays)...)
		if err == nil {
			s.count(func(st *Stats) { st.PunchesOK++ })
			return Path{Attempts: attempts}, nil
		}
		if ctx.Err() != nil || errors.Is(err, link.ErrClosed) {
			return Path{}, err
		}
		errs = append(errs, err)
		if res == nil && len(relays) == 0 && !errors.Is(err, errNoAnswer) && !errors.Is(err, errBusy) {
			// Nobody can pass a request or relay: retrying will not help.
			// (A coordinator that did not answer in time or was busy may
			// answer the next request.)
			break
		}
		for _, r := range relays {
			if tried[r] {
				continue
			}
			tried[r] = true
			rerr := s.Node.ConnectRelayed(ctx, peer, r)
			if rerr == nil {
				s.count(func(st *Stats) { st.RelayFallbacks++ })
				return Path{Relayed: true, Via: r, Attempts: attempts}, nil
			}
			errs = append(errs, fmt.Errorf("relay %s: %w", r.Short(), rerr))
		}
		if attempt+1 < s.cfg.PunchAttempts {
			select {
			case <-s.wait(100 * time.Millisecond << attempt):
			case <-ctx.Done():
				return Path{}, ctx.Err()
			}
		}
	}
	return Path{}, errors.Join(errs...)
}

// punchOnce asks coordinators for the peer's candidates and dials them. It
// returns the coordinator's answer (nil if none answered) and the
// coordinators that offered to relay to the peer.
func (s *Service) punchOnce(ctx context.Context, peer identity.PeerID) (*message, []identity.PeerID, error) {
	res, coord, rtt, relays, err := s.askCoordinators(ctx, peer)
	if err != nil {
		return nil, relays, err
	}
	mine := s.NAT().Type
	if mine == TypeEndpointDependent && Type(res.NAT) == TypeEndpointDependent {
		s.count(func(st *Stats) { st.PunchesFailed++ })
		return res, relays, fmt.Errorf("nat: both sides are behind endpoint-dependent NATs: hole punching cannot work")
	}
	addrs := offeredCandidates(res.Addrs)
	// The sync takes about half the measured round trip to reach B, which
	// dials when it arrives: wait that long, then dial too.
	if err := s.send(coord, &message{Kind: msgSync, Nonce: res.Nonce, Peer: peer[:]}); err != nil {
		return res, relays, err
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PunchTimeout)
	defer cancel()
	wait, stopWait := s.after(rtt / 2)
	select {
	case <-wait:
	case <-pctx.Done():
		stopWait()
		return res, relays, pctx.Err()
	}
	s.cfg.hooks.punchDialing(peer)
	if err := s.Node.DialDirect(pctx, peer, addrStrings(addrs)); err != nil {
		s.count(func(st *Stats) { st.PunchesFailed++ })
		return res, relays, err
	}
	return res, relays, nil
}

// maxOtherRelays bounds the relays tried that did not say they reach the
// peer.
const maxOtherRelays = 3

// otherRelays lists up to maxOtherRelays directly connected peers offering
// ServiceRelay that are not in known (and not peer itself).
func (s *Service) otherRelays(peer identity.PeerID, known []identity.PeerID) []identity.PeerID {
	var out []identity.PeerID
	for _, p := range s.Node.PeersInfo() {
		if len(out) == maxOtherRelays {
			break
		}
		if p.Peer != peer && !p.Relayed && p.Services.Has(transport.ServiceRelay) && !slices.Contains(known, p.Peer) {
			out = append(out, p.Peer)
		}
	}
	return out
}

// offeredCandidates keeps the first address (the one the coordinator
// observed) and the LAN addresses after it.
func offeredCandidates(addrs []string) []netip.AddrPort {
	if len(addrs) == 0 {
		return nil
	}
	out := candidates(addrs[:1], false)
	for _, a := range candidates(addrs[1:], true) {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// coordinators lists directly connected peers offering coordination
// (relays first, then by ID), excluding peer.
func (s *Service) coordinators(peer identity.PeerID) []transport.PeerInfo {
	var out []transport.PeerInfo
	for _, p := range s.Node.PeersInfo() {
		if p.Peer != peer && !p.Relayed && p.Services.Has(transport.ServiceCoordinator) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b transport.PeerInfo) int {
		ar, br := a.Services.Has(transport.ServiceRelay), b.Services.Has(transport.ServiceRelay)
		if ar != br {
			if ar {
				return -1
			}
			return 1
		}
		return bytes.Compare(a.Peer[:], b.Peer[:])
	})
	return out
}

// askCoordinators sends a punch request through each coordinator in turn
// until one answers with the peer's candidates. It returns the answer, the
// coordinator that gave it, the request's round-trip time and the
// coordinators that offered to relay to the peer.
func (s *Service) askCoordinators(ctx context.Context, peer identity.PeerID) (*message, identity.PeerID, time.Duration, []identity.PeerID, error) {
	coords := s.coordinators(peer)
	if len(coords) == 0 {
		return nil, identity.PeerID{}, 0, nil, ErrNoCoordinator
	}
	var relays []identity.PeerID
	var errs []error
	for _, c := range coords {
		start := s.clk.Now()
		m, err := s.request(ctx, c.Peer, peer)
		if err != nil {
			errs = append(errs, fmt.Errorf("coordinator %s: %w", c.Peer.Short(), err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if m.Relay && c.Services.Has(transport.ServiceRelay) {
			relays = append(relays, c.Peer)
		}
		if m.Kind == msgResult {
			return m, c.Peer, s.clk.Now().Sub(start), relays, nil
		}
		if m.Code == refuseBusy {
			errs = append(errs, fmt.Errorf("coordinator %s refused: %w", c.Peer.Short(), errBusy))
			continue
		}
		errs = append(errs, fmt.Errorf("coordinator %s refused (code %d)", c.Peer.Short(), m.Code))
	}
	return nil, identity.PeerID{}, 0, relays, fmt.Errorf("%w: %w", ErrNoCoordinator, errors.Join(errs...))
}

// request sends one punch request to coord and waits for its result or
// refusal (at most PunchTimeout).
func (s *Service) request(ctx context.Context, coord, peer identity.PeerID) (*message, error) {
	var nonce [nonceSize]byte
	if _, err := io.ReadFull(s.cfg.Rand, nonce[:]); err != nil {
		return nil, err
	}
	w := &waiter{coord: coord, ch: make(chan *message, 1)}
	s.mu.Lock()
	s.waiting[nonce] = w
	s.stats.Requests++
	mine := s.result.Type
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiting, nonce)
		s.mu.Unlock()
	}()
	if err := s.send(coord, &message{Kind: msgRequest, Nonce: nonce[:], Peer: peer[:],
		Addrs: addrStrings(s.lanCandidates()), NAT: uint8(mine)}); err != nil {
		return nil, err
	}
	timeout, stop := s.after(s.cfg.PunchTimeout)
	defer stop()
	select {
	case m := <-w.ch:
		return m, nil
	case <-timeout:
		return nil, errNoAnswer
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.ctx.Done():
		return nil, link.ErrClosed
	}
}

// lanCandidates lists this node's LAN interface addresses.
func (s *Service) lanCandidates() []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range s.Node.LocalCandidates() {
		if isLAN(a.Addr()) && len(out) < MaxCandidates-1 {
			out = append(out, a)
		}
	}
	return out
}

func (s *Service) send(peer identity.PeerID, m *message) error {
	if h := s.cfg.hooks; h != nil && h.send != nil && !h.send(peer, m) {
		return nil
	}
	b, err := wire.Marshal(m)
	if err != nil {
		return err
	}
	return s.Node.Send(peer, link.ProtoNAT, link.PriorityControl, b)
}

func (s *Service) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// ---- inbound messages ----

func (s *Service) onFrame(from identity.PeerID, b []byte) {
	m, err := decodeMessage(b)
	if err != nil {
		s.count(func(st *Stats) { st.MalformedFrames++ })
		s.cfg.Logger.Debug("malformed NAT message", "peer", from.Short(), "err", err)
		return
	}
	switch m.Kind {
	case msgRequest:
		s.onRequest(from, m)
	case msgOffer:
		s.onOffer(from, m)
	case msgAnswer:
		s.onAnswer(from, m)
	case msgSync:
		s.onSync(from, m)
	case msgResult, msgRefusal:
		s.mu.Lock()
		w := s.waiting[m.nonce()]
		s.mu.Unlock()
		if w == nil || w.coord != from {
			s.count(func(st *Stats) { st.Refused++ }) // unsolicited
			return
		}
		select {
		case w.ch <- m:
		default:
		}
	}
}

// refuse answers a request with a refusal.
func (s *Service) refuse(to identity.PeerID, m *message, code uint8) {
	s.count(func(st *Stats) { st.Refused++ })
	_ = s.send(to, &message{Kind: msgRefusal, Nonce: m.Nonce, Peer: m.Peer, Code: code})
}

// onRequest: as a coordinator, pass A's request to B.
func (s *Service) onRequest(from identity.PeerID, m *message) {
	if !s.Node.Services().Has(transport.ServiceCoordinator) {
		s.refuse(from, m, refuseNotCoord)
		return
	}
	now := s.clk.Now()
	target := m.peer()
	if target == from || target == s.Node.LocalID() {
		s.refuse(from, m, refuseBadTarget)
		return
	}
	fromInfo, ok := s.Node.PeerInfo(from)
	if !ok || fromInfo.Relayed {
		return
	}
	toInfo, ok := s.Node.PeerInfo(target)
	if !ok || toInfo.Relayed {
		s.refuse(from, m, refuseNoTarget)
		return
	}
	s.mu.Lock()
	if !s.allow(s.reqRate, from, now) {
		s.mu.Unlock()
		s.refuse(from, m, refuseBusy)
		return
	}
	if len(s.pending) >= s.cfg.MaxPending {
		for k, p := range s.pending {
			if now.After(p.expires) {
				delete(s.pending, k)
			}
		}
	}
	nonce := m.nonce()
	if _, dup := s.pending[nonce]; dup || len(s.pending) >= s.cfg.MaxPending {
		s.mu.Unlock()
		s.refuse(from, m, refuseBusy)
		return
	}
	s.pending[nonce] = &pendingPunch{from: from, to: target, expires: now.Add(pendingLife)}
	s.stats.Coordinated++
	s.mu.Unlock()
	addrs := withObserved(fromInfo.Addr, m.Addrs)
	_ = s.send(target, &message{Kind: msgOffer, Nonce: m.Nonce, Peer: from[:], Addrs: addrs, NAT: m.NAT})
}

// withObserved puts the observed address first, then the stated LAN
// candidates.
func withObserved(observed string, stated []string) []string {
	var out []netip.AddrPort
	if ap, err := netip.ParseAddrPort(observed); err == nil {
		out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	for _, a := range candidates(stated, true) {
		if len(out) < MaxCandidates && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return addrStrings(out)
}

// onAnswer: as a coordinator, pass B's answer back to A.
func (s *Service) onAnswer(from identity.PeerID, m *message) {
	nonce := m.nonce()
	s.mu.Lock()
	p := s.pending[nonce]
	if p == nil || p.to != from || p.answered {
		s.stats.Refused++
		s.mu.Unlock()
		return
	}
	p.answered = true // kept for the sync
	s.mu.Unlock()
	info, ok := s.Node.PeerInfo(from)
	if !ok || info.Relayed {
		return
	}
	_ = s.send(p.from, &message{Kind: msgResult, Nonce: m.Nonce, Peer: from[:], Addrs: withObserved(info.Addr, m.Addrs),
		NAT: m.NAT, Relay: s.Node.Services().Has(transport.ServiceRelay)})
}

// onOffer: as the target, remember the requester's candidates and answer;
// the dial waits for the sync.
func (s *Service) onOffer(from identity.PeerID, m *message) {
	info, ok := s.Node.PeerInfo(from)
	if !ok || info.Relayed || !info.Services.Has(transport.ServiceCoordinator) {
		s.count(func(st *Stats) { st.Refused++ })
		return
	}
	peer := m.peer()
	if peer == s.Node.LocalID() || peer == from {
		s.count(func(st *Stats) { st.Refused++ })
		return
	}
	now := s.clk.Now()
	nonce := m.nonce()
	s.mu.Lock()
	ok = s.allow(s.offerRate, from, now)
	if ok && len(s.offers) >= s.cfg.MaxPending {
		for k, o := range s.offers {
			if now.After(o.expires) {
				delete(s.offers, k)
			}
		}
		ok = len(s.offers) < s.cfg.MaxPending
	}
	if _, dup := s.offers[nonce]; dup {
		ok = false
	}
	if ok {
		s.stats.Offers++
		s.offers[nonce] = &pendingOffer{coord: from, peer: peer, addrs: addrStrings(offeredCandidates(m.Addrs)),
			expires: now.Add(pendingLife)}
	}
	mine := s.result.Type
	s.mu.Unlock()
	if !ok {
		s.count(func(st *Stats) { st.Refused++ })
		return
	}
	_ = s.send(from, &message{Kind: msgAnswer, Nonce: m.Nonce, Addrs: addrStrings(s.lanCandidates()), NAT: uint8(mine)})
}

// onSync: as the coordinator, pass the requester's sync to the target; as
// the target, dial the requester's candidates now.
func (s *Service) onSync(from identity.PeerID, m *message) {
	nonce := m.nonce()
	s.mu.Lock()
	if p := s.pending[nonce]; p != nil && p.from == from && p.to == m.peer() && p.answered {
		delete(s.pending, nonce)
		s.mu.Unlock()
		_ = s.send(p.to, &message{Kind: msgSync, Nonce: m.Nonce, Peer: from[:]})
		return
	}
	o := s.offers[nonce]
	if o == nil || o.coord != from || o.peer != m.peer() {
		s.stats.Refused++
		s.mu.Unlock()
		return
	}
	delete(s.offers, nonce)
	s.stats.Syncs++
	s.mu.Unlock()
	if len(o.addrs) == 0 {
		return
	}
	s.spawn(func() {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.PunchTimeout)
		defer cancel()
		s.cfg.hooks.punchDialing(o.peer)
		_ = s.Node.DialDirect(ctx, o.peer, o.addrs)
	})
}

// ---- address discovery and upgrades ----

// onPeer runs on the transport's event goroutine: it records address
// reports and schedules upgrades of relayed connections. It must not block.
func (s *Service) onPeer(ev link.PeerEvent) {
	if !ev.Up {
		s.mu.Lock()
		if u := s.upgrades[ev.Peer]; u != nil {
			u.timer.Stop()
			delete(s.upgrades, ev.Peer)
		}
		s.mu.Unlock()
		return
	}
	if ev.Relayed {
		// One side drives the upgrade (the lower ID), so the two do not
		// punch against each other's requests.
		if local := s.Node.LocalID(); bytes.Compare(local[:], ev.Peer[:]) < 0 {
			s.scheduleUpgrade(ev.Peer, s.cfg.UpgradeMin)
		}
		return
	}
	info, ok := s.Node.PeerInfo(ev.Peer)
	if !ok || info.Relayed || !info.Observed.IsValid() {
		return
	}
	ap, err := netip.ParseAddrPort(info.Addr)
	if err != nil {
		return
	}
	s.observe(Observation{Observer: ev.Peer, ObserverAddr: ap.Addr(), Observed: info.Observed})
}

// observe records a report and, on a change of the classification,
// emits NatTypeDetected from another goroutine (onPeer runs inside the
// transport's event delivery, which Notify would re-enter).
func (s *Service) observe(o Observation) {
	local := s.Node.LocalCandidates()
	if bound, err := netip.ParseAddrPort(s.Node.LocalAddr()); err == nil {
		local = append(local, bound)
	}
	s.mu.Lock()
	s.obs = append(s.obs, o)
	if len(s.obs) > maxObservations {
		s.obs = slices.Delete(s.obs, 0, len(s.obs)-maxObservations)
	}
	r := Classify(s.obs, local)
	changed := r.Type != s.result.Type || r.External != s.result.External
	s.result = r
	s.mu.Unlock()
	if changed {
		s.spawn(s.announce)
	}
}

// announce emits NatTypeDetected for the current classification unless it
// was the last one announced, then ExternalAddressDiscovered if observers
// at two or more IPs agree on an external address not announced before
// (TypeNone and TypeEndpointIndependent; behind a symmetric NAT each
// destination sees another port, so there is no such address).
func (s *Service) announce() {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	r := s.NAT()
	if r.Type == TypeUnknown || (r.Type == s.announced.Type && r.External == s.announced.External) {
		return
	}
	s.announced = r
	ev := transport.Event{Kind: transport.EventNatTypeDetected, NAT: r.Type.String()}
	if r.External.IsValid() {
		ev.Addr = r.External.String()
	}
	s.Node.Notify(ev)
	if (r.Type == TypeNone || r.Type == TypeEndpointIndependent) && r.External.IsValid() &&
		!slices.Contains(s.externals, r.External) {
		if len(s.externals) >= maxExternals {
			s.externals = slices.Delete(s.externals, 0, 1)
		}
		s.externals = append(s.externals, r.External)
		s.Node.Notify(transport.Event{Kind: transport.EventExternalAddressDiscovered, Addr: r.External.String()})
	}
}

// maxExternals bounds the external addresses remembered as announced.
const maxExternals = 16

func (s *Service) scheduleUpgrade(peer identity.PeerID, delay time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if u := s.upgrades[peer]; u != nil {
		u.timer.Stop()
	}
	u := &upgrade{delay: delay}
	u.timer = s.clk.AfterFunc(delay, func() { s.spawn(func() { s.tryUpgrade(peer, u) }) })
	s.upgrades[peer] = u
}

// tryUpgrade makes one punch attempt for a relayed peer and reschedules
// itself with a doubled delay if it fails.
func (s *Service) tryUpgrade(peer identity.PeerID, u *upgrade) {
	s.mu.Lock()
	current := s.upgrades[peer] == u
	s.mu.Unlock()
	info, ok := s.Node.PeerInfo(peer)
	if !current || !ok || !info.Relayed {
		return
	}
	if _, _, err := s.punchOnce(s.ctx, peer); err == nil {
		s.count(func(st *Stats) { st.Upgrades++; st.PunchesOK++ })
		s.mu.Lock()
		if s.upgrades[peer] == u {
			delete(s.upgrades, peer)
		}
		s.mu.Unlock()
		return
	}
	s.scheduleUpgrade(peer, min(2*u.delay, s.cfg.UpgradeMax))
}

// ---- rate limits ----

// maxBuckets bounds a rate-limit table; full buckets are pruned first.
const maxBuckets = 4096

// allow takes one token from peer's bucket in m. s.mu must be held.
func (s *Service) allow(m map[identity.PeerID]*ratelimit.Bucket, peer identity.PeerID, now time.Time) bool {
	rate, burst := s.cfg.RatePerSecond, float64(s.cfg.RateBurst)
	b := m[peer]
	if b == nil {
		if len(m) >= maxBuckets {
			for k, v := range m {
				if v.Full(now, rate, burst) {
					delete(m, k)
				}
			}
			if len(m) >= maxBuckets {
				return false
			}
		}
		nb := ratelimit.New(now, burst)
		b = &nb
		m[peer] = b
	}
	return b.Take(now, 1, rate, burst)
}
