package localapi

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// ---- task lists ----------------------------------------------------------

// openList is a task list open in this daemon, with its changes feed.
type openList struct {
	list    *x0x.TaskList
	changes *feed[TaskChange]
}

// track registers an open list and starts feeding its changes (once).
func (s *Server) track(l *x0x.TaskList) (*openList, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ol := s.lists[l.ID()]; ol != nil {
		return ol, nil
	}
	if s.closed {
		return nil, x0x.ErrClosed
	}
	ch, err := l.Changes(x0x.WithBuffer(s.lim.FeedItems, s.lim.FeedBytes))
	if err != nil {
		return nil, err
	}
	ol := &openList{list: l, changes: newFeed[TaskChange](s.lim.FeedItems, s.lim.FeedBytes, cursorBase(s.cfg.Now))}
	s.lists[l.ID()] = ol
	listID := x0x.ID(l.ID()).String()
	s.wg.Go(func() {
		pump(s.ctx, ch, ol.changes, func(c x0x.TaskChange) (TaskChange, int) {
			return TaskChange{List: listID, Task: idString(c.Task), Author: c.Author.String(), Op: opName(c.Kind), Local: c.Local}, 256
		}, func(tc *TaskChange, cur uint64) { tc.Cursor = cur })
	})
	return ol, nil
}

// opName names a change's operation as the Node and Python bindings do.
func opName(k x0x.TaskOp) string {
	switch k {
	case x0x.TaskOpInit:
		return "created"
	case x0x.TaskOpAdd:
		return "added"
	case x0x.TaskOpUpdate:
		return "updated"
	case x0x.TaskOpClaim:
		return "claimed"
	case x0x.TaskOpComplete:
		return "completed"
	case x0x.TaskOpReopen:
		return "reopened"
	case x0x.TaskOpMove:
		return "moved"
	case x0x.TaskOpRemove:
		return "removed"
	case x0x.TaskOpWriters:
		return "access"
	}
	return k.String()
}

// list returns the open list named by the path's {list}, opening a list
// stored in the data directory (a restart) on first use.
func (s *Server) list(ctx context.Context, r *http.Request) (*openList, error) {
	id, err := x0x.ParseTaskListID(r.PathValue("list"))
	if err != nil {
		return nil, badRequest("list: want 64 hex digits")
	}
	s.mu.Lock()
	ol := s.lists[id]
	s.mu.Unlock()
	if ol != nil {
		return ol, nil
	}
	l, err := s.agent.TaskList(id)
	if errors.Is(err, x0x.ErrTaskListNotFound) {
		stored, serr := s.agent.StoredTaskLists()
		if serr != nil {
			return nil, serr
		}
		if !slices.ContainsFunc(stored, func(st x0x.StoredTaskList) bool { return st.ID == id }) {
			return nil, notFound("task list %s is neither open nor stored here (join it first)", x0x.ID(id))
		}
		l, err = s.agent.JoinTaskList(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	return s.track(l)
}

// task resolves the path's {task}: a task ID or a unique prefix of at
// least 8 hex digits of one.
func task(l *x0x.TaskList, r *http.Request) (x0x.TaskID, error) {
	v := strings.ToLower(r.PathValue("task"))
	if len(v) < 8 || len(v) > 64 {
		return x0x.TaskID{}, badRequest("task: want a task ID or a unique prefix of at least 8 hex digits")
	}
	if _, err := hex.DecodeString(v[:len(v)&^1]); err != nil {
		return x0x.TaskID{}, badRequest("task: not hex")
	}
	var found []x0x.TaskID
	for _, t := range l.Snapshot() {
		if strings.HasPrefix(x0x.ID(t.ID).String(), v) {
			found = append(found, t.ID)
		}
	}
	switch len(found) {
	case 0:
		return x0x.TaskID{}, &apiError{Status: http.StatusNotFound, Code: "task_not_found", Message: "no task " + v + " in the list"}
	case 1:
		return found[0], nil
	}
	return x0x.TaskID{}, &apiError{Status: http.StatusConflict, Code: "ambiguous", Message: "several tasks start with " + v + ": give more digits"}
}

func taskJSON(t x0x.Task) Task {
	state := "open"
	switch t.State {
	case x0x.TaskClaimed:
		state = "claimed"
	case x0x.TaskDone:
		state = "done"
	}
	return Task{ID: x0x.ID(t.ID).String(), Title: t.Title, Description: t.Description, State: state,
		Claimant: idString(t.Claimant), Claims: ids(t.Claims), Assignee: idString(t.Assignee), Priority: t.Priority,
		CreatedBy: idString(t.CreatedBy), CreatedAt: t.CreatedAt.UTC()}
}

func (s *Server) listInfo(l *x0x.TaskList) TaskListInfo {
	return TaskListInfo{ID: x0x.ID(l.ID()).String(), Name: l.Name(), Open: l.Access().Open, Joined: true}
}

func (s *Server) getTaskLists(w http.ResponseWriter, r *http.Request) error {
	stored, err := s.agent.StoredTaskLists()
	if err != nil {
		return err
	}
	s.mu.Lock()
	open := make(map[x0x.TaskListID]*openList, len(s.lists))
	for id, ol := range s.lists {
		open[id] = ol
	}
	s.mu.Unlock()
	out := []TaskListInfo{}
	for _, st := range stored {
		info := TaskListInfo{ID: x0x.ID(st.ID).String(), Name: st.Name, Operations: st.Operations}
		if ol := open[st.ID]; ol != nil {
			info.Joined, info.Open = true, ol.list.Access().Open
		}
		out = append(out, info)
	}
	writeJSON(w, http.StatusOK, TaskListIndex{Lists: out})
	return nil
}

func (s *Server) postTaskList(w http.ResponseWriter, r *http.Request) error {
	var req CreateTaskListRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	var opts []x0x.TaskListOption
	if req.Open {
		opts = append(opts, x0x.OpenToAll())
	}
	l, err := s.agent.CreateTaskList(r.Context(), req.Name, opts...)
	if err != nil {
		return err
	}
	if _, err := s.track(l); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.listInfo(l))
	return nil
}

func (s *Server) postJoinTaskList(w http.ResponseWriter, r *http.Request) error {
	id, err := x0x.ParseTaskListID(r.PathValue("list"))
	if err != nil {
		return badRequest("list: want 64 hex digits")
	}
	l, err := s.agent.TaskList(id)
	if errors.Is(err, x0x.ErrTaskListNotFound) {
		l, err = s.agent.JoinTaskList(r.Context(), id)
	}
	if err != nil {
		return err
	}
	if _, err := s.track(l); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.listInfo(l))
	return nil
}

