package tasklist

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/saorsa-labs/x0x-go/core/crdt"
	"github.com/saorsa-labs/x0x-go/core/identity"
)

// begin checks that local operations are allowed; l.mu held.
func (l *List) begin() error {
	if l.closed {
		return ErrClosed
	}
	if l.failed != nil {
		return l.failed
	}
	return l.writable()
}

// writable reports whether this agent may write now (the receipt rule of
// mayWrite, for the delta it would make); l.mu held.
func (l *List) writable() error {
	switch {
	case l.creator.IsZero():
		return fmt.Errorf("%w: the list's creation has not been received yet", ErrNotWriter)
	case l.writers != nil:
		if !l.writers(l.selfID) {
			return fmt.Errorf("%w: %s is not a member of the list's group", ErrNotWriter, l.selfID.Short())
		}
		return nil
	case l.creator == l.selfID:
		return nil
	}
	if s := l.access[len(l.access)-1]; !s.open && !s.writers[l.selfID] {
		return fmt.Errorf("%w: %s has not been granted access by the creator %s", ErrNotWriter, l.selfID.Short(), l.creator.Short())
	}
	return nil
}

// AddWriter lets agent write to the list; RemoveWriter revokes that (it
// takes effect for the agent's operations made after it saw the
// revocation: see the package doc). Only the list's creator may call
// them. Errors: ErrNotWriter, ErrInvalid (over MaxWriters, or the
// creator itself), ErrClosed, ErrStoreFailed.
func (l *List) AddWriter(agent identity.AgentID) error { return l.setWriter(agent, true) }

// RemoveWriter revokes agent's write access; see AddWriter.
func (l *List) RemoveWriter(agent identity.AgentID) error { return l.setWriter(agent, false) }

func (l *List) setWriter(agent identity.AgentID, grant bool) error {
	return l.local(func() error {
		if l.writers != nil {
			return fmt.Errorf("%w: the writers of a group's list are the group's members", ErrNotWriter)
		}
		if l.creator != l.selfID {
			return fmt.Errorf("%w: only the creator %s changes writers", ErrNotWriter, l.creator.Short())
		}
		if agent == l.selfID {
			return fmt.Errorf("%w: the creator is always a writer", ErrInvalid)
		}
		cur := l.access[len(l.access)-1]
		if cur.writers[agent] == grant {
			return nil
		}
		if grant && len(cur.writers) >= MaxWriters {
			return fmt.Errorf("%w: over %d writers", ErrInvalid, MaxWriters)
		}
		_, err := l.commitLocal(&bodyWire{Kind: uint8(OpWriters), Agent: agent[:], Grant: &grant}, l.hlc.Now(), nil, nil)
		return err
	})
}

// SetOpen lets every agent write to the list (open) or only the creator
// and its granted writers. Only the creator may call it. Errors:
// ErrNotWriter, ErrClosed, ErrStoreFailed.
func (l *List) SetOpen(open bool) error {
	return l.local(func() error {
		if l.writers != nil {
			return fmt.Errorf("%w: the writers of a group's list are the group's members", ErrNotWriter)
		}
		if l.creator != l.selfID {
			return fmt.Errorf("%w: only the creator %s opens or closes the list", ErrNotWriter, l.creator.Short())
		}
		if l.access[len(l.access)-1].open == open {
			return nil
		}
		_, err := l.commitLocal(&bodyWire{Kind: uint8(OpWriters), Open: &open}, l.hlc.Now(), nil, nil)
		return err
	})
}

// Access describes who may write to a list, as this replica knows it.
type Access struct {
	// Creator is the list's creator (zero until its creation is received).
	Creator identity.AgentID
	// Writers are the agents the creator granted access, sorted.
	Writers []identity.AgentID
	// Open is true when every agent may write.
	Open bool
}

// Access returns who may write to the list now; the caller owns it.
func (l *List) Access() Access {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := Access{Creator: l.creator}
	if len(l.access) > 0 {
		cur := l.access[len(l.access)-1]
		a.Open = cur.open
		for w := range cur.writers {
			a.Writers = append(a.Writers, w)
		}
		slices.SortFunc(a.Writers, func(x, y identity.AgentID) int { return bytes.Compare(x[:], y[:]) })
	}
	return a
}

