package pubsub

import (
	"testing"
	"time"
	"unsafe"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/sim"
)

func TestLatenessQuantileAndCap(t *testing.T) {
	var l lateness
	for range lateRecompute - 1 {
		l.add(time.Second)
	}
	if got := l.estimate(time.Hour); got != 0 {
		t.Fatalf("estimate before the first recompute: %v", got)
	}
	l.add(time.Second)
	if got := l.estimate(time.Hour); got != time.Second {
		t.Fatalf("all samples 1 s: estimate %v", got)
	}
	if got := l.estimate(300 * time.Millisecond); got != 300*time.Millisecond {
		t.Fatalf("capped estimate %v", got)
	}
	// A window of 115 zeros and 13 seconds: the 90% quantile is zero; 14
	// seconds in the window move it to a second.
	for range lateSamples - 13 {
		l.add(0)
	}
	for range 13 {
		l.add(time.Second)
	}
	l.n = lateRecompute*64 - 1 // recompute on the next sample, which
	l.add(0)                   // overwrites the oldest second (slot 127)
	if got := l.estimate(time.Hour); got != 0 {
		t.Fatalf("12 late samples of 128: estimate %v, want 0", got)
	}
	l.add(-time.Second) // a clock step counts as zero
	if l.samples[0] != 0 {
		t.Fatalf("negative sample stored as %v", l.samples[0])
	}
	for i := range 14 {
		l.samples[i] = time.Second
	}
	l.n = lateRecompute*64 - 1
	l.add(time.Second)
	if got := l.estimate(time.Hour); got != time.Second {
		t.Fatalf("more than 10%% late: estimate %v, want 1s", got)
	}
	// It runs for every delivery over a tree link. (Each run adds
	// lateRecompute samples, so each includes one recompute: AllocsPerRun
	// truncates the mean.)
	if n := testing.AllocsPerRun(8, func() {
		for range lateRecompute {
			l.add(time.Millisecond)
		}
	}); n != 0 {
		t.Fatalf("add allocates %v times per %d samples", n, lateRecompute)
	}
}

