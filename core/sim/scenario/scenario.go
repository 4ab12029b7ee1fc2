// Package scenario runs the real membership and pub/sub code on the
// simulated network (core/sim) and measures what the overlay delivers:
// delivery ratio, relative message redundancy (RMR), last delivery hop
// (LDH), latency percentiles, traffic per node, and how long after a
// partition heals the messages published during the split reach everyone.
//
// A run is a pure function of its Config: the same seed gives the same
// Result. Signatures are simulated by default (a cheap, insecure MAC
// instead of ML-DSA-65, see pubsub.SimulatedSigner); Result.Signatures says
// which was used.
package scenario

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/membership"
	"github.com/saorsa-labs/x0x-go/core/pubsub"
	"github.com/saorsa-labs/x0x-go/core/sim"
)

// Config describes one simulation run. Zero fields take the defaults noted.
type Config struct {
	Nodes       int     // initial nodes (1000)
	Topics      int     // topics (1)
	Subscribers int     // subscribers per topic; 0 or >= Nodes means every node
	Messages    int     // messages published (1000)
	PayloadSize int     // bytes per message (1024)
	Loss        float64 // per-frame retransmission probability (see core/sim)
	Resets      float64 // per-frame probability of a connection reset that loses the frames in flight (see core/sim)
	// Churn is the fraction of the initial nodes that crash during the
	// publishing phase; as many fresh nodes join (and subscribe to the same
	// topics) over the same period.
	Churn float64
	// Partition splits the nodes 50/50 for the whole publishing phase and
	// heals the split after it.
	Partition bool
	Seed      uint64
	// MinLatency/MaxLatency bound link latency (20 ms / 80 ms).
	MinLatency, MaxLatency time.Duration
	// PublishInterval separates publications (20 ms).
	PublishInterval time.Duration
	// Warmup lets the overlay form before publishing (30 s).
	Warmup time.Duration
	// Drain runs after the last publication (10 s; with Partition, until
	// convergence or 2 anti-entropy rounds + 10 s after the heal).
	Drain time.Duration
	// RealSignatures uses ML-DSA-65 for every message (slow at scale).
	RealSignatures bool
}

func (c Config) withDefaults() Config {
	if c.Nodes <= 0 {
		c.Nodes = 1000
	}
	if c.Topics <= 0 {
		c.Topics = 1
	}
	if c.Subscribers <= 0 || c.Subscribers > c.Nodes {
		c.Subscribers = c.Nodes
	}
	if c.Messages < 0 {
		c.Messages = 0
	} else if c.Messages == 0 {
		c.Messages = 1000
	}
	if c.PayloadSize <= 0 {
		c.PayloadSize = 1024
	}
	if c.PublishInterval <= 0 {
		c.PublishInterval = 20 * time.Millisecond
	}
	if c.Warmup <= 0 {
		c.Warmup = 30 * time.Second
	}
	if c.Drain <= 0 {
		c.Drain = 10 * time.Second
	}
	return c
}

