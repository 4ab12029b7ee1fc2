package x0x

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
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
// X0X_LOOPBACK_SECONDS (default 10) plus up to 10 s for the last
// deliveries. It runs each scenario once whatever b.N is and reports the
// delivery ratio, p50/p99/max latency, wire bytes per delivery (QUIC's
// bytes sent over every connection: headers, acknowledgements,
// handshakes and retransmissions included), frame bytes per delivery
// (every class's frames, what the overlay asked to send), CPU per
// delivery (the process's user+system time), RSS per agent, and the
// handshakes and lost packets during the run (connection churn and
// overflowing socket buffers are how overload shows on loopback). With X0X_LOOPBACK_STATS set it also
// logs the agents' summed pub/sub counters.
func BenchmarkLoopback(b *testing.B) {
	seconds := 10
	if v, err := strconv.Atoi(os.Getenv("X0X_LOOPBACK_SECONDS")); err == nil && v > 0 {
		seconds = v
	}
	for _, n := range []int{50, 100} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) {
			agents := cluster(b, n)
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
	before, cpuBefore := sumStats(agents), cpuTime()
	ctx := context.Background()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	deadline := time.Now().Add(span)
	sent := uint64(0)
	payload := make([]byte, 1024)
	b.ResetTimer()
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
	slices.Sort(lats)
	pct := func(p float64) float64 { return measure.PercentileMs(lats, p) }
	b.ReportMetric(float64(delivered)/float64(max(want, 1)), "delivery-ratio")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	after := sumStats(agents)
	b.ReportMetric(float64(after.quicBytes-before.quicBytes)/float64(max(delivered, 1)), "wire-B/delivery")
	b.ReportMetric(float64(after.frameBytes-before.frameBytes)/float64(max(delivered, 1)), "frame-B/delivery")
	b.ReportMetric(float64(after.handshakes-before.handshakes), "handshakes")
	b.ReportMetric(float64(after.lost-before.lost), "lost-packets")
	b.ReportMetric(float64((cpuTime()-cpuBefore).Microseconds())/1000/float64(max(delivered, 1)), "cpu-ms/delivery")
	b.ReportMetric(float64(measure.Bytes("VmRSS"))/float64(n)/(1<<20), "rss-MB/agent")
	if os.Getenv("X0X_LOOPBACK_STATS") != "" {
		b.Logf("%+v", overlayTotals(agents))
		var sus, dead, refuted, dialFail uint64
		for _, a := range agents {
			m := a.overlay.Members.Stats()
			sus, dead, refuted, dialFail = sus+m.Suspicions, dead+m.Deaths, refuted+m.Refutations, dialFail+m.DialFailures
		}
		b.Logf("membership (cumulative): %d suspicions, %d deaths, %d refutations, %d failed dials", sus, dead, refuted, dialFail)
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
		b.Logf("transport (cumulative): %d dials, %d failed, %d replaced, %d duplicates, %d reconnects, %d evicted, %d open now",
			tr.DialsOK, tr.DialsFailed, tr.Replaced, tr.DuplicatesClosed, tr.Reconnects, tr.Evicted, tr.ConnectionsOpen)
		for i := range after.classBytes {
			b.Logf("%v frame bytes per delivery: %d", link.Class(i+1), (after.classBytes[i]-before.classBytes[i])/uint64(max(delivered, 1)))
		}
	}
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
