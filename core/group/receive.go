package group

import (
	"bytes"
	"errors"
	"slices"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/mls"
	"lukechampine.com/blake3"
)

// Handle processes an MLS message published on the group's topic by agent
// origin (the pub/sub origin, verified by pub/sub's signature). Invalid
// messages are dropped and logged at debug level; messages this member
// cannot read yet are buffered. msg is not retained after the call unless
// buffered (then it is copied).
func (g *Group) Handle(origin identity.AgentID, msg []byte) {
	g.mu.Lock()
	defer g.unlock()
	if g.closed || origin == g.cfg.Self.ID() {
		return
	}
	g.handleLocked(buffered{msg: msg, origin: origin})
	g.drainLocked()
}

// handleLocked processes one message, buffering it if it may become
// readable later.
func (g *Group) handleLocked(b buffered) {
	if g.closed {
		return
	}
	info, err := mls.PeekMessage(b.msg)
	if err != nil || !bytes.Equal(info.GroupID, g.id[:]) {
		g.cfg.Logger.Debug("group: message dropped", "group", g.id.Short(), "origin", b.origin.Short(), "err", err)
		return
	}
	b.epoch = info.Epoch
	cur := g.cur.Epoch()
	if !g.ever[b.origin] && info.Kind != mls.KindProposal {
		// Anyone may publish on the topic: messages of agents this replica
		// never saw as members cost nothing but a small buffer until a
		// commit adds them (their first messages can overtake it).
		g.bufferUnknownLocked(b)
		return
	}
	switch {
	case info.Kind == mls.KindProposal:
		// x0x members make no standalone proposals: every change is a
		// commit by value, so a cached proposal can never block sending.
		g.cfg.Logger.Debug("group: proposal dropped", "group", g.id.Short(), "origin", b.origin.Short())
	case info.Epoch > cur:
		g.bufferLocked(b)
	case info.Kind == mls.KindCommit && info.Epoch < cur:
		g.contestLocked(b)
	case info.Kind == mls.KindCommit:
		g.applyCommitLocked(b)
	default:
		g.applicationLocked(b)
	}
}

// applyCommitLocked applies a commit of the current epoch, keeping the
// state before it for the fork choice.
func (g *Group) applyCommitLocked(b buffered) {
	before, err := g.cur.Clone()
	if err != nil {
		g.cfg.Logger.Debug("group: clone failed", "group", g.id.Short(), "err", err)
		return
	}
	r, err := g.cur.Process(b.msg)
	if err != nil {
		before.Close()
		// Another branch's commit of the same epoch number, or garbage:
		// keep it in case this member switches to that branch.
		g.bufferLocked(b)
		return
	}
	g.history = append(g.history, &forkPoint{epoch: b.epoch, before: before, hash: blake3.Sum256(b.msg), at: g.cfg.Clock.Now()})
	g.afterEpochLocked(r.Commit)
}

