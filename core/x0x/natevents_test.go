package x0x

import (
	"context"
	"testing"
	"time"
)

// Peers at two IPs (127.0.0.1, 127.0.0.2) see an agent at its own address:
// the agent's event stream reports NatTypeDetected "none" at that address,
// then ExternalAddressDiscovered of it; one peer alone reports neither.
func TestNatEventsThroughTheFacade(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := build(t, NewBuilder().WithDataDir(t.TempDir()).WithBindAddr("127.0.0.1:0"))
	o1 := build(t, NewBuilder().WithDataDir(t.TempDir()).WithBindAddr("127.0.0.1:0"))
	o2 := build(t, NewBuilder().WithDataDir(t.TempDir()).WithBindAddr("127.0.0.2:0"))
	evs, err := n.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer evs.Close()
	next := func(wait time.Duration) (Event, bool) {
		for {
			c, stop := context.WithTimeout(ctx, wait)
			ev, err := evs.Next(c)
			stop()
			if err != nil {
				return Event{}, false
			}
			if ev.Kind == EventNatTypeDetected || ev.Kind == EventExternalAddressDiscovered {
				return ev, true
			}
		}
	}
	if _, err := n.Connect(ctx, o1.MachineID().String()+"@"+o1.Addr()); err != nil {
		t.Fatal(err)
	}
	if ev, ok := next(500 * time.Millisecond); ok {
		t.Fatalf("one observer reported %v %q %q", ev.Kind, ev.NAT, ev.Addr)
	}
	if _, err := n.Connect(ctx, o2.MachineID().String()+"@"+o2.Addr()); err != nil {
		t.Fatal(err)
	}
	ev, ok := next(20 * time.Second)
	if !ok || ev.Kind != EventNatTypeDetected || ev.NAT != "none" || ev.Addr != n.Addr() {
		t.Fatalf("first NAT event %v %q %q (ok %v), want nat-type-detected none %s", ev.Kind, ev.NAT, ev.Addr, ok, n.Addr())
	}
	ev, ok = next(20 * time.Second)
	if !ok || ev.Kind != EventExternalAddressDiscovered || ev.Addr != n.Addr() {
		t.Fatalf("second NAT event %v %q (ok %v), want external-address-discovered %s", ev.Kind, ev.Addr, ok, n.Addr())
	}
}

// After a restart whose bootstrap peers offer no service, JoinNetwork's
// connectCachedServices dials a remembered coordinator and a remembered
// relay (here two different nodes): the peer cache keeps which peers could
// coordinate or relay, and both roles are looked for.
func TestCachedCoordinatorAndRelayAreDialled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	coord := build(t, NewBuilder().WithDataDir(t.TempDir()).WithServices(ServiceCoordinator))
	relay := build(t, NewBuilder().WithDataDir(t.TempDir()).WithServices(ServiceRelay))
	a := build(t, NewBuilder().WithDataDir(t.TempDir()))
	for _, p := range []struct {
		a *Agent
		s Services
	}{{coord, ServiceCoordinator}, {relay, ServiceRelay}} {
		a.cache.Record(p.a.MachineID(), p.a.Addr(), true, time.Millisecond)
		a.cache.RecordServices(p.a.MachineID(), p.a.Addr(), uint8(p.s))
	}
	if got := a.connectCachedServices(ctx); got != 2 {
		t.Fatalf("connected %d remembered service peers, want 2 (a coordinator and a relay)", got)
	}
	for _, p := range []*Agent{coord, relay} {
		if !a.node.IsConnected(p.MachineID()) {
			t.Fatalf("remembered %s not connected", p.MachineID().Short())
		}
	}
	// Both roles offered by connected peers now: nothing more is dialled.
	if got := a.connectCachedServices(ctx); got != 0 {
		t.Fatalf("dialled %d more with both roles connected", got)
	}
}