// Result is what a run measured. JSON names are the x0x-sim output.
type Result struct {
	Nodes       int     `json:"nodes"`
	Topics      int     `json:"topics"`
	Subscribers int     `json:"subscribers"`
	Messages    int     `json:"messages"`
	Loss        float64 `json:"loss"`
	Resets      float64 `json:"resets"`
	Churn       float64 `json:"churn"`
	Partition   bool    `json:"partition"`
	Seed        uint64  `json:"seed"`
	// Signatures is "simulated" (insecure stand-in) or "ml-dsa-65".
	Signatures string `json:"signatures"`

	// DeliveryRatio is delivered / expected (message, subscriber) pairs. A
	// subscriber is expected to get a message if it subscribed at least 5 s
	// before the publication and was alive from then to the end of the run.
	DeliveryRatio float64 `json:"delivery_ratio"`
	Expected      int     `json:"expected_deliveries"`
	Delivered     int     `json:"delivered"`
	// RMR is payload receptions / (remote deliveries) - 1 (0 is a perfect
	// tree) over the whole run, including the first messages that prune the
	// initial mesh to a tree.
	RMR float64 `json:"rmr"`
	// RMRSteady is the RMR of the second half of the publications (payload
	// receptions counted from the half-way publication on).
	RMRSteady float64 `json:"rmr_steady_state"`
	// LDHMax is the largest hop count of a delivery (pulled ones included).
	LDHMax int `json:"ldh_max"`
	// HopHistogram[h] is the number of deliveries that took h hops.
	HopHistogram []int `json:"hop_histogram"`
	// TreeDepthMax is the largest distance to its tree's root of a live
	// subscriber at the end of the run (a tree's diameter is at most twice
	// its depth).
	TreeDepthMax int `json:"tree_depth_max"`
	// LatencyP50Ms/P99Ms: publication to delivery, over subscribers that had
	// subscribed at least 5 s before the publication.
	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	// IdealP50Ms/P99Ms are the same pairs' shortest-path latencies over all
	// links (the physical limit; computed from up to maxIdealOrigins
	// publishers), and P99OverIdeal the measured p99 over the ideal one.
	IdealP50Ms   float64 `json:"ideal_latency_p50_ms"`
	IdealP99Ms   float64 `json:"ideal_latency_p99_ms"`
	P99OverIdeal float64 `json:"latency_p99_over_ideal"`
	// BytesPerNode / MsgsPerNode are frame bytes and frames sent (all
	// classes) from the first publication to the end of the run, divided by
	// the nodes alive at the end.
	BytesPerNode float64 `json:"bytes_per_node"`
	MsgsPerNode  float64 `json:"msgs_per_node"`
	// ConvergedAfterHealMs is the time from the heal until every message
	// published during the split reached every expected subscriber; -1 if
	// there was no partition or it did not converge within the drain.
	ConvergedAfterHealMs float64 `json:"converged_after_heal_ms"`
	// AERoundsToConverge is ConvergedAfterHealMs in anti-entropy periods
	// (-1 likewise).
	AERoundsToConverge float64 `json:"ae_rounds_to_converge"`

	// ConnResets counts connections reset (with Resets), over the run.
	ConnResets     uint64  `json:"connection_resets"`
	Crashed        int     `json:"crashed"`
	Joined         int     `json:"joined"`
	VirtualSeconds float64 `json:"virtual_seconds"`
	Events         uint64  `json:"sim_events"`
	Drops          Drops   `json:"drops"`
	Repair         Repair  `json:"repair"`
}

// Drops sums, over all nodes, messages refused (never delivered) by reason
// and frames the network refused: only drops.
type Drops struct {
	Malformed     uint64 `json:"malformed"`
	BadSignature  uint64 `json:"bad_signature"`
	UnknownSigner uint64 `json:"unknown_signer"`
	Replay        uint64 `json:"replay"`
	Stale         uint64 `json:"stale"`
	PayloadHash   uint64 `json:"payload_hash"`
	NotSubscribed uint64 `json:"not_subscribed"`
	// QueueFull and SendErrors are frames the network refused.
	QueueFull  uint64 `json:"queue_full"`
	SendErrors uint64 `json:"send_errors"`
	// SubscriberOverflow counts deliveries lost to full subscription channels.
	SubscriberOverflow uint64 `json:"subscriber_overflow"`
	// RateLimited counts frames and messages over a peer's or an origin's rate.
	RateLimited uint64 `json:"rate_limited"`
}

// Repair sums, over all nodes, how messages that missed the eager tree
// were recovered and how the tree was maintained.
type Repair struct {
	// IWantPulled: new messages fetched with IWANT after an IHAVE;
	// AEPulled: new messages that arrived through anti-entropy.
	IWantPulled uint64 `json:"iwant_pulled"`
	AEPulled    uint64 `json:"ae_pulled"`
	// IWants, Grafts and Prunes are the requests sent.
	IWants uint64 `json:"iwants"`
	Grafts uint64 `json:"grafts"`
	Prunes uint64 `json:"prunes"`
}

type node struct {
	net        *sim.Node
	mem        *membership.Membership
	ps         *pubsub.PubSub
	topics     []int
	subscribed time.Time
}

type pub struct {
	at     time.Time
	topic  int
	origin int
	during bool            // published during the partition
	lat    map[int]float64 // receiver node -> latency ms
}

type run struct {
	cfg    Config
	w      *sim.World
	nodes  []*node
	known  map[identity.AgentID]bool
	keys   pubsub.StaticKeys
	pubs   []*pub
	byID   map[pubsub.MsgID]int
	ldh    int
	hops   []int // deliveries by hop count
	topics []string
}

