package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
)

// connRoles returns, for each node, the role of the connection that
// carries the other node.
func carrierRole(n *Node, peer identity.PeerID) (role, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.peers[peer]
	if c == nil {
		return 0, len(n.conns)
	}
	return c.role, len(n.conns)
}

func TestSimultaneousDialDedup(t *testing.T) {
	for round := range 4 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			a := startNode(t, testConfig(testKey("dedup", 2*round)))
			b := startNode(t, testConfig(testKey("dedup", 2*round+1)))
			var got [2]int
			var inA, inB sync.Map // frames received, by payload
			a.Handle(link.ProtoMembership, func(_ identity.PeerID, m []byte) { inA.Store(string(m), true) })
			b.Handle(link.ProtoMembership, func(_ identity.PeerID, m []byte) { inB.Store(string(m), true) })
			// Bypass Connect's "already connected" shortcut so that two
			// connections really are established at the same time.
			var wg sync.WaitGroup
			var errA, errB error
			wg.Go(func() { _, errA = a.dial(context.Background(), b.LocalID(), b.LocalAddr(), dialOptions{}) })
			wg.Go(func() { _, errB = b.dial(context.Background(), a.LocalID(), a.LocalAddr(), dialOptions{}) })
			wg.Wait()
			if errA != nil || errB != nil {
				t.Fatalf("dials: %v / %v", errA, errB)
			}
			// Traffic sent while the duplicate is being retired is not lost.
			const burst = 50
			for i := range burst {
				for _, p := range []struct {
					from *testNode
					to   identity.PeerID
				}{{a, b.LocalID()}, {b, a.LocalID()}} {
					if err := p.from.Send(p.to, link.ProtoMembership, link.PriorityEager, []byte(fmt.Sprint(i))); err != nil {
						t.Fatal(err)
					}
				}
			}
			size := func(m *sync.Map) int {
				k := 0
				m.Range(func(any, any) bool { k++; return true })
				return k
			}
			waitFor(t, "every frame of the burst", func() bool { return size(&inA) == burst && size(&inB) == burst })
			// Both ends settle on one connection: the one the lower PeerID dialled.
			lower, higher := a, b
			idA, idB := a.LocalID(), b.LocalID()
			if bytes.Compare(idB[:], idA[:]) < 0 {
				lower, higher = b, a
			}
			waitFor(t, "one connection each", func() bool {
				_, na := carrierRole(a.Node, b.LocalID())
				_, nb := carrierRole(b.Node, a.LocalID())
				return na == 1 && nb == 1
			})
			if r, _ := carrierRole(lower.Node, higher.LocalID()); r != roleDialler {
				t.Fatalf("lower PeerID kept its %v connection", r)
			}
			if r, _ := carrierRole(higher.Node, lower.LocalID()); r != roleListener {
				t.Fatalf("higher PeerID kept its %v connection", r)
			}
			// Exactly one PeerConnected and no spurious PeerDisconnected.
			for i, n := range []*testNode{a, b} {
				other := []*testNode{b, a}[i].LocalID()
				evs := n.rec.snapshot()
				got[i] = count(evs, EventPeerConnected, other)
				if got[i] != 1 || count(evs, EventPeerDisconnected, other) != 0 {
					t.Fatalf("node %d events: %v", i, summarize(evs))
				}
			}
			if a.Stats().DuplicatesClosed+b.Stats().DuplicatesClosed == 0 {
				t.Fatalf("dedup not counted: %d + %d", a.Stats().DuplicatesClosed, b.Stats().DuplicatesClosed)
			}
			// The surviving connection works both ways.
			if err := a.Send(b.LocalID(), link.ProtoMembership, link.PriorityControl, []byte("x")); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "frame through the winner", func() bool { _, ok := inB.Load("x"); return ok })
		})
	}
}