// Under overload the tree brings every message late, after a lazy
// neighbour's IHAVE. Once a topic has measured how late its tree copies
// are, a node stops pulling copies the tree is about to bring (each pull
// was a second full copy): by at most another GraftTimeout while pulls are
// answered promptly, and by up to parentSilence once the pulls themselves
// are congested. It still pulls, that much later, a message the tree does
// not bring.
func TestPullsWaitForALateTree(t *testing.T) {
	c, a, origin, tid, parent, lazyPeer := threeOnATopic(t, 31, "late")
	// shape makes parent a's tree parent (its only tree link) and the
	// other neighbour lazy; the tree's own announcements may change that
	// between steps.
	shape := func(tp *topic) {
		tp.tree.self.Parent, tp.tree.links = parent, []identity.PeerID{parent}
		a.ps.toEager(tp, parent)
		a.ps.toLazy(tp, lazyPeer)
	}
	iwants := func() uint64 { return a.ps.Stats().IWantsSent }
	seq := uint64(100)
	// lateCopy: lazyPeer announces a message, the parent keeps pushing
	// others, and its copy of this one comes late.
	lateCopy := func(late time.Duration) {
		seq++
		msg, hb, mid := c.signedBy(origin, tid, seq, "late")
		pushing := func() {
			tp := a.ps.topics[tid]
			shape(tp)
			tp.parentHeard = c.w.Clock.Now()
		}
		a.ps.do(func() {
			pushing()
			a.ps.announced(a.ps.topics[tid], lazyPeer, mid.Short())
		})
		for d := time.Duration(0); d < late; d += 100 * time.Millisecond {
			c.run(min(100*time.Millisecond, late-d))
			a.ps.do(pushing)
		}
		a.ps.do(func() {
			shape(a.ps.topics[tid])
			a.ps.accept(parent, mid, hb, msg, 1, kindGossip, nil)
		})
		c.run(100 * time.Millisecond)
	}
	lateness := func() (q time.Duration) {
		a.ps.do(func() { q = a.ps.topics[tid].treeLate.q })
		return q
	}
	median := func() (m time.Duration) {
		a.ps.do(func() { m = a.ps.topics[tid].treeLate.median })
		return m
	}
	warmUp := func(late time.Duration) {
		for i := 0; lateness() < late || median() < late; i++ {
			if i == 2*lateSamples {
				t.Fatalf("tree copies %v late, estimate %v", late, lateness())
			}
			lateCopy(late)
		}
	}
	pulledOf := func(n int, late time.Duration) uint64 {
		start := iwants()
		for range n {
			lateCopy(late)
		}
		return iwants() - start
	}
	gt := a.ps.cfg.GraftTimeout
	if n := pulledOf(1, gt+150*time.Millisecond); n != 1 {
		t.Fatalf("before the tree's lateness was measured: %d IWANTs for a late copy, want 1", n)
	}
	// Most tree copies are the first news (a quiet network, where a late
	// one is lost or stuck): a late copy is pulled at GraftTimeout, even
	// when more than a tenth of them are late.
	for range lateSamples * 3 / 4 {
		seq++
		msg, hb, mid := c.signedBy(origin, tid, seq, "first news")
		a.ps.do(func() {
			shape(a.ps.topics[tid])
			a.ps.accept(parent, mid, hb, msg, 1, kindGossip, nil)
		})
	}
	if n := pulledOf(lateSamples/4, gt+150*time.Millisecond); n != lateSamples/4 || lateness() == 0 {
		t.Fatalf("most copies first news: %d IWANTs for %d late copies (lateness %v)", n, lateSamples/4, lateness())
	}
	// Prompt pulls: a copy late by less than 2×GraftTimeout is waited for,
	// one later than that is pulled.
	warmUp(gt + 150*time.Millisecond)
	deferred := a.ps.Stats().PullsDeferred
	if n := pulledOf(20, gt+150*time.Millisecond); n != 0 {
		t.Fatalf("tree %v late, pulls prompt: %d IWANTs for 20 late copies, want 0", gt+150*time.Millisecond, n)
	}
	if d := a.ps.Stats().PullsDeferred - deferred; d != 20 {
		t.Fatalf("%d pulls deferred, want 20", d)
	}
	warmUp(3 * gt)
	if n := pulledOf(20, 3*gt); n != 20 {
		t.Fatalf("tree %v late, pulls prompt: %d IWANTs for 20 late copies, want 20", 3*gt, n)
	}
	// Congested pulls (answered later than GraftTimeout): the node waits
	// for the tree up to parentSilence.
	a.ps.do(func() {
		for range lateSamples {
			a.ps.topics[tid].pullLate.add(gt + 100*time.Millisecond)
		}
	})
	if n := pulledOf(20, 3*gt); n != 0 {
		t.Fatalf("tree %v late, pulls congested: %d IWANTs for 20 late copies, want 0", 3*gt, n)
	}
	// A message the tree does not bring is pulled once GraftTimeout plus
	// the tree's lateness has passed.
	_, _, lost := c.signedBy(origin, tid, 999, "lost")
	a.ps.do(func() {
		tp := a.ps.topics[tid]
		shape(tp)
		tp.parentHeard = c.w.Clock.Now()
		a.ps.announced(tp, lazyPeer, lost.Short())
	})
	start, wait := iwants(), gt+min(lateness(), a.ps.parentSilence())
	c.run(gt - 50*time.Millisecond)
	a.ps.do(func() { a.ps.topics[tid].parentHeard = c.w.Clock.Now() }) // still pushing
	pulledSince(t, c, a, start, wait-gt, 0, "before the tree's lateness had passed")
	pulledSince(t, c, a, start, 100*time.Millisecond, 1, "for a message the tree lost")
}

