package main

/*
#include <stdlib.h>
#include "helpers.h"
*/
import "C"

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// agentEntry is what an agent handle names: the facade agent and the
// event delivery state. Its dispatcher goroutine (run) is owned by the
// entry: it ends when the agent is destroyed (stop), and
// x0x_agent_destroy waits for it (done) and for the forwarders (fwd).
type agentEntry struct {
	handle uint64
	a      *x0x.Agent
	q      *eventQueue
	closed atomic.Bool // set by destroy: no callback starts after it

	cbMu sync.Mutex
	cb   C.x0x_event_cb
	ud   unsafe.Pointer // caller's user data (C memory, never dereferenced)

	// inbox carries events from the forwarders (the agent's event stream,
	// topic subscriptions, task lists) and injected events to run, so that
	// every event goes through one dispatcher, one at a time, as the header
	// promises for callbacks.
	inbox chan event
	// stop is closed by destroy: the dispatcher, forwarders and injectors
	// give up on it.
	stop chan struct{}
	// fwd counts the forwarder goroutines; destroy waits for them. Each
	// ends when its facade stream ends (the agent's Close ends them all).
	fwd sync.WaitGroup

	legacyMu    sync.Mutex // serialises x0x_subscribe and x0x_unsubscribe
	subMu       sync.Mutex
	topics      map[*topicEntry]struct{}     // topic handles, incl. x0x_subscribe's; nil once destroyed
	legacy      map[string]*topicEntry       // x0x_subscribe's, by topic; nil once destroyed
	subsDropped atomic.Uint64                // records subscriptions lost in their own buffers
	lists       map[x0x.TaskListID]*openList // nil once destroyed
	groups      map[*x0x.Group]*groupEntry   // group handles, by facade group; nil once destroyed
	requests    atomic.Uint64                // last validation request ID issued

	done chan struct{}
}

// inboxCapacity bounds the events waiting for the dispatcher from
// subscriptions and task lists (each source also has its own buffer).
const inboxCapacity = 1024

// newAgentEntry wraps a facade agent and its pull queue.
func newAgentEntry(a *x0x.Agent, q *eventQueue) *agentEntry {
	return &agentEntry{a: a, q: q, inbox: make(chan event, inboxCapacity), stop: make(chan struct{}),
		topics: map[*topicEntry]struct{}{}, legacy: map[string]*topicEntry{},
		lists: map[x0x.TaskListID]*openList{}, groups: map[*x0x.Group]*groupEntry{}, done: make(chan struct{})}
}

// callCtx is the context of a blocking call on this agent: it ends at the
// call's timeout (0: the default) or when the agent is destroyed, so no
// call outlives its agent (it then fails with X0X_ERR_CLOSED).
func (e *agentEntry) callCtx(ms C.uint32_t) (context.Context, context.CancelFunc) {
	ctx, cancel := timeout(ms)
	go func() {
		select {
		case <-e.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// post hands e to the dispatcher, waiting for room; it reports false if the
// agent was destroyed first.
func (e *agentEntry) post(ev event) bool {
	select {
	case e.inbox <- ev:
		return true
	case <-e.stop:
		return false
	}
}

// setCallback registers (or with cb nil, removes) the event callback.
func (e *agentEntry) setCallback(cb C.x0x_event_cb, ud unsafe.Pointer) {
	e.cbMu.Lock()
	e.cb, e.ud = cb, ud
	e.cbMu.Unlock()
}

// run delivers the agent's events, to the callback if one is registered
// and to the pull queue otherwise, until the agent is destroyed.
func (e *agentEntry) run() {
	defer close(e.done)
	defer e.q.close()
	for {
		select {
		case ce := <-e.inbox:
			e.deliver(ce)
		case <-e.stop:
			return
		}
	}
}

// forwardEvents moves the agent's events (connections, agent changes,
// direct messages, NAT type) to the dispatcher until the stream ends. Kinds
// the ABI does not know are skipped; events the stream dropped while the
// dispatcher was busy are the node's drops, which x0x_events_dropped does
// not count (see the header).
func (e *agentEntry) forwardEvents(s *x0x.Stream[x0x.Event]) {
	defer e.fwd.Done()
	forward(e, s, func(ev x0x.Event) (event, bool) {
		ce, known := convertEvent(ev)
		if known && ev.Kind == x0x.EventGroupInvitation {
			e.describeInvitation(&ce, ev.Group)
		}
		return ce, known
	})
}

// forward posts the record conv makes of each item of s (none where conv
// returns false) until s ends, then returns true, or until the agent is
// destroyed (post refuses the record), then returns false. Items s lost
// while the dispatcher was busy (ErrLagged) are skipped.
func forward[T any](e *agentEntry, s *x0x.Stream[T], conv func(T) (event, bool)) bool {
	for {
		v, err := s.Next(context.Background())
		if errors.Is(err, x0x.ErrLagged) {
			continue
		}
		if err != nil {
			return true
		}
		if ev, ok := conv(v); ok && !e.post(ev) {
			return false
		}
	}
}

// deliver hands one event to the callback or the pull queue. A panic (a
// bug) is contained so delivery goes on; the event is then counted as
// dropped. Records of closed subscriptions, and of groups closed or
// already reported removed, are skipped; a record that is neither queued
// nor handed to a callback calls its onDrop.
func (e *agentEntry) deliver(ce event) {
	handed := false
	defer func() {
		if recover() != nil {
			e.q.countDrop()
		}
		if !handed && ce.onDrop != nil {
			ce.onDrop()
		}
	}()
	if ce.sub != nil && ce.sub.closed.Load() {
		return
	}
	if g := ce.grp; g != nil {
		if g.ended.Load() {
			return
		}
		if ce.kind == kindGroupChanged && ce.nums[0] == groupRemoved {
			// The last record of the group: nothing of it follows.
			defer g.ended.Store(true)
		}
	}
	e.cbMu.Lock()
	cb, ud := e.cb, e.ud
	e.cbMu.Unlock()
	if cb == nil {
		if ce.waitForRoom {
			e.q.pushWait(ce, e.stop)
			handed = true
		} else {
			handed = e.q.push(ce)
		}
		return
	}
	if e.closed.Load() {
		return
	}
	handed = true
	rec := (*C.x0x_event)(C.calloc(1, C.size_t(unsafe.Sizeof(C.x0x_event{}))))
	defer C.free(unsafe.Pointer(rec))
	ce.fill(rec)
	defer C.capi_event_free_fields(rec)
	C.capi_invoke_cb(cb, C.uint64_t(e.handle), rec, ud)
}
