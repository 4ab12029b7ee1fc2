package membership

import (
	"time"

	"slices"

	"github.com/saorsa-labs/x0x-go/core/identity"
)

// piggybackTransmits is how many probe messages carry each update.
const piggybackTransmits = 6

// probeTick is one SWIM protocol period: every active peer gets a direct
// PING; peers that do not ACK within AckTimeout are probed indirectly
// through up to IndirectProbes other active peers; peers still silent at the
// end of the period are suspected. Probing every active peer each period
// (rather than one random member) bounds detection time by the period,
// which the 5 s detection goal needs; the active view is small, so the cost
// is a few small frames per second. A peer heard from (its own PING or an
// ACK) within the last half period is not pinged, which roughly halves the
// probe traffic between two nodes that probe each other.
func (m *Membership) probeTick() {
	m.repair()
	now := m.cfg.Clock.Now()
	for _, a := range slices.Clone(m.active) {
		if mb := m.members[a.ID]; mb != nil && mb.state != StateAlive {
			continue // already suspected: the suspicion timer decides
		}
		if c := m.conns[a.ID]; c != nil && now.Sub(c.lastHeard) < m.cfg.ProbeInterval/2 {
			continue // heard from it (its own probe or ack) within half a period
		}
		m.seq++
		seq := m.seq
		target := a.ID
		m.probes[seq] = &probe{target: target, started: m.cfg.Clock.Now()}
		m.send(target, &Message{Kind: kindPing, Seq: seq})
		m.after(m.cfg.AckTimeout, func() {
			p := m.probes[seq]
			if p == nil || p.acked {
				delete(m.probes, seq)
				return
			}
			helpers := m.sample(m.active, m.cfg.IndirectProbes, target)
			desc := m.descOf(target)
			for _, h := range helpers {
				m.stats.IndirectProbesAsked++
				m.send(h.ID, &Message{Kind: kindPingReq, Seq: seq, Node: &desc})
			}
			m.after(m.cfg.ProbeInterval-m.cfg.AckTimeout, func() {
				p := m.probes[seq]
				delete(m.probes, seq)
				if p == nil || p.acked {
					return
				}
				m.suspect(target)
			})
		})
	}
}

// relayProbe serves a PING-REQ: ping the target for the asker and relay the ACK.
func (m *Membership) relayProbe(from identity.PeerID, msg *Message) {
	target := *msg.Node
	if target.ID == m.self.ID || target.ID == from {
		return
	}
	m.seq++
	seq := m.seq
	m.relays[seq] = relay{origin: from, seq: msg.Seq}
	m.dialClaimed(target, func(err error) {
		if err != nil {
			delete(m.relays, seq)
			return
		}
		m.send(target.ID, &Message{Kind: kindPing, Seq: seq})
	})
	m.after(m.cfg.ProbeInterval, func() { delete(m.relays, seq) })
}

// suspect marks id suspected at its current incarnation and spreads it.
func (m *Membership) suspect(id identity.PeerID) {
	mb := m.members[id]
	inc := uint64(0)
	if mb != nil {
		if mb.state != StateAlive {
			return
		}
		inc = mb.inc
	}
	m.stats.Suspicions++
	m.apply(Update{Node: m.descOf(id), State: StateSuspect, Inc: inc}, m.self.ID)
}

