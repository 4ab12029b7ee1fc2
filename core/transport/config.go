package transport

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
)

// Limits and defaults. Durations and sizes in Config that are left zero take
// these values.
const (
	DefaultBindAddr         = "127.0.0.1:0"
	DefaultKeepAlive        = 15 * time.Second
	DefaultIdleTimeout      = 30 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultAuthTimeout      = 5 * time.Second
	DefaultMaxConnections   = 256
	DefaultMaxFrameSize     = 4 << 20
	DefaultQueueDepth       = 1024
	DefaultQueueBytes       = 32 << 20
	DefaultEventBuffer      = 1024
	DefaultMaxAgentsPerPeer = 64
	DefaultReconnectMin     = 1 * time.Second
	DefaultReconnectMax     = 60 * time.Second
	DefaultRedialCooldown   = 1 * time.Second
	DefaultFrameTimeout     = 30 * time.Second
	DefaultMaxConnsPerIP    = 64
	DefaultMaxPendingPerIP  = 32
	DefaultMaxPendingDials  = 64
	DefaultEvictMinAge      = 10 * time.Second

	// HardMaxFrameSize is the largest MaxFrameSize a Config may set.
	HardMaxFrameSize = 16 << 20
	// MinFrameSize is the smallest MaxFrameSize a Config may set.
	MinFrameSize = 1 << 10
)

// PeerAddr is a peer and an address to dial it at.
type PeerAddr struct {
	Peer identity.PeerID
	Addr string
}

// PeerCache is the persistent peer cache the node reports dial outcomes to
// and picks start-up peers from (core/transport/peercache implements the
// storage; wrap it to satisfy this interface). Implementations must be safe
// for concurrent use and must not block for long: Record is called on the
// dialling goroutine.
type PeerCache interface {
	// Record notes the outcome of a dial to peer at addr; rtt is the
	// smoothed round-trip time of a successful connection (0 on failure).
	Record(peer identity.PeerID, addr string, ok bool, rtt time.Duration)
	// Candidates returns up to n peers to connect to, best first (the cache
	// decides how to explore, e.g. epsilon-greedy). The node owns the
	// returned slice.
	Candidates(n int) []PeerAddr
	// RecordServices notes the roles peer offered when it was reached at
	// addr (after a successful Record), so that coordinators and relays
	// are remembered across restarts.
	RecordServices(peer identity.PeerID, addr string, s Services)
}

// Config configures a Node. Zero values take the documented defaults, so a
// Config with only Machine set is valid.
type Config struct {
	// BindAddr is the UDP address to listen and dial from (one socket for
	// both). Default "127.0.0.1:0" (loopback, ephemeral port); the daemon
	// passes its own.
	BindAddr string
	// Machine is the machine key; its ID is the node's PeerID. Required.
	Machine *identity.KeyPair

	// KeepAlive is the QUIC keep-alive period (default 15 s).
	KeepAlive time.Duration
	// IdleTimeout closes a connection with no network activity (default 30 s).
	IdleTimeout time.Duration
	// HandshakeTimeout bounds a dial: QUIC + TLS handshake (default 10 s).
	HandshakeTimeout time.Duration
	// AuthTimeout bounds the ML-DSA proof and hello exchange that follows
	// the TLS handshake (default 5 s).
	AuthTimeout time.Duration

	// MaxConnections caps open connections, inbound and outbound, including
	// those still authenticating (default 256). Beyond it dials fail with
	// ErrConnLimit and inbound connections are refused and counted. Dials
	// whose QUIC handshake is still running are bounded separately
	// (MaxPendingDials) and take no inbound slot.
	MaxConnections int
	// MaxConnsPerIP caps the inbound connections from one source IP
	// (default 64), and MaxPendingPerIP those of them still authenticating
	// (default 32): one host with many throwaway keys can take neither the
	// whole connection table nor every handshake slot. A relayed inbound
	// connection counts against the IP of the relay carrying it (the relay
	// is the only host it can be attributed to before it authenticates),
	// so a relay and the clients behind it share one host's limits.
	// Refusals count as ConnectionsRefused.
	MaxConnsPerIP   int
	MaxPendingPerIP int
	// EvictMinAge is how long an inbound connection must have been
	// established before the eviction policy (SetEvictionPolicy) may close
	// it to make room for a newcomer (default 10 s).
	EvictMinAge time.Duration
	// MaxPendingDials caps outbound dials in flight (default 64), so that
	// peers who make this node dial (overlay joins, punches) cannot hold
	// unbounded handshakes; further dials fail at once with ErrDialLimit.
	// Inbound connections are not refused because of outbound dials.
	MaxPendingDials int
	// MaxFrameSize is the hard cap on one message (default 4 MiB, at most
	// HardMaxFrameSize). Larger sends fail with link.ErrTooLarge; a larger frame
	// received is a protocol error that closes the connection, so all nodes
	// of a network must use the same value.
	MaxFrameSize int
	// QueueDepth bounds each connection's send queue per stream class and
	// priority, in frames (default 1024).
	QueueDepth int
	// QueueBytes bounds the bytes queued to one connection across all
	// classes (default 32 MiB).
	QueueBytes int
	// EventBuffer is the capacity of the Events channel (default 1024);
	// events that do not fit are dropped and counted.
	EventBuffer int
	// MaxAgentsPerPeer caps the agents one peer may announce (default 64);
	// extra certificates are rejected and counted.
	MaxAgentsPerPeer int
	// FrameTimeout bounds how long a frame on a class stream may take to
	// arrive once its header has (default 30 s); a peer that stalls
	// mid-frame longer is disconnected as a protocol violation.
	FrameTimeout time.Duration

	// Clock is the time source for timeouts, certificate checks and
	// reconnection (default the real clock).
	Clock clock.Clock
	// Rand is the randomness for TLS certificate keys, token keys and
	// backoff jitter (default crypto/rand). It need not be safe for
	// concurrent use; the node serialises access.
	Rand io.Reader

	// ReconnectMin and ReconnectMax bound the exponential backoff between
	// redials of persistent peers (defaults 1 s and 60 s); each delay is
	// jittered to between half and all of the nominal value.
	ReconnectMin time.Duration
	ReconnectMax time.Duration
	// RedialCooldown is the minimum time after a failed dial to a peer
	// before it is dialled again (default 1 s).
	RedialCooldown time.Duration

	// PeerCache, if set, receives dial outcomes and supplies ConnectCached.
	PeerCache PeerCache
	// ConnectCachedOnStart, if positive, makes Listen connect in the
	// background to that many peers from PeerCache (3-5 is typical).
	ConnectCachedOnStart int

	// Services are the roles this node offers its peers (advertised in the
	// hello of every connection): ServiceCoordinator, ServiceRelay.
	Services Services
	// Relay bounds the relay service per client (used with ServiceRelay).
	Relay RelayLimits

	// Logger receives debug and warning logs (nil discards them).
	Logger *slog.Logger
}

