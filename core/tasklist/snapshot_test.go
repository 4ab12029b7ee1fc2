package tasklist

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/crdt"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
	bolt "go.etcd.io/bbolt"
	"pgregory.net/rapid"
)

// stateDump is the list's whole replicated state, canonically encoded
// (the snapshot encoding walks every map in sorted order), plus what the
// snapshot does not carry itself: the authors' keys.
func stateDump(t tb, l *List) []byte {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	return stateDumpLocked(t, l)
}

// stateDumpLocked is stateDump with l.mu held.
func stateDumpLocked(t tb, l *List) []byte {
	t.Helper()
	parts, err := l.encodeSnapshot()
	if err != nil {
		t.Fatalf("encodeSnapshot: %v", err)
	}
	out := bytes.Join(parts, []byte{0})
	for _, a := range l.vv.Replicas() {
		out = append(out, l.keys[a].Bytes()...)
	}
	// The slot index is derived, not encoded: compare it too.
	slots := slices.SortedFunc(maps.Keys(l.slots), func(x, y crdt.Dot) int { return x.Compare(y) })
	for _, d := range slots {
		id := l.slots[d]
		out = append(out, d.Replica[:]...)
		out = binary.BigEndian.AppendUint64(out, d.Counter)
		out = append(out, id[:]...)
	}
	return out
}

// recTransport records what a List sends.
type recTransport struct {
	mu   sync.Mutex
	sent [][]byte
}

func (r *recTransport) Broadcast(p []byte) error { return r.Send(identity.PeerID{}, p) }
func (r *recTransport) Send(_ identity.PeerID, p []byte) error {
	r.mu.Lock()
	r.sent = append(r.sent, p)
	r.mu.Unlock()
	return nil
}
func (r *recTransport) Peers() []identity.PeerID { return nil }

func copyFile(t tb, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatalf("%v", err)
	}
}

