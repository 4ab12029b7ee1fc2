package x0x

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/saorsa-labs/x0x-go/core/pubsub"
)

// waitDelivered waits until a's pub/sub has delivered n messages locally.
func waitDelivered(t *testing.T, a *Agent, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for a.pubsubStats().Delivered < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages delivered", a.pubsubStats().Delivered, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A subscription whose reader falls behind loses its oldest messages and
// says so exactly once, with the count, then goes on (issue 13's lag
// marker, made to fail once on purpose).
func TestSubscriptionLagMarker(t *testing.T) {
	a := cluster(t, 1)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tp, err := a.Join(ctx, "lag")
	if err != nil {
		t.Fatal(err)
	}
	slow, err := tp.Subscribe(WithBuffer(4, 0))
	if err != nil {
		t.Fatal(err)
	}
	fast, err := tp.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 10; i++ {
		if _, err := tp.Publish(ctx, fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitDelivered(t, a, 10)
	_, err = slow.Next(ctx)
	var le *LaggedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLagged) || le.Missed != 6 {
		t.Fatalf("slow reader: %v, want *LaggedError{Missed: 6}", err)
	}
	for i := 7; i <= 10; i++ {
		if m := recv(t, slow, 5*time.Second); string(m.Payload) != fmt.Sprintf("m%d", i) {
			t.Fatalf("after the gap got %q, want m%d", m.Payload, i)
		}
	}
	if _, err := tp.Publish(ctx, []byte("m11")); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, slow, 5*time.Second); string(m.Payload) != "m11" {
		t.Fatalf("the stream did not go on: %q", m.Payload)
	}
	// The other subscription of the handle lost nothing.
	for i := 1; i <= 11; i++ {
		if m := recv(t, fast, 5*time.Second); string(m.Payload) != fmt.Sprintf("m%d", i) || m.Hops != 0 || m.Origin != a.AgentID() {
			t.Fatalf("fast reader got %+v, want m%d", m, i)
		}
	}
	if n, ok := a.Metrics().Value("x0x_agent_stream_dropped_total", Label{"stream", "messages"}); !ok || n != 6 {
		t.Fatalf("dropped-messages metric %d %v, want 6", n, ok)
	}
	tp.Leave()
	if _, err := slow.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Leave: %v", err)
	}
}

