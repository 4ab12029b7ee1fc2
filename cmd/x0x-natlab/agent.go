package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// request is one command from the driver to an agent process.
type request struct {
	Op      string `json:"op"`
	Machine string `json:"machine,omitempty"`
	Agent   string `json:"agent,omitempty"`
	Addr    string `json:"addr,omitempty"`
	Topic   string `json:"topic,omitempty"`
	Msg     string `json:"msg,omitempty"`
	List    string `json:"list,omitempty"`
	Title   string `json:"title,omitempty"`
	// N and IntervalMs (for "send_many"): how many direct messages, how far apart.
	N          int `json:"n,omitempty"`
	IntervalMs int `json:"interval_ms,omitempty"`
	// Overlay (for "new"): join the gossip overlay through the servers.
	// Without it the agent only connects to them (address reports and
	// coordination), so no overlay traffic connects a measured pair early.
	Overlay bool `json:"overlay,omitempty"`
}

// reply is an agent process's answer to one request.
type reply struct {
	OK        bool     `json:"ok"`
	Err       string   `json:"err,omitempty"`
	Machine   string   `json:"machine,omitempty"`
	Agent     string   `json:"agent,omitempty"`
	Addr      string   `json:"addr,omitempty"`
	NAT       string   `json:"nat,omitempty"`
	External  string   `json:"external,omitempty"`
	Relayed   bool     `json:"relayed,omitempty"`
	Remote    string   `json:"remote,omitempty"` // the peer's address on this node's connection
	Attempts  int      `json:"attempts,omitempty"`
	StartNs   int64    `json:"start_ns,omitempty"`
	AtNs      int64    `json:"at_ns,omitempty"`
	List      string   `json:"list,omitempty"`
	Items     []string `json:"items,omitempty"`
	PeersUp   int      `json:"peers_up,omitempty"`
	Relayeds  int      `json:"relayed_peers,omitempty"`
	Upgrades  uint64   `json:"upgrades,omitempty"`
	Fallbacks uint64   `json:"relay_fallbacks,omitempty"`
	Already   bool     `json:"already_connected,omitempty"`
}

// labAgent is the state of an agent process: one x0x.Agent at a time
// (each "new" replaces it with a fresh identity, data directory and port,
// so that no NAT state of an earlier pair helps a later one).
type labAgent struct {
	bootstrap []string
	dir       string

	mu       sync.Mutex
	changed  chan struct{}
	agent    *x0x.Agent
	gen      int
	direct   map[string]int64    // sending agent hex -> first arrival (Unix ns)
	received map[string][]string // sending agent hex -> every payload, in order
	messages map[string][]string
	lists    map[string]*x0x.TaskList
	topics   []*x0x.Topic
	// pumps counts the goroutines reading the agent's streams; they end
	// when the agent closes.
	pumps sync.WaitGroup
}

// runAgent serves requests from stdin until it closes.
func runAgent(args []string, in io.Reader, out io.Writer) error {
	var bootstrap string
	for i := 0; i < len(args); i++ {
		if args[i] == "-bootstrap" && i+1 < len(args) {
			bootstrap = args[i+1]
			i++
		}
	}
	if bootstrap == "" {
		return errors.New("agent needs -bootstrap ID@ADDR[,ID@ADDR]")
	}
	dir, err := os.MkdirTemp("", "x0x-natlab-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	la := &labAgent{bootstrap: strings.Split(bootstrap, ","), dir: dir, changed: make(chan struct{})}
	defer la.closeAgent()
	enc := json.NewEncoder(out)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var req request
		var rep reply
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			rep = reply{Err: "bad request: " + err.Error()}
		} else {
			rep = la.handle(req)
		}
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	return sc.Err()
}

