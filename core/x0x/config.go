package x0x

import (
	"fmt"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity/keystore"
	"github.com/saorsa-labs/x0x-go/core/membership"
	"github.com/saorsa-labs/x0x-go/core/pubsub"
	"github.com/saorsa-labs/x0x-go/core/transport"
)

// OverlayConfig tunes the gossip overlay (Builder.WithOverlay). A zero
// field keeps the default noted beside it (DESIGN.md's roadmap values);
// Build refuses a negative or inconsistent value with a *ConfigError.
// Every node of a network should use compatible values: very different
// timers make neighbours suspect each other.
type OverlayConfig struct {
	// ActiveViewMin and ActiveViewMax bound the HyParView active view: the
	// overlay neighbours kept connected (8 and 12; at most 1024). When only
	// one is set, the other follows it (ActiveViewMin at most
	// ActiveViewMax, ActiveViewMax at least ActiveViewMin).
	ActiveViewMin int
	ActiveViewMax int
	// PassiveViewMax bounds the HyParView passive view: known peers kept
	// as replacements (128; at most 65,536).
	PassiveViewMax int
	// ShuffleInterval is the period of HyParView's passive-view shuffle
	// (30 s).
	ShuffleInterval time.Duration
	// ProbeInterval is SWIM's failure-detection period (1 s); the direct
	// probe timeout is half of it.
	ProbeInterval time.Duration
	// SuspectTimeout is how long a suspected peer has to refute before it
	// is declared dead once other nodes confirm the suspicion (2 s); an
	// unconfirmed suspicion lasts twice as long (Lifeguard). At least
	// ProbeInterval.
	SuspectTimeout time.Duration
	// IdleConnectionGrace is how long a connection that no layer uses (not
	// an overlay or topic neighbour, not held for its services, not opened
	// with Connect) stays open (10 s). Bootstrap peers that offer no
	// service are released this way once the agent has joined.
	IdleConnectionGrace time.Duration
	// TopicMaxPeers bounds each topic's neighbours (12; at most 1024).
	TopicMaxPeers int
	// IHaveInterval is how long lazy IHAVE announcements are batched
	// (150 ms).
	IHaveInterval time.Duration
	// GraftTimeout is how long a node waits for a message announced by
	// IHAVE before it grafts the announcer into its tree (250 ms).
	GraftTimeout time.Duration
	// AntiEntropyInterval is the period of the IBLT reconciliation with a
	// topic neighbour (30 s); it must be shorter than DedupTTL.
	AntiEntropyInterval time.Duration
	// DedupTTL is how long message IDs are remembered, and the oldest
	// message age accepted (5 min).
	DedupTTL time.Duration
	// TopicStoreBytes is the bytes of messages (payload, 3,309-byte
	// signature, header) kept per topic for repairs (GRAFT, IWANT,
	// anti-entropy), oldest evicted first (8 MiB; at least MaxPayload).
	TopicStoreBytes int
}

// Bounds of OverlayConfig values.
const (
	maxActiveView  = 1024
	maxPassiveView = 1 << 16
	maxTopicPeers  = 1024
	minInterval    = time.Millisecond
)

// Layer defaults the OverlayConfig documentation names (they are applied
// by the layers; these copies only serve the consistency checks).
const (
	defActiveMin     = 8
	defActiveMax     = 12
	defProbeInterval = time.Second
	defSuspect       = 2 * time.Second
	defAEInterval    = 30 * time.Second
	defDedupTTL      = 5 * time.Minute
	defAEWindow      = 4 * time.Minute
)

