package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/cmd/internal/localapi"
	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// The daemon serves its agent's A2A card on its local HTTP address, at
// /.well-known/agent.json and /.well-known/agent-card.json; the card's URL
// is that address, and its x0x extension names the daemon's agent and a
// bootstrap address another agent joins through. (core/x0x's tests check
// the card against the whole A2A JSON schema; this test checks the
// served card's properties against its AgentCard definition.)
func TestDaemonServesAgentCard(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := startDaemon(t, testOptions(t))
	agentID, machine, httpAddr := field(d.ready, "agent"), field(d.ready, "machine"), field(d.ready, "http")
	token := d.token(t)
	schema := a2aAgentCardSchema(t)

	var cards []x0x.AgentCard
	for _, path := range []string{"/.well-known/agent.json", "/.well-known/agent-card.json"} {
		if resp, _ := get(t, nil, "http://"+httpAddr+path, ""); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %s", path, resp.Status)
		}
		resp, b := get(t, nil, "http://"+httpAddr+path, token)
		body := []byte(b)
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
		// The A2A schema's AgentCard: every required property is there, and
		// every property is one it declares.
		for _, k := range schema.Required {
			if _, ok := raw[k]; !ok {
				t.Errorf("GET %s: no %q in %s", path, k, body)
			}
		}
		for k := range raw {
			if _, ok := schema.Properties[k]; !ok {
				t.Errorf("GET %s: property %q is not in the A2A schema's AgentCard", path, k)
			}
		}
		cards = append(cards, card)
	}
	card := cards[0]
	if cards[1].URL != card.URL || cards[1].Name != card.Name {
		t.Errorf("agent.json and agent-card.json differ: %+v / %+v", card, cards[1])
	}

	wantURL := "http://" + httpAddr + "/"
	if card.ProtocolVersion != x0x.A2AProtocolVersion || card.URL != wantURL || card.PreferredTransport != localapi.AgentCardTransport ||
		card.Version != x0x.Version {
		t.Errorf("protocolVersion %q, url %q (want %q), preferredTransport %q, version %q",
			card.ProtocolVersion, card.URL, wantURL, card.PreferredTransport, card.Version)
	}
	if len(card.AdditionalInterfaces) != 2 || card.AdditionalInterfaces[0] != (x0x.AgentInterface{URL: wantURL, Transport: localapi.AgentCardTransport}) ||
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
	req, err := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/.well-known/agent.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s", resp.Status)
	}
	agent.Close()
	d.stop(t)
}

// a2aAgentCardSchema reads the AgentCard definition of the A2A JSON schema
// vendored in core/x0x/testdata (core/x0x's tests validate the card
// against all of it).
func a2aAgentCardSchema(t *testing.T) (def struct {
	Required   []string
	Properties map[string]json.RawMessage
}) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "core", "x0x", "testdata", "a2a-0.3.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Definitions map[string]json.RawMessage
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(doc.Definitions["AgentCard"], &def); err != nil || len(def.Required) == 0 {
		t.Fatalf("the schema's AgentCard: %v", err)
	}
	return def
}
