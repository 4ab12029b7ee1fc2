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
//	for ev := range a.Events() { ... }
//
// Every Agent also runs the gossip overlay (HyParView + SWIM membership,
// Plumtree topics; see core/pubsub) on its node; JoinNetwork joins it:
//
//	sub, err := a.Subscribe("news")
//	_, err = a.Publish(ctx, "news", []byte("hi"))
//	for m := range sub.C { ... } // m.Origin's ML-DSA-65 signature was verified
//
// Overlay changes are reported to WatchMembership and WatchTopics listeners
// (not on the Events channel).
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
	"path/filepath"
	"strings"
	"sync"
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

// Identity types, re-exported so that callers need only this package.
type (
	// ID is a 32-byte identity hash: SHA-256("AUTONOMI_PEER_ID_V2:" || public key).
	ID = identity.ID
	// AgentID identifies an agent (portable across machines).
	AgentID = identity.AgentID
	// MachineID identifies a machine; it is the transport PeerID.
	MachineID = identity.MachineID
	// PeerID identifies a connected node (equal to its MachineID).
	PeerID = identity.PeerID
	// KeyPair is an ML-DSA-65 key pair.
	KeyPair = identity.KeyPair
)

// Event is something that happened on an agent's node; Kind says which
// fields are set. See the EventKind constants.
type Event = transport.Event

// EventKind says what an Event reports.
type EventKind = transport.EventKind

// Event kinds.
const (
	EventPeerConnected             = transport.EventPeerConnected
	EventPeerDisconnected          = transport.EventPeerDisconnected
	EventConnectionFailed          = transport.EventConnectionFailed
	EventExternalAddressDiscovered = transport.EventExternalAddressDiscovered
	EventAgentsChanged             = transport.EventAgentsChanged
	EventDirectMessage             = transport.EventDirectMessage
	// EventNatTypeDetected reports this node's NAT mapping behaviour in
	// Event.NAT ("none", "endpoint-independent", "endpoint-dependent") and
	// its external address in Event.Addr; it is emitted again on a change.
	EventNatTypeDetected = transport.EventNatTypeDetected
)

// Services are the roles a node offers its peers (see WithServices).
type Services = transport.Services

// Roles a node can offer.
const (
	// ServiceCoordinator passes hole-punch requests between its peers.
	ServiceCoordinator = transport.ServiceCoordinator
	// ServiceRelay forwards relayed connections' packets between its peers.
	ServiceRelay = transport.ServiceRelay
)

// ParseServices parses a comma-separated list of "coordinator" and "relay".
func ParseServices(list string) (Services, error) { return transport.ParseServices(list) }

// Path says how ConnectPeer reached a peer: directly or through a relay,
// and after how many hole-punch attempts.
type Path = nat.Path

// ParseID parses a 64-hex-digit ID.
func ParseID(s string) (ID, error) { return identity.ParseID(s) }

// Defaults of the Builder.
const (
	// DefaultPort is the UDP port of a node daemon.
	DefaultPort = 12000
	// PeerCacheFile is the peer cache's file name in the data directory.
	PeerCacheFile = "peers.cbor"
	// DefaultCachedPeers is how many cached peers JoinNetwork dials.
	DefaultCachedPeers = 5
)

// ErrNoBootstrap is returned by JoinNetwork when there is nobody to contact:
// no bootstrap peers and an empty peer cache.
var ErrNoBootstrap = errors.New("x0x: no bootstrap peers and no cached peers to join")

// ErrClosed is returned by calls on a closed Agent.
var ErrClosed = errors.New("x0x: agent closed")

// Builder configures and builds an Agent. Its zero value is not usable;
// start from NewBuilder. Each With method returns the Builder for chaining.
type Builder struct {
	dataDir        string
	machineKeyPath string
	agentKey       *identity.KeyPair
	passphrase     []byte
	kdf            keystore.KDFParams
	bindAddr       string
	bootstrap      []string
	network        string
	clk            clock.Clock
	rand           io.Reader
	logger         *slog.Logger
	services       Services
	tune           func(*transport.Config)
}

// NewBuilder returns a Builder with the defaults: data directory
// keystore.DefaultDir() ($X0X_HOME or ~/.x0x), loopback bind address on an
// ephemeral port, the local network (no built-in bootstrap peers).
func NewBuilder() *Builder { return &Builder{network: NetworkLocal} }

