package main

import (
	"testing"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

func TestConvertEventSkipsUnknownKinds(t *testing.T) {
	if _, ok := convertEvent(x0x.Event{Kind: 200}); ok {
		t.Fatal("unknown kind converted")
	}
	ev := x0x.Event{Kind: x0x.EventAgentsChanged, Agents: []x0x.AgentID{{1}, {2}}}
	e, ok := convertEvent(ev)
	if !ok || e.nAgents != 2 || len(e.agents) != 64 || e.agents[0] != 1 || e.agents[32] != 2 {
		t.Fatalf("agents not flattened: %+v", e)
	}
	for name, want := range map[string]uint64{"none": 1, "endpoint-independent": 2, "endpoint-dependent": 3, "junk": 0} {
		e, ok := convertEvent(x0x.Event{Kind: x0x.EventNatTypeDetected, NAT: name, Addr: "198.18.0.9:5"})
		if !ok || e.kind != 9 || e.nums[0] != want || e.addr != "198.18.0.9:5" {
			t.Errorf("NAT %q: %+v %v", name, e, ok)
		}
	}
	e, ok = convertEvent(x0x.Event{Kind: x0x.EventGroupInvitation, From: x0x.AgentID{3}, Group: x0x.GroupID{4}})
	if !ok || e.kind != kindGroupInvitation || e.from != (x0x.AgentID{3}) || e.topic != (x0x.GroupID{4}).String() {
		t.Fatalf("invitation: %+v", e)
	}
	e, _ = convertEvent(x0x.Event{Kind: x0x.EventPeerDisconnected, Err: x0x.ErrClosed})
	if e.st != statusClosed || e.errMsg != x0x.ErrClosed.Error() {
		t.Fatalf("error not converted: %+v", e)
	}
}

func TestEventQueueBoundsAndOrder(t *testing.T) {
	q, err := newEventQueue(2)
	if err != nil {
		t.Fatal(err)
	}
	defer q.close()
	for i := range 5 {
		q.push(event{kind: 6, payload: []byte{byte(i)}})
	}
	if q.droppedCount() != 3 {
		t.Fatalf("dropped %d, want 3", q.droppedCount())
	}
	if got := popPayloads(q, 1); len(got) != 1 || got[0] != 0 {
		t.Fatalf("first drain %v", got)
	}
	q.push(event{kind: 6, payload: []byte{9}})
	if got := popPayloads(q, 8); len(got) != 2 || got[0] != 1 || got[1] != 9 {
		t.Fatalf("second drain %v, want [1 9] (FIFO across the ring wrap)", got)
	}
	q.close()
	q.push(event{kind: 6})
	if q.droppedCount() != 4 || q.fd() != -1 {
		t.Fatalf("push after close: dropped %d fd %d", q.droppedCount(), q.fd())
	}
}

// popPayloads pops up to max events and returns their first payload bytes.
func popPayloads(q *eventQueue, max int) []byte {
	var got []byte
	for _, e := range q.pop(max) {
		got = append(got, e.payload[0])
	}
	return got
}

// BenchmarkEventQueuePushPop measures the Go side of the pull API per
// event: push by the dispatcher and pop in batches of 64 by a drain.
func BenchmarkEventQueuePushPop(b *testing.B) {
	q, err := newEventQueue(1024)
	if err != nil {
		b.Fatal(err)
	}
	defer q.close()
	ev := event{kind: 6, payload: make([]byte, 256)}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		q.push(ev)
		if i%64 == 63 {
			q.pop(64)
		}
	}
}
