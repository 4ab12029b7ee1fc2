package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// ErrTooManyAgents is returned by AddAgent when the node already carries
// Config.MaxAgentsPerPeer agents.
var ErrTooManyAgents = errors.New("transport: too many local agents")

// AddAgent certifies agent on this machine (valid for
// identity.DefaultCertValidity from now) and registers it; see AddAgentCert.
// It returns the certificate it issued.
func (n *Node) AddAgent(agent *identity.KeyPair) (*identity.AgentCert, error) {
	cert, err := identity.IssueAgentCert(agent, n.id, n.clk.Now(), identity.DefaultCertValidity)
	if err != nil {
		return nil, err
	}
	if err := n.AddAgentCert(cert); err != nil {
		return nil, err
	}
	return cert, nil
}

// AddAgentCert registers a local agent by its certificate, which must verify
// for this machine now (errors wrap identity.ErrCert*). Connected peers are
// told at once; direct messages to the agent are delivered from then on.
// Re-adding an agent replaces its certificate. The node keeps cert; the
// caller must not modify it.
func (n *Node) AddAgentCert(cert *identity.AgentCert) error {
	if cert == nil {
		return fmt.Errorf("%w: nil certificate", identity.ErrCertMalformed)
	}
	if _, err := cert.Verify(n.id, n.clk.Now()); err != nil {
		return err
	}
	id := cert.AgentID()
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return link.ErrClosed
	}
	if _, ok := n.local[id]; !ok && len(n.local) >= n.cfg.MaxAgentsPerPeer {
		n.mu.Unlock()
		return fmt.Errorf("%w: limit %d", ErrTooManyAgents, n.cfg.MaxAgentsPerPeer)
	}
	n.local[id] = cert
	n.agentsVer++
	conns := n.registeredLocked()
	n.mu.Unlock()
	n.announce(conns, &agentsMsg{Add: []identity.AgentCert{*cert}})
	return nil
}

// RemoveAgent unregisters a local agent and tells connected peers. It
// reports whether the agent was registered.
func (n *Node) RemoveAgent(id identity.AgentID) bool {
	n.mu.Lock()
	_, ok := n.local[id]
	if !ok || n.closed {
		n.mu.Unlock()
		return false
	}
	delete(n.local, id)
	n.agentsVer++
	conns := n.registeredLocked()
	n.mu.Unlock()
	n.announce(conns, &agentsMsg{Remove: [][]byte{id[:]}})
	return true
}