// WithDataDir sets the data directory holding keys and the peer cache.
func (b *Builder) WithDataDir(dir string) *Builder { b.dataDir = dir; return b }

// WithMachineKey sets the path of the machine key file (default
// <data dir>/machine.key). It is created on first run and loaded after; it
// is sealed with the data directory's local secret (and passphrase).
func (b *Builder) WithMachineKey(path string) *Builder { b.machineKeyPath = path; return b }

// WithAgentKey uses kp as the agent identity instead of the data
// directory's agent.key (e.g. one imported with ImportIdentity). It is saved
// to the data directory only if SaveAgentKey is called.
func (b *Builder) WithAgentKey(kp *KeyPair) *Builder { b.agentKey = kp; return b }

// WithPassphrase seals (and unseals) the key files with a passphrase
// stretched by Argon2id in addition to the local secret. The Builder copies it.
func (b *Builder) WithPassphrase(p []byte) *Builder {
	b.passphrase = append([]byte(nil), p...)
	return b
}

// WithKDF sets the Argon2id parameters used when a passphrase seals a key
// file (default keystore.DefaultKDFParams; tests use cheaper ones).
func (b *Builder) WithKDF(p keystore.KDFParams) *Builder { b.kdf = p; return b }

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

// WithClock injects the time source (default the real clock).
func (b *Builder) WithClock(c clock.Clock) *Builder { b.clk = c; return b }

// WithRand injects the randomness source (default crypto/rand).
func (b *Builder) WithRand(r io.Reader) *Builder { b.rand = r; return b }

// WithLogger sets a logger for diagnostics (default: discard).
func (b *Builder) WithLogger(l *slog.Logger) *Builder { b.logger = l; return b }

// WithTransportConfig lets the caller adjust the transport configuration
// (timeouts, limits) after the Builder has filled it in.
func (b *Builder) WithTransportConfig(f func(*transport.Config)) *Builder { b.tune = f; return b }

