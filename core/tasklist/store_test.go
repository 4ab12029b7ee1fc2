package tasklist

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	st, err := OpenStore(filepath.Join(dir, "tasks.db"))
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func storedDeltas(t tb, st *Store, id ListID) int {
	t.Helper()
	lists, err := st.Lists()
	if err != nil {
		t.Fatalf("Lists: %v", err)
	}
	for _, l := range lists {
		if l.ID == id {
			return l.Deltas
		}
	}
	return 0
}

func TestPersistenceSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	h := newHub(true)
	a := h.open(t, 1, ListID{1}, "persisted", st, nil)
	b := h.open(t, 2, ListID{1}, "", nil, nil)
	settle(t, h, a, b)
	x, _ := a.l.Add("x", "d")
	y, _ := b.l.Add("y", "")
	settle(t, h, a, b)
	_ = a.l.Claim(y)
	_ = b.l.Move(y, nil)
	s := "x2"
	_ = a.l.Update(x, Update{Title: &s})
	settle(t, h, a, b)
	want := a.l.Snapshot()
	wantVV := a.l.VersionVector()
	_ = a.l.Close()

	// Same store, list closed and reopened (joining: no name given).
	l, err := Open(Config{ID: listOf(1, "persisted", 1), Self: key(1), Store: st, Clock: newTestClock(), Transport: nopTransport{}})
	if err != nil {
		t.Fatal(err)
	}
	if !equalTasks(l.Snapshot(), want) || !l.VersionVector().Equal(wantVV) || l.Name() != "persisted" {
		t.Fatalf("reopened: %s name %q", fmtTasks(l.Snapshot()), l.Name())
	}
	if l.Stats().Replayed != uint64(storedDeltas(t, st, listOf(1, "persisted", 1))) {
		t.Fatalf("replayed %d of %d", l.Stats().Replayed, storedDeltas(t, st, listOf(1, "persisted", 1)))
	}
	// Opening the same list twice on one store is refused.
	if _, err := Open(Config{ID: listOf(1, "persisted", 1), Self: key(1), Store: st, Transport: nopTransport{}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("second Open: %v", err)
	}
	// New local operations continue the sequence.
	if _, err := l.Add("z", ""); err != nil {
		t.Fatal(err)
	}
	want = l.Snapshot()
	_ = l.Close()
	_ = st.Close()

	// A new process: reopen the file.
	st2 := openStore(t, dir)
	lists, err := st2.Lists()
	if err != nil || len(lists) != 1 || lists[0].ID != listOf(1, "persisted", 1) || lists[0].Name != "persisted" {
		t.Fatalf("Lists = %+v, %v", lists, err)
	}
	l2, err := Open(Config{ID: listOf(1, "persisted", 1), Self: key(1), Store: st2, Clock: newTestClock(), Transport: nopTransport{}})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if !equalTasks(l2.Snapshot(), want) {
		t.Fatalf("after store reopen: %s", fmtTasks(l2.Snapshot()))
	}
	if err := l2.Complete(y); err != nil {
		t.Fatalf("claim did not survive: %v", err)
	}
}

func fileBytes(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStoreRejectsGarbageAndForeignFiles(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(garbage); !errors.Is(err, ErrStoreCorrupt) {
		t.Fatalf("garbage: %v", err)
	}
	if !bytes.Equal(fileBytes(t, garbage), bytes.Repeat([]byte("not a database "), 1000)) {
		t.Fatal("garbage file modified")
	}

	foreign := filepath.Join(dir, "foreign.db")
	db, err := bolt.Open(foreign, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("someone-else")); return err })
	_ = db.Close()
	before := fileBytes(t, foreign)
	if _, err := OpenStore(foreign); !errors.Is(err, ErrStoreForeign) {
		t.Fatalf("foreign: %v", err)
	}
	if !bytes.Equal(fileBytes(t, foreign), before) {
		t.Fatal("foreign file modified")
	}
}

