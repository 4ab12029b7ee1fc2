package x0x

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/membership"
	"github.com/saorsa-labs/x0x-go/core/transport"
)

// Forged SWIM death (issue 10, attack 3), over QUIC: a stranger tells a
// node that its live neighbour is dead at incarnation 2^64-1, and that the
// node itself is suspect at 2^64-1. Neither claim is believed or passed on,
// the neighbour stays in the active view and alive everywhere, and the
// node's own incarnation does not wrap around.
func TestForgedSWIMDeathIsIgnored(t *testing.T) {
	agents := cluster(t, 3)
	victim, neighbour := agents[0], agents[1]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitActive := func(a *Agent, peer PeerID) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			for _, d := range a.overlay.Members.Active() {
				if d.ID == peer {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never has %s in its active view", a.MachineID().Short(), peer.Short())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitActive(victim, neighbour.MachineID())
	_, incBefore, _ := victim.overlay.Members.MemberState(victim.MachineID())

	attacker, err := transport.Listen(ctx, transport.Config{BindAddr: "127.0.0.1:0", Machine: mustKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	go func() {
		for range attacker.Events() {
		}
	}()
	if err := attacker.Connect(ctx, victim.MachineID(), victim.Addr()); err != nil {
		t.Fatal(err)
	}
	const kindUpdate = 11 // membership's SWIM update frame
	for _, u := range []membership.Update{
		{Node: membership.NodeDesc{ID: neighbour.MachineID(), Addr: neighbour.Addr()}, State: membership.StateDead, Inc: math.MaxUint64},
		{Node: membership.NodeDesc{ID: victim.MachineID(), Addr: victim.Addr()}, State: membership.StateSuspect, Inc: math.MaxUint64},
	} {
		b, err := membership.Encode(&membership.Message{Kind: kindUpdate, Updates: []membership.Update{u}})
		if err != nil {
			t.Fatal(err)
		}
		if err := attacker.Send(victim.MachineID(), transport.ClassMembership, transport.PriorityControl, b); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for victim.overlay.Members.Stats().ForgedClaims < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("forged claims not recognised: %+v", victim.overlay.Members.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(4 * time.Second) // longer than the 3 s suspicion timeout
	for i, a := range agents {
		if s, _, ok := a.overlay.Members.MemberState(neighbour.MachineID()); ok && s != membership.StateAlive {
			t.Fatalf("agent %d holds the live neighbour as %v", i, s)
		}
	}
	waitActive(victim, neighbour.MachineID())
	if !victim.node.IsConnected(neighbour.MachineID()) {
		t.Fatal("the victim dropped its live neighbour")
	}
	_, incAfter, _ := victim.overlay.Members.MemberState(victim.MachineID())
	if incAfter < incBefore || incAfter > incBefore+10 {
		t.Fatalf("the victim's incarnation went from %d to %d", incBefore, incAfter)
	}
	t.Logf("forged claims dropped: %d", victim.overlay.Members.Stats().ForgedClaims)
}
