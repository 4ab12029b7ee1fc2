package tasklist

import (
	"errors"
	"fmt"
	"slices"

	"github.com/saorsa-labs/x0x-go/core/crdt"
	"github.com/saorsa-labs/x0x-go/core/identity"
)

// Reasons a signed, well-formed delta is rejected (all wrap ErrRejected).
var (
	errUnknownAuthor = fmt.Errorf("%w: author's key is unknown", ErrRejected)
	errWrongList     = fmt.Errorf("%w: delta for another list", ErrRejected)
	errWrongAgent    = fmt.Errorf("%w: operation made for another agent", ErrRejected)
	errUnknownTask   = fmt.Errorf("%w: unknown task or position", ErrRejected)
	errInvalidOp     = fmt.Errorf("%w: invalid operation", ErrRejected)
	errNotWriter     = fmt.Errorf("%w: author may not write to the list", ErrRejected)
	errBadTime       = fmt.Errorf("%w: timestamp out of bounds", ErrRejected)
	errForbidden     = fmt.Errorf("%w: operation forbidden by the task's state", ErrRejected)
)

// applyMode says where a delta comes from.
type applyMode uint8

const (
	modeLocal  applyMode = iota + 1 // made here; CRDT parts already applied
	modeRemote                      // received
	modeReplay                      // read back from the store at Open
)

// countDrop records a dropped delta or frame under its reason; l.mu held.
func (l *List) countDrop(err error, what string) {
	dr := &l.stats.Drops
	switch {
	case errors.Is(err, ErrInvalid):
		dr.Invalid++
	case errors.Is(err, ErrMalformed):
		dr.Malformed++
	case errors.Is(err, ErrBadSignature):
		dr.BadSignature++
	case errors.Is(err, errUnknownAuthor):
		dr.UnknownAuthor++
	case errors.Is(err, errWrongList):
		dr.WrongList++
	case errors.Is(err, errWrongAgent):
		dr.WrongAgent++
	case errors.Is(err, errUnknownTask):
		dr.UnknownTask++
	case errors.Is(err, errNotWriter):
		dr.NotWriter++
	case errors.Is(err, errBadTime):
		dr.BadTime++
	case errors.Is(err, errForbidden):
		dr.Forbidden++
	default:
		dr.Invalid++
	}
	l.log.Debug("tasklist: dropped input", "list", l.id.String()[:8], "what", what, "err", err)
}

// keyFor returns the key d must verify with: its own (seq 1) or the
// stored one. nil if unknown.
func (l *List) keyFor(d *delta) (*identity.PublicKey, error) {
	if d.seq == 1 {
		pk, err := identity.ParsePublicKey(d.pub)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
		}
		return pk, nil
	}
	return l.keys[d.author], nil
}

// applicable reports whether d is the author's next delta and every
// dependency has been applied; l.mu held.
func (l *List) applicable(d *delta) bool {
	if d.seq != l.vv.Get(d.author)+1 {
		return false
	}
	for _, r := range d.deps.Replicas() {
		if l.vv.Get(r) < d.deps.Get(r) {
			return false
		}
	}
	return true
}

// checkAndApply verifies (if needed), validates and applies an applicable
// received or replayed delta; l.mu held. On error nothing changed.
func (l *List) checkAndApply(d *delta, verified bool, mode applyMode) error {
	if !verified {
		pk, err := l.keyFor(d)
		if err != nil {
			return err
		}
		if pk == nil {
			return errUnknownAuthor
		}
		if err := d.verify(pk); err != nil {
			return err
		}
	}
	if err := l.validate(d, mode); err != nil {
		return err
	}
	return l.apply(d, mode)
}

