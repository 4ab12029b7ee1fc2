package main

/*
#include <stdlib.h>
#include "helpers.h"
*/
import "C"

import (
	"context"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// agentEntry is what an agent handle names: the facade agent and the
// event delivery state. Its dispatcher goroutine (run) is owned by the
// entry: it ends when the agent's event channel is closed by Close, and
// x0x_agent_destroy waits for it (done).
type agentEntry struct {
	handle uint64
	a      *x0x.Agent
	q      *eventQueue
	closed atomic.Bool // set by destroy: no callback starts after it

	cbMu sync.Mutex
	cb   C.x0x_event_cb
	ud   unsafe.Pointer // caller's user data (C memory, never dereferenced)

	// inbox carries events from sources other than the node (topic
	// subscriptions, task lists, injected events) to run, so that every
	// event goes through one dispatcher, one at a time, as the header
	// promises for callbacks.
	inbox chan event
	// stop is closed by destroy: forwarders and injectors give up on it.
	stop chan struct{}
	// fwd counts the forwarder goroutines; destroy waits for them.
	fwd sync.WaitGroup

	subMu       sync.Mutex
	subs        map[string]*x0x.Subscription // nil once destroyed
	subsDropped uint64                       // drops of ended subscriptions
	lists       map[x0x.TaskListID]*openList // nil once destroyed

	done chan struct{}
}

// inboxCapacity bounds the events waiting for the dispatcher from
// subscriptions and task lists (each source also has its own buffer).
const inboxCapacity = 1024

// newAgentEntry wraps a facade agent and its pull queue.
func newAgentEntry(a *x0x.Agent, q *eventQueue) *agentEntry {
	return &agentEntry{a: a, q: q, inbox: make(chan event, inboxCapacity), stop: make(chan struct{}),
		subs: map[string]*x0x.Subscription{}, lists: map[x0x.TaskListID]*openList{}, done: make(chan struct{})}
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
// and to the pull queue otherwise, until the event channel is closed.
func (e *agentEntry) run() {
	defer close(e.done)
	defer e.q.close()
	nodeEvents := e.a.Events()
	for {
		select {
		case ev, ok := <-nodeEvents:
			if !ok {
				return
			}
			if ce, known := convertEvent(ev); known {
				e.deliver(ce)
			}
		case ce := <-e.inbox:
			e.deliver(ce)
		}
	}
}

// deliver hands one event to the callback or the pull queue. A panic (a
// bug) is contained so delivery goes on; the event is then counted as
// dropped.
func (e *agentEntry) deliver(ce event) {
	defer func() {
		if recover() != nil {
			e.q.countDrop()
		}
	}()
	e.cbMu.Lock()
	cb, ud := e.cb, e.ud
	e.cbMu.Unlock()
	if cb == nil {
		if ce.waitForRoom {
			e.q.pushWait(ce, e.stop)
		} else {
			e.q.push(ce)
		}
		return
	}
	if e.closed.Load() {
		return
	}
	rec := (*C.x0x_event)(C.calloc(1, C.size_t(unsafe.Sizeof(C.x0x_event{}))))
	defer C.free(unsafe.Pointer(rec))
	ce.fill(rec)
	defer C.capi_event_free_fields(rec)
	C.capi_invoke_cb(cb, C.uint64_t(e.handle), rec, ud)
}
