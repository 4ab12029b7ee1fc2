package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// Defects a new user found at the surface of the C ABI (issue 14), each
// checked through the exported functions as C calls them.

// cStr returns a NUL-terminated copy of s for an exported function (Go
// memory without Go pointers, which C may read during the call).
func cStr(s string) *_Ctype_char {
	b := append([]byte(s), 0)
	return (*_Ctype_char)(unsafe.Pointer(&b[0]))
}

// newConfig is a config handle with the given string options, destroyed
// when the test ends.
func newConfig(t *testing.T, kv ...string) cHandle {
	t.Helper()
	var cfg cHandle
	want(t, "x0x_config_new", x0x_config_new(&cfg), statusOK)
	t.Cleanup(func() { x0x_config_destroy(cfg) })
	for i := 0; i+1 < len(kv); i += 2 {
		want(t, "x0x_config_set "+kv[i], x0x_config_set(cfg, cStr(kv[i]), cStr(kv[i+1])), statusOK)
	}
	return cfg
}

// The header's limits are the library's: names and titles up to 1 KiB and
// descriptions up to 16 KiB are accepted (a description beyond
// X0X_MAX_STRING included), and each limit plus one byte is
// X0X_ERR_TOO_LARGE, as is a string longer than X0X_MAX_STRING.
func TestTaskListStringLimits(t *testing.T) {
	if maxListName != x0x.MaxTaskListName || maxTaskTitle != x0x.MaxTaskTitle || maxTaskDesc != x0x.MaxTaskDescription {
		t.Fatalf("header limits %d/%d/%d, library %d/%d/%d", maxListName, maxTaskTitle, maxTaskDesc,
			x0x.MaxTaskListName, x0x.MaxTaskTitle, x0x.MaxTaskDescription)
	}
	if st := classify(fmt.Errorf("add: %w: %w", x0x.ErrInvalidArgument, x0x.ErrPayloadTooLarge)); st != statusTooLarge {
		t.Fatalf("an argument over its limit -> %d, want X0X_ERR_TOO_LARGE", st)
	}
	if st := classify(fmt.Errorf("%w: %w: %w", x0x.ErrRejected, x0x.ErrInvalidArgument, x0x.ErrPayloadTooLarge)); st != statusRejected {
		t.Fatalf("a refused message -> %d, want X0X_ERR_REJECTED", st)
	}
	if maxTaskDesc <= maxString {
		t.Fatalf("the test expects descriptions longer than X0X_MAX_STRING (%d)", maxString)
	}
	h, _ := testAgent(t)
	x := strings.Repeat
	var l cHandle
	want(t, "create, name over the limit", x0x_tasklist_create(cHandle(h), cStr(x("n", maxListName+1)), &l), statusTooLarge)
	want(t, "create, name over X0X_MAX_STRING", x0x_tasklist_create(cHandle(h), cStr(x("n", maxString+1)), &l), statusTooLarge)
	want(t, "create, name not UTF-8", x0x_tasklist_create(cHandle(h), cStr("\xff"), &l), statusInvalidArg)
	want(t, "create, name at the limit", x0x_tasklist_create(cHandle(h), cStr(x("n", maxListName)), &l), statusOK)

	var task x0x.ID
	add := func(title, desc string) _Ctype_int { return x0x_tasklist_add(l, cStr(title), cStr(desc), cID(&task)) }
	want(t, "add, title over the limit", add(x("t", maxTaskTitle+1), ""), statusTooLarge)
	want(t, "add, title over X0X_MAX_STRING", add(x("t", maxString+1), ""), statusTooLarge)
	want(t, "add, description over the limit", add("t", x("d", maxTaskDesc+1)), statusTooLarge)
	want(t, "add, title not UTF-8", add("\xff", ""), statusInvalidArg)
	want(t, "add at the limits", add(x("t", maxTaskTitle), x("d", maxTaskDesc)), statusOK)

	update := func(field, value string) _Ctype_int {
		return x0x_tasklist_update(l, cID(&task), cStr(field), cStr(value))
	}
	want(t, "update title over the limit", update("title", x("t", maxTaskTitle+1)), statusTooLarge)
	want(t, "update description over the limit", update("description", x("d", maxTaskDesc+1)), statusTooLarge)
	want(t, "update assignee over X0X_MAX_STRING", update("assignee", x("a", maxString+1)), statusTooLarge)
	want(t, "update title at the limit", update("title", x("T", maxTaskTitle)), statusOK)
	want(t, "update description at the limit", update("description", x("D", maxTaskDesc)), statusOK)

	ol, err := getList(uint64(l))
	if err != nil {
		t.Fatal(err)
	}
	snap := ol.list.Snapshot()
	if len(snap) != 1 || snap[0].Title != x("T", maxTaskTitle) || snap[0].Description != x("D", maxTaskDesc) {
		t.Fatalf("snapshot after the updates: %d tasks", len(snap))
	}

	// A group's task list has the same limits.
	var g cHandle
	want(t, "x0x_group_create", x0x_group_create(cHandle(h), &g), statusOK)
	want(t, "group list, name over the limit", x0x_group_tasklist_create(g, cStr(x("n", maxListName+1)), &l), statusTooLarge)
	want(t, "group list, name at the limit", x0x_group_tasklist_create(g, cStr(x("n", maxListName)), &l), statusOK)
}

