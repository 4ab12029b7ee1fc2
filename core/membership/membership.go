// Package membership maintains x0x's global overlay: HyParView partial views
// (a small symmetric active view of connected neighbours and a larger
// passive view of known nodes) with SWIM failure detection on the active
// view (direct and indirect probes, suspicion with a timeout, incarnation
// numbers so a live node can refute, membership changes flooded along the
// active view and piggybacked on probes) and Lifeguard's local health
// awareness (lifeguard.go), so that a starved node does not suspect its
// live peers.
//
// The protocol runs on a link.Network, a clock.Clock and an io.Reader
// for randomness, so the same code runs over QUIC and in core/sim. A
// peer's identity is always the authenticated connection a frame came from.
//
// Addresses other peers pass on (joiners, shuffle entries, probe targets,
// pub/sub seekers) are dialled only when the named node's signed address
// record vouches for them or this node saw the node there itself (see
// Records), within a claimed-dial budget, and not again soon after a dial
// of the address failed: a peer cannot turn this node into a packet
// cannon aimed at an address of its choosing.
//
// Membership also owns connection lifetimes: it keeps the connections of its
// active view, and other layers (pub/sub) Hold the connections they use so
// that membership does not close them. Connections nobody uses are closed
// after an idle grace period.
package membership

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/internal/defaults"
	"github.com/saorsa-labs/x0x-go/core/internal/ratelimit"
	"github.com/saorsa-labs/x0x-go/core/link"
)

// State is a node's SWIM state.
type State uint8

// SWIM states, in increasing precedence at equal incarnation.
const (
	StateAlive   State = 1
	StateSuspect State = 2
	StateDead    State = 3
)

// String returns "alive", "suspect" or "dead".
func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	case StateDead:
		return "dead"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Config holds the protocol parameters. Zero fields take the DESIGN.md
// defaults noted beside them.
type Config struct {
	ActiveMin       int           // active view target (8)
	ActiveMax       int           // active view bound (12)
	PassiveMax      int           // passive view bound (128)
	ARWL            int           // active random walk length for joins (6)
	PRWL            int           // passive random walk length (3)
	ShuffleInterval time.Duration // 30 s
	ShuffleActive   int           // active entries sent in a shuffle (3)
	ShufflePassive  int           // passive entries sent in a shuffle (4)
	// ProbeInterval is the SWIM protocol period (1 s) and AckTimeout the
	// direct probe timeout (500 ms); both are multiplied by LocalHealth+1
	// (see Stats.LocalHealth), so a node that misses its own deadlines
	// gives its peers longer to answer before it suspects them.
	ProbeInterval  time.Duration
	AckTimeout     time.Duration
	IndirectProbes int // helpers asked on a direct timeout (3)
	// SuspectTimeout (2 s) and SuspectMaxTimeout (4 s) bound the time from
	// suspicion to death (Lifeguard): a suspicion starts at the maximum
	// and shrinks logarithmically towards the minimum as other nodes
	// independently confirm it, reaching it at SuspectConfirmations (3)
	// confirmations, or fewer when the network is too small to have that
	// many accusers. The result is multiplied by LocalHealth+1. With 1 s
	// probes a dead peer is declared dead everywhere within 5 s on a quiet
	// network.
	SuspectTimeout       time.Duration
	SuspectMaxTimeout    time.Duration
	SuspectConfirmations int
	// MaxLocalHealth bounds the local health multiplier (8): a starved
	// node's timeouts grow at most MaxLocalHealth+1 times.
	MaxLocalHealth int
	// TimerSlack is how late a timer may fire before this node counts a
	// missed deadline (100 ms, times LocalHealth+1): the probe round it
	// belongs to raises no suspicion, and a suspicion that expires late is
	// looked at again after the frames that queued meanwhile.
	TimerSlack time.Duration
	// ReconnectInterval is how often a node retries one recently failed
	// peer, which re-merges the overlay after a partition heals (10 s).
	ReconnectInterval time.Duration
	// Retention is how long SWIM records and failed peers are remembered (5 min).
	Retention time.Duration
	// IdleGrace is how long an unused, unheld connection stays open (10 s).
	IdleGrace time.Duration
	// ClaimedDialRate and ClaimedDialBurst bound dials to addresses that
	// peers passed on (joiners, shuffle origins, probe targets, pub/sub
	// seekers): 2 per second, bursts of 16.
	ClaimedDialRate  float64
	ClaimedDialBurst int
	// FailedAddrHold is how long an address whose dial failed is not dialled
	// again on another peer's word (30 s).
	FailedAddrHold time.Duration
	// Clock drives all timers (required).
	Clock clock.Clock
	// Rand seeds the protocol's random choices (required).
	Rand io.Reader
	// Records signs this node's address record and checks others' (required:
	// NewMachineRecords on a real network, SimulatedRecords in simulations).
	Records Records
}

