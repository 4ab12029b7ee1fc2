package pubsub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"lukechampine.com/blake3"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/sim"
)

func TestBroadcastAllSubscribersExactlyOnce(t *testing.T) {
	c := newTCluster(t, 60, sim.Config{Seed: 1}, false)
	for _, tn := range c.nodes {
		c.subscribe(tn, "news")
	}
	c.run(20 * time.Second)
	// Warm-up: the first messages prune the initial all-eager mesh to a tree.
	for i := 0; i < 20; i++ {
		c.publish(c.nodes[c.w.Rand().IntN(len(c.nodes))], "news", []byte("warm-up"))
		c.run(100 * time.Millisecond)
	}
	c.run(2 * time.Second)
	var base uint64
	for _, tn := range c.nodes {
		base += tn.ps.Stats().PayloadsReceived
	}
	var ids []MsgID
	for i := 0; i < 30; i++ {
		src := c.nodes[c.w.Rand().IntN(len(c.nodes))]
		ids = append(ids, c.publish(src, "news", fmt.Appendf(nil, "msg %d", i)))
		c.run(1000 * time.Millisecond)
	}
	c.run(5 * time.Second)
	if m := c.missing(c.nodes, ids); m != 0 {
		t.Fatalf("%d deliveries missing", m)
	}
	// Content and origin are what was published.
	d := c.nodes[7].got[ids[3]]
	if !bytes.Equal(d.Payload, []byte("msg 3")) || d.Topic != TopicIDOf("news") {
		t.Fatalf("wrong delivery %+v", d)
	}
	var payloads, remote uint64
	payloads -= base
	for _, tn := range c.nodes {
		payloads += tn.ps.Stats().PayloadsReceived
	}
	remote = uint64(len(ids) * (len(c.nodes) - 1))
	rmr := float64(payloads)/float64(remote) - 1
	var agg Stats
	for _, tn := range c.nodes {
		st := tn.ps.Stats()
		agg.GraftsSent += st.GraftsSent
		agg.PrunesSent += st.PrunesSent
		agg.Duplicates += st.Duplicates
		agg.IHavesSent += st.IHavesSent
	}
	t.Logf("RMR %.3f grafts %d prunes %d dups %d ihaves %d", rmr, agg.GraftsSent, agg.PrunesSent, agg.Duplicates, agg.IHavesSent)
	if rmr > 0.5 {
		t.Fatalf("RMR %.2f: the eager tree is not pruned", rmr)
	}
}

func TestSparseTopicAndNonSubscriberPublish(t *testing.T) {
	c := newTCluster(t, 80, sim.Config{Seed: 2}, false)
	var subs []*tnode
	for i := 0; i < 80; i += 8 {
		subs = append(subs, c.nodes[i])
		c.subscribe(c.nodes[i], "sparse")
	}
	c.run(30 * time.Second)
	for _, s := range subs {
		e, l := s.ps.TopicPeers(TopicIDOf("sparse"))
		if len(e)+len(l) == 0 {
			t.Fatalf("subscriber %d found no topic neighbours", s.net.Index())
		}
	}
	var ids []MsgID
	for i := 0; i < 10; i++ {
		ids = append(ids, c.publish(c.nodes[3+i], "sparse", []byte{byte(i)})) // non-subscribers
		c.run(200 * time.Millisecond)
	}
	c.run(5 * time.Second)
	if m := c.missing(subs, ids); m != 0 {
		t.Fatalf("%d deliveries missing", m)
	}
	for i, tn := range c.nodes {
		if i%8 != 0 && (tn.ps.Stats().Delivered != 0 || len(tn.got) != 0) {
			t.Fatalf("non-subscriber %d delivered messages", i)
		}
	}
}

