package pubsub

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"lukechampine.com/blake3"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/sim"
)

// treeOf returns a copy of tn's tree state for topic and its topic peers.
func treeOf(tn *tnode, topic string) (TreeState, []identity.PeerID, []identity.PeerID) {
	tn.ps.mu.Lock()
	defer tn.ps.mu.Unlock()
	t := tn.ps.topics[TopicIDOf(topic)]
	return t.tree.self, t.peers(), slices.Clone(t.eager)
}

// checkTree asserts that the live nodes form one breadth-first tree under
// the live subscriber with the smallest root key: every node names that
// root, the root has distance 0, every other node's parent is one of its
// topic neighbours at distance one less, and no neighbour is closer. It
// returns the tree's depth.
func checkTree(t *testing.T, c *tcluster, topic string) int {
	t.Helper()
	id := TopicIDOf(topic)
	var live []*tnode
	for _, tn := range c.nodes {
		if tn.net.Alive() {
			live = append(live, tn)
		}
	}
	want := live[0].net.LocalID()
	for _, tn := range live {
		k, w := rootKey(id, tn.net.LocalID()), rootKey(id, want)
		if bytes.Compare(k[:], w[:]) < 0 {
			want = tn.net.LocalID()
		}
	}
	dist := map[identity.PeerID]uint8{}
	for _, tn := range live {
		st, _, _ := treeOf(tn, topic)
		if st.Root != want {
			t.Fatalf("node %d has root %x, want %x", tn.net.Index(), st.Root[:4], want[:4])
		}
		dist[tn.net.LocalID()] = st.Dist
	}
	depth := 0
	for _, tn := range live {
		st, peers, eager := treeOf(tn, topic)
		depth = max(depth, int(st.Dist))
		if tn.net.LocalID() == want {
			if st.Dist != 0 || !st.Parent.IsZero() {
				t.Fatalf("root has distance %d, parent %x", st.Dist, st.Parent[:4])
			}
			continue
		}
		if !slices.Contains(peers, st.Parent) || dist[st.Parent]+1 != st.Dist {
			t.Fatalf("node %d: parent %x at distance %d is not a neighbour one hop closer (own distance %d)",
				tn.net.Index(), st.Parent[:4], dist[st.Parent], st.Dist)
		}
		if !slices.Contains(eager, st.Parent) {
			t.Fatalf("node %d: parent link is not eager", tn.net.Index())
		}
		for _, p := range peers {
			if d, ok := dist[p]; ok && d+1 < st.Dist {
				t.Fatalf("node %d at distance %d has a neighbour at distance %d", tn.net.Index(), st.Dist, d)
			}
		}
	}
	return depth
}

// treeCluster builds n nodes with 10-40 ms links that all subscribe to
// topic, and runs them for settle.
func treeCluster(t *testing.T, n int, seed uint64, topic string, settle time.Duration) *tcluster {
	c := newTCluster(t, n, sim.Config{Seed: seed, MinLatency: 10 * time.Millisecond, MaxLatency: 40 * time.Millisecond}, false)
	for _, tn := range c.nodes {
		c.subscribe(tn, topic)
	}
	c.run(settle)
	return c
}

// winningRoot grinds a machine ID whose root key for topic is smaller
// than root's, as a hostile peer can.
func winningRoot(topic TopicID, root identity.PeerID) identity.PeerID {
	rk := rootKey(topic, root)
	for i := 0; ; i++ {
		p := identity.DeriveID(fmt.Appendf(nil, "fake-%d", i))
		if k := rootKey(topic, p); bytes.Compare(k[:], rk[:]) < 0 {
			return p
		}
	}
}

func TestTreeIsBreadthFirstFromRoot(t *testing.T) {
	const topic = "tree"
	c := treeCluster(t, 120, 7, topic, 20*time.Second)
	depth := checkTree(t, c, topic)
	if depth > 6 {
		t.Errorf("tree depth %d at 120 nodes", depth)
	}
	// Once the tree stands, a message crosses each tree link once: no
	// duplicate payloads, and no path longer than twice the depth.
	stats := func() (payloads, delivered uint64) {
		for _, tn := range c.nodes {
			st := tn.ps.Stats()
			payloads += st.PayloadsReceived
			delivered += st.Delivered
		}
		return
	}
	p0, d0 := stats()
	var ids []MsgID
	for i := range 40 {
		ids = append(ids, c.publish(c.nodes[(i*37)%len(c.nodes)], topic, fmt.Appendf(nil, "m%d", i)))
		c.run(50 * time.Millisecond)
	}
	c.run(5 * time.Second)
	if n := c.missing(c.nodes, ids); n != 0 {
		t.Fatalf("%d deliveries missing", n)
	}
	p1, d1 := stats()
	payloads, delivered := p1-p0, d1-d0-uint64(len(ids))
	if payloads > delivered+delivered/50 {
		t.Errorf("%d payloads for %d remote deliveries: the tree is not a tree", payloads, delivered)
	}
	for _, tn := range c.nodes {
		for _, id := range ids {
			if h := tn.got[id].Hops; h > 2*depth {
				t.Fatalf("a message took %d hops in a tree of depth %d", h, depth)
			}
		}
	}
}

