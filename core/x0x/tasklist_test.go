package x0x

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

// waitSame polls until every list's snapshot equals the first one and has
// want tasks, and returns that snapshot.
func waitSame(t *testing.T, lists []*TaskList, want int) []Task {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		first := lists[0].Snapshot()
		same := len(first) == want
		for _, l := range lists[1:] {
			if !same {
				break
			}
			same = reflect.DeepEqual(first, l.Snapshot())
		}
		if same {
			return first
		}
		if time.Now().After(deadline) {
			for i, l := range lists {
				t.Logf("list %d: %d tasks, metrics %+v", i, len(l.Snapshot()), l.Metrics())
			}
			t.Fatalf("snapshots did not converge to %d identical tasks", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Five agents edit one list concurrently over QUIC on loopback; one goes
// offline (its process state closed), edits its persisted copy while
// disconnected, and rejoins; all end with identical snapshots, a concurrent
// claim resolves to the same winner everywhere, and the typed errors hold.
func TestTaskListFiveAgentsWithOfflineEdits(t *testing.T) {
	agents := cluster(t, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	lists := make([]*TaskList, 5)
	var err error
	if lists[0], err = agents[0].CreateTaskList(ctx, "sprint"); err != nil {
		t.Fatal(err)
	}
	id := lists[0].ID()
	for i := 1; i < 5; i++ {
		if lists[i], err = agents[i].JoinTaskList(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	again, err := agents[1].JoinTaskList(ctx, id)
	if err != nil || again != lists[1] {
		t.Fatalf("second join: %v, same list %v", err, again == lists[1])
	}
	waitTopic(t, agents, TaskListTopic(id))
	// Only the creator may write until it grants the others access.
	changes, err := lists[0].Changes()
	if err != nil {
		t.Fatal(err)
	}
	first, err := lists[0].Add("before the grants", "")
	if err != nil {
		t.Fatal(err)
	}
	if ch, err := changes.Next(ctx); err != nil || ch.Kind != TaskOpAdd || !ch.Local || ch.Task != first || ch.Author != agents[0].AgentID() {
		t.Fatalf("change %+v, %v; want the local add of %s", ch, err, first.Short())
	}
	changes.Close()
	waitSame(t, lists, 1)
	if _, err := lists[1].Add("not yet", ""); !errors.Is(err, ErrNotWriter) {
		t.Fatalf("write before a grant: %v", err)
	}
	for i := 1; i < 5; i++ {
		if err := lists[0].AddWriter(agents[i].AgentID()); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for i := 1; i < 5; i++ {
		for !slices.Contains(lists[i].Access().Writers, agents[i].AgentID()) {
			if time.Now().After(deadline) {
				t.Fatalf("agent %d never saw its grant", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// Every agent adds three tasks at the same time.
	var wg sync.WaitGroup
	for i, l := range lists {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 3 {
				if _, err := l.Add(fmt.Sprintf("task %d.%d", i, k), "from agent "+fmt.Sprint(i)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	snap := waitSame(t, lists, 16)
	if lists[4].Name() != "sprint" {
		t.Fatalf("joiner sees name %q", lists[4].Name())
	}

	// A concurrent claim of one task by agents 1 and 2.
	contested := snap[0].ID
	wg.Add(2)
	for _, i := range []int{1, 2} {
		go func() {
			defer wg.Done()
			if err := lists[i].Claim(contested); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()

	// Agent 4 goes offline: close it, reopen it from its data directory
	// without joining the network, and edit its persisted copy.
	dir4 := agents[4].DataDir()
	if err := agents[4].Close(); err != nil {
		t.Fatal(err)
	}
	off, err := NewBuilder().WithDataDir(dir4).WithKDF(cheapKDF()).
		WithBootstrap(fmt.Sprintf("%s@%s", agents[0].MachineID(), agents[0].Addr())).Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { off.Close() })
	offList, err := off.JoinTaskList(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(offList.Snapshot()); got < 3 {
		t.Fatalf("reopened offline list has %d tasks, want at least its own 3", got)
	}
	offTask, err := offList.Add("written offline", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := offList.Claim(offTask); err != nil {
		t.Fatal(err)
	}
	// Meanwhile the others keep editing.
	title := "renamed while 4 was away"
	if err := lists[3].Update(snap[5].ID, TaskUpdate{Title: &title}); err != nil {
		t.Fatal(err)
	}
	if err := lists[0].Claim(snap[6].ID); err != nil {
		t.Fatal(err)
	}
	if err := lists[0].Complete(snap[6].ID); err != nil {
		t.Fatal(err)
	}
	if err := lists[1].Remove(snap[7].ID); err != nil {
		t.Fatal(err)
	}
	after := snap[1].ID
	if err := lists[2].Move(snap[8].ID, &after); err != nil {
		t.Fatal(err)
	}

	// Agent 4 reconnects: everything merges.
	if err := off.JoinNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	lists[4] = offList
	final := waitSame(t, lists, 16) // 16 + 1 added offline - 1 removed

	byID := map[TaskID]Task{}
	for _, task := range final {
		byID[task.ID] = task
	}
	c := byID[contested]
	if c.State != TaskClaimed || len(c.Claims) != 2 || c.Claimant != c.Claims[0] {
		t.Fatalf("contested task: %+v", c)
	}
	if c.Claimant != agents[1].AgentID() && c.Claimant != agents[2].AgentID() {
		t.Fatalf("contested winner %s is neither claimer", c.Claimant.Short())
	}
	if o := byID[offTask]; o.Title != "written offline" || o.State != TaskClaimed || o.Claimant != off.AgentID() {
		t.Fatalf("offline task: %+v", o)
	}
	if byID[snap[5].ID].Title != title || byID[snap[6].ID].State != TaskDone {
		t.Fatalf("edits made while 4 was away are missing")
	}
	if _, ok := byID[snap[7].ID]; ok {
		t.Fatal("removed task is back")
	}

	// Typed errors at the API.
	if err := lists[1].Claim(snap[6].ID); !errors.Is(err, ErrTaskDone) {
		t.Fatalf("claim of a done task: %v", err)
	}
	if err := lists[1].Complete(snap[9].ID); !errors.Is(err, ErrTaskNotClaimed) {
		t.Fatalf("complete of an unclaimed task: %v", err)
	}
	if err := lists[3].Complete(offTask); !errors.Is(err, ErrClaimedByOther) {
		t.Fatalf("complete of another agent's claim: %v", err)
	}
	if err := lists[0].Claim(TaskID{1}); !errors.Is(err, ErrTaskNotFound) {
		t.Fatalf("claim of an unknown task: %v", err)
	}

	// Leave stops the list (ending its Changes streams); joining again
	// resumes from the store.
	leftChanges, err := lists[2].Changes()
	if err != nil {
		t.Fatal(err)
	}
	if err := lists[2].Leave(); err != nil {
		t.Fatal(err)
	}
	if err := lists[2].Leave(); err != nil {
		t.Fatal(err)
	}
	if _, err := lists[2].Add("after leave", ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("add after leave: %v", err)
	}
	for {
		if _, err := leftChanges.Next(ctx); err != nil {
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("changes after leave: %v", err)
			}
			break
		}
	}
	if _, err := lists[2].Changes(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Changes after leave: %v", err)
	}
	back, err := agents[2].JoinTaskList(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Snapshot()) != 16 {
		t.Fatalf("rejoined list has %d tasks", len(back.Snapshot()))
	}
	stored, err := agents[2].StoredTaskLists()
	if err != nil || len(stored) != 1 {
		t.Fatalf("stored lists: %v %v", stored, err)
	}
}

// A list ID parses back from its hex form; bad forms are refused.
func TestParseTaskListID(t *testing.T) {
	id := TaskListID{1, 2, 3}
	got, err := ParseTaskListID(id.String())
	if err != nil || got != id {
		t.Fatalf("round trip: %v %v", got, err)
	}
	for _, bad := range []string{"", "zz", id.String()[:62], id.String() + "00"} {
		if _, err := ParseTaskListID(bad); err == nil {
			t.Fatalf("%q parsed", bad)
		}
	}
}

// Agents connected with Connect alone (no bootstrap, no JoinNetwork) form
// the overlay through that connection: topic messages cross it.
func TestConnectJoinsOverlay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var agents []*Agent
	for range 2 {
		a, err := NewBuilder().WithDataDir(t.TempDir()).WithKDF(cheapKDF()).Build(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		agents = append(agents, a)
	}
	if _, err := agents[1].Connect(ctx, fmt.Sprintf("%s@%s", agents[0].MachineID(), agents[0].Addr())); err != nil {
		t.Fatal(err)
	}
	_, sub := joinSub(t, agents[0], "direct-link")
	pub, _ := joinSub(t, agents[1], "direct-link")
	for {
		if _, err := pub.Publish(ctx, []byte("over connect")); err != nil {
			t.Fatal(err)
		}
		wait, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		m, err := sub.Next(wait)
		cancel()
		if err == nil {
			if string(m.Payload) != "over connect" || m.Origin != agents[1].AgentID() {
				t.Fatalf("got %+v", m)
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatal("no topic message over a Connect-only link")
		}
	}
}
