package pubsub

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/sim"
)

// A topic's Validator runs on every node before delivery and forwarding:
// a message the application refuses reaches only the publisher's own
// neighbours (who drop it), is never delivered, and stays refused through
// anti-entropy; accepted messages flow as usual. A panicking validator
// refuses instead of crashing, and a local publication is checked too.
func TestValidatorDropsBeforeForwarding(t *testing.T) {
	c := newTCluster(t, 40, sim.Config{Seed: 11}, false)
	errBad := errors.New("bad payload")
	for i, tn := range c.nodes {
		c.subscribe(tn, "v")
		if i == 0 {
			continue // the publisher forwards what it likes
		}
		if err := tn.ps.SetValidator("v", func(d Delivery) error {
			if bytes.HasPrefix(d.Payload, []byte("bad")) {
				return errBad
			}
			if bytes.Equal(d.Payload, []byte("panic")) {
				panic("validator bug")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	c.run(20 * time.Second)
	src := c.nodes[0]
	good := c.publish(src, "v", []byte("good"))
	bad := c.publish(src, "v", []byte("bad one"))
	boom := c.publish(src, "v", []byte("panic"))
	c.run(70 * time.Second) // two anti-entropy rounds: nothing pulls it back
	if m := c.missing(c.nodes, []MsgID{good}); m != 0 {
		t.Fatalf("accepted message missing at %d nodes", m)
	}
	eager, lazy := src.ps.TopicPeers(TopicIDOf("v"))
	var rejected uint64
	for i, tn := range c.nodes[1:] {
		for _, id := range []MsgID{bad, boom} {
			if _, ok := tn.got[id]; ok {
				t.Fatalf("node %d delivered a refused message", i+1)
			}
		}
		rejected += tn.ps.Stats().DropRejected
	}
	// Each refused message is refused once per node that received it, and
	// only the publisher sends it: at most one copy per neighbour of the
	// publisher (anti-entropy pushes included).
	if limit := uint64(2 * (len(eager) + len(lazy))); rejected == 0 || rejected > limit {
		t.Fatalf("%d refusals, want 1..%d (the publisher's neighbours only)", rejected, limit)
	}
	// A local publication is checked by the local validator.
	if _, err := c.nodes[1].ps.Publish("v", []byte("bad local")); !errors.Is(err, ErrRejected) || !errors.Is(err, errBad) {
		t.Fatalf("local publish of a refused message: %v", err)
	}
	// Removing the validator lets the same kind of message through.
	for _, tn := range c.nodes[1:] {
		if err := tn.ps.SetValidator("v", nil); err != nil {
			t.Fatal(err)
		}
	}
	later := c.publish(src, "v", []byte("bad but allowed now"))
	c.run(5 * time.Second)
	if m := c.missing(c.nodes, []MsgID{later}); m != 0 {
		t.Fatalf("message missing at %d nodes after the validator was removed", m)
	}
}