func (c Config) withDefaults() Config {
	defaults.Positive(&c.ActiveMin, 8)
	defaults.Positive(&c.ActiveMax, 12)
	if c.ActiveMax < c.ActiveMin {
		c.ActiveMax = c.ActiveMin
	}
	defaults.Positive(&c.PassiveMax, 128)
	defaults.Positive(&c.ARWL, 6)
	defaults.Positive(&c.PRWL, 3)
	defaults.Positive(&c.ShuffleActive, 3)
	defaults.Positive(&c.ShufflePassive, 4)
	defaults.Positive(&c.IndirectProbes, 3)
	defaults.Positive(&c.ShuffleInterval, 30*time.Second)
	defaults.Positive(&c.ProbeInterval, time.Second)
	defaults.Positive(&c.AckTimeout, 500*time.Millisecond)
	defaults.Positive(&c.SuspectTimeout, 2*time.Second)
	defaults.Positive(&c.SuspectMaxTimeout, 4*time.Second)
	c.SuspectMaxTimeout = max(c.SuspectMaxTimeout, c.SuspectTimeout)
	defaults.Positive(&c.SuspectConfirmations, 3)
	c.SuspectConfirmations = min(c.SuspectConfirmations, maxConfirmations)
	defaults.Positive(&c.MaxLocalHealth, 8)
	defaults.Positive(&c.TimerSlack, c.ProbeInterval/10)
	defaults.Positive(&c.ReconnectInterval, 10*time.Second)
	defaults.Positive(&c.Retention, 5*time.Minute)
	defaults.Positive(&c.IdleGrace, 10*time.Second)
	defaults.Positive(&c.ClaimedDialRate, 2)
	defaults.Positive(&c.ClaimedDialBurst, 16)
	defaults.Positive(&c.FailedAddrHold, 30*time.Second)
	return c
}

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// NeighborUp: the peer joined this node's active view.
	NeighborUp EventKind = iota + 1
	// NeighborDown: the peer left this node's active view.
	NeighborDown
	// MemberSuspect: SWIM suspects the peer.
	MemberSuspect
	// MemberDead: SWIM declared the peer dead.
	MemberDead
	// MemberAlive: the peer refuted a suspicion or came back.
	MemberAlive
)

// Event is a membership change delivered to Watch listeners.
type Event struct {
	Kind EventKind
	Peer NodeDesc
}

// Stats counts protocol activity and everything dropped.
type Stats struct {
	// Received and Sent count membership frames.
	Received, Sent      uint64
	DecodeErrors        uint64 // frames that failed to decode (dropped)
	SendErrors          uint64 // Send returned an error (frame dropped)
	DialFailures        uint64
	Suspicions, Deaths  uint64 // declared by this node (Suspicions: its accusations, new or confirming another's)
	Refutations         uint64 // times this node refuted a suspicion of itself
	ShufflesSent        uint64
	NeighborRejected    uint64
	UpdatesApplied      uint64
	IndirectProbesAsked uint64
	// ForgedClaims counts SWIM updates dropped as impossible: a claim about
	// this node above its own incarnation, or about another node too far
	// above the incarnation known for it.
	ForgedClaims uint64
	// Unvouched counts node descriptors dropped because neither a signed
	// record nor an authenticated connection vouched for the address.
	Unvouched uint64
	// DialsRefused counts dials to passed-on addresses refused by the claimed
	// dial budget or because the address failed recently.
	DialsRefused uint64
	// LocalHealth is the Lifeguard local health multiplier, 0 (healthy) to
	// Config.MaxLocalHealth: +1 for each probe round that failed without
	// the helpers' NACKs explaining it, each missed deadline and each
	// refutation of a suspicion of this node; -1 for each clean round.
	// Probe and suspicion timeouts are multiplied by LocalHealth+1.
	LocalHealth int
	// MissedDeadlines counts timers that fired more than Config.TimerSlack
	// late: this node was not running when it should have been.
	MissedDeadlines uint64
	// UnobservedRounds counts probe rounds whose failures were ignored:
	// their timers ran late, or nobody answered anything (no ACK, no NACK),
	// so the period was not really observed.
	UnobservedRounds uint64
	// MissedNacks counts indirect probe helpers that sent neither an ACK
	// nor a NACK in time.
	MissedNacks uint64
	// Confirmations counts other nodes' independent suspicions that
	// shortened a suspicion timeout here.
	Confirmations uint64
}

// ErrNoBootstrap is returned by Join when no bootstrap peer could be reached.
var ErrNoBootstrap = errors.New("membership: no bootstrap peer reachable")

// ErrClosed is returned by calls on a closed Membership.
var ErrClosed = errors.New("membership: closed")

// Errors of dials to addresses other peers passed on (Dial and the
// protocol's own dials).
var (
	// ErrUnvouched: no signed record or authenticated connection vouches
	// for the address (it wraps the record's ErrBadRecord detail).
	ErrUnvouched = errors.New("membership: address not vouched for")
	// ErrDialRefused: the claimed-dial budget is spent or the address
	// failed within Config.FailedAddrHold.
	ErrDialRefused = errors.New("membership: dial refused (budget spent or address failed recently)")
)

// maxFailedAddrs bounds the memory of recently failed addresses.
const maxFailedAddrs = 1024

