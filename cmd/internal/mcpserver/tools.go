package mcpserver

import (
	"context"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/saorsa-labs/x0x-go/cmd/internal/apiclient"
	"github.com/saorsa-labs/x0x-go/cmd/internal/localapi"
)

// ---- inputs and outputs ---------------------------------------------------

type noInput struct{}

// PeersOutput is list_peers' result.
type PeersOutput struct {
	Peers []localapi.Peer `json:"peers"`
}

type publishInput struct {
	Topic string `json:"topic" jsonschema:"the topic's name, e.g. team/announcements"`
	Text  string `json:"text" jsonschema:"the message (UTF-8 text)"`
}

// PublishOutput is publish's result.
type PublishOutput struct {
	Topic string `json:"topic"`
	ID    string `json:"id"` // the message's ID
}

type readMessagesInput struct {
	Topic  string  `json:"topic" jsonschema:"the topic's name"`
	After  *uint64 `json:"after,omitempty" jsonschema:"return the messages after this cursor (a next_cursor from an earlier read); omit it to continue where this session's previous read of the topic stopped"`
	Limit  int     `json:"limit,omitempty" jsonschema:"at most this many messages, 1 to 1000 (default 50)"`
	WaitMs int     `json:"wait_ms,omitempty" jsonschema:"when there is nothing new, wait up to this many milliseconds for a message (0 to 30000, default 0: answer at once)"`
}

// MessagesOutput is read_messages' result: a page of the topic's feed.
type MessagesOutput struct {
	Topic      string                  `json:"topic"`
	Items      []localapi.TopicMessage `json:"items"`
	NextCursor uint64                  `json:"next_cursor"` // pass as "after" to read on
	Missed     uint64                  `json:"missed"`      // messages after the cursor lost before they were read
	// FollowedNow is true when this read started following the topic.
	FollowedNow bool `json:"followed_now,omitempty"`
}

type sendDirectInput struct {
	To   string `json:"to" jsonschema:"the recipient agent's ID (64 hex digits, as its whoami says)"`
	Text string `json:"text" jsonschema:"the message (UTF-8 text)"`
}

// SendDirectOutput is send_direct's result.
type SendDirectOutput struct {
	OK bool   `json:"ok"`
	To string `json:"to"`
}

type readDirectInput struct {
	After  *uint64 `json:"after,omitempty" jsonschema:"return the messages after this cursor (a next_cursor from an earlier read); omit it to continue where this session's previous read_direct stopped"`
	Limit  int     `json:"limit,omitempty" jsonschema:"at most this many messages, 1 to 1000 (default 50)"`
	WaitMs int     `json:"wait_ms,omitempty" jsonschema:"when there is nothing new, wait up to this many milliseconds for a message (0 to 30000, default 0)"`
}

// DirectOutput is read_direct's result: a page of the inbox.
type DirectOutput struct {
	Items      []localapi.DirectMessage `json:"items"`
	NextCursor uint64                   `json:"next_cursor"`
	Missed     uint64                   `json:"missed"`
}

type tasklistCreateInput struct {
	Name string `json:"name" jsonschema:"the list's name"`
	Open bool   `json:"open,omitempty" jsonschema:"true: every agent that joins may add, claim and complete tasks; false (default): only you may write"`
}

type tasklistInput struct {
	List string `json:"list" jsonschema:"the task list's ID (64 hex digits, as tasklist_create or tasklist_list gave it)"`
}

type tasklistAddInput struct {
	List        string `json:"list" jsonschema:"the task list's ID (64 hex digits)"`
	Title       string `json:"title" jsonschema:"the task's title"`
	Description string `json:"description,omitempty" jsonschema:"what is to be done (optional)"`
}

type taskInput struct {
	List string `json:"list" jsonschema:"the task list's ID (64 hex digits)"`
	Task string `json:"task" jsonschema:"the task's ID, or a unique prefix of at least 8 hex digits of it"`
}

type tasklistListInput struct {
	List string `json:"list,omitempty" jsonschema:"a task list's ID: show its tasks; omit it to list your task lists"`
}

// TaskListsOutput is tasklist_list's result: Lists without a list ID,
// else List.
type TaskListsOutput struct {
	Lists []localapi.TaskListInfo    `json:"lists,omitzero"`
	List  *localapi.TaskListSnapshot `json:"list,omitzero"`
}

// ---- the tools ------------------------------------------------------------

