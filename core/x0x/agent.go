// Package x0x is the public Go API of x0x: build an Agent (its machine and
// agent identities, loaded from or created in a data directory), join the
// network, talk to other agents and watch what happens.
//
//	a, err := x0x.NewBuilder().
//		WithDataDir(dir).
//		WithBootstrap("127.0.0.1:12000").
//		Build(ctx)
//	defer a.Close()
//	err = a.JoinNetwork(ctx)
//	err = a.SendDirect(ctx, peerAgent, []byte("hello"))
//
// Every Agent runs the gossip overlay (HyParView + SWIM membership, a
// Plumtree tree per topic) on its node. A topic is joined as a handle:
//
//	t, err := a.Join(ctx, "news")
//	defer t.Leave()
//	sub, err := t.Subscribe()
//	_, err = t.Publish(ctx, []byte("hi"))
//	m, err := sub.Next(ctx) // m.Origin's ML-DSA-65 signature was verified
//
// Everything that happens arrives on a Stream read with Next(ctx): topic
// messages (Topic.Subscribe), topic neighbour changes (Topic.Events),
// connections, direct messages and overlay membership changes
// (Agent.Events), task-list changes (TaskList.Changes). Streams are bounded;
// a reader that falls behind loses the oldest items and is told once with a
// *LaggedError (errors.Is(err, ErrLagged)); Close ends a stream and unblocks
// its Next with ErrClosed.
//
// Every call that may block takes a context. Errors match this package's
// sentinels with errors.Is (see ErrClosed and the others); no caller needs
// to import a layer below this package.
//
// Only one Go runtime can live in a process; the C ABI, Node and Python
// bindings all wrap this package.
package x0x

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/identity/keystore"
	"github.com/saorsa-labs/x0x-go/core/membership"
	"github.com/saorsa-labs/x0x-go/core/nat"
	"github.com/saorsa-labs/x0x-go/core/pubsub"
	"github.com/saorsa-labs/x0x-go/core/transport"
	"github.com/saorsa-labs/x0x-go/core/transport/peercache"
)

// Identity types. They are aliases of core/identity's: plain 32-byte
// values (comparable, usable as map keys, printable with String and Short)
// with no behaviour a caller could misuse, so the facade re-exports them
// rather than converting every ID at its boundary. Keys, certificates and
// the other identity types are not re-exported (see AgentKey).
type (
	// ID is a 32-byte identity hash: SHA-256("AUTONOMI_PEER_ID_V2:" || public key).
	ID = identity.ID
	// AgentID identifies an agent (portable across machines).
	AgentID = identity.AgentID
	// MachineID identifies a machine; it is the node's PeerID.
	MachineID = identity.MachineID
	// PeerID identifies a connected node (equal to its MachineID).
	PeerID = identity.PeerID
)

