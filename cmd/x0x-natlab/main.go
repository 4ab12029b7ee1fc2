// Command x0x-natlab drives the NAT lab (scripts/natlab.sh builds the
// network namespaces and runs it as root).
//
//	x0x-natlab drive -x0xd BIN -servers NS=ADDR,... -hosts NAME:TYPE:NS,...
//	x0x-natlab agent -bootstrap ID@ADDR,...
//
// drive starts x0xd with -role coordinator,relay in each server namespace
// and one agent process per host namespace (itself, in agent mode), talks
// to them over their stdin and stdout (JSON lines), and then:
//
//  1. For every ordered pair of NAT types (hosts "<type>-a" to "<type>-b"
//     for the same type) and the hairpin pair, gives both ends a fresh
//     agent (new key, new port, so no NAT state of an earlier pair helps)
//     connected only to the servers (not joined to the overlay, so that
//     nothing but the measured call connects the pair; the call fails if
//     the two are already connected), connects the first to the second
//     with ConnectPeer (the second's
//     advertised address, then hole punching, then a relay) and sends a
//     direct message. It prints one JSON line per pair: connected (1/0),
//     path (direct/relayed), ms from the start of the connect to the
//     message's arrival, punch attempts, and both NAT types as detected.
//     The hairpin pair (two hosts behind one router) is dialled at the
//     peer's external address, so the connection must run through the
//     router's hairpin (its remote address is the router's public IP).
//  2. With -upgrade A,B,ROUTER_NS,IP: blocks traffic between A's router
//     (namespace ROUTER_NS) and B's public IP with nftables, connects A to
//     B (which must end relayed), sends a stream of direct messages,
//     lifts the block, and waits for the relayed connection to become
//     direct (the upgrade loop's next punch). It prints one JSON line: the
//     seconds from lifting the block to the direct path, and the messages
//     delivered (every one exactly once, across the migration).
//  3. Starts a fresh agent on every host; all subscribe to one topic and
//     share one task list; each publishes a message and adds a task. It
//     prints one JSON line with the delivery counts and whether every
//     agent ended with the same list.
//
// It exits non-zero unless: every pair connected; every pair where hole
// punching is possible in principle (neither side symmetric, or one side
// public) ended direct, within -max-direct-ms; the hairpin pair ran
// through the hairpin; every agent's NAT type was detected as its router
// implements it; the upgrade case went relayed, then direct within
// -max-upgrade, losing and duplicating nothing; and phase 3 delivered
// every agent's message exactly once to every agent and converged on one
// list.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/saorsa-labs/x0x-go/internal/childproc"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: x0x-natlab drive|agent [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "agent":
		err = runAgent(os.Args[2:], os.Stdin, os.Stdout)
	case "drive":
		err = drive(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "x0x-natlab:", err)
		os.Exit(1)
	}
}

// host is one agent host of the lab.
type host struct {
	name, kind, ns string
	proc           *agentProc
}

// expectedNAT is what an agent behind a router of kind must be classified as.
func expectedNAT(kind string) string {
	switch kind {
	case "none":
		return "none"
	case "sym":
		return "endpoint-dependent"
	}
	return "endpoint-independent"
}

// punchable says whether hole punching can work in principle between two
// kinds: neither is symmetric, or one is public.
func punchable(a, b string) bool {
	return a == "none" || b == "none" || (a != "sym" && b != "sym")
}