func TestTreeRootFailover(t *testing.T) {
	const topic = "failover"
	c := treeCluster(t, 60, 3, topic, 15*time.Second)
	checkTree(t, c, topic)
	st, _, _ := treeOf(c.nodes[0], topic)
	for _, tn := range c.nodes {
		if tn.net.LocalID() == st.Root {
			c.w.Kill(tn.net)
		}
	}
	// Membership notices the crash within ~5 s; routes to the dead root
	// expire after treeFresh periods in any case.
	c.run(15 * time.Second)
	checkTree(t, c, topic)
	var ids []MsgID
	for i := range 10 {
		tn := c.nodes[1+i]
		if tn.net.Alive() {
			ids = append(ids, c.publish(tn, topic, fmt.Appendf(nil, "after %d", i)))
		}
	}
	c.run(5 * time.Second)
	if n := c.missing(c.nodes, ids); n != 0 {
		t.Fatalf("%d deliveries missing after the root crashed", n)
	}
}

// TestTreeAnnouncementsChecked feeds a node announcements that break the
// rules and checks that none of them changes its tree.
func TestTreeAnnouncementsChecked(t *testing.T) {
	const topic = "rules"
	c := treeCluster(t, 12, 5, topic, 10*time.Second)
	checkTree(t, c, topic)
	victim := c.nodes[3]
	st, peers, _ := treeOf(victim, topic)
	liar := peers[0]
	id := TopicIDOf(topic)
	// The liar claims a root that would win.
	fake := winningRoot(id, st.Root)
	now := uint64(c.w.Clock.Now().UnixMilli())
	cases := []struct {
		name string
		ann  TreeState
	}{
		{"distance 0 for another root", TreeState{Root: fake, Seq: now, Dist: 0}},
		{"sequence far ahead of our clock", TreeState{Root: fake, Seq: now + uint64(time.Hour.Milliseconds()), Dist: 1}},
		{"deeper than the bound", TreeState{Root: fake, Seq: now, Dist: maxTreeDist + 1}},
	}
	for _, tc := range cases {
		victim.ps.do(func() {
			victim.ps.onTree(victim.ps.topics[id], liar, &tc.ann)
		})
		if got, _, _ := treeOf(victim, topic); got.Root != st.Root {
			t.Errorf("%s: the victim adopted root %x", tc.name, got.Root[:4])
		}
	}
	// A valid claim wins: the checks above are what refused the others.
	victim.ps.do(func() {
		victim.ps.onTree(victim.ps.topics[id], liar, &TreeState{Root: fake, Seq: now, Dist: 3})
	})
	if got, _, _ := treeOf(victim, topic); got.Root != fake || got.Parent != liar || got.Dist != 4 {
		t.Fatalf("a well-formed announcement was not adopted: %+v", got)
	}
	// A shorter route whose sequence number lags the newest by more than
	// treeFresh periods is stale and not taken; a fresh one is.
	other := peers[1]
	old := now - uint64(treeFresh+1)*uint64(time.Second.Milliseconds())
	victim.ps.do(func() {
		victim.ps.onTree(victim.ps.topics[id], other, &TreeState{Root: fake, Seq: old, Dist: 1})
	})
	if got, _, _ := treeOf(victim, topic); got.Parent != liar || got.Dist != 4 {
		t.Errorf("the victim took a stale route: %+v", got)
	}
	victim.ps.do(func() {
		victim.ps.onTree(victim.ps.topics[id], other, &TreeState{Root: fake, Seq: now, Dist: 1})
	})
	if got, _, _ := treeOf(victim, topic); got.Parent != other || got.Dist != 2 {
		t.Errorf("the victim did not take a fresh shorter route: %+v", got)
	}
}

