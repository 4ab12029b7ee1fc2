// Package pubsub implements x0x topics: a Plumtree broadcast tree per topic
// among that topic's subscribers (eager push along the tree, batched lazy
// IHAVE announcements, GRAFT on timeout, PRUNE on duplicates), origin-signed
// messages with BLAKE3 message IDs, a 5-minute dedup cache, a per-origin
// replay window and a clock-skew bound, and anti-entropy every 30 s that
// reconciles recent message IDs with a topic neighbour through an IBLT and
// pulls what is missing.
//
// A node carries traffic only for topics it subscribes to. Topic neighbours
// are found among the membership layer's active neighbours (which announce
// their subscriptions) and, for sparse topics, by a bounded random walk
// over the global overlay. A node can publish to a topic it does not
// subscribe to: the message is handed to a subscribed neighbour or walks
// to a subscriber.
//
// Signature checking is behind the Verifier interface: production code uses
// MLDSAVerifier (ML-DSA-65 keys from a KeyResolver, cached); large
// simulations may inject a cheap stand-in.
package pubsub

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/saorsa-labs/x0x-go/core/internal/defaults"
	"github.com/saorsa-labs/x0x-go/core/link"

	"lukechampine.com/blake3"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/internal/ratelimit"
	"github.com/saorsa-labs/x0x-go/core/membership"
)

// Config holds the pub/sub parameters; zero fields take the defaults noted.
type Config struct {
	Clock    clock.Clock // required
	Rand     io.Reader   // required
	Signer   Signer      // required to Publish
	Verifier Verifier    // required

	TopicMinPeers int           // look for more topic neighbours below this (3)
	TopicMaxPeers int           // accept no more topic neighbours than this (12)
	IHaveInterval time.Duration // lazy announcement batching (150 ms)
	GraftTimeout  time.Duration // wait for the eager copy after an IHAVE (250 ms)
	GraftRetry    time.Duration // then try the next announcer after (200 ms)
	TreeInterval  time.Duration // the tree root's announcement period (1 s; see tree.go)
	DedupTTL      time.Duration // 5 min; also the oldest accepted message age
	MaxSkew       time.Duration // how far in the future a timestamp may be (30 s)
	AEInterval    time.Duration // anti-entropy period (30 s)
	AEWindow      time.Duration // age of messages reconciled (4 min)
	WalkTTL       int           // hops of a subscriber-finding walk (10)
	StoreMax      int           // messages kept per topic for GRAFT / anti-entropy (8192)
	DedupMax      int           // dedup cache bound (1<<20)
	ReplayBytes   int           // byte budget of the per-origin replay windows (64 MiB), LRU-evicted
	SubBuffer     int           // subscription channel capacity (1024)
	StoreBytes    int           // payload bytes kept per topic for GRAFT / anti-entropy (64 MiB), oldest evicted first

	// Flood control (see flood.go): frames and bytes per connected peer,
	// messages per origin. Frames or messages over a rate are dropped and
	// counted (Stats.RateLimited).
	PeerFrameRate  float64 // frames per second per peer (2,000)
	PeerFrameBurst int     // (4,000)
	PeerByteRate   float64 // bytes per second per peer (16 MiB)
	PeerByteBurst  int     // (64 MiB)
	OriginRate     float64 // messages per second per origin (1,000)
	OriginBurst    int     // (2,000)
}

func (c Config) withDefaults() Config {
	defaults.Positive(&c.TopicMinPeers, 3)
	defaults.Positive(&c.TopicMaxPeers, 12)
	defaults.Positive(&c.IHaveInterval, 150*time.Millisecond)
	defaults.Positive(&c.GraftTimeout, 250*time.Millisecond)
	defaults.Positive(&c.GraftRetry, 200*time.Millisecond)
	defaults.Positive(&c.TreeInterval, time.Second)
	defaults.Positive(&c.DedupTTL, 5*time.Minute)
	defaults.Positive(&c.MaxSkew, 30*time.Second)
	defaults.Positive(&c.AEInterval, 30*time.Second)
	defaults.Positive(&c.AEWindow, 4*time.Minute)
	defaults.Positive(&c.WalkTTL, 10)
	defaults.Positive(&c.StoreMax, 8192)
	defaults.Positive(&c.DedupMax, 1<<20)
	defaults.Positive(&c.ReplayBytes, 64<<20)
	defaults.Positive(&c.SubBuffer, 1024)
	defaults.Positive(&c.StoreBytes, 64<<20)
	defaults.Positive(&c.PeerFrameRate, 2000)
	defaults.Positive(&c.PeerFrameBurst, 4000)
	defaults.Positive(&c.PeerByteRate, 16<<20)
	defaults.Positive(&c.PeerByteBurst, 64<<20)
	defaults.Positive(&c.OriginRate, DefaultOriginRate)
	defaults.Positive(&c.OriginBurst, DefaultOriginBurst)
	return c
}

// Default per-origin message rate limits (Config.OriginRate, OriginBurst).
const (
	DefaultOriginRate  = 1000
	DefaultOriginBurst = 2000
)

// Delivery is one message handed to a subscriber. Payload is owned by the
// receiver (each delivery has its own copy only if the caller copies it:
// several subscriptions of one node share the slice and must not modify it).
type Delivery struct {
	Topic   TopicID
	ID      MsgID
	Origin  identity.AgentID
	Seq     uint64
	Time    time.Time // the origin's timestamp
	Payload []byte
	Hops    int // overlay hops from the origin (0 for a local publication), pulled messages included
}

// EventKind says what a topic Event reports.
type EventKind uint8

// Topic neighbour events.
const (
	TopicNeighborUp EventKind = iota + 1
	TopicNeighborDown
)

// Event reports a change of a topic's neighbours.
type Event struct {
	Kind  EventKind
	Topic TopicID
	Peer  identity.PeerID
}