func (h *handler) addTools() {
	readOnly := &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true}
	mcp.AddTool(h.srv, &mcp.Tool{Name: "whoami", Title: "Who am I",
		Description: "Your x0x agent: its agent ID (what others send direct messages to), machine ID, network address, NAT type and the daemon's version.",
		Annotations: readOnly}, h.whoami)
	mcp.AddTool(h.srv, &mcp.Tool{Name: "list_peers", Title: "Connected peers",
		Description: "The machines your daemon is connected to, with their addresses and the agents known to run on them.",
		Annotations: readOnly}, h.listPeers)
	mcp.AddTool(h.srv, &mcp.Tool{Name: "publish", Title: "Publish to a topic",
		Description: "Publish a text message on a topic: every agent following the topic receives it (signed by your agent)."}, h.publish)
	mcp.AddTool(h.srv, &mcp.Tool{Name: "read_messages", Title: "Read a topic's messages",
		Description: "Read a topic's messages after a cursor. Returns items (each with cursor, from, text, time), next_cursor and missed. " +
			"Without \"after\" it continues where your previous read of this topic stopped, so repeated calls return only new messages. " +
			"wait_ms long-polls for news. The first read of a topic starts following it (earlier messages are not seen)."}, h.readMessages)
	mcp.AddTool(h.srv, &mcp.Tool{Name: "send_direct", Title: "Send a direct message",
		Description: "Send a text message to one agent (by its agent ID), end-to-end over the post-quantum transport. The agent must be reachable (connected directly or via a relay)."}, h.sendDirect)
	mcp.AddTool(h.srv, &mcp.Tool{Name: "read_direct", Title: "Read direct messages",
		Description: "Read the direct messages your agent received, after a cursor (same paging as read_messages: items, next_cursor, missed; without \"after\" it continues where your previous read_direct stopped)."}, h.readDirect)
	mcp.AddTool(h.srv, &mcp.Tool{Name: "tasklist_create", Title: "Create a task list",
		Description: "Create a shared task list. Give its id to other agents so they can tasklist_join it; open=true lets them add, claim and complete tasks."}, h.tasklistCreate)
	mcp.AddTool(h.srv, &mcp.Tool{Name: "tasklist_join", Title: "Join a task list",
		Description: "Join a task list another agent created, by its ID: its tasks then sync to you.",
		Annotations: &mcp.ToolAnnotations{IdempotentHint: true}}, h.tasklistJoin)
	mcp.AddTool(h.srv, &mcp.Tool{Name: "tasklist_add", Title: "Add a task",
		Description: "Add a task to a task list you joined or created. Returns the task with its id."}, h.tasklistAdd)
	mcp.AddTool(h.srv, &mcp.Tool{Name: "tasklist_claim", Title: "Claim a task",
		Description: "Claim an open task: you become its claimant, and only you can complete it. Errors: task_done, claimed_by_other."}, h.tasklistClaim)
	mcp.AddTool(h.srv, &mcp.Tool{Name: "tasklist_complete", Title: "Complete a task",
		Description: "Mark a task you claimed as done. Errors: task_not_claimed (claim it first), claimed_by_other, task_done."}, h.tasklistComplete)
	mcp.AddTool(h.srv, &mcp.Tool{Name: "tasklist_list", Title: "List task lists or tasks",
		Description: "Without list: your task lists (id, name, joined). With list: that list's tasks with their state (open, claimed, done) and claimant.",
		Annotations: readOnly}, h.tasklistList)
}

func (h *handler) whoami(ctx context.Context, _ *mcp.CallToolRequest, _ noInput) (*mcp.CallToolResult, localapi.AgentInfo, error) {
	a, err := h.client.Agent(ctx)
	if err != nil {
		return nil, a, toolError(err)
	}
	return result(fmt.Sprintf("You are agent %s on machine %s, at %s (NAT: %s, x0x %s).",
		a.AgentID, short(a.MachineID), a.AdvertisedAddr, a.NATType, a.Version), a)
}

