package main

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// overlayPair is two agents where b bootstrapped from a and joined.
func overlayPair(t *testing.T) (a, b *agentEntry) {
	t.Helper()
	_, a = testAgent(t)
	_, b = testAgent(t, a.a.MachineID().String()+"@"+a.a.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.a.JoinNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// popUntil pops e's queue until want returns true for a record (which it
// returns), failing after 20 s.
func popUntil(t *testing.T, e *agentEntry, want func(event) bool) event {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, ev := range e.q.pop(64) {
			if want(ev) {
				return ev
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("record never queued")
	return event{}
}

func numbered(i int) []byte { return binary.BigEndian.AppendUint32([]byte("n"), uint32(i)) }

func number(p []byte) int {
	if len(p) != 5 || p[0] != 'n' {
		return -1
	}
	return int(binary.BigEndian.Uint32(p[1:]))
}

// Topic handles of two agents exchange messages; each record names its
// subscription, two handles of one topic each get every message, and a
// publish-only handle reaches a subscriber.
func TestTopicHandlesPublishSubscribe(t *testing.T) {
	a, b := overlayPair(t)
	ta, err := a.joinTopic("room", false, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	ta2, err := a.joinTopic("room", false, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := b.joinTopic("room", false, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := ta.subscribe(false)
	if err != nil {
		t.Fatal(err)
	}
	sa2, err := ta2.subscribe(false)
	if err != nil {
		t.Fatal(err)
	}
	if sa.handle>>kindShift != uint64(kindSubscription) || ta.handle>>kindShift != uint64(kindTopic) {
		t.Fatalf("handles %#x %#x not tagged", sa.handle, ta.handle)
	}
	deadline := time.Now().Add(20 * time.Second)
	got := map[uint64]bool{}
	for len(got) < 2 && time.Now().Before(deadline) {
		tbt, _ := tb.facade()
		if _, err := tbt.Publish(context.Background(), []byte("b->a")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		for _, ev := range a.q.pop(64) {
			if ev.kind == kindTopicMessage && string(ev.payload) == "b->a" {
				if ev.from != b.a.AgentID() || ev.topic != "room" || ev.nums[0] == 0 || ev.nums[2] == 0 {
					t.Fatalf("record %+v", ev)
				}
				got[ev.nums[3]] = true
			}
		}
	}
	if !got[sa.handle] || !got[sa2.handle] || len(got) != 2 {
		t.Fatalf("records went to %v, want both subscriptions %#x %#x", got, sa.handle, sa2.handle)
	}

	// A publish-only handle of b reaches a's subscribers.
	po, err := b.joinTopic("room", true, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := po.subscribe(false); classify(err) != statusInvalidArg {
		t.Fatalf("subscribe on a publish-only handle: %v", err)
	}
	pot, _ := po.facade()
	publishUntil(t, pot, a, "publish-only")

	// A closed subscription gets nothing more; the other still does.
	if err := ta.leave(0); err != nil {
		t.Fatal(err)
	}
	if err := ta.leave(0); classify(err) != statusInvalidHandle {
		t.Fatalf("second leave: %v", err)
	}
	if _, err := handles.get(sa.handle, kindSubscription); err == nil {
		t.Fatal("subscription handle still valid after its topic was left")
	}
	a.q.pop(1 << 16)
	tbt, _ := tb.facade()
	if ev := publishUntil(t, tbt, a, "after leave"); ev.nums[3] != sa2.handle {
		t.Fatalf("record for %#x after its topic was left", ev.nums[3])
	}
}

// publishUntil publishes payload on t every 100 ms until e queues it as a
// topic message, and returns that record.
func publishUntil(t *testing.T, tt *x0x.Topic, e *agentEntry, payload string) event {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		if _, err := tt.Publish(context.Background(), []byte(payload)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		for _, ev := range e.q.pop(1 << 10) {
			if ev.kind == kindTopicMessage && string(ev.payload) == payload {
				return ev
			}
		}
	}
	t.Fatalf("%q never arrived", payload)
	return event{}
}

// A reader that lets the agent's queue fill loses messages and gets one
// lag marker, exactly at the gap, counting them; the subscription goes on.
func TestLagMarkerWhenTheQueueIsFull(t *testing.T) {
	_, e := testAgent(t) // queue capacity 64
	te, err := e.joinTopic("lag", false, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := te.subscribe(false)
	if err != nil {
		t.Fatal(err)
	}
	other, err := te.subscribe(false) // closed: its losses must not be reported
	if err != nil {
		t.Fatal(err)
	}
	tt, _ := te.facade()
	const n = 200
	for i := range n {
		if _, err := tt.Publish(context.Background(), numbered(i)); err != nil {
			t.Fatal(err)
		}
	}
	// 2*n records for a queue of 64: wait until all were handled.
	deadline := time.Now().Add(20 * time.Second)
	for e.q.droppedCount() < 2*n-64 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if d := e.q.droppedCount(); d != 2*n-64 {
		t.Fatalf("dropped %d, want %d", d, 2*n-64)
	}
	handles.remove(other.handle, kindSubscription)
	te.closeSub(other)
	if _, err := tt.Publish(context.Background(), numbered(n)); err != nil {
		t.Fatal(err)
	}
	var seq []event
	for time.Now().Before(deadline) && (len(seq) == 0 || number(seq[len(seq)-1].payload) != n) {
		seq = append(seq, e.q.pop(16)...)
		time.Sleep(5 * time.Millisecond)
	}
	// Expected: the first 64 records (of both subscriptions, interleaved as
	// their forwarders ran), then s's marker for what it lost after its
	// last queued message, then message n.
	last, markers, received, lost := -1, 0, 0, 0
	for _, ev := range seq {
		if ev.nums[3] == other.handle {
			if ev.kind == kindLagged || number(ev.payload) == n {
				t.Fatalf("record of the closed subscription after its close: %+v", ev)
			}
			continue
		}
		if ev.nums[3] != s.handle {
			t.Fatalf("foreign record %+v", ev)
		}
		switch ev.kind {
		case kindLagged:
			markers++
			if ev.topic != "lag" || ev.nums[0] != uint64(n-1-last) || last < 0 {
				t.Fatalf("marker %+v after message %d, want %d lost", ev, last, n-1-last)
			}
			lost += int(ev.nums[0])
		case kindTopicMessage:
			if k := number(ev.payload); k != last+1 && !(k == n && markers == 1) {
				t.Fatalf("message %d after %d", k, last)
			}
			last = number(ev.payload)
			received++
		}
	}
	if markers != 1 || last != n || received+lost != n+1 {
		t.Fatalf("markers %d, received %d, lost %d, last %d", markers, received, lost, last)
	}
}

// When the dispatcher is held up (a slow callback), a subscription's own
// buffer overflows: the loss reaches the reader as a lag marker, merged
// with what the full queue lost, and the counts add up exactly.
func TestLagMarkerFromTheSubscriptionBuffer(t *testing.T) {
	_, e := testAgent(t) // queue capacity 64
	te, err := e.joinTopic("slow", false, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := te.subscribe(false)
	if err != nil {
		t.Fatal(err)
	}
	tt, _ := te.facade()
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := tt.Publish(context.Background(), numbered(i)); err != nil {
				t.Error(err)
				return
			}
		}
	}
	publish(0, 64)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		e.q.mu.Lock()
		full := e.q.n == 64
		e.q.mu.Unlock()
		if full {
			break
		}
	}
	// Hold the dispatcher: an injected record waits for room in the full
	// queue, so the inbox (1,024) and then the subscription's buffer
	// (1,024) fill up.
	self := e.a.AgentID()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.post(event{kind: 6, from: self, to: self, waitForRoom: true})
	}()
	const n = 2600
	publish(64, n)
	wg.Wait()
	// The queue, drained slowly, loses more once the dispatcher runs again;
	// every loss is reported, and message n, published afterwards, arrives.
	received, lost, last := 0, uint64(0), -1
	deadline := time.Now().Add(30 * time.Second)
	for last != n && time.Now().Before(deadline) {
		if uint64(received)+lost == n && last < n {
			publish(n, n+1)
		}
		for _, ev := range e.q.pop(64) {
			switch {
			case ev.nums[3] != s.handle:
			case ev.kind == kindLagged:
				lost += ev.nums[0]
				if last < 0 {
					t.Fatal("marker before any message")
				}
			case ev.kind == kindTopicMessage:
				k := number(ev.payload)
				if k <= last {
					t.Fatalf("message %d after %d", k, last)
				}
				if gap := uint64(k - last - 1); gap != 0 && lost == 0 {
					t.Fatalf("messages %d..%d lost without a marker", last+1, k-1)
				}
				received++
				last = k
			}
		}
		time.Sleep(time.Millisecond)
	}
	if last != n || uint64(received)+lost != n+1 || lost == 0 {
		t.Fatalf("received %d + lost %d != %d (last %d)", received, lost, n+1, last)
	}
	if e.subscriptionDrops() == 0 {
		t.Fatal("the subscription's own buffer lost nothing: the test did not hold the dispatcher")
	}
}

// Neighbour changes of a topic arrive on x0x_topic_events subscriptions.
func TestTopicNeighbourEvents(t *testing.T) {
	a, b := overlayPair(t)
	ta, err := a.joinTopic("nb", false, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := ta.subscribe(true)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := b.joinTopic("nb", false, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	up := popUntil(t, a, func(ev event) bool { return ev.kind == kindNeighbourUp })
	if up.peer != b.a.MachineID() || up.topic != "nb" || up.nums[3] != evs.handle {
		t.Fatalf("neighbour-up %+v", up)
	}
	if nb, _ := ta.facade(); len(nb.Neighbours()) != 1 {
		t.Fatalf("neighbours %v", nb.Neighbours())
	}
	if err := tb.leave(0); err != nil {
		t.Fatal(err)
	}
	down := popUntil(t, a, func(ev event) bool { return ev.kind == kindNeighbourDown })
	if down.peer != b.a.MachineID() || down.nums[3] != evs.handle {
		t.Fatalf("neighbour-down %+v", down)
	}
}

// Asynchronous validation: requests arrive as records, verdicts decide
// delivery and local publishes, a missing verdict refuses after the time
// limit, and leaving lets a waiting request through.
func TestAsynchronousValidation(t *testing.T) {
	_, e := testAgent(t)
	val := &validation{limit: 2 * time.Second, leftCh: make(chan struct{}), pending: map[uint64]chan bool{}}
	te, err := e.joinTopic("v", false, val, true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := te.subscribe(false)
	if err != nil {
		t.Fatal(err)
	}
	tt, _ := te.facade()
	answer := func(accept bool) {
		ev := popUntil(t, e, func(ev event) bool { return ev.kind == kindValidate })
		if ev.nums[3] != te.handle || ev.topic != "v" || ev.from != e.a.AgentID() || ev.nums[2] == 0 {
			t.Errorf("request %+v", ev)
		}
		if !val.resolve(ev.nums[2], accept) {
			t.Error("request not pending")
		}
		if val.resolve(ev.nums[2], accept) {
			t.Error("request answered twice")
		}
	}
	publish := func(p string) chan error {
		c := make(chan error, 1)
		go func() {
			_, err := tt.Publish(context.Background(), []byte(p))
			c <- err
		}()
		return c
	}
	c := publish("good")
	answer(true)
	if err := <-c; err != nil {
		t.Fatal(err)
	}
	if ev := popUntil(t, e, func(ev event) bool { return ev.kind == kindTopicMessage }); string(ev.payload) != "good" || ev.nums[3] != s.handle {
		t.Fatalf("record %+v", ev)
	}
	c = publish("bad")
	answer(false)
	if err := <-c; classify(err) != statusRejected || !errors.Is(err, x0x.ErrRejected) {
		t.Fatalf("refused publish: %v (status %d)", err, classify(err))
	}

	short := &validation{limit: 100 * time.Millisecond, leftCh: make(chan struct{}), pending: map[uint64]chan bool{}}
	ts, err := e.joinTopic("v-short", false, short, true)
	if err != nil {
		t.Fatal(err)
	}
	tst, _ := ts.facade()
	start := time.Now()
	if _, err := tst.Publish(context.Background(), []byte("nobody answers")); classify(err) != statusRejected {
		t.Fatalf("unanswered: %v", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 5*time.Second {
		t.Fatalf("unanswered request took %v, time limit 100 ms", d)
	}
	ev := popUntil(t, e, func(ev event) bool { return ev.kind == kindValidate && ev.topic == "v-short" })
	if short.resolve(ev.nums[2], true) {
		t.Fatal("a late verdict was taken")
	}

	// Leaving the handle lets a waiting request through.
	c = publish("leaving")
	popUntil(t, e, func(ev event) bool { return ev.kind == kindValidate })
	if err := te.leave(0); err != nil {
		t.Fatal(err)
	}
	if err := <-c; classify(err) != statusClosed && err != nil {
		t.Fatalf("publish while leaving: %v", err)
	}
}

// A validation request the queue has no room for is refused at once.
func TestValidationRequestWithoutRoomIsRefused(t *testing.T) {
	_, e := testAgent(t) // queue capacity 64
	val := &validation{limit: 5 * time.Second, leftCh: make(chan struct{}), pending: map[uint64]chan bool{}}
	te, err := e.joinTopic("full", false, val, true)
	if err != nil {
		t.Fatal(err)
	}
	self := e.a.AgentID()
	for range 64 {
		e.q.push(event{kind: 6, from: self, to: self})
	}
	tt, _ := te.facade()
	start := time.Now()
	if _, err := tt.Publish(context.Background(), []byte("x")); classify(err) != statusRejected {
		t.Fatalf("publish: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("refusal took %v", d)
	}
}

// Destroying the agent invalidates its topic and subscription handles and
// ends a waiting validation; x0x_subscribe keeps its ABI 0.2 records.
func TestTopicHandlesEndWithTheAgent(t *testing.T) {
	h, e := testAgent(t)
	if err := e.subscribe("legacy"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.publish(context.Background(), "legacy", []byte("old")); err != nil {
		t.Fatal(err)
	}
	ev := popUntil(t, e, func(ev event) bool { return ev.kind == kindTopicMessage })
	if ev.nums[3] != 0 || ev.sub == nil || ev.sub.lagMarkers() {
		t.Fatalf("x0x_subscribe record %+v", ev)
	}
	val := &validation{limit: 10 * time.Second, leftCh: make(chan struct{}), pending: map[uint64]chan bool{}}
	te, err := e.joinTopic("t", false, val, true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := te.subscribe(true)
	if err != nil {
		t.Fatal(err)
	}
	tt, _ := te.facade()
	c := make(chan error, 1)
	go func() {
		_, err := tt.Publish(context.Background(), []byte("x"))
		c <- err
	}()
	popUntil(t, e, func(ev event) bool { return ev.kind == kindValidate })
	if err := destroyAgent(h, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c:
	case <-time.After(5 * time.Second):
		t.Fatal("publish still waiting for a verdict after destroy")
	}
	for _, hh := range []uint64{te.handle, s.handle} {
		if _, err := handles.get(hh, handleKind(hh>>kindShift)); err == nil {
			t.Fatalf("handle %#x valid after destroy", hh)
		}
	}
	if _, err := e.joinTopic("again", false, nil, true); classify(err) != statusClosed {
		t.Fatalf("join after destroy: %v", err)
	}
}
