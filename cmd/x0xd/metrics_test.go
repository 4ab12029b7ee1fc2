package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// The agent's series change at run time; the collector keeps every scrape
// consistent (one help, type and set of label names per name, no repeated
// series), so the registry gathers without errors, and it logs what it
// leaves out once.
func TestAgentCollectorConflicts(t *testing.T) {
	l := func(kv ...string) []x0x.Label {
		var ls []x0x.Label
		for i := 0; i < len(kv); i += 2 {
			ls = append(ls, x0x.Label{Name: kv[i], Value: kv[i+1]})
		}
		return ls
	}
	snapshot := func() x0x.Metrics {
		return x0x.Metrics{
			{Name: "x0x_a_total", Help: "A.", Labels: l("k", "1"), Value: 1},
			{Name: "x0x_a_total", Help: "Another help.", Labels: l("k", "2"), Value: 2},       // kept, with the first help
			{Name: "x0x_a_total", Help: "A.", Labels: l("other", "x"), Value: 3},              // other label names: left out
			{Name: "x0x_a_total", Help: "A.", Value: 4},                                       // no labels: left out
			{Name: "x0x_a_total", Help: "A.", Gauge: true, Labels: l("k", "3"), Value: 5},     // a gauge: left out
			{Name: "x0x_a_total", Help: "A.", Labels: l("k", "1"), Value: 6},                  // repeated: left out
			{Name: "x0x_b", Help: "B.", Gauge: true, Labels: l("z", "1", "a", "2"), Value: 7}, // labels in any order
			{Name: "x0x_b", Help: "B.", Gauge: true, Labels: l("a", "3", "z", "1"), Value: 8},
			{Name: "x0x_c_total", Help: "C.", Value: 1 << 40},
			{Name: "", Help: "no name", Value: 9},                        // invalid: left out
			{Name: "x0x_d", Help: "D.", Labels: l("__x", "1"), Value: 9}, // reserved label name: left out
			{Name: uptimeMetric, Help: "clash", Gauge: true, Value: 1e9}, // the daemon's own: left out
		}
	}
	logs := &lockedBuffer{}
	reg := newMetrics(snapshot, time.Now(), slog.New(slog.NewTextHandler(logs, nil)))
	for range 2 {
		if _, err := reg.Gather(); err != nil {
			t.Fatalf("Gather: %v", err)
		}
	}
	// Through the handler, as /metrics serves it.
	srv := httptest.NewServer(metricsHandler(reg, slog.New(slog.NewTextHandler(logs, nil))))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	series := func(name string) map[string]float64 {
		out := map[string]float64{}
		for _, m := range fams[name].GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			out[strings.Join(ls, ",")] = v
		}
		return out
	}
	if f := fams["x0x_a_total"]; f.GetType() != dto.MetricType_COUNTER || f.GetHelp() != "A." {
		t.Errorf("x0x_a_total: %v %q", f.GetType(), f.GetHelp())
	}
	if got := series("x0x_a_total"); len(got) != 2 || got["k=1"] != 1 || got["k=2"] != 2 {
		t.Errorf("x0x_a_total series %v", got)
	}
	if got := series("x0x_b"); fams["x0x_b"].GetType() != dto.MetricType_GAUGE || len(got) != 2 || got["a=2,z=1"] != 7 || got["a=3,z=1"] != 8 {
		t.Errorf("x0x_b series %v", got)
	}
	if got := series("x0x_c_total"); got[""] != 1<<40 {
		t.Errorf("x0x_c_total %v", got)
	}
	if got := series(uptimeMetric); got[""] > 60 || fams[uptimeMetric].GetHelp() != "Seconds since the daemon started." {
		t.Errorf("%s %v", uptimeMetric, got)
	}
	if _, ok := fams["x0x_d"]; ok {
		t.Error("x0x_d with the label __x exported")
	}
	for _, want := range []string{
		"metric=x0x_a_total problem=\"series with label names [k] and [other]\"",
		"metric=x0x_a_total problem=\"series with label names [k] and []\"",
		"metric=x0x_a_total problem=\"a series is a gauge and another a counter\"",
		"metric=x0x_a_total problem=\"series [1] reported twice\"",
		"metric=" + uptimeMetric,
		"metric=x0x_d",
	} {
		if n := strings.Count(logs.String(), want); n != 1 {
			t.Errorf("%q logged %d times, want once:\n%s", want, n, logs)
		}
	}
}
