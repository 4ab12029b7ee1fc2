package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/saorsa-labs/x0x-go/core/identity"
)

// Relay quotas against clients that reconnect, use many identities or
// open many relayed connections.

// relayPacketSlack is one relayed frame body at most: the token bucket
// bound plus one packet is the tolerance of the byte checks.
const relayPacketSlack = identity.IDSize + maxRelayPacket

// waitDown waits until a and r no longer see each other connected.
func waitDown(t *testing.T, a, r *testNode) {
	t.Helper()
	waitFor(t, "both ends see the connection to the relay down", func() bool {
		return !a.IsConnected(r.LocalID()) && !r.IsConnected(a.LocalID())
	})
}

// A client that disconnects from the relay and reconnects does not get a
// fresh burst: over several rounds of relayed dial, disconnect, reconnect,
// the bytes the relay admitted from it stay within Burst plus
// BytesPerSecond times the elapsed time (plus one packet). With a 16 KiB
// burst and 1 B/s, the first relayed handshake spends most of the burst
// and later dials are refused over quota.
func TestRelayReconnectKeepsByteBudget(t *testing.T) {
	const burst, rate = 16 << 10, 1
	r, a, b := relayTrio(t, func(c *Config) { c.Relay.Burst, c.Relay.BytesPerSecond = burst, rate })
	tap := newRelayTap()
	r.setTamper(tap.hook)
	ctx := context.Background()
	start := time.Now() // before A's first packet creates its bucket
	up, refused := 0, 0
	for round := range 4 {
		err := a.ConnectRelayed(ctx, b.LocalID(), r.LocalID())
		var re *RelayError
		switch {
		case err == nil:
			up++
		case errors.As(err, &re) && re.Code == relayOverQuota:
			refused++
		default:
			t.Logf("round %d: ConnectRelayed: %v", round, err)
		}
		a.Disconnect(r.LocalID())
		waitDown(t, a, r)
		waitFor(t, "A's relayed connection to B down", func() bool { return !a.IsConnected(b.LocalID()) })
		if err := a.Connect(ctx, r.LocalID(), r.LocalAddr()); err != nil {
			t.Fatalf("round %d: reconnecting to the relay: %v", round, err)
		}
		waitFor(t, "the relay sees A again", func() bool { return r.IsConnected(a.LocalID()) })
		t.Logf("round %d: %d bytes admitted from A", round, tap.bytesFrom(a.LocalID()))
	}
	el := time.Since(start)
	sent, limit := tap.bytesFrom(a.LocalID()), burst+int(rate*el.Seconds())+relayPacketSlack
	t.Logf("A: %d bytes admitted in %v over 4 reconnections (limit %d); %d dials up, %d refused over quota",
		sent, el, limit, up, refused)
	if sent > limit {
		t.Fatalf("the relay admitted %d bytes from a client reconnecting 4 times in %v, over burst + rate x time = %d",
			sent, el, limit)
	}
	if up == 0 || refused == 0 {
		t.Fatalf("%d dials up, %d refused over quota: want the first up and later ones refused", up, refused)
	}
}

// junkPacket is a relayed datagram of size bytes that the target's QUIC
// stack drops without answering (a long header of an unknown version,
// under the 1,200 bytes that would earn a version negotiation) and that
// is no QUIC Initial.
func junkPacket(size int) []byte {
	p := make([]byte, size)
	p[0] = 0xc0
	binary.BigEndian.PutUint32(p[1:5], 0x0a0a0a0a)
	p[5] = 8
	return p
}

