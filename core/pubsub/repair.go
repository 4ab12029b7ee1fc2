package pubsub

import (
	"slices"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
)

func (ps *PubSub) queueIHave(t *topic, p identity.PeerID, id ShortID) {
	t.lazyQ[p] = append(t.lazyQ[p], id)
	if !ps.flushing {
		ps.flushing = true
		ps.cfg.Clock.AfterFunc(ps.cfg.IHaveInterval, func() { ps.do(ps.flushIHave) })
	}
}

func (ps *PubSub) flushIHave() {
	ps.flushing = false
	for _, tid := range ps.order {
		t := ps.topics[tid]
		for _, p := range t.peers() {
			ids := t.lazyQ[p]
			if len(ids) == 0 {
				continue
			}
			delete(t.lazyQ, p)
			for len(ids) > 0 {
				n := min(len(ids), MaxIDsPerFrame)
				ps.stats.IHavesSent++
				ps.send(p, link.PriorityLazy, &Frame{Kind: kindIHave, Topic: t.id, Short: ids[:n]})
				ids = ids[n:]
			}
		}
	}
}

// maxMissing bounds the announced-but-not-received IDs tracked per topic
// (each has a GRAFT timer), so that IHAVE floods cannot exhaust memory.
const maxMissing = 16384

// maxUnqueue bounds the IDs of one IHAVE frame looked up in our own queue
// of announcements to its sender (see heardIHave), so that a hostile frame
// of MaxIDsPerFrame IDs costs little.
const maxUnqueue = 64

// heardIHave handles an IHAVE frame from topic neighbour from.
func (ps *PubSub) heardIHave(t *topic, from identity.PeerID, ids ShortList) {
	unqueue := maxUnqueue
	for _, id := range ids {
		if !ps.dedup.has(id) {
			ps.announced(t, from, id)
			continue
		}
		// Both ends have the message, and both queued an announcement of
		// it to the other (IHAVEs go out in batches): the one not yet sent
		// would tell from nothing. This halves the IDs lazy links carry.
		if q := t.lazyQ[from]; unqueue > 0 && len(q) > 0 {
			unqueue--
			if i := slices.Index(q, id); i >= 0 {
				t.lazyQ[from] = slices.Delete(q, i, i+1)
			}
		}
	}
}

func (ps *PubSub) announced(t *topic, from identity.PeerID, id ShortID) {
	if ps.dedup.has(id) {
		return
	}
	m := t.missing[id]
	if m == nil {
		if len(t.missing) >= maxMissing {
			ps.stats.DropMissingFull++
			return
		}
		m = &missing{since: ps.cfg.Clock.Now()}
		t.missing[id] = m
		m.timer = ps.cfg.Clock.AfterFunc(ps.cfg.GraftTimeout, func() { ps.do(func() { ps.graftTimer(t, id) }) })
	}
	if len(m.announcers) < 8 && !slices.Contains(m.announcers, from) {
		m.announcers = append(m.announcers, from)
	}
}

