package membership

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/sim"
)

// starvation makes one simulated node behave like a process the machine
// stops running now and then: during a stall nothing of it runs; when it
// resumes, the timers that fell due run first (late) and the frames and
// connection events that arrived meanwhile only backlog later, as a real
// node's receive path (socket, QUIC, stream readers) catches up after its
// timers.
type starvation struct {
	clk                    *sim.NodeClock
	from, until            time.Time     // stalls happen in [from, until)
	every, length, backlog time.Duration // a stall of length every every
}

// resume returns when the stall covering now ends, plus extra, if now is
// in a stall or within extra after one.
func (s *starvation) resume(now time.Time, extra time.Duration) (time.Time, bool) {
	if now.Before(s.from) || !now.Before(s.until.Add(s.length+extra)) {
		return time.Time{}, false
	}
	start := s.from.Add(now.Sub(s.from) / s.every * s.every)
	end := start.Add(s.length + extra)
	if start.Before(s.until) && now.Before(end) {
		return end, true
	}
	return time.Time{}, false
}

func (s *starvation) Now() time.Time { return s.clk.Now() }

func (s *starvation) AfterFunc(d time.Duration, f func()) clock.Timer {
	t := &starvedTimer{}
	t.inner = s.clk.AfterFunc(d, func() { s.fire(t, f) })
	return t
}

func (s *starvation) fire(t *starvedTimer, f func()) {
	if t.stopped {
		return
	}
	if end, ok := s.resume(s.clk.Now(), 0); ok {
		t.inner = s.clk.AfterFunc(end.Sub(s.clk.Now()), func() { s.fire(t, f) })
		return
	}
	t.fired = true
	f()
}

// deliver runs an inbound callback, after the backlog if the node is or
// just was stalled. All deferred callbacks land on the same instant in
// arrival order, so frames stay in order.
func (s *starvation) deliver(f func()) {
	if end, ok := s.resume(s.clk.Now(), s.backlog); ok {
		s.clk.AfterFunc(end.Sub(s.clk.Now()), f)
		return
	}
	f()
}

type starvedTimer struct {
	inner          clock.Timer
	stopped, fired bool
}

func (t *starvedTimer) Stop() bool {
	was := !t.stopped && !t.fired
	t.stopped = true
	t.inner.Stop()
	return was
}

// starvedNet delivers a simulated node's inbound frames and peer events
// through its starvation.
type starvedNet struct {
	*sim.Node
	s *starvation
}

func (n starvedNet) Handle(class link.Protocol, h link.MessageHandler) {
	n.Node.Handle(class, func(from identity.PeerID, b []byte) { n.s.deliver(func() { h(from, b) }) })
}

func (n starvedNet) WatchPeers(h func(link.PeerEvent)) {
	n.Node.WatchPeers(func(ev link.PeerEvent) { n.s.deliver(func() { h(ev) }) })
}

// A starved node (stalled for 0.8 s every 4.3 s for a minute, its inbound
// frames 1.4 s behind its timers after each stall) suspects none of its
// live peers: the rounds its stalls cover are not observed, and its
// raised health multiplier gives the next rounds time to hear the answers
// that queued. Nobody is declared dead (its peers do suspect it while it
// is silent, and it refutes), and its multiplier decays once it runs
// normally again. Without the Lifeguard logic the starved node raises
// over a hundred false suspicions here.
func TestStarvedNodeRaisesNoFalseSuspicion(t *testing.T) {
	const n, starved = 10, 3
	var st *starvation
	c := newTunedCluster(t, n, sim.Config{Seed: 21}, func(i int, node *sim.Node, cfg *Config, net *link.Network) {
		if i != starved {
			return
		}
		now := node.Clock().Now()
		st = &starvation{clk: node.Clock(), from: now.Add(20 * time.Second), until: now.Add(80 * time.Second),
			every: 4300 * time.Millisecond, length: 800 * time.Millisecond, backlog: 1400 * time.Millisecond}
		cfg.Clock = st
		*net = starvedNet{Node: node, s: st}
	})
	defer c.close()
	var deaths, ofStarved int
	starvedID := c.nodes[starved].LocalID()
	for _, m := range c.ms {
		m.Watch(func(e Event) {
			if e.Kind == MemberDead {
				deaths++
			}
			if e.Kind == MemberSuspect && e.Peer.ID == starvedID {
				ofStarved++
			}
		})
	}
	c.w.Clock.RunUntil(st.until.Add(2 * time.Second))
	s := c.ms[starved].Stats()
	t.Logf("starved node: %+v; suspicions of it %d", s, ofStarved)
	if s.Suspicions != 0 {
		t.Fatalf("the starved node raised %d suspicions of live peers", s.Suspicions)
	}
	if ofStarved == 0 || s.Refutations == 0 {
		t.Fatal("nobody suspected the stalled node: the stalls are too short to matter")
	}
	if s.MissedDeadlines == 0 || s.UnobservedRounds == 0 {
		t.Fatal("the starved node never noticed its own lateness")
	}
	if deaths != 0 {
		t.Fatalf("%d live nodes declared dead", deaths)
	}
	c.w.Clock.RunFor(60 * time.Second)
	if h := c.ms[starved].Stats().LocalHealth; h != 0 {
		t.Fatalf("local health multiplier still %d a minute after the starvation ended", h)
	}
	if err := c.checkViews(); err != nil {
		t.Fatal(err)
	}
}

