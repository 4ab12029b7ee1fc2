package tasklist

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/crdt"
	"github.com/saorsa-labs/x0x-go/core/identity"
)

// Defaults and bounds.
const (
	// DefaultSyncInterval is the default anti-entropy period.
	DefaultSyncInterval = 10 * time.Second
	// MaxPending bounds the received deltas held while their dependencies
	// are missing.
	MaxPending = 4096
	// InboxSize bounds the received payloads queued for processing.
	InboxSize = 1024
	// ChangesSize is the capacity of the Changes channel.
	ChangesSize = 1024
	// MaxSyncBytes bounds the delta bytes one SyncRequest is answered with
	// (in frames of at most SyncChunkSize); the requester asks again for
	// the rest.
	MaxSyncBytes = 4 << 20
	// gapSyncDelay is the least time between two catch-ups triggered by
	// deltas arriving out of order.
	gapSyncDelay = time.Second
)

// Transport is how a List talks to the other members; the facade
// implements it over a pub/sub topic (Broadcast) and neighbour-to-neighbour
// bulk frames (Send). Implementations must not block and must not call back
// into the List synchronously. The List owns nothing it passes: payload
// slices are not reused after the call.
type Transport interface {
	// Broadcast sends payload to every member (pub/sub on the list topic).
	Broadcast(payload []byte) error
	// Send sends payload to one directly connected member.
	Send(peer identity.PeerID, payload []byte) error
	// Peers returns the directly connected members (topic neighbours).
	Peers() []identity.PeerID
}

// Config configures Open.
type Config struct {
	// ID names the list.
	ID ListID
	// Name is the display name, carried in the creator's first operation;
	// "" when joining. Ignored if this agent already has operations in
	// the list. With Name set, ID must be NewListID(Self, Name, Nonce):
	// every replica checks that the list's creation is its creator's.
	Name string
	// Nonce is the nonce ID was derived with (creating only).
	Nonce [16]byte
	// OpenToAll, when creating, lets every agent write to the list;
	// otherwise only the creator and the agents it grants (AddWriter) can.
	OpenToAll bool
	// Writers, if set, decides who may write instead of the creator's
	// grants (AddWriter, SetOpen): a group's list sets it to the group's
	// membership. It is applied to every operation but the creation, on
	// receipt and locally; it must be monotonic (an agent it once accepted
	// stays accepted), or replicas that see operations at different times
	// would disagree.
	Writers func(identity.AgentID) bool
	// Self is the local agent; it signs every operation. Required.
	Self *identity.KeyPair
	// Store persists the list; nil keeps it in memory only.
	Store *Store
	// Clock drives timestamps and the sync timer; nil means the real clock.
	Clock clock.Clock
	// Rand picks sync peers; nil means crypto/rand.
	Rand io.Reader
	// Transport reaches the other members. Required.
	Transport Transport
	// Logger receives debug logs about dropped input; nil discards.
	Logger *slog.Logger
	// SyncInterval is the anti-entropy period (0: DefaultSyncInterval).
	SyncInterval time.Duration
}

// taskState is one task's replicated state.
type taskState struct {
	id         TaskID
	createdBy  identity.AgentID
	createdAt  crdt.Timestamp
	createdSeq uint64   // the creator's delta that added the task
	insert     crdt.Dot // the task's RGA element
	title      crdt.LWWRegister[string]
	desc       crdt.LWWRegister[string]
	assignee   crdt.LWWRegister[identity.AgentID]
	priority   crdt.LWWRegister[uint8]
	check      *crdt.ORSet[checkElem]
	marks      []mark      // claims and completions, for the receipt rules
	reopens    []reopenRec // reopens, for the receipt rules
	// front is the task's causal frontier: the applied deltas on it that
	// no other applied delta on it has in its causal past (at most one per
	// author: author -> seq). Its existence elements are the live ones
	// (see normalize and statesync.go).
	front map[identity.AgentID]uint64
	// lastBy is each author's last applied delta on the task (its seq):
	// it carries the author's greatest check-set counters, which its next
	// delta's must follow (a writer catching up by state transfer gets
	// its own, see statesync.go).
	lastBy map[identity.AgentID]uint64
	// won is the seq of the delta whose value each field (title,
	// description, assignee, priority) holds; its author is the register
	// timestamp's replica. 0 while unset.
	won [4]uint64
}

