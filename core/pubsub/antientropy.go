package pubsub

import (
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
)

// Anti-entropy, every AEInterval for each subscribed topic:
//
//	A -> B  AESKETCH  IBLT (66<<level cells) of A's recent message IDs
//	B       subtracts its own IBLT of the same size and peels the difference
//	B -> A  AEPUSH    the messages A lacks (in chunks)
//	B -> A  AEWANT    the IDs B lacks;  A -> B AEPUSH with those messages
//	B -> A  AERETRY   if the difference did not decode: A sends level+1
//	B -> A  AEIDS     at the largest level: B's full recent ID list instead
//
// Messages that arrive through anti-entropy are processed as new ones:
// delivered and pushed down the tree, so one pull repairs a whole region.

// recentIDs lists the stored IDs whose origin timestamp is within AEWindow.
func (ps *PubSub) recentIDs(t *topic) []MsgID {
	cutoff := ps.cfg.Clock.Now().Add(-ps.cfg.AEWindow).UnixMilli()
	out := make([]MsgID, 0, len(t.order))
	for _, id := range t.order {
		if t.store[id.Short()].msg.Header.Time >= cutoff {
			out = append(out, id)
		}
	}
	return out
}

func (ps *PubSub) sketch(t *topic, level uint8) []byte {
	tb := NewIBLT(sketchCells(level))
	for _, id := range ps.recentIDs(t) {
		tb.Insert(id)
	}
	return tb.MarshalBinary()
}

func (ps *PubSub) antiEntropy() {
	for _, id := range ps.order {
		t := ps.topics[id]
		peers := t.peers()
		if len(peers) == 0 {
			continue
		}
		ps.aeRound(t, peers[ps.rng.IntN(len(peers))])
	}
}

// aeRound starts reconciling t's recent messages with p.
func (ps *PubSub) aeRound(t *topic, p identity.PeerID) {
	ps.stats.AERounds++
	ps.send(p, link.PriorityLazy, &Frame{Kind: kindAESketch, Topic: t.id, Cells: ps.sketch(t, 0)})
}

func (ps *PubSub) onAntiEntropy(t *topic, from identity.PeerID, f *Frame, cs []content) {
	switch f.Kind {
	case kindAESketch:
		theirs, err := UnmarshalIBLT(f.Cells)
		if err != nil || theirs.Len() != sketchCells(f.Level) {
			ps.stats.DropMalformed++
			return
		}
		mine := NewIBLT(theirs.Len())
		for _, id := range ps.recentIDs(t) {
			mine.Insert(id)
		}
		diff, _ := theirs.Subtract(mine)
		theyHave, weHave, err := diff.Decode()
		if err != nil {
			if f.Level < maxAELevel {
				ps.send(from, link.PriorityLazy, &Frame{Kind: kindAERetry, Topic: t.id, Level: f.Level + 1})
				return
			}
			ps.stats.AEFallbacks++
			ids := ps.recentIDs(t)
			if len(ids) > MaxIDsPerFrame {
				ids = ids[len(ids)-MaxIDsPerFrame:]
			}
			ps.send(from, link.PriorityLazy, &Frame{Kind: kindAEIDs, Topic: t.id, IDs: ids})
			return
		}
		ps.push(t, from, weHave)
		ps.want(t, from, theyHave)
	case kindAERetry:
		ps.send(from, link.PriorityLazy, &Frame{Kind: kindAESketch, Topic: t.id, Level: f.Level, Cells: ps.sketch(t, f.Level)})
	case kindAEIDs:
		theirs := make(map[MsgID]bool, len(f.IDs))
		for _, id := range f.IDs {
			theirs[id] = true
		}
		var missingThere []MsgID
		for _, id := range ps.recentIDs(t) {
			if !theirs[id] {
				missingThere = append(missingThere, id)
			}
		}
		ps.push(t, from, missingThere)
		ps.want(t, from, f.IDs)
	case kindAEWant:
		ps.push(t, from, f.IDs)
	case kindAEPush:
		for i := range f.Msgs {
			msg := &f.Msgs[i]
			ps.stats.PayloadsReceived++
			if msg.Header.Topic != t.id {
				ps.stats.DropMalformed++
				continue
			}
			c := &cs[i]
			if c.err != nil && !c.checked {
				ps.stats.DropMalformed++
				continue
			}
			var hops uint8
			if len(f.MsgHops) == len(f.Msgs) {
				hops = f.MsgHops[i]
			}
			if ps.accept(from, c.id, c.hb, msg, hops, kindAEPush, c) {
				if f.Reply {
					ps.stats.IWantPulled++
				} else {
					ps.stats.AEPulled++
				}
			}
		}
	}
}

// want asks from for the IDs we have not seen.
func (ps *PubSub) want(t *topic, from identity.PeerID, ids []MsgID) {
	var need []MsgID
	for _, id := range ids {
		if !ps.dedup.has(id.Short()) {
			need = append(need, id)
		}
	}
	for len(need) > 0 {
		n := min(len(need), MaxIDsPerFrame)
		ps.send(from, link.PriorityLazy, &Frame{Kind: kindAEWant, Topic: t.id, IDs: need[:n]})
		need = need[n:]
	}
}

// push sends the stored messages among ids to peer, in bounded chunks.
func (ps *PubSub) push(t *topic, to identity.PeerID, ids []MsgID) {
	var batch []Signed
	var hops []byte
	size := 0
	flush := func() {
		if len(batch) > 0 {
			ps.send(to, link.PriorityLazy, &Frame{Kind: kindAEPush, Topic: t.id, Msgs: batch, MsgHops: hops})
			batch, hops, size = nil, nil, 0
		}
	}
	for _, id := range ids {
		s := t.store[id.Short()]
		if s == nil {
			continue
		}
		batch = append(batch, s.msg)
		hops = append(hops, sat(s.hops))
		size += len(s.msg.Payload) + len(s.msg.Sig) + 128
		if len(batch) == MaxMsgsPerFrame || size > 1<<20 {
			flush()
		}
	}
	flush()
}
