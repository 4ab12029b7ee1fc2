package transport

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/internal/measure"
)

// Benchmarks compare x0x with plain quic-go over the same kind of loopback
// connection in the same run. Run them with, e.g.:
//
//	go test ./core/transport -run '^$' -bench . -benchtime 2s

// benchConfig is a loopback config for benchmarks (generous timeouts, a
// large event buffer so that no direct message is dropped).
func benchConfig(key *identity.KeyPair) Config {
	c := testConfig(key)
	c.HandshakeTimeout, c.AuthTimeout = 30*time.Second, 30*time.Second
	c.EventBuffer = 1 << 16
	return c
}

// rawQUICServer accepts connections with the x0x server TLS config and
// hands each to serve.
func rawQUICServer(b *testing.B, serve func(*quic.Conn)) (addr string, clientTLS func() *quic.Transport) {
	b.Helper()
	server, _, err := tlsConfigs(rand.Reader, time.Now(), nil)
	if err != nil {
		b.Fatal(err)
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.Listen(server, &quic.Config{})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			qc, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go serve(qc)
		}
	}()
	var clients []*quic.Transport
	b.Cleanup(func() {
		for _, c := range clients {
			_ = c.Close()
			_ = c.Conn.Close()
		}
		_ = ln.Close()
		_ = tr.Close()
		_ = udp.Close()
		<-done
	})
	return udp.LocalAddr().String(), func() *quic.Transport {
		cu, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		ct := &quic.Transport{Conn: cu}
		clients = append(clients, ct)
		return ct
	}
}

