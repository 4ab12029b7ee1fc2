package pubsub

import (
	"errors"
	"slices"
	"time"

	"lukechampine.com/blake3"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
)

func (ps *PubSub) onFrame(from identity.PeerID, b []byte) {
	f, err := DecodeFrame(b)
	ps.onDecoded(from, f, len(b), err)
}

// onDecoded handles a decoded frame of size bytes (or its decoding error).
// It runs on the transport's goroutine for the sender. The frame is charged
// to the sender's rate first; then the messages it carries that are new
// have their payload hash and signature checked without the lock, so that
// verification runs in parallel across peers and topics; then the frame is
// handled under the lock.
func (ps *PubSub) onDecoded(from identity.PeerID, f *Frame, size int, err error) {
	cs := contentsOf(f, err)
	admitted := false
	var validators []Validator // by message, for those to check
	ps.do(func() {
		if err != nil {
			// Honest peers never send undecodable frames: drop the peer.
			ps.stats.DropMalformed++
			ps.net.Disconnect(from)
			return
		}
		if !ps.admitFrame(from, size) {
			return
		}
		admitted = true
		t := ps.topics[f.Topic]
		msgs := f.messages()
		for i := range cs {
			// Only messages that handle would verify are checked: new
			// ones (cheap dedup first) of a topic we subscribe to, or
			// walks we would pass on.
			c := &cs[i]
			topicOK := t != nil && msgs[i].Header.Topic == t.id
			walk := f.Kind == kindPublish && f.Hops > 0
			c.skip = c.err != nil || ps.dedup.has(c.id.Short()) || !(topicOK || walk)
			if v := ps.validators[msgs[i].Header.Topic]; v != nil && topicOK && !c.skip {
				if validators == nil {
					validators = make([]Validator, len(cs))
				}
				validators[i] = v
			}
		}
	})
	if !admitted {
		return
	}
	msgs := f.messages()
	for i := range cs {
		if !cs[i].skip {
			cs[i].err = ps.checkContent(cs[i].hb, msgs[i])
			cs[i].checked = true
			if cs[i].err == nil && validators != nil && validators[i] != nil {
				cs[i].rejected = runValidator(validators[i], deliveryOf(cs[i].id, msgs[i], f.Hops))
			}
		}
	}
	ps.do(func() { ps.handle(from, f, cs) })
}

// content is a received message's encoded header and ID, computed and
// (unless skipped) checked without the lock: err is the header's encoding
// error, or after the check errPayloadHash or the Verifier's verdict.
type content struct {
	hb            []byte
	id            MsgID
	err           error
	rejected      error // the topic Validator's verdict, if one ran
	skip, checked bool
}

// contentsOf encodes and hashes the headers of the messages f carries.
func contentsOf(f *Frame, decodeErr error) []content {
	if decodeErr != nil {
		return nil
	}
	msgs := f.messages()
	cs := make([]content, len(msgs))
	for i, m := range msgs {
		cs[i].hb, cs[i].err = m.Header.bytes()
		if cs[i].err == nil {
			cs[i].id = MsgID(blake3.Sum256(cs[i].hb))
		}
	}
	return cs
}

// errPayloadHash: a payload that does not match its signed hash.
var errPayloadHash = errors.New("pubsub: payload does not match its hash")

// checkContent checks a message's payload hash and origin signature; it
// touches no pub/sub state.
func (ps *PubSub) checkContent(hb []byte, msg *Signed) error {
	if blake3.Sum256(msg.Payload) != msg.Header.PayloadHash {
		return errPayloadHash
	}
	return ps.cfg.Verifier.Verify(msg.Header.Origin, hb, msg.Sig)
}

