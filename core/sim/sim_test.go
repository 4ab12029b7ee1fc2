package sim

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestClockOrderAndStop(t *testing.T) {
	c := NewClock(time.Unix(0, 0))
	var got []int
	c.AfterFunc(20*time.Millisecond, func() { got = append(got, 3) })
	c.AfterFunc(10*time.Millisecond, func() { got = append(got, 1) })
	c.AfterFunc(10*time.Millisecond, func() { got = append(got, 2) }) // same instant: FIFO
	stopped := c.AfterFunc(15*time.Millisecond, func() { got = append(got, 99) })
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop should report true once, then false")
	}
	c.AfterFunc(5*time.Millisecond, func() {
		c.AfterFunc(0, func() { got = append(got, 0) }) // scheduled from a callback
	})
	c.RunFor(15 * time.Millisecond)
	if fmt.Sprint(got) != "[0 1 2]" {
		t.Fatalf("order %v", got)
	}
	if c.Now() != time.Unix(0, 0).Add(15*time.Millisecond) {
		t.Fatalf("RunFor left the clock at %v", c.Now())
	}
	c.RunFor(time.Second)
	if fmt.Sprint(got) != "[0 1 2 3]" {
		t.Fatalf("order %v", got)
	}
}

func TestNodeClockHalt(t *testing.T) {
	c := NewClock(time.Unix(0, 0))
	nc := NewNodeClock(c)
	ran := false
	nc.AfterFunc(time.Second, func() { ran = true })
	nc.Halt()
	nc.AfterFunc(time.Millisecond, func() { ran = true })
	c.RunFor(2 * time.Second)
	if ran {
		t.Fatal("a halted node's timer ran")
	}
}

func pair(t *testing.T, cfg Config) (*World, *Node, *Node) {
	t.Helper()
	w := NewWorld(cfg)
	a, err := w.AddNode(identity.DeriveID([]byte("a")))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := w.AddNode(identity.DeriveID([]byte("b")))
	if _, err := w.AddNode(identity.DeriveID([]byte("a"))); err == nil {
		t.Fatal("duplicate ID accepted")
	}
	return w, a, b
}

type recorder struct {
	frames []string
	times  []time.Duration
	events []link.PeerEvent
}

func (r *recorder) attach(w *World, n *Node) {
	start := w.Clock.Now()
	n.Handle(link.ProtoPubSub, func(from identity.PeerID, msg []byte) {
		r.frames = append(r.frames, string(msg))
		r.times = append(r.times, w.Clock.Now().Sub(start))
	})
	n.WatchPeers(func(ev link.PeerEvent) { r.events = append(r.events, ev) })
}

func TestLatencyFIFOAndEvents(t *testing.T) {
	w, a, b := pair(t, Config{Seed: 1, Latency: func(int, int) time.Duration { return 30 * time.Millisecond }})
	var ra, rb recorder
	ra.attach(w, a)
	rb.attach(w, b)
	if err := a.Send(b.LocalID(), link.ProtoPubSub, link.PriorityEager, []byte("x")); !errors.Is(err, link.ErrNotConnected) {
		t.Fatalf("send before connect: %v", err)
	}
	if err := a.Connect(context.Background(), b.LocalID(), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := a.Send(b.LocalID(), link.ProtoPubSub, link.PriorityEager, []byte{byte('0' + i)}); err != nil {
			t.Fatal(err)
		}
	}
	w.Clock.RunFor(time.Second)
	if fmt.Sprint(rb.frames) != "[0 1 2 3 4]" || rb.times[0] != 30*time.Millisecond {
		t.Fatalf("frames %v at %v", rb.frames, rb.times)
	}
	if len(ra.events) != 1 || !ra.events[0].Up || len(rb.events) != 1 || !rb.events[0].Up || rb.events[0].Peer != a.LocalID() {
		t.Fatalf("up events: a %+v b %+v", ra.events, rb.events)
	}
	if got := b.Stats().BytesRecv; got != 5 {
		t.Fatalf("bytes received %d", got)
	}
	a.Disconnect(b.LocalID())
	w.Clock.RunFor(time.Second)
	if len(rb.events) != 2 || rb.events[1].Up || !errors.Is(rb.events[1].Err, ErrPeerClosed) {
		t.Fatalf("down events at b: %+v", rb.events)
	}
	if len(a.Peers()) != 0 || len(b.Peers()) != 0 {
		t.Fatal("peers listed after disconnect")
	}
}