func drive(args []string) error {
	fs := flag.NewFlagSet("drive", flag.ContinueOnError)
	x0xd := fs.String("x0xd", "build/x0xd", "x0xd binary")
	serversFlag := fs.String("servers", "", "server namespaces and UDP addresses: NS=IP:PORT,...")
	hostsFlag := fs.String("hosts", "", "agent hosts: NAME:KIND:NS,... (KIND none, full, addr, port, sym, double)")
	kindsFlag := fs.String("kinds", "none,full,addr,port,sym,double", "NAT kinds to pair")
	maxDirect := fs.Duration("max-direct", time.Second, "largest time to a direct message allowed for punchable pairs")
	upgrade := fs.String("upgrade", "", "the upgrade case: HOST_A,HOST_B,ROUTER_NS_OF_A,PUBLIC_IP_OF_B (empty: skip)")
	maxUpgrade := fs.Duration("max-upgrade", 15*time.Second, "largest time from lifting the block to the direct path (the first upgrade punch comes after 5 s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Servers: x0xd coordinator + relay.
	var bootstrap []string
	for _, s := range strings.Split(*serversFlag, ",") {
		ns, addr, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("bad -servers item %q", s)
		}
		id, stop, err := startServer(ctx, *x0xd, ns, addr)
		if err != nil {
			return err
		}
		defer stop()
		bootstrap = append(bootstrap, id+"@"+addr)
	}
	hosts := map[string]*host{}
	var order []string
	for _, h := range strings.Split(*hostsFlag, ",") {
		parts := strings.Split(h, ":")
		if len(parts) != 3 {
			return fmt.Errorf("bad -hosts item %q", h)
		}
		p, err := startAgent(ctx, self, parts[2], strings.Join(bootstrap, ","))
		if err != nil {
			return err
		}
		defer p.stop()
		hosts[parts[0]] = &host{name: parts[0], kind: parts[1], ns: parts[2], proc: p}
		order = append(order, parts[0])
	}

	var failures []string
	failf := func(format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		failures = append(failures, msg)
		fmt.Fprintln(os.Stderr, "natlab: FAIL:", msg)
	}
	out := json.NewEncoder(os.Stdout)
	out.SetEscapeHTML(false)

	// Phase 1: every ordered pair.
	type pair struct {
		a, b    string
		hairpin bool
	}
	var pairs []pair
	kinds := strings.Split(*kindsFlag, ",")
	for _, ka := range kinds {
		for _, kb := range kinds {
			pairs = append(pairs, pair{ka + "-a", kb + "-b", false})
		}
	}
	if hosts["hair-a"] != nil && hosts["hair-b"] != nil {
		pairs = append(pairs, pair{"hair-a", "hair-b", true}, pair{"hair-b", "hair-a", true})
	}
	direct, relayed := 0, 0
	for _, p := range pairs {
		ha, hb := hosts[p.a], hosts[p.b]
		if ha == nil || hb == nil {
			return fmt.Errorf("pair %s -> %s: host missing from -hosts", p.a, p.b)
		}
		res := runPair(ha, hb, p.hairpin)
		_ = out.Encode(res)
		switch {
		case res.Connected == 0:
			failf("%s -> %s did not connect: %s", p.a, p.b, res.Err)
		case res.Path == "direct":
			direct++
		default:
			relayed++
		}
		for _, side := range []struct {
			h   *host
			got string
		}{{ha, res.NATA}, {hb, res.NATB}} {
			if want := expectedNAT(side.h.kind); side.got != want {
				failf("%s (%s router) detected NAT %q, want %q", side.h.name, side.h.kind, side.got, want)
			}
		}
		if res.Connected == 1 && punchable(ha.kind, hb.kind) {
			if res.Path != "direct" {
				failf("%s -> %s is punchable but ended %s", p.a, p.b, res.Path)
			} else if time.Duration(res.Ms*float64(time.Millisecond)) > *maxDirect {
				failf("%s -> %s took %.0f ms to a direct message (limit %v)", p.a, p.b, res.Ms, *maxDirect)
			}
		}
		if p.hairpin && res.Connected == 1 && !sameIP(res.Remote, res.Dialled) {
			failf("%s -> %s dialled %s but connected at %s: not through the router's hairpin", p.a, p.b, res.Dialled, res.Remote)
		}
	}
	_ = out.Encode(map[string]any{"phase": "pairs", "pairs": len(pairs), "direct": direct, "relayed": relayed,
		"failed": len(pairs) - direct - relayed})

	// Phase 2: a relayed connection upgraded to a direct one.
	if *upgrade != "" {
		f := strings.Split(*upgrade, ",")
		if len(f) != 4 || hosts[f[0]] == nil || hosts[f[1]] == nil {
			return fmt.Errorf("bad -upgrade %q: want HOST_A,HOST_B,ROUTER_NS,IP of two -hosts", *upgrade)
		}
		res, err := runUpgrade(hosts[f[0]], hosts[f[1]], f[2], f[3])
		_ = out.Encode(res)
		switch {
		case err != nil:
			failf("upgrade case: %v", err)
		case res.SecondsToDirect > maxUpgrade.Seconds():
			failf("upgrade case: direct %.1f s after the block was lifted (limit %v)", res.SecondsToDirect, *maxUpgrade)
		}
	}

	// Phase 3: the whole lab on one topic and one task list.
	summary, err := runOverlay(hosts, order)
	if err != nil {
		failf("overlay phase: %v", err)
	}
	_ = out.Encode(summary)
	if len(failures) > 0 {
		return fmt.Errorf("%d checks failed", len(failures))
	}
	return nil
}

