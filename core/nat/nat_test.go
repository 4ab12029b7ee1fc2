package nat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/transport"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func key(i int) *identity.KeyPair {
	var seed [32]byte
	copy(seed[:], fmt.Sprintf("nat-test/%d", i))
	return identity.KeyPairFromSeed(seed)
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func obs(observerIP, observed string) Observation {
	return Observation{ObserverAddr: netip.MustParseAddr(observerIP), Observed: ap(observed)}
}

func TestClassify(t *testing.T) {
	local := []netip.AddrPort{ap("10.0.0.2:5000"), ap("198.18.0.20:5000"), ap("[2001:db8::20]:5000")}
	for _, tc := range []struct {
		name string
		obs  []Observation
		want Type
		ext  string
	}{
		{"nothing", nil, TypeUnknown, ""},
		{"one observer", []Observation{obs("198.18.0.1", "198.18.0.9:5000")}, TypeUnknown, ""},
		{"public", []Observation{obs("198.18.0.1", "10.0.0.2:5000"), obs("198.18.0.2", "10.0.0.2:5000")}, TypeNone, "10.0.0.2:5000"},
		{"cone", []Observation{obs("198.18.0.1", "198.18.0.9:5000"), obs("198.18.0.2", "198.18.0.9:5000")},
			TypeEndpointIndependent, "198.18.0.9:5000"},
		{"symmetric", []Observation{obs("198.18.0.1", "198.18.0.9:40001"), obs("198.18.0.2", "198.18.0.9:40002")},
			TypeEndpointDependent, "198.18.0.9:40002"},
		// One host with many identities votes once: two "observers" at the
		// same IP agreeing on a lie do not make an external address.
		{"one IP, many identities", []Observation{obs("198.18.0.66", "1.2.3.4:9"), obs("198.18.0.66", "1.2.3.4:9"),
			obs("198.18.0.1", "198.18.0.9:5000")}, TypeUnknown, ""},
		// The latest report of an observer replaces its earlier one.
		{"observer changes its report", []Observation{obs("198.18.0.1", "198.18.0.9:1"), obs("198.18.0.2", "198.18.0.9:5000"),
			obs("198.18.0.1", "198.18.0.9:5000")}, TypeEndpointIndependent, "198.18.0.9:5000"},
		{"disagreeing IPs", []Observation{obs("198.18.0.1", "198.18.0.9:1"), obs("198.18.0.2", "198.18.0.8:1")}, TypeUnknown, ""},
		// A peer on the node's LAN sees its private address: that says
		// nothing of the NAT, and must not hide it.
		{"symmetric + one LAN observer", []Observation{obs("198.18.0.1", "198.18.0.9:40001"), obs("10.0.0.7", "10.0.0.2:5000"),
			obs("198.18.0.2", "198.18.0.9:40002")}, TypeEndpointDependent, "198.18.0.9:40002"},
		{"symmetric + LAN observer last", []Observation{obs("198.18.0.1", "198.18.0.9:40001"), obs("198.18.0.2", "198.18.0.9:40002"),
			obs("192.168.1.7", "192.168.1.2:5000")}, TypeEndpointDependent, "198.18.0.9:40002"},
		{"symmetric + carrier-side observer", []Observation{obs("198.18.0.1", "198.18.0.9:40001"), obs("100.64.0.1", "100.64.0.9:7000"),
			obs("198.18.0.2", "198.18.0.9:40002")}, TypeEndpointDependent, "198.18.0.9:40002"},
		{"EIM + one LAN observer", []Observation{obs("10.0.0.7", "10.0.0.2:5000"), obs("198.18.0.1", "198.18.0.9:5000"),
			obs("198.18.0.2", "198.18.0.9:5000")}, TypeEndpointIndependent, "198.18.0.9:5000"},
		{"LAN peers only", []Observation{obs("10.0.0.7", "10.0.0.2:5000"), obs("10.0.0.8", "10.0.0.2:5000")}, TypeNone, "10.0.0.2:5000"},
		// Two LAN peers agreeing on the local address do not outvote the
		// public-facing side.
		{"symmetric + two LAN observers", []Observation{obs("10.0.0.7", "10.0.0.2:5000"), obs("10.0.0.8", "10.0.0.2:5000"),
			obs("198.18.0.1", "198.18.0.9:40001"), obs("198.18.0.2", "198.18.0.9:40002")}, TypeEndpointDependent, "198.18.0.9:40002"},
		{"EIM + two LAN observers", []Observation{obs("10.0.0.7", "10.0.0.2:5000"), obs("10.0.0.8", "10.0.0.2:5000"),
			obs("198.18.0.1", "198.18.0.9:5000"), obs("198.18.0.2", "198.18.0.9:5000")}, TypeEndpointIndependent, "198.18.0.9:5000"},
		// Address families are judged apart: IPv6 peers see other
		// addresses (usually untranslated).
		{"IPv4 and IPv6 observers", []Observation{obs("198.18.0.1", "198.18.0.9:5000"), obs("2001:db8::1", "[2001:db8::9]:5000"),
			obs("198.18.0.2", "198.18.0.9:5000")}, TypeEndpointIndependent, "198.18.0.9:5000"},
		{"symmetric v4 + one v6 observer", []Observation{obs("198.18.0.1", "198.18.0.9:40001"), obs("198.18.0.2", "198.18.0.9:40002"),
			obs("2001:db8::1", "[2001:db8::9]:5000")}, TypeEndpointDependent, "198.18.0.9:40002"},
		{"symmetric v6 + one v4 observer", []Observation{obs("2001:db8::1", "[2001:db8::9]:40001"), obs("198.18.0.1", "198.18.0.9:5000"),
			obs("2001:db8::2", "[2001:db8::9]:40002")}, TypeEndpointDependent, "[2001:db8::9]:40002"},
		{"as many v4 as v6 observers: v4 decides", []Observation{obs("2001:db8::1", "[2001:db8::9]:5000"), obs("2001:db8::2", "[2001:db8::9]:5000"),
			obs("198.18.0.1", "198.18.0.9:40001"), obs("198.18.0.2", "198.18.0.9:40002")}, TypeEndpointDependent, "198.18.0.9:40002"},
		{"v4 undecided, v6 agrees", []Observation{obs("198.18.0.1", "198.18.0.9:1"), obs("198.18.0.2", "198.18.0.8:1"),
			obs("198.18.0.3", "198.18.0.7:1"), obs("2001:db8::1", "[2001:db8::9]:5000"), obs("2001:db8::2", "[2001:db8::9]:5000")},
			TypeEndpointIndependent, "[2001:db8::9]:5000"},
		// A node with a public address: peers see it at its own address.
		{"public, dual stack", []Observation{obs("198.18.0.1", "198.18.0.20:5000"), obs("2001:db8::1", "[2001:db8::20]:5000"),
			obs("198.18.0.2", "198.18.0.20:5000")}, TypeNone, "198.18.0.20:5000"},
	} {
		r := Classify(tc.obs, local)
		ext := ""
		if r.External.IsValid() {
			ext = r.External.String()
		}
		if r.Type != tc.want || ext != tc.ext {
			t.Errorf("%s: got %v %q, want %v %q", tc.name, r.Type, ext, tc.want, tc.ext)
		}
	}
}