// TestPropertySnapshotEqualsReplay: three replicas (one persisted, with
// snapshots every few operations) make random operations, grant and
// revoke write access and exchange messages in random order, some left
// undelivered (so the persisted replica may hold pending deltas). The
// persisted list is then reopened three ways: from the snapshot written
// on Close, from a periodic snapshot plus the log after it, and by full
// replay. All three must equal the live state before Close, send the
// same bytes when asked for everything, and judge the other replicas'
// deltas, old and new, alike.
func TestPropertySnapshotEqualsReplay(t *testing.T) {
	root := t.TempDir()
	iter := 0
	rapid.Check(t, func(rt *rapid.T) {
		iter++
		dir := filepath.Join(root, fmt.Sprint(iter))
		if err := os.Mkdir(dir, 0o700); err != nil {
			rt.Fatalf("%v", err)
		}
		path := filepath.Join(dir, "tasks.db")
		st, err := OpenStore(path)
		if err != nil {
			rt.Fatalf("%v", err)
		}
		defer st.Close()
		h := newHub(false)
		h.openLists = rapid.Bool().Draw(rt, "open")
		clk := newTestClock()
		seed := ListID{77}
		a := h.open(rt, 1, seed, "snap", st, clk)
		a.l.mu.Lock()
		a.l.snapEvery = rapid.IntRange(1, 6).Draw(rt, "every")
		a.l.mu.Unlock()
		b := h.open(rt, 2, seed, "", nil, clk)
		c := h.open(rt, 3, seed, "", nil, clk)
		rs := []*replica{a, b, c}
		var tasks []TaskID
		pick := func(label string) TaskID {
			if len(tasks) == 0 {
				return TaskID{}
			}
			return tasks[rapid.IntRange(0, len(tasks)-1).Draw(rt, label)]
		}
		for range rapid.IntRange(5, 50).Draw(rt, "steps") {
			switch rapid.IntRange(0, 9).Draw(rt, "action") {
			case 0, 1, 2, 3, 4:
				l := rs[rapid.IntRange(0, 2).Draw(rt, "replica")].l
				id := pick("task")
				switch rapid.IntRange(0, 7).Draw(rt, "op") {
				case 0, 1:
					if nid, err := l.Add(fmt.Sprintf("t%d", len(tasks)), "d"); err == nil {
						tasks = append(tasks, nid)
					}
				case 2:
					s := rapid.SampledFrom([]string{"x", "y"}).Draw(rt, "title")
					who := rs[rapid.IntRange(0, 2).Draw(rt, "assignee")].kp.ID()
					_ = l.Update(id, Update{Title: &s, Assignee: &who})
				case 3:
					_ = l.Claim(id)
				case 4:
					_ = l.Complete(id)
				case 5:
					_ = l.Reopen(id)
				case 6:
					after := pick("after")
					_ = l.Move(id, &after)
				case 7:
					_ = l.Remove(id)
				}
			case 5:
				w := rs[rapid.IntRange(1, 2).Draw(rt, "writer")].kp.ID()
				if rapid.Bool().Draw(rt, "grant") {
					_ = a.l.AddWriter(w)
				} else {
					_ = a.l.RemoveWriter(w)
				}
			case 6:
				_ = a.l.SetOpen(rapid.Bool().Draw(rt, "setopen"))
			case 7, 8:
				deliverOne(rt, h, rapid.IntRange(0, 1<<20).Draw(rt, "msg"), true)
			case 9:
				clk.Advance(time.Duration(rapid.IntRange(1, 5).Draw(rt, "ms")) * time.Millisecond)
			}
		}
		for range rapid.IntRange(0, 20).Draw(rt, "more") {
			deliverOne(rt, h, rapid.IntRange(0, 1<<20).Draw(rt, "late"), true)
		}
		flushAll(rt, a)
		want := stateDump(rt, a.l)
		wantTasks, wantVV, wantAccess := a.l.Snapshot(), a.l.VersionVector(), a.l.Access()
		tailPath, replayPath := filepath.Join(dir, "tail.db"), filepath.Join(dir, "replay.db")
		copyFile(rt, path, tailPath) // the periodic snapshot and the log after it
		copyFile(rt, path, replayPath)
		_ = a.l.Close()

		open := func(p string, noSnap bool) (*List, *recTransport) {
			s := st
			if p != path {
				if s, err = OpenStore(p); err != nil {
					rt.Fatalf("%v", err)
				}
				rt.Cleanup(func() { _ = s.Close() })
				s.noSnapshots = noSnap
			}
			tr := &recTransport{}
			l, err := Open(Config{ID: a.l.ID(), Self: key(1), Store: s, Clock: clk, Transport: tr})
			if err != nil {
				rt.Fatalf("Open %s: %v", p, err)
			}
			rt.Cleanup(func() { _ = l.Close() })
			return l, tr
		}
		full, fullTr := open(path, false)
		tail, tailTr := open(tailPath, false)
		replay, replayTr := open(replayPath, true)
		if s := full.Stats(); s.FromSnapshot != s.Replayed || s.SnapshotErrors != 0 {
			rt.Fatalf("reopen after Close did not use its snapshot: %+v", s)
		}
		if s := replay.Stats(); s.FromSnapshot != 0 {
			rt.Fatalf("replay used a snapshot: %+v", s)
		}
		lists := []*List{full, tail, replay}
		for i, l := range lists {
			if got := stateDump(rt, l); !bytes.Equal(got, want) {
				rt.Fatalf("reopen %d: state differs from the live state", i)
			}
			if !equalTasks(l.Snapshot(), wantTasks) || !l.VersionVector().Equal(wantVV) ||
				!slices.Equal(l.Access().Writers, wantAccess.Writers) || l.Access().Open != wantAccess.Open {
				rt.Fatalf("reopen %d: view differs", i)
			}
		}
		// Everything the other replicas made, old and new, delivered to
		// each reopened list; then a catch-up request for everything.
		var raws [][]byte
		for _, r := range rs[1:] {
			r.l.mu.Lock()
			for _, as := range r.l.order {
				raw, _ := r.l.logs[as.author].rawAt(as.seq)
				raws = append(raws, raw)
			}
			r.l.mu.Unlock()
		}
		frame, err := encodeFrame(&frameWire{T: frameDeltas, List: a.l.ID(), Deltas: raws})
		if err != nil {
			rt.Fatalf("%v", err)
		}
		var empty identity.PeerID
		req, err := encodeFrame(&frameWire{T: frameRequest, List: a.l.ID(), VV: &crdt.VersionVector{}})
		if err != nil {
			rt.Fatalf("%v", err)
		}
		for _, l := range lists {
			l.handleFrame(true, empty, frame)
			l.handleFrame(true, empty, req)
		}
		want = stateDump(rt, replay)
		wantStats := replay.Stats()
		for i, l := range lists[:2] {
			if got := stateDump(rt, l); !bytes.Equal(got, want) {
				rt.Fatalf("reopen %d: state after more deltas differs from the replayed list's", i)
			}
			s := l.Stats()
			if s.Drops != wantStats.Drops || s.Duplicates != wantStats.Duplicates || s.RemoteOps != wantStats.RemoteOps {
				rt.Fatalf("reopen %d judged deltas differently: %+v, replay %+v", i, s, wantStats)
			}
		}
		for i, tr := range []*recTransport{fullTr, tailTr} {
			tr.mu.Lock()
			replayTr.mu.Lock()
			same := slices.EqualFunc(tr.sent, replayTr.sent, bytes.Equal)
			replayTr.mu.Unlock()
			tr.mu.Unlock()
			if !same {
				rt.Fatalf("reopen %d sent other bytes than the replayed list", i)
			}
		}
	})
}

