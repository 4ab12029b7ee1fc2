// Command x0x-sim runs the x0x overlay (HyParView + SWIM membership,
// Plumtree pub/sub with anti-entropy) on the deterministic in-memory
// network of core/sim and prints one JSON object with the measurements.
//
//	go run ./cmd/x0x-sim -nodes 1000 -messages 1000 -loss 0.05 -seed 1
//
// The same flags and seed always print the same figures (except
// wall_seconds). Signatures are simulated unless -real-signatures is given:
// the output's "signatures" field says which.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/saorsa-labs/x0x-go/core/sim/scenario"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "x0x-sim:", err)
		os.Exit(1)
	}
}

type output struct {
	*scenario.Result
	WallSeconds float64 `json:"wall_seconds"`
}

func run(args []string) error {
	fs := flag.NewFlagSet("x0x-sim", flag.ContinueOnError)
	var c scenario.Config
	fs.IntVar(&c.Nodes, "nodes", 1000, "initial number of nodes")
	fs.IntVar(&c.Topics, "topics", 1, "number of topics")
	fs.IntVar(&c.Subscribers, "subscribers", 0, "subscribers per topic (0: every node)")
	fs.IntVar(&c.Messages, "messages", 1000, "messages to publish")
	fs.IntVar(&c.PayloadSize, "payload", 1024, "payload bytes per message")
	fs.Float64Var(&c.Loss, "loss", 0, "per-frame loss probability, modelled as retransmission delay (0..1)")
	fs.Float64Var(&c.Resets, "resets", 0, "per-frame probability that the frame's connection resets, losing every frame in flight on it (0..1)")
	fs.Float64Var(&c.Churn, "churn", 0, "fraction of nodes that crash (and are replaced) while publishing (0..1)")
	fs.BoolVar(&c.Partition, "partition", false, "split the network 50/50 while publishing, then heal")
	fs.Uint64Var(&c.Seed, "seed", 1, "random seed (same seed, same result)")
	fs.DurationVar(&c.PublishInterval, "interval", 20*time.Millisecond, "virtual time between publications")
	fs.DurationVar(&c.Drain, "drain", 10*time.Second, "virtual time run after the last publication (with -partition, after convergence or the limit)")
	fs.BoolVar(&c.RealSignatures, "real-signatures", false, "sign and verify with ML-DSA-65 (slow at scale)")
	check := fs.Bool("check", false, "exit non-zero unless the targets hold: delivery 1, steady-state RMR <= -max-rmr (runs without -partition), p99 <= -max-p99-ms and LDH <= -max-ldh if set, partition healed within 2 anti-entropy rounds")
	maxRMR := fs.Float64("max-rmr", 0.5, "steady-state RMR allowed by -check")
	maxP99 := fs.Float64("max-p99-ms", 0, "latency p99 allowed by -check (0: not checked)")
	maxLDH := fs.Int("max-ldh", 0, "largest hop count allowed by -check (0: not checked)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if os.Getenv("GOGC") == "" {
		// The simulation keeps every node's recent messages live (about
		// 1 GiB at 1,000 x 1,000): collect less often, trading memory for
		// speed.
		debug.SetGCPercent(400)
	}
	start := time.Now()
	res, err := scenario.Run(c)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(output{Result: res, WallSeconds: time.Since(start).Seconds()}); err != nil {
		return err
	}
	if *check {
		return checkTargets(c, res, targets{rmr: *maxRMR, p99Ms: *maxP99, ldh: *maxLDH})
	}
	return nil
}

// targets are the limits -check applies; zero p99Ms or ldh is unchecked.
type targets struct {
	rmr   float64
	p99Ms float64
	ldh   int
}

// checkTargets compares a run with the overlay's targets.
func checkTargets(c scenario.Config, res *scenario.Result, want targets) error {
	var failed []string
	if res.DeliveryRatio != 1 {
		failed = append(failed, fmt.Sprintf("delivery ratio %.6f, want 1", res.DeliveryRatio))
	}
	// The RMR target is for steady state: a partition run's second half
	// includes the heal, when the halves exchange everything they missed.
	if !c.Partition && res.RMRSteady > want.rmr {
		failed = append(failed, fmt.Sprintf("steady-state RMR %.3f, want <= %.2f", res.RMRSteady, want.rmr))
	}
	if want.p99Ms > 0 && res.LatencyP99Ms > want.p99Ms {
		failed = append(failed, fmt.Sprintf("latency p99 %.0f ms, want <= %.0f", res.LatencyP99Ms, want.p99Ms))
	}
	if want.ldh > 0 && res.LDHMax > want.ldh {
		failed = append(failed, fmt.Sprintf("largest hop count %d, want <= %d", res.LDHMax, want.ldh))
	}
	if c.Partition && res.ConvergedAfterHealMs < 0 {
		failed = append(failed, "the partition never converged after the heal, want within 2 anti-entropy rounds")
	} else if c.Partition && res.AERoundsToConverge > 2 {
		failed = append(failed, fmt.Sprintf("converged %.2f anti-entropy rounds after the heal, want <= 2", res.AERoundsToConverge))
	}
	if len(failed) > 0 {
		return fmt.Errorf("targets missed: %v", failed)
	}
	return nil
}