// validate checks a verified delta against the state its dependencies
// describe; l.mu held. It changes nothing.
func (l *List) validate(d *delta, mode applyMode) error {
	if d.list != l.id {
		return errWrongList
	}
	if d.agent != nil && *d.agent != d.author && d.kind != OpWriters {
		return fmt.Errorf("%w: %v for %s by %s", errWrongAgent, d.kind, d.agent.Short(), d.author.Short())
	}
	if err := l.mayWrite(d); err != nil {
		return err
	}
	if err := l.checkTime(d, mode); err != nil {
		return err
	}
	var t *taskState
	switch d.kind {
	case OpInit:
		return nil
	case OpWriters:
		if d.grant != nil && *d.grant && len(l.access[len(l.access)-1].writers) >= MaxWriters {
			return fmt.Errorf("%w: over %d writers", errInvalidOp, MaxWriters)
		}
		return nil
	case OpAdd:
		if want := NewTaskID(l.id, d.author, d.seq); d.task != want {
			return fmt.Errorf("%w: task ID %s is not derived from (list, author, seq)", errInvalidOp, d.task.Short())
		}
		if l.tasks[d.task] != nil {
			return fmt.Errorf("%w: task %s exists", errInvalidOp, d.task.Short())
		}
	default:
		if t = l.tasks[d.task]; t == nil {
			return fmt.Errorf("%w: task %s", errUnknownTask, d.task.Short())
		}
		if err := checkTaskRules(d, t); err != nil {
			return err
		}
	}
	if d.order != nil {
		if err := l.validateOrder(d, t); err != nil {
			return err
		}
	}
	return l.validateCheck(d, t)
}

// validateOrder checks an add's or move's RGA operation: one operation,
// minted by the author with a counter in line, naming known slots.
func (l *List) validateOrder(d *delta, t *taskState) error {
	ops := d.order.Ops()
	if len(ops) != 1 {
		return fmt.Errorf("%w: %d order operations, want 1", errInvalidOp, len(ops))
	}
	op := ops[0]
	if op.ID.Replica != d.author {
		return fmt.Errorf("%w: order operation minted by %s", errWrongAgent, op.ID.Replica.Short())
	}
	if op.ID.Counter <= l.rgaLast[d.author] || op.ID.Counter > l.rgaMax+1 {
		return fmt.Errorf("%w: order counter %d out of line", errInvalidOp, op.ID.Counter)
	}
	ctx := d.order.Context()
	if rs := ctx.Replicas(); len(rs) != 1 || rs[0] != d.author || ctx.Max(d.author) != op.ID.Counter {
		return fmt.Errorf("%w: order context does not match the operation", errInvalidOp)
	}
	if !op.Origin.IsZero() {
		if _, ok := l.slots[op.Origin]; !ok {
			return fmt.Errorf("%w: order origin %v", errUnknownTask, op.Origin)
		}
	}
	switch d.kind {
	case OpAdd:
		if op.Kind != crdt.RGAInsert || op.Value != d.task {
			return fmt.Errorf("%w: add carries %v of another value", errInvalidOp, op.Kind)
		}
	case OpMove:
		if op.Kind != crdt.RGAMove || op.Target != t.insert {
			return fmt.Errorf("%w: move carries %v of another element", errInvalidOp, op.Kind)
		}
	}
	return nil
}

