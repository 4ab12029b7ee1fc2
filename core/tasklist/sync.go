package tasklist

import (
	"fmt"
	"time"

	"github.com/saorsa-labs/x0x-go/core/crdt"
	"github.com/saorsa-labs/x0x-go/core/identity"
)

// outMsg is a message queued under l.mu and sent after it is released.
type outMsg struct {
	broadcast []byte          // a signed local delta to broadcast
	request   bool            // a SyncRequest (built at send time)
	reply     bool            // the request answers another (no request back)
	random    bool            // request: to a random peer instead of peer
	peer      identity.PeerID // request or frame: the destination
	frame     []byte          // an encoded frame to Send to peer
}

// takeOut removes and returns the queued messages; l.mu held.
func (l *List) takeOut() []outMsg {
	out := l.out
	l.out = nil
	return out
}

// send sends queued messages; l.mu must not be held.
func (l *List) send(out []outMsg) {
	for _, m := range out {
		switch {
		case m.broadcast != nil:
			f, err := encodeFrame(&frameWire{T: frameDelta, List: l.id, Deltas: [][]byte{m.broadcast}})
			if err == nil {
				err = l.tr.Broadcast(f)
			}
			l.counted(err, len(f), func(s *Stats) { s.DeltasBroadcast++ })
		case m.request:
			peer := m.peer
			if m.random {
				p, ok := l.randomPeer()
				if !ok {
					continue
				}
				peer = p
			}
			l.sendRequest(peer, m.reply)
		case m.frame != nil:
			err := l.tr.Send(m.peer, m.frame)
			l.counted(err, len(m.frame), nil)
		}
	}
}

// counted records the outcome of one transport call.
func (l *List) counted(err error, n int, ok func(*Stats)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.stats.Drops.SendErrors++
		l.log.Debug("tasklist: send failed", "err", err)
		return
	}
	l.stats.BytesSent += uint64(n)
	if ok != nil {
		ok(&l.stats)
	}
}

// sendRequest sends a SyncRequest carrying this replica's version vector.
// reply marks a request made in answer to another one: its receiver
// answers with deltas only.
func (l *List) sendRequest(peer identity.PeerID, reply bool) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	vv := l.vv.Clone()
	now := l.clk.Now()
	m := l.memo(peer)
	m.asked = now
	// What this replica skipped goes to every peer once per change (and
	// again after a while), so that honest ones fill in what a hostile
	// sender withheld (statesync.go); not in the requests that continue
	// an answer (a state transfer changes it at every step).
	var skips []byte
	if !reply && !l.skip.empty() && (m.skipVer != l.skipVer || now.Sub(m.skipSent) >= skipResend) {
		skips = encodeSkips(&l.skip, maxSkipBytes)
		m.skipVer, m.skipSent = l.skipVer, now
	}
	// The deltas it holds unapplied right after what it has (and the
	// numbers it was told are superseded) need not come again: an answer
	// continues after them (a state transfer can need deltas further on
	// to apply what it sent first).
	var held *crdt.VersionVector
	for a, ds := range l.pending {
		s := l.vv.Get(a)
		for {
			if _, ok := ds[s+1]; ok {
				s++
				continue
			}
			if i, ok := l.skip.find(a, s+1); ok {
				s = l.skip.m[a][i].hi
				continue
			}
			break
		}
		if s > l.vv.Get(a) {
			if held == nil {
				held = &crdt.VersionVector{}
			}
			held.Set(a, s)
		}
	}
	l.mu.Unlock()
	self := l.selfID
	f, err := encodeFrame(&frameWire{T: frameRequest, List: l.id, VV: &vv, Reply: reply, Skips: skips, Held: held, Self: self[:]})
	if err == nil {
		err = l.tr.Send(peer, f)
	}
	l.counted(err, len(f), func(s *Stats) { s.SyncRequestsSent++ })
}

