package pubsub

import (
	"errors"
	"fmt"
	"time"
)

// Validator is an application's check of a topic's messages. It runs after
// the origin's signature, payload hash, timestamp and replay window have
// been checked, for every message new to this node, before the message is
// stored, delivered or forwarded; a non-nil error drops it (counted in
// Stats.DropRejected): this node neither delivers nor forwards it, and
// remembers its ID so that no repair fetches it again. It runs without
// pub/sub's lock, possibly on several goroutines at once, and must not
// block for long (it delays the sender's stream). The Delivery's Payload
// must not be modified. Local publications are checked too (Publish
// returns ErrRejected).
type Validator func(Delivery) error

// ErrRejected wraps the error of a Validator that refused a local
// publication.
var ErrRejected = errors.New("pubsub: message rejected by the topic's validator")

// SetValidator installs v for topic name, replacing any previous one (nil
// removes it). It may be called before or after subscribing; it applies to
// messages that arrive after it returns. Errors: ErrClosed.
func (ps *PubSub) SetValidator(name string, v Validator) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return ErrClosed
	}
	id := TopicIDOf(name)
	if v == nil {
		delete(ps.validators, id)
		return nil
	}
	ps.validators[id] = v
	return nil
}

// deliveryOf describes msg as the Validator and subscribers see it.
func deliveryOf(id MsgID, msg *Signed, hops uint8) Delivery {
	h := &msg.Header
	return Delivery{Topic: h.Topic, ID: id, Origin: h.Origin, Seq: h.Seq,
		Time: time.UnixMilli(h.Time), Payload: msg.Payload, Hops: int(hops)}
}

// runValidator calls v, turning a panic into a refusal: a validator bug
// must not take the node down with a peer's message.
func runValidator(v Validator, d Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("validator panicked: %v", r)
		}
	}()
	return v(d)
}
