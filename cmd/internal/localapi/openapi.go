package localapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// The OpenAPI 3.1 document of the API (GET /openapi.json). It is built
// from apiDoc, a table of its own (not from the mux's registrations), and
// a test checks that the two list the same routes and that live responses
// match the documented schemas. Schemas are derived from the Go types of
// the bodies (their json tags), so a body's documentation cannot drift
// from what a handler encodes unless the table names the wrong type.

// doc describes one route.
type doc struct {
	method, path, summary string
	params                []param // query parameters
	in                    any     // request body type (nil: none)
	out                   any     // response body type
	stream                bool    // a feed stream: SSE (or WebSocket) of out items
}

type param struct {
	name, typ, desc string
	required        bool
}

var (
	topicParam = param{"topic", "string", "the topic's name", true}
	pageParams = []param{
		{"after", "integer", "return the items after this cursor (0: from the oldest kept)", false},
		{"limit", "integer", "at most this many items (1-1000, default 100)", false},
		{"wait_ms", "integer", "when there is nothing new, wait up to this long for an item (capped at 30 s)", false},
	}
	streamParams = []param{{"after", "integer", "start after this cursor (default: with the items that arrive from now on; Last-Event-ID works too)", false}}
)

func with(ps []param, p ...param) []param { return append(append([]param{}, p...), ps...) }

// apiDoc documents every route; the order is the document's.
func apiDoc() []doc {
	return []doc{
		{method: "GET", path: "/health", summary: "Health of the daemon (the only route without the token)", out: Health{}},
		{method: "GET", path: "/openapi.json", summary: "This document", out: map[string]any{}},
		{method: "GET", path: "/metrics", summary: "Prometheus metrics (text exposition format)", out: ""},
		{method: "GET", path: "/.well-known/agent.json", summary: "The agent's A2A agent card", out: x0x.AgentCard{}},
		{method: "GET", path: "/.well-known/agent-card.json", summary: "The agent's A2A agent card (A2A 0.3 path)", out: x0x.AgentCard{}},

		{method: "GET", path: "/v1/agent", summary: "This daemon's agent", out: AgentInfo{}},
		{method: "GET", path: "/agent", summary: "This daemon's agent (the same as /v1/agent)", out: AgentInfo{}},
		{method: "GET", path: "/v1/peers", summary: "Connected peers", out: PeerList{}},
		{method: "POST", path: "/v1/peers", summary: "Connect to a peer and join the overlay through it", in: ConnectRequest{}, out: ConnectResponse{}},

		{method: "GET", path: "/v1/topics", summary: "Followed topics", out: TopicList{}},
		{method: "POST", path: "/v1/topics", summary: "Follow a topic: subscribe and keep its messages for readers", in: FollowRequest{}, out: TopicInfo{}},
		{method: "DELETE", path: "/v1/topics", summary: "Unfollow a topic", params: []param{topicParam}, out: Empty{}},
		{method: "POST", path: "/v1/topics/publish", summary: "Publish a message on a topic", in: PublishRequest{}, out: PublishResponse{}},
		{method: "GET", path: "/v1/topics/messages", summary: "A followed topic's messages after a cursor", params: with(pageParams, topicParam), out: Page[TopicMessage]{}},
		{method: "GET", path: "/v1/topics/stream", summary: "Stream a topic's messages (follows it)", params: with(streamParams, topicParam), out: TopicMessage{}, stream: true},

		{method: "POST", path: "/v1/direct", summary: "Send a direct message to an agent", in: DirectRequest{}, out: Empty{}},
		{method: "GET", path: "/v1/direct/messages", summary: "Direct messages received, after a cursor", params: pageParams, out: Page[DirectMessage]{}},
		{method: "GET", path: "/v1/direct/stream", summary: "Stream the direct messages received", params: streamParams, out: DirectMessage{}, stream: true},

		{method: "GET", path: "/v1/tasklists", summary: "Task lists stored in the data directory", out: TaskListIndex{}},
		{method: "POST", path: "/v1/tasklists", summary: "Create a task list", in: CreateTaskListRequest{}, out: TaskListInfo{}},
		{method: "GET", path: "/v1/tasklists/{list}", summary: "A task list's tasks and access", out: TaskListSnapshot{}},
		{method: "DELETE", path: "/v1/tasklists/{list}", summary: "Leave a task list", out: Empty{}},
		{method: "POST", path: "/v1/tasklists/{list}/join", summary: "Join a task list", out: TaskListInfo{}},
		{method: "POST", path: "/v1/tasklists/{list}/tasks", summary: "Add a task", in: AddTaskRequest{}, out: Task{}},
		{method: "POST", path: "/v1/tasklists/{list}/tasks/{task}/claim", summary: "Claim a task (task: an ID or a unique prefix of 8+ hex digits)", out: Task{}},
		{method: "POST", path: "/v1/tasklists/{list}/tasks/{task}/complete", summary: "Complete a task this agent claimed", out: Task{}},
		{method: "GET", path: "/v1/tasklists/{list}/changes", summary: "A task list's changes after a cursor", params: pageParams, out: Page[TaskChange]{}},
		{method: "GET", path: "/v1/tasklists/{list}/changes/stream", summary: "Stream a task list's changes", params: streamParams, out: TaskChange{}, stream: true},

		{method: "POST", path: "/v1/identity/export", summary: "Export the agent key, sealed with a passphrase", in: ExportRequest{}, out: ExportResponse{}},
		{method: "POST", path: "/v1/identity/import", summary: "Store an exported agent key as this daemon's agent (from its next start)", in: ImportRequest{}, out: ImportResponse{}},

		{method: "POST", path: "/v1/keypackage", summary: "Publish a key package: accept invitations into groups", out: Empty{}},
		{method: "GET", path: "/v1/groups", summary: "Private groups this agent is a member of", out: GroupIndex{}},
		{method: "POST", path: "/v1/groups", summary: "Create a private group", out: GroupInfo{}},
		{method: "GET", path: "/v1/groups/{group}", summary: "A group", out: GroupInfo{}},
		{method: "DELETE", path: "/v1/groups/{group}", summary: "Leave a group", out: Empty{}},
		{method: "POST", path: "/v1/groups/{group}/members", summary: "Invite an agent into a group", in: InviteRequest{}, out: GroupInfo{}},
		{method: "DELETE", path: "/v1/groups/{group}/members/{agent}", summary: "Remove a member", out: GroupInfo{}},
		{method: "POST", path: "/v1/groups/{group}/messages", summary: "Send a message to a group", in: GroupSendRequest{}, out: Empty{}},
		{method: "GET", path: "/v1/groups/{group}/messages", summary: "A group's messages after a cursor", params: pageParams, out: Page[GroupMessage]{}},
		{method: "GET", path: "/v1/groups/{group}/messages/stream", summary: "Stream a group's messages", params: streamParams, out: GroupMessage{}, stream: true},
		{method: "GET", path: "/v1/invitations", summary: "Pending invitations into groups", out: InvitationList{}},
		{method: "POST", path: "/v1/invitations/{group}/accept", summary: "Accept an invitation", out: GroupInfo{}},
		{method: "POST", path: "/v1/invitations/{group}/decline", summary: "Decline an invitation", out: Empty{}},
	}
}

