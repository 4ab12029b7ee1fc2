package membership

import (
	"slices"
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
)

// piggybackTransmits is how many probe messages carry each update.
const piggybackTransmits = 6

// probeTick ends the previous protocol period and starts the next: every
// active peer gets a direct PING; peers that do not ACK within AckTimeout
// are probed indirectly through up to IndirectProbes other active peers;
// peers still silent when the period ends (at the next tick) are suspected.
// Probing every active peer each period (rather than one random member)
// bounds detection time by the period, which the 5 s detection goal needs;
// the active view is small, so the cost is a few small frames per second.
// A peer heard from (its own PING or an ACK) within the last half period is
// not pinged, which roughly halves the probe traffic between two nodes that
// probe each other. (Other protocols' frames do not spare the PING: probes
// and their ACKs carry the piggybacked updates.) A probe that gets no ACK
// still fails nobody whose frames of any protocol arrived after it was
// sent (finishRound). Suspected peers are still probed: a failure is this
// node's own confirmation of the suspicion, and an answer makes the peer
// hear that it is suspected. AckTimeout and the period are multiplied by
// LocalHealth+1 (Lifeguard).
func (m *Membership) probeTick() {
	now := m.cfg.Clock.Now()
	late := m.missed(m.probeDue, now)
	m.finishRound(late)
	m.repair()
	scale := m.healthScale()
	r := &probeRound{}
	for _, a := range slices.Clone(m.active) {
		if mb := m.members[a.ID]; mb != nil && mb.state == StateDead {
			continue
		}
		if c := m.conns[a.ID]; c != nil && now.Sub(c.lastHeard) < m.cfg.ProbeInterval/2 {
			continue // heard from it (its own probe or ack) within half a period
		}
		m.seq++
		m.probes[m.seq] = &probe{target: a.ID, started: now}
		r.seqs = append(r.seqs, m.seq)
		m.send(a.ID, &Message{Kind: kindPing, Seq: m.seq})
	}
	m.round = r
	if len(r.seqs) > 0 {
		wait := m.cfg.AckTimeout * scale
		due := now.Add(wait)
		r.ackTimer = m.after(wait, func() { m.probeIndirectly(r, due) })
	}
	m.scheduleProbe(m.cfg.ProbeInterval * scale)
}

// scheduleProbe arms the next probe round d from now.
func (m *Membership) scheduleProbe(d time.Duration) {
	m.probeDue = m.cfg.Clock.Now().Add(d)
	m.probeTimer = m.after(d, m.probeTick)
}

// probeIndirectly asks helpers to probe the round's peers that did not ACK.
func (m *Membership) probeIndirectly(r *probeRound, due time.Time) {
	if m.round != r {
		return // the round already ended (both timers ran late)
	}
	if m.missed(due, m.cfg.Clock.Now()) {
		// The round's failures will not count: spare the helpers.
		r.late = true
		return
	}
	for _, seq := range r.seqs {
		p := m.probes[seq]
		if p == nil || p.acked || m.heardAfter(p.target, p.started) {
			// Acked, or its other frames arrived since the PING: no need
			// for helpers (a helper not connected to the target would
			// dial it, a full handshake, to find what we know already).
			continue
		}
		desc := m.descOf(p.target)
		for _, h := range m.sample(m.active, m.cfg.IndirectProbes, p.target) {
			m.stats.IndirectProbesAsked++
			p.asked++
			p.waiting = append(p.waiting, h.ID)
			m.send(h.ID, &Message{Kind: kindPingReq, Seq: seq, Node: &desc})
		}
	}
}