// Run executes the scenario and returns its measurements.
func Run(cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if cfg.Loss < 0 || cfg.Loss >= 1 || cfg.Churn < 0 || cfg.Churn >= 1 || cfg.Resets < 0 || cfg.Resets >= 1 {
		return nil, errors.New("scenario: loss, resets and churn must be in [0, 1)")
	}
	r := &run{
		cfg:   cfg,
		w:     sim.NewWorld(sim.Config{Seed: cfg.Seed, Loss: cfg.Loss, Resets: cfg.Resets, MinLatency: cfg.MinLatency, MaxLatency: cfg.MaxLatency}),
		known: make(map[identity.AgentID]bool),
		keys:  pubsub.StaticKeys{},
		byID:  make(map[pubsub.MsgID]int),
	}
	for k := 0; k < cfg.Topics; k++ {
		r.topics = append(r.topics, fmt.Sprintf("topic-%d", k))
	}
	defer r.close()
	rng := r.w.Rand()
	// Which nodes subscribe to which topic.
	subsOf := make([][]int, cfg.Nodes)
	for k := range r.topics {
		for _, i := range rng.Perm(cfg.Nodes)[:cfg.Subscribers] {
			subsOf[i] = append(subsOf[i], k)
		}
	}
	for i := 0; i < cfg.Nodes; i++ {
		if err := r.addNode(subsOf[i]); err != nil {
			return nil, err
		}
		r.w.Clock.RunFor(5 * time.Millisecond)
	}
	r.w.Clock.RunFor(cfg.Warmup)

	// Publishing phase.
	base := r.traffic()
	if cfg.Partition {
		sides := make(map[*sim.Node]int)
		for _, i := range rng.Perm(len(r.nodes))[:len(r.nodes)/2] {
			sides[r.nodes[i].net] = 1
		}
		r.w.Partition(func(n *sim.Node) int { return sides[n] })
	}
	crashes := int(math.Round(cfg.Churn * float64(cfg.Nodes)))
	victims := rng.Perm(cfg.Nodes)[:crashes]
	res := &Result{}
	payload := make([]byte, cfg.PayloadSize)
	var half traffic
	for m := 0; m < cfg.Messages; m++ {
		if m == cfg.Messages/2 {
			half = r.traffic()
		}
		if crashes > 0 {
			// Spread crash+join pairs evenly over the publications.
			for res.Crashed < crashes && res.Crashed*cfg.Messages <= m*crashes {
				v := r.nodes[victims[res.Crashed]]
				r.w.Kill(v.net)
				res.Crashed++
				if err := r.addNode(v.topics); err != nil {
					return nil, err
				}
				res.Joined++
			}
		}
		origin := r.randomLive()
		topic := rng.IntN(cfg.Topics)
		for j := range payload {
			payload[j] = byte(m + j)
		}
		p := &pub{at: r.w.Clock.Now(), topic: topic, origin: origin, during: cfg.Partition, lat: make(map[int]float64)}
		r.pubs = append(r.pubs, p)
		id, err := r.nodes[origin].ps.Publish(r.topics[topic], payload)
		if err != nil {
			return nil, fmt.Errorf("scenario: publish %d: %w", m, err)
		}
		r.byID[id] = len(r.pubs) - 1
		// A local subscriber delivers synchronously before byID is set.
		if slices.Contains(r.nodes[origin].topics, topic) {
			p.lat[origin] = 0
		}
		r.w.Clock.RunFor(cfg.PublishInterval)
	}
	res.ConvergedAfterHealMs, res.AERoundsToConverge = -1, -1
	if cfg.Partition {
		r.w.Heal()
		healed := r.w.Clock.Now()
		limit := 2*pubsub.Config{}.AEIntervalDefault() + cfg.Drain
		for r.w.Clock.Now().Sub(healed) < limit {
			r.w.Clock.RunFor(100 * time.Millisecond)
			if exp, got := r.count(true); exp == got {
				d := r.w.Clock.Now().Sub(healed)
				res.ConvergedAfterHealMs = float64(d.Milliseconds())
				res.AERoundsToConverge = d.Seconds() / pubsub.Config{}.AEIntervalDefault().Seconds()
				break
			}
		}
	}
	r.w.Clock.RunFor(cfg.Drain)
	r.result(res, base, half)
	return res, nil
}

