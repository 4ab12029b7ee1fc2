package pubsub

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/membership"
	"github.com/saorsa-labs/x0x-go/core/sim"
)

func TestOverlayFacade(t *testing.T) {
	w := sim.NewWorld(sim.Config{Seed: 21})
	known := map[identity.AgentID]bool{}
	var ovs []*Overlay
	var memberEvents, topicEvents int
	for i := 0; i < 12; i++ {
		net, _ := w.AddNode(identity.DeriveID(fmt.Appendf(nil, "o-%d", i)))
		agent := identity.DeriveID(fmt.Appendf(nil, "oa-%d", i))
		known[agent] = true
		o, err := NewOverlay(net, OverlayConfig{Clock: net.Clock(), Rand: net.Rand(),
			Signer: SimulatedSigner{ID: agent}, Verifier: SimulatedVerifier{Known: known},
			Records: membership.SimulatedRecords{ID: net.LocalID()}})
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		o.WatchMembership(func(membership.Event) { memberEvents++ })
		o.WatchTopics(func(Event) { topicEvents++ })
		if i > 0 {
			if err := o.Join(context.Background(), []membership.NodeDesc{ovs[0].Members.Self()}); err != nil {
				t.Fatal(err)
			}
		}
		ovs = append(ovs, o)
	}
	sub, err := ovs[5].Subscribe("facade")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ovs[7].Subscribe("facade"); err != nil {
		t.Fatal(err)
	}
	w.Clock.RunFor(20 * time.Second)
	id, err := ovs[9].Publish("facade", []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	w.Clock.RunFor(2 * time.Second)
	select {
	case d := <-sub.C:
		if d.ID != id || string(d.Payload) != "hi" || d.Origin != identity.DeriveID([]byte("oa-9")) {
			t.Fatalf("delivery %+v", d)
		}
	default:
		t.Fatal("subscriber got nothing")
	}
	if memberEvents == 0 || topicEvents == 0 {
		t.Fatalf("events: membership %d topic %d", memberEvents, topicEvents)
	}
	if _, err := NewOverlay(nil, OverlayConfig{}); err == nil {
		t.Fatal("NewOverlay without clock accepted")
	}
	ovs[3].Close()
	if _, err := ovs[3].Publish("facade", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish after close: %v", err)
	}
}
