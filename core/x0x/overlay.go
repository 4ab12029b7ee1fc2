package x0x

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/membership"
	"github.com/saorsa-labs/x0x-go/core/pubsub"
)

// startOverlay builds the gossip overlay on the agent's node.
func (a *Agent) startOverlay(clk clock.Clock, rnd io.Reader, oc OverlayConfig) error {
	if rnd == nil {
		rnd = rand.Reader
	}
	a.peerAddrs = make(map[PeerID]string)
	a.held = make(map[PeerID]bool)
	a.node.WatchPeers(func(ev link.PeerEvent) {
		a.addrMu.Lock()
		defer a.addrMu.Unlock()
		if ev.Up && ev.Addr != "" && !ev.Relayed {
			a.peerAddrs[ev.Peer] = ev.Addr
		} else if !ev.Up {
			delete(a.peerAddrs, ev.Peer)
		}
	})
	a.keys = newKeyService(a.nat, clk, a.agent.Public(), a.node.KeyCache())
	cfg := pubsub.OverlayConfig{
		Clock:    clk,
		Rand:     rnd,
		Signer:   pubsub.AgentSigner{Key: a.agent},
		Verifier: pubsub.NewMLDSAVerifier(a.keys),
		Records:  membership.NewMachineRecords(a.machine, clk, a.node.KeyCache()),
	}
	oc.apply(&cfg.Membership, &cfg.PubSub)
	// A coordinator or relay keeps the connections of peers relying on it.
	cfg.Membership.Serves = a.node.Services() != 0
	ov, err := pubsub.NewOverlay(a.keys, cfg)
	if err != nil {
		a.keys.close()
		return fmt.Errorf("x0x: start overlay: %w", err)
	}
	a.overlay = ov
	// A full connection table admits a newcomer in place of the longest
	// established inbound peer the overlay does not rely on (issue 10,
	// attack 5): strangers cannot keep honest newcomers out.
	a.node.SetEvictionPolicy(func(cands []PeerID) (PeerID, bool) {
		for _, p := range cands {
			if !ov.Members.Protected(p) {
				return p, true
			}
		}
		return PeerID{}, false
	})
	a.topics.init()
	ov.WatchTopics(a.onTopicEvent)
	ov.WatchMembership(func(ev membership.Event) {
		if e, ok := membershipEventOf(ev); ok {
			a.events.publish(e)
		}
	})
	a.node.Handle(link.ProtoTaskSync, a.onTaskSync)
	return nil
}

// keepConnected keeps peer connected at addr (transport.Node.KeepConnected)
// and holds the connection in membership, which would otherwise close it
// after its idle grace if the peer is not an overlay neighbour.
func (a *Agent) keepConnected(peer PeerID, addr string) error {
	a.addrMu.Lock()
	first := !a.held[peer]
	if first {
		a.held[peer] = true
	}
	a.addrMu.Unlock()
	if first {
		a.overlay.Members.Hold(peer)
	}
	return a.node.KeepConnected(peer, addr)
}

// cachedContacts lists connected peers with the address they were reached
// at, as overlay contacts (peers whose address is unknown are skipped).
func (a *Agent) cachedContacts() []membership.NodeDesc {
	a.addrMu.Lock()
	defer a.addrMu.Unlock()
	var out []membership.NodeDesc
	for _, p := range a.node.Peers() {
		if addr := a.peerAddrs[p]; addr != "" {
			out = append(out, membership.NodeDesc{ID: p, Addr: addr})
		}
	}
	return out
}

// joinOverlay makes the connected bootstrap peers HyParView contacts.
func (a *Agent) joinOverlay(ctx context.Context, contacts []membership.NodeDesc) error {
	if len(contacts) == 0 {
		return nil
	}
	return a.overlay.Join(ctx, contacts)
}

// onTopicEvent reports a change of a topic's neighbours to the topic's
// handles and, for a task list's topic, starts a catch-up with a new
// neighbour. Pub/sub calls it without its locks held.
func (a *Agent) onTopicEvent(ev pubsub.Event) {
	a.topics.neighbourEvent(ev)
	a.taskListNeighbour(ev)
}

// closeOverlay stops pub/sub and membership.
func (a *Agent) closeOverlay() {
	a.overlay.Close()
	a.keys.close()
}
