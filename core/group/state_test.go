package group

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/saorsa-labs/x0x-go/core/identity"
)

// restart replaces m's replica by one restored from snap.
func (m *member) restart(t testing.TB, snap []byte, mustUpdate bool) {
	t.Helper()
	m.g.Close()
	g, err := Restore(snap, m.config(), mustUpdate)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	g.Resume()
	m.g = g
}

func TestSnapshotRestoreClean(t *testing.T) {
	b, ms := newGroupOf(t, 2)
	a, c := ms[0], ms[1]
	snap, err := c.g.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	epoch := c.g.Epoch()
	c.restart(t, snap, false)
	if c.g.Epoch() != epoch || !c.g.WasMember(a.id) {
		t.Fatalf("restored epoch %d (want %d)", c.g.Epoch(), epoch)
	}
	if err := a.g.Send([]byte("to the restored")); err != nil {
		t.Fatal(err)
	}
	if err := c.g.Send([]byte("from the restored")); err != nil {
		t.Fatal(err)
	}
	b.settle(t)
	sameState(t, a, c)
	if got := c.texts()[a.id]; len(got) != 1 || got[0] != "to the restored" {
		t.Fatalf("restored member received %v", got)
	}
	if got := a.texts()[c.id]; len(got) != 1 {
		t.Fatalf("a received %v", got)
	}
	if c.g.Epoch() != epoch {
		t.Fatal("a clean restore committed")
	}
}

// A snapshot older than what the member sent (a crash): the member
// commits a key update before it sends again, so it never reuses a
// message key, and the group follows.
func TestRestoreAfterCrashUpdatesFirst(t *testing.T) {
	b, ms := newGroupOf(t, 2)
	a, c := ms[0], ms[1]
	snap, err := c.g.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.g.Send([]byte("sent after the snapshot")); err != nil {
		t.Fatal(err)
	}
	b.settle(t)
	epoch := c.g.Epoch()
	c.restart(t, snap, true) // the crash: the snapshot predates that message
	if err := c.g.Send([]byte("after the crash")); err != nil {
		t.Fatal(err)
	}
	if c.g.Epoch() != epoch+1 {
		t.Fatalf("epoch %d after a crash restore and a send, want %d (a key update first)", c.g.Epoch(), epoch+1)
	}
	b.settle(t)
	sameState(t, a, c)
	if got := a.texts()[c.id]; len(got) != 2 || got[1] != "after the crash" {
		t.Fatalf("a received %v", got)
	}
	// Another member's commit does not excuse the update: it may be one
	// this member had processed before the crash (the same epoch again,
	// with generations already used).
	snap, _ = c.g.Snapshot()
	c.restart(t, snap, true)
	if err := a.g.Update(); err != nil {
		t.Fatal(err)
	}
	b.settle(t)
	e := c.g.Epoch()
	if err := c.g.Send([]byte("x")); err != nil || c.g.Epoch() != e+1 {
		t.Fatalf("send after another's commit: %v, epoch %d -> %d (want a key update first)", err, e, c.g.Epoch())
	}
	b.settle(t)
	sameState(t, a, c)
}

// A restart inside the fork window keeps the fork points: a winning
// commit that arrives after the restart still rolls the replica back.
func TestRestoreKeepsForkPoints(t *testing.T) {
	b, ms := newGroupOf(t, 3)
	a, c, e := ms[0], ms[1], ms[2]
	if err := a.g.Update(); err != nil {
		t.Fatal(err)
	}
	if err := c.g.Update(); err != nil {
		t.Fatal(err)
	}
	ha, hc := a.g.history[len(a.g.history)-1].hash, c.g.history[len(c.g.history)-1].hash
	// e receives the losing commit first, restarts, then gets the winner.
	e.mu.Lock()
	in := e.inbox
	e.inbox = nil
	e.mu.Unlock()
	first, second := in[0], in[1]
	if (bytes.Compare(ha[:], hc[:]) < 0) == (first.origin == a.id) {
		first, second = second, first
	}
	e.g.Handle(first.origin, first.msg)
	snap, err := e.g.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	e.restart(t, snap, false)
	e.g.Handle(second.origin, second.msg)
	if e.g.Stats().Rollbacks != 1 {
		t.Fatalf("rollbacks %d after the restart", e.g.Stats().Rollbacks)
	}
	b.settle(t)
	sameState(t, a, c, e)
}

func TestRestoreRefusesDamage(t *testing.T) {
	b, ms := newGroupOf(t, 2)
	a, c := ms[0], ms[1]
	if err := a.g.Update(); err != nil {
		t.Fatal(err)
	}
	b.settle(t)
	snap, err := c.g.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int{0, 3, 5, 13, len(snap) / 2, len(snap) - 1} {
		if _, err := Restore(snap[:cut], c.config(), false); !errors.Is(err, ErrBadState) {
			t.Fatalf("truncated at %d: %v", cut, err)
		}
	}
	for _, at := range []int{0, 4, 10, 60, len(snap) / 3, len(snap) - 2} {
		bad := slices.Clone(snap)
		bad[at] ^= 0x40
		if g, err := Restore(bad, c.config(), false); err == nil {
			g.Close()
			t.Fatalf("bit flip at %d accepted", at)
		} else if !errors.Is(err, ErrBadState) {
			t.Fatalf("bit flip at %d: untyped %v", at, err)
		}
	}
	if _, err := Restore(append(slices.Clone(snap), 0), c.config(), false); !errors.Is(err, ErrBadState) {
		t.Fatalf("trailing byte: %v", err)
	}
	// Another agent's key cannot take the state over.
	other := c.config()
	other.Self = agentKey(9)
	if _, err := Restore(snap, other, false); !errors.Is(err, ErrBadState) {
		t.Fatalf("another agent: %v", err)
	}
	_ = identity.AgentID{}
}