func (ps *PubSub) handle(from identity.PeerID, f *Frame, cs []content) {
	t := ps.topics[f.Topic]
	switch f.Kind {
	case kindGossip, kindPublish:
		ps.stats.PayloadsReceived++
		c := &cs[0]
		if c.err != nil && !c.checked {
			ps.stats.DropMalformed++
			return
		}
		hb, id := c.hb, c.id
		if f.Msg.Header.Topic != f.Topic && f.Kind == kindGossip {
			ps.stats.DropMalformed++
			return
		}
		if f.Kind == kindGossip && t != nil {
			ps.topicPeer(t, from)
		}
		ps.accept(from, id, hb, f.Msg, f.Hops, f.Kind, c)
	case kindIHave:
		if !ps.topicPeer(t, from) {
			ps.stats.DropNotSubscribed++
			return
		}
		ps.heardIHave(t, from, f.Short)
	case kindGraft:
		if !ps.topicPeer(t, from) {
			ps.stats.DropNotSubscribed++
			return
		}
		ps.toEager(t, from)
		for _, id := range f.Short {
			if s := t.store[id]; s != nil {
				ps.send(from, link.PriorityEager, &Frame{Kind: kindGossip, Msg: &s.msg, Hops: sat(s.hops)})
			}
		}
	case kindIWant:
		if !ps.topicPeer(t, from) {
			ps.stats.DropNotSubscribed++
			return
		}
		var msgs []Signed
		var hops []byte
		for _, id := range f.Short {
			if s := t.store[id]; s != nil && len(msgs) < MaxMsgsPerFrame {
				msgs = append(msgs, s.msg)
				hops = append(hops, sat(s.hops))
			}
		}
		if len(msgs) > 0 {
			ps.send(from, link.PriorityEager, &Frame{Kind: kindAEPush, Topic: t.id, Msgs: msgs, MsgHops: hops, Reply: true})
		}
	case kindPrune:
		if t != nil {
			ps.toLazy(t, from)
		}
	case kindTopics:
		if slices.Contains(ps.active, from) {
			// Only active neighbours' subscriptions are remembered (bounded).
			ps.nbTopics[from] = slices.Clone(f.Topics)
		}
		for _, id := range ps.order {
			t := ps.topics[id]
			if slices.Contains(f.Topics, id) {
				if slices.Contains(ps.active, from) && !t.isPeer(from) && !ps.addPeer(t, from) {
					ps.send(from, link.PriorityControl, &Frame{Kind: kindTopicLeave, Topic: id})
				}
			} else {
				ps.removePeer(t, from)
			}
		}
	case kindFind:
		ps.onFind(from, f)
	case kindTopicJoin:
		if f.Reply {
			if !f.Accept && t != nil {
				ps.removePeer(t, from)
			}
			return
		}
		ok := t != nil && (t.isPeer(from) || ps.addPeer(t, from))
		ps.send(from, link.PriorityControl, &Frame{Kind: kindTopicJoin, Topic: f.Topic, Reply: true, Accept: ok})
	case kindTopicLeave:
		if t != nil {
			ps.removePeer(t, from)
		}
	case kindTree:
		if !ps.topicPeer(t, from) {
			ps.stats.DropNotSubscribed++
			return
		}
		ps.onTree(t, from, f.Tree)
	case kindAESketch, kindAERetry, kindAEWant, kindAEPush, kindAEIDs:
		if t == nil {
			ps.stats.DropNotSubscribed++
			return
		}
		ps.onAntiEntropy(t, from, f, cs)
	}
}

func sat(h uint8) uint8 {
	if h == 255 {
		return h
	}
	return h + 1
}