// DefaultConfig returns a Config for machine with every default filled in.
func DefaultConfig(machine *identity.KeyPair) Config {
	c := Config{Machine: machine}
	c.fill()
	return c
}

// fill replaces zero values by defaults.
func (c *Config) fill() {
	setDur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	setInt := func(i *int, v int) {
		if *i == 0 {
			*i = v
		}
	}
	if c.BindAddr == "" {
		c.BindAddr = DefaultBindAddr
	}
	setDur(&c.KeepAlive, DefaultKeepAlive)
	setDur(&c.IdleTimeout, DefaultIdleTimeout)
	setDur(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	setDur(&c.AuthTimeout, DefaultAuthTimeout)
	setInt(&c.MaxConnections, DefaultMaxConnections)
	setInt(&c.MaxConnsPerIP, DefaultMaxConnsPerIP)
	setInt(&c.MaxPendingPerIP, DefaultMaxPendingPerIP)
	setInt(&c.MaxPendingDials, DefaultMaxPendingDials)
	setInt(&c.MaxFrameSize, DefaultMaxFrameSize)
	setInt(&c.QueueDepth, DefaultQueueDepth)
	setInt(&c.QueueBytes, DefaultQueueBytes)
	setInt(&c.EventBuffer, DefaultEventBuffer)
	setInt(&c.MaxAgentsPerPeer, DefaultMaxAgentsPerPeer)
	setDur(&c.ReconnectMin, DefaultReconnectMin)
	setDur(&c.ReconnectMax, DefaultReconnectMax)
	setDur(&c.RedialCooldown, DefaultRedialCooldown)
	setDur(&c.FrameTimeout, DefaultFrameTimeout)
	setDur(&c.EvictMinAge, DefaultEvictMinAge)
	c.Relay.fill()
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// validate checks a filled Config.
func (c *Config) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(format, a...))
	}
	if c.Machine == nil {
		return bad("Machine key is required")
	}
	for name, d := range map[string]time.Duration{
		"KeepAlive": c.KeepAlive, "IdleTimeout": c.IdleTimeout, "HandshakeTimeout": c.HandshakeTimeout,
		"AuthTimeout": c.AuthTimeout, "ReconnectMin": c.ReconnectMin, "ReconnectMax": c.ReconnectMax,
		"RedialCooldown": c.RedialCooldown, "FrameTimeout": c.FrameTimeout,
	} {
		if d < 0 {
			return bad("%s is negative (%v)", name, d)
		}
	}
	if c.ReconnectMax < c.ReconnectMin {
		return bad("ReconnectMax %v is below ReconnectMin %v", c.ReconnectMax, c.ReconnectMin)
	}
	if c.MaxFrameSize < MinFrameSize || c.MaxFrameSize > HardMaxFrameSize {
		return bad("MaxFrameSize %d outside [%d, %d]", c.MaxFrameSize, MinFrameSize, HardMaxFrameSize)
	}
	for name, v := range map[string]int{
		"MaxConnections": c.MaxConnections, "QueueDepth": c.QueueDepth, "QueueBytes": c.QueueBytes,
		"MaxConnsPerIP": c.MaxConnsPerIP, "MaxPendingPerIP": c.MaxPendingPerIP, "MaxPendingDials": c.MaxPendingDials,
		"EventBuffer": c.EventBuffer, "MaxAgentsPerPeer": c.MaxAgentsPerPeer,
	} {
		if v < 0 {
			return bad("%s is negative (%d)", name, v)
		}
	}
	if err := c.Relay.validate(); err != nil {
		return err
	}
	if c.Services&^allServices != 0 {
		return bad("unknown services %s", c.Services)
	}
	if c.ConnectCachedOnStart < 0 {
		return bad("ConnectCachedOnStart is negative")
	}
	if c.ConnectCachedOnStart > 0 && c.PeerCache == nil {
		return bad("ConnectCachedOnStart needs a PeerCache")
	}
	return nil
}

// lockedReader serialises reads from a reader that is not safe for
// concurrent use.
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}
