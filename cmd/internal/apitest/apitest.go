// Package apitest starts x0x agents behind their local API, for the tests
// of the packages that serve or use that API (localapi, mcpserver).
package apitest

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/cmd/internal/apiclient"
	"github.com/saorsa-labs/x0x-go/cmd/internal/localapi"
	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// Token is the API token of every node StartNode starts.
const Token = "0123456789abcdef0123456789abcdef-test"

// Role is the role the nodes' /health reports.
const Role = "bootstrap"

// startTimeout bounds starting an agent and connecting two.
const startTimeout = 20 * time.Second

// Node is an x0x agent with its local API behind an HTTP test server.
type Node struct {
	// Agent is the node's agent: a fresh key in a temporary data
	// directory, listening on a loopback port.
	Agent *x0x.Agent
	// Server is the agent's local API.
	Server *localapi.Server
	// HTTP serves Server's handler.
	HTTP *httptest.Server
	// Client is a client of HTTP with Token.
	Client *apiclient.Client
}

// StartNode starts a node whose API has the limits lim (zero fields: the
// defaults) and stops it when the test ends.
func StartNode(t testing.TB, lim localapi.Limits) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	a, err := x0x.NewBuilder().WithDataDir(t.TempDir()).WithBindAddr("127.0.0.1:0").Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := localapi.New(localapi.Config{Agent: a, Token: Token, Role: Role, Limits: lim})
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.CloseClientConnections()
		srv.Close()
		hs.Close()
		a.Close()
	})
	return &Node{Agent: a, Server: srv, HTTP: hs, Client: apiclient.New(hs.URL, Token, hs.Client())}
}

// Connect connects a to b through a's API, with b's dial address, and
// fails the test unless the peer a connected to is b's machine.
func Connect(t testing.TB, a, b *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	info, err := b.Client.Agent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := a.Client.Connect(ctx, info.DialAddr)
	if err != nil {
		t.Fatal(err)
	}
	if peer != info.MachineID {
		t.Fatalf("connected to %s, want %s", peer, info.MachineID)
	}
}

// WaitFor polls cond every 50 ms until it holds, and fails the test if it
// does not within 20 s; what says what it waits for.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	Poll(t, what, 50*time.Millisecond, cond)
}

// Poll is WaitFor polling every every.
func Poll(t testing.TB, what string, every time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(every)
	}
}
