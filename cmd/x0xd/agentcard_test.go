package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// The daemon serves its agent's A2A card on its local HTTP address, at
// /.well-known/agent.json and /.well-known/agent-card.json; the card's URL
// is that address, and its x0x extension names the daemon's agent and a
// bootstrap address another agent joins through. (core/x0x's tests check
// the card against the A2A JSON schema.)
func TestDaemonServesAgentCard(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
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
	agentID, machine, httpAddr := field(ready, "agent"), field(ready, "machine"), field(ready, "http")

	var cards []x0x.AgentCard
	for _, path := range []string{"/.well-known/agent.json", "/.well-known/agent-card.json"} {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET %s: %s, Content-Type %q", path, resp.Status, resp.Header.Get("Content-Type"))
		}
		var card x0x.AgentCard
		if err := json.Unmarshal(body, &card); err != nil {
			t.Fatalf("GET %s: not an agent card: %v\n%s", path, err, body)
		}
		var raw map[string]any
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"protocolVersion", "name", "description", "url", "version", "capabilities",
			"defaultInputModes", "defaultOutputModes", "skills"} { // the A2A AgentCard's required properties
			if _, ok := raw[k]; !ok {
				t.Errorf("GET %s: no %q in %s", path, k, body)
			}
		}
		cards = append(cards, card)
	}
	card := cards[0]
	if cards[1].URL != card.URL || cards[1].Name != card.Name {
		t.Errorf("agent.json and agent-card.json differ: %+v / %+v", card, cards[1])
	}

	wantURL := "http://" + httpAddr + "/"
	if card.ProtocolVersion != x0x.A2AProtocolVersion || card.URL != wantURL || card.PreferredTransport != agentCardTransport ||
		card.Version != x0x.Version {
		t.Errorf("protocolVersion %q, url %q (want %q), preferredTransport %q, version %q",
			card.ProtocolVersion, card.URL, wantURL, card.PreferredTransport, card.Version)
	}
	if len(card.AdditionalInterfaces) != 2 || card.AdditionalInterfaces[0] != (x0x.AgentInterface{URL: wantURL, Transport: agentCardTransport}) ||
		card.AdditionalInterfaces[1].Transport != x0x.A2ATransport {
		t.Fatalf("additionalInterfaces %+v", card.AdditionalInterfaces)
	}
	if u, err := url.Parse(card.AdditionalInterfaces[1].URL); err != nil || u.Scheme != "x0x" || u.User.Username() != machine || u.Path != "/"+agentID {
		t.Errorf("x0x URL %q: want x0x://%s@<addr>/%s", card.AdditionalInterfaces[1].URL, machine, agentID)
	}
	var skills []string
	for _, s := range card.Skills {
		skills = append(skills, s.ID)
	}
	if !slices.Equal(skills, []string{"x0x-pubsub", "x0x-direct", "x0x-tasklists", "x0x-groups"}) {
		t.Errorf("skills %v", skills)
	}
	if len(card.Capabilities.Extensions) != 1 {
		t.Fatalf("extensions %+v", card.Capabilities.Extensions)
	}
	params := card.Capabilities.Extensions[0].Params
	if params["agentId"] != agentID || params["machineId"] != machine {
		t.Errorf("x0x extension params %v: want agent %s, machine %s", params, agentID, machine)
	}

	// The card's bootstrap address works.
	bootstrap, _ := params["bootstrap"].(string)
	joinCtx, joinCancel := context.WithTimeout(ctx, 20*time.Second)
	defer joinCancel()
	agent, err := x0x.NewBuilder().WithDataDir(t.TempDir()).WithBootstrap(bootstrap).Build(joinCtx)
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	if err := agent.JoinNetwork(joinCtx); err != nil {
		t.Fatalf("joining through the card's bootstrap %q: %v", bootstrap, err)
	}

	// Only GET.
	resp, err := http.Post("http://"+httpAddr+"/.well-known/agent.json", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s", resp.Status)
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
