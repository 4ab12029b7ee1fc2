package defaults

import (
	"testing"
	"time"
)

func TestPositive(t *testing.T) {
	a, b, c := 0, -3, 7
	Positive(&a, 5)
	Positive(&b, 5)
	Positive(&c, 5)
	if a != 5 || b != 5 || c != 7 {
		t.Fatalf("got %d %d %d", a, b, c)
	}
	var d time.Duration
	Positive(&d, time.Second)
	if d != time.Second {
		t.Fatal(d)
	}
}
