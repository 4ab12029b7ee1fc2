package x0x

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/transport"
	"github.com/saorsa-labs/x0x-go/internal/measure"
)

// BenchmarkLoopback is the overlay's loopback benchmark (issue 13): 50 and
// 100 agents on real QUIC over loopback in one process, one topic, 1 KiB
// payloads from random publishers at 25, 100 and 500 messages/s, each for
// X0X_LOOPBACK_SECONDS (default 30) plus up to 10 s for the last
// deliveries. (30 s, not 10: each topic's message store fills to its byte
// budget in about 18 s at 100 msg/s, so a 10 s run reported 18 MB per agent
// where the steady state holds 31 MB; and the first message of each
// publisher, which waits for its key at every hop, was a fifth of a 10 s
// run at 25 msg/s.) It runs each scenario once whatever b.N is and reports
// the published rate, the delivery ratio, p50/p99/max latency, wire bytes
// per delivery (QUIC's
// bytes sent over every connection: headers, acknowledgements,
// handshakes and retransmissions included), frame bytes per delivery
// (every class's frames, what the overlay asked to send), CPU per
// delivery (the process's user+system time), RSS per agent, and the
// handshakes and lost packets during the run (connection churn and
// overflowing socket buffers are how overload shows on loopback). With
// X0X_LOOPBACK_STATS set it also logs latency by hop count, the Go
// scheduler's latency, the heap, and the agents' summed pub/sub,
// membership and transport counters; X0X_LOOPBACK_CPUPROFILE and
// X0X_LOOPBACK_MEMPROFILE name files for a CPU profile of the measured span
// and a heap profile at its end. X0X_LOOPBACK_STORE_BYTES sets the agents'
// TopicStoreBytes (memory against repair depth: see the issue 13 notes).
func BenchmarkLoopback(b *testing.B) {
	seconds := 30
	if v, err := strconv.Atoi(os.Getenv("X0X_LOOPBACK_SECONDS")); err == nil && v > 0 {
		seconds = v
	}
	var overlay OverlayConfig
	if v, err := strconv.Atoi(os.Getenv("X0X_LOOPBACK_STORE_BYTES")); err == nil && v > 0 {
		overlay.TopicStoreBytes = v
	}
	for _, n := range []int{50, 100} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) {
			agents := clusterWith(b, n, overlay)
			for run, rate := range []int{25, 100, 500} {
				b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) {
					loopbackRun(b, agents, byte(run), rate, time.Duration(seconds)*time.Second)
				})
			}
		})
	}
}