// accept validates and processes a full message from peer from (or from
// ourselves for local publishes, with c nil). hb is the encoded header (id
// is its BLAKE3 hash); c holds the result of checking it outside the lock,
// if that was done.
func (ps *PubSub) accept(from identity.PeerID, id MsgID, hb []byte, msg *Signed, hops uint8, kind uint8, c *content) bool {
	t := ps.topics[msg.Header.Topic]
	local := from == ps.self.ID
	walkTTL := uint8(0)
	if kind == kindPublish {
		// A PUBLISH frame's hop field is the walk's remaining TTL.
		walkTTL, hops = hops, 0
	}
	if ps.dedup.has(id.Short()) {
		ps.stats.Duplicates++
		if t != nil {
			ps.timeCopy(t, from, kind, t.store[id.Short()])
		}
		switch {
		case kind != kindGossip:
			ps.stats.DuplicatesPulled++
		case t != nil && ps.isTreeLink(t, from):
			// Tree links stay eager: a duplicate on them comes from a
			// repair or a tree change.
			ps.stats.DuplicatesTree++
		default:
			ps.stats.DuplicatesEager++
			if t != nil && t.isPeer(from) {
				// Plumtree: a duplicate on a link that is not a tree link
				// makes it lazy on both sides (the sender may consider us
				// eager even if we had it lazy already).
				ps.toLazy(t, from)
				ps.stats.PrunesSent++
				ps.send(from, link.PriorityControl, &Frame{Kind: kindPrune, Topic: t.id})
			}
		}
		return false
	}
	if t == nil && !local {
		if kind == kindPublish && walkTTL > 0 {
			// A walk is verified before it is passed on, and its remaining
			// hops are capped at WalkTTL whatever the sender wrote: a forged
			// walk goes nowhere and a valid one costs at most WalkTTL
			// frames. (Walks are not put in the dedup cache: a walk that
			// cycles back through a node must go on, or sparse topics lose
			// messages under churn.)
			if err := ps.validate(from, id, hb, msg, c); err != nil {
				return false
			}
			if !ps.admitOrigin(msg.Header.Origin) {
				return false
			}
			ps.stats.WalksForwarded++
			ps.forwardWalk(from, msg, uint8(min(int(walkTTL), ps.cfg.WalkTTL, 255))-1)
			return false
		}
		ps.stats.DropNotSubscribed++
		return false
	}
	if !local {
		if err := ps.validate(from, id, hb, msg, c); err != nil {
			return false
		}
		if c != nil && c.rejected != nil {
			// The application refused it: never delivered or forwarded,
			// and remembered so that no repair fetches it again.
			ps.stats.DropRejected++
			ps.dedup.add(id.Short(), ps.cfg.Clock.Now())
			return false
		}
		if !ps.admitOrigin(msg.Header.Origin) {
			return false
		}
	}
	ps.dedup.add(id.Short(), ps.cfg.Clock.Now())
	ps.replay.mark(msg.Header.Origin, msg.Header.Seq, id)
	if t == nil {
		// A local publish to a topic we do not subscribe to.
		ps.handOff(msg)
		return true
	}
	if !local && kind == kindGossip {
		ps.toEager(t, from)
		if from == t.tree.self.Parent {
			// Only new, valid messages count: replaying old ones must not
			// let a parent that drops the new ones pass for working.
			t.parentHeard = ps.cfg.Clock.Now()
		}
	}
	s := ps.store(t, id, msg, hops)
	var announcers []identity.PeerID // have it: no IHAVE to them
	if m := t.missing[id.Short()]; m != nil {
		m.timer.Stop()
		announcers = m.announcers
		delete(t.missing, id.Short())
		if s != nil {
			s.known, s.pulled, s.pulledFrom = m.since, m.pulled, m.pulledFrom
		}
	}
	if !local {
		ps.timeCopy(t, from, kind, s)
	}
	ps.deliver(t, id, msg, hops)
	// Plumtree: eager push to the tree, lazy announcement to the rest.
	b, err := EncodeFrame(&Frame{Kind: kindGossip, Msg: msg, Hops: sat(hops)})
	if err != nil {
		ps.stats.SendErrors++
		return true
	}
	for _, p := range slices.Clone(t.eager) {
		if p == from {
			continue
		}
		if !ps.sendBytes(p, link.PriorityEager, b) {
			// Slow or broken peer: demote it; it will GRAFT if it needs to.
			ps.toLazy(t, p)
			ps.queueIHave(t, p, id.Short())
		}
	}
	for _, p := range t.lazy {
		if p != from && !slices.Contains(announcers, p) {
			ps.queueIHave(t, p, id.Short())
		}
	}
	return true
}