// inject sends a raw frame from node a to node b (connecting them first).
func inject(t *testing.T, c *tcluster, a, b *tnode, f *Frame) {
	t.Helper()
	if err := a.net.Connect(context.Background(), b.net.LocalID(), b.net.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	raw, err := EncodeFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.net.Send(b.net.LocalID(), link.ProtoPubSub, link.PriorityControl, raw); err != nil {
		t.Fatal(err)
	}
	c.run(time.Second)
}

func signed(kp *identity.KeyPair, topic string, seq uint64, at time.Time, payload []byte) *Signed {
	h := Header{Topic: TopicIDOf(topic), Origin: kp.ID(), Seq: seq, Time: at.UnixMilli(), PayloadHash: blake3.Sum256(payload)}
	hb, _ := h.bytes()
	return &Signed{Header: h, Payload: payload, Sig: AgentSigner{Key: kp}.Sign(hb)}
}

func TestRealSignaturesAndBadMessagesDropped(t *testing.T) {
	c := newTCluster(t, 8, sim.Config{Seed: 3}, true)
	for _, tn := range c.nodes {
		c.subscribe(tn, "secure")
	}
	c.run(10 * time.Second)
	good := c.publish(c.nodes[0], "secure", []byte("hello"))
	c.run(2 * time.Second)
	if m := c.missing(c.nodes, []MsgID{good}); m != 0 {
		t.Fatalf("%d real-signature deliveries missing", m)
	}
	victim, attacker := c.nodes[5], c.nodes[6]
	var originKey *identity.KeyPair
	{
		var s [32]byte
		copy(s[:], fmt.Sprintf("agent-%d-%d", 3, 0)) // node 0, the publisher of good
		originKey = identity.KeyPairFromSeed(s)
	}
	var stranger *identity.KeyPair
	{
		var s [32]byte
		copy(s[:], "stranger")
		stranger = identity.KeyPairFromSeed(s)
	}
	now := c.w.Clock.Now()
	topic := TopicIDOf("secure")
	before := victim.ps.Stats()
	delivered := len(victim.got)

	// Tampered payload under a valid header and signature.
	m := signed(originKey, "secure", 100, now, []byte("original"))
	m.Payload = []byte("tampered")
	inject(t, c, attacker, victim, &Frame{Kind: kindGossip, Topic: topic, Msg: m})
	// Forged: signed by the stranger, claims the origin.
	f := signed(stranger, "secure", 101, now, []byte("forged"))
	f.Header.Origin = originKey.ID()
	inject(t, c, attacker, victim, &Frame{Kind: kindGossip, Topic: topic, Msg: f})
	// Tampered header (sequence changed after signing).
	h := signed(originKey, "secure", 102, now, []byte("x"))
	h.Header.Seq = 103
	inject(t, c, attacker, victim, &Frame{Kind: kindGossip, Topic: topic, Msg: h})
	// Unknown signer.
	inject(t, c, attacker, victim, &Frame{Kind: kindGossip, Topic: topic, Msg: signed(stranger, "secure", 1, now, []byte("who"))})
	// Stale and future timestamps.
	inject(t, c, attacker, victim, &Frame{Kind: kindGossip, Topic: topic, Msg: signed(originKey, "secure", 104, now.Add(-10*time.Minute), []byte("old"))})
	inject(t, c, attacker, victim, &Frame{Kind: kindGossip, Topic: topic, Msg: signed(originKey, "secure", 105, now.Add(time.Hour), []byte("future"))})
	// Replay: a validly signed second message reusing the sequence number
	// of the origin's delivered message.
	orig := victim.got[good]
	inject(t, c, attacker, victim, &Frame{Kind: kindGossip, Topic: topic, Msg: signed(originKey, "secure", orig.Seq, now, []byte("replay"))})
	// Exact re-send of the delivered message: a duplicate, not delivered again.
	dup := signed(originKey, "secure", orig.Seq, orig.Time, orig.Payload)
	inject(t, c, attacker, victim, &Frame{Kind: kindGossip, Topic: topic, Msg: dup})
	// Oversized payload: refused by the decoder.
	big := signed(originKey, "secure", 106, now, make([]byte, MaxPayload+1))
	raw, _ := EncodeFrame(&Frame{Kind: kindGossip, Topic: topic, Msg: big})
	_ = attacker.net.Send(victim.net.LocalID(), link.ProtoPubSub, link.PriorityControl, raw)
	c.run(time.Second)

	after := victim.ps.Stats()
	if len(victim.got) != delivered {
		t.Fatalf("bad messages were delivered: %d new", len(victim.got)-delivered)
	}
	checks := []struct {
		name string
		d    uint64
		want uint64
	}{
		{"payload hash", after.DropPayloadHash - before.DropPayloadHash, 1},
		{"bad signature", after.DropBadSignature - before.DropBadSignature, 2},
		{"unknown signer", after.DropUnknownSigner - before.DropUnknownSigner, 1},
		{"stale", after.DropStale - before.DropStale, 2},
		{"replay", after.DropReplay - before.DropReplay, 1},
		{"duplicate", after.Duplicates - before.Duplicates, 1},
		{"malformed", after.DropMalformed - before.DropMalformed, 1},
	}
	for _, ch := range checks {
		if ch.d != ch.want {
			t.Errorf("%s drops: %d, want %d", ch.name, ch.d, ch.want)
		}
	}
}

// splitAndPublish subscribes every node of c to "p", splits the network
// in two halves and publishes n messages from the first n nodes; it checks
// that they did not cross.
func splitAndPublish(t *testing.T, c *tcluster, n int) []MsgID {
	for _, tn := range c.nodes {
		c.subscribe(tn, "p")
	}
	c.run(20 * time.Second)
	c.w.Partition(func(n *sim.Node) int { return n.Index() % 2 })
	c.run(2 * time.Second)
	var ids []MsgID
	for i := range n {
		ids = append(ids, c.publish(c.nodes[i], "p", fmt.Appendf(nil, "split %d", i)))
		c.run(50 * time.Millisecond)
	}
	c.run(10 * time.Second)
	if m := c.missing(c.nodes, ids); m == 0 {
		t.Fatal("messages crossed the partition")
	}
	return ids
}

func TestPartitionHealAntiEntropy(t *testing.T) {
	c := newTCluster(t, 60, sim.Config{Seed: 4}, false)
	ids := splitAndPublish(t, c, 40)
	c.w.Heal()
	c.run(60 * time.Second) // two anti-entropy rounds
	if m := c.missing(c.nodes, ids); m != 0 {
		t.Fatalf("%d deliveries still missing two anti-entropy rounds after the heal", m)
	}
	var pulled uint64
	for _, tn := range c.nodes {
		pulled += tn.ps.Stats().AEPulled
	}
	if pulled == 0 {
		t.Fatal("no message came through anti-entropy")
	}
	// Pulled messages keep the length of their path: no remote delivery
	// reports 0 hops (which would hide the slowest paths from LDH).
	for _, tn := range c.nodes {
		for _, id := range ids {
			if d, ok := tn.got[id]; ok && d.Origin != tn.agent && d.Hops < 1 {
				t.Fatalf("node %d: a remote delivery with %d hops", tn.net.Index(), d.Hops)
			}
		}
	}
}

func TestBackpressureSlowPeers(t *testing.T) {
	c := newTCluster(t, 30, sim.Config{Seed: 5, QueueLimit: 8}, false)
	for _, tn := range c.nodes {
		c.subscribe(tn, "burst")
	}
	c.run(15 * time.Second)
	var ids []MsgID
	for i := 0; i < 60; i++ {
		ids = append(ids, c.publish(c.nodes[0], "burst", make([]byte, 1024)))
	}
	c.run(70 * time.Second)
	var full uint64
	for _, tn := range c.nodes {
		full += tn.ps.Stats().SendQueueFull
	}
	if full == 0 {
		t.Fatal("the burst never filled a queue: the test does not exercise backpressure")
	}
	if m := c.missing(c.nodes, ids); m != 0 {
		t.Fatalf("%d deliveries missing after the burst (queue-full drops: %d)", m, full)
	}
}

func TestUnsubscribe(t *testing.T) {
	c := newTCluster(t, 10, sim.Config{Seed: 6}, false)
	subs := make([]*Subscription, len(c.nodes))
	for i, tn := range c.nodes {
		subs[i] = c.subscribe(tn, "u")
	}
	ch, err := c.nodes[2].ps.Subscribe("u")
	if err != nil {
		t.Fatal(err)
	}
	c.run(10 * time.Second)
	c.publish(c.nodes[0], "u", []byte("one"))
	c.run(2 * time.Second)
	if d := <-ch.C; !bytes.Equal(d.Payload, []byte("one")) {
		t.Fatalf("channel got %q", d.Payload)
	}
	ch.Unsubscribe()
	if _, open := <-ch.C; open {
		t.Fatal("channel not closed by Unsubscribe")
	}
	subs[1].Unsubscribe()
	c.run(2 * time.Second)
	for _, tn := range c.nodes {
		e, l := tn.ps.TopicPeers(TopicIDOf("u"))
		for _, p := range append(e, l...) {
			if p == c.nodes[1].net.LocalID() {
				t.Fatalf("node %d keeps the unsubscribed node as topic neighbour", tn.net.Index())
			}
		}
	}
	id := c.publish(c.nodes[0], "u", []byte("two"))
	c.run(2 * time.Second)
	if _, ok := c.nodes[1].got[id]; ok {
		t.Fatal("unsubscribed node got a message")
	}
	if _, ok := c.nodes[2].got[id]; !ok {
		t.Fatal("node with a remaining subscription missed the message")
	}
	if _, err := c.nodes[0].ps.Publish("u", make([]byte, MaxPayload+1)); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("oversized publish: %v", err)
	}
}