// liveTask returns task id if it exists and is not removed; l.mu held.
func (l *List) liveTask(id TaskID) (*taskState, error) {
	t := l.tasks[id]
	if t == nil || !t.alive() {
		return nil, fmt.Errorf("%w: %s", ErrTaskNotFound, id.Short())
	}
	return t, nil
}

// commitLocal signs the local delta described by b (whose CRDT parts have
// been applied to the local replicas already), persists it, applies the
// rest and queues its broadcast; l.mu held (or Open before it returns).
// A failure marks the list failed: its memory state may be ahead of the
// store.
func (l *List) commitLocal(b *bodyWire, ts crdt.Timestamp, order *crdt.RGADelta[TaskID], check *crdt.ORSetDelta[checkElem]) (*delta, error) {
	b.List = l.id
	b.Seq = l.vv.Get(l.selfID) + 1
	b.Deps = l.vv.Clone()
	b.Wall, b.Logical = ts.Wall, ts.Logical
	d, err := encodeDelta(l.self, b, order, check)
	if err != nil {
		l.failed = fmt.Errorf("%w: %v", ErrStoreFailed, err)
		return nil, err
	}
	if t := l.tasks[d.task]; t != nil && d.kind == OpComplete {
		d.wins, _ = checkTaskRules(d, t) // the claim that wins for it, as receivers record it
	}
	// The skips it relies on are logged before it.
	es := append(l.commitAnnouncements(d), logEntry{d: d})
	if l.store != nil {
		var ck []byte
		if l.skipDirty {
			ck = l.ckRecord()
			l.skipDirty = false
		}
		if err := l.store.appendDeltas(l.id, l.logLen-uint64(len(es)-1), es, b.Name, ck); err != nil {
			l.failed = fmt.Errorf("%w: %v", ErrStoreFailed, err)
			return nil, l.failed
		}
	}
	l.logLen++
	if err := l.apply(d, modeLocal, judgement{}); err != nil {
		l.failed = fmt.Errorf("%w: applying own delta: %v", ErrStoreFailed, err)
		return nil, l.failed
	}
	l.nameDirty = false
	l.out = append(l.out, outMsg{broadcast: d.raw})
	l.maybeSnapshot()
	return d, nil
}

// local runs a local operation: it takes l.mu, checks the list is usable,
// runs op, and sends what op queued once the lock is released.
func (l *List) local(op func() error) error {
	l.mu.Lock()
	err := l.begin()
	if err == nil {
		err = op()
	}
	out := l.takeOut()
	l.mu.Unlock()
	l.send(out)
	return err
}

// Add appends a task with the given title (at most MaxTitleLen bytes) and
// description (at most MaxDescriptionLen bytes) at the end of the list and
// returns its ID. The operation is durable before Add returns. Errors:
// ErrInvalid, ErrClosed, ErrStoreFailed.
func (l *List) Add(title, description string) (TaskID, error) {
	if err := checkText(&title, MaxTitleLen, "title"); err != nil {
		return TaskID{}, err
	}
	if err := checkText(&description, MaxDescriptionLen, "description"); err != nil {
		return TaskID{}, err
	}
	var id TaskID
	err := l.local(func() error {
		ts := l.hlc.Now()
		id = NewTaskID(l.id, l.selfID, l.vv.Get(l.selfID)+1)
		_, od, err := l.rga.InsertAt(l.rga.Len(), id)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		cd, err := crdt.NewORSet[checkElem](l.selfID).Add(aliveElem)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		_, err = l.commitLocal(&bodyWire{Kind: uint8(OpAdd), Task: &id, Title: &title, Desc: &description}, ts, od, cd)
		return err
	})
	if err != nil {
		return TaskID{}, err
	}
	return id, nil
}