// Indexes of taskState.won.
const (
	wonTitle = iota
	wonDesc
	wonAssignee
	wonPriority
)

func newTaskState(self identity.AgentID) *taskState {
	return &taskState{check: crdt.NewORSet[checkElem](self), front: make(map[identity.AgentID]uint64), lastBy: make(map[identity.AgentID]uint64)}
}

func (t *taskState) alive() bool { return t.check.Contains(aliveElem) }

// job is one unit of work for the List's worker goroutine.
type job struct {
	kind    uint8
	peer    identity.PeerID
	payload []byte
	done    chan struct{}
}

const (
	jobBroadcast = iota + 1
	jobDirect
	jobPeerUp
	jobTick
	jobBarrier
)

// List is one replica of a task list: the CRDT state, its signed delta
// log and the sync protocol. Its methods are safe for concurrent use. A
// List owns one worker goroutine and one timer, stopped by Close.
type List struct {
	id     ListID
	self   *identity.KeyPair
	selfID identity.AgentID
	store  *Store
	clk    clock.Clock
	rnd    io.Reader
	tr     Transport
	log    *slog.Logger
	// writers, if set, replaces the creator's grants (Config.Writers).
	writers func(identity.AgentID) bool

	inbox  chan job
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ticker *clock.Periodic
	closeO sync.Once
	isShut atomic.Bool

	inboxFull atomic.Uint64
	tooBig    atomic.Uint64

	mu       sync.Mutex
	closed   bool
	failed   error
	changes  chan Change
	name     crdt.LWWRegister[string]
	hlc      *crdt.HLC
	vv       crdt.VersionVector
	keys     map[identity.AgentID]*identity.PublicKey
	logs     map[identity.AgentID]*authorLog // applied signed deltas and their timestamps, by author and seq
	order    []authorSeq                     // apply order (causal, but for skipped deltas filled in later)
	pending  map[identity.AgentID]map[uint64]*delta
	npending int
	tasks    map[TaskID]*taskState
	slots    map[crdt.Dot]TaskID // RGA slots (inserts and moves) -> task
	rga      *crdt.RGA[TaskID]
	rgaMax   uint64                      // greatest RGA counter seen
	rgaLast  map[identity.AgentID]uint64 // greatest RGA counter per author
	lastGap  time.Time
	stats    Stats
	creator  identity.AgentID // author of the valid OpInit (zero until known)
	access   []writersSnap    // access state after each of the creator's init/writers deltas
	moves    []authorSeq      // every applied move delta (kept whole in state transfers)

	// State transfer (statesync.go).
	skip      seqSet                      // deltas taken as superseded without being received (not verified)
	ck        crdt.VersionVector          // the checkpoint: the causal past of the deltas received in compacted answers
	skipVer   uint64                      // bumped whenever skip changes
	skipDirty bool                        // skip or ck changed since they were last persisted
	anchors   map[authorSeq]*announcement // what unapplied deltas of compacted answers announced
	kept      *keptCache                  // the effective deltas, for answers (nil: recompute)

	unsaved    []logEntry // remote deltas applied (and skips committed) but not yet persisted
	logLen     uint64     // records in the list's log (deltas and skips), persisted or not
	nameDirty  bool       // the name changed since it was last persisted
	out        []outMsg   // messages to send once l.mu is released
	memos      map[identity.PeerID]*peerMemo
	maxPending int    // MaxPending (tests lower it)
	snapEvery  int    // snapshotEvery (tests lower it)
	snapOps    uint64 // log records covered by the store's snapshot
	snapTried  uint64 // logLen at the last snapshot attempt
}