func TestLossDelaysButDelivers(t *testing.T) {
	w, a, b := pair(t, Config{Seed: 2, Loss: 0.5, Latency: func(int, int) time.Duration { return 10 * time.Millisecond }})
	var rb recorder
	rb.attach(w, b)
	_ = a.Connect(context.Background(), b.LocalID(), b.LocalAddr())
	for i := 0; i < 200; i++ {
		_ = a.Send(b.LocalID(), link.ProtoPubSub, link.PriorityEager, []byte{byte(i)})
	}
	w.Clock.RunFor(time.Minute)
	if len(rb.frames) != 200 {
		t.Fatalf("%d of 200 frames delivered: loss must delay, not drop", len(rb.frames))
	}
	for i, f := range rb.frames {
		if f[0] != byte(i) {
			t.Fatal("stream order broken by retransmissions")
		}
	}
	if rb.times[len(rb.times)-1] <= 10*time.Millisecond {
		t.Fatal("50% loss added no delay")
	}
}

// Resets lose data: the frame that hit the reset and every frame in
// flight on the connection, both ways, are gone, and both ends see the
// connection go down.
func TestResetsLoseFramesInFlight(t *testing.T) {
	w, a, b := pair(t, Config{Seed: 4, Latency: func(int, int) time.Duration { return 10 * time.Millisecond }})
	var ra, rb recorder
	ra.attach(w, a)
	rb.attach(w, b)
	if err := a.Connect(context.Background(), b.LocalID(), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	w.Clock.RunFor(100 * time.Millisecond)
	for i := range 3 {
		_ = a.Send(b.LocalID(), link.ProtoPubSub, link.PriorityEager, []byte{'a', byte('0' + i)})
		_ = b.Send(a.LocalID(), link.ProtoPubSub, link.PriorityEager, []byte{'b', byte('0' + i)})
	}
	w.cfg.Resets = 1 // the next send resets the connection
	if err := a.Send(b.LocalID(), link.ProtoPubSub, link.PriorityEager, []byte("x")); err != nil {
		t.Fatalf("a send into a dying connection looks sent: %v", err)
	}
	w.cfg.Resets = 0
	w.Clock.RunFor(time.Second)
	if len(ra.frames)+len(rb.frames) != 0 {
		t.Fatalf("frames in flight survived a reset: a got %v, b got %v", ra.frames, rb.frames)
	}
	down := func(evs []link.PeerEvent) bool {
		return len(evs) == 2 && !evs[1].Up && errors.Is(evs[1].Err, ErrConnReset)
	}
	if !down(ra.events) || !down(rb.events) {
		t.Fatalf("events: a %+v b %+v", ra.events, rb.events)
	}
	if st := a.Stats(); st.Resets != 1 || st.Lost != 4 {
		t.Fatalf("a's stats %+v, want 1 reset and 4 frames lost", st)
	}
	if err := a.Connect(context.Background(), b.LocalID(), b.LocalAddr()); err != nil {
		t.Fatalf("reconnect after a reset: %v", err)
	}
}

func TestKillAndPartition(t *testing.T) {
	w := NewWorld(Config{Seed: 3})
	var nodes []*Node
	var recs []*recorder
	for i := 0; i < 4; i++ {
		n, _ := w.AddNode(identity.DeriveID([]byte{byte(i)}))
		r := &recorder{}
		r.attach(w, n)
		nodes, recs = append(nodes, n), append(recs, r)
	}
	for i := 1; i < 4; i++ {
		if err := nodes[0].Connect(context.Background(), nodes[i].LocalID(), nodes[i].LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	w.Clock.RunFor(time.Second)
	// Crash node 3: frames to it are lost; node 0 sees the connection idle out.
	w.Kill(nodes[3])
	_ = nodes[0].Send(nodes[3].LocalID(), link.ProtoPubSub, link.PriorityEager, []byte("lost"))
	w.Clock.RunFor(29 * time.Second)
	if len(recs[3].frames) != 0 {
		t.Fatal("a dead node received a frame")
	}
	if n := len(nodes[0].Peers()); n != 3 {
		t.Fatalf("connection to the crashed node closed before the idle timeout (%d peers)", n)
	}
	w.Clock.RunFor(2 * time.Second)
	if n := len(nodes[0].Peers()); n != 2 {
		t.Fatalf("%d peers after the idle timeout, want 2", n)
	}
	if nodes[0].Stats().Lost != 1 {
		t.Fatalf("lost frames %d", nodes[0].Stats().Lost)
	}
	if err := nodes[0].Connect(context.Background(), nodes[3].LocalID(), nodes[3].LocalAddr()); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("connect to dead node: %v", err)
	}
	// Partition {0,1} | {2}: the 0-2 connection goes down at once.
	w.Partition(func(n *Node) int {
		if n.Index() == 2 {
			return 1
		}
		return 0
	})
	w.Clock.RunFor(time.Millisecond)
	last := recs[2].events[len(recs[2].events)-1]
	if last.Up || !errors.Is(last.Err, ErrPartitioned) {
		t.Fatalf("partition event %+v", last)
	}
	if err := nodes[2].Connect(context.Background(), nodes[0].LocalID(), nodes[0].LocalAddr()); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("connect across partition: %v", err)
	}
	if err := nodes[1].Send(nodes[0].LocalID(), link.ProtoPubSub, link.PriorityEager, []byte("ok")); err != nil {
		t.Fatalf("same-side send: %v", err)
	}
	w.Heal()
	if err := nodes[2].Connect(context.Background(), nodes[0].LocalID(), nodes[0].LocalAddr()); err != nil {
		t.Fatalf("connect after heal: %v", err)
	}
	if err := nodes[0].Connect(context.Background(), nodes[1].LocalID(), "sim:99"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("connect with a wrong address: %v", err)
	}
}

func TestQueueLimitAndFrameSize(t *testing.T) {
	w, a, b := pair(t, Config{Seed: 4, QueueLimit: 4, MaxFrame: 10})
	_ = a.Connect(context.Background(), b.LocalID(), b.LocalAddr())
	if err := a.Send(b.LocalID(), link.ProtoPubSub, link.PriorityControl, make([]byte, 11)); !errors.Is(err, link.ErrTooLarge) {
		t.Fatalf("oversized frame: %v", err)
	}
	// Lazy frames get half the queue, control frames all of it.
	for i := 0; i < 2; i++ {
		if err := a.Send(b.LocalID(), link.ProtoPubSub, link.PriorityLazy, nil); err != nil {
			t.Fatalf("lazy frame %d refused below its share: %v", i, err)
		}
	}
	if err := a.Send(b.LocalID(), link.ProtoPubSub, link.PriorityLazy, nil); !errors.Is(err, link.ErrQueueFull) {
		t.Fatalf("third lazy frame: %v", err)
	}
	if a.Send(b.LocalID(), link.ProtoPubSub, link.PriorityControl, nil) != nil {
		t.Fatal("control frame refused while the queue has room")
	}
	if a.Stats().QueueFull != 1 {
		t.Fatalf("queue-full count %d", a.Stats().QueueFull)
	}
	w.Clock.RunFor(time.Second)
	if a.Send(b.LocalID(), link.ProtoPubSub, link.PriorityLazy, nil) != nil {
		t.Fatal("queue did not drain")
	}
}

func TestLinkLatencyInRangeAndSymmetric(t *testing.T) {
	w := NewWorld(Config{Seed: 5})
	var ns []*Node
	for i := 0; i < 20; i++ {
		n, _ := w.AddNode(identity.DeriveID([]byte{byte(i), 1}))
		ns = append(ns, n)
	}
	for i := range ns {
		for j := range ns {
			l := w.linkLatency(ns[i], ns[j])
			if l < 20*time.Millisecond || l > 80*time.Millisecond || l != w.linkLatency(ns[j], ns[i]) {
				t.Fatalf("latency %d-%d = %v", i, j, l)
			}
		}
	}
}
