package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// countingHandlers installs a handler on every protocol that counts frames.
func countingHandlers(n *testNode) *atomic.Int64 {
	var got atomic.Int64
	for p := link.ProtoMembership; p <= link.MaxProtocol; p++ {
		n.Handle(p, func(identity.PeerID, []byte) { got.Add(1) })
	}
	return &got
}

func TestRefusesClassicalKeyExchange(t *testing.T) {
	node := startNode(t, testConfig(testKey("pq", 1)))
	conf := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		CurvePreferences:   []tls.CurveID{tls.X25519}, // no post-quantum group offered
		NextProtos:         []string{ALPN},
		InsecureSkipVerify: true,
	}
	_, err := rawDial(t, node.LocalAddr(), conf)
	if err == nil {
		t.Fatal("handshake offering only X25519 succeeded")
	}
	var te *quic.TransportError
	if !errors.As(err, &te) || !te.Remote {
		t.Fatalf("want a TLS alert from the node, got %v", err)
	}
	if st := node.Stats(); st.TLSRefused != 1 || st.InboundAccepted != 0 || st.PeersConnected != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The same raw client offering the hybrid group gets through TLS.
	conf.CurvePreferences = []tls.CurveID{tls.X25519MLKEM768}
	rc, err := rawDial(t, node.LocalAddr(), conf)
	if err != nil {
		t.Fatalf("hybrid handshake: %v", err)
	}
	if got := rc.qc.ConnectionState().TLS.CurveID; got != tls.X25519MLKEM768 {
		t.Fatalf("negotiated %v", got)
	}
}

