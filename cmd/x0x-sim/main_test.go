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
		err := checkTargets(c, &scenario.Result{DeliveryRatio: 1, ConvergedAfterHealMs: tc.ms, AERoundsToConverge: tc.rounds}, targets{rmr: 0.5})
		switch {
		case tc.fails == "" && err != nil:
			t.Errorf("converged after %v rounds: %v", tc.rounds, err)
		case tc.fails != "" && (err == nil || !strings.Contains(err.Error(), tc.fails)):
			t.Errorf("converged after %v rounds: %v, want an error about %q", tc.rounds, err, tc.fails)
		}
	}
}

// The latency and hop-count targets fail only when set and exceeded.
func TestCheckTargetsLatencyAndHops(t *testing.T) {
	res := &scenario.Result{DeliveryRatio: 1, LatencyP99Ms: 700, LDHMax: 13}
	for _, tc := range []struct {
		want  targets
		fails string
	}{
		{targets{rmr: 0.5}, ""},
		{targets{rmr: 0.5, p99Ms: 600}, "p99 700 ms"},
		{targets{rmr: 0.5, p99Ms: 900, ldh: 12}, "hop count 13"},
		{targets{rmr: 0.5, p99Ms: 900, ldh: 13}, ""},
	} {
		err := checkTargets(scenario.Config{}, res, tc.want)
		switch {
		case tc.fails == "" && err != nil:
			t.Errorf("%+v: %v", tc.want, err)
		case tc.fails != "" && (err == nil || !strings.Contains(err.Error(), tc.fails)):
			t.Errorf("%+v: %v, want an error about %q", tc.want, err, tc.fails)
		}
	}
}