// Build loads or creates the machine and agent keys, opens the peer cache
// and starts the node. Errors from the key files are *keystore.FileError
// values naming the file (match the cause with errors.Is, e.g.
// keystore.ErrWrongPassphrase); nothing on disk is overwritten.
func (b *Builder) Build(ctx context.Context) (*Agent, error) {
	seeds, err := BootstrapPeers(b.network)
	if err != nil {
		return nil, err
	}
	boot, err := parseBootstrap(append(seeds, b.bootstrap...))
	if err != nil {
		return nil, err
	}
	dir := b.dataDir
	if dir == "" {
		if dir, err = keystore.DefaultDir(); err != nil {
			return nil, err
		}
	}
	opts := keystore.Options{Passphrase: b.passphrase, Rand: b.rand, KDF: b.kdf, MachineKeyPath: b.machineKeyPath}
	store, err := keystore.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	defer store.Close()
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
	cache, err := peercache.Open(filepath.Join(dir, PeerCacheFile), b.rand, clk)
	if err != nil {
		return nil, err
	}
	cfg := transport.Config{
		BindAddr:  b.bindAddr,
		Machine:   machine,
		Clock:     clk,
		Rand:      b.rand,
		Logger:    b.logger,
		PeerCache: cacheAdapter{cache},
		Services:  b.services,
	}
	if b.tune != nil {
		b.tune(&cfg)
	}
	node, err := transport.Listen(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cert, err := node.AddAgent(agentKey)
	if err != nil {
		node.Close()
		return nil, err
	}
	traversal, err := nat.New(nat.Config{Node: node, Clock: clk, Logger: b.logger})
	if err != nil {
		node.Close()
		return nil, err
	}
	a := &Agent{
		node: node, nat: traversal, machine: machine, agent: agentKey, cert: cert,
		cache: cache, dataDir: dir, bootstrap: boot,
		clk: clk, rnd: b.rand, logger: b.logger, closed: make(chan struct{}),
	}
	if err := a.startOverlay(clk, b.rand); err != nil {
		traversal.Close()
		node.Close()
		return nil, err
	}
	return a, nil
}

// bootstrapPeer is a parsed bootstrap address.
type bootstrapPeer struct {
	peer identity.PeerID // zero when not pinned
	addr string
}

func parseBootstrap(addrs []string) ([]bootstrapPeer, error) {
	out := make([]bootstrapPeer, 0, len(addrs))
	for _, a := range addrs {
		var bp bootstrapPeer
		if id, addr, ok := strings.Cut(a, "@"); ok {
			peer, err := identity.ParseID(id)
			if err != nil {
				return nil, fmt.Errorf("x0x: bootstrap %q: %w", a, err)
			}
			bp.peer, a = peer, addr
		}
		if _, _, err := splitHostPort(a); err != nil {
			return nil, fmt.Errorf("x0x: bootstrap %q: %w", a, err)
		}
		bp.addr = a
		out = append(out, bp)
	}
	return out, nil
}

// Agent is an x0x agent running on a node of this process. Its methods are
// safe for concurrent use.
type Agent struct {
	node      *transport.Node
	nat       *nat.Service // NAT traversal; the overlay runs on it
	machine   *identity.KeyPair
	agent     *identity.KeyPair
	cert      *identity.AgentCert
	cache     *peercache.Cache
	dataDir   string
	bootstrap []bootstrapPeer

	// The gossip overlay (membership + pub/sub) and its key resolver.
	overlay *pubsub.Overlay
	keys    *keyService
	subMu   sync.Mutex
	subs    map[*Subscription]struct{} // nil once closed
	// Addresses of connected peers as dialled or seen (overlay contacts).
	addrMu    sync.Mutex
	peerAddrs map[PeerID]string
	held      map[PeerID]bool // peers kept connected and held in membership

	// Injected dependencies, kept for the task lists.
	clk    clock.Clock
	rnd    io.Reader // nil: crypto/rand
	logger *slog.Logger
	lists  taskLists

	closed chan struct{} // closed by Close

	closeOnce sync.Once
	closeErr  error
}

// AgentID returns the agent's ID.
func (a *Agent) AgentID() AgentID { return a.agent.ID() }

// MachineID returns the machine's ID (the node's PeerID).
func (a *Agent) MachineID() MachineID { return a.machine.ID() }

// Certificate returns the certificate binding the agent to this machine.
func (a *Agent) Certificate() *identity.AgentCert { return a.cert }

// Addr returns the UDP address the node listens on.
func (a *Agent) Addr() string { return a.node.LocalAddr() }

// DataDir returns the data directory holding the keys and peer cache.
func (a *Agent) DataDir() string { return a.dataDir }

// Node returns the transport node (for daemons and tests that need its
// counters or lower-level calls).
func (a *Agent) Node() *transport.Node { return a.node }

// Events returns the agent's event channel: connections, agent
// announcements and direct messages. It is closed by Close. Events that
// are not read in time are dropped and counted (Stats().EventsDropped).
func (a *Agent) Events() <-chan Event { return a.node.Events() }

// JoinNetwork connects to every bootstrap peer (keeping them connected:
// lost connections are redialled with backoff) and to the best cached
// peers, then joins the gossip overlay through the connected bootstrap
// peers (they become HyParView contacts; an overlay join failure is
// returned wrapped). It returns nil once at least one connection is up and
// the overlay is joined, or an error joining every failure (ErrNoBootstrap
// if there was nobody to try).
func (a *Agent) JoinNetwork(ctx context.Context) error {
	var errs []error
	var contacts []membership.NodeDesc
	connected := 0
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
				_ = a.keepConnected(peer, bp.addr) // keep trying a pinned peer
			}
			continue
		}
		connected++
		contacts = append(contacts, membership.NodeDesc{ID: peer, Addr: bp.addr})
		if err := a.keepConnected(peer, bp.addr); err != nil {
			errs = append(errs, err)
		}
	}
	n, err := a.node.ConnectCached(ctx, DefaultCachedPeers)
	connected += n
	if err != nil {
		errs = append(errs, err)
	}
	connected += a.connectCachedCoordinators(ctx)
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
	return fmt.Errorf("x0x: join failed: %w", errors.Join(errs...))
}

// cachedCoordinators is how many remembered coordinators JoinNetwork dials
// when no connected peer coordinates hole punches.
const cachedCoordinators = 2