// validate checks payload hash, timestamp, origin signature and replay
// window, counting the reason for any refusal and scoring from: a payload
// that does not match its hash or a signature that does not verify is the
// sender's fault (it must have checked before forwarding); a stale, replayed
// or unknown-signer message may not be. The hash and signature verdict is
// c's if c was checked outside the lock, and computed here otherwise.
func (ps *PubSub) validate(from identity.PeerID, id MsgID, hb []byte, msg *Signed, c *content) error {
	var verdict error
	if c != nil && c.checked {
		verdict = c.err
	} else {
		ps.stats.CheckedUnderLock++
		verdict = ps.checkContent(hb, msg)
	}
	if verdict == errPayloadHash {
		ps.stats.DropPayloadHash++
		ps.scoreInvalid(from)
		return verdict
	}
	now := ps.cfg.Clock.Now()
	ts := time.UnixMilli(msg.Header.Time)
	if ts.Before(now.Add(-ps.cfg.DedupTTL)) || ts.After(now.Add(ps.cfg.MaxSkew)) {
		ps.stats.DropStale++
		return errors.New("stale")
	}
	if err := verdict; err != nil {
		if errors.Is(err, ErrUnknownSigner) {
			ps.stats.DropUnknownSigner++
		} else {
			ps.stats.DropBadSignature++
			ps.scoreInvalid(from)
		}
		return err
	}
	if !ps.replay.check(msg.Header.Origin, msg.Header.Seq, id) {
		ps.stats.DropReplay++
		return errors.New("replay")
	}
	ps.scoreValid(from)
	return nil
}

// store keeps msg for repair and returns its entry, or nil if it was
// already stored.
func (ps *PubSub) store(t *topic, id MsgID, msg *Signed, hops uint8) *stored {
	if t.store[id.Short()] != nil {
		// Accepted again after the dedup cache, which is bounded in
		// entries, forgot it: one copy, so that order and store agree.
		return nil
	}
	now := ps.cfg.Clock.Now()
	for len(t.order) > 0 {
		old := t.store[t.order[0].Short()]
		expired := now.Sub(old.at) > ps.cfg.DedupTTL
		overBudget := t.storeB+storedSize(msg) > ps.cfg.StoreBytes
		if !expired && !overBudget {
			break
		}
		if !expired {
			ps.stats.StoreEvicted++
		}
		t.dropOldest()
	}
	s := &stored{msg: *msg, hops: hops, at: now, known: now}
	t.store[id.Short()] = s
	t.order = append(t.order, id)
	t.storeB += storedSize(msg)
	return s
}

// timeCopy times a copy of stored message s that arrived from from in a
// frame of kind (see lateness): the first copy over a tree link against
// when we first learned of the message, and the answer to our latest IWANT
// for it against when we sent that. s may be nil (already evicted).
func (ps *PubSub) timeCopy(t *topic, from identity.PeerID, kind uint8, s *stored) {
	if s == nil {
		return
	}
	now := ps.cfg.Clock.Now()
	switch {
	case kind == kindGossip && !s.treeTimed && ps.isTreeLink(t, from):
		s.treeTimed = true
		t.treeLate.add(now.Sub(s.known))
	case kind == kindAEPush && from == s.pulledFrom && !s.pulled.IsZero():
		t.pullLate.add(now.Sub(s.pulled))
		s.pulled = time.Time{} // one sample per IWANT
	}
}

// storedOverhead bounds what a stored message costs besides its payload
// and signature: its struct (with the header), its map entry and its order
// slot, each counted at the worst fill of the map and the slice
// (TestStoredOverheadCoversTheEntry).
const storedOverhead = 448

// storedSize is what msg costs in a topic's store (the store's budget is
// in these bytes, not in messages).
func storedSize(msg *Signed) int { return len(msg.Payload) + len(msg.Sig) + storedOverhead }

// dropOldest removes the oldest stored message.
func (t *topic) dropOldest() {
	t.storeB -= storedSize(&t.store[t.order[0].Short()].msg)
	delete(t.store, t.order[0].Short())
	t.order = t.order[1:]
}

func (ps *PubSub) deliver(t *topic, id MsgID, msg *Signed, hops uint8) {
	ps.stats.Delivered++
	d := deliveryOf(id, msg, hops)
	for _, s := range t.subs {
		if s.fn != nil {
			fn := s.fn
			ps.later(func() { fn(d) })
			continue
		}
		select {
		case s.c <- d:
		default:
			ps.stats.SubscriberOverflow++
		}
	}
}