// A topic joined twice has two independent handles: each has its own
// subscriptions; leaving one ends only its streams, and the node carries
// the topic until the last handle is left.
func TestTopicHandlesAreIndependent(t *testing.T) {
	agents := cluster(t, 2)
	a, b := agents[0], agents[1]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t1, s1 := joinSub(t, a, "twice")
	t2, s2 := joinSub(t, a, "twice")
	s2b, err := t2.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	if t1.Name() != "twice" {
		t.Fatalf("Name %q", t1.Name())
	}
	tb, sb := joinSub(t, b, "twice")
	waitTopic(t, agents, "twice")
	publishUntilHeard(t, ctx, tb, s1, "from b")
	for _, s := range []*Subscription{s2, s2b} {
		for {
			if m := recv(t, s, 5*time.Second); string(m.Payload) == "from b" {
				break
			}
		}
	}
	t2.Leave()
	t2.Leave() // idempotent
	for _, s := range []*Subscription{s2, s2b} {
		for {
			_, err := s.Next(ctx) // buffered copies first, then the end
			if errors.Is(err, ErrClosed) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := t2.Publish(ctx, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish on a left handle: %v", err)
	}
	if _, err := t2.Subscribe(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Subscribe on a left handle: %v", err)
	}
	// The other handle still receives, and the node still carries the topic.
	if len(t1.Neighbours()) == 0 {
		t.Fatal("the node dropped the topic while a handle is joined")
	}
	publishUntilHeard(t, ctx, tb, s1, "still here")
	publishUntilHeard(t, ctx, t1, sb, "from a")
	t1.Leave()
	deadline := time.Now().Add(10 * time.Second)
	for len(tb.Neighbours()) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("b still has a as a neighbour after a left its last handle")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Topic.Events reports this node's neighbours on the topic coming and
// going; Neighbours lists them.
func TestTopicNeighbourEvents(t *testing.T) {
	agents := cluster(t, 2)
	a, b := agents[0], agents[1]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ta, err := a.Join(ctx, "nb")
	if err != nil {
		t.Fatal(err)
	}
	defer ta.Leave()
	events, err := ta.Events()
	if err != nil {
		t.Fatal(err)
	}
	tb, err := b.Join(ctx, "nb")
	if err != nil {
		t.Fatal(err)
	}
	next := func(want TopicEventKind) {
		t.Helper()
		for {
			ev, err := events.Next(ctx)
			if err != nil {
				t.Fatalf("waiting for %v: %v", want, err)
			}
			if ev.Peer == b.MachineID() && ev.Kind == want {
				if ev.Topic != "nb" {
					t.Fatalf("event names topic %q", ev.Topic)
				}
				return
			}
		}
	}
	next(TopicNeighbourUp)
	if got := ta.Neighbours(); !slices.Contains(got, b.MachineID()) {
		t.Fatalf("Neighbours %v lacks b", got)
	}
	tb.Leave()
	next(TopicNeighbourDown)
	if got := ta.Neighbours(); slices.Contains(got, b.MachineID()) {
		t.Fatalf("Neighbours %v still has b", got)
	}
	ta.Leave()
	if _, err := events.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("events after Leave: %v", err)
	}
}

var errBad = errors.New("bad payload")

// Validators: a message a validator refuses is not delivered (and a local
// publication of it fails with ErrRejected); with several handles, every
// validator must accept; a handle's validator ends with the handle.
func TestTopicValidators(t *testing.T) {
	agents := cluster(t, 2)
	a, b := agents[0], agents[1]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	refuse := func(prefix string) TopicOption {
		return WithValidator(func(m Message) error {
			if bytes.HasPrefix(m.Payload, []byte(prefix)) {
				return fmt.Errorf("%w: %q", errBad, prefix)
			}
			return nil
		})
	}
	v1, sub := joinSub(t, b, "checked", refuse("bad"))
	ta, _ := joinSub(t, a, "checked")
	waitTopic(t, agents, "checked")
	// Remote messages: b never delivers a refused one.
	for round := 0; ; round++ {
		for _, p := range []string{"bad", "good"} {
			if _, err := ta.Publish(ctx, fmt.Appendf(nil, "%s %d", p, round)); err != nil {
				t.Fatal(err)
			}
		}
		wait, stop := context.WithTimeout(ctx, 300*time.Millisecond)
		m, err := sub.Next(wait)
		stop()
		if err == nil {
			if !strings.HasPrefix(string(m.Payload), "good") {
				t.Fatalf("b delivered %q", m.Payload)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no good message arrived")
		}
	}
	if b.pubsubStats().DropRejected == 0 {
		t.Fatal("refusals not counted")
	}
	// Local publications are checked too.
	_, err := v1.Publish(ctx, []byte("bad local"))
	if !errors.Is(err, ErrRejected) || !errors.Is(err, errBad) {
		t.Fatalf("local bad publish: %v, want ErrRejected wrapping the validator's error", err)
	}
	// A second handle's validator adds to the first: both must accept.
	v2, err := b.Join(ctx, "checked", refuse("ugly"), PublishOnly())
	if err != nil {
		t.Fatal(err)
	}
	for p, refused := range map[string]bool{"bad 2": true, "ugly 2": true, "fine 2": false} {
		if _, err := v1.Publish(ctx, []byte(p)); errors.Is(err, ErrRejected) != refused {
			t.Fatalf("publish %q with two validators: %v", p, err)
		}
	}
	// A panicking validator refuses.
	v3, err := b.Join(ctx, "checked", WithValidator(func(m Message) error {
		if string(m.Payload) == "boom" {
			panic("validator bug")
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v1.Publish(ctx, []byte("boom")); !errors.Is(err, ErrRejected) {
		t.Fatalf("panicking validator: %v", err)
	}
	v3.Leave()
	v2.Leave()
	if _, err := v1.Publish(ctx, []byte("ugly 3")); err != nil {
		t.Fatalf("a left handle's validator still applies: %v", err)
	}
	v1.Leave()
	tb, err := b.Join(ctx, "checked", PublishOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Leave()
	if _, err := tb.Publish(ctx, []byte("bad 4")); err != nil {
		t.Fatalf("validators remain after every validating handle left: %v", err)
	}
}

// A PublishOnly handle publishes without joining: the node does not carry
// the topic, and it cannot subscribe.
func TestTopicPublishOnly(t *testing.T) {
	agents := cluster(t, 2)
	a, b := agents[0], agents[1]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, sb := joinSub(t, b, "one-way")
	tp, err := a.Join(ctx, "one-way", PublishOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Leave()
	if _, err := tp.Subscribe(); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Subscribe on a PublishOnly handle: %v", err)
	}
	publishUntilHeard(t, ctx, tp, sb, "from a publisher that does not subscribe")
	if e, l := a.overlay.PubSub.TopicPeers(pubsub.TopicIDOf("one-way")); len(e)+len(l) != 0 || len(tp.Neighbours()) != 0 {
		t.Fatal("a PublishOnly handle made the node carry the topic")
	}
}

// Bad input is an error, never a panic.
func TestTopicBadInput(t *testing.T) {
	a := cluster(t, 1)[0]
	ctx := context.Background()
	if _, err := a.Join(ctx, ""); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("empty topic: %v", err)
	}
	if _, err := a.Join(ctx, "bad \xff utf-8"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("topic that is not UTF-8: %v", err)
	}
	if _, err := a.Join(ctx, strings.Repeat("é", MaxTopicName/2+1)); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("topic over MaxTopicName bytes: %v", err)
	}
	if tp, err := a.Join(ctx, strings.Repeat("é", MaxTopicName/2)); err != nil {
		t.Fatalf("topic of MaxTopicName bytes: %v", err)
	} else {
		tp.Leave()
	}
	if err := a.WaitForAgent(ctx, a.AgentID()); err != nil {
		t.Fatalf("waiting for oneself: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.Join(cancelled, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Join with a cancelled context: %v", err)
	}
	//lint:ignore SA1012 a nil context must not panic
	tp, err := a.Join(nil, "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Leave()
	if _, err := tp.Publish(cancelled, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a cancelled context: %v", err)
	}
	if _, err := tp.Publish(ctx, make([]byte, MaxPayload+1)); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("oversized payload: %v", err)
	}
	if _, err := tp.Publish(ctx, make([]byte, MaxPayload)); err != nil {
		t.Fatalf("payload of MaxPayload: %v", err)
	}
	var ce *ConfigError
	if _, err := tp.Subscribe(WithBuffer(-1, 0)); !errors.As(err, &ce) || !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad buffer: %v", err)
	}
	if _, err := a.Events(WithBuffer(0, -5)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad buffer: %v", err)
	}
	if MaxPayload != pubsub.MaxPayload {
		t.Fatalf("MaxPayload %d, pub/sub's %d", MaxPayload, pubsub.MaxPayload)
	}
}

// Agent.Events reports connections and overlay membership; it ends with
// Close.
func TestAgentEventsStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := build(t, NewBuilder().WithDataDir(t.TempDir()))
	events, err := a.Events()
	if err != nil {
		t.Fatal(err)
	}
	b := build(t, NewBuilder().WithDataDir(t.TempDir()).WithBootstrap(a.MachineID().String()+"@"+a.Addr()))
	if err := b.JoinNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	seen := map[EventKind]bool{}
	for !seen[EventPeerConnected] || !seen[EventNeighbourUp] {
		ev, err := events.Next(ctx)
		if err != nil {
			t.Fatalf("events so far %v: %v", seen, err)
		}
		if ev.Peer == b.MachineID() {
			seen[ev.Kind] = true
			if ev.Kind == EventPeerConnected && !slices.Contains(ev.Agents, b.AgentID()) {
				t.Fatalf("connected event lacks b's agent: %+v", ev)
			}
		}
	}
	peers := a.Peers()
	if len(peers) != 1 || peers[0].ID != b.MachineID() || peers[0].Relayed || peers[0].Addr == "" {
		t.Fatalf("Peers %+v", peers)
	}
	if got := a.PeerAgents(b.MachineID()); !slices.Contains(got, b.AgentID()) {
		t.Fatalf("PeerAgents %v", got)
	}
	b.Close()
	for {
		ev, err := events.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind == EventPeerDisconnected && ev.Peer == b.MachineID() {
			break
		}
	}
	a.Close()
	for {
		if _, err := events.Next(ctx); err != nil {
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("after Close: %v", err)
			}
			break
		}
	}
	if _, err := a.Events(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Events after Close: %v", err)
	}
	if _, err := a.Connect(ctx, b.Addr()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Connect after Close: %v", err)
	}
	if err := a.JoinNetwork(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("JoinNetwork after Close: %v", err)
	}
}

// Close ends every stream (a Next waiting on another goroutine returns
// ErrClosed), every topic and task list, and leaves no goroutine behind.
func TestCloseEndsStreamsWithoutLeaks(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	a, err := NewBuilder().WithDataDir(t.TempDir()).Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := a.Join(ctx, "leak")
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := tp.Subscribe()
	tev, _ := tp.Events()
	events, _ := a.Events()
	list, err := a.CreateTaskList(ctx, "leak")
	if err != nil {
		t.Fatal(err)
	}
	changes, _ := list.Changes()
	if _, err := list.Add("x", ""); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 4)
	wait := func(next func() error) {
		go func() {
			for {
				if err := next(); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wait(func() error { _, err := sub.Next(ctx); return err })
	wait(func() error { _, err := tev.Next(ctx); return err })
	wait(func() error { _, err := events.Next(ctx); return err })
	wait(func() error { _, err := changes.Next(ctx); return err })
	time.Sleep(50 * time.Millisecond)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		select {
		case err := <-errc:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("pending Next ended with %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a pending Next did not end on Close")
		}
	}
}
