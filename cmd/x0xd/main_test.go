package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/saorsa-labs/x0x-go/cmd/internal/localapi"
	"github.com/saorsa-labs/x0x-go/core/x0x"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncWriter captures the daemon's stdout and signals the ready line.
type syncWriter struct{ lines chan string }

func (w syncWriter) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(strings.NewReader(string(p)))
	for sc.Scan() {
		w.lines <- sc.Text()
	}
	return len(p), nil
}

// lockedBuffer is the daemon's stderr in tests: its loggers write from
// several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func field(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// daemon is a running serve (what x0xd does) in the test.
type daemon struct {
	ready  string
	stderr *lockedBuffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// startDaemon runs serve with o until the test ends (or stop) and waits
// for its ready line.
func startDaemon(t *testing.T, o options) *daemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{stderr: &lockedBuffer{}, cancel: cancel, done: make(chan error, 1)}
	out := syncWriter{lines: make(chan string, 16)}
	go func() { d.done <- serve(ctx, o, out, d.stderr) }()
	select {
	case d.ready = <-out.lines:
	case err := <-d.done:
		cancel()
		t.Fatalf("daemon exited: %v\n%s", err, d.stderr)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("daemon not ready")
	}
	if !strings.HasPrefix(d.ready, "x0xd ready") {
		t.Fatalf("first line %q", d.ready)
	}
	t.Cleanup(func() { d.stop(t) })
	return d
}

// stop ends the daemon (as SIGTERM does) and fails the test unless it
// shuts down cleanly.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	d.once.Do(func() {
		d.cancel()
		select {
		case d.err = <-d.done:
		case <-time.After(15 * time.Second):
			d.err = errors.New("daemon did not shut down")
		}
	})
	if d.err != nil {
		t.Fatalf("shutdown: %v", d.err)
	}
}

// token reads the API token from the file the ready line names.
func (d *daemon) token(t *testing.T) string {
	t.Helper()
	path := field(d.ready, "token_file")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("token_file in %q: %v", d.ready, err)
	}
	return strings.TrimSpace(string(b))
}

func testOptions(t *testing.T) options {
	return options{dataDir: t.TempDir(), listen: "127.0.0.1:0", httpAddr: "127.0.0.1:0", network: x0x.NetworkLocal, role: "bootstrap"}
}

