// Command x0x-soak runs honest agents and hostile peers together on
// loopback for a while and reports whether the honest agents were hurt:
// every honest agent subscribes to one topic and publishes to it, while
// every hostile peer (core/adversary, each on a loopback address of its
// own) cycles through the attacks of issue 10 against random honest
// agents. It prints one JSON object per figure ({"name", "value",
// "unit"}): delivery ratio among honest agents, latency percentiles, the
// process's peak RSS, and frames rejected by reason. With -check it exits
// non-zero unless every honest message reached every honest subscriber.
//
// Everything stays on 127.0.0.0/8: the silent address claimed attacks
// point at is a local socket that never answers.
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/saorsa-labs/x0x-go/core/adversary"
	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/membership"
	"github.com/saorsa-labs/x0x-go/core/x0x"
	"github.com/saorsa-labs/x0x-go/internal/measure"
)

const topic = "soak"

func main() {
	honestN := flag.Int("honest", 100, "honest agents")
	hostileN := flag.Int("hostile", 20, "hostile peers")
	duration := flag.Duration("duration", 60*time.Second, "how long the attacks run")
	rate := flag.Float64("rate", 20, "honest messages per second, over all honest agents")
	settle := flag.Duration("settle", 15*time.Second, "how long to wait for deliveries after the last message")
	check := flag.Bool("check", false, "exit 1 unless the delivery ratio among honest agents is 1")
	flag.Parse()
	if err := run(*honestN, *hostileN, *duration, *rate, *settle, *check, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "x0x-soak:", err)
		os.Exit(1)
	}
}

// sent records one honest message.
type sent struct {
	at   time.Time
	from int
}

type receiver struct {
	mu   sync.Mutex
	got  map[string]bool
	lats []time.Duration
}