// apply merges a SWIM update (from the frame's sender, or self) using the
// SWIM precedence rules, acts on it and floods it on if it changed anything.
func (m *Membership) apply(u Update, from identity.PeerID) {
	u.Node.Rec = nil // updates name nodes; records travel only where they are checked
	now := m.cfg.Clock.Now()
	if u.Node.ID == m.self.ID {
		if u.State == StateAlive {
			return
		}
		// Refute: an Alive with a higher incarnation than the suspicion
		// overrides it everywhere. A suspicion below our incarnation (made by
		// a node that did not know it) is answered with the current one, at
		// most once per protocol period. Incarnations start at the wall
		// clock in milliseconds, so a claim far above the clock is a forgery
		// that every node drops (incIsForged): it is neither adopted nor can
		// it wrap the incarnation around.
		if m.incIsForged(u.Inc, now) {
			m.stats.ForgedClaims++
			return
		}
		if u.Inc >= m.inc {
			m.inc = u.Inc + 1
		} else if now.Sub(m.refutedAt) < m.cfg.ProbeInterval && m.refutedInc == m.inc {
			return
		}
		m.refutedAt, m.refutedInc = now, m.inc
		m.stats.Refutations++
		alive := Update{Node: NodeDesc{ID: m.self.ID, Addr: m.self.Addr}, State: StateAlive, Inc: m.inc}
		m.broadcast(alive, identity.PeerID{})
		if from != m.self.ID && indexOf(m.active, from) < 0 {
			// The accuser may not be a neighbour (it told us directly):
			// answer it directly too, or it keeps us dead.
			m.send(from, &Message{Kind: kindUpdate, Updates: []Update{alive}})
		}
		return
	}
	if m.incIsForged(u.Inc, now) {
		m.stats.ForgedClaims++
		return
	}
	mb := m.members[u.Node.ID]
	if from != m.self.ID && from != u.Node.ID {
		// A claim about a third node is a hint, not a verdict: a death
		// becomes a suspicion that the node can still refute, and we declare
		// it dead only on our own suspicion timeout.
		if u.State == StateDead {
			u.State = StateSuspect
		}
	}
	if mb != nil && !supersedes(u, mb) {
		return
	}
	if mb == nil {
		mb = &member{}
		m.members[u.Node.ID] = mb
	}
	old := mb.state
	if u.Node.Addr != "" {
		mb.desc = u.Node
	} else if mb.desc.ID.IsZero() {
		mb.desc = u.Node
	}
	mb.state, mb.inc, mb.updated = u.State, u.Inc, now
	m.stats.UpdatesApplied++
	if mb.suspect != nil {
		mb.suspect.Stop()
		mb.suspect = nil
	}
	id := u.Node.ID
	switch u.State {
	case StateSuspect:
		inc := u.Inc
		mb.suspect = m.after(m.cfg.SuspectTimeout, func() {
			cur := m.members[id]
			if cur == nil || cur.state != StateSuspect || cur.inc != inc {
				return
			}
			cur.suspect = nil
			m.stats.Deaths++
			m.apply(Update{Node: cur.desc, State: StateDead, Inc: inc}, m.self.ID)
		})
		if old != StateSuspect {
			m.emit(MemberSuspect, mb.desc)
		}
	case StateDead:
		m.emit(MemberDead, mb.desc)
		if _, connected := m.conns[id]; connected && m.holds[id] == 0 {
			delete(m.conns, id)
			m.net.Disconnect(id)
		}
		if i := indexOf(m.active, id); i >= 0 {
			p := m.active[i]
			m.removeActive(i)
			m.bury(p)
			m.repair()
		} else if i := indexOf(m.passive, id); i >= 0 {
			m.bury(m.passive[i])
		}
	case StateAlive:
		if old == StateSuspect || old == StateDead {
			m.emit(MemberAlive, mb.desc)
		}
	}
	m.broadcast(u, from)
}

// maxIncAhead bounds how far an incarnation may run ahead of the wall
// clock (incarnations start at the clock in milliseconds and rise by one
// per refutation): 10 minutes of clock skew and refutations.
const maxIncAhead = 10 * time.Minute

// incIsForged reports whether inc is beyond what any honest node can have
// reached by now.
func (m *Membership) incIsForged(inc uint64, now time.Time) bool {
	return inc > uint64(max(now.UnixMilli(), 0))+uint64(maxIncAhead.Milliseconds())
}

// supersedes reports whether update u overrides the record mb. Records are
// totally ordered by (incarnation, state) with alive < suspect < dead at the
// same incarnation, so updates only ever move a record forward and gossip
// cannot oscillate; only the node itself can move past a suspicion or a
// death, by refuting with a higher incarnation.
func supersedes(u Update, mb *member) bool {
	if u.Inc != mb.inc {
		return u.Inc > mb.inc
	}
	return u.State > mb.state
}

// broadcast pushes u at once to every active peer but the one it came from
// (including the node it is about, so that a suspected node hears of it and
// refutes), and queues it for piggybacking on the next probes.
func (m *Membership) broadcast(u Update, from identity.PeerID) {
	for _, a := range m.active {
		if a.ID != from {
			m.send(a.ID, &Message{Kind: kindUpdate, Updates: []Update{u}})
		}
	}
	for i := range m.recent {
		if m.recent[i].Node.ID == u.Node.ID {
			m.recent[i] = u
			m.recentTx[i] = 0
			return
		}
	}
	m.recent = append(m.recent, u)
	m.recentTx = append(m.recentTx, 0)
}

// piggyback returns the updates to attach to a probe message.
func (m *Membership) piggyback() []Update {
	if len(m.recent) == 0 {
		return nil
	}
	n := min(len(m.recent), 8)
	out := slices.Clone(m.recent[:n])
	for i := 0; i < n; i++ {
		m.recentTx[i]++
	}
	j := 0
	for i := range m.recent {
		if m.recentTx[i] < piggybackTransmits {
			m.recent[j], m.recentTx[j] = m.recent[i], m.recentTx[i]
			j++
		}
	}
	m.recent, m.recentTx = m.recent[:j], m.recentTx[:j]
	return out
}