func TestCheckTLSRejectsClassicalState(t *testing.T) {
	ok := tls.ConnectionState{Version: tls.VersionTLS13, CurveID: tls.X25519MLKEM768, NegotiatedProtocol: ALPN}
	if err := checkTLS(ok, false); err != nil {
		t.Fatalf("valid state refused: %v", err)
	}
	for name, mut := range map[string]func(*tls.ConnectionState) bool{
		"x25519":  func(s *tls.ConnectionState) bool { s.CurveID = tls.X25519; return false },
		"tls12":   func(s *tls.ConnectionState) bool { s.Version = tls.VersionTLS12; return false },
		"alpn":    func(s *tls.ConnectionState) bool { s.NegotiatedProtocol = "h3"; return false },
		"resumed": func(s *tls.ConnectionState) bool { s.DidResume = true; return false },
		"0rtt":    func(*tls.ConnectionState) bool { return true },
	} {
		s := ok
		used0RTT := mut(&s)
		if err := checkTLS(s, used0RTT); !errors.Is(err, ErrNotPostQuantum) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestNoProofIsDisconnectedAfterAuthTimeout(t *testing.T) {
	cfg := testConfig(testKey("noproof", 1))
	cfg.AuthTimeout = 300 * time.Millisecond
	node := startNode(t, cfg)
	delivered := countingHandlers(node)
	rc, err := rawDial(t, node.LocalAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Data on a class stream is not read before authentication.
	rc.openClass(link.ClassPubSub, appendFrame(nil, protoFrame(link.ProtoPubSub), []byte("sneaky")))
	if code := rc.waitClosed(); code != codeAuthTimeout {
		t.Fatalf("closed with code %#x, want auth timeout", code)
	}
	waitFor(t, "auth failure counted", func() bool { return node.Stats().AuthFailures == 1 })
	if delivered.Load() != 0 || node.Stats().Class(link.ClassPubSub).FramesIn != 0 {
		t.Fatal("data from an unauthenticated client was delivered")
	}
	if evs := node.rec.snapshot(); len(evs) != 0 {
		t.Fatalf("events for an unauthenticated client: %v", summarize(evs))
	}
}

func TestWrongProofIsDisconnectedImmediately(t *testing.T) {
	cfg := testConfig(testKey("badproof", 1))
	cfg.AuthTimeout = time.Hour // a timeout cannot be what closes the connection
	node := startNode(t, cfg)
	delivered := countingHandlers(node)
	liar := testKey("liar", 1)

	cases := map[string]func(rc *rawClient) []byte{
		"signature over another session": func(rc *rawClient) []byte {
			body, _ := wire.Marshal(makeAuth(liar, make([]byte, exporterLen), roleDialler, node.LocalID(), testInstance))
			return appendFrame(nil, frameAuth, body)
		},
		"claims another identity": func(rc *rawClient) []byte {
			m := makeAuth(liar, rc.ekm, roleDialler, node.LocalID(), testInstance)
			other := testKey("victim", 1).ID()
			m.From = other[:]
			body, _ := wire.Marshal(m)
			return appendFrame(nil, frameAuth, body)
		},
		"listener role": func(rc *rawClient) []byte {
			body, _ := wire.Marshal(makeAuth(liar, rc.ekm, roleListener, node.LocalID(), testInstance))
			return appendFrame(nil, frameAuth, body)
		},
		"data before proof": func(rc *rawClient) []byte {
			return appendFrame(nil, protoFrame(link.ProtoPubSub), []byte("hello"))
		},
		"garbage": func(rc *rawClient) []byte {
			return appendFrame(nil, frameAuth, []byte{0xff, 0x00, 0x13})
		},
		"node's own key": func(rc *rawClient) []byte {
			return rc.authFrame(testKey("badproof", 1), node.LocalID())
		},
	}
	for name, frame := range cases {
		t.Run(name, func(t *testing.T) {
			rc, err := rawDial(t, node.LocalAddr(), nil)
			if err != nil {
				t.Fatal(err)
			}
			before := node.Stats().AuthFailures
			rc.openClass(link.ClassDirect, appendFrame(nil, protoFrame(link.ProtoPubSub), []byte("sneaky")))
			rc.openControl()
			rc.write(frame(rc))
			_, _ = rc.ctrl.Write(rc.helloFrames()) // may fail: the node closes at once
			if code := rc.waitClosed(); code != codeAuthFailed {
				t.Fatalf("closed with code %#x, want auth failed", code)
			}
			waitFor(t, "auth failure counted", func() bool { return node.Stats().AuthFailures == before+1 })
		})
	}
	if delivered.Load() != 0 || node.Stats().PeersConnected != 0 {
		t.Fatal("an unauthenticated client got through")
	}
	if evs := node.rec.snapshot(); len(evs) != 0 {
		t.Fatalf("events for unauthenticated clients: %v", summarize(evs))
	}
}

func TestReplayedProofIsRefused(t *testing.T) {
	node := startNode(t, testConfig(testKey("replay", 1)))
	client := testKey("replay-client", 1)

	// Session 1: the client authenticates properly; an eavesdropper on the
	// endpoint captures its proof.
	rc1, err := rawDial(t, node.LocalAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	captured := rc1.authFrame(client, node.LocalID())
	rc1.openControl()
	rc1.write(captured)
	var hdr [frameHeaderSize]byte
	if typ, _, err := readFrame(rc1.ctrl, &hdr, DefaultMaxFrameSize); err != nil || typ != frameAuth {
		t.Fatalf("session 1: node did not answer the proof: %v %v", typ, err)
	}
	rc1.write(rc1.helloFrames())
	node.rec.wait(t, "session 1 authenticated", func(e []Event) bool { return count(e, EventPeerConnected, client.ID()) == 1 })
	rc1.close()
	node.rec.wait(t, "session 1 closed", func(e []Event) bool { return count(e, EventPeerDisconnected, client.ID()) == 1 })

	// Session 2: the captured proof is replayed.
	rc2, err := rawDial(t, node.LocalAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rc2.openControl()
	rc2.write(captured)
	_, _ = rc2.ctrl.Write(rc2.helloFrames()) // may fail: the node closes at once
	if code := rc2.waitClosed(); code != codeAuthFailed {
		t.Fatalf("replay closed with code %#x, want auth failed", code)
	}
	waitFor(t, "auth failure counted", func() bool { return node.Stats().AuthFailures == 1 })
	if got := count(node.rec.snapshot(), EventPeerConnected, client.ID()); got != 1 {
		t.Fatalf("replayed proof produced %d connections", got)
	}
}

func TestDialExpectingAnotherPeerFails(t *testing.T) {
	a := startNode(t, testConfig(testKey("mismatch", 1)))
	b := startNode(t, testConfig(testKey("mismatch", 2)))
	expected := testKey("mismatch", 3).ID()
	err := a.Connect(context.Background(), expected, b.LocalAddr())
	var me *PeerMismatchError
	if !errors.As(err, &me) || !errors.Is(err, ErrPeerMismatch) {
		t.Fatalf("got %v, want *PeerMismatchError", err)
	}
	if me.Expected != expected || me.Got != b.LocalID() || me.Addr != b.LocalAddr() {
		t.Fatalf("mismatch details %+v", me)
	}
	evs := a.rec.wait(t, "ConnectionFailed", func(e []Event) bool { return count(e, EventConnectionFailed, expected) == 1 })
	for _, e := range evs {
		if e.Kind == EventConnectionFailed && !errors.Is(e.Err, ErrPeerMismatch) {
			t.Fatalf("event error %v", e.Err)
		}
	}
	waitFor(t, "B drops the connection", func() bool { return b.Stats().ConnectionsOpen == 0 })
	if len(a.Peers()) != 0 || len(b.Peers()) != 0 || len(b.rec.snapshot()) != 0 {
		t.Fatal("a mismatched connection was accepted")
	}
	if a.Stats().AuthFailures != 1 || a.Stats().DialsFailed != 1 {
		t.Fatalf("A stats %+v", a.Stats())
	}
	// The right PeerID still works (after the cooldown).
	waitFor(t, "cooldown", func() bool { return a.checkCooldown(b.LocalID()) == nil })
	if err := a.Connect(context.Background(), b.LocalID(), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
}

// rawListener is a hand-driven QUIC server speaking x0x TLS.
func rawListener(t *testing.T) (*quic.Listener, string) {
	t.Helper()
	server, _, err := tlsConfigs(cryptorandReader(), time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.Listen(server, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close(); _ = tr.Close(); _ = udp.Close() })
	return ln, udp.LocalAddr().String()
}

func TestReflectedProofIsRefused(t *testing.T) {
	a := startNode(t, testConfig(testKey("reflect", 1)))
	ln, addr := rawListener(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		qc, err := ln.Accept(context.Background())
		if err != nil {
			return
		}
		st, err := qc.AcceptStream(context.Background())
		if err != nil {
			return
		}
		var hdr [frameHeaderSize]byte
		typ, body, err := readFrame(st, &hdr, DefaultMaxFrameSize)
		if err != nil || typ != frameAuth {
			return
		}
		_, _ = st.Write(appendFrame(nil, frameAuth, body)) // reflect the dialler's own proof
		<-qc.Context().Done()
	}()
	_, err := a.ConnectAddr(context.Background(), addr)
	if !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("reflected proof: got %v, want ErrAuthFailed", err)
	}
	<-done
	if len(a.Peers()) != 0 {
		t.Fatal("reflected proof accepted")
	}
}

func TestMalformedInputClosesOnlyThatConnection(t *testing.T) {
	node := startNode(t, testConfig(testKey("malformed", 1)))
	friend := startNode(t, testConfig(testKey("malformed", 2)))
	var friendMsgs atomic.Int64
	node.Handle(link.ProtoMembership, func(from identity.PeerID, _ []byte) {
		if from == friend.LocalID() {
			friendMsgs.Add(1)
		}
	})
	if err := friend.Connect(context.Background(), node.LocalID(), node.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	agentsBody, _ := wire.Marshal(&agentsMsg{Add: []identity.AgentCert{{AgentKey: []byte{1}}}})
	hugeHeader := make([]byte, frameHeaderSize)
	putFrameHeader(hugeHeader, protoFrame(link.ProtoPubSub), DefaultMaxFrameSize+1)
	cases := []struct {
		name      string
		class     link.Class
		bytes     []byte
		malformed bool // else a protocol violation
	}{
		{"random bytes", link.ClassPubSub, []byte{0x7f, 0x13, 0x99, 0x01, 0x02, 0x03, 0x04, 0x05}, true},
		{"oversized length", link.ClassBulk, hugeHeader, true},
		{"unknown frame type", link.ClassMembership, appendFrame(nil, frameType(0x7e), []byte("x")), true},
		{"unknown protocol", link.ClassPubSub, appendFrame(nil, protoFrame(link.MaxProtocol+1), []byte("x")), true},
		{"protocol on another class's stream", link.ClassMembership, appendFrame(nil, protoFrame(link.ProtoPubSub), []byte("x")), false},
		{"truncated CBOR", link.ClassDirect, appendFrame(nil, frameAgents, agentsBody[:len(agentsBody)-3]), true},
		{"truncated frame", link.ClassPubSub, appendFrame(nil, protoFrame(link.ProtoPubSub), []byte("abcdef"))[:8], true},
		{"unknown class", link.Class(0x09), appendFrame(nil, protoFrame(link.ProtoPubSub), []byte("x")), true},
		{"direct frame on pubsub", link.ClassPubSub, appendFrame(nil, frameDirect, make([]byte, 70)), false},
		{"auth frame on a class stream", link.ClassMembership, appendFrame(nil, frameAuth, []byte{0xa0}), false},
		{"short direct message", link.ClassDirect, appendFrame(nil, frameDirect, []byte("short")), true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := node.Stats()
			rc, err := rawDial(t, node.LocalAddr(), nil)
			if err != nil {
				t.Fatal(err)
			}
			key := testKey("malformed-client", i)
			rc.authenticate(key, node.LocalID())
			node.rec.wait(t, "raw client up", func(e []Event) bool { return count(e, EventPeerConnected, key.ID()) == 1 })
			if tc.name == "truncated frame" {
				st, _ := rc.qc.OpenUniStream()
				_, _ = st.Write(append([]byte{byte(tc.class)}, tc.bytes...))
				_ = st.Close() // FIN inside the frame
			} else {
				rc.openClass(tc.class, tc.bytes)
			}
			if code := rc.waitClosed(); code != codeProtocol {
				t.Fatalf("closed with %#x, want protocol error", code)
			}
			after := node.Stats()
			if tc.malformed && after.MalformedFrames != before.MalformedFrames+1 {
				t.Fatalf("malformed count %d -> %d", before.MalformedFrames, after.MalformedFrames)
			}
			if !tc.malformed && after.ProtocolErrors != before.ProtocolErrors+1 {
				t.Fatalf("protocol error count %d -> %d", before.ProtocolErrors, after.ProtocolErrors)
			}
			evs := node.rec.wait(t, "raw client down", func(e []Event) bool { return count(e, EventPeerDisconnected, key.ID()) == 1 })
			for _, e := range evs {
				if e.Kind == EventPeerDisconnected && e.Peer == key.ID() && !errors.Is(e.Err, ErrMalformed) && !errors.Is(e.Err, ErrProtocol) {
					t.Fatalf("disconnect reason %v", e.Err)
				}
			}
			// The other peer is unaffected.
			want := friendMsgs.Load() + 1
			if err := friend.Send(node.LocalID(), link.ProtoMembership, link.PriorityControl, []byte("still here")); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "friend's message", func() bool { return friendMsgs.Load() == want })
			if !node.IsConnected(friend.LocalID()) {
				t.Fatal("the well-behaved peer was disconnected")
			}
		})
	}
}

func TestDirectMessageChecks(t *testing.T) {
	node := startNode(t, testConfig(testKey("dmcheck", 1)))
	local := testKey("dm-local", 1)
	if _, err := node.AddAgent(local); err != nil {
		t.Fatal(err)
	}
	rc, err := rawDial(t, node.LocalAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	machine := testKey("dm-machine", 1)
	good, foreign, forged := testKey("dm-agent", 1), testKey("dm-agent", 2), testKey("dm-agent", 3)
	now := time.Now()
	goodCert, _ := identity.IssueAgentCert(good, machine.ID(), now, time.Hour)
	// A certificate for another machine: must be rejected and counted.
	foreignCert, _ := identity.IssueAgentCert(foreign, testKey("elsewhere", 1).ID(), now, time.Hour)
	rc.authenticate(machine, node.LocalID(), *goodCert, *foreignCert)
	evs := node.rec.wait(t, "raw client up", func(e []Event) bool { return count(e, EventPeerConnected, machine.ID()) == 1 })
	for _, e := range evs {
		if e.Kind == EventPeerConnected && (len(e.Agents) != 1 || e.Agents[0] != good.ID()) {
			t.Fatalf("agents %v, want only the validly certified one", e.Agents)
		}
	}
	if node.Stats().CertsRejected != 1 {
		t.Fatalf("certs rejected %d", node.Stats().CertsRejected)
	}
	direct := func(from, to identity.AgentID, p string) []byte {
		body := make([]byte, directIDsSize, directIDsSize+len(p))
		putDirectIDs(body, from, to)
		return appendFrame(nil, frameDirect, append(body, p...))
	}
	stream := direct(forged.ID(), local.ID(), "forged sender")
	stream = append(stream, direct(good.ID(), testKey("nobody", 1).ID(), "unknown recipient")...)
	stream = append(stream, direct(good.ID(), local.ID(), "genuine")...)
	// Announce the forged agent with a certificate for another machine:
	// still refused.
	forgedCert, _ := identity.IssueAgentCert(forged, testKey("elsewhere", 2).ID(), now, time.Hour)
	upd, _ := wire.Marshal(&agentsMsg{Add: []identity.AgentCert{*forgedCert}})
	stream = append(stream, appendFrame(nil, frameAgents, upd)...)
	stream = append(stream, direct(forged.ID(), local.ID(), "forged again")...)
	rc.openClass(link.ClassDirect, stream)
	waitFor(t, "all four messages processed", func() bool {
		st := node.Stats()
		return st.DirectDropped+st.DirectDelivered == 4
	})
	st := node.Stats()
	if st.DirectDelivered != 1 || st.DirectDropped != 3 || st.CertsRejected != 2 {
		t.Fatalf("delivered %d dropped %d rejected %d", st.DirectDelivered, st.DirectDropped, st.CertsRejected)
	}
	evs = node.rec.wait(t, "the genuine message", func(e []Event) bool { return len(directFrom(e, good.ID())) == 1 })
	got := directFrom(evs, good.ID())
	if len(got) != 1 || string(got[0]) != "genuine" || len(directFrom(evs, forged.ID())) != 0 {
		t.Fatalf("delivered %q", got)
	}
}

func TestServiceMessagesReachOnlyTheirHandler(t *testing.T) {
	node := startNode(t, testConfig(testKey("svc", 1)))
	local := testKey("svc-local", 1)
	if _, err := node.AddAgent(local); err != nil {
		t.Fatal(err)
	}
	type got struct {
		peer     identity.PeerID
		from, to identity.AgentID
		payload  string
	}
	ch := make(chan got, 8)
	node.HandleDirect(ServiceGroups, func(peer identity.PeerID, from, to identity.AgentID, p []byte) {
		ch <- got{peer, from, to, string(p)}
	})
	rc, err := rawDial(t, node.LocalAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	machine := testKey("svc-machine", 1)
	good, forged := testKey("svc-agent", 1), testKey("svc-agent", 2)
	cert, _ := identity.IssueAgentCert(good, machine.ID(), time.Now(), time.Hour)
	rc.authenticate(machine, node.LocalID(), *cert)
	node.rec.wait(t, "raw client up", func(e []Event) bool { return count(e, EventPeerConnected, machine.ID()) == 1 })
	service := func(s byte, from, to identity.AgentID, p string) []byte {
		body := make([]byte, 1+directIDsSize, 1+directIDsSize+len(p))
		body[0] = s
		putDirectIDs(body[1:], from, to)
		return appendFrame(nil, frameService, append(body, p...))
	}
	stream := service(byte(ServiceGroups), forged.ID(), local.ID(), "forged sender")
	stream = append(stream, service(0, good.ID(), local.ID(), "service zero")...)
	stream = append(stream, service(200, good.ID(), local.ID(), "unknown service")...)
	stream = append(stream, service(byte(ServiceGroups), good.ID(), local.ID(), "genuine")...)
	rc.openClass(link.ClassDirect, stream)
	select {
	case g := <-ch:
		if g.payload != "genuine" || g.from != good.ID() || g.to != local.ID() || g.peer != machine.ID() {
			t.Fatalf("handler got %+v", g)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the genuine service message did not reach the handler")
	}
	waitFor(t, "all four frames processed", func() bool {
		st := node.Stats()
		return st.DirectDropped+st.DirectDelivered == 4
	})
	if st := node.Stats(); st.DirectDelivered != 1 || st.DirectDropped != 3 {
		t.Fatalf("delivered %d dropped %d", st.DirectDelivered, st.DirectDropped)
	}
	if n := len(directFrom(node.rec.snapshot(), good.ID())); n != 0 {
		t.Fatalf("%d service messages leaked into Events", n)
	}
	// A local recipient: delivered to the handler synchronously.
	other := testKey("svc-local", 2)
	if _, err := node.AddAgent(other); err != nil {
		t.Fatal(err)
	}
	if err := node.SendService(context.Background(), ServiceGroups, other.ID(), local.ID(), []byte("local")); err != nil {
		t.Fatal(err)
	}
	if g := <-ch; g.payload != "local" || g.peer != node.LocalID() {
		t.Fatalf("local delivery %+v", g)
	}
	if err := node.SendService(context.Background(), 0, other.ID(), local.ID(), nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("service 0: %v", err)
	}
}
