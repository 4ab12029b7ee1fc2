package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// uptimeMetric is the daemon's own gauge.
const uptimeMetric = "x0x_uptime_seconds"

// newMetrics returns the registry behind GET /metrics: the Go runtime and
// process collectors, the daemon's uptime, and the agent's counters and
// gauges (every layer's: transport, NAT, membership, pub/sub, task lists,
// keys) read at each scrape.
func newMetrics(snapshot func() x0x.Metrics, started time.Time, log *slog.Logger) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: uptimeMetric, Help: "Seconds since the daemon started."},
			func() float64 { return time.Since(started).Seconds() }),
		newAgentCollector(snapshot, log, uptimeMetric),
	)
	return reg
}

// metricsHandler serves reg in the Prometheus exposition format. A series
// that fails to collect is logged and left out; the rest is served.
func metricsHandler(reg *prometheus.Registry, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      promLogger{log},
	})
}

// promLogger adapts slog to promhttp.Logger.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Warn("metrics", "err", strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

// agentCollector turns the agent's Metrics snapshot into Prometheus const
// metrics at scrape time. The agent's set of series grows at run time, so
// the collector is unchecked (Describe sends nothing) and keeps each
// scrape consistent itself: the first series of a name fixes its help,
// type and label names; a later series of that name with another type or
// other label names, a repeated series, or an invalid name is left out and
// logged (once per name and problem).
type agentCollector struct {
	snapshot func() x0x.Metrics
	log      *slog.Logger
	reserved map[string]bool // names other collectors of the registry own

	mu     sync.Mutex
	warned map[string]bool // name + problem already logged (bounded)
}

// maxWarned bounds the problems remembered to log once.
const maxWarned = 1024

func newAgentCollector(snapshot func() x0x.Metrics, log *slog.Logger, reserved ...string) *agentCollector {
	c := &agentCollector{snapshot: snapshot, log: log, reserved: map[string]bool{}, warned: map[string]bool{}}
	for _, n := range reserved {
		c.reserved[n] = true
	}
	return c
}

// Describe sends no descriptors: the collector is unchecked.
func (c *agentCollector) Describe(chan<- *prometheus.Desc) {}

// family is what the first series of a name fixed in one scrape.
type family struct {
	help   string
	gauge  bool
	labels []string
	seen   map[string]bool // label values of the series sent, joined
}

func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	fams := map[string]*family{}
	for _, m := range c.snapshot() {
		if c.reserved[m.Name] {
			c.skip(m.Name, "its name belongs to another collector")
			continue
		}
		labels := slices.Clone(m.Labels)
		slices.SortFunc(labels, func(a, b x0x.Label) int { return strings.Compare(a.Name, b.Name) })
		names := make([]string, len(labels))
		vals := make([]string, len(labels))
		for i, l := range labels {
			names[i], vals[i] = l.Name, l.Value
		}
		f, ok := fams[m.Name]
		if !ok {
			f = &family{help: m.Help, gauge: m.Gauge, labels: names, seen: map[string]bool{}}
			fams[m.Name] = f
		}
		switch {
		case f.gauge != m.Gauge:
			c.skip(m.Name, "a series is a gauge and another a counter")
			continue
		case !slices.Equal(f.labels, names):
			c.skip(m.Name, fmt.Sprintf("series with label names %v and %v", f.labels, names))
			continue
		}
		key := strings.Join(vals, "\xff")
		if f.seen[key] {
			c.skip(m.Name, fmt.Sprintf("series %v reported twice", vals))
			continue
		}
		vt := prometheus.CounterValue
		if m.Gauge {
			vt = prometheus.GaugeValue
		}
		// Help: the first series' for every series of the name.
		pm, err := prometheus.NewConstMetric(prometheus.NewDesc(m.Name, f.help, names, nil), vt, float64(m.Value), vals...)
		if err != nil {
			c.skip(m.Name, err.Error())
			continue
		}
		f.seen[key] = true
		ch <- pm
	}
}

// skip logs, once per name and problem, a series left out of a scrape.
func (c *agentCollector) skip(name, problem string) {
	c.mu.Lock()
	k := name + "\x00" + problem
	first := !c.warned[k] && len(c.warned) < maxWarned
	if first {
		c.warned[k] = true
	}
	c.mu.Unlock()
	if first {
		c.log.Warn("metrics: agent series left out of /metrics", "metric", name, "problem", problem)
	}
}