// contestLocked handles a commit of a past epoch: if its epoch is in the
// fork window and its hash is lower than the applied commit's, it wins:
// the member rolls back and applies it.
func (g *Group) contestLocked(b buffered) {
	idx := slices.IndexFunc(g.history, func(fp *forkPoint) bool { return fp.epoch == b.epoch })
	if idx < 0 {
		g.cfg.Logger.Debug("group: commit of an epoch outside the fork window dropped", "group", g.id.Short(), "epoch", b.epoch)
		return
	}
	fp := g.history[idx]
	h := blake3.Sum256(b.msg)
	if h == fp.hash {
		return // the applied commit again
	}
	trial, err := fp.before.Clone()
	if err != nil {
		return
	}
	r, err := trial.Process(b.msg)
	if err != nil {
		trial.Close()
		// A commit of another branch's epoch of this number: it may win
		// once this member switches to that branch.
		g.bufferLocked(b)
		return
	}
	if bytes.Compare(h[:], fp.hash[:]) > 0 {
		trial.Close()
		return // a commit of this branch's epoch that lost
	}
	g.cfg.Logger.Debug("group: fork choice: rolling back", "group", g.id.Short(), "epoch", b.epoch, "undone", len(g.history)-idx)
	g.stats.Rollbacks++
	undone := g.history[idx:]
	g.history = append(g.history[:idx:idx], &forkPoint{epoch: b.epoch, before: fp.before, hash: h, at: g.cfg.Clock.Now()})
	for _, u := range undone[1:] {
		u.before.Close()
	}
	g.cur.Close()
	g.cur = trial
	// Keys of the undone epochs belong to the losing branch.
	g.keys = slices.DeleteFunc(g.keys, func(k epochKey) bool {
		if k.epoch > b.epoch {
			clear(k.secret)
			return true
		}
		return false
	})
	var lost []*intent
	for _, u := range undone {
		if u.mine != nil {
			lost = append(lost, u.mine)
		}
	}
	g.afterEpochLocked(r.Commit)
	if g.closed {
		return
	}
	if len(lost) > 0 && g.restored {
		// An own commit of a restored replica was undone: its key update
		// is gone, so update again before sending.
		g.mustUpdate = true
	}
	g.resendLocked(b.epoch)
	g.redoLocked(lost)
}

// afterEpochLocked reports what a commit changed and moves the group's
// bookkeeping to the new epoch.
func (g *Group) afterEpochLocked(info *mls.CommitInfo) {
	g.changed = true
	if (info != nil && info.SelfRemoved) || !g.cur.Active() {
		g.emitLocked(Event{Kind: EventRemoved, Epoch: g.cur.Epoch()})
		g.closeLocked()
		return
	}
	now := memberIDs(g.cur)
	for _, m := range g.members {
		if !m.IsZero() && !slices.Contains(now, m) {
			g.emitLocked(Event{Kind: EventMemberLeft, Agent: m, Epoch: g.cur.Epoch()})
			delete(g.online, m)
			if t := g.removal[m]; t != nil {
				t.Stop()
				delete(g.removal, m)
			}
		}
	}
	for _, m := range now {
		if !m.IsZero() && !slices.Contains(g.members, m) {
			g.ever[m] = true
			g.emitLocked(Event{Kind: EventMemberJoined, Agent: m, Epoch: g.cur.Epoch()})
		}
	}
	g.members = now
	g.deriveKeyLocked()
	g.emitLocked(Event{Kind: EventEpochChanged, Epoch: g.cur.Epoch()})
	g.trimLocked()
}

// trimLocked forgets fork points outside the window (by count and age),
// and own messages no fork can undo any more.
func (g *Group) trimLocked() {
	g.trimKeysLocked()
	now := g.cfg.Clock.Now()
	for len(g.history) > 0 && (len(g.history) > g.cfg.ForkWindow || now.Sub(g.history[0].at) > g.cfg.ForkTime) {
		g.history[0].before.Close()
		g.history = g.history[1:]
	}
	if len(g.history) == 0 {
		g.sent = nil
		return
	}
	// A message sent in an epoch after the oldest contestable commit's
	// epoch is lost if that commit is overturned.
	oldest := g.history[0].epoch
	g.sent = slices.DeleteFunc(g.sent, func(s sentMessage) bool { return s.epoch <= oldest })
	size := 0
	for i := len(g.sent) - 1; i >= 0; i-- {
		size += len(g.sent[i].env)
		if size > g.cfg.BufferBytes {
			g.sent = g.sent[i+1:]
			break
		}
	}
}