// Identities are free, so the relay also charges each client's bytes to
// its source IP: four identities on one host (127.0.0.1) share one IP
// budget of IPBudgetClients (2) clients' worth, while a client on another
// host (127.0.0.2) still gets its own full burst.
func TestRelayIdentitiesShareIPBudget(t *testing.T) {
	const burst, rate, share = 16 << 10, 1, 2
	rc := testConfig(testKey("relay-ip", 0))
	rc.Services = ServiceRelay
	rc.Relay.Burst, rc.Relay.BytesPerSecond, rc.Relay.IPBudgetClients = burst, rate, share
	r := startNode(t, rc)
	tap := newRelayTap()
	r.setTamper(tap.hook)
	b := startNode(t, testConfig(testKey("relay-ip", 1)))
	var hosts []*testNode
	for i := range 4 {
		hosts = append(hosts, startNode(t, testConfig(testKey("relay-ip", 10+i))))
	}
	dc := testConfig(testKey("relay-ip", 2))
	dc.BindAddr = "127.0.0.2:0"
	d := startNode(t, dc)
	ctx := context.Background()
	for _, n := range append([]*testNode{b, d}, hosts...) {
		if err := n.Connect(ctx, r.LocalID(), r.LocalAddr()); err != nil {
			t.Fatalf("connect to the relay: %v", err)
		}
	}
	waitFor(t, "the relay sees every client", func() bool { return len(r.Peers()) == 6 })

	const size, perClient = 1000, 40 // 40 KiB offered by each client
	start := time.Now()
	offered := 0
	send := func(n *testNode) {
		for range perClient {
			n.relayOut(RelayAddr{Relay: r.LocalID(), Peer: b.LocalID()}, junkPacket(size))
		}
		offered += perClient
		waitFor(t, "the relay has judged every packet", func() bool {
			s := r.Stats()
			return s.RelayForwarded+s.RelayRefused >= uint64(offered)
		})
	}
	for _, n := range hosts {
		send(n)
	}
	send(d)
	el := time.Since(start)

	shared := 0
	for i, n := range hosts {
		got := tap.bytesFrom(n.LocalID())
		t.Logf("identity %d at 127.0.0.1: %d bytes admitted", i, got)
		shared += got
	}
	limit := share*(burst+int(rate*el.Seconds())) + relayPacketSlack
	t.Logf("127.0.0.1: %d bytes admitted from 4 identities (limit %d); 127.0.0.2: %d", shared, limit, tap.bytesFrom(d.LocalID()))
	if shared > limit {
		t.Fatalf("four identities on one host got %d bytes relayed, over the host's budget of %d", shared, limit)
	}
	if got := tap.bytesFrom(hosts[0].LocalID()); got < burst-relayPacketSlack {
		t.Fatalf("the first identity got %d bytes, less than one client's burst", got)
	}
	if got := tap.bytesFrom(d.LocalID()); got < burst-relayPacketSlack {
		t.Fatalf("a client on another host got %d bytes, less than its burst: the IP budget is not per IP", got)
	}
}

// relayFlood opens n QUIC connections from a to b through r on a's relay
// path without ever authenticating them, waits for every dial to end (at
// most limit), and returns the connections that came up; they are closed
// at cleanup.
func relayFlood(t *testing.T, r, a, b *testNode, n int, limit time.Duration) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var mu sync.Mutex
	var conns []*quic.Conn
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			qc, err := a.relayTr.Dial(ctx, RelayAddr{Relay: r.LocalID(), Peer: b.LocalID()}, a.tlsClient, a.qconf)
			if err == nil {
				mu.Lock()
				conns = append(conns, qc)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, qc := range conns {
			_ = qc.CloseWithError(0, "")
		}
	})
	return len(conns)
}

