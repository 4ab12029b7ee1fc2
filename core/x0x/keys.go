package x0x

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/internal/lru"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/pubsub"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// Origin keys for pub/sub signatures.
//
// Published messages carry the origin's AgentID, not its 1,952-byte key
// (DESIGN.md section 4), so a node that receives a message from an origin
// it has never seen must fetch the key. keyService does this without losing
// the message: it sits between the transport and pub/sub on the pub/sub
// stream class. Each inbound pub/sub frame that carries a message whose
// origin key is unknown is held back, and the key is asked of the peer that
// forwarded the frame (that peer verified the message before forwarding it,
// so it has the key). When a reply arrives, the key is accepted only if it
// derives the requested AgentID (identity IDs are hashes of keys, so a
// neighbour cannot substitute a key), it is cached, and the held frames are
// handed to pub/sub, which then verifies the signatures as usual. A frame
// whose key does not arrive within keyFetchTimeout is handed over anyway and
// pub/sub drops it as an unknown signer (counted in Stats.DropUnknownSigner).
//
// Key requests and replies are the CBOR of a keyMsg, sent as the
// transport's link.ProtoKeys protocol (on the pub/sub stream class, so that
// a reply is not queued behind bulk transfers).

const (
	// keyFetchTimeout bounds how long frames wait for their origin's key.
	keyFetchTimeout = 5 * time.Second
	// maxHeldFrames and maxHeldBytes bound the frames held for keys (over
	// all origins), maxHeldBytesPerPeer those forwarded by one peer, so that
	// a peer sending frames of made-up origins cannot hold much memory or
	// crowd out honest peers' frames; frames over a bound go straight to
	// pub/sub (which drops them if their key stays unknown).
	maxHeldFrames       = 4096
	maxHeldBytes        = 32 << 20
	maxHeldBytesPerPeer = 4 << 20
	// maxAskedPeers bounds the peers asked for one origin's key.
	maxAskedPeers = 8
	// keyCacheBytes bounds the origin keys remembered, encoded (least
	// recently used out; about 8,000 keys); parsed forms live in the
	// node's shared, smaller cache. This agent's own key is kept apart.
	keyCacheBytes = 16 << 20
	// keyEntryBytes is what one remembered encoded key costs.
	keyEntryBytes = identity.PublicKeySize + 128

	keyKindRequest = 1
	keyKindReply   = 2
)

// errKeyFrame is wrapped by every error decodeKeyMsg returns.
var errKeyFrame = errors.New("x0x: malformed key frame")

// keyMsg is a key request (Agent set) or reply (Agent and Key set).
type keyMsg struct {
	Kind  uint8            `cbor:"1,keyasint"`
	Agent identity.AgentID `cbor:"2,keyasint"`
	Key   []byte           `cbor:"3,keyasint,omitempty"`
}

// encodeKeyMsg returns the frame for m.
func encodeKeyMsg(m *keyMsg) ([]byte, error) { return wire.Marshal(m) }

// decodeKeyMsg parses a key frame. Errors wrap errKeyFrame.
func decodeKeyMsg(b []byte) (*keyMsg, error) {
	var m keyMsg
	if err := wire.UnmarshalLimit(b, &m, "key frame", wire.LimitSmall); err != nil {
		return nil, fmt.Errorf("%w: %w", errKeyFrame, err)
	}
	switch m.Kind {
	case keyKindRequest:
		if len(m.Key) != 0 {
			return nil, fmt.Errorf("%w: request carries a key", errKeyFrame)
		}
	case keyKindReply:
		if len(m.Key) != identity.PublicKeySize {
			return nil, fmt.Errorf("%w: key of %d bytes", errKeyFrame, len(m.Key))
		}
	default:
		return nil, fmt.Errorf("%w: kind %d", errKeyFrame, m.Kind)
	}
	return &m, nil
}

// heldFrame is an inbound pub/sub frame waiting for a key, decoded (f)
// from size bytes.
type heldFrame struct {
	from identity.PeerID
	f    *pubsub.Frame
	size int
}

// pendingKey is an outstanding key fetch.
type pendingKey struct {
	frames []heldFrame
	asked  map[identity.PeerID]bool
	timer  clock.Timer
}

// keyService resolves origin keys for pub/sub (see the comment above). It
// implements link.Network for pub/sub and membership by wrapping the
// node, and pubsub.KeyResolver for the verifier.
type keyService struct {
	link.Network
	clk   clock.Clock
	local identity.AgentID

	mu      sync.Mutex
	closed  bool
	handler func(identity.PeerID, *pubsub.Frame, int, error) // pub/sub's decoded-frame handler
	keys    *lru.Cache[identity.AgentID, []byte]             // encoded origin keys
	parsed  *identity.VerifyCache                            // the node's parsed keys
	localPK *identity.PublicKey
	pending map[identity.AgentID]*pendingKey
	held    int
	heldB   int                     // bytes of the held frames
	heldBy  map[identity.PeerID]int // bytes held per forwarding peer
	stats   keyStats
}