func TestDeterministicRuns(t *testing.T) {
	run := func() string {
		c := newTCluster(t, 25, sim.Config{Seed: 8, Loss: 0.05}, false)
		for _, tn := range c.nodes {
			c.subscribe(tn, "d")
		}
		c.run(10 * time.Second)
		for i := 0; i < 10; i++ {
			c.publish(c.nodes[i], "d", []byte{byte(i)})
			c.run(30 * time.Millisecond)
		}
		c.run(5 * time.Second)
		out := ""
		for _, tn := range c.nodes {
			out += fmt.Sprintf("%v %+v\n", tn.order, tn.ps.Stats())
		}
		c.close()
		return out
	}
	if a, b := run(), run(); a != b {
		t.Fatal("same seed, different runs")
	}
}

// A node joining a topic in which every subscriber already has its maximum
// of topic neighbours still finds neighbours (through a walk) and receives.
func TestLateJoinerInFullTopic(t *testing.T) {
	c := newTCluster(t, 0, sim.Config{Seed: 12}, false)
	c.tune = func(cfg *Config) { cfg.TopicMinPeers, cfg.TopicMaxPeers = 4, 4 }
	for i := 0; i < 40; i++ {
		c.subscribe(c.add(), "full")
	}
	c.run(20 * time.Second)
	full := 0
	for _, tn := range c.nodes {
		if e, l := tn.ps.TopicPeers(TopicIDOf("full")); len(e)+len(l) >= 4 {
			full++
		}
	}
	if full < len(c.nodes)-1 {
		t.Fatalf("only %d of %d nodes are full: the test does not exercise a full topic", full, len(c.nodes))
	}
	late := c.add()
	c.subscribe(late, "full")
	c.run(10 * time.Second)
	e, l := late.ps.TopicPeers(TopicIDOf("full"))
	if len(e)+len(l) < 3 {
		t.Fatalf("late joiner has %d topic neighbours", len(e)+len(l))
	}
	id := c.publish(c.nodes[4], "full", []byte("to everyone"))
	c.run(3 * time.Second)
	if m := c.missing(c.nodes, []MsgID{id}); m != 0 {
		t.Fatalf("%d deliveries missing (late joiner has it: %v)", m, late.got[id].ID == id)
	}
}

