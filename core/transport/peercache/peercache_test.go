package peercache

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a manually advanced clock; AfterFunc is unused by the cache.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func (f *fakeClock) AfterFunc(time.Duration, func()) clock.Timer { panic("not used") }

func newClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func seeded(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return mrand.NewChaCha8(s)
}

func peer(i int) identity.PeerID {
	var p identity.PeerID
	p[0] = 1
	p[30] = byte(i >> 8)
	p[31] = byte(i)
	return p
}

func openCache(t testing.TB, clk clock.Clock) *Cache {
	t.Helper()
	c, err := Open(filepath.Join(t.TempDir(), "peers.cbor"), seeded(1), clk)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestQualityFormula(t *testing.T) {
	now := newClock().now
	cases := []struct {
		e    Entry
		want float64
	}{
		// (4/6) * (100/(100+100)) * (24/(24+24)) — the doc comment's example.
		{Entry{Successes: 3, Failures: 1, RTT: 100 * time.Millisecond, LastSeen: now.Add(-24 * time.Hour)}, 1.0 / 6},
		// No history at all: s=1/2, r=1/2 (unmeasured), a=24/(24+168)=1/8.
		{Entry{}, 1.0 / 32},
		// Perfect and fresh: s=(9+1)/(9+2), r=100/(100+0)→ RTT unmeasured is RTTRef, so use 1 ms.
		{Entry{Successes: 9, RTT: time.Millisecond, LastSeen: now}, (10.0 / 11) * (100.0 / 101)},
		// Seen in the "future" (clock went back): age 0.
		{Entry{Successes: 1, RTT: 300 * time.Millisecond, LastSeen: now.Add(time.Hour)}, (2.0 / 3) * 0.25},
	}
	for i, tc := range cases {
		if got := Quality(tc.e, now); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("case %d: Quality = %v, want %v", i, got, tc.want)
		}
	}
}

func TestScoringOrder(t *testing.T) {
	clk := newClock()
	c := openCache(t, clk)
	if err := c.SetEpsilon(0); err != nil {
		t.Fatal(err)
	}
	rec := func(p identity.PeerID, ok int, fail int, rtt time.Duration) {
		for range ok {
			c.Record(p, "127.0.0.1:1", true, rtt)
		}
		for range fail {
			c.Record(p, "127.0.0.1:1", false, 0)
		}
	}
	stale, slow, flaky, best, dead := peer(1), peer(2), peer(3), peer(4), peer(5)
	rec(stale, 10, 0, 20*time.Millisecond)
	clk.Advance(7 * 24 * time.Hour)
	rec(slow, 10, 0, 400*time.Millisecond)
	rec(flaky, 5, 5, 20*time.Millisecond)
	rec(best, 10, 0, 20*time.Millisecond)
	rec(dead, 0, 3, 0)

	got := c.Select(10)
	var order []identity.PeerID
	for _, e := range got {
		order = append(order, e.Peer)
	}
	// best: 11/12*5/6*1 = .76; flaky: 1/2*5/6 = .42; slow: 11/12*1/5 = .18;
	// stale: 11/12*5/6*1/8 = .095; dead: 1/5*1/2*1/8 = .0125.
	want := []identity.PeerID{best, flaky, slow, stale, dead}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for i := 1; i < len(got); i++ {
		if Quality(got[i-1], clk.Now()) < Quality(got[i], clk.Now()) {
			t.Fatal("Select with epsilon 0 is not sorted by quality")
		}
	}
	if got := c.Select(2); len(got) != 2 || got[0].Peer != best || got[1].Peer != flaky {
		t.Fatalf("Select(2) = %v", got)
	}
	if c.Select(0) != nil || c.Select(-1) != nil {
		t.Fatal("Select(n<=0) returned entries")
	}
}

