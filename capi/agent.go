package main

/*
#include <stdlib.h>
#include "helpers.h"
*/
import "C"

import (
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

	done chan struct{}
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
	for ev := range e.a.Events() {
		e.dispatch(ev)
	}
}

// dispatch delivers one event. A panic (a bug) is contained so delivery
// goes on; the event is then counted as dropped.
func (e *agentEntry) dispatch(ev x0x.Event) {
	defer func() {
		if recover() != nil {
			e.q.countDrop()
		}
	}()
	ce, ok := convertEvent(ev)
	if !ok {
		return
	}
	e.cbMu.Lock()
	cb, ud := e.cb, e.ud
	e.cbMu.Unlock()
	if cb == nil {
		e.q.push(ce)
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
