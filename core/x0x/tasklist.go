package x0x

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/pubsub"
	"github.com/saorsa-labs/x0x-go/core/tasklist"
)

// Task-list types, re-exported from core/tasklist.
type (
	// TaskListID names a task list (BLAKE3 of its creator, name and a nonce).
	TaskListID = tasklist.ListID
	// TaskID names a task within a list.
	TaskID = tasklist.TaskID
	// Task is one task as a snapshot shows it.
	Task = tasklist.Task
	// TaskState is a task's checkbox: TaskEmpty, TaskClaimed or TaskDone.
	TaskState = tasklist.State
	// TaskUpdate names the fields Update changes (nil fields stay).
	TaskUpdate = tasklist.Update
	// TaskChange is one applied change, local or remote.
	TaskChange = tasklist.Change
	// TaskOp is the kind of operation a TaskChange reports.
	TaskOp = tasklist.OpKind
	// TaskListStats counts a list's operations, sync traffic and drops.
	TaskListStats = tasklist.Stats
	// TaskListAccess says who may write to a list.
	TaskListAccess = tasklist.Access
)

// TaskListOption configures CreateTaskList.
type TaskListOption func(*taskListOptions)

type taskListOptions struct{ open bool }

// OpenToAll creates a list every agent that knows its ID may write to.
// Without it only the creator and the agents it grants (AddWriter) can;
// every member enforces that on every operation it receives.
func OpenToAll() TaskListOption { return func(o *taskListOptions) { o.open = true } }

// Task-list errors (see core/tasklist); errors.Is works on what the
// TaskList methods return.
var (
	ErrTaskNotFound     = tasklist.ErrTaskNotFound
	ErrTaskDone         = tasklist.ErrTaskDone
	ErrTaskNotClaimed   = tasklist.ErrNotClaimed
	ErrClaimedByOther   = tasklist.ErrClaimedByOther
	ErrTaskListClosed   = tasklist.ErrClosed
	ErrTaskListNotFound = errors.New("x0x: task list not open")
	ErrNotWriter        = tasklist.ErrNotWriter
	ErrTaskInvalid      = tasklist.ErrInvalid
	ErrTaskStoreCorrupt = tasklist.ErrStoreCorrupt
	ErrTaskStoreForeign = tasklist.ErrStoreForeign
	ErrTaskStoreFailed  = tasklist.ErrStoreFailed
)

// Task states.
const (
	TaskEmpty   = tasklist.Empty
	TaskClaimed = tasklist.Claimed
	TaskDone    = tasklist.Done
)

// Task operations, as TaskChange.Kind reports them.
const (
	TaskOpInit     = tasklist.OpInit
	TaskOpAdd      = tasklist.OpAdd
	TaskOpUpdate   = tasklist.OpUpdate
	TaskOpClaim    = tasklist.OpClaim
	TaskOpComplete = tasklist.OpComplete
	TaskOpReopen   = tasklist.OpReopen
	TaskOpMove     = tasklist.OpMove
	TaskOpRemove   = tasklist.OpRemove
	TaskOpWriters  = tasklist.OpWriters
)

// TaskListFile is the name, in the data directory, of the store holding
// every task list the agent has joined.
const TaskListFile = "tasklists.db"

// TaskListTopic returns the pub/sub topic a list's operations travel on.
func TaskListTopic(id TaskListID) string { return "x0x/tasklist/" + hex.EncodeToString(id[:]) }

// ParseTaskListID parses the 64 hex digits of a list ID.
func ParseTaskListID(s string) (TaskListID, error) {
	var id TaskListID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("x0x: task list ID %q: want 64 hex digits", s)
	}
	copy(id[:], b)
	return id, nil
}

// taskLists is an agent's open task lists and their shared store.
type taskLists struct {
	openMu sync.Mutex      // serialises opens
	mu     sync.Mutex      // guards the fields below
	store  *tasklist.Store // opened on first use
	open   map[TaskListID]*TaskList
	closed bool
}