var pathParam = regexp.MustCompile(`\{([a-z]+)\}`)

// buildOpenAPI renders the document.
func buildOpenAPI() ([]byte, error) {
	sg := &schemaGen{defs: map[string]any{}}
	paths := map[string]map[string]any{}
	opIDs := map[string]bool{}
	errResp := map[string]any{"description": "An error", "content": map[string]any{"application/json": map[string]any{"schema": sg.ref(reflect.TypeFor[ErrorBody]())}}}
	for _, d := range apiDoc() {
		op := map[string]any{"summary": d.summary}
		id := operationID(d.method, d.path)
		if opIDs[id] {
			return nil, fmt.Errorf("duplicate operationId %s", id)
		}
		opIDs[id] = true
		op["operationId"] = id
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(d.path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true,
				"description": pathParamDesc(m[1]), "schema": map[string]any{"type": "string"}})
		}
		for _, p := range d.params {
			params = append(params, map[string]any{"name": p.name, "in": "query", "required": p.required,
				"description": p.desc, "schema": map[string]any{"type": p.typ}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if d.in != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": sg.schema(reflect.TypeOf(d.in))}}}
		}
		var content map[string]any
		switch {
		case d.stream:
			item := sg.schema(reflect.TypeOf(d.out))
			content = map[string]any{
				"text/event-stream": map[string]any{"schema": map[string]any{"type": "string",
					"description": "Server-Sent Events: each item one event (id: its cursor, data: its JSON); an \"error\" event before a slow consumer is dropped"},
					"x-item-schema": item},
			}
		case d.path == "/metrics":
			content = map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}
		default:
			content = map[string]any{"application/json": map[string]any{"schema": sg.schema(reflect.TypeOf(d.out))}}
		}
		responses := map[string]any{"200": map[string]any{"description": "OK", "content": content}}
		if d.stream {
			responses["101"] = map[string]any{"description": "Switching to a WebSocket (when the request asks to upgrade): one JSON text message per item; close code 1008 \"slow consumer\" when the client fell behind"}
		}
		if d.path != "/health" {
			responses["401"] = map[string]any{"description": "No or wrong bearer token", "content": errResp["content"]}
			responses["default"] = errResp
			op["security"] = []any{map[string]any{"bearer": []any{}}}
		} else {
			op["security"] = []any{}
		}
		op["responses"] = responses
		if paths[d.path] == nil {
			paths[d.path] = map[string]any{}
		}
		paths[d.path][strings.ToLower(d.method)] = op
	}
	docJSON := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "x0xd local API", "version": x0x.Version,
			"description": "The local API of x0xd, x0x's node daemon. Every route but /health needs the bearer token in the daemon's data directory (file " + TokenFile + "). Payloads travel as text (UTF-8) or payload_b64 (standard base64). Feeds (topic messages, direct messages, task-list changes, group messages) are read after a cursor, as pages or streams."},
		"servers":  []any{map[string]any{"url": "http://127.0.0.1:12600"}},
		"paths":    paths,
		"security": []any{map[string]any{"bearer": []any{}}},
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
			"schemas":         sg.defs,
		},
	}
	return json.MarshalIndent(docJSON, "", "  ")
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error apiError `json:"error"`
}