func TestRecordUpdatesEntry(t *testing.T) {
	clk := newClock()
	c := openCache(t, clk)
	p := peer(1)
	c.Record(p, "a", true, 80*time.Millisecond)
	t0 := clk.Now()
	clk.Advance(time.Minute)
	c.Record(p, "a", true, 160*time.Millisecond)
	c.Record(p, "a", false, 5*time.Second) // failure: RTT ignored, LastSeen kept
	e, ok := c.Get(p, "a")
	if !ok {
		t.Fatal("entry missing")
	}
	if e.Successes != 2 || e.Failures != 1 {
		t.Fatalf("counts %d/%d", e.Successes, e.Failures)
	}
	if want := 90 * time.Millisecond; e.RTT != want { // 80 + (160-80)/8
		t.Fatalf("RTT %v, want %v", e.RTT, want)
	}
	if !e.LastSeen.Equal(t0.Add(time.Minute)) {
		t.Fatalf("LastSeen %v", e.LastSeen)
	}
	c.Record(p, "b", false, 0)
	if c.Len() != 2 {
		t.Fatalf("Len %d", c.Len())
	}
	// Select returns one entry per peer, its best address.
	if got := c.Select(5); len(got) != 1 || got[0].Addr != "a" {
		t.Fatalf("Select = %v", got)
	}
	c.Record(p, "a", true, 10*time.Hour) // capped at MaxRTT
	if e, _ := c.Get(p, "a"); e.RTT != 90*time.Millisecond+(MaxRTT-90*time.Millisecond)/8 {
		t.Fatalf("RTT after huge sample: %v", e.RTT)
	}
	// Now "a" is so slow that the never-reached "b" ranks above it.
	if got := c.Select(5); len(got) != 1 || got[0].Addr != "b" {
		t.Fatalf("Select = %v", got)
	}
	// Invalid input is ignored and counted.
	c.Record(identity.PeerID{}, "x", true, 0)
	c.Record(p, "", true, 0)
	c.Record(p, string(make([]byte, MaxAddrLen+1)), true, 0)
	if c.Len() != 2 || c.Stats().Rejected != 3 {
		t.Fatalf("Len %d, rejected %d", c.Len(), c.Stats().Rejected)
	}
	c.Remove(p)
	if c.Len() != 0 || len(c.Select(1)) != 0 {
		t.Fatal("Remove left entries")
	}
	c.Remove(p) // idempotent
	if c.Len() != 0 {
		t.Fatal("double Remove changed Len")
	}
}

// Over 10,000 single picks among 100 peers, the share of picks that are not
// the best peer is epsilon*(99/100) (a random pick hits the best 1% of the
// time), and exploration reaches most peers.
func TestEpsilonGreedyStatistics(t *testing.T) {
	for _, eps := range []float64{0.1, 0.3} {
		clk := newClock()
		c := openCache(t, clk)
		if eps != DefaultEpsilon {
			if err := c.SetEpsilon(eps); err != nil {
				t.Fatal(err)
			}
		}
		const peers, picks = 100, 10000
		for i := range peers {
			c.Record(peer(i), "127.0.0.1:9", true, time.Duration(i+1)*time.Millisecond)
		}
		best := peer(0)
		other := 0
		hit := map[identity.PeerID]int{}
		for range picks {
			e := c.Select(1)[0]
			if e.Peer != best {
				other++
				hit[e.Peer]++
			}
		}
		want := eps * (peers - 1) / peers * picks
		sd := math.Sqrt(picks * (want / picks) * (1 - want/picks))
		if math.Abs(float64(other)-want) > 4*sd {
			t.Fatalf("eps=%v: %d non-best picks, want %.0f ± %.0f", eps, other, want, 4*sd)
		}
		if len(hit) < 90 {
			t.Fatalf("eps=%v: exploration reached only %d of %d peers", eps, len(hit), peers-1)
		}
		st := c.Stats()
		if st.Explored+st.Exploited != picks {
			t.Fatalf("stats %+v", st)
		}
		share := float64(st.Explored) / picks
		if math.Abs(share-eps) > 4*math.Sqrt(eps*(1-eps)/picks) {
			t.Fatalf("eps=%v: exploration share %.4f", eps, share)
		}
	}
}

func TestEpsilonBounds(t *testing.T) {
	c := openCache(t, newClock())
	for _, bad := range []float64{-0.1, 1.1, math.NaN(), math.Inf(1)} {
		if err := c.SetEpsilon(bad); !errors.Is(err, ErrInvalidParams) {
			t.Fatalf("SetEpsilon(%v) = %v", bad, err)
		}
	}
	// epsilon 1: every pick is random, so over many multi-picks the best is
	// not always first.
	if err := c.SetEpsilon(1); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		c.Record(peer(i), "a", true, time.Duration(i+1)*time.Millisecond)
	}
	firstBest := 0
	for range 200 {
		got := c.Select(10)
		if len(got) != 10 {
			t.Fatalf("Select(10) returned %d", len(got))
		}
		seen := map[identity.PeerID]bool{}
		for _, e := range got {
			if seen[e.Peer] {
				t.Fatal("Select returned a peer twice")
			}
			seen[e.Peer] = true
		}
		if got[0].Peer == peer(0) {
			firstBest++
		}
	}
	if firstBest > 60 { // expected 20 of 200
		t.Fatalf("with epsilon 1 the best came first %d/200 times", firstBest)
	}
}

