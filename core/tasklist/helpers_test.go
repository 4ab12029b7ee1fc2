package tasklist

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tb is what the helpers need from *testing.T and *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(f func())
}

// key returns a deterministic key pair for test agent n.
func key(n byte) *identity.KeyPair {
	var seed [32]byte
	seed[0], seed[31] = n, 0x5a
	return identity.KeyPairFromSeed(seed)
}

// testClock is a clock whose time moves only when the test says so; its
// timers never fire on their own (the tests drive sync explicitly).
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.UnixMilli(1_700_000_000_000)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type stopTimer struct{}

func (stopTimer) Stop() bool { return true }

func (c *testClock) AfterFunc(time.Duration, func()) clock.Timer { return stopTimer{} }

// msg is a message in flight on a hub.
type msg struct {
	from, to  identity.PeerID
	broadcast bool
	payload   []byte
}

// hub is an in-memory network of Lists. In auto mode messages are handed
// to the receiver at once; otherwise they queue until the test delivers
// them. Links can be cut (partitions).
type hub struct {
	mu     sync.Mutex
	auto   bool
	lists  map[identity.PeerID]*List
	ids    []identity.PeerID
	cut    map[[2]identity.PeerID]bool
	queue  []msg
	frames int // frames sent
	bytes  int // bytes sent
	maxLen int // largest frame

	created   map[ListID]ListID           // seed -> ID of the list created under it
	creators  map[ListID]*List            // seed -> the creator's replica
	openLists bool                        // lists are created open to every writer
	writers   func(identity.AgentID) bool // Config.Writers of every list
}

func newHub(auto bool) *hub {
	return &hub{auto: auto, lists: make(map[identity.PeerID]*List), cut: make(map[[2]identity.PeerID]bool),
		created: make(map[ListID]ListID), creators: make(map[ListID]*List), openLists: true}
}

func (h *hub) linked(a, b identity.PeerID) bool { return a != b && !h.cut[[2]identity.PeerID{a, b}] }

// setLink cuts or restores the link between a and b (both ways).
func (h *hub) setLink(a, b identity.PeerID, up bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cut[[2]identity.PeerID{a, b}] = !up
	h.cut[[2]identity.PeerID{b, a}] = !up
}

func (h *hub) push(m msg) {
	h.frames++
	h.bytes += len(m.payload)
	h.maxLen = max(h.maxLen, len(m.payload))
	if !h.auto {
		h.queue = append(h.queue, m)
		return
	}
	l := h.lists[m.to]
	h.mu.Unlock()
	deliver(l, m)
	h.mu.Lock()
}

func deliver(l *List, m msg) {
	if m.broadcast {
		l.HandleBroadcast(m.from, m.payload)
	} else {
		l.HandleDirect(m.from, m.payload)
	}
}

type hubTransport struct {
	h    *hub
	self identity.PeerID
}

func (t hubTransport) Broadcast(p []byte) error {
	t.h.mu.Lock()
	defer t.h.mu.Unlock()
	for _, id := range t.h.ids {
		if t.h.linked(t.self, id) {
			t.h.push(msg{from: t.self, to: id, broadcast: true, payload: p})
		}
	}
	return nil
}

func (t hubTransport) Send(to identity.PeerID, p []byte) error {
	t.h.mu.Lock()
	defer t.h.mu.Unlock()
	if t.h.linked(t.self, to) {
		t.h.push(msg{from: t.self, to: to, payload: p})
	}
	return nil
}

func (t hubTransport) Peers() []identity.PeerID {
	t.h.mu.Lock()
	defer t.h.mu.Unlock()
	var out []identity.PeerID
	for _, id := range t.h.ids {
		if t.h.linked(t.self, id) {
			out = append(out, id)
		}
	}
	return out
}

// replica is one member in a test network.
type replica struct {
	kp *identity.KeyPair
	id identity.PeerID
	l  *List
}

// listOf is the ID of the list agent n creates under name with nonce
// {seed}.
func listOf(n byte, name string, seed byte) ListID { return createdID(key(n), name, ListID{seed}) }

// createdID is the ID of the list agent kp creates under name with the
// nonce seed (the test's stand-in list name).
func createdID(kp *identity.KeyPair, name string, seed ListID) ListID {
	return NewListID(kp.ID(), name, [16]byte(seed[:16]))
}

