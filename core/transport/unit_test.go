package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

func TestVerifyAuth(t *testing.T) {
	dialler, listener, other := testKey("va", 1), testKey("va", 2), testKey("va", 3)
	ekm := bytes.Repeat([]byte{7}, exporterLen)
	otherEKM := bytes.Repeat([]byte{8}, exporterLen)
	in := testInstance

	// A dialler's proof, checked by the listener.
	m := makeAuth(dialler, ekm, roleDialler, listener.ID(), in)
	chk, err := verifyAuth(m, ekm, roleDialler, listener.ID(), identity.PeerID{}, "x")
	if err != nil || chk.pub.ID() != dialler.ID() || chk.toMismatch || chk.instance != in {
		t.Fatalf("valid dialler proof: %+v %v", chk, err)
	}
	// The listener's proof, checked by a dialler expecting it.
	lm := makeAuth(listener, ekm, roleListener, dialler.ID(), in)
	if _, err := verifyAuth(lm, ekm, roleListener, dialler.ID(), listener.ID(), "x"); err != nil {
		t.Fatalf("valid listener proof: %v", err)
	}
	// Unknown listener (To zero) is allowed for a dialler's proof only.
	if _, err := verifyAuth(makeAuth(dialler, ekm, roleDialler, identity.PeerID{}, in), ekm, roleDialler, listener.ID(), identity.PeerID{}, "x"); err != nil {
		t.Fatalf("dialler proof without a target: %v", err)
	}
	// A dialler that meant another listener: verified, but flagged.
	if chk, err := verifyAuth(makeAuth(dialler, ekm, roleDialler, other.ID(), in), ekm, roleDialler, listener.ID(), identity.PeerID{}, "x"); err != nil || !chk.toMismatch {
		t.Fatalf("dialler proof for another listener: %+v %v", chk, err)
	}

	cases := []struct {
		name string
		m    *authMsg
		ekm  []byte
		want role
		exp  identity.PeerID
		err  error
	}{
		{"replayed in another session", m, otherEKM, roleDialler, identity.PeerID{}, ErrAuthFailed},
		{"reflected back to its maker", m, ekm, roleListener, identity.PeerID{}, ErrAuthFailed},
		{"listener proof naming someone else", makeAuth(listener, ekm, roleListener, other.ID(), in), ekm, roleListener, identity.PeerID{}, ErrAuthFailed},
		{"unexpected listener", lm, ekm, roleListener, other.ID(), ErrPeerMismatch},
		{"our own key", makeAuth(listener, ekm, roleDialler, listener.ID(), in), ekm, roleDialler, identity.PeerID{}, ErrSelfConnect},
	}
	for _, tc := range cases {
		local := listener.ID()
		if tc.want == roleListener {
			local = dialler.ID()
		}
		if _, err := verifyAuth(tc.m, tc.ekm, tc.want, local, tc.exp, "x"); !errors.Is(err, tc.err) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.err)
		}
	}
	// Claiming another identity's ID with one's own key.
	forged := makeAuth(dialler, ekm, roleDialler, listener.ID(), in)
	oid := other.ID()
	forged.From = oid[:]
	if _, err := verifyAuth(forged, ekm, roleDialler, listener.ID(), identity.PeerID{}, "x"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("forged From: %v", err)
	}
	// A flipped signature bit.
	bad := makeAuth(dialler, ekm, roleDialler, listener.ID(), in)
	bad.Sig[10] ^= 1
	if _, err := verifyAuth(bad, ekm, roleDialler, listener.ID(), identity.PeerID{}, "x"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("flipped signature: %v", err)
	}
}

