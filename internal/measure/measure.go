// Package measure holds the helpers benchmarks and the soak share: the
// process's memory and CPU figures and latency percentiles.
package measure

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"time"
)

// PercentileMs returns the p-quantile (0..1) of sorted latencies in
// milliseconds (0 for none).
func PercentileMs(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[min(len(sorted)-1, int(p*float64(len(sorted))))].Microseconds()) / 1000
}

// Bytes returns the /proc/self/status field (a "kB" figure such as
// "VmRSS" or "VmHWM") in bytes, or 0 if it cannot be read.
func Bytes(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), field+":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}

// Figure is one measured figure as the tools and `make bench` print it,
// one JSON object per line.
type Figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}