// keyStats counts the work of the origin-key resolver (reported by
// Agent.Metrics as x0x_keys_*).
type keyStats struct {
	Requested   uint64 // key requests sent
	Served      uint64 // key requests answered
	Learned     uint64 // keys accepted from replies
	BadReplies  uint64 // replies refused (key does not derive the agent, or not asked for)
	Malformed   uint64 // key frames that did not decode
	Held        uint64 // frames held back waiting for a key
	TimedOut    uint64 // held frames released without their key
	HeldOverrun uint64 // frames passed on unheld because a held-frame bound (count, bytes, per peer) was reached
	HeldPeakB   uint64 // the most bytes held at once
}

// newKeyService wraps net; local is the agent key of this node and parsed
// the node's shared cache of parsed keys.
func newKeyService(net link.Network, clk clock.Clock, local *identity.PublicKey, parsed *identity.VerifyCache) *keyService {
	ks := &keyService{
		Network: net, clk: clk, local: local.ID(), localPK: local, parsed: parsed,
		keys:    lru.New[identity.AgentID, []byte](keyCacheBytes),
		pending: make(map[identity.AgentID]*pendingKey),
		heldBy:  make(map[identity.PeerID]int),
	}
	net.Handle(link.ProtoPubSub, ks.process)
	net.Handle(link.ProtoKeys, ks.onKeyFrame)
	return ks
}

// Handle registers h for a protocol other than pub/sub's, whose frames the
// service decodes once and hands over through HandleFrames.
func (ks *keyService) Handle(proto link.Protocol, h link.MessageHandler) {
	if proto == link.ProtoPubSub {
		ks.HandleFrames(func(from identity.PeerID, f *pubsub.Frame, size int, err error) {
			if b, encErr := pubsub.EncodeFrame(f); err == nil && encErr == nil {
				h(from, b)
			}
		})
		return
	}
	ks.Network.Handle(proto, h)
}

// HandleFrames implements pubsub.FrameSource: pub/sub receives the frames
// this service decoded (and held while it fetched an origin's key).
func (ks *keyService) HandleFrames(h func(from identity.PeerID, f *pubsub.Frame, size int, err error)) {
	ks.mu.Lock()
	ks.handler = h
	ks.mu.Unlock()
}

// ResolveKey returns a known key, parsed through the node's cache, or
// pubsub.ErrUnknownSigner. It never blocks: fetching happens before frames
// reach pub/sub.
func (ks *keyService) ResolveKey(agent identity.AgentID) (*identity.PublicKey, error) {
	ks.mu.Lock()
	if agent == ks.local {
		ks.mu.Unlock()
		return ks.localPK, nil
	}
	raw, _ := ks.keys.Get(agent)
	ks.mu.Unlock()
	if raw == nil {
		return nil, pubsub.ErrUnknownSigner
	}
	return ks.parsed.ParsePublicKeyOf(agent, raw) // raw derives agent: checked when it was learned
}

// Stats returns a copy of the counters.
func (ks *keyService) Stats() keyStats {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.stats
}

// close stops the timers and drops held frames.
func (ks *keyService) close() {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.closed = true
	for id, p := range ks.pending {
		p.timer.Stop()
		delete(ks.pending, id)
	}
	ks.held, ks.heldB = 0, 0
	clear(ks.heldBy)
}

// process decodes b and hands it to pub/sub, or holds it if it carries a
// message whose origin key is unknown.
func (ks *keyService) process(from identity.PeerID, b []byte) {
	f, err := pubsub.DecodeFrame(b)
	ks.processDecoded(from, f, len(b), err)
}

