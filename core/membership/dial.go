package membership

import (
	"fmt"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
)

// maxFailedAddrs bounds the memory of recently failed addresses.
const maxFailedAddrs = 1024

// Dial connects to peer for another layer through the network's
// asynchronous Dial; done is called on a network goroutine without the
// membership lock held, with nil on success.
func (m *Membership) Dial(peer NodeDesc, done func(error)) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		done(ErrClosed)
		return
	}
	if err := m.mayDialLocked(peer); err != nil {
		m.mu.Unlock()
		done(err)
		return
	}
	m.mu.Unlock()
	m.net.Dial(m.ctx, peer.ID, peer.Addr, func(err error) {
		m.do(func() { m.dialled(peer, err) })
		done(err)
	})
}

// dial connects to p through the network's asynchronous Dial and then
// runs then(err) under the lock.
func (m *Membership) dial(p NodeDesc, then func(error)) {
	if _, ok := m.conns[p.ID]; ok {
		then(nil)
		return
	}
	m.net.Dial(m.ctx, p.ID, p.Addr, func(err error) {
		m.do(func() {
			m.dialled(p, err)
			then(err)
		})
	})
}

// dialClaimed is dial for an address another peer passed on: it fails at
// once with ErrUnvouched or ErrDialRefused (see mayDialLocked).
func (m *Membership) dialClaimed(p NodeDesc, then func(error)) {
	if err := m.mayDialLocked(p); err != nil {
		then(err)
		return
	}
	m.dial(p, then)
}

// mayDialLocked decides whether a passed-on descriptor may be dialled: a
// connected peer always (no packet goes out); otherwise the address must
// be vouched for and pass budgetLocked.
func (m *Membership) mayDialLocked(p NodeDesc) error {
	if _, ok := m.conns[p.ID]; ok {
		return nil
	}
	if err := m.vouch(p); err != nil {
		return err
	}
	return m.budgetLocked(p)
}

// budgetLocked refuses a dial of p's address if it failed within
// FailedAddrHold or the claimed-dial budget has no token left. Addresses
// in the views were vouched for when they entered; their dials still
// spend the budget, so a view filled with throwaway records of one victim
// address cannot make this node spray it.
func (m *Membership) budgetLocked(p NodeDesc) error {
	if _, ok := m.conns[p.ID]; ok {
		return nil
	}
	now := m.cfg.Clock.Now()
	if at, ok := m.failed[p.Addr]; ok && now.Sub(at) < m.cfg.FailedAddrHold {
		m.stats.DialsRefused++
		return fmt.Errorf("%w: %s failed %s ago", ErrDialRefused, p.Addr, now.Sub(at).Round(time.Millisecond))
	}
	if !m.dialBudget.Take(now, 1, m.cfg.ClaimedDialRate, float64(m.cfg.ClaimedDialBurst)) {
		m.stats.DialsRefused++
		return fmt.Errorf("%w: over %g dials/s", ErrDialRefused, m.cfg.ClaimedDialRate)
	}
	return nil
}

// vouch returns nil if p's address was observed on an authenticated
// connection to p or its signed record vouches for it; it counts and wraps
// ErrUnvouched otherwise.
func (m *Membership) vouch(p NodeDesc) error {
	if p.Addr == "" {
		m.stats.Unvouched++
		return fmt.Errorf("%w: no address", ErrUnvouched)
	}
	if c := m.conns[p.ID]; c != nil && c.addr == p.Addr {
		return nil
	}
	if err := m.cfg.Records.Check(p.ID, p.Addr, p.Rec); err != nil {
		m.stats.Unvouched++
		return fmt.Errorf("%w: %w", ErrUnvouched, err)
	}
	return nil
}

// dialled records the outcome of a dial of p.
func (m *Membership) dialled(p NodeDesc, err error) {
	if err == nil {
		m.noteConn(p.ID, p.Addr)
		delete(m.failed, p.Addr)
		return
	}
	m.stats.DialFailures++
	if len(m.failed) >= maxFailedAddrs {
		now := m.cfg.Clock.Now()
		for a, at := range m.failed {
			if now.Sub(at) >= m.cfg.FailedAddrHold {
				delete(m.failed, a)
			}
		}
		for a := range m.failed { // all recent: forget an arbitrary one
			if len(m.failed) < maxFailedAddrs {
				break
			}
			delete(m.failed, a)
		}
	}
	m.failed[p.Addr] = m.cfg.Clock.Now()
}

// learnRecord keeps the record a peer sent about itself (JOIN, NEIGHBOR,
// NEIGHBORREPLY, a SHUFFLE it started), so that descriptors of it passed to
// others carry a record they can check.
func (m *Membership) learnRecord(from identity.PeerID, d *NodeDesc) {
	c := m.conns[from]
	if d == nil || d.ID != from || c == nil {
		return
	}
	if m.cfg.Records.Check(d.ID, d.Addr, d.Rec) != nil {
		m.stats.Unvouched++
		return
	}
	v := *d
	c.vouched = &v
}

func (m *Membership) noteConn(id identity.PeerID, addr string) {
	c := m.conns[id]
	if c == nil {
		c = &connInfo{}
		m.conns[id] = c
	}
	if addr != "" {
		c.addr = addr
	}
	c.lastUsed = m.cfg.Clock.Now()
}