type member struct {
	desc    NodeDesc
	state   State
	inc     uint64
	updated time.Time
	told    time.Time // last time we told the node itself about this record
	suspect clock.Timer
	// While suspected: when, the first accuser then the confirming ones
	// (at most expected+1), and how many confirmations bring the timeout
	// to its minimum.
	suspectedAt time.Time
	accusers    []identity.PeerID
	expected    int
}

type connInfo struct {
	addr      string    // observed on the authenticated connection
	vouched   *NodeDesc // the peer's own signed record, if it sent one
	lastUsed  time.Time
	lastHeard time.Time // last membership frame received from the peer
}

type probe struct {
	target  identity.PeerID
	acked   bool
	started time.Time
	asked   int               // indirect probe helpers asked
	waiting []identity.PeerID // helpers that have sent neither ACK nor NACK
}

// probeRound is one protocol period: the probes it sent, and what this node
// observed of it.
type probeRound struct {
	seqs     []uint64
	ackTimer clock.Timer
	late     bool // a timer of the round fired late: the period was not observed
	answers  int  // ACKs and NACKs received for the round's probes
}

type relay struct {
	origin identity.PeerID
	seq    uint64
	nacked bool
}

type gone struct {
	desc NodeDesc
	at   time.Time
}

// Membership runs HyParView + SWIM for one node. Its methods are safe for
// concurrent use.
type Membership struct {
	net  link.Network
	cfg  Config
	self NodeDesc

	mu         sync.Mutex
	closed     bool
	rng        *rand.Rand
	active     []NodeDesc
	passive    []NodeDesc
	members    map[identity.PeerID]*member
	conns      map[identity.PeerID]*connInfo
	holds      map[identity.PeerID]int
	graveyard  []gone
	inc        uint64
	refutedAt  time.Time
	refutedInc uint64
	seq        uint64
	probes     map[uint64]*probe
	relays     map[uint64]relay
	pendingNb  map[identity.PeerID]time.Time
	dialBudget ratelimit.Bucket     // dials of passed-on addresses
	failed     map[string]time.Time // addresses whose dial failed, when
	recent     []Update             // updates still being piggybacked
	recentTx   []int
	lhm        int         // Lifeguard local health multiplier (Stats.LocalHealth)
	round      *probeRound // the probe round in progress
	probeTimer clock.Timer // the next probe round
	probeDue   time.Time   // when probeTimer should fire
	timers     []clock.Timer
	watchers   []func(Event)
	events     []Event
	stats      Stats

	ctx    context.Context // ends at Close: cancels this node's dials
	cancel context.CancelFunc
}

// New creates the membership layer for net and registers its handlers. It
// starts timers at once; call Join to enter the overlay and Close to stop.
func New(net link.Network, cfg Config) (*Membership, error) {
	if net == nil || cfg.Clock == nil || cfg.Rand == nil || cfg.Records == nil {
		return nil, errors.New("membership: New needs a network, a clock, a random source and address records")
	}
	cfg = cfg.withDefaults()
	var seed [32]byte
	if _, err := io.ReadFull(cfg.Rand, seed[:]); err != nil {
		return nil, fmt.Errorf("membership: reading seed: %w", err)
	}
	self := NodeDesc{ID: net.LocalID(), Addr: net.LocalAddr()}
	rec, err := cfg.Records.Sign(self.Addr)
	if err != nil {
		return nil, fmt.Errorf("membership: signing the address record: %w", err)
	}
	self.Rec = rec
	ctx, cancel := context.WithCancel(context.Background())
	m := &Membership{
		net:        net,
		cfg:        cfg,
		self:       self,
		rng:        rand.New(rand.NewChaCha8(seed)),
		members:    make(map[identity.PeerID]*member),
		conns:      make(map[identity.PeerID]*connInfo),
		holds:      make(map[identity.PeerID]int),
		probes:     make(map[uint64]*probe),
		relays:     make(map[uint64]relay),
		pendingNb:  make(map[identity.PeerID]time.Time),
		failed:     make(map[string]time.Time),
		dialBudget: ratelimit.New(cfg.Clock.Now(), float64(cfg.ClaimedDialBurst)),
		inc:        uint64(cfg.Clock.Now().UnixMilli()),
		ctx:        ctx,
		cancel:     cancel,
	}
	net.WatchPeers(m.onPeerEvent)
	net.Handle(link.ProtoMembership, m.onFrame)
	m.mu.Lock()
	// Spread the periodic work of different nodes over the period.
	m.scheduleProbe(m.jitter(cfg.ProbeInterval))
	m.every(cfg.ShuffleInterval, m.jitter(cfg.ShuffleInterval), m.shuffleTick)
	m.every(cfg.ReconnectInterval, m.jitter(cfg.ReconnectInterval), m.reconnectTick)
	m.mu.Unlock()
	return m, nil
}

// Self returns this node's descriptor.
func (m *Membership) Self() NodeDesc { return m.self }

