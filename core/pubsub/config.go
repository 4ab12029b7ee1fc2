package pubsub

import (
	"errors"
	"io"
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/internal/defaults"
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
	DedupBytes    int           // byte budget of the dedup cache (16 MiB, about 130,000 IDs), oldest evicted first
	ReplayBytes   int           // byte budget of the per-origin replay windows (64 MiB), LRU-evicted
	SubBuffer     int           // subscription channel capacity (1024)
	StoreBytes    int           // bytes of messages (payload, signature, header) kept per topic for GRAFT / anti-entropy (8 MiB), oldest evicted first

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
	defaults.Positive(&c.DedupBytes, 16<<20)
	defaults.Positive(&c.ReplayBytes, 64<<20)
	defaults.Positive(&c.SubBuffer, 1024)
	defaults.Positive(&c.StoreBytes, 8<<20)
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
	Published        uint64
	Delivered        uint64 // to local subscribers (once per message)
	PayloadsReceived uint64 // frames carrying a full message (for RMR)
	Duplicates       uint64
	// Duplicates by how they came; the three add up to Duplicates.
	DuplicatesTree     uint64 // pushed on a tree link (a tree change, or the tree's copy of a message pulled before it arrived)
	DuplicatesEager    uint64 // pushed on another eager link (grafted, or a neighbour that still counts us as a tree link)
	DuplicatesPulled   uint64 // pulled (IWANT answers, anti-entropy pushes) or walked (PUBLISH)
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
	PullsDeferred      uint64 // pulls postponed because the topic's tree copies are currently late (see lateness.go)
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

// AEIntervalDefault returns the anti-entropy period this Config selects
// (its AEInterval, or the 30 s default).
func (c Config) AEIntervalDefault() time.Duration { return c.withDefaults().AEInterval }
