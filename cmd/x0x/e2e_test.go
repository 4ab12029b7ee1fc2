package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/cmd/internal/apitest"
	"github.com/saorsa-labs/x0x-go/cmd/internal/localapi"
)

// End-to-end tests: the x0x and x0xd executables, built once per test
// binary, used as a user would against real daemons on 127.0.0.1.

// bins are the executables, built on first use (TestMain removes them).
var bins struct {
	once sync.Once
	dir  string
	err  error
}

// binaries builds x0x and x0xd (once) and returns x0x's path; x0xd is
// next to it, where x0x daemon start looks first.
func binaries(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the end-to-end tests use Unix signals")
	}
	bins.once.Do(func() {
		bins.dir, bins.err = os.MkdirTemp("", "x0x-cli-test-")
		if bins.err != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bins.dir+string(filepath.Separator), "./cmd/x0x", "./cmd/x0xd")
		cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			bins.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return filepath.Join(bins.dir, "x0x")
}

// cleanEnv is the environment without x0x's variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "X0X_") {
			env = append(env, kv)
		}
	}
	return env
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// runX0x runs the x0x executable with stdin.
func runX0x(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), binaries(t), args...)
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("x0x %q: %v", args, err)
	}
	return r
}

// lineWriter sends each line written to it on a channel.
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.lines <- string(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

// node is a real x0xd on 127.0.0.1 and the x0x flags to reach it.
type node struct {
	t              *testing.T
	dir, api       string
	agent, machine string
}

// startNode starts x0xd with a fresh data directory and stops it when the
// test ends.
func startNode(t *testing.T) *node {
	t.Helper()
	x0xd := filepath.Join(filepath.Dir(binaries(t)), "x0xd")
	n := &node{t: t, dir: t.TempDir()}
	logPath := filepath.Join(t.TempDir(), "x0xd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(x0xd, "-data-dir", n.dir, "-listen", "127.0.0.1:0", "-http", "127.0.0.1:0")
	cmd.Env = cleanEnv()
	out := &lineWriter{lines: make(chan string, 16)}
	cmd.Stdout, cmd.Stderr = out, logf
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("x0xd exited: %v", err)
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("x0xd did not stop on SIGTERM")
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("x0xd log (%s):\n%s", n.dir, b)
		}
	})
	select {
	case line := <-out.lines:
		if !strings.HasPrefix(line, "x0xd ready") {
			t.Fatalf("x0xd's first line: %q", line)
		}
		n.api, n.agent, n.machine = readyField(line, "http"), readyField(line, "agent"), readyField(line, "machine")
		if n.api == "" || len(n.agent) != 64 || len(n.machine) != 64 {
			t.Fatalf("x0xd ready line: %q", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("x0xd not ready within 30 s")
	}
	return n
}

func (n *node) flags(args ...string) []string {
	return append([]string{"--api", n.api, "--data-dir", n.dir}, args...)
}

func (n *node) run(args ...string) result { n.t.Helper(); return runX0x(n.t, "", n.flags(args...)...) }

// ok runs x0x and returns its stdout; any exit code but 0 fails the test.
func (n *node) ok(args ...string) string {
	n.t.Helper()
	r := runX0x(n.t, "", n.flags(args...)...)
	if r.code != 0 {
		n.t.Fatalf("x0x %q: %v", args, r)
	}
	return r.stdout
}

// json runs x0x with --json (after the command) and decodes its output.
func (n *node) json(v any, args ...string) {
	n.t.Helper()
	out := n.ok(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		n.t.Fatalf("x0x %q --json: %v\n%s", args, err, out)
	}
}

// bg is x0x running in the background (a stream), its stdout as lines.
type bg struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan string
	stderr bytes.Buffer
}

func (n *node) background(args ...string) *bg {
	n.t.Helper()
	b := &bg{t: n.t, lines: make(chan string, 1000)}
	b.cmd = exec.Command(binaries(n.t), n.flags(args...)...)
	b.cmd.Env = cleanEnv()
	b.cmd.Stdout, b.cmd.Stderr = &lineWriter{lines: b.lines}, &b.stderr
	b.cmd.WaitDelay = 5 * time.Second
	if err := b.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() {
		if b.cmd.ProcessState == nil {
			_ = b.cmd.Process.Kill()
			_ = b.cmd.Wait()
		}
	})
	return b
}