// corruptRecord runs f on list id's bucket in the store file at path.
func corruptRecord(t *testing.T, path string, id ListID, f func(b *bolt.Bucket) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		return f(tx.Bucket(rootBucket).Bucket(listsBucket).Bucket(id[:]))
	}); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptListRecordsAreTypedErrors(t *testing.T) {
	for name, damage := range map[string]func(b *bolt.Bucket) error{
		"garbage delta": func(b *bolt.Bucket) error {
			k, _ := b.Bucket(deltaBucket).Cursor().Last()
			return b.Bucket(deltaBucket).Put(k, []byte{0xff, 0x00})
		},
		"tampered delta": func(b *bolt.Bucket) error {
			d := b.Bucket(deltaBucket)
			k, v := d.Cursor().Last()
			v = slices.Clone(v)
			v[bytes.Index(v, []byte("title"))] ^= 1
			return d.Put(k, v)
		},
		"missing order record": func(b *bolt.Bucket) error {
			k, _ := b.Bucket(orderBucket).Cursor().First()
			return b.Bucket(orderBucket).Delete(k)
		},
		"out of causal order": func(b *bolt.Bucket) error {
			o := b.Bucket(orderBucket)
			c := o.Cursor()
			k1, v1 := c.First()
			k2, v2 := c.Next()
			v1, v2 = slices.Clone(v1), slices.Clone(v2)
			if err := o.Put(slices.Clone(k1), v2); err != nil {
				return err
			}
			return o.Put(slices.Clone(k2), v1)
		},
		"bad meta": func(b *bolt.Bucket) error { return b.Put(metaKey, []byte{0xa1}) },
		"wrong key": func(b *bolt.Bucket) error {
			k, _ := b.Bucket(keyBucket).Cursor().First()
			return b.Bucket(keyBucket).Put(k, key(9).Public().Bytes())
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "tasks.db")
			st, err := OpenStore(path)
			if err != nil {
				t.Fatal(err)
			}
			st.noSnapshots = true // damage to a log a snapshot covers is not read at Open (TestSnapshotDamage)
			l, err := Open(Config{ID: listOf(1, "n", 1), Name: "n", Nonce: [16]byte{1}, Self: key(1), Store: st, Clock: newTestClock(), Transport: nopTransport{}})
			if err != nil {
				t.Fatal(err)
			}
			_, _ = l.Add("title", "")
			_, _ = l.Add("title", "")
			_ = l.Close()
			_ = st.Close()
			corruptRecord(t, path, listOf(1, "n", 1), damage)
			before := fileBytes(t, path)
			st = openStore(t, dir)
			_, err = Open(Config{ID: listOf(1, "n", 1), Self: key(1), Store: st, Clock: newTestClock(), Transport: nopTransport{}})
			if name == "bad meta" {
				if _, lerr := st.Lists(); !errors.Is(lerr, ErrStoreCorrupt) {
					t.Fatalf("Lists with bad meta: %v", lerr)
				}
			}
			if !errors.Is(err, ErrStoreCorrupt) {
				t.Fatalf("Open: %v", err)
			}
			_ = st.Close()
			if !bytes.Equal(fileBytes(t, path), before) {
				t.Fatal("corrupt store was modified")
			}
		})
	}
}

const killEnv = "TASKLIST_KILL9_STORE"

// TestKill9Child is the child process of TestKill9: it adds tasks in a
// loop and reports each one once Add has returned (committed).
func TestKill9Child(t *testing.T) {
	path := os.Getenv(killEnv)
	if path == "" {
		t.Skip("child process of TestKill9")
	}
	st, err := OpenStore(path)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	l, err := Open(Config{ID: listOf(1, "crash", 7), Name: "crash", Nonce: [16]byte{7}, Self: key(1), Store: st, Transport: nopTransport{}})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		id, err := l.Add(fmt.Sprintf("task %d", i), strings.Repeat("d", i%200))
		if err != nil {
			fmt.Fprintln(w, "ERROR", err)
			_ = w.Flush()
			os.Exit(2)
		}
		if i%3 == 0 {
			_ = l.Claim(id)
		}
		fmt.Fprintln(w, "COMMITTED", hex.EncodeToString(id[:]))
		_ = w.Flush()
	}
}

func TestKill9MidWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "tasks.db")
	committed := map[TaskID]bool{}
	for round, stopAfter := range []int{15, 40, 7} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.count=1")
		cmd.Env = append(os.Environ(), killEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		n := 0
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "ERROR") {
				t.Fatalf("child: %s", line)
			}
			hexID, ok := strings.CutPrefix(line, "COMMITTED ")
			if !ok {
				continue
			}
			b, err := hex.DecodeString(hexID)
			if err != nil || len(b) != 32 {
				t.Fatalf("child line %q", line)
			}
			committed[TaskID(b)] = true
			if n++; n == stopAfter {
				// Kill while the child is in the middle of its next writes.
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
		}
		_ = cmd.Wait()
		if n < stopAfter {
			t.Fatalf("round %d: child reported only %d commits", round, n)
		}

		st, err := OpenStore(path)
		if err != nil {
			t.Fatalf("round %d: store after kill -9: %v", round, err)
		}
		l, err := Open(Config{ID: listOf(1, "crash", 7), Self: key(1), Store: st, Clock: newTestClock(), Transport: nopTransport{}})
		if err != nil {
			t.Fatalf("round %d: list after kill -9: %v", round, err)
		}
		have := map[TaskID]bool{}
		for _, task := range l.Snapshot() {
			have[task.ID] = true
		}
		for id := range committed {
			if !have[id] {
				t.Errorf("round %d: committed task %s lost", round, id.Short())
			}
		}
		if l.Name() != "crash" || l.Stats().Replayed != uint64(storedDeltas(t, st, listOf(1, "crash", 7))) {
			t.Errorf("round %d: name %q, replayed %d", round, l.Name(), l.Stats().Replayed)
		}
		_ = l.Close()
		_ = st.Close()
	}
}
