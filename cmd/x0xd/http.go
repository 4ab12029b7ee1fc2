package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"
	"unicode"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// health is the JSON body of GET /health.
type health struct {
	Status        string  `json:"status"`
	Role          string  `json:"role"`
	MachineID     string  `json:"machine_id"`
	AgentID       string  `json:"agent_id"`
	UDPAddr       string  `json:"udp_addr"`
	NATType       string  `json:"nat_type"`
	ExternalAddr  string  `json:"external_addr,omitempty"`
	Peers         int     `json:"peers"`
	UptimeSeconds float64 `json:"uptime_seconds"`
}

func newHandler(agent *x0x.Agent, role string, started time.Time) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		natType, external := agent.NATType()
		_ = json.NewEncoder(w).Encode(health{
			NATType:       natType,
			ExternalAddr:  external,
			Status:        "ok",
			Role:          role,
			MachineID:     agent.MachineID().String(),
			AgentID:       agent.AgentID().String(),
			UDPAddr:       agent.Addr(),
			Peers:         len(agent.ConnectedPeers()),
			UptimeSeconds: time.Since(started).Seconds(),
		})
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		fmt.Fprintf(w, "# HELP x0x_uptime_seconds Seconds since the daemon started.\n# TYPE x0x_uptime_seconds gauge\nx0x_uptime_seconds %.3f\n", time.Since(started).Seconds())
		_ = agent.Node().Stats().WritePrometheus(w)
		ps, keys := agent.OverlayStats()
		writeCounters(w, "pubsub", ps)
		writeCounters(w, "keys", keys)
		writeCounters(w, "membership", agent.MembershipStats())
		writeCounters(w, "nat", agent.NATStats())
		writeCounters(w, "tasklist", sumCounters(agent.OpenTaskListsStats()))
	})
	return mux
}

// writeCounters writes every uint64 field of stats (a counters struct,
// nested structs included) as a Prometheus counter named
// x0x_<layer>_<field path in snake case>_total, so that a counter added to a
// layer is exported without touching the daemon.
func writeCounters(w io.Writer, layer string, stats any) {
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			switch f.Type.Kind() {
			case reflect.Struct:
				walk(prefix+snake(f.Name)+"_", v.Field(i))
			case reflect.Uint64:
				name := fmt.Sprintf("x0x_%s_%s%s_total", layer, prefix, snake(f.Name))
				fmt.Fprintf(w, "# HELP %s %s counter %s%s.\n# TYPE %s counter\n%s %d\n", name, layer, prefix, f.Name,
					name, name, v.Field(i).Uint())
			}
		}
	}
	walk("", reflect.ValueOf(stats))
}

// sumCounters adds the uint64 fields (nested structs included) of every
// element of list into one value of the element type.
func sumCounters[T any](list []T) T {
	var total T
	var add func(dst, src reflect.Value)
	add = func(dst, src reflect.Value) {
		for i := range dst.NumField() {
			switch df := dst.Field(i); {
			case !dst.Type().Field(i).IsExported():
			case df.Kind() == reflect.Struct:
				add(df, src.Field(i))
			case df.Kind() == reflect.Uint64:
				df.SetUint(df.Uint() + src.Field(i).Uint())
			}
		}
	}
	for _, s := range list {
		add(reflect.ValueOf(&total).Elem(), reflect.ValueOf(s))
	}
	return total
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
