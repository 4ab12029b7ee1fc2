package scenario

import (
	"reflect"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSteadyStateDeliversAllAndIsDeterministic(t *testing.T) {
	cfg := Config{Nodes: 40, Messages: 150, PublishInterval: 100 * time.Millisecond, Seed: 1}
	a, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.DeliveryRatio != 1 || a.Expected != 39*150 {
		t.Fatalf("delivery %.4f (%d/%d)", a.DeliveryRatio, a.Delivered, a.Expected)
	}
	if a.RMRSteady > 0.5 {
		t.Errorf("steady-state RMR %.2f over 0.5", a.RMRSteady)
	}
	if a.LDHMax == 0 || a.LatencyP50Ms <= 0 || a.LatencyP99Ms < a.LatencyP50Ms || a.BytesPerNode <= 0 || a.Signatures != "simulated" {
		t.Fatalf("implausible figures %+v", a)
	}
	// The physical limit: at least one link (20 ms) and never above what
	// the protocol achieved.
	if a.IdealP50Ms < 20 || a.IdealP99Ms < a.IdealP50Ms || a.IdealP99Ms > a.LatencyP99Ms || a.P99OverIdeal < 1 {
		t.Fatalf("implausible ideal latencies: p50 %.1f p99 %.1f (measured p99 %.1f)", a.IdealP50Ms, a.IdealP99Ms, a.LatencyP99Ms)
	}
	b, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different results:\n%+v\n%+v", a, b)
	}
	c, _ := Run(Config{Nodes: 40, Messages: 50, Seed: 2})
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds gave identical results")
	}
}

func TestLossChurnAndSparseTopics(t *testing.T) {
	r, err := Run(Config{Nodes: 80, Topics: 3, Subscribers: 20, Messages: 90, Loss: 0.05, Churn: 0.1, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if r.Crashed != 8 || r.Joined != 8 {
		t.Fatalf("churn: crashed %d joined %d", r.Crashed, r.Joined)
	}
	if r.DeliveryRatio != 1 {
		t.Fatalf("delivery %.4f (%d/%d)", r.DeliveryRatio, r.Delivered, r.Expected)
	}
}

func TestPartitionHealConverges(t *testing.T) {
	r, err := Run(Config{Nodes: 60, Messages: 60, Partition: true, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	if r.ConvergedAfterHealMs < 0 || r.AERoundsToConverge > 2 {
		t.Fatalf("did not converge within 2 anti-entropy rounds: %v ms", r.ConvergedAfterHealMs)
	}
	if r.DeliveryRatio != 1 {
		t.Fatalf("delivery %.4f", r.DeliveryRatio)
	}
}

func TestRealSignatures(t *testing.T) {
	r, err := Run(Config{Nodes: 12, Messages: 10, Seed: 5, RealSignatures: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Signatures != "ml-dsa-65" || r.DeliveryRatio != 1 || r.Drops.BadSignature != 0 {
		t.Fatalf("%+v", r)
	}
}

func TestBadConfig(t *testing.T) {
	if _, err := Run(Config{Nodes: 3, Loss: 1.5}); err == nil {
		t.Fatal("loss 1.5 accepted")
	}
}

// Connection resets lose frames in flight (sim.Config.Resets). A node whose
// only neighbour was lost and whose reconnection's NEIGHBOR exchange was
// cut used to forget the neighbour and stay isolated for good, missing
// every later message (delivery 0.996 at this seed); the neighbour now
// stays in the graveyard until it is back in a view.
func TestResetsDoNotIsolateNodes(t *testing.T) {
	r, err := Run(Config{Nodes: 300, Messages: 100, Resets: 0.003, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.ConnResets == 0 || r.DeliveryRatio != 1 {
		t.Fatalf("%d resets, delivery %.4f (%d of %d)", r.ConnResets, r.DeliveryRatio, r.Delivered, r.Expected)
	}
}