func TestConnectionLimit(t *testing.T) {
	cfg := testConfig(testKey("limit", 0))
	cfg.MaxConnections = 2
	server := startNode(t, cfg)
	var clients []*testNode
	for i := 1; i <= 3; i++ {
		clients = append(clients, startNode(t, testConfig(testKey("limit", i))))
	}
	for _, c := range clients[:2] {
		if err := c.Connect(context.Background(), server.LocalID(), server.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	server.rec.wait(t, "two peers", func(e []Event) bool {
		return count(e, EventPeerConnected, clients[0].LocalID()) == 1 && count(e, EventPeerConnected, clients[1].LocalID()) == 1
	})
	err := clients[2].Connect(context.Background(), server.LocalID(), server.LocalAddr())
	if !errors.Is(err, ErrConnLimit) || !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("third connection: %v, want refused by the peer with ErrConnLimit", err)
	}
	if st := server.Stats(); st.ConnectionsRefused != 1 || st.PeersConnected != 2 {
		t.Fatalf("server stats %+v", st)
	}
	// Outbound dials count against the limit too.
	if err := server.Connect(context.Background(), clients[2].LocalID(), clients[2].LocalAddr()); !errors.Is(err, ErrConnLimit) {
		t.Fatalf("outbound beyond the limit: %v", err)
	}
	// Room frees up when a peer leaves.
	server.Disconnect(clients[0].LocalID())
	waitFor(t, "slot freed", func() bool { return server.Stats().ConnectionsOpen == 1 })
	waitFor(t, "cooldown", func() bool { return clients[2].checkCooldown(server.LocalID()) == nil })
	if err := clients[2].Connect(context.Background(), server.LocalID(), server.LocalAddr()); err != nil {
		t.Fatal(err)
	}
}

func TestQueueFullDropsAndCounts(t *testing.T) {
	cfgA := testConfig(testKey("queue", 1))
	cfgA.QueueDepth = 4
	cfgA.QueueBytes = 1 << 20
	a := startNode(t, cfgA)
	b := startNode(t, testConfig(testKey("queue", 2)))
	release := make(chan struct{})
	var mu sync.Mutex
	received := 0
	b.Handle(link.ProtoTaskSync, func(identity.PeerID, []byte) {
		<-release // a stalled consumer: flow control backs up to A's queue
		mu.Lock()
		received++
		mu.Unlock()
	})
	if err := a.Connect(context.Background(), b.LocalID(), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 256<<10)
	accepted, dropped := 0, 0
	for i := 0; i < 10000 && dropped < 10; i++ {
		switch err := a.Send(b.LocalID(), link.ProtoTaskSync, link.PriorityLazy, chunk); {
		case err == nil:
			accepted++
		case errors.Is(err, link.ErrQueueFull):
			dropped++
		default:
			t.Fatal(err)
		}
		if dropped == 0 {
			time.Sleep(time.Millisecond) // let the writer fill the flow-control windows
		}
	}
	if dropped != 10 {
		t.Fatalf("queue never filled (%d accepted)", accepted)
	}
	st := a.Stats().Class(link.ClassBulk)
	if st.Dropped[link.PriorityLazy] != uint64(dropped) || st.Dropped[link.PriorityControl] != 0 {
		t.Fatalf("drop counters %+v, want %d lazy drops", st.Dropped, dropped)
	}
	// Other classes have their own queues and still flow.
	if err := a.Send(b.LocalID(), link.ProtoMembership, link.PriorityControl, []byte("ping")); err != nil {
		t.Fatalf("membership blocked by bulk: %v", err)
	}
	waitFor(t, "membership frame", func() bool { return b.Stats().Class(link.ClassMembership).FramesIn == 1 })
	close(release)
	waitFor(t, "accepted frames delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return received == accepted
	})
}