func TestCandidatesFilter(t *testing.T) {
	got := candidates([]string{"10.0.0.2:1", "198.18.0.5:2", "100.64.1.1:3", "192.168.1.1:4", "[fd00::1]:5",
		"0.0.0.0:6", "10.0.0.2:1", "junk", "10.0.0.3:0", "224.0.0.1:7"}, true)
	want := []netip.AddrPort{ap("10.0.0.2:1"), ap("100.64.1.1:3"), ap("192.168.1.1:4"), ap("[fd00::1]:5")}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("LAN candidates %v, want %v", got, want)
	}
	// The first offered address is the coordinator's observation and may
	// be public; later public ones are dropped.
	got = offeredCandidates([]string{"198.18.0.5:2", "198.18.0.6:3", "10.0.0.2:1"})
	if fmt.Sprint(got) != fmt.Sprint([]netip.AddrPort{ap("198.18.0.5:2"), ap("10.0.0.2:1")}) {
		t.Fatalf("offered candidates %v", got)
	}
	many := make([]string, 20)
	for i := range many {
		many[i] = fmt.Sprintf("10.0.0.%d:1", i+1)
	}
	if n := len(candidates(many, true)); n != MaxCandidates {
		t.Fatalf("%d candidates kept, want %d", n, MaxCandidates)
	}
}

