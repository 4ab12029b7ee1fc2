package pubsub

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/membership"
	"github.com/saorsa-labs/x0x-go/core/sim"
)

func TestMain(m *testing.M) {
	// Each property check runs a whole simulated cluster: keep the default
	// number of checks modest (override with -rapid.checks).
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if !set {
		_ = flag.Set("rapid.checks", "25")
	}
	goleak.VerifyTestMain(m)
}

type tnode struct {
	net   *sim.Node
	mem   *membership.Membership
	ps    *PubSub
	agent identity.AgentID
	got   map[MsgID]Delivery
	order []MsgID
}

type tcluster struct {
	t     testing.TB
	w     *sim.World
	nodes []*tnode
	known map[identity.AgentID]bool
	keys  StaticKeys
	real  bool
	// tune, if set, adjusts each new node's pub/sub configuration.
	tune func(*Config)
}

// newTCluster builds n nodes that all join the overlay; realSigs selects
// ML-DSA-65 keys and MLDSAVerifier instead of the simulated stand-in.
func newTCluster(t testing.TB, n int, cfg sim.Config, realSigs bool) *tcluster {
	t.Helper()
	c := &tcluster{t: t, w: sim.NewWorld(cfg), known: map[identity.AgentID]bool{}, keys: StaticKeys{}, real: realSigs}
	for i := 0; i < n; i++ {
		c.add()
	}
	t.Cleanup(c.close)
	return c
}

func (c *tcluster) add() *tnode {
	c.t.Helper()
	i := len(c.nodes)
	seed := c.w.Config().Seed
	net, err := c.w.AddNode(identity.DeriveID(fmt.Appendf(nil, "m-%d-%d", seed, i)))
	if err != nil {
		c.t.Fatal(err)
	}
	mem, err := membership.New(net, membership.Config{Clock: net.Clock(), Rand: net.Rand(), Records: membership.SimulatedRecords{ID: net.LocalID()}})
	if err != nil {
		c.t.Fatal(err)
	}
	var signer Signer
	var verifier Verifier
	if c.real {
		var s [32]byte
		copy(s[:], fmt.Sprintf("agent-%d-%d", seed, i))
		kp := identity.KeyPairFromSeed(s)
		c.keys[kp.ID()] = kp.Public()
		signer, verifier = AgentSigner{Key: kp}, NewMLDSAVerifier(c.keys)
	} else {
		id := identity.DeriveID(fmt.Appendf(nil, "a-%d-%d", seed, i))
		c.known[id] = true
		signer, verifier = SimulatedSigner{ID: id}, SimulatedVerifier{Known: c.known}
	}
	cfg := Config{Clock: net.Clock(), Rand: net.Rand(), Signer: signer, Verifier: verifier}
	if c.tune != nil {
		c.tune(&cfg)
	}
	ps, err := New(net, mem, cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	tn := &tnode{net: net, mem: mem, ps: ps, agent: signer.AgentID(), got: map[MsgID]Delivery{}}
	c.nodes = append(c.nodes, tn)
	if i > 0 {
		via := c.nodes[c.w.Rand().IntN(i)]
		for !via.net.Alive() {
			via = c.nodes[c.w.Rand().IntN(i)]
		}
		if err := mem.Join(context.Background(), []membership.NodeDesc{via.mem.Self()}); err != nil {
			c.t.Fatal(err)
		}
	}
	c.w.Clock.RunFor(10 * time.Millisecond)
	return tn
}

func (c *tcluster) subscribe(tn *tnode, topic string) *Subscription {
	c.t.Helper()
	s, err := tn.ps.SubscribeFunc(topic, func(d Delivery) {
		if _, dup := tn.got[d.ID]; dup {
			c.t.Errorf("node %d: message %x delivered twice", tn.net.Index(), d.ID[:4])
		}
		tn.got[d.ID] = d
		tn.order = append(tn.order, d.ID)
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

func (c *tcluster) publish(tn *tnode, topic string, payload []byte) MsgID {
	c.t.Helper()
	id, err := tn.ps.Publish(topic, payload)
	if err != nil {
		c.t.Fatal(err)
	}
	return id
}

func (c *tcluster) close() {
	for _, tn := range c.nodes {
		if tn.net.Alive() {
			tn.ps.Close()
			tn.mem.Close()
		}
	}
}

func (c *tcluster) run(d time.Duration) { c.w.Clock.RunFor(d) }

// missing counts (message, subscriber) pairs not delivered.
func (c *tcluster) missing(subs []*tnode, ids []MsgID) int {
	n := 0
	for _, tn := range subs {
		if !tn.net.Alive() {
			continue
		}
		for _, id := range ids {
			if _, ok := tn.got[id]; !ok {
				n++
			}
		}
	}
	return n
}
