package main

/*
#include <stdlib.h>
#include "helpers.h"
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// event is an x0x.Event converted to the fields of the C x0x_event record,
// held in Go memory until it is handed to C.
type event struct {
	kind    uint32
	st      status
	peer    x0x.ID
	from    x0x.ID
	to      x0x.ID
	addr    string
	errMsg  string
	agents  []byte // len(ids) * 32
	nAgents int
	payload []byte
	topic   string
	nums    [4]uint64 // the record's reserved words

	// waitForRoom makes the dispatcher wait for room in a full pull queue
	// instead of dropping the event (x0x_debug_inject_events only).
	waitForRoom bool
	// sub is the subscription the record belongs to (nil for agent
	// events): the dispatcher skips records of closed subscriptions, and a
	// full queue counts their losses for the subscription's lag marker.
	sub *subEntry
	// grp is the group handle the record belongs to (nil for other
	// records): the dispatcher skips records of closed groups and those
	// that follow the group's X0X_GROUP_REMOVED.
	grp *groupEntry
	// onDrop is called (once, by the dispatcher) when the record could not
	// be queued or handed to a callback: a validation request is then
	// refused at once instead of waiting out its time limit.
	onDrop func()
}

// eventKind maps a facade event kind to its x0x_event_kind value (0 for a
// kind this ABI version does not know: such events are skipped).
func eventKind(k x0x.EventKind) uint32 {
	switch k {
	case x0x.EventPeerConnected:
		return C.X0X_EVENT_PEER_CONNECTED
	case x0x.EventPeerDisconnected:
		return C.X0X_EVENT_PEER_DISCONNECTED
	case x0x.EventConnectionFailed:
		return C.X0X_EVENT_CONNECTION_FAILED
	case x0x.EventExternalAddressDiscovered:
		return C.X0X_EVENT_EXTERNAL_ADDRESS_DISCOVERED
	case x0x.EventAgentsChanged:
		return C.X0X_EVENT_AGENTS_CHANGED
	case x0x.EventDirectMessage:
		return C.X0X_EVENT_DIRECT_MESSAGE
	case x0x.EventNatTypeDetected:
		return C.X0X_EVENT_NAT_TYPE_DETECTED
	case x0x.EventGroupInvitation:
		return C.X0X_EVENT_GROUP_INVITATION
	}
	return 0
}

// natType maps the facade's NAT type name to an x0x_nat_type.
func natType(name string) uint64 {
	switch name {
	case "none":
		return C.X0X_NAT_NONE
	case "endpoint-independent":
		return C.X0X_NAT_ENDPOINT_INDEPENDENT
	case "endpoint-dependent":
		return C.X0X_NAT_ENDPOINT_DEPENDENT
	}
	return C.X0X_NAT_UNKNOWN
}

// convertEvent converts ev; ok is false for kinds the ABI does not know.
func convertEvent(ev x0x.Event) (e event, ok bool) {
	e.kind = eventKind(ev.Kind)
	if e.kind == 0 {
		return e, false
	}
	e.peer, e.from, e.to = ev.Peer, ev.From, ev.To
	e.addr = ev.Addr
	if ev.Err != nil {
		e.st = classify(ev.Err)
		e.errMsg = ev.Err.Error()
	}
	e.nAgents = len(ev.Agents)
	e.agents = make([]byte, 0, 32*len(ev.Agents))
	for _, a := range ev.Agents {
		e.agents = append(e.agents, a[:]...)
	}
	e.payload = ev.Payload
	switch ev.Kind {
	case x0x.EventNatTypeDetected:
		e.nums[0] = natType(ev.NAT)
	case x0x.EventGroupInvitation:
		e.topic = ev.Group.String() // members and epoch: see describeInvitation
	}
	return e, true
}

// fill writes e into the C record dst, allocating its pointer fields with
// malloc (freed by capi_event_free_fields / x0x_events_release).
func (e *event) fill(dst *C.x0x_event) {
	*dst = C.x0x_event{}
	dst.kind = C.uint32_t(e.kind)
	dst.status = C.int32_t(e.st)
	copyID(&dst.peer[0], e.peer)
	copyID(&dst.from[0], e.from)
	copyID(&dst.to[0], e.to)
	if e.addr != "" {
		dst.addr = C.CString(e.addr)
	}
	if e.errMsg != "" {
		dst.error = C.CString(e.errMsg)
	}
	if e.nAgents > 0 {
		dst.agents = (*C.uint8_t)(C.CBytes(e.agents))
		dst.agents_count = C.size_t(e.nAgents)
	}
	if len(e.payload) > 0 {
		dst.payload = (*C.uint8_t)(C.CBytes(e.payload))
		dst.payload_len = C.size_t(len(e.payload))
	}
	if e.topic != "" {
		dst.topic = C.CString(e.topic)
	}
	for i, v := range e.nums {
		dst.reserved[i] = C.uint64_t(v)
	}
}

// copyID writes id to the 32 bytes at p.
func copyID(p *C.uint8_t, id x0x.ID) {
	copy(unsafe.Slice((*byte)(unsafe.Pointer(p)), len(id)), id[:])
}

// eventQueue is an agent's bounded queue for the pull API, with the
// readiness fd that is readable exactly while the queue is not empty.
//
// Records of topic subscriptions (x0x_topic_subscribe, x0x_topic_events)
// that find the queue full are counted for their subscription, and the
// subscription's next record is a lag marker (X0X_EVENT_LAGGED) with the
// count: queued before the subscription's next record, or as soon as pop
// makes room, so that it always sits exactly at the gap.
type eventQueue struct {
	mu      sync.Mutex
	buf     []event // ring of capacity len(buf)
	head, n int
	dropped uint64
	rfd     C.int // read end given to the caller; -1 once closed
	wfd     C.int
	// room gets a token whenever pop frees space (for pushWait).
	room chan struct{}
	// missed counts the records of each subscription lost since its last
	// queued record, in the order the losses began (lagOrder).
	missed   map[*subEntry]uint64
	lagOrder []*subEntry
}

// newEventQueue creates a queue of the given capacity and its fd.
func newEventQueue(capacity int) (*eventQueue, error) {
	var wfd C.int
	rfd, errno := C.capi_notify_new(&wfd)
	if rfd < 0 {
		return nil, fmt.Errorf("x0x: creating the events fd: %w", errno)
	}
	return &eventQueue{buf: make([]event, capacity), rfd: rfd, wfd: wfd, room: make(chan struct{}, 1),
		missed: map[*subEntry]uint64{}}, nil
}

// push appends e and reports true, or drops and counts it (reporting
// false) if the queue is full or closed. A record of a closed subscription
// is dropped without being counted.
func (q *eventQueue) push(e event) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.rfd < 0 {
		q.dropped++
		return false
	}
	if s := e.sub; s != nil && s.lagMarkers() {
		if s.closed.Load() {
			return false
		}
		if e.kind == kindLagged {
			// A marker from the subscription's own buffer: it merges with
			// the losses counted here (they are at the same gap).
			if q.n == len(q.buf) {
				q.missLocked(s, e.nums[0], false)
				return false
			}
			n := e.nums[0] + q.missed[s]
			q.forgetLocked(s)
			q.appendLocked(s.lagEvent(n))
			return true
		}
		if m := q.missed[s]; m > 0 {
			if q.n == len(q.buf) {
				q.missLocked(s, 1, true)
				return false
			}
			q.appendLocked(s.lagEvent(m)) // the marker first, at the gap
			q.forgetLocked(s)
		}
		if q.n == len(q.buf) {
			q.missLocked(s, 1, true)
			return false
		}
	} else if g := e.grp; g != nil && g.ended.Load() {
		return false
	} else if q.n == len(q.buf) {
		q.dropped++
		return false
	}
	q.appendLocked(e)
	return true
}

// appendLocked adds e at the tail (there is room) and makes the fd
// readable when the queue was empty. q.mu is held.
func (q *eventQueue) appendLocked(e event) {
	q.buf[(q.head+q.n)%len(q.buf)] = e
	q.n++
	if q.n == 1 {
		C.capi_notify_signal(q.wfd)
	}
}

// missLocked counts n lost records of s, as dropped by this queue too if
// counted (losses a marker reports from the subscription's own buffer are
// counted where they happened). q.mu is held.
func (q *eventQueue) missLocked(s *subEntry, n uint64, counted bool) {
	if n == 0 {
		return
	}
	if q.missed[s] == 0 {
		q.lagOrder = append(q.lagOrder, s)
	}
	q.missed[s] += n
	if counted {
		q.dropped += n
	}
}

// forgetLocked drops the loss count of s. q.mu is held.
func (q *eventQueue) forgetLocked(s *subEntry) {
	if _, ok := q.missed[s]; !ok {
		return
	}
	delete(q.missed, s)
	for i, x := range q.lagOrder {
		if x == s {
			q.lagOrder = append(q.lagOrder[:i], q.lagOrder[i+1:]...)
			break
		}
	}
}

// flushLagLocked queues the pending lag markers while there is room, in
// the order the losses began. Each marker follows every queued record of
// its subscription (they were queued before the loss). q.mu is held.
func (q *eventQueue) flushLagLocked() {
	for len(q.lagOrder) > 0 && q.n < len(q.buf) {
		s := q.lagOrder[0]
		q.lagOrder = q.lagOrder[1:]
		m := q.missed[s]
		delete(q.missed, s)
		if m > 0 && !s.closed.Load() {
			q.appendLocked(s.lagEvent(m))
		}
	}
	if len(q.lagOrder) == 0 {
		q.lagOrder = nil
	}
}

// closeSub marks s closed and forgets its pending losses: after it
// returns, push queues no record of s. Records already queued stay.
func (q *eventQueue) closeSub(s *subEntry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s.closed.Store(true)
	q.forgetLocked(s)
}

// closeGroup marks g ended: after it returns, push queues no record of g.
// Records already queued stay.
func (q *eventQueue) closeGroup(g *groupEntry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	g.ended.Store(true)
}

// pushWait appends e, waiting while the queue is full; it gives up (and
// counts a drop) when stop is closed or the queue is closed.
func (q *eventQueue) pushWait(e event, stop <-chan struct{}) {
	for {
		q.mu.Lock()
		if q.rfd < 0 {
			q.dropped++
			q.mu.Unlock()
			return
		}
		if q.n < len(q.buf) {
			q.mu.Unlock()
			q.push(e) // only the dispatcher pushes, so the room is still there
			return
		}
		q.mu.Unlock()
		select {
		case <-q.room:
		case <-stop:
			q.countDrop()
			return
		}
	}
}

// pop removes and returns up to max events, oldest first, and makes the
// fd unreadable if that empties the queue.
func (q *eventQueue) pop(max int) []event {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := min(max, q.n)
	if k <= 0 {
		return nil
	}
	out := make([]event, k)
	for i := range out {
		out[i] = q.buf[q.head]
		q.buf[q.head] = event{}
		q.head = (q.head + 1) % len(q.buf)
	}
	q.n -= k
	if q.rfd >= 0 {
		q.flushLagLocked()
	}
	select {
	case q.room <- struct{}{}:
	default:
	}
	if q.n == 0 && q.rfd >= 0 {
		C.capi_notify_reset(q.rfd)
	}
	return out
}

// drain moves up to len(out) events into the C records out and returns how
// many.
func (q *eventQueue) drain(out []C.x0x_event) int {
	evs := q.pop(len(out))
	for i := range evs {
		evs[i].fill(&out[i])
	}
	return len(evs)
}

// countDrop counts one event lost outside the queue.
func (q *eventQueue) countDrop() {
	q.mu.Lock()
	q.dropped++
	q.mu.Unlock()
}

// fd returns the readiness fd (-1 after close).
func (q *eventQueue) fd() C.int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.rfd
}

// droppedCount returns how many events were dropped.
func (q *eventQueue) droppedCount() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

// close closes the fd; queued events stay drainable.
func (q *eventQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.rfd >= 0 {
		C.capi_notify_close(q.rfd, q.wfd)
		q.rfd, q.wfd = -1, -1
	}
}