// snapshotFixture persists a list with local and remote operations and a
// snapshot (written by Close); it returns the store path, the list ID and
// the state the list had.
func snapshotFixture(t *testing.T) (string, ListID, []byte, []Task) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "tasks.db")
	st, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	h := newHub(true)
	a := h.open(t, 1, ListID{5}, "fixture", st, nil)
	b := h.open(t, 2, ListID{5}, "", nil, nil)
	settle(t, h, a, b)
	x, _ := a.l.Add("task one", "d")
	y, _ := b.l.Add("task two", "")
	settle(t, h, a, b)
	_ = b.l.Claim(x)
	_ = a.l.Move(y, nil)
	s := "task one, edited"
	_ = a.l.Update(x, Update{Title: &s})
	settle(t, h, a, b)
	want, tasks := stateDump(t, a.l), a.l.Snapshot()
	_ = a.l.Close()
	_ = st.Close()
	return path, a.l.ID(), want, tasks
}

// TestSnapshotDamage: a snapshot that is torn, bit-flipped, of an unknown
// version or otherwise unusable is detected; Open replays the log and
// gets the same state, and a damaged log it cannot replay is
// ErrStoreCorrupt.
func TestSnapshotDamage(t *testing.T) {
	part0 := binary.BigEndian.AppendUint64(nil, 0)
	lastPart := func(b *bolt.Bucket) []byte {
		k, _ := b.Bucket(snapBucket).Cursor().Last()
		return slices.Clone(k)
	}
	header := func(b *bolt.Bucket) snapHeader {
		var h snapHeader
		if err := wire.Unmarshal(b.Get(snapHeaderKey), &h, "header"); err != nil {
			t.Fatal(err)
		}
		return h
	}
	putHeader := func(b *bolt.Bucket, h snapHeader) error {
		raw, err := wire.Marshal(h)
		if err != nil {
			return err
		}
		return b.Put(snapHeaderKey, raw)
	}
	for name, damage := range map[string]func(b *bolt.Bucket) error{
		"flipped title byte": func(b *bolt.Bucket) error {
			// Decodes fine: only the checksum can tell.
			sb := b.Bucket(snapBucket)
			k := lastPart(b)
			v := slices.Clone(sb.Get(k))
			i := bytes.Index(v, []byte("task one"))
			if i < 0 {
				return errors.New("title not found in the last part")
			}
			v[i] ^= 1
			return sb.Put(k, v)
		},
		"missing part": func(b *bolt.Bucket) error { return b.Bucket(snapBucket).Delete(lastPart(b)) },
		"torn header":  func(b *bolt.Bucket) error { return b.Put(snapHeaderKey, b.Get(snapHeaderKey)[:5]) },
		"unknown version": func(b *bolt.Bucket) error {
			h := header(b)
			h.V = snapshotVersion + 1
			h.Sum = nil
			return putHeader(b, h)
		},
		"covers more than the log": func(b *bolt.Bucket) error {
			h := header(b)
			h.Ops += 3
			h.Sum = nil
			parts := [][]byte{}
			for i := range h.Parts {
				parts = append(parts, b.Bucket(snapBucket).Get(binary.BigEndian.AppendUint64(nil, i)))
			}
			h.Sum = snapSum(h.V, h.Ops, parts)
			return putHeader(b, h)
		},
		"undecodable part, valid checksum": func(b *bolt.Bucket) error {
			h := header(b)
			sb := b.Bucket(snapBucket)
			if err := sb.Put(part0, []byte{0xa1, 0x63, 'b', 'a', 'd', 0x00}); err != nil {
				return err
			}
			parts := [][]byte{}
			for i := range h.Parts {
				parts = append(parts, sb.Get(binary.BigEndian.AppendUint64(nil, i)))
			}
			h.Sum = snapSum(h.V, h.Ops, parts)
			return putHeader(b, h)
		},
	} {
		t.Run(name, func(t *testing.T) {
			path, id, want, tasks := snapshotFixture(t)
			corruptRecord(t, path, id, damage)
			st := openStore(t, filepath.Dir(path))
			l, err := Open(Config{ID: id, Self: key(1), Store: st, Clock: newTestClock(), Transport: nopTransport{}})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer l.Close()
			s := l.Stats()
			if s.FromSnapshot != 0 || s.SnapshotErrors != 1 || s.Replayed == 0 {
				t.Fatalf("damaged snapshot was used: %+v", s)
			}
			if !bytes.Equal(stateDump(t, l), want) || !equalTasks(l.Snapshot(), tasks) {
				t.Fatalf("replayed state differs: %s", fmtTasks(l.Snapshot()))
			}
		})
	}
	t.Run("intact", func(t *testing.T) {
		path, id, want, _ := snapshotFixture(t)
		st := openStore(t, filepath.Dir(path))
		l, err := Open(Config{ID: id, Self: key(1), Store: st, Clock: newTestClock(), Transport: nopTransport{}})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if s := l.Stats(); s.FromSnapshot == 0 || s.FromSnapshot != s.Replayed || s.SnapshotErrors != 0 {
			t.Fatalf("snapshot not used: %+v", s)
		}
		if !bytes.Equal(stateDump(t, l), want) {
			t.Fatal("restored state differs")
		}
	})
	t.Run("snapshot and log both damaged", func(t *testing.T) {
		path, id, _, _ := snapshotFixture(t)
		corruptRecord(t, path, id, func(b *bolt.Bucket) error {
			if err := b.Put(snapHeaderKey, []byte{0xff}); err != nil {
				return err
			}
			k, _ := b.Bucket(deltaBucket).Cursor().Last()
			return b.Bucket(deltaBucket).Put(k, []byte{0xff, 0x00})
		})
		st := openStore(t, filepath.Dir(path))
		if _, err := Open(Config{ID: id, Self: key(1), Store: st, Clock: newTestClock(), Transport: nopTransport{}}); !errors.Is(err, ErrStoreCorrupt) {
			t.Fatalf("Open: %v", err)
		}
	})
}
