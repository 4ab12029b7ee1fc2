package tasklist

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/saorsa-labs/x0x-go/core/crdt"
	"github.com/saorsa-labs/x0x-go/core/identity"
)

// The rules below are checked on every received delta, against the state
// its causal past (its version vector) describes, never against deltas
// concurrent with it: so every replica accepts or rejects a delta alike,
// whatever order deltas arrive in. The local API checks the same rules
// before it signs, so an honest delta is never rejected.

// writersSnap is the list's access state after the creator's delta seq.
type writersSnap struct {
	seq     uint64
	writers map[identity.AgentID]bool
	open    bool
}

// mark is a claim or completion of a task, made by agent's delta seq at
// ts. A completion also names the seq of the agent's claim that won in
// its causal past (state transfers keep it, statesync.go).
type mark struct {
	done  bool
	agent identity.AgentID
	seq   uint64
	ts    crdt.Timestamp
	wins  uint64
}

// elem is the check-set element the mark added.
func (m *mark) elem() checkElem {
	k := uint8(elemClaimed)
	if m.done {
		k = elemDone
	}
	return checkElem{Kind: k, Agent: agentBytes(m.agent), Wall: m.ts.Wall, Logical: m.ts.Logical}
}

// reopenRec is a reopen by author's delta seq, which removed every claim
// and completion its causal past (deps) held.
type reopenRec struct {
	author identity.AgentID
	seq    uint64
	deps   crdt.VersionVector
}

// covers reports whether version vector vv includes author's delta seq.
func covers(vv crdt.VersionVector, author identity.AgentID, seq uint64) bool {
	return vv.Get(author) >= seq
}

// writersAt returns the access state as of the creator's delta seq (nil
// before the list's creation); l.mu held.
func (l *List) writersAt(seq uint64) *writersSnap {
	i, found := slices.BinarySearchFunc(l.access, seq, func(s writersSnap, seq uint64) int {
		switch {
		case s.seq < seq:
			return -1
		case s.seq > seq:
			return 1
		}
		return 0
	})
	if !found {
		i--
	}
	if i < 0 {
		return nil
	}
	return &l.access[i]
}

// mayWrite reports whether d's author could write as of d's causal past;
// l.mu held.
func (l *List) mayWrite(d *delta) error {
	if d.kind == OpInit {
		if NewListID(d.author, *d.name, [16]byte(d.nonce)) != l.id {
			return fmt.Errorf("%w: %s did not create this list", errNotWriter, d.author.Short())
		}
		return nil
	}
	if l.creator.IsZero() || !covers(d.deps, l.creator, 1) {
		return fmt.Errorf("%w: the list's creation is not in the delta's past", errNotWriter)
	}
	if l.writers != nil {
		if d.kind == OpWriters || !l.writers(d.author) {
			return fmt.Errorf("%w: %s is not a member of the list's group", errNotWriter, d.author.Short())
		}
		return nil
	}
	if d.author == l.creator {
		return nil
	}
	if d.kind == OpWriters {
		return fmt.Errorf("%w: only the creator changes writers", errNotWriter)
	}
	if d.kind == OpInit {
		return fmt.Errorf("%w: the list exists", errNotWriter)
	}
	if s := l.writersAt(d.deps.Get(l.creator)); s == nil || !(s.open || s.writers[d.author]) {
		return fmt.Errorf("%w: %s is not a writer", errNotWriter, d.author.Short())
	}
	return nil
}

// checkTime requires d's timestamp to be after every delta it depends on
// (so no delta can be backdated before what its author had seen) and, for
// a received delta, at most the HLC drift ahead of this replica's clock
// (so no field can be pinned far in the future); l.mu held. A dependency
// this replica skipped as superseded (statesync.go) is judged by the
// latest earlier delta of its author it holds: a lower bound of its time,
// so an honest delta is never refused for it.
func (l *List) checkTime(d *delta, mode applyMode) error {
	for _, r := range d.deps.Replicas() {
		s := d.deps.Get(r)
		if s == 0 {
			continue
		}
		ts, ok := l.logs[r].stamp(s)
		if !ok {
			if s > l.vv.Get(r) || !l.skip.has(r, s) {
				return fmt.Errorf("%w: dependency %s seq %d unknown", errBadTime, r.Short(), s)
			}
			if ts, ok = l.logs[r].floor(s); !ok {
				continue
			}
		}
		if d.ts.Compare(ts) <= 0 {
			return fmt.Errorf("%w: not after its dependency %s seq %d", errBadTime, r.Short(), s)
		}
	}
	if mode == modeRemote {
		now := l.clk.Now()
		if d.ts.Wall > uint64(now.Add(crdt.DefaultMaxDrift).UnixMilli()) {
			return fmt.Errorf("%w: %s ahead of this replica's clock", errBadTime, time.UnixMilli(int64(d.ts.Wall)).Sub(now))
		}
	}
	return nil
}

