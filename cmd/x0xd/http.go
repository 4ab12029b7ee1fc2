package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/saorsa-labs/x0x-go/core/nat"
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
		writeNATMetrics(w, agent.NATStats())
	})
	return mux
}

// writeNATMetrics writes the NAT traversal counters in the Prometheus text
// format.
func writeNATMetrics(w io.Writer, s nat.Stats) {
	for _, m := range []struct {
		name, help string
		v          uint64
	}{
		{"punch_requests_total", "Hole-punch requests sent to coordinators.", s.Requests},
		{"punches_coordinated_total", "Hole-punch requests passed on as a coordinator.", s.Coordinated},
		{"punch_offers_total", "Hole-punch offers answered.", s.Offers},
		{"punch_syncs_total", "Hole-punch syncs on which this node dialled.", s.Syncs},
		{"punches_ok_total", "Punch attempts that ended with a direct connection.", s.PunchesOK},
		{"punches_failed_total", "Punch attempts that found no direct path.", s.PunchesFailed},
		{"relay_fallbacks_total", "Connections made through a relay.", s.RelayFallbacks},
		{"upgrades_total", "Relayed connections replaced by direct ones.", s.Upgrades},
		{"refused_total", "NAT requests or offers refused or ignored.", s.Refused},
		{"malformed_total", "NAT messages that did not decode.", s.MalformedFrames},
	} {
		fmt.Fprintf(w, "# HELP x0x_nat_%s %s\n# TYPE x0x_nat_%s counter\nx0x_nat_%s %d\n", m.name, m.help, m.name, m.name, m.v)
	}
}
