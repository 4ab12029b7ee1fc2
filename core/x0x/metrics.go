package x0x

import (
	"bufio"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"unicode"

	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/tasklist"
	"github.com/saorsa-labs/x0x-go/core/transport"
)

// Metric is one counter or gauge of an agent, named as Prometheus names
// it: "x0x_<layer>_<name>", counters ending in "_total". The layers'
// counters are reported as they are, so the set of metrics grows when a
// layer counts something new; match them by name (Metrics.Value) rather
// than by position.
type Metric struct {
	// Name is the metric's name, e.g. "x0x_pubsub_drop_bad_signature_total".
	Name string
	// Help describes the metric in one line.
	Help string
	// Gauge is true for a value that goes up and down; false for a counter.
	Gauge bool
	// Labels distinguish the series of one name (nil for most).
	Labels []Label
	// Value is the current value.
	Value uint64
}

// Label is a Prometheus label of a Metric.
type Label struct {
	Name, Value string
}

// Metrics is a snapshot of counters and gauges (Agent.Metrics,
// TaskList.Metrics). Series of one name are adjacent.
type Metrics []Metric

// Value returns the value of the series named name whose labels include
// every one of labels, and whether there is one.
func (ms Metrics) Value(name string, labels ...Label) (uint64, bool) {
	for _, m := range ms {
		if m.Name != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !slices.Contains(m.Labels, l) {
				ok = false
				break
			}
		}
		if ok {
			return m.Value, true
		}
	}
	return 0, false
}

// WritePrometheus writes the metrics in the Prometheus text exposition
// format (a HELP and a TYPE line per name). It returns w's error.
func (ms Metrics) WritePrometheus(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for i, m := range ms {
		if i == 0 || ms[i-1].Name != m.Name {
			kind := "counter"
			if m.Gauge {
				kind = "gauge"
			}
			fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", m.Name, m.Help, m.Name, kind)
		}
		bw.WriteString(m.Name)
		if len(m.Labels) > 0 {
			bw.WriteByte('{')
			for j, l := range m.Labels {
				if j > 0 {
					bw.WriteByte(',')
				}
				fmt.Fprintf(bw, "%s=%q", l.Name, l.Value)
			}
			bw.WriteByte('}')
		}
		fmt.Fprintf(bw, " %d\n", m.Value)
	}
	return bw.Flush()
}

// Metrics returns a snapshot of the agent's counters: the transport
// (x0x_transport_*: connections, per-class traffic, relaying), NAT
// traversal (x0x_nat_*), overlay membership (x0x_membership_*), pub/sub
// (x0x_pubsub_*: deliveries and every drop by reason), the origin-key
// resolver (x0x_keys_*), the open task lists summed (x0x_tasklist_*), and
// the items this agent's streams dropped for slow readers
// (x0x_agent_stream_dropped_total, by stream).
func (a *Agent) Metrics() Metrics {
	ms := transportMetrics(a.node.Stats())
	ms = appendCounters(ms, "nat", a.nat.Stats())
	ms = appendCounters(ms, "membership", a.overlay.Members.Stats())
	ms = appendCounters(ms, "pubsub", a.overlay.PubSub.Stats())
	ms = appendCounters(ms, "keys", a.keys.Stats())
	var lists Metrics
	for _, l := range a.openTaskLists() {
		lists = sumMetrics(lists, l.Metrics())
	}
	if lists == nil {
		lists = appendCounters(nil, "tasklist", tasklist.Stats{})
	}
	ms = append(ms, lists...)
	for _, s := range []struct {
		stream string
		n      uint64
	}{
		{"events", a.drops.events.Load()}, {"messages", a.drops.messages.Load()},
		{"topic_events", a.drops.topicEvents.Load()}, {"task_changes", a.drops.taskChanges.Load()},
	} {
		ms = append(ms, Metric{Name: "x0x_agent_stream_dropped_total", Help: "Stream items dropped because a reader lagged.",
			Labels: []Label{{"stream", s.stream}}, Value: s.n})
	}
	ms = append(ms, Metric{Name: "x0x_agent_group_work_dropped_total",
		Help: "Group messages dropped because the groups worker's queue was full.", Value: a.drops.groupWork.Load()},
		Metric{Name: "x0x_agent_group_save_failures_total", Help: "Saves of a group's state that failed (I/O).", Value: a.drops.groupSaves.Load()})
	return ms
}

// Metrics returns a snapshot of the list's counters (x0x_tasklist_*:
// operations, sync traffic, and received input dropped by reason).
func (l *TaskList) Metrics() Metrics { return appendCounters(nil, "tasklist", l.list.Stats()) }

// sumMetrics adds b's values to a's series of the same name and labels
// (a nil a takes b's series).
func sumMetrics(a, b Metrics) Metrics {
	if a == nil {
		return slices.Clone(b)
	}
	for i := range a {
		if i < len(b) && a[i].Name == b[i].Name {
			a[i].Value += b[i].Value
		}
	}
	return a
}

// appendCounters appends every uint64 field of stats (a counters struct,
// nested structs included) as a counter x0x_<layer>_<field path in snake
// case>_total, and every int field as a gauge x0x_<layer>_<path>.
func appendCounters(ms Metrics, layer string, stats any) Metrics {
	var walk func(prefix, path string, v reflect.Value)
	walk = func(prefix, path string, v reflect.Value) {
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			switch f.Type.Kind() {
			case reflect.Struct:
				walk(prefix+snake(f.Name)+"_", path+f.Name+".", v.Field(i))
			case reflect.Uint64:
				ms = append(ms, Metric{Name: fmt.Sprintf("x0x_%s_%s%s_total", layer, prefix, snake(f.Name)),
					Help: fmt.Sprintf("%s counter %s%s.", layer, path, f.Name), Value: v.Field(i).Uint()})
			case reflect.Int:
				ms = append(ms, Metric{Name: fmt.Sprintf("x0x_%s_%s%s", layer, prefix, snake(f.Name)),
					Help: fmt.Sprintf("%s gauge %s%s.", layer, path, f.Name), Gauge: true, Value: uint64(max(v.Field(i).Int(), 0))})
			}
		}
	}
	walk("", "", reflect.ValueOf(stats))
	return ms
}

