package membership

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
	"pgregory.net/rapid"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/sim"
)

func TestMain(m *testing.M) {
	// Each property check runs a whole simulated cluster: keep the default
	// number of checks modest (override with -rapid.checks).
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if !set {
		_ = flag.Set("rapid.checks", "15")
	}
	goleak.VerifyTestMain(m)
}

// tb is the part of testing.TB that rapid.T also has.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

type cluster struct {
	w     *sim.World
	nodes []*sim.Node
	ms    []*Membership
	// tune, if set, adjusts each node's Config (its network and clock are
	// the simulator's unless tune replaces them).
	tune func(i int, node *sim.Node, cfg *Config, net *link.Network)
}

func testID(seed uint64, i int) identity.PeerID {
	return identity.DeriveID(fmt.Appendf(nil, "node-%d-%d", seed, i))
}

// newCluster starts n nodes; node i joins through a random earlier node,
// 20 ms after node i-1.
func newCluster(t tb, n int, cfg sim.Config) *cluster {
	t.Helper()
	return newTunedCluster(t, n, cfg, nil)
}

// newTunedCluster is newCluster with tune applied to every node (see
// cluster.tune).
func newTunedCluster(t tb, n int, cfg sim.Config, tune func(int, *sim.Node, *Config, *link.Network)) *cluster {
	t.Helper()
	c := &cluster{w: sim.NewWorld(cfg), tune: tune}
	for i := 0; i < n; i++ {
		c.add(t)
		if i > 0 {
			c.join(t, i, c.w.Rand().IntN(i))
		}
		c.w.Clock.RunFor(20 * time.Millisecond)
	}
	return c
}

func (c *cluster) add(t tb) int {
	t.Helper()
	i := len(c.nodes)
	node, err := c.w.AddNode(testID(c.w.Config().Seed, i))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Clock: node.Clock(), Rand: node.Rand(), Records: SimulatedRecords{ID: node.LocalID()}}
	var net link.Network = node
	if c.tune != nil {
		c.tune(i, node, &cfg, &net)
	}
	m, err := New(net, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.nodes = append(c.nodes, node)
	c.ms = append(c.ms, m)
	return i
}

func (c *cluster) join(t tb, i, via int) {
	t.Helper()
	if err := c.ms[i].Join(context.Background(), []NodeDesc{c.ms[via].Self()}); err != nil {
		t.Fatalf("node %d join via %d: %v", i, via, err)
	}
}

func (c *cluster) kill(i int) {
	c.ms[i].Close()
	c.w.Kill(c.nodes[i])
}

// crash kills node i without a graceful DISCONNECT (the process just stops).
func (c *cluster) crash(i int) { c.w.Kill(c.nodes[i]) }

func (c *cluster) index() map[identity.PeerID]int {
	idx := make(map[identity.PeerID]int, len(c.nodes))
	for i, n := range c.nodes {
		idx[n.LocalID()] = i
	}
	return idx
}

// checkViews verifies view bounds, symmetry of active views and
// connectivity of the live nodes' active graph.
func (c *cluster) checkViews() error {
	idx := c.index()
	var live []int
	for i, n := range c.nodes {
		if n.Alive() {
			live = append(live, i)
		}
	}
	adj := make(map[int][]int)
	for _, i := range live {
		m := c.ms[i]
		a, p := m.Active(), m.Passive()
		if len(a) > m.cfg.ActiveMax {
			return fmt.Errorf("node %d: active view %d > %d", i, len(a), m.cfg.ActiveMax)
		}
		if len(p) > m.cfg.PassiveMax {
			return fmt.Errorf("node %d: passive view %d > %d", i, len(p), m.cfg.PassiveMax)
		}
		if len(live) > 1 && len(a) == 0 {
			return fmt.Errorf("node %d: empty active view", i)
		}
		for _, d := range a {
			j := idx[d.ID]
			if !c.nodes[j].Alive() {
				return fmt.Errorf("node %d: dead node %d in active view", i, j)
			}
			if indexOf(c.ms[j].Active(), m.Self().ID) < 0 {
				return fmt.Errorf("asymmetric: %d has %d active, not the reverse", i, j)
			}
			if indexOf(p, d.ID) >= 0 {
				return fmt.Errorf("node %d: %d in both views", i, j)
			}
			adj[i] = append(adj[i], j)
		}
	}
	if len(live) == 0 {
		return nil
	}
	seen := map[int]bool{live[0]: true}
	stack := []int{live[0]}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, y := range adj[x] {
			if !seen[y] {
				seen[y] = true
				stack = append(stack, y)
			}
		}
	}
	if len(seen) != len(live) {
		return fmt.Errorf("active graph not connected: %d of %d reachable", len(seen), len(live))
	}
	return nil
}