// touch re-adds the task's existence element (an edit keeps a
// concurrently removed task: add wins) and joins extra into the delta.
func touch(t *taskState, extra ...checkElem) (*crdt.ORSetDelta[checkElem], error) {
	cd, err := t.check.Add(aliveElem)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	for _, e := range extra {
		x, err := t.check.Add(e)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if err := cd.Join(x); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	return cd, nil
}

// Update changes the fields set in u (last writer wins per field). An
// Update with no field set does nothing. Errors: ErrTaskNotFound,
// ErrInvalid (field limits), ErrClosed, ErrStoreFailed.
func (l *List) Update(id TaskID, u Update) error {
	if u.Title == nil && u.Description == nil && u.Assignee == nil && u.Priority == nil {
		return nil
	}
	if err := checkText(u.Title, MaxTitleLen, "title"); err != nil {
		return err
	}
	if err := checkText(u.Description, MaxDescriptionLen, "description"); err != nil {
		return err
	}
	b := &bodyWire{Kind: uint8(OpUpdate), Task: &id, Title: u.Title, Desc: u.Description, Priority: u.Priority}
	if u.Assignee != nil {
		a := *u.Assignee
		b.Assignee = a[:]
	}
	return l.local(func() error {
		t, err := l.liveTask(id)
		if err != nil {
			return err
		}
		ts := l.hlc.Now()
		cd, err := touch(t)
		if err != nil {
			return err
		}
		_, err = l.commitLocal(b, ts, nil, cd)
		return err
	})
}

// Claim claims task id for this agent. Claiming a task this agent already
// holds does nothing. Concurrent claims by several agents are all kept;
// every replica picks the same winner (earliest claim). Errors:
// ErrTaskNotFound, ErrTaskDone, ErrClaimedByOther (another agent's claim
// is known here: this claim could not win), ErrClosed, ErrStoreFailed.
func (l *List) Claim(id TaskID) error {
	return l.local(func() error {
		t, err := l.liveTask(id)
		if err != nil {
			return err
		}
		v := l.view(t)
		switch {
		case v.State == Done:
			return fmt.Errorf("%w: %s (done by %s)", ErrTaskDone, id.Short(), v.Claimant.Short())
		case v.State == Claimed && v.Claimant == l.selfID:
			return nil
		case v.State == Claimed:
			return fmt.Errorf("%w: %s (held by %s)", ErrClaimedByOther, id.Short(), v.Claimant.Short())
		}
		return l.checkOp(t, OpClaim, elemClaimed)
	})
}

// Complete marks task id done by this agent, which must hold the winning
// claim. Errors: ErrTaskNotFound, ErrTaskDone, ErrNotClaimed,
// ErrClaimedByOther, ErrClosed, ErrStoreFailed.
func (l *List) Complete(id TaskID) error {
	return l.local(func() error {
		t, err := l.liveTask(id)
		if err != nil {
			return err
		}
		v := l.view(t)
		switch {
		case v.State == Done:
			return fmt.Errorf("%w: %s (done by %s)", ErrTaskDone, id.Short(), v.Claimant.Short())
		case v.State == Empty:
			return fmt.Errorf("%w: %s", ErrNotClaimed, id.Short())
		case v.Claimant != l.selfID:
			return fmt.Errorf("%w: %s (held by %s)", ErrClaimedByOther, id.Short(), v.Claimant.Short())
		}
		return l.checkOp(t, OpComplete, elemDone)
	})
}

// checkOp commits a claim or completion by this agent; l.mu held.
func (l *List) checkOp(t *taskState, kind OpKind, elem uint8) error {
	ts := l.hlc.Now()
	cd, err := touch(t, checkElem{Kind: elem, Agent: agentBytes(l.selfID), Wall: ts.Wall, Logical: ts.Logical})
	if err != nil {
		return err
	}
	self := l.selfID
	_, err = l.commitLocal(&bodyWire{Kind: uint8(kind), Task: &t.id, Agent: self[:]}, ts, nil, cd)
	return err
}

// Reopen clears the claims and completions this replica has seen on task
// id (a concurrent claim it has not seen survives). Reopening an empty
// task does nothing. Errors: ErrTaskNotFound, ErrClosed, ErrStoreFailed.
func (l *List) Reopen(id TaskID) error {
	return l.local(func() error {
		t, err := l.liveTask(id)
		if err != nil {
			return err
		}
		var seen []checkElem
		for _, e := range t.check.Elements() {
			if e.Kind != elemAlive {
				seen = append(seen, e)
			}
		}
		if len(seen) == 0 {
			return nil
		}
		ts := l.hlc.Now()
		cd := crdt.NewORSetDelta[checkElem]()
		for _, e := range seen {
			if err := cd.Join(t.check.Remove(e)); err != nil {
				return fmt.Errorf("%w: %v", ErrInvalid, err)
			}
		}
		alive, err := touch(t)
		if err != nil {
			return err
		}
		if err := cd.Join(alive); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		self := l.selfID
		_, err = l.commitLocal(&bodyWire{Kind: uint8(OpReopen), Task: &id, Agent: self[:]}, ts, nil, cd)
		return err
	})
}

// Move puts task id right after task *after, or first when after is nil.
// Errors: ErrTaskNotFound (either task), ErrInvalid (after == id),
// ErrClosed, ErrStoreFailed.
func (l *List) Move(id TaskID, after *TaskID) error {
	if after != nil && *after == id {
		return fmt.Errorf("%w: task %s moved after itself", ErrInvalid, id.Short())
	}
	return l.local(func() error {
		t, err := l.liveTask(id)
		if err != nil {
			return err
		}
		var anchor crdt.Dot
		if after != nil {
			a, err := l.liveTask(*after)
			if err != nil {
				return err
			}
			anchor = a.insert
		}
		ts := l.hlc.Now()
		od, err := l.rga.Move(t.insert, anchor)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		cd, err := touch(t)
		if err != nil {
			return err
		}
		_, err = l.commitLocal(&bodyWire{Kind: uint8(OpMove), Task: &id}, ts, od, cd)
		return err
	})
}

// Remove removes task id. An edit, claim or move made concurrently on
// another replica keeps it (add wins). Errors: ErrTaskNotFound, ErrClosed,
// ErrStoreFailed.
func (l *List) Remove(id TaskID) error {
	return l.local(func() error {
		t, err := l.liveTask(id)
		if err != nil {
			return err
		}
		ts := l.hlc.Now()
		cd := t.check.Remove(aliveElem)
		_, err = l.commitLocal(&bodyWire{Kind: uint8(OpRemove), Task: &id}, ts, nil, cd)
		return err
	})
}

// Snapshot returns the live tasks in list order; the caller owns the
// slice.
func (l *List) Snapshot() []Task {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Task, 0, l.rga.Len())
	for _, id := range l.rga.All() {
		if t := l.tasks[id]; t != nil && t.alive() {
			out = append(out, l.view(t))
		}
	}
	return out
}

