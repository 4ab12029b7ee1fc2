package main

import (
	"encoding/json"
	"fmt"
	"net"
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
	// The agent's A2A agent card (core/x0x/agentcard.go), at the path the
	// A2A specification 0.3.0 recommends (agent-card.json) and at its
	// earlier agent.json. Like everything here it is served only on the
	// daemon's local HTTP address; the card's main URL is that address
	// (the one this request arrived at, not the client's Host header),
	// whose transport is this local API, and it also lists the agent's x0x
	// URL.
	card := func(w http.ResponseWriter, r *http.Request) {
		var opts x0x.AgentCardOptions
		if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			opts.URL, opts.Transport = "http://"+addr.String()+"/", agentCardTransport
		}
		c := agent.AgentCard(opts)
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(c)
	}
	mux.HandleFunc("GET /.well-known/agent.json", card)
	mux.HandleFunc("GET /.well-known/agent-card.json", card)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		fmt.Fprintf(w, "# HELP x0x_uptime_seconds Seconds since the daemon started.\n# TYPE x0x_uptime_seconds gauge\nx0x_uptime_seconds %.3f\n", time.Since(started).Seconds())
		_ = agent.Metrics().WritePrometheus(w)
	})
	return mux
}

// agentCardTransport names, in the agent card, what the daemon's HTTP
// address serves: this local API (GET /health, /metrics and the card).
const agentCardTransport = "X0XD-HTTP"