func (c *cluster) close() {
	for i, m := range c.ms {
		if c.nodes[i].Alive() {
			m.Close()
		}
	}
}

func TestViewInvariantsProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(2, 30).Draw(rt, "nodes")
		seed := rapid.Uint64().Draw(rt, "seed")
		c := newCluster(rt, n, sim.Config{Seed: seed})
		defer c.close()
		c.w.Clock.RunFor(65 * time.Second) // two shuffle rounds
		if err := c.checkViews(); err != nil {
			rt.Fatal(err)
		}
	})
}

func TestJoinFailsWithoutBootstrap(t *testing.T) {
	w := sim.NewWorld(sim.Config{Seed: 1})
	node, _ := w.AddNode(testID(1, 0))
	m, err := New(node, Config{Clock: node.Clock(), Rand: node.Rand(), Records: SimulatedRecords{ID: node.LocalID()}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	err = m.Join(context.Background(), []NodeDesc{{ID: testID(1, 9), Addr: "sim:9"}})
	if !errors.Is(err, ErrNoBootstrap) {
		t.Fatalf("Join to nobody: %v, want ErrNoBootstrap", err)
	}
	if _, err := New(nil, Config{}); err == nil {
		t.Fatal("New without network/clock/rand succeeded")
	}
}

func TestKilledNodeDeclaredDeadEverywhereWithin5s(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		c := newCluster(t, 100, sim.Config{Seed: seed})
		c.w.Clock.RunFor(30 * time.Second)
		victim := 17 + int(seed)
		id := c.nodes[victim].LocalID()
		c.crash(victim)
		c.w.Clock.RunFor(5 * time.Second)
		for i, m := range c.ms {
			if i == victim {
				continue
			}
			if s, _, _ := m.MemberState(id); s != StateDead {
				t.Fatalf("seed %d: node %d sees the killed node as %v 5 s after the crash", seed, i, s)
			}
		}
		c.w.Clock.RunFor(10 * time.Second)
		if err := c.checkViews(); err != nil {
			t.Fatalf("seed %d after crash: %v", seed, err)
		}
		c.close()
	}
}

func TestSlowNodeRefutesSuspicion(t *testing.T) {
	const slow = 5
	cfg := sim.Config{Seed: 7, Latency: func(a, b int) time.Duration {
		if a == slow || b == slow {
			return 600 * time.Millisecond // RTT 1.2 s: every probe of it times out
		}
		return 30 * time.Millisecond
	}}
	c := newCluster(t, 30, cfg)
	defer c.close()
	slowID := c.nodes[slow].LocalID()
	var deaths, suspicions int
	for _, m := range c.ms {
		m.Watch(func(e Event) {
			if e.Peer.ID != slowID {
				return
			}
			switch e.Kind {
			case MemberDead:
				deaths++
			case MemberSuspect:
				suspicions++
			}
		})
	}
	c.w.Clock.RunFor(40 * time.Second)
	if suspicions == 0 {
		t.Fatal("the slow node was never suspected: the test does not exercise refutation")
	}
	if deaths != 0 {
		t.Fatalf("the slow but alive node was declared dead %d times", deaths)
	}
	if c.ms[slow].Stats().Refutations == 0 {
		t.Fatal("the slow node never refuted")
	}
	for i, m := range c.ms {
		if s, _, _ := m.MemberState(slowID); s == StateDead {
			t.Fatalf("node %d believes the slow node is dead", i)
		}
	}
}

func TestChurnRefillsActiveViews(t *testing.T) {
	c := newCluster(t, 80, sim.Config{Seed: 11})
	defer c.close()
	c.w.Clock.RunFor(30 * time.Second)
	for i := 0; i < 8; i++ {
		c.crash(5 + i*9)
		n := c.add(t)
		c.join(t, n, 1+i*9)
		c.w.Clock.RunFor(2 * time.Second)
	}
	c.w.Clock.RunFor(30 * time.Second)
	if err := c.checkViews(); err != nil {
		t.Fatal(err)
	}
	for i, m := range c.ms {
		if c.nodes[i].Alive() && len(m.Active()) < 4 {
			t.Fatalf("node %d: active view only %d after churn", i, len(m.Active()))
		}
	}
}

func TestGracefulLeave(t *testing.T) {
	c := newCluster(t, 30, sim.Config{Seed: 3})
	defer c.close()
	c.w.Clock.RunFor(20 * time.Second)
	c.kill(4)
	c.w.Clock.RunFor(5 * time.Second)
	if err := c.checkViews(); err != nil {
		t.Fatal(err)
	}
}

func TestPartitionHealReconnects(t *testing.T) {
	c := newCluster(t, 60, sim.Config{Seed: 5})
	defer c.close()
	c.w.Clock.RunFor(30 * time.Second)
	c.w.Partition(func(n *sim.Node) int { return n.Index() % 2 })
	c.w.Clock.RunFor(30 * time.Second)
	idx := c.index()
	for i, m := range c.ms {
		for _, a := range m.Active() {
			if idx[a.ID]%2 != i%2 {
				t.Fatalf("node %d keeps %d active across the partition", i, idx[a.ID])
			}
		}
	}
	c.w.Heal()
	c.w.Clock.RunFor(40 * time.Second)
	if err := c.checkViews(); err != nil {
		t.Fatal(err)
	}
}

func TestDeterministic(t *testing.T) {
	run := func() string {
		c := newCluster(t, 30, sim.Config{Seed: 9, Loss: 0.05})
		defer c.close()
		c.w.Clock.RunFor(20 * time.Second)
		c.crash(3)
		c.w.Clock.RunFor(10 * time.Second)
		out := ""
		for _, m := range c.ms[:10] {
			out += fmt.Sprint(m.Active(), m.Stats())
		}
		return out
	}
	if a, b := run(), run(); a != b {
		t.Fatal("same seed gave different views")
	}
}

// Every undecodable frame is counted and disconnects its sender (honest
// peers never send one); the overlay repairs itself afterwards.
func TestBadFramesCountedAndDisconnect(t *testing.T) {
	bad := [][]byte{{0xff}, {}, mustEncode(t, &Message{Kind: 99}), mustEncode(t, &Message{Kind: kindForwardJoin})}
	for i, b := range bad {
		c := newCluster(t, 4, sim.Config{Seed: 1})
		c.w.Clock.RunFor(2 * time.Second)
		from, to := c.nodes[0], c.nodes[1]
		if err := from.Connect(context.Background(), to.LocalID(), to.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		c.w.Clock.RunFor(100 * time.Millisecond)
		if err := from.Send(to.LocalID(), link.ProtoMembership, link.PriorityControl, b); err != nil {
			t.Fatal(err)
		}
		c.w.Clock.RunFor(100 * time.Millisecond)
		if got := c.ms[1].Stats().DecodeErrors; got != 1 {
			t.Fatalf("frame %d: decode errors %d, want 1", i, got)
		}
		if slices.Contains(to.Peers(), from.LocalID()) {
			t.Fatalf("frame %d: the sender is still connected", i)
		}
		c.w.Clock.RunFor(30 * time.Second)
		if err := c.checkViews(); err != nil {
			t.Fatal(err)
		}
		c.close()
	}
}

func mustEncode(t tb, m *Message) []byte {
	b, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzDecode(f *testing.F) {
	d := NodeDesc{ID: testID(0, 1), Addr: "sim:1"}
	for _, m := range []*Message{
		{Kind: kindJoin},
		{Kind: kindForwardJoin, TTL: 6, Node: &d},
		{Kind: kindShuffle, TTL: 3, Node: &d, Nodes: []NodeDesc{d, d}},
		{Kind: kindPing, Seq: 7, Updates: []Update{{Node: d, State: StateSuspect, Inc: 3}}},
	} {
		b, _ := Encode(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		b2, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(b2); err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
	})
}

// Connection-table squatting (issue 10, attack 5), on the simulator: a
// stranger that connects and keeps pinging, without being anyone's
// neighbour, loses its connection after the idle grace; the overlay's own
// connections stay.
func TestTalkativeStrangerIsDisconnected(t *testing.T) {
	c := newCluster(t, 6, sim.Config{Seed: 3})
	defer c.close()
	c.w.Clock.RunFor(5 * time.Second)
	stranger, err := c.w.AddNode(testID(99, 1))
	if err != nil {
		t.Fatal(err)
	}
	victim := c.nodes[0]
	if err := stranger.Connect(context.Background(), victim.LocalID(), victim.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	acks := 0
	stranger.Handle(link.ProtoMembership, func(identity.PeerID, []byte) { acks++ })
	var seq uint64
	for range 60 { // a ping every 500 ms for 30 s
		seq++
		_ = stranger.Send(victim.LocalID(), link.ProtoMembership, link.PriorityControl, mustEncode(t, &Message{Kind: kindPing, Seq: seq}))
		c.w.Clock.RunFor(500 * time.Millisecond)
	}
	if acks == 0 {
		t.Fatal("the victim never answered: the test does not exercise the attack")
	}
	if slices.Contains(victim.Peers(), stranger.LocalID()) {
		t.Fatalf("the stranger still holds its connection after 30 s of pings (%d acks)", acks)
	}
	if err := c.checkViews(); err != nil {
		t.Fatal(err)
	}
}

// A node that is told it is dead by a peer that is not its neighbour (the
// accuser's record is all it has) answers the accuser directly: a
// refutation broadcast only to the node's own neighbours would never reach
// it, and the accuser would keep a live node dead.
func TestRefutationReachesTheAccuser(t *testing.T) {
	c := newCluster(t, 2, sim.Config{Seed: 9})
	defer c.close()
	c.w.Clock.RunFor(3 * time.Second)
	a, b := c.nodes[0], c.nodes[1]
	ma, mb := c.ms[0], c.ms[1]
	// a and b stay connected but are not each other's neighbours, and b
	// holds a dead.
	ma.do(func() {
		if i := indexOf(ma.active, b.LocalID()); i >= 0 {
			ma.removeActive(i)
		}
		ma.holds[b.LocalID()]++ // keep the connection
	})
	mb.do(func() {
		if i := indexOf(mb.active, a.LocalID()); i >= 0 {
			mb.removeActive(i)
		}
		mb.holds[a.LocalID()]++
		mb.members[a.LocalID()] = &member{desc: NodeDesc{ID: a.LocalID(), Addr: a.LocalAddr()}, state: StateDead, inc: 1, updated: c.w.Clock.Now()}
	})
	// a speaks to b; b tells a what it believes; a must answer b itself.
	if err := a.Send(b.LocalID(), link.ProtoMembership, link.PriorityControl, mustEncode(t, &Message{Kind: kindPing, Seq: 99})); err != nil {
		t.Fatal(err)
	}
	c.w.Clock.RunFor(2 * time.Second)
	if s, _, _ := mb.MemberState(a.LocalID()); s != StateAlive {
		t.Fatalf("b still holds the live node a %v", s)
	}
}

// A shuffle reply carrying the decoder's maximum of 64 descriptors has at
// most an honest shuffle's worth (8) of their records checked: each check
// is a signature verification a peer with free identities could otherwise
// multiply.
func TestShuffleRecordChecksBounded(t *testing.T) {
	c := newCluster(t, 2, sim.Config{Seed: 10})
	defer c.close()
	c.w.Clock.RunFor(2 * time.Second)
	a, b := c.nodes[0], c.nodes[1]
	nodes := make([]NodeDesc, MaxNodesPerMessage)
	for i := range nodes {
		nodes[i] = NodeDesc{ID: testID(77, i), Addr: fmt.Sprint("sim:bogus-", i), Rec: []byte("not a record")}
	}
	before := c.ms[1].Stats().Unvouched
	if err := a.Send(b.LocalID(), link.ProtoMembership, link.PriorityControl, mustEncode(t, &Message{Kind: kindShuffleReply, Nodes: nodes})); err != nil {
		t.Fatal(err)
	}
	c.w.Clock.RunFor(500 * time.Millisecond)
	if got := c.ms[1].Stats().Unvouched - before; got != 8 {
		t.Fatalf("%d records checked, want 8", got)
	}
}

// A node that serves (Config.Serves) keeps the connection of a peer that
// holds it even when idle; a node that does not closes it after the idle
// grace, as it closes any unused connection. Releasing the hold ends it.
func TestServingNodeKeepsConnectionsOfPeersRelyingOnIt(t *testing.T) {
	for _, serves := range []bool{true, false} {
		c := newTunedCluster(t, 0, sim.Config{Seed: 21}, func(i int, _ *sim.Node, cfg *Config, _ *link.Network) {
			cfg.IdleGrace = time.Second
			cfg.ReconnectInterval = time.Second
			cfg.Serves = i == 0 && serves
		})
		server, client := c.add(t), c.add(t)
		other := c.add(t)
		c.join(t, other, server) // the server's active view: other
		c.w.Clock.RunFor(5 * time.Second)
		sdesc := c.ms[server].Self()
		if err := c.nodes[client].Connect(context.Background(), sdesc.ID, sdesc.Addr); err != nil {
			t.Fatal(err)
		}
		c.ms[client].Hold(sdesc.ID)
		c.w.Clock.RunFor(30 * time.Second)
		connected := slices.Contains(c.nodes[server].Peers(), c.nodes[client].LocalID())
		if connected != serves {
			t.Fatalf("serves=%v: server connected to the idle client that holds it: %v, want %v", serves, connected, serves)
		}
		if serves {
			c.ms[client].Release(sdesc.ID)
			c.w.Clock.RunFor(30 * time.Second)
			if slices.Contains(c.nodes[server].Peers(), c.nodes[client].LocalID()) {
				t.Fatal("server kept the connection after the client released it")
			}
		}
		c.close()
	}
}
