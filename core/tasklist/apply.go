package tasklist

import (
	"bytes"
	"cmp"
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

// judgement says how a delta is judged (see statesync.go).
type judgement struct {
	// late: a delta this replica skipped as superseded, received later;
	// it is applied out of causal order.
	late bool
	// fresh: this replica may lack its author's last delta on the task
	// (it took a state transfer, or d is part of one), so d's check-set
	// counters need only be fresh, not next in line.
	fresh bool
}

// judge decides how d is judged; l.mu held.
func (l *List) judge(d *delta) judgement {
	j := judgement{late: d.seq <= l.vv.Get(d.author)}
	j.fresh = j.late || d.fromState || l.ck.Len() > 0
	return j
}

// checkAndApply verifies (if needed), validates and applies an applicable
// received or replayed delta (or a skipped one received late); l.mu held.
// On error nothing changed.
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
	j := l.judge(d)
	if err := l.validate(d, mode, j); err != nil {
		return err
	}
	return l.apply(d, mode, j)
}

// validate checks a verified delta against the state its dependencies
// describe; l.mu held. It changes nothing but d.wins.
func (l *List) validate(d *delta, mode applyMode, j judgement) error {
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
		if j.late {
			return fmt.Errorf("%w: a list creation out of order", errInvalidOp)
		}
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
		var err error
		if d.wins, err = checkTaskRules(d, t); err != nil {
			return err
		}
	}
	if d.order != nil {
		if err := l.validateOrder(d, t, j.late); err != nil {
			return err
		}
	}
	return l.validateCheck(d, t, j)
}

