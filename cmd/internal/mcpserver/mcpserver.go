// Package mcpserver is x0x's MCP server (`x0x mcp`): it lets an LLM agent
// use an x0xd daemon through the Model Context Protocol. It is built on
// the official MCP Go SDK and calls the daemon's local API through
// apiclient, so it runs in its own process beside the daemon (over stdio,
// Run) or wherever an *mcp.Server can be served (New).
//
// Tools (structured results: the API's JSON, plus a short text summary;
// an API error is a tool result with IsError set whose text starts with
// the API's code, e.g. "task_not_claimed: ..."):
//
//   - whoami, list_peers
//   - publish, read_messages (a topic's messages after a cursor; the topic
//     is followed on first use)
//   - send_direct, read_direct
//   - tasklist_create, tasklist_join, tasklist_add, tasklist_claim,
//     tasklist_complete, tasklist_list
//
// Resources: x0x://tasklist/{list} (a task list's snapshot) and
// x0x://topic/{topic} (a followed topic's recent messages; the topic name
// is percent-encoded, so "a/b" is x0x://topic/a%2Fb). resources/list
// names the followed topics and the stored task lists. A client that
// subscribes to one of these URIs gets notifications/resources/updated
// whenever the topic has a new message or the list changes (see
// subscribe.go).
package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/saorsa-labs/x0x-go/cmd/internal/apiclient"
	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// Options configures a server; zero fields take defaults.
type Options struct {
	// Name and Version identify the server to clients (defaults "x0x" and
	// the x0x version).
	Name, Version string
	// Logger receives the SDK's and the server's messages; nil discards
	// them (stdout carries the protocol: never log there).
	Logger *slog.Logger
	// MaxWait caps a tool's wait_ms (default 30 s, the daemon's own cap).
	MaxWait time.Duration
	// PollWait is how long one long-poll of a subscription's watcher waits
	// at the daemon (default 25 s).
	PollWait time.Duration
	// RecentMessages is how many of a topic's newest messages its resource
	// shows (default 50).
	RecentMessages int
}

func (o *Options) fill() {
	if o.Name == "" {
		o.Name = "x0x"
	}
	if o.Version == "" {
		o.Version = x0x.Version
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 30 * time.Second
	}
	if o.PollWait <= 0 {
		o.PollWait = 25 * time.Second
	}
	if o.RecentMessages <= 0 {
		o.RecentMessages = 50
	}
}

// instructions tell the client's model how the tools fit together.
const instructions = `x0x is a post-quantum peer-to-peer network for AI agents; these tools use the local x0xd daemon's agent.
- whoami: your agent ID (others send direct messages to it) and address; list_peers: the machines you are connected to.
- Topics (gossip, everyone who follows the topic gets the message): publish, then read_messages. read_messages returns items after a cursor plus next_cursor; without "after" it continues where your last read of that topic stopped, so calling it repeatedly reads only new messages. wait_ms long-polls for news. The first read of a topic starts following it: messages published before that are not seen.
- Direct messages to one agent: send_direct, read_direct (the same cursors).
- Task lists shared by agents (CRDT): tasklist_create (open=true lets every agent write), share its id; others tasklist_join it. tasklist_add adds a task; an agent tasklist_claim-s a task, and only the claimant can tasklist_complete it. tasklist_list shows your lists, or one list's tasks and their state (open, claimed, done).
- Errors come back as tool errors whose text starts with a code, e.g. "task_not_claimed:", "claimed_by_other:", "task_done:", "no_route:".
- Resources x0x://topic/{topic} and x0x://tasklist/{list} can be subscribed to: you are notified when they change.`

// handler holds a server's state: the sessions' read cursors and the
// subscriptions' watchers.
type handler struct {
	client *apiclient.Client
	opts   Options
	srv    *mcp.Server

	mu       sync.Mutex
	sessions map[*mcp.ServerSession]*sessionState
	watches  map[string]*watch // by resource URI
	closed   bool
	wg       sync.WaitGroup // session waiters and watchers
}

// sessionState is what one MCP session remembers: where its reads of
// each topic, and of the direct messages, stopped.
type sessionState struct {
	topics map[string]uint64
	direct uint64
}

// New returns an MCP server whose tools and resources use the daemon
// that client calls. It can serve any number of sessions (Server.Run,
// Server.Connect, or the SDK's HTTP handlers); the goroutines a session
// starts (its subscriptions' watchers) end when the session ends.
func New(client *apiclient.Client, opts Options) *mcp.Server {
	return newHandler(client, opts).srv
}