// suspicionTime injects a suspicion of a node that does not exist (so that
// nothing but the injected frames bears on it) at node 0 of an 8-node
// cluster: an accusation by node 1, then one by each node of confirmers,
// then returns how long node 0 took from suspecting to declaring it dead.
func suspicionTime(t *testing.T, confirmers []int, byOf func(i int) identity.PeerID) time.Duration {
	t.Helper()
	c := newCluster(t, 8, sim.Config{Seed: 31})
	defer c.close()
	c.w.Clock.RunFor(10 * time.Second)
	o := c.ms[0]
	ghost := NodeDesc{ID: testID(31, 99), Addr: "sim:ghost"}
	var suspected, dead time.Time
	o.Watch(func(e Event) {
		if e.Peer.ID != ghost.ID {
			return
		}
		switch e.Kind {
		case MemberSuspect:
			suspected = c.w.Clock.Now()
		case MemberDead:
			dead = c.w.Clock.Now()
		}
	})
	accuse := func(i int) {
		node := c.nodes[i]
		if err := node.Connect(t.Context(), c.nodes[0].LocalID(), c.nodes[0].LocalAddr()); err != nil {
			t.Fatal(err)
		}
		by := byOf(i)
		u := Update{Node: ghost, State: StateSuspect, Inc: 1, By: &by}
		if err := node.Send(c.nodes[0].LocalID(), link.ProtoMembership, link.PriorityControl,
			mustEncode(t, &Message{Kind: kindUpdate, Updates: []Update{u}})); err != nil {
			t.Fatal(err)
		}
	}
	accuse(1)
	c.w.Clock.RunFor(100 * time.Millisecond)
	for _, i := range confirmers {
		accuse(i)
	}
	c.w.Clock.RunFor(10 * time.Second)
	if suspected.IsZero() || dead.IsZero() {
		t.Fatalf("suspected at %v, dead at %v", suspected, dead)
	}
	return dead.Sub(suspected)
}

// Independent confirmations shorten a suspicion, logarithmically, from
// SuspectMaxTimeout (4 s) with none to SuspectTimeout (2 s) with
// SuspectConfirmations (3); repeated and unknown accusers do not count.
func TestConfirmationsShortenSuspicion(t *testing.T) {
	self := func(i int) identity.PeerID { return testID(31, i) }
	for _, tc := range []struct {
		confirmers []int
		want       time.Duration
	}{
		{nil, 4 * time.Second},
		{[]int{2}, 3 * time.Second},                 // 4 - 2*log(2)/log(4)
		{[]int{2, 3}, 2415037499 * time.Nanosecond}, // 4 - 2*log(3)/log(4)
		{[]int{2, 3, 4}, 2 * time.Second},           // the minimum
		{[]int{2, 3, 4, 5, 6}, 2 * time.Second},     // never below it
		{[]int{2, 2, 2}, 3 * time.Second},           // one accuser counts once
		{[]int{1, 1}, 4 * time.Second},              // the first accuser is not a confirmation
	} {
		got := suspicionTime(t, tc.confirmers, self)
		if d := got - tc.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("%d confirmations (%v): dead %v after the suspicion, want %v", len(tc.confirmers), tc.confirmers, got, tc.want)
		}
	}
	// Node 2 relays accusations by identities nobody has met: free
	// identities must not shorten a suspicion.
	stranger := func(i int) identity.PeerID {
		if i == 1 {
			return self(1)
		}
		return testID(77, i)
	}
	if got := suspicionTime(t, []int{2, 3, 4}, stranger); got != 4*time.Second {
		t.Errorf("accusations by strangers: dead %v after the suspicion, want 4s", got)
	}
}