// Stats counts messages and every drop. Drop* counters are messages
// refused and never delivered.
type Stats struct {
	Published          uint64
	Delivered          uint64 // to local subscribers (once per message)
	PayloadsReceived   uint64 // frames carrying a full message (for RMR)
	Duplicates         uint64
	DropMalformed      uint64
	DropBadSignature   uint64
	DropUnknownSigner  uint64
	DropReplay         uint64
	DropStale          uint64 // timestamp too old or too far in the future
	DropPayloadHash    uint64 // payload does not match the signed hash
	DropNotSubscribed  uint64
	SendQueueFull      uint64
	SendErrors         uint64
	SubscriberOverflow uint64 // deliveries dropped because a channel was full
	IHavesSent         uint64
	GraftsSent         uint64
	IWantsSent         uint64 // single messages pulled without grafting
	IWantPulled        uint64 // messages that arrived in answer to an IWANT and were new
	PrunesSent         uint64
	AERounds           uint64
	AEPulled           uint64 // messages that arrived through anti-entropy (not IWANT) and were new
	AEFallbacks        uint64 // sketches too small at the largest level
	WalksStarted       uint64
	WalksForwarded     uint64 // verified walks passed on towards a subscriber
	DropMissingFull    uint64 // IHAVE entries ignored because too many IDs were already awaited
	RateLimited        uint64 // frames over a peer's rate, or messages over their origin's rate (dropped)
	PeersScoredOut     uint64 // peers disconnected because most of their recent messages were invalid
	StoreEvicted       uint64 // stored messages evicted early by the per-topic byte budget
	CheckedUnderLock   uint64 // received messages whose signature was checked under the lock (a copy that was a duplicate when its frame arrived but new when handled)
	TreeAnnounced      uint64 // tree states sent to topic neighbours
	TreeParentChanges  uint64 // times this node's tree parent or root changed
	DropRejected       uint64 // messages a topic Validator refused
}

// Errors returned by the API.
var (
	ErrClosed          = errors.New("pubsub: closed")
	ErrPayloadTooLarge = errors.New("pubsub: payload too large")
	ErrNoSigner        = errors.New("pubsub: no signer configured")
)

type stored struct {
	msg  Signed
	hops uint8
	at   time.Time
}

type missing struct {
	announcers []identity.PeerID
	timer      clock.Timer
}

type topic struct {
	id      TopicID
	eager   []identity.PeerID
	lazy    []identity.PeerID
	subs    []*Subscription
	store   map[MsgID]*stored
	order   []MsgID
	storeB  int // payload bytes in store
	missing map[MsgID]*missing
	lazyQ   map[identity.PeerID][]MsgID
	tree    *tree
	// Per lazy peer: messages recently pulled from it with IWANT (halved
	// every pruneDecay). See graftTimer.
	pulls map[identity.PeerID]int
}

func (t *topic) isPeer(p identity.PeerID) bool {
	return slices.Contains(t.eager, p) || slices.Contains(t.lazy, p)
}

func (t *topic) peers() []identity.PeerID {
	return append(slices.Clone(t.eager), t.lazy...)
}

// Subscription is a stream of deliveries for one topic.
type Subscription struct {
	// C receives deliveries (nil for SubscribeFunc subscriptions). It is
	// closed by Unsubscribe or Close. Deliveries that find it full are
	// dropped and counted in Stats.SubscriberOverflow.
	C     <-chan Delivery
	c     chan Delivery
	fn    func(Delivery)
	topic TopicID
	ps    *PubSub
}

// Topic returns the subscription's topic ID.
func (s *Subscription) Topic() TopicID { return s.topic }

// Unsubscribe ends the subscription; it is idempotent.
func (s *Subscription) Unsubscribe() { s.ps.unsubscribe(s) }

// PubSub is one node's pub/sub engine. Its methods are safe for concurrent use.
type PubSub struct {
	net  link.Network
	mem  *membership.Membership
	cfg  Config
	self membership.NodeDesc

	mu     sync.Mutex
	closed bool
	rng    *rand.Rand
	topics map[TopicID]*topic
	// validators by topic (SetValidator), whether subscribed or not
	validators map[TopicID]Validator
	order      []TopicID // sorted subscribed topics (deterministic iteration)
	active     []identity.PeerID
	nbTopics   map[identity.PeerID][]TopicID
	dedup      *dedupCache
	replay     replayWindows
	seq        uint64
	timers     []clock.Timer
	flushing   bool
	ticks      uint64
	watchers   []func(Event)
	post       []func()
	stats      Stats

	scores         map[identity.PeerID]*peerScore
	origins        map[identity.AgentID]ratelimit.Bucket
	originOverflow ratelimit.Bucket
}

// New creates the pub/sub engine over net and mem (which must use the same
// network) and registers its handlers.
func New(net link.Network, mem *membership.Membership, cfg Config) (*PubSub, error) {
	if net == nil || mem == nil || cfg.Clock == nil || cfg.Rand == nil || cfg.Verifier == nil {
		return nil, errors.New("pubsub: New needs a network, membership, clock, random source and verifier")
	}
	cfg = cfg.withDefaults()
	var seed [32]byte
	if _, err := io.ReadFull(cfg.Rand, seed[:]); err != nil {
		return nil, fmt.Errorf("pubsub: reading seed: %w", err)
	}
	ps := &PubSub{
		net:            net,
		mem:            mem,
		cfg:            cfg,
		self:           mem.Self(),
		rng:            rand.New(rand.NewChaCha8(seed)),
		topics:         make(map[TopicID]*topic),
		validators:     make(map[TopicID]Validator),
		nbTopics:       make(map[identity.PeerID][]TopicID),
		dedup:          newDedup(cfg.DedupTTL, cfg.DedupMax),
		replay:         newReplayWindows(cfg.ReplayBytes),
		scores:         make(map[identity.PeerID]*peerScore),
		origins:        make(map[identity.AgentID]ratelimit.Bucket),
		originOverflow: ratelimit.New(cfg.Clock.Now(), float64(cfg.OriginBurst)),
	}
	for _, a := range mem.Active() {
		ps.active = append(ps.active, a.ID)
	}
	mem.Watch(ps.onMember)
	net.WatchPeers(ps.onPeerEvent)
	if fs, ok := net.(FrameSource); ok {
		fs.HandleFrames(ps.onDecoded)
	} else {
		net.Handle(link.ProtoPubSub, ps.onFrame)
	}
	ps.mu.Lock()
	ps.every(time.Second, time.Duration(ps.rng.Int64N(int64(time.Second)))+1, ps.maintain)
	ps.every(cfg.TreeInterval, time.Duration(ps.rng.Int64N(int64(cfg.TreeInterval)))+1, func() {
		for _, id := range ps.order {
			ps.treeTick(ps.topics[id])
		}
	})
	ps.every(cfg.AEInterval, time.Duration(ps.rng.Int64N(int64(cfg.AEInterval)))+1, ps.antiEntropy)
	ps.mu.Unlock()
	return ps, nil
}