// Pulls answered late are retried at the next announcer after the pulls'
// measured round trip, not at the fixed GraftRetry: an earlier retry
// fetches a second full copy of a message already on its way.
func TestPullRetryWaitsForSlowAnswers(t *testing.T) {
	c, a, origin, tid, p1, p2 := threeOnATopic(t, 32, "slow")
	// No tree parent, so no pull waits for the tree; the pull counters are
	// reset so that repeated pulls do not graft.
	shape := func(tp *topic) {
		tp.tree.self.Parent, tp.tree.links = identity.PeerID{}, nil
		tp.pulls = map[identity.PeerID]int{}
		a.ps.toEager(tp, p2)
		a.ps.toLazy(tp, p1)
	}
	const rtt = 500 * time.Millisecond
	iwants := func() uint64 { return a.ps.Stats().IWantsSent }
	for i := range lateRecompute {
		msg, hb, mid := c.signedBy(origin, tid, uint64(200+i), "slow")
		a.ps.do(func() {
			shape(a.ps.topics[tid])
			a.ps.announced(a.ps.topics[tid], p1, mid.Short())
		})
		c.run(a.ps.cfg.GraftTimeout + 10*time.Millisecond) // the IWANT goes to p1
		c.run(rtt - 10*time.Millisecond)
		a.ps.do(func() { a.ps.accept(p1, mid, hb, msg, 1, kindAEPush, nil) })
	}
	_, _, mid := c.signedBy(origin, tid, 300, "unanswered")
	a.ps.do(func() {
		tp := a.ps.topics[tid]
		shape(tp)
		a.ps.announced(tp, p1, mid.Short())
		a.ps.announced(tp, p2, mid.Short())
	})
	start := iwants()
	pulledSince(t, c, a, start, a.ps.cfg.GraftTimeout+10*time.Millisecond, 1, "after GraftTimeout")
	// Past GraftRetry, before the round trip: no retry yet.
	pulledSince(t, c, a, start, rtt-100*time.Millisecond, 1, "before the pulls' round trip")
	pulledSince(t, c, a, start, 150*time.Millisecond, 2, "once the round trip passed")
}

// pulledSince runs the cluster for d and checks that node a has sent want
// IWANTs since its count was start.
func pulledSince(t *testing.T, c *tcluster, a *tnode, start uint64, d time.Duration, want uint64, when string) {
	t.Helper()
	c.run(d)
	if n := a.ps.Stats().IWantsSent - start; n != want {
		t.Fatalf("%s: %d IWANTs, want %d", when, n, want)
	}
}

// The store's byte budget counts storedOverhead per message besides payload
// and signature; it must cover the entry's struct, a map slot (key and
// pointer, the map at worst half full) and an order slot (the slice at
// worst half used).
func TestStoredOverheadCoversTheEntry(t *testing.T) {
	entry := unsafe.Sizeof(stored{}) + 2*(unsafe.Sizeof(ShortID{})+unsafe.Sizeof(&stored{})) + 2*unsafe.Sizeof(MsgID{})
	if entry > storedOverhead {
		t.Fatalf("a stored message costs %d bytes besides payload and signature; storedOverhead is %d", entry, storedOverhead)
	}
}

// threeOnATopic returns a cluster of three nodes subscribed to topic
// name: node a, another node as origin of test messages, and a's two topic
// neighbours.
func threeOnATopic(t *testing.T, seed uint64, name string) (c *tcluster, a, origin *tnode, tid TopicID, p1, p2 identity.PeerID) {
	t.Helper()
	c = newTCluster(t, 3, sim.Config{Seed: seed}, false)
	for _, tn := range c.nodes {
		c.subscribe(tn, name)
	}
	c.run(5 * time.Second)
	a, origin, tid = c.nodes[0], c.nodes[2], TopicIDOf(name)
	var peers []identity.PeerID
	a.ps.do(func() { peers = a.ps.topics[tid].peers() })
	if len(peers) < 2 {
		t.Fatalf("node has %d topic peers, want 2", len(peers))
	}
	return c, a, origin, tid, peers[0], peers[1]
}
