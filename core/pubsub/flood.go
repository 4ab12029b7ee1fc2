package pubsub

import (
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/internal/ratelimit"
)

// Flood control: every peer's frames and bytes, and every origin's
// messages, pass token buckets; a peer whose recent traffic is mostly
// invalid (bad signatures, payload hashes that do not match, forged walks)
// is disconnected. Limits are generous for honest load (a 500 msg/s topic
// is 500 frames/s per eager neighbour) and bound what one hostile peer or
// one flooding origin costs.

// FrameSource is implemented by networks that decode pub/sub frames before
// passing them on (the x0x agent's origin-key service reads them to find
// origins whose keys it must fetch). Pub/sub then takes the decoded frame
// instead of decoding it again: every frame is decoded once. size is the
// encoded size; err is the decoding error (f nil).
type FrameSource interface {
	HandleFrames(h func(from identity.PeerID, f *Frame, size int, err error))
}

// peerScore is the flood-control state of one connected peer.
type peerScore struct {
	frames, bytes  ratelimit.Bucket
	valid, invalid float64 // recent messages that passed / failed validation (halved every pruneDecayTicks)
	scoredOut      bool
}

// Invalid-traffic rule: a peer is disconnected once it has sent at least
// scoreMinInvalid recent invalid messages and more invalid than valid ones.
const scoreMinInvalid = 16

// maxOriginBuckets bounds the per-origin buckets; beyond it the bucket of
// an origin that has refilled completely is reused (it holds no state
// worth keeping), else the new origin shares an overflow bucket.
const maxOriginBuckets = 1 << 16

func (ps *PubSub) peerScore(p identity.PeerID) *peerScore {
	s := ps.scores[p]
	if s == nil {
		now := ps.cfg.Clock.Now()
		s = &peerScore{frames: ratelimit.New(now, float64(ps.cfg.PeerFrameBurst)), bytes: ratelimit.New(now, float64(ps.cfg.PeerByteBurst))}
		ps.scores[p] = s
	}
	return s
}

// admitFrame charges a received frame of size bytes to from's buckets; a
// frame over either rate is dropped (counted in RateLimited).
func (ps *PubSub) admitFrame(from identity.PeerID, size int) bool {
	s := ps.peerScore(from)
	now := ps.cfg.Clock.Now()
	if !s.frames.Take(now, 1, ps.cfg.PeerFrameRate, float64(ps.cfg.PeerFrameBurst)) ||
		!s.bytes.Take(now, float64(size), ps.cfg.PeerByteRate, float64(ps.cfg.PeerByteBurst)) {
		ps.stats.RateLimited++
		return false
	}
	return true
}

// admitOrigin charges one message to its origin's bucket (after its
// signature verified, so the origin is real).
func (ps *PubSub) admitOrigin(origin identity.AgentID) bool {
	now := ps.cfg.Clock.Now()
	rate, burst := ps.cfg.OriginRate, float64(ps.cfg.OriginBurst)
	b, ok := ps.origins[origin]
	if !ok {
		if len(ps.origins) >= maxOriginBuckets {
			for o, ob := range ps.origins {
				if ob.Full(now, rate, burst) {
					delete(ps.origins, o)
					break
				}
			}
		}
		if len(ps.origins) >= maxOriginBuckets {
			if !ps.originOverflow.Take(now, 1, rate, burst) {
				ps.stats.RateLimited++
				return false
			}
			return true
		}
		b = ratelimit.New(now, burst)
	}
	okTake := b.Take(now, 1, rate, burst)
	ps.origins[origin] = b
	if !okTake {
		ps.stats.RateLimited++
	}
	return okTake
}

// scoreValid and scoreInvalid record a message from peer from that passed
// or failed validation through the peer's own fault; a peer over the
// invalid-traffic rule is disconnected (PeersScoredOut).
func (ps *PubSub) scoreValid(from identity.PeerID) {
	if from != ps.self.ID {
		ps.peerScore(from).valid++
	}
}

func (ps *PubSub) scoreInvalid(from identity.PeerID) {
	if from == ps.self.ID {
		return
	}
	s := ps.peerScore(from)
	s.invalid++
	if !s.scoredOut && s.invalid >= scoreMinInvalid && s.invalid > s.valid {
		s.scoredOut = true
		ps.stats.PeersScoredOut++
		ps.net.Disconnect(from)
	}
}

// decayScores halves every peer's recent counts; called with the prune
// decay.
func (ps *PubSub) decayScores() {
	for _, s := range ps.scores {
		s.valid /= 2
		s.invalid /= 2
	}
}