// Watch adds a listener for topic-neighbour events; it runs without the
// pub/sub lock held and must not block.
func (ps *PubSub) Watch(f func(Event)) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.watchers = append(ps.watchers, f)
}

// Stats returns a copy of the counters.
func (ps *PubSub) Stats() Stats {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.stats
}

// TopicPeers returns the eager and lazy neighbours of a subscribed topic.
func (ps *PubSub) TopicPeers(t TopicID) (eager, lazy []identity.PeerID) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if tp := ps.topics[t]; tp != nil {
		return slices.Clone(tp.eager), slices.Clone(tp.lazy)
	}
	return nil, nil
}

// Subscribe joins topic name and returns a channel subscription.
func (ps *PubSub) Subscribe(name string) (*Subscription, error) {
	c := make(chan Delivery, ps.cfg.SubBuffer)
	return ps.subscribe(TopicIDOf(name), &Subscription{C: c, c: c})
}

// SubscribeFunc joins topic name and calls fn for each delivery, on the
// goroutine that processed the message, without the lock held. fn must not
// block.
func (ps *PubSub) SubscribeFunc(name string, fn func(Delivery)) (*Subscription, error) {
	return ps.subscribe(TopicIDOf(name), &Subscription{fn: fn})
}

func (ps *PubSub) subscribe(id TopicID, s *Subscription) (*Subscription, error) {
	s.topic, s.ps = id, ps
	var err error
	ps.do(func() {
		if ps.closed {
			err = ErrClosed
			return
		}
		t := ps.topics[id]
		if t == nil {
			t = &topic{id: id, store: make(map[MsgID]*stored), missing: make(map[MsgID]*missing),
				lazyQ: make(map[identity.PeerID][]MsgID), pulls: make(map[identity.PeerID]int),
				tree: newTree(ps.self.ID, ps.cfg.Clock.Now())}
			ps.topics[id] = t
			i, _ := slices.BinarySearchFunc(ps.order, id, cmpTopic)
			ps.order = slices.Insert(ps.order, i, id)
			ps.announce()
			for _, p := range ps.active {
				if slices.Contains(ps.nbTopics[p], id) {
					ps.addPeer(t, p)
				}
			}
		}
		t.subs = append(t.subs, s)
	})
	return s, err
}

func (ps *PubSub) unsubscribe(s *Subscription) {
	ps.do(func() {
		t := ps.topics[s.topic]
		if t == nil {
			return
		}
		i := slices.Index(t.subs, s)
		if i < 0 {
			return
		}
		t.subs = slices.Delete(t.subs, i, i+1)
		if s.c != nil {
			close(s.c)
		}
		if len(t.subs) > 0 {
			return
		}
		for _, p := range t.peers() {
			ps.send(p, link.PriorityControl, &Frame{Kind: kindTopicLeave, Topic: t.id})
			ps.removePeer(t, p)
		}
		for _, m := range t.missing {
			m.timer.Stop()
		}
		delete(ps.topics, t.id)
		if j, ok := slices.BinarySearchFunc(ps.order, t.id, cmpTopic); ok {
			ps.order = slices.Delete(ps.order, j, j+1)
		}
		ps.announce()
	})
}

// Publish signs payload once as this node's agent and sends it to topic
// name. The node does not need to subscribe. It returns the message ID.
// Sequence numbers are restart-safe (see nextSeq).
func (ps *PubSub) Publish(name string, payload []byte) (MsgID, error) {
	if len(payload) > MaxPayload {
		return MsgID{}, fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadTooLarge, len(payload), MaxPayload)
	}
	if ps.cfg.Signer == nil {
		return MsgID{}, ErrNoSigner
	}
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		return MsgID{}, ErrClosed
	}
	now := ps.cfg.Clock.Now()
	ps.seq = nextSeq(ps.seq, now)
	h := Header{Topic: TopicIDOf(name), Origin: ps.cfg.Signer.AgentID(), Seq: ps.seq,
		Time: now.UnixMilli(), PayloadHash: blake3.Sum256(payload)}
	ps.mu.Unlock()
	hb, err := h.bytes()
	if err != nil {
		return MsgID{}, err
	}
	msg := &Signed{Header: h, Payload: slices.Clone(payload), Sig: ps.cfg.Signer.Sign(hb)}
	id := MsgID(blake3.Sum256(hb))
	ps.mu.Lock()
	v := ps.validators[h.Topic]
	ps.mu.Unlock()
	if v != nil {
		if err := runValidator(v, deliveryOf(id, msg, 0)); err != nil {
			return MsgID{}, fmt.Errorf("%w: %w", ErrRejected, err)
		}
	}
	ps.do(func() {
		ps.stats.Published++
		ps.accept(ps.self.ID, id, hb, msg, 0, kindPublish, nil)
	})
	return id, nil
}

