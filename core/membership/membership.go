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
//
// Files by concern: membership.go (the node, its API, the event loop and
// frame dispatch), hyparview.go (views, joins, shuffles, repair, idle
// sweep), swim.go (probes, suspicion, dissemination), lifeguard.go (local
// health), dial.go (which claimed addresses may be dialled), records.go
// (signed address records), messages.go (wire format), config.go
// (settings, events, statistics, errors).
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
	"github.com/saorsa-labs/x0x-go/core/internal/ratelimit"
	"github.com/saorsa-labs/x0x-go/core/link"
)

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
	reliedOn   map[identity.PeerID]bool // peers that told us they hold their connection to us (Config.Serves)
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
		reliedOn:   make(map[identity.PeerID]bool),
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
	if m.holds[peer] == 1 && m.conns[peer] != nil {
		m.send(peer, &Message{Kind: kindHold, Hold: true})
	}
}

// Release undoes one Hold; the connection is closed later if unused.
func (m *Membership) Release(peer identity.PeerID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.holds[peer] <= 1 {
		delete(m.holds, peer)
		if c := m.conns[peer]; c != nil {
			c.lastUsed = m.cfg.Clock.Now()
			m.send(peer, &Message{Kind: kindHold})
		}
		return
	}
	m.holds[peer]--
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

func (m *Membership) onPeerEvent(ev link.PeerEvent) {
	m.do(func() {
		if ev.Up {
			m.noteConn(ev.Peer, ev.Addr)
			if m.holds[ev.Peer] > 0 { // tell a (re)connected peer we rely on it
				m.send(ev.Peer, &Message{Kind: kindHold, Hold: true})
			}
			return
		}
		delete(m.conns, ev.Peer)
		delete(m.reliedOn, ev.Peer)
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
	case kindHold:
		// Only a node that serves keeps idle connections for the peers
		// relying on it; the set is bounded by the connections it has.
		if m.cfg.Serves && msg.Hold && m.conns[from] != nil {
			m.reliedOn[from] = true
		} else {
			delete(m.reliedOn, from)
		}
	}
}