// snake turns a Go field name into snake case ("DropBadSignature" ->
// "drop_bad_signature", "AERounds" -> "ae_rounds").
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) && i > 0 {
			prev := rune(s[i-1])
			next := rune(0)
			if i+1 < len(s) {
				next = rune(s[i+1])
			}
			if unicode.IsLower(prev) || (unicode.IsUpper(prev) && unicode.IsLower(next)) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// transportMetrics names the node's counters as the daemon has always
// exported them.
func transportMetrics(s transport.Stats) Metrics {
	var ms Metrics
	add := func(name, help string, gauge bool, v uint64, labels ...Label) {
		ms = append(ms, Metric{Name: "x0x_transport_" + name, Help: help, Gauge: gauge, Labels: labels, Value: v})
	}
	add("connections_open", "QUIC connections open, authenticated or not.", true, uint64(max(s.ConnectionsOpen, 0)))
	add("peers_connected", "Authenticated peers.", true, uint64(max(s.PeersConnected, 0)))
	for _, c := range []struct {
		name, help string
		v          uint64
	}{
		{"inbound_accepted_total", "Inbound connections accepted for authentication.", s.InboundAccepted},
		{"connections_refused_total", "Inbound connections refused by the connection limit.", s.ConnectionsRefused},
		{"evicted_total", "Inbound connections closed by the eviction policy to admit a newcomer.", s.Evicted},
		{"dials_ok_total", "Outbound dials that authenticated.", s.DialsOK},
		{"dials_failed_total", "Outbound dials that failed.", s.DialsFailed},
		{"dials_refused_total", "Outbound dials refused by the in-flight dial cap.", s.DialsRefused},
		{"auth_failures_total", "Connections whose peer failed authentication.", s.AuthFailures},
		{"tls_refused_total", "Handshakes refused for lacking X25519MLKEM768.", s.TLSRefused},
		{"certs_rejected_total", "Agent certificates rejected.", s.CertsRejected},
		{"duplicates_closed_total", "Connections retired by simultaneous-dial dedup.", s.DuplicatesClosed},
		{"replaced_total", "Connections replaced by a newer one to the same peer.", s.Replaced},
		{"reconnects_total", "Successful automatic redials.", s.Reconnects},
		{"malformed_frames_total", "Unparseable inputs (each closed its connection).", s.MalformedFrames},
		{"protocol_errors_total", "Protocol violations (each closed its connection).", s.ProtocolErrors},
		{"direct_delivered_total", "Direct messages delivered.", s.DirectDelivered},
		{"direct_dropped_total", "Direct messages dropped (uncertified sender or unknown recipient).", s.DirectDropped},
		{"events_dropped_total", "Node events dropped before the agent read them.", s.EventsDropped},
		{"punch_dials_total", "Hole-punch dials started (one per candidate address).", s.PunchDials},
		{"relayed_connections_total", "Relayed connections that authenticated.", s.RelayedConns},
		{"relay_forwarded_packets_total", "Packets forwarded as a relay.", s.RelayForwarded},
		{"relay_forwarded_bytes_total", "Packet bytes forwarded as a relay.", s.RelayBytes},
		{"relay_refused_packets_total", "Packets refused as a relay (quota or unknown target).", s.RelayRefused},
		{"relay_dropped_packets_total", "Relayed packets dropped (full queue or no relay connection).", s.RelayDropped},
		{"quic_bytes_sent_total", "QUIC bytes sent over all connections (headers, acks, handshakes, retransmissions).", s.QUICBytesSent},
		{"quic_packets_sent_total", "QUIC packets sent over all connections.", s.QUICPacketsSent},
		{"quic_packets_lost_total", "QUIC packets declared lost over all connections.", s.QUICPacketsLost},
	} {
		add(c.name, c.help, false, c.v)
	}
	perClass := func(name, help string, get func(transport.ClassStats) uint64, extra ...Label) {
		for i, cs := range s.Classes {
			add(name, help, false, get(cs), append([]Label{{"class", link.Class(i + 1).String()}}, extra...)...)
		}
	}
	in, out := Label{"direction", "in"}, Label{"direction", "out"}
	perClass("frames_total", "Frames sent and received per class.", func(c transport.ClassStats) uint64 { return c.FramesIn }, in)
	perClass("frames_total", "Frames sent and received per class.", func(c transport.ClassStats) uint64 { return c.FramesOut }, out)
	perClass("bytes_total", "Frame bytes sent and received per class.", func(c transport.ClassStats) uint64 { return c.BytesIn }, in)
	perClass("bytes_total", "Frame bytes sent and received per class.", func(c transport.ClassStats) uint64 { return c.BytesOut }, out)
	for p := link.Priority(0); p < link.NumPriorities; p++ {
		perClass("queue_dropped_total", "Frames dropped because the send queue was full.",
			func(c transport.ClassStats) uint64 { return c.Dropped[p] }, Label{"priority", p.String()})
	}
	perClass("no_handler_total", "Inbound frames dropped for lack of a handler.", func(c transport.ClassStats) uint64 { return c.NoHandler })
	return ms
}