// ParseID parses a 64-hex-digit ID. Errors match ErrInvalidArgument.
func ParseID(s string) (ID, error) {
	id, err := identity.ParseID(s)
	if err != nil {
		return ID{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return id, nil
}

// AgentKey is an agent's ML-DSA-65 key pair, as ImportIdentity returns it
// (Builder.WithAgentKey runs an agent with it, SaveAgentKey stores it).
// It holds the private key in memory; it is immutable and safe for
// concurrent use. The zero value holds no key.
type AgentKey struct{ kp *identity.KeyPair }

// ID returns the agent's ID (zero for a nil or zero AgentKey).
func (k *AgentKey) ID() AgentID {
	if k == nil || k.kp == nil {
		return AgentID{}
	}
	return k.kp.ID()
}

// key returns the key pair, nil for a nil or zero AgentKey.
func (k *AgentKey) key() *identity.KeyPair {
	if k == nil {
		return nil
	}
	return k.kp
}

// Path says how ConnectPeer reached a peer.
type Path struct {
	// Relayed is true when the connection runs through a relay.
	Relayed bool
	// Via is the relay (zero for a direct connection).
	Via PeerID
	// Attempts is how many hole-punch attempts were made (0: a direct dial
	// or an existing connection sufficed).
	Attempts int
}

// PeerInfo describes the connection to a peer.
type PeerInfo struct {
	// ID is the peer's ID (its MachineID).
	ID PeerID
	// Addr is the peer's address as this node sees it (a relay address for
	// a relayed connection).
	Addr string
	// Relayed is true when the connection runs through a relay.
	Relayed bool
	// Via is the relay of a relayed connection (zero for a direct one).
	Via PeerID
	// Services are the roles the peer offers.
	Services Services
}

// Defaults of the Builder.
const (
	// DefaultPort is the UDP port of a node daemon.
	DefaultPort = 12000
	// PeerCacheFile is the peer cache's file name in the data directory.
	PeerCacheFile = "peers.cbor"
	// DefaultCachedPeers is how many cached peers JoinNetwork dials.
	DefaultCachedPeers = 5
)

// Builder configures and builds an Agent. Its zero value is not usable;
// start from NewBuilder. Each With method returns the Builder for
// chaining; settings are checked by Build.
type Builder struct {
	dataDir        string
	machineKeyPath string
	agentKey       *identity.KeyPair
	passphrase     []byte
	kdf            KDFParams
	bindAddr       string
	bootstrap      []string
	network        string
	clk            clock.Clock
	rand           io.Reader
	logger         *slog.Logger
	services       Services
	overlay        OverlayConfig
	conns          ConnectionConfig
}

// NewBuilder returns a Builder with the defaults: data directory $X0X_HOME
// or ~/.x0x, loopback bind address on an ephemeral port, the local network
// (no built-in bootstrap peers), the overlay and connection defaults.
func NewBuilder() *Builder { return &Builder{network: NetworkLocal} }

// WithDataDir sets the data directory holding keys, the peer cache and
// the task lists.
func (b *Builder) WithDataDir(dir string) *Builder { b.dataDir = dir; return b }

// WithMachineKey sets the path of the machine key file (default
// <data dir>/machine.key). It is created on first run and loaded after; it
// is sealed with the data directory's local secret (and passphrase).
func (b *Builder) WithMachineKey(path string) *Builder { b.machineKeyPath = path; return b }

// WithAgentKey uses k as the agent identity instead of the data
// directory's agent.key (e.g. one from ImportIdentity). It is saved to the
// data directory only if SaveAgentKey is called. A nil or zero k keeps the
// data directory's key.
func (b *Builder) WithAgentKey(k *AgentKey) *Builder { b.agentKey = k.key(); return b }

// WithPassphrase seals (and unseals) the key files with a passphrase
// stretched by Argon2id in addition to the local secret. The Builder copies it.
func (b *Builder) WithPassphrase(p []byte) *Builder {
	b.passphrase = append([]byte(nil), p...)
	return b
}

// WithKDF sets the Argon2id parameters used when a passphrase seals a key
// file (zero: DefaultKDFParams; tests use cheaper ones). Build refuses
// invalid parameters with a *ConfigError.
func (b *Builder) WithKDF(p KDFParams) *Builder { b.kdf = p; return b }

// WithBindAddr sets the UDP address to listen and dial from, e.g.
// "0.0.0.0:12000" (default "127.0.0.1:0").
func (b *Builder) WithBindAddr(addr string) *Builder { b.bindAddr = addr; return b }

// WithBootstrap adds bootstrap peers: "host:port", or "<peer id hex>@host:port"
// to also check the identity of the node there.
func (b *Builder) WithBootstrap(addrs ...string) *Builder {
	b.bootstrap = append(b.bootstrap, addrs...)
	return b
}

// WithNetwork selects a named network whose built-in bootstrap peers are
// added (NetworkLocal, the default, has none; NetworkTestnet is the public
// test network and is contacted only when chosen here).
func (b *Builder) WithNetwork(name string) *Builder { b.network = name; return b }

// WithServices makes the node offer roles to its peers: ServiceCoordinator
// (pass hole-punch requests) and ServiceRelay (forward relayed
// connections). Only publicly reachable nodes should offer them.
func (b *Builder) WithServices(s Services) *Builder { b.services = s; return b }

// WithOverlay tunes the gossip overlay (see OverlayConfig; zero fields
// keep their defaults).
func (b *Builder) WithOverlay(c OverlayConfig) *Builder { b.overlay = c; return b }

// WithConnections tunes the node's connections (see ConnectionConfig;
// zero fields keep their defaults).
func (b *Builder) WithConnections(c ConnectionConfig) *Builder { b.conns = c; return b }

// WithClock injects the time source (default the real clock; tests and
// simulations pass a virtual one).
func (b *Builder) WithClock(c clock.Clock) *Builder { b.clk = c; return b }

// WithRand injects the randomness source (default crypto/rand).
func (b *Builder) WithRand(r io.Reader) *Builder { b.rand = r; return b }

// WithLogger sets a logger for diagnostics (default: discard).
func (b *Builder) WithLogger(l *slog.Logger) *Builder { b.logger = l; return b }

// Build checks the settings, loads or creates the machine and agent keys,
// opens the peer cache and starts the node and its overlay. It may block
// on the file system and on binding the socket; ctx bounds it. Errors:
// *ConfigError (ErrInvalidArgument) for a bad setting or bootstrap
// address, *FileError naming a key file (match the cause with errors.Is,
// e.g. ErrWrongPassphrase, ErrCorrupt; nothing on disk is overwritten),
// ctx's error, or an operating-system error binding the socket.
func (b *Builder) Build(ctx context.Context) (*Agent, error) {
	a, err := b.build(orBackground(ctx))
	return a, translate(err)
}

func (b *Builder) build(ctx context.Context) (*Agent, error) {
	if b == nil {
		return nil, invalidArg("nil Builder")
	}
	if err := b.overlay.validate(); err != nil {
		return nil, err
	}
	if err := b.conns.validate(); err != nil {
		return nil, err
	}
	if err := b.kdf.validate(); err != nil {
		return nil, err
	}
	seeds, err := BootstrapPeers(b.network)
	if err != nil {
		return nil, err
	}
	boot, err := parseBootstrap(append(seeds, b.bootstrap...))
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir := b.dataDir
	if dir == "" {
		if dir, err = keystore.DefaultDir(); err != nil {
			return nil, err
		}
	}
	opts := keystore.Options{Passphrase: b.passphrase, Rand: b.rand, KDF: b.kdf.keystore(), MachineKeyPath: b.machineKeyPath}
	store, err := keystore.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	lock, err := lockDataDir(store.Dir())
	if err != nil {
		return nil, err
	}
	built := false
	defer func() {
		if !built {
			lock.Close()
		}
	}()
	machine, err := store.LoadOrCreateMachineKey()
	if err != nil {
		return nil, err
	}
	agentKey := b.agentKey
	if agentKey == nil {
		if agentKey, err = store.LoadOrCreateAgentKey(); err != nil {
			return nil, err
		}
	}
	clk := b.clk
	if clk == nil {
		clk = clock.Real()
	}
	logger := b.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cache, err := peercache.Open(filepath.Join(dir, PeerCacheFile), b.rand, clk)
	if err != nil {
		return nil, err
	}
	cfg := transport.Config{
		BindAddr:  b.bindAddr,
		Machine:   machine,
		Clock:     clk,
		Rand:      b.rand,
		Logger:    logger,
		PeerCache: cacheAdapter{cache},
		Services:  b.services.transport(),
	}
	b.conns.apply(&cfg)
	node, err := transport.Listen(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := node.AddAgent(agentKey); err != nil {
		node.Close()
		return nil, err
	}
	traversal, err := nat.New(nat.Config{Node: node, Clock: clk, Logger: logger})
	if err != nil {
		node.Close()
		return nil, err
	}
	a := &Agent{
		node: node, nat: traversal, machine: machine, agent: agentKey,
		cache: cache, dataDir: dir, bootstrap: boot, network: b.network,
		clk: clk, rnd: b.rand, logger: logger, closed: make(chan struct{}), pumpDone: make(chan struct{}),
	}
	a.events = fanout[Event]{size: eventSize, clone: cloneEvent, dropped: &a.drops.events}
	if err := a.startOverlay(clk, b.rand, b.overlay); err != nil {
		traversal.Close()
		node.Close()
		return nil, err
	}
	a.groups.init(a)
	if err := a.openGroupStore(); err != nil {
		a.closeGroups()
		a.closeOverlay()
		traversal.Close()
		node.Close()
		return nil, err
	}
	go a.pumpEvents(node.Events())
	a.lock, built = lock, true
	return a, nil
}

// bootstrapPeer is a parsed bootstrap address.
type bootstrapPeer struct {
	peer identity.PeerID // zero when not pinned
	addr string
}

// parseBootstrap parses "host:port" and "<id>@host:port" addresses;
// errors match ErrInvalidArgument.
func parseBootstrap(addrs []string) ([]bootstrapPeer, error) {
	out := make([]bootstrapPeer, 0, len(addrs))
	for _, a := range addrs {
		var bp bootstrapPeer
		if id, addr, ok := strings.Cut(a, "@"); ok {
			peer, err := identity.ParseID(id)
			if err != nil {
				return nil, invalidArg("bootstrap %q: %v", a, err)
			}
			bp.peer, a = peer, addr
		}
		if _, _, err := splitHostPort(a); err != nil {
			return nil, invalidArg("address %q: %v", a, err)
		}
		bp.addr = a
		out = append(out, bp)
	}
	return out, nil
}

// Agent is an x0x agent running on a node of this process. Its methods are
// safe for concurrent use. Build one with a Builder and stop it with Close.
type Agent struct {
	node      *transport.Node
	nat       *nat.Service // NAT traversal; the overlay runs on it
	machine   *identity.KeyPair
	agent     *identity.KeyPair
	cache     *peercache.Cache
	dataDir   string
	bootstrap []bootstrapPeer
	network   string   // the Builder's network name
	lock      *os.File // LockFile, locked until Close

	// The gossip overlay (membership + pub/sub) and its key resolver.
	overlay *pubsub.Overlay
	keys    *keyService
	// Topic handles (see topic.go).
	topics topicRegistry
	// Addresses of connected peers as dialled or seen (overlay contacts).
	addrMu    sync.Mutex
	peerAddrs map[PeerID]string
	held      map[PeerID]bool // peers kept connected and held in membership

	// events feeds the Events streams; pumpEvents (done: pumpDone) moves
	// the node's events to it.
	events   fanout[Event]
	pumpDone chan struct{}
	drops    streamDrops

	// Injected dependencies, kept for the task lists.
	clk    clock.Clock
	rnd    io.Reader // nil: crypto/rand
	logger *slog.Logger
	lists  taskLists
	groups groups

	closed chan struct{} // closed by Close

	closeOnce sync.Once
	closeErr  error
}

// streamDrops counts the items the agent's streams dropped, by source
// (reported by Metrics).
type streamDrops struct {
	events, messages, topicEvents, taskChanges atomic.Uint64
	groupWork                                  atomic.Uint64 // group messages dropped at a full worker queue
	groupSaves                                 atomic.Uint64 // failed saves of a group's state
}

// AgentID returns the agent's ID.
func (a *Agent) AgentID() AgentID { return a.agent.ID() }

// MachineID returns the machine's ID (the node's PeerID).
func (a *Agent) MachineID() MachineID { return a.machine.ID() }

// Addr returns the UDP address the node listens on.
func (a *Agent) Addr() string { return a.node.LocalAddr() }

// DataDir returns the data directory holding the keys, peer cache and
// task lists.
func (a *Agent) DataDir() string { return a.dataDir }

// JoinNetwork connects to every bootstrap peer (keeping them connected:
// lost connections are redialled with backoff) and to the best cached
// peers, then joins the gossip overlay through the connected bootstrap
// peers (they become HyParView contacts; an overlay join failure is
// returned wrapped). It blocks until then or until ctx ends. It returns nil
// once at least one connection is up and the overlay is joined, or an error
// joining every failure (ErrNoBootstrap if there was nobody to try;
// ErrClosed after Close).
func (a *Agent) JoinNetwork(ctx context.Context) error {
	ctx = orBackground(ctx)
	if a.isClosed() {
		return ErrClosed
	}
	return translate(a.joinNetwork(ctx))
}

// heldBootstrapServices bounds the bootstrap peers JoinNetwork keeps
// connected for the services they offer (hole-punch coordination,
// relaying); the others are overlay contacts only.
const heldBootstrapServices = 3

func (a *Agent) joinNetwork(ctx context.Context) error {
	var errs []error
	var contacts []membership.NodeDesc
	var failedPinned []bootstrapPeer
	connected, held := 0, 0
	for _, bp := range a.bootstrap {
		peer := bp.peer
		var err error
		if peer.IsZero() {
			peer, err = a.node.ConnectAddr(ctx, bp.addr)
		} else {
			err = a.node.Connect(ctx, peer, bp.addr)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("bootstrap %s: %w", bp.addr, err))
			if !peer.IsZero() {
				failedPinned = append(failedPinned, bp)
			}
			continue
		}
		connected++
		contacts = append(contacts, membership.NodeDesc{ID: peer, Addr: bp.addr})
		// A bootstrap peer is an entry point, not a neighbour for life:
		// only one that coordinates or relays is kept (this agent may
		// need it to reach peers behind NATs); the rest stay only if the
		// overlay makes them neighbours, and are otherwise closed after
		// the idle grace.
		if held < heldBootstrapServices && a.peerServices(peer) != 0 {
			held++
			if err := a.keepConnected(peer, bp.addr); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if held == 0 {
		// No reachable bootstrap peer offers a service: keep trying the
		// pinned ones that failed, which may (the usual case for a
		// network's bootstrap nodes).
		for _, bp := range failedPinned[:min(len(failedPinned), heldBootstrapServices)] {
			_ = a.keepConnected(bp.peer, bp.addr)
		}
	}
	n, err := a.node.ConnectCached(ctx, DefaultCachedPeers)
	connected += n
	if err != nil {
		errs = append(errs, err)
	}
	connected += a.connectCachedServices(ctx)
	if connected > 0 {
		if len(contacts) == 0 {
			// Only cached peers answered: use them as overlay contacts.
			contacts = a.cachedContacts()
		}
		if err := a.joinOverlay(ctx, contacts); err != nil {
			return fmt.Errorf("x0x: overlay join: %w", err)
		}
		return nil
	}
	if len(errs) == 0 {
		return ErrNoBootstrap
	}
	return joinFailure(a.network, errs)
}

// joinFailure is JoinNetwork's error when no peer answered; for the public
// test network it says why its seeds may stay silent.
func joinFailure(network string, errs []error) error {
	if strings.EqualFold(network, NetworkTestnet) {
		return fmt.Errorf("x0x: join failed: no testnet seed answered (they answer only if they run this Go "+
			"implementation of x0x, whose wire protocol is its own, not the Rust x0x's): %w", errors.Join(errs...))
	}
	return fmt.Errorf("x0x: join failed: %w", errors.Join(errs...))
}

// cachedServicePeers is how many remembered coordinators (and relays)
// JoinNetwork dials when no connected peer offers that service.
const cachedServicePeers = 2

// connectCachedServices dials remembered coordinators, then remembered
// relays (best first), each only when no connected peer offers that
// service, so that hole punching and the relay fallback work after a
// restart even if the bootstrap peers offer neither. It returns how many
// it connected.
func (a *Agent) connectCachedServices(ctx context.Context) int {
	got := 0
	for _, svc := range []transport.Services{transport.ServiceCoordinator, transport.ServiceRelay} {
		offered := false
		connected := make(map[PeerID]bool)
		for _, p := range a.node.PeersInfo() {
			connected[p.Peer] = true
			offered = offered || p.Services.Has(svc)
		}
		if offered {
			continue
		}
		for _, e := range a.cache.WithServices(uint8(svc), cachedServicePeers) {
			if !connected[e.Peer] && a.node.Connect(ctx, e.Peer, e.Addr) == nil {
				got++
			}
		}
	}
	return got
}

// Connect dials a node at addr ("host:port" or "<peer id>@host:port"),
// keeps it connected, and joins the gossip overlay through it (so topics
// and task lists work over it). It blocks until then or until ctx ends,
// and returns the PeerID that proved itself there. Errors:
// ErrInvalidArgument (a bad address), *PeerMismatchError (a pinned ID that
// does not match), ErrSelfConnect, ErrAuthFailed, ErrNotPostQuantum,
// ErrClosed, ctx's error, network errors.
func (a *Agent) Connect(ctx context.Context, addr string) (PeerID, error) {
	ctx = orBackground(ctx)
	if a.isClosed() {
		return PeerID{}, ErrClosed
	}
	p, err := a.connect(ctx, addr)
	return p, translate(err)
}

func (a *Agent) connect(ctx context.Context, addr string) (PeerID, error) {
	bps, err := parseBootstrap([]string{addr})
	if err != nil {
		return PeerID{}, err
	}
	bp := bps[0]
	peer := bp.peer
	if peer.IsZero() {
		peer, err = a.node.ConnectAddr(ctx, bp.addr)
	} else {
		err = a.node.Connect(ctx, peer, bp.addr)
	}
	if err != nil {
		return PeerID{}, err
	}
	if err := a.keepConnected(peer, bp.addr); err != nil {
		return peer, err
	}
	// The peer is also an overlay contact, so topics and task lists work
	// through a connection made this way as through JoinNetwork.
	if err := a.joinOverlay(ctx, []membership.NodeDesc{{ID: peer, Addr: bp.addr}}); err != nil {
		return peer, fmt.Errorf("x0x: overlay join through %s: %w", bp.addr, err)
	}
	return peer, nil
}

// SendDirect sends payload to agent to over the connection of a peer that
// carries it; it arrives as an EventDirectMessage. It blocks while the
// connection's queue is full, until ctx ends. The caller may reuse payload
// after the call returns. Errors: ErrNoRoute (no connected peer carries
// to), ErrPayloadTooLarge, ErrQueueFull, ErrNotConnected, ErrClosed, ctx's
// error.
func (a *Agent) SendDirect(ctx context.Context, to AgentID, payload []byte) error {
	ctx = orBackground(ctx)
	if a.isClosed() {
		return ErrClosed
	}
	return translate(a.node.SendDirect(ctx, a.agent.ID(), to, append([]byte(nil), payload...)))
}

// ConnectPeer connects to the node peer, also behind a NAT: a direct dial
// to addr (its advertised address; may be empty), then hole punching
// coordinated by a connected coordinator, then a relay. It blocks until
// then or until ctx ends, and returns how the peer was reached; a relayed
// connection keeps trying to become direct in the background. Unlike
// Connect, it does not join the overlay through the peer. Errors:
// ErrUnreachable (wrapping each way's error), ErrPeerMismatch, ErrClosed,
// ctx's error.
func (a *Agent) ConnectPeer(ctx context.Context, peer PeerID, addr string) (Path, error) {
	ctx = orBackground(ctx)
	if a.isClosed() {
		return Path{}, ErrClosed
	}
	p, err := a.nat.ConnectPath(ctx, peer, addr)
	return Path{Relayed: p.Relayed, Via: p.Via, Attempts: p.Attempts}, translate(err)
}

// AdvertisedAddr returns the address this node tells the overlay to dial
// it at: its external address once peers see it at its own address (no
// NAT), else a local interface address, else Addr.
func (a *Agent) AdvertisedAddr() string { return a.nat.LocalAddr() }

// NATType returns this node's NAT mapping behaviour as learnt from its
// peers ("none", "endpoint-independent", "endpoint-dependent", or
// "unknown" until two peers at different IPs have reported) and its
// external address ("" if unknown).
func (a *Agent) NATType() (kind string, external string) {
	r := a.nat.NAT()
	if r.External.IsValid() {
		external = r.External.String()
	}
	return r.Type.String(), external
}

// Peers describes the peers with an authenticated connection, in no
// particular order. The caller owns the slice.
func (a *Agent) Peers() []PeerInfo {
	infos := a.node.PeersInfo()
	out := make([]PeerInfo, len(infos))
	for i, p := range infos {
		out[i] = PeerInfo{ID: p.Peer, Addr: p.Addr, Relayed: p.Relayed, Via: p.Via, Services: servicesOf(p.Services)}
	}
	return out
}

// PeerAgents lists the agents a connected peer has announced (nil if it is
// not connected). The caller owns the slice.
func (a *Agent) PeerAgents(peer PeerID) []AgentID { return a.node.PeerAgents(peer) }

// peerServices returns the services a connected peer announced.
func (a *Agent) peerServices(peer PeerID) Services {
	for _, p := range a.node.PeersInfo() {
		if p.Peer == peer {
			return servicesOf(p.Services)
		}
	}
	return 0
}

// WaitForAgent blocks until some connected peer carries agent, or ctx ends
// (an error wrapping ctx's), or the agent is closed (ErrClosed). For this
// agent's own ID it returns at once.
func (a *Agent) WaitForAgent(ctx context.Context, agent AgentID) error {
	ctx = orBackground(ctx)
	if agent == a.agent.ID() && !a.isClosed() {
		return nil
	}
	for {
		if a.isClosed() {
			return ErrClosed
		}
		if len(a.node.AgentPeers(agent)) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("x0x: agent %s not reachable: %w", agent.Short(), ctx.Err())
		case <-a.closed:
			return ErrClosed
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ExportIdentity seals the agent key into a passphrase-protected bundle for
// moving the agent to another machine (see ImportIdentity). It runs
// Argon2id (about a quarter of a second). Errors: ErrInvalidArgument (an
// empty passphrase).
func (a *Agent) ExportIdentity(passphrase []byte) ([]byte, error) {
	b, err := keystore.ExportAgent(a.agent, passphrase)
	return b, translate(err)
}

// ImportIdentity opens a bundle made by ExportIdentity. Errors:
// ErrWrongPassphrase, ErrPassphraseRequired, ErrUnsupportedVersion,
// ErrCorrupt, ErrPayloadTooLarge. Use the key with Builder.WithAgentKey,
// and SaveAgentKey to make it the data directory's agent.
func ImportIdentity(bundle, passphrase []byte) (*AgentKey, error) {
	kp, err := keystore.ImportAgent(bundle, passphrase)
	if err != nil {
		return nil, translate(err)
	}
	return &AgentKey{kp: kp}, nil
}

// SaveAgentKey makes k the agent key stored in dir, replacing any
// existing agent.key atomically (sealed with passphrase if not empty).
// Errors: ErrInvalidArgument (a nil key), *FileError.
func SaveAgentKey(dir string, k *AgentKey, passphrase []byte) error {
	if k.key() == nil {
		return invalidArg("no agent key")
	}
	store, err := keystore.Open(dir, keystore.Options{Passphrase: passphrase})
	if err != nil {
		return translate(err)
	}
	defer store.Close()
	return translate(store.SaveAgentKey(k.kp))
}

// isClosed reports whether Close has been called.
func (a *Agent) isClosed() bool {
	select {
	case <-a.closed:
		return true
	default:
		return false
	}
}

// Close closes the task lists, leaves every topic (ending their streams),
// stops the overlay and the node (closing every connection and ending the
// Events streams) and saves the peer cache. It waits for the agent's
// goroutines. It is safe to call more than once; later calls return the
// first result.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		close(a.closed)
		groupsErr := a.closeGroups()
		listsErr := a.closeTaskLists()
		a.closeTopics()
		a.closeOverlay()
		a.nat.Close()
		nodeErr := a.node.Close()
		<-a.pumpDone
		a.events.close()
		a.closeErr = translate(errors.Join(groupsErr, listsErr, nodeErr, a.cache.Save()))
		a.lock.Close()
	})
	return a.closeErr
}

// cacheAdapter lets the peer cache serve the transport's PeerCache interface.
type cacheAdapter struct{ c *peercache.Cache }

func (ca cacheAdapter) Record(peer identity.PeerID, addr string, ok bool, rtt time.Duration) {
	ca.c.Record(peer, addr, ok, rtt)
}

func (ca cacheAdapter) RecordServices(peer identity.PeerID, addr string, s transport.Services) {
	ca.c.RecordServices(peer, addr, uint8(s))
}

func (ca cacheAdapter) Candidates(n int) []transport.PeerAddr {
	entries := ca.c.Select(n)
	out := make([]transport.PeerAddr, len(entries))
	for i, e := range entries {
		out[i] = transport.PeerAddr{Peer: e.Peer, Addr: e.Addr}
	}
	return out
}