// A topic neighbour announcing floods of unknown IDs cannot make a node
// track (and arm GRAFT timers for) an unbounded number of them.
func TestIHaveFloodIsBounded(t *testing.T) {
	c := newTCluster(t, 2, sim.Config{Seed: 13}, false)
	for _, tn := range c.nodes {
		c.subscribe(tn, "flood")
	}
	c.run(5 * time.Second)
	a, b := c.nodes[0], c.nodes[1]
	topic := TopicIDOf("flood")
	n := 0
	for f := 0; f < 5; f++ {
		ids := make(ShortList, MaxIDsPerFrame)
		for i := range ids {
			ids[i] = idOf(1000000 + n).Short()
			n++
		}
		raw, err := EncodeFrame(&Frame{Kind: kindIHave, Topic: topic, Short: ids})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.net.Send(b.net.LocalID(), link.ProtoPubSub, link.PriorityLazy, raw); err != nil {
			t.Fatal(err)
		}
	}
	c.run(100 * time.Millisecond) // all five arrive before any GRAFT timer fires
	b.ps.mu.Lock()
	tracked := len(b.ps.topics[topic].missing)
	b.ps.mu.Unlock()
	if tracked > maxMissing {
		t.Fatalf("%d announced IDs tracked, bound %d", tracked, maxMissing)
	}
	if b.ps.Stats().DropMissingFull == 0 {
		t.Fatal("no announcement was refused: the test did not reach the bound")
	}
	c.run(30 * time.Second) // GRAFT timers run out without wedging anything
	if e, l := b.ps.TopicPeers(topic); len(e)+len(l) != 1 {
		t.Fatalf("topic neighbours after the flood: %d", len(e)+len(l))
	}
}

