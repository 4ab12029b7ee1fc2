package transport

import (
	"context"
	"errors"
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
)

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Pre-auth memory (issue 10, attack 6): 60 unauthenticated connections each
// announce a 4 MiB data frame on the control stream and send nothing more.
// Before the proof only an auth frame is read, so each is refused on its
// header at once (not after AuthTimeout) and nothing of the announced size
// is allocated: the heap grows by far less than the 240 MiB announced.
func TestPreAuthFrameAnnouncementsCostNothing(t *testing.T) {
	cfg := testConfig(testKey("hostile", 0))
	cfg.AuthTimeout = time.Minute // a refusal within seconds is the header check, not the timeout
	cfg.MaxPendingPerIP = 100     // this test is about the header check, not the slot budget
	n := startNode(t, cfg)
	const conns = 60
	base := heapInUse()
	clients := make([]*rawClient, conns)
	for i := range clients {
		rc, err := rawDial(t, n.LocalAddr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		rc.openControl()
		var hdr [frameHeaderSize]byte
		putFrameHeader(hdr[:], protoFrame(link.ProtoPubSub), DefaultMaxFrameSize)
		rc.write(append(hdr[:], make([]byte, 1024)...))
		clients[i] = rc
	}
	// Every client must be refused well before the one-minute auth timeout.
	deadline := time.After(20 * time.Second)
	for i, rc := range clients {
		select {
		case <-rc.qc.Context().Done():
		case <-deadline:
			t.Fatalf("client %d not refused within 20 s: the node waits for the auth timeout", i)
		}
		if code := rc.waitClosed(); code != codeAuthFailed {
			t.Fatalf("client %d closed with code %d, want auth failure", i, code)
		}
	}
	grown := int64(heapInUse()) - int64(base)
	t.Logf("heap grew by %.1f MiB for %d hostile pre-auth connections", float64(grown)/(1<<20), conns)
	if grown > 32<<20 {
		t.Fatalf("heap grew by %d MiB", grown>>20)
	}
	if got := n.Stats().AuthFailures; got < conns {
		t.Fatalf("%d auth failures counted, want %d", got, conns)
	}
}

// A stalled frame (issue 10, attack 6): an authenticated peer announces a
// 4 MiB frame on a class stream, sends 10 KiB of it and stops. The node
// allocates only what arrived and disconnects the peer after FrameTimeout.
func TestStalledClassFrameDisconnects(t *testing.T) {
	cfg := testConfig(testKey("hostile", 1))
	cfg.FrameTimeout = 300 * time.Millisecond
	n := startNode(t, cfg)
	const conns = 20
	base := heapInUse()
	clients := make([]*rawClient, conns)
	for i := range clients {
		rc, err := rawDial(t, n.LocalAddr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		rc.authenticate(testKey("hostile-peer", i), n.LocalID())
		var hdr [frameHeaderSize]byte
		putFrameHeader(hdr[:], protoFrame(link.ProtoPubSub), DefaultMaxFrameSize)
		rc.openClass(link.ClassPubSub, append(hdr[:], make([]byte, 10<<10)...))
		clients[i] = rc
	}
	grown := int64(heapInUse()) - int64(base)
	t.Logf("heap grew by %.1f MiB with %d stalled 4 MiB frames", float64(grown)/(1<<20), conns)
	if grown > 32<<20 { // 20 x 4 MiB = 80 MiB if bodies were allocated on their headers
		t.Fatalf("heap grew by %d MiB", grown>>20)
	}
	for i, rc := range clients {
		if code := rc.waitClosed(); code != codeProtocol {
			t.Fatalf("client %d closed with code %d, want protocol error", i, code)
		}
	}
	if got := n.Stats().ProtocolErrors; got < conns {
		t.Fatalf("%d protocol errors counted, want %d", got, conns)
	}
}

// Connection-table exhaustion (issue 10, attack 5): one host with throwaway
// keys gets at most MaxConnsPerIP connections, and at most MaxPendingPerIP
// of them may sit unauthenticated; a peer from another address still
// connects while the attacker holds its share.
func TestConnectionSlotsPerSourceIP(t *testing.T) {
	cfg := testConfig(testKey("slots", 0))
	cfg.MaxConnsPerIP, cfg.MaxPendingPerIP = 10, 4
	cfg.AuthTimeout = time.Minute // pending connections stay pending during the test
	n := startNode(t, cfg)

	// Four unauthenticated connections fill the pending budget of
	// 127.0.0.1; a fifth is refused at once.
	var pending []*rawClient
	for range 4 {
		rc, err := rawDial(t, n.LocalAddr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, rc)
	}
	waitFor(t, "four pending connections", func() bool { return n.Stats().InboundAccepted == 4 })
	if rc, err := rawDial(t, n.LocalAddr(), nil); err == nil {
		if code := rc.waitClosed(); code != codeConnLimit {
			t.Fatalf("fifth pending connection closed with code %d, want the connection limit", code)
		}
	}
	for _, rc := range pending {
		rc.close()
	}
	waitFor(t, "the pending connections gone", func() bool { return n.Stats().ConnectionsOpen == 0 })

	// Ten authenticated connections from 127.0.0.1 are accepted, the
	// eleventh is refused.
	for i := range 10 {
		rc, err := rawDial(t, n.LocalAddr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		rc.authenticate(testKey("slots-attacker", i), n.LocalID())
	}
	waitFor(t, "ten attacker peers", func() bool { return len(n.Peers()) == 10 })
	if rc, err := rawDial(t, n.LocalAddr(), nil); err == nil {
		if code := rc.waitClosed(); code != codeConnLimit {
			t.Fatalf("eleventh connection closed with code %d, want the connection limit", code)
		}
	}
	// An honest peer on another address is not affected.
	hc := testConfig(testKey("slots", 1))
	hc.BindAddr = "127.0.0.2:0"
	h := startNode(t, hc)
	if err := h.Connect(context.Background(), n.LocalID(), n.LocalAddr()); err != nil {
		t.Fatalf("honest peer refused: %v", err)
	}
	if n.Stats().ConnectionsRefused < 2 {
		t.Fatalf("refusals not counted: %+v", n.Stats())
	}
}

// Dials a peer makes this node start (issue 10, part of attack 2): at most
// MaxPendingDials are in flight, the rest fail at once, and pending dials
// take no inbound slot, so peers can still connect in.
func TestPendingDialsCappedAndSeparateFromInbound(t *testing.T) {
	cfg := testConfig(testKey("dials", 0))
	cfg.MaxPendingDials, cfg.MaxConnections = 4, 4
	cfg.HandshakeTimeout = 2 * time.Second
	n := startNode(t, cfg)
	results := make(chan error, 20)
	for i := range 20 {
		go func() {
			_, err := n.ConnectAddr(context.Background(), silentAddr(t, i))
			results <- err
		}()
	}
	limited := 0
	for range 16 { // the 16 refused dials end at once; 4 wait for their timeout
		if err := <-results; errors.Is(err, ErrDialLimit) {
			limited++
		}
	}
	if limited != 16 || n.Stats().DialsRefused != 16 {
		t.Fatalf("%d dials refused by the cap (stats %d), want 16", limited, n.Stats().DialsRefused)
	}
	// Four dials hang; an inbound peer still gets in.
	in := startNode(t, testConfig(testKey("dials", 1)))
	if err := in.Connect(context.Background(), n.LocalID(), n.LocalAddr()); err != nil {
		t.Fatalf("inbound peer refused while dials are pending: %v", err)
	}
	for range 4 {
		if err := <-results; err == nil || errors.Is(err, ErrDialLimit) {
			t.Fatalf("a silent address answered, or a fifth dial was refused: %v", err)
		}
	}
}

// silentAddr returns a loopback UDP address that receives and ignores
// packets (a QUIC dial there waits for its timeout).
func silentAddr(t *testing.T, _ int) string {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().String()
}

// Eviction (issue 10, attack 5): with a policy, a full table admits each
// newcomer in place of a distinct established inbound peer (a connection
// being evicted is never picked twice, so the table does not grow past
// its bound for long); a policy that declines refuses the newcomer.
func TestEvictionPolicyAdmitsNewcomers(t *testing.T) {
	cfg := testConfig(testKey("evict", 0))
	cfg.MaxConnections = 3
	cfg.EvictMinAge = 50 * time.Millisecond
	n := startNode(t, cfg)
	var mu sync.Mutex
	var offered [][]identity.PeerID
	spared := map[identity.PeerID]bool{}
	n.SetEvictionPolicy(func(c []identity.PeerID) (identity.PeerID, bool) {
		mu.Lock()
		defer mu.Unlock()
		offered = append(offered, slices.Clone(c))
		for _, p := range c {
			if !spared[p] {
				return p, true
			}
		}
		return identity.PeerID{}, false
	})
	dial := func(i int) (*testNode, error) {
		d := startNode(t, testConfig(testKey("evict", i)))
		return d, d.Connect(context.Background(), n.LocalID(), n.LocalAddr())
	}
	var first []*testNode
	for i := 1; i <= 3; i++ {
		d, err := dial(i)
		if err != nil {
			t.Fatal(err)
		}
		first = append(first, d)
	}
	spare := first[0].LocalID()
	mu.Lock()
	spared[spare] = true // the policy keeps this one
	mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	for i := 4; i <= 5; i++ {
		d, err := dial(i)
		if err != nil {
			t.Fatalf("newcomer %d refused: %v", i, err)
		}
		mu.Lock()
		spared[d.LocalID()] = true
		mu.Unlock()
	}
	waitFor(t, "evicted connections to close", func() bool {
		return !n.IsConnected(first[1].LocalID()) && !n.IsConnected(first[2].LocalID())
	})
	if !n.IsConnected(spare) {
		t.Fatal("the spared peer was evicted")
	}
	if st := n.Stats(); st.Evicted != 2 || st.ConnectionsOpen > cfg.MaxConnections {
		t.Fatalf("evicted %d, %d open", st.Evicted, st.ConnectionsOpen)
	}
	// The policy spares everyone left: it declines, the newcomer is refused.
	time.Sleep(100 * time.Millisecond)
	if _, err := dial(6); err == nil {
		t.Fatal("a newcomer was admitted though the policy declined")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(offered) < 3 {
		t.Fatalf("policy consulted %d times", len(offered))
	}
}
