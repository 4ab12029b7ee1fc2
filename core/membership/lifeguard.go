package membership

import (
	"math"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
)

// Lifeguard (Dadgar et al., "Lifeguard: Local Health Awareness for More
// Accurate Failure Detection", 2018): a node that is itself slow (CPU
// starved, its frames queued) sees its peers' answers late and would
// suspect live peers. It keeps a local health multiplier (LHM) that rises
// with evidence of its own slowness and scales its probe timeouts, its
// protocol period and its suspicion timeouts; and a suspicion starts long
// and shortens as other nodes independently confirm it.

// maxConfirmations bounds Config.SuspectConfirmations, and so the accusers
// remembered per suspected node.
const maxConfirmations = 16

// adjustHealth moves the local health multiplier by delta within
// [0, MaxLocalHealth].
func (m *Membership) adjustHealth(delta int) {
	m.lhm = min(max(m.lhm+delta, 0), m.cfg.MaxLocalHealth)
}

// healthScale is the factor applied to this node's timeouts.
func (m *Membership) healthScale() time.Duration { return time.Duration(m.lhm + 1) }

// missed reports whether a timer due at due and running at now fired more
// than TimerSlack late, and counts it as a missed deadline if so.
func (m *Membership) missed(due, now time.Time) bool {
	if due.IsZero() || now.Sub(due) <= m.cfg.TimerSlack*m.healthScale() {
		return false
	}
	m.stats.MissedDeadlines++
	m.adjustHealth(+1)
	return true
}

// suspicionTimeout is Lifeguard's suspicion timeout after c of k expected
// confirmations: from SuspectMaxTimeout down to SuspectTimeout,
// logarithmically, so the first confirmations count most.
func (m *Membership) suspicionTimeout(c, k int) time.Duration {
	lo, hi := m.cfg.SuspectTimeout, m.cfg.SuspectMaxTimeout
	if k <= 0 || c >= k {
		return lo
	}
	frac := math.Log(float64(c+1)) / math.Log(float64(k+1))
	return max(hi-time.Duration(frac*float64(hi-lo)), lo)
}

// expectedConfirmations is how many confirmations bring a new suspicion to
// the minimum timeout: SuspectConfirmations, but no more than the network
// can give (the suspected node and the first accuser never confirm), or a
// small network would always wait for the maximum.
func (m *Membership) expectedConfirmations() int {
	known := len(m.active) + len(m.passive) + 1 // nodes this node knows of, itself included
	return min(m.cfg.SuspectConfirmations, max(known-2, 0))
}

// knows reports whether id is a node this node has met: itself, a
// neighbour, a passive view entry or a connected peer. Only these count as
// independent accusers; invented identities do not.
func (m *Membership) knows(id identity.PeerID) bool {
	if id == m.self.ID {
		return true
	}
	if _, ok := m.conns[id]; ok {
		return true
	}
	return indexOf(m.active, id) >= 0 || indexOf(m.passive, id) >= 0
}

// noteAnswer counts an ACK or NACK for a probe of the current round (probes
// live only as long as their round).
func (m *Membership) noteAnswer() {
	if m.round != nil {
		m.round.answers++
	}
}