// TaskList is a task list the agent has created or joined: a CRDT replica
// synced with the other members over the list's topic and persisted in the
// agent's data directory. Its methods are safe for concurrent use.
type TaskList struct {
	agent *Agent
	list  *tasklist.List
	topic pubsub.TopicID

	mu  sync.Mutex
	sub *pubsub.Subscription // nil until subscribed, and after leaving
}

// unsubscribe ends the list's topic subscription, once.
func (l *TaskList) unsubscribe() {
	l.mu.Lock()
	sub := l.sub
	l.sub = nil
	l.mu.Unlock()
	if sub != nil {
		sub.Unsubscribe()
	}
}

// CreateTaskList creates a new, empty task list named name and joins it.
// Only this agent may write to it until it grants others (AddWriter) or
// opens it (SetOpen, or the OpenToAll option). Errors: ErrClosed, and
// persistence errors (I/O, a corrupt store).
func (a *Agent) CreateTaskList(name string, opts ...TaskListOption) (*TaskList, error) {
	var o taskListOptions
	for _, f := range opts {
		f(&o)
	}
	var nonce [16]byte
	if _, err := io.ReadFull(a.rand(), nonce[:]); err != nil {
		return nil, fmt.Errorf("x0x: task list nonce: %w", err)
	}
	return a.openTaskList(tasklist.NewListID(a.agent.ID(), name, nonce), name, nonce, o.open)
}

// JoinTaskList opens list id: it loads what this agent persisted before
// and catches up from the list's members in the background (changes arrive
// on Changes). Joining a list that is already open returns the open one.
// Errors: ErrClosed, persistence errors.
//
// Until the list's creation has arrived from a member, writes fail with
// ErrNotWriter; so do they if the creator has not granted this agent
// access to a list that is not open.
func (a *Agent) JoinTaskList(id TaskListID) (*TaskList, error) {
	return a.openTaskList(id, "", [16]byte{}, false)
}

// TaskList returns the open list id, or ErrTaskListNotFound.
func (a *Agent) TaskList(id TaskListID) (*TaskList, error) {
	a.lists.mu.Lock()
	defer a.lists.mu.Unlock()
	if l, ok := a.lists.open[id]; ok {
		return l, nil
	}
	return nil, ErrTaskListNotFound
}

// StoredTaskLists lists the task lists persisted in the data directory
// (joined before, open or not).
func (a *Agent) StoredTaskLists() ([]tasklist.StoredList, error) {
	return a.storedTaskLists()
}

// OpenTaskListsStats returns the counters of every open task list.
func (a *Agent) OpenTaskListsStats() []TaskListStats {
	a.lists.mu.Lock()
	open := make([]*TaskList, 0, len(a.lists.open))
	for _, l := range a.lists.open {
		open = append(open, l)
	}
	a.lists.mu.Unlock()
	out := make([]TaskListStats, len(open))
	for i, l := range open {
		out[i] = l.Stats()
	}
	return out
}

func (a *Agent) storedTaskLists() ([]tasklist.StoredList, error) {
	a.lists.mu.Lock()
	defer a.lists.mu.Unlock()
	st, err := a.taskStoreLocked()
	if err != nil {
		return nil, err
	}
	return st.Lists()
}

// taskStoreLocked opens the store on first use; a.lists.mu is held.
func (a *Agent) taskStoreLocked() (*tasklist.Store, error) {
	if a.lists.closed {
		return nil, ErrClosed
	}
	if a.lists.store == nil {
		st, err := tasklist.OpenStore(filepath.Join(a.dataDir, TaskListFile))
		if err != nil {
			return nil, err
		}
		a.lists.store = st
	}
	return a.lists.store, nil
}