// finishRound ends the current probe round: it suspects the peers that
// neither ACKed directly nor through a helper, unless the round was not
// really observed, and updates the local health multiplier. lateTick says
// the tick ending the round fired late.
//
// Lifeguard's reading of a failed probe: if the helpers NACKed (they are up
// and could not reach the peer either) the peer is the problem; if they
// were silent too, this node may be (its inbound frames late), so the
// multiplier rises. A round in which nobody answered anything, ACK or
// NACK, is no evidence against the peers at all: a node whose inbound
// frames queue for a second looks exactly like that.
func (m *Membership) finishRound(lateTick bool) {
	r := m.round
	if r == nil {
		return
	}
	m.round = nil
	if r.ackTimer != nil {
		r.ackTimer.Stop()
	}
	var failed []identity.PeerID
	unexplained, helpersAsked := false, false
	for _, seq := range r.seqs {
		p := m.probes[seq]
		delete(m.probes, seq)
		if p == nil || p.acked {
			continue
		}
		if m.heardAfter(p.target, p.started) {
			// No ACK, but other frames of the target's arrived since the
			// PING went out (the ACK may be queued behind them): it is up.
			m.stats.TrafficAnswered++
			continue
		}
		failed = append(failed, p.target)
		helpersAsked = helpersAsked || p.asked > 0
		if p.asked == 0 || len(p.waiting) > 0 {
			unexplained = true
		}
		m.stats.MissedNacks += uint64(len(p.waiting))
	}
	if lateTick || r.late || (helpersAsked && r.answers == 0) {
		m.stats.UnobservedRounds++
		if !lateTick && !r.late {
			m.adjustHealth(+1) // late timers were counted already
		}
		return
	}
	for _, id := range failed {
		m.suspect(id)
	}
	// After the suspicions, so that their timeouts are not stretched by
	// this very round's failure.
	switch {
	case unexplained:
		m.adjustHealth(+1)
	case len(failed) == 0:
		m.adjustHealth(-1)
	}
}

// relayProbe serves a PING-REQ: ping the target for the asker and relay the
// ACK, or send a NACK if the target has not answered within half of what
// is left of the asker's period (so that the NACK reaches it in time):
// the NACK tells the asker that its helper is up and its own inbound
// frames arrive, so the failure is the target's (Lifeguard).
func (m *Membership) relayProbe(from identity.PeerID, msg *Message) {
	target := *msg.Node
	if target.ID == m.self.ID || target.ID == from {
		return
	}
	if _, connected := m.conns[target.ID]; !connected {
		// Not connected to the target: reaching it would take a handshake
		// (milliseconds of CPU on both ends, and a dial on a stranger's
		// word) for someone else's probe. Under a machine-wide overload
		// that work is what makes every probe late; NACK at once.
		m.stats.RelaysDeclined++
		m.send(from, &Message{Kind: kindNack, Seq: msg.Seq})
		return
	}
	m.seq++
	seq := m.seq
	m.relays[seq] = relay{origin: from, seq: msg.Seq}
	nack := func() {
		if r, ok := m.relays[seq]; ok && !r.nacked {
			r.nacked = true
			m.relays[seq] = r
			m.send(r.origin, &Message{Kind: kindNack, Seq: r.seq})
		}
	}
	m.dialClaimed(target, func(err error) {
		if err != nil {
			nack()
			return
		}
		m.send(target.ID, &Message{Kind: kindPing, Seq: seq})
	})
	nackAfter := max(m.cfg.ProbeInterval-m.cfg.AckTimeout, 0) / 2
	m.after(nackAfter, func() {
		nack()
		// A late ACK is still relayed until the asker's period is over.
		m.after(m.cfg.ProbeInterval-nackAfter, func() { delete(m.relays, seq) })
	})
}

