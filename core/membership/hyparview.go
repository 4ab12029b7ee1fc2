package membership

import (
	"slices"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
)

type gone struct {
	desc NodeDesc
	at   time.Time
}

func indexOf(v []NodeDesc, id identity.PeerID) int {
	for i := range v {
		if v[i].ID == id {
			return i
		}
	}
	return -1
}

func (m *Membership) randomActive(not ...identity.PeerID) (NodeDesc, bool) {
	cands := make([]NodeDesc, 0, len(m.active))
	for _, a := range m.active {
		if !slices.Contains(not, a.ID) {
			cands = append(cands, a)
		}
	}
	if len(cands) == 0 {
		return NodeDesc{}, false
	}
	return cands[m.rng.IntN(len(cands))], true
}

func (m *Membership) addActive(p NodeDesc) {
	if p.ID == m.self.ID {
		return
	}
	if i := indexOf(m.active, p.ID); i >= 0 {
		if p.Addr != "" {
			m.active[i].Addr = p.Addr
		}
		return
	}
	if p.Addr == "" {
		p = m.descOf(p.ID)
	}
	if i := indexOf(m.passive, p.ID); i >= 0 {
		m.passive = slices.Delete(m.passive, i, i+1)
	}
	for len(m.active) >= m.cfg.ActiveMax {
		i := m.rng.IntN(len(m.active))
		victim := m.active[i]
		m.send(victim.ID, &Message{Kind: kindDisconnect})
		m.removeActive(i)
		m.addPassive(victim)
	}
	m.active = append(m.active, p)
	m.unbury(p.ID)
	m.emit(NeighborUp, p)
}

// admitNodes adds the vouched-for descriptors of a SHUFFLE or
// SHUFFLEREPLY to the passive view. Checking a record costs a signature
// verification, so at most as many as an honest shuffle carries are
// looked at: a peer with many throwaway keys cannot make one frame cost
// 64 verifications.
func (m *Membership) admitNodes(nodes []NodeDesc) {
	limit := m.cfg.ShuffleActive + m.cfg.ShufflePassive + 1
	for _, n := range nodes[:min(len(nodes), limit)] {
		if m.vouch(n) == nil {
			m.addPassive(n)
		}
	}
}

// unbury forgets a failed peer that is back.
func (m *Membership) unbury(id identity.PeerID) {
	if j := slices.IndexFunc(m.graveyard, func(x gone) bool { return x.desc.ID == id }); j >= 0 {
		m.graveyard = slices.Delete(m.graveyard, j, j+1)
	}
}

func (m *Membership) removeActive(i int) {
	p := m.active[i]
	m.active = slices.Delete(m.active, i, i+1)
	if c := m.conns[p.ID]; c != nil {
		c.lastUsed = m.cfg.Clock.Now()
	}
	m.emit(NeighborDown, p)
}

func (m *Membership) addPassive(p NodeDesc) {
	if p.ID == m.self.ID || p.Addr == "" || indexOf(m.active, p.ID) >= 0 {
		return
	}
	if mb := m.members[p.ID]; mb != nil && mb.state == StateDead {
		return
	}
	if i := indexOf(m.passive, p.ID); i >= 0 {
		m.passive[i].Addr = p.Addr
		return
	}
	if len(m.passive) >= m.cfg.PassiveMax {
		i := m.rng.IntN(len(m.passive))
		m.passive = slices.Delete(m.passive, i, i+1)
	}
	m.passive = append(m.passive, p)
}

// bury remembers a failed peer so that it can be retried later (partition
// healing) and drops it from the passive view.
func (m *Membership) bury(p NodeDesc) {
	if i := indexOf(m.passive, p.ID); i >= 0 {
		m.passive = slices.Delete(m.passive, i, i+1)
	}
	if p.Addr == "" {
		return
	}
	for _, g := range m.graveyard {
		if g.desc.ID == p.ID {
			return
		}
	}
	if len(m.graveyard) >= m.cfg.PassiveMax {
		m.graveyard = m.graveyard[1:]
	}
	m.graveyard = append(m.graveyard, gone{p, m.cfg.Clock.Now()})
}

// connectActive dials p and makes it an active neighbour (NEIGHBOR with the
// given priority; high means p must accept).
func (m *Membership) connectActive(p NodeDesc, high bool) {
	if p.ID == m.self.ID || indexOf(m.active, p.ID) >= 0 {
		return
	}
	if _, busy := m.pendingNb[p.ID]; busy {
		return
	}
	if err := m.budgetLocked(p); err != nil {
		return
	}
	m.pendingNb[p.ID] = m.cfg.Clock.Now()
	self := m.self
	m.dial(p, func(err error) {
		if err != nil {
			delete(m.pendingNb, p.ID)
			m.bury(p)
			return
		}
		if high {
			delete(m.pendingNb, p.ID)
			m.addActive(p)
			m.send(p.ID, &Message{Kind: kindNeighbor, High: true, Node: &self})
			return
		}
		m.send(p.ID, &Message{Kind: kindNeighbor, Node: &self})
	})
}