// validateOrder checks an add's or move's RGA operation: one operation,
// minted by the author with a counter in line (not checked for a late
// delta: later ones have raised the counters since), naming known slots.
func (l *List) validateOrder(d *delta, t *taskState, late bool) error {
	ops := d.order.Ops()
	if len(ops) != 1 {
		return fmt.Errorf("%w: %d order operations, want 1", errInvalidOp, len(ops))
	}
	op := ops[0]
	if op.ID.Replica != d.author {
		return fmt.Errorf("%w: order operation minted by %s", errWrongAgent, op.ID.Replica.Short())
	}
	if late {
		if _, ok := l.slots[op.ID]; ok {
			return fmt.Errorf("%w: order slot %v exists", errInvalidOp, op.ID)
		}
	} else if op.ID.Counter <= l.rgaLast[d.author] || op.ID.Counter > l.rgaMax+1 {
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
// line, and the context names only dots the author could have seen. On a
// replica that took a state transfer (j.fresh) the counters need only
// follow what it holds of the author's dots (a late delta's need only not
// name a live dot of another element), and the context is not checked:
// skipped deltas carried what they are judged by.
func (l *List) validateCheck(d *delta, t *taskState, j judgement) error {
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
	// A replica that took a state transfer may lack an author's last
	// delta on the task, so the base is a lower bound: counters need only
	// be fresh (statesync.go).
	if j.fresh {
		for i, c := range ctrs {
			if c != ctrs[0]+uint64(i) || (!j.late && c <= base) {
				return fmt.Errorf("%w: check counter %d out of line (base %d)", errInvalidOp, c, base)
			}
		}
		if j.late && t != nil {
			live := make(map[crdt.Dot]checkElem)
			for _, en := range t.check.Entries() {
				for _, dot := range en.Dots {
					live[dot] = en.Value
				}
			}
			for e, dot := range d.check.All() {
				if x, ok := live[dot]; ok && x != e {
					return fmt.Errorf("%w: check dot %v names two elements", errInvalidOp, dot)
				}
			}
		}
		return nil
	}
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

// logOf returns a's log, creating it; l.mu held.
func (l *List) logOf(a identity.AgentID) *authorLog {
	g := l.logs[a]
	if g == nil {
		g = &authorLog{}
		l.logs[a] = g
	}
	return g
}

// apply applies a delta (validated, or local) to the state and the log;
// l.mu held. For local deltas the CRDT parts were applied when they were
// made; merging them again is a no-op.
func (l *List) apply(d *delta, mode applyMode, j judgement) error {
	var t *taskState
	var slot crdt.Dot
	if d.order != nil {
		if err := l.rga.Merge(d.order); err != nil {
			return fmt.Errorf("%w: order: %v", errInvalidOp, err)
		}
		slot = d.order.Ops()[0].ID
		l.rgaMax = max(l.rgaMax, slot.Counter)
		l.rgaLast[d.author] = max(l.rgaLast[d.author], slot.Counter)
		if d.kind == OpMove {
			l.moves = append(l.moves, d.key())
		}
	}
	switch d.kind {
	case OpInit:
	case OpAdd:
		t = newTaskState(l.selfID)
		t.id, t.createdBy, t.createdSeq, t.createdAt, t.insert = d.task, d.author, d.seq, d.ts, slot
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
		l.normalize(t, d, j.late)
		mergeWon(&t.title, d.title, d, &t.won[wonTitle])
		mergeWon(&t.desc, d.desc, d, &t.won[wonDesc])
		mergeWon(&t.assignee, d.assign, d, &t.won[wonAssignee])
		mergeWon(&t.priority, d.prio, d, &t.won[wonPriority])
		l.advanceFront(t, d, j.late)
		t.lastBy[d.author] = max(t.lastBy[d.author], d.seq)
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
	l.recordRules(d, t, j.late)
	_ = l.hlc.Update(d.ts) // only replayed deltas can be beyond the drift limit; the clock does not follow them
	if !j.late {
		l.vv.Set(d.author, d.seq)
		l.advance(d.author)
	}
	l.logOf(d.author).put(d.seq, d.ts, d.raw)
	l.order = append(l.order, d.key())
	if mode == modeRemote {
		// The skips d relies on are logged before it.
		l.unsaved = append(l.unsaved, l.commitAnnouncements(d)...)
		l.unsaved = append(l.unsaved, logEntry{d: d})
		l.logLen++
	}
	if j.late {
		l.skip.remove(d.author, d.seq)
		l.skipChanged()
		l.stats.Filled++
	}
	if d.fromState {
		// The checkpoint grows by the causal past of every delta of a
		// compacted answer (see statesync.go).
		l.ck.Merge(d.deps)
		if d.seq > l.ck.Get(d.author) {
			l.ck.Set(d.author, d.seq)
		}
		l.skipDirty = true
	}
	switch mode {
	case modeLocal:
		l.stats.LocalOps++
	case modeRemote:
		l.stats.RemoteOps++
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

// mergeWon merges d's value v into r and records d as the field's writer
// if it wins.
func mergeWon[T comparable](r *crdt.LWWRegister[T], v *T, d *delta, won *uint64) {
	if v == nil {
		return
	}
	if changed, _ := r.Merge(crdt.NewLWWRegister(*v, d.ts)); changed {
		*won = d.seq
	}
}

// normalize removes from t's check set the live dots that d's causal
// past supersedes, whether or not d's context names them: an existence
// element made by a delta in d's past (every delta on a task supersedes
// the existence elements it has seen), and, when d is a reopen, a claim
// or completion made by a delta in its past. For a delta made by the
// local API (or any honest one) its context names exactly those and
// nothing is left to remove; a late delta's own elements go too when a
// delta held here has it in its past. It makes a task's live elements a
// function of the causal order of the deltas held, which is what lets a
// replica that skipped superseded deltas reach the same state (see
// statesync.go). l.mu held, d merged, t.front not yet updated for d.
func (l *List) normalize(t *taskState, d *delta, late bool) {
	own := make(map[crdt.Dot]bool, 2)
	for _, dot := range d.check.All() {
		own[dot] = true
	}
	var dead crdt.DotSet
	found := false
	for _, e := range t.check.Entries() {
		for _, dot := range e.Dots {
			if own[dot] {
				if late && l.supersededOnTask(t, d, e.Value.Kind) {
					dead.Add(dot)
					found = true
				}
				continue
			}
			var seq uint64
			switch e.Value.Kind {
			case elemAlive:
				seq = t.front[dot.Replica]
			default:
				if d.kind != OpReopen {
					continue
				}
				if m := findMark(t, e.Value); m != nil {
					seq = m.seq
				}
			}
			if seq > 0 && covers(d.deps, dot.Replica, seq) {
				dead.Add(dot)
				found = true
			}
		}
	}
	if !found {
		return
	}
	rm, err := crdt.RestoreORSet[checkElem](l.selfID, nil, dead)
	if err == nil {
		err = t.check.Merge(rm.State())
	}
	if err != nil {
		l.log.Error("tasklist: normalizing a check set", "err", err) // unreachable: a context-only delta
	}
}

// findMark returns the claim or completion record of a check element.
func findMark(t *taskState, e checkElem) *mark {
	for i := range t.marks {
		m := &t.marks[i]
		if m.agent == identity.AgentID(e.Agent) && m.done == (e.Kind == elemDone) && m.ts.Wall == e.Wall && m.ts.Logical == e.Logical {
			return m
		}
	}
	return nil
}

// advanceFront makes the delta d on t part of t's causal frontier and
// drops the members d has in its causal past; a late d that a member
// has in its past is not part of it. l.mu held.
func (l *List) advanceFront(t *taskState, d *delta, late bool) {
	if late && l.supersededOnTask(t, d, elemAlive) {
		return
	}
	for b, s := range t.front {
		if covers(d.deps, b, s) {
			delete(t.front, b)
		}
	}
	t.front[d.author] = d.seq
}

// supersededOnTask reports whether a delta held on t has the late delta
// d in its causal past (for an existence element), or a reopen held on t
// does (for a claim or completion); l.mu held.
func (l *List) supersededOnTask(t *taskState, d *delta, kind uint8) bool {
	if kind != elemAlive {
		for _, r := range t.reopens {
			if covers(r.deps, d.author, d.seq) {
				return true
			}
		}
		return false
	}
	found := false
	err := l.withDeltas(func(get func(authorSeq) ([]byte, error)) error {
		for b, s := range t.front {
			if b == d.author {
				if s > d.seq {
					found = true
					return nil
				}
				continue
			}
			raw, err := get(authorSeq{b, s})
			if err != nil {
				return err
			}
			y, err := decodeDelta(raw)
			if err != nil {
				return err
			}
			if covers(y.deps, d.author, d.seq) {
				found = true
				return nil
			}
		}
		return nil
	})
	if err != nil {
		l.log.Warn("tasklist: reading a delta to place a late one", "err", err)
	}
	return found
}

// receive handles one signed delta from the network; fromState marks a
// delta of a compacted answer, whose author's numbers between this
// replica's and its own are superseded (statesync.go). l.mu held.
func (l *List) receive(raw []byte, fromState bool) {
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
		if l.skip.has(d.author, d.seq) {
			l.fill(d, false)
			l.drainPending()
			return
		}
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
	d.fromState = fromState
	if l.skip.has(d.author, d.seq) {
		// Announced as superseded, but here it is: it is applied instead.
		l.skip.remove(d.author, d.seq)
		l.skipChanged()
	}
	if fromState && verified {
		l.announce(d)
	}
	if !l.applicable(d) {
		l.hold(d, verified, fromState)
		if fromState {
			l.drainPending() // what d announced may have completed what others wait for
		}
		return
	}
	if err := l.checkAndApply(d, verified, modeRemote); err != nil {
		l.refused(d, err, "delta")
		return
	}
	l.drainPending()
}

// fill applies a delta this replica skipped as superseded, received
// later (statesync.go); l.mu held.
func (l *List) fill(d *delta, verified bool) {
	if !verified {
		pk := l.keys[d.author]
		if pk == nil {
			l.countDrop(errUnknownAuthor, "late delta")
			return
		}
		if err := d.verify(pk); err != nil {
			l.countDrop(err, "late delta")
			return
		}
	}
	for _, r := range d.deps.Replicas() {
		if l.vv.Get(r) < d.deps.Get(r) {
			l.countDrop(fmt.Errorf("%w: a late delta depends on unseen ones", errInvalidOp), "late delta")
			return
		}
	}
	if err := l.checkAndApply(d, true, modeRemote); err != nil {
		l.refused(d, err, "late delta")
	}
}

// announcement is what a delta of a compacted answer (its anchor) made
// this replica take as superseded: its author's numbers between the
// replica's and its own. It is withdrawn if the anchor is rejected
// before any applied delta relied on those numbers, and committed (logged
// as skip records) when one does (or the anchor applies).
type announcement struct {
	added []seqRange
}

// announce takes the numbers of d's author between what this replica has
// seen and d as superseded (skipped, not verified), but for those it
// holds; d is a verified delta of a compacted answer. l.mu held.
func (l *List) announce(d *delta) {
	a := d.author
	lo, hi := l.vv.Get(a)+1, d.seq-1
	if lo > hi {
		return
	}
	var held []uint64
	for s := range l.pending[a] {
		if s >= lo && s <= hi {
			held = append(held, s)
		}
	}
	added := l.skip.addFree(a, lo, hi, held)
	if len(added) == 0 {
		return
	}
	if l.anchors == nil {
		l.anchors = make(map[authorSeq]*announcement)
	}
	l.anchors[d.key()] = &announcement{added: added}
	for _, r := range added {
		l.stats.Skipped += r.hi - r.lo + 1
	}
	l.skipChanged()
	l.advance(a)
}

// advance moves a's version vector entry over the skipped numbers right
// after it; l.mu held.
func (l *List) advance(a identity.AgentID) {
	for {
		i, ok := l.skip.find(a, l.vv.Get(a)+1)
		if !ok {
			return
		}
		l.vv.Set(a, l.skip.m[a][i].hi)
	}
}

// commitAnnouncements commits the announcements the delta d being
// applied relies on (its own, or numbers it depends on) and returns the
// skip records to log before it, in a deterministic order; l.mu held.
func (l *List) commitAnnouncements(d *delta) []logEntry {
	var out []logEntry
	for k, an := range l.anchors {
		if k != d.key() && d.deps.Get(k.author) < an.added[0].lo {
			continue
		}
		delete(l.anchors, k)
		rs := l.skip.m[k.author]
		for _, r := range an.added {
			for i, _ := l.skip.find(k.author, r.lo); i < len(rs) && rs[i].lo <= r.hi; i++ {
				out = append(out, logEntry{skip: &skipEntry{author: k.author, lo: max(rs[i].lo, r.lo), hi: min(rs[i].hi, r.hi)}})
			}
		}
	}
	slices.SortFunc(out, func(x, y logEntry) int {
		if c := bytes.Compare(x.skip.author[:], y.skip.author[:]); c != 0 {
			return c
		}
		return cmp.Compare(x.skip.lo, y.skip.lo)
	})
	l.logLen += uint64(len(out))
	if len(out) > 0 {
		l.skipDirty = true
	}
	return out
}

// rejected withdraws what the dropped delta d announced, unless an
// applied delta relied on it (it is committed then): a delta that fails the rules (a hostile
// writer's, numbered far ahead) cannot make this replica skip numbers
// nobody holds. l.mu held.
func (l *List) rejected(d *delta) {
	an := l.anchors[d.key()]
	if an == nil {
		return
	}
	delete(l.anchors, d.key())
	a := d.author
	for _, r := range an.added {
		l.stats.Skipped -= l.skip.removeRange(a, r.lo, r.hi)
	}
	if first := an.added[0].lo; l.vv.Get(a) >= first {
		l.vv.Set(a, first-1)
	}
	l.skipChanged()
}

// announceHeld lets the lowest held delta of a compacted answer by author
// a, held unverified because a's key was not known, announce its skip
// once the key is known; it reports whether it did. l.mu held.
func (l *List) announceHeld(a identity.AgentID, m map[uint64]*delta) bool {
	pk := l.keys[a]
	if pk == nil {
		return false
	}
	var d *delta
	for _, p := range m {
		if p.fromState && (d == nil || p.seq < d.seq) {
			d = p
		}
	}
	if d == nil || d.verified {
		return false
	}
	if err := d.verify(pk); err != nil {
		delete(m, d.seq)
		if len(m) == 0 {
			delete(l.pending, a)
		}
		l.npending--
		l.countDrop(err, "pending delta")
		return true
	}
	d.verified = true
	l.announce(d)
	return true
}

// refused records that d failed its checks: it is counted, what it
// announced is withdrawn, and a replica that skipped deltas sends what it
// skipped to its peers again, in case the delta was refused for lack of
// something skipped (a hostile sender's withholding, or a claim a lagging
// writer depended on): a repair answer brings it, and catch-up the
// refused delta again. l.mu held.
func (l *List) refused(d *delta, err error, what string) {
	l.countDrop(err, what)
	l.rejected(d)
	if !l.skip.empty() && errors.Is(err, ErrRejected) {
		l.skipVer++
	}
}

// skipChanged records a change of the skip set; l.mu held.
func (l *List) skipChanged() {
	l.skipVer++
	l.skipDirty = true
}

// hold buffers a delta that arrived before its dependencies and, unless
// quiet, asks a peer for what is missing; l.mu held.
func (l *List) hold(d *delta, verified, quiet bool) {
	if l.npending >= l.maxPending && verified {
		l.evictUnverified()
	}
	if l.npending >= l.maxPending {
		l.stats.Drops.PendingFull++
		l.rejected(d)
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
	if now := l.clk.Now(); !quiet && now.Sub(l.lastGap) >= gapSyncDelay {
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
			if d == nil {
				// A delta of a compacted answer held before its
				// author's key was known can announce its skip now.
				if l.announceHeld(a, m) {
					progress = true
				}
				continue
			}
			if !l.applicable(d) {
				continue
			}
			delete(m, d.seq)
			if len(m) == 0 {
				delete(l.pending, a)
			}
			l.npending--
			if err := l.checkAndApply(d, d.verified, modeRemote); err != nil {
				l.refused(d, err, "pending delta")
				continue
			}
			progress = true
		}
	}
}