// detectionTime crashes a random node of a settled n-node cluster and
// returns how long until the last live node declared it dead (-1 if one
// did not within limit), and how many suspect or dead events there were
// before the crash.
func detectionTime(t *testing.T, n int, seed uint64, limit time.Duration) (time.Duration, int) {
	t.Helper()
	c := newCluster(t, n, sim.Config{Seed: seed})
	defer c.close()
	events := 0
	dead := make(map[int]time.Duration)
	var crashAt time.Time
	var id identity.PeerID
	for i, m := range c.ms {
		m.Watch(func(e Event) {
			switch {
			case crashAt.IsZero() && (e.Kind == MemberSuspect || e.Kind == MemberDead):
				events++
			case !crashAt.IsZero() && e.Kind == MemberDead && e.Peer.ID == id:
				if _, ok := dead[i]; !ok {
					dead[i] = c.w.Clock.Now().Sub(crashAt)
				}
			}
		})
	}
	c.w.Clock.RunFor(30 * time.Second)
	victim := c.w.Rand().IntN(n)
	id, crashAt = c.nodes[victim].LocalID(), c.w.Clock.Now()
	c.crash(victim)
	c.w.Clock.RunFor(limit)
	var worst time.Duration
	for i := range c.ms {
		if i == victim {
			continue
		}
		d, ok := dead[i]
		if !ok {
			return -1, events
		}
		worst = max(worst, d)
	}
	return worst, events
}

// On a quiet network a crashed node is declared dead by every live node
// within 5 s at every size (the issue 13 target; 4.0-5.1 s before
// Lifeguard, which was 1 s probes + 3 s suspicion), and no live node is
// ever suspected.
func TestQuietDetectionWithin5s(t *testing.T) {
	for _, n := range []int{3, 10, 50} {
		var all []time.Duration
		for seed := uint64(1); seed <= 6; seed++ {
			d, events := detectionTime(t, n, seed, 8*time.Second)
			if events != 0 {
				t.Errorf("%d nodes, seed %d: %d suspect/dead events on a quiet network before the crash", n, seed, events)
			}
			if d < 0 || d > 5*time.Second {
				t.Errorf("%d nodes, seed %d: crashed node declared dead everywhere after %v, want <= 5s", n, seed, d)
			}
			all = append(all, d.Round(time.Millisecond))
		}
		t.Logf("%d nodes: dead everywhere after %v", n, all)
	}
}

func TestDecodeAccuser(t *testing.T) {
	by := testID(0, 2)
	d := NodeDesc{ID: testID(0, 1), Addr: "sim:1"}
	for _, tc := range []struct {
		u  Update
		ok bool
	}{
		{Update{Node: d, State: StateSuspect, Inc: 1, By: &by}, true},
		{Update{Node: d, State: StateSuspect, Inc: 1}, true},
		{Update{Node: d, State: StateDead, Inc: 1, By: &by}, false},
		{Update{Node: d, State: StateAlive, Inc: 1, By: &by}, false},
		{Update{Node: d, State: StateSuspect, Inc: 1, By: &identity.PeerID{}}, false},
	} {
		m, err := Decode(mustEncode(t, &Message{Kind: kindUpdate, Updates: []Update{tc.u}}))
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrMalformed)) {
			t.Errorf("%+v: %v", tc.u, err)
			continue
		}
		if err == nil && (m.Updates[0].By == nil) != (tc.u.By == nil) {
			t.Errorf("%+v: accuser lost in transit", tc.u)
		}
	}
	if _, err := Decode(mustEncode(t, &Message{Kind: kindNack, Seq: 3})); err != nil {
		t.Fatalf("NACK: %v", err)
	}
}

// muteNet silences a node's membership (inbound and outbound) while *mute,
// leaving its other protocols running: a live node whose SWIM answers are
// lost or late.
type muteNet struct {
	*sim.Node
	mute *bool
}

func (n muteNet) Handle(p link.Protocol, h link.MessageHandler) {
	if p != link.ProtoMembership || h == nil {
		n.Node.Handle(p, h)
		return
	}
	n.Node.Handle(p, func(from identity.PeerID, b []byte) {
		if !*n.mute {
			h(from, b)
		}
	})
}

func (n muteNet) Send(peer identity.PeerID, p link.Protocol, prio link.Priority, msg []byte) error {
	if p == link.ProtoMembership && *n.mute {
		return nil
	}
	return n.Node.Send(peer, p, prio, msg)
}

