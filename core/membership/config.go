package membership

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/internal/defaults"
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
	// Serves marks a node that offers services (coordination, relaying)
	// to the peers that hold a connection to it: a connection whose peer
	// said it relies on it (Hold) is not closed as idle. It is not
	// protected either: under connection pressure the transport may still
	// evict it (free identities could otherwise occupy every slot).
	Serves bool
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
	// TrafficAnswered counts probes that got no ACK although other frames
	// of the target arrived after the PING (no suspicion follows).
	TrafficAnswered uint64
	// VerdictsSpared counts suspicions that expired while the suspect's
	// frames kept arriving: it was not declared dead, and was told again.
	VerdictsSpared uint64
	// RelaysDeclined counts indirect probes this node answered with a NACK
	// at once because it had no connection to the target (it does not dial
	// for another node's probe).
	RelaysDeclined uint64
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