func newHandler(client *apiclient.Client, opts Options) *handler {
	opts.fill()
	h := &handler{client: client, opts: opts, sessions: map[*mcp.ServerSession]*sessionState{}, watches: map[string]*watch{}}
	h.srv = mcp.NewServer(&mcp.Implementation{Name: opts.Name, Title: "x0x agent network", Version: opts.Version}, &mcp.ServerOptions{
		Instructions:       instructions,
		Logger:             opts.Logger,
		SubscribeHandler:   h.subscribe,
		UnsubscribeHandler: h.unsubscribe,
		// No list_changed notifications are sent (the tool list is fixed;
		// the concrete resources are computed at each resources/list).
		Capabilities: &mcp.ServerCapabilities{
			Tools:     &mcp.ToolCapabilities{},
			Resources: &mcp.ResourceCapabilities{Subscribe: true},
		},
	})
	h.addTools()
	h.addResources()
	return h
}

// Run serves one MCP session over in and out (newline-delimited JSON-RPC:
// the stdio transport) until the client closes in or ctx ends, then stops
// the session's watchers and returns. A clean end (EOF on in, or ctx
// cancelled) returns nil. If in is an io.Closer it is closed when the
// session ends; out is never closed.
func Run(ctx context.Context, client *apiclient.Client, in io.Reader, out io.Writer) error {
	return RunWith(ctx, client, in, out, Options{})
}

// RunWith is Run with options.
func RunWith(ctx context.Context, client *apiclient.Client, in io.Reader, out io.Writer, opts Options) error {
	h := newHandler(client, opts)
	rc, ok := in.(io.ReadCloser)
	if !ok {
		rc = io.NopCloser(in)
	}
	err := h.srv.Run(ctx, &mcp.IOTransport{Reader: rc, Writer: nopWriteCloser{out}})
	h.shutdown()
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// session returns the state of ss, starting (once per session) the
// goroutine that forgets it and stops its subscriptions when it ends.
func (h *handler) session(ss *mcp.ServerSession) *sessionState {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.sessions[ss]
	if st == nil {
		st = &sessionState{topics: map[string]uint64{}}
		h.sessions[ss] = st
		h.wg.Go(func() {
			_ = ss.Wait()
			h.endSession(ss)
		})
	}
	return st
}

// endSession forgets ss and stops the watchers only it subscribed to.
func (h *handler) endSession(ss *mcp.ServerSession) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.sessions, ss)
	for uri, w := range h.watches {
		delete(w.subs, ss)
		if len(w.subs) == 0 {
			w.cancel()
			delete(h.watches, uri)
		}
	}
}

// shutdown stops every watcher and waits for the server's goroutines
// (call it after the sessions ended).
func (h *handler) shutdown() {
	h.mu.Lock()
	h.closed = true
	for uri, w := range h.watches {
		w.cancel()
		delete(h.watches, uri)
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// ---- results and errors -------------------------------------------------

// result is a tool's successful result: the summary for a reader, then
// the structured output serialized as JSON (for clients that only pass
// text content on), and the output as structured content.
func result[Out any](summary string, out Out) (*mcp.CallToolResult, Out, error) {
	b, err := json.Marshal(out)
	if err != nil {
		var zero Out
		return nil, zero, err
	}
	return &mcp.CallToolResult{Content: []mcp.Content{
		&mcp.TextContent{Text: summary},
		&mcp.TextContent{Text: string(b)},
	}}, out, nil
}

// toolError turns an API call's error into a tool error (IsError, not a
// protocol error) whose text starts with the API's code.
func toolError(err error) error {
	var ae *apiclient.Error
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s (HTTP %d)", ae.Code, ae.Message, ae.Status)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cancelled: %v", err)
	}
	return fmt.Errorf("daemon_unreachable: the x0xd local API did not answer: %v", err)
}

// invalid is a tool error for bad arguments.
func invalid(format string, a ...any) error {
	return fmt.Errorf("invalid_argument: "+format, a...)
}

// short abbreviates a 64-hex-digit ID for summaries.
func short(id string) string {
	if len(id) > 12 {
		return id[:12] + "…"
	}
	return id
}

// clip shortens text for a summary line.
func clip(text *string, payloadB64 string) string {
	if text == nil {
		return fmt.Sprintf("(binary, %d base64 characters)", len(payloadB64))
	}
	s := strings.ReplaceAll(*text, "\n", " ")
	if utf8.RuneCountInString(s) > 200 {
		r := []rune(s)
		s = string(r[:200]) + "…"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