// TestTreeForgetsSilentRoot: a root whose sequence number stops advancing
// is dropped after treeFresh periods, although neighbours keep announcing
// it.
func TestTreeForgetsSilentRoot(t *testing.T) {
	const topic = "silent"
	c := treeCluster(t, 12, 5, topic, 10*time.Second)
	real, peers, _ := treeOf(c.nodes[3], topic)
	id := TopicIDOf(topic)
	fake := winningRoot(id, real.Root)
	// Every neighbour of node 3 claims, once a period, to be one hop from
	// a root that never announces a new sequence number.
	seq := uint64(c.w.Clock.Now().UnixMilli())
	victim := c.nodes[3]
	claim := func() {
		victim.ps.do(func() {
			for _, p := range peers {
				victim.ps.onTree(victim.ps.topics[id], p, &TreeState{Root: fake, Seq: seq, Dist: 1})
			}
		})
	}
	claim()
	if st, _, _ := treeOf(victim, topic); st.Root != fake {
		t.Fatalf("the claim was not adopted: %+v", st)
	}
	for range 2 * treeFresh {
		c.run(time.Second)
		claim()
	}
	if st, _, _ := treeOf(victim, topic); st.Root == fake {
		t.Fatalf("a root silent for %d periods is still followed: %+v", 2*treeFresh, st)
	}
	// Once the claims stop, the real root's announcements bring node 3 back.
	c.run(2 * time.Second)
	if st, _, _ := treeOf(victim, topic); st.Root != real.Root {
		t.Fatalf("node 3 did not return to the real root: %+v", st)
	}
}

// TestAnnouncementFromUnknownNeighbourIsNotLost: the two ends of a topic
// link learn of each other at different moments; an IHAVE from a sender
// the receiver does not count as a neighbour yet makes it one, and the
// message is pulled (it used to be dropped, leaving the message to
// anti-entropy 30 s later).
func TestAnnouncementFromUnknownNeighbourIsNotLost(t *testing.T) {
	c, a, b, id := subscribedPair(t, 11, "late")
	msg, _, mid := c.signedBy(a, id, 7, "stored at a only")
	a.ps.do(func() { a.ps.store(a.ps.topics[id], mid, msg, 0) })
	b.ps.do(func() { b.ps.removePeer(b.ps.topics[id], a.net.LocalID()) })
	b.ps.onDecoded(a.net.LocalID(), &Frame{Kind: kindIHave, Topic: id, Short: ShortList{mid.Short()}}, 100, nil)
	c.run(2 * time.Second)
	if _, ok := b.got[mid]; !ok {
		t.Fatal("the announced message was not pulled from a sender not yet counted as a neighbour")
	}
}

// TestTreeRootsBounded: a neighbour naming a new root in every
// announcement cannot grow the roots remembered beyond the bound.
func TestTreeRootsBounded(t *testing.T) {
	const topic = "roots"
	c := treeCluster(t, 4, 5, topic, 5*time.Second)
	victim := c.nodes[1]
	_, peers, _ := treeOf(victim, topic)
	id := TopicIDOf(topic)
	now := uint64(c.w.Clock.Now().UnixMilli())
	victim.ps.do(func() {
		tp := victim.ps.topics[id]
		for i := range 10 * maxRoots {
			root := identity.DeriveID(fmt.Appendf(nil, "root-%d", i))
			victim.ps.onTree(tp, peers[0], &TreeState{Root: root, Seq: now, Dist: 1})
		}
		if n := len(tp.tree.roots); n > 2*maxRoots+len(tp.peers())+1 {
			t.Errorf("%d roots remembered, bound %d", n, 2*maxRoots)
		}
	})
}

// TestIHaveNotSentToWhoAnnouncedIt: a node does not announce a message to
// a lazy neighbour that announced it first (whether that IHAVE came before
// the message or while our own announcement was still queued), and an
// IHAVE frame can make it look up only maxUnqueue of its IDs in the queue.
func TestIHaveNotSentToWhoAnnouncedIt(t *testing.T) {
	c, a, b, id := subscribedPair(t, 12, "lazy")
	bID := b.net.LocalID()
	msg, hb, mid := c.signedBy(a, id, 9, "announced by b first")
	// Every check below reads state inside ps.do and fails outside it (a
	// failure under the lock would wedge the cluster's cleanup).
	var tp *topic
	var awaited, queuedForB bool
	a.ps.do(func() {
		tp = a.ps.topics[id]
		// b is a's lazy neighbour (not a tree link) for this test.
		tp.tree.links, tp.eager, tp.lazy = nil, nil, []identity.PeerID{bID}
		// b announces the message before a has it; a then gets it (here:
		// publishes it) and must not queue an IHAVE of it for b.
		a.ps.heardIHave(tp, bID, ShortList{mid.Short()})
		awaited = tp.missing[mid.Short()] != nil
		a.ps.accept(a.net.LocalID(), mid, hb, msg, 0, kindPublish, nil)
		queuedForB = slices.Contains(tp.lazyQ[bID], mid.Short())
	})
	if !awaited {
		t.Fatal("an announced unknown message is not awaited")
	}
	if queuedForB {
		t.Fatal("a queued an IHAVE for the neighbour that announced the message to it")
	}
	// Messages a has and announced to b, queued: b's IHAVE of one of them
	// removes that one from the queue, and at most maxUnqueue at a time.
	var queued ShortList
	var left1, left2 ShortList
	a.ps.do(func() {
		for i := range 2 * maxUnqueue {
			s := idOf(7000 + i).Short()
			a.ps.dedup.add(s, c.w.Clock.Now())
			tp.lazyQ[bID] = append(tp.lazyQ[bID], s)
			queued = append(queued, s)
		}
		a.ps.heardIHave(tp, bID, queued[:1])
		left1 = slices.Clone(tp.lazyQ[bID])
		a.ps.heardIHave(tp, bID, queued[1:])
		left2 = slices.Clone(tp.lazyQ[bID])
	})
	if len(left1) != 2*maxUnqueue-1 || slices.Contains(left1, queued[0]) {
		t.Fatalf("after b announced one queued message: %d queued, it among them %v", len(left1), slices.Contains(left1, queued[0]))
	}
	if len(left2) != maxUnqueue-1 {
		t.Fatalf("one IHAVE frame removed %d queued IDs, bound %d", len(left1)-len(left2), maxUnqueue)
	}
}