// next returns the next line the process prints.
func (b *bg) next(timeout time.Duration) (string, bool) {
	select {
	case l := <-b.lines:
		return l, true
	case <-time.After(timeout):
		return "", false
	}
}

// stop signals the process and returns its exit code.
func (b *bg) stop(sig os.Signal) int {
	b.t.Helper()
	if err := b.cmd.Process.Signal(sig); err != nil {
		b.t.Fatal(err)
	}
	err := b.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	} else if err != nil {
		b.t.Fatal(err)
	}
	return 0
}

// eventually polls cond, which runs x0x, every 100 ms until it holds or
// 20 s have passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	apitest.Poll(t, what, 100*time.Millisecond, cond)
}

var lineTime = `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)`

// Two daemons, connected with x0x connect, used through x0x: identity,
// peers, topics, direct messages, task lists, the exit codes.
func TestEndToEnd(t *testing.T) {
	a, b := startNode(t), startNode(t)

	t.Run("id", func(t *testing.T) {
		var info localapi.AgentInfo
		a.json(&info, "id")
		if info.AgentID != a.agent || info.MachineID != a.machine || info.DialAddr != a.machine+"@"+info.AdvertisedAddr || info.NATType == "" {
			t.Fatalf("id --json: %+v", info)
		}
		out := runX0x(t, "", "id", "--api", a.api, "--data-dir", a.dir) // the global flags after the command
		for _, want := range []string{"agent    " + a.agent, "machine  " + a.machine, "dial     " + info.DialAddr, "nat      " + info.NATType} {
			if !strings.Contains(out.stdout, want+"\n") {
				t.Errorf("id: no %q in\n%s", want, out.stdout)
			}
		}
	})

	t.Run("connect", func(t *testing.T) {
		var info localapi.AgentInfo
		b.json(&info, "id")
		if got := strings.TrimSpace(a.ok("connect", info.DialAddr)); got != b.machine {
			t.Fatalf("connect printed %q, want %s", got, b.machine)
		}
		var peers localapi.PeerList
		a.json(&peers, "peers")
		if len(peers.Peers) != 1 || peers.Peers[0].ID != b.machine || len(peers.Peers[0].Agents) != 1 || peers.Peers[0].Agents[0] != b.agent {
			t.Fatalf("peers --json: %+v", peers)
		}
		eventually(t, "b to list a as its peer", func() bool {
			return strings.Contains(b.ok("peers"), a.machine[:16])
		})
		if out := a.ok("peers"); !regexp.MustCompile(`(?m)^` + b.machine[:16] + ` +127\.0\.0\.1:\d+ +direct +- +` + b.agent[:8] + `$`).MatchString(out) {
			t.Fatalf("peers:\n%s", out)
		}
	})

	t.Run("pub-sub", func(t *testing.T) {
		// b follows news, so the daemon keeps its messages beyond the
		// streams (a stream alone follows it only while it is open).
		b.ok("follow", "news")
		sub := b.background("sub", "news")
		published := map[string]bool{}
		var line string
		eventually(t, "b's x0x sub to print a's message", func() bool {
			published[strings.TrimSpace(a.ok("pub", "news", "hello from A"))] = true
			var ok bool
			line, ok = sub.next(300 * time.Millisecond)
			return ok
		})
		if !regexp.MustCompile(`^` + lineTime + ` ` + a.agent[:8] + ` hello from A$`).MatchString(line) {
			t.Fatalf("sub printed %q", line)
		}
		// Binary from stdin is printed as base64; text with a newline quoted.
		if r := runX0x(t, "\xff\x00x", a.flags("pub", "news", "-")...); r.code != 0 {
			t.Fatal(r)
		}
		if r := runX0x(t, "two\nlines", a.flags("pub", "news")...); r.code != 0 {
			t.Fatal(r)
		}
		r := runX0x(t, "line 1\nline 2\n", a.flags("pub", "news", "--lines")...)
		if ids := strings.Fields(r.stdout); r.code != 0 || len(ids) != 2 || len(ids[0]) != 64 || ids[0] == ids[1] {
			t.Fatalf("pub --lines: %v", r)
		}
		want := []string{" " + a.agent[:8] + " base64:/wB4", " " + a.agent[:8] + ` "two\nlines"`,
			" " + a.agent[:8] + " line 1", " " + a.agent[:8] + " line 2"}
		for len(want) > 0 {
			l, ok := sub.next(10 * time.Second)
			if !ok {
				t.Fatalf("sub did not print %q", want)
			}
			want = slices.DeleteFunc(want, func(w string) bool { return strings.HasSuffix(l, w) })
		}
		if code := sub.stop(os.Interrupt); code != 0 {
			t.Errorf("sub after SIGINT: exit code %d, stderr %q", code, sub.stderr.String())
		}

		// --after 0 --json: the messages the daemon kept, as the API's
		// objects. (A feed's cursors start at its own base, not 1.)
		js := b.background("sub", "--json", "news", "--after", "0")
		l, ok := js.next(10 * time.Second)
		if !ok {
			t.Fatal("sub --after 0 --json printed nothing")
		}
		var m localapi.TopicMessage
		if err := json.Unmarshal([]byte(l), &m); err != nil || m.Cursor == 0 || m.Topic != "news" || m.From != a.agent ||
			m.Text == nil || *m.Text != "hello from A" || !published[m.ID] {
			t.Fatalf("sub --json: %q (%v)", l, err)
		}
		if code := js.stop(syscall.SIGTERM); code != 0 {
			t.Errorf("sub after SIGTERM: exit code %d, stderr %q", code, js.stderr.String())
		}
		var topics localapi.TopicList
		b.json(&topics, "topics")
		if len(topics.Topics) != 1 || topics.Topics[0].Topic != "news" || topics.Topics[0].Cursor < m.Cursor+2 {
			t.Fatalf("topics: %+v", topics)
		}
	})

	t.Run("missed", func(t *testing.T) {
		// b follows "big"; 5 messages of 1 MB overflow its 4 MiB buffer, so
		// a stream from cursor 0 is told the first one is lost, then
		// prints the rest, and goes on until interrupted (exit 0).
		b.ok("follow", "big")
		big := filepath.Join(t.TempDir(), "big")
		if err := os.WriteFile(big, bytes.Repeat([]byte("x0x "), 250_000), 0o600); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			b.ok("pub", "big", "--file", big)
		}
		sub := b.background("sub", "big", "--after", "0", "--json")
		for i := range 4 {
			if _, ok := sub.next(20 * time.Second); !ok {
				t.Fatalf("sub --after 0 printed %d messages, want 4", i)
			}
		}
		if code := sub.stop(os.Interrupt); code != 0 {
			t.Fatalf("sub ended with %d", code)
		}
		if !strings.Contains(sub.stderr.String(), "1 items were lost") {
			t.Fatalf("sub's stderr: %q", sub.stderr.String())
		}
		b.ok("unsub", "big")
	})

	t.Run("direct", func(t *testing.T) {
		a.ok("send", b.agent, "hi B")
		if r := runX0x(t, "via stdin", a.flags("send", b.agent, "-")...); r.code != 0 {
			t.Fatal(r)
		}
		var m localapi.DirectMessage
		b.json(&m, "inbox", "--wait", "10s", "--limit", "1")
		if m.Cursor == 0 || m.From != a.agent || m.To != b.agent || m.Text == nil || *m.Text != "hi B" {
			t.Fatalf("inbox --json: %+v", m)
		}
		first := strconv.FormatUint(m.Cursor, 10)
		out := b.ok("inbox", "--after", first, "--wait", "10s")
		if !regexp.MustCompile(`^` + lineTime + ` ` + a.agent[:8] + ` via stdin\n$`).MatchString(out) {
			t.Fatalf("inbox --after %s: %q", first, out)
		}
		// Without --after or --limit: all the daemon keeps.
		if out := b.ok("inbox"); !regexp.MustCompile(`^` + lineTime + ` ` + a.agent[:8] + ` hi B\n` + lineTime + ` ` + a.agent[:8] + ` via stdin\n$`).MatchString(out) {
			t.Fatalf("inbox: %q", out)
		}
		start := time.Now()
		if out := b.ok("inbox", "--after", strconv.FormatUint(m.Cursor+1, 10), "--wait", "300ms"); out != "" || time.Since(start) < 300*time.Millisecond {
			t.Fatalf("inbox with nothing new: %q after %v", out, time.Since(start))
		}
		if r := a.run("send", strings.Repeat("0", 63)+"1", "anyone?"); r.code != exitFailed || !strings.Contains(r.stderr, "(no_route)") {
			t.Fatalf("send to an unknown agent: %v", r)
		}
	})

	t.Run("tasks", func(t *testing.T) {
		var l localapi.TaskListInfo
		a.json(&l, "tasks", "new", "sprint", "--open")
		if len(l.ID) != 64 || l.Name != "sprint" || !l.Open || !l.Joined {
			t.Fatalf("tasks new: %+v", l)
		}
		watch := a.background("--json", "tasks", "watch", l.ID, "--after", "0")
		var task localapi.Task
		a.json(&task, "tasks", "add", l.ID[:8], "write the CLI", "--description", "cmd/x0x") // a prefix of the list's ID
		if task.Title != "write the CLI" || task.Description != "cmd/x0x" || task.State != "open" || task.CreatedBy != a.agent {
			t.Fatalf("tasks add: %+v", task)
		}
		var joined localapi.TaskListInfo
		b.json(&joined, "tasks", "join", l.ID)
		if joined.ID != l.ID || !joined.Joined {
			t.Fatalf("tasks join: %+v", joined)
		}
		var snap localapi.TaskListSnapshot
		eventually(t, "the task to reach b", func() bool {
			b.json(&snap, "tasks", "ls", l.ID)
			return len(snap.Tasks) == 1 && snap.Name == "sprint"
		})
		var claimed, done localapi.Task
		b.json(&claimed, "tasks", "claim", l.ID, task.ID[:8]) // a prefix of the task's ID
		if claimed.ID != task.ID || claimed.State != "claimed" || claimed.Claimant != b.agent {
			t.Fatalf("tasks claim: %+v", claimed)
		}
		b.json(&done, "tasks", "done", l.ID, task.ID)
		if done.State != "done" || done.Claimant != b.agent {
			t.Fatalf("tasks done: %+v", done)
		}
		eventually(t, "a to see the task done by b", func() bool {
			a.json(&snap, "tasks", "ls", l.ID)
			return len(snap.Tasks) == 1 && snap.Tasks[0].State == "done" && snap.Tasks[0].Claimant == b.agent
		})
		out := a.ok("tasks", "ls", l.ID)
		if !regexp.MustCompile(`(?m)^` + task.ID[:8] + ` +done +` + b.agent[:8] + ` +write the CLI$`).MatchString(out) {
			t.Fatalf("tasks ls LIST:\n%s", out)
		}
		if out := a.ok("tasks", "ls"); !regexp.MustCompile(`(?m)^` + l.ID + ` +yes +yes +\d+ +sprint$`).MatchString(out) {
			t.Fatalf("tasks ls:\n%s", out)
		}
		var lists localapi.TaskListIndex
		b.json(&lists, "tasks", "ls")
		if len(lists.Lists) != 1 || lists.Lists[0].ID != l.ID {
			t.Fatalf("tasks ls --json: %+v", lists)
		}
		r := b.run("tasks", "claim", l.ID, task.ID)
		if r.code != exitFailed || !strings.Contains(r.stderr, "(task_done)") {
			t.Fatalf("claiming a done task: %v", r)
		}
		// a's watch saw its own add and b's claim and completion.
		seen := map[string]bool{}
		for !seen["claimed"] || !seen["completed"] {
			line, ok := watch.next(10 * time.Second)
			if !ok {
				t.Fatalf("tasks watch: saw %v", seen)
			}
			var ch localapi.TaskChange
			if err := json.Unmarshal([]byte(line), &ch); err != nil || ch.List != l.ID {
				t.Fatalf("tasks watch: %q %v", line, err)
			}
			if ch.Op == "added" && (ch.Task != task.ID || !ch.Local) || (ch.Op == "claimed" || ch.Op == "completed") && (ch.Author != b.agent || ch.Local) {
				t.Fatalf("tasks watch: %+v", ch)
			}
			seen[ch.Op] = true
		}
		if code := watch.stop(os.Interrupt); code != 0 || !seen["added"] {
			t.Fatalf("tasks watch: exit code %d, saw %v", code, seen)
		}
	})

	t.Run("exit-codes", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(bad, []byte(strings.Repeat("0", 64)), 0o600); err != nil {
			t.Fatal(err)
		}
		if r := runX0x(t, "", "--api", a.api, "--token-file", bad, "id"); r.code != exitUnauthorized || !strings.Contains(r.stderr, "(unauthorized)") {
			t.Errorf("wrong token: %v", r)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().String()
		ln.Close()
		if r := runX0x(t, "", "--api", closed, "--data-dir", a.dir, "peers"); r.code != exitUnreachable || !strings.Contains(r.stderr, "x0x daemon start") {
			t.Errorf("no daemon: %v", r)
		}
		if r := runX0x(t, "", "--api", a.api, "--data-dir", t.TempDir(), "peers"); r.code != exitUnreachable || !strings.Contains(r.stderr, "no API token") {
			t.Errorf("no token file: %v", r)
		}
		if r := a.run("tasks", "claim", "0123abcd"); r.code != exitUsage || !strings.Contains(r.stderr, "usage: x0x tasks claim LIST TASK") {
			t.Errorf("usage: %v", r)
		}
		if r := a.run("tasks", "ls", strings.Repeat("e", 64)); r.code != exitFailed || !strings.Contains(r.stderr, "(not_found)") {
			t.Errorf("an unknown list: %v", r)
		}
	})

	// a's agent exported, imported into a third data directory whose
	// daemon x0x daemon start runs; after a restart it is a's agent.
	t.Run("identity-and-daemon", func(t *testing.T) {
		tmp := t.TempDir()
		pass := filepath.Join(tmp, "pass")
		if err := os.WriteFile(pass, []byte("correct horse\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		bundle := filepath.Join(tmp, "a.bundle")
		if out := a.ok("identity", "export", "--passphrase-file", pass, "--out", bundle); !strings.Contains(out, a.agent) {
			t.Fatalf("identity export: %q", out)
		}
		if fi, err := os.Stat(bundle); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("the bundle file: %v %v", fi, err)
		}

		dir := filepath.Join(tmp, "c")
		c := &node{t: t, dir: dir}
		start := func() daemonInfo {
			t.Helper()
			r := runX0x(t, "", "--data-dir", dir, "daemon", "start", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--json")
			var info daemonInfo
			if r.code != 0 || json.Unmarshal([]byte(r.stdout), &info) != nil || !info.Running || info.PID <= 0 || info.Health == nil {
				t.Fatalf("daemon start: %v", r)
			}
			t.Cleanup(func() {
				if running(info.PID) {
					_ = terminate(info.PID)
				}
			})
			if pid, _ := os.ReadFile(filepath.Join(dir, "x0xd.pid")); strings.TrimSpace(string(pid)) != strconv.Itoa(info.PID) {
				t.Fatalf("pid file %q, want %d", pid, info.PID)
			}
			c.api = info.HTTPAddr
			return info
		}
		info := start()
		if out := c.ok("daemon", "status"); !strings.Contains(out, fmt.Sprintf("x0xd is running (pid %d)", info.PID)) || !strings.Contains(out, info.Health.AgentID) {
			t.Fatalf("daemon status:\n%s", out)
		}
		if r := c.run("daemon", "start"); r.code != exitFailed || !strings.Contains(r.stderr, "already") {
			t.Fatalf("a second daemon start: %v", r)
		}
		exported := a.ok("identity", "export", "--passphrase-file", pass) // to stdout
		if r := runX0x(t, exported, c.flags("identity", "import", "-", "--passphrase-file", pass)...); r.code != exitFailed || !strings.Contains(r.stderr, "(would_replace)") {
			t.Fatalf("import without --replace: %v", r)
		}
		r := runX0x(t, "", c.flags("identity", "import", bundle, "--passphrase-file", pass, "--replace", "--json")...)
		var imp localapi.ImportResponse
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &imp) != nil || imp.AgentID != a.agent || !imp.RestartRequired || imp.PreviousKeyFile == "" {
			t.Fatalf("import --replace: %v", r)
		}
		if out := c.ok("daemon", "stop"); out != fmt.Sprintf("x0xd stopped (pid %d)\n", info.PID) {
			t.Fatalf("daemon stop: %q", out)
		}
		if _, err := os.Stat(filepath.Join(dir, "x0xd.pid")); !os.IsNotExist(err) || alive(info.PID) {
			t.Fatalf("after daemon stop: pid file %v, process alive %v", err, alive(info.PID))
		}
		if r := c.run("daemon", "status"); r.code != exitUnreachable || !strings.Contains(r.stderr, "not running") {
			t.Fatalf("daemon status of a stopped daemon: %v", r)
		}
		if r := c.run("daemon", "stop"); r.code != exitUnreachable {
			t.Fatalf("daemon stop of a stopped daemon: %v", r)
		}
		start()
		var id localapi.AgentInfo
		c.json(&id, "id")
		if id.AgentID != a.agent || id.MachineID == a.machine {
			t.Fatalf("after the import and a restart: agent %s machine %s; want agent %s", id.AgentID, id.MachineID, a.agent)
		}
		c.ok("daemon", "stop")
	})
}
