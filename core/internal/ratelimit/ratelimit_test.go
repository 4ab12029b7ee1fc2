package ratelimit

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := New(t0, 3)
	for i := range 3 {
		if !b.Take(t0, 1, 2, 3) {
			t.Fatalf("take %d of a burst of 3 refused", i)
		}
	}
	if b.Take(t0, 1, 2, 3) {
		t.Fatal("fourth take in the same instant allowed")
	}
	if b.Full(t0, 2, 3) {
		t.Fatal("empty bucket reported full")
	}
	// 2 tokens/s: after 500 ms exactly one more.
	t1 := t0.Add(500 * time.Millisecond)
	if !b.Take(t1, 1, 2, 3) || b.Take(t1, 1, 2, 3) {
		t.Fatal("refill after 500 ms is not one token")
	}
	// A long pause refills only up to the burst.
	t2 := t1.Add(time.Hour)
	if !b.Full(t2, 2, 3) || !b.Take(t2, 3, 2, 3) || b.Take(t2, 1, 2, 3) {
		t.Fatal("refill is not capped at the burst")
	}
	// Time going backwards never adds tokens.
	if b.Take(t0, 1, 2, 3) {
		t.Fatal("a clock step back added tokens")
	}
}
