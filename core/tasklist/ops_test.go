package tasklist

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/saorsa-labs/x0x-go/core/identity"
)

func TestLocalOperations(t *testing.T) {
	l := openSolo(t, 1, nil)
	me := key(1).ID()
	if l.Name() != "solo" {
		t.Fatalf("Name = %q", l.Name())
	}
	a, err := l.Add("a", "first")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := l.Add("b", "")
	c, _ := l.Add("c", "")
	if got := titles(l.Snapshot()); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("order %v", got)
	}
	if a == b || a == (TaskID{}) {
		t.Fatal("task IDs not unique")
	}
	task, err := l.Task(a)
	if err != nil || task.Description != "first" || task.CreatedBy != me || task.State != Empty {
		t.Fatalf("Task(a) = %+v, %v", task, err)
	}

	// Update fields.
	title, prio, who := "A!", uint8(7), key(2).ID()
	if err := l.Update(a, Update{Title: &title, Priority: &prio, Assignee: &who}); err != nil {
		t.Fatal(err)
	}
	task, _ = l.Task(a)
	if task.Title != "A!" || task.Priority != 7 || task.Assignee != who || task.Description != "first" {
		t.Fatalf("after update %+v", task)
	}
	var zero identity.AgentID
	_ = l.Update(a, Update{Assignee: &zero})
	if task, _ = l.Task(a); task.Assignee != zero {
		t.Fatalf("unassign failed: %+v", task)
	}

	// Checkbox: complete unclaimed, claim, claim again, complete, claim done.
	if err := l.Complete(a); !errors.Is(err, ErrNotClaimed) {
		t.Fatalf("Complete unclaimed: %v", err)
	}
	if err := l.Claim(a); err != nil {
		t.Fatal(err)
	}
	before := l.Stats().LocalOps
	if err := l.Claim(a); err != nil || l.Stats().LocalOps != before {
		t.Fatalf("second claim by the holder: err %v, ops %d -> %d", err, before, l.Stats().LocalOps)
	}
	task, _ = l.Task(a)
	if task.State != Claimed || task.Claimant != me || !slices.Equal(task.Claims, []identity.AgentID{me}) {
		t.Fatalf("after claim %+v", task)
	}
	if err := l.Complete(a); err != nil {
		t.Fatal(err)
	}
	if task, _ = l.Task(a); task.State != Done || task.Claimant != me {
		t.Fatalf("after complete %+v", task)
	}
	if err := l.Claim(a); !errors.Is(err, ErrTaskDone) {
		t.Fatalf("Claim done: %v", err)
	}
	if err := l.Complete(a); !errors.Is(err, ErrTaskDone) {
		t.Fatalf("Complete done: %v", err)
	}
	if err := l.Reopen(a); err != nil {
		t.Fatal(err)
	}
	if task, _ = l.Task(a); task.State != Empty || len(task.Claims) != 0 {
		t.Fatalf("after reopen %+v", task)
	}
	before = l.Stats().LocalOps
	if err := l.Reopen(a); err != nil || l.Stats().LocalOps != before {
		t.Fatalf("reopen of an empty task: %v, ops %d -> %d", err, before, l.Stats().LocalOps)
	}

	// Move.
	if err := l.Move(c, nil); err != nil {
		t.Fatal(err)
	}
	if got := titles(l.Snapshot()); !slices.Equal(got, []string{"c", "A!", "b"}) {
		t.Fatalf("after move to front %v", got)
	}
	if err := l.Move(c, &b); err != nil {
		t.Fatal(err)
	}
	if got := titles(l.Snapshot()); !slices.Equal(got, []string{"A!", "b", "c"}) {
		t.Fatalf("after move after b %v", got)
	}
	if err := l.Move(c, &c); !errors.Is(err, ErrInvalid) {
		t.Fatalf("move after itself: %v", err)
	}

	// Remove.
	if err := l.Remove(b); err != nil {
		t.Fatal(err)
	}
	if got := titles(l.Snapshot()); !slices.Equal(got, []string{"A!", "c"}) {
		t.Fatalf("after remove %v", got)
	}
	for name, op := range map[string]func() error{
		"Task":     func() error { _, err := l.Task(b); return err },
		"Update":   func() error { return l.Update(b, Update{Title: &title}) },
		"Claim":    func() error { return l.Claim(b) },
		"Complete": func() error { return l.Complete(b) },
		"Reopen":   func() error { return l.Reopen(b) },
		"Move":     func() error { return l.Move(b, nil) },
		"MoveTo":   func() error { return l.Move(a, &b) },
		"Remove":   func() error { return l.Remove(b) },
	} {
		if err := op(); !errors.Is(err, ErrTaskNotFound) {
			t.Errorf("%s on removed task: %v", name, err)
		}
	}

	// Limits.
	if _, err := l.Add(strings.Repeat("x", MaxTitleLen+1), ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("long title: %v", err)
	}
	bad := "\xff"
	if err := l.Update(a, Update{Description: &bad}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid UTF-8: %v", err)
	}

	// Changes were reported, all local.
	n := 0
	for len(l.Changes()) > 0 {
		ch := <-l.Changes()
		if !ch.Local || ch.Author != me {
			t.Fatalf("change %+v", ch)
		}
		n++
	}
	if want := int(l.Stats().LocalOps); n != want {
		t.Fatalf("%d changes for %d ops", n, want)
	}

	// Closed.
	_ = l.Close()
	if _, err := l.Add("x", ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-l.Changes(); ok {
		t.Fatal("Changes not closed")
	}
}

func TestCompleteClaimedByOther(t *testing.T) {
	h := newHub(true)
	a := h.open(t, 1, ListID{1}, "l", nil, nil)
	b := h.open(t, 2, ListID{1}, "", nil, nil)
	id, _ := a.l.Add("t", "")
	settle(t, h, a, b)
	if err := a.l.Claim(id); err != nil {
		t.Fatal(err)
	}
	flushAll(t, a, b)
	if err := b.l.Complete(id); !errors.Is(err, ErrClaimedByOther) {
		t.Fatalf("Complete of a task held by another: %v", err)
	}
	if err := b.l.Claim(id); !errors.Is(err, ErrClaimedByOther) {
		t.Fatalf("Claim of a task held by another: %v", err)
	}
	if b.l.Name() != "l" {
		t.Fatalf("joiner's name %q", b.l.Name())
	}
}

func TestOpenConfigErrors(t *testing.T) {
	if _, err := Open(Config{Transport: nopTransport{}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no Self: %v", err)
	}
	if _, err := Open(Config{Self: key(1)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no Transport: %v", err)
	}
}
