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
	})
	return mux
}

// writeCounters writes every uint64 field of stats (a counters struct) as
// a Prometheus counter named x0x_<layer>_<field in snake case>_total, so
// that a counter added to a layer is exported without touching the daemon.
func writeCounters(w io.Writer, layer string, stats any) {
	v := reflect.ValueOf(stats)
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Type.Kind() != reflect.Uint64 || !f.IsExported() {
			continue
		}
		name := fmt.Sprintf("x0x_%s_%s_total", layer, snake(f.Name))
		fmt.Fprintf(w, "# HELP %s %s counter %s.\n# TYPE %s counter\n%s %d\n", name, layer, f.Name, name, name, v.Field(i).Uint())
	}
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