func (r *run) addNode(topics []int) error {
	i := len(r.nodes)
	seed := r.cfg.Seed
	net, err := r.w.AddNode(identity.DeriveID(fmt.Appendf(nil, "sim-machine-%d-%d", seed, i)))
	if err != nil {
		return err
	}
	mem, err := membership.New(net, membership.Config{Clock: net.Clock(), Rand: net.Rand(), Records: membership.SimulatedRecords{ID: net.LocalID()}})
	if err != nil {
		return err
	}
	var signer pubsub.Signer
	var verifier pubsub.Verifier
	if r.cfg.RealSignatures {
		var s [32]byte
		copy(s[:], fmt.Sprintf("sim-agent-%d-%d", seed, i))
		kp := identity.KeyPairFromSeed(s)
		r.keys[kp.ID()] = kp.Public()
		signer, verifier = pubsub.AgentSigner{Key: kp}, pubsub.NewMLDSAVerifier(r.keys)
	} else {
		id := identity.DeriveID(fmt.Appendf(nil, "sim-agent-%d-%d", seed, i))
		r.known[id] = true
		signer, verifier = pubsub.SimulatedSigner{ID: id}, pubsub.SimulatedVerifier{Known: r.known}
	}
	ps, err := pubsub.New(net, mem, pubsub.Config{Clock: net.Clock(), Rand: net.Rand(), Signer: signer, Verifier: verifier})
	if err != nil {
		return err
	}
	n := &node{net: net, mem: mem, ps: ps, topics: topics, subscribed: r.w.Clock.Now()}
	r.nodes = append(r.nodes, n)
	for _, k := range topics {
		if _, err := ps.SubscribeFunc(r.topics[k], func(d pubsub.Delivery) { r.delivered(i, d) }); err != nil {
			return err
		}
	}
	if i > 0 {
		via := r.nodes[r.randomLiveBelow(i)]
		if err := mem.Join(context.Background(), []membership.NodeDesc{via.mem.Self()}); err != nil {
			return fmt.Errorf("scenario: node %d join: %w", i, err)
		}
	}
	return nil
}

func (r *run) delivered(i int, d pubsub.Delivery) {
	idx, ok := r.byID[d.ID]
	if !ok {
		return // a local delivery during Publish (recorded by the caller)
	}
	p := r.pubs[idx]
	p.lat[i] = float64(r.w.Clock.Now().Sub(p.at)) / float64(time.Millisecond)
	if d.Hops > r.ldh {
		r.ldh = d.Hops
	}
	for len(r.hops) <= d.Hops {
		r.hops = append(r.hops, 0)
	}
	r.hops[d.Hops]++
}

func (r *run) randomLive() int { return r.randomLiveBelow(len(r.nodes)) }

func (r *run) randomLiveBelow(n int) int {
	for {
		i := r.w.Rand().IntN(n)
		if r.nodes[i].net.Alive() {
			return i
		}
	}
}

// expected reports whether node i should receive publication p.
func (r *run) expected(i int, p *pub) bool {
	n := r.nodes[i]
	return n.net.Alive() && i != p.origin && slices.Contains(n.topics, p.topic) && !n.subscribed.After(p.at.Add(-5*time.Second))
}

// count returns expected and delivered pairs (only split-time publications if during).
func (r *run) count(during bool) (exp, got int) {
	for _, p := range r.pubs {
		if during && !p.during {
			continue
		}
		for i := range r.nodes {
			if r.expected(i, p) {
				exp++
				if _, ok := p.lat[i]; ok {
					got++
				}
			}
		}
	}
	return exp, got
}

type traffic struct{ bytes, frames, payloads uint64 }

func (r *run) traffic() traffic {
	var t traffic
	for _, n := range r.nodes {
		s := n.net.Stats()
		t.bytes += s.BytesSent
		t.frames += s.FramesSent
		t.payloads += n.ps.Stats().PayloadsReceived
	}
	return t
}

