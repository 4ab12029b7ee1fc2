package group

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/mls"
)

// ID names a group: 32 random bytes chosen by its creator, also its MLS
// group_id.
type ID [32]byte

// String returns the ID in lowercase hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits of the ID.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// TopicName returns the name of the group's pub/sub topic: the raw group
// ID, so that the topic's ID, BLAKE3 of its name, is BLAKE3(group_id).
func (id ID) TopicName() string { return string(id[:]) }

// NewID returns a random group ID read from r (nil: crypto/rand).
func NewID(r io.Reader) (ID, error) {
	if r == nil {
		r = rand.Reader
	}
	var id ID
	if _, err := io.ReadFull(r, id[:]); err != nil {
		return id, fmt.Errorf("group: random ID: %w", err)
	}
	return id, nil
}

// Suite is the cipher suite of every x0x group: HPKE with
// MLKEM768-X25519, ChaCha20-Poly1305, SHA-256 and ML-DSA-65.
const Suite = mls.X0XMLS128MLKEM768X25519ChaCha20Poly1305SHA256MLDSA65

// Defaults.
const (
	// DefaultForkWindow is how many epochs a commit can still be overturned
	// by a competing commit of its epoch.
	DefaultForkWindow = 4
	// DefaultForkTime is how long a commit can be overturned, however few
	// epochs followed it.
	DefaultForkTime = 2 * time.Minute
	// DefaultPresenceInterval is how often a member tells the group it is
	// online.
	DefaultPresenceInterval = 5 * time.Minute
	// DefaultPresenceTTL is how long a member counts as online after its
	// last beacon (the roadmap's presence TTL).
	DefaultPresenceTTL = 15 * time.Minute
	// DefaultRemovalDelay is the step between the members' turns to commit
	// a requested removal (a leave or a declined invitation).
	DefaultRemovalDelay = time.Second
	// DefaultBufferBytes bounds the messages waiting for an epoch this
	// member has not reached.
	DefaultBufferBytes = 4 << 20
	// UnknownBufferBytes bounds the messages kept from agents this replica
	// has not seen as members (until a commit adds them).
	UnknownBufferBytes = 256 << 10
	// MaxMessageSize bounds every MLS message, Welcome, key package and
	// ratchet tree a group decodes or produces.
	MaxMessageSize = 16 << 20
)

// Errors.
var (
	// ErrClosed: the group was closed (or this member left or was removed).
	ErrClosed = errors.New("group: closed")
	// ErrNotMember: the agent is not a member of the group.
	ErrNotMember = errors.New("group: not a member")
	// ErrAlreadyMember: the agent is already a member of the group.
	ErrAlreadyMember = errors.New("group: already a member")
	// ErrBadKeyPackage: a key package is invalid or is not the agent's.
	ErrBadKeyPackage = errors.New("group: invalid key package")
	// ErrMalformed: a message or sealed payload is not well formed.
	ErrMalformed = errors.New("group: malformed input")
	// ErrUnknownEpoch: a sealed payload is from an epoch whose keys this
	// member does not hold (too old, not reached yet, or another branch).
	ErrUnknownEpoch = errors.New("group: no key for the payload's epoch")
	// ErrTooLarge: a payload exceeds the group's limits.
	ErrTooLarge = errors.New("group: too large")
)

// Config configures a Group. Publish is required; the callbacks are
// called without the group's lock held, in the order of the events, and
// must not block (they may call back into the group).
type Config struct {
	// Self is the local agent: its ML-DSA-65 key signs as this member.
	Self *identity.KeyPair
	// Clock drives presence, removal turns and the fork time; nil means
	// the real clock.
	Clock clock.Clock
	// Publish sends an MLS message to every member (the group's topic).
	// It must not block and must not call back into the group.
	Publish func(msg []byte) error
	// OnMessage receives the application messages of other members, each
	// once.
	OnMessage func(Message)
	// OnEvent receives membership, epoch and presence changes.
	OnEvent func(Event)
	// Reinvite is asked to invite again an agent this member had added in
	// a commit that lost the fork choice; nil drops the invitation.
	Reinvite func(agent identity.AgentID)
	// PastMembers are agents that were members before this replica
	// joined, as its inviter reports them: with the members of every epoch
	// this replica sees, they make WasMember (the writers of the group's
	// task lists), so that a joiner accepts what earlier members wrote.
	PastMembers []identity.AgentID
	// ForkWindow, ForkTime, PresenceInterval, PresenceTTL, RemovalDelay
	// and BufferBytes: 0 means the default of the same name.
	ForkWindow       int
	ForkTime         time.Duration
	PresenceInterval time.Duration
	PresenceTTL      time.Duration
	RemovalDelay     time.Duration
	BufferBytes      int
	// Logger receives debug logs about dropped input; nil discards.
	Logger *slog.Logger
}

