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
	l.memo(peer).asked = l.clk.Now()
	l.mu.Unlock()
	f, err := encodeFrame(&frameWire{T: frameRequest, List: l.id, VV: &vv, Reply: reply})
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
		l.receive(f.Deltas[0])
	case !direct:
		l.countDrop(fmt.Errorf("%w: catch-up frame type %d broadcast", ErrMalformed, f.T), "frame")
	case f.T == frameRequest:
		l.stats.SyncRequestsReceived++
		l.answer(from, *f.VV, f.Reply)
	case f.T == frameDeltas:
		for _, raw := range f.Deltas {
			l.receive(raw)
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
	if len(l.unsaved) == 0 && !l.nameDirty {
		return
	}
	ds := l.unsaved
	l.unsaved = nil
	var name *string
	if l.nameDirty {
		n := l.name.Value()
		name = &n
		l.nameDirty = false
	}
	if l.store == nil || l.failed != nil {
		return
	}
	if err := l.store.appendDeltas(l.id, uint64(len(l.order)-len(ds)), ds, name); err != nil {
		l.failed = fmt.Errorf("%w: %v", ErrStoreFailed, err)
		l.log.Error("tasklist: persisting received deltas failed; list stops", "err", err)
		return
	}
	l.maybeSnapshot()
}

// answer queues the deltas a requester with version vector theirs lacks,
// in causal (apply) order, in frames of at most SyncChunkSize and at most
// MaxSyncBytes in all (the last frame says More when it stopped early),
// and a request back if the requester has deltas this replica lacks;
// l.mu held.
func (l *List) answer(peer identity.PeerID, theirs crdt.VersionVector, reply bool) {
	now := l.clk.Now()
	m := l.memo(peer)
	// A repeat of the request answered moments ago (sent before the
	// answer arrived) only gets what this replica gained since.
	eff := theirs
	if now.Sub(m.answered) < gapSyncDelay && theirs.Equal(m.theirs) {
		eff = m.covered
	}
	covered := eff.Clone()
	// Deltas a snapshot restore left in the store are read from it; the
	// frames are encoded before the read transaction ends.
	err := l.withDeltas(func(get func(authorSeq) ([]byte, error)) error {
		var frames [][][]byte
		var cur [][]byte
		size, total, more := 0, 0, false
		for _, as := range l.order {
			if as.seq <= eff.Get(as.author) {
				continue
			}
			raw, err := get(as)
			if err != nil {
				return err
			}
			if total > 0 && total+len(raw) > MaxSyncBytes {
				more = true
				break
			}
			covered.Set(as.author, as.seq)
			if len(cur) > 0 && size+len(raw) > SyncChunkSize {
				frames = append(frames, cur)
				cur, size = nil, 0
			}
			cur = append(cur, raw)
			size += len(raw)
			total += len(raw)
		}
		if len(cur) > 0 {
			frames = append(frames, cur)
		}
		for i, ds := range frames {
			f, err := encodeFrame(&frameWire{T: frameDeltas, List: l.id, Deltas: ds, More: more && i == len(frames)-1})
			if err != nil {
				return err
			}
			l.stats.DeltasSent += uint64(len(ds))
			l.out = append(l.out, outMsg{peer: peer, frame: f})
		}
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

// maxMemos bounds the per-peer sync memos (reset when exceeded).
const maxMemos = 1024

// peerMemo remembers recent sync exchanges with one peer, to avoid
// answering the same request twice and crossing requests.
type peerMemo struct {
	asked    time.Time          // when this replica last sent it a request
	answered time.Time          // when this replica last answered it
	theirs   crdt.VersionVector // the version vector that answer was for
	covered  crdt.VersionVector // theirs plus what the answer carried
}

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
