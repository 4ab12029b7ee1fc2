package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/saorsa-labs/x0x-go/cmd/internal/apiclient"
	"github.com/saorsa-labs/x0x-go/cmd/internal/localapi"
)

// Resource URIs. A topic's name is percent-encoded (every byte but the
// URI's unreserved characters), so that names with '/' fit the template.
const (
	topicPrefix    = "x0x://topic/"
	tasklistPrefix = "x0x://tasklist/"
	jsonMIME       = "application/json"
)

// TopicURI is the resource URI of a topic.
func TopicURI(topic string) string { return topicPrefix + escape(topic) }

// TaskListURI is the resource URI of a task list.
func TaskListURI(list string) string { return tasklistPrefix + list }

func escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func unescape(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if _, ok := unhex(s[i]); !ok {
			return false
		}
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// resource is what a URI names: a topic or a task list.
type resource struct {
	topic, list string
}

func parseURI(uri string) (resource, error) {
	if v, ok := strings.CutPrefix(uri, topicPrefix); ok {
		name, ok := unescape(v)
		if !ok || name == "" {
			return resource{}, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: uri + ": bad topic name"}
		}
		return resource{topic: name}, nil
	}
	if v, ok := strings.CutPrefix(uri, tasklistPrefix); ok && len(v) == 64 && isHex(v) {
		return resource{list: strings.ToLower(v)}, nil
	}
	return resource{}, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: uri + ": not an x0x://topic/{topic} or x0x://tasklist/{list} URI"}
}

// ---- resources ------------------------------------------------------------

// TopicResource is the content of x0x://topic/{topic}.
type TopicResource struct {
	Topic    string                  `json:"topic"`
	Cursor   uint64                  `json:"cursor"` // the newest message's cursor
	Messages []localapi.TopicMessage `json:"messages"`
	Missed   uint64                  `json:"missed"`
}

func (h *handler) addResources() {
	h.srv.AddResourceTemplate(&mcp.ResourceTemplate{Name: "tasklist", Title: "Task list",
		URITemplate: tasklistPrefix + "{list}", MIMEType: jsonMIME,
		Description: "A task list's snapshot: its name, writers and tasks (state, claimant). Subscribe to be notified of its changes."},
		h.readTaskList)
	h.srv.AddResourceTemplate(&mcp.ResourceTemplate{Name: "topic", Title: "Topic",
		URITemplate: topicPrefix + "{topic}", MIMEType: jsonMIME,
		Description: "A topic's recent messages (the topic name percent-encoded: a/b is a%2Fb). Reading or subscribing follows the topic; subscribers are notified of each new message."},
		h.readTopic)
	h.srv.AddReceivingMiddleware(h.listResources)
}

func jsonContents(uri string, v any) (*mcp.ReadResourceResult, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: jsonMIME, Text: string(b)}}}, nil
}

// resourceError reports an API error of a resource read as a protocol
// error: not_found as the SDK's resource-not-found error.
func resourceError(uri string, err error) error {
	if apiclient.IsCode(err, "not_found") || apiclient.IsCode(err, "invalid_argument") {
		return mcp.ResourceNotFoundError(uri)
	}
	return toolError(err)
}