// Watch adds a listener for membership events. Listeners run after the
// membership lock is released, on the goroutine that caused the change; they
// must not block.
func (m *Membership) Watch(f func(Event)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.watchers = append(m.watchers, f)
}

// Join enters the overlay through the first bootstrap peer that accepts a
// connection: it connects and sends JOIN. Over a real transport it blocks
// while connecting. It returns ErrNoBootstrap (wrapping the last error) if
// none could be reached.
func (m *Membership) Join(ctx context.Context, bootstrap []NodeDesc) error {
	var last error = errors.New("empty bootstrap list")
	for _, b := range bootstrap {
		if b.ID == m.self.ID {
			continue
		}
		if err := m.net.Connect(ctx, b.ID, b.Addr); err != nil {
			last = err
			continue
		}
		m.do(func() {
			m.noteConn(b.ID, b.Addr)
			m.addActive(b)
			self := m.self
			m.send(b.ID, &Message{Kind: kindJoin, Node: &self})
		})
		return nil
	}
	return fmt.Errorf("%w: %v", ErrNoBootstrap, last)
}

// Active returns a copy of the active view.
func (m *Membership) Active() []NodeDesc {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.active)
}

// Passive returns a copy of the passive view.
func (m *Membership) Passive() []NodeDesc {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.passive)
}

// MemberState returns what SWIM believes about id (ok false if nothing).
func (m *Membership) MemberState(id identity.PeerID) (s State, inc uint64, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id == m.self.ID {
		return StateAlive, m.inc, true
	}
	if mb := m.members[id]; mb != nil {
		return mb.state, mb.inc, true
	}
	return 0, 0, false
}

// Stats returns a copy of the counters.
func (m *Membership) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.LocalHealth = m.lhm
	return s
}

// Protected reports whether this node relies on its connection to peer:
// an active-view neighbour, a peer asked to become one, or a peer another
// layer holds. The agent's connection eviction policy spares these.
func (m *Membership) Protected(peer identity.PeerID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, pending := m.pendingNb[peer]
	return pending || m.holds[peer] > 0 || indexOf(m.active, peer) >= 0
}

// Hold keeps the connection to peer open even when it is not in the active
// view, until a matching Release. Holds are counted.
func (m *Membership) Hold(peer identity.PeerID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.holds[peer]++
}

// Release undoes one Hold; the connection is closed later if unused.
func (m *Membership) Release(peer identity.PeerID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.holds[peer] <= 1 {
		delete(m.holds, peer)
		if c := m.conns[peer]; c != nil {
			c.lastUsed = m.cfg.Clock.Now()
		}
		return
	}
	m.holds[peer]--
}

// Dial connects to peer for another layer through the network's
// asynchronous Dial; done is called on a network goroutine without the
// membership lock held, with nil on success.
func (m *Membership) Dial(peer NodeDesc, done func(error)) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		done(ErrClosed)
		return
	}
	if err := m.mayDialLocked(peer); err != nil {
		m.mu.Unlock()
		done(err)
		return
	}
	m.mu.Unlock()
	m.net.Dial(m.ctx, peer.ID, peer.Addr, func(err error) {
		m.do(func() { m.dialled(peer, err) })
		done(err)
	})
}

// Close stops timers and goroutines and closes the active connections.
func (m *Membership) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	for _, t := range m.timers {
		t.Stop()
	}
	m.probeTimer.Stop()
	if m.round != nil && m.round.ackTimer != nil {
		m.round.ackTimer.Stop()
	}
	for _, mb := range m.members {
		if mb.suspect != nil {
			mb.suspect.Stop()
		}
	}
	for _, a := range m.active {
		m.send(a.ID, &Message{Kind: kindDisconnect})
	}
	m.cancel()
	m.mu.Unlock()
}

// do runs f under the lock, then delivers the events f produced.
func (m *Membership) do(f func()) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	f()
	evs := m.events
	m.events = nil
	ws := m.watchers
	m.mu.Unlock()
	for _, e := range evs {
		for _, w := range ws {
			w(e)
		}
	}
}

func (m *Membership) emit(k EventKind, p NodeDesc) { m.events = append(m.events, Event{k, p}) }

func (m *Membership) jitter(d time.Duration) time.Duration {
	return time.Duration(m.rng.Int64N(int64(d)) + 1)
}

// every runs f (under the lock) after first and then every period.
func (m *Membership) every(period, first time.Duration, f func()) {
	m.timers = append(m.timers, clock.Every(m.cfg.Clock, first, period, m.do, f))
}

// after runs f under the lock after d; the timer is not tracked by Close,
// so f must tolerate running after Close (do() skips it when closed).
func (m *Membership) after(d time.Duration, f func()) clock.Timer {
	return m.cfg.Clock.AfterFunc(d, func() { m.do(f) })
}

