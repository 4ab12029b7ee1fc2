// Command x0x-demo runs the Go parts of the main job on loopback. With
// -team DIR it is the Go agent of the cross-language team demo (see
// team.go). Otherwise two agents, alice and bob,
// join the network through a running x0xd bootstrap node, connect to each
// other, exchange direct messages both ways, survive bob's restart, and
// check the daemon's health and metrics. It prints a transcript and exits
// non-zero if anything did not happen as it should.
//
//	x0x-demo -bootstrap 127.0.0.1:PORT -health http://127.0.0.1:PORT -token-file DIR/api-token
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

func main() {
	bootstrap := flag.String("bootstrap", "", "x0xd UDP address (peerid@host:port or host:port)")
	healthURL := flag.String("health", "", "x0xd HTTP base URL, e.g. http://127.0.0.1:12600")
	tokenFile := flag.String("token-file", "", "x0xd's API token file (<data dir>/api-token): /metrics needs the token")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after this long")
	team := flag.String("team", "", "run the Go agent of the cross-language team demo, sharing this directory with the Node and Python agents")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var err error
	if *team != "" {
		err = runTeam(ctx, *team, *bootstrap, os.Stdout)
	} else {
		var token []byte
		if *tokenFile != "" {
			token, err = os.ReadFile(*tokenFile)
		}
		if err == nil {
			err = run(ctx, *bootstrap, *healthURL, strings.TrimSpace(string(token)), os.Stdout)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo FAILED:", err)
		os.Exit(1)
	}
}

// say prints one transcript line with a speaker tag.
func say(w io.Writer, who, format string, a ...any) {
	fmt.Fprintf(w, "%-7s %s\n", "["+who+"]", fmt.Sprintf(format, a...))
}

func newAgent(ctx context.Context, dir, bootstrap string) (*x0x.Agent, error) {
	return x0x.NewBuilder().WithDataDir(dir).WithBindAddr("127.0.0.1:0").WithBootstrap(bootstrap).Build(ctx)
}

func run(ctx context.Context, bootstrap, healthURL, token string, out io.Writer) error {
	if bootstrap == "" || healthURL == "" {
		return errors.New("-bootstrap and -health are required")
	}
	base, err := os.MkdirTemp("", "x0x-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)

	alice, err := newAgent(ctx, base+"/alice", bootstrap)
	if err != nil {
		return fmt.Errorf("alice: %w", err)
	}
	defer alice.Close()
	bob, err := newAgent(ctx, base+"/bob", bootstrap)
	if err != nil {
		return fmt.Errorf("bob: %w", err)
	}
	bobAgent, bobMachine := bob.AgentID(), bob.MachineID()
	say(out, "alice", "agent %s on machine %s, listening on %s", alice.AgentID().Short(), alice.MachineID().Short(), alice.Addr())
	say(out, "bob", "agent %s on machine %s, listening on %s", bobAgent.Short(), bobMachine.Short(), bob.Addr())

	if err := alice.JoinNetwork(ctx); err != nil {
		return fmt.Errorf("alice join: %w", err)
	}
	if err := bob.JoinNetwork(ctx); err != nil {
		return fmt.Errorf("bob join: %w", err)
	}
	say(out, "alice", "joined through the bootstrap node (X25519MLKEM768 + ML-DSA-65 proven)")
	say(out, "bob", "joined through the bootstrap node")

	bobAddr := bob.Addr()
	if _, err := alice.Connect(ctx, bobMachine.String()+"@"+bobAddr); err != nil {
		return fmt.Errorf("alice -> bob connect: %w", err)
	}
	if err := alice.WaitForAgent(ctx, bobAgent); err != nil {
		return err
	}
	say(out, "alice", "connected to bob's machine %s; it carries agent %s", bobMachine.Short(), bobAgent.Short())

	if err := exchange(ctx, out, "alice", alice, "bob", bob, "hello bob, this is alice"); err != nil {
		return err
	}
	if err := exchange(ctx, out, "bob", bob, "alice", alice, "hi alice, bob here"); err != nil {
		return err
	}

	// Restart bob on the same port with the same keys: alice redials him.
	say(out, "bob", "restarting (same data directory, same port)")
	if err := bob.Close(); err != nil {
		return err
	}
	bob, err = x0x.NewBuilder().WithDataDir(base + "/bob").WithBindAddr(bobAddr).WithBootstrap(bootstrap).Build(ctx)
	if err != nil {
		return fmt.Errorf("bob restart: %w", err)
	}
	defer bob.Close()
	if bob.AgentID() != bobAgent || bob.MachineID() != bobMachine {
		return errors.New("bob's identity changed across the restart")
	}
	if err := bob.JoinNetwork(ctx); err != nil {
		return fmt.Errorf("bob rejoin: %w", err)
	}
	say(out, "bob", "back with the same identity %s", bob.AgentID().Short())
	if err := alice.WaitForAgent(ctx, bobAgent); err != nil {
		return fmt.Errorf("alice did not reconnect to bob: %w", err)
	}
	say(out, "alice", "reconnected to bob automatically")
	if err := exchange(ctx, out, "alice", alice, "bob", bob, "welcome back, bob"); err != nil {
		return err
	}

	return checkDaemon(ctx, out, healthURL, token)
}

// exchange sends text from one agent to another and waits for it to arrive
// intact with the right sender.
func exchange(ctx context.Context, out io.Writer, fromName string, from *x0x.Agent, toName string, to *x0x.Agent, text string) error {
	events, err := to.Events() // before sending: a stream sees events from when it opens
	if err != nil {
		return err
	}
	defer events.Close()
	if err := from.SendDirect(ctx, to.AgentID(), []byte(text)); err != nil {
		return fmt.Errorf("%s -> %s: %w", fromName, toName, err)
	}
	say(out, fromName, "-> %s: %q", toName, text)
	for {
		ev, err := events.Next(ctx)
		if errors.Is(err, x0x.ErrLagged) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s never received %q: %w", toName, text, err)
		}
		if ev.Kind != x0x.EventDirectMessage {
			continue
		}
		if ev.From != from.AgentID() || string(ev.Payload) != text {
			return fmt.Errorf("%s got %q from %s, want %q from %s", toName, ev.Payload, ev.From.Short(), text, from.AgentID().Short())
		}
		say(out, toName, "<- %s (agent %s, signature-bound connection): %q", fromName, ev.From.Short(), ev.Payload)
		return nil
	}
}

// checkDaemon reads the daemon's /health and /metrics and checks that it
// saw the agents.
func checkDaemon(ctx context.Context, out io.Writer, base, token string) error {
	var h struct {
		Status    string `json:"status"`
		Role      string `json:"role"`
		MachineID string `json:"machine_id"`
		Peers     int    `json:"peers"`
	}
	body, err := get(ctx, base+"/health", "")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return fmt.Errorf("/health: %w", err)
	}
	if h.Status != "ok" || h.Peers < 2 {
		return fmt.Errorf("/health = %s, want status ok and at least 2 peers", body)
	}
	say(out, "x0xd", "/health: status=%s role=%s machine=%s peers=%d", h.Status, h.Role, h.MachineID[:8], h.Peers)
	metrics, err := get(ctx, base+"/metrics", token)
	if err != nil {
		return err
	}
	var shown []string
	sc := bufio.NewScanner(strings.NewReader(string(metrics)))
	for sc.Scan() {
		line := sc.Text()
		for _, m := range []string{"x0x_transport_peers_connected ", "x0x_transport_inbound_accepted_total ", "x0x_transport_auth_failures_total ", "x0x_transport_tls_refused_total "} {
			if strings.HasPrefix(line, m) {
				shown = append(shown, line)
			}
		}
	}
	if len(shown) != 4 {
		return fmt.Errorf("/metrics lacks expected series:\n%s", metrics)
	}
	say(out, "x0xd", "/metrics: %s", strings.Join(shown, ", "))
	say(out, "demo", "OK: 3 direct messages delivered, 1 restart survived")
	return nil
}

func get(ctx context.Context, url, token string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}