// connectCachedCoordinators dials remembered coordinators (best first)
// when no connected peer offers coordination, so that hole punching works
// after a restart even if the bootstrap peers do not coordinate. It
// returns how many it connected.
func (a *Agent) connectCachedCoordinators(ctx context.Context) int {
	for _, p := range a.node.PeersInfo() {
		if p.Services.Has(ServiceCoordinator) {
			return 0
		}
	}
	got := 0
	for _, e := range a.cache.WithServices(uint8(ServiceCoordinator), cachedCoordinators) {
		if a.node.Connect(ctx, e.Peer, e.Addr) == nil {
			got++
		}
	}
	return got
}

// Connect dials a node at addr ("host:port" or "<peer id>@host:port") and
// keeps it connected, and joins the gossip overlay through it (so topics
// and task lists work over it). It returns the PeerID that proved itself
// there; a pinned ID that does not match fails with
// *transport.PeerMismatchError.
func (a *Agent) Connect(ctx context.Context, addr string) (PeerID, error) {
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
// carries it (see transport.Node.SendDirect for the errors). The caller may
// reuse payload after the call returns.
func (a *Agent) SendDirect(ctx context.Context, to AgentID, payload []byte) error {
	return a.node.SendDirect(ctx, a.agent.ID(), to, append([]byte(nil), payload...))
}

// ConnectPeer connects to the node peer, also behind a NAT: a direct dial
// to addr (its advertised address; may be empty), then hole punching
// coordinated by a connected coordinator, then a relay (see core/nat). It
// returns how the peer was reached; a relayed connection keeps trying to
// become direct in the background. Errors wrap nat.ErrUnreachable (with
// each way's error), transport.ErrPeerMismatch, or ctx's error.
func (a *Agent) ConnectPeer(ctx context.Context, peer PeerID, addr string) (Path, error) {
	return a.nat.ConnectPath(ctx, peer, addr)
}

// AdvertisedAddr returns the address this node tells the overlay to dial
// it at: its external address once peers see it at its own address (no
// NAT), else a local interface address, else Addr.
func (a *Agent) AdvertisedAddr() string { return a.nat.LocalAddr() }

// NATType returns this node's NAT mapping behaviour as learnt from its
// peers ("unknown" until two peers at different IPs have reported) and
// its external address ("" if unknown).
func (a *Agent) NATType() (kind string, external string) {
	r := a.nat.NAT()
	if r.External.IsValid() {
		external = r.External.String()
	}
	return r.Type.String(), external
}

// NATStats returns the NAT traversal counters.
func (a *Agent) NATStats() nat.Stats { return a.nat.Stats() }

// ConnectedPeers lists the peers with an authenticated connection.
func (a *Agent) ConnectedPeers() []PeerID { return a.node.Peers() }

// PeerAgents lists the agents a connected peer has announced.
func (a *Agent) PeerAgents(peer PeerID) []AgentID { return a.node.PeerAgents(peer) }

// WaitForAgent blocks until some connected peer carries agent, or ctx ends
// (ctx's error), or the agent is closed (ErrClosed).
func (a *Agent) WaitForAgent(ctx context.Context, agent AgentID) error {
	for {
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
// moving the agent to another machine (see ImportIdentity).
func (a *Agent) ExportIdentity(passphrase []byte) ([]byte, error) {
	return keystore.ExportAgent(a.agent, passphrase)
}

// ImportIdentity opens a bundle made by ExportIdentity. Errors wrap
// keystore.ErrWrongPassphrase, keystore.ErrUnsupportedVersion or
// keystore.ErrCorrupt. Use the key with Builder.WithAgentKey, and
// SaveAgentKey to make it the data directory's agent.
func ImportIdentity(bundle, passphrase []byte) (*KeyPair, error) {
	return keystore.ImportAgent(bundle, passphrase)
}

// SaveAgentKey makes kp the agent key stored in dir, replacing any
// existing agent.key atomically.
func SaveAgentKey(dir string, kp *KeyPair, passphrase []byte) error {
	store, err := keystore.Open(dir, keystore.Options{Passphrase: passphrase})
	if err != nil {
		return err
	}
	defer store.Close()
	return store.SaveAgentKey(kp)
}

// Close closes the task lists, stops the overlay (closing every Subscription), the node (closing every connection and the Events channel)
// and saves the peer cache. It is safe to call more than once; later calls
// return the first result.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		close(a.closed)
		listsErr := a.closeTaskLists()
		a.closeOverlay()
		a.nat.Close()
		a.closeErr = errors.Join(listsErr, a.node.Close(), a.cache.Save())
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
