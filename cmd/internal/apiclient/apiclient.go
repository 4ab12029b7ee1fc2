// Package apiclient is a Go client of x0xd's local API (package
// localapi): one method per route, the API's own JSON types, typed errors.
// The x0x CLI and the MCP server use it.
package apiclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/saorsa-labs/x0x-go/cmd/internal/localapi"
)

// DefaultAddr is x0xd's default HTTP address.
const DefaultAddr = "127.0.0.1:12600"

// Client calls one daemon. Its methods are safe for concurrent use.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// New returns a client of the daemon at base ("http://127.0.0.1:12600" or
// "host:port") with its bearer token. hc nil means http.DefaultClient
// (without a timeout: calls are bounded by their contexts). New does not
// check base: a client of an address the user gave is made with
// NewChecked, so that the token is not sent in clear text over a network.
func New(base, token string, hc *http.Client) *Client {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(base, "/"), token: token, hc: hc}
}

// NewChecked is New for a base that CheckBase accepts; else it returns
// CheckBase's error.
func NewChecked(base, token string, hc *http.Client) (*Client, error) {
	if err := CheckBase(base); err != nil {
		return nil, err
	}
	return New(base, token, hc), nil
}

// CheckBase refuses a daemon address over which the bearer token would
// cross a network in clear text: plain http (an http:// URL, or a bare
// host:port) to a host that is not loopback. A loopback host is an IP
// address in 127.0.0.0/8 or ::1 (also IPv4-mapped), or the name
// "localhost"; any other name, and an empty host, counts as remote (x0xd
// itself serves a non-loopback address only over TLS). https:// is
// accepted with any host; other schemes are refused.
func CheckBase(base string) error {
	raw := base
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("the daemon's address %q: %w", base, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("the daemon's address %q has no host", base)
		}
		return nil
	case "http":
	default:
		return fmt.Errorf("the daemon's address %q: the scheme must be http or https", base)
	}
	if host := u.Hostname(); host == "" {
		return fmt.Errorf("the daemon's address %q has no host", base)
	} else if !IsLoopbackHost(host) {
		return fmt.Errorf("the daemon's address %s is plain http to %s, which is not a loopback address: "+
			"the API token would cross the network in clear text (use https://, or 127.0.0.1, [::1] or localhost)", base, host)
	}
	return nil
}

// IsLoopbackHost reports whether host (without a port or brackets) is
// "localhost" or an IP address in 127.0.0.0/8 or ::1.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}

