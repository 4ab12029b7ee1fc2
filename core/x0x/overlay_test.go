package x0x

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lukechampine.com/blake3"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/pubsub"
)

// cluster builds n agents on loopback; agent i>0 bootstraps from agent 0
// (and, for larger clusters, also from agent i/2 so the overlay is not a star).
func cluster(t testing.TB, n int) []*Agent {
	t.Helper()
	return clusterWith(t, n, OverlayConfig{})
}

// clusterWith is cluster with overlay settings.
func clusterWith(t testing.TB, n int, overlay OverlayConfig) []*Agent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	agents := make([]*Agent, n)
	for i := range agents {
		b := NewBuilder().WithDataDir(t.TempDir()).WithKDF(cheapKDF()).WithOverlay(overlay)
		if i > 0 {
			b.WithBootstrap(fmt.Sprintf("%s@%s", agents[0].MachineID(), agents[0].Addr()))
			if j := i / 2; j > 0 {
				b.WithBootstrap(fmt.Sprintf("%s@%s", agents[j].MachineID(), agents[j].Addr()))
			}
		}
		a, err := b.Build(ctx)
		if err != nil {
			t.Fatal(err)
		}
		agents[i] = a
		t.Cleanup(func() { a.Close() })
		if i > 0 {
			if err := a.JoinNetwork(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	return agents
}

// waitTopic waits until every agent has at least one neighbour on topic.
func waitTopic(t testing.TB, agents []*Agent, topic string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, a := range agents {
		for {
			e, l := a.overlay.PubSub.TopicPeers(pubsub.TopicIDOf(topic))
			if len(e)+len(l) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("agent %s has no neighbour on %q", a.AgentID().Short(), topic)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// joinSub joins topic on a and subscribes to it; both end with the test.
func joinSub(t testing.TB, a *Agent, topic string, opts ...TopicOption) (*Topic, *Subscription) {
	t.Helper()
	tp, err := a.Join(context.Background(), topic, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tp.Leave)
	s, err := tp.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return tp, s
}

func recv(t testing.TB, s *Subscription, d time.Duration) Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("no message within %v: %v", d, err)
	}
	return m
}

// pubsubStats returns the agent's pub/sub counters.
func (a *Agent) pubsubStats() pubsub.Stats { return a.overlay.PubSub.Stats() }

func TestPubSubThreeAgentsBothWays(t *testing.T) {
	agents := cluster(t, 3)
	topics := make([]*Topic, 3)
	subs := make([]*Subscription, 3)
	for i, a := range agents {
		topics[i], subs[i] = joinSub(t, a, "chat")
	}
	waitTopic(t, agents, "chat")
	ctx := context.Background()
	for i, tp := range topics {
		payload := []byte(fmt.Sprintf("hello from %d", i))
		if _, err := tp.Publish(ctx, payload); err != nil {
			t.Fatal(err)
		}
		for j, s := range subs {
			m := recv(t, s, 10*time.Second)
			if m.Origin != agents[i].AgentID() || string(m.Payload) != string(payload) || m.Topic != "chat" {
				t.Fatalf("agent %d got %q from %s, want %q from agent %d", j, m.Payload, m.Origin.Short(), payload, i)
			}
		}
	}
	// Close ends a subscription; later messages go to the others only.
	subs[2].Close()
	subs[2].Close() // idempotent
	if _, err := subs[2].Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	if _, err := topics[2].Publish(ctx, []byte("bye")); err != nil {
		t.Fatal(err)
	}
	for _, s := range subs[:2] {
		if m := recv(t, s, 10*time.Second); string(m.Payload) != "bye" {
			t.Fatalf("got %q", m.Payload)
		}
	}
	for _, a := range agents {
		ps := a.pubsubStats()
		if ps.DropBadSignature+ps.DropUnknownSigner != 0 {
			t.Fatalf("unexpected signature drops: %+v", ps)
		}
	}
	// A forged message (known origin, wrong signature) arriving on the
	// pub/sub stream is dropped, never delivered.
	forged := signedFrame(t, "chat", agents[2].AgentID(), []byte("forged"), make([]byte, identity.SignatureSize), 1<<40)
	agents[1].keys.process(agents[0].MachineID(), forged)
	if ps := agents[1].pubsubStats(); ps.DropBadSignature != 1 {
		t.Fatalf("forged message not refused: %+v", ps)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if m, err := subs[1].Next(short); err == nil {
		t.Fatalf("forged message delivered: %q", m.Payload)
	}
	// Close ends subscriptions and refuses further calls.
	agents[0].Close()
	if _, err := subs[0].Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("subscription open after Close: %v", err)
	}
	if _, err := topics[0].Publish(ctx, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
	if _, err := agents[0].Join(ctx, "chat"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Join after Close: %v", err)
	}
	if _, err := topics[0].Subscribe(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

// fakeNet records sends and lets a test inject frames into a keyService.
type fakeNet struct {
	link.Network
	mu   sync.Mutex
	sent map[identity.PeerID][][]byte // key frames sent
	h    [link.MaxProtocol + 1]link.MessageHandler
}

func (f *fakeNet) Handle(p link.Protocol, h link.MessageHandler) { f.h[p] = h }
func (f *fakeNet) Send(p identity.PeerID, proto link.Protocol, _ link.Priority, b []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if proto != link.ProtoKeys {
		return fmt.Errorf("key service sent on %v", proto)
	}
	f.sent[p] = append(f.sent[p], b)
	return nil
}

func TestKeyServiceHoldsFramesUntilVerifiedKey(t *testing.T) {
	// Frames from a node carrying an unknown origin are held; the key is
	// asked of the forwarder; a key that does not derive the origin is
	// refused; the right key releases the frames to pub/sub.
	local := mustKey(t)
	origin := mustKey(t)
	other := mustKey(t)
	fn := &fakeNet{sent: map[identity.PeerID][][]byte{}}
	ks := newKeyService(fn, clock.Real(), local.Public(), identity.NewVerifyCache(1<<20, 1<<20, 1<<16))
	defer ks.close()
	var got [][]byte
	ks.Handle(link.ProtoPubSub, func(_ identity.PeerID, b []byte) { got = append(got, b) })

	frame := gossipFrame(t, origin)
	peer := identity.PeerID(other.ID())
	fn.h[link.ProtoPubSub](peer, frame)
	if len(got) != 0 {
		t.Fatal("frame with unknown origin passed on")
	}
	if len(fn.sent[peer]) != 1 {
		t.Fatalf("want one key request to the forwarder, got %d", len(fn.sent[peer]))
	}
	req, err := decodeKeyMsg(fn.sent[peer][0])
	if err != nil || req.Kind != keyKindRequest || req.Agent != origin.ID() {
		t.Fatalf("bad request %+v %v", req, err)
	}
	// Substituted key: refused, frame still held.
	bad, _ := encodeKeyMsg(&keyMsg{Kind: keyKindReply, Agent: origin.ID(), Key: other.Public().Bytes()})
	fn.h[link.ProtoKeys](peer, bad)
	if len(got) != 0 || ks.Stats().BadReplies != 1 {
		t.Fatalf("substituted key accepted: %d frames, %+v", len(got), ks.Stats())
	}
	// Reply from a peer that was not asked: refused.
	good, _ := encodeKeyMsg(&keyMsg{Kind: keyKindReply, Agent: origin.ID(), Key: origin.Public().Bytes()})
	fn.h[link.ProtoKeys](identity.PeerID(local.ID()), good)
	if len(got) != 0 {
		t.Fatal("unsolicited reply accepted")
	}
	fn.h[link.ProtoKeys](peer, good)
	if len(got) != 1 || !slices.Equal(got[0], frame) {
		t.Fatalf("frame not released after the key arrived: %d", len(got))
	}
	if k, err := ks.ResolveKey(origin.ID()); err != nil || !k.Equal(origin.Public()) {
		t.Fatal("key not cached")
	}
	// Now the node answers requests for that key.
	fn.h[link.ProtoKeys](peer, mustKeyMsg(t, &keyMsg{Kind: keyKindRequest, Agent: origin.ID()}))
	last := fn.sent[peer][len(fn.sent[peer])-1]
	if rep, err := decodeKeyMsg(last); err != nil || rep.Kind != keyKindReply || !slices.Equal(rep.Key, origin.Public().Bytes()) {
		t.Fatalf("bad reply %+v %v", rep, err)
	}
	// Malformed key frames are counted and ignored.
	fn.h[link.ProtoKeys](peer, []byte{0xff})
	if ks.Stats().Malformed != 1 {
		t.Fatal("malformed key frame not counted")
	}
}

func mustKeyMsg(t *testing.T, m *keyMsg) []byte {
	t.Helper()
	b, err := encodeKeyMsg(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzDecodeKeyMsg(f *testing.F) {
	kp, err := identity.GenerateKeyPair(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range []*keyMsg{
		{Kind: keyKindRequest, Agent: kp.ID()},
		{Kind: keyKindReply, Agent: kp.ID(), Key: kp.Public().Bytes()},
	} {
		b, _ := encodeKeyMsg(m)
		f.Add(b)
	}
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeKeyMsg(b)
		if err != nil {
			return
		}
		out, err := encodeKeyMsg(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := decodeKeyMsg(out)
		if err != nil || m2.Kind != m.Kind || m2.Agent != m.Agent || !slices.Equal(m2.Key, m.Key) {
			t.Fatal("round trip changed the message")
		}
	})
}

// deliveryStats runs msgs publishes round-robin over agents on one topic
// and waits for every subscriber to get every message. It returns the
// publish-to-deliver latencies and the elapsed time.
func runLoad(t testing.TB, agents []*Agent, msgs int, perSecond int) (lat []time.Duration, elapsed time.Duration, bytesOut uint64) {
	t.Helper()
	const topic = "load"
	var mu sync.Mutex
	var wg sync.WaitGroup
	seen := make([]map[uint64]bool, len(agents))
	subs := make([]*Subscription, len(agents))
	want := msgs
	done := make(chan struct{})
	remaining := len(agents)
	var lagged atomic.Uint64
	topics := make([]*Topic, len(agents))
	for i, a := range agents {
		tp, err := a.Join(context.Background(), topic)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tp.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		topics[i] = tp
		subs[i] = s
		seen[i] = map[uint64]bool{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := s.Next(context.Background())
				var le *LaggedError
				if errors.As(err, &le) {
					lagged.Add(le.Missed)
					continue
				}
				if err != nil {
					return
				}
				if len(m.Payload) < 17 || m.Payload[0] != 'L' {
					continue // warm-up
				}
				n := binary.BigEndian.Uint64(m.Payload[1:])
				sent := int64(binary.BigEndian.Uint64(m.Payload[9:]))
				d := time.Since(time.Unix(0, sent))
				mu.Lock()
				if !seen[i][n] {
					seen[i][n] = true
					lat = append(lat, d)
					if len(seen[i]) == want {
						remaining--
						if remaining == 0 {
							close(done)
						}
					}
				}
				mu.Unlock()
			}
		}()
	}
	defer func() {
		for _, tp := range topics {
			tp.Leave()
		}
		wg.Wait()
	}()
	waitTopic(t, agents, topic)
	warmUp(t, agents, topics)
	before := pubsubBytes(agents)
	ctx := context.Background()
	start := time.Now()
	var interval time.Duration
	if perSecond > 0 {
		interval = time.Second / time.Duration(perSecond)
	}
	for n := 0; n < msgs; n++ {
		p := make([]byte, 64)
		p[0] = 'L'
		binary.BigEndian.PutUint64(p[1:], uint64(n))
		binary.BigEndian.PutUint64(p[9:], uint64(time.Now().UnixNano()))
		if _, err := topics[n%len(agents)].Publish(ctx, p); err != nil {
			t.Fatal(err)
		}
		if interval > 0 {
			time.Sleep(interval)
		}
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		mu.Lock()
		var missing []string
		for i := range seen {
			if len(seen[i]) != want {
				missing = append(missing, fmt.Sprintf("agent %d: %d/%d", i, len(seen[i]), want))
			}
		}
		mu.Unlock()
		t.Fatalf("delivery incomplete after 60 s: %v", missing)
	}
	elapsed = time.Since(start)
	if n := lagged.Load(); n != 0 {
		t.Fatalf("subscribers dropped %d messages (slow readers)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(lat), elapsed, pubsubBytes(agents) - before
}

// warmUp publishes from every agent until every agent has seen a warm-up
// from every origin, so that origin keys are resolved before measuring.
func warmUp(t testing.TB, agents []*Agent, topics []*Topic) {
	t.Helper()
	// Key resolution happens before frames reach pub/sub, so one round
	// normally suffices; the loop guards against slow tree formation.
	for round := 0; round < 50; round++ {
		for _, tp := range topics {
			if _, err := tp.Publish(context.Background(), []byte("warm")); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(100 * time.Millisecond)
		ok := true
		for _, a := range agents {
			for _, b := range agents {
				if _, err := a.keys.ResolveKey(b.AgentID()); err != nil {
					ok = false
				}
			}
		}
		if ok {
			return
		}
	}
	t.Fatal("origin keys not resolved after warm-up")
}

// overlayTotals sums the agents' pub/sub counters (every field: a counter
// added to pubsub.Stats is summed without a change here).
func overlayTotals(agents []*Agent) pubsub.Stats {
	var t pubsub.Stats
	sum := reflect.ValueOf(&t).Elem()
	for _, a := range agents {
		s := reflect.ValueOf(a.pubsubStats())
		for i := range sum.NumField() {
			if f := sum.Field(i); f.Kind() == reflect.Uint64 {
				f.SetUint(f.Uint() + s.Field(i).Uint())
			}
		}
	}
	return t
}

func pubsubBytes(agents []*Agent) uint64 {
	var sum uint64
	for _, a := range agents {
		sum += a.node.Stats().Class(link.ClassPubSub).BytesOut
	}
	return sum
}

func percentile(l []time.Duration, p float64) time.Duration {
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	return l[int(float64(len(l)-1)*p)]
}

func TestLoadTenAgentsFullDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("loopback load test")
	}
	agents := cluster(t, 10)
	lat, elapsed, bytes := runLoad(t, agents, 500, 0)
	deliveries := 500 * len(agents)
	if len(lat) != deliveries {
		t.Fatalf("%d deliveries, want %d", len(lat), deliveries)
	}
	t.Logf("10 agents, 500 msgs: p50 %v p99 %v, %.0f msgs/s, %.0f pubsub bytes out per delivery",
		percentile(lat, 0.5), percentile(lat, 0.99), 500/elapsed.Seconds(), float64(bytes)/float64(deliveries))
}

func mustKey(t *testing.T) *identity.KeyPair {
	t.Helper()
	kp, err := identity.GenerateKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// gossipFrame is an encoded GOSSIP frame (kind 1) carrying a message signed
// by origin.
func gossipFrame(t *testing.T, origin *identity.KeyPair) []byte {
	t.Helper()
	return signedFrame(t, "t", origin.ID(), []byte("x"), []byte{1}, 1)
}

// signedFrame is an encoded GOSSIP frame with the given origin and signature.
func signedFrame(t *testing.T, topic string, origin AgentID, payload, sig []byte, seq uint64) []byte {
	t.Helper()
	h := pubsub.Header{Topic: pubsub.TopicIDOf(topic), Origin: origin, Seq: seq, Time: time.Now().UnixMilli(), PayloadHash: blake3.Sum256(payload)}
	b, err := pubsub.EncodeFrame(&pubsub.Frame{Kind: 1, Topic: h.Topic, Msg: &pubsub.Signed{Header: h, Payload: payload, Sig: sig}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pubsub.DecodeFrame(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// BenchmarkQUIC50Agents is the issue-3 target: 50 agents on real QUIC over
// loopback in one process, one topic, 10,000 messages published round-robin
// at a paced 250 messages/s (X0X_LOADTEST_RATE overrides; the pace must not
// exceed what the machine can deliver for long, or messages outlive the
// 5-minute acceptance window and are dropped as stale); it fails unless every agent receives every
// message. It runs the whole scenario once whatever b.N is (use
// -benchtime=1x) and reports latency percentiles, throughput and pub/sub
// bytes sent per delivered message.
//
// The full run takes minutes of CPU (every delivery verifies one ML-DSA-65
// signature), so it is skipped unless X0X_LOADTEST=1; X0X_LOADTEST_MSGS
// overrides the message count for a shorter run.
func BenchmarkQUIC50Agents(b *testing.B) {
	if os.Getenv("X0X_LOADTEST") != "1" {
		b.Skip("set X0X_LOADTEST=1 to run the 50-agent QUIC load test")
	}
	const n = 50
	msgs := 10000
	if v, err := strconv.Atoi(os.Getenv("X0X_LOADTEST_MSGS")); err == nil && v > 0 {
		msgs = v
	}
	agents := cluster(b, n)
	b.ResetTimer()
	rate := 250
	if v, err := strconv.Atoi(os.Getenv("X0X_LOADTEST_RATE")); err == nil && v > 0 {
		rate = v
	}
	before := overlayTotals(agents)
	lat, elapsed, bytes := runLoad(b, agents, msgs, rate)
	b.StopTimer()
	after := overlayTotals(agents)
	b.Logf("pub/sub during the run: %d payloads received, %d delivered, %d grafts, %d iwants, %d prunes, %d anti-entropy pulls, %d send-queue-full drops",
		after.PayloadsReceived-before.PayloadsReceived, after.Delivered-before.Delivered, after.GraftsSent-before.GraftsSent,
		after.IWantsSent-before.IWantsSent, after.PrunesSent-before.PrunesSent, after.AEPulled-before.AEPulled, after.SendQueueFull-before.SendQueueFull)
	if d := after.Delivered - before.Delivered; d > 0 {
		b.ReportMetric(float64(after.PayloadsReceived-before.PayloadsReceived)/float64(d)-1, "rmr")
	}
	deliveries := msgs * n
	if len(lat) != deliveries {
		b.Fatalf("%d deliveries, want %d", len(lat), deliveries)
	}
	b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(msgs)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(bytes)/float64(deliveries), "wire-B/delivery")
}

// BenchmarkPublishCall measures one Publish call from Go (64-byte payload,
// an agent with no peers): mostly the ML-DSA-65 signature. make bench
// prints it next to the same call from C, Node and Python.
func BenchmarkPublishCall(b *testing.B) {
	a := cluster(b, 1)[0]
	payload := make([]byte, 64)
	ctx := context.Background()
	tp, err := a.Join(ctx, "bench", PublishOnly())
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := tp.Publish(ctx, payload); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "us/call")
}

// A publisher that restarts (same data directory, same agent key, its
// sequence counter back at zero) still has every message delivered:
// sequence numbers continue above those of its previous run.
func TestPublisherRestartKeepsDelivery(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hub, err := NewBuilder().WithDataDir(t.TempDir()).WithKDF(cheapKDF()).Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	_, sub := joinSub(t, hub, "restart")
	dir := t.TempDir()
	start := func() (*Agent, *Topic) {
		a, err := NewBuilder().WithDataDir(dir).WithKDF(cheapKDF()).
			WithBootstrap(fmt.Sprintf("%s@%s", hub.MachineID(), hub.Addr())).Build(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.JoinNetwork(ctx); err != nil {
			t.Fatal(err)
		}
		tp, err := a.Join(ctx, "restart")
		if err != nil {
			t.Fatal(err)
		}
		waitTopic(t, []*Agent{a, hub}, "restart")
		return a, tp
	}
	publish := func(tp *Topic, run, n int) {
		want := map[string]bool{}
		for i := range n {
			msg := fmt.Sprintf("run %d message %d", run, i)
			if _, err := tp.Publish(ctx, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			want[msg] = true
		}
		for len(want) > 0 {
			m := recv(t, sub, 20*time.Second)
			if !want[string(m.Payload)] {
				t.Fatalf("unexpected message %q", m.Payload)
			}
			delete(want, string(m.Payload))
		}
	}
	a, tp := start()
	first := a.AgentID()
	publish(tp, 1, 20)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a, tp = start()
	defer a.Close()
	if a.AgentID() != first {
		t.Fatal("the restarted publisher has another identity")
	}
	publish(tp, 2, 30) // fails (times out) if the hub's replay window refuses them
	st := hub.pubsubStats()
	if st.DropReplay != 0 {
		t.Fatalf("%d messages refused as replays", st.DropReplay)
	}
}
