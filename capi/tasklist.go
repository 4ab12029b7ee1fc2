package main

/*
#include <stdlib.h>
#include "helpers.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// kindTaskChanged is X0X_EVENT_TASK_CHANGED (a Go constant for the tests).
const kindTaskChanged = C.X0X_EVENT_TASK_CHANGED

// openList is one task list an agent has open through the C ABI, with
// every handle naming it (a join of an open list adds a handle).
type openList struct {
	agent   *agentEntry
	list    *x0x.TaskList
	handles []uint64
}

// listHandle is what a task-list handle names.
type listHandle struct{ ol *openList }

func getList(h uint64) (*openList, error) {
	obj, err := handles.get(h, kindTaskList)
	if err != nil {
		return nil, err
	}
	return obj.(*listHandle).ol, nil
}

// taskOp maps a facade operation to its x0x_task_op (0: not reported).
func taskOp(k x0x.TaskOp) uint64 {
	switch k {
	case x0x.TaskOpAdd:
		return C.X0X_TASK_ADDED
	case x0x.TaskOpUpdate:
		return C.X0X_TASK_UPDATED
	case x0x.TaskOpClaim:
		return C.X0X_TASK_CLAIMED
	case x0x.TaskOpComplete:
		return C.X0X_TASK_COMPLETED
	case x0x.TaskOpReopen:
		return C.X0X_TASK_REOPENED
	case x0x.TaskOpMove:
		return C.X0X_TASK_MOVED
	case x0x.TaskOpRemove:
		return C.X0X_TASK_REMOVED
	case x0x.TaskOpWriters:
		return C.X0X_TASK_ACCESS_CHANGED
	}
	return 0
}

// openTaskList registers a handle for l (opening the bookkeeping and the
// change forwarder on first use).
func (e *agentEntry) openTaskList(l *x0x.TaskList) (uint64, error) {
	e.subMu.Lock()
	defer e.subMu.Unlock()
	if e.lists == nil {
		return 0, x0x.ErrClosed
	}
	ol := e.lists[l.ID()]
	if ol != nil && ol.list != l {
		// The list was left under this layer (its group closed, leaving
		// it) and is open again: the old handles named the left list.
		removeListHandles(ol.handles)
		delete(e.lists, l.ID())
		ol = nil
	}
	if ol == nil {
		changes, err := l.Changes()
		if err != nil {
			return 0, err
		}
		ol = &openList{agent: e, list: l}
		e.lists[l.ID()] = ol
		e.fwd.Add(1)
		go e.forwardChanges(l.ID(), changes)
	}
	h, err := handles.add(kindTaskList, &listHandle{ol})
	if err != nil {
		return 0, err
	}
	ol.handles = append(ol.handles, h)
	return h, nil
}

// forwardChanges turns a list's changes into events until the list is
// left or the agent destroyed (the stream then ends).
func (e *agentEntry) forwardChanges(id x0x.TaskListID, changes *x0x.Stream[x0x.TaskChange]) {
	defer e.fwd.Done()
	topic := id.String()
	forward(e, changes, func(ch x0x.TaskChange) (event, bool) {
		op := taskOp(ch.Kind)
		if op == 0 {
			return event{}, false
		}
		local := uint64(0)
		if ch.Local {
			local = 1
		}
		return event{kind: kindTaskChanged, from: ch.Author, topic: topic,
			payload: append([]byte(nil), ch.Task[:]...), nums: [4]uint64{op, local}}, true
	})
}

// leaveTaskList invalidates every handle of ol and leaves the list.
func (e *agentEntry) leaveTaskList(ol *openList) error {
	e.subMu.Lock()
	if e.lists == nil || e.lists[ol.list.ID()] != ol {
		e.subMu.Unlock()
		return &apiError{statusInvalidHandle, "x0x: task list already left"}
	}
	delete(e.lists, ol.list.ID())
	hs := ol.handles
	e.subMu.Unlock()
	removeListHandles(hs)
	return ol.list.Leave()
}

// dropListHandles invalidates every list handle of a destroyed agent (its
// Close closes the lists themselves).
func (e *agentEntry) dropListHandles() {
	e.subMu.Lock()
	lists := e.lists
	e.lists = nil
	e.subMu.Unlock()
	for _, ol := range lists {
		removeListHandles(ol.handles)
	}
}

// removeListHandles invalidates the task-list handles hs.
func removeListHandles(hs []uint64) {
	for _, h := range hs {
		_, _ = handles.remove(h, kindTaskList)
	}
}

// withList runs f on the list named by h.
func withList(name string, h C.uint64_t, f func(ol *openList) error) C.int {
	return C.int(call(name, func() error {
		ol, err := getList(uint64(h))
		if err != nil {
			return err
		}
		return f(ol)
	}))
}

// withTask runs f on the list named by h and the task ID at task.
func withTask(name string, h C.uint64_t, task *C.uint8_t, f func(l *x0x.TaskList, id x0x.TaskID) error) C.int {
	return withList(name, h, func(ol *openList) error {
		id, err := readID(task, "task")
		if err != nil {
			return err
		}
		return f(ol.list, x0x.TaskID(id))
	})
}

//export x0x_tasklist_create
func x0x_tasklist_create(h C.uint64_t, name *C.char, out *C.uint64_t) C.int {
	return withAgent("x0x_tasklist_create", h, func(e *agentEntry) error {
		n, err := goString(name, "name")
		if err != nil {
			return err
		}
		return openHandle(e, out, func(ctx context.Context) (*x0x.TaskList, error) {
			return e.a.CreateTaskList(ctx, n)
		}, e.openTaskList)
	})
}

//export x0x_tasklist_join
func x0x_tasklist_join(h C.uint64_t, listID *C.uint8_t, out *C.uint64_t) C.int {
	return withAgent("x0x_tasklist_join", h, func(e *agentEntry) error {
		id, err := readID(listID, "list_id")
		if err != nil {
			return err
		}
		return openHandle(e, out, func(ctx context.Context) (*x0x.TaskList, error) {
			return e.a.JoinTaskList(ctx, x0x.TaskListID(id))
		}, e.openTaskList)
	})
}

//export x0x_tasklist_id
func x0x_tasklist_id(h C.uint64_t, out *C.uint8_t) C.int {
	return withList("x0x_tasklist_id", h, func(ol *openList) error {
		if out == nil {
			return errInvalidArg("out is NULL")
		}
		copyID(out, x0x.ID(ol.list.ID()))
		return nil
	})
}

//export x0x_tasklist_leave
func x0x_tasklist_leave(h C.uint64_t) C.int {
	return withList("x0x_tasklist_leave", h, func(ol *openList) error {
		return ol.agent.leaveTaskList(ol)
	})
}

//export x0x_tasklist_add
func x0x_tasklist_add(h C.uint64_t, title, description *C.char, out *C.uint8_t) C.int {
	return withList("x0x_tasklist_add", h, func(ol *openList) error {
		t, err := goString(title, "title")
		if err != nil {
			return err
		}
		d := ""
		if description != nil {
			if d, err = goStringMax(description, maxTaskDesc, "description"); err != nil {
				return err
			}
		}
		id, err := ol.list.Add(t, d)
		if err != nil {
			return err
		}
		if out != nil {
			copyID(out, x0x.ID(id))
		}
		return nil
	})
}

//export x0x_tasklist_update
func x0x_tasklist_update(h C.uint64_t, task *C.uint8_t, field, value *C.char) C.int {
	return withTask("x0x_tasklist_update", h, task, func(l *x0x.TaskList, id x0x.TaskID) error {
		f, err := goString(field, "field")
		if err != nil {
			return err
		}
		bound := maxString
		if f == "description" {
			bound = maxTaskDesc
		}
		v, err := goStringMax(value, bound, "value")
		if err != nil {
			return err
		}
		var u x0x.TaskUpdate
		switch f {
		case "title":
			u.Title = &v
		case "description":
			u.Description = &v
		case "assignee":
			var a x0x.AgentID
			if v != "" {
				if a, err = x0x.ParseID(v); err != nil {
					return errInvalidArg(fmt.Sprintf("assignee %q: want 64 hex digits or \"\"", v))
				}
			}
			u.Assignee = &a
		case "priority":
			p, err := strconv.ParseUint(v, 10, 8)
			if err != nil {
				return errInvalidArg(fmt.Sprintf("priority %q: want a decimal number 0..255", v))
			}
			p8 := uint8(p)
			u.Priority = &p8
		default:
			return errInvalidArg(fmt.Sprintf("unknown field %q (want title, description, assignee or priority)", f))
		}
		return l.Update(id, u)
	})
}

//export x0x_tasklist_claim
func x0x_tasklist_claim(h C.uint64_t, task *C.uint8_t) C.int {
	return withTask("x0x_tasklist_claim", h, task, func(l *x0x.TaskList, id x0x.TaskID) error { return l.Claim(id) })
}

//export x0x_tasklist_complete
func x0x_tasklist_complete(h C.uint64_t, task *C.uint8_t) C.int {
	return withTask("x0x_tasklist_complete", h, task, func(l *x0x.TaskList, id x0x.TaskID) error { return l.Complete(id) })
}

//export x0x_tasklist_reopen
func x0x_tasklist_reopen(h C.uint64_t, task *C.uint8_t) C.int {
	return withTask("x0x_tasklist_reopen", h, task, func(l *x0x.TaskList, id x0x.TaskID) error { return l.Reopen(id) })
}

//export x0x_tasklist_remove
func x0x_tasklist_remove(h C.uint64_t, task *C.uint8_t) C.int {
	return withTask("x0x_tasklist_remove", h, task, func(l *x0x.TaskList, id x0x.TaskID) error { return l.Remove(id) })
}

//export x0x_tasklist_add_writer
func x0x_tasklist_add_writer(h C.uint64_t, agent *C.uint8_t) C.int {
	return withWriter("x0x_tasklist_add_writer", h, agent, (*x0x.TaskList).AddWriter)
}

//export x0x_tasklist_remove_writer
func x0x_tasklist_remove_writer(h C.uint64_t, agent *C.uint8_t) C.int {
	return withWriter("x0x_tasklist_remove_writer", h, agent, (*x0x.TaskList).RemoveWriter)
}

// withWriter runs f on the list named by h and the agent ID at agent.
func withWriter(name string, h C.uint64_t, agent *C.uint8_t, f func(l *x0x.TaskList, a x0x.AgentID) error) C.int {
	return withList(name, h, func(ol *openList) error {
		id, err := readID(agent, "agent")
		if err != nil {
			return err
		}
		return f(ol.list, x0x.AgentID(id))
	})
}

//export x0x_tasklist_set_open
func x0x_tasklist_set_open(h C.uint64_t, open C.int) C.int {
	return withList("x0x_tasklist_set_open", h, func(ol *openList) error { return ol.list.SetOpen(open != 0) })
}

//export x0x_tasklist_move
func x0x_tasklist_move(h C.uint64_t, task, after *C.uint8_t) C.int {
	return withTask("x0x_tasklist_move", h, task, func(l *x0x.TaskList, id x0x.TaskID) error {
		if after == nil {
			return l.Move(id, nil)
		}
		a, err := readID(after, "after")
		if err != nil {
			return err
		}
		at := x0x.TaskID(a)
		return l.Move(id, &at)
	})
}

// snapshotJSON is the JSON form of x0x_tasklist_snapshot.
type snapshotJSON struct {
	ID      string     `json:"id"`
	Name    string     `json:"name"`
	Creator *string    `json:"creator"`
	Writers []string   `json:"writers"`
	Open    bool       `json:"open"`
	Tasks   []taskJSON `json:"tasks"`
}

type taskJSON struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	State       string   `json:"state"`
	Claimant    *string  `json:"claimant"`
	Claims      []string `json:"claims"`
	Assignee    *string  `json:"assignee"`
	Priority    uint8    `json:"priority"`
	CreatedBy   string   `json:"created_by"`
	CreatedAtMs int64    `json:"created_at_ms"`
}

// optionalID is nil for the zero ID, else its hex.
func optionalID(id x0x.ID) *string {
	if id == (x0x.ID{}) {
		return nil
	}
	s := id.String()
	return &s
}

// snapshot renders the list as the header documents.
func snapshot(l *x0x.TaskList) ([]byte, error) {
	id := l.ID()
	acc := l.Access()
	out := snapshotJSON{ID: id.String(), Name: l.Name(), Creator: optionalID(acc.Creator), Writers: []string{}, Open: acc.Open, Tasks: []taskJSON{}}
	for _, w := range acc.Writers {
		out.Writers = append(out.Writers, w.String())
	}
	for _, t := range l.Snapshot() {
		claims := make([]string, len(t.Claims))
		for i, c := range t.Claims {
			claims[i] = c.String()
		}
		out.Tasks = append(out.Tasks, taskJSON{
			ID: t.ID.String(), Title: t.Title, Description: t.Description, State: t.State.String(),
			Claimant: optionalID(t.Claimant), Claims: claims, Assignee: optionalID(t.Assignee),
			Priority: t.Priority, CreatedBy: t.CreatedBy.String(), CreatedAtMs: t.CreatedAt.UnixMilli(),
		})
	}
	return json.Marshal(out)
}

//export x0x_tasklist_snapshot
func x0x_tasklist_snapshot(h C.uint64_t, out **C.char) C.int {
	return withList("x0x_tasklist_snapshot", h, func(ol *openList) error {
		if out == nil {
			return errInvalidArg("out_json is NULL")
		}
		b, err := snapshot(ol.list)
		if err != nil {
			return err
		}
		b = append(b, 0)
		*out = (*C.char)(C.CBytes(b))
		return nil
	})
}