func (ps *PubSub) graftTimer(t *topic, id ShortID) {
	if ps.topics[t.id] != t {
		return
	}
	m := t.missing[id]
	if m == nil {
		return
	}
	now := ps.cfg.Clock.Now()
	if m.pulled.IsZero() && len(t.eager) > 0 && t.tree.self.Parent != (identity.PeerID{}) && now.Sub(t.parentHeard) <= ps.cfg.GraftTimeout && t.treeLate.mostlyLate() {
		// The parent is pushing new messages right now, so the tree works
		// and may yet bring this one: wait as long as tree copies are
		// currently late (see lateness). A parent that has gone quiet
		// (crashed, cut off, or the topic is idle) is not waited for.
		if wait := m.since.Add(ps.cfg.GraftTimeout + t.treeLate.estimate(ps.pullWaitLimit(t))).Sub(now); wait > 0 {
			ps.stats.PullsDeferred++
			m.timer = ps.cfg.Clock.AfterFunc(wait, func() { ps.do(func() { ps.graftTimer(t, id) }) })
			return
		}
	}
	retry := ps.cfg.GraftRetry
	for len(m.announcers) > 0 {
		p := m.announcers[0]
		m.announcers = m.announcers[1:]
		if !t.isPeer(p) {
			continue
		}
		if len(t.eager) > 0 && (t.pulls[p] < pullsBeforeGraft || ps.parentPushing(t, m.since)) {
			// Over QUIC a missing eager copy is usually late (a
			// retransmission, or queues on an overloaded path), not lost:
			// fetch this one message without changing the tree, which
			// would otherwise gain a redundant eager link per late copy.
			// Only a peer we keep having to pull from while our tree
			// parent pushes nothing (or having no eager peer at all) means
			// the tree is broken here, and then we GRAFT.
			t.pulls[p]++
			ps.stats.IWantsSent++
			m.pulled, m.pulledFrom = now, p
			// Ask the next announcer only once this one is late by the
			// pulls' recent round trips.
			retry = max(retry, t.pullLate.estimate(ps.parentSilence()))
			ps.send(p, link.PriorityControl, &Frame{Kind: kindIWant, Topic: t.id, Short: ShortList{id}})
			break
		}
		delete(t.pulls, p)
		ps.toEager(t, p)
		ps.stats.GraftsSent++
		ps.send(p, link.PriorityControl, &Frame{Kind: kindGraft, Topic: t.id, Short: ShortList{id}})
		break
	}
	if len(m.announcers) == 0 {
		// Keep the entry until the retry fires so late IHAVEs add announcers.
		m.timer = ps.cfg.Clock.AfterFunc(ps.cfg.GraftRetry*5, func() {
			ps.do(func() {
				if cur := t.missing[id]; cur == m && len(m.announcers) == 0 {
					delete(t.missing, id)
				} else if cur == m {
					ps.graftTimer(t, id)
				}
			})
		})
		return
	}
	m.timer = ps.cfg.Clock.AfterFunc(retry, func() { ps.do(func() { ps.graftTimer(t, id) }) })
}

// parentPushing reports whether t's tree parent has pushed a message
// since parentSilence before since (when a missing message was first
// announced). If it has, the tree above us works, however late its copies
// are: under overload every message is late, and grafting each lazy link
// that announced one first multiplied the load by four (duplicates on the
// grafted links, PRUNEs, new GRAFTs). A parent that pushed nothing for
// that long is dead, cut off or idle, and then we graft. The root has no
// parent and grafts as before.
func (ps *PubSub) parentPushing(t *topic, since time.Time) bool {
	return t.tree.self.Parent != (identity.PeerID{}) && t.parentHeard.After(since.Add(-ps.parentSilence()))
}

// pullWaitLimit caps how long a pull waits for a late tree beyond
// GraftTimeout: another GraftTimeout, or parentSilence when pulls are
// congested themselves (answered later than GraftTimeout), the sign of an
// overload, in which a pull's second copy costs what the node lacks.
func (ps *PubSub) pullWaitLimit(t *topic) time.Duration {
	if t.pullLate.estimate(ps.parentSilence()) > ps.cfg.GraftTimeout {
		return ps.parentSilence()
	}
	return ps.cfg.GraftTimeout
}

// parentSilence: two tree periods. (Pushes only: the parent's tree
// announcements every period do not count.) Shorter windows let bursts
// of an overloaded parent's queue pass for silence: a window of zero
// still let 6,000 GRAFTs through in a 10 s overload run.
func (ps *PubSub) parentSilence() time.Duration { return 2 * ps.cfg.TreeInterval }

// pullsBeforeGraft is how many messages a node pulls from one lazy peer
// (IWANT) within a decay period before it grafts that peer into the tree.
const pullsBeforeGraft = 3

// pruneDecayTicks is how many maintenance ticks (1 s) pass between halvings
// of the per-link first/duplicate counters.
const pruneDecayTicks = 10

func (ps *PubSub) maintain() {
	now := ps.cfg.Clock.Now()
	ps.dedup.expire(now)
	decay := ps.ticks%pruneDecayTicks == 0
	if decay {
		ps.decayScores()
	}
	ps.ticks++
	for _, id := range ps.order {
		t := ps.topics[id]
		if decay {
			for p, n := range t.pulls {
				t.pulls[p] = n / 2
			}
		}
		for len(t.order) > 0 && now.Sub(t.store[t.order[0].Short()].at) > ps.cfg.DedupTTL {
			t.dropOldest()
		}
		if len(t.eager)+len(t.lazy) < ps.cfg.TopicMinPeers && len(ps.active) > 0 {
			ps.stats.WalksStarted++
			self := ps.self
			next := ps.active[ps.rng.IntN(len(ps.active))]
			ps.send(next, link.PriorityControl, &Frame{Kind: kindFind, Topic: id, Node: &self, Hops: uint8(ps.cfg.WalkTTL)})
		}
	}
}
