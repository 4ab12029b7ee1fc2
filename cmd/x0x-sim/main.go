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
	fs.Float64Var(&c.Churn, "churn", 0, "fraction of nodes that crash (and are replaced) while publishing (0..1)")
	fs.BoolVar(&c.Partition, "partition", false, "split the network 50/50 while publishing, then heal")
	fs.Uint64Var(&c.Seed, "seed", 1, "random seed (same seed, same result)")
	fs.DurationVar(&c.PublishInterval, "interval", 20*time.Millisecond, "virtual time between publications")
	fs.BoolVar(&c.RealSignatures, "real-signatures", false, "sign and verify with ML-DSA-65 (slow at scale)")
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
	return enc.Encode(output{Result: res, WallSeconds: time.Since(start).Seconds()})
}