func (m *Membership) send(to identity.PeerID, msg *Message) {
	if msg.Kind == kindPing || msg.Kind == kindAck || msg.Kind == kindPingReq {
		msg.Updates = m.piggyback()
	}
	b, err := Encode(msg)
	if err != nil {
		m.stats.SendErrors++
		return
	}
	if err := m.net.Send(to, link.ProtoMembership, link.PriorityControl, b); err != nil {
		m.stats.SendErrors++
		return
	}
	m.stats.Sent++
	// An answer to someone else's probe is not a use of the connection: a
	// stranger pinging us must not keep its slot alive (sweep).
	if c := m.conns[to]; c != nil && msg.Kind != kindAck {
		c.lastUsed = m.cfg.Clock.Now()
	}
}

// dial connects to p through the network's asynchronous Dial and then
// runs then(err) under the lock.
func (m *Membership) dial(p NodeDesc, then func(error)) {
	if _, ok := m.conns[p.ID]; ok {
		then(nil)
		return
	}
	m.net.Dial(m.ctx, p.ID, p.Addr, func(err error) {
		m.do(func() {
			m.dialled(p, err)
			then(err)
		})
	})
}

// dialClaimed is dial for an address another peer passed on: it fails at
// once with ErrUnvouched or ErrDialRefused (see mayDialLocked).
func (m *Membership) dialClaimed(p NodeDesc, then func(error)) {
	if err := m.mayDialLocked(p); err != nil {
		then(err)
		return
	}
	m.dial(p, then)
}

// mayDialLocked decides whether a passed-on descriptor may be dialled: a
// connected peer always (no packet goes out); otherwise the address must
// be vouched for and pass budgetLocked.
func (m *Membership) mayDialLocked(p NodeDesc) error {
	if _, ok := m.conns[p.ID]; ok {
		return nil
	}
	if err := m.vouch(p); err != nil {
		return err
	}
	return m.budgetLocked(p)
}

// budgetLocked refuses a dial of p's address if it failed within
// FailedAddrHold or the claimed-dial budget has no token left. Addresses
// in the views were vouched for when they entered; their dials still
// spend the budget, so a view filled with throwaway records of one victim
// address cannot make this node spray it.
func (m *Membership) budgetLocked(p NodeDesc) error {
	if _, ok := m.conns[p.ID]; ok {
		return nil
	}
	now := m.cfg.Clock.Now()
	if at, ok := m.failed[p.Addr]; ok && now.Sub(at) < m.cfg.FailedAddrHold {
		m.stats.DialsRefused++
		return fmt.Errorf("%w: %s failed %s ago", ErrDialRefused, p.Addr, now.Sub(at).Round(time.Millisecond))
	}
	if !m.dialBudget.Take(now, 1, m.cfg.ClaimedDialRate, float64(m.cfg.ClaimedDialBurst)) {
		m.stats.DialsRefused++
		return fmt.Errorf("%w: over %g dials/s", ErrDialRefused, m.cfg.ClaimedDialRate)
	}
	return nil
}

// vouch returns nil if p's address was observed on an authenticated
// connection to p or its signed record vouches for it; it counts and wraps
// ErrUnvouched otherwise.
func (m *Membership) vouch(p NodeDesc) error {
	if p.Addr == "" {
		m.stats.Unvouched++
		return fmt.Errorf("%w: no address", ErrUnvouched)
	}
	if c := m.conns[p.ID]; c != nil && c.addr == p.Addr {
		return nil
	}
	if err := m.cfg.Records.Check(p.ID, p.Addr, p.Rec); err != nil {
		m.stats.Unvouched++
		return fmt.Errorf("%w: %w", ErrUnvouched, err)
	}
	return nil
}

// dialled records the outcome of a dial of p.
func (m *Membership) dialled(p NodeDesc, err error) {
	if err == nil {
		m.noteConn(p.ID, p.Addr)
		delete(m.failed, p.Addr)
		return
	}
	m.stats.DialFailures++
	if len(m.failed) >= maxFailedAddrs {
		now := m.cfg.Clock.Now()
		for a, at := range m.failed {
			if now.Sub(at) >= m.cfg.FailedAddrHold {
				delete(m.failed, a)
			}
		}
		for a := range m.failed { // all recent: forget an arbitrary one
			if len(m.failed) < maxFailedAddrs {
				break
			}
			delete(m.failed, a)
		}
	}
	m.failed[p.Addr] = m.cfg.Clock.Now()
}

// learnRecord keeps the record a peer sent about itself (JOIN, NEIGHBOR,
// NEIGHBORREPLY, a SHUFFLE it started), so that descriptors of it passed to
// others carry a record they can check.
func (m *Membership) learnRecord(from identity.PeerID, d *NodeDesc) {
	c := m.conns[from]
	if d == nil || d.ID != from || c == nil {
		return
	}
	if m.cfg.Records.Check(d.ID, d.Addr, d.Rec) != nil {
		m.stats.Unvouched++
		return
	}
	v := *d
	c.vouched = &v
}

func (m *Membership) noteConn(id identity.PeerID, addr string) {
	c := m.conns[id]
	if c == nil {
		c = &connInfo{}
		m.conns[id] = c
	}
	if addr != "" {
		c.addr = addr
	}
	c.lastUsed = m.cfg.Clock.Now()
}