// PeerList is GET /v1/peers.
type PeerList struct {
	Peers []Peer `json:"peers"`
}

func pathParamDesc(name string) string {
	switch name {
	case "list":
		return "a task list ID (64 hex digits)"
	case "task":
		return "a task ID, or a unique prefix of at least 8 hex digits"
	case "group":
		return "a group ID (64 hex digits)"
	case "agent":
		return "an agent ID (64 hex digits)"
	}
	return name
}

// operationID names an operation from its method and path, e.g.
// "post_v1_tasklists_list_tasks_task_claim".
func operationID(method, path string) string {
	r := strings.NewReplacer("/", "_", "{", "", "}", "", ".", "_", "-", "_")
	return strings.ToLower(method) + strings.TrimRight(r.Replace(path), "_")
}

// schemaGen derives JSON Schemas (OpenAPI 3.1 dialect) from Go types.
type schemaGen struct {
	defs map[string]any
}

var timeType = reflect.TypeFor[time.Time]()

func (g *schemaGen) schema(t reflect.Type) any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.Pointer:
		inner := g.schema(t.Elem())
		return map[string]any{"oneOf": []any{inner, map[string]any{"type": "null"}}}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		return g.ref(t)
	}
	return map[string]any{}
}

// ref returns a $ref to t's schema in components, adding it once.
func (g *schemaGen) ref(t reflect.Type) any {
	name := schemaName(t)
	if _, ok := g.defs[name]; !ok {
		g.defs[name] = nil // a placeholder stops recursion
		props, required := map[string]any{}, []string{}
		g.fields(t, props, &required)
		s := map[string]any{"type": "object", "properties": props}
		if len(required) > 0 {
			s["required"] = required
		}
		g.defs[name] = s
	}
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

func (g *schemaGen) fields(t reflect.Type, props map[string]any, required *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			g.fields(f.Type, props, required) // embedded: its fields are the outer object's
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = g.schema(f.Type)
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") && f.Type.Kind() != reflect.Pointer {
			*required = append(*required, name)
		}
	}
}

// schemaName names a type's schema: its Go name, with a generic type's
// arguments appended (Page[TopicMessage] is PageTopicMessage).
func schemaName(t reflect.Type) string {
	name := t.Name()
	if i := strings.IndexByte(name, '['); i >= 0 {
		arg := name[i+1 : len(name)-1]
		if j := strings.LastIndexByte(arg, '.'); j >= 0 {
			arg = arg[j+1:]
		}
		name = name[:i] + arg
	}
	return name
}