func (c *Config) fill() error {
	if c.Self == nil || c.Publish == nil {
		return errors.New("group: Config needs Self and Publish")
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.ForkWindow <= 0 {
		c.ForkWindow = DefaultForkWindow
	}
	def(&c.ForkTime, DefaultForkTime)
	def(&c.PresenceInterval, DefaultPresenceInterval)
	def(&c.PresenceTTL, DefaultPresenceTTL)
	def(&c.RemovalDelay, DefaultRemovalDelay)
	if c.BufferBytes <= 0 {
		c.BufferBytes = DefaultBufferBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Message is an application message of another member.
type Message struct {
	// From is the sending member.
	From identity.AgentID
	// Data is the message; the receiver owns it.
	Data []byte
	// Epoch is the epoch it was sent in.
	Epoch uint64
	// Seq is the sender's sequence number (rising per sender).
	Seq uint64
}

// EventKind is the kind of a group Event.
type EventKind uint8

// Event kinds.
const (
	// EventMemberJoined: Agent became a member.
	EventMemberJoined EventKind = iota + 1
	// EventMemberLeft: Agent is no longer a member.
	EventMemberLeft
	// EventEpochChanged: the group moved to Epoch (a commit, or a fork
	// choice that replaced the epoch's commit).
	EventEpochChanged
	// EventRemoved: this member was removed (or left); the group is
	// closed.
	EventRemoved
	// EventOnline: Agent sent a presence beacon after being offline.
	EventOnline
)

// String returns the kind's name.
func (k EventKind) String() string {
	switch k {
	case EventMemberJoined:
		return "member-joined"
	case EventMemberLeft:
		return "member-left"
	case EventEpochChanged:
		return "epoch-changed"
	case EventRemoved:
		return "removed"
	case EventOnline:
		return "online"
	}
	return "invalid"
}

// Event is a change of the group.
type Event struct {
	Kind  EventKind
	Agent identity.AgentID // MemberJoined, MemberLeft, Online
	Epoch uint64           // the epoch after the change
}

// Group is one member's replica of a group. Its methods are safe for
// concurrent use.
type Group struct {
	id  ID
	cfg Config

	mu          sync.Mutex
	cur         *mls.Group
	history     []*forkPoint // oldest first
	buffer      []buffered   // oldest first
	bufSize     int
	unknown     []buffered // from agents not known as members, oldest first
	unknownSize int
	sent        []sentMessage // own messages of the fork window, oldest first
	seq         uint64
	seen        map[identity.AgentID]*seqWindow
	ever        map[identity.AgentID]bool // every agent ever a member (task-list writers)
	members     []identity.AgentID        // by leaf index (zero for blank leaves)
	keys        []epochKey                // oldest first
	online      map[identity.AgentID]time.Time
	removal     map[identity.AgentID]clock.Timer // scheduled removal turns
	beacon      clock.Timer
	stats       Stats
	// mustUpdate: the state was restored from a snapshot that may predate
	// messages this member sent; it commits a key update before sending.
	mustUpdate bool
	restored   bool // started from a snapshot that may predate what it sent
	closed     bool
	changed    bool     // the epoch changed since the buffer was last drained
	out        []func() // callbacks to run once the lock is released
}

// forkPoint is a commit this member applied, with the state before it.
type forkPoint struct {
	epoch  uint64     // the epoch the commit was made in
	before *mls.Group // the state before the commit
	hash   [32]byte   // BLAKE3 of the commit message
	at     time.Time  // when it was applied
	mine   *intent    // this member's own commit: what it did
}

// intent is what one of this member's commits meant to do.
type intent struct {
	add    []identity.AgentID
	remove []identity.AgentID
	update bool
}

// buffered is a message this member could not process yet.
type buffered struct {
	msg    []byte
	origin identity.AgentID
	epoch  uint64
}

// sentMessage is an own message kept to be re-sent if its epoch loses.
type sentMessage struct {
	epoch uint64
	env   []byte // the encoded envelope
}

func mlsConfig(cfg *Config) *mls.Config {
	return &mls.Config{
		Now:                cfg.Clock.Now,
		MaxMessageSize:     MaxMessageSize,
		ValidateCredential: validateCredential,
		EncryptHandshake:   true,
		PastEpochs:         cfg.ForkWindow,
		PaddingBlock:       32,
	}
}

// validateCredential requires a basic credential naming the AgentID of the
// leaf's signature key.
func validateCredential(c mls.Credential, signatureKey []byte) error {
	if len(c.Certificates) != 0 {
		return errors.New("group: X.509 credentials are not used in x0x groups")
	}
	if len(c.Identity) != identity.IDSize || identity.DeriveID(signatureKey) != identity.ID(c.Identity) {
		return errors.New("group: credential is not the AgentID of the signature key")
	}
	return nil
}

// Credential returns the MLS credential of agent k.
func credential(k *identity.KeyPair) mls.Credential {
	id := k.ID()
	return mls.Credential{Identity: id[:]}
}

// NewKeyPackage creates a key package for self in the groups' suite; it
// is single use: publish KeyPackage(), keep the value until a Welcome for
// it arrives (JoinGroup) or it is discarded, then Wipe it.
func NewKeyPackage(self *identity.KeyPair, clk clock.Clock) (*mls.PrivateKeyPackage, error) {
	if clk == nil {
		clk = clock.Real()
	}
	return mls.NewKeyPackage(Suite, credential(self), self.PrivateBytes(), &mls.Config{Now: clk.Now})
}

// KeyPackageAgent checks that keyPackage is a valid key package of the
// groups' suite, valid at clk's time (nil: the real clock), and returns the
// agent it belongs to. Errors: ErrBadKeyPackage.
func KeyPackageAgent(keyPackage []byte, clk clock.Clock) (identity.AgentID, error) {
	if clk == nil {
		clk = clock.Real()
	}
	info, err := mls.InspectKeyPackage(keyPackage, &mls.Config{Now: clk.Now, MaxMessageSize: MaxMessageSize, ValidateCredential: validateCredential})
	if err != nil {
		return identity.AgentID{}, fmt.Errorf("%w: %w", ErrBadKeyPackage, err)
	}
	if info.CipherSuite != Suite {
		return identity.AgentID{}, fmt.Errorf("%w: suite %v", ErrBadKeyPackage, info.CipherSuite)
	}
	return identity.AgentID(info.Credential.Identity), nil
}

// Create creates a group with this agent as its only member.
func Create(id ID, cfg Config) (*Group, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	g, err := mls.CreateGroup(Suite, id[:], credential(cfg.Self), cfg.Self.PrivateBytes(), mlsConfig(&cfg))
	if err != nil {
		return nil, err
	}
	return start(id, cfg, g), nil
}

// Join joins a group from a Welcome addressed to kp (which the caller
// wipes after): JoinMLS, then Open.
func Join(welcome []byte, kp *mls.PrivateKeyPackage, cfg Config) (*Group, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	st, err := mls.JoinGroup(welcome, kp, nil, mlsConfig(&cfg))
	if err != nil {
		return nil, err
	}
	g, err := Open(st, cfg)
	if err != nil {
		st.Close()
	}
	return g, err
}

// JoinMLS opens a Welcome addressed to kp into an MLS group state with the
// groups' policies (credentials must name their key's agent), checking
// everything RFC 9420 requires; clk nil means the real clock. The caller
// owns the state: Open it, or Close it. kp is not wiped.
func JoinMLS(welcome []byte, kp *mls.PrivateKeyPackage, clk clock.Clock) (*mls.Group, error) {
	cfg := Config{Clock: clk}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	cfg.ForkWindow = DefaultForkWindow
	return mls.JoinGroup(welcome, kp, nil, mlsConfig(&cfg))
}

// Open starts a group replica from an MLS state (JoinMLS's); the Group
// owns st from then on. Errors: a Config error, ErrMalformed (a group ID
// that is not 32 bytes; st is then not taken).
func Open(st *mls.Group, cfg Config) (*Group, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if len(st.GroupID()) != len(ID{}) {
		return nil, fmt.Errorf("%w: group ID of %d bytes", ErrMalformed, len(st.GroupID()))
	}
	return start(ID(st.GroupID()), cfg, st), nil
}

func start(id ID, cfg Config, g *mls.Group) *Group {
	gr := newReplica(id, cfg, g)
	gr.startTimers(true)
	return gr
}

// newReplica builds a replica around an MLS state, without timers.
func newReplica(id ID, cfg Config, g *mls.Group) *Group {
	gr := &Group{
		id: id, cfg: cfg, cur: g,
		seq:     uint64(cfg.Clock.Now().UnixNano()), // keeps rising across restarts
		seen:    map[identity.AgentID]*seqWindow{},
		ever:    map[identity.AgentID]bool{},
		online:  map[identity.AgentID]time.Time{},
		removal: map[identity.AgentID]clock.Timer{},
	}
	gr.members = memberIDs(g)
	for _, m := range cfg.PastMembers {
		gr.ever[m] = true
	}
	for _, m := range gr.members {
		if !m.IsZero() {
			gr.ever[m] = true
		}
	}
	gr.deriveKeyLocked()
	return gr
}

// startTimers starts the presence beacons, announcing this member at once
// if announce is set.
func (g *Group) startTimers(announce bool) {
	g.mu.Lock()
	defer g.unlock()
	if announce {
		if err := g.sendLocked(kindPresence, nil); err != nil {
			g.cfg.Logger.Debug("group: presence beacon failed", "group", g.id.Short(), "err", err)
		}
	}
	g.scheduleBeaconLocked()
}

// Stats counts what a group replica did about forks and buffering.
type Stats struct {
	// Rollbacks: commits this replica undid because a competing commit
	// of the same epoch won.
	Rollbacks uint64
	// Resent: own messages published again after their epoch lost.
	Resent uint64
	// Redone: own commits made again (or handed to Reinvite) after they
	// lost.
	Redone uint64
	// Buffered: messages kept for an epoch not reached yet.
	Buffered uint64
	// Evicted: buffered messages dropped for the byte budget.
	Evicted uint64
}

// Stats returns the replica's counters.
func (g *Group) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stats
}

// ID returns the group's ID.
func (g *Group) ID() ID { return g.id }

// Epoch returns the current epoch.
func (g *Group) Epoch() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cur.Epoch()
}

// Members returns the current members, sorted.
func (g *Group) Members() []identity.AgentID {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]identity.AgentID, 0, len(g.members))
	for _, m := range g.members {
		if !m.IsZero() {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b identity.AgentID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// IsMember reports whether agent is a current member.
func (g *Group) IsMember(agent identity.AgentID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Contains(g.members, agent)
}

// WasMember reports whether agent is or was a member in an epoch this
// replica saw (the writers of the group's task lists).
func (g *Group) WasMember(agent identity.AgentID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ever[agent]
}

// EverMembers returns every agent WasMember accepts, sorted (what an
// inviter hands a joiner as Config.PastMembers).
func (g *Group) EverMembers() []identity.AgentID {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]identity.AgentID, 0, len(g.ever))
	for m := range g.ever {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b identity.AgentID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// Online returns the members that sent a presence beacon within the
// presence TTL (this member always), sorted.
func (g *Group) Online() []identity.AgentID {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.cfg.Clock.Now()
	self := g.cfg.Self.ID()
	var out []identity.AgentID
	for _, m := range g.members {
		if m == self || (!m.IsZero() && now.Sub(g.online[m]) <= g.cfg.PresenceTTL) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b identity.AgentID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// EpochAuthenticator returns the current epoch's authenticator, equal on
// every member of the epoch (compare it out of band to detect a fork or
// an impersonation).
func (g *Group) EpochAuthenticator() ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, ErrClosed
	}
	return g.cur.EpochAuthenticator()
}

// Closed reports whether the group is closed (Close, or this member was
// removed).
func (g *Group) Closed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// Close stops the group's timers and zeroes its secrets.
func (g *Group) Close() {
	g.mu.Lock()
	g.closeLocked()
	g.mu.Unlock()
}

func (g *Group) closeLocked() {
	if g.closed {
		return
	}
	g.closed = true
	if g.beacon != nil {
		g.beacon.Stop()
	}
	for _, t := range g.removal {
		t.Stop()
	}
	g.removal = nil
	for _, fp := range g.history {
		fp.before.Close()
	}
	g.history = nil
	g.cur.Close()
	for _, k := range g.keys {
		clear(k.secret)
	}
	g.keys = nil
	g.buffer, g.bufSize, g.sent = nil, 0, nil
}

// unlock releases the lock and runs the callbacks queued under it.
func (g *Group) unlock() {
	out := g.out
	g.out = nil
	g.mu.Unlock()
	for _, f := range out {
		f()
	}
}

// emitLocked queues an event.
func (g *Group) emitLocked(ev Event) {
	if f := g.cfg.OnEvent; f != nil {
		g.out = append(g.out, func() { f(ev) })
	}
}

// memberIDs returns the agents of g's leaves, by leaf index.
func memberIDs(g *mls.Group) []identity.AgentID {
	ms := g.Members()
	n := 0
	for _, m := range ms {
		n = max(n, int(m.Index)+1)
	}
	out := make([]identity.AgentID, n)
	for _, m := range ms {
		if len(m.Credential.Identity) == identity.IDSize {
			out[m.Index] = identity.AgentID(m.Credential.Identity)
		}
	}
	return out
}

// leafOf returns agent's leaf index in the current epoch.
func (g *Group) leafOfLocked(agent identity.AgentID) (uint32, bool) {
	i := slices.Index(g.members, agent)
	return uint32(i), i >= 0
}
