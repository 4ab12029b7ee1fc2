package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/cmd/internal/localapi"
)

// An --api address over which the token would cross the network in clear
// text (plain http to a host that is not loopback) is a usage error, for
// every command that talks to the daemon; loopback and https are not.
func TestAPIAddressChecked(t *testing.T) {
	// No token in dir: a command that got past the check would fail on the
	// token before dialling anything, so even a regression sends nothing
	// off this machine. daemon status needs no token: it is tried only
	// with 0.0.0.0 (which would reach this machine).
	dir := t.TempDir()
	refused := []string{"http://192.0.2.1:12600", "192.0.2.1:12600", "http://[2001:db8::1]:1", "0.0.0.0:12600"}
	for _, api := range refused {
		cmds := [][]string{{"id"}, {"sub", "t"}, {"inbox"}, {"tasks", "ls"}, {"mcp"}}
		if api == "0.0.0.0:12600" {
			cmds = append(cmds, []string{"daemon", "status"})
		}
		for _, args := range cmds {
			code, _, stderr := runCLI(t, "", nil, append([]string{"--data-dir", dir, "--api", api}, args...)...)
			if code != exitUsage || !strings.Contains(stderr, "clear text") || !strings.Contains(stderr, "https://") {
				t.Errorf("x0x --api %s %q: exit code %d, stderr %q; want %d and the clear-text error", api, args, code, stderr, exitUsage)
			}
		}
		// $X0X_API too.
		code, _, stderr := runCLI(t, "", map[string]string{"X0X_API": api, "X0X_HOME": dir}, "id")
		if code != exitUsage || !strings.Contains(stderr, "clear text") {
			t.Errorf("X0X_API=%s x0x id: exit code %d, stderr %q", api, code, stderr)
		}
	}
	for _, api := range []string{"127.0.0.1:12600", "http://localhost:12600", "[::1]:12600", "https://192.0.2.1:12600"} {
		code, _, stderr := runCLI(t, "", nil, "--data-dir", dir, "--api", api, "id")
		if code != exitUnreachable || !strings.Contains(stderr, "no API token") {
			t.Errorf("x0x --api %s id: exit code %d, stderr %q; want %d (no token)", api, code, stderr, exitUnreachable)
		}
	}
}

// fakeDaemon serves handler as the daemon's API on 127.0.0.1 (with /health)
// and returns the environment that points x0x at it with a token.
func fakeDaemon(t *testing.T, handler http.HandlerFunc) map[string]string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(localapi.Health{Status: "ok"})
	})
	mux.HandleFunc("/v1/", handler)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, localapi.TokenFile), []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"X0X_API": hs.URL, "X0X_HOME": dir}
}

// x0x inbox without --limit prints all the messages the daemon keeps, in
// pages; with --limit N, at most N.
func TestInboxAll(t *testing.T) {
	const kept = 2345
	var mu sync.Mutex
	var limits []int // the pages' sizes
	env := fakeDaemon(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/direct/messages" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		after, _ := strconv.ParseUint(q.Get("after"), 10, 64)
		limit := 100 // the daemon's default
		if v := q.Get("limit"); v != "" {
			limit, _ = strconv.Atoi(v)
		}
		mu.Lock()
		limits = append(limits, limit)
		mu.Unlock()
		p := localapi.Page[localapi.DirectMessage]{Items: []localapi.DirectMessage{}, NextCursor: after}
		for c := after + 1; c <= kept && len(p.Items) < limit; c++ {
			text := fmt.Sprint("m", c)
			p.Items = append(p.Items, localapi.DirectMessage{Cursor: c, From: strings.Repeat("a", 64), Received: time.Unix(0, 0), Text: &text})
			p.NextCursor = c
		}
		_ = json.NewEncoder(w).Encode(p)
	})
	code, out, stderr := runCLI(t, "", env, "inbox", "--json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	mu.Lock()
	pages := fmt.Sprint(limits)
	mu.Unlock()
	if code != 0 || len(lines) != kept {
		t.Fatalf("x0x inbox: exit code %d, %d lines, stderr %q; want 0 and %d lines (pages of %s)", code, len(lines), stderr, kept, pages)
	}
	var last localapi.DirectMessage
	if err := json.Unmarshal([]byte(lines[kept-1]), &last); err != nil || last.Cursor != kept {
		t.Fatalf("the last line: %q %v", lines[kept-1], err)
	}
	code, out, _ = runCLI(t, "", env, "inbox", "--after", "2000")
	if n := strings.Count(out, "\n"); code != 0 || n != kept-2000 || !strings.Contains(out, " m2001\n") {
		t.Errorf("x0x inbox --after 2000: exit code %d, %d lines", code, n)
	}
	code, out, _ = runCLI(t, "", env, "inbox", "--limit", "10")
	if n := strings.Count(out, "\n"); code != 0 || n != 10 {
		t.Errorf("x0x inbox --limit 10: exit code %d, %d lines; want 10", code, n)
	}
}

// A stream's "reset" notice (its cursor is from an earlier feed) is
// reported on stderr, and the stream goes on.
func TestStreamReset(t *testing.T) {
	env := fakeDaemon(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/topics/stream" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		notice := func(n localapi.StreamNotice) {
			b, _ := json.Marshal(n)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", n.Notice, b)
		}
		notice(localapi.StreamNotice{Notice: "reset", ResumeAfter: 1000, Message: "cursor 5 is from an earlier feed"})
		fmt.Fprint(w, "event: message\nid: 1001\ndata: {\"cursor\":1001,\"topic\":\"t\",\"from\":\"ab\",\"time\":\"2025-01-01T00:00:00Z\",\"text\":\"hello\",\"payload_b64\":\"aGVsbG8=\"}\n\n")
		notice(localapi.StreamNotice{Notice: "end", ResumeAfter: 1001})
	})
	code, out, stderr := runCLI(t, "", env, "sub", "t", "--after", "5")
	want := "x0x: the cursor is from an earlier feed (the daemon restarted or the topic was unfollowed); starting again with the oldest message kept\n"
	if !strings.HasPrefix(stderr, want) || !strings.HasSuffix(out, " hello\n") {
		t.Errorf("x0x sub t --after 5: exit code %d, stdout %q, stderr %q; want the reset notice, then the message", code, out, stderr)
	}
	if code != exitFailed || !strings.Contains(stderr, "the daemon ended the stream") {
		t.Errorf("x0x sub t --after 5: exit code %d, stderr %q; want the end notice's exit code 1", code, stderr)
	}
}

// identity export --out replaces a file that exists with a private one,
// whatever its mode was.
func TestWriteNewPrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix file modes")
	}
	path := filepath.Join(t.TempDir(), "bundle")
	if err := os.WriteFile(path, []byte("an older, longer content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	if err := writeNew(path, []byte("sealed\n")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if string(b) != "sealed\n" {
		t.Errorf("the file holds %q, want %q", b, "sealed\n")
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the file's mode is %v, want 0600", fi.Mode().Perm())
	}
	// A new file is 0600 too.
	path2 := filepath.Join(filepath.Dir(path), "new")
	if err := writeNew(path2, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path2); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("a new file: %v %v, want mode 0600", fi.Mode(), err)
	}
}