// Task returns task id. Errors: ErrTaskNotFound.
func (l *List) Task(id TaskID) (Task, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, err := l.liveTask(id)
	if err != nil {
		return Task{}, err
	}
	return l.view(t), nil
}

// view computes a task's value; l.mu held.
func (l *List) view(t *taskState) Task {
	v := Task{
		ID: t.id, Title: t.title.Value(), Description: t.desc.Value(),
		Assignee: t.assignee.Value(), Priority: t.priority.Value(),
		CreatedBy: t.createdBy, CreatedAt: time.UnixMilli(int64(t.createdAt.Wall)),
	}
	var claims, dones []checkElem
	for _, e := range t.check.Elements() {
		switch e.Kind {
		case elemClaimed:
			claims = append(claims, e)
		case elemDone:
			dones = append(dones, e)
		}
	}
	byTime := func(a, b checkElem) int { return a.ts().Compare(b.ts()) }
	slices.SortFunc(claims, byTime)
	slices.SortFunc(dones, byTime)
	for _, c := range claims {
		if a := identity.AgentID(c.Agent); !slices.Contains(v.Claims, a) {
			v.Claims = append(v.Claims, a)
		}
	}
	switch {
	case len(dones) > 0:
		v.State, v.Claimant = Done, identity.AgentID(dones[0].Agent)
	case len(claims) > 0:
		v.State, v.Claimant = Claimed, v.Claims[0]
	}
	return v
}