func loopbackRun(b *testing.B, agents []*Agent, runID byte, rate int, span time.Duration) {
	topic := fmt.Sprintf("loopback-%d", runID)
	n := len(agents)
	type rec struct {
		mu   sync.Mutex
		seen map[uint64]bool
		lats []time.Duration
		hops []int
	}
	recs := make([]*rec, n)
	var wg sync.WaitGroup
	topics := make([]*Topic, n)
	for i, a := range agents {
		tp, err := a.Join(context.Background(), topic)
		if err != nil {
			b.Fatal(err)
		}
		s, err := tp.Subscribe()
		if err != nil {
			b.Fatal(err)
		}
		topics[i] = tp
		r := &rec{seen: map[uint64]bool{}}
		recs[i] = r
		wg.Go(func() {
			for {
				m, err := s.Next(context.Background())
				if errors.Is(err, ErrLagged) {
					continue // counted as undelivered
				}
				if err != nil {
					return
				}
				if len(m.Payload) < 17 || m.Payload[0] != 'B' || m.Origin == agents[i].AgentID() {
					continue
				}
				seq := binary.BigEndian.Uint64(m.Payload[1:])
				d := time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(m.Payload[9:]))))
				r.mu.Lock()
				if !r.seen[seq] {
					r.seen[seq] = true
					r.lats = append(r.lats, d)
					r.hops = append(r.hops, m.Hops)
				}
				r.mu.Unlock()
			}
		})
	}
	defer func() {
		for _, tp := range topics {
			tp.Leave()
		}
		wg.Wait()
	}()
	waitTopic(b, agents, topic)
	time.Sleep(2 * time.Second) // trees form
	before, cpuBefore := sumStats(agents), measure.CPUTime()
	ctx := context.Background()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	deadline := time.Now().Add(span)
	sent := uint64(0)
	payload := make([]byte, 1024)
	schedBefore := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(schedBefore)
	b.ResetTimer()
	if name := os.Getenv("X0X_LOOPBACK_CPUPROFILE"); name != "" {
		// A profile of the measured span only (-test.cpuprofile also
		// covers the cluster's start and its handshakes).
		f, err := os.Create(name)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	for time.Now().Before(deadline) {
		<-tick.C
		payload[0] = 'B'
		binary.BigEndian.PutUint64(payload[1:], sent)
		binary.BigEndian.PutUint64(payload[9:], uint64(time.Now().UnixNano()))
		if _, err := topics[rand.IntN(n)].Publish(ctx, payload); err != nil {
			b.Fatal(err)
		}
		sent++
	}
	want := int(sent) * (n - 1)
	got := func() int {
		total := 0
		for _, r := range recs {
			r.mu.Lock()
			total += len(r.seen)
			r.mu.Unlock()
		}
		return total
	}
	for end := time.Now().Add(10 * time.Second); got() < want && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	delivered := got()
	var lats []time.Duration
	for _, r := range recs {
		r.mu.Lock()
		lats = append(lats, r.lats...)
		r.mu.Unlock()
	}
	if name := os.Getenv("X0X_LOOPBACK_MEMPROFILE"); name != "" {
		f, err := os.Create(name)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	slices.Sort(lats)
	pct := func(p float64) float64 { return measure.PercentileMs(lats, p) }
	// Publish blocks while the node cannot keep up, and the ticker then
	// drops ticks: the rate actually offered is this, not the nominal one.
	b.ReportMetric(float64(sent)/span.Seconds(), "published-msg/s")
	b.ReportMetric(float64(delivered)/float64(max(want, 1)), "delivery-ratio")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	after := sumStats(agents)
	b.ReportMetric(float64(after.quicBytes-before.quicBytes)/float64(max(delivered, 1)), "wire-B/delivery")
	b.ReportMetric(float64(after.frameBytes-before.frameBytes)/float64(max(delivered, 1)), "frame-B/delivery")
	b.ReportMetric(float64(after.handshakes-before.handshakes), "handshakes")
	b.ReportMetric(float64(after.lost-before.lost), "lost-packets")
	b.ReportMetric(float64((measure.CPUTime()-cpuBefore).Microseconds())/1000/float64(max(delivered, 1)), "cpu-ms/delivery")
	b.ReportMetric(float64(measure.Bytes("VmRSS"))/float64(n)/(1<<20), "rss-MB/agent")
	if os.Getenv("X0X_LOOPBACK_STATS") != "" {
		// On standard error: a benchmark's log is cut after a few lines.
		statf := func(format string, a ...any) { fmt.Fprintf(os.Stderr, "    "+format+"\n", a...) }
		byHops := map[int][]time.Duration{}
		for _, r := range recs {
			for i, d := range r.lats {
				byHops[r.hops[i]] = append(byHops[r.hops[i]], d)
			}
		}
		logLatencyByHops(statf, byHops)
		logSchedLatency(statf, schedBefore)
		statf("%+v", overlayTotals(agents))
		var sus, dead, refuted, dialFail uint64
		for _, a := range agents {
			m := a.overlay.Members.Stats()
			sus, dead, refuted, dialFail = sus+m.Suspicions, dead+m.Deaths, refuted+m.Refutations, dialFail+m.DialFailures
		}
		statf("membership (cumulative): %d suspicions, %d deaths, %d refutations, %d failed dials", sus, dead, refuted, dialFail)
		var tr transport.Stats
		for _, a := range agents {
			s := a.node.Stats()
			tr.DialsOK += s.DialsOK
			tr.DialsFailed += s.DialsFailed
			tr.Replaced += s.Replaced
			tr.DuplicatesClosed += s.DuplicatesClosed
			tr.Reconnects += s.Reconnects
			tr.Evicted += s.Evicted
			tr.ConnectionsOpen += s.ConnectionsOpen
		}
		statf("transport (cumulative): %d dials, %d failed, %d replaced, %d duplicates, %d reconnects, %d evicted, %d open now",
			tr.DialsOK, tr.DialsFailed, tr.Replaced, tr.DuplicatesClosed, tr.Reconnects, tr.Evicted, tr.ConnectionsOpen)
		for i := range after.classBytes {
			statf("%v frame bytes per delivery: %d", link.Class(i+1), (after.classBytes[i]-before.classBytes[i])/uint64(max(delivered, 1)))
		}
	}
}

// logLatencyByHops logs the latency percentiles of the deliveries that took
// each number of overlay hops: per-hop delay, and whether slow deliveries
// took long paths or slow hops.
func logLatencyByHops(logf func(string, ...any), byHops map[int][]time.Duration) {
	for h := range 64 {
		l := byHops[h]
		if len(l) == 0 {
			continue
		}
		slices.Sort(l)
		logf("%d hops: %d deliveries, p50 %.1f ms, p90 %.1f ms, p99 %.1f ms", h, len(l),
			measure.PercentileMs(l, 0.5), measure.PercentileMs(l, 0.9), measure.PercentileMs(l, 0.99))
	}
}

// logSchedLatency logs quantiles of the Go scheduler's latency (runnable
// to running) since before: with 50 agents on two cores every hop waits
// for several goroutines to be scheduled, and this is how long they wait.
func logSchedLatency(logf func(string, ...any), before []metrics.Sample) {
	after := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(after)
	h0, h := before[0].Value.Float64Histogram(), after[0].Value.Float64Histogram()
	counts := make([]uint64, len(h.Counts))
	var total uint64
	for i := range counts {
		counts[i] = h.Counts[i] - h0.Counts[i]
		total += counts[i]
	}
	var line []string
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		var acc uint64
		for i, c := range counts {
			if acc += c; float64(acc) >= q*float64(total) {
				line = append(line, fmt.Sprintf("q%g <= %.3f ms", q, h.Buckets[i+1]*1000))
				break
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	logf("scheduler latency (%d samples): %s", total, strings.Join(line, ", "))
	logf("memory: heap in use %d MiB, heap idle not released %d MiB, stacks %d MiB, runtime total %d MiB, %d GCs",
		ms.HeapInuse>>20, (ms.HeapIdle-ms.HeapReleased)>>20, ms.StackInuse>>20, ms.Sys>>20, ms.NumGC)
}

// transportTotals are the agents' summed transport counters.
type transportTotals struct {
	quicBytes, frameBytes, handshakes, lost uint64
	classBytes                              [link.NumClasses]uint64
}

// sumStats sums what every agent's node sent, over all connections and
// classes, and the handshakes it completed as dialler.
func sumStats(agents []*Agent) transportTotals {
	var t transportTotals
	for _, a := range agents {
		s := a.node.Stats()
		t.quicBytes += s.QUICBytesSent
		t.lost += s.QUICPacketsLost
		t.handshakes += s.DialsOK
		for i, c := range s.Classes {
			t.frameBytes += c.BytesOut
			t.classBytes[i] += c.BytesOut
		}
	}
	return t
}

// cpuTime (the process's user plus system CPU time so far) is in
// cputime_unix_test.go and cputime_windows_test.go.