func (a *Agent) openTaskList(id TaskListID, name string, nonce [16]byte, open bool) (*TaskList, error) {
	// openMu serialises opens; mu guards the map only, because pub/sub
	// reports topic events (onTopicEvent takes mu) from inside Subscribe.
	a.lists.openMu.Lock()
	defer a.lists.openMu.Unlock()
	a.lists.mu.Lock()
	if l, ok := a.lists.open[id]; ok {
		a.lists.mu.Unlock()
		return l, nil
	}
	st, err := a.taskStoreLocked()
	a.lists.mu.Unlock()
	if err != nil {
		return nil, err
	}
	l := &TaskList{agent: a, topic: pubsub.TopicIDOf(TaskListTopic(id))}
	inner, err := tasklist.Open(tasklist.Config{
		ID: id, Name: name, Nonce: nonce, OpenToAll: open, Self: a.agent, Store: st, Clock: a.clk, Rand: a.rand(),
		Transport: listTransport{l}, Logger: a.logger,
	})
	if err != nil {
		return nil, err
	}
	l.list = inner
	a.lists.mu.Lock()
	if a.lists.closed {
		a.lists.mu.Unlock()
		inner.Close()
		return nil, ErrClosed
	}
	if a.lists.open == nil {
		a.lists.open = make(map[TaskListID]*TaskList)
	}
	a.lists.open[id] = l
	a.lists.mu.Unlock()
	sub, err := a.overlay.PubSub.SubscribeFunc(TaskListTopic(id), func(d pubsub.Delivery) {
		inner.HandleBroadcast(d.Origin, d.Payload)
	})
	if err != nil {
		a.lists.mu.Lock()
		delete(a.lists.open, id)
		a.lists.mu.Unlock()
		inner.Close()
		if errors.Is(err, pubsub.ErrClosed) {
			return nil, ErrClosed
		}
		return nil, err
	}
	l.mu.Lock()
	l.sub = sub
	l.mu.Unlock()
	// Members already connected as topic neighbours: catch up with them now
	// (later ones are reported by the topic watcher).
	eager, lazy := a.overlay.PubSub.TopicPeers(l.topic)
	for _, p := range append(eager, lazy...) {
		inner.PeerUp(p)
	}
	return l, nil
}

// onTopicEvent starts a catch-up with a new neighbour of a list's topic.
func (a *Agent) onTopicEvent(ev pubsub.Event) {
	if ev.Kind != pubsub.TopicNeighborUp {
		return
	}
	a.lists.mu.Lock()
	var found *TaskList
	for _, l := range a.lists.open {
		if l.topic == ev.Topic {
			found = l
			break
		}
	}
	a.lists.mu.Unlock()
	if found != nil {
		found.list.PeerUp(ev.Peer)
	}
}

// onTaskSync routes a link.ProtoTaskSync frame, [list ID][payload], to its
// open list.
func (a *Agent) onTaskSync(from PeerID, msg []byte) {
	var id TaskListID
	if len(msg) < len(id) {
		return
	}
	copy(id[:], msg)
	a.lists.mu.Lock()
	l := a.lists.open[id]
	a.lists.mu.Unlock()
	if l != nil {
		l.list.HandleDirect(from, msg[len(id):])
	}
}