func run(honestN, hostileN int, duration time.Duration, rate float64, settle time.Duration, check bool, out io.Writer) error {
	if honestN < 2 || hostileN < 0 || rate <= 0 {
		return errors.New("need at least 2 honest agents, no negative hostile count and a positive rate")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "x0x-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	agents := make([]*x0x.Agent, honestN)
	defer func() {
		for _, a := range agents {
			if a != nil {
				a.Close()
			}
		}
	}()
	cheap := x0x.KDFParams{Time: 1, MemoryKiB: 8, Threads: 1}
	for i := range agents {
		b := x0x.NewBuilder().WithDataDir(fmt.Sprintf("%s/h%d", dir, i)).WithKDF(cheap).WithLogger(quiet)
		if i > 0 {
			via := agents[mrand.IntN(i)]
			b.WithBootstrap(fmt.Sprintf("%s@%s", via.MachineID(), via.Addr()))
		}
		a, err := b.Build(ctx)
		if err != nil {
			return fmt.Errorf("honest agent %d: %w", i, err)
		}
		agents[i] = a
		if i > 0 {
			if err := a.JoinNetwork(ctx); err != nil {
				return fmt.Errorf("honest agent %d joins: %w", i, err)
			}
		}
	}
	origin := map[x0x.AgentID]int{}
	for i, a := range agents {
		origin[a.AgentID()] = i
	}
	recv := make([]*receiver, honestN)
	topics := make([]*x0x.Topic, honestN)
	var wg sync.WaitGroup
	var lagged atomic.Uint64
	for i, a := range agents {
		t, err := a.Join(ctx, topic)
		if err != nil {
			return err
		}
		topics[i] = t
		sub, err := t.Subscribe()
		if err != nil {
			return err
		}
		r := &receiver{got: map[string]bool{}}
		recv[i] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := sub.Next(context.Background())
				var lag *x0x.LaggedError
				if errors.As(err, &lag) {
					lagged.Add(lag.Missed)
					continue
				}
				if err != nil {
					return
				}
				if len(m.Payload) < 16 {
					continue
				}
				if _, honest := origin[m.Origin]; !honest {
					continue
				}
				at := time.Unix(0, int64(binary.BigEndian.Uint64(m.Payload[8:16])))
				r.mu.Lock()
				if key := string(m.Payload[:8]); !r.got[key] {
					r.got[key] = true
					r.lats = append(r.lats, time.Since(at))
				}
				r.mu.Unlock()
			}
		}()
	}
	time.Sleep(3 * time.Second) // topic trees form

	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer silent.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := silent.ReadFrom(buf); err != nil {
				return
			}
		}
	}()

	attackCtx, stopAttacks := context.WithTimeout(ctx, duration)
	defer stopAttacks()
	var attacksRun atomic.Uint64
	var hwg sync.WaitGroup
	for h := range hostileN {
		hwg.Add(1)
		go func() {
			defer hwg.Done()
			attacksRun.Add(hostile(attackCtx, h, agents, silent.LocalAddr().String()))
		}()
	}

	// Honest traffic: round-robin publishers at the given total rate.
	var published []sent
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	seq := uint64(0)
publish:
	for {
		select {
		case <-attackCtx.Done():
			break publish
		case <-tick.C:
		}
		from := int(seq % uint64(honestN))
		seq++
		payload := binary.BigEndian.AppendUint64(nil, seq)
		payload = binary.BigEndian.AppendUint64(payload, uint64(time.Now().UnixNano()))
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := topics[from].Publish(pctx, payload)
		pcancel()
		if err != nil {
			return fmt.Errorf("honest publish: %w", err)
		}
		published = append(published, sent{at: time.Now(), from: from})
	}
	tick.Stop()
	hwg.Wait()
	time.Sleep(settle)

	expected, delivered := 0, 0
	var lats []time.Duration
	for i, r := range recv {
		r.mu.Lock()
		for s, m := range published {
			if m.from == i {
				continue
			}
			expected++
			if r.got[string(binary.BigEndian.AppendUint64(nil, uint64(s+1)))] {
				delivered++
			}
		}
		lats = append(lats, r.lats...)
		r.mu.Unlock()
	}
	slices.Sort(lats)
	pct := func(p float64) float64 { return measure.PercentileMs(lats, p) }
	ratio := 0.0
	if expected > 0 {
		ratio = float64(delivered) / float64(expected)
	}
	figs := []measure.Figure{
		{Name: "soak_honest_agents", Value: float64(honestN), Unit: "agents"},
		{Name: "soak_hostile_peers", Value: float64(hostileN), Unit: "peers"},
		{Name: "soak_attacks_run", Value: float64(attacksRun.Load()), Unit: "attacks"},
		{Name: "soak_messages_published", Value: float64(len(published)), Unit: "messages"},
		{Name: "soak_delivery_ratio", Value: ratio, Unit: "ratio"},
		{Name: "soak_latency_p50", Value: pct(0.50), Unit: "ms"},
		{Name: "soak_latency_p99", Value: pct(0.99), Unit: "ms"},
		{Name: "soak_latency_max", Value: pct(1), Unit: "ms"},
		{Name: "soak_max_rss", Value: float64(measure.Bytes("VmHWM")) / (1 << 20), Unit: "MiB"},
		{Name: "soak_subscriber_lagged", Value: float64(lagged.Load()), Unit: "messages"},
	}
	rejected, err := rejections(agents)
	if err != nil {
		return err
	}
	figs = append(figs, rejected...)
	enc := json.NewEncoder(out)
	for _, f := range figs {
		if err := enc.Encode(f); err != nil {
			return err
		}
	}
	cancel()
	for _, a := range agents {
		a.Close()
	}
	wg.Wait()
	if check && ratio != 1 {
		return fmt.Errorf("delivery ratio among honest agents %.6f (%d of %d)", ratio, delivered, expected)
	}
	return nil
}

// rejections sums what the honest agents refused, by reason.
func rejections(agents []*x0x.Agent) ([]measure.Figure, error) {
	sums := map[string]uint64{}
	for _, a := range agents {
		ms := a.Metrics()
		for _, f := range []struct{ figure, metric string }{
			{"pubsub_malformed", "pubsub_drop_malformed"},
			{"pubsub_bad_signature", "pubsub_drop_bad_signature"},
			{"pubsub_unknown_signer", "pubsub_drop_unknown_signer"},
			{"pubsub_payload_hash", "pubsub_drop_payload_hash"},
			{"pubsub_rate_limited", "pubsub_rate_limited"},
			{"pubsub_peers_scored_out", "pubsub_peers_scored_out"},
			{"keys_held_overrun", "keys_held_overrun"},
			{"keys_timed_out", "keys_timed_out"},
			{"membership_decode_errors", "membership_decode_errors"},
			{"membership_forged_claims", "membership_forged_claims"},
			{"membership_unvouched", "membership_unvouched"},
			{"membership_dials_refused", "membership_dials_refused"},
			{"transport_malformed", "transport_malformed_frames"},
			{"transport_protocol_errors", "transport_protocol_errors"},
			{"transport_conns_refused", "transport_connections_refused"},
			{"transport_evicted", "transport_evicted"},
		} {
			v, ok := ms.Value("x0x_" + f.metric + "_total")
			if !ok {
				return nil, fmt.Errorf("no metric x0x_%s_total", f.metric)
			}
			sums[f.figure] += v
		}
	}
	names := make([]string, 0, len(sums))
	for n := range sums {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]measure.Figure, 0, len(names))
	for _, n := range names {
		out = append(out, measure.Figure{Name: "soak_rejected_" + n, Value: float64(sums[n]), Unit: "count"})
	}
	return out, nil
}

