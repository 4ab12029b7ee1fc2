package x0x

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/pubsub"
	"github.com/saorsa-labs/x0x-go/core/tasklist"
)

// TaskListID names a task list (BLAKE3 of its creator, name and a nonce).
type TaskListID [32]byte

// Limits on task-list strings, in bytes of UTF-8. A longer one is refused
// with an error matching ErrPayloadTooLarge (and, as before these limits
// had their own error, ErrInvalidArgument).
const (
	// MaxTaskListName is the longest list name.
	MaxTaskListName = tasklist.MaxNameLen
	// MaxTaskTitle is the longest task title.
	MaxTaskTitle = tasklist.MaxTitleLen
	// MaxTaskDescription is the longest task description.
	MaxTaskDescription = tasklist.MaxDescriptionLen
)

// String returns the ID in lowercase hex.
func (id TaskListID) String() string { return hex.EncodeToString(id[:]) }

// TaskID names a task within a list.
type TaskID [32]byte

// String returns the ID in lowercase hex.
func (id TaskID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits of the ID.
func (id TaskID) Short() string { return hex.EncodeToString(id[:4]) }

// TaskState is a task's checkbox.
type TaskState uint8

// Task states.
const (
	// TaskEmpty: nobody claimed the task (or it was reopened).
	TaskEmpty TaskState = iota
	// TaskClaimed: an agent claimed it (Task.Claimant).
	TaskClaimed
	// TaskDone: the claimant completed it.
	TaskDone
)

// String returns "empty", "claimed", "done" or "invalid".
func (s TaskState) String() string {
	switch s {
	case TaskEmpty:
		return "empty"
	case TaskClaimed:
		return "claimed"
	case TaskDone:
		return "done"
	}
	return "invalid"
}

// TaskOp is the kind of operation a TaskChange reports.
type TaskOp uint8

// Task operations.
const (
	TaskOpInit     TaskOp = iota + 1 // the list was created
	TaskOpAdd                        // a task was added
	TaskOpUpdate                     // a task's fields changed
	TaskOpClaim                      // a task was claimed
	TaskOpComplete                   // a task was completed
	TaskOpReopen                     // a task was reopened
	TaskOpMove                       // a task was moved
	TaskOpRemove                     // a task was removed
	TaskOpWriters                    // write access changed (grants, revocations, open/closed)
)

// String returns the operation's name ("add", "claim", ...; "invalid" for
// an unknown value).
func (k TaskOp) String() string { return k.tasklist().String() }

func (k TaskOp) tasklist() tasklist.OpKind {
	switch k {
	case TaskOpInit:
		return tasklist.OpInit
	case TaskOpAdd:
		return tasklist.OpAdd
	case TaskOpUpdate:
		return tasklist.OpUpdate
	case TaskOpClaim:
		return tasklist.OpClaim
	case TaskOpComplete:
		return tasklist.OpComplete
	case TaskOpReopen:
		return tasklist.OpReopen
	case TaskOpMove:
		return tasklist.OpMove
	case TaskOpRemove:
		return tasklist.OpRemove
	case TaskOpWriters:
		return tasklist.OpWriters
	}
	return 0
}

// taskOpOf converts a tasklist operation (0 for one this package does not
// know).
func taskOpOf(k tasklist.OpKind) TaskOp {
	for op := TaskOpInit; op <= TaskOpWriters; op++ {
		if op.tasklist() == k {
			return op
		}
	}
	return 0
}

// Task is one task as a snapshot shows it. It is a value: the caller owns
// it.
type Task struct {
	// ID names the task.
	ID TaskID
	// Title and Description are last-writer-wins fields.
	Title, Description string
	// Assignee is a last-writer-wins field; zero means nobody.
	Assignee AgentID
	// Priority is a last-writer-wins field (0 unless set).
	Priority uint8
	// State is the checkbox.
	State TaskState
	// Claimant is the agent whose claim won (TaskClaimed) or whose
	// completion counts (TaskDone); zero when TaskEmpty.
	Claimant AgentID
	// Claims are the agents holding a claim, winner first (every replica
	// orders them alike).
	Claims []AgentID
	// CreatedBy is the agent that added the task.
	CreatedBy AgentID
	// CreatedAt is the creator's clock at creation.
	CreatedAt time.Time
}

func taskOf(t tasklist.Task) Task {
	var s TaskState
	switch t.State {
	case tasklist.Empty:
		s = TaskEmpty
	case tasklist.Claimed:
		s = TaskClaimed
	case tasklist.Done:
		s = TaskDone
	default:
		s = TaskState(255)
	}
	return Task{ID: TaskID(t.ID), Title: t.Title, Description: t.Description, Assignee: t.Assignee, Priority: t.Priority,
		State: s, Claimant: t.Claimant, Claims: t.Claims, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt}
}

// TaskUpdate names the fields TaskList.Update changes; nil fields stay as
// they are.
type TaskUpdate struct {
	// Title, if not nil, is the new title (at most 1 KiB).
	Title *string
	// Description, if not nil, is the new description (at most 16 KiB).
	Description *string
	// Assignee, if not nil, is the new assignee; the zero AgentID unassigns.
	Assignee *AgentID
	// Priority, if not nil, is the new priority.
	Priority *uint8
}

// TaskChange reports one operation applied to a list, local or remote.
type TaskChange struct {
	// Task is the task concerned (zero for TaskOpInit and TaskOpWriters).
	Task TaskID
	// Author is the agent that made the operation.
	Author AgentID
	// Kind is the operation.
	Kind TaskOp
	// Local is true for operations made through this agent's TaskList.
	Local bool
}

// TaskListAccess says who may write to a list, as this replica knows it.
type TaskListAccess struct {
	// Creator is the list's creator (zero until its creation arrived).
	Creator AgentID
	// Writers are the agents the creator granted access, sorted.
	Writers []AgentID
	// Open is true when every agent may write.
	Open bool
}

// StoredTaskList describes a task list persisted in the data directory.
type StoredTaskList struct {
	// ID names the list.
	ID TaskListID
	// Name is the list's name ("" if not known yet).
	Name string
	// Operations is the number of operations stored.
	Operations int
}

// TaskListOption configures CreateTaskList.
type TaskListOption func(*taskListOptions)

type taskListOptions struct{ open bool }

// OpenToAll creates a list every agent that knows its ID may write to.
// Without it only the creator and the agents it grants (AddWriter) can;
// every member enforces that on every operation it receives.
func OpenToAll() TaskListOption { return func(o *taskListOptions) { o.open = true } }

// TaskListFile is the name, in the data directory, of the store holding
// every task list the agent has joined.
const TaskListFile = "tasklists.db"

// TaskListTopic returns the topic a list's operations travel on.
func TaskListTopic(id TaskListID) string { return "x0x/tasklist/" + hex.EncodeToString(id[:]) }

// ParseTaskListID parses the 64 hex digits of a list ID. Errors match
// ErrInvalidArgument.
func ParseTaskListID(s string) (TaskListID, error) {
	var id TaskListID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, invalidArg("task list ID %q: want 64 hex digits", s)
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
// agent's data directory. Its methods are safe for concurrent use. The
// methods that change the list sign the operation and commit it to disk
// (fsync) before they return; they do not wait for other members.
type TaskList struct {
	agent   *Agent
	list    *tasklist.List
	topic   pubsub.TopicID
	changes fanout[TaskChange]
	done    chan struct{} // closed when pumpChanges ends

	group *Group // the group the list belongs to (nil: none)
	lid   TaskListID

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
// opens it (SetOpen, or the OpenToAll option). It opens the agent's task
// store on first use (local I/O; ctx is checked before). Errors:
// ErrClosed, ErrPayloadTooLarge (a name over MaxTaskListName, 1 KiB; it
// matches ErrInvalidArgument too), ErrInvalidArgument (a name that is not
// UTF-8), ErrCorrupt (a damaged store), ErrStoreFailed, ctx's error.
func (a *Agent) CreateTaskList(ctx context.Context, name string, opts ...TaskListOption) (*TaskList, error) {
	if err := orBackground(ctx).Err(); err != nil {
		return nil, err
	}
	var o taskListOptions
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	var nonce [16]byte
	if _, err := io.ReadFull(a.rand(), nonce[:]); err != nil {
		return nil, fmt.Errorf("x0x: task list nonce: %w", err)
	}
	l, err := a.openTaskList(TaskListID(tasklist.NewListID(a.agent.ID(), name, nonce)), name, nonce, o.open, nil)
	return l, translate(err)
}

// JoinTaskList opens list id: it loads what this agent persisted before
// and catches up from the list's members in the background (changes
// arrive on Changes streams); it does not wait for them. Joining a list
// that is already open returns the open one. Errors: ErrClosed, ErrCorrupt,
// ErrStoreFailed, ctx's error (checked before the store is opened).
//
// Until the list's creation has arrived from a member, writes fail with
// ErrNotWriter; so do they if the creator has not granted this agent
// access to a list that is not open.
func (a *Agent) JoinTaskList(ctx context.Context, id TaskListID) (*TaskList, error) {
	if err := orBackground(ctx).Err(); err != nil {
		return nil, err
	}
	l, err := a.openTaskList(id, "", [16]byte{}, false, nil)
	return l, translate(err)
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
// (joined before, open or not). Errors: ErrClosed, ErrCorrupt.
func (a *Agent) StoredTaskLists() ([]StoredTaskList, error) {
	a.lists.mu.Lock()
	defer a.lists.mu.Unlock()
	st, err := a.taskStoreLocked()
	if err != nil {
		return nil, translate(err)
	}
	lists, err := st.Lists()
	if err != nil {
		return nil, translate(err)
	}
	out := make([]StoredTaskList, len(lists))
	for i, l := range lists {
		out[i] = StoredTaskList{ID: TaskListID(l.ID), Name: l.Name, Operations: l.Deltas}
	}
	return out, nil
}

// openTaskLists returns the open lists.
func (a *Agent) openTaskLists() []*TaskList {
	a.lists.mu.Lock()
	defer a.lists.mu.Unlock()
	out := make([]*TaskList, 0, len(a.lists.open))
	for _, l := range a.lists.open {
		out = append(out, l)
	}
	return out
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

// openTaskList opens list id (creating it if name is set); grp, if not
// nil, is the group the list belongs to: its traffic is sealed with the
// group's epoch keys and its writers are the group's members.
func (a *Agent) openTaskList(id TaskListID, name string, nonce [16]byte, open bool, grp *Group) (*TaskList, error) {
	// openMu serialises opens; mu guards the map only, because pub/sub
	// reports topic events (taskListNeighbour takes mu) from inside
	// Subscribe.
	a.lists.openMu.Lock()
	defer a.lists.openMu.Unlock()
	a.lists.mu.Lock()
	if l, ok := a.lists.open[id]; ok {
		a.lists.mu.Unlock()
		if l.group != grp {
			return nil, invalidArg("task list %s is open in another group (or none)", id)
		}
		return l, nil
	}
	st, err := a.taskStoreLocked()
	a.lists.mu.Unlock()
	if err != nil {
		return nil, err
	}
	l := &TaskList{agent: a, topic: pubsub.TopicIDOf(TaskListTopic(id)), done: make(chan struct{}), group: grp, lid: id}
	l.changes = fanout[TaskChange]{dropped: &a.drops.taskChanges}
	cfg := tasklist.Config{
		ID: tasklist.ListID(id), Name: name, Nonce: nonce, OpenToAll: open, Self: a.agent, Store: st, Clock: a.clk,
		Rand: a.rand(), Transport: listTransport{l}, Logger: a.logger,
	}
	if grp != nil {
		cfg.Writers = func(a AgentID) bool { return grp.core().WasMember(a) }
	}
	inner, err := tasklist.Open(cfg)
	if err != nil {
		return nil, err
	}
	l.list = inner
	go l.pumpChanges(inner.Changes())
	a.lists.mu.Lock()
	if a.lists.closed {
		a.lists.mu.Unlock()
		l.close()
		return nil, ErrClosed
	}
	if a.lists.open == nil {
		a.lists.open = make(map[TaskListID]*TaskList)
	}
	a.lists.open[id] = l
	a.lists.mu.Unlock()
	sub, err := a.overlay.PubSub.SubscribeFunc(TaskListTopic(id), func(d pubsub.Delivery) {
		if p, ok := l.unseal(d.Payload); ok {
			inner.HandleBroadcast(d.Origin, p)
		}
	})
	if err != nil {
		a.lists.mu.Lock()
		delete(a.lists.open, id)
		a.lists.mu.Unlock()
		l.close()
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

// pumpChanges moves the list's changes to its Changes streams until the
// list closes its channel (close waits for it).
func (l *TaskList) pumpChanges(ch <-chan tasklist.Change) {
	defer close(l.done)
	for c := range ch {
		l.changes.publish(TaskChange{Task: TaskID(c.Task), Author: c.Author, Kind: taskOpOf(c.Kind), Local: c.Local})
	}
	l.changes.close()
}

// close closes the replica, waits for the change pump and ends the
// Changes streams.
func (l *TaskList) close() error {
	err := l.list.Close()
	<-l.done
	return err
}

// taskListNeighbour starts a catch-up with a new neighbour of a list's
// topic.
func (a *Agent) taskListNeighbour(ev pubsub.Event) {
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
		if p, ok := l.unseal(msg[len(id):]); ok {
			l.list.HandleDirect(from, p)
		}
	}
}

// seal encrypts a payload of a group's list for the group's members (a
// list of no group sends it as it is).
func (l *TaskList) seal(payload []byte) ([]byte, error) {
	if l.group == nil {
		return payload, nil
	}
	return l.group.core().Seal(l.lid[:], payload, l.agent.rand())
}

// unseal decrypts a received payload of a group's list; ok is false (and
// the payload dropped) if it does not open with a key of the group's
// recent epochs.
func (l *TaskList) unseal(payload []byte) ([]byte, bool) {
	if l.group == nil {
		return payload, true
	}
	p, err := l.group.core().Open(l.lid[:], payload)
	if err != nil {
		l.agent.logger.Debug("x0x: group task-list payload dropped", "list", l.ID(), "err", err)
		return nil, false
	}
	return p, true
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
		errs = append(errs, l.close())
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
	payload, err := t.l.seal(payload)
	if err != nil {
		return err
	}
	_, err = t.l.agent.overlay.Publish(TaskListTopic(t.l.ID()), payload)
	return err
}

func (t listTransport) Send(peer identity.PeerID, payload []byte) error {
	payload, err := t.l.seal(payload)
	if err != nil {
		return err
	}
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
func (l *TaskList) ID() TaskListID { return TaskListID(l.list.ID()) }

// Name returns the list's name ("" until the creator's first operation has
// been received).
func (l *TaskList) Name() string { return l.list.Name() }

// Add appends a task and returns its ID. Errors: ErrNotWriter,
// ErrPayloadTooLarge (a title over MaxTaskTitle, 1 KiB, or a description
// over MaxTaskDescription, 16 KiB; it matches ErrInvalidArgument too),
// ErrInvalidArgument (a title or description that is not UTF-8),
// ErrClosed, ErrStoreFailed.
func (l *TaskList) Add(title, description string) (TaskID, error) {
	id, err := l.list.Add(title, description)
	return TaskID(id), translate(err)
}

// Update changes the fields set in u. Errors: ErrTaskNotFound,
// ErrNotWriter, ErrPayloadTooLarge (a field over its limit, as for Add),
// ErrInvalidArgument, ErrClosed, ErrStoreFailed.
func (l *TaskList) Update(id TaskID, u TaskUpdate) error {
	return translate(l.list.Update(tasklist.TaskID(id), tasklist.Update{
		Title: u.Title, Description: u.Description, Assignee: u.Assignee, Priority: u.Priority,
	}))
}

// Claim claims the task for this agent. Claims made concurrently by several
// agents are all kept (Task.Claims) and every replica picks the same winner
// (Task.Claimant). Errors: ErrTaskNotFound, ErrTaskDone (reopen it first),
// ErrClaimedByOther (this replica already sees another agent's claim),
// ErrNotWriter, ErrClosed, ErrStoreFailed.
func (l *TaskList) Claim(id TaskID) error { return translate(l.list.Claim(tasklist.TaskID(id))) }

// Complete marks a task this agent claimed as done. Errors:
// ErrTaskNotFound, ErrTaskNotClaimed, ErrClaimedByOther, ErrNotWriter,
// ErrClosed, ErrStoreFailed.
func (l *TaskList) Complete(id TaskID) error { return translate(l.list.Complete(tasklist.TaskID(id))) }

// Reopen makes a claimed or done task empty again. Errors:
// ErrTaskNotFound, ErrNotWriter, ErrClosed, ErrStoreFailed.
func (l *TaskList) Reopen(id TaskID) error { return translate(l.list.Reopen(tasklist.TaskID(id))) }

// Move puts task id right after task after, or first when after is nil.
// Errors: ErrTaskNotFound (either task), ErrNotWriter, ErrClosed,
// ErrStoreFailed.
func (l *TaskList) Move(id TaskID, after *TaskID) error {
	var at *tasklist.TaskID
	if after != nil {
		a := tasklist.TaskID(*after)
		at = &a
	}
	return translate(l.list.Move(tasklist.TaskID(id), at))
}

// Remove removes a task (a concurrent edit elsewhere keeps it: add wins).
// Errors: ErrTaskNotFound, ErrNotWriter, ErrClosed, ErrStoreFailed.
func (l *TaskList) Remove(id TaskID) error { return translate(l.list.Remove(tasklist.TaskID(id))) }

// AddWriter lets agent write to the list. Only the list's creator may
// call it. Errors: ErrNotWriter (not the creator), ErrInvalidArgument,
// ErrClosed, ErrStoreFailed.
func (l *TaskList) AddWriter(agent AgentID) error { return translate(l.list.AddWriter(agent)) }

// RemoveWriter revokes agent's write access (effective for what agent
// does after it received the revocation). Only the creator may call it;
// errors as AddWriter.
func (l *TaskList) RemoveWriter(agent AgentID) error { return translate(l.list.RemoveWriter(agent)) }

// SetOpen lets every agent write (open) or only the creator and its
// writers. Only the creator may call it; errors as AddWriter.
func (l *TaskList) SetOpen(open bool) error { return translate(l.list.SetOpen(open)) }

// Access returns who may write to the list, as this replica knows it.
func (l *TaskList) Access() TaskListAccess {
	acc := l.list.Access()
	return TaskListAccess{Creator: acc.Creator, Writers: acc.Writers, Open: acc.Open}
}

// Snapshot returns the live tasks in list order; the caller owns the slice.
func (l *TaskList) Snapshot() []Task {
	tasks := l.list.Snapshot()
	out := make([]Task, len(tasks))
	for i, t := range tasks {
		out[i] = taskOf(t)
	}
	return out
}

// Task returns one task. Errors: ErrTaskNotFound, ErrClosed.
func (l *TaskList) Task(id TaskID) (Task, error) {
	t, err := l.list.Task(tasklist.TaskID(id))
	if err != nil {
		return Task{}, translate(err)
	}
	return taskOf(t), nil
}

// Changes opens a stream of the changes applied to the list from now on,
// local and remote (open it, then take a Snapshot, to follow the list from
// that snapshot on). Each call opens an independent stream. It ends (Next
// returns what was buffered, then ErrClosed) when the list is left or the
// agent closed. Errors: ErrClosed, *ConfigError (a bad StreamOption).
func (l *TaskList) Changes(opts ...StreamOption) (*Stream[TaskChange], error) {
	return l.changes.open(opts)
}

// Leave stops syncing the list and closes it, ending its Changes streams;
// its state stays persisted, so JoinTaskList resumes from it. Calling it
// again returns nil.
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
	return translate(l.close())
}

// rand returns the agent's randomness source.
func (a *Agent) rand() io.Reader {
	if a.rnd != nil {
		return a.rnd
	}
	return rand.Reader
}
