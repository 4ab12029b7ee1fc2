package pubsub

import (
	"bytes"
	"slices"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/membership"
)

func (ps *PubSub) addPeer(t *topic, p identity.PeerID) bool {
	return ps.addPeerUpTo(t, p, ps.cfg.TopicMaxPeers)
}

// addPeerUpTo adds p as a topic neighbour if we have fewer than limit. It
// starts lazy: it becomes eager when it becomes a tree link (see tree.go),
// which the tree state sent here settles within a round trip.
func (ps *PubSub) addPeerUpTo(t *topic, p identity.PeerID, limit int) bool {
	if p == ps.self.ID || t.isPeer(p) || len(t.eager)+len(t.lazy) >= limit {
		return false
	}
	t.lazy = append(t.lazy, p)
	ps.mem.Hold(p)
	ps.emit(TopicNeighborUp, t.id, p)
	st := t.tree.self
	ps.stats.TreeAnnounced++
	ps.send(p, link.PriorityControl, &Frame{Kind: kindTree, Topic: t.id, Tree: &st})
	if bytes.Compare(ps.self.ID[:], p[:]) < 0 {
		// A new link reconciles at once (one side starts): whatever one
		// end published or received while the two were apart (a reset
		// connection, a partition, a late subscription) crosses now
		// rather than at the next anti-entropy round.
		ps.aeRound(t, p)
	}
	return true
}

func (ps *PubSub) removePeer(t *topic, p identity.PeerID) {
	if i := slices.Index(t.eager, p); i >= 0 {
		t.eager = slices.Delete(t.eager, i, i+1)
	} else if i := slices.Index(t.lazy, p); i >= 0 {
		t.lazy = slices.Delete(t.lazy, i, i+1)
	} else {
		return
	}
	delete(t.lazyQ, p)
	delete(t.pulls, p)
	delete(t.tree.heard, p)
	if slices.Contains(t.tree.links, p) {
		ps.chooseParent(t)
		ps.announceTree(t)
	}
	ps.mem.Release(p)
	ps.emit(TopicNeighborDown, t.id, p)
}

func (ps *PubSub) toEager(t *topic, p identity.PeerID) {
	if i := slices.Index(t.lazy, p); i >= 0 {
		t.lazy = slices.Delete(t.lazy, i, i+1)
		t.eager = append(t.eager, p)
	}
}

// toLazy makes p a lazy neighbour unless it is a tree link.
func (ps *PubSub) toLazy(t *topic, p identity.PeerID) {
	if ps.isTreeLink(t, p) {
		return
	}
	if i := slices.Index(t.eager, p); i >= 0 {
		t.eager = slices.Delete(t.eager, i, i+1)
		t.lazy = append(t.lazy, p)
	}
}

func (ps *PubSub) onMember(e membership.Event) {
	ps.do(func() {
		switch e.Kind {
		case membership.NeighborUp:
			if !slices.Contains(ps.active, e.Peer.ID) {
				ps.active = append(ps.active, e.Peer.ID)
			}
			if len(ps.order) > 0 {
				ps.send(e.Peer.ID, link.PriorityControl, &Frame{Kind: kindTopics, Topics: ps.order})
			}
		case membership.NeighborDown:
			if i := slices.Index(ps.active, e.Peer.ID); i >= 0 {
				ps.active = slices.Delete(ps.active, i, i+1)
			}
			delete(ps.nbTopics, e.Peer.ID)
		case membership.MemberDead:
			ps.dropPeer(e.Peer.ID)
		}
	})
}

func (ps *PubSub) onPeerEvent(ev link.PeerEvent) {
	if ev.Up {
		return
	}
	ps.do(func() { ps.dropPeer(ev.Peer) })
}

func (ps *PubSub) dropPeer(p identity.PeerID) {
	delete(ps.scores, p)
	for _, id := range ps.order {
		ps.removePeer(ps.topics[id], p)
	}
}

// topicPeer reports whether from is a neighbour on subscribed topic t. A
// subscriber that sends topic traffic treats us as its neighbour: the two
// sides learn of each other's subscriptions at different moments, so a
// sender we do not know yet is added if there is room (or else told to
// leave), and its frame is not lost.
func (ps *PubSub) topicPeer(t *topic, from identity.PeerID) bool {
	if t == nil {
		return false
	}
	if t.isPeer(from) || ps.addPeer(t, from) {
		return true
	}
	ps.send(from, link.PriorityControl, &Frame{Kind: kindTopicLeave, Topic: t.id})
	return false
}