func (s *Server) getTaskList(w http.ResponseWriter, r *http.Request) error {
	ol, err := s.list(r.Context(), r)
	if err != nil {
		return err
	}
	l := ol.list
	acc := l.Access()
	snap := TaskListSnapshot{ID: x0x.ID(l.ID()).String(), Name: l.Name(), Creator: idString(acc.Creator),
		Writers: ids(acc.Writers), Open: acc.Open, Cursor: ol.changes.end(), Tasks: []Task{}}
	for _, t := range l.Snapshot() {
		snap.Tasks = append(snap.Tasks, taskJSON(t))
	}
	writeJSON(w, http.StatusOK, snap)
	return nil
}

func (s *Server) deleteTaskList(w http.ResponseWriter, r *http.Request) error {
	ol, err := s.list(r.Context(), r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.lists, ol.list.ID())
	s.mu.Unlock()
	if err := ol.list.Leave(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, Empty{OK: true})
	return nil
}

func (s *Server) postTask(w http.ResponseWriter, r *http.Request) error {
	var req AddTaskRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	ol, err := s.list(r.Context(), r)
	if err != nil {
		return err
	}
	id, err := ol.list.Add(req.Title, req.Description)
	if err != nil {
		return err
	}
	return s.writeTask(w, ol.list, id)
}

func (s *Server) postClaim(w http.ResponseWriter, r *http.Request) error {
	return s.taskOp(w, r, (*x0x.TaskList).Claim)
}

func (s *Server) postComplete(w http.ResponseWriter, r *http.Request) error {
	return s.taskOp(w, r, (*x0x.TaskList).Complete)
}

func (s *Server) taskOp(w http.ResponseWriter, r *http.Request, op func(*x0x.TaskList, x0x.TaskID) error) error {
	ol, err := s.list(r.Context(), r)
	if err != nil {
		return err
	}
	id, err := task(ol.list, r)
	if err != nil {
		return err
	}
	if err := op(ol.list, id); err != nil {
		return err
	}
	return s.writeTask(w, ol.list, id)
}

func (s *Server) writeTask(w http.ResponseWriter, l *x0x.TaskList, id x0x.TaskID) error {
	t, err := l.Task(id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, taskJSON(t))
	return nil
}

func (s *Server) getChanges(w http.ResponseWriter, r *http.Request) error {
	ol, err := s.list(r.Context(), r)
	if err != nil {
		return err
	}
	return servePage(s, w, r, ol.changes)
}

func (s *Server) getChangeStream(w http.ResponseWriter, r *http.Request) error {
	ol, err := s.list(r.Context(), r)
	if err != nil {
		return err
	}
	return serveStream(s, w, r, ol.changes, "change", nil)
}

// ---- groups --------------------------------------------------------------

// openGroup is a group open in this daemon, with its messages feed.
type openGroup struct {
	group    *x0x.Group
	messages *feed[GroupMessage]
}

func (s *Server) trackGroup(g *x0x.Group) (*openGroup, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if og := s.groups[g.ID()]; og != nil {
		return og, nil
	}
	if s.closed {
		return nil, x0x.ErrClosed
	}
	ms, err := g.Messages(x0x.WithBuffer(s.lim.FeedItems, s.lim.FeedBytes))
	if err != nil {
		return nil, err
	}
	og := &openGroup{group: g, messages: newFeed[GroupMessage](s.lim.FeedItems, s.lim.FeedBytes, cursorBase(s.cfg.Now))}
	s.groups[g.ID()] = og
	gid := x0x.ID(g.ID()).String()
	s.wg.Go(func() {
		pump(s.ctx, ms, og.messages, func(m x0x.GroupMessage) (GroupMessage, int) {
			text, b64 := encodePayload(m.Data)
			return GroupMessage{Group: gid, From: m.From.String(), Epoch: m.Epoch, Text: text, PayloadB64: b64}, len(m.Data) + 256
		}, func(gm *GroupMessage, c uint64) { gm.Cursor = c })
	})
	return og, nil
}