// Close stops the timers and closes subscription channels. It does not
// wait for anything: pub/sub owns no goroutines.
func (ps *PubSub) Close() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return
	}
	ps.closed = true
	for _, t := range ps.timers {
		t.Stop()
	}
	for _, id := range ps.order {
		t := ps.topics[id]
		for _, m := range t.missing {
			m.timer.Stop()
		}
		for _, s := range t.subs {
			if s.c != nil {
				close(s.c)
			}
		}
		for _, p := range t.peers() {
			ps.mem.Release(p)
		}
	}
	ps.topics = nil
	ps.order = nil
}

// do runs f under the lock and then the work f deferred (deliveries, events,
// dials) without it.
func (ps *PubSub) do(f func()) {
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		return
	}
	f()
	post := ps.post
	ps.post = nil
	ps.mu.Unlock()
	for _, p := range post {
		p()
	}
}

func (ps *PubSub) later(f func()) { ps.post = append(ps.post, f) }

func (ps *PubSub) emit(k EventKind, t TopicID, p identity.PeerID) {
	ws := ps.watchers
	ev := Event{k, t, p}
	ps.later(func() {
		for _, w := range ws {
			w(ev)
		}
	})
}

// every runs f under the lock after first and then every period until Close.
func (ps *PubSub) every(period, first time.Duration, f func()) {
	ps.timers = append(ps.timers, clock.Every(ps.cfg.Clock, first, period, ps.do, f))
}