// A client that opens 256 relayed connections to B and never
// authenticates them cannot fill B's connection table: relayed inbound
// connections count against their relay's IP, so B holds at most
// MaxPendingPerIP of them while they authenticate, and a fresh client on
// another host connects to B directly. The relay's Initial allowance is
// lifted so that B's own limit is what is tested.
func TestRelayedFloodCappedPerRelay(t *testing.T) {
	r, a, b := relayTrioTuned(t, func(c *Config) {
		c.Relay.InitialBurst, c.Relay.InitialsPerSecond = 1<<20, 1<<20
	}, func(c *Config) { c.AuthTimeout = 15 * time.Second }) // no slot frees during the test
	const n = 256
	start := time.Now()
	up := relayFlood(t, r, a, b, n, 4*time.Second)
	s := b.Stats()
	t.Logf("%d of %d relayed dials completed their handshake in %v; B accepted %d, refused %d",
		up, n, time.Since(start), s.InboundAccepted, s.ConnectionsRefused)
	cc := testConfig(testKey("relay", 7))
	cc.BindAddr = "127.0.0.2:0"
	c := startNode(t, cc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errC := c.Connect(ctx, b.LocalID(), b.LocalAddr())
	if s.InboundAccepted > DefaultMaxPendingPerIP {
		t.Errorf("B accepted %d unauthenticated relayed connections from one client, over MaxPendingPerIP %d",
			s.InboundAccepted, DefaultMaxPendingPerIP)
	}
	if s.ConnectionsRefused == 0 {
		t.Error("B refused nothing: the flood did not reach its limit")
	}
	if errC != nil {
		t.Errorf("a fresh client could not connect to B directly after the relayed flood: %v", errC)
	}
}

// The relay caps how fast one client opens relayed connections: with the
// default limits the Initials it admits from a client opening 256
// connections to B stay within InitialBurst plus InitialsPerSecond times
// the elapsed time, whatever B would accept (its own limits are lifted
// here). B's Initials answering the flood are not charged to B, and a
// client on another host still connects to B through the relay.
func TestRelayCapsDialsPerClient(t *testing.T) {
	r, a, b := relayTrioTuned(t, nil, func(c *Config) { // lift B's (and A's) own limits
		c.MaxConnections, c.MaxConnsPerIP, c.MaxPendingPerIP = 1024, 1024, 1024
	})
	var mu sync.Mutex
	initials := make(map[identity.PeerID]int)
	r.setTamper(func(from, to identity.PeerID, body []byte) (identity.PeerID, [][]byte) {
		if _, _, ok := quicInitial(body[identity.IDSize:]); ok {
			mu.Lock()
			initials[from]++
			mu.Unlock()
		}
		return to, [][]byte{body}
	})
	const n = 256
	start := time.Now()
	up := relayFlood(t, r, a, b, n, 3*time.Second)
	el := time.Since(start)
	mu.Lock()
	fromA := initials[a.LocalID()]
	mu.Unlock()
	limit := DefaultRelayInitialBurst + int(DefaultRelayInitialsPerSecond*el.Seconds())
	t.Logf("%d of %d relayed dials up in %v; the relay admitted %d Initials from A (limit %d), refused %d packets; B accepted %d",
		up, n, el, fromA, limit, r.Stats().RelayRefused, b.Stats().InboundAccepted)
	if fromA > limit {
		t.Fatalf("the relay admitted %d Initials from one client in %v, over InitialBurst + rate x time = %d", fromA, el, limit)
	}
	if up >= n/2 {
		t.Fatalf("%d of %d relayed dials from one client completed", up, n)
	}

	ec := testConfig(testKey("relay", 8))
	ec.BindAddr = "127.0.0.2:0"
	e := startNode(t, ec)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Connect(ctx, r.LocalID(), r.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	// Connect returns once e has authenticated the relay; the relay
	// registers e a moment later.
	waitFor(t, "the relay sees E", func() bool { return r.IsConnected(e.LocalID()) })
	if err := b.ConnectRelayed(ctx, e.LocalID(), r.LocalID()); err != nil {
		t.Fatalf("B's relayed dial to a client on another host after answering the flood: %v", err)
	}
}

// ---- the relay server's accounting, on a virtual clock ----

// initialPacket is a QUIC v1 Initial with the given connection IDs.
func initialPacket(dcid, scid []byte) []byte {
	p := []byte{0xc0, 0, 0, 0, 1, byte(len(dcid))}
	p = append(p, dcid...)
	p = append(p, byte(len(scid)))
	p = append(p, scid...)
	return append(p, make([]byte, 1200-len(p))...)
}

// Initials are charged to the client that sends them, up to InitialBurst
// at once and InitialsPerSecond after, per client and per source IP;
// Initials answering a client's Initial (addressed to its source
// connection ID) are free for the answering side; the budget outlives a
// disconnection.
func TestRelayServerInitials(t *testing.T) {
	const burst = 5
	s := newRelayServer(RelayLimits{InitialBurst: burst, InitialsPerSecond: 1, IPBudgetClients: 2}, 0)
	a, b, c := testKey("initials", 1).ID(), testKey("initials", 2).ID(), testKey("initials", 3).ID()
	ipA, ipB := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	now := time.Unix(1_000_000, 0)
	scidA := []byte{0xa, 0xa, 0xa, 0xa}
	for i := range burst {
		if code := s.admit(now, a, ipA, b, 1232, initialPacket([]byte{1, 2, 3, 4, 5, 6, 7, byte(i)}, scidA)); code != 0 {
			t.Fatalf("Initial %d of a burst of %d refused: %d", i, burst, code)
		}
	}
	if code := s.admit(now, a, ipA, b, 1232, initialPacket([]byte{9, 9, 9, 9, 9, 9, 9, 9}, scidA)); code != relayOverQuota {
		t.Fatalf("Initial past the burst: code %d", code)
	}
	// Other packets still flow: the bytes budget is separate.
	if code := s.admit(now, a, ipA, b, 100, []byte{0x40, 1, 2, 3}); code != 0 {
		t.Fatalf("a short-header packet after the Initials ran out: code %d", code)
	}
	// B answers A's Initials for free, as often as it needs to...
	for i := range 3 * burst {
		if code := s.admit(now, b, ipB, a, 1232, initialPacket(scidA, []byte{0xb, 0xb, 0xb, byte(i)})); code != 0 {
			t.Fatalf("B's answer %d refused: %d", i, code)
		}
	}
	// ...and its own dials to C are charged to it: all burst of them.
	took := 0
	for i := range 2 * burst {
		if s.admit(now, b, ipB, c, 1232, initialPacket([]byte{2, 2, 2, 2, 2, 2, 2, byte(i)}, []byte{0xb})) == 0 {
			took++
		}
	}
	if took != burst {
		t.Fatalf("B's own dials: %d Initials admitted, want %d", took, burst)
	}
	// Reconnecting does not refill A; time does, at the rate.
	s.forget(a)
	if code := s.admit(now, a, ipA, b, 1232, initialPacket([]byte{3, 3, 3, 3, 3, 3, 3, 3}, scidA)); code != relayOverQuota {
		t.Fatalf("Initial after reconnecting: code %d, want over quota", code)
	}
	now = now.Add(time.Second)
	if code := s.admit(now, a, ipA, b, 1232, initialPacket([]byte{4, 4, 4, 4, 4, 4, 4, 4}, scidA)); code != 0 {
		t.Fatalf("Initial a second later: code %d", code)
	}
	// Other identities at A's IP get their own bursts until the IP's
	// budget (2 clients' worth, 2 more after the second) is spent: of its
	// 2*burst+2 Initials, A took burst+1.
	took = 0
	for j := range 2 {
		other := testKey("initials", 10+j).ID()
		for i := range 2 * burst {
			if s.admit(now, other, ipA, b, 1232, initialPacket([]byte{5, 5, 5, 5, 5, 5, byte(j), byte(i)}, []byte{0xc})) == 0 {
				took++
			}
		}
	}
	if want := 2*burst + 2 - (burst + 1); took != want {
		t.Fatalf("other identities at A's IP: %d Initials admitted, want the IP's remaining %d", took, want)
	}
}

// IPv6 clients are budgeted per /64, what one host typically holds.
func TestRelayIPKey(t *testing.T) {
	k := func(s string) netip.Addr { return relayIPKey(netip.MustParseAddr(s)) }
	if k("2001:db8::1") != k("2001:db8::ffff:2") || k("2001:db8::1") == k("2001:db8:0:1::1") {
		t.Fatal("IPv6 budget keys are not per /64")
	}
	if k("192.0.2.1") == k("192.0.2.2") || k("::ffff:192.0.2.1") != k("192.0.2.1") {
		t.Fatal("IPv4 budget keys are not per address")
	}
}

// The budget table is bounded: when it is full of budgets in use, a new
// client is refused rather than an existing budget forgotten; once budgets
// have refilled they are forgotten and newcomers admitted.
func TestRelayServerBudgetTableBound(t *testing.T) {
	const burst, rate = 10_000, 1_000
	s := newRelayServer(RelayLimits{Burst: burst, BytesPerSecond: rate}, 0)
	s.peerBudgets.limit = 2
	now := time.Unix(1_000_000, 0)
	target := testKey("table", 0).ID()
	c1, c2, c3 := testKey("table", 1).ID(), testKey("table", 2).ID(), testKey("table", 3).ID()
	for _, c := range []identity.PeerID{c1, c2} {
		if code := s.admit(now, c, netip.Addr{}, target, burst, nil); code != 0 {
			t.Fatalf("client's burst refused: %d", code)
		}
		s.forget(c) // disconnected: its budget must stay
	}
	if code := s.admit(now, c3, netip.Addr{}, target, 1, nil); code != relayOverQuota {
		t.Fatalf("a third client with the table full of spent budgets: code %d, want over quota", code)
	}
	if code := s.admit(now, c1, netip.Addr{}, target, 1, nil); code != relayOverQuota {
		t.Fatalf("a spent client after reconnecting: code %d, want over quota", code)
	}
	if len(s.peerBudgets.m) != 2 {
		t.Fatalf("%d budgets held, want 2", len(s.peerBudgets.m))
	}
	now = now.Add(burst / rate * time.Second) // every budget full again
	if code := s.admit(now, c3, netip.Addr{}, target, burst, nil); code != 0 {
		t.Fatalf("a third client once the others' budgets refilled: code %d", code)
	}
	if len(s.peerBudgets.m) > 2 {
		t.Fatalf("%d budgets held, over the bound of 2", len(s.peerBudgets.m))
	}
}