func TestQueuePriorityAndBounds(t *testing.T) {
	q := newClassQueue()
	item := func(p link.Priority, tag byte) sendItem {
		return sendItem{prio: p, body: []byte{tag}, headLen: frameHeaderSize}
	}
	for i := range 3 {
		if !q.push(item(link.PriorityLazy, byte('l'+i)), 3) {
			t.Fatal("lazy push refused below depth")
		}
	}
	if q.push(item(link.PriorityLazy, 'x'), 3) {
		t.Fatal("push beyond depth accepted")
	}
	if !q.push(item(link.PriorityEager, 'e'), 3) || !q.push(item(link.PriorityControl, 'c'), 3) {
		t.Fatal("a full lazy FIFO blocked other priorities")
	}
	var order []byte
	for _, it := range q.popBatch(nil, 1<<20) {
		order = append(order, it.body[0])
	}
	if string(order) != "celmn" {
		t.Fatalf("pop order %q, want control, eager, then lazy FIFO", order)
	}
	// popBatch honours its byte budget but always returns one item.
	for i := range 3 {
		q.push(sendItem{prio: link.PriorityEager, body: make([]byte, 100), headLen: frameHeaderSize, head: [maxItemHead]byte{byte(i)}}, 10)
	}
	if got := q.popBatch(nil, 50); len(got) != 1 {
		t.Fatalf("batch of %d items over budget", len(got))
	}
	if got := q.popBatch(nil, 250); len(got) != 2 {
		t.Fatalf("batch of %d, want the remaining 2", len(got))
	}
}

