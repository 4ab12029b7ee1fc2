package measure

import (
	"testing"
	"time"
)

func TestBytes(t *testing.T) {
	rss, peak := Bytes("VmRSS"), Bytes("VmHWM")
	if rss == 0 || peak < rss {
		t.Fatalf("VmRSS %d, VmHWM %d", rss, peak)
	}
	if Bytes("NoSuchField") != 0 {
		t.Fatal("an unknown field has a value")
	}
}

func TestPercentileMs(t *testing.T) {
	lats := []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 100 * time.Millisecond}
	if PercentileMs(lats, 0.5) != 3 || PercentileMs(lats, 1) != 100 || PercentileMs(lats, 0) != 1 || PercentileMs(nil, 0.5) != 0 {
		t.Fatalf("p50 %v p100 %v p0 %v", PercentileMs(lats, 0.5), PercentileMs(lats, 1), PercentileMs(lats, 0))
	}
}
