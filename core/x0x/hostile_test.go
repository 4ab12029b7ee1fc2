package x0x

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/adversary"
	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/membership"
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

	attacker := stranger(t, ctx, victim)
	const kindUpdate = 11 // membership's SWIM update frame
	for _, u := range []membership.Update{
		{Node: membership.NodeDesc{ID: neighbour.MachineID(), Addr: neighbour.Addr()}, State: membership.StateDead, Inc: math.MaxUint64},
		{Node: membership.NodeDesc{ID: victim.MachineID(), Addr: victim.Addr()}, State: membership.StateSuspect, Inc: math.MaxUint64},
	} {
		b, err := membership.Encode(&membership.Message{Kind: kindUpdate, Updates: []membership.Update{u}})
		if err != nil {
			t.Fatal(err)
		}
		if err := attacker.Send(ctx, victim.MachineID(), link.ProtoMembership, b); err != nil {
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
	honestStillServed(t, ctx, victim)
	t.Logf("forged claims dropped: %d", victim.overlay.Members.Stats().ForgedClaims)
}

// Decode amplification (issue 10, attack 1), over QUIC: ten strangers each
// send a 1 MB membership frame whose node list is an array of a million
// empty maps (decoded into structs, about 48 MB each). The decoder refuses
// arrays over the message type's bound before allocating them, the node
// allocates about what it received, and each sender is disconnected.
func TestDecodeAmplificationRefused(t *testing.T) {
	agents := cluster(t, 2)
	victim := agents[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	frame := adversary.DecodeBomb(1_000_000)
	const attackers = 10
	nodes := make([]*adversary.Peer, attackers)
	for i := range nodes {
		nodes[i] = stranger(t, ctx, victim)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	errorsBefore := victim.overlay.Members.Stats().DecodeErrors
	for _, a := range nodes {
		if err := a.Send(ctx, victim.MachineID(), link.ProtoMembership, frame); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for victim.overlay.Members.Stats().DecodeErrors-errorsBefore < attackers {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d frames refused", victim.overlay.Members.Stats().DecodeErrors-errorsBefore, attackers)
		}
		time.Sleep(10 * time.Millisecond)
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d hostile 1 MB frames: %.0f MiB allocated in the process (senders' included)", attackers, float64(allocated)/(1<<20))
	if allocated > 200<<20 { // decoding them would allocate about 500 MiB
		t.Fatalf("%d MiB allocated", allocated>>20)
	}
	for i, a := range nodes {
		deadline := time.Now().Add(10 * time.Second)
		for a.IsConnected(victim.MachineID()) {
			if time.Now().After(deadline) {
				t.Fatalf("attacker %d still connected", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	honestStillServed(t, ctx, victim)
}

// Frames held for unknown origin keys (issue 10, part of attack 9): a
// stranger sends forty 1 MB messages of made-up origins and never answers
// key requests. The victim holds at most maxHeldBytesPerPeer of them (not
// 40 MB for the 5 s key timeout); the rest go on to pub/sub, which drops
// them for their unknown signer.
func TestHeldFramesBoundedPerPeer(t *testing.T) {
	agents := cluster(t, 1)
	victim := agents[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	attacker := stranger(t, ctx, victim)
	const frames = 40
	payload := bytes.Repeat([]byte{7}, 1000<<10)
	for i := range frames {
		var origin AgentID
		binary.BigEndian.PutUint64(origin[:], uint64(i+1))
		f := signedFrame(t, "held", origin, payload, []byte{1}, 1)
		if err := attacker.Send(ctx, victim.MachineID(), link.ProtoPubSub, f); err != nil { // waits while 40 MB outrun the queue
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ks := victim.keys.Stats()
		if ks.Held+ks.HeldOverrun == frames {
			// Held frames time out after keyFetchTimeout and free their
			// budget, so on a slow machine more than the bound's worth may
			// be held over the run; at no moment may more be held.
			if ks.HeldPeakB > maxHeldBytesPerPeer || ks.HeldOverrun == 0 {
				t.Fatalf("at most %d bytes held at once (%d frames held, %d passed on) of %d KB frames from one peer, bound %d bytes",
					ks.HeldPeakB, ks.Held, ks.HeldOverrun, len(payload)>>10, maxHeldBytesPerPeer)
			}
			t.Logf("held %d, passed on %d, peak %d bytes", ks.Held, ks.HeldOverrun, ks.HeldPeakB)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("frames not processed: %+v", ks)
		}
		time.Sleep(10 * time.Millisecond)
	}
	victim.keys.mu.Lock()
	heldBytes := victim.keys.heldB
	victim.keys.mu.Unlock()
	if heldBytes > maxHeldBytesPerPeer {
		t.Fatalf("%d bytes held for one peer", heldBytes)
	}
	honestStillServed(t, ctx, victim)
}

// stranger is a hostile peer with a fresh key (core/adversary), connected
// to victim: it speaks the wire protocol without running an agent. It is
// closed at the end of the test.
func stranger(t *testing.T, ctx context.Context, victim *Agent) *adversary.Peer {
	t.Helper()
	p, err := adversary.New(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.Connect(ctx, victim.MachineID(), victim.Addr()); err != nil {
		t.Fatal(err)
	}
	return p
}

// Dials to claimed addresses (issue 10, attack 2), over QUIC: a stranger
// sends FIND walks, FORWARDJOINs with TTL 0, SHUFFLEs and PINGREQs naming a
// silent address. Descriptors without the named node's signed record are
// not dialled at all; descriptors with valid records of throwaway keys (an
// attacker can always make those) are dialled only within the claimed-dial
// budget, and once a dial of the address failed, not again. An honest
// agent still joins and receives messages afterwards.
func TestClaimedAddressesAreNotDialled(t *testing.T) {
	agents := cluster(t, 1)
	victim := agents[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	joinSub(t, victim, "find")
	silent, dials := silentAddr(t)
	attacker := stranger(t, ctx, victim)
	send := func(class link.Protocol, b []byte) {
		if err := attacker.Send(ctx, victim.MachineID(), class, b); err != nil {
			t.Fatal(err)
		}
	}
	attack := func(desc func(i int) membership.NodeDesc, rounds int) {
		for i := range rounds {
			find, mem, err := adversary.ClaimedAddress("find", desc(i), uint64(i+1))
			if err != nil {
				t.Fatal(err)
			}
			send(link.ProtoPubSub, find)
			for _, b := range mem {
				send(link.ProtoMembership, b)
			}
		}
	}
	// Round 1: claims without records, about fresh IDs and about the
	// victim's own neighbours-to-be: never dialled.
	// (A PINGREQ for a peer the victim is not connected to is refused
	// before its record is even looked at: RelaysDeclined.)
	const rounds = 100
	refused := func() uint64 { s := victim.overlay.Members.Stats(); return s.Unvouched + s.RelaysDeclined }
	refusedBefore := refused()
	attack(func(int) membership.NodeDesc {
		return membership.NodeDesc{ID: identity.DeriveID(randomBytes(t, 32)), Addr: silent}
	}, rounds)
	deadline := time.Now().Add(20 * time.Second)
	for refused()-refusedBefore < 4*rounds {
		if time.Now().After(deadline) {
			t.Fatalf("claims not refused: %+v", victim.overlay.Members.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if n := dials(); n != 0 {
		t.Fatalf("%d dials to an address nobody vouched for", n)
	}
	// Round 2: each claim signed by its own throwaway key.
	start := time.Now()
	attack(func(int) membership.NodeDesc {
		d, err := adversary.SelfSignedTarget(silent, clock.Real())
		if err != nil {
			t.Fatal(err)
		}
		return d
	}, rounds)
	time.Sleep(2 * time.Second)
	elapsed := time.Since(start).Seconds()
	// Defaults: a burst of 16 claimed dials, then 2 per second.
	bound := 16 + int(2*elapsed) + 1
	st := victim.overlay.Members.Stats()
	t.Logf("%d self-signed claims in %.1f s: %d dials to the silent address, %d refused (bound %d)", 4*rounds, elapsed, dials(), st.DialsRefused, bound)
	if n := dials(); n == 0 || n > bound {
		t.Fatalf("%d dials to the silent address, want 1..%d", n, bound)
	}
	honestStillServed(t, ctx, victim)
}

// honestStillServed checks that after an attack a new honest agent joins
// through victim and receives what victim publishes, both ways round.
func honestStillServed(t *testing.T, ctx context.Context, victim *Agent) {
	t.Helper()
	honest, err := NewBuilder().WithDataDir(t.TempDir()).WithKDF(cheapKDF()).
		WithBootstrap(fmt.Sprintf("%s@%s", victim.MachineID(), victim.Addr())).Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer honest.Close()
	if err := honest.JoinNetwork(ctx); err != nil {
		t.Fatalf("an honest agent cannot join after the attack: %v", err)
	}
	const topic = "after-the-attack"
	htopic, hsub := joinSub(t, honest, topic)
	vtopic, vsub := joinSub(t, victim, topic)
	defer htopic.Leave()
	defer vtopic.Leave()
	publishUntilHeard(t, ctx, vtopic, hsub, "from the victim")
	publishUntilHeard(t, ctx, htopic, vsub, "to the victim")
}

// publishUntilHeard publishes payload on from every 300 ms until sub
// receives it (topic trees take a moment to form).
func publishUntilHeard(t *testing.T, ctx context.Context, from *Topic, sub *Subscription, payload string) {
	t.Helper()
	for {
		if _, err := from.Publish(ctx, []byte(payload)); err != nil {
			t.Fatal(err)
		}
		wait, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		for {
			m, err := sub.Next(wait)
			if err != nil {
				break
			}
			if string(m.Payload) == payload {
				cancel()
				return
			}
		}
		cancel()
		if ctx.Err() != nil {
			t.Fatalf("%q never arrived", payload)
		}
	}
}

// silentAddr binds a UDP socket that never answers and counts the QUIC
// connection attempts that reach it (distinct destination connection IDs
// of long-header packets).
func silentAddr(t *testing.T) (string, func() int) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	dcids := map[string]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n > 6 && buf[0]&0x80 != 0 && int(buf[5]) <= n-6 {
				mu.Lock()
				dcids[string(buf[6:6+int(buf[5])])] = true
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(dcids)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// Connection-table exhaustion (issue 10, attack 5), over QUIC: strangers
// fill a node's connection table; an honest newcomer is still admitted,
// in place of the longest established stranger, and the node's overlay
// neighbour keeps its connection.
func TestFullTableAdmitsNewcomers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const table = 8
	victim, err := NewBuilder().WithDataDir(t.TempDir()).WithKDF(cheapKDF()).
		WithConnections(ConnectionConfig{MaxConnections: table, EvictMinAge: 300 * time.Millisecond}).Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Close() })
	join := func() *Agent {
		a, err := NewBuilder().WithDataDir(t.TempDir()).WithKDF(cheapKDF()).
			WithBootstrap(fmt.Sprintf("%s@%s", victim.MachineID(), victim.Addr())).Build(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		if err := a.JoinNetwork(ctx); err != nil {
			t.Fatalf("join: %v", err)
		}
		return a
	}
	neighbour := join()
	for range table - 1 {
		stranger(t, ctx, victim)
	}
	if got := victim.node.Stats().ConnectionsOpen; got < table {
		t.Fatalf("%d connections open, want a full table of %d", got, table)
	}
	time.Sleep(500 * time.Millisecond) // older than EvictMinAge
	newcomer := join()
	deadline := time.Now().Add(5 * time.Second)
	for !victim.node.IsConnected(newcomer.MachineID()) {
		if time.Now().After(deadline) {
			t.Fatalf("the newcomer is not connected: %+v (newcomer sees victim: %v)", victim.node.Stats(), newcomer.node.IsConnected(victim.MachineID()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := victim.node.Stats()
	if st.Evicted == 0 {
		t.Fatalf("nothing evicted: %+v", st)
	}
	if !victim.node.IsConnected(neighbour.MachineID()) {
		t.Fatal("the overlay neighbour was evicted")
	}
	t.Logf("evicted %d, refused %d", st.Evicted, st.ConnectionsRefused)
}

// Peer scores (issue 10, attack 9), over QUIC: a stranger sends messages
// of a known origin with signatures that do not verify; once most of its
// recent traffic is invalid the node disconnects it, and an honest
// neighbour's messages still arrive.
func TestInvalidTrafficScoresPeerOut(t *testing.T) {
	agents := cluster(t, 2)
	victim, neighbour := agents[0], agents[1]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, sub := joinSub(t, victim, "scored")
	attacker := stranger(t, ctx, victim)
	for i := range 40 {
		f, err := adversary.ForgedMessage("scored", victim.AgentID(), []byte(fmt.Sprint("forged ", i)), uint64(1000+i), false)
		if err != nil {
			t.Fatal(err)
		}
		if err := attacker.Send(ctx, victim.MachineID(), link.ProtoPubSub, f); err != nil {
			break // disconnected part-way: that is the point
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for attacker.IsConnected(victim.MachineID()) {
		if time.Now().After(deadline) {
			t.Fatalf("attacker still connected: %+v", victim.pubsubStats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := victim.pubsubStats()
	if st.PeersScoredOut != 1 || st.DropBadSignature < 16 || st.Delivered != 0 {
		t.Fatalf("scored out %d, bad signatures %d, delivered %d", st.PeersScoredOut, st.DropBadSignature, st.Delivered)
	}
	ntopic, _ := joinSub(t, neighbour, "scored")
	publishUntilHeard(t, ctx, ntopic, sub, "honest")
}

// Per-peer frame rate (issue 10, attack 9), over QUIC: a stranger sends
// 8,000 small pub/sub frames as fast as it can; beyond the burst (4,000)
// and the rate (2,000/s) they are dropped before they are handled.
func TestPeerFrameFloodIsRateLimited(t *testing.T) {
	agents := cluster(t, 1)
	victim := agents[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	attacker := stranger(t, ctx, victim)
	f, err := adversary.IHave("nothing")
	if err != nil {
		t.Fatal(err)
	}
	const frames = 8000
	start := time.Now()
	for range frames {
		if err := attacker.Send(ctx, victim.MachineID(), link.ProtoPubSub, f); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := victim.pubsubStats()
		handled := st.DropNotSubscribed + st.RateLimited
		if handled >= frames {
			elapsed := time.Since(start).Seconds()
			maxHandled := 4000 + 2000*elapsed
			t.Logf("%d frames in %.2f s: %d rate-limited, %d handled", frames, elapsed, st.RateLimited, st.DropNotSubscribed)
			if st.RateLimited == 0 || float64(st.DropNotSubscribed) > maxHandled {
				t.Fatalf("%d handled, bound %.0f; %d rate-limited", st.DropNotSubscribed, maxHandled, st.RateLimited)
			}
			honestStillServed(t, ctx, victim)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("frames not processed: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
