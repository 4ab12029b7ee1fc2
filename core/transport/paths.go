package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
)

// PeerInfo describes the connection carrying a peer.
type PeerInfo struct {
	Peer identity.PeerID
	// Addr is the peer's address as this node sees it: its UDP address, or
	// a RelayAddr's string for a relayed connection.
	Addr    string
	Relayed bool
	// Via is the relay of a relayed connection (zero for a direct one).
	Via identity.PeerID
	// Services are the roles the peer offers (from its hello).
	Services Services
	// Observed is the address the peer sees this node at (invalid on a
	// relayed connection).
	Observed netip.AddrPort
}

func (c *conn) info() PeerInfo {
	return PeerInfo{Peer: c.peer, Addr: c.addr, Relayed: c.relayed(), Via: c.via, Services: c.services, Observed: c.observed}
}

// PeerInfo returns the connection details of peer, if it is connected.
func (n *Node) PeerInfo(peer identity.PeerID) (PeerInfo, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.peers[peer]
	if c == nil {
		return PeerInfo{}, false
	}
	return c.info(), true
}

// PeersInfo returns the connection details of every connected peer.
func (n *Node) PeersInfo() []PeerInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]PeerInfo, 0, len(n.peers))
	for _, c := range n.peers {
		out = append(out, c.info())
	}
	return out
}

// Services returns the roles this node offers (Config.Services).
func (n *Node) Services() Services { return n.cfg.Services }

// directlyConnected reports whether a direct connection carries peer.
func (n *Node) directlyConnected(peer identity.PeerID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.peers[peer]
	return c != nil && !c.relayed()
}

// ErrPunchFailed means no direct connection came up from a hole-punch
// attempt (DialDirect) before its context ended.
var ErrPunchFailed = errors.New("transport: hole punch found no direct path")

// DialDirect dials peer at every address in addrs at once, from the node's
// one UDP socket, and returns nil as soon as a direct connection to peer is
// up: one of these dials, or the peer's own dial reaching this node (in a
// coordinated hole punch both sides dial each other at the same moment;
// the usual dedup keeps one connection). A relayed connection to peer does
// not count and is replaced by the direct one. Dials left running when it
// returns finish on their own (within ctx's deadline or
// HandshakeTimeout) and cost no redial cooldown, events or peer-cache
// entries. It fails with ErrPunchFailed wrapping the dials' errors,
// ErrSelfConnect, or link.ErrClosed.
func (n *Node) DialDirect(ctx context.Context, peer identity.PeerID, addrs []string) error {
	if peer == n.id {
		return ErrSelfConnect
	}
	if n.directlyConnected(peer) {
		return nil
	}
	results := make(chan error, len(addrs))
	var mu sync.Mutex
	var errs []error
	for _, a := range addrs {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return link.ErrClosed
		}
		n.wg.Add(1)
		n.mu.Unlock()
		go func() {
			defer n.wg.Done()
			// The dial outlives this call if it returns early: let it
			// finish, so both ends see the same connections for dedup.
			dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			if dl, ok := ctx.Deadline(); ok {
				dctx, cancel = context.WithDeadline(context.WithoutCancel(ctx), dl)
			}
			defer cancel()
			stop := context.AfterFunc(n.ctx, cancel)
			defer stop()
			_, err := n.dial(dctx, peer, a, dialOptions{punch: true})
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", a, err))
				mu.Unlock()
			}
			results <- err
		}()
	}
	pending := len(addrs)
	for {
		n.mu.Lock()
		c := n.peers[peer]
		direct := c != nil && !c.relayed()
		changed := n.peersChanged
		n.mu.Unlock()
		if direct {
			return nil
		}
		if pending == 0 && len(addrs) > 0 {
			mu.Lock()
			defer mu.Unlock()
			return fmt.Errorf("%w: %w", ErrPunchFailed, errors.Join(errs...))
		}
		select {
		case <-results:
			pending--
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrPunchFailed, ctx.Err())
		case <-n.ctx.Done():
			return link.ErrClosed
		}
	}
}

// LocalCandidates returns the addresses this node can be reached at on its
// own networks: the bound address if it is specific, else every up
// interface's unicast address with the bound port (loopback only when
// bound to loopback).
func (n *Node) LocalCandidates() []netip.AddrPort {
	bound, err := netip.ParseAddrPort(n.localAddr)
	if err != nil {
		return nil
	}
	if !bound.Addr().IsUnspecified() {
		return []netip.AddrPort{bound}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []netip.AddrPort
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if ip.IsLinkLocalUnicast() || (bound.Addr().Is4() && !ip.Is4()) {
				continue
			}
			out = append(out, netip.AddrPortFrom(ip, bound.Port()))
		}
	}
	return out
}
