package tasklist

import (
	"encoding/binary"

	"github.com/saorsa-labs/x0x-go/core/crdt"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// State transfer: a late joiner receives state, not history.
//
// A requester that lacks at least compactMin deltas (an empty or far
// behind version vector) is answered with the effective signed deltas
// only, in causal order, in frames of type frameState. A gap in an
// author's sequence numbers before a delta of such a frame means "the
// numbers in between are superseded": the receiver takes them as seen
// (skipped, not verified) without receiving them. Every byte a replica
// applies is still a signed delta it verified; it never takes a sender's
// merged state on its word. A transfer comes in several answers (at most
// MaxSyncBytes each), and what one sends may need deltas of the next to
// apply: a request names the deltas its sender holds unapplied right
// after its version vector (and the numbers announced skipped there), and
// the answer continues after them.
//
// The list of omitted (author, seq) pairs is not sent beside the deltas:
// it is implied by the signed numbers of what is sent. So it costs
// nothing, it is bounded by what is sent (a replica holds it as ranges,
// at most one per delta received), and it cannot name numbers above one
// its author signed. Numbers are taken as skipped when a verified delta
// of a state frame shows the gap (an announcement, before that delta is
// applied: another kept delta may depend on a skipped number, and the
// delta announcing it may depend on that one); the announcement is
// withdrawn if its delta then fails the rules before anything applied
// relied on it, and logged as skip records in the store once something
// does (or the delta applies).
//
// What is kept (keptSet) is whatever the state, or the receipt rules of
// a later delta, need:
//   - the list's creation, every change of its writers, every author's
//     first delta (its key) and latest one (so every version vector entry
//     names a delta held, whose timestamp bounds the deltas that depend on
//     it);
//   - every add and every move: the order (an RGA of tasks) is kept
//     whole, so every slot a later operation can name exists, positions
//     are exact and RGA counters stay in line;
//   - per task: its causal frontier (the deltas on it no other delta on
//     it has in its past: they hold the live existence elements), the
//     delta whose value each field holds, the deltas of the live claims
//     and completions, and for every kept claim or completion what judges
//     and removes it (a completion's winning claim; the reopens that first
//     removed them, so a replica applying kept deltas in causal order sees
//     a claim removed exactly where the full history does);
//   - for a requester that is itself a writer (requests name their
//     agent), its own last delta on every task: a writer needs its own
//     greatest check-set counter on a task to make a delta others accept;
//     and for a requester far behind rather than empty, the reopens that
//     first removed the claims and completions it holds (neededBy).
//
// Everything else is omitted: edits overwritten by later ones, touches of
// a task's existence element superseded by later deltas on the task,
// claims and completions removed by reopens, reopens superseded by later
// ones, most of a removed task's history. Signatures dominate every
// delta's size, so a joiner receives about the share of the deltas that
// are kept: under a third of the log for the tests' history (about twenty
// operations per task), a little under half for the benchmark's (about
// ten: BenchmarkLateJoinerState20k).
//
// Normalization (normalize) makes that enough: every delta on a task
// removes the existence elements made by deltas in its causal past, and a
// reopen the claims and completions made in its past, whatever its
// context names. Honest deltas' contexts name exactly those, so nothing
// changes for them; but it makes a task's live elements a function of the
// causal order of the deltas held, so the task's frontier (kept) removes
// the elements of every older kept delta without the intermediate deltas
// that removed them first.
//
// Rules on the receiver. The receipt rules keep judging exactly what the
// kept deltas and everything after them need: the writer set (every
// change is kept), a task's creation (every add is kept), RGA slots and
// counters (the order is kept whole), and the claim rules (every kept
// claim or completion comes with the winning claim and the first removers
// it is judged by; a skipped one was removed, in the full history, by a
// reopen the deltas that saw it have in their past). Three rules lack
// what skipped deltas carried and are weakened on a replica that took a
// state transfer (it has a checkpoint, List.ck: the join of the causal
// pasts of the deltas it received in state frames): a dependency's
// timestamp, when the dependency was skipped, is bounded below by the
// latest earlier one of its author held (checkTime); check-set counters
// need only be fresh, not next in line (other authors' last deltas on a
// task are not kept); and a skipped delta received later (a late one,
// applied out of causal order: normalization and the LWW and RGA joins
// place it exactly) is not held to RGA counters in line. A delta whose
// author had not seen a reopen that removed a skipped claim in its past
// (a writer lagging behind the checkpoint) is judged without that claim:
// an honest completion whose winning claim was skipped is refused until a
// peer's repair answer brings the claim (it keeps the winning claim of
// every live completion) and catch-up brings the completion again.
//
// Hostile senders. A sender can withhold (claim that effective deltas are
// superseded), or send superseded deltas without what superseded them.
// The receiver keeps what it skipped (List.skip) apart from what it
// applied, and sends it (packed: encodeSkips, at most maxSkipBytes) in
// its sync requests to every peer, once per change; an honest peer answers
// with the deltas of that set that are effective for it and with the
// reopens that first removed the claims the requester holds (repairSet).
// Those are applied late, which corrects the state, and a rule that
// rejected an honest delta for lack of them accepts it when catch-up
// brings it again (a rejected delta does not use up its number; a
// replica that refuses a delta sends what it skipped again, see refused).
// So once an honest peer has answered, the receiver converges with the
// honest replicas, and keeps accepting every writer's deltas.
//
// Hostile writers. A writer can already make replicas disagree about its
// own deltas (by signing two deltas with one number: equivocation), and
// can already make a claim that an earlier concurrent one would have
// beaten, by hiding what it has seen (depending on less; see the package
// doc). The weakened rules let a writer that breaks one of them in a way
// only skipped history shows (a counter reused from a skipped delta of
// its own, a timestamp before a skipped dependency's, a claim forbidden
// only by a skipped claim it depends on) get that delta accepted by
// replicas that took a state transfer while replicas holding the full
// history refuse it: a disagreement about its own delta, and no power it
// lacks otherwise (dots are its own; the same claim or time is available
// by depending on less). A writer signing a delta numbered far ahead of
// its history makes replicas skip the numbers below it only if the delta
// passes the rules; then every replica that syncs takes it alike, and the
// skip costs one range.
//
// Limits. A list whose tasks are moved very often keeps every move. An
// announcement not yet relied on when the replica closes is not logged
// (the delta that made it was held in memory and is asked for again). A
// writer's delta whose check-set context names a live element made by a
// delta outside its causal past (something the local API never makes)
// removes it; a replica that skipped that delta keeps the element until
// the task is touched again.

// compactMin is the least number of missing deltas for which a catch-up
// answer is a state transfer.
const compactMin = 256

// keptCache is keptSet's result for a state of the list.
type keptCache struct {
	n   int // len(l.order) it was computed for
	set map[authorSeq]struct{}
}

// keptSet returns the deltas a state transfer keeps (see above), cached
// until the next applied delta; l.mu held.
func (l *List) keptSet() map[authorSeq]struct{} {
	if l.kept != nil && l.kept.n == len(l.order) {
		return l.kept.set
	}
	k := make(map[authorSeq]struct{}, len(l.tasks)*3)
	add := func(as authorSeq) {
		if as.seq > 0 {
			k[as] = struct{}{}
		}
	}
	if !l.creator.IsZero() {
		for _, s := range l.access {
			add(authorSeq{l.creator, s.seq})
		}
	}
	for _, a := range l.vv.Replicas() {
		add(authorSeq{a, 1})
		add(authorSeq{a, l.vv.Get(a)})
	}
	for _, mv := range l.moves {
		add(mv)
	}
	for _, t := range l.tasks {
		add(authorSeq{t.createdBy, t.createdSeq})
		for a, s := range t.front {
			add(authorSeq{a, s})
		}
		for i, ts := range [4]crdt.Timestamp{t.title.Timestamp(), t.desc.Timestamp(), t.assignee.Timestamp(), t.priority.Timestamp()} {
			if !ts.IsZero() {
				add(authorSeq{ts.Replica, t.won[i]})
			}
		}
		for i := range t.marks {
			if m := &t.marks[i]; t.check.Contains(m.elem()) {
				add(authorSeq{m.agent, m.seq})
			}
		}
		var ms []*mark
		for i := range t.marks {
			if _, ok := k[authorSeq{t.marks[i].agent, t.marks[i].seq}]; ok {
				ms = append(ms, &t.marks[i])
			}
		}
		for _, m := range ms {
			markClosure(t, m, add)
		}
	}
	l.kept = &keptCache{n: len(l.order), set: k}
	return k
}

// markClosure adds what a kept claim or completion m of t needs: a
// completion its winning claim, and both the reopens that first removed
// them (so a replica applying kept deltas in causal order sees them
// removed exactly where the full history does, and judges later deltas
// by that).
func markClosure(t *taskState, m *mark, add func(authorSeq)) {
	for _, r := range firstRemovers(t, m) {
		add(r)
	}
	if !m.done || m.wins == 0 {
		return
	}
	add(authorSeq{m.agent, m.wins})
	for i := range t.marks {
		if w := &t.marks[i]; !w.done && w.agent == m.agent && w.seq == m.wins {
			for _, r := range firstRemovers(t, w) {
				add(r)
			}
		}
	}
}

// neededBy returns what a requester (agent self, with version vector
// theirs, that skipped skips) needs beyond the kept set: its own last
// delta on every task (ownLast), and the reopens that first removed the
// claims and completions it holds (a replica far behind holds claims the
// kept set has no reason to remove). l.mu held.
func (l *List) neededBy(theirs crdt.VersionVector, self identity.AgentID, skips *seqSet) map[authorSeq]bool {
	out := l.ownLast(self)
	for _, t := range l.tasks {
		for i := range t.marks {
			m := &t.marks[i]
			if covers(theirs, m.agent, m.seq) && !skips.has(m.agent, m.seq) {
				for _, r := range firstRemovers(t, m) {
					out[r] = true
				}
			}
		}
	}
	return out
}

// ownLast returns the last delta of agent self on every task, with what
// they need (markClosure): a writer catching up by state transfer needs
// its own greatest check-set counters to make deltas others accept. l.mu
// held.
func (l *List) ownLast(self identity.AgentID) map[authorSeq]bool {
	out := make(map[authorSeq]bool)
	if self.IsZero() || l.vv.Get(self) == 0 {
		return out
	}
	add := func(as authorSeq) {
		if as.seq > 0 {
			out[as] = true
		}
	}
	for _, t := range l.tasks {
		s := t.lastBy[self]
		if s == 0 {
			continue
		}
		add(authorSeq{self, s})
		for i := range t.marks {
			if m := &t.marks[i]; m.agent == self && m.seq == s {
				markClosure(t, m, add)
			}
		}
	}
	return out
}

// firstRemovers returns the reopens of t that removed m and have no
// other such reopen in their causal past: every reopen that removed m
// has one of them in its past (or is one).
func firstRemovers(t *taskState, m *mark) []authorSeq {
	var out []authorSeq
	for i, r := range t.reopens {
		if !covers(r.deps, m.agent, m.seq) {
			continue
		}
		first := true
		for j, o := range t.reopens {
			if i != j && covers(o.deps, m.agent, m.seq) && covers(r.deps, o.author, o.seq) {
				first = false
				break
			}
		}
		if first {
			out = append(out, authorSeq{r.author, r.seq})
		}
	}
	return out
}

// repairSet returns, in apply order, the deltas a requester (agent self)
// with version vector theirs that skipped skips should receive late:
// those of skips this replica holds that a state transfer to it keeps
// (keptSet and neededBy). l.mu held.
func (l *List) repairSet(theirs crdt.VersionVector, self identity.AgentID, skips *seqSet) []authorSeq {
	kept, extra := l.keptSet(), l.neededBy(theirs, self, skips)
	var out []authorSeq
	for _, as := range l.order {
		if !skips.has(as.author, as.seq) {
			continue
		}
		if _, ok := kept[as]; ok || extra[as] {
			out = append(out, as)
		}
	}
	return out
}

// persistedSkip is the skip set as logged: without the announcements not
// committed yet (they wait for a delta held in memory, which is not
// persisted either); l.mu held.
func (l *List) persistedSkip() seqSet {
	out := l.skip.clone()
	for k, an := range l.anchors {
		for _, r := range an.added {
			out.removeRange(k.author, r.lo, r.hi)
		}
	}
	return out
}

// ckRecord encodes the checkpoint for the store; l.mu held.
func (l *List) ckRecord() []byte {
	b, err := wire.Marshal(ckWire{CK: l.ck})
	if err != nil {
		l.log.Error("tasklist: encoding the checkpoint record", "err", err) // unreachable
		return nil
	}
	return b
}

// logEntry is one record of a list's log: an applied delta, or numbers of
// an author taken as skipped (an announcement, logged when first relied
// on).
type logEntry struct {
	d    *delta
	skip *skipEntry
}

// skipEntry is the numbers lo..hi of author, skipped.
type skipEntry struct {
	author identity.AgentID
	lo, hi uint64
}

// skipRefTag starts the order record of a skip entry (a delta's is its
// 40-byte author||seq key).
const skipRefTag = 's'

// skipRef is the order record of a skip entry: tag, author, lo, hi.
func skipRef(e *skipEntry) []byte {
	b := make([]byte, 0, 49)
	b = append(b, skipRefTag)
	b = append(b, e.author[:]...)
	b = binary.BigEndian.AppendUint64(b, e.lo)
	return binary.BigEndian.AppendUint64(b, e.hi)
}

// parseSkipRef reads a skip entry's order record (nil if it is not one or
// is out of range).
func parseSkipRef(v []byte) *skipEntry {
	if len(v) != 49 || v[0] != skipRefTag {
		return nil
	}
	e := &skipEntry{author: identity.AgentID(v[1:33]), lo: binary.BigEndian.Uint64(v[33:]), hi: binary.BigEndian.Uint64(v[41:])}
	if e.lo == 0 || e.lo > e.hi || e.hi > crdt.MaxCounter {
		return nil
	}
	return e
}

// announceRange takes the numbers lo..hi of author a that are neither
// applied nor skipped as skipped, and moves a's version vector entry over
// what follows it (replaying a skip entry); l.mu held.
func (l *List) announceRange(a identity.AgentID, lo, hi uint64) {
	l.skip.addFreeApplied(a, lo, hi, l.logs[a])
	l.advance(a)
}