// A message announced by a lazy peer but not received eagerly is first
// pulled with IWANT (the tree is unchanged: over QUIC the eager copy is
// usually just late); a peer that has to be pulled from repeatedly is
// grafted into the tree.
func TestMissingMessagesPulledBeforeGrafting(t *testing.T) {
	missesThenGraft(t, false)
}

// While the tree parent keeps pushing messages, the tree above works
// (however late its copies): missing messages are only pulled, never
// grafted, so that an overloaded tree does not gain eager links.
func TestNoGraftWhileTheParentPushes(t *testing.T) {
	missesThenGraft(t, true)
}

func missesThenGraft(t *testing.T, parentPushes bool) {
	c := newTCluster(t, 3, sim.Config{Seed: 21}, false)
	for _, tn := range c.nodes {
		c.subscribe(tn, "pull")
	}
	c.run(5 * time.Second)
	b := c.nodes[0]
	topic := TopicIDOf("pull")
	var lazyPeer, eagerPeer identity.PeerID
	b.ps.do(func() {
		tp := b.ps.topics[topic]
		peers := tp.peers()
		if len(peers) < 2 {
			t.Fatalf("node has %d topic peers, want 2", len(peers))
		}
		// Make one neighbour eager and the other lazy.
		eagerPeer, lazyPeer = peers[0], peers[1]
		b.ps.toEager(tp, eagerPeer)
		b.ps.toLazy(tp, lazyPeer)
	})
	announce := func(i int) {
		b.ps.do(func() {
			tp := b.ps.topics[topic]
			if parentPushes {
				tp.tree.self.Parent = eagerPeer
			}
			b.ps.announced(tp, lazyPeer, idOf(5000+i).Short())
		})
		c.run(b.ps.cfg.GraftTimeout / 2)
		if parentPushes { // a push from the parent after the announcement
			b.ps.do(func() { b.ps.topics[topic].parentHeard = c.w.Clock.Now() })
		}
		c.run(b.ps.cfg.GraftTimeout/2 + 10*time.Millisecond)
	}
	isEager := func(p identity.PeerID) bool {
		e, _ := b.ps.TopicPeers(topic)
		return slices.Contains(e, p)
	}
	before := b.ps.Stats()
	for i := range pullsBeforeGraft {
		announce(i)
		st := b.ps.Stats()
		if st.IWantsSent-before.IWantsSent != uint64(i+1) || st.GraftsSent != before.GraftsSent {
			t.Fatalf("after %d misses: %d IWANTs, %d GRAFTs", i+1, st.IWantsSent-before.IWantsSent, st.GraftsSent-before.GraftsSent)
		}
		if isEager(lazyPeer) {
			t.Fatalf("pulling made the lazy peer eager after %d misses", i+1)
		}
	}
	announce(pullsBeforeGraft)
	if parentPushes {
		for i := range 3 {
			announce(pullsBeforeGraft + 1 + i)
		}
		if st := b.ps.Stats(); st.GraftsSent != before.GraftsSent || isEager(lazyPeer) {
			t.Fatalf("grafted while the parent pushes: %d GRAFTs, eager %v", st.GraftsSent-before.GraftsSent, isEager(lazyPeer))
		}
		return
	}
	if st := b.ps.Stats(); st.GraftsSent != before.GraftsSent+1 || !isEager(lazyPeer) {
		t.Fatalf("repeated misses did not graft: %d GRAFTs, eager %v", st.GraftsSent-before.GraftsSent, isEager(lazyPeer))
	}
}