func (m *Membership) onPeerEvent(ev link.PeerEvent) {
	m.do(func() {
		if ev.Up {
			m.noteConn(ev.Peer, ev.Addr)
			return
		}
		delete(m.conns, ev.Peer)
		delete(m.pendingNb, ev.Peer)
		if i := indexOf(m.active, ev.Peer); i >= 0 {
			p := m.active[i]
			m.removeActive(i)
			m.bury(p)
			m.repair()
		}
	})
}

func (m *Membership) onFrame(from identity.PeerID, b []byte) {
	msg, err := Decode(b)
	m.do(func() {
		if err != nil {
			// Honest peers never send undecodable frames: drop the peer.
			m.stats.DecodeErrors++
			m.net.Disconnect(from)
			return
		}
		m.stats.Received++
		// Hearing from a peer does not renew its connection (only this
		// node's own use does), or anyone could hold a slot by talking.
		c := m.conns[from]
		if c == nil {
			c = &connInfo{lastUsed: m.cfg.Clock.Now()}
			m.conns[from] = c
		}
		c.lastHeard = m.cfg.Clock.Now()
		m.handle(from, msg)
	})
}

func (m *Membership) descOf(id identity.PeerID) NodeDesc {
	if c := m.conns[id]; c != nil {
		if c.vouched != nil {
			return *c.vouched
		}
		return NodeDesc{ID: id, Addr: c.addr}
	}
	return NodeDesc{ID: id}
}

func (m *Membership) handle(from identity.PeerID, msg *Message) {
	for _, u := range msg.Updates {
		m.apply(u, from)
	}
	switch msg.Kind {
	case kindJoin, kindNeighbor, kindNeighborReply, kindShuffle:
		m.learnRecord(from, msg.Node)
	}
	sender := m.descOf(from)
	if mb := m.members[from]; mb != nil && mb.state != StateAlive && msg.Kind != kindUpdate {
		// A direct frame from a node we suspect or think dead: tell it what
		// we believe, so that it refutes with a higher incarnation (which
		// then spreads). At most once per protocol period per peer.
		now := m.cfg.Clock.Now()
		if now.Sub(mb.told) >= m.cfg.ProbeInterval {
			mb.told = now
			m.send(from, &Message{Kind: kindUpdate, Updates: []Update{{Node: mb.desc, State: mb.state, Inc: mb.inc}}})
		}
	}
	switch msg.Kind {
	case kindJoin:
		m.addActive(sender)
		// Give the joiner a head start on its passive view.
		seedNodes := append(m.sample(m.active, m.cfg.ShuffleActive, from), m.sample(m.passive, m.cfg.ShufflePassive)...)
		m.send(from, &Message{Kind: kindShuffleReply, Nodes: seedNodes})
		if sender.Rec == nil {
			return // nobody else could check the joiner's address
		}
		for _, a := range m.active {
			if a.ID != from {
				m.send(a.ID, &Message{Kind: kindForwardJoin, TTL: uint8(m.cfg.ARWL), Node: &sender})
			}
		}
	case kindForwardJoin:
		n := *msg.Node
		if n.ID == m.self.ID {
			return
		}
		if m.vouch(n) != nil {
			return // a walk for an unverifiable address goes no further
		}
		ttl := int(msg.TTL)
		if ttl == 0 || len(m.active) <= 1 {
			m.connectActive(n, true)
			return
		}
		if ttl == m.cfg.PRWL {
			m.addPassive(n)
		}
		if next, ok := m.randomActive(from, n.ID); ok {
			m.send(next.ID, &Message{Kind: kindForwardJoin, TTL: uint8(ttl - 1), Node: &n})
		} else {
			m.connectActive(n, true)
		}
	case kindNeighbor:
		accept := msg.High || len(m.active) < m.cfg.ActiveMax
		if indexOf(m.active, from) >= 0 {
			accept = true
		}
		if accept {
			m.addActive(sender)
		} else {
			m.stats.NeighborRejected++
			m.addPassive(sender)
		}
		self := m.self
		m.send(from, &Message{Kind: kindNeighborReply, Accept: accept, Node: &self})
	case kindNeighborReply:
		if _, ok := m.pendingNb[from]; !ok {
			return
		}
		delete(m.pendingNb, from)
		if msg.Accept {
			m.addActive(sender)
		} else {
			m.addPassive(sender)
		}
	case kindDisconnect:
		if i := indexOf(m.active, from); i >= 0 {
			m.removeActive(i)
			m.addPassive(sender)
			m.repair()
		}
	case kindShuffle:
		m.onShuffle(from, msg)
	case kindShuffleReply:
		m.admitNodes(msg.Nodes)
	case kindPing:
		m.send(from, &Message{Kind: kindAck, Seq: msg.Seq})
	case kindAck:
		if p := m.probes[msg.Seq]; p != nil {
			p.acked = true
			m.noteAnswer()
		}
		if r, ok := m.relays[msg.Seq]; ok {
			delete(m.relays, msg.Seq)
			m.send(r.origin, &Message{Kind: kindAck, Seq: r.seq})
		}
	case kindPingReq:
		m.relayProbe(from, msg)
	case kindNack:
		if p := m.probes[msg.Seq]; p != nil {
			if i := slices.Index(p.waiting, from); i >= 0 {
				p.waiting = slices.Delete(p.waiting, i, i+1)
				m.noteAnswer()
			}
		}
	case kindUpdate:
		// updates applied above
	}
}