func (ks *keyService) processDecoded(from identity.PeerID, f *pubsub.Frame, size int, decErr error) {
	var origin identity.AgentID
	unknown := false
	var send []byte
	ks.mu.Lock()
	if ks.closed {
		ks.mu.Unlock()
		return
	}
	if decErr == nil {
		origin, unknown = ks.unknownOriginLocked(f)
	}
	h := ks.handler
	fits := ks.held < maxHeldFrames && ks.heldB+size <= maxHeldBytes && ks.heldBy[from]+size <= maxHeldBytesPerPeer
	if unknown && fits {
		p := ks.pending[origin]
		if p == nil {
			p = &pendingKey{asked: make(map[identity.PeerID]bool)}
			ks.pending[origin] = p
			p.timer = ks.clk.AfterFunc(keyFetchTimeout, func() { ks.expire(origin) })
		}
		p.frames = append(p.frames, heldFrame{from: from, f: f, size: size})
		ks.held++
		ks.heldB += size
		ks.heldBy[from] += size
		ks.stats.Held++
		ks.stats.HeldPeakB = max(ks.stats.HeldPeakB, uint64(ks.heldB))
		if !p.asked[from] && len(p.asked) < maxAskedPeers {
			p.asked[from] = true
			ks.stats.Requested++
			send, _ = encodeKeyMsg(&keyMsg{Kind: keyKindRequest, Agent: origin})
		}
		ks.mu.Unlock()
		if send != nil {
			_ = ks.Network.Send(from, link.ProtoKeys, link.PriorityControl, send)
		}
		return
	}
	if unknown {
		ks.stats.HeldOverrun++
	}
	ks.mu.Unlock()
	if h != nil {
		h(from, f, size, decErr)
	}
}

// knownLocked reports whether agent's key is at hand; ks.mu held.
func (ks *keyService) knownLocked(agent identity.AgentID) bool {
	if agent == ks.local {
		return true
	}
	_, ok := ks.keys.Peek(agent)
	return ok
}

// unknownOriginLocked reports the first origin of a message in f whose key
// is not cached; ks.mu held.
func (ks *keyService) unknownOriginLocked(f *pubsub.Frame) (identity.AgentID, bool) {
	if f.Msg != nil && !ks.knownLocked(f.Msg.Header.Origin) {
		return f.Msg.Header.Origin, true
	}
	for i := range f.Msgs {
		if o := f.Msgs[i].Header.Origin; !ks.knownLocked(o) {
			return o, true
		}
	}
	return identity.AgentID{}, false
}

// onKeyFrame answers a request or accepts a reply.
func (ks *keyService) onKeyFrame(from identity.PeerID, b []byte) {
	m, err := decodeKeyMsg(b)
	ks.mu.Lock()
	if ks.closed {
		ks.mu.Unlock()
		return
	}
	if err != nil {
		ks.stats.Malformed++
		ks.mu.Unlock()
		return
	}
	if m.Kind == keyKindRequest {
		k, _ := ks.keys.Get(m.Agent)
		if m.Agent == ks.local {
			k = ks.localPK.Bytes()
		}
		if k != nil {
			ks.stats.Served++
		}
		ks.mu.Unlock()
		if k != nil {
			if out, err := encodeKeyMsg(&keyMsg{Kind: keyKindReply, Agent: m.Agent, Key: k}); err == nil {
				_ = ks.Network.Send(from, link.ProtoKeys, link.PriorityControl, out)
			}
		}
		return
	}
	p := ks.pending[m.Agent]
	if p == nil || !p.asked[from] {
		ks.stats.BadReplies++ // unsolicited (or late, after expiry)
		ks.mu.Unlock()
		return
	}
	ks.mu.Unlock()
	derives := identity.DeriveID(m.Key) == m.Agent
	if derives {
		_, err = ks.parsed.ParsePublicKey(m.Key) // a key that derives the ID may still not parse
	}
	ks.mu.Lock()
	if err != nil || !derives {
		ks.stats.BadReplies++
		ks.mu.Unlock()
		return
	}
	if ks.closed || ks.pending[m.Agent] != p {
		ks.mu.Unlock()
		return
	}
	ks.keys.Put(m.Agent, m.Key, keyEntryBytes)
	ks.stats.Learned++
	frames := ks.releaseLocked(m.Agent, p)
	ks.mu.Unlock()
	for _, f := range frames {
		ks.processDecoded(f.from, f.f, f.size, nil) // may hold again for another origin
	}
}

// expire releases the frames of an origin whose key did not come.
func (ks *keyService) expire(origin identity.AgentID) {
	ks.mu.Lock()
	p := ks.pending[origin]
	if ks.closed || p == nil {
		ks.mu.Unlock()
		return
	}
	frames := ks.releaseLocked(origin, p)
	ks.stats.TimedOut += uint64(len(frames))
	h := ks.handler
	ks.mu.Unlock()
	if h != nil {
		for _, f := range frames {
			h(f.from, f.f, f.size, nil)
		}
	}
}

func (ks *keyService) releaseLocked(origin identity.AgentID, p *pendingKey) []heldFrame {
	p.timer.Stop()
	delete(ks.pending, origin)
	ks.held -= len(p.frames)
	for _, f := range p.frames {
		ks.heldB -= f.size
		if ks.heldBy[f.from] -= f.size; ks.heldBy[f.from] <= 0 {
			delete(ks.heldBy, f.from)
		}
	}
	return p.frames
}
