package main

import "testing"

// The lab's expectations: what must punch, and what each router is.
func TestExpectations(t *testing.T) {
	kinds := []string{"none", "full", "addr", "port", "sym", "double"}
	must := 0
	for _, a := range kinds {
		for _, b := range kinds {
			if punchable(a, b) {
				must++
			}
		}
	}
	// 36 ordered pairs; those with a symmetric side and no public side
	// (sym with full, addr, port, double, sym: 9 ordered pairs) may relay.
	if must != 27 {
		t.Fatalf("%d punchable pairs, want 27", must)
	}
	if punchable("sym", "port") || punchable("port", "sym") || !punchable("sym", "none") || !punchable("port", "double") {
		t.Fatal("punchable misclassifies a pair")
	}
	for kind, want := range map[string]string{"none": "none", "sym": "endpoint-dependent", "port": "endpoint-independent",
		"double": "endpoint-independent", "full": "endpoint-independent", "addr": "endpoint-independent"} {
		if got := expectedNAT(kind); got != want {
			t.Errorf("expectedNAT(%s) = %s, want %s", kind, got, want)
		}
	}
}