func BenchmarkHandshake(b *testing.B) {
	b.Run("x0x", func(b *testing.B) {
		a := startNode(b, benchConfig(testKey("bh", 1)))
		s := startNode(b, benchConfig(testKey("bh", 2)))
		if _, err := a.AddAgent(testKey("bh-agent", 1)); err != nil {
			b.Fatal(err)
		}
		if _, err := s.AddAgent(testKey("bh-agent", 2)); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ResetTimer()
		for i := range b.N {
			if err := a.Connect(ctx, s.LocalID(), s.LocalAddr()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			// The dialler can be done before the listener has read its
			// hello; let the listener finish too, so that every
			// iteration is one whole handshake on both sides.
			waitFor(b, "listener connected", func() bool { return s.IsConnected(a.LocalID()) })
			a.Disconnect(s.LocalID())
			a.rec.wait(b, "disconnect", func(e []Event) bool { return count(e, EventPeerDisconnected, s.LocalID()) == i+1 })
			// The listener may not even have finished its side before the
			// close arrived; wait until it has forgotten the connection.
			waitFor(b, "listener idle", func() bool { return s.Stats().ConnectionsOpen == 0 })
			b.StartTimer()
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/handshake")
	})
	b.Run("quic-go", func(b *testing.B) {
		addr, newClient := rawQUICServer(b, func(qc *quic.Conn) { <-qc.Context().Done() })
		_, client, err := tlsConfigs(rand.Reader, time.Now(), nil)
		if err != nil {
			b.Fatal(err)
		}
		ua, _ := net.ResolveUDPAddr("udp", addr)
		ct := newClient()
		ctx := context.Background()
		b.ResetTimer()
		for range b.N {
			qc, err := ct.Dial(ctx, ua, client, &quic.Config{})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			_ = qc.CloseWithError(0, "")
			b.StartTimer()
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/handshake")
	})
}

func BenchmarkDirectThroughput(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("x0x/%dKiB", size>>10), func(b *testing.B) { benchX0XDirect(b, size, false) })
		b.Run(fmt.Sprintf("x0x-relayed/%dKiB", size>>10), func(b *testing.B) { benchX0XDirect(b, size, true) })
		b.Run(fmt.Sprintf("quic-go/%dKiB", size>>10), func(b *testing.B) { benchRawStream(b, size) })
	}
}

// benchX0XDirect measures direct messages from one node to another,
// connected directly or through a third node relaying their packets.
func benchX0XDirect(b *testing.B, size int, relayed bool) {
	a := startNodeNoRecorder(b, benchConfig(testKey("bt", 1)))
	s := startNodeNoRecorder(b, benchConfig(testKey("bt", 2)))
	from, to := testKey("bt-agent", 1), testKey("bt-agent", 2)
	if _, err := a.AddAgent(from); err != nil {
		b.Fatal(err)
	}
	if _, err := s.AddAgent(to); err != nil {
		b.Fatal(err)
	}
	var received atomic.Int64
	var bytesIn atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range s.Events() {
			if ev.Kind == EventDirectMessage {
				bytesIn.Add(int64(len(ev.Payload)))
				received.Add(1)
			}
		}
	}()
	b.Cleanup(func() { _ = s.Close(); <-done })
	ctx := context.Background()
	if relayed {
		rc := benchConfig(testKey("bt", 3))
		rc.Services = ServiceRelay
		rc.Relay = RelayLimits{BytesPerSecond: 1 << 30, Burst: 1 << 30} // measure the path, not the quota
		r := startNodeNoRecorder(b, rc)
		for _, n := range []*Node{a, s} {
			if err := n.Connect(ctx, r.LocalID(), r.LocalAddr()); err != nil {
				b.Fatal(err)
			}
		}
		for !r.IsConnected(s.LocalID()) {
			runtime.Gosched()
		}
		if err := a.ConnectRelayed(ctx, s.LocalID(), r.LocalID()); err != nil {
			b.Fatal(err)
		}
	} else if err := a.Connect(ctx, s.LocalID(), s.LocalAddr()); err != nil {
		b.Fatal(err)
	}
	for a.SendDirect(ctx, from.ID(), to.ID(), nil) != nil { // until the route is known
		runtime.Gosched()
	}
	for received.Load() != 1 {
		runtime.Gosched()
	}
	payloads := make([][]byte, 64) // the caller may not reuse a payload until sent
	for i := range payloads {
		payloads[i] = make([]byte, size)
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if err := a.SendDirect(ctx, from.ID(), to.ID(), payloads[i%len(payloads)]); err != nil {
			b.Fatal(err)
		}
	}
	for received.Load()+int64(s.Stats().EventsDropped) < int64(b.N)+1 {
		time.Sleep(50 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if d := s.Stats().EventsDropped; d != 0 {
		b.Fatalf("%d events dropped", d)
	}
	b.ReportMetric(float64(bytesIn.Load())/elapsed.Seconds()/1e6, "MB/s")
}

func benchRawStream(b *testing.B, size int) {
	var bytesIn atomic.Int64
	st, received := rawMessageStream(b, size, func(n int) { bytesIn.Add(int64(n)) })
	msg := make([]byte, 4+size)
	binary.BigEndian.PutUint32(msg, uint32(size))
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := st.Write(msg); err != nil {
			b.Fatal(err)
		}
	}
	for received.Load() < int64(b.N) {
		time.Sleep(50 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(bytesIn.Load())/elapsed.Seconds()/1e6, "MB/s")
}

// rawMessageStream connects a plain quic-go client to a plain quic-go
// server and returns the client's stream; the server reads length-prefixed
// messages of at most size bytes from it, calls got with each length (if
// got is not nil) and counts them in received.
func rawMessageStream(b *testing.B, size int, got func(n int)) (st *quic.SendStream, received *atomic.Int64) {
	received = new(atomic.Int64)
	addr, newClient := rawQUICServer(b, func(qc *quic.Conn) {
		st, err := qc.AcceptUniStream(context.Background())
		if err != nil {
			return
		}
		br := bufio.NewReaderSize(st, readBufferBytes)
		var hdr [4]byte
		buf := make([]byte, size)
		for {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				return
			}
			n := binary.BigEndian.Uint32(hdr[:])
			if n > uint32(size) {
				return
			}
			if _, err := io.ReadFull(br, buf[:n]); err != nil {
				return
			}
			if got != nil {
				got(int(n))
			}
			received.Add(1)
		}
	})
	_, client, err := tlsConfigs(rand.Reader, time.Now(), nil)
	if err != nil {
		b.Fatal(err)
	}
	ua, _ := net.ResolveUDPAddr("udp", addr)
	qc, err := newClient().Dial(context.Background(), ua, client, &quic.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = qc.CloseWithError(0, "") })
	st, err = qc.OpenUniStream()
	if err != nil {
		b.Fatal(err)
	}
	return st, received
}

