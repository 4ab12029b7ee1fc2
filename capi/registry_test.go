package main

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRegistryHandlesAreTaggedAndNeverReused(t *testing.T) {
	r := newRegistry()
	a, err := r.add(kindAgent, "agent-1")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := r.add(kindConfig, "config-1")
	if a>>kindShift != uint64(kindAgent) || c>>kindShift != uint64(kindConfig) {
		t.Fatalf("handles %#x %#x not tagged with their kind", a, c)
	}
	if obj, err := r.get(a, kindAgent); err != nil || obj != "agent-1" {
		t.Fatalf("get = %v, %v", obj, err)
	}
	cases := []struct {
		h    uint64
		k    handleKind
		want string
	}{
		{0, kindAgent, "null handle"},
		{a, kindConfig, "it is a agent handle"},
		{c, kindIdentity, "it is a config handle"},
		{0x7f<<kindShift | 1, kindAgent, "not a handle issued"},
		{uint64(kindAgent)<<kindShift | 999, kindAgent, "not a handle issued"},
	}
	for _, tc := range cases {
		_, err := r.get(tc.h, tc.k)
		var he *handleError
		if !errors.As(err, &he) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("get(%#x, %v) = %v, want handleError containing %q", tc.h, tc.k, err, tc.want)
		}
		if classify(err) != statusInvalidHandle {
			t.Errorf("classify(%v) = %d", err, classify(err))
		}
	}
	if _, err := r.remove(a, kindAgent); err != nil {
		t.Fatal(err)
	}
	if _, err := r.remove(a, kindAgent); err == nil || !strings.Contains(err.Error(), "already destroyed") {
		t.Fatalf("second remove = %v", err)
	}
	b, _ := r.add(kindAgent, "agent-2")
	if b == a || b&seqMask <= c&seqMask {
		t.Fatalf("new handle %#x reuses or precedes old ones (%#x, %#x)", b, a, c)
	}
	if _, err := r.get(a, kindAgent); err == nil {
		t.Fatal("stale handle resolves after a new object was added")
	}
}

func TestRegistryConcurrentRemoveSucceedsOnce(t *testing.T) {
	r := newRegistry()
	h, _ := r.add(kindIdentity, 1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.remove(h, kindIdentity); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 1 || r.live() != 0 {
		t.Fatalf("%d removals succeeded, %d live", ok, r.live())
	}
}

func TestRegistryExhaustion(t *testing.T) {
	r := newRegistry()
	r.next = seqMask
	if _, err := r.add(kindAgent, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := r.add(kindAgent, 2); err == nil {
		t.Fatal("add beyond the sequence space succeeded (would wrap and reuse)")
	}
}