// handleFrame processes one received payload (on the worker goroutine).
func (l *List) handleFrame(direct bool, from identity.PeerID, payload []byte) {
	f, err := decodeFrame(payload)
	l.mu.Lock()
	l.stats.BytesReceived += uint64(len(payload))
	switch {
	case l.closed || l.failed != nil:
	case err != nil:
		l.countDrop(err, "frame")
	case f.List != l.id:
		l.countDrop(errWrongList, "frame")
	case f.T == frameDelta:
		l.receive(f.Deltas[0], false)
	case !direct:
		l.countDrop(fmt.Errorf("%w: catch-up frame type %d broadcast", ErrMalformed, f.T), "frame")
	case f.T == frameRequest:
		l.stats.SyncRequestsReceived++
		var skips seqSet
		if len(f.Skips) > 0 {
			if skips, err = decodeSkips(f.Skips, maxSkipBytes); err != nil {
				l.countDrop(err, "sync request")
				break
			}
		}
		var held crdt.VersionVector
		if f.Held != nil {
			held = *f.Held
		}
		var self identity.AgentID
		if f.Self != nil {
			self = identity.AgentID(f.Self)
		}
		l.answer(from, *f.VV, held, self, f.Reply, &skips)
	case f.T == frameDeltas, f.T == frameState:
		for _, raw := range f.Deltas {
			l.receive(raw, f.T == frameState)
		}
		if f.More {
			l.out = append(l.out, outMsg{request: true, reply: true, peer: from})
		}
	}
	l.persistUnsaved()
	out := l.takeOut()
	l.mu.Unlock()
	l.send(out)
}

// persistUnsaved writes the remote deltas applied since the last write in
// one transaction; l.mu held. A failure marks the list failed.
func (l *List) persistUnsaved() {
	if len(l.unsaved) == 0 && !l.nameDirty && !l.skipDirty {
		return
	}
	es := l.unsaved
	l.unsaved = nil
	var name *string
	if l.nameDirty {
		n := l.name.Value()
		name = &n
		l.nameDirty = false
	}
	var ck []byte
	if l.skipDirty {
		ck = l.ckRecord()
		l.skipDirty = false
	}
	if l.store == nil || l.failed != nil {
		return
	}
	if err := l.store.appendDeltas(l.id, l.logLen-uint64(len(es)), es, name, ck); err != nil {
		l.failed = fmt.Errorf("%w: %v", ErrStoreFailed, err)
		l.log.Error("tasklist: persisting received deltas failed; list stops", "err", err)
		return
	}
	l.maybeSnapshot()
}