// marksAsOf returns the claims and completions of t that deps sees and no
// reopen deps sees has removed, each sorted earliest first.
func marksAsOf(t *taskState, deps crdt.VersionVector) (claims, dones []mark) {
	for _, m := range t.marks {
		if !covers(deps, m.agent, m.seq) {
			continue
		}
		removed := false
		for _, r := range t.reopens {
			if covers(deps, r.author, r.seq) && covers(r.deps, m.agent, m.seq) {
				removed = true
				break
			}
		}
		if removed {
			continue
		}
		if m.done {
			dones = append(dones, m)
		} else {
			claims = append(claims, m)
		}
	}
	byTime := func(a, b mark) int { return a.ts.Compare(b.ts) }
	slices.SortFunc(claims, byTime)
	slices.SortFunc(dones, byTime)
	return claims, dones
}

// checkTaskRules applies the per-task rules to d on task t; l.mu held:
// the task's creation is in d's past; a claim needs a task that is
// neither done nor claimed by another agent; a completion needs the
// author to hold the winning (earliest) claim of a task not yet done. For
// a completion it returns the seq of that claim.
func checkTaskRules(d *delta, t *taskState) (uint64, error) {
	if !covers(d.deps, t.createdBy, t.createdSeq) {
		return 0, fmt.Errorf("%w: task %s is not in the delta's past", errUnknownTask, t.id.Short())
	}
	if d.kind != OpClaim && d.kind != OpComplete {
		return 0, nil
	}
	claims, dones := marksAsOf(t, d.deps)
	if len(dones) > 0 {
		return 0, fmt.Errorf("%w: %v of task %s, done by %s", errForbidden, d.kind, t.id.Short(), dones[0].agent.Short())
	}
	if d.kind == OpClaim {
		for _, c := range claims {
			if c.agent != d.author {
				return 0, fmt.Errorf("%w: claim of task %s, held by %s", errForbidden, t.id.Short(), c.agent.Short())
			}
		}
		return 0, nil
	}
	if len(claims) == 0 || claims[0].agent != d.author {
		return 0, fmt.Errorf("%w: completion of task %s by an agent without the winning claim", errForbidden, t.id.Short())
	}
	return claims[0].seq, nil
}

// recordRules keeps what the rules need from an applied delta; l.mu
// held. late marks a skipped delta received later.
func (l *List) recordRules(d *delta, t *taskState, late bool) {
	switch d.kind {
	case OpInit:
		l.creator = d.author
		l.access = append(l.access, writersSnap{seq: d.seq, writers: map[identity.AgentID]bool{}, open: d.open != nil && *d.open})
	case OpWriters:
		if late {
			l.insertAccess(d)
		} else {
			l.access = append(l.access, writersNext(l.access[len(l.access)-1], d))
		}
	case OpClaim, OpComplete:
		t.marks = append(t.marks, mark{done: d.kind == OpComplete, agent: d.author, seq: d.seq, ts: d.ts, wins: d.wins})
	case OpReopen:
		t.reopens = append(t.reopens, reopenRec{author: d.author, seq: d.seq, deps: d.deps.Clone()})
	}
}

// writersNext is the access state after the writers delta d.
func writersNext(prev writersSnap, d *delta) writersSnap {
	next := writersSnap{seq: d.seq, writers: make(map[identity.AgentID]bool, len(prev.writers)+1), open: prev.open}
	for a := range prev.writers {
		next.writers[a] = true
	}
	if d.grant != nil {
		if *d.grant {
			next.writers[*d.agent] = true
		} else {
			delete(next.writers, *d.agent)
		}
	}
	if d.open != nil {
		next.open = *d.open
	}
	return next
}

// insertAccess inserts the access change of the creator's writers delta
// d, skipped and received late, and rebuilds the access states after it
// from their deltas; l.mu held.
func (l *List) insertAccess(d *delta) {
	i, _ := slices.BinarySearchFunc(l.access, d.seq, func(s writersSnap, seq uint64) int { return cmp.Compare(s.seq, seq) })
	if i == 0 {
		return // unreachable: the creation (seq 1) is never skipped
	}
	rebuilt := []writersSnap{writersNext(l.access[i-1], d)}
	err := l.withDeltas(func(get func(authorSeq) ([]byte, error)) error {
		for _, s := range l.access[i:] {
			raw, err := get(authorSeq{l.creator, s.seq})
			if err != nil {
				return err
			}
			w, err := decodeDelta(raw)
			if err != nil {
				return err
			}
			rebuilt = append(rebuilt, writersNext(rebuilt[len(rebuilt)-1], w))
		}
		return nil
	})
	if err != nil {
		l.log.Error("tasklist: rebuilding the access history", "err", err)
		return
	}
	l.access = append(l.access[:i], rebuilt...)
}
