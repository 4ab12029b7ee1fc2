package localapi

import (
	"encoding/base64"
	"time"
	"unicode/utf8"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// The JSON bodies of the API. IDs are 64 lowercase hex digits; payloads
// travel as text (UTF-8) or as standard base64 (payload_b64): requests
// give one of the two, responses carry payload_b64 always and text when
// the payload is valid UTF-8.

// Health is GET /health (no token needed).
type Health struct {
	Status         string   `json:"status"`
	Version        string   `json:"version"`
	Role           string   `json:"role"`
	MachineID      string   `json:"machine_id"`
	AgentID        string   `json:"agent_id"`
	UDPAddr        string   `json:"udp_addr"`
	NATType        string   `json:"nat_type"`
	ExternalAddrs  []string `json:"external_addrs"`
	Peers          int      `json:"peers"`
	Topics         int      `json:"topics"`
	UptimeSeconds  float64  `json:"uptime_seconds"`
	AdvertisedAddr string   `json:"advertised_addr"`
}

// AgentInfo is GET /v1/agent.
type AgentInfo struct {
	AgentID        string `json:"agent_id"`
	MachineID      string `json:"machine_id"`
	Addr           string `json:"addr"`
	AdvertisedAddr string `json:"advertised_addr"`
	DialAddr       string `json:"dial_addr"` // machine_id@advertised_addr: what peers pass to connect
	NATType        string `json:"nat_type"`
	ExternalAddr   string `json:"external_addr,omitempty"`
	Version        string `json:"version"`
}

// Peer is one connected peer (GET /v1/peers).
type Peer struct {
	ID       string   `json:"id"`
	Addr     string   `json:"addr"`
	Relayed  bool     `json:"relayed"`
	Via      string   `json:"via,omitempty"`
	Services []string `json:"services"`
	Agents   []string `json:"agents"`
}

// ConnectRequest is POST /v1/peers: "host:port" or "<peer id>@host:port".
type ConnectRequest struct {
	Addr string `json:"addr"`
}

// ConnectResponse names the peer that proved itself at the address.
type ConnectResponse struct {
	Peer string `json:"peer"`
}

// Payload is the text-or-bytes part of a request.
type Payload struct {
	Text       *string `json:"text,omitempty"`
	PayloadB64 *string `json:"payload_b64,omitempty"`
}

// bytes returns the payload; exactly one of the two fields must be set
// (an empty text is an empty payload).
func (p Payload) bytes() ([]byte, error) {
	switch {
	case p.Text != nil && p.PayloadB64 != nil:
		return nil, badRequest("give text or payload_b64, not both")
	case p.Text != nil:
		return []byte(*p.Text), nil
	case p.PayloadB64 != nil:
		b, err := base64.StdEncoding.DecodeString(*p.PayloadB64)
		if err != nil {
			return nil, badRequest("payload_b64: %v", err)
		}
		return b, nil
	}
	return nil, badRequest("give text or payload_b64")
}

// PublishRequest is POST /v1/topics/publish.
type PublishRequest struct {
	Topic string `json:"topic"`
	Payload
}

// PublishResponse is the published message's ID.
type PublishResponse struct {
	ID string `json:"id"`
}

// FollowRequest is POST /v1/topics: the daemon subscribes to the topic
// and keeps its messages for readers.
type FollowRequest struct {
	Topic string `json:"topic"`
}

// TopicInfo describes a followed topic.
type TopicInfo struct {
	Topic      string   `json:"topic"`
	Cursor     uint64   `json:"cursor"` // the newest message's cursor
	Neighbours []string `json:"neighbours"`
}

// TopicList is GET /v1/topics.
type TopicList struct {
	Topics []TopicInfo `json:"topics"`
}

// TopicMessage is one message of a followed topic.
type TopicMessage struct {
	Cursor     uint64    `json:"cursor"`
	Topic      string    `json:"topic"`
	ID         string    `json:"id"`
	From       string    `json:"from"` // the publishing agent (its signature verified)
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"time"`
	Hops       int       `json:"hops"`
	Text       *string   `json:"text,omitempty"`
	PayloadB64 string    `json:"payload_b64"`
}

// DirectRequest is POST /v1/direct.
type DirectRequest struct {
	To string `json:"to"`
	Payload
}

// DirectMessage is one direct message received by the daemon's agent.
type DirectMessage struct {
	Cursor     uint64    `json:"cursor"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	Peer       string    `json:"peer"` // the machine that carried it
	Received   time.Time `json:"received"`
	Text       *string   `json:"text,omitempty"`
	PayloadB64 string    `json:"payload_b64"`
}

// Page is the JSON of every feed read: the items after the cursor asked
// for, the cursor to ask for next, and how many items after the cursor
// were lost (evicted before they were read, or dropped by a slow source).
// Cursors only grow: a feed's first cursor is the time it was created, in
// microseconds.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor uint64 `json:"next_cursor"`
	Missed     uint64 `json:"missed"`
	// Reset: the cursor asked for is from an earlier feed (the daemon
	// restarted, or the topic was unfollowed since); the page starts
	// with the oldest item kept.
	Reset bool `json:"reset,omitempty"`
}