func TestDeterministicForSeed(t *testing.T) {
	run := func() []identity.PeerID {
		clk := newClock()
		c, err := Open(filepath.Join(t.TempDir(), "p"), seeded(42), clk)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			c.Record(peer(i), "a", i%3 != 0, time.Duration(i)*time.Millisecond)
		}
		var out []identity.PeerID
		for range 100 {
			for _, e := range c.Select(3) {
				out = append(out, e.Peer)
			}
		}
		return out
	}
	first, second := run(), run()
	if len(first) != 300 || fmt.Sprint(first) != fmt.Sprint(second) {
		t.Fatal("same seed, different selections")
	}
}

func TestBoundedSize(t *testing.T) {
	clk := newClock()
	c, err := OpenWith(filepath.Join(t.TempDir(), "p"), Options{Rand: seeded(1), Clock: clk, MaxEntries: 16})
	if err != nil {
		t.Fatal(err)
	}
	// Peers 0..39 with quality increasing in i (lower RTT).
	for i := range 40 {
		c.Record(peer(i), "a", true, time.Duration(1000-i)*time.Millisecond)
	}
	if c.Len() != 16 {
		t.Fatalf("Len %d, want 16", c.Len())
	}
	for _, e := range c.Entries() {
		if int(e.Peer[31]) < 24 {
			t.Fatalf("kept peer %d, but only the best 16 (24..39) should remain", e.Peer[31])
		}
	}
	// A newcomer worse than everyone is not inserted (and counted).
	before := c.Stats().Evicted
	c.Record(peer(100), "a", false, 0)
	if _, ok := c.Get(peer(100), "a"); ok || c.Len() != 16 || c.Stats().Evicted != before+1 {
		t.Fatal("worst newcomer was inserted")
	}
	// A good newcomer evicts the worst.
	c.Record(peer(101), "a", true, time.Millisecond)
	if _, ok := c.Get(peer(101), "a"); !ok || c.Len() != 16 {
		t.Fatal("good newcomer not inserted")
	}
	if _, ok := c.Get(peer(24), "a"); ok {
		t.Fatal("worst entry not evicted")
	}

	// Per-peer address bound.
	c2 := openCache(t, clk)
	for i := range 20 {
		c2.Record(peer(1), fmt.Sprintf("127.0.0.%d:1", i), true, time.Duration(100-i)*time.Millisecond)
	}
	if c2.Len() != MaxAddrsPerPeer {
		t.Fatalf("one peer holds %d addresses, want %d", c2.Len(), MaxAddrsPerPeer)
	}
	for _, e := range c2.Entries() {
		var i int
		if _, err := fmt.Sscanf(e.Addr, "127.0.0.%d:1", &i); err != nil || i < 20-MaxAddrsPerPeer {
			t.Fatalf("kept address %s, not among the best", e.Addr)
		}
	}
}