// validate checks c; the errors are *ConfigError.
func (c OverlayConfig) validate() error {
	bad := func(field, format string, a ...any) error {
		return &ConfigError{Setting: "OverlayConfig." + field, Reason: fmt.Sprintf(format, a...)}
	}
	if err := checkFields("OverlayConfig",
		[]field[int]{{"ActiveViewMin", c.ActiveViewMin}, {"ActiveViewMax", c.ActiveViewMax},
			{"PassiveViewMax", c.PassiveViewMax}, {"TopicMaxPeers", c.TopicMaxPeers}, {"TopicStoreBytes", c.TopicStoreBytes}},
		[]field[time.Duration]{{"ShuffleInterval", c.ShuffleInterval}, {"ProbeInterval", c.ProbeInterval},
			{"IdleConnectionGrace", c.IdleConnectionGrace},
			{"SuspectTimeout", c.SuspectTimeout}, {"IHaveInterval", c.IHaveInterval}, {"GraftTimeout", c.GraftTimeout},
			{"AntiEntropyInterval", c.AntiEntropyInterval}, {"DedupTTL", c.DedupTTL}}); err != nil {
		return err
	}
	activeMin, activeMax := c.ActiveViewMin, c.ActiveViewMax
	switch {
	case activeMin == 0 && activeMax == 0:
		activeMin, activeMax = defActiveMin, defActiveMax
	case activeMin == 0:
		activeMin = min(defActiveMin, activeMax)
	case activeMax == 0:
		activeMax = max(defActiveMax, activeMin)
	}
	switch {
	case activeMax > maxActiveView:
		return bad("ActiveViewMax", "%d is over %d", activeMax, maxActiveView)
	case activeMax < activeMin:
		return bad("ActiveViewMax", "%d is below ActiveViewMin %d", activeMax, activeMin)
	case c.PassiveViewMax > maxPassiveView:
		return bad("PassiveViewMax", "%d is over %d", c.PassiveViewMax, maxPassiveView)
	case c.TopicMaxPeers > maxTopicPeers:
		return bad("TopicMaxPeers", "%d is over %d", c.TopicMaxPeers, maxTopicPeers)
	case c.TopicStoreBytes > 0 && c.TopicStoreBytes < MaxPayload:
		return bad("TopicStoreBytes", "%d is below MaxPayload (%d): a message could not be kept for repairs", c.TopicStoreBytes, MaxPayload)
	}
	probe, suspect := orDefault(c.ProbeInterval, defProbeInterval), orDefault(c.SuspectTimeout, defSuspect)
	if suspect < probe {
		return bad("SuspectTimeout", "%v is shorter than ProbeInterval %v", suspect, probe)
	}
	ae, ttl := orDefault(c.AntiEntropyInterval, defAEInterval), orDefault(c.DedupTTL, defDedupTTL)
	if ae >= ttl {
		return bad("AntiEntropyInterval", "%v is not shorter than DedupTTL %v: messages would expire before reconciliation", ae, ttl)
	}
	return nil
}

// apply writes c's non-zero settings into the layers' configurations.
func (c OverlayConfig) apply(m *membership.Config, p *pubsub.Config) {
	m.ActiveMin, m.ActiveMax, m.PassiveMax = c.ActiveViewMin, c.ActiveViewMax, c.PassiveViewMax
	if c.ActiveViewMax > 0 && c.ActiveViewMin == 0 {
		m.ActiveMin = min(defActiveMin, c.ActiveViewMax)
	}
	if c.ActiveViewMin > 0 && c.ActiveViewMax == 0 {
		m.ActiveMax = max(defActiveMax, c.ActiveViewMin)
	}
	m.ShuffleInterval, m.IdleGrace = c.ShuffleInterval, c.IdleConnectionGrace
	if c.ProbeInterval > 0 {
		m.ProbeInterval, m.AckTimeout = c.ProbeInterval, c.ProbeInterval/2
	}
	if c.SuspectTimeout > 0 {
		m.SuspectTimeout, m.SuspectMaxTimeout = c.SuspectTimeout, 2*c.SuspectTimeout
	}
	p.TopicMaxPeers = c.TopicMaxPeers
	if c.TopicMaxPeers > 0 && c.TopicMaxPeers < 3 {
		p.TopicMinPeers = c.TopicMaxPeers // the layer looks for 3 otherwise
	}
	p.IHaveInterval, p.GraftTimeout = c.IHaveInterval, c.GraftTimeout
	p.AEInterval, p.DedupTTL, p.StoreBytes = c.AntiEntropyInterval, c.DedupTTL, c.TopicStoreBytes
	if c.DedupTTL > 0 {
		// Reconcile only messages that are still accepted.
		p.AEWindow = min(defAEWindow, c.DedupTTL*4/5)
	}
}

