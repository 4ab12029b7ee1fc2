package pubsub

import (
	"slices"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
)

// nextHop picks the next node of a walk for topic: a neighbour known to
// subscribe if any, else a random active neighbour other than not.
func (ps *PubSub) nextHop(topicID TopicID, not ...identity.PeerID) (identity.PeerID, bool) {
	var subs, others []identity.PeerID
	for _, p := range ps.active {
		if slices.Contains(not, p) {
			continue
		}
		if slices.Contains(ps.nbTopics[p], topicID) {
			subs = append(subs, p)
		} else {
			others = append(others, p)
		}
	}
	if len(subs) > 0 {
		return subs[ps.rng.IntN(len(subs))], true
	}
	if len(others) > 0 {
		return others[ps.rng.IntN(len(others))], true
	}
	return identity.PeerID{}, false
}

func (ps *PubSub) onFind(from identity.PeerID, f *Frame) {
	seeker := *f.Node
	if seeker.ID == ps.self.ID {
		return
	}
	t := ps.topics[f.Topic]
	// A walk comes from a node with too few topic neighbours (a late joiner
	// in a topic where everyone is full, say): take it even above
	// TopicMaxPeers, up to twice that, so that it cannot be starved.
	if t != nil && !t.isPeer(seeker.ID) && len(t.eager)+len(t.lazy) < 2*ps.cfg.TopicMaxPeers {
		topicID := t.id
		ps.later(func() {
			ps.mem.Dial(seeker, func(err error) {
				if err != nil {
					return
				}
				ps.do(func() {
					t := ps.topics[topicID]
					if t != nil && ps.addPeerUpTo(t, seeker.ID, 2*ps.cfg.TopicMaxPeers) {
						ps.send(seeker.ID, link.PriorityControl, &Frame{Kind: kindTopicJoin, Topic: topicID})
					}
				})
			})
		})
		return
	}
	if f.Hops == 0 {
		return
	}
	if next, ok := ps.nextHop(f.Topic, from, seeker.ID); ok {
		f.Hops--
		ps.send(next, link.PriorityControl, f)
	}
}

// handOffs is how many copies a non-subscriber's message starts with.
const handOffs = 3

// handOff sends a locally published message for a topic we do not
// subscribe to towards subscribers: to subscribed neighbours if we know
// some, otherwise along random walks.
func (ps *PubSub) handOff(msg *Signed) {
	topicID := msg.Header.Topic
	var subs []identity.PeerID
	for _, p := range ps.active {
		if slices.Contains(ps.nbTopics[p], topicID) {
			subs = append(subs, p)
		}
	}
	// Three independent hand-offs, so that one crashed (not yet detected)
	// neighbour cannot lose the message: subscribed neighbours first, random
	// walks for the rest.
	f := &Frame{Kind: kindPublish, Msg: msg, Hops: uint8(ps.cfg.WalkTTL)}
	ps.rng.Shuffle(len(subs), func(i, j int) { subs[i], subs[j] = subs[j], subs[i] })
	subs = subs[:min(handOffs, len(subs))]
	for _, p := range subs {
		ps.send(p, link.PriorityEager, f)
	}
	for i := len(subs); i < handOffs; i++ {
		if next, ok := ps.nextHop(topicID, subs...); ok {
			ps.send(next, link.PriorityEager, f)
		}
	}
}

func (ps *PubSub) forwardWalk(from identity.PeerID, msg *Signed, ttl uint8) {
	if next, ok := ps.nextHop(msg.Header.Topic, from); ok {
		ps.send(next, link.PriorityEager, &Frame{Kind: kindPublish, Msg: msg, Hops: ttl})
	}
}
