package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

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
			Peers:         len(agent.Peers()),
			UptimeSeconds: time.Since(started).Seconds(),
		})
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		fmt.Fprintf(w, "# HELP x0x_uptime_seconds Seconds since the daemon started.\n# TYPE x0x_uptime_seconds gauge\nx0x_uptime_seconds %.3f\n", time.Since(started).Seconds())
		_ = agent.Metrics().WritePrometheus(w)
	})
	return mux
}