// closeTaskLists closes every open list and the store (Agent.Close).
func (a *Agent) closeTaskLists() error {
	a.lists.mu.Lock()
	lists := a.lists.open
	a.lists.open = nil
	a.lists.closed = true
	st := a.lists.store
	a.lists.mu.Unlock()
	var errs []error
	for _, l := range lists {
		l.unsubscribe()
		errs = append(errs, l.list.Close())
	}
	if st != nil {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// listTransport carries a list's messages: broadcasts on its topic and
// catch-up frames to one topic neighbour (link.ProtoTaskSync).
type listTransport struct{ l *TaskList }

func (t listTransport) Broadcast(payload []byte) error {
	_, err := t.l.agent.overlay.Publish(TaskListTopic(t.l.list.ID()), payload)
	return err
}

func (t listTransport) Send(peer identity.PeerID, payload []byte) error {
	id := t.l.list.ID()
	frame := make([]byte, 0, len(id)+len(payload))
	frame = append(append(frame, id[:]...), payload...)
	return t.l.agent.node.Send(peer, link.ProtoTaskSync, link.PriorityLazy, frame)
}

func (t listTransport) Peers() []identity.PeerID {
	eager, lazy := t.l.agent.overlay.PubSub.TopicPeers(t.l.topic)
	return append(eager, lazy...)
}

// ID returns the list's ID (give it to others so they can join).
func (l *TaskList) ID() TaskListID { return l.list.ID() }

// Name returns the list's name ("" until the creator's first operation has
// been received).
func (l *TaskList) Name() string { return l.list.Name() }

// Add appends a task and returns its ID. Errors: ErrTaskListClosed,
// persistence errors.
func (l *TaskList) Add(title, description string) (TaskID, error) {
	return l.list.Add(title, description)
}

// Update changes the fields set in u. Errors: ErrTaskNotFound,
// ErrTaskListClosed, persistence errors.
func (l *TaskList) Update(id TaskID, u TaskUpdate) error { return l.list.Update(id, u) }

// Claim claims the task for this agent. Claims made concurrently by several
// agents are all kept (Task.Claims) and every replica picks the same winner
// (Task.Claimant). Errors: ErrTaskNotFound, ErrTaskDone (reopen it first),
// ErrClaimedByOther (this replica already sees another agent's claim),
// ErrTaskListClosed.
func (l *TaskList) Claim(id TaskID) error { return l.list.Claim(id) }

// Complete marks a task this agent claimed as done. Errors:
// ErrTaskNotFound, ErrTaskNotClaimed, ErrClaimedByOther, ErrTaskListClosed.
func (l *TaskList) Complete(id TaskID) error { return l.list.Complete(id) }

// Reopen makes a claimed or done task empty again. Errors: ErrTaskNotFound,
// ErrTaskListClosed.
func (l *TaskList) Reopen(id TaskID) error { return l.list.Reopen(id) }

// Move puts task id right after task after, or first when after is nil.
// Errors: ErrTaskNotFound (either task), ErrTaskListClosed.
func (l *TaskList) Move(id TaskID, after *TaskID) error { return l.list.Move(id, after) }

// Remove removes a task (a concurrent edit elsewhere keeps it: add wins).
// Errors: ErrTaskNotFound, ErrTaskListClosed.
func (l *TaskList) Remove(id TaskID) error { return l.list.Remove(id) }

// AddWriter lets agent write to the list. Only the list's creator may
// call it. Errors: ErrNotWriter (not the creator), ErrTaskInvalid,
// ErrTaskListClosed, ErrTaskStoreFailed.
func (l *TaskList) AddWriter(agent AgentID) error { return l.list.AddWriter(agent) }

// RemoveWriter revokes agent's write access (effective for what agent
// does after it received the revocation). Only the creator may call it;
// errors as AddWriter.
func (l *TaskList) RemoveWriter(agent AgentID) error { return l.list.RemoveWriter(agent) }

// SetOpen lets every agent write (open) or only the creator and its
// writers. Only the creator may call it; errors as AddWriter.
func (l *TaskList) SetOpen(open bool) error { return l.list.SetOpen(open) }

// Access returns who may write to the list, as this replica knows it.
func (l *TaskList) Access() TaskListAccess { return l.list.Access() }

// Snapshot returns the live tasks in list order; the caller owns the slice.
func (l *TaskList) Snapshot() []Task { return l.list.Snapshot() }

// Task returns one task. Errors: ErrTaskNotFound.
func (l *TaskList) Task(id TaskID) (Task, error) { return l.list.Task(id) }

// Changes returns the stream of applied changes (local and remote). It is
// bounded: changes that find it full are dropped and counted in Stats.
// It is closed by Leave and by the agent's Close.
func (l *TaskList) Changes() <-chan TaskChange { return l.list.Changes() }

// Stats returns the list's counters.
func (l *TaskList) Stats() TaskListStats { return l.list.Stats() }

// Leave stops syncing the list and closes it; its state stays persisted,
// so JoinTaskList resumes from it. Calling it again returns nil.
func (l *TaskList) Leave() error {
	a := l.agent
	a.lists.mu.Lock()
	if a.lists.open[l.ID()] != l {
		a.lists.mu.Unlock()
		return nil
	}
	delete(a.lists.open, l.ID())
	a.lists.mu.Unlock()
	l.unsubscribe()
	return l.list.Close()
}

// rand returns the agent's randomness source.
func (a *Agent) rand() io.Reader {
	if a.rnd != nil {
		return a.rnd
	}
	return rand.Reader
}