// ConnectionConfig tunes the node's connections (Builder.WithConnections).
// A zero field keeps the default noted beside it; Build refuses a negative
// or inconsistent value with a *ConfigError.
type ConnectionConfig struct {
	// KeepAlive is the QUIC keep-alive period (15 s); it must be shorter
	// than IdleTimeout.
	KeepAlive time.Duration
	// IdleTimeout closes a connection without network activity (30 s).
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the QUIC and TLS handshake of a dial (10 s).
	HandshakeTimeout time.Duration
	// MaxConnections caps open connections, inbound and outbound (256).
	MaxConnections int
	// MaxConnsPerIP caps inbound connections from one source IP (64).
	MaxConnsPerIP int
	// EvictMinAge is how long an inbound connection must have been up
	// before it may be closed to admit a newcomer to a full table (10 s).
	EvictMinAge time.Duration
	// MaxPendingDials caps outbound dials in flight (64).
	MaxPendingDials int
	// QueueDepth bounds each connection's send queue per stream class and
	// priority, in frames (1024).
	QueueDepth int
	// QueueBytes bounds the bytes queued to one connection (32 MiB).
	QueueBytes int
	// ReconnectMin and ReconnectMax bound the backoff between redials of
	// peers kept connected (1 s and 60 s).
	ReconnectMin time.Duration
	ReconnectMax time.Duration
}

// validate checks c; the errors are *ConfigError.
func (c ConnectionConfig) validate() error {
	bad := func(field, format string, a ...any) error {
		return &ConfigError{Setting: "ConnectionConfig." + field, Reason: fmt.Sprintf(format, a...)}
	}
	if err := checkFields("ConnectionConfig",
		[]field[int]{{"MaxConnections", c.MaxConnections}, {"MaxConnsPerIP", c.MaxConnsPerIP},
			{"MaxPendingDials", c.MaxPendingDials}, {"QueueDepth", c.QueueDepth}, {"QueueBytes", c.QueueBytes}},
		[]field[time.Duration]{{"KeepAlive", c.KeepAlive}, {"IdleTimeout", c.IdleTimeout},
			{"HandshakeTimeout", c.HandshakeTimeout}, {"EvictMinAge", c.EvictMinAge},
			{"ReconnectMin", c.ReconnectMin}, {"ReconnectMax", c.ReconnectMax}}); err != nil {
		return err
	}
	keep, idle := orDefault(c.KeepAlive, transport.DefaultKeepAlive), orDefault(c.IdleTimeout, transport.DefaultIdleTimeout)
	if keep >= idle {
		return bad("KeepAlive", "%v is not shorter than IdleTimeout %v", keep, idle)
	}
	rmin, rmax := orDefault(c.ReconnectMin, transport.DefaultReconnectMin), orDefault(c.ReconnectMax, transport.DefaultReconnectMax)
	if rmax < rmin {
		return bad("ReconnectMax", "%v is below ReconnectMin %v", rmax, rmin)
	}
	return nil
}

// apply writes c's settings into the transport configuration (zero fields
// stay zero: the transport's defaults).
func (c ConnectionConfig) apply(t *transport.Config) {
	t.KeepAlive, t.IdleTimeout, t.HandshakeTimeout = c.KeepAlive, c.IdleTimeout, c.HandshakeTimeout
	t.MaxConnections, t.MaxConnsPerIP, t.EvictMinAge = c.MaxConnections, c.MaxConnsPerIP, c.EvictMinAge
	t.MaxPendingDials, t.QueueDepth, t.QueueBytes = c.MaxPendingDials, c.QueueDepth, c.QueueBytes
	t.ReconnectMin, t.ReconnectMax = c.ReconnectMin, c.ReconnectMax
}