// Walks (issue 10, attack 7): a PUBLISH walk towards a topic nobody here
// subscribes to is verified before any forwarding and capped at WalkTTL
// hops whatever hop count the sender wrote.
func TestWalksVerifiedAndCapped(t *testing.T) {
	c := newTCluster(t, 16, sim.Config{Seed: 5}, true)
	c.run(10 * time.Second)
	victim, attacker := c.nodes[3], c.nodes[9]
	var s [32]byte
	copy(s[:], fmt.Sprintf("agent-%d-%d", 5, 0)) // node 0's agent: a known origin
	origin := identity.KeyPairFromSeed(s)
	walks := func() (n uint64) {
		for _, tn := range c.nodes {
			n += tn.ps.Stats().WalksForwarded
		}
		return n
	}
	now := c.w.Clock.Now()
	topic := TopicIDOf("nobody")

	// A forged signature with the largest hop count: dropped where it lands.
	forged := signed(origin, "nobody", 50, now, []byte("forged"))
	forged.Sig[0] ^= 0xff
	badBefore := victim.ps.Stats().DropBadSignature
	for range 5 {
		inject(t, c, attacker, victim, &Frame{Kind: kindPublish, Topic: topic, Msg: forged, Hops: 255})
	}
	if w := walks(); w != 0 {
		t.Fatalf("a forged walk was forwarded %d times", w)
	}
	if got := victim.ps.Stats().DropBadSignature - badBefore; got != 5 {
		t.Fatalf("%d bad signatures counted at the victim, want 5", got)
	}

	// A valid walk with hop count 255: it travels at most WalkTTL hops in
	// all (no subscriber ends it), not 255.
	valid := signed(origin, "nobody", 51, now, []byte("valid"))
	inject(t, c, attacker, victim, &Frame{Kind: kindPublish, Topic: topic, Msg: valid, Hops: 255})
	c.run(5 * time.Second)
	if w := walks(); w == 0 || w > 10 {
		t.Fatalf("a valid walk was forwarded %d times in all, want 1..10 (WalkTTL)", w)
	}
}

// TestNewLinksReconcile: when a partition heals, the messages each side
// missed cross as soon as topic links re-form, without waiting for a
// periodic anti-entropy round (set to an hour here).
func TestNewLinksReconcile(t *testing.T) {
	c := &tcluster{t: t, w: sim.NewWorld(sim.Config{Seed: 4}), known: map[identity.AgentID]bool{}, keys: StaticKeys{},
		tune: func(cfg *Config) { cfg.AEInterval = time.Hour }}
	t.Cleanup(c.close)
	for range 30 {
		c.add()
	}
	ids := splitAndPublish(t, c, 10)
	c.w.Heal()
	c.run(40 * time.Second)
	if m := c.missing(c.nodes, ids); m != 0 {
		t.Fatalf("%d deliveries missing 40 s after the heal, with no periodic anti-entropy round", m)
	}
}
