package transport

import (
	"context"
	cryptorand "crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"go.uber.org/goleak"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLimit bounds every wait for a condition. It is a safety net for a
// hung test, not a timing assertion: conditions normally hold in
// milliseconds.
const waitLimit = 60 * time.Second

// testKey returns a deterministic ML-DSA key pair for (domain, i).
func testKey(domain string, i int) *identity.KeyPair {
	var seed [32]byte
	copy(seed[:], fmt.Sprintf("%s/%d", domain, i))
	return identity.KeyPairFromSeed(seed)
}

// testConfig is a loopback config with short reconnection delays.
func testConfig(machine *identity.KeyPair) Config {
	return Config{
		BindAddr:         "127.0.0.1:0",
		Machine:          machine,
		HandshakeTimeout: 5 * time.Second,
		AuthTimeout:      5 * time.Second,
		ReconnectMin:     20 * time.Millisecond,
		ReconnectMax:     200 * time.Millisecond,
		RedialCooldown:   10 * time.Millisecond,
		EventBuffer:      4096,
		Logger:           testLogger(),
	}
}

// recorder drains a node's Events channel and lets tests wait for
// conditions on what arrived.
type recorder struct {
	mu      sync.Mutex
	events  []Event
	changed chan struct{}
	done    chan struct{}
}

func record(n *Node) *recorder {
	r := &recorder{changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for ev := range n.Events() {
			r.mu.Lock()
			r.events = append(r.events, ev)
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *recorder) snapshot() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// wait blocks until pred holds on the events so far.
func (r *recorder) wait(t testing.TB, what string, pred func([]Event) bool) []Event {
	t.Helper()
	return r.waitWithin(t, waitLimit, what, pred)
}

// waitWithin is wait with its own time limit, for tests that must stay
// short when the awaited condition never comes.
func (r *recorder) waitWithin(t testing.TB, limit time.Duration, what string, pred func([]Event) bool) []Event {
	t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		evs := append([]Event(nil), r.events...)
		ch := r.changed
		r.mu.Unlock()
		if pred(evs) {
			return evs
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s; events: %v", limit, what, summarize(evs))
		}
	}
}

func summarize(evs []Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = fmt.Sprintf("%v(%s,%v)", e.Kind, e.Peer.Short(), e.Err)
	}
	return out
}

func count(evs []Event, kind EventKind, peer identity.PeerID) int {
	k := 0
	for _, e := range evs {
		if e.Kind == kind && e.Peer == peer {
			k++
		}
	}
	return k
}

// testNode is a node with its event recorder.
type testNode struct {
	*Node
	key *identity.KeyPair
	rec *recorder
}

// startNode listens with cfg and closes the node at cleanup.
func startNode(t testing.TB, cfg Config) *testNode {
	t.Helper()
	n, err := Listen(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	tn := &testNode{Node: n, key: cfg.Machine, rec: record(n)}
	t.Cleanup(tn.stop)
	return tn
}

func (tn *testNode) stop() {
	_ = tn.Close()
	<-tn.rec.done
}

// waitFor polls cond (for state not reported as an event, e.g. counters),
// yielding between checks.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// ---- raw QUIC clients for attack tests ----

// rawClient is a QUIC client that speaks the x0x wire protocol by hand.
type rawClient struct {
	t    testing.TB
	key  *identity.KeyPair
	udp  *net.UDPConn
	tr   *quic.Transport
	qc   *quic.Conn
	ctrl *quic.Stream
	ekm  []byte
}

// rawDial opens a QUIC connection to addr with tlsConf (nil: the x0x client
// config) from a fresh loopback socket.
func rawDial(t testing.TB, addr string, tlsConf *tls.Config) (*rawClient, error) {
	t.Helper()
	if tlsConf == nil {
		_, client, err := tlsConfigs(cryptorand.Reader, time.Now(), nil)
		if err != nil {
			t.Fatal(err)
		}
		tlsConf = client
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	rc := &rawClient{t: t, udp: udp, tr: &quic.Transport{Conn: udp}}
	t.Cleanup(rc.close)
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc.qc, err = rc.tr.Dial(ctx, ua, tlsConf, &quic.Config{MaxIdleTimeout: 30 * time.Second})
	if err != nil {
		return rc, err
	}
	rc.ekm, err = exportKey(rc.qc.ConnectionState().TLS)
	if err != nil {
		t.Fatal(err)
	}
	return rc, nil
}

func (rc *rawClient) close() {
	if rc.qc != nil {
		_ = rc.qc.CloseWithError(0, "")
	}
	_ = rc.tr.Close()
	_ = rc.udp.Close()
}

// openControl opens the control stream.
func (rc *rawClient) openControl() {
	rc.t.Helper()
	st, err := rc.qc.OpenStream()
	if err != nil {
		rc.t.Fatal(err)
	}
	rc.ctrl = st
}

// write writes raw bytes on the control stream.
func (rc *rawClient) write(b []byte) {
	rc.t.Helper()
	if _, err := rc.ctrl.Write(b); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// authFrame returns a valid dialler proof frame for this session.
func (rc *rawClient) authFrame(key *identity.KeyPair, to identity.PeerID) []byte {
	rc.t.Helper()
	body, err := wire.Marshal(makeAuth(key, rc.ekm, roleDialler, to, testInstance))
	if err != nil {
		rc.t.Fatal(err)
	}
	return appendFrame(nil, frameAuth, body)
}

// helloFrames returns an agents hello with certs and an address report.
func (rc *rawClient) helloFrames(certs ...identity.AgentCert) []byte {
	rc.t.Helper()
	body, err := wire.Marshal(&agentsMsg{Full: true, Add: certs})
	if err != nil {
		rc.t.Fatal(err)
	}
	addr, err := wire.Marshal(&addrReport{Observed: rc.qc.RemoteAddr().String()})
	if err != nil {
		rc.t.Fatal(err)
	}
	return appendFrame(appendFrame(nil, frameAgents, body), frameAddr, addr)
}

// authenticate runs the full dialler side of the handshake with key
// against the node whose PeerID is node, returning the node's proof frame
// body as received.
func (rc *rawClient) authenticate(key *identity.KeyPair, node identity.PeerID, certs ...identity.AgentCert) {
	rc.t.Helper()
	rc.key = key
	rc.openControl()
	rc.write(rc.authFrame(key, node))
	var hdr [frameHeaderSize]byte
	typ, body, err := readFrame(rc.ctrl, &hdr, DefaultMaxFrameSize)
	if err != nil || typ != frameAuth {
		rc.t.Fatalf("reading node proof: type %v err %v", typ, err)
	}
	m, err := decodeAuth(body)
	if err != nil {
		rc.t.Fatal(err)
	}
	if _, err := verifyAuth(m, rc.ekm, roleListener, key.ID(), node, "node"); err != nil {
		rc.t.Fatalf("node proof: %v", err)
	}
	rc.write(rc.helloFrames(certs...))
	for range 2 { // the node's hello: agents and address
		if _, _, err := readFrame(rc.ctrl, &hdr, DefaultMaxFrameSize); err != nil {
			rc.t.Fatalf("reading node hello: %v", err)
		}
	}
}

// openClass opens a class stream and writes its header plus b.
func (rc *rawClient) openClass(k link.Class, b []byte) {
	rc.t.Helper()
	st, err := rc.qc.OpenUniStream()
	if err != nil {
		rc.t.Fatal(err)
	}
	if _, err := st.Write(append([]byte{byte(k)}, b...)); err != nil {
		rc.t.Fatal(err)
	}
}

// waitClosed waits for the node to close the raw connection and returns
// the application error code it sent.
func (rc *rawClient) waitClosed() quic.ApplicationErrorCode {
	rc.t.Helper()
	select {
	case <-rc.qc.Context().Done():
	case <-time.After(waitLimit):
		rc.t.Fatal("node did not close the connection")
	}
	var ae *quic.ApplicationError
	if err := context.Cause(rc.qc.Context()); !errors.As(err, &ae) || !ae.Remote {
		rc.t.Fatalf("connection closed by %v, not by the node", err)
	}
	return ae.ErrorCode
}

func cryptorandReader() io.Reader { return cryptorand.Reader }

// testLogger logs to stderr when X0X_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("X0X_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testInstance is the instance nonce raw test clients present.
var testInstance = [instanceSize]byte{0x7e, 0x57}