// validateCheck checks a delta's check-set part: the elements added are
// exactly those the kind implies, minted by the author with counters in
// line, and the context names only dots the author could have seen.
func (l *List) validateCheck(d *delta, t *taskState) error {
	var want []checkElem
	switch d.kind {
	case OpAdd, OpUpdate, OpMove, OpReopen:
		want = []checkElem{aliveElem}
	case OpClaim, OpComplete:
		k := uint8(elemClaimed)
		if d.kind == OpComplete {
			k = elemDone
		}
		want = []checkElem{aliveElem, {Kind: k, Agent: agentBytes(d.author), Wall: d.ts.Wall, Logical: d.ts.Logical}}
	}
	var mine crdt.DotSet
	if t != nil {
		mine = t.check.Context()
	}
	base := mine.Max(d.author)
	var got []checkElem
	var ctrs []uint64
	for e, dot := range d.check.All() {
		if dot.Replica != d.author {
			return fmt.Errorf("%w: check element minted by %s", errWrongAgent, dot.Replica.Short())
		}
		if (e.Kind == elemClaimed || e.Kind == elemDone) && identity.AgentID(e.Agent) != d.author {
			return fmt.Errorf("%w: %v for agent %s", errWrongAgent, d.kind, identity.AgentID(e.Agent).Short())
		}
		got = append(got, e)
		ctrs = append(ctrs, dot.Counter)
	}
	if len(got) != len(want) {
		return fmt.Errorf("%w: %v adds %d check elements, want %d", errInvalidOp, d.kind, len(got), len(want))
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			return fmt.Errorf("%w: %v lacks check element kind %d", errInvalidOp, d.kind, w.Kind)
		}
	}
	slices.Sort(ctrs)
	for i, c := range ctrs {
		if c != base+uint64(i)+1 {
			return fmt.Errorf("%w: check counter %d out of line (base %d)", errInvalidOp, c, base)
		}
	}
	ctx := d.check.Context()
	for _, r := range ctx.Replicas() {
		limit := mine.Max(r)
		if r == d.author {
			limit = base + uint64(len(ctrs))
		}
		if ctx.Max(r) > limit {
			return fmt.Errorf("%w: check context names unseen dots of %s", errInvalidOp, r.Short())
		}
	}
	return nil
}

// apply applies a delta (validated, or local) to the state and the log;
// l.mu held. For local deltas the CRDT parts were applied when they were
// made; merging them again is a no-op.
func (l *List) apply(d *delta, mode applyMode) error {
	var t *taskState
	var slot crdt.Dot
	if d.order != nil {
		if err := l.rga.Merge(d.order); err != nil {
			return fmt.Errorf("%w: order: %v", errInvalidOp, err)
		}
		slot = d.order.Ops()[0].ID
		l.rgaMax = max(l.rgaMax, slot.Counter)
		l.rgaLast[d.author] = max(l.rgaLast[d.author], slot.Counter)
	}
	switch d.kind {
	case OpInit:
	case OpAdd:
		t = &taskState{id: d.task, createdBy: d.author, createdSeq: d.seq, createdAt: d.ts, insert: slot,
			check: crdt.NewORSet[checkElem](l.selfID)}
		l.tasks[d.task] = t
	default:
		t = l.tasks[d.task]
	}
	if d.order != nil {
		l.slots[slot] = d.task
	}
	if t != nil {
		if err := t.check.Merge(d.check); err != nil {
			// Unreachable after validate (fresh dots cannot conflict).
			l.log.Error("tasklist: check merge failed after validation", "err", err)
		}
		mergeLWW(&t.title, d.title, d.ts)
		mergeLWW(&t.desc, d.desc, d.ts)
		mergeLWW(&t.assignee, d.assign, d.ts)
		mergeLWW(&t.priority, d.prio, d.ts)
	}
	if d.name != nil {
		before := l.name.Value()
		mergeLWW(&l.name, d.name, d.ts)
		l.nameDirty = l.nameDirty || l.name.Value() != before
	}
	if d.seq == 1 {
		if pk, err := identity.ParsePublicKey(d.pub); err == nil {
			l.keys[d.author] = pk
		}
	}
	l.recordRules(d, t)
	_ = l.hlc.Update(d.ts) // only replayed deltas can be beyond the drift limit; the clock does not follow them
	l.vv.Set(d.author, d.seq)
	l.deltas[d.author] = append(l.deltas[d.author], d.raw)
	l.order = append(l.order, d.key())
	switch mode {
	case modeLocal:
		l.stats.LocalOps++
	case modeRemote:
		l.stats.RemoteOps++
		l.unsaved = append(l.unsaved, d)
	}
	if mode != modeReplay {
		l.emit(Change{Task: d.task, Author: d.author, Kind: d.kind, Local: mode == modeLocal})
	}
	return nil
}

