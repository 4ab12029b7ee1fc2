package crdt

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/wire"
)

// BenchmarkRGATraceReplay replays the automerge-paper editing trace
// (259,778 single-character inserts and deletes, crdt-benchmarks B4) on a
// fresh RGA per iteration through InsertAt/RemoveAt, producing a delta per
// operation. It reports ops/s and the heap bytes held by the replica after
// the replay (runtime.MemStats.HeapAlloc after GC, minus the baseline).
func BenchmarkRGATraceReplay(b *testing.B) {
	tr := loadTrace(b)
	var heap uint64
	var ops int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		r := NewRGA[rune](rid(1), RGAOptions{})
		b.StartTimer()
		n, err := replay(r, tr, nil)
		if err != nil {
			b.Fatal(err)
		}
		ops += n
		b.StopTimer()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		heap = after.HeapAlloc - before.HeapAlloc
		if r.Len() != len(tr.end) {
			b.Fatalf("length %d, want %d", r.Len(), len(tr.end))
		}
		runtime.KeepAlive(r)
		b.StartTimer()
	}
	b.ReportMetric(float64(ops)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(heap), "heap-bytes")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRGATraceMerge applies the trace's deltas, produced by one
// replica, to another replica (the remote-apply path), and reports their
// mean encoded size.
func BenchmarkRGATraceMerge(b *testing.B) {
	tr := loadTrace(b)
	src := NewRGA[rune](rid(1), RGAOptions{})
	var deltas []*RGADelta[rune]
	if _, err := replay(src, tr, func(d *RGADelta[rune]) { deltas = append(deltas, d) }); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		dst := NewRGA[rune](rid(2), RGAOptions{})
		for _, d := range deltas {
			if err := dst.Merge(d); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(deltas))/time.Since(start).Seconds(), "ops/s")
	b.ReportMetric(0, "ns/op")
	b.StopTimer()
	b.ReportMetric(meanEncodedSize(b, deltas), "bytes/delta")
}

// reportThroughput reports ops/s for n operations over the benchmark's
// elapsed time and hides the default ns/op (ops/s is the figure of merit).
func reportThroughput(b *testing.B, n int) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(0, "ns/op")
}

// meanEncodedSize returns the mean wire size of the values.
func meanEncodedSize[D any](b *testing.B, ds []D) float64 {
	total := 0
	for _, d := range ds {
		raw, err := wire.Marshal(d)
		if err != nil {
			b.Fatal(err)
		}
		total += len(raw)
	}
	return float64(total) / float64(len(ds))
}

// orsetOps performs n checkbox-like operations on s (adds of one of 8
// values, with one remove in four) and returns the deltas.
func orsetOps(b *testing.B, s *ORSet[string], n int, rng *rand.Rand) []*ORSetDelta[string] {
	vals := make([]string, 8)
	for i := range vals {
		vals[i] = fmt.Sprintf("claimed:%d", i)
	}
	ds := make([]*ORSetDelta[string], 0, n)
	for i := 0; i < n; i++ {
		v := vals[rng.IntN(len(vals))]
		if rng.IntN(4) == 0 {
			ds = append(ds, s.Remove(v))
			continue
		}
		d, err := s.Add(v)
		if err != nil {
			b.Fatal(err)
		}
		ds = append(ds, d)
	}
	return ds
}

// BenchmarkORSetApply measures local OR-Set operations (each returns a
// delta) and reports the mean encoded delta size.
func BenchmarkORSetApply(b *testing.B) {
	s := NewORSet[string](rid(1))
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	orsetOps(b, s, b.N, rng)
	reportThroughput(b, b.N)
	b.StopTimer()
	sample := orsetOps(b, NewORSet[string](rid(1)), 1000, rand.New(rand.NewPCG(3, 4)))
	b.ReportMetric(meanEncodedSize(b, sample), "bytes/delta")
}

// BenchmarkORSetMerge measures merging another replica's deltas.
func BenchmarkORSetMerge(b *testing.B) {
	ds := orsetOps(b, NewORSet[string](rid(1)), b.N, rand.New(rand.NewPCG(1, 2)))
	dst := NewORSet[string](rid(2))
	b.ResetTimer()
	for _, d := range ds {
		if err := dst.Merge(d); err != nil {
			b.Fatal(err)
		}
	}
	reportThroughput(b, b.N)
}

// BenchmarkORSetDecodeMerge measures the network path: decode a delta
// from the wire, then merge it.
func BenchmarkORSetDecodeMerge(b *testing.B) {
	ds := orsetOps(b, NewORSet[string](rid(1)), b.N, rand.New(rand.NewPCG(1, 2)))
	raws := make([][]byte, len(ds))
	for i, d := range ds {
		raws[i] = enc(b, d)
	}
	dst := NewORSet[string](rid(2))
	b.ResetTimer()
	for _, raw := range raws {
		var d ORSetDelta[string]
		if err := wire.Unmarshal(raw, &d, "orset"); err != nil {
			b.Fatal(err)
		}
		if err := dst.Merge(&d); err != nil {
			b.Fatal(err)
		}
	}
	reportThroughput(b, b.N)
}