// Open opens the list cfg.ID: it replays what cfg.Store holds for it
// (verifying every signature again), creates the list's first operation
// if cfg.Name is set and this agent has none yet, and starts the sync
// timer. It does not call the Transport. Errors: ErrInvalid (bad Config,
// list already open on this Store), ErrStoreCorrupt, ErrStoreFailed,
// ErrClosed (closed Store).
func Open(cfg Config) (*List, error) {
	if cfg.Self == nil || cfg.Transport == nil {
		return nil, fmt.Errorf("%w: Config.Self and Config.Transport are required", ErrInvalid)
	}
	if err := checkText(&cfg.Name, MaxNameLen, "name"); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	l := &List{
		id: cfg.ID, self: cfg.Self, selfID: cfg.Self.ID(), store: cfg.Store,
		clk: cfg.Clock, rnd: cfg.Rand, tr: cfg.Transport, log: cfg.Logger, writers: cfg.Writers,
		inbox:   make(chan job, InboxSize),
		changes: make(chan Change, ChangesSize),
		pending: make(map[identity.AgentID]map[uint64]*delta),
		memos:   make(map[identity.PeerID]*peerMemo),

		maxPending: MaxPending,
		snapEvery:  snapshotEvery,
	}
	l.resetState()
	if l.store != nil {
		if err := l.store.claim(l.id); err != nil {
			return nil, err
		}
		if err := l.restore(); err != nil {
			l.store.release(l.id)
			return nil, err
		}
	}
	if cfg.Name != "" && l.vv.Get(l.selfID) == 0 && !l.name.IsSet() {
		name := cfg.Name
		if NewListID(l.selfID, name, cfg.Nonce) != l.id {
			if l.store != nil {
				l.store.release(l.id)
			}
			return nil, fmt.Errorf("%w: list ID is not NewListID(Self, Name, Nonce)", ErrInvalid)
		}
		b := &bodyWire{Kind: uint8(OpInit), Name: &name, Nonce: cfg.Nonce[:]}
		if cfg.OpenToAll {
			b.Open = &cfg.OpenToAll
		}
		if _, err := l.commitLocal(b, l.hlc.Now(), nil, nil); err != nil {
			if l.store != nil {
				l.store.release(l.id)
			}
			return nil, err
		}
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.run()
	l.ticker = clock.Every(l.clk, cfg.SyncInterval, cfg.SyncInterval, func(f func()) { f() }, func() {
		l.enqueue(job{kind: jobTick})
	})
	return l, nil
}

// resetState empties the replicated state (Open, and before a full replay
// when a snapshot turned out unusable).
func (l *List) resetState() {
	l.name = crdt.LWWRegister[string]{}
	l.hlc = crdt.NewHLC(l.clk, l.selfID, 0)
	l.vv = crdt.VersionVector{}
	l.keys = make(map[identity.AgentID]*identity.PublicKey)
	l.logs = make(map[identity.AgentID]*authorLog)
	l.order = nil
	l.tasks = make(map[TaskID]*taskState)
	l.slots = make(map[crdt.Dot]TaskID)
	l.rga = crdt.NewRGA[TaskID](l.selfID, crdt.RGAOptions{})
	l.rgaMax = 0
	l.rgaLast = make(map[identity.AgentID]uint64)
	l.creator = identity.AgentID{}
	l.access = nil
	l.moves = nil
	l.skip = seqSet{}
	l.ck = crdt.VersionVector{}
	l.skipVer++
	l.skipDirty = false
	l.anchors = nil
	l.kept = nil
	l.stats.Replayed, l.stats.FromSnapshot = 0, 0
	l.snapOps = 0
	l.logLen = 0
}

// restore rebuilds the list from the store: from its snapshot and the
// deltas logged after it if it has a usable one, else by replaying the
// whole log (see snapshot.go).
func (l *List) restore() error {
	sl, err := l.store.loadSnapshot(l.id)
	if err == nil && sl != nil && !l.store.noSnapshots {
		err = l.restoreSnapshot(sl.ops, sl.parts, sl.keys)
		if err == nil {
			l.snapOps = sl.ops
			err = l.replayDeltas(&storedList{name: sl.name, deltas: sl.deltas, refs: sl.refs, keys: sl.keys, ck: sl.ck}, true)
		}
		if err == nil {
			return nil
		}
	}
	if err != nil {
		l.stats.SnapshotErrors++
		l.log.Warn("tasklist: snapshot unusable; replaying the whole log", "list", l.id.String()[:8], "err", err)
		l.resetState()
	}
	return l.replay()
}

// replay loads and applies the stored log. Anything that does not decode,
// verify or apply is ErrStoreCorrupt.
func (l *List) replay() error {
	st, err := l.store.load(l.id)
	if err != nil {
		return err
	}
	return l.replayDeltas(st, false)
}

// replayDeltas applies stored log records in order. trusted skips the
// signature check: deltas logged after a snapshot were verified when
// received or made, like those the snapshot stands for, and the store is
// local. A full replay (no usable snapshot) verifies every signature
// again. A skip record takes numbers as skipped as when they were first
// relied on; a delta whose number is skipped is one received late.
func (l *List) replayDeltas(st *storedList, trusted bool) error {
	l.ck.Merge(st.ck)
	for i, raw := range st.deltas {
		if raw == nil {
			e := parseSkipRef(st.refs[i])
			if e == nil {
				return fmt.Errorf("%w: list %s record %d is neither a delta nor a skip", ErrStoreCorrupt, l.id, i)
			}
			l.announceRange(e.author, e.lo, e.hi)
			l.logLen++
			continue
		}
		d, err := decodeDelta(raw)
		if err != nil {
			return fmt.Errorf("%w: list %s delta %d: %v", ErrStoreCorrupt, l.id, i, err)
		}
		if d.list != l.id {
			return fmt.Errorf("%w: list %s delta %d belongs to list %s", ErrStoreCorrupt, l.id, i, d.list)
		}
		if string(deltaKey(d.author, d.seq)) != string(st.refs[i]) {
			return fmt.Errorf("%w: list %s delta %d is filed under another author or seq", ErrStoreCorrupt, l.id, i)
		}
		late := d.seq <= l.vv.Get(d.author) && l.skip.has(d.author, d.seq)
		if !late && !l.applicable(d) {
			return fmt.Errorf("%w: list %s delta %d (%s seq %d) out of causal order", ErrStoreCorrupt, l.id, i, d.author.Short(), d.seq)
		}
		if err := l.checkAndApply(d, trusted, modeReplay); err != nil {
			return fmt.Errorf("%w: list %s delta %d: %v", ErrStoreCorrupt, l.id, i, err)
		}
		l.logLen++
		l.stats.Replayed++
	}
	l.nameDirty, l.skipDirty = false, false
	l.skipVer++
	for a, k := range st.keys {
		if pk := l.keys[a]; pk == nil || string(pk.Bytes()) != string(k) {
			return fmt.Errorf("%w: list %s: stored key of %s does not match its first delta", ErrStoreCorrupt, l.id, a.Short())
		}
	}
	return nil
}

// ID returns the list's ID.
func (l *List) ID() ListID { return l.id }

// Name returns the list's name ("" until the creator's first operation
// has been received).
func (l *List) Name() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.name.Value()
}

