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
//
// Files by concern: pubsub.go (the node, its API and event loop),
// inbound.go (receiving: verification outside the lock, acceptance,
// eager push, delivery), tree.go (the rooted tree per topic), repair.go
// (IHAVE, GRAFT, IWANT and periodic maintenance), neighbours.go (topic
// neighbours and links), antientropy.go and iblt.go (reconciliation),
// walks.go (finding subscribers, publishing from outside a topic),
// flood.go (rates and peer scores), validate.go (application validators),
// signing.go and simsig.go (signatures), message.go (wire format),
// state.go (restart-safe sequence numbers), config.go (settings, events,
// statistics, errors).
package pubsub

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"lukechampine.com/blake3"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/internal/ratelimit"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/membership"
)

type stored struct {
	msg  Signed
	hops uint8
	at   time.Time
	// known is when the message was first announced to us or, if it
	// arrived unannounced, at; pulled is when we last asked pulledFrom for
	// it (zero if we never did). Copies arriving later are timed against
	// them (see lateness).
	known, pulled time.Time
	pulledFrom    identity.PeerID
	treeTimed     bool // a tree copy of it has been timed (one sample per message)
}

type missing struct {
	announcers []identity.PeerID
	timer      clock.Timer
	since      time.Time // the first announcement
	pulled     time.Time // the latest IWANT for it (zero: none yet)
	pulledFrom identity.PeerID
}

type topic struct {
	id      TopicID
	eager   []identity.PeerID
	lazy    []identity.PeerID
	subs    []*Subscription
	store   map[ShortID]*stored // by short ID, so that lazy repair finds them
	order   []MsgID
	storeB  int // payload bytes in store
	missing map[ShortID]*missing
	lazyQ   map[identity.PeerID][]ShortID
	tree    *tree
	// Per lazy peer: messages recently pulled from it with IWANT (halved
	// every pruneDecay). See graftTimer.
	pulls map[identity.PeerID]int
	// parentHeard is when the tree parent last pushed a new message: see
	// graftTimer.
	parentHeard time.Time
	// treeLate is how late copies over tree links arrive after we first
	// learn of their message; pullLate is how long an IWANT takes to be
	// answered. Pulls wait for them (see graftTimer).
	treeLate, pullLate lateness
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
		dedup:          newDedup(cfg.DedupTTL, cfg.DedupBytes/dedupEntryBytes),
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
			t = &topic{id: id, store: make(map[ShortID]*stored), missing: make(map[ShortID]*missing),
				lazyQ: make(map[identity.PeerID][]ShortID), pulls: make(map[identity.PeerID]int),
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
