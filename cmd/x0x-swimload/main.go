// Command x0x-swimload measures false alarms of the overlay's failure
// detector (SWIM with Lifeguard's local health). It runs -agents agent
// processes on loopback, each publishing a small message every -interval,
// first on a quiet machine, then while a hog process keeps every core
// busy, and last kills one agent and times how long the others take to
// declare it dead. Until that kill every agent is alive, so every
// suspicion and every death reported before it is false.
//
// It prints one JSON object per figure ({"name", "value", "unit"}). With
// -check it exits 1 if any agent was declared dead while alive, or if no
// one declared the killed agent dead within -detect-limit.
//
// Everything stays on 127.0.0.1: the agents bootstrap from the first one.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/saorsa-labs/x0x-go/core/x0x"
	"github.com/saorsa-labs/x0x-go/internal/childproc"
	"github.com/saorsa-labs/x0x-go/internal/measure"
)

// line is what an agent process reports on its standard output.
type line struct {
	Ready string `json:"ready,omitempty"` // its machine ID, once joined
	Addr  string `json:"addr,omitempty"`
	Event string `json:"event,omitempty"` // "suspect" or "dead"
	Peer  string `json:"peer,omitempty"`
}

func main() {
	agents := flag.Int("agents", 10, "agent processes")
	interval := flag.Duration("interval", 2*time.Second, "each agent publishes one message per interval")
	settle := flag.Duration("settle", 10*time.Second, "time for the overlay to form before measuring")
	quiet := flag.Duration("quiet", 30*time.Second, "the quiet phase")
	load := flag.Duration("load", 30*time.Second, "the phase with every core busy")
	detectLimit := flag.Duration("detect-limit", 5*time.Second, "with -check: the slowest acceptable detection of the killed agent")
	check := flag.Bool("check", false, "exit 1 on a false death or a detection slower than -detect-limit")
	child := flag.Bool("child", false, "internal: run one agent")
	hog := flag.Bool("hog", false, "internal: keep every core busy until killed")
	hogThreads := flag.Int("hog-threads", 8*runtime.NumCPU(), "busy threads of the load phase (CFS gives the hog that many shares)")
	bootstrap := flag.String("bootstrap", "", "internal: the first agent, id@addr")
	dir := flag.String("dir", "", "internal: the agent's data directory")
	flag.Parse()
	var err error
	switch {
	case *hog:
		runHog(*hogThreads)
	case *child:
		err = runAgent(*dir, *bootstrap, *interval)
	default:
		var ok bool
		ok, err = run(*agents, *interval, *settle, *quiet, *load, *hogThreads, *detectLimit, os.Stdout)
		if err == nil && *check && !ok {
			fmt.Fprintln(os.Stderr, "x0x-swimload: check failed")
			os.Exit(1)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "x0x-swimload:", err)
		os.Exit(1)
	}
}

// runHog spins threads busy loops, like other jobs taking the machine,
// until the process is killed.
func runHog(threads int) {
	runtime.GOMAXPROCS(max(threads, 1))
	for range threads - 1 {
		go spin()
	}
	spin()
}

func spin() {
	x := uint64(1)
	for {
		x = x*6364136223846793005 + 1442695040888963407
		if x == 0 {
			fmt.Println(x) // never: keeps the loop from being optimised away
		}
	}
}

// runAgent runs one agent until its standard input closes, reporting its
// address and every suspicion and death its failure detector raises.
func runAgent(dir, bootstrap string, interval time.Duration) error {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	quietLog := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := x0x.NewBuilder().WithDataDir(dir).WithBindAddr("127.0.0.1:0").
		WithKDF(x0x.KDFParams{Time: 1, MemoryKiB: 8, Threads: 1}).WithLogger(quietLog)
	if bootstrap != "" {
		b.WithBootstrap(bootstrap)
	}
	a, err := b.Build(ctx)
	if err != nil {
		return err
	}
	defer a.Close()
	events, err := a.Events()
	if err != nil {
		return err
	}
	out := json.NewEncoder(os.Stdout)
	var outMu sync.Mutex
	say := func(l line) {
		outMu.Lock()
		defer outMu.Unlock()
		_ = out.Encode(l)
	}
	go func() {
		for {
			ev, err := events.Next(ctx)
			if errors.Is(err, x0x.ErrLagged) {
				continue
			}
			if err != nil {
				return
			}
			switch ev.Kind {
			case x0x.EventMemberSuspect:
				say(line{Event: "suspect", Peer: ev.Peer.String()})
			case x0x.EventMemberDead:
				say(line{Event: "dead", Peer: ev.Peer.String()})
			}
		}
	}()
	if bootstrap != "" {
		if err := a.JoinNetwork(ctx); err != nil {
			return err
		}
	}
	topic, err := a.Join(ctx, "swimload")
	if err != nil {
		return err
	}
	say(line{Ready: a.MachineID().String(), Addr: a.Addr()})
	go func() { // the parent closes our input to stop us
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	payload := make([]byte, 256)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			_, _ = topic.Publish(ctx, payload) // a full queue under load is what we measure around
		}
	}
}

// report is one event as the parent saw it.
type report struct {
	at       time.Time
	observer int
	kind     string
	peer     string
}

type agentProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	id    string
	addr  string
}