func TestDecodeAuthRejectsBadStructure(t *testing.T) {
	good := makeAuth(testKey("da", 1), make([]byte, exporterLen), roleDialler, testKey("da", 2).ID(), testInstance)
	if b, _ := wire.Marshal(good); true {
		if _, err := decodeAuth(b); err != nil {
			t.Fatalf("good message: %v", err)
		}
	}
	mutations := map[string]func(m *authMsg){
		"short key":      func(m *authMsg) { m.Key = m.Key[:10] },
		"short sig":      func(m *authMsg) { m.Sig = m.Sig[:10] },
		"long from":      func(m *authMsg) { m.From = append(m.From, 0) },
		"short to":       func(m *authMsg) { m.To = m.To[:31] },
		"role 0":         func(m *authMsg) { m.Role = 0 },
		"role 3":         func(m *authMsg) { m.Role = 3 },
		"no instance":    func(m *authMsg) { m.Instance = nil },
		"short instance": func(m *authMsg) { m.Instance = m.Instance[:3] },
	}
	for name, mut := range mutations {
		m := *good
		m.Key, m.Sig, m.From, m.To, m.Instance = bytes.Clone(m.Key), bytes.Clone(m.Sig), bytes.Clone(m.From), bytes.Clone(m.To), bytes.Clone(m.Instance)
		mut(&m)
		b, err := wire.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeAuth(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	for _, b := range [][]byte{nil, {0xa0}, {0xff}, {0xa1, 0x01}} {
		if _, err := decodeAuth(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: got %v", b, err)
		}
	}
}

func TestFrameHeaderLimits(t *testing.T) {
	const maxFrame = 1000
	for _, tc := range []struct {
		t   frameType
		n   int
		bad bool
	}{
		{protoFrame(link.ProtoPubSub), maxFrame, false}, {protoFrame(link.ProtoPubSub), maxFrame + 1, true},
		{frameDirect, maxFrame, false}, {frameAuth, maxAuthBody, false}, {frameAuth, maxAuthBody + 1, true},
		{frameAgents, maxAgentsBody + 1, true}, {frameAddr, maxAddrBody + 1, true},
		{frameRetire, 1, false}, {frameRetire, 2, true}, {frameDrained, 1, true},
		{frameType(0), 0, true}, {frameType(0x13), 0, true}, {frameType(0xff), 0, true},
		{frameService, maxFrame, false}, {frameService, maxFrame + 1, true},
	} {
		var h [frameHeaderSize]byte
		putFrameHeader(h[:], tc.t, tc.n)
		typ, n, err := parseFrameHeader(h[:], maxFrame)
		if tc.bad != (err != nil) || (err != nil && !errors.Is(err, ErrMalformed)) {
			t.Errorf("%v/%d: err %v", tc.t, tc.n, err)
		}
		if err == nil && (typ != tc.t || n != tc.n) {
			t.Errorf("%v/%d: parsed %v/%d", tc.t, tc.n, typ, n)
		}
	}
	// A 4 GiB length must not allocate.
	h := []byte{byte(protoFrame(link.ProtoPubSub)), 0xff, 0xff, 0xff, 0xff}
	var hdr [frameHeaderSize]byte
	if _, _, err := readFrame(bytes.NewReader(h), &hdr, maxFrame); !errors.Is(err, ErrMalformed) {
		t.Fatalf("huge length: %v", err)
	}
}

func TestReadFrameRoundTripAndTruncation(t *testing.T) {
	var stream []byte
	bodies := [][]byte{{}, []byte("a"), bytes.Repeat([]byte{9}, 999)}
	for _, b := range bodies {
		stream = appendFrame(stream, protoFrame(link.ProtoPubSub), b)
	}
	r := bytes.NewReader(stream)
	var hdr [frameHeaderSize]byte
	for i, want := range bodies {
		typ, got, err := readFrame(r, &hdr, 1000)
		if err != nil || typ != protoFrame(link.ProtoPubSub) || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: %v %v", i, typ, err)
		}
	}
	if _, _, err := readFrame(r, &hdr, 1000); err != io.EOF {
		t.Fatalf("clean end: %v, want io.EOF", err)
	}
	for cut := 1; cut < len(stream)-1; cut++ {
		r := bytes.NewReader(stream[:cut])
		var err error
		for err == nil {
			_, _, err = readFrame(r, &hdr, 1000)
		}
		boundary := cut == 5 || cut == 11 // ends exactly after a frame
		if boundary && err != io.EOF || !boundary && !errors.Is(err, ErrMalformed) {
			t.Fatalf("cut at %d: %v", cut, err)
		}
	}
}

func TestDecodeAgentsAndAddr(t *testing.T) {
	k := testKey("ag", 1)
	cert, _ := identity.IssueAgentCert(k, testKey("m", 1).ID(), time.Now(), time.Hour)
	id := k.ID()
	b, _ := wire.Marshal(&agentsMsg{Add: []identity.AgentCert{*cert}, Remove: [][]byte{id[:]}})
	if m, err := decodeAgents(b, 4); err != nil || len(m.Add) != 1 || len(m.Remove) != 1 {
		t.Fatalf("decode: %v", err)
	}
	if _, err := decodeAgents(b, 0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("over the item limit: %v", err)
	}
	for name, m := range map[string]*agentsMsg{
		"full with removals": {Full: true, Remove: [][]byte{id[:]}},
		"short removal":      {Remove: [][]byte{id[:5]}},
	} {
		b, _ := wire.Marshal(m)
		if _, err := decodeAgents(b, 4); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for addr, ok := range map[string]bool{"127.0.0.1:9": true, "[::1]:443": true, "127.0.0.1:0": false,
		"localhost:80": false, "1.2.3.4": false, "": true} {
		b, _ := wire.Marshal(&addrReport{Observed: addr})
		if _, _, err := decodeAddr(b); (err == nil) != ok || (err != nil && !errors.Is(err, ErrMalformed)) {
			t.Errorf("%q: %v", addr, err)
		}
	}
	// Services: known bits kept, unknown bits dropped.
	b, _ = wire.Marshal(&addrReport{Observed: "127.0.0.1:9", Services: 0xff})
	if _, svc, err := decodeAddr(b); err != nil || svc != ServiceCoordinator|ServiceRelay {
		t.Errorf("services: %v %v", svc, err)
	}
	if _, _, _, err := decodeDirect(make([]byte, 63)); !errors.Is(err, ErrMalformed) {
		t.Fatal("short direct message accepted")
	}
	body := make([]byte, directIDsSize+3)
	a, c := testKey("d", 1).ID(), testKey("d", 2).ID()
	putDirectIDs(body, a, c)
	copy(body[directIDsSize:], "xyz")
	if f, to, p, err := decodeDirect(body); err != nil || f != a || to != c || string(p) != "xyz" {
		t.Fatalf("direct round trip: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	ok := DefaultConfig(testKey("cfg", 1))
	if err := ok.validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if ok.KeepAlive != 15*time.Second || ok.IdleTimeout != 30*time.Second || ok.MaxFrameSize != 4<<20 {
		t.Fatalf("defaults %+v", ok)
	}
	for name, mut := range map[string]func(*Config){
		"no machine":       func(c *Config) { c.Machine = nil },
		"negative timeout": func(c *Config) { c.AuthTimeout = -1 },
		"max below min":    func(c *Config) { c.ReconnectMax = c.ReconnectMin / 2 },
		"tiny frames":      func(c *Config) { c.MaxFrameSize = 10 },
		"huge frames":      func(c *Config) { c.MaxFrameSize = HardMaxFrameSize + 1 },
		"negative queue":   func(c *Config) { c.QueueDepth = -1 },
		"cache start":      func(c *Config) { c.ConnectCachedOnStart = 3 },
	} {
		c := DefaultConfig(testKey("cfg", 1))
		mut(&c)
		if _, err := Listen(context.Background(), c); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// seqReader is a deterministic randomness source for tests.
type seqReader struct{ r *rand.ChaCha8 }

func (s seqReader) Read(p []byte) (int, error) { return s.r.Read(p) }

func TestBackoffAndCooldown(t *testing.T) {
	cfg := testConfig(testKey("backoff", 1))
	cfg.ReconnectMin, cfg.ReconnectMax = 100*time.Millisecond, 1600*time.Millisecond
	cfg.RedialCooldown = time.Hour
	cfg.HandshakeTimeout = 200 * time.Millisecond // the dial below goes to a closed port
	cfg.Rand = seqReader{rand.NewChaCha8([32]byte{1})}
	n := startNode(t, cfg)
	peer := testKey("backoff", 2).ID()
	n.mu.Lock()
	for attempt, nominal := range []time.Duration{100, 200, 400, 800, 1600, 1600, 1600} {
		nominal *= time.Millisecond
		d := n.backoffLocked(peer, attempt)
		if d < nominal/2 || d > nominal {
			t.Errorf("attempt %d: %v outside [%v, %v]", attempt, d, nominal/2, nominal)
		}
	}
	n.mu.Unlock()
	// A failed dial starts the cooldown: the next Connect is refused at once,
	// and backoff waits it out.
	err := n.Connect(context.Background(), peer, "127.0.0.1:1")
	if err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	var ce *CooldownError
	if err := n.Connect(context.Background(), peer, "127.0.0.1:1"); !errors.As(err, &ce) || !errors.Is(err, ErrCooldown) || ce.Remaining <= 0 {
		t.Fatalf("second dial: %v", err)
	}
	n.mu.Lock()
	if d := n.backoffLocked(peer, 0); d < 59*time.Minute {
		t.Errorf("backoff %v ignores the cooldown", d)
	}
	n.mu.Unlock()
	if st := n.Stats(); st.DialsFailed != 1 {
		t.Fatalf("dials failed %d", st.DialsFailed)
	}
	n.rec.wait(t, "ConnectionFailed", func(e []Event) bool { return count(e, EventConnectionFailed, peer) == 1 })
}