func TestMeshOfTenWithRestart(t *testing.T) {
	const size = 10
	nodes := make([]*testNode, size)
	agents := make([]*identity.KeyPair, size)
	// A 90-dial storm on a loaded 2-core machine under -race can take
	// seconds per handshake; generous timeouts keep auth timeouts (a real
	// reason to disconnect) from masquerading as dedup flaps.
	meshConfig := func(i int) Config {
		c := testConfig(testKey("mesh", i))
		c.HandshakeTimeout, c.AuthTimeout = 30*time.Second, 30*time.Second
		return c
	}
	for i := range nodes {
		nodes[i] = startNode(t, meshConfig(i))
		agents[i] = testKey("mesh-agent", i)
		if _, err := nodes[i].AddAgent(agents[i]); err != nil {
			t.Fatal(err)
		}
	}
	// Every node keeps every other connected: all pairs dial both ways at
	// once, so this also exercises dedup at scale.
	for i, n := range nodes {
		for j, m := range nodes {
			if i != j {
				if err := n.KeepConnected(m.LocalID(), m.LocalAddr()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for i, n := range nodes {
		n.rec.wait(t, fmt.Sprintf("node %d connected to all", i), func(e []Event) bool {
			for j, m := range nodes {
				if j != i && count(e, EventPeerConnected, m.LocalID()) == 0 {
					return false
				}
			}
			return true
		})
	}
	// Agents reach their neighbours both ways.
	ctx := context.Background()
	for i := range nodes {
		next := (i + 1) % size
		if err := nodes[i].SendDirect(ctx, agents[i].ID(), agents[next].ID(), []byte(fmt.Sprintf("%d->%d", i, next))); err != nil {
			t.Fatalf("%d->%d: %v", i, next, err)
		}
		if err := nodes[next].SendDirect(ctx, agents[next].ID(), agents[i].ID(), []byte(fmt.Sprintf("%d->%d", next, i))); err != nil {
			t.Fatalf("%d->%d: %v", next, i, err)
		}
	}
	for i, n := range nodes {
		prev, next := (i+size-1)%size, (i+1)%size
		n.rec.wait(t, fmt.Sprintf("node %d messages", i), func(e []Event) bool {
			return len(directFrom(e, agents[prev].ID())) == 1 && len(directFrom(e, agents[next].ID())) == 1
		})
	}
	for i, n := range nodes {
		evs := n.rec.snapshot()
		checkOrder(t, evs)
		for j, m := range nodes {
			if i != j && (count(evs, EventPeerConnected, m.LocalID()) != 1 || count(evs, EventPeerDisconnected, m.LocalID()) != 0) {
				t.Fatalf("node %d saw peer %d flap: %v", i, j, summarize(evs))
			}
		}
	}

	// Restart node 3: close it and listen again with the same key on the
	// same port. It remembers nobody; the others reconnect on their own.
	const r = 3
	addr := nodes[r].LocalAddr()
	nodes[r].stop()
	for i, n := range nodes {
		if i != r {
			n.rec.wait(t, fmt.Sprintf("node %d sees the restart", i), func(e []Event) bool {
				return count(e, EventPeerDisconnected, nodes[r].LocalID()) == 1
			})
		}
	}
	cfg := meshConfig(r)
	cfg.BindAddr = addr
	nodes[r] = startNode(t, cfg)
	if _, err := nodes[r].AddAgent(agents[r]); err != nil {
		t.Fatal(err)
	}
	nodes[r].rec.wait(t, "restarted node reconnected by all", func(e []Event) bool {
		for j, m := range nodes {
			if j != r && count(e, EventPeerConnected, m.LocalID()) == 0 {
				return false
			}
		}
		return true
	})
	for i, n := range nodes {
		if i == r {
			continue
		}
		evs := n.rec.wait(t, fmt.Sprintf("node %d reconnected", i), func(e []Event) bool {
			return count(e, EventPeerConnected, nodes[r].LocalID()) == 2
		})
		checkOrder(t, evs)
	}
	// Messages flow to and from the restarted node again.
	for _, j := range []int{0, 9} {
		n := nodes[j]
		n.rec.wait(t, "agent of restarted node routable", func([]Event) bool {
			return len(n.AgentPeers(agents[r].ID())) == 1
		})
		before := len(directFrom(n.rec.snapshot(), agents[r].ID()))
		if err := n.SendDirect(ctx, agents[j].ID(), agents[r].ID(), []byte("welcome back")); err != nil {
			t.Fatal(err)
		}
		if err := nodes[r].SendDirect(ctx, agents[r].ID(), agents[j].ID(), []byte("thanks")); err != nil {
			t.Fatal(err)
		}
		nodes[r].rec.wait(t, "welcome", func(e []Event) bool { return len(directFrom(e, agents[j].ID())) == 1 })
		n.rec.wait(t, "thanks", func(e []Event) bool { return len(directFrom(e, agents[r].ID())) == before+1 })
	}
	var reconnects uint64
	for i, n := range nodes {
		if i != r {
			reconnects += n.Stats().Reconnects
		}
	}
	if reconnects == 0 {
		t.Fatal("no automatic reconnection was counted")
	}
}

func TestCrashedPeerIsReplacedByItsNewInstance(t *testing.T) {
	a := startNode(t, testConfig(testKey("crash", 1)))
	b := startNode(t, testConfig(testKey("crash", 2)))
	if err := a.Connect(context.Background(), b.LocalID(), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	a.rec.wait(t, "connected", func(e []Event) bool { return count(e, EventPeerConnected, b.LocalID()) == 1 })
	// Crash B: its socket dies before it can tell A anything.
	addr := b.LocalAddr()
	_ = b.udp.Close()
	b.stop()
	if evs := a.rec.snapshot(); count(evs, EventPeerDisconnected, b.LocalID()) != 0 {
		t.Fatalf("A heard about the crash: %v", summarize(evs))
	}
	// B comes back (same key, same port) and dials A, whose connection to
	// the dead instance still looks alive: the new instance replaces it.
	cfg := testConfig(testKey("crash", 2))
	cfg.BindAddr = addr
	b2 := startNode(t, cfg)
	if err := b2.Connect(context.Background(), a.LocalID(), a.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	evs := a.rec.wait(t, "replacement", func(e []Event) bool { return count(e, EventPeerConnected, b.LocalID()) == 2 })
	checkOrder(t, evs)
	// Either the new instance's connection replaced the stale one, or the
	// new instance (same machine key, hence same stateless reset key) reset
	// it first when A sent on it.
	var reset *quic.StatelessResetError
	for _, e := range evs {
		if e.Kind == EventPeerDisconnected && !errors.Is(e.Err, ErrReplaced) && !errors.As(e.Err, &reset) {
			t.Fatalf("old instance dropped with %v, want ErrReplaced or a stateless reset", e.Err)
		}
	}
	if err := b2.Send(a.LocalID(), link.ProtoPubSub, link.PriorityEager, []byte("back")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "traffic from the new instance", func() bool { return a.Stats().Class(link.ClassPubSub).NoHandler == 1 })
}
