package localapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/saorsa-labs/x0x-go/cmd/internal/apiclient"
	"github.com/saorsa-labs/x0x-go/cmd/internal/apitest"
	"github.com/saorsa-labs/x0x-go/cmd/internal/localapi"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Every route but /health refuses a request without the token, and one
// with a wrong token, with 401 and a Bearer challenge.
func TestEveryRouteButHealthNeedsTheToken(t *testing.T) {
	n := apitest.StartNode(t, localapi.Limits{})
	hex := strings.Repeat("ab", 32)
	routes := n.Server.Routes()
	if len(routes) < 40 {
		t.Fatalf("only %d routes", len(routes))
	}
	for _, rt := range routes {
		path := strings.NewReplacer("{list}", hex, "{task}", hex, "{group}", hex, "{agent}", hex).Replace(rt.Path)
		for _, auth := range []string{"", "Bearer wrong-token-wrong-token-wrong-token", "Basic " + apitest.Token} {
			// A route that served the request would stream or wait: bound it.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			req, _ := http.NewRequestWithContext(ctx, rt.Method, n.HTTP.URL+path, strings.NewReader("{}"))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := n.HTTP.Client().Do(req)
			if err != nil {
				cancel()
				t.Fatalf("%s %s with %q: %v", rt.Method, rt.Path, auth, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			cancel()
			if rt.Public {
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s %s (public) = %d", rt.Method, rt.Path, resp.StatusCode)
				}
				continue
			}
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") ||
				!strings.Contains(string(body), `"unauthorized"`) {
				t.Errorf("%s %s with %q = %d %s", rt.Method, rt.Path, auth, resp.StatusCode, body)
			}
		}
	}
	var public []string
	for _, rt := range routes {
		if rt.Public {
			public = append(public, rt.Method+" "+rt.Path)
		}
	}
	if len(public) != 1 || public[0] != "GET /health" {
		t.Fatalf("public routes %v, want only GET /health", public)
	}
}

// The OpenAPI document lists exactly the routes the server registers,
// each with a 200 response, the token's 401 (all but /health), unique
// operation IDs, and schemas every $ref of which resolves.
func TestOpenAPIDocumentMatchesTheRoutes(t *testing.T) {
	n := apitest.StartNode(t, localapi.Limits{})
	doc := fetchOpenAPI(t, n)
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi %v", doc["openapi"])
	}
	paths := doc["paths"].(map[string]any)
	documented := map[string]bool{}
	opIDs := map[string]bool{}
	for p, ops := range paths {
		for m, op := range ops.(map[string]any) {
			key := strings.ToUpper(m) + " " + p
			documented[key] = true
			o := op.(map[string]any)
			id, _ := o["operationId"].(string)
			if id == "" || opIDs[id] {
				t.Errorf("%s: operationId %q missing or repeated", key, id)
			}
			opIDs[id] = true
			resp := o["responses"].(map[string]any)
			if resp["200"] == nil {
				t.Errorf("%s: no 200 response", key)
			}
			if (p == "/health") == (resp["401"] != nil) {
				t.Errorf("%s: 401 documented: %v", key, resp["401"] != nil)
			}
		}
	}
	served := map[string]bool{}
	for _, rt := range n.Server.Routes() {
		key := rt.Method + " " + rt.Path
		served[key] = true
		if !documented[key] {
			t.Errorf("served but not documented: %s", key)
		}
	}
	for key := range documented {
		if !served[key] {
			t.Errorf("documented but not served: %s", key)
		}
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				name, found := strings.CutPrefix(ref, "#/components/schemas/")
				if !found || schemas[name] == nil {
					t.Errorf("unresolved $ref %s", ref)
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
}

func fetchOpenAPI(t *testing.T, n *apitest.Node) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", n.HTTP.URL+"/openapi.json", nil)
	req.Header.Set("Authorization", "Bearer "+apitest.Token)
	resp, err := n.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// Two agents, each with its daemon's API: topics, direct messages, task
// lists and the errors a user meets, through the Go client.
func TestTwoAgentsThroughTheAPI(t *testing.T) {
	a, b := apitest.StartNode(t, localapi.Limits{}), apitest.StartNode(t, localapi.Limits{})
	apitest.Connect(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ai, _ := a.Client.Agent(ctx)
	bi, _ := b.Client.Agent(ctx)

	// Topics: b follows, a publishes until b's page (long-polled) has it.
	const topic = "api/test"
	if _, err := b.Client.Follow(ctx, topic); err != nil {
		t.Fatal(err)
	}
	var got []localapi.TopicMessage
	var after uint64
	for i := 0; len(got) == 0 && i < 50; i++ {
		if _, err := a.Client.Publish(ctx, topic, apiclient.Text("hello b")); err != nil {
			t.Fatal(err)
		}
		p, err := b.Client.TopicMessages(ctx, topic, apiclient.Read{After: after, WaitMs: 500})
		if err != nil {
			t.Fatal(err)
		}
		got, after = p.Items, p.NextCursor
	}
	if len(got) == 0 || got[0].Text == nil || *got[0].Text != "hello b" || got[0].From != ai.AgentID || got[0].Cursor == 0 {
		t.Fatalf("b's topic page: %+v", got)
	}
	// Binary payloads come back as base64 only.
	if _, err := b.Client.Publish(ctx, topic, apiclient.Bytes([]byte{0xff, 0x00})); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Client.TopicMessages(ctx, "not/followed", apiclient.Read{}); !apiclient.IsCode(err, "not_found") {
		t.Fatalf("page of an unfollowed topic: %v", err)
	}
	if _, err := a.Client.Publish(ctx, "", apiclient.Text("x")); !apiclient.IsCode(err, "invalid_argument") {
		t.Fatalf("publish to an empty topic name: %v", err)
	}

	// Direct messages: a to b, read from b's inbox.
	if err := a.Client.SendDirect(ctx, bi.AgentID, apiclient.Text("direct hello")); err != nil {
		t.Fatal(err)
	}
	p, err := b.Client.DirectMessages(ctx, apiclient.Read{WaitMs: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 1 || *p.Items[0].Text != "direct hello" || p.Items[0].From != ai.AgentID || p.NextCursor != p.Items[0].Cursor {
		t.Fatalf("b's inbox: %+v", p)
	}
	if err := a.Client.SendDirect(ctx, strings.Repeat("00", 32), apiclient.Text("x")); !apiclient.IsCode(err, "no_route") {
		t.Fatalf("send to nobody: %v", err)
	}

	// Task lists: a creates an open list and adds a task; b joins, claims
	// and completes it; a sees it done, claimed by b.
	l, err := a.Client.CreateTaskList(ctx, "api list", true)
	if err != nil {
		t.Fatal(err)
	}
	task, err := a.Client.AddTask(ctx, l.ID, "write the API", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Client.JoinTaskList(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	apitest.WaitFor(t, "b sees the task", func() bool {
		s, err := b.Client.TaskList(ctx, l.ID)
		return err == nil && len(s.Tasks) == 1
	})
	if _, err := b.Client.Complete(ctx, l.ID, task.ID[:8]); !apiclient.IsCode(err, "task_not_claimed") {
		t.Fatalf("completing an unclaimed task: %v", err)
	}
	claimed, err := b.Client.Claim(ctx, l.ID, task.ID[:8]) // a unique prefix will do
	if err != nil {
		t.Fatal(err)
	}
	if claimed.State != "claimed" || claimed.Claimant != bi.AgentID {
		t.Fatalf("after b's claim: %+v", claimed)
	}
	if _, err := b.Client.Complete(ctx, l.ID, task.ID); err != nil {
		t.Fatal(err)
	}
	apitest.WaitFor(t, "a sees the task done by b", func() bool {
		s, err := a.Client.TaskList(ctx, l.ID)
		return err == nil && len(s.Tasks) == 1 && s.Tasks[0].State == "done" && s.Tasks[0].Claimant == bi.AgentID
	})
	if _, err := a.Client.Claim(ctx, l.ID, task.ID); !apiclient.IsCode(err, "task_done") {
		t.Fatalf("claiming a done task: %v", err)
	}
	if _, err := a.Client.Claim(ctx, l.ID, "zz"); !apiclient.IsCode(err, "invalid_argument") {
		t.Fatalf("a malformed task ID: %v", err)
	}
	ch, err := a.Client.Changes(ctx, l.ID, apiclient.Read{})
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]bool{}
	for _, c := range ch.Items {
		ops[c.Op] = true
	}
	if !ops["added"] || !ops["claimed"] || !ops["completed"] {
		t.Fatalf("a's changes: %+v", ch.Items)
	}
	lists, err := b.Client.TaskLists(ctx)
	if err != nil || len(lists) != 1 || lists[0].ID != l.ID || !lists[0].Joined {
		t.Fatalf("b's lists: %+v %v", lists, err)
	}
}

// Bad input gets typed errors: unknown fields, two JSON values, a body
// over the limit, text and payload_b64 together, bad base64, bad cursors.
func TestBadInputGetsTypedErrors(t *testing.T) {
	n := apitest.StartNode(t, localapi.Limits{MaxBody: 1024})
	for _, c := range []struct{ method, path, body, code string }{
		{"POST", "/v1/topics/publish", `{"topic":"t","text":"x","extra":1}`, "invalid_argument"},
		{"POST", "/v1/topics/publish", `{"topic":"t","text":"x"}{}`, "invalid_argument"},
		{"POST", "/v1/topics/publish", `{"topic":"t","text":"` + strings.Repeat("x", 2000) + `"}`, "too_large"},
		{"POST", "/v1/topics/publish", `{"topic":"t","text":"x","payload_b64":"eA=="}`, "invalid_argument"},
		{"POST", "/v1/topics/publish", `{"topic":"t","payload_b64":"not base64!"}`, "invalid_argument"},
		{"POST", "/v1/topics/publish", `{"topic":"t"}`, "invalid_argument"},
		{"POST", "/v1/direct", `{"to":"abc","text":"x"}`, "invalid_argument"},
		{"GET", "/v1/direct/messages?after=-1", ``, "invalid_argument"},
		{"GET", "/v1/direct/messages?limit=0", ``, "invalid_argument"},
		{"GET", "/v1/tasklists/xyz", ``, "invalid_argument"},
		{"GET", "/v1/tasklists/" + strings.Repeat("ab", 32), ``, "not_found"},
		{"POST", "/v1/identity/import", `{"bundle_b64":"AAAA","passphrase":"p"}`, "corrupt"},
		{"POST", "/v1/identity/export", `{"passphrase":""}`, "invalid_argument"},
	} {
		req, _ := http.NewRequest(c.method, n.HTTP.URL+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+apitest.Token)
		resp, err := n.HTTP.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e localapi.ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 || e.Error.Code != c.code {
			t.Errorf("%s %s %.40q: %d %+v, want code %s", c.method, c.path, c.body, resp.StatusCode, e.Error, c.code)
		}
	}
}

// Streams: a topic's messages reach an SSE reader and a WebSocket reader,
// and resume after a cursor; a WebSocket reader that stops reading while
// the feed overflows is closed with 1008 "slow consumer".
func TestStreamsAndSlowConsumers(t *testing.T) {
	n := apitest.StartNode(t, localapi.Limits{FeedItems: 8})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const topic = "stream/test"
	ti, err := n.Client.Follow(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	b0 := ti.Cursor // cursors start after the feed's base (its creation time in µs)
	if b0 < 1_700_000_000_000_000 {
		t.Fatalf("a new feed's end cursor is %d, not its creation time in µs", b0)
	}
	at := func(k uint64) string { return fmt.Sprint(b0 + k) }
	// SSE from cursor 0: the messages published before and after it opened.
	if _, err := n.Client.Publish(ctx, topic, apiclient.Text("m1")); err != nil {
		t.Fatal(err)
	}
	var texts []string
	var zero uint64
	sctx, scancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- n.Client.StreamTopic(sctx, topic, &zero, func(m localapi.TopicMessage) error {
			texts = append(texts, *m.Text)
			if len(texts) == 2 {
				return io.EOF
			}
			return nil
		})
	}()
	if _, err := n.Client.Publish(ctx, topic, apiclient.Text("m2")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, io.EOF) || strings.Join(texts, ",") != "m1,m2" {
		t.Fatalf("SSE: %v %v", err, texts)
	}
	scancel()

	// WebSocket after m1: m2 only.
	hdr := http.Header{"Authorization": {"Bearer " + apitest.Token}}
	ws, _, err := websocket.Dial(ctx, n.HTTP.URL+"/v1/topics/stream?topic=stream%2Ftest&after="+at(1), &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: n.HTTP.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var m localapi.TopicMessage
	if err := json.Unmarshal(b, &m); err != nil || *m.Text != "m2" || m.Cursor != b0+2 {
		t.Fatalf("WebSocket item %s: %v", b, err)
	}
	ws.CloseNow()

	// A reader opening behind the feed (it keeps 8) is told what it missed
	// and goes on: a "missed" notice, then the oldest kept.
	for i := range 20 {
		if _, err := n.Client.Publish(ctx, topic, apiclient.Text("flood "+string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	apitest.WaitFor(t, "the flood in the feed", func() bool {
		ts, _ := n.Client.Topics(ctx)
		return len(ts) == 1 && ts[0].Cursor == b0+22
	})
	ws, _, err = websocket.Dial(ctx, n.HTTP.URL+"/v1/topics/stream?topic=stream%2Ftest&after="+at(1), &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: n.HTTP.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, b, err = ws.Read(ctx)
	var notice localapi.StreamNotice
	if err != nil || json.Unmarshal(b, &notice) != nil || notice.Notice != "missed" || notice.Missed != 13 || notice.ResumeAfter != b0+14 {
		t.Fatalf("first WebSocket message behind the feed: %s %v", b, err)
	}
	if _, b, err = ws.Read(ctx); err != nil || json.Unmarshal(b, &m) != nil || m.Cursor != b0+15 {
		t.Fatalf("then: %s %v", b, err)
	}
	ws.CloseNow()
	var missed []localapi.StreamNotice
	count := 0
	err = n.Client.StreamTopic(ctx, topic, &zero, func(localapi.TopicMessage) error {
		if count++; count == 8 {
			return io.EOF
		}
		return nil
	}, apiclient.OnMissed(func(sn localapi.StreamNotice) { missed = append(missed, sn) }))
	if !errors.Is(err, io.EOF) || len(missed) != 1 || missed[0].Missed != 14 {
		t.Fatalf("SSE behind the feed: %v, missed %+v", err, missed)
	}
	// A page read behind the feed reports what it missed.
	p, err := n.Client.TopicMessages(ctx, topic, apiclient.Read{After: b0 + 1})
	if err != nil || p.Missed != 13 || len(p.Items) != 8 || p.NextCursor != b0+22 || p.Reset {
		t.Fatalf("page behind the feed: %+v %v", p, err)
	}

	// A cursor from an earlier feed (a restart, an unfollow since) starts
	// over with the oldest kept, saying so, instead of skipping items.
	p, err = n.Client.TopicMessages(ctx, topic, apiclient.Read{After: 5})
	if err != nil || !p.Reset || len(p.Items) != 8 || p.Items[0].Cursor != b0+15 {
		t.Fatalf("page after a stale cursor: %+v %v", p, err)
	}
	ws, _, err = websocket.Dial(ctx, n.HTTP.URL+"/v1/topics/stream?topic=stream%2Ftest&after=5", &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: n.HTTP.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, b, err = ws.Read(ctx)
	if err != nil || json.Unmarshal(b, &notice) != nil || notice.Notice != "reset" || notice.ResumeAfter != b0+14 {
		t.Fatalf("first WebSocket message after a stale cursor: %s %v", b, err)
	}
	ws.CloseNow()

	// Last-Event-ID (an SSE client reconnecting with its first URL) beats
	// ?after=.
	req, _ := http.NewRequestWithContext(ctx, "GET", n.HTTP.URL+"/v1/topics/stream?topic=stream%2Ftest&after="+at(1), nil)
	req.Header.Set("Authorization", "Bearer "+apitest.Token)
	req.Header.Set("Last-Event-ID", at(21))
	resp, err := n.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	var ids []string
	for sc.Scan() && len(ids) < 1 {
		if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			ids = append(ids, id)
		}
	}
	resp.Body.Close()
	if len(ids) != 1 || ids[0] != at(22) {
		t.Fatalf("SSE with Last-Event-ID %s: ids %v", at(21), ids)
	}
}

// Payloads full of characters JSON escapes ('<', '>', '&', quotes) stream
// without blowing up: items are not HTML-escaped, and the client reads an
// SSE line as long as the largest item.
func TestEscapedPayloadsStream(t *testing.T) {
	n := apitest.StartNode(t, localapi.Limits{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const topic = "stream/escapes"
	if _, err := n.Client.Follow(ctx, topic); err != nil {
		t.Fatal(err)
	}
	text := strings.Repeat("<&>", 300_000) // 900 KB; HTML-escaped it would be 5.4 MB
	if _, err := n.Client.Publish(ctx, topic, apiclient.Text(text)); err != nil {
		t.Fatal(err)
	}
	var zero uint64
	var got string
	err := n.Client.StreamTopic(ctx, topic, &zero, func(m localapi.TopicMessage) error {
		got = *m.Text
		return io.EOF
	})
	if !errors.Is(err, io.EOF) || got != text {
		t.Fatalf("streaming a payload of '<&>': %v (got %d bytes)", err, len(got))
	}
}

// A request whose Host is not a loopback name is refused (403), /health
// included: a web page that rebinds its DNS name to 127.0.0.1 reads
// nothing. Lowercase "bearer" is accepted (RFC 7235).
func TestHostMustBeLoopback(t *testing.T) {
	n := apitest.StartNode(t, localapi.Limits{})
	for host, want := range map[string]int{"evil.example:12600": 403, "localhost:1": 200, "127.0.0.1": 200, "[::1]:5": 200, "10.0.0.1:12600": 403} {
		req, _ := http.NewRequest("GET", n.HTTP.URL+"/health", nil)
		req.Host = host
		resp, err := n.HTTP.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
	req, _ := http.NewRequest("GET", n.HTTP.URL+"/v1/agent", nil)
	req.Header.Set("Authorization", "bearer "+apitest.Token)
	resp, err := n.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("lowercase bearer: %d", resp.StatusCode)
	}
}

// A WebSocket reader that stops reading while the daemon's feed moves on
// (its socket buffers full, the feed evicting what it was not sent) is
// closed with 1008 "slow consumer" once it reads again.
func TestSlowWebSocketReaderIsDropped(t *testing.T) {
	// A long write timeout: the drop tested is the feed's eviction (a
	// write that times out closes the connection without a close frame).
	n := apitest.StartNode(t, localapi.Limits{FeedItems: 4, FeedBytes: 64 << 20, WriteTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic = "stream/slow"
	ti, err := n.Client.Follow(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	hdr := http.Header{"Authorization": {"Bearer " + apitest.Token}}
	ws, _, err := websocket.Dial(ctx, n.HTTP.URL+"/v1/topics/stream?topic=stream%2Fslow", &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: n.HTTP.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(8 << 20)
	big := make([]byte, 1<<20-64)
	for i := range big {
		big[i] = byte(i*7 + 1) // not UTF-8: base64 only, ~1.4 MB of JSON each
	}
	big[0] = 0xff
	for range 40 { // ~56 MB while the reader sleeps
		if _, err := n.Client.Publish(ctx, topic, apiclient.Bytes(big)); err != nil {
			t.Fatal(err)
		}
	}
	apitest.WaitFor(t, "the messages in the feed", func() bool {
		ts, _ := n.Client.Topics(ctx)
		return len(ts) == 1 && ts[0].Cursor == ti.Cursor+40
	})
	got := 0
	for {
		_, _, err := ws.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != localapi.StatusSlowConsumer || !strings.Contains(err.Error(), "slow consumer") {
				t.Fatalf("after %d items: %v (status %d), want close 1008 slow consumer", got, err, websocket.CloseStatus(err))
			}
			break
		}
		got++
	}
	if got >= 40 {
		t.Fatalf("all %d items arrived: the reader was never behind", got)
	}
}

// Identity export and import: a bundle from one daemon becomes another
// data directory's agent only with replace, and the replaced key is kept.
func TestIdentityExportImport(t *testing.T) {
	a, b := apitest.StartNode(t, localapi.Limits{}), apitest.StartNode(t, localapi.Limits{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exp, err := a.Client.ExportIdentity(ctx, "pass phrase")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Client.ImportIdentity(ctx, localapi.ImportRequest{BundleB64: exp.BundleB64, Passphrase: "wrong"}); !apiclient.IsCode(err, "wrong_passphrase") {
		t.Fatalf("wrong passphrase: %v", err)
	}
	keyFile := filepath.Join(b.Agent.DataDir(), "agent.key")
	before, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Client.ImportIdentity(ctx, localapi.ImportRequest{BundleB64: exp.BundleB64, Passphrase: "pass phrase"}); !apiclient.IsCode(err, "would_replace") {
		t.Fatalf("import without replace: %v", err)
	}
	if after, _ := os.ReadFile(keyFile); string(after) != string(before) {
		t.Fatal("an import without replace changed the key file")
	}
	res, err := b.Client.ImportIdentity(ctx, localapi.ImportRequest{BundleB64: exp.BundleB64, Passphrase: "pass phrase", Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.AgentID != exp.AgentID || !res.RestartRequired || res.PreviousKeyFile == "" {
		t.Fatalf("import: %+v", res)
	}
	if kept, err := os.ReadFile(res.PreviousKeyFile); err != nil || string(kept) != string(before) {
		t.Fatalf("the replaced key was not kept: %v", err)
	}
	// Importing b's own key back at once (the same second) writes it back,
	// keeps the imported key in a second copy, and leaves the first alone.
	own, err := b.Client.ExportIdentity(ctx, "own")
	if err != nil {
		t.Fatal(err)
	}
	back, err := b.Client.ImportIdentity(ctx, localapi.ImportRequest{BundleB64: own.BundleB64, Passphrase: "own", Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	if back.RestartRequired || back.PreviousKeyFile == "" || back.PreviousKeyFile == res.PreviousKeyFile {
		t.Fatalf("importing the running agent's key back: %+v (first copy %s)", back, res.PreviousKeyFile)
	}
	if kept, _ := os.ReadFile(res.PreviousKeyFile); string(kept) != string(before) {
		t.Fatal("the first copy of the replaced key was overwritten")
	}
	// Now the data directory is b's again: importing it once more changes nothing.
	again, err := b.Client.ImportIdentity(ctx, localapi.ImportRequest{BundleB64: own.BundleB64, Passphrase: "own"})
	if err != nil || again.RestartRequired || again.PreviousKeyFile != "" {
		t.Fatalf("importing the data directory's own key: %+v %v", again, err)
	}
}

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	tok, err := localapi.LoadOrCreateToken(dir)
	if err != nil || len(tok) != 64 {
		t.Fatalf("created %q, %v", tok, err)
	}
	path := filepath.Join(dir, localapi.TokenFile)
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	again, err := localapi.LoadOrCreateToken(dir)
	if err != nil || again != tok {
		t.Fatalf("reloaded %q, %v", again, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := localapi.LoadOrCreateToken(dir); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Fatalf("a world-readable token file: %v", err)
	}
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := localapi.LoadOrCreateToken(dir); err == nil {
		t.Fatal("a short token accepted")
	}
}