// hostile runs attacks from hostile peer h until ctx ends and returns how
// many it ran. Each attack uses a fresh peer on 127.0.0.(2+h%250), so
// that per-IP limits meet the attackers, not the honest agents.
func hostile(ctx context.Context, h int, agents []*x0x.Agent, silent string) uint64 {
	bind := fmt.Sprintf("127.0.0.%d:0", 2+h%250)
	var n uint64
	for i := h; ctx.Err() == nil; i++ {
		victim := agents[mrand.IntN(len(agents))]
		p, err := adversary.New(ctx, bind)
		if err != nil {
			return n
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := p.Connect(cctx, victim.MachineID(), victim.Addr()); err == nil {
			attack(cctx, i%len(attacks), p, victim, agents, silent)
			n++
		}
		cancel()
		p.Close()
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return n
}

// attacks are the issue-10 attacks a hostile peer cycles through.
var attacks = []string{"decode-bomb", "forged-death", "claimed-addresses", "squat", "forged-gossip", "forged-walk", "unknown-origins", "ihave-flood"}

func attack(ctx context.Context, k int, p *adversary.Peer, victim *x0x.Agent, agents []*x0x.Agent, silent string) {
	id := victim.MachineID()
	send := func(class link.Protocol, b []byte, err error) bool {
		return err == nil && p.Send(ctx, id, class, b) == nil
	}
	switch attacks[k] {
	case "decode-bomb":
		send(link.ProtoMembership, adversary.DecodeBomb(256<<10), nil)
	case "forged-death":
		other := agents[mrand.IntN(len(agents))]
		b, err := adversary.ForgedDeath(membership.NodeDesc{ID: other.MachineID(), Addr: other.Addr()})
		send(link.ProtoMembership, b, err)
	case "claimed-addresses":
		for j := range 8 {
			d := membership.NodeDesc{ID: randomID(), Addr: silent}
			if j%2 == 1 {
				var err error
				if d, err = adversary.SelfSignedTarget(silent, clock.Real()); err != nil {
					return
				}
			}
			find, mem, err := adversary.ClaimedAddress(topic, d, uint64(j+1))
			if !send(link.ProtoPubSub, find, err) {
				return
			}
			for _, b := range mem {
				send(link.ProtoMembership, b, nil)
			}
		}
	case "squat":
		for j := range 20 {
			b, err := adversary.Ping(uint64(j + 1))
			if !send(link.ProtoMembership, b, err) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	case "forged-gossip":
		for j := range 32 {
			other := agents[mrand.IntN(len(agents))]
			b, err := adversary.ForgedMessage(topic, other.AgentID(), []byte("forged"), uint64(1<<40+j), false)
			if !send(link.ProtoPubSub, b, err) {
				return
			}
		}
	case "forged-walk":
		for j := range 8 {
			b, err := adversary.ForgedMessage("not-"+topic, victim.AgentID(), []byte("walk"), uint64(1<<40+j), true)
			if !send(link.ProtoPubSub, b, err) {
				return
			}
		}
	case "unknown-origins":
		for range 8 {
			b, err := adversary.UnknownOrigin(topic, 256<<10)
			if !send(link.ProtoPubSub, b, err) {
				return
			}
		}
	case "ihave-flood":
		b, err := adversary.IHave(topic)
		for range 5000 {
			if !send(link.ProtoPubSub, b, err) {
				return
			}
		}
	}
	time.Sleep(100 * time.Millisecond) // let the victim act on it before the peer goes
}

func randomID() identity.PeerID {
	var id identity.PeerID
	_, _ = rand.Read(id[:])
	return id
}