func (h *handler) listPeers(ctx context.Context, _ *mcp.CallToolRequest, _ noInput) (*mcp.CallToolResult, PeersOutput, error) {
	peers, err := h.client.Peers(ctx)
	if err != nil {
		return nil, PeersOutput{}, toolError(err)
	}
	if peers == nil {
		peers = []localapi.Peer{}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s connected.", plural(len(peers), "peer", "peers"))
	for _, p := range peers {
		how := p.Addr
		if p.Relayed {
			how += " (relayed via " + short(p.Via) + ")"
		}
		fmt.Fprintf(&b, "\n- machine %s at %s, %s", short(p.ID), how, plural(len(p.Agents), "agent", "agents"))
	}
	return result(b.String(), PeersOutput{Peers: peers})
}

func (h *handler) publish(ctx context.Context, _ *mcp.CallToolRequest, in publishInput) (*mcp.CallToolResult, PublishOutput, error) {
	if in.Topic == "" {
		return nil, PublishOutput{}, invalid("topic is empty")
	}
	id, err := h.client.Publish(ctx, in.Topic, apiclient.Text(in.Text))
	if err != nil {
		return nil, PublishOutput{}, toolError(err)
	}
	return result(fmt.Sprintf("Published to topic %q (message %s).", in.Topic, short(id)), PublishOutput{Topic: in.Topic, ID: id})
}

// page checks a read's limit and wait.
func (h *handler) page(after *uint64, remembered uint64, limit, waitMs int) (apiclient.Read, error) {
	if limit == 0 {
		limit = 50
	}
	if limit < 1 || limit > 1000 {
		return apiclient.Read{}, invalid("limit: want 1 to 1000")
	}
	if waitMs < 0 {
		return apiclient.Read{}, invalid("wait_ms: want 0 or more")
	}
	waitMs = min(waitMs, int(h.opts.MaxWait.Milliseconds()))
	r := apiclient.Read{After: remembered, Limit: limit, WaitMs: waitMs}
	if after != nil {
		r.After = *after
	}
	return r, nil
}

func (h *handler) readMessages(ctx context.Context, req *mcp.CallToolRequest, in readMessagesInput) (*mcp.CallToolResult, MessagesOutput, error) {
	if in.Topic == "" {
		return nil, MessagesOutput{}, invalid("topic is empty")
	}
	st := h.session(req.Session)
	h.mu.Lock()
	remembered := st.topics[in.Topic]
	h.mu.Unlock()
	r, err := h.page(in.After, remembered, in.Limit, in.WaitMs)
	if err != nil {
		return nil, MessagesOutput{}, err
	}
	out := MessagesOutput{Topic: in.Topic}
	p, err := h.client.TopicMessages(ctx, in.Topic, r)
	if apiclient.IsCode(err, "not_found") {
		// Not followed yet: follow it, then read (and wait) from its start.
		if _, err := h.client.Follow(ctx, in.Topic); err != nil {
			return nil, MessagesOutput{}, toolError(err)
		}
		out.FollowedNow = true
		p, err = h.client.TopicMessages(ctx, in.Topic, r)
	}
	if err != nil {
		return nil, MessagesOutput{}, toolError(err)
	}
	h.mu.Lock()
	st.topics[in.Topic] = p.NextCursor
	h.mu.Unlock()
	out.Items, out.NextCursor, out.Missed = p.Items, p.NextCursor, p.Missed
	if out.Items == nil {
		out.Items = []localapi.TopicMessage{}
	}
	var b strings.Builder
	if out.FollowedNow {
		fmt.Fprintf(&b, "Now following topic %q. ", in.Topic)
	}
	fmt.Fprintf(&b, "%s on topic %q after cursor %d; next_cursor %d", plural(len(out.Items), "message", "messages"), in.Topic, r.After, out.NextCursor)
	if out.Missed > 0 {
		fmt.Fprintf(&b, "; %d missed (lost before they were read)", out.Missed)
	}
	b.WriteString(".")
	for _, m := range out.Items {
		fmt.Fprintf(&b, "\n- [%d] from %s: %s", m.Cursor, short(m.From), clip(m.Text, m.PayloadB64))
	}
	return result(b.String(), out)
}

func (h *handler) sendDirect(ctx context.Context, _ *mcp.CallToolRequest, in sendDirectInput) (*mcp.CallToolResult, SendDirectOutput, error) {
	if err := h.client.SendDirect(ctx, in.To, apiclient.Text(in.Text)); err != nil {
		return nil, SendDirectOutput{}, toolError(err)
	}
	return result(fmt.Sprintf("Sent to agent %s.", short(in.To)), SendDirectOutput{OK: true, To: in.To})
}

func (h *handler) readDirect(ctx context.Context, req *mcp.CallToolRequest, in readDirectInput) (*mcp.CallToolResult, DirectOutput, error) {
	st := h.session(req.Session)
	h.mu.Lock()
	remembered := st.direct
	h.mu.Unlock()
	r, err := h.page(in.After, remembered, in.Limit, in.WaitMs)
	if err != nil {
		return nil, DirectOutput{}, err
	}
	p, err := h.client.DirectMessages(ctx, r)
	if err != nil {
		return nil, DirectOutput{}, toolError(err)
	}
	h.mu.Lock()
	st.direct = p.NextCursor
	h.mu.Unlock()
	out := DirectOutput{Items: p.Items, NextCursor: p.NextCursor, Missed: p.Missed}
	if out.Items == nil {
		out.Items = []localapi.DirectMessage{}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s after cursor %d; next_cursor %d", plural(len(out.Items), "direct message", "direct messages"), r.After, out.NextCursor)
	if out.Missed > 0 {
		fmt.Fprintf(&b, "; %d missed", out.Missed)
	}
	b.WriteString(".")
	for _, m := range out.Items {
		fmt.Fprintf(&b, "\n- [%d] from %s: %s", m.Cursor, m.From, clip(m.Text, m.PayloadB64))
	}
	return result(b.String(), out)
}

func (h *handler) tasklistCreate(ctx context.Context, _ *mcp.CallToolRequest, in tasklistCreateInput) (*mcp.CallToolResult, localapi.TaskListInfo, error) {
	l, err := h.client.CreateTaskList(ctx, in.Name, in.Open)
	if err != nil {
		return nil, l, toolError(err)
	}
	who := "only you can write"
	if l.Open {
		who = "open: every agent that joins can write"
	}
	return result(fmt.Sprintf("Created task list %q, id %s (%s). Others join it with tasklist_join and this id.", l.Name, l.ID, who), l)
}

func (h *handler) tasklistJoin(ctx context.Context, _ *mcp.CallToolRequest, in tasklistInput) (*mcp.CallToolResult, localapi.TaskListInfo, error) {
	l, err := h.client.JoinTaskList(ctx, in.List)
	if err != nil {
		return nil, l, toolError(err)
	}
	name := l.Name
	if name == "" {
		name = "(name not yet synced)"
	}
	return result(fmt.Sprintf("Joined task list %s, id %s; its tasks sync in the background (tasklist_list shows them).", name, l.ID), l)
}

func (h *handler) tasklistAdd(ctx context.Context, _ *mcp.CallToolRequest, in tasklistAddInput) (*mcp.CallToolResult, localapi.Task, error) {
	t, err := h.client.AddTask(ctx, in.List, in.Title, in.Description)
	if err != nil {
		return nil, t, toolError(err)
	}
	return result(fmt.Sprintf("Added task %q, id %s.", t.Title, t.ID), t)
}

func (h *handler) tasklistClaim(ctx context.Context, _ *mcp.CallToolRequest, in taskInput) (*mcp.CallToolResult, localapi.Task, error) {
	t, err := h.client.Claim(ctx, in.List, in.Task)
	if err != nil {
		return nil, t, toolError(err)
	}
	return result(fmt.Sprintf("Task %q (%s) is %s, claimant %s.", t.Title, short(t.ID), t.State, short(t.Claimant)), t)
}

func (h *handler) tasklistComplete(ctx context.Context, _ *mcp.CallToolRequest, in taskInput) (*mcp.CallToolResult, localapi.Task, error) {
	t, err := h.client.Complete(ctx, in.List, in.Task)
	if err != nil {
		return nil, t, toolError(err)
	}
	return result(fmt.Sprintf("Task %q (%s) is %s.", t.Title, short(t.ID), t.State), t)
}

func (h *handler) tasklistList(ctx context.Context, _ *mcp.CallToolRequest, in tasklistListInput) (*mcp.CallToolResult, TaskListsOutput, error) {
	var b strings.Builder
	if in.List == "" {
		lists, err := h.client.TaskLists(ctx)
		if err != nil {
			return nil, TaskListsOutput{}, toolError(err)
		}
		if lists == nil {
			lists = []localapi.TaskListInfo{}
		}
		fmt.Fprintf(&b, "%s.", plural(len(lists), "task list", "task lists"))
		for _, l := range lists {
			state := "stored, not joined"
			if l.Joined {
				state = "joined"
			}
			fmt.Fprintf(&b, "\n- %q id %s (%s)", l.Name, l.ID, state)
		}
		return result(b.String(), TaskListsOutput{Lists: lists})
	}
	s, err := h.client.TaskList(ctx, in.List)
	if err != nil {
		return nil, TaskListsOutput{}, toolError(err)
	}
	if s.Tasks == nil {
		s.Tasks = []localapi.Task{}
	}
	fmt.Fprintf(&b, "Task list %q (%s): %s.", s.Name, short(s.ID), plural(len(s.Tasks), "task", "tasks"))
	for _, t := range s.Tasks {
		fmt.Fprintf(&b, "\n- [%s] %q id %s", t.State, t.Title, t.ID)
		if t.Claimant != "" {
			fmt.Fprintf(&b, ", claimant %s", t.Claimant)
		}
	}
	return result(b.String(), TaskListsOutput{List: &s})
}