// group returns the open group named by the path's {group}, opening one
// the agent restored (a restart) on first use.
func (s *Server) group(r *http.Request) (*openGroup, error) {
	id, err := x0x.ParseGroupID(r.PathValue("group"))
	if err != nil {
		return nil, badRequest("group: want 64 hex digits")
	}
	s.mu.Lock()
	og := s.groups[id]
	s.mu.Unlock()
	if og != nil {
		return og, nil
	}
	g, err := s.agent.Group(id)
	if err != nil {
		return nil, err
	}
	return s.trackGroup(g)
}

func (s *Server) groupInfo(og *openGroup) GroupInfo {
	g := og.group
	return GroupInfo{ID: x0x.ID(g.ID()).String(), Epoch: g.Epoch(), Members: ids(g.Members()), Online: ids(g.Online()),
		Cursor: og.messages.end()}
}

func (s *Server) postKeyPackage(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.agent.PublishKeyPackage(r.Context()); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, Empty{OK: true})
	return nil
}

func (s *Server) getGroups(w http.ResponseWriter, r *http.Request) error {
	out := []GroupInfo{}
	for _, id := range s.agent.Groups() {
		g, err := s.agent.Group(id)
		if err != nil {
			continue // left meanwhile
		}
		og, err := s.trackGroup(g)
		if err != nil {
			return err
		}
		out = append(out, s.groupInfo(og))
	}
	writeJSON(w, http.StatusOK, GroupIndex{Groups: out})
	return nil
}

func (s *Server) postGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := s.agent.CreateGroup(r.Context())
	if err != nil {
		return err
	}
	og, err := s.trackGroup(g)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.groupInfo(og))
	return nil
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) error {
	og, err := s.group(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.groupInfo(og))
	return nil
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	og, err := s.group(r)
	if err != nil {
		return err
	}
	if err := og.group.Leave(r.Context()); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.groups, og.group.ID())
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, Empty{OK: true})
	return nil
}

func (s *Server) postMember(w http.ResponseWriter, r *http.Request) error {
	var req InviteRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	agent, err := parseID("agent", req.Agent)
	if err != nil {
		return err
	}
	og, err := s.group(r)
	if err != nil {
		return err
	}
	if err := og.group.Invite(r.Context(), agent); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.groupInfo(og))
	return nil
}

func (s *Server) deleteMember(w http.ResponseWriter, r *http.Request) error {
	agent, err := parseID("agent", r.PathValue("agent"))
	if err != nil {
		return err
	}
	og, err := s.group(r)
	if err != nil {
		return err
	}
	if err := og.group.Remove(r.Context(), agent); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.groupInfo(og))
	return nil
}

func (s *Server) postGroupMessage(w http.ResponseWriter, r *http.Request) error {
	var req GroupSendRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	data, err := req.bytes()
	if err != nil {
		return err
	}
	og, err := s.group(r)
	if err != nil {
		return err
	}
	if err := og.group.Publish(r.Context(), data); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, Empty{OK: true})
	return nil
}

func (s *Server) getGroupMessages(w http.ResponseWriter, r *http.Request) error {
	og, err := s.group(r)
	if err != nil {
		return err
	}
	return servePage(s, w, r, og.messages)
}

func (s *Server) getGroupStream(w http.ResponseWriter, r *http.Request) error {
	og, err := s.group(r)
	if err != nil {
		return err
	}
	return serveStream(s, w, r, og.messages, "message", nil)
}

func (s *Server) getInvitations(w http.ResponseWriter, r *http.Request) error {
	out := []Invitation{}
	for _, inv := range s.agent.Invitations() {
		out = append(out, Invitation{Group: x0x.ID(inv.Group).String(), From: inv.From.String(), Members: ids(inv.Members), Epoch: inv.Epoch})
	}
	writeJSON(w, http.StatusOK, InvitationList{Invitations: out})
	return nil
}

func (s *Server) postAccept(w http.ResponseWriter, r *http.Request) error {
	id, err := x0x.ParseGroupID(r.PathValue("group"))
	if err != nil {
		return badRequest("group: want 64 hex digits")
	}
	g, err := s.agent.AcceptInvitation(r.Context(), id)
	if err != nil {
		return err
	}
	og, err := s.trackGroup(g)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.groupInfo(og))
	return nil
}

func (s *Server) postDecline(w http.ResponseWriter, r *http.Request) error {
	id, err := x0x.ParseGroupID(r.PathValue("group"))
	if err != nil {
		return badRequest("group: want 64 hex digits")
	}
	if err := s.agent.DeclineInvitation(r.Context(), id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, Empty{OK: true})
	return nil
}