// open adds a replica for agent n to the hub. The list is named by seed:
// the replica given a name creates it (open to every writer, so that
// tests of the CRDT semantics need no grants), the others join it, after
// its creator opened it.
func (h *hub) open(t tb, n byte, seed ListID, name string, st *Store, clk clock.Clock) *replica {
	t.Helper()
	kp := key(n)
	r := &replica{kp: kp, id: kp.ID()}
	if clk == nil {
		clk = newTestClock()
	}
	h.mu.Lock()
	listID, ok := h.created[seed]
	if name != "" && !ok {
		listID = createdID(kp, name, seed)
		h.created[seed] = listID
	} else if !ok {
		listID = seed
	}
	h.mu.Unlock()
	l, err := Open(Config{ID: listID, Name: name, Nonce: [16]byte(seed[:16]), OpenToAll: h.openLists, Writers: h.writers, Self: kp, Store: st, Clock: clk,
		Rand: rand.NewChaCha8([32]byte{n}), Transport: hubTransport{h, r.id}})
	if err != nil {
		t.Fatalf("Open agent %d: %v", n, err)
	}
	r.l = l
	h.mu.Lock()
	if c := h.creators[seed]; c != nil && name == "" {
		// A joiner has the list's creation (without which it may not
		// write), as if it had synced with the creator once.
		c.mu.Lock()
		init := rawsOf(c, c.selfID)[0]
		c.mu.Unlock()
		f, err := encodeFrame(&frameWire{T: frameDeltas, List: listID, Deltas: [][]byte{init}})
		if err != nil {
			t.Fatalf("%v", err)
		}
		l.handleFrame(true, c.selfID, f)
	}
	if name != "" {
		h.creators[seed] = l
	}
	h.lists[r.id] = l
	if !slices.Contains(h.ids, r.id) {
		h.ids = append(h.ids, r.id)
	}
	h.mu.Unlock()
	t.Cleanup(func() { _ = l.Close() })
	return r
}

// flushAll waits until every list has processed its inbox.
func flushAll(t tb, rs ...*replica) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range rs {
		if err := r.l.Flush(ctx); err != nil {
			t.Fatalf("Flush: %v", err)
		}
	}
}

// settle runs auto-mode traffic until quiet: every pair exchanges sync
// requests and every inbox is flushed, repeatedly until no frame moves.
func settle(t tb, h *hub, rs ...*replica) {
	t.Helper()
	for round := 0; round < 50; round++ {
		h.mu.Lock()
		before := h.frames
		h.mu.Unlock()
		for _, a := range rs {
			for _, b := range rs {
				if a != b {
					a.l.PeerUp(b.id)
				}
			}
		}
		for range 4 {
			flushAll(t, rs...)
		}
		h.mu.Lock()
		after := h.frames
		h.mu.Unlock()
		if after-before == len(rs)*(len(rs)-1) && converged(rs) {
			return
		}
	}
	t.Fatalf("network did not settle")
}

func converged(rs []*replica) bool {
	for _, r := range rs[1:] {
		if !r.l.VersionVector().Equal(rs[0].l.VersionVector()) {
			return false
		}
	}
	return true
}

// mustEqualSnapshots fails unless every replica shows the same tasks.
func mustEqualSnapshots(t tb, rs ...*replica) []Task {
	t.Helper()
	want := rs[0].l.Snapshot()
	for i, r := range rs[1:] {
		got := r.l.Snapshot()
		if !equalTasks(got, want) {
			t.Fatalf("replica %d snapshot differs from replica 0:\n got %s\nwant %s", i+1, fmtTasks(got), fmtTasks(want))
		}
		if r.l.Name() != rs[0].l.Name() {
			t.Fatalf("replica %d name %q, replica 0 %q", i+1, r.l.Name(), rs[0].l.Name())
		}
	}
	return want
}

func equalTasks(a, b []Task) bool {
	return slices.EqualFunc(a, b, func(x, y Task) bool {
		return x.ID == y.ID && x.Title == y.Title && x.Description == y.Description && x.Assignee == y.Assignee &&
			x.Priority == y.Priority && x.State == y.State && x.Claimant == y.Claimant &&
			slices.Equal(x.Claims, y.Claims) && x.CreatedBy == y.CreatedBy && x.CreatedAt.Equal(y.CreatedAt)
	})
}

func fmtTasks(ts []Task) string {
	s := "["
	for _, t := range ts {
		s += t.ID.Short() + ":" + t.Title + ":" + t.State.String() + " "
	}
	return s + "]"
}

func titles(ts []Task) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Title
	}
	return out
}

// nopTransport drops everything.
type nopTransport struct{}

func (nopTransport) Broadcast([]byte) error             { return nil }
func (nopTransport) Send(identity.PeerID, []byte) error { return nil }
func (nopTransport) Peers() []identity.PeerID           { return nil }
func openSolo(t tb, n byte, st *Store) *List {
	t.Helper()
	l, err := Open(Config{ID: listOf(n, "solo", 9), Name: "solo", Nonce: [16]byte{9}, Self: key(n), Store: st, Clock: newTestClock(), Transport: nopTransport{}})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// rawsOf returns a's applied signed deltas held in memory, in seq order
// (skipped ones left out); l.mu held.
func rawsOf(l *List, a identity.AgentID) [][]byte {
	var out [][]byte
	if g := l.logs[a]; g != nil {
		for _, sg := range g.segs {
			out = append(out, sg.raw...)
		}
	}
	return out
}
