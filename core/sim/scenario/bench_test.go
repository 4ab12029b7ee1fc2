package scenario

import (
	"os"
	"testing"
	"time"
)

// BenchmarkRun200x300 measures a 200-node, 300-message simulation.
func BenchmarkRun200x300(b *testing.B) {
	for i := 0; i < b.N; i++ {
		r, err := Run(Config{Nodes: 200, Messages: 300, Seed: uint64(i) + 1})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.DeliveryRatio, "delivery")
		b.ReportMetric(r.RMRSteady, "rmr")
	}
}

// BenchmarkRun1000x1000 is the CI-size run (goal: under 2 minutes on 2
// cores). Run it with -benchtime=1x.
func BenchmarkRun1000x1000(b *testing.B) { benchTargets(b, 1000) }

// benchTargets runs nodes x 1,000 messages per iteration (seeds 1, 2, ...)
// and reports the overlay's target figures.
func benchTargets(b *testing.B, nodes int) {
	for i := 0; i < b.N; i++ {
		r, err := Run(Config{Nodes: nodes, Messages: 1000, Seed: uint64(i) + 1})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.DeliveryRatio, "delivery")
		b.ReportMetric(r.RMRSteady, "rmr")
		b.ReportMetric(r.LatencyP99Ms, "p99-ms")
		b.ReportMetric(float64(r.LDHMax), "ldh")
		b.ReportMetric(float64(r.TreeDepthMax), "tree-depth")
	}
}

// BenchmarkRun5000x1000 is the overlay at 5,000 nodes (issue 13: the
// 1,000-node targets must hold here too): 1,000 messages, simulated
// signatures. It takes minutes and ~15 GiB; run it with -benchtime=1x.
func BenchmarkRun5000x1000(b *testing.B) { benchTargets(b, 5000) }

// TestTargets1000 checks the 1,000-node targets. It takes several
// minutes of CPU, so it runs only with X0X_SIM_TARGETS=1.
func TestTargets1000(t *testing.T) {
	if os.Getenv("X0X_SIM_TARGETS") != "1" {
		t.Skip("set X0X_SIM_TARGETS=1 to run the 1,000-node targets")
	}
	base := Config{Nodes: 1000, Messages: 1000, Seed: 1}
	steady, err := Run(base)
	if err != nil {
		t.Fatal(err)
	}
	if steady.DeliveryRatio != 1 || steady.RMRSteady > 0.5 {
		t.Errorf("steady state: delivery %.5f, steady RMR %.3f (target 1, <= 0.5)", steady.DeliveryRatio, steady.RMRSteady)
	}
	for _, c := range []Config{{Loss: 0.05}, {Churn: 0.1}, {Partition: true}} {
		cfg := base
		cfg.Loss, cfg.Churn, cfg.Partition = c.Loss, c.Churn, c.Partition
		r, err := Run(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if r.DeliveryRatio != 1 {
			t.Errorf("loss %.2f churn %.2f partition %v: delivery %.5f (%d/%d)", c.Loss, c.Churn, c.Partition, r.DeliveryRatio, r.Delivered, r.Expected)
		}
		if c.Partition && (r.ConvergedAfterHealMs < 0 || time.Duration(r.ConvergedAfterHealMs)*time.Millisecond > 60*time.Second) {
			t.Errorf("partition: converged after %v ms, want within 2 anti-entropy rounds (60 s)", r.ConvergedAfterHealMs)
		}
	}
}