// BenchmarkRawQUICMessageCPU is the floor under the overlay's CPU per
// delivery: plain quic-go moving one pub/sub-sized message (1 KiB payload,
// ML-DSA-65 signature, header: 4,400 bytes) over one stream, sender and
// receiver in this process. "paced" sends one message per millisecond,
// as each connection of an overlay sees them (tens per second, one at a
// time), and reports the CPU net of what the same wait costs idle;
// "back-to-back" lets quic-go coalesce. Every delivery of a message is one
// such transfer, plus the signature check.
func BenchmarkRawQUICMessageCPU(b *testing.B) {
	b.Run("paced", func(b *testing.B) { benchRawMessageCPU(b, time.Millisecond) })
	b.Run("back-to-back", func(b *testing.B) { benchRawMessageCPU(b, 0) })
}

func benchRawMessageCPU(b *testing.B, gap time.Duration) {
	const size = 4400
	st, received := rawMessageStream(b, size, nil)
	msg := make([]byte, 4+size)
	binary.BigEndian.PutUint32(msg, uint32(size))
	// run sends b.N messages (or only waits, idle) and returns the CPU used.
	run := func(idle bool) time.Duration {
		before := received.Load()
		cpu := measure.CPUTime()
		var tick *time.Ticker
		if gap > 0 {
			tick = time.NewTicker(gap)
			defer tick.Stop()
		}
		for range b.N {
			if tick != nil {
				<-tick.C
			}
			if idle {
				continue
			}
			if _, err := st.Write(msg); err != nil {
				b.Fatal(err)
			}
		}
		for !idle && received.Load() < before+int64(b.N) {
			time.Sleep(50 * time.Microsecond)
		}
		return measure.CPUTime() - cpu
	}
	var idle time.Duration
	if gap > 0 {
		idle = run(true)
	}
	b.ResetTimer()
	busy := run(false)
	b.StopTimer()
	b.ReportMetric(float64((busy-idle).Microseconds())/float64(b.N), "cpu-us/msg")
}

// startNodeNoRecorder starts a node whose Events the benchmark reads itself.
func startNodeNoRecorder(b *testing.B, cfg Config) *Node {
	b.Helper()
	n, err := Listen(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = n.Close()
		for range n.Events() { // drain, in case nobody else does
		}
	})
	return n
}

func BenchmarkIdleConnectionMemory(b *testing.B) {
	const conns = 32
	var heap, stack, goroutines float64
	for i := range b.N {
		b.StopTimer()
		server := startNodeNoRecorder(b, benchConfig(testKey("mem-server", i)))
		clients := make([]*Node, conns)
		for j := range clients {
			clients[j] = startNodeNoRecorder(b, benchConfig(testKey(fmt.Sprintf("mem-%d", i), j)))
		}
		h0, s0 := memInUse()
		g0 := runtime.NumGoroutine()
		b.StartTimer()
		for _, c := range clients {
			if err := c.Connect(context.Background(), server.LocalID(), server.LocalAddr()); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		for server.Stats().PeersConnected != conns {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // let handshake garbage become unreachable
		h1, s1 := memInUse()
		heap += float64(h1-h0) / conns
		stack += float64(s1-s0) / conns
		goroutines += float64(runtime.NumGoroutine()-g0) / conns
		for _, c := range clients {
			_ = c.Close()
		}
		_ = server.Close()
	}
	// Both ends of every connection live in this process: the figures are
	// per connection, both endpoints together.
	b.ReportMetric(heap/float64(b.N), "heap-B/conn")
	b.ReportMetric(stack/float64(b.N), "stack-B/conn")
	b.ReportMetric((heap+stack)/float64(b.N), "B/conn")
	b.ReportMetric(goroutines/float64(b.N), "goroutines/conn")
}

// memInUse returns live heap and goroutine stack bytes after full GCs.
func memInUse() (heap, stack int64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc), int64(m.StackInuse)
}
