package mls

import (
	"bytes"
	"reflect"
	"slices"
	"sync"
	"testing"
)

// memRegion is a range of memory [lo, hi) a value references.
type memRegion struct{ lo, hi uintptr }

// memWalker collects the memory a Group references: the backing arrays of
// slices, maps and pointed-to values. The suite (immutable, shared by
// design), the Config (its functions are shared by design), strings
// (immutable) and the mutex are skipped.
type memWalker struct {
	seen    map[uintptr]bool
	regions []memRegion
}

var (
	suiteType  = reflect.TypeFor[Suite]()
	configType = reflect.TypeFor[Config]()
	mutexType  = reflect.TypeFor[sync.Mutex]()
)

func (w *memWalker) add(p uintptr, size uintptr) {
	if size == 0 {
		size = 1
	}
	w.regions = append(w.regions, memRegion{p, p + size})
}

func (w *memWalker) walk(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		p := v.Pointer()
		w.add(p, v.Type().Elem().Size())
		if w.seen[p] {
			return
		}
		w.seen[p] = true
		w.walk(v.Elem())
	case reflect.Struct:
		if v.Type() == configType || v.Type() == mutexType {
			return
		}
		for i := range v.NumField() {
			w.walk(v.Field(i))
		}
	case reflect.Slice:
		if v.IsNil() || v.Cap() == 0 {
			return
		}
		w.add(v.Pointer(), uintptr(v.Cap())*v.Type().Elem().Size())
		for i := range v.Len() {
			w.walk(v.Index(i))
		}
	case reflect.Array:
		for i := range v.Len() {
			w.walk(v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() {
			return
		}
		w.add(v.Pointer(), 1)
		it := v.MapRange()
		for it.Next() {
			w.walk(it.Key())
			w.walk(it.Value())
		}
	case reflect.Interface:
		if v.Type() == suiteType || v.IsNil() {
			return
		}
		w.walk(v.Elem())
	}
}

// groupMemory returns the memory regions g references.
func groupMemory(g *Group) []memRegion {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := &memWalker{seen: map[uintptr]bool{}}
	w.walk(reflect.ValueOf(g).Elem())
	return w.regions
}

// checkNoSharedMemory fails if two groups reference overlapping memory.
func checkNoSharedMemory(t *testing.T, a, b *Group) {
	t.Helper()
	ra, rb := groupMemory(a), groupMemory(b)
	if len(ra) < 50 || len(rb) < 50 {
		t.Fatalf("memory walk found too little: %d and %d regions", len(ra), len(rb))
	}
	type tagged struct {
		memRegion
		side int
	}
	var all []tagged
	for _, r := range ra {
		all = append(all, tagged{r, 0})
	}
	for _, r := range rb {
		all = append(all, tagged{r, 1})
	}
	slices.SortFunc(all, func(x, y tagged) int {
		switch {
		case x.lo < y.lo:
			return -1
		case x.lo > y.lo:
			return 1
		}
		return 0
	})
	// Sweep: track the furthest end reached by each side.
	var end [2]uintptr
	for _, r := range all {
		if r.lo < end[1-r.side] {
			t.Fatalf("the two states share memory at %#x", r.lo)
		}
		end[r.side] = max(end[r.side], r.hi)
	}
}

// TestCloneForkChoice clones a member, lets the original and the clone
// follow two competing commits of the same epoch, and checks that both
// end in consistent, different epochs, that the clone copied the secret
// tree's out-of-order window, the proposal cache, this member's Update key
// and the past epochs, and that closing either leaves the other working.
func TestCloneForkChoice(t *testing.T) {
	cfg := &Config{PastEpochs: 1}
	tg := newTestGroup(t, 3, cfg)
	a, b, c := tg.groups[0], tg.groups[1], tg.groups[2]

	// A past epoch, a message kept in b's window, b's own Update proposal.
	res := mustCommit(t, a, nil)
	mustProcess(t, res.Commit, b, c)
	m1, err := c.Protect([]byte("one"), nil)
	must(t, "protect", err)
	m2, err := c.Protect([]byte("two"), nil)
	must(t, "protect", err)
	mustProcess(t, m2, b) // m1's key stays in b's window
	upd, err := b.ProposeUpdate()
	must(t, "update", err)
	mustProcess(t, upd, a, c)

	b2, err := b.Clone()
	must(t, "clone", err)
	defer b2.Close()
	checkNoSharedMemory(t, b, b2)
	if b2.Epoch() != b.Epoch() || b2.OwnIndex() != b.OwnIndex() || !b2.Active() {
		t.Fatal("clone differs")
	}
	checkInSync(t, b, b2)

	// Both decrypt m1 with their own copy of the window key.
	for _, g := range []*Group{b, b2} {
		if r := mustProcess(t, m1, g); string(r.ApplicationData) != "one" {
			t.Fatalf("window message: %+v", r)
		}
		_, err := g.Process(m1)
		wantErr(t, "replay", err, ErrReplay)
	}

	// Competing commits of the same epoch: a's (with b's Update) and c's.
	resA, err := a.Commit(nil)
	must(t, "commit a", err)
	resC, err := c.Commit(nil)
	must(t, "commit c", err)
	mustProcess(t, resA.Commit, b) // b follows a (wipes b's Update key)
	mustProcess(t, resC.Commit, b2)
	must(t, "merge a", a.MergePendingCommit())
	must(t, "merge c", c.MergePendingCommit())
	checkInSync(t, a, b)
	checkInSync(t, c, b2)
	authB, _ := b.EpochAuthenticator()
	authB2, _ := b2.EpochAuthenticator()
	if b.Epoch() != b2.Epoch() || bytes.Equal(authB, authB2) {
		t.Fatalf("forks: epochs %d and %d, authenticators equal: %v", b.Epoch(), b2.Epoch(), bytes.Equal(authB, authB2))
	}
	checkNoSharedMemory(t, b, b2)

	// A second clone of b, in a's fork, to use once b is closed.
	b3, err := b.Clone()
	must(t, "clone again", err)
	defer b3.Close()

	// Each fork's application messages decrypt in that fork only.
	ma, err := a.Protect([]byte("fork a"), nil)
	must(t, "protect", err)
	mc, err := c.Protect([]byte("fork c"), nil)
	must(t, "protect", err)
	mustProcess(t, ma, b)
	mustProcess(t, mc, b2)
	if _, err := b2.Process(ma); err == nil {
		t.Fatal("fork c decrypted fork a's message")
	}

	// Closing the original leaves the clone working, and vice versa.
	b.Close()
	if !b2.Active() || !b3.Active() {
		t.Fatal("closing the original deactivated a clone")
	}
	mustProcess(t, ma, b3)
	msg, err := b2.Protect([]byte("after close"), nil)
	must(t, "protect", err)
	if r := mustProcess(t, msg, c); string(r.ApplicationData) != "after close" {
		t.Fatalf("message of the clone: %+v", r)
	}
	b4, err := b2.Clone()
	must(t, "clone", err)
	b2.Close()
	res = mustCommit(t, b4, nil)
	mustProcess(t, res.Commit, c)
	checkInSync(t, b4, c)
	b4.Close()
}

// TestClonePendingCommit checks that the pending commit is not copied.
func TestClonePendingCommit(t *testing.T) {
	tg := newTestGroup(t, 2, nil)
	a, b := tg.groups[0], tg.groups[1]
	res, err := a.Commit(nil)
	must(t, "commit", err)
	a2, err := a.Clone()
	must(t, "clone", err)
	defer a2.Close()
	wantErr(t, "merge in the clone", a2.MergePendingCommit(), ErrPendingCommit)
	_, err = a2.Process(res.Commit)
	wantErr(t, "own commit in the clone", err, ErrOwnMessage)
	// The clone can commit on its own; the original merges its commit.
	res2, err := a2.Commit(nil)
	must(t, "commit in the clone", err)
	must(t, "merge", a.MergePendingCommit())
	mustProcess(t, res.Commit, b)
	checkInSync(t, a, b)
	must(t, "merge in the clone", a2.MergePendingCommit())
	if _, err := b.Process(res2.Commit); !isErr(err, ErrWrongEpoch) {
		t.Fatalf("the clone's commit of the old epoch: %v", err)
	}
	// Cloning an inactive member gives an inactive clone.
	b.Close()
	b2, err := b.Clone()
	must(t, "clone closed", err)
	if b2.Active() {
		t.Fatal("clone of a closed group is active")
	}
}

// TestCloneConcurrent clones and marshals a member while it processes
// messages (run with -race).
func TestCloneConcurrent(t *testing.T) {
	tg := newTestGroup(t, 2, nil)
	a, b := tg.groups[0], tg.groups[1]
	done := make(chan error, 1)
	go func() {
		for i := range 50 {
			msg, err := a.Protect([]byte{byte(i)}, nil)
			if err == nil {
				_, err = b.Process(msg)
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 20 {
		c, err := b.Clone()
		must(t, "clone", err)
		_, err = c.MarshalState()
		must(t, "marshal", err)
		c.Close()
		_, err = b.MarshalState()
		must(t, "marshal", err)
	}
	must(t, "messages", <-done)
}