// suspect accuses id at its current incarnation after a failed probe of
// this node's own: a new suspicion, or a confirmation of someone else's.
func (m *Membership) suspect(id identity.PeerID) {
	mb := m.members[id]
	inc := uint64(0)
	if mb != nil {
		if mb.state == StateDead || slices.Contains(mb.accusers, m.self.ID) ||
			(mb.state == StateSuspect && len(mb.accusers) > mb.expected) {
			return // nothing this accusation would change
		}
		inc = mb.inc
	}
	m.stats.Suspicions++
	self := m.self.ID
	m.apply(Update{Node: m.descOf(id), State: StateSuspect, Inc: inc, By: &self}, m.self.ID)
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
		// Suspected while alive: maybe this node is too slow to answer.
		m.adjustHealth(+1)
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
	verdict := false
	if from != m.self.ID && from != u.Node.ID {
		// A claim about a third node is a hint, not a verdict: a death
		// becomes a suspicion that the node can still refute, and we declare
		// it dead only on our own suspicion timeout.
		if u.State == StateDead {
			// Relays pass deaths on as suspicions, so a death comes
			// from the node whose own suspicion timer expired: that
			// node is an accuser.
			u.State = StateSuspect
			u.By = &from
			verdict = true
		}
	}
	if u.State == StateSuspect && u.By == nil {
		u.By = &from
	}
	if mb != nil && !supersedes(u, mb) {
		if u.State == StateSuspect && mb.state == StateSuspect && u.Inc == mb.inc {
			m.confirm(u, mb, from, !verdict)
		}
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
	mb.accusers = mb.accusers[:0]
	id := u.Node.ID
	switch u.State {
	case StateSuspect:
		// The first accuser starts the suspicion at the maximum timeout;
		// only the ones after it confirm.
		mb.suspectedAt = now
		mb.accusers = append(mb.accusers, *u.By)
		mb.expected = m.expectedConfirmations()
		m.armSuspicion(id, mb)
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

// confirm counts u, a suspicion of a node already suspected at the same
// incarnation, if it comes from a new accuser: the suspicion timeout
// shrinks. Identities are free, so only accusers this node knows count
// (the sender itself, or a node in its views or connections), at most
// mb.expected. A counted accusation spreads on so that others count it
// too, unless relay is false: a neighbour's death verdict already reaches
// each node from its own neighbours, and flooding it would multiply the
// traffic of every failure.
func (m *Membership) confirm(u Update, mb *member, from identity.PeerID, relay bool) {
	by := *u.By
	if by == u.Node.ID || len(mb.accusers) > mb.expected || slices.Contains(mb.accusers, by) {
		return
	}
	if by != from && !m.knows(by) {
		return
	}
	mb.accusers = append(mb.accusers, by)
	m.stats.Confirmations++
	m.armSuspicion(u.Node.ID, mb)
	if relay {
		m.broadcast(u, from)
	}
}

// armSuspicion (re)starts the timer that declares the suspected id dead,
// due the current suspicion timeout after the suspicion began.
func (m *Membership) armSuspicion(id identity.PeerID, mb *member) {
	if mb.suspect != nil {
		mb.suspect.Stop()
	}
	due := mb.suspectedAt.Add(m.suspicionTimeout(len(mb.accusers)-1, mb.expected) * m.healthScale())
	m.armVerdict(id, mb, due)
}

func (m *Membership) armVerdict(id identity.PeerID, mb *member, due time.Time) {
	inc := mb.inc
	if now := m.cfg.Clock.Now(); due.Before(now) {
		due = now // a confirmation made the timeout already past
	}
	mb.suspect = m.after(due.Sub(m.cfg.Clock.Now()), func() {
		cur := m.members[id]
		if cur == nil || cur.state != StateSuspect || cur.inc != inc {
			return
		}
		cur.suspect = nil
		now := m.cfg.Clock.Now()
		if m.missed(due, now) {
			// This node was not running when the verdict was due: a
			// refutation may be queued behind this timer. Decide once the
			// frames that arrived meanwhile have been read.
			m.armVerdict(id, cur, now.Add(m.cfg.TimerSlack*m.healthScale()))
			return
		}
		if m.heardAfter(id, cur.suspectedAt) {
			// The suspect's own frames kept arriving during the suspicion:
			// it is up, only slow to refute (or its refutation is queued).
			// Wait another timeout and tell it again, so that it refutes.
			m.stats.VerdictsSpared++
			m.tellSuspect(id, cur)
			cur.suspectedAt = now
			m.armVerdict(id, cur, now.Add(m.suspicionTimeout(0, cur.expected)*m.healthScale()))
			return
		}
		m.stats.Deaths++
		m.apply(Update{Node: cur.desc, State: StateDead, Inc: inc}, m.self.ID)
	})
}

// heardAfter reports whether id was heard from after t: a membership frame
// of its own, or any frame the network received from it on the current
// connection. Connections are authenticated, so only a live id can cause
// either.
func (m *Membership) heardAfter(id identity.PeerID, t time.Time) bool {
	if c := m.conns[id]; c != nil && c.lastHeard.After(t) {
		return true
	}
	return m.net.LastHeard(id).After(t)
}

// tellSuspect sends the suspected id its suspicion directly, so that it
// refutes (the broadcast that first told it may have been lost).
func (m *Membership) tellSuspect(id identity.PeerID, mb *member) {
	mb.told = m.cfg.Clock.Now()
	self := m.self.ID
	m.send(id, &Message{Kind: kindUpdate, Updates: []Update{{Node: NodeDesc{ID: id}, State: StateSuspect, Inc: mb.inc, By: &self}}})
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

type probe struct {
	target  identity.PeerID
	acked   bool
	started time.Time
	asked   int               // indirect probe helpers asked
	waiting []identity.PeerID // helpers that have sent neither ACK nor NACK
}

// probeRound is one protocol period: the probes it sent, and what this node
// observed of it.
type probeRound struct {
	seqs     []uint64
	ackTimer clock.Timer
	late     bool // a timer of the round fired late: the period was not observed
	answers  int  // ACKs and NACKs received for the round's probes
}

type relay struct {
	origin identity.PeerID
	seq    uint64
	nacked bool
}