func (la *labAgent) handle(req request) reply {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fail := func(err error) reply { return reply{Err: err.Error()} }
	if req.Op == "new" {
		if err := la.newAgent(ctx, req.Overlay); err != nil {
			return fail(err)
		}
	}
	la.mu.Lock()
	a := la.agent
	la.mu.Unlock()
	if a == nil {
		return fail(fmt.Errorf("no agent: send new first"))
	}
	switch req.Op {
	case "new", "info":
		return la.info(a)
	case "connect":
		machine, err := x0x.ParseID(req.Machine)
		if err != nil {
			return fail(err)
		}
		agentID, err := x0x.ParseID(req.Agent)
		if err != nil {
			return fail(err)
		}
		for _, p := range a.Peers() {
			if p.ID == machine {
				return reply{Already: true, Err: "already connected before the measured connect"}
			}
		}
		start := time.Now()
		path, err := a.ConnectPeer(ctx, machine, req.Addr)
		if err != nil {
			return reply{Err: err.Error(), StartNs: start.UnixNano()}
		}
		if err := a.SendDirect(ctx, agentID, []byte("hello through the NAT")); err != nil {
			return reply{Err: "send: " + err.Error(), StartNs: start.UnixNano()}
		}
		remote, _ := peerPath(a, machine)
		return reply{OK: true, Relayed: path.Relayed, Attempts: path.Attempts, StartNs: start.UnixNano(), Remote: remote.Addr}
	case "peer":
		machine, err := x0x.ParseID(req.Machine)
		if err != nil {
			return fail(err)
		}
		p, ok := peerPath(a, machine)
		if !ok {
			return fail(fmt.Errorf("not connected to %.8s", req.Machine))
		}
		return reply{OK: true, Relayed: p.Relayed, Remote: p.Addr}
	case "send_many":
		// In the background: the driver changes the network meanwhile.
		agentID, err := x0x.ParseID(req.Agent)
		if err != nil {
			return fail(err)
		}
		la.pumps.Go(func() {
			for i := range req.N {
				c, stop := context.WithTimeout(context.Background(), 10*time.Second)
				_ = a.SendDirect(c, agentID, fmt.Appendf(nil, "%s-%03d", req.Msg, i))
				stop()
				time.Sleep(time.Duration(req.IntervalMs) * time.Millisecond)
			}
		})
		return reply{OK: true}
	case "received":
		la.mu.Lock()
		items := slices.Clone(la.received[req.Agent])
		la.mu.Unlock()
		return reply{OK: true, Items: items}
	case "recv":
		at, err := la.waitDirect(ctx, req.Agent)
		if err != nil {
			return fail(err)
		}
		return reply{OK: true, AtNs: at}
	case "subscribe":
		t, err := a.Join(ctx, req.Topic)
		if err != nil {
			return fail(err)
		}
		sub, err := t.Subscribe()
		if err != nil {
			t.Leave()
			return fail(err)
		}
		la.mu.Lock()
		la.topics = append(la.topics, t)
		gen := la.gen
		la.mu.Unlock()
		la.pumps.Go(func() {
			for {
				m, err := sub.Next(context.Background())
				if errors.Is(err, x0x.ErrLagged) {
					continue
				}
				if err != nil {
					return
				}
				la.mu.Lock()
				if la.gen == gen {
					la.messages[m.Topic] = append(la.messages[m.Topic], string(m.Payload))
				}
				la.mu.Unlock()
			}
		})
		return reply{OK: true}
	case "publish":
		t, err := a.Join(ctx, req.Topic, x0x.PublishOnly())
		if err != nil {
			return fail(err)
		}
		defer t.Leave()
		if _, err := t.Publish(ctx, []byte(req.Msg)); err != nil {
			return fail(err)
		}
		return reply{OK: true}
	case "messages":
		la.mu.Lock()
		items := slices.Clone(la.messages[req.Topic])
		la.mu.Unlock()
		slices.Sort(items)
		return reply{OK: true, Items: items}
	case "create_list", "join_list":
		var l *x0x.TaskList
		var err error
		if req.Op == "create_list" {
			l, err = a.CreateTaskList(ctx, req.Title, x0x.OpenToAll())
		} else {
			var id x0x.TaskListID
			if id, err = x0x.ParseTaskListID(req.List); err == nil {
				l, err = a.JoinTaskList(ctx, id)
			}
		}
		if err != nil {
			return fail(err)
		}
		id := l.ID()
		key := fmt.Sprintf("%x", id[:])
		la.mu.Lock()
		la.lists[key] = l
		la.mu.Unlock()
		return reply{OK: true, List: key}
	case "add_task", "tasks":
		la.mu.Lock()
		l := la.lists[req.List]
		la.mu.Unlock()
		if l == nil {
			return fail(fmt.Errorf("list %q not open", req.List))
		}
		if req.Op == "add_task" {
			// A joiner may add only once the list's creation has reached
			// it (through the topic or a neighbour's catch-up): wait for
			// that rather than for a fixed time.
			deadline := time.Now().Add(30 * time.Second)
			for {
				_, err := l.Add(req.Title, "")
				if err == nil {
					return reply{OK: true}
				}
				if !errors.Is(err, x0x.ErrNotWriter) || time.Now().After(deadline) {
					return fail(err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		var items []string
		for _, t := range l.Snapshot() {
			items = append(items, fmt.Sprintf("%x %s", t.ID[:4], t.Title))
		}
		return reply{OK: true, Items: items}
	}
	return fail(fmt.Errorf("unknown op %q", req.Op))
}

func (la *labAgent) info(a *x0x.Agent) reply {
	nat, ext := a.NATType()
	r := reply{OK: true, Machine: a.MachineID().String(), Agent: a.AgentID().String(), NAT: nat, External: ext,
		Addr: a.AdvertisedAddr()}
	for _, p := range a.Peers() {
		r.PeersUp++
		if p.Relayed {
			r.Relayeds++
		}
	}
	ms := a.Metrics()
	r.Upgrades, _ = ms.Value("x0x_nat_upgrades_total")
	r.Fallbacks, _ = ms.Value("x0x_nat_relay_fallbacks_total")
	return r
}

// newAgent replaces the agent by a fresh one and waits (up to 5 s) until
// its NAT type is known.
func (la *labAgent) newAgent(ctx context.Context, overlay bool) error {
	la.closeAgent()
	la.mu.Lock()
	la.gen++
	gen := la.gen
	la.mu.Unlock()
	dir, err := os.MkdirTemp(la.dir, "agent-")
	if err != nil {
		return err
	}
	a, err := x0x.NewBuilder().WithDataDir(dir).WithBindAddr("0.0.0.0:0").WithBootstrap(la.bootstrap...).Build(ctx)
	if err != nil {
		return err
	}
	la.mu.Lock()
	la.agent = a
	la.direct = make(map[string]int64)
	la.received = make(map[string][]string)
	la.messages = make(map[string][]string)
	la.lists = make(map[string]*x0x.TaskList)
	la.mu.Unlock()
	events, err := a.Events()
	if err != nil {
		return err
	}
	la.pumps.Go(func() {
		for {
			ev, err := events.Next(context.Background())
			if errors.Is(err, x0x.ErrLagged) {
				continue
			}
			if err != nil {
				return
			}
			if ev.Kind != x0x.EventDirectMessage {
				continue
			}
			now := time.Now().UnixNano()
			la.mu.Lock()
			if la.gen == gen {
				if _, seen := la.direct[ev.From.String()]; !seen {
					la.direct[ev.From.String()] = now
				}
				la.received[ev.From.String()] = append(la.received[ev.From.String()], string(ev.Payload))
				close(la.changed)
				la.changed = make(chan struct{})
			}
			la.mu.Unlock()
		}
	})
	if overlay {
		if err := a.JoinNetwork(ctx); err != nil {
			return err
		}
	} else {
		for _, b := range la.bootstrap {
			id, addr, _ := strings.Cut(b, "@")
			peer, err := x0x.ParseID(id)
			if err != nil {
				return err
			}
			// A connection only (no overlay join): address reports and
			// hole-punch coordination.
			if _, err := a.ConnectPeer(ctx, peer, addr); err != nil {
				return err
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if kind, _ := a.NATType(); kind != "unknown" {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

func (la *labAgent) waitDirect(ctx context.Context, from string) (int64, error) {
	for {
		la.mu.Lock()
		at, ok := la.direct[from]
		ch := la.changed
		la.mu.Unlock()
		if ok {
			return at, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, fmt.Errorf("no direct message from %.8s: %w", from, ctx.Err())
		}
	}
}

func (la *labAgent) closeAgent() {
	la.mu.Lock()
	a, topics := la.agent, la.topics
	la.agent, la.topics = nil, nil
	la.mu.Unlock()
	for _, t := range topics {
		t.Leave()
	}
	if a != nil {
		_ = a.Close()
	}
	la.pumps.Wait()
}

// peerPath returns this node's connection to machine as Peers describes it.
func peerPath(a *x0x.Agent, machine x0x.PeerID) (x0x.PeerInfo, bool) {
	for _, p := range a.Peers() {
		if p.ID == machine {
			return p, true
		}
	}
	return x0x.PeerInfo{}, false
}