// ---- HyParView views ----

func indexOf(v []NodeDesc, id identity.PeerID) int {
	for i := range v {
		if v[i].ID == id {
			return i
		}
	}
	return -1
}

func (m *Membership) randomActive(not ...identity.PeerID) (NodeDesc, bool) {
	cands := make([]NodeDesc, 0, len(m.active))
	for _, a := range m.active {
		if !slices.Contains(not, a.ID) {
			cands = append(cands, a)
		}
	}
	if len(cands) == 0 {
		return NodeDesc{}, false
	}
	return cands[m.rng.IntN(len(cands))], true
}

func (m *Membership) addActive(p NodeDesc) {
	if p.ID == m.self.ID {
		return
	}
	if i := indexOf(m.active, p.ID); i >= 0 {
		if p.Addr != "" {
			m.active[i].Addr = p.Addr
		}
		return
	}
	if p.Addr == "" {
		p = m.descOf(p.ID)
	}
	if i := indexOf(m.passive, p.ID); i >= 0 {
		m.passive = slices.Delete(m.passive, i, i+1)
	}
	for len(m.active) >= m.cfg.ActiveMax {
		i := m.rng.IntN(len(m.active))
		victim := m.active[i]
		m.send(victim.ID, &Message{Kind: kindDisconnect})
		m.removeActive(i)
		m.addPassive(victim)
	}
	m.active = append(m.active, p)
	m.unbury(p.ID)
	m.emit(NeighborUp, p)
}

// admitNodes adds the vouched-for descriptors of a SHUFFLE or
// SHUFFLEREPLY to the passive view. Checking a record costs a signature
// verification, so at most as many as an honest shuffle carries are
// looked at: a peer with many throwaway keys cannot make one frame cost
// 64 verifications.
func (m *Membership) admitNodes(nodes []NodeDesc) {
	limit := m.cfg.ShuffleActive + m.cfg.ShufflePassive + 1
	for _, n := range nodes[:min(len(nodes), limit)] {
		if m.vouch(n) == nil {
			m.addPassive(n)
		}
	}
}

// unbury forgets a failed peer that is back.
func (m *Membership) unbury(id identity.PeerID) {
	if j := slices.IndexFunc(m.graveyard, func(x gone) bool { return x.desc.ID == id }); j >= 0 {
		m.graveyard = slices.Delete(m.graveyard, j, j+1)
	}
}

func (m *Membership) removeActive(i int) {
	p := m.active[i]
	m.active = slices.Delete(m.active, i, i+1)
	if c := m.conns[p.ID]; c != nil {
		c.lastUsed = m.cfg.Clock.Now()
	}
	m.emit(NeighborDown, p)
}

func (m *Membership) addPassive(p NodeDesc) {
	if p.ID == m.self.ID || p.Addr == "" || indexOf(m.active, p.ID) >= 0 {
		return
	}
	if mb := m.members[p.ID]; mb != nil && mb.state == StateDead {
		return
	}
	if i := indexOf(m.passive, p.ID); i >= 0 {
		m.passive[i].Addr = p.Addr
		return
	}
	if len(m.passive) >= m.cfg.PassiveMax {
		i := m.rng.IntN(len(m.passive))
		m.passive = slices.Delete(m.passive, i, i+1)
	}
	m.passive = append(m.passive, p)
}

// bury remembers a failed peer so that it can be retried later (partition
// healing) and drops it from the passive view.
func (m *Membership) bury(p NodeDesc) {
	if i := indexOf(m.passive, p.ID); i >= 0 {
		m.passive = slices.Delete(m.passive, i, i+1)
	}
	if p.Addr == "" {
		return
	}
	for _, g := range m.graveyard {
		if g.desc.ID == p.ID {
			return
		}
	}
	if len(m.graveyard) >= m.cfg.PassiveMax {
		m.graveyard = m.graveyard[1:]
	}
	m.graveyard = append(m.graveyard, gone{p, m.cfg.Clock.Now()})
}

// connectActive dials p and makes it an active neighbour (NEIGHBOR with the
// given priority; high means p must accept).
func (m *Membership) connectActive(p NodeDesc, high bool) {
	if p.ID == m.self.ID || indexOf(m.active, p.ID) >= 0 {
		return
	}
	if _, busy := m.pendingNb[p.ID]; busy {
		return
	}
	if err := m.budgetLocked(p); err != nil {
		return
	}
	m.pendingNb[p.ID] = m.cfg.Clock.Now()
	self := m.self
	m.dial(p, func(err error) {
		if err != nil {
			delete(m.pendingNb, p.ID)
			m.bury(p)
			return
		}
		if high {
			delete(m.pendingNb, p.ID)
			m.addActive(p)
			m.send(p.ID, &Message{Kind: kindNeighbor, High: true, Node: &self})
			return
		}
		m.send(p.ID, &Message{Kind: kindNeighbor, Node: &self})
	})
}