func TestPersistenceRoundTrip(t *testing.T) {
	clk := newClock()
	path := filepath.Join(t.TempDir(), "sub", "peers.cbor")
	c, err := Open(path, seeded(1), clk)
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != 0 {
		t.Fatal("missing file did not give an empty cache")
	}
	for i := range 30 {
		c.Record(peer(i), fmt.Sprintf("127.0.0.1:%d", 1000+i), i%4 != 0, time.Duration(i)*time.Millisecond)
		c.Record(peer(i), fmt.Sprintf("[::1]:%d", 1000+i), false, 0)
		c.RecordServices(peer(i), fmt.Sprintf("127.0.0.1:%d", 1000+i), uint8(i%4))
		clk.Advance(time.Second)
	}
	c.RecordServices(peer(99), "127.0.0.1:1", 3) // unknown: ignored
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("directory holds %v", ents)
	}
	c2, err := Open(path, seeded(2), clk)
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Entries(), c2.Entries()
	if len(a) != 60 || len(a) != len(b) {
		t.Fatalf("saved %d, loaded %d", len(a), len(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Peer != y.Peer || x.Addr != y.Addr || x.Successes != y.Successes || x.Failures != y.Failures ||
			x.RTT != y.RTT || !x.LastSeen.Equal(y.LastSeen) || x.LastSeen.IsZero() != y.LastSeen.IsZero() ||
			x.Services != y.Services {
			t.Fatalf("entry %d: saved %+v, loaded %+v", i, x, y)
		}
	}
	// The roles are remembered: peers i%4 == 3 offered both services, but
	// only those with a success count (i%4 != 0 holds for all of them).
	both := c2.WithServices(3, 100)
	if len(both) != 7 {
		t.Fatalf("%d entries with both services, want 7", len(both))
	}
	for i, e := range both {
		if e.Services != 3 || e.Addr[:9] != "127.0.0.1" {
			t.Fatalf("WithServices entry %+v", e)
		}
		if i > 0 && Quality(e, clk.Now()) > Quality(both[i-1], clk.Now()) {
			t.Fatal("WithServices not ordered best first")
		}
	}
	if got := c2.WithServices(3, 2); len(got) != 2 || c2.WithServices(0, 5) != nil {
		t.Fatal("WithServices bounds")
	}
	// A second save replaces the file.
	c2.Remove(peer(0))
	if err := c2.Save(); err != nil {
		t.Fatal(err)
	}
	c3, err := Open(path, seeded(3), clk)
	if err != nil || c3.Len() != 58 {
		t.Fatalf("after re-save: %v, Len %d", err, c3.Len())
	}
}

func TestLoadAppliesBounds(t *testing.T) {
	clk := newClock()
	path := filepath.Join(t.TempDir(), "p")
	c, _ := Open(path, seeded(1), clk)
	for i := range 50 {
		c.Record(peer(i), "a", true, time.Duration(100-i)*time.Millisecond)
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	small, err := OpenWith(path, Options{Rand: seeded(1), Clock: clk, MaxEntries: 10})
	if err != nil {
		t.Fatal(err)
	}
	if small.Len() != 10 || small.Entries()[0].Peer != peer(49) {
		t.Fatalf("Len %d", small.Len())
	}
}

func TestCorruptFile(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	good := func() []byte {
		c, _ := Open(filepath.Join(dir, "good"), seeded(1), clk)
		c.Record(peer(1), "a", true, time.Millisecond)
		c.Record(peer(2), "b", true, time.Millisecond)
		if err := c.Save(); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "good"))
		return b
	}()
	shellWith := func(v uint64, body any) []byte {
		b, err := wire.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		out, err := wire.Marshal(fileShell{Magic: fileMagic, Version: v, Body: b})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	entry := func(p []byte, addr string, rtt int64) fileEntry {
		return fileEntry{Peer: p, Addr: addr, Successes: 1, RTT: rtt, LastSeen: 1}
	}
	p1 := peer(1)
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", []byte{}, ErrCorrupt},
		{"truncated", good[:len(good)-3], ErrCorrupt},
		{"garbage", []byte("hello world"), ErrCorrupt},
		{"wrong magic", func() []byte { b, _ := wire.Marshal(fileShell{Magic: "x", Version: 1}); return b }(), ErrCorrupt},
		{"version 0", shellWith(0, fileBody{}), ErrCorrupt},
		{"version 2", shellWith(2, "anything"), ErrUnsupportedVersion},
		{"bad body", shellWith(1, 12), ErrCorrupt},
		{"short peer", shellWith(1, fileBody{Entries: []fileEntry{entry(p1[:31], "a", 0)}}), ErrCorrupt},
		{"zero peer", shellWith(1, fileBody{Entries: []fileEntry{entry(make([]byte, 32), "a", 0)}}), ErrCorrupt},
		{"empty addr", shellWith(1, fileBody{Entries: []fileEntry{entry(p1[:], "", 0)}}), ErrCorrupt},
		{"negative rtt", shellWith(1, fileBody{Entries: []fileEntry{entry(p1[:], "a", -1)}}), ErrCorrupt},
		{"duplicate", shellWith(1, fileBody{Entries: []fileEntry{entry(p1[:], "a", 0), entry(p1[:], "a", 0)}}), ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "peers")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path, seeded(1), clk)
			var fe *FileError
			if !errors.Is(err, tc.want) || !errors.As(err, &fe) || fe.Path != path {
				t.Fatalf("Open: %v, want a *FileError for %s wrapping %v", err, path, tc.want)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, tc.data) {
				t.Fatal("corrupt file was modified by Open")
			}
			c, moved, err := OpenOrReset(path, seeded(1), clk)
			if err != nil || c.Len() != 0 || moved != path+".corrupt" {
				t.Fatalf("OpenOrReset: %v, moved %q", err, moved)
			}
			if got, _ := os.ReadFile(moved); !bytes.Equal(got, tc.data) {
				t.Fatal("moved file differs")
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("bad file still in place")
			}
			// A second bad file does not overwrite the first one moved aside.
			if err := os.WriteFile(path, []byte("again"), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, moved2, err := OpenOrReset(path, seeded(1), clk); err != nil || moved2 != path+".corrupt.1" {
				t.Fatalf("second reset: %v, %q", err, moved2)
			}
			if got, _ := os.ReadFile(moved); !bytes.Equal(got, tc.data) {
				t.Fatal("first moved file was overwritten")
			}
		})
	}
	// OpenOrReset of a good file loads it and moves nothing.
	c, moved, err := OpenOrReset(filepath.Join(dir, "good"), seeded(1), clk)
	if err != nil || moved != "" || c.Len() != 2 {
		t.Fatalf("good file: %v, %q, %d", err, moved, c.Len())
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open("", nil, nil); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("empty path: %v", err)
	}
	if _, err := OpenWith("p", Options{MaxEntries: -1}); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("negative MaxEntries: %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "p"), bytes.NewReader(nil), nil); err == nil {
		t.Fatal("exhausted rand accepted")
	}
	// Defaults (crypto/rand, real clock) work.
	c, err := Open(filepath.Join(t.TempDir(), "p"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Record(peer(1), "a", true, time.Millisecond)
	if e, _ := c.Get(peer(1), "a"); e.LastSeen.IsZero() {
		t.Fatal("real clock not used")
	}
	// Open and Save report the path when it cannot be used.
	blocker := filepath.Join(t.TempDir(), "file")
	path := filepath.Join(blocker, "peers")
	bad, err := Open(path, nil, nil) // blocker does not exist yet: empty cache
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var fe *FileError
	if err := bad.Save(); !errors.As(err, &fe) || fe.Path != path {
		t.Fatalf("Save under a file: %v", err)
	}
	if _, err := Open(path, nil, nil); !errors.As(err, &fe) || fe.Path != path {
		t.Fatalf("Open under a file: %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	clk := newClock()
	path := filepath.Join(t.TempDir(), "p")
	c, err := OpenWith(path, Options{Rand: seeded(1), Clock: clk, MaxEntries: 64})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				p := peer(g*1000 + i%100)
				c.Record(p, "a", i%5 != 0, time.Duration(i)*time.Microsecond)
				if i%10 == 0 {
					_ = c.Select(5)
				}
				if i%50 == 0 {
					if err := c.Save(); err != nil {
						t.Error(err)
						return
					}
				}
				if i%97 == 0 {
					c.Remove(p)
				}
			}
		}()
	}
	wg.Wait()
	if c.Len() > 64 {
		t.Fatalf("Len %d over bound", c.Len())
	}
	n := 0
	for range c.Entries() {
		n++
	}
	if n != c.Len() {
		t.Fatalf("Entries %d, Len %d", n, c.Len())
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	c2, err := Open(path, seeded(1), clk)
	if err != nil || c2.Len() != c.Len() {
		t.Fatalf("reload: %v, %d vs %d", err, c2.Len(), c.Len())
	}
}

func FuzzDecodeFile(f *testing.F) {
	good, err := encodeFile([]Entry{
		{Peer: peer(1), Addr: "127.0.0.1:1", Successes: 3, Failures: 1, RTT: time.Millisecond, LastSeen: time.Unix(0, 5)},
		{Peer: peer(2), Addr: "[::1]:2"},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:20])
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := decodeFile(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		// Whatever decodes re-encodes to something that decodes the same.
		again, err := encodeFile(entries)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeFile(again)
		if err != nil {
			t.Fatalf("re-encoded file does not decode: %v", err)
		}
		if fmt.Sprint(back) != fmt.Sprint(entries) {
			t.Fatal("round trip changed entries")
		}
	})
}

func BenchmarkSelect5Of1024(b *testing.B) {
	clk := newClock()
	c := openCache(b, clk)
	for i := range DefaultMaxEntries {
		c.Record(peer(i), "127.0.0.1:1", i%3 != 0, time.Duration(i)*time.Millisecond)
	}
	b.ResetTimer()
	for b.Loop() {
		_ = c.Select(5)
	}
}

func BenchmarkRecordFullCache(b *testing.B) {
	clk := newClock()
	c := openCache(b, clk)
	for i := range DefaultMaxEntries {
		c.Record(peer(i), "127.0.0.1:1", true, time.Duration(i)*time.Millisecond)
	}
	i := 0
	b.ResetTimer()
	for b.Loop() {
		// Alternate existing-entry updates and newcomers that force an eviction scan.
		c.Record(peer(DefaultMaxEntries+i), "127.0.0.1:1", true, time.Millisecond)
		c.Record(peer(i%DefaultMaxEntries), "127.0.0.1:1", true, time.Millisecond)
		i++
	}
}