// A node whose membership frames are lost but whose other frames keep
// arriving is alive: its neighbours neither suspect it on their probes
// nor declare it dead when someone else's suspicion of it expires (it
// cannot refute), and they tell it again. Once its frames stop too, it is
// declared dead. Without the traffic evidence node 0 declares it dead at
// the first expiry.
func TestTrafficKeepsASilentPeerAlive(t *testing.T) {
	const quiet = 2
	mute, traffic := false, true
	c := newTunedCluster(t, 3, sim.Config{Seed: 41}, func(i int, node *sim.Node, _ *Config, net *link.Network) {
		if i == quiet {
			*net = muteNet{Node: node, mute: &mute}
		}
	})
	defer c.close()
	c.w.Clock.RunFor(10 * time.Second)
	q := c.nodes[quiet]
	qid := q.LocalID()
	var deadAt time.Time
	for _, m := range c.ms[:quiet] {
		m.Watch(func(e Event) {
			if e.Kind == MemberDead && e.Peer.ID == qid && deadAt.IsZero() {
				deadAt = c.w.Clock.Now()
			}
		})
	}
	mute = true
	var tick func()
	tick = func() {
		if !traffic {
			return
		}
		for _, p := range q.Peers() {
			_ = q.Send(p, link.ProtoPubSub, link.PriorityEager, []byte{1})
		}
		q.Clock().AfterFunc(200*time.Millisecond, tick)
	}
	tick()
	// Node 1 accuses the quiet node to node 0.
	o := c.ms[0]
	var inc uint64
	o.mu.Lock()
	if mb := o.members[qid]; mb != nil {
		inc = mb.inc
	}
	o.mu.Unlock()
	by := c.nodes[1].LocalID()
	u := Update{Node: NodeDesc{ID: qid}, State: StateSuspect, Inc: inc, By: &by}
	if err := c.nodes[1].Send(c.nodes[0].LocalID(), link.ProtoMembership, link.PriorityControl,
		mustEncode(t, &Message{Kind: kindUpdate, Updates: []Update{u}})); err != nil {
		t.Fatal(err)
	}
	c.w.Clock.RunFor(30 * time.Second)
	s := o.Stats()
	t.Logf("node 0 while the quiet node's traffic flows: %+v", s)
	if !deadAt.IsZero() {
		t.Fatalf("the quiet node, whose frames kept arriving, was declared dead after %v", deadAt.Sub(c.w.Clock.Now().Add(-30*time.Second)))
	}
	if s.VerdictsSpared == 0 {
		t.Fatal("the injected suspicion never expired: the test shows nothing")
	}
	if s.Suspicions != 0 {
		t.Fatalf("node 0 suspected a peer whose frames kept arriving %d times", s.Suspicions)
	}
	traffic = false
	stopped := c.w.Clock.Now()
	c.w.Clock.RunFor(30 * time.Second)
	if deadAt.IsZero() {
		t.Fatal("the quiet node was never declared dead after its frames stopped")
	}
	t.Logf("declared dead %v after its frames stopped", deadAt.Sub(stopped))
}

// A helper answers a PING-REQ for a peer it is not connected to with a
// NACK at once: no handshake for someone else's probe, and nothing kept for
// it. Over a connection it has, it pings the peer and relays the ACK.
func TestHelperRelaysOnlyOverItsConnections(t *testing.T) {
	c := newCluster(t, 2, sim.Config{Seed: 43})
	defer c.close()
	target := c.add(t) // started, but joined to nobody
	c.w.Clock.RunFor(5 * time.Second)
	asker, helper := c.nodes[0], c.ms[1]
	var got []uint8
	asker.Handle(link.ProtoMembership, func(_ identity.PeerID, b []byte) {
		if m, err := Decode(b); err == nil && m.Kind != kindPing {
			got = append(got, m.Kind)
		}
	})
	desc := c.ms[target].self
	ask := func(seq uint64) {
		got = nil
		if err := asker.Send(c.nodes[1].LocalID(), link.ProtoMembership, link.PriorityControl,
			mustEncode(t, &Message{Kind: kindPingReq, Seq: seq, Node: &desc})); err != nil {
			t.Fatal(err)
		}
		c.w.Clock.RunFor(300 * time.Millisecond)
	}
	ask(7)
	helper.mu.Lock()
	kept := len(helper.relays)
	helper.mu.Unlock()
	if s := helper.Stats(); s.RelaysDeclined != 1 || !slices.Equal(got, []uint8{kindNack}) || kept != 0 {
		t.Fatalf("unconnected helper: declined %d, answered %v, %d relays kept; want one NACK and none kept", s.RelaysDeclined, got, kept)
	}
	if slices.Contains(c.nodes[1].Peers(), desc.ID) {
		t.Fatal("the helper dialled the target")
	}
	if err := c.nodes[1].Connect(t.Context(), desc.ID, desc.Addr); err != nil {
		t.Fatal(err)
	}
	c.w.Clock.RunFor(100 * time.Millisecond)
	ask(8)
	if !slices.Contains(got, kindAck) {
		t.Fatalf("connected helper answered %v, want the relayed ACK", got)
	}
}