// repair promotes a passive peer when the active view is below target.
func (m *Membership) repair() {
	now := m.cfg.Clock.Now()
	for id, t := range m.pendingNb {
		if now.Sub(t) > 2*m.cfg.ProbeInterval {
			delete(m.pendingNb, id)
		}
	}
	if len(m.active)+len(m.pendingNb) >= m.cfg.ActiveMin || len(m.passive) == 0 {
		return
	}
	p := m.passive[m.rng.IntN(len(m.passive))]
	m.connectActive(p, len(m.active) == 0)
}

func (m *Membership) shuffleTick() {
	if len(m.active) == 0 {
		return
	}
	to, _ := m.randomActive()
	// The origin (Node) joins the receiver's passive view with the others.
	nodes := m.sample(m.active, m.cfg.ShuffleActive, to.ID)
	nodes = append(nodes, m.sample(m.passive, m.cfg.ShufflePassive)...)
	self := m.self
	m.stats.ShufflesSent++
	m.send(to.ID, &Message{Kind: kindShuffle, TTL: uint8(m.cfg.PRWL), Node: &self, Nodes: nodes})
}

func (m *Membership) sample(v []NodeDesc, k int, not ...identity.PeerID) []NodeDesc {
	c := make([]NodeDesc, 0, len(v))
	for _, x := range v {
		if !slices.Contains(not, x.ID) {
			c = append(c, x)
		}
	}
	m.rng.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
	if len(c) > k {
		c = c[:k]
	}
	return c
}

func (m *Membership) onShuffle(from identity.PeerID, msg *Message) {
	origin := *msg.Node
	if origin.ID == m.self.ID {
		return
	}
	if m.vouch(origin) != nil {
		return // nobody could answer an origin whose address is unverifiable
	}
	if msg.TTL > 1 && len(m.active) > 1 {
		if next, ok := m.randomActive(from, origin.ID); ok {
			msg.TTL--
			msg.Updates = nil
			m.send(next.ID, msg)
			return
		}
	}
	// Reply with as many nodes as we got, from the passive view first, topped
	// up from the active view (small networks have small passive views).
	reply := m.sample(m.passive, len(msg.Nodes), origin.ID)
	if len(reply) < len(msg.Nodes) {
		reply = append(reply, m.sample(m.active, len(msg.Nodes)-len(reply), origin.ID)...)
	}
	m.addPassive(origin)
	m.admitNodes(msg.Nodes)
	m.dialClaimed(origin, func(err error) {
		if err == nil {
			m.send(origin.ID, &Message{Kind: kindShuffleReply, Nodes: reply})
		}
	})
}

func (m *Membership) reconnectTick() {
	m.sweep()
	now := m.cfg.Clock.Now()
	keep := m.graveyard[:0]
	for _, g := range m.graveyard {
		if now.Sub(g.at) < m.cfg.Retention {
			keep = append(keep, g)
		}
	}
	m.graveyard = keep
	if len(m.graveyard) == 0 {
		return
	}
	i := m.rng.IntN(len(m.graveyard))
	g := m.graveyard[i]
	m.dial(g.desc, func(err error) {
		if err != nil {
			return
		}
		// Only a frame from the peer itself (see handle) revives a dead
		// record, so addPassive may refuse it for now. The peer leaves the
		// graveyard only once it is back in a view: a node whose NEIGHBOR
		// exchange is lost (a reset) must be able to try again, or a node
		// with nobody else would stay isolated for good.
		m.addPassive(g.desc)
		if indexOf(m.passive, g.desc.ID) >= 0 {
			m.unbury(g.desc.ID)
		}
		if len(m.active) < m.cfg.ActiveMax && indexOf(m.active, g.desc.ID) < 0 {
			m.pendingNb[g.desc.ID] = now
			self := m.self
			m.send(g.desc.ID, &Message{Kind: kindNeighbor, Node: &self})
		}
	})
}

// sweep closes connections that nobody uses and forgets old SWIM records.
func (m *Membership) sweep() {
	now := m.cfg.Clock.Now()
	ids := make([]identity.PeerID, 0, len(m.conns))
	for id := range m.conns {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b identity.PeerID) int { return compare(a, b) })
	for _, id := range ids {
		c := m.conns[id]
		if indexOf(m.active, id) >= 0 || m.holds[id] > 0 {
			continue
		}
		if _, p := m.pendingNb[id]; p {
			continue
		}
		if now.Sub(c.lastUsed) > m.cfg.IdleGrace {
			delete(m.conns, id)
			m.net.Disconnect(id)
		}
	}
	for id, mb := range m.members {
		if mb.suspect == nil && now.Sub(mb.updated) > m.cfg.Retention && indexOf(m.active, id) < 0 {
			delete(m.members, id)
		}
	}
}

func compare(a, b identity.PeerID) int {
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