// answer queues, for a requester (agent self) with version vector theirs,
// holding unapplied the deltas up to held, that skipped skips: the deltas
// of skips that are effective here (repairSet; applied late there), then
// the deltas it lacks, in causal (apply) order; when it lacks at least
// compactMin, only the effective ones (a state transfer: frameState
// frames, whose gaps name the superseded deltas, statesync.go), and
// frameState too whenever this replica skipped some of them itself.
// Frames are at most SyncChunkSize and MaxSyncBytes in all (the last frame
// says More when it stopped early); a request back follows if the
// requester has deltas this replica lacks. l.mu held.
func (l *List) answer(peer identity.PeerID, theirs, held crdt.VersionVector, self identity.AgentID, reply bool, skips *seqSet) {
	now := l.clk.Now()
	m := l.memo(peer)
	// A repeat of the request answered moments ago (sent before the
	// answer arrived) only gets what this replica gained since; and what
	// the requester holds unapplied is not sent again.
	eff := theirs.Clone()
	if now.Sub(m.answered) < gapSyncDelay && theirs.Equal(m.theirs) {
		eff = m.covered.Clone()
	}
	eff.Merge(held)
	covered := eff.Clone()
	var repair []authorSeq
	if !skips.empty() {
		repair = l.repairSet(theirs, self, skips)
	}
	var missing uint64
	for _, a := range l.vv.Replicas() {
		if v, e := l.vv.Get(a), eff.Get(a); v > e {
			missing += v - e
		}
	}
	var kept map[authorSeq]struct{}
	var need map[authorSeq]bool
	if missing >= compactMin {
		kept, need = l.keptSet(), l.neededBy(theirs, self, skips)
	}
	// Deltas a snapshot restore left in the store are read from it; the
	// frames are encoded before the read transaction ends.
	err := l.withDeltas(func(get func(authorSeq) ([]byte, error)) error {
		total, more := 0, false
		take := func(as authorSeq) ([]byte, bool, error) {
			raw, err := get(as)
			if err != nil {
				return nil, false, err
			}
			if total > 0 && total+len(raw) > MaxSyncBytes {
				more = true
				return nil, false, nil
			}
			total += len(raw)
			return raw, true, nil
		}
		var fills, ds [][]byte
		for _, as := range repair {
			raw, ok, err := take(as)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			fills = append(fills, raw)
		}
		gaps, omitted := false, uint64(0)
		for _, as := range l.order {
			if more || as.seq <= eff.Get(as.author) {
				continue
			}
			if kept != nil {
				if _, ok := kept[as]; !ok && !need[as] {
					omitted++
					continue
				}
			}
			raw, ok, err := take(as)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			if as.seq != covered.Get(as.author)+1 {
				gaps = true
			}
			covered.Set(as.author, as.seq)
			ds = append(ds, raw)
		}
		t := uint8(frameDeltas)
		if gaps {
			t = frameState
		}
		frames := chunk(frameDeltas, fills)
		frames = append(frames, chunk(t, ds)...)
		for i, fr := range frames {
			fr.List, fr.More = l.id, more && i == len(frames)-1
			f, err := encodeFrame(fr)
			if err != nil {
				return err
			}
			l.stats.DeltasSent += uint64(len(fr.Deltas))
			l.out = append(l.out, outMsg{peer: peer, frame: f})
		}
		l.stats.DeltasOmitted += omitted
		return nil
	})
	if err != nil {
		l.log.Error("tasklist: building catch-up frames", "err", err)
		return
	}
	m.answered, m.theirs, m.covered = now, theirs.Clone(), covered
	// Ask back if the requester has deltas this replica lacks, unless a
	// request to it is already under way.
	if reply || now.Sub(m.asked) < gapSyncDelay {
		return
	}
	for _, r := range theirs.Replicas() {
		if theirs.Get(r) > l.vv.Get(r) {
			l.out = append(l.out, outMsg{request: true, reply: true, peer: peer})
			return
		}
	}
}

// chunk packs deltas into frames of type t of at most SyncChunkSize.
func chunk(t uint8, ds [][]byte) []*frameWire {
	var out []*frameWire
	var cur [][]byte
	size := 0
	for _, raw := range ds {
		if len(cur) > 0 && size+len(raw) > SyncChunkSize {
			out = append(out, &frameWire{T: t, Deltas: cur})
			cur, size = nil, 0
		}
		cur = append(cur, raw)
		size += len(raw)
	}
	if len(cur) > 0 {
		out = append(out, &frameWire{T: t, Deltas: cur})
	}
	return out
}

// maxMemos bounds the per-peer sync memos (reset when exceeded).
const maxMemos = 1024

// peerMemo remembers recent sync exchanges with one peer, to avoid
// answering the same request twice and crossing requests.
type peerMemo struct {
	asked    time.Time          // when this replica last sent it a request
	answered time.Time          // when this replica last answered it
	theirs   crdt.VersionVector // the version vector that answer was for
	covered  crdt.VersionVector // theirs plus what the answer carried
	skipVer  uint64             // the version of the skip set last sent to it
	skipSent time.Time          // when it was sent
}

// skipResend is how long after sending a peer this replica's skip set it
// sends it again unchanged.
const skipResend = 10 * time.Minute

// memo returns peer's memo, creating it; l.mu held.
func (l *List) memo(peer identity.PeerID) *peerMemo {
	m := l.memos[peer]
	if m == nil {
		if len(l.memos) >= maxMemos {
			clear(l.memos)
		}
		m = &peerMemo{}
		l.memos[peer] = m
	}
	return m
}