func TestOnLocalNetwork(t *testing.T) {
	if !onLocalNetwork(netip.MustParseAddr("127.0.0.1")) || !onLocalNetwork(netip.MustParseAddr("127.9.9.9")) {
		t.Fatal("loopback network not recognised as local")
	}
}

func TestDecodeMessageBounds(t *testing.T) {
	good := message{Kind: msgRequest, Nonce: make([]byte, nonceSize), Peer: make([]byte, 32), Addrs: []string{"10.0.0.1:1"}}
	b, _ := wire.Marshal(&good)
	if _, err := decodeMessage(b); err != nil {
		t.Fatalf("good message: %v", err)
	}
	long := make([]string, MaxCandidates+1)
	for i := range long {
		long[i] = "1.1.1.1:1"
	}
	for name, m := range map[string]message{
		"kind":      {Kind: 9, Nonce: make([]byte, nonceSize), Peer: make([]byte, 32)},
		"nonce":     {Kind: msgRequest, Nonce: make([]byte, 3), Peer: make([]byte, 32)},
		"peer":      {Kind: msgOffer, Nonce: make([]byte, nonceSize), Peer: make([]byte, 31)},
		"addrs":     {Kind: msgRequest, Nonce: make([]byte, nonceSize), Peer: make([]byte, 32), Addrs: long},
		"long addr": {Kind: msgRequest, Nonce: make([]byte, nonceSize), Peer: make([]byte, 32), Addrs: []string{string(make([]byte, 65))}},
		"nat type":  {Kind: msgAnswer, Nonce: make([]byte, nonceSize), NAT: 9},
	} {
		b, _ := wire.Marshal(&m)
		if _, err := decodeMessage(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := decodeMessage(make([]byte, maxMsgBytes+1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversized: %v", err)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	good, _ := wire.Marshal(&message{Kind: msgResult, Nonce: make([]byte, nonceSize), Peer: make([]byte, 32),
		Addrs: []string{"198.18.0.1:9", "10.0.0.1:9"}, NAT: 2, Relay: true})
	f.Add(good)
	f.Add([]byte{0xa1, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(m.Addrs) > MaxCandidates || len(m.Nonce) != nonceSize {
			t.Fatalf("bounds not enforced: %+v", m)
		}
		_ = offeredCandidates(m.Addrs)
	})
}

// ---- services on loopback ----

type testPeer struct {
	node *transport.Node
	svc  *Service
}

func startPeer(t *testing.T, i int, bind string, services transport.Services, tune func(*Config)) *testPeer {
	t.Helper()
	node, err := transport.Listen(context.Background(), transport.Config{
		BindAddr: bind, Machine: key(i), Services: services,
		HandshakeTimeout: 5 * time.Second, AuthTimeout: 5 * time.Second, RedialCooldown: time.Millisecond,
		EventBuffer: 4096,
	})
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	go func() {
		for range node.Events() {
		}
	}()
	cfg := Config{Node: node, UpgradeMin: 100 * time.Millisecond, UpgradeMax: 400 * time.Millisecond}
	if tune != nil {
		tune(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPeer{node: node, svc: svc}
	t.Cleanup(func() { svc.Close(); node.Close() })
	return p
}

func (p *testPeer) connect(t *testing.T, to *testPeer) {
	t.Helper()
	if err := p.node.Connect(context.Background(), to.node.LocalID(), to.node.LocalAddr()); err != nil {
		t.Fatalf("connect: %v", err)
	}
	waitFor(t, "both ends connected", func() bool { return to.node.IsConnected(p.node.LocalID()) })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// unusedAddr returns a loopback UDP address nobody listens on.
func unusedAddr(t *testing.T) string {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

// A peer whose advertised address is wrong is reached by a punch that a
// coordinator connected to both passes on: the coordinator's observation
// is the address that works.
func TestConnectPunchesThroughCoordinator(t *testing.T) {
	c := startPeer(t, 0, "127.0.0.1:0", transport.ServiceCoordinator, nil)
	a := startPeer(t, 1, "127.0.0.1:0", 0, nil)
	b := startPeer(t, 2, "127.0.0.1:0", 0, nil)
	a.connect(t, c)
	b.connect(t, c)
	path, err := a.svc.ConnectPath(context.Background(), b.node.LocalID(), unusedAddr(t))
	if err != nil {
		t.Fatalf("ConnectPath: %v", err)
	}
	if path.Relayed || path.Attempts != 1 {
		t.Fatalf("path %+v, want direct after one punch", path)
	}
	info, ok := a.node.PeerInfo(b.node.LocalID())
	if !ok || info.Relayed {
		t.Fatalf("A-B connection: %+v", info)
	}
	if st := c.svc.Stats(); st.Coordinated != 1 {
		t.Fatalf("coordinator stats %+v", st)
	}
	waitFor(t, "B answered the offer and dialled on the sync", func() bool {
		st := b.svc.Stats()
		return st.Offers == 1 && st.Syncs == 1
	})
	if a.svc.Stats().PunchesOK != 1 {
		t.Fatalf("A stats %+v", a.svc.Stats())
	}
}

// Without any coordinator and with a dead address, Connect fails with
// ErrUnreachable (and does not hang).
func TestConnectUnreachable(t *testing.T) {
	a := startPeer(t, 1, "127.0.0.1:0", 0, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := a.svc.ConnectPath(ctx, key(7).ID(), "")
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, ErrNoCoordinator) {
		t.Fatalf("ConnectPath: %v", err)
	}
}

// Both sides behind endpoint-dependent NATs: Connect goes straight to the
// relay, and the upgrade loop replaces the relayed connection by a direct
// one once punching can work.
func TestRelayFallbackAndUpgrade(t *testing.T) {
	c := startPeer(t, 0, "127.0.0.1:0", transport.ServiceCoordinator|transport.ServiceRelay, nil)
	a := startPeer(t, 1, "127.0.0.1:0", 0, nil)
	b := startPeer(t, 2, "127.0.0.1:0", 0, nil)
	a.connect(t, c)
	b.connect(t, c)
	for _, p := range []*testPeer{a, b} {
		p.svc.mu.Lock()
		p.svc.result = Result{Type: TypeEndpointDependent}
		p.svc.mu.Unlock()
	}
	path, err := a.svc.ConnectPath(context.Background(), b.node.LocalID(), "")
	if err != nil {
		t.Fatalf("ConnectPath: %v", err)
	}
	if !path.Relayed || path.Via != c.node.LocalID() {
		t.Fatalf("path %+v, want relayed via the coordinator", path)
	}
	if a.svc.Stats().RelayFallbacks != 1 {
		t.Fatalf("stats %+v", a.svc.Stats())
	}
	// Still "symmetric": upgrades are attempted and fail without dialling.
	up := a
	if al, bl := a.node.LocalID(), b.node.LocalID(); string(bl[:]) < string(al[:]) {
		up = b
	}
	failed := up.svc.Stats().PunchesFailed
	waitFor(t, "an upgrade attempt", func() bool { return up.svc.Stats().PunchesFailed > failed })
	if info, _ := a.node.PeerInfo(b.node.LocalID()); !info.Relayed {
		t.Fatal("upgraded although punching was impossible")
	}
	for _, p := range []*testPeer{a, b} {
		p.svc.mu.Lock()
		p.svc.result = Result{Type: TypeEndpointIndependent}
		p.svc.mu.Unlock()
	}
	waitFor(t, "the upgrade to a direct connection", func() bool {
		ia, _ := a.node.PeerInfo(b.node.LocalID())
		ib, _ := b.node.PeerInfo(a.node.LocalID())
		return a.node.IsConnected(b.node.LocalID()) && !ia.Relayed && !ib.Relayed
	})
	waitFor(t, "the upgrade counted", func() bool { return up.svc.Stats().Upgrades == 1 })
}

// Two observers at different IPs that see the node at its own address make
// it TypeNone, announced by a NatTypeDetected event and then by
// ExternalAddressDiscovered for that address (never before).
func TestNatTypeDetected(t *testing.T) {
	o1 := startPeer(t, 0, "127.0.0.1:0", 0, nil)
	o2 := startPeer(t, 3, "127.0.0.2:0", 0, nil)
	node, err := transport.Listen(context.Background(), transport.Config{BindAddr: "127.0.0.1:0", Machine: key(1)})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{Node: node})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	defer svc.Close()
	for _, o := range []*testPeer{o1, o2} {
		if err := node.Connect(context.Background(), o.node.LocalID(), o.node.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(30 * time.Second)
	detected := false
	for {
		select {
		case ev := <-node.Events():
			switch ev.Kind {
			case transport.EventNatTypeDetected:
				if ev.NAT != "none" || ev.Addr != node.LocalAddr() {
					t.Fatalf("NatTypeDetected %q %q, want none at %s", ev.NAT, ev.Addr, node.LocalAddr())
				}
				if svc.LocalAddr() != node.LocalAddr() {
					t.Fatalf("advertised %s", svc.LocalAddr())
				}
				detected = true
			case transport.EventExternalAddressDiscovered:
				if !detected || ev.Addr != node.LocalAddr() {
					t.Fatalf("ExternalAddressDiscovered %q (after NatTypeDetected: %v), want %s after it", ev.Addr, detected, node.LocalAddr())
				}
				return
			}
		case <-deadline:
			t.Fatalf("no NatTypeDetected and ExternalAddressDiscovered events; result %+v", svc.NAT())
		}
	}
}

// One observer's report, however often repeated, announces nothing: a
// single (possibly lying) peer cannot make up an external address. A
// second observer IP that agrees makes it the external address, announced
// once; a third agreeing observer announces nothing new.
func TestExternalAddressNeedsTwoObserverIPs(t *testing.T) {
	node, err := transport.Listen(context.Background(), transport.Config{BindAddr: "127.0.0.1:0", Machine: key(1)})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{Node: node})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	defer svc.Close()
	ext := netip.MustParseAddrPort("198.51.100.7:4242")
	obs := func(i byte, ip string) {
		svc.observe(Observation{Observer: key(10 + int(i)).ID(), ObserverAddr: netip.MustParseAddr(ip), Observed: ext})
	}
	externals := func(wait time.Duration) (got []string) {
		deadline := time.After(wait)
		for {
			select {
			case ev := <-node.Events():
				if ev.Kind == transport.EventExternalAddressDiscovered {
					got = append(got, ev.Addr)
				}
			case <-deadline:
				return got
			}
		}
	}
	for i := range byte(5) {
		obs(i, "203.0.113.1") // one host, five identities: one vote
	}
	if got := externals(300 * time.Millisecond); len(got) != 0 {
		t.Fatalf("one observer IP announced %v", got)
	}
	obs(6, "203.0.113.2")
	if got := externals(2 * time.Second); !slices.Equal(got, []string{ext.String()}) {
		t.Fatalf("two observer IPs announced %v, want [%s]", got, ext)
	}
	obs(7, "203.0.113.3")
	if got := externals(300 * time.Millisecond); len(got) != 0 {
		t.Fatalf("a third agreeing observer announced %v again", got)
	}
}

// Hostile inputs: garbage is counted, unsolicited results and offers from
// non-coordinators are ignored, requests to a non-coordinator are refused,
// and a flood of requests is rate-limited.
func TestHostileMessages(t *testing.T) {
	c := startPeer(t, 0, "127.0.0.1:0", transport.ServiceCoordinator, func(cfg *Config) {
		cfg.RatePerSecond, cfg.RateBurst = 0.001, 3
	})
	a := startPeer(t, 1, "127.0.0.1:0", 0, nil)
	b := startPeer(t, 2, "127.0.0.1:0", 0, nil)
	a.connect(t, c)
	b.connect(t, c)
	a.connect(t, b)
	send := func(from, to *testPeer, m *message) {
		raw, _ := wire.Marshal(m)
		if err := from.node.Send(to.node.LocalID(), link.ProtoNAT, link.PriorityControl, raw); err != nil {
			t.Fatal(err)
		}
	}
	nonce := make([]byte, nonceSize)
	bid := b.node.LocalID()
	// Garbage.
	if err := a.node.Send(c.node.LocalID(), link.ProtoNAT, link.PriorityControl, []byte{0xff, 0x00}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "malformed counted", func() bool { return c.svc.Stats().MalformedFrames == 1 })
	// An offer from A (not a coordinator) to B: ignored, no dial.
	send(a, b, &message{Kind: msgOffer, Nonce: nonce, Peer: bid[:], Addrs: []string{"127.0.0.1:9"}})
	waitFor(t, "offer from a non-coordinator refused", func() bool { return b.svc.Stats().Refused == 1 })
	if b.svc.Stats().Offers != 0 || b.node.Stats().PunchDials != 0 {
		t.Fatal("B acted on an offer from a non-coordinator")
	}
	// A sync for an offer B never had: ignored, no dial.
	aid := a.node.LocalID()
	send(c, b, &message{Kind: msgSync, Nonce: nonce, Peer: aid[:]})
	waitFor(t, "unsolicited sync refused", func() bool { return b.svc.Stats().Refused == 2 })
	if b.svc.Stats().Syncs != 0 || b.node.Stats().PunchDials != 0 {
		t.Fatal("B dialled on an unsolicited sync")
	}
	// An unsolicited result: ignored.
	send(c, a, &message{Kind: msgResult, Nonce: nonce, Peer: bid[:]})
	waitFor(t, "unsolicited result ignored", func() bool { return a.svc.Stats().Refused == 1 })
	// An answer for a punch the coordinator never started: ignored.
	send(b, c, &message{Kind: msgAnswer, Nonce: nonce})
	waitFor(t, "unsolicited answer ignored", func() bool { return c.svc.Stats().Refused == 1 })
	// A request to a non-coordinator is refused.
	if _, err := a.svc.request(context.Background(), b.node.LocalID(), c.node.LocalID()); err != nil {
		t.Fatal(err)
	}
	// Flood: a burst of 3, then refusals.
	cid := c.node.LocalID()
	refusals := 0
	for i := range 6 {
		m, err := a.svc.request(context.Background(), cid, bid)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if m.Kind == msgRefusal && m.Code == refuseBusy {
			refusals++
		}
	}
	if refusals != 3 || c.svc.Stats().Coordinated != 3 {
		t.Fatalf("%d busy refusals, %d coordinated; want 3 and 3", refusals, c.svc.Stats().Coordinated)
	}
}

// With no coordinator at all, a relay that does not coordinate still
// carries the connection.
func TestRelayOnlyNodeIsUsed(t *testing.T) {
	r := startPeer(t, 0, "127.0.0.1:0", transport.ServiceRelay, nil)
	a := startPeer(t, 1, "127.0.0.1:0", 0, nil)
	b := startPeer(t, 2, "127.0.0.1:0", 0, nil)
	a.connect(t, r)
	b.connect(t, r)
	path, err := a.svc.ConnectPath(context.Background(), b.node.LocalID(), "")
	if err != nil {
		t.Fatalf("ConnectPath: %v", err)
	}
	if !path.Relayed || path.Via != r.node.LocalID() {
		t.Fatalf("path %+v, want relayed via the relay-only node", path)
	}
}

// The overlay dials through link.Network.Dial: on the Service that must be
// Connect with traversal, not the embedded Node's direct-only Dial (the
// bug it had: membership's dials to peers behind NATs failed, and task
// lists in the NAT lab never heard of their creation).
func TestDialTraversesNATs(t *testing.T) {
	c := startPeer(t, 0, "127.0.0.1:0", transport.ServiceCoordinator, nil)
	a := startPeer(t, 1, "127.0.0.1:0", 0, nil)
	b := startPeer(t, 2, "127.0.0.1:0", 0, nil)
	a.connect(t, c)
	b.connect(t, c)
	var net link.Network = a.svc
	done := make(chan error, 1)
	net.Dial(context.Background(), b.node.LocalID(), unusedAddr(t), func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if a.svc.Stats().PunchesOK != 1 {
		t.Fatalf("connected without a punch: %+v", a.svc.Stats())
	}
	a.svc.Close()
	net.Dial(context.Background(), b.node.LocalID(), unusedAddr(t), func(err error) { done <- err })
	if err := <-done; !errors.Is(err, link.ErrClosed) {
		t.Fatalf("Dial after Close: %v", err)
	}
}