// signedBy returns a message of topic by node a's agent (simulated
// signature), its encoded header and its ID.
func (c *tcluster) signedBy(a *tnode, topic TopicID, seq uint64, payload string) (*Signed, []byte, MsgID) {
	c.t.Helper()
	h := Header{Topic: topic, Origin: a.agent, Seq: seq, Time: c.w.Clock.Now().UnixMilli(), PayloadHash: blake3.Sum256([]byte(payload))}
	hb, err := h.bytes()
	if err != nil {
		c.t.Fatal(err)
	}
	return &Signed{Header: h, Payload: []byte(payload), Sig: SimulatedSigner{ID: a.agent}.Sign(hb)}, hb, MsgID(blake3.Sum256(hb))
}

// subscribedPair returns a cluster of two nodes both subscribed to topic.
func subscribedPair(t *testing.T, seed uint64, topic string) (*tcluster, *tnode, *tnode, TopicID) {
	c := newTCluster(t, 2, sim.Config{Seed: seed}, false)
	a, b := c.nodes[0], c.nodes[1]
	c.subscribe(a, topic)
	c.subscribe(b, topic)
	c.run(3 * time.Second)
	return c, a, b, TopicIDOf(topic)
}

// TestDuplicatesCountedByPath: duplicates are counted by the path they
// took (tree link, other eager link, pulled), and the three add up.
func TestDuplicatesCountedByPath(t *testing.T) {
	c, a, b, id := subscribedPair(t, 14, "dups")
	msg, hb, mid := c.signedBy(b, id, 3, "sent three ways")
	var st Stats
	a.ps.do(func() {
		from := b.net.LocalID()
		a.ps.dedup.add(mid.Short(), c.w.Clock.Now())        // a has it already
		a.ps.accept(from, mid, hb, msg, 1, kindGossip, nil) // b is a's tree link
		a.ps.accept(from, mid, hb, msg, 1, kindAEPush, nil)
		tp := a.ps.topics[id]
		tp.tree.links = nil // b is now an eager link outside the tree
		a.ps.accept(from, mid, hb, msg, 1, kindGossip, nil)
		st = a.ps.stats
	})
	if st.DuplicatesTree != 1 || st.DuplicatesPulled != 1 || st.DuplicatesEager != 1 || st.Duplicates != 3 {
		t.Fatalf("duplicates: tree %d, pulled %d, eager %d, all %d; want 1, 1, 1, 3", st.DuplicatesTree, st.DuplicatesPulled, st.DuplicatesEager, st.Duplicates)
	}
}

// TestOnlyNewMessagesShowAParentWorks: a parent that replays messages we
// already have does not pass for pushing (which would keep us from
// grafting around it); a new message from it does.
func TestOnlyNewMessagesShowAParentWorks(t *testing.T) {
	c, a, b, id := subscribedPair(t, 15, "parent")
	old, oldHB, oldID := c.signedBy(b, id, 4, "already here")
	msg, hb, mid := c.signedBy(b, id, 5, "new")
	var afterReplay, afterNew time.Time
	a.ps.do(func() {
		tp := a.ps.topics[id]
		tp.tree.self.Parent, tp.parentHeard = b.net.LocalID(), time.Time{}
		a.ps.dedup.add(oldID.Short(), c.w.Clock.Now())
		a.ps.accept(b.net.LocalID(), oldID, oldHB, old, 1, kindGossip, nil)
		afterReplay = tp.parentHeard
		a.ps.accept(b.net.LocalID(), mid, hb, msg, 1, kindGossip, nil)
		afterNew = tp.parentHeard
	})
	if !afterReplay.IsZero() {
		t.Fatal("a replayed message counted as the parent pushing")
	}
	if afterNew.IsZero() {
		t.Fatal("a new message from the parent did not count as pushing")
	}
}