func mergeLWW[T comparable](r *crdt.LWWRegister[T], v *T, ts crdt.Timestamp) {
	if v != nil {
		_, _ = r.Merge(crdt.NewLWWRegister(*v, ts)) // errors only on an exact timestamp tie of unencodable values
	}
}

// receive handles one signed delta from the network; l.mu held.
func (l *List) receive(raw []byte) {
	l.stats.DeltasReceived++
	d, err := decodeDelta(raw)
	if err != nil {
		l.countDrop(err, "delta")
		return
	}
	if d.list != l.id {
		l.countDrop(errWrongList, "delta")
		return
	}
	if d.seq <= l.vv.Get(d.author) {
		same := false
		if err := l.withDeltas(func(get func(authorSeq) ([]byte, error)) error {
			have, err := get(d.key())
			same = sameBytes(have, raw)
			return err
		}); err != nil {
			// The stored copy is unreadable: nothing to compare with, and
			// the delta is applied already.
			l.log.Warn("tasklist: reading a stored delta", "err", err)
			l.stats.Duplicates++
			return
		}
		if same {
			l.stats.Duplicates++
			return
		}
		if pk := l.keys[d.author]; pk != nil && d.verify(pk) == nil {
			l.stats.Drops.Equivocation++
			l.log.Warn("tasklist: author signed two different deltas with one seq", "author", d.author.Short(), "seq", d.seq)
			return
		}
		l.countDrop(ErrBadSignature, "duplicate seq")
		return
	}
	if _, ok := l.pending[d.author][d.seq]; ok {
		l.stats.Duplicates++
		return
	}
	verified := false
	pk, err := l.keyFor(d)
	if err != nil {
		l.countDrop(err, "delta")
		return
	}
	if pk != nil {
		if err := d.verify(pk); err != nil {
			l.countDrop(err, "delta")
			return
		}
		verified = true
	}
	if !l.applicable(d) {
		l.hold(d, verified)
		return
	}
	if err := l.checkAndApply(d, verified, modeRemote); err != nil {
		l.countDrop(err, "delta")
		return
	}
	l.drainPending()
}

// hold buffers a delta that arrived before its dependencies and asks a
// peer for what is missing; l.mu held.
func (l *List) hold(d *delta, verified bool) {
	if l.npending >= l.maxPending && verified {
		l.evictUnverified()
	}
	if l.npending >= l.maxPending {
		l.stats.Drops.PendingFull++
	} else {
		m := l.pending[d.author]
		if m == nil {
			m = make(map[uint64]*delta)
			l.pending[d.author] = m
		}
		d.verified = verified
		m[d.seq] = d
		l.npending++
	}
	if now := l.clk.Now(); now.Sub(l.lastGap) >= gapSyncDelay {
		l.lastGap = now
		l.out = append(l.out, outMsg{request: true, random: true})
	}
}

// evictUnverified drops one held delta whose signature could not be
// checked yet (its author's key is unknown), to make room for a verified
// one: junk from made-up authors cannot crowd out real deltas. l.mu held.
func (l *List) evictUnverified() {
	for a, m := range l.pending {
		for seq, d := range m {
			if d.verified {
				continue
			}
			delete(m, seq)
			if len(m) == 0 {
				delete(l.pending, a)
			}
			l.npending--
			l.stats.Drops.PendingFull++
			return
		}
	}
}

// drainPending applies buffered deltas that have become applicable; l.mu
// held.
func (l *List) drainPending() {
	for progress := true; progress && l.npending > 0; {
		progress = false
		for a, m := range l.pending {
			d := m[l.vv.Get(a)+1]
			if d == nil || !l.applicable(d) {
				continue
			}
			delete(m, d.seq)
			if len(m) == 0 {
				delete(l.pending, a)
			}
			l.npending--
			if err := l.checkAndApply(d, d.verified, modeRemote); err != nil {
				l.countDrop(err, "pending delta")
				continue
			}
			progress = true
		}
	}
}