// repair promotes a passive peer when the active view is below target.
func (m *Membership) repair() {
	now := m.cfg.Clock.Now()
	for id, t := range m.pendingNb {
		if now.Sub(t) > 2*m.cfg.ProbeInterval {
			delete(m.pendingNb, id)
		}
	}
	if len(m.active)+len(m.pendingNb) >= m.cfg.ActiveMin || len(m.passive) == 0 {
		return
	}
	p := m.passive[m.rng.IntN(len(m.passive))]
	m.connectActive(p, len(m.active) == 0)
}

func (m *Membership) shuffleTick() {
	if len(m.active) == 0 {
		return
	}
	to, _ := m.randomActive()
	// The origin (Node) joins the receiver's passive view with the others.
	nodes := m.sample(m.active, m.cfg.ShuffleActive, to.ID)
	nodes = append(nodes, m.sample(m.passive, m.cfg.ShufflePassive)...)
	self := m.self
	m.stats.ShufflesSent++
	m.send(to.ID, &Message{Kind: kindShuffle, TTL: uint8(m.cfg.PRWL), Node: &self, Nodes: nodes})
}

func (m *Membership) sample(v []NodeDesc, k int, not ...identity.PeerID) []NodeDesc {
	c := make([]NodeDesc, 0, len(v))
	for _, x := range v {
		if !slices.Contains(not, x.ID) {
			c = append(c, x)
		}
	}
	m.rng.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
	if len(c) > k {
		c = c[:k]
	}
	return c
}

func (m *Membership) onShuffle(from identity.PeerID, msg *Message) {
	origin := *msg.Node
	if origin.ID == m.self.ID {
		return
	}
	if m.vouch(origin) != nil {
		return // nobody could answer an origin whose address is unverifiable
	}
	if msg.TTL > 1 && len(m.active) > 1 {
		if next, ok := m.randomActive(from, origin.ID); ok {
			msg.TTL--
			msg.Updates = nil
			m.send(next.ID, msg)
			return
		}
	}
	// Reply with as many nodes as we got, from the passive view first, topped
	// up from the active view (small networks have small passive views).
	reply := m.sample(m.passive, len(msg.Nodes), origin.ID)
	if len(reply) < len(msg.Nodes) {
		reply = append(reply, m.sample(m.active, len(msg.Nodes)-len(reply), origin.ID)...)
	}
	m.addPassive(origin)
	m.admitNodes(msg.Nodes)
	m.dialClaimed(origin, func(err error) {
		if err == nil {
			m.send(origin.ID, &Message{Kind: kindShuffleReply, Nodes: reply})
		}
	})
}

func (m *Membership) reconnectTick() {
	m.sweep()
	now := m.cfg.Clock.Now()
	keep := m.graveyard[:0]
	for _, g := range m.graveyard {
		if now.Sub(g.at) < m.cfg.Retention {
			keep = append(keep, g)
		}
	}
	m.graveyard = keep
	if len(m.graveyard) == 0 {
		return
	}
	i := m.rng.IntN(len(m.graveyard))
	g := m.graveyard[i]
	m.dial(g.desc, func(err error) {
		if err != nil {
			return
		}
		// Only a frame from the peer itself (see handle) revives a dead
		// record, so addPassive may refuse it for now. The peer leaves the
		// graveyard only once it is back in a view: a node whose NEIGHBOR
		// exchange is lost (a reset) must be able to try again, or a node
		// with nobody else would stay isolated for good.
		m.addPassive(g.desc)
		if indexOf(m.passive, g.desc.ID) >= 0 {
			m.unbury(g.desc.ID)
		}
		if len(m.active) < m.cfg.ActiveMax && indexOf(m.active, g.desc.ID) < 0 {
			m.pendingNb[g.desc.ID] = now
			self := m.self
			m.send(g.desc.ID, &Message{Kind: kindNeighbor, Node: &self})
		}
	})
}

// sweep closes connections that nobody uses and forgets old SWIM records.
func (m *Membership) sweep() {
	now := m.cfg.Clock.Now()
	ids := make([]identity.PeerID, 0, len(m.conns))
	for id := range m.conns {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b identity.PeerID) int { return compare(a, b) })
	for _, id := range ids {
		c := m.conns[id]
		if indexOf(m.active, id) >= 0 || m.holds[id] > 0 || m.reliedOn[id] {
			continue
		}
		if _, p := m.pendingNb[id]; p {
			continue
		}
		if now.Sub(c.lastUsed) > m.cfg.IdleGrace {
			delete(m.conns, id)
			m.net.Disconnect(id)
		}
	}
	for id, mb := range m.members {
		if mb.suspect == nil && now.Sub(mb.updated) > m.cfg.Retention && indexOf(m.active, id) < 0 {
			delete(m.members, id)
		}
	}
}

func compare(a, b identity.PeerID) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}