// get fetches url with client (nil: http.DefaultClient) and the bearer
// token (if any).
func get(t *testing.T, client *http.Client, url, token string) (*http.Response, string) {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func getOK(t *testing.T, client *http.Client, url, token string) string {
	t.Helper()
	resp, body := get(t, client, url, token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	return body
}

// The daemon mounts the local API: /health without a token, /metrics
// (Prometheus, from client_golang) and everything else with the token of
// its data directory; it accepts an agent and stops cleanly when its
// context ends (what SIGTERM does).
func TestDaemonServesHealthAndMetrics(t *testing.T) {
	o := testOptions(t)
	d := startDaemon(t, o)
	machine, udp, httpAddr := field(d.ready, "machine"), field(d.ready, "udp"), field(d.ready, "http")

	// The token file: created at the first start in the data directory,
	// 0600; its path (never the token) is on the ready line.
	tokenFile := field(d.ready, "token_file")
	if tokenFile != filepath.Join(o.dataDir, localapi.TokenFile) {
		t.Errorf("token_file=%s, want %s", tokenFile, filepath.Join(o.dataDir, localapi.TokenFile))
	}
	fi, err := os.Stat(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	token := d.token(t)
	if strings.Contains(d.ready, token) {
		t.Errorf("the ready line shows the token: %q", d.ready)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	agent, err := x0x.NewBuilder().WithDataDir(t.TempDir()).WithBootstrap(machine + "@" + udp).Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	if err := agent.JoinNetwork(ctx); err != nil {
		t.Fatal(err)
	}

	// /health: no token needed; role, NAT type, external addresses, peers,
	// topics and the build version.
	var h localapi.Health
	deadline := time.Now().Add(10 * time.Second)
	for {
		body := getOK(t, nil, "http://"+httpAddr+"/health", "")
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			t.Fatalf("/health not JSON: %v: %s", err, body)
		}
		if h.Peers == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if h.Status != "ok" || h.MachineID != machine || h.Peers != 1 || h.Role != "bootstrap" || h.NATType != "unknown" ||
		h.Version != x0x.Version || h.ExternalAddrs == nil || h.Topics != 0 || h.UDPAddr != udp {
		t.Fatalf("/health = %+v", h)
	}

	// Every other route needs the token: 401 without it or with a wrong one.
	for _, tok := range []string{"", strings.Repeat("0", 64)} {
		for _, path := range []string{"/metrics", "/v1/agent", "/.well-known/agent.json", "/openapi.json"} {
			resp, body := get(t, nil, "http://"+httpAddr+path, tok)
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("GET %s with token %q: %s %q, want 401 with a Bearer challenge", path, tok, resp.Status, body)
			}
		}
	}

	// /metrics: the Prometheus text format, parsed with expfmt.
	resp, body := get(t, nil, "http://"+httpAddr+"/metrics", token)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	want := map[string]dto.MetricType{
		"go_goroutines":                        dto.MetricType_GAUGE,
		"go_memstats_heap_alloc_bytes":         dto.MetricType_GAUGE,
		"x0x_uptime_seconds":                   dto.MetricType_GAUGE,
		"x0x_transport_peers_connected":        dto.MetricType_GAUGE,
		"x0x_transport_inbound_accepted_total": dto.MetricType_COUNTER,
		"x0x_transport_queue_dropped_total":    dto.MetricType_COUNTER,
	}
	if runtime.GOOS == "linux" {
		want["process_resident_memory_bytes"] = dto.MetricType_GAUGE
		want["process_open_fds"] = dto.MetricType_GAUGE
	}
	// Every series the agent reports (names read at run time from an
	// agent of this build, the one that joined) is exported with its type.
	for _, m := range agent.Metrics() {
		typ := dto.MetricType_COUNTER
		if m.Gauge {
			typ = dto.MetricType_GAUGE
		}
		want[m.Name] = typ
	}
	layers := map[string]bool{}
	for name, typ := range want {
		f, ok := fams[name]
		if !ok {
			t.Errorf("/metrics lacks %s", name)
			continue
		}
		if f.GetType() != typ {
			t.Errorf("/metrics: %s is a %v, want %v", name, f.GetType(), typ)
		}
		if parts := strings.SplitN(name, "_", 3); parts[0] == "x0x" {
			layers[parts[1]] = true
		}
	}
	for _, layer := range []string{"transport", "nat", "membership", "pubsub", "tasklist", "keys"} {
		if !layers[layer] {
			t.Errorf("/metrics has no x0x_%s_* counters", layer)
		}
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		f := fams[name]
		if f == nil {
			return 0, false
		}
	next:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			}
		}
		return 0, false
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"x0x_transport_peers_connected", nil, 1},
		{"x0x_transport_inbound_accepted_total", nil, 1},
		{"x0x_transport_queue_dropped_total", map[string]string{"class": "direct", "priority": "eager"}, 0},
	} {
		if v, ok := value(c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if v, ok := value("x0x_uptime_seconds", nil); !ok || v <= 0 || v > 600 {
		t.Errorf("x0x_uptime_seconds = %v (present %v)", v, ok)
	}
	if v, ok := value("go_goroutines", nil); !ok || v < 1 {
		t.Errorf("go_goroutines = %v (present %v)", v, ok)
	}
	if runtime.GOOS == "linux" {
		if v, ok := value("process_resident_memory_bytes", nil); !ok || v < 1<<20 {
			t.Errorf("process_resident_memory_bytes = %v (present %v)", v, ok)
		}
	}

	agent.Close()
	d.stop(t)
	if strings.Contains(d.stderr.String(), token) {
		t.Error("the token is in the log")
	}
}

// The daemon refuses a non-loopback -http address unless
// -http-allow-remote is given with TLS (checked before anything binds).
func TestCheckHTTPAddr(t *testing.T) {
	for _, c := range []struct {
		addr         string
		allow, tls   bool
		wantErr      string
		loopbackOnly bool
	}{
		{addr: "127.0.0.1:1"},
		{addr: "127.1.2.3:1"},
		{addr: "[::1]:1"},
		{addr: "localhost:1"},
		{addr: "LOCALHOST:1"},
		{addr: "[::ffff:127.0.0.1]:1"},
		{addr: "127.0.0.1:1", allow: true},
		{addr: "0.0.0.0:0", wantErr: "not a loopback address"},
		{addr: "192.0.2.1:1", wantErr: "not a loopback address"},
		{addr: "[::]:1", wantErr: "not a loopback address"},
		{addr: ":12600", wantErr: "not a loopback address"},
		{addr: "example.org:1", wantErr: "not a loopback address"},
		{addr: "192.0.2.1:1", tls: true, wantErr: "not a loopback address"},
		{addr: "0.0.0.0:0", allow: true, wantErr: "needs TLS"},
		{addr: "192.0.2.1:1", allow: true, wantErr: "needs TLS"},
		{addr: "[::]:1", allow: true, wantErr: "needs TLS"},
		{addr: "0.0.0.0:0", allow: true, tls: true},
		{addr: "192.0.2.1:1", allow: true, tls: true},
		{addr: "[::]:1", allow: true, tls: true},
		{addr: "127.0.0.1", wantErr: "missing port"},
	} {
		err := checkHTTPAddr(c.addr, c.allow, c.tls)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("checkHTTPAddr(%q, allow %v, tls %v): %v", c.addr, c.allow, c.tls, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("checkHTTPAddr(%q, allow %v, tls %v) = %v, want %q", c.addr, c.allow, c.tls, err, c.wantErr)
		}
	}

	// The configuration and serve refuse them too, before binding anything.
	env := func(string) string { return "" }
	cert, key := writeTestCert(t)
	for _, c := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"-http", "0.0.0.0:0"}, "-http 0.0.0.0:0 is not a loopback address"},
		{[]string{"-http", "0.0.0.0:0", "-http-allow-remote"}, "needs TLS"},
		{[]string{"-http", "0.0.0.0:0", "-http-allow-remote", "-http-tls-cert", cert}, "go together"},
		{[]string{"-http", "0.0.0.0:0", "-http-tls-cert", cert, "-http-tls-key", key}, "not a loopback address"},
	} {
		if _, err := parseConfig(c.args, env, io.Discard); err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%v: %v, want %q", c.args, err, c.wantErr)
		}
	}
	if o, err := parseConfig([]string{"-http", "0.0.0.0:0", "-http-allow-remote", "-http-tls-cert", cert, "-http-tls-key", key}, env, io.Discard); err != nil || !o.allowRemote {
		t.Errorf("-http-allow-remote with TLS: %+v, %v", o, err)
	}
	// The context is cancelled already: were the check missing, the agent
	// would not start (Build checks the context first) and nothing would
	// bind, but the error would be another.
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		o       options
		wantErr string
	}{
		{options{dataDir: t.TempDir(), listen: "127.0.0.1:0", httpAddr: "0.0.0.0:0", role: "bootstrap"}, "not a loopback address"},
		{options{dataDir: t.TempDir(), listen: "127.0.0.1:0", httpAddr: "0.0.0.0:0", role: "bootstrap", allowRemote: true}, "needs TLS"},
	} {
		o := c.o
		if err := serve(cancelled, o, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("serve(%+v): %v, want %q", o, err, c.wantErr)
		}
		if _, err := os.Stat(filepath.Join(o.dataDir, localapi.TokenFile)); err == nil {
			t.Errorf("serve(%+v) got as far as the token file", o)
		}
	}
}