// VersionVector returns a copy of the replica's version vector: for each
// author, how many of its operations have been applied.
func (l *List) VersionVector() crdt.VersionVector {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.vv.Clone()
}

// Changes returns the stream of applied operations, local and remote. It
// is bounded (ChangesSize): events that find it full are dropped and
// counted in Stats. It is closed by Close.
func (l *List) Changes() <-chan Change { return l.changes }

// Stats returns a copy of the list's counters.
func (l *List) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	s.Pending = l.npending
	s.Unverified = l.skip.count()
	s.Drops.InboxFull = l.inboxFull.Load()
	s.Drops.Malformed += l.tooBig.Load()
	return s
}

// Close stops the worker goroutine and the sync timer, closes the Changes
// channel, writes a compacted snapshot of the list to its Store if the
// log grew since the last one (so the next Open restores it instead of
// replaying the log; a failure is only logged) and releases the list on
// the Store (which stays open). Payloads still queued are discarded.
// Idempotent; always returns nil.
func (l *List) Close() error {
	l.closeO.Do(func() {
		l.isShut.Store(true)
		l.ticker.Stop()
		l.cancel()
		l.wg.Wait()
		l.mu.Lock()
		l.closed = true
		close(l.changes)
		// A snapshot on Close makes the next Open restore state instead
		// of replaying the deltas logged since the last one.
		l.snapshot()
		l.mu.Unlock()
		if l.store != nil {
			l.store.release(l.id)
		}
	})
	return nil
}