// LocalAgents lists the agents registered on this node, sorted.
func (n *Node) LocalAgents() []identity.AgentID {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := slices.Collect(maps.Keys(n.local))
	slices.SortFunc(out, func(a, b identity.AgentID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// PeerAgents lists the certified agents a connected peer carries, sorted
// (nil if not connected).
func (n *Node) PeerAgents(peer identity.PeerID) []identity.AgentID {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c := n.peers[peer]; c != nil {
		return sortedAgents(c.agents)
	}
	return nil
}

// AgentPeers lists the connected peers that carry agent, sorted.
func (n *Node) AgentPeers(agent identity.AgentID) []identity.PeerID {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := slices.Collect(maps.Keys(n.agentIdx[agent]))
	slices.SortFunc(out, func(a, b identity.PeerID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// SendDirect sends payload from local agent from to agent to, through the
// connected peer that carries to (the lowest PeerID if several do), or
// straight to the Events channel if to is local. It waits while the
// connection's direct queue is full, until ctx is done (then the message is
// dropped, counted, and the error wraps link.ErrQueueFull and ctx.Err()).
// Errors: ErrUnknownAgent (from is not local), ErrNoRoute, link.ErrTooLarge,
// link.ErrNotConnected (the connection closed meanwhile), link.ErrClosed. The caller
// must not modify payload afterwards.
func (n *Node) SendDirect(ctx context.Context, from, to identity.AgentID, payload []byte) error {
	return n.sendDirect(ctx, 0, from, to, payload)
}

// DirectService names a library service that exchanges agent-to-agent
// messages over the direct stream beside applications' direct messages.
// A service's messages go to its handler (HandleDirect), never to Events,
// so an application's payloads can never be mistaken for a service's.
type DirectService uint8

// Direct services.
const (
	// ServiceGroups carries MLS group invitations: key package requests
	// and replies, Welcomes and declines.
	ServiceGroups    DirectService = 1
	maxDirectService               = ServiceGroups
)

// DirectHandler receives a service message from agent from (certified on
// the sending machine peer; peer is the local node's ID for a message from
// a local agent) to the local agent to. It runs on the connection's reader
// goroutine (or the sender's, for a local message) and must not block;
// payload belongs to the handler.
type DirectHandler func(peer identity.PeerID, from, to identity.AgentID, payload []byte)

// HandleDirect sets the handler of service s's messages; nil removes it
// (messages are then dropped and counted). Unknown services are ignored.
func (n *Node) HandleDirect(s DirectService, h DirectHandler) {
	if s == 0 || s > maxDirectService {
		n.log.Warn("HandleDirect: unknown service ignored", "service", uint8(s))
		return
	}
	if h == nil {
		n.services[s].Store(nil)
		return
	}
	n.services[s].Store(&h)
}

// SendService is SendDirect for service s's messages, which arrive at the
// recipient's handler of s. Errors: as SendDirect, and ErrMalformed for an
// unknown service.
func (n *Node) SendService(ctx context.Context, s DirectService, from, to identity.AgentID, payload []byte) error {
	if s == 0 || s > maxDirectService {
		return fmt.Errorf("%w: unknown direct service %d", ErrMalformed, s)
	}
	return n.sendDirect(ctx, s, from, to, payload)
}

// sendDirect sends a direct message (s == 0) or a message of service s.
func (n *Node) sendDirect(ctx context.Context, s DirectService, from, to identity.AgentID, payload []byte) error {
	head := directIDsSize
	if s != 0 {
		head++
	}
	if len(payload) > n.cfg.MaxFrameSize-head {
		return fmt.Errorf("%w: %d bytes, limit %d", link.ErrTooLarge, len(payload), n.cfg.MaxFrameSize-head)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return link.ErrClosed
	}
	if n.local[from] == nil {
		n.mu.Unlock()
		return fmt.Errorf("%w: sender %s", ErrUnknownAgent, from.Short())
	}
	if n.local[to] != nil {
		n.mu.Unlock()
		n.deliverDirect(s, n.id, "", from, to, bytes.Clone(payload))
		return nil
	}
	var peer identity.PeerID
	for p := range n.agentIdx[to] {
		if n.peers[p] != nil && (peer.IsZero() || bytes.Compare(p[:], peer[:]) < 0) {
			peer = p
		}
	}
	n.mu.Unlock()
	if peer.IsZero() {
		return fmt.Errorf("%w: agent %s", ErrNoRoute, to.Short())
	}
	it := sendItem{prio: link.PriorityEager, body: payload, headLen: uint8(frameHeaderSize + head)}
	if s == 0 {
		putFrameHeader(it.head[:], frameDirect, directIDsSize+len(payload))
		putDirectIDs(it.head[frameHeaderSize:], from, to)
	} else {
		putFrameHeader(it.head[:], frameService, 1+directIDsSize+len(payload))
		it.head[frameHeaderSize] = byte(s)
		putDirectIDs(it.head[frameHeaderSize+1:], from, to)
	}
	var last *conn
	for {
		c, err := n.sendConn(peer)
		if err != nil {
			return err
		}
		err = c.enqueue(link.ClassDirect, it)
		switch {
		case err == errRetiring && c != last:
			last = c
			continue // the peer's current connection replaced c
		case err == errRetiring:
			return link.ErrNotConnected
		case !errors.Is(err, link.ErrQueueFull):
			return err
		}
		select {
		case <-c.queues[link.ClassDirect.Index()].space:
		case <-ctx.Done():
			n.stats.classes[link.ClassDirect.Index()].dropped[link.PriorityEager].Add(1)
			return fmt.Errorf("%w: %w", link.ErrQueueFull, ctx.Err())
		case <-c.qc.Context().Done():
			return link.ErrNotConnected
		}
	}
}

// deliverDirect hands a verified direct message to Events (s == 0) or to
// service s's handler.
func (n *Node) deliverDirect(s DirectService, peer identity.PeerID, addr string, from, to identity.AgentID, payload []byte) {
	if s == 0 {
		n.stats.directDelivered.Add(1)
		n.emit(Event{Kind: EventDirectMessage, Peer: peer, Addr: addr, From: from, To: to, Payload: payload})
		return
	}
	h := n.services[s].Load()
	if h == nil {
		n.stats.directDropped.Add(1)
		return
	}
	n.stats.directDelivered.Add(1)
	(*h)(peer, from, to, payload)
}

// onDirect handles an inbound direct message or, if service, a service
// message: it is delivered only if from is certified on the sending
// machine (and not expired) and to is local.
func (n *Node) onDirect(c *conn, service bool, body []byte) error {
	var s DirectService
	if service {
		if len(body) < 1 || body[0] == 0 || DirectService(body[0]) > maxDirectService {
			// An unknown service may be a newer peer's: drop, do not fail.
			n.stats.directDropped.Add(1)
			return nil
		}
		s, body = DirectService(body[0]), body[1:]
	}
	from, to, payload, err := decodeDirect(body)
	if err != nil {
		return err
	}
	now := n.clk.Now().Unix()
	n.mu.Lock()
	ra := c.agents[from]
	_, isLocal := n.local[to]
	n.mu.Unlock()
	if ra == nil || now > ra.notAfter || !isLocal {
		n.stats.directDropped.Add(1)
		n.log.Debug("direct message dropped", "peer", c.peer.Short(), "from", from.Short(), "to", to.Short(),
			"certified", ra != nil, "local", isLocal, "service", uint8(s))
		return nil
	}
	n.deliverDirect(s, c.peer, c.addr, from, to, payload)
	return nil
}

// onAgents applies an agents update from the peer.
func (n *Node) onAgents(c *conn, body []byte) error {
	m, err := decodeAgents(body, n.cfg.MaxAgentsPerPeer)
	if err != nil {
		return err
	}
	added := n.verifyCerts(c.peer, m.Add)
	n.mu.Lock()
	if n.peers[c.peer] != c {
		n.mu.Unlock()
		return nil // superseded: the current connection's hello is authoritative
	}
	next := make(map[identity.AgentID]*remoteAgent, len(c.agents)+len(added))
	if !m.Full {
		maps.Copy(next, c.agents)
	}
	for _, r := range m.Remove {
		delete(next, identity.AgentID(r))
	}
	for id, ra := range added {
		if _, ok := next[id]; !ok && len(next) >= n.cfg.MaxAgentsPerPeer {
			n.stats.certsRejected.Add(1)
			continue
		}
		next[id] = ra
	}
	before := sortedAgents(c.agents)
	n.indexRemoveLocked(c.peer, c.agents)
	c.agents = next
	n.indexAddLocked(c.peer, c.agents)
	after := sortedAgents(next)
	n.mu.Unlock()
	if !equalAgents(before, after) {
		n.emit(Event{Kind: EventAgentsChanged, Peer: c.peer, Addr: c.addr, Agents: after})
	}
	return nil
}

// verifyCerts verifies certificates presented by peer, keeping the valid
// ones (at most MaxAgentsPerPeer) and counting the rejected.
func (n *Node) verifyCerts(peer identity.PeerID, certs []identity.AgentCert) map[identity.AgentID]*remoteAgent {
	now := n.clk.Now()
	out := make(map[identity.AgentID]*remoteAgent, len(certs))
	for i := range certs {
		cert := &certs[i]
		if _, err := cert.VerifyCached(n.verify, peer, now); err != nil {
			n.stats.certsRejected.Add(1)
			n.log.Debug("agent certificate rejected", "peer", peer.Short(), "err", err)
			continue
		}
		if len(out) >= n.cfg.MaxAgentsPerPeer {
			n.stats.certsRejected.Add(1)
			continue
		}
		out[cert.AgentID()] = &remoteAgent{notAfter: cert.NotAfter}
	}
	return out
}

// agentsSnapshot returns the local certificates and the agents version.
func (n *Node) agentsSnapshot() ([]identity.AgentCert, uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]identity.AgentCert, 0, len(n.local))
	for _, c := range n.local {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b identity.AgentCert) int { return bytes.Compare(a.AgentKey, b.AgentKey) })
	return out, n.agentsVer
}

// sendFullAgents resends the whole local agent set to c (after agents
// changed while c was handshaking).
func (n *Node) sendFullAgents(c *conn) {
	certs, _ := n.agentsSnapshot()
	n.announce([]*conn{c}, &agentsMsg{Full: true, Add: certs})
}

// announce queues an agents update to each connection at control priority
// on the direct stream, so that it precedes direct messages sent after it.
func (n *Node) announce(conns []*conn, m *agentsMsg) {
	if len(conns) == 0 {
		return
	}
	body, err := wire.Marshal(m)
	if err != nil || len(body) > maxAgentsBody {
		n.log.Warn("cannot encode agents update", "err", err, "size", len(body))
		return
	}
	for _, c := range conns {
		it := sendItem{prio: link.PriorityControl, body: body, headLen: frameHeaderSize}
		putFrameHeader(it.head[:], frameAgents, len(body))
		if err := c.enqueue(link.ClassDirect, it); err != nil {
			n.stats.classes[link.ClassDirect.Index()].dropped[link.PriorityControl].Add(1)
			n.log.Warn("agents update dropped", "peer", c.peer.Short(), "err", err)
		}
	}
}

// registeredLocked lists the connections currently carrying peers.
func (n *Node) registeredLocked() []*conn {
	out := make([]*conn, 0, len(n.peers))
	for _, c := range n.peers {
		out = append(out, c)
	}
	return out
}

func (n *Node) indexAddLocked(peer identity.PeerID, agents map[identity.AgentID]*remoteAgent) {
	for id := range agents {
		set := n.agentIdx[id]
		if set == nil {
			set = make(map[identity.PeerID]struct{}, 1)
			n.agentIdx[id] = set
		}
		set[peer] = struct{}{}
	}
}

func (n *Node) indexRemoveLocked(peer identity.PeerID, agents map[identity.AgentID]*remoteAgent) {
	for id := range agents {
		if set := n.agentIdx[id]; set != nil {
			delete(set, peer)
			if len(set) == 0 {
				delete(n.agentIdx, id)
			}
		}
	}
}

func sortedAgents(m map[identity.AgentID]*remoteAgent) []identity.AgentID {
	out := slices.Collect(maps.Keys(m))
	slices.SortFunc(out, func(a, b identity.AgentID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

func equalAgents(a, b []identity.AgentID) bool { return slices.Equal(a, b) }
