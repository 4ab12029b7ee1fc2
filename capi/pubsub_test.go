package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Two agents subscribe and publish to each other through the C layer's
// subscription forwarders; the records carry topic, origin and sequence.
func TestPublishSubscribeThroughQueue(t *testing.T) {
	_, a := testAgent(t)
	_, b := testAgent(t, a.a.MachineID().String()+"@"+a.a.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.a.JoinNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*agentEntry{a, b} {
		if err := e.subscribe("chat"); err != nil {
			t.Fatal(err)
		}
		if err := e.subscribe("chat"); err != nil { // idempotent
			t.Fatal(err)
		}
	}
	// Retry until the topic tree has formed: early publishes may reach no
	// subscriber yet.
	publishUntil := func(from, to *agentEntry, payload string) event {
		for {
			if _, err := from.publish(ctx, "chat", []byte(payload)); err != nil {
				t.Fatal(err)
			}
			for _, ev := range to.q.pop(64) {
				if ev.kind == kindTopicMessage && ev.topic == "chat" && string(ev.payload) == payload {
					return ev
				}
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%q never arrived", payload)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	ev := publishUntil(a, b, "from a")
	if ev.from != a.a.AgentID() || ev.nums[0] == 0 || ev.nums[1] == 0 || ev.nums[2] == 0 {
		t.Fatalf("record %+v", ev)
	}
	ev = publishUntil(b, a, "from b")
	if ev.from != b.a.AgentID() {
		t.Fatalf("record %+v", ev)
	}
	if err := a.unsubscribe("chat"); err != nil {
		t.Fatal(err)
	}
	if err := a.unsubscribe("chat"); classify(err) != statusNotFound {
		t.Fatalf("second unsubscribe: %v", err)
	}
}

// Injected events all arrive through a queue much smaller than their
// number while a consumer drains it, and injection gives up when the agent
// is destroyed.
func TestInjectedEventsWaitForRoom(t *testing.T) {
	h, e := testAgent(t) // queue capacity 64
	const n = 5000
	self := e.a.AgentID()
	ev := event{kind: 6, from: self, to: self, payload: []byte{1, 2}, waitForRoom: true}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range n {
			if !e.post(ev) {
				t.Error("post failed before destroy")
				return
			}
		}
	}()
	got := 0
	deadline := time.Now().Add(20 * time.Second)
	for got < n && time.Now().Before(deadline) {
		got += len(e.q.pop(256))
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	if got != n || e.q.droppedCount() != 0 {
		t.Fatalf("received %d of %d, dropped %d", got, n, e.q.droppedCount())
	}
	// Nobody drains now: the injector blocks on a full queue until destroy.
	stopped := make(chan bool, 1)
	go func() {
		for {
			if !e.post(ev) {
				stopped <- true
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	if err := destroyAgent(h, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("injector still blocked after destroy")
	}
}

// BenchmarkInjectedEvents measures the event path a binding drains, up to
// the pull queue, consumed in Go (no C records): the baseline for the C,
// Node and Python consumers of x0x_debug_inject_events in make bench.
func BenchmarkInjectedEvents(b *testing.B) {
	for _, size := range []int{16, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			_, e := testAgent(b)
			self := e.a.AgentID()
			ev := event{kind: 6, from: self, to: self, payload: make([]byte, size), waitForRoom: true}
			b.ResetTimer()
			go func() {
				for range b.N {
					if !e.post(ev) {
						return
					}
				}
			}()
			for got := 0; got < b.N; {
				n := len(e.q.pop(4096))
				if n == 0 {
					time.Sleep(10 * time.Microsecond)
				}
				got += n
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