func (r *run) result(res *Result, base, half traffic) {
	c := r.cfg
	res.Nodes, res.Topics, res.Subscribers, res.Messages = c.Nodes, c.Topics, c.Subscribers, c.Messages
	res.Loss, res.Resets, res.Churn, res.Partition, res.Seed = c.Loss, c.Resets, c.Churn, c.Partition, c.Seed
	res.Signatures = "simulated"
	if c.RealSignatures {
		res.Signatures = "ml-dsa-65"
	}
	res.Expected, res.Delivered = r.count(false)
	if res.Expected > 0 {
		res.DeliveryRatio = float64(res.Delivered) / float64(res.Expected)
	}
	var lats []float64
	remote, remoteSecondHalf := 0, 0
	for k, p := range r.pubs {
		for i, l := range p.lat {
			if i != p.origin {
				// Latency only for subscribers that were there when the
				// message was published (not the history a late joiner
				// pulls through anti-entropy); RMR counts every delivery.
				if !r.nodes[i].subscribed.After(p.at.Add(-5 * time.Second)) {
					lats = append(lats, l)
				}
				remote++
				if k >= c.Messages/2 {
					remoteSecondHalf++
				}
			}
		}
	}
	slices.Sort(lats)
	res.LatencyP50Ms, res.LatencyP99Ms = percentile(lats, 0.50), percentile(lats, 0.99)
	ideal := r.idealLatencies()
	slices.Sort(ideal)
	res.IdealP50Ms, res.IdealP99Ms = percentile(ideal, 0.50), percentile(ideal, 0.99)
	if res.IdealP99Ms > 0 {
		res.P99OverIdeal = res.LatencyP99Ms / res.IdealP99Ms
	}
	now := r.traffic()
	if remote > 0 {
		res.RMR = float64(now.payloads-base.payloads)/float64(remote) - 1
	}
	if remoteSecondHalf > 0 {
		res.RMRSteady = float64(now.payloads-half.payloads)/float64(remoteSecondHalf) - 1
	}
	res.LDHMax = r.ldh
	res.HopHistogram = r.hops
	for _, n := range r.nodes {
		for _, k := range n.topics {
			if st, ok := n.ps.Tree(r.topics[k]); ok && n.net.Alive() {
				res.TreeDepthMax = max(res.TreeDepthMax, int(st.Dist))
			}
		}
	}
	alive := 0
	for _, n := range r.nodes {
		if n.net.Alive() {
			alive++
		}
	}
	res.BytesPerNode = float64(now.bytes-base.bytes) / float64(max(alive, 1))
	res.MsgsPerNode = float64(now.frames-base.frames) / float64(max(alive, 1))
	res.VirtualSeconds = r.w.Clock.Now().Sub(r.w.Config().Start).Seconds()
	res.Events = r.w.Clock.Executed()
	for _, n := range r.nodes {
		res.ConnResets += n.net.Stats().Resets
		s := n.ps.Stats()
		d := &res.Drops
		d.Malformed += s.DropMalformed
		d.BadSignature += s.DropBadSignature
		d.UnknownSigner += s.DropUnknownSigner
		d.Replay += s.DropReplay
		d.Stale += s.DropStale
		d.PayloadHash += s.DropPayloadHash
		d.QueueFull += s.SendQueueFull
		d.SendErrors += s.SendErrors
		d.SubscriberOverflow += s.SubscriberOverflow
		d.NotSubscribed += s.DropNotSubscribed
		d.RateLimited += s.RateLimited
		rp := &res.Repair
		rp.IWantPulled += s.IWantPulled
		rp.AEPulled += s.AEPulled
		rp.Grafts += s.GraftsSent
		rp.IWants += s.IWantsSent
		rp.Prunes += s.PrunesSent
	}
}

// maxIdealOrigins bounds the publishers whose shortest paths are computed
// (one dense Dijkstra each, O(nodes^2)).
const maxIdealOrigins = 32

// idealLatencies returns, for the publications of the first
// maxIdealOrigins distinct publishers, the shortest-path latency over all
// links to every receiver whose latency was measured.
func (r *run) idealLatencies() []float64 {
	n := len(r.nodes)
	link := make([]float32, n*n) // ms, computed once: Dijkstra reads it n times per origin
	for u := range n {
		for v := u + 1; v < n; v++ {
			l := float32(float64(r.w.LinkLatency(r.nodes[u].net, r.nodes[v].net)) / float64(time.Millisecond))
			link[u*n+v], link[v*n+u] = l, l
		}
	}
	var out []float64
	dist := map[int][]float64{}
	for _, p := range r.pubs {
		d, ok := dist[p.origin]
		if !ok {
			if len(dist) >= maxIdealOrigins {
				continue
			}
			d = shortestPaths(link, n, p.origin)
			dist[p.origin] = d
		}
		for i := range p.lat {
			if i != p.origin && !r.nodes[i].subscribed.After(p.at.Add(-5*time.Second)) {
				out = append(out, d[i])
			}
		}
	}
	return out
}

// shortestPaths is Dijkstra from node src over the complete graph whose
// link latencies (ms) are link[u*n+v], dense version.
func shortestPaths(link []float32, n, src int) []float64 {
	dist := make([]float64, n)
	done := make([]bool, n)
	for i := range dist {
		dist[i] = math.Inf(1)
	}
	dist[src] = 0
	for range n {
		u := -1
		for i := range n {
			if !done[i] && (u < 0 || dist[i] < dist[u]) {
				u = i
			}
		}
		done[u] = true
		for v := range n {
			if !done[v] {
				if alt := dist[u] + float64(link[u*n+v]); alt < dist[v] {
					dist[v] = alt
				}
			}
		}
	}
	return dist
}

func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func (r *run) close() {
	for _, n := range r.nodes {
		n.ps.Close()
		n.mem.Close()
	}
}