func run(n int, interval, settle, quiet, load time.Duration, hogThreads int, detectLimit time.Duration, w io.Writer) (bool, error) {
	if n < 3 {
		return false, fmt.Errorf("-agents %d: need at least 3", n)
	}
	self, err := os.Executable()
	if err != nil {
		return false, err
	}
	dir, err := os.MkdirTemp("", "x0x-swimload-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)

	var mu sync.Mutex
	var reports []report
	procs := make([]*agentProc, n)
	defer func() {
		for _, p := range procs {
			if p != nil {
				_ = p.stdin.Close()
				_ = p.cmd.Process.Kill()
				_ = p.cmd.Wait()
			}
		}
	}()
	start := func(i int, bootstrap string) (*agentProc, error) {
		cmd := exec.Command(self, "-child", "-dir", fmt.Sprintf("%s/a%d", dir, i), "-bootstrap", bootstrap, "-interval", interval.String())
		stdin, sc, err := childproc.Start(cmd)
		if err != nil {
			return nil, err
		}
		p := &agentProc{cmd: cmd, stdin: stdin}
		ready := make(chan line, 1)
		go func() {
			for sc.Scan() {
				var l line
				if json.Unmarshal(sc.Bytes(), &l) != nil {
					continue
				}
				if l.Ready != "" {
					ready <- l
					continue
				}
				mu.Lock()
				reports = append(reports, report{at: time.Now(), observer: i, kind: l.Event, peer: l.Peer})
				mu.Unlock()
			}
			close(ready)
		}()
		select {
		case l, ok := <-ready:
			if !ok {
				return p, fmt.Errorf("agent %d exited before joining", i)
			}
			p.id, p.addr = l.Ready, l.Addr
		case <-time.After(60 * time.Second):
			return p, fmt.Errorf("agent %d did not join within a minute", i)
		}
		return p, nil
	}
	if procs[0], err = start(0, ""); err != nil {
		return false, err
	}
	boot := procs[0].id + "@" + procs[0].addr
	for i := 1; i < n; i++ {
		if procs[i], err = start(i, boot); err != nil {
			return false, err
		}
	}
	time.Sleep(settle)

	phase := func(d time.Duration) (from, to time.Time) {
		from = time.Now()
		time.Sleep(d)
		return from, time.Now()
	}
	quietFrom, quietTo := phase(quiet)
	hogCmd := exec.Command(self, "-hog", "-hog-threads", fmt.Sprint(hogThreads))
	if err := hogCmd.Start(); err != nil {
		return false, err
	}
	loadFrom, _ := phase(load)
	_ = hogCmd.Process.Kill()
	_ = hogCmd.Wait()
	_, loadTo := phase(5 * time.Second) // alarms the load raised may land just after it

	victim := procs[n-1]
	killed := time.Now()
	_ = victim.cmd.Process.Kill()
	_ = victim.cmd.Wait()
	deadline := killed.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		observers := map[int]bool{}
		for _, r := range reports {
			if r.kind == "dead" && r.peer == victim.id && r.at.After(killed) {
				observers[r.observer] = true
			}
		}
		mu.Unlock()
		if len(observers) >= n-1 {
			break
		}
	}

	mu.Lock()
	defer mu.Unlock()
	alive := map[string]bool{}
	for _, p := range procs {
		alive[p.id] = true
	}
	count := func(kind string, from, to time.Time) (n float64) {
		for _, r := range reports {
			if r.kind == kind && alive[r.peer] && !r.at.Before(from) && r.at.Before(to) {
				n++
			}
		}
		return n
	}
	var detections []time.Duration
	seen := map[int]bool{}
	for _, r := range reports {
		if r.kind == "dead" && r.peer == victim.id && r.at.After(killed) && !seen[r.observer] {
			seen[r.observer] = true
			detections = append(detections, r.at.Sub(killed))
		}
	}
	slices.Sort(detections)
	falseDeaths := count("dead", quietFrom, quietTo) + count("dead", loadFrom, loadTo)
	figs := []measure.Figure{
		{Name: "swim_agents", Value: float64(n), Unit: "processes"},
		{Name: "swim_cores", Value: float64(runtime.NumCPU()), Unit: "cores"},
		{Name: "swim_hog_threads", Value: float64(hogThreads), Unit: "threads"},
		{Name: "swim_quiet_false_suspicions", Value: count("suspect", quietFrom, quietTo), Unit: "events"},
		{Name: "swim_quiet_false_deaths", Value: count("dead", quietFrom, quietTo), Unit: "events"},
		{Name: "swim_load_false_suspicions", Value: count("suspect", loadFrom, loadTo), Unit: "events"},
		{Name: "swim_load_false_deaths", Value: count("dead", loadFrom, loadTo), Unit: "events"},
		{Name: "swim_dead_detected_by", Value: float64(len(detections)), Unit: "agents"},
	}
	if len(detections) > 0 {
		figs = append(figs,
			measure.Figure{Name: "swim_dead_detect_first", Value: measure.PercentileMs(detections, 0), Unit: "ms"},
			measure.Figure{Name: "swim_dead_detect_p50", Value: measure.PercentileMs(detections, 0.5), Unit: "ms"},
			measure.Figure{Name: "swim_dead_detect_max", Value: measure.PercentileMs(detections, 1), Unit: "ms"})
	}
	enc := json.NewEncoder(w)
	for _, f := range figs {
		if err := enc.Encode(f); err != nil {
			return false, err
		}
	}
	ok := falseDeaths == 0 && len(detections) > 0 && detections[0] <= detectLimit
	if !ok {
		var why []string
		if falseDeaths > 0 {
			why = append(why, fmt.Sprintf("%v live agents declared dead", falseDeaths))
		}
		if len(detections) == 0 {
			why = append(why, "no one declared the killed agent dead")
		} else if detections[0] > detectLimit {
			why = append(why, fmt.Sprintf("first detection after %v", detections[0]))
		}
		fmt.Fprintln(os.Stderr, "x0x-swimload:", strings.Join(why, "; "))
	}
	return ok, nil
}