// A second agent on a data directory a running agent holds is refused at
// once with X0X_ERR_IO and a message naming the directory; once the first
// agent is destroyed the directory can be used again.
func TestSecondAgentOnOpenDataDir(t *testing.T) {
	dir := t.TempDir()
	cfg := newConfig(t, "data_dir", dir, "bind_addr", "127.0.0.1:0")
	var first, second cHandle
	want(t, "first agent", x0x_agent_create(cfg, 20000, &first), statusOK)
	start := time.Now()
	want(t, "second agent", x0x_agent_create(cfg, 20000, &second), statusIO)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the second agent was refused after %v, not at once", d)
	}
	if msg := lastError(); !strings.HasPrefix(msg, "x0x_agent_create: ") || !strings.Contains(msg, "data directory in use") ||
		!strings.Contains(msg, dir) {
		t.Fatalf("last error %q does not say the data directory is in use", msg)
	}
	if second != 0 {
		t.Fatalf("out set to %#x on failure", second)
	}
	if st := classify(errors.Join(errors.New("x"), x0x.ErrDataDirInUse)); st != statusIO {
		t.Fatalf("ErrDataDirInUse -> %d", st)
	}
	want(t, "destroy the first", x0x_agent_destroy(first), statusOK)
	want(t, "an agent after the first was destroyed", x0x_agent_create(cfg, 20000, &second), statusOK)
	want(t, "destroy", x0x_agent_destroy(second), statusOK)
}

// x0x_wait_for_agent for the agent's own ID returns X0X_OK at once (the
// header says so), even with no peer connected.
func TestWaitForOwnAgent(t *testing.T) {
	h, e := testAgent(t)
	id := e.a.AgentID()
	start := time.Now()
	want(t, "x0x_wait_for_agent(own id)", x0x_wait_for_agent(cHandle(h), cID(&id), 10000), statusOK)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("x0x_wait_for_agent(own id) took %v", d)
	}
	other := x0x.ID{1}
	want(t, "x0x_wait_for_agent(unknown id)", x0x_wait_for_agent(cHandle(h), cID(&other), 100), statusTimeout)
}

// An empty data_dir means the default: $X0X_HOME when set (here a
// temporary directory, so the test never touches the user's ~/.x0x), else
// ~/.x0x (HOME is a temporary directory too, which must stay empty).
func TestEmptyDataDirMeansX0XHome(t *testing.T) {
	home, x0xHome := t.TempDir(), filepath.Join(t.TempDir(), "x0x-home")
	t.Setenv("HOME", home)
	t.Setenv("X0X_HOME", x0xHome)
	cfg := newConfig(t, "data_dir", "", "bind_addr", "127.0.0.1:0")
	var a cHandle
	want(t, "x0x_agent_create with data_dir \"\"", x0x_agent_create(cfg, 20000, &a), statusOK)
	defer x0x_agent_destroy(a)
	e, err := getAgent(uint64(a))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.a.DataDir(); got != x0xHome {
		t.Fatalf("data directory %q, want $X0X_HOME %q", got, x0xHome)
	}
	if _, err := os.Stat(filepath.Join(x0xHome, x0x.LockFile)); err != nil {
		t.Fatalf("nothing in $X0X_HOME: %v", err)
	}
	if entries, _ := os.ReadDir(home); len(entries) != 0 {
		t.Fatalf("HOME is not empty: %v", entries)
	}
}