// HandleBroadcast queues a payload received on the list's topic from
// origin (informational: deltas are authenticated by their own
// signatures). It never blocks and never panics; the payload is copied.
// Bad input is dropped and counted in Stats.
func (l *List) HandleBroadcast(origin identity.AgentID, payload []byte) {
	l.handle(jobBroadcast, identity.PeerID{}, payload)
}

// HandleDirect queues a payload received from neighbour from (catch-up
// traffic). It never blocks and never panics; the payload is copied.
func (l *List) HandleDirect(from identity.PeerID, payload []byte) {
	l.handle(jobDirect, from, payload)
}

func (l *List) handle(kind uint8, from identity.PeerID, payload []byte) {
	if len(payload) > MaxFrameSize {
		l.tooBig.Add(1)
		return
	}
	l.enqueue(job{kind: kind, peer: from, payload: slices.Clone(payload)})
}

// PeerUp reports a member neighbour that appeared: the List sends it a
// catch-up request. Never blocks.
func (l *List) PeerUp(peer identity.PeerID) { l.enqueue(job{kind: jobPeerUp, peer: peer}) }

func (l *List) enqueue(j job) {
	if l.isShut.Load() {
		return
	}
	select {
	case l.inbox <- j:
	default:
		l.inboxFull.Add(1)
	}
}

// Flush waits until every payload and event queued before the call has
// been processed (useful in tests and before Snapshot when the caller
// wants remote input applied). Errors: ErrClosed, ctx.Err().
func (l *List) Flush(ctx context.Context) error {
	if l.isShut.Load() {
		return ErrClosed
	}
	done := make(chan struct{})
	select {
	case l.inbox <- job{kind: jobBarrier, done: done}:
	case <-ctx.Done():
		return ctx.Err()
	case <-l.ctx.Done():
		return ErrClosed
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.ctx.Done():
		return ErrClosed
	}
}

// run is the worker: it processes queued jobs until Close.
func (l *List) run() {
	defer l.wg.Done()
	for {
		select {
		case <-l.ctx.Done():
			return
		case j := <-l.inbox:
			l.process(j)
		}
	}
}

func (l *List) process(j job) {
	switch j.kind {
	case jobBarrier:
		close(j.done)
	case jobPeerUp:
		l.sendRequest(j.peer, false)
	case jobTick:
		if p, ok := l.randomPeer(); ok {
			l.sendRequest(p, false)
		}
	case jobBroadcast, jobDirect:
		l.handleFrame(j.kind == jobDirect, j.peer, j.payload)
	}
}

func (l *List) randomPeer() (identity.PeerID, bool) {
	peers := l.tr.Peers()
	if len(peers) == 0 {
		return identity.PeerID{}, false
	}
	var b [8]byte
	if _, err := io.ReadFull(l.rnd, b[:]); err != nil {
		return peers[0], true
	}
	return peers[binary.BigEndian.Uint64(b[:])%uint64(len(peers))], true
}

// emit reports a change; l.mu is held.
func (l *List) emit(c Change) {
	if l.closed {
		return
	}
	select {
	case l.changes <- c:
	default:
		l.stats.Drops.ChangesFull++
	}
}