// field is one named setting, for checkFields.
type field[T int | time.Duration] struct {
	name string
	v    T
}

// checkFields refuses negative counts and durations below minInterval
// (other than 0, the default), in the order given.
func checkFields(setting string, counts []field[int], durations []field[time.Duration]) error {
	for _, f := range counts {
		if f.v < 0 {
			return &ConfigError{Setting: setting + "." + f.name, Reason: fmt.Sprintf("negative (%d)", f.v)}
		}
	}
	for _, f := range durations {
		if f.v < 0 || (f.v > 0 && f.v < minInterval) {
			return &ConfigError{Setting: setting + "." + f.name, Reason: fmt.Sprintf("%v: want 0 (default) or at least %v", f.v, minInterval)}
		}
	}
	return nil
}

// orDefault returns v, or d when v is zero.
func orDefault[T int | time.Duration](v, d T) T {
	if v == 0 {
		return d
	}
	return v
}

// KDFParams are the Argon2id parameters (RFC 9106) that stretch a
// passphrase sealing key files (Builder.WithKDF). The zero value means
// DefaultKDFParams.
type KDFParams struct {
	// Time is the number of passes over memory (1..16).
	Time uint32
	// MemoryKiB is the memory cost in KiB (8*Threads..1 GiB).
	MemoryKiB uint32
	// Threads is the degree of parallelism (1..255).
	Threads uint8
}

// DefaultKDFParams returns the parameters used when none are set (t=3,
// 64 MiB, 4 threads: about a quarter of a second on a laptop core).
func DefaultKDFParams() KDFParams {
	p := keystore.DefaultKDFParams()
	return KDFParams{Time: p.Time, MemoryKiB: p.MemoryKiB, Threads: p.Threads}
}

func (p KDFParams) keystore() keystore.KDFParams {
	return keystore.KDFParams{Time: p.Time, MemoryKiB: p.MemoryKiB, Threads: p.Threads}
}

// validate checks non-zero parameters; the error is a *ConfigError.
func (p KDFParams) validate() error {
	if p == (KDFParams{}) {
		return nil
	}
	if err := p.keystore().Validate(); err != nil {
		return &ConfigError{Setting: "KDFParams", Reason: err.Error()}
	}
	return nil
}

// Services are the roles a node offers its peers (Builder.WithServices).
type Services uint8

// Roles a node can offer. Only publicly reachable nodes should offer them.
const (
	// ServiceCoordinator passes hole-punch requests between its peers.
	ServiceCoordinator Services = 1 << iota
	// ServiceRelay forwards relayed connections' packets between its peers.
	ServiceRelay
)

// Has reports whether s includes every role of x.
func (s Services) Has(x Services) bool { return s&x == x }

// String lists the roles, comma-separated ("" for none).
func (s Services) String() string { return s.transport().String() }

// ParseServices parses a comma-separated list of "coordinator" and
// "relay" (spaces and empty items are ignored). Errors match
// ErrInvalidArgument.
func ParseServices(list string) (Services, error) {
	t, err := transport.ParseServices(list)
	if err != nil {
		return 0, invalidArg("%v", err)
	}
	return servicesOf(t), nil
}

// transport converts s.
func (s Services) transport() transport.Services {
	var t transport.Services
	if s.Has(ServiceCoordinator) {
		t |= transport.ServiceCoordinator
	}
	if s.Has(ServiceRelay) {
		t |= transport.ServiceRelay
	}
	return t
}

// servicesOf converts transport services.
func servicesOf(t transport.Services) Services {
	var s Services
	if t.Has(transport.ServiceCoordinator) {
		s |= ServiceCoordinator
	}
	if t.Has(transport.ServiceRelay) {
		s |= ServiceRelay
	}
	return s
}
