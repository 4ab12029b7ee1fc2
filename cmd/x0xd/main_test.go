package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/x0x"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.listen != "0.0.0.0:12000" || o.httpAddr != "127.0.0.1:12600" || o.network != x0x.NetworkLocal {
		t.Fatalf("defaults = %+v", o)
	}
	if _, err := parseFlags([]string{"-role", "gateway"}, io.Discard); err == nil {
		t.Fatal("unknown role accepted")
	}
	for roles, want := range map[string]x0x.Services{
		"bootstrap": 0, "coordinator": x0x.ServiceCoordinator, "relay": x0x.ServiceRelay,
		"coordinator,relay": x0x.ServiceCoordinator | x0x.ServiceRelay, "bootstrap, relay": x0x.ServiceRelay,
	} {
		if _, err := parseFlags([]string{"-role", roles}, io.Discard); err != nil {
			t.Errorf("-role %q: %v", roles, err)
		}
		if got, err := roleServices(roles); err != nil || got != want {
			t.Errorf("roleServices(%q) = %v, %v; want %v", roles, got, err, want)
		}
	}
	if _, err := parseFlags([]string{"stray"}, io.Discard); err == nil {
		t.Fatal("stray argument accepted")
	}
}

// syncWriter captures the daemon's stdout and signals the ready line.
type syncWriter struct{ lines chan string }

func (w syncWriter) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(strings.NewReader(string(p)))
	for sc.Scan() {
		w.lines <- sc.Text()
	}
	return len(p), nil
}

func field(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// The daemon serves /health and /metrics, accepts an agent, and stops
// cleanly when its context ends (what SIGTERM does).
func TestDaemonServesHealthAndMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := syncWriter{lines: make(chan string, 16)}
	done := make(chan error, 1)
	o := options{dataDir: t.TempDir(), listen: "127.0.0.1:0", httpAddr: "127.0.0.1:0", network: x0x.NetworkLocal, role: "bootstrap"}
	go func() { done <- serve(ctx, o, out, io.Discard) }()
	var ready string
	select {
	case ready = <-out.lines:
	case err := <-done:
		t.Fatalf("daemon exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("daemon not ready")
	}
	if !strings.HasPrefix(ready, "x0xd ready") {
		t.Fatalf("first line %q", ready)
	}
	machine, udp, httpAddr := field(ready, "machine"), field(ready, "udp"), field(ready, "http")

	agent, err := x0x.NewBuilder().WithDataDir(t.TempDir()).WithBootstrap(machine + "@" + udp).Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	if err := agent.JoinNetwork(ctx); err != nil {
		t.Fatal(err)
	}

	var h health
	deadline := time.Now().Add(10 * time.Second)
	for {
		body := httpGet(t, "http://"+httpAddr+"/health")
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			t.Fatalf("/health not JSON: %v: %s", err, body)
		}
		if h.Peers == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if h.Status != "ok" || h.MachineID != machine || h.Peers != 1 || h.Role != "bootstrap" || h.NATType != "unknown" {
		t.Fatalf("/health = %+v", h)
	}
	metrics := httpGet(t, "http://"+httpAddr+"/metrics")
	for _, want := range []string{
		"# TYPE x0x_uptime_seconds gauge\n",
		"# TYPE x0x_transport_peers_connected gauge\nx0x_transport_peers_connected 1\n",
		"# TYPE x0x_transport_inbound_accepted_total counter\nx0x_transport_inbound_accepted_total 1\n",
		`x0x_transport_queue_dropped_total{class="direct",priority="eager"} 0`,
		"# TYPE x0x_nat_punches_ok_total counter\n",
		"# TYPE x0x_pubsub_drop_bad_signature_total counter\n",
		"# TYPE x0x_membership_forged_claims_total counter\n",
		"# TYPE x0x_keys_bad_replies_total counter\n",
		"# TYPE x0x_tasklist_drops_bad_signature_total counter\n",
		"# TYPE x0x_transport_relay_forwarded_packets_total counter\n",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
		}
	}
	agent.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not shut down")
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}
