package main

import (
	"strings"
	"testing"

	"github.com/saorsa-labs/x0x-go/core/sim/scenario"
)

// The partition target fails when the halves never converged (-1), not
// only when they converged late.
func TestCheckTargetsPartition(t *testing.T) {
	c := scenario.Config{Partition: true}
	for _, tc := range []struct {
		ms, rounds float64
		fails      string
	}{
		{-1, -1, "never converged"},
		{75_000, 2.5, "2.50 anti-entropy rounds"},
		{45_000, 1.5, ""},
	} {
		err := checkTargets(c, &scenario.Result{DeliveryRatio: 1, ConvergedAfterHealMs: tc.ms, AERoundsToConverge: tc.rounds}, 0.5)
		switch {
		case tc.fails == "" && err != nil:
			t.Errorf("converged after %v rounds: %v", tc.rounds, err)
		case tc.fails != "" && (err == nil || !strings.Contains(err.Error(), tc.fails)):
			t.Errorf("converged after %v rounds: %v, want an error about %q", tc.rounds, err, tc.fails)
		}
	}
}
