package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
)

// persistent is a peer the node keeps connected (bootstrap or known peer).
type persistent struct {
	addr    string
	attempt int         // consecutive failed redials
	timer   clock.Timer // pending redial, if any
	gen     uint64      // invalidates superseded timers
}

// KeepConnected marks peer at addr as persistent: the node connects now (in
// the background) and, whenever the connection is lost or a dial fails,
// redials with exponential backoff (Config.ReconnectMin..ReconnectMax,
// jittered) respecting the redial cooldown. Calling it again updates addr.
// Disconnect or StopKeepConnected ends it.
func (n *Node) KeepConnected(peer identity.PeerID, addr string) error {
	if peer.IsZero() {
		return fmt.Errorf("%w: KeepConnected needs a PeerID", ErrBadConfig)
	}
	if peer == n.id {
		return ErrSelfConnect
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return link.ErrClosed
	}
	p := n.persist[peer]
	if p == nil {
		p = &persistent{}
		n.persist[peer] = p
	}
	p.addr = addr
	connected := n.peers[peer] != nil
	if !connected && p.timer == nil {
		n.scheduleLocked(peer, p, 0)
	}
	n.mu.Unlock()
	return nil
}

// StopKeepConnected stops redialling peer (an existing connection stays up).
func (n *Node) StopKeepConnected(peer identity.PeerID) {
	n.mu.Lock()
	n.dropPersistLocked(peer)
	n.mu.Unlock()
}

func (n *Node) dropPersistLocked(peer identity.PeerID) {
	if p := n.persist[peer]; p != nil {
		if p.timer != nil {
			p.timer.Stop()
		}
		delete(n.persist, peer)
	}
}

// peerDown is called when peer lost its last connection.
func (n *Node) peerDown(peer identity.PeerID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.persist[peer]; p != nil && !n.closed && n.peers[peer] == nil {
		n.scheduleLocked(peer, p, n.backoffLocked(peer, p.attempt))
	}
}

// scheduleLocked arms p's redial timer.
func (n *Node) scheduleLocked(peer identity.PeerID, p *persistent, d time.Duration) {
	if p.timer != nil {
		p.timer.Stop()
	}
	p.gen++
	gen := p.gen
	p.timer = n.clk.AfterFunc(d, func() { n.redial(peer, gen) })
}

// redial runs one reconnection attempt on a node-owned goroutine.
func (n *Node) redial(peer identity.PeerID, gen uint64) {
	n.mu.Lock()
	p := n.persist[peer]
	if n.closed || p == nil || p.gen != gen {
		n.mu.Unlock()
		return
	}
	p.timer = nil
	if n.peers[peer] != nil {
		p.attempt = 0
		n.mu.Unlock()
		return
	}
	addr := p.addr
	n.wg.Add(1)
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		err := n.Connect(n.ctx, peer, addr)
		n.mu.Lock()
		defer n.mu.Unlock()
		p := n.persist[peer]
		if p == nil || n.closed || p.timer != nil {
			return
		}
		if err == nil {
			n.stats.reconnects.Add(1)
			p.attempt = 0
			return
		}
		if n.peers[peer] != nil {
			return
		}
		p.attempt++
		n.log.Debug("redial failed", "peer", peer.Short(), "attempt", p.attempt, "err", err)
		n.scheduleLocked(peer, p, n.backoffLocked(peer, p.attempt))
	}()
}

// backoffLocked returns the delay before redial number attempt (0-based):
// ReconnectMin doubled per attempt up to ReconnectMax, jittered to
// [d/2, d], and never inside the peer's redial cooldown.
func (n *Node) backoffLocked(peer identity.PeerID, attempt int) time.Duration {
	d := n.cfg.ReconnectMin
	for i := 0; i < attempt && d < n.cfg.ReconnectMax; i++ {
		d *= 2
	}
	d = min(d, n.cfg.ReconnectMax)
	if half := d / 2; half > 0 {
		var b [8]byte
		if _, err := io.ReadFull(n.rand, b[:]); err == nil {
			d = half + time.Duration(binary.BigEndian.Uint64(b[:])%uint64(half+1))
		}
	}
	if t, ok := n.lastFail[peer]; ok {
		if rem := n.cfg.RedialCooldown - n.clk.Now().Sub(t); rem > d {
			d = rem
		}
	}
	return d
}

// checkCooldown fails with *CooldownError if a dial to peer failed less
// than RedialCooldown ago.
func (n *Node) checkCooldown(peer identity.PeerID) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.lastFail[peer]
	if !ok {
		return nil
	}
	rem := n.cfg.RedialCooldown - n.clk.Now().Sub(t)
	if rem <= 0 {
		delete(n.lastFail, peer)
		return nil
	}
	return &CooldownError{Peer: peer, Remaining: rem}
}

// noteFailLocked records a failed dial for the cooldown, pruning expired
// entries so the map stays bounded by recent failures.
func (n *Node) noteFailLocked(peer identity.PeerID) {
	now := n.clk.Now()
	if len(n.lastFail) >= 1024 {
		for p, t := range n.lastFail {
			if now.Sub(t) >= n.cfg.RedialCooldown {
				delete(n.lastFail, p)
			}
		}
	}
	n.lastFail[peer] = now
}

// ConnectCached connects, concurrently, to up to k peers chosen by
// Config.PeerCache (skipping this node and peers already connected) and
// returns how many are connected afterwards. The error joins the failures
// when none succeeded; it is nil if at least one did or there was nothing
// to do.
func (n *Node) ConnectCached(ctx context.Context, k int) (int, error) {
	if n.cfg.PeerCache == nil {
		return 0, fmt.Errorf("%w: no PeerCache configured", ErrBadConfig)
	}
	if k <= 0 {
		return 0, nil
	}
	seen := make(map[identity.PeerID]bool)
	var todo []PeerAddr
	for _, pa := range n.cfg.PeerCache.Candidates(k) {
		if pa.Peer.IsZero() || pa.Peer == n.id || seen[pa.Peer] {
			continue
		}
		seen[pa.Peer] = true
		todo = append(todo, pa)
	}
	errs := make([]error, len(todo))
	done := make(chan int, len(todo))
	for i, pa := range todo {
		go func() {
			errs[i] = n.Connect(ctx, pa.Peer, pa.Addr)
			done <- i
		}()
	}
	ok := 0
	for range todo {
		if i := <-done; errs[i] == nil {
			ok++
		}
	}
	if ok == 0 && len(todo) > 0 {
		return 0, errors.Join(errs...)
	}
	return ok, nil
}