// CreateTaskListRequest is POST /v1/tasklists.
type CreateTaskListRequest struct {
	Name string `json:"name"`
	// Open lets every agent write (default: only the creator and the
	// writers it adds).
	Open bool `json:"open_to_all"`
}

// TaskListInfo describes a task list.
type TaskListInfo struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Open       bool   `json:"open_to_all"`
	Joined     bool   `json:"joined"` // open in this daemon
	Operations int    `json:"operations,omitempty"`
}

// TaskListIndex is GET /v1/tasklists.
type TaskListIndex struct {
	Lists []TaskListInfo `json:"lists"`
}

// TaskListSnapshot is GET /v1/tasklists/{id}.
type TaskListSnapshot struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Creator string   `json:"creator,omitempty"`
	Writers []string `json:"writers"`
	Open    bool     `json:"open_to_all"`
	Cursor  uint64   `json:"changes_cursor"` // the newest change's cursor
	Tasks   []Task   `json:"tasks"`
}

// AddTaskRequest is POST /v1/tasklists/{id}/tasks.
type AddTaskRequest struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
}

// Task is one task.
type Task struct {
	ID          string    `json:"id"`
	Title       string    `json:"title"`
	Description string    `json:"description,omitempty"`
	State       string    `json:"state"` // "open", "claimed" or "done"
	Claimant    string    `json:"claimant,omitempty"`
	Claims      []string  `json:"claims"`
	Assignee    string    `json:"assignee,omitempty"`
	Priority    uint8     `json:"priority"`
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
}

// TaskChange is one change of a task list (local or remote).
type TaskChange struct {
	Cursor uint64 `json:"cursor"`
	List   string `json:"list"`
	Task   string `json:"task,omitempty"`
	Author string `json:"author"`
	Op     string `json:"op"` // created, added, updated, claimed, completed, reopened, moved, removed, access
	Local  bool   `json:"local"`
}

// ExportRequest is POST /v1/identity/export.
type ExportRequest struct {
	Passphrase string `json:"passphrase"`
}

// ExportResponse is the passphrase-sealed agent key.
type ExportResponse struct {
	AgentID   string `json:"agent_id"`
	BundleB64 string `json:"bundle_b64"`
}

// ImportRequest is POST /v1/identity/import.
type ImportRequest struct {
	BundleB64  string `json:"bundle_b64"`
	Passphrase string `json:"passphrase"`
	// Replace must be true when it replaces the data directory's agent
	// key (the old key file is kept beside it).
	Replace bool `json:"replace"`
}

// ImportResponse says which agent the daemon will be after a restart.
type ImportResponse struct {
	AgentID         string `json:"agent_id"`
	RestartRequired bool   `json:"restart_required"`
	PreviousKeyFile string `json:"previous_key_file,omitempty"`
}

// GroupInfo describes a private group.
type GroupInfo struct {
	ID      string   `json:"id"`
	Epoch   uint64   `json:"epoch"`
	Members []string `json:"members"`
	Online  []string `json:"online"`
	Cursor  uint64   `json:"messages_cursor"`
}

// GroupIndex is GET /v1/groups.
type GroupIndex struct {
	Groups []GroupInfo `json:"groups"`
}

// InviteRequest is POST /v1/groups/{id}/members.
type InviteRequest struct {
	Agent string `json:"agent"`
}

// GroupSendRequest is POST /v1/groups/{id}/messages.
type GroupSendRequest struct {
	Payload
}

// GroupMessage is one message of another member of a group.
type GroupMessage struct {
	Cursor     uint64  `json:"cursor"`
	Group      string  `json:"group"`
	From       string  `json:"from"`
	Epoch      uint64  `json:"epoch"`
	Text       *string `json:"text,omitempty"`
	PayloadB64 string  `json:"payload_b64"`
}

// Invitation is a pending invitation into a group.
type Invitation struct {
	Group   string   `json:"group"`
	From    string   `json:"from"`
	Members []string `json:"members"`
	Epoch   uint64   `json:"epoch"`
}

// InvitationList is GET /v1/invitations.
type InvitationList struct {
	Invitations []Invitation `json:"invitations"`
}

// Empty is the body of calls that return nothing else.
type Empty struct {
	OK bool `json:"ok"`
}

// encodePayload fills a response's text (if UTF-8) and base64 fields.
func encodePayload(b []byte) (*string, string) {
	var text *string
	if utf8.Valid(b) {
		t := string(b)
		text = &t
	}
	return text, base64.StdEncoding.EncodeToString(b)
}

func ids[T ~[32]byte](v []T) []string {
	out := make([]string, len(v))
	for i, id := range v {
		out[i] = x0x.ID(id).String()
	}
	return out
}

func idString[T ~[32]byte](id T) string {
	if id == (T{}) {
		return ""
	}
	return x0x.ID(id).String()
}