// pairResult is the JSON line of one pair.
type pairResult struct {
	Pair      string  `json:"pair"`
	Connected int     `json:"connected"`
	Path      string  `json:"path,omitempty"`
	Ms        float64 `json:"ms_to_first_message,omitempty"`
	Attempts  int     `json:"attempts"`
	NATA      string  `json:"nat_a"`
	NATB      string  `json:"nat_b"`
	// Dialled and Remote (the hairpin pair): the address dialled (b's
	// external address) and b's address on a's connection.
	Dialled string `json:"dialled,omitempty"`
	Remote  string `json:"remote,omitempty"`
	Err     string `json:"err,omitempty"`
}

// sameIP reports whether two "host:port" addresses have the same host.
func sameIP(a, b string) bool {
	ha, _, errA := net.SplitHostPort(a)
	hb, _, errB := net.SplitHostPort(b)
	return errA == nil && errB == nil && ha == hb
}

// runPair connects a to b and sends one direct message. With hairpin, a
// dials b's external address (b's router's public IP) instead of the
// address b advertises.
func runPair(a, b *host, hairpin bool) pairResult {
	res := pairResult{Pair: a.name + "->" + b.name}
	var ra, rb reply
	var wg sync.WaitGroup
	wg.Go(func() { ra = a.proc.call(request{Op: "new"}) })
	wg.Go(func() { rb = b.proc.call(request{Op: "new"}) })
	wg.Wait()
	res.NATA, res.NATB = ra.NAT, rb.NAT
	if !ra.OK || !rb.OK {
		res.Err = "new agent: " + ra.Err + rb.Err
		return res
	}
	addr := rb.Addr
	if hairpin {
		if rb.External == "" {
			res.Err = b.name + " has no external address to dial through the hairpin"
			return res
		}
		addr = rb.External
		res.Dialled = addr
	}
	c := a.proc.call(request{Op: "connect", Machine: rb.Machine, Agent: rb.Agent, Addr: addr})
	res.Attempts = c.Attempts
	if hairpin {
		res.Remote = c.Remote
	}
	if !c.OK {
		res.Err = c.Err
		return res
	}
	r := b.proc.call(request{Op: "recv", Agent: ra.Agent})
	if !r.OK {
		res.Err = "receive: " + r.Err
		return res
	}
	res.Connected = 1
	res.Path = "direct"
	if c.Relayed {
		res.Path = "relayed"
	}
	res.Ms = float64(r.AtNs-c.StartNs) / 1e6
	return res
}