func (h *handler) readTaskList(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	uri := req.Params.URI
	r, err := parseURI(uri)
	if err != nil || r.list == "" {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	s, err := h.client.TaskList(ctx, r.list)
	if err != nil {
		return nil, resourceError(uri, err)
	}
	return jsonContents(uri, s)
}

func (h *handler) readTopic(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	uri := req.Params.URI
	r, err := parseURI(uri)
	if err != nil || r.topic == "" {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	info, err := h.client.Follow(ctx, r.topic) // idempotent: gives the newest cursor
	if err != nil {
		return nil, resourceError(uri, err)
	}
	n := uint64(h.opts.RecentMessages)
	after := info.Cursor - min(info.Cursor, n)
	p, err := h.client.TopicMessages(ctx, r.topic, apiclient.Read{After: after, Limit: int(n)})
	if err != nil {
		return nil, resourceError(uri, err)
	}
	out := TopicResource{Topic: r.topic, Cursor: p.NextCursor, Messages: p.Items, Missed: p.Missed}
	if out.Messages == nil {
		out.Messages = []localapi.TopicMessage{}
	}
	return jsonContents(uri, out)
}

// listResources adds the concrete resources to resources/list: the
// followed topics and the stored task lists.
func (h *handler) listResources(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		res, err := next(ctx, method, req)
		if err != nil || method != "resources/list" {
			return res, err
		}
		lr, ok := res.(*mcp.ListResourcesResult)
		if !ok {
			return res, nil
		}
		topics, err := h.client.Topics(ctx)
		if err != nil {
			return nil, toolError(err)
		}
		for _, t := range topics {
			lr.Resources = append(lr.Resources, &mcp.Resource{URI: TopicURI(t.Topic), Name: "topic:" + t.Topic, Title: "Topic " + t.Topic,
				MIMEType: jsonMIME, Description: fmt.Sprintf("Recent messages of the followed topic %q (newest cursor %d).", t.Topic, t.Cursor)})
		}
		lists, err := h.client.TaskLists(ctx)
		if err != nil {
			return nil, toolError(err)
		}
		for _, l := range lists {
			lr.Resources = append(lr.Resources, &mcp.Resource{URI: TaskListURI(l.ID), Name: "tasklist:" + l.ID, Title: "Task list " + l.Name,
				MIMEType: jsonMIME, Description: fmt.Sprintf("The task list %q (joined: %v).", l.Name, l.Joined)})
		}
		return lr, nil
	}
}

// ---- subscriptions --------------------------------------------------------

// watch is one watched resource: a goroutine long-polls the daemon for
// the resource's news and sends notifications/resources/updated to the
// sessions subscribed to its URI. It stops when the last of them
// unsubscribes or ends.
type watch struct {
	subs   map[*mcp.ServerSession]bool
	cancel context.CancelFunc
}

// subscribe starts watching a URI (once for all the sessions that
// subscribe to it). The cursor it watches from is taken before it
// returns, so a change made after the subscription is always notified.
// A topic is followed first.
func (h *handler) subscribe(ctx context.Context, req *mcp.SubscribeRequest) error {
	uri := req.Params.URI
	r, err := parseURI(uri)
	if err != nil {
		return err
	}
	h.session(req.Session)
	if h.addSubscriber(uri, req.Session) {
		return nil
	}
	var start uint64
	if r.topic != "" {
		info, err := h.client.Follow(ctx, r.topic)
		if err != nil {
			return toolError(err)
		}
		start = info.Cursor
	} else {
		s, err := h.client.TaskList(ctx, r.list)
		if err != nil {
			return toolError(err)
		}
		start = s.Cursor
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if w := h.watches[uri]; w != nil { // watched meanwhile by another session
		w.subs[req.Session] = true
		return nil
	}
	if h.closed {
		return fmt.Errorf("the server is closing")
	}
	wctx, cancel := context.WithCancel(context.Background())
	h.watches[uri] = &watch{subs: map[*mcp.ServerSession]bool{req.Session: true}, cancel: cancel}
	h.wg.Go(func() { h.poll(wctx, uri, r, start) })
	return nil
}

// addSubscriber adds ss to the URI's watch if there is one.
func (h *handler) addSubscriber(uri string, ss *mcp.ServerSession) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := h.watches[uri]
	if w != nil {
		w.subs[ss] = true
	}
	return w != nil
}

func (h *handler) unsubscribe(_ context.Context, req *mcp.UnsubscribeRequest) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	uri := req.Params.URI
	if w := h.watches[uri]; w != nil {
		delete(w.subs, req.Session)
		if len(w.subs) == 0 {
			w.cancel()
			delete(h.watches, uri)
		}
	}
	return nil
}

// poll long-polls the resource's feed from cursor after until ctx ends,
// notifying the subscribers of each batch of news. API errors (the
// daemon restarting, say) are retried with a growing pause; a topic that
// someone unfollowed meanwhile is followed again.
func (h *handler) poll(ctx context.Context, uri string, r resource, after uint64) {
	backoff := 250 * time.Millisecond
	wait := int(h.opts.PollWait.Milliseconds())
	for ctx.Err() == nil {
		var news bool
		var err error
		if r.topic != "" {
			var p localapi.Page[localapi.TopicMessage]
			p, err = h.client.TopicMessages(ctx, r.topic, apiclient.Read{After: after, Limit: 1000, WaitMs: wait})
			if apiclient.IsCode(err, "not_found") {
				var info localapi.TopicInfo
				if info, err = h.client.Follow(ctx, r.topic); err == nil {
					after = info.Cursor
					continue
				}
			}
			if err == nil {
				news, after = len(p.Items) > 0 || p.Missed > 0, p.NextCursor
			}
		} else {
			var p localapi.Page[localapi.TaskChange]
			p, err = h.client.Changes(ctx, r.list, apiclient.Read{After: after, Limit: 1000, WaitMs: wait})
			if err == nil {
				news, after = len(p.Items) > 0 || p.Missed > 0, p.NextCursor
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			h.opts.Logger.Warn("mcp: watching a resource", "uri", uri, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 10*time.Second)
			continue
		}
		backoff = 250 * time.Millisecond
		if news {
			if err := h.srv.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: uri}); err != nil {
				h.opts.Logger.Warn("mcp: notifying", "uri", uri, "err", err)
			}
		}
	}
}