// ReadToken reads the bearer token of the daemon whose data directory is
// dir (the file localapi.TokenFile). Errors name the file.
func ReadToken(dir string) (string, error) {
	path := filepath.Join(dir, localapi.TokenFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("the daemon's token: %w (is x0xd running with this data directory?)", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("the daemon's token file %s is empty", path)
	}
	return tok, nil
}

// Error is an error response of the API, or a stream's "error" notice.
type Error struct {
	Status  int    // the HTTP status
	Code    string // the API's code, e.g. "task_done", "unauthorized", "slow_consumer"
	Message string
	// ResumeAfter is, for a stream that dropped this client as a slow
	// consumer, the cursor of the last item it was sent.
	ResumeAfter uint64
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (%s, HTTP %d)", e.Message, e.Code, e.Status)
}

// IsCode reports whether err is an API error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// do sends a request (in JSON if in is not nil) and decodes the JSON
// response into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return decodeError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decoding the response: %w", method, path, err)
	}
	return nil
}

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error *Error `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != nil {
		e.Error.Status = resp.StatusCode
		return e.Error
	}
	return &Error{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(b))}
}

// ---- node ------------------------------------------------------------

// Health calls GET /health.
func (c *Client) Health(ctx context.Context) (h localapi.Health, err error) {
	return h, c.do(ctx, "GET", "/health", nil, nil, &h)
}

// Agent calls GET /v1/agent.
func (c *Client) Agent(ctx context.Context) (a localapi.AgentInfo, err error) {
	return a, c.do(ctx, "GET", "/v1/agent", nil, nil, &a)
}

// Peers calls GET /v1/peers.
func (c *Client) Peers(ctx context.Context) ([]localapi.Peer, error) {
	var out struct {
		Peers []localapi.Peer `json:"peers"`
	}
	return out.Peers, c.do(ctx, "GET", "/v1/peers", nil, nil, &out)
}

// Connect calls POST /v1/peers and returns the peer that proved itself.
func (c *Client) Connect(ctx context.Context, addr string) (string, error) {
	var out localapi.ConnectResponse
	return out.Peer, c.do(ctx, "POST", "/v1/peers", nil, localapi.ConnectRequest{Addr: addr}, &out)
}

// ---- topics ----------------------------------------------------------

// Text is a text payload for a request.
func Text(s string) localapi.Payload { return localapi.Payload{Text: &s} }

// Bytes is a binary payload for a request.
func Bytes(b []byte) localapi.Payload {
	s := b64(b)
	return localapi.Payload{PayloadB64: &s}
}

// Publish calls POST /v1/topics/publish and returns the message ID.
func (c *Client) Publish(ctx context.Context, topic string, p localapi.Payload) (string, error) {
	var out localapi.PublishResponse
	return out.ID, c.do(ctx, "POST", "/v1/topics/publish", nil, localapi.PublishRequest{Topic: topic, Payload: p}, &out)
}

// Follow calls POST /v1/topics: the daemon subscribes and keeps messages.
func (c *Client) Follow(ctx context.Context, topic string) (t localapi.TopicInfo, err error) {
	return t, c.do(ctx, "POST", "/v1/topics", nil, localapi.FollowRequest{Topic: topic}, &t)
}

// Unfollow calls DELETE /v1/topics.
func (c *Client) Unfollow(ctx context.Context, topic string) error {
	return c.do(ctx, "DELETE", "/v1/topics", url.Values{"topic": {topic}}, nil, nil)
}

// Topics calls GET /v1/topics.
func (c *Client) Topics(ctx context.Context) ([]localapi.TopicInfo, error) {
	var out localapi.TopicList
	return out.Topics, c.do(ctx, "GET", "/v1/topics", nil, nil, &out)
}

// Read is a page request: the items after After (up to Limit, 0 for the
// server's default), waiting up to WaitMs for news when there are none.
type Read struct {
	After  uint64
	Limit  int
	WaitMs int
}

func (r Read) values(q url.Values) url.Values {
	if q == nil {
		q = url.Values{}
	}
	q.Set("after", strconv.FormatUint(r.After, 10))
	if r.Limit > 0 {
		q.Set("limit", strconv.Itoa(r.Limit))
	}
	if r.WaitMs > 0 {
		q.Set("wait_ms", strconv.Itoa(r.WaitMs))
	}
	return q
}

// TopicMessages calls GET /v1/topics/messages.
func (c *Client) TopicMessages(ctx context.Context, topic string, r Read) (p localapi.Page[localapi.TopicMessage], err error) {
	return p, c.do(ctx, "GET", "/v1/topics/messages", r.values(url.Values{"topic": {topic}}), nil, &p)
}

// StreamOption configures a stream call.
type StreamOption func(*streamOpts)

type streamOpts struct {
	onMissed func(localapi.StreamNotice)
}

// OnMissed sets what to call when the stream reports, with a notice, that
// it skips items; the stream goes on. The notice is "missed" for items
// lost before it opened (its cursor was behind what the daemon keeps) or
// dropped by the daemon's own subscription (Missed counts them), or
// "reset" when its cursor was from an earlier feed (the daemon restarted,
// or the topic was unfollowed and followed again since): the stream starts
// again with the oldest item the daemon keeps. Without OnMissed the
// notices are skipped silently.
func OnMissed(fn func(localapi.StreamNotice)) StreamOption {
	return func(o *streamOpts) { o.onMissed = fn }
}

// ErrStreamBroken: the stream's connection ended without the daemon's
// "end" notice (the daemon stopped abruptly, or dropped this client for
// not taking an item within its write timeout).
var ErrStreamBroken = errors.New("the stream's connection ended without an end notice")

// StreamTopic calls GET /v1/topics/stream (Server-Sent Events) and calls
// fn for each message until ctx ends (ctx's error), fn returns an error
// (that error), or the stream ends: io.EOF when the daemon ended it
// normally (the topic unfollowed, the daemon stopping), an *Error with
// code "slow_consumer" when it dropped this client, ErrStreamBroken when
// the connection just ended. after nil starts with the messages that
// arrive from now on. The daemon follows the topic while the stream is
// open.
func (c *Client) StreamTopic(ctx context.Context, topic string, after *uint64, fn func(localapi.TopicMessage) error, opts ...StreamOption) error {
	return stream(ctx, c, "/v1/topics/stream", url.Values{"topic": {topic}}, after, fn, opts)
}

// ---- direct ----------------------------------------------------------

// SendDirect calls POST /v1/direct.
func (c *Client) SendDirect(ctx context.Context, to string, p localapi.Payload) error {
	return c.do(ctx, "POST", "/v1/direct", nil, localapi.DirectRequest{To: to, Payload: p}, nil)
}

// DirectMessages calls GET /v1/direct/messages.
func (c *Client) DirectMessages(ctx context.Context, r Read) (p localapi.Page[localapi.DirectMessage], err error) {
	return p, c.do(ctx, "GET", "/v1/direct/messages", r.values(nil), nil, &p)
}

// StreamDirect calls GET /v1/direct/stream (see StreamTopic).
func (c *Client) StreamDirect(ctx context.Context, after *uint64, fn func(localapi.DirectMessage) error, opts ...StreamOption) error {
	return stream(ctx, c, "/v1/direct/stream", nil, after, fn, opts)
}

// ---- task lists --------------------------------------------------------

// TaskLists calls GET /v1/tasklists.
func (c *Client) TaskLists(ctx context.Context) ([]localapi.TaskListInfo, error) {
	var out localapi.TaskListIndex
	return out.Lists, c.do(ctx, "GET", "/v1/tasklists", nil, nil, &out)
}

// CreateTaskList calls POST /v1/tasklists.
func (c *Client) CreateTaskList(ctx context.Context, name string, open bool) (l localapi.TaskListInfo, err error) {
	return l, c.do(ctx, "POST", "/v1/tasklists", nil, localapi.CreateTaskListRequest{Name: name, Open: open}, &l)
}

// JoinTaskList calls POST /v1/tasklists/{list}/join.
func (c *Client) JoinTaskList(ctx context.Context, list string) (l localapi.TaskListInfo, err error) {
	return l, c.do(ctx, "POST", "/v1/tasklists/"+url.PathEscape(list)+"/join", nil, struct{}{}, &l)
}

// LeaveTaskList calls DELETE /v1/tasklists/{list}.
func (c *Client) LeaveTaskList(ctx context.Context, list string) error {
	return c.do(ctx, "DELETE", "/v1/tasklists/"+url.PathEscape(list), nil, nil, nil)
}

// TaskList calls GET /v1/tasklists/{list}.
func (c *Client) TaskList(ctx context.Context, list string) (s localapi.TaskListSnapshot, err error) {
	return s, c.do(ctx, "GET", "/v1/tasklists/"+url.PathEscape(list), nil, nil, &s)
}

// AddTask calls POST /v1/tasklists/{list}/tasks.
func (c *Client) AddTask(ctx context.Context, list, title, description string) (t localapi.Task, err error) {
	return t, c.do(ctx, "POST", "/v1/tasklists/"+url.PathEscape(list)+"/tasks", nil,
		localapi.AddTaskRequest{Title: title, Description: description}, &t)
}

// Claim calls POST /v1/tasklists/{list}/tasks/{task}/claim (task: an ID or
// a unique prefix of at least 8 hex digits).
func (c *Client) Claim(ctx context.Context, list, task string) (t localapi.Task, err error) {
	return t, c.do(ctx, "POST", "/v1/tasklists/"+url.PathEscape(list)+"/tasks/"+url.PathEscape(task)+"/claim", nil, struct{}{}, &t)
}

// Complete calls POST /v1/tasklists/{list}/tasks/{task}/complete.
func (c *Client) Complete(ctx context.Context, list, task string) (t localapi.Task, err error) {
	return t, c.do(ctx, "POST", "/v1/tasklists/"+url.PathEscape(list)+"/tasks/"+url.PathEscape(task)+"/complete", nil, struct{}{}, &t)
}

// Changes calls GET /v1/tasklists/{list}/changes.
func (c *Client) Changes(ctx context.Context, list string, r Read) (p localapi.Page[localapi.TaskChange], err error) {
	return p, c.do(ctx, "GET", "/v1/tasklists/"+url.PathEscape(list)+"/changes", r.values(nil), nil, &p)
}

// StreamChanges calls GET /v1/tasklists/{list}/changes/stream (see StreamTopic).
func (c *Client) StreamChanges(ctx context.Context, list string, after *uint64, fn func(localapi.TaskChange) error, opts ...StreamOption) error {
	return stream(ctx, c, "/v1/tasklists/"+url.PathEscape(list)+"/changes/stream", nil, after, fn, opts)
}

// ---- identity ----------------------------------------------------------

// ExportIdentity calls POST /v1/identity/export.
func (c *Client) ExportIdentity(ctx context.Context, passphrase string) (e localapi.ExportResponse, err error) {
	return e, c.do(ctx, "POST", "/v1/identity/export", nil, localapi.ExportRequest{Passphrase: passphrase}, &e)
}

// ImportIdentity calls POST /v1/identity/import.
func (c *Client) ImportIdentity(ctx context.Context, req localapi.ImportRequest) (r localapi.ImportResponse, err error) {
	return r, c.do(ctx, "POST", "/v1/identity/import", nil, req, &r)
}

// ---- streams -----------------------------------------------------------

// maxEventLine bounds one line of a Server-Sent Events stream: an item's
// "data:" line. An item carries a payload of up to x0x.MaxPayload (1 MiB)
// twice over: as text, JSON-escaped, where the worst case is 6 bytes per
// byte (a control character as \u00XX, and '<', '>' and '&' too for an
// encoder that escapes HTML), 6 MiB; and in base64, 4 bytes per 3, about
// 1.4 MiB. With the item's other fields that is under 8 MiB; 16 MiB
// leaves room to spare.
const maxEventLine = 16 << 20

// stream reads a Server-Sent Events stream of JSON items of type T.
func stream[T any](ctx context.Context, c *Client, path string, q url.Values, after *uint64, fn func(T) error, opts []StreamOption) error {
	var o streamOpts
	for _, opt := range opts {
		opt(&o)
	}
	if q == nil {
		q = url.Values{}
	}
	if after != nil {
		q.Set("after", strconv.FormatUint(*after, 10))
	}
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	var event string
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) > 0 {
				payload := strings.Join(data, "\n")
				if event == "missed" || event == "reset" || event == "end" || event == "error" {
					var n localapi.StreamNotice
					if err := json.Unmarshal([]byte(payload), &n); err != nil {
						return fmt.Errorf("%s: decoding a %s notice: %w", path, event, err)
					}
					if n.Notice == "" {
						n.Notice = event
					}
					switch event {
					case "missed", "reset":
						if o.onMissed != nil {
							o.onMissed(n)
						}
					case "end":
						return io.EOF
					default:
						return &Error{Status: http.StatusOK, Code: n.Code, Message: n.Message, ResumeAfter: n.ResumeAfter}
					}
					event, data = "", nil
					continue
				}
				var item T
				if err := json.Unmarshal([]byte(payload), &item); err != nil {
					return fmt.Errorf("%s: decoding an event: %w", path, err)
				}
				if err := fn(item); err != nil {
					return err
				}
			}
			event, data = "", nil
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrStreamBroken, err)
	}
	return ErrStreamBroken
}

// ---- groups ------------------------------------------------------------

// PublishKeyPackage calls POST /v1/keypackage: the agent accepts
// invitations into groups from then on.
func (c *Client) PublishKeyPackage(ctx context.Context) error {
	return c.do(ctx, "POST", "/v1/keypackage", nil, struct{}{}, nil)
}

// Groups calls GET /v1/groups.
func (c *Client) Groups(ctx context.Context) ([]localapi.GroupInfo, error) {
	var out localapi.GroupIndex
	return out.Groups, c.do(ctx, "GET", "/v1/groups", nil, nil, &out)
}

// CreateGroup calls POST /v1/groups.
func (c *Client) CreateGroup(ctx context.Context) (g localapi.GroupInfo, err error) {
	return g, c.do(ctx, "POST", "/v1/groups", nil, struct{}{}, &g)
}

// Group calls GET /v1/groups/{group}.
func (c *Client) Group(ctx context.Context, group string) (g localapi.GroupInfo, err error) {
	return g, c.do(ctx, "GET", "/v1/groups/"+url.PathEscape(group), nil, nil, &g)
}

// LeaveGroup calls DELETE /v1/groups/{group}.
func (c *Client) LeaveGroup(ctx context.Context, group string) error {
	return c.do(ctx, "DELETE", "/v1/groups/"+url.PathEscape(group), nil, nil, nil)
}

// Invite calls POST /v1/groups/{group}/members.
func (c *Client) Invite(ctx context.Context, group, agent string) (g localapi.GroupInfo, err error) {
	return g, c.do(ctx, "POST", "/v1/groups/"+url.PathEscape(group)+"/members", nil, localapi.InviteRequest{Agent: agent}, &g)
}

// RemoveMember calls DELETE /v1/groups/{group}/members/{agent}.
func (c *Client) RemoveMember(ctx context.Context, group, agent string) (g localapi.GroupInfo, err error) {
	return g, c.do(ctx, "DELETE", "/v1/groups/"+url.PathEscape(group)+"/members/"+url.PathEscape(agent), nil, nil, &g)
}

// SendGroup calls POST /v1/groups/{group}/messages.
func (c *Client) SendGroup(ctx context.Context, group string, p localapi.Payload) error {
	return c.do(ctx, "POST", "/v1/groups/"+url.PathEscape(group)+"/messages", nil, localapi.GroupSendRequest{Payload: p}, nil)
}

// GroupMessages calls GET /v1/groups/{group}/messages.
func (c *Client) GroupMessages(ctx context.Context, group string, r Read) (p localapi.Page[localapi.GroupMessage], err error) {
	return p, c.do(ctx, "GET", "/v1/groups/"+url.PathEscape(group)+"/messages", r.values(nil), nil, &p)
}

// StreamGroup calls GET /v1/groups/{group}/messages/stream (see StreamTopic).
func (c *Client) StreamGroup(ctx context.Context, group string, after *uint64, fn func(localapi.GroupMessage) error, opts ...StreamOption) error {
	return stream(ctx, c, "/v1/groups/"+url.PathEscape(group)+"/messages/stream", nil, after, fn, opts)
}

// Invitations calls GET /v1/invitations.
func (c *Client) Invitations(ctx context.Context) ([]localapi.Invitation, error) {
	var out localapi.InvitationList
	return out.Invitations, c.do(ctx, "GET", "/v1/invitations", nil, nil, &out)
}

// Accept calls POST /v1/invitations/{group}/accept.
func (c *Client) Accept(ctx context.Context, group string) (g localapi.GroupInfo, err error) {
	return g, c.do(ctx, "POST", "/v1/invitations/"+url.PathEscape(group)+"/accept", nil, struct{}{}, &g)
}

// Decline calls POST /v1/invitations/{group}/decline.
func (c *Client) Decline(ctx context.Context, group string) error {
	return c.do(ctx, "POST", "/v1/invitations/"+url.PathEscape(group)+"/decline", nil, struct{}{}, nil)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