// -log-format json writes one JSON object per line: the daemon's and the
// agent's messages alike.
func TestJSONLogs(t *testing.T) {
	o := testOptions(t)
	o.logFormat, o.logLevel = "json", "debug"
	d := startDaemon(t, o)
	token := d.token(t)
	d.stop(t)
	logs := d.stderr.String()
	lines := strings.Split(strings.TrimSuffix(logs, "\n"), "\n")
	if len(lines) < 2 {
		t.Fatalf("only %d log lines:\n%s", len(lines), logs)
	}
	msgs := map[string]bool{}
	for i, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %d is not JSON: %v: %q", i+1, err, line)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("log line %d has no %q: %q", i+1, k, line)
			}
		}
		msgs[rec["msg"].(string)] = true
	}
	if !msgs["x0xd ready"] || !msgs["shutting down"] {
		t.Errorf("messages %v: want x0xd ready and shutting down", msgs)
	}
	if strings.Contains(logs, token) {
		t.Error("the token is in the log")
	}

	// Text (the default) is not JSON; the level filters.
	var buf bytes.Buffer
	l, err := newLogger(&buf, "", "warn")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "k", 1)
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, "level=WARN msg=shown k=1") {
		t.Errorf("text log %q", got)
	}
	for _, c := range [][2]string{{"xml", "info"}, {"text", "loud"}} {
		if _, err := newLogger(io.Discard, c[0], c[1]); err == nil {
			t.Errorf("newLogger(%q, %q) accepted", c[0], c[1])
		}
	}
}