// BenchmarkLWWApply measures LWW writes (HLC reading + write).
func BenchmarkLWWApply(b *testing.B) {
	h := NewHLC(newManualClock(1_700_000_000_000), rid(1), 0)
	var r LWWRegister[string]
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.Set(h, "a task title of typical length"); err != nil {
			b.Fatal(err)
		}
	}
	reportThroughput(b, b.N)
	b.StopTimer()
	b.ReportMetric(float64(len(enc(b, r))), "bytes/delta")
}

// BenchmarkLWWMerge measures merging writes from two replicas, half of
// which win.
func BenchmarkLWWMerge(b *testing.B) {
	ha := NewHLC(newManualClock(1_700_000_000_000), rid(1), 0)
	hb := NewHLC(newManualClock(1_700_000_000_000), rid(2), 0)
	var ra, rb LWWRegister[string]
	ds := make([]LWWRegister[string], b.N)
	for i := range ds {
		h, r := ha, &ra
		if i%2 == 1 {
			h, r = hb, &rb
		}
		d, err := r.Set(h, "title")
		if err != nil {
			b.Fatal(err)
		}
		ds[i] = d
	}
	var dst LWWRegister[string]
	b.ResetTimer()
	for _, d := range ds {
		if _, err := dst.Merge(d); err != nil {
			b.Fatal(err)
		}
	}
	reportThroughput(b, b.N)
}

// rgaOps performs n random edits on a document of about size elements:
// inserts and removes at random positions, with one move in eight.
func rgaOps(b *testing.B, r *RGA[rune], n int, rng *rand.Rand) []*RGADelta[rune] {
	ds := make([]*RGADelta[rune], 0, n)
	for i := 0; i < n; i++ {
		var d *RGADelta[rune]
		var err error
		switch k := rng.IntN(8); {
		case r.Len() < 2 || k < 4:
			_, d, err = r.InsertAt(rng.IntN(r.Len()+1), 'a'+rune(rng.IntN(26)))
		case k < 7:
			d, err = r.RemoveAt(rng.IntN(r.Len()))
		default:
			id, _, _ := r.At(rng.IntN(r.Len()))
			after, _, _ := r.At(rng.IntN(r.Len()))
			d, err = r.Move(id, after)
		}
		if err != nil {
			b.Fatal(err)
		}
		ds = append(ds, d)
	}
	return ds
}

// rgaPrefilled returns a replica holding size characters.
func rgaPrefilled(b *testing.B, size int) (*RGA[rune], []*RGADelta[rune]) {
	r := NewRGA[rune](rid(1), RGAOptions{})
	ds := make([]*RGADelta[rune], 0, size)
	for i := 0; i < size; i++ {
		_, d, err := r.InsertAt(i, 'x')
		if err != nil {
			b.Fatal(err)
		}
		ds = append(ds, d)
	}
	return r, ds
}

// BenchmarkRGAApply measures local random edits (insert, remove, move at
// random positions) on a 10,000-character document, and reports the mean
// encoded delta size.
func BenchmarkRGAApply(b *testing.B) {
	r, _ := rgaPrefilled(b, 10_000)
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	rgaOps(b, r, b.N, rng)
	reportThroughput(b, b.N)
	b.StopTimer()
	r2, _ := rgaPrefilled(b, 10_000)
	b.ReportMetric(meanEncodedSize(b, rgaOps(b, r2, 1000, rand.New(rand.NewPCG(3, 4)))), "bytes/delta")
}

// BenchmarkRGAMerge measures applying another replica's random-edit deltas.
func BenchmarkRGAMerge(b *testing.B) {
	src, pre := rgaPrefilled(b, 10_000)
	ds := rgaOps(b, src, b.N, rand.New(rand.NewPCG(1, 2)))
	dst := NewRGA[rune](rid(2), RGAOptions{})
	for _, d := range pre {
		if err := dst.Merge(d); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for _, d := range ds {
		if err := dst.Merge(d); err != nil {
			b.Fatal(err)
		}
	}
	reportThroughput(b, b.N)
}

// BenchmarkRGAStateMerge measures merging a full state (100,000 inserts
// plus 20,000 random edits) into an empty replica (late joiner), in
// operations per second, and reports the encoded state size per operation.
func BenchmarkRGAStateMerge(b *testing.B) {
	src, _ := rgaPrefilled(b, 100_000)
	rgaOps(b, src, 20_000, rand.New(rand.NewPCG(1, 2)))
	st := src.State()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst := NewRGA[rune](rid(2), RGAOptions{})
		if err := dst.Merge(st); err != nil {
			b.Fatal(err)
		}
	}
	reportThroughput(b, b.N*st.Len())
	b.StopTimer()
	b.ReportMetric(float64(len(enc(b, st)))/float64(st.Len()), "state-bytes/elem")
}