// runOverlay puts a fresh agent on every host on one topic and one list.
func runOverlay(hosts map[string]*host, order []string) (map[string]any, error) {
	summary := map[string]any{"phase": "overlay", "agents": len(order)}
	var mu sync.Mutex
	var errs []error
	each := func(f func(h *host) error) {
		var wg sync.WaitGroup
		for _, name := range order {
			h := hosts[name]
			wg.Go(func() {
				if err := f(h); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", h.name, err))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	call := func(h *host, req request) (reply, error) {
		r := h.proc.call(req)
		if !r.OK {
			return r, errors.New(r.Err)
		}
		return r, nil
	}
	const topic = "natlab/all"
	each(func(h *host) error {
		if _, err := call(h, request{Op: "new", Overlay: true}); err != nil {
			return err
		}
		_, err := call(h, request{Op: "subscribe", Topic: topic})
		return err
	})
	if len(errs) > 0 {
		return summary, errors.Join(errs...)
	}
	creator := hosts[order[0]]
	lr, err := call(creator, request{Op: "create_list", Title: "natlab"})
	if err != nil {
		return summary, err
	}
	each(func(h *host) error {
		if h != creator {
			if _, err := call(h, request{Op: "join_list", List: lr.List}); err != nil {
				return err
			}
		}
		return nil
	})
	if len(errs) > 0 {
		return summary, errors.Join(errs...)
	}
	// Let the overlay form (HyParView joins through the servers, punching
	// between agents), then everyone publishes and adds a task.
	time.Sleep(3 * time.Second)
	each(func(h *host) error {
		if _, err := call(h, request{Op: "publish", Topic: topic, Msg: "hello from " + h.name}); err != nil {
			return err
		}
		_, err := call(h, request{Op: "add_task", List: lr.List, Title: "task of " + h.name})
		return err
	})
	if len(errs) > 0 {
		return summary, errors.Join(errs...)
	}
	want := len(order)
	deadline := time.Now().Add(90 * time.Second)
	start := time.Now()
	// Every agent must hold exactly the messages of all agents, each once
	// (a duplicate at one agent must not hide a loss at another).
	var wantMsgs []string
	for _, name := range order {
		wantMsgs = append(wantMsgs, "hello from "+name)
	}
	slices.Sort(wantMsgs)
	var delivered, complete, exact int
	var same bool
	for {
		delivered, complete, exact = 0, 0, 0
		var lists [][]string
		for _, name := range order {
			m, err := call(hosts[name], request{Op: "messages", Topic: topic})
			if err != nil {
				return summary, err
			}
			delivered += len(m.Items)
			if slices.Equal(m.Items, wantMsgs) { // "messages" replies sorted
				exact++
			}
			tl, err := call(hosts[name], request{Op: "tasks", List: lr.List})
			if err != nil {
				return summary, err
			}
			if len(tl.Items) == want {
				complete++
			}
			lists = append(lists, tl.Items)
		}
		same = true
		for _, l := range lists[1:] {
			same = same && slices.Equal(l, lists[0])
		}
		if (exact == want && complete == want && same) || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	relayedPeers := 0
	each(func(h *host) error {
		r, err := call(h, request{Op: "info"})
		mu.Lock()
		relayedPeers += r.Relayeds
		mu.Unlock()
		return err
	})
	summary["messages_delivered"] = delivered
	summary["messages_expected"] = want * want
	summary["agents_with_every_message_once"] = exact
	summary["lists_complete"] = complete
	summary["lists_identical"] = same
	summary["relayed_connections"] = relayedPeers
	summary["seconds_to_converge"] = time.Since(start).Seconds()
	if exact != want || complete != want || !same {
		return summary, fmt.Errorf("%d of %d agents hold every message exactly once (%d of %d deliveries), %d of %d complete lists, identical %v",
			exact, want, delivered, want*want, complete, want, same)
	}
	return summary, errors.Join(errs...)
}

// upgradeResult is the JSON line of the upgrade case.
type upgradeResult struct {
	Phase           string  `json:"phase"`
	Pair            string  `json:"pair"`
	RelayedFirst    int     `json:"relayed_first"`
	SecondsToDirect float64 `json:"seconds_to_direct_after_unblock"`
	Sent            int     `json:"messages_sent"`
	Delivered       int     `json:"messages_delivered"`
	Duplicates      int     `json:"duplicates"`
}

// runUpgrade is phase 2: a's router (namespace routerNS) drops traffic
// to and from ip (b's public address) while a connects to b, so the
// connection is relayed; a then sends a stream of direct messages while
// the block is lifted and the upgrade loop moves the connection to a
// direct path.
func runUpgrade(a, b *host, routerNS, ip string) (upgradeResult, error) {
	res := upgradeResult{Phase: "upgrade", Pair: a.name + "->" + b.name}
	ra := a.proc.call(request{Op: "new"})
	rb := b.proc.call(request{Op: "new"})
	if !ra.OK || !rb.OK {
		return res, fmt.Errorf("new agent: %s%s", ra.Err, rb.Err)
	}
	nft := func(args ...string) error {
		out, err := exec.Command("ip", append([]string{"netns", "exec", routerNS, "nft"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("nft %s in %s: %v: %s", strings.Join(args, " "), routerNS, err, out)
		}
		return nil
	}
	// A table of its own, ahead of the NAT's own filter (priority filter - 20).
	block := fmt.Sprintf(`table ip block {
  chain forward {
    type filter hook forward priority filter - 20; policy accept;
    ip daddr %s drop
    ip saddr %s drop
  }
}
`, ip, ip)
	cmd := exec.Command("ip", "netns", "exec", routerNS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(block)
	if out, err := cmd.CombinedOutput(); err != nil {
		return res, fmt.Errorf("blocking %s in %s: %v: %s", ip, routerNS, err, out)
	}
	blocked := true
	defer func() {
		if blocked {
			_ = nft("delete", "table", "ip", "block")
		}
	}()
	c := a.proc.call(request{Op: "connect", Machine: rb.Machine, Agent: rb.Agent, Addr: rb.Addr})
	if !c.OK {
		return res, fmt.Errorf("connect while blocked: %s", c.Err)
	}
	if !c.Relayed {
		return res, fmt.Errorf("connected directly (at %s) though the block should force a relay", c.Remote)
	}
	res.RelayedFirst = 1
	const n, interval = 60, 100 * time.Millisecond // 6 s of messages, across the switch
	res.Sent = n
	if r := a.proc.call(request{Op: "send_many", Agent: rb.Agent, Msg: "upgrade", N: n, IntervalMs: int(interval / time.Millisecond)}); !r.OK {
		return res, fmt.Errorf("send_many: %s", r.Err)
	}
	time.Sleep(time.Second)
	if err := nft("delete", "table", "ip", "block"); err != nil {
		return res, err
	}
	blocked = false
	lifted := time.Now()
	for {
		p := a.proc.call(request{Op: "peer", Machine: rb.Machine})
		if !p.OK {
			return res, fmt.Errorf("after lifting the block: %s", p.Err)
		}
		if !p.Relayed {
			res.SecondsToDirect = time.Since(lifted).Seconds()
			break
		}
		if time.Since(lifted) > 60*time.Second {
			return res, errors.New("still relayed 60 s after the block was lifted")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Every message exactly once, whichever path carried it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := b.proc.call(request{Op: "received", Agent: ra.Agent})
		res.Delivered, res.Duplicates = countStream(r.Items)
		if res.Delivered == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // late duplicates
	r := b.proc.call(request{Op: "received", Agent: ra.Agent})
	res.Delivered, res.Duplicates = countStream(r.Items)
	if res.Delivered != n || res.Duplicates != 0 {
		return res, fmt.Errorf("%d of %d messages delivered, %d duplicates", res.Delivered, n, res.Duplicates)
	}
	return res, nil
}

// countStream counts the distinct messages of the upgrade stream
// ("upgrade-NNN") among items, and how many arrived more than once.
func countStream(items []string) (distinct, duplicates int) {
	seen := map[string]bool{}
	for _, m := range items {
		if !strings.HasPrefix(m, "upgrade-") {
			continue // the connect's own hello
		}
		if seen[m] {
			duplicates++
		}
		seen[m] = true
	}
	return len(seen), duplicates
}

// ---- processes ----

// agentProc is an agent process in a namespace.
type agentProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
	mu  sync.Mutex
}

func startAgent(ctx context.Context, self, ns, bootstrap string) (*agentProc, error) {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, self, "agent", "-bootstrap", bootstrap)
	in, sc, err := childproc.Start(cmd)
	if err != nil {
		return nil, err
	}
	return &agentProc{cmd: cmd, in: in, out: sc}, nil
}

// call sends one request and reads its reply.
func (p *agentProc) call(req request) reply {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, _ := json.Marshal(req)
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		return reply{Err: "agent process: " + err.Error()}
	}
	if !p.out.Scan() {
		return reply{Err: fmt.Sprintf("agent process ended: %v", p.out.Err())}
	}
	var r reply
	if err := json.Unmarshal(p.out.Bytes(), &r); err != nil {
		return reply{Err: "bad reply: " + err.Error()}
	}
	return r
}

func (p *agentProc) stop() {
	_ = p.in.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// startServer runs x0xd as coordinator and relay in ns on addr and
// returns its machine ID (from its ready line).
func startServer(ctx context.Context, bin, ns, addr string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "x0x-natlab-server-")
	if err != nil {
		return "", nil, err
	}
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, bin, "-role", "coordinator,relay",
		"-listen", addr, "-http", "127.0.0.1:0", "-data-dir", dir)
	logFile, err := os.Create(filepath.Join(os.TempDir(), "x0x-natlab-"+ns+".log"))
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = logFile
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = os.RemoveAll(dir)
		_ = logFile.Close()
	}
	sc := bufio.NewScanner(outPipe)
	ready := make(chan string, 1)
	go func() {
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "x0xd ready") {
				select {
				case ready <- line:
				default:
				}
			}
		}
	}()
	select {
	case line := <-ready:
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "machine="); ok {
				return v, stop, nil
			}
		}
		stop()
		return "", nil, fmt.Errorf("x0xd ready line without machine: %q", line)
	case <-time.After(30 * time.Second):
		stop()
		return "", nil, fmt.Errorf("x0xd in %s did not become ready", ns)
	}
}
