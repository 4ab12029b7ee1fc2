package main

/*
#include <stdlib.h>
#include "helpers.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// Event kinds, group changes and limits of the private groups (as Go
// constants, for the tests).
const (
	kindGroupInvitation = C.X0X_EVENT_GROUP_INVITATION
	kindGroupMessage    = C.X0X_EVENT_GROUP_MESSAGE
	kindGroupChanged    = C.X0X_EVENT_GROUP_CHANGED

	groupMemberJoined = C.X0X_GROUP_MEMBER_JOINED
	groupMemberLeft   = C.X0X_GROUP_MEMBER_LEFT
	groupEpochChanged = C.X0X_GROUP_EPOCH_CHANGED
	groupRemoved      = C.X0X_GROUP_REMOVED
	groupMemberOnline = C.X0X_GROUP_MEMBER_ONLINE

	// maxKeyPackage bounds the key package of x0x_group_invite_keypackage
	// (a post-quantum key package is about 10 KiB).
	maxKeyPackage = 64 << 10
)

// groupEntry is what a group handle names: a facade group with the two
// forwarders that turn its messages and changes into the agent's events.
// ended is set (under the agent queue's lock) when the handle is closed,
// and by the dispatcher once it delivered the group's X0X_GROUP_REMOVED:
// from then on no record of the group is queued or passed on.
type groupEntry struct {
	handle uint64
	agent  *agentEntry
	g      *x0x.Group
	id     x0x.GroupID
	msgs   *x0x.Stream[x0x.GroupMessage]
	evs    *x0x.Stream[x0x.GroupEvent]
	ended  atomic.Bool
	lists  map[x0x.TaskListID]struct{} // lists opened through the handle; under agent.subMu
}

func getGroup(h uint64) (*groupEntry, error) {
	obj, err := handles.get(h, kindGroup)
	if err != nil {
		return nil, err
	}
	return obj.(*groupEntry), nil
}

// withGroup runs f on the group named by h.
func withGroup(name string, h C.uint64_t, f func(ge *groupEntry) error) C.int {
	return C.int(call(name, func() error {
		ge, err := getGroup(uint64(h))
		if err != nil {
			return err
		}
		return f(ge)
	}))
}

// openGroup returns the handle of g: the existing one if the agent has a
// handle for g (an accepted re-invitation keeps its group), else a new
// one with its forwarders. A group that cannot be registered is closed.
func (e *agentEntry) openGroup(g *x0x.Group) (uint64, error) {
	h, err := e.registerGroup(g)
	if err != nil {
		_ = g.Close()
	}
	return h, err
}

func (e *agentEntry) registerGroup(g *x0x.Group) (uint64, error) {
	e.subMu.Lock()
	defer e.subMu.Unlock()
	if e.groups == nil {
		return 0, x0x.ErrClosed
	}
	if ge := e.groups[g]; ge != nil {
		if _, err := handles.get(ge.handle, kindGroup); err != nil {
			return 0, x0x.ErrGroupNotFound // its x0x_group_close is closing it
		}
		return ge.handle, nil
	}
	msgs, err := g.Messages()
	if err != nil {
		return 0, err
	}
	evs, err := g.Events()
	if err != nil {
		msgs.Close()
		return 0, err
	}
	ge := &groupEntry{agent: e, g: g, id: g.ID(), msgs: msgs, evs: evs, lists: map[x0x.TaskListID]struct{}{}}
	h, err := handles.add(kindGroup, ge)
	if err != nil {
		msgs.Close()
		evs.Close()
		return 0, err
	}
	ge.handle = h
	e.groups[g] = ge
	e.fwd.Add(2)
	go e.forwardGroupMessages(ge)
	go e.forwardGroupEvents(ge)
	return h, nil
}

// forwardGroupMessages turns a group's messages into events until the
// group closes or the agent is destroyed. Messages the stream lost while
// the dispatcher was busy are skipped (as task-list changes are).
func (e *agentEntry) forwardGroupMessages(ge *groupEntry) {
	defer e.fwd.Done()
	topic := ge.id.String()
	forward(e, ge.msgs, func(m x0x.GroupMessage) (event, bool) {
		return event{kind: kindGroupMessage, from: m.From, topic: topic, payload: m.Data,
			nums: [4]uint64{m.Epoch, 0, 0, ge.handle}, grp: ge}, true
	})
}

// groupChange maps a facade group event kind to its x0x_group_change (0:
// not reported).
func groupChange(k x0x.GroupEventKind) uint64 {
	switch k {
	case x0x.GroupMemberJoined:
		return groupMemberJoined
	case x0x.GroupMemberLeft:
		return groupMemberLeft
	case x0x.GroupEpochChanged:
		return groupEpochChanged
	case x0x.GroupRemoved:
		return groupRemoved
	case x0x.GroupMemberOnline:
		return groupMemberOnline
	}
	return 0
}

// forwardGroupEvents turns a group's changes into events until the group
// closes or the agent is destroyed. The facade ends the stream only when
// it shuts the group: after x0x_group_close or the agent's destroy (the
// record is then skipped) or when this agent was removed, so if the
// removal itself was lost while the dispatcher was busy it is reported
// when the stream ends.
func (e *agentEntry) forwardGroupEvents(ge *groupEntry) {
	defer e.fwd.Done()
	topic := ge.id.String()
	ended := forward(e, ge.evs, func(gev x0x.GroupEvent) (event, bool) {
		change := groupChange(gev.Kind)
		if change == 0 {
			return event{}, false
		}
		ev := event{kind: kindGroupChanged, topic: topic, nums: [4]uint64{change, gev.Epoch, 0, ge.handle}, grp: ge}
		if change == groupMemberJoined || change == groupMemberLeft || change == groupMemberOnline {
			ev.from = gev.Agent
		}
		return ev, true
	})
	if ended {
		e.post(event{kind: kindGroupChanged, topic: topic,
			nums: [4]uint64{groupRemoved, ge.g.Epoch(), 0, ge.handle}, grp: ge})
	}
}

// closeGroup invalidates the handle of ge (already removed from the
// registry) and of the task lists opened through it, and closes the
// facade group (which leaves those lists). ge stays in e.groups until the
// group is closed, so that an x0x_group_open meanwhile finds it closing
// rather than registering a new handle for it.
func (e *agentEntry) closeGroup(ge *groupEntry) error {
	e.q.closeGroup(ge)
	err := ge.g.Close()
	e.subMu.Lock()
	defer e.subMu.Unlock()
	if e.groups != nil && e.groups[ge.g] == ge {
		delete(e.groups, ge.g)
	}
	for id := range ge.lists {
		ol := e.lists[id]
		if ol == nil {
			continue
		}
		if l, err := e.a.TaskList(id); err == nil && l == ol.list {
			continue // still open (not the group's any more)
		}
		delete(e.lists, id)
		removeListHandles(ol.handles)
	}
	return err
}

// dropGroupHandles invalidates every group handle of a destroyed agent
// (its Close closes the groups themselves).
func (e *agentEntry) dropGroupHandles() {
	e.subMu.Lock()
	groups := e.groups
	e.groups = nil
	e.subMu.Unlock()
	for _, ge := range groups {
		_, _ = handles.remove(ge.handle, kindGroup)
		e.q.closeGroup(ge)
	}
}

// closed reports whether the agent left the group or was removed (or the
// group was closed).
func (ge *groupEntry) closed() bool {
	_, err := ge.g.EpochAuthenticator()
	return errors.Is(err, x0x.ErrClosed)
}

// invitationJSON is one entry of x0x_invitations.
type invitationJSON struct {
	Group   string   `json:"group"`
	From    string   `json:"from"`
	Members []string `json:"members"`
	Epoch   uint64   `json:"epoch"`
}

// groupInfoJSON is the JSON form of x0x_group_info.
type groupInfoJSON struct {
	ID      string   `json:"id"`
	Epoch   uint64   `json:"epoch"`
	Members []string `json:"members"`
	Online  []string `json:"online"`
	Closed  bool     `json:"closed"`
}

// hexIDs returns the IDs in hex (an empty, non-nil slice for none).
func hexIDs[T fmt.Stringer](list []T) []string {
	out := make([]string, len(list))
	for i, id := range list {
		out[i] = id.String()
	}
	return out
}

// describeInvitation completes the record of an EventGroupInvitation with
// the pending invitation's members and epoch (left empty if it was
// answered meanwhile).
func (e *agentEntry) describeInvitation(ev *event, id x0x.GroupID) {
	for _, inv := range e.a.Invitations() {
		if inv.Group != id {
			continue
		}
		ev.nAgents = len(inv.Members)
		ev.agents = make([]byte, 0, idSize*len(inv.Members))
		for _, m := range inv.Members {
			ev.agents = append(ev.agents, m[:]...)
		}
		ev.nums[0] = inv.Epoch
		return
	}
}

// cJSON stores v as a NUL-terminated JSON string in *out.
func cJSON(v any, out **C.char) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	*out = (*C.char)(C.CBytes(append(b, 0)))
	return nil
}

// readGroupID copies the group ID at p.
func readGroupID(p *C.uint8_t) (x0x.GroupID, error) {
	id, err := readID(p, "group_id")
	return x0x.GroupID(id), err
}

//export x0x_keypackage_publish
func x0x_keypackage_publish(h C.uint64_t, out **C.uint8_t, outLen *C.size_t) C.int {
	return withAgent("x0x_keypackage_publish", h, func(e *agentEntry) error {
		if out == nil || outLen == nil {
			return errInvalidArg("out or out_len is NULL")
		}
		ctx, cancel := e.callCtx(0)
		defer cancel()
		kp, err := e.a.PublishKeyPackage(ctx)
		if err != nil {
			return err
		}
		*out, *outLen = (*C.uint8_t)(C.CBytes(kp)), C.size_t(len(kp))
		return nil
	})
}

//export x0x_group_create
func x0x_group_create(h C.uint64_t, out *C.uint64_t) C.int {
	return withAgent("x0x_group_create", h, func(e *agentEntry) error {
		return openHandle(e, out, e.a.CreateGroup, e.openGroup)
	})
}

// agentJSON ends the calls that list something of the agent as JSON
// (x0x_invitations, x0x_groups): with out checked and the agent not being
// destroyed, it stores list(e) in *out.
func agentJSON(name string, h C.uint64_t, out **C.char, list func(e *agentEntry) any) C.int {
	return withAgent(name, h, func(e *agentEntry) error {
		if out == nil {
			return errInvalidArg("out_json is NULL")
		}
		if e.closed.Load() {
			return x0x.ErrClosed
		}
		return cJSON(list(e), out)
	})
}

//export x0x_invitations
func x0x_invitations(h C.uint64_t, out **C.char) C.int {
	return agentJSON("x0x_invitations", h, out, func(e *agentEntry) any {
		invs := e.a.Invitations()
		list := make([]invitationJSON, len(invs))
		for i, inv := range invs {
			list[i] = invitationJSON{Group: inv.Group.String(), From: inv.From.String(), Members: hexIDs(inv.Members), Epoch: inv.Epoch}
		}
		return list
	})
}

//export x0x_groups
func x0x_groups(h C.uint64_t, out **C.char) C.int {
	return agentJSON("x0x_groups", h, out, func(e *agentEntry) any {
		return hexIDs(e.a.Groups())
	})
}

// openGroupByID ends the calls that give a handle for the group whose ID
// is at groupID (x0x_group_accept, x0x_group_open): it runs open for that
// ID, as openHandle does, and registers the group with register.
func (e *agentEntry) openGroupByID(groupID *C.uint8_t, out *C.uint64_t,
	open func(context.Context, x0x.GroupID) (*x0x.Group, error), register func(*x0x.Group) (uint64, error)) error {
	id, err := readGroupID(groupID)
	if err != nil {
		return err
	}
	return openHandle(e, out, func(ctx context.Context) (*x0x.Group, error) { return open(ctx, id) }, register)
}

//export x0x_group_accept
func x0x_group_accept(h C.uint64_t, groupID *C.uint8_t, out *C.uint64_t) C.int {
	return withAgent("x0x_group_accept", h, func(e *agentEntry) error {
		return e.openGroupByID(groupID, out, e.a.AcceptInvitation, e.openGroup)
	})
}

//export x0x_group_open
func x0x_group_open(h C.uint64_t, groupID *C.uint8_t, out *C.uint64_t) C.int {
	return withAgent("x0x_group_open", h, func(e *agentEntry) error {
		// The group was open before the call: a handle that cannot be
		// registered leaves it open (registerGroup, not openGroup).
		return e.openGroupByID(groupID, out, func(_ context.Context, id x0x.GroupID) (*x0x.Group, error) {
			return e.a.Group(id)
		}, e.registerGroup)
	})
}

//export x0x_group_decline
func x0x_group_decline(h C.uint64_t, groupID *C.uint8_t) C.int {
	return withAgent("x0x_group_decline", h, func(e *agentEntry) error {
		id, err := readGroupID(groupID)
		if err != nil {
			return err
		}
		ctx, cancel := e.callCtx(0)
		defer cancel()
		return e.a.DeclineInvitation(ctx, id)
	})
}

//export x0x_group_id
func x0x_group_id(h C.uint64_t, out *C.uint8_t) C.int {
	return withGroup("x0x_group_id", h, func(ge *groupEntry) error {
		if out == nil {
			return errInvalidArg("out is NULL")
		}
		copyID(out, x0x.ID(ge.id))
		return nil
	})
}

// groupInfo renders the group as x0x_group_info documents.
func groupInfo(ge *groupEntry) groupInfoJSON {
	return groupInfoJSON{ID: ge.id.String(), Epoch: ge.g.Epoch(), Members: hexIDs(ge.g.Members()),
		Online: hexIDs(ge.g.Online()), Closed: ge.closed()}
}

//export x0x_group_info
func x0x_group_info(h C.uint64_t, out **C.char) C.int {
	return withGroup("x0x_group_info", h, func(ge *groupEntry) error {
		if out == nil {
			return errInvalidArg("out_json is NULL")
		}
		return cJSON(groupInfo(ge), out)
	})
}

//export x0x_group_invite
func x0x_group_invite(h C.uint64_t, agent *C.uint8_t, timeoutMS C.uint32_t) C.int {
	return withGroup("x0x_group_invite", h, func(ge *groupEntry) error {
		id, err := readID(agent, "agent")
		if err != nil {
			return err
		}
		if ge.closed() { // before asking the agent for a key package
			return fmt.Errorf("%w: the group is closed", x0x.ErrClosed)
		}
		ctx, cancel := ge.agent.callCtx(timeoutMS)
		defer cancel()
		return ge.g.Invite(ctx, id)
	})
}

//export x0x_group_invite_keypackage
func x0x_group_invite_keypackage(h C.uint64_t, kp *C.uint8_t, n C.size_t, timeoutMS C.uint32_t) C.int {
	return withGroup("x0x_group_invite_keypackage", h, func(ge *groupEntry) error {
		if n == 0 {
			return errInvalidArg("key_package is empty")
		}
		b, err := goBytes(kp, n, maxKeyPackage, "key_package")
		if err != nil {
			return err
		}
		ctx, cancel := ge.agent.callCtx(timeoutMS)
		defer cancel()
		return ge.g.InviteKeyPackage(ctx, b)
	})
}

//export x0x_group_remove
func x0x_group_remove(h C.uint64_t, agent *C.uint8_t) C.int {
	return withGroup("x0x_group_remove", h, func(ge *groupEntry) error {
		id, err := readID(agent, "agent")
		if err != nil {
			return err
		}
		return ge.g.Remove(context.Background(), id)
	})
}

//export x0x_group_update
func x0x_group_update(h C.uint64_t) C.int {
	return withGroup("x0x_group_update", h, func(ge *groupEntry) error {
		return ge.g.Update(context.Background())
	})
}

//export x0x_group_leave
func x0x_group_leave(h C.uint64_t) C.int {
	return withGroup("x0x_group_leave", h, func(ge *groupEntry) error {
		return ge.g.Leave(context.Background())
	})
}

//export x0x_group_publish
func x0x_group_publish(h C.uint64_t, data *C.uint8_t, n C.size_t) C.int {
	return withGroup("x0x_group_publish", h, func(ge *groupEntry) error {
		b, err := goBytes(data, n, x0x.MaxGroupMessage, "data")
		if err != nil {
			return err
		}
		return ge.g.Publish(context.Background(), b)
	})
}

// openGroupList registers a handle for l, a list of the group ge, and
// returns it.
func (ge *groupEntry) openGroupList(l *x0x.TaskList) (uint64, error) {
	e := ge.agent
	lh, err := e.openTaskList(l)
	if err != nil {
		return 0, err
	}
	e.subMu.Lock()
	ge.lists[l.ID()] = struct{}{}
	e.subMu.Unlock()
	return lh, nil
}

//export x0x_group_tasklist_create
func x0x_group_tasklist_create(h C.uint64_t, name *C.char, out *C.uint64_t) C.int {
	return withGroup("x0x_group_tasklist_create", h, func(ge *groupEntry) error {
		n, err := goString(name, "name")
		if err != nil {
			return err
		}
		return openHandle(ge.agent, out, func(ctx context.Context) (*x0x.TaskList, error) {
			return ge.g.CreateTaskList(ctx, n)
		}, ge.openGroupList)
	})
}

//export x0x_group_tasklist_join
func x0x_group_tasklist_join(h C.uint64_t, listID *C.uint8_t, out *C.uint64_t) C.int {
	return withGroup("x0x_group_tasklist_join", h, func(ge *groupEntry) error {
		id, err := readID(listID, "list_id")
		if err != nil {
			return err
		}
		return openHandle(ge.agent, out, func(ctx context.Context) (*x0x.TaskList, error) {
			return ge.g.JoinTaskList(ctx, x0x.TaskListID(id))
		}, ge.openGroupList)
	})
}

//export x0x_group_close
func x0x_group_close(h C.uint64_t) C.int {
	return C.int(call("x0x_group_close", func() error {
		obj, err := handles.remove(uint64(h), kindGroup)
		if err != nil {
			return err
		}
		ge := obj.(*groupEntry)
		return ge.agent.closeGroup(ge)
	}))
}