func cmpTopic(a, b TopicID) int {
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

// send encodes and sends one frame; it reports success and counts failures.
func (ps *PubSub) send(to identity.PeerID, prio link.Priority, f *Frame) bool {
	b, err := EncodeFrame(f)
	if err != nil {
		ps.stats.SendErrors++
		return false
	}
	return ps.sendBytes(to, prio, b)
}

func (ps *PubSub) sendBytes(to identity.PeerID, prio link.Priority, b []byte) bool {
	err := ps.net.Send(to, link.ProtoPubSub, prio, b)
	switch {
	case err == nil:
		return true
	case errors.Is(err, link.ErrQueueFull):
		ps.stats.SendQueueFull++
	default:
		ps.stats.SendErrors++
	}
	return false
}

// announce tells every active neighbour which topics we subscribe to.
func (ps *PubSub) announce() {
	for _, p := range ps.active {
		ps.send(p, link.PriorityControl, &Frame{Kind: kindTopics, Topics: ps.order})
	}
}

// ---- topic neighbours ----

func (ps *PubSub) addPeer(t *topic, p identity.PeerID) bool {
	return ps.addPeerUpTo(t, p, ps.cfg.TopicMaxPeers)
}

// addPeerUpTo adds p as a topic neighbour if we have fewer than limit. It
// starts lazy: it becomes eager when it becomes a tree link (see tree.go),
// which the tree state sent here settles within a round trip.
func (ps *PubSub) addPeerUpTo(t *topic, p identity.PeerID, limit int) bool {
	if p == ps.self.ID || t.isPeer(p) || len(t.eager)+len(t.lazy) >= limit {
		return false
	}
	t.lazy = append(t.lazy, p)
	ps.mem.Hold(p)
	ps.emit(TopicNeighborUp, t.id, p)
	st := t.tree.self
	ps.stats.TreeAnnounced++
	ps.send(p, link.PriorityControl, &Frame{Kind: kindTree, Topic: t.id, Tree: &st})
	if bytes.Compare(ps.self.ID[:], p[:]) < 0 {
		// A new link reconciles at once (one side starts): whatever one
		// end published or received while the two were apart (a reset
		// connection, a partition, a late subscription) crosses now
		// rather than at the next anti-entropy round.
		ps.aeRound(t, p)
	}
	return true
}

func (ps *PubSub) removePeer(t *topic, p identity.PeerID) {
	if i := slices.Index(t.eager, p); i >= 0 {
		t.eager = slices.Delete(t.eager, i, i+1)
	} else if i := slices.Index(t.lazy, p); i >= 0 {
		t.lazy = slices.Delete(t.lazy, i, i+1)
	} else {
		return
	}
	delete(t.lazyQ, p)
	delete(t.pulls, p)
	delete(t.tree.heard, p)
	if slices.Contains(t.tree.links, p) {
		ps.chooseParent(t)
		ps.announceTree(t)
	}
	ps.mem.Release(p)
	ps.emit(TopicNeighborDown, t.id, p)
}

func (ps *PubSub) toEager(t *topic, p identity.PeerID) {
	if i := slices.Index(t.lazy, p); i >= 0 {
		t.lazy = slices.Delete(t.lazy, i, i+1)
		t.eager = append(t.eager, p)
	}
}

// toLazy makes p a lazy neighbour unless it is a tree link.
func (ps *PubSub) toLazy(t *topic, p identity.PeerID) {
	if ps.isTreeLink(t, p) {
		return
	}
	if i := slices.Index(t.eager, p); i >= 0 {
		t.eager = slices.Delete(t.eager, i, i+1)
		t.lazy = append(t.lazy, p)
	}
}

func (ps *PubSub) onMember(e membership.Event) {
	ps.do(func() {
		switch e.Kind {
		case membership.NeighborUp:
			if !slices.Contains(ps.active, e.Peer.ID) {
				ps.active = append(ps.active, e.Peer.ID)
			}
			if len(ps.order) > 0 {
				ps.send(e.Peer.ID, link.PriorityControl, &Frame{Kind: kindTopics, Topics: ps.order})
			}
		case membership.NeighborDown:
			if i := slices.Index(ps.active, e.Peer.ID); i >= 0 {
				ps.active = slices.Delete(ps.active, i, i+1)
			}
			delete(ps.nbTopics, e.Peer.ID)
		case membership.MemberDead:
			ps.dropPeer(e.Peer.ID)
		}
	})
}

func (ps *PubSub) onPeerEvent(ev link.PeerEvent) {
	if ev.Up {
		return
	}
	ps.do(func() { ps.dropPeer(ev.Peer) })
}

func (ps *PubSub) dropPeer(p identity.PeerID) {
	delete(ps.scores, p)
	for _, id := range ps.order {
		ps.removePeer(ps.topics[id], p)
	}
}

// ---- inbound ----

func (ps *PubSub) onFrame(from identity.PeerID, b []byte) {
	f, err := DecodeFrame(b)
	ps.onDecoded(from, f, len(b), err)
}

// onDecoded handles a decoded frame of size bytes (or its decoding error).
// It runs on the transport's goroutine for the sender. The frame is charged
// to the sender's rate first; then the messages it carries that are new
// have their payload hash and signature checked without the lock, so that
// verification runs in parallel across peers and topics; then the frame is
// handled under the lock.
func (ps *PubSub) onDecoded(from identity.PeerID, f *Frame, size int, err error) {
	cs := contentsOf(f, err)
	admitted := false
	var validators []Validator // by message, for those to check
	ps.do(func() {
		if err != nil {
			// Honest peers never send undecodable frames: drop the peer.
			ps.stats.DropMalformed++
			ps.net.Disconnect(from)
			return
		}
		if !ps.admitFrame(from, size) {
			return
		}
		admitted = true
		t := ps.topics[f.Topic]
		msgs := f.messages()
		for i := range cs {
			// Only messages that handle would verify are checked: new
			// ones (cheap dedup first) of a topic we subscribe to, or
			// walks we would pass on.
			c := &cs[i]
			topicOK := t != nil && msgs[i].Header.Topic == t.id
			walk := f.Kind == kindPublish && f.Hops > 0
			c.skip = c.err != nil || ps.dedup.has(c.id) || !(topicOK || walk)
			if v := ps.validators[msgs[i].Header.Topic]; v != nil && topicOK && !c.skip {
				if validators == nil {
					validators = make([]Validator, len(cs))
				}
				validators[i] = v
			}
		}
	})
	if !admitted {
		return
	}
	msgs := f.messages()
	for i := range cs {
		if !cs[i].skip {
			cs[i].err = ps.checkContent(cs[i].hb, msgs[i])
			cs[i].checked = true
			if cs[i].err == nil && validators != nil && validators[i] != nil {
				cs[i].rejected = runValidator(validators[i], deliveryOf(cs[i].id, msgs[i], f.Hops))
			}
		}
	}
	ps.do(func() { ps.handle(from, f, cs) })
}

// content is a received message's encoded header and ID, computed and
// (unless skipped) checked without the lock: err is the header's encoding
// error, or after the check errPayloadHash or the Verifier's verdict.
type content struct {
	hb            []byte
	id            MsgID
	err           error
	rejected      error // the topic Validator's verdict, if one ran
	skip, checked bool
}

// contentsOf encodes and hashes the headers of the messages f carries.
func contentsOf(f *Frame, decodeErr error) []content {
	if decodeErr != nil {
		return nil
	}
	msgs := f.messages()
	cs := make([]content, len(msgs))
	for i, m := range msgs {
		cs[i].hb, cs[i].err = m.Header.bytes()
		if cs[i].err == nil {
			cs[i].id = MsgID(blake3.Sum256(cs[i].hb))
		}
	}
	return cs
}

// errPayloadHash: a payload that does not match its signed hash.
var errPayloadHash = errors.New("pubsub: payload does not match its hash")

// checkContent checks a message's payload hash and origin signature; it
// touches no pub/sub state.
func (ps *PubSub) checkContent(hb []byte, msg *Signed) error {
	if blake3.Sum256(msg.Payload) != msg.Header.PayloadHash {
		return errPayloadHash
	}
	return ps.cfg.Verifier.Verify(msg.Header.Origin, hb, msg.Sig)
}

func (ps *PubSub) handle(from identity.PeerID, f *Frame, cs []content) {
	t := ps.topics[f.Topic]
	switch f.Kind {
	case kindGossip, kindPublish:
		ps.stats.PayloadsReceived++
		c := &cs[0]
		if c.err != nil && !c.checked {
			ps.stats.DropMalformed++
			return
		}
		hb, id := c.hb, c.id
		if f.Msg.Header.Topic != f.Topic && f.Kind == kindGossip {
			ps.stats.DropMalformed++
			return
		}
		if f.Kind == kindGossip && t != nil {
			ps.topicPeer(t, from)
		}
		ps.accept(from, id, hb, f.Msg, f.Hops, f.Kind, c)
	case kindIHave:
		if !ps.topicPeer(t, from) {
			ps.stats.DropNotSubscribed++
			return
		}
		for _, id := range f.IDs {
			ps.announced(t, from, id)
		}
	case kindGraft:
		if !ps.topicPeer(t, from) {
			ps.stats.DropNotSubscribed++
			return
		}
		ps.toEager(t, from)
		for _, id := range f.IDs {
			if s := t.store[id]; s != nil {
				ps.send(from, link.PriorityEager, &Frame{Kind: kindGossip, Topic: t.id, Msg: &s.msg, Hops: sat(s.hops)})
			}
		}
	case kindIWant:
		if !ps.topicPeer(t, from) {
			ps.stats.DropNotSubscribed++
			return
		}
		var msgs []Signed
		var hops []byte
		for _, id := range f.IDs {
			if s := t.store[id]; s != nil && len(msgs) < MaxMsgsPerFrame {
				msgs = append(msgs, s.msg)
				hops = append(hops, sat(s.hops))
			}
		}
		if len(msgs) > 0 {
			ps.send(from, link.PriorityEager, &Frame{Kind: kindAEPush, Topic: t.id, Msgs: msgs, MsgHops: hops, Reply: true})
		}
	case kindPrune:
		if t != nil {
			ps.toLazy(t, from)
		}
	case kindTopics:
		if slices.Contains(ps.active, from) {
			// Only active neighbours' subscriptions are remembered (bounded).
			ps.nbTopics[from] = slices.Clone(f.Topics)
		}
		for _, id := range ps.order {
			t := ps.topics[id]
			if slices.Contains(f.Topics, id) {
				if slices.Contains(ps.active, from) && !t.isPeer(from) && !ps.addPeer(t, from) {
					ps.send(from, link.PriorityControl, &Frame{Kind: kindTopicLeave, Topic: id})
				}
			} else {
				ps.removePeer(t, from)
			}
		}
	case kindFind:
		ps.onFind(from, f)
	case kindTopicJoin:
		if f.Reply {
			if !f.Accept && t != nil {
				ps.removePeer(t, from)
			}
			return
		}
		ok := t != nil && (t.isPeer(from) || ps.addPeer(t, from))
		ps.send(from, link.PriorityControl, &Frame{Kind: kindTopicJoin, Topic: f.Topic, Reply: true, Accept: ok})
	case kindTopicLeave:
		if t != nil {
			ps.removePeer(t, from)
		}
	case kindTree:
		if !ps.topicPeer(t, from) {
			ps.stats.DropNotSubscribed++
			return
		}
		ps.onTree(t, from, f.Tree)
	case kindAESketch, kindAERetry, kindAEWant, kindAEPush, kindAEIDs:
		if t == nil {
			ps.stats.DropNotSubscribed++
			return
		}
		ps.onAntiEntropy(t, from, f, cs)
	}
}

// topicPeer reports whether from is a neighbour on subscribed topic t. A
// subscriber that sends topic traffic treats us as its neighbour: the two
// sides learn of each other's subscriptions at different moments, so a
// sender we do not know yet is added if there is room (or else told to
// leave), and its frame is not lost.
func (ps *PubSub) topicPeer(t *topic, from identity.PeerID) bool {
	if t == nil {
		return false
	}
	if t.isPeer(from) || ps.addPeer(t, from) {
		return true
	}
	ps.send(from, link.PriorityControl, &Frame{Kind: kindTopicLeave, Topic: t.id})
	return false
}

func sat(h uint8) uint8 {
	if h == 255 {
		return h
	}
	return h + 1
}

// accept validates and processes a full message from peer from (or from
// ourselves for local publishes, with c nil). hb is the encoded header (id
// is its BLAKE3 hash); c holds the result of checking it outside the lock,
// if that was done.
func (ps *PubSub) accept(from identity.PeerID, id MsgID, hb []byte, msg *Signed, hops uint8, kind uint8, c *content) bool {
	t := ps.topics[msg.Header.Topic]
	local := from == ps.self.ID
	walkTTL := uint8(0)
	if kind == kindPublish {
		// A PUBLISH frame's hop field is the walk's remaining TTL.
		walkTTL, hops = hops, 0
	}
	if ps.dedup.has(id) {
		ps.stats.Duplicates++
		if kind == kindGossip && t != nil && t.isPeer(from) {
			// Plumtree: a duplicate on a link that is not a tree link
			// makes it lazy on both sides (the sender may consider us
			// eager even if we had it lazy already). Tree links stay: a
			// duplicate on them comes from a repair or a tree change.
			if !ps.isTreeLink(t, from) {
				ps.toLazy(t, from)
				ps.stats.PrunesSent++
				ps.send(from, link.PriorityControl, &Frame{Kind: kindPrune, Topic: t.id})
			}
		}
		return false
	}
	if t == nil && !local {
		if kind == kindPublish && walkTTL > 0 {
			// A walk is verified before it is passed on, and its remaining
			// hops are capped at WalkTTL whatever the sender wrote: a forged
			// walk goes nowhere and a valid one costs at most WalkTTL
			// frames. (Walks are not put in the dedup cache: a walk that
			// cycles back through a node must go on, or sparse topics lose
			// messages under churn.)
			if err := ps.validate(from, id, hb, msg, c); err != nil {
				return false
			}
			if !ps.admitOrigin(msg.Header.Origin) {
				return false
			}
			ps.stats.WalksForwarded++
			ps.forwardWalk(from, msg, uint8(min(int(walkTTL), ps.cfg.WalkTTL, 255))-1)
			return false
		}
		ps.stats.DropNotSubscribed++
		return false
	}
	if !local {
		if err := ps.validate(from, id, hb, msg, c); err != nil {
			return false
		}
		if c != nil && c.rejected != nil {
			// The application refused it: never delivered or forwarded,
			// and remembered so that no repair fetches it again.
			ps.stats.DropRejected++
			ps.dedup.add(id, ps.cfg.Clock.Now())
			return false
		}
		if !ps.admitOrigin(msg.Header.Origin) {
			return false
		}
	}
	ps.dedup.add(id, ps.cfg.Clock.Now())
	ps.replay.mark(msg.Header.Origin, msg.Header.Seq, id)
	if t == nil {
		// A local publish to a topic we do not subscribe to.
		ps.handOff(msg)
		return true
	}
	if !local && kind == kindGossip {
		ps.toEager(t, from)
	}
	ps.store(t, id, msg, hops)
	if m := t.missing[id]; m != nil {
		m.timer.Stop()
		delete(t.missing, id)
	}
	ps.deliver(t, id, msg, hops)
	// Plumtree: eager push to the tree, lazy announcement to the rest.
	b, err := EncodeFrame(&Frame{Kind: kindGossip, Topic: t.id, Msg: msg, Hops: sat(hops)})
	if err != nil {
		ps.stats.SendErrors++
		return true
	}
	for _, p := range slices.Clone(t.eager) {
		if p == from {
			continue
		}
		if !ps.sendBytes(p, link.PriorityEager, b) {
			// Slow or broken peer: demote it; it will GRAFT if it needs to.
			ps.toLazy(t, p)
			ps.queueIHave(t, p, id)
		}
	}
	for _, p := range t.lazy {
		if p != from {
			ps.queueIHave(t, p, id)
		}
	}
	return true
}

// validate checks payload hash, timestamp, origin signature and replay
// window, counting the reason for any refusal and scoring from: a payload
// that does not match its hash or a signature that does not verify is the
// sender's fault (it must have checked before forwarding); a stale, replayed
// or unknown-signer message may not be. The hash and signature verdict is
// c's if c was checked outside the lock, and computed here otherwise.
func (ps *PubSub) validate(from identity.PeerID, id MsgID, hb []byte, msg *Signed, c *content) error {
	var verdict error
	if c != nil && c.checked {
		verdict = c.err
	} else {
		ps.stats.CheckedUnderLock++
		verdict = ps.checkContent(hb, msg)
	}
	if verdict == errPayloadHash {
		ps.stats.DropPayloadHash++
		ps.scoreInvalid(from)
		return verdict
	}
	now := ps.cfg.Clock.Now()
	ts := time.UnixMilli(msg.Header.Time)
	if ts.Before(now.Add(-ps.cfg.DedupTTL)) || ts.After(now.Add(ps.cfg.MaxSkew)) {
		ps.stats.DropStale++
		return errors.New("stale")
	}
	if err := verdict; err != nil {
		if errors.Is(err, ErrUnknownSigner) {
			ps.stats.DropUnknownSigner++
		} else {
			ps.stats.DropBadSignature++
			ps.scoreInvalid(from)
		}
		return err
	}
	if !ps.replay.check(msg.Header.Origin, msg.Header.Seq, id) {
		ps.stats.DropReplay++
		return errors.New("replay")
	}
	ps.scoreValid(from)
	return nil
}

func (ps *PubSub) store(t *topic, id MsgID, msg *Signed, hops uint8) {
	now := ps.cfg.Clock.Now()
	for len(t.order) > 0 {
		old := t.store[t.order[0]]
		expired := len(t.order) >= ps.cfg.StoreMax || now.Sub(old.at) > ps.cfg.DedupTTL
		overBudget := t.storeB+len(msg.Payload) > ps.cfg.StoreBytes
		if !expired && !overBudget {
			break
		}
		if !expired {
			ps.stats.StoreEvicted++
		}
		t.dropOldest()
	}
	t.store[id] = &stored{msg: *msg, hops: hops, at: now}
	t.order = append(t.order, id)
	t.storeB += len(msg.Payload)
}

// dropOldest removes the oldest stored message.
func (t *topic) dropOldest() {
	t.storeB -= len(t.store[t.order[0]].msg.Payload)
	delete(t.store, t.order[0])
	t.order = t.order[1:]
}

func (ps *PubSub) deliver(t *topic, id MsgID, msg *Signed, hops uint8) {
	ps.stats.Delivered++
	d := deliveryOf(id, msg, hops)
	for _, s := range t.subs {
		if s.fn != nil {
			fn := s.fn
			ps.later(func() { fn(d) })
			continue
		}
		select {
		case s.c <- d:
		default:
			ps.stats.SubscriberOverflow++
		}
	}
}

// ---- lazy push and GRAFT ----

func (ps *PubSub) queueIHave(t *topic, p identity.PeerID, id MsgID) {
	t.lazyQ[p] = append(t.lazyQ[p], id)
	if !ps.flushing {
		ps.flushing = true
		ps.cfg.Clock.AfterFunc(ps.cfg.IHaveInterval, func() { ps.do(ps.flushIHave) })
	}
}

func (ps *PubSub) flushIHave() {
	ps.flushing = false
	for _, tid := range ps.order {
		t := ps.topics[tid]
		for _, p := range t.peers() {
			ids := t.lazyQ[p]
			if len(ids) == 0 {
				continue
			}
			delete(t.lazyQ, p)
			for len(ids) > 0 {
				n := min(len(ids), MaxIDsPerFrame)
				ps.stats.IHavesSent++
				ps.send(p, link.PriorityLazy, &Frame{Kind: kindIHave, Topic: t.id, IDs: ids[:n]})
				ids = ids[n:]
			}
		}
	}
}

// maxMissing bounds the announced-but-not-received IDs tracked per topic
// (each has a GRAFT timer), so that IHAVE floods cannot exhaust memory.
const maxMissing = 16384

func (ps *PubSub) announced(t *topic, from identity.PeerID, id MsgID) {
	if ps.dedup.has(id) {
		return
	}
	m := t.missing[id]
	if m == nil {
		if len(t.missing) >= maxMissing {
			ps.stats.DropMissingFull++
			return
		}
		m = &missing{}
		t.missing[id] = m
		m.timer = ps.cfg.Clock.AfterFunc(ps.cfg.GraftTimeout, func() { ps.do(func() { ps.graftTimer(t, id) }) })
	}
	if len(m.announcers) < 8 && !slices.Contains(m.announcers, from) {
		m.announcers = append(m.announcers, from)
	}
}

func (ps *PubSub) graftTimer(t *topic, id MsgID) {
	if ps.topics[t.id] != t {
		return
	}
	m := t.missing[id]
	if m == nil {
		return
	}
	for len(m.announcers) > 0 {
		p := m.announcers[0]
		m.announcers = m.announcers[1:]
		if !t.isPeer(p) {
			continue
		}
		if len(t.eager) > 0 && t.pulls[p] < pullsBeforeGraft {
			// Over QUIC a missing eager copy is usually late (a
			// retransmission), not lost: fetch this one message without
			// changing the tree, which would otherwise gain a redundant
			// eager link per late copy. Only a peer we keep having to pull
			// from (or having no eager peer at all) means the tree is
			// broken here, and then we GRAFT.
			t.pulls[p]++
			ps.stats.IWantsSent++
			ps.send(p, link.PriorityControl, &Frame{Kind: kindIWant, Topic: t.id, IDs: []MsgID{id}})
			break
		}
		delete(t.pulls, p)
		ps.toEager(t, p)
		ps.stats.GraftsSent++
		ps.send(p, link.PriorityControl, &Frame{Kind: kindGraft, Topic: t.id, IDs: []MsgID{id}})
		break
	}
	if len(m.announcers) == 0 {
		// Keep the entry until the retry fires so late IHAVEs add announcers.
		m.timer = ps.cfg.Clock.AfterFunc(ps.cfg.GraftRetry*5, func() {
			ps.do(func() {
				if cur := t.missing[id]; cur == m && len(m.announcers) == 0 {
					delete(t.missing, id)
				} else if cur == m {
					ps.graftTimer(t, id)
				}
			})
		})
		return
	}
	m.timer = ps.cfg.Clock.AfterFunc(ps.cfg.GraftRetry, func() { ps.do(func() { ps.graftTimer(t, id) }) })
}

// ---- finding subscribers, publishing from outside ----

// pullsBeforeGraft is how many messages a node pulls from one lazy peer
// (IWANT) within a decay period before it grafts that peer into the tree.
const pullsBeforeGraft = 3

// pruneDecayTicks is how many maintenance ticks (1 s) pass between halvings
// of the per-link first/duplicate counters.
const pruneDecayTicks = 10

func (ps *PubSub) maintain() {
	now := ps.cfg.Clock.Now()
	ps.dedup.expire(now)
	decay := ps.ticks%pruneDecayTicks == 0
	if decay {
		ps.decayScores()
	}
	ps.ticks++
	for _, id := range ps.order {
		t := ps.topics[id]
		if decay {
			for p, n := range t.pulls {
				t.pulls[p] = n / 2
			}
		}
		for len(t.order) > 0 && now.Sub(t.store[t.order[0]].at) > ps.cfg.DedupTTL {
			t.dropOldest()
		}
		if len(t.eager)+len(t.lazy) < ps.cfg.TopicMinPeers && len(ps.active) > 0 {
			ps.stats.WalksStarted++
			self := ps.self
			next := ps.active[ps.rng.IntN(len(ps.active))]
			ps.send(next, link.PriorityControl, &Frame{Kind: kindFind, Topic: id, Node: &self, Hops: uint8(ps.cfg.WalkTTL)})
		}
	}
}

// nextHop picks the next node of a walk for topic: a neighbour known to
// subscribe if any, else a random active neighbour other than not.
func (ps *PubSub) nextHop(topicID TopicID, not ...identity.PeerID) (identity.PeerID, bool) {
	var subs, others []identity.PeerID
	for _, p := range ps.active {
		if slices.Contains(not, p) {
			continue
		}
		if slices.Contains(ps.nbTopics[p], topicID) {
			subs = append(subs, p)
		} else {
			others = append(others, p)
		}
	}
	if len(subs) > 0 {
		return subs[ps.rng.IntN(len(subs))], true
	}
	if len(others) > 0 {
		return others[ps.rng.IntN(len(others))], true
	}
	return identity.PeerID{}, false
}

func (ps *PubSub) onFind(from identity.PeerID, f *Frame) {
	seeker := *f.Node
	if seeker.ID == ps.self.ID {
		return
	}
	t := ps.topics[f.Topic]
	// A walk comes from a node with too few topic neighbours (a late joiner
	// in a topic where everyone is full, say): take it even above
	// TopicMaxPeers, up to twice that, so that it cannot be starved.
	if t != nil && !t.isPeer(seeker.ID) && len(t.eager)+len(t.lazy) < 2*ps.cfg.TopicMaxPeers {
		topicID := t.id
		ps.later(func() {
			ps.mem.Dial(seeker, func(err error) {
				if err != nil {
					return
				}
				ps.do(func() {
					t := ps.topics[topicID]
					if t != nil && ps.addPeerUpTo(t, seeker.ID, 2*ps.cfg.TopicMaxPeers) {
						ps.send(seeker.ID, link.PriorityControl, &Frame{Kind: kindTopicJoin, Topic: topicID})
					}
				})
			})
		})
		return
	}
	if f.Hops == 0 {
		return
	}
	if next, ok := ps.nextHop(f.Topic, from, seeker.ID); ok {
		f.Hops--
		ps.send(next, link.PriorityControl, f)
	}
}

// handOffs is how many copies a non-subscriber's message starts with.
const handOffs = 3

// handOff sends a locally published message for a topic we do not
// subscribe to towards subscribers: to subscribed neighbours if we know
// some, otherwise along random walks.
func (ps *PubSub) handOff(msg *Signed) {
	topicID := msg.Header.Topic
	var subs []identity.PeerID
	for _, p := range ps.active {
		if slices.Contains(ps.nbTopics[p], topicID) {
			subs = append(subs, p)
		}
	}
	// Three independent hand-offs, so that one crashed (not yet detected)
	// neighbour cannot lose the message: subscribed neighbours first, random
	// walks for the rest.
	f := &Frame{Kind: kindPublish, Topic: topicID, Msg: msg, Hops: uint8(ps.cfg.WalkTTL)}
	ps.rng.Shuffle(len(subs), func(i, j int) { subs[i], subs[j] = subs[j], subs[i] })
	subs = subs[:min(handOffs, len(subs))]
	for _, p := range subs {
		ps.send(p, link.PriorityEager, f)
	}
	for i := len(subs); i < handOffs; i++ {
		if next, ok := ps.nextHop(topicID, subs...); ok {
			ps.send(next, link.PriorityEager, f)
		}
	}
}

func (ps *PubSub) forwardWalk(from identity.PeerID, msg *Signed, ttl uint8) {
	if next, ok := ps.nextHop(msg.Header.Topic, from); ok {
		ps.send(next, link.PriorityEager, &Frame{Kind: kindPublish, Topic: msg.Header.Topic, Msg: msg, Hops: ttl})
	}
}

// AEIntervalDefault returns the anti-entropy period this Config selects
// (its AEInterval, or the 30 s default).
func (c Config) AEIntervalDefault() time.Duration { return c.withDefaults().AEInterval }

// nextSeq returns the sequence number after last for a message published
// at now: last+1, or the wall clock in microseconds if that is larger. A
// restarted publisher (whose counter starts again at 0) so continues above
// every number it used before, unless it had published faster than one
// message per microsecond on average or its clock went back, and the
// receivers' replay windows accept its messages at once.
func nextSeq(last uint64, now time.Time) uint64 {
	next := last + 1
	if us := now.UnixMicro(); us > 0 && uint64(us) > next {
		next = uint64(us)
	}
	return next
}