// applicationLocked decrypts an application message of the current or a
// past epoch and delivers it once.
func (g *Group) applicationLocked(b buffered) {
	r, err := g.cur.Process(b.msg)
	if err != nil {
		if b.epoch >= g.forkFloorLocked() && !errors.Is(err, mls.ErrReplay) {
			g.bufferLocked(b) // maybe of a branch this member has not switched to yet
		} else {
			g.cfg.Logger.Debug("group: application message dropped", "group", g.id.Short(), "epoch", b.epoch, "err", err)
		}
		return
	}
	if r.Kind != mls.KindApplication {
		return
	}
	sender, ok := g.senderLocked(r.Epoch, r.Sender)
	if !ok || sender != b.origin {
		g.cfg.Logger.Debug("group: message published by another agent than its sender dropped", "group", g.id.Short(),
			"origin", b.origin.Short())
		return
	}
	k, seq, data, err := decodeEnvelope(r.ApplicationData)
	if err != nil {
		g.cfg.Logger.Debug("group: bad envelope", "group", g.id.Short(), "from", sender.Short(), "err", err)
		return
	}
	w := g.seen[sender]
	if w == nil {
		w = &seqWindow{}
		g.seen[sender] = w
	}
	if !w.add(seq) {
		return // a copy re-sent after a fork choice
	}
	switch k {
	case kindMessage:
		if f := g.cfg.OnMessage; f != nil {
			m := Message{From: sender, Data: bytes.Clone(data), Epoch: r.Epoch, Seq: seq}
			g.out = append(g.out, func() { f(m) })
		}
	case kindPresence:
		last, seen := g.online[sender]
		g.online[sender] = g.cfg.Clock.Now()
		if !seen || g.cfg.Clock.Now().Sub(last) > g.cfg.PresenceTTL {
			g.emitLocked(Event{Kind: EventOnline, Agent: sender, Epoch: g.cur.Epoch()})
		}
	case kindLeave:
		g.scheduleRemovalLocked(sender, false)
	}
}

// senderLocked returns the agent at leaf in epoch (the current one or one
// of the fork window's).
func (g *Group) senderLocked(epoch uint64, leaf uint32) (identity.AgentID, bool) {
	members := g.members
	if epoch != g.cur.Epoch() {
		members = nil
		for _, fp := range g.history {
			if fp.epoch == epoch {
				members = memberIDs(fp.before)
			}
		}
	}
	if int(leaf) >= len(members) || members[leaf].IsZero() {
		return identity.AgentID{}, false
	}
	return members[leaf], true
}

// bufferUnknownLocked keeps a message of an agent not (yet) known as a
// member, within UnknownBufferBytes, evicting the oldest such message.
func (g *Group) bufferUnknownLocked(b buffered) {
	if len(b.msg) > UnknownBufferBytes {
		return
	}
	b.msg = bytes.Clone(b.msg)
	g.unknown = append(g.unknown, b)
	g.unknownSize += len(b.msg)
	for g.unknownSize > UnknownBufferBytes {
		g.unknownSize -= len(g.unknown[0].msg)
		g.unknown = g.unknown[1:]
		g.stats.Evicted++
	}
}

// bufferLocked keeps a message for a later epoch, evicting the oldest
// beyond the byte budget.
func (g *Group) bufferLocked(b buffered) {
	if len(b.msg) > g.cfg.BufferBytes {
		return
	}
	b.msg = bytes.Clone(b.msg)
	g.stats.Buffered++
	g.buffer = append(g.buffer, b)
	g.bufSize += len(b.msg)
	for g.bufSize > g.cfg.BufferBytes {
		g.bufSize -= len(g.buffer[0].msg)
		g.buffer = g.buffer[1:]
		g.stats.Evicted++
	}
}

// forkFloorLocked is the oldest epoch a fork choice can still return to
// (the current one if none).
func (g *Group) forkFloorLocked() uint64 {
	if len(g.history) > 0 {
		return g.history[0].epoch
	}
	return g.cur.Epoch()
}

// drainLocked retries the buffered messages after each epoch change until
// a pass changes nothing; those of epochs outside the fork window are
// dropped.
func (g *Group) drainLocked() {
	for g.changed && !g.closed {
		g.changed = false
		pending := append(g.buffer, g.unknown...)
		g.buffer, g.bufSize = nil, 0
		g.unknown, g.unknownSize = nil, 0
		floor := g.forkFloorLocked()
		for _, b := range pending {
			if b.epoch < floor || g.closed {
				continue
			}
			g.handleLocked(b)
		}
	}
}
