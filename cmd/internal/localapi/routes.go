package localapi

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// register installs every route. The order is the order Routes reports.
func (s *Server) register() {
	s.handle("GET", "/health", true, s.getHealth)
	s.handle("GET", "/openapi.json", false, func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		_, err := w.Write(s.openapi)
		return err
	})
	s.handle("GET", "/metrics", false, s.getMetrics)
	s.handle("GET", "/.well-known/agent.json", false, s.getAgentCard)
	s.handle("GET", "/.well-known/agent-card.json", false, s.getAgentCard)

	s.handle("GET", "/v1/agent", false, s.getAgent)
	s.handle("GET", "/agent", false, s.getAgent) // the name for it; /v1/agent is the versioned one
	s.handle("GET", "/v1/peers", false, s.getPeers)
	s.handle("POST", "/v1/peers", false, s.postPeer)

	s.handle("GET", "/v1/topics", false, s.getTopics)
	s.handle("POST", "/v1/topics", false, s.postTopic)
	s.handle("DELETE", "/v1/topics", false, s.deleteTopic)
	s.handle("POST", "/v1/topics/publish", false, s.postPublish)
	s.handle("GET", "/v1/topics/messages", false, s.getTopicMessages)
	s.handle("GET", "/v1/topics/stream", false, s.getTopicStream)

	s.handle("POST", "/v1/direct", false, s.postDirect)
	s.handle("GET", "/v1/direct/messages", false, s.getDirectMessages)
	s.handle("GET", "/v1/direct/stream", false, s.getDirectStream)

	s.handle("GET", "/v1/tasklists", false, s.getTaskLists)
	s.handle("POST", "/v1/tasklists", false, s.postTaskList)
	s.handle("GET", "/v1/tasklists/{list}", false, s.getTaskList)
	s.handle("DELETE", "/v1/tasklists/{list}", false, s.deleteTaskList)
	s.handle("POST", "/v1/tasklists/{list}/join", false, s.postJoinTaskList)
	s.handle("POST", "/v1/tasklists/{list}/tasks", false, s.postTask)
	s.handle("POST", "/v1/tasklists/{list}/tasks/{task}/claim", false, s.postClaim)
	s.handle("POST", "/v1/tasklists/{list}/tasks/{task}/complete", false, s.postComplete)
	s.handle("GET", "/v1/tasklists/{list}/changes", false, s.getChanges)
	s.handle("GET", "/v1/tasklists/{list}/changes/stream", false, s.getChangeStream)

	s.handle("POST", "/v1/identity/export", false, s.postExport)
	s.handle("POST", "/v1/identity/import", false, s.postImport)

	s.handle("POST", "/v1/keypackage", false, s.postKeyPackage)
	s.handle("GET", "/v1/groups", false, s.getGroups)
	s.handle("POST", "/v1/groups", false, s.postGroup)
	s.handle("GET", "/v1/groups/{group}", false, s.getGroup)
	s.handle("DELETE", "/v1/groups/{group}", false, s.deleteGroup)
	s.handle("POST", "/v1/groups/{group}/members", false, s.postMember)
	s.handle("DELETE", "/v1/groups/{group}/members/{agent}", false, s.deleteMember)
	s.handle("POST", "/v1/groups/{group}/messages", false, s.postGroupMessage)
	s.handle("GET", "/v1/groups/{group}/messages", false, s.getGroupMessages)
	s.handle("GET", "/v1/groups/{group}/messages/stream", false, s.getGroupStream)
	s.handle("GET", "/v1/invitations", false, s.getInvitations)
	s.handle("POST", "/v1/invitations/{group}/accept", false, s.postAccept)
	s.handle("POST", "/v1/invitations/{group}/decline", false, s.postDecline)
}

// ---- node ------------------------------------------------------------

func (s *Server) getHealth(w http.ResponseWriter, r *http.Request) error {
	a := s.agent
	natType, external := a.NATType()
	s.mu.Lock()
	exts := slices.Clone(s.externals)
	topics := len(s.topics)
	s.mu.Unlock()
	if external != "" && !slices.Contains(exts, external) {
		exts = append(exts, external)
	}
	if exts == nil {
		exts = []string{}
	}
	writeJSON(w, http.StatusOK, Health{
		Status: "ok", Version: x0x.Version, Role: s.cfg.Role,
		MachineID: a.MachineID().String(), AgentID: a.AgentID().String(),
		UDPAddr: a.Addr(), AdvertisedAddr: a.AdvertisedAddr(), NATType: natType, ExternalAddrs: exts,
		Peers: len(a.Peers()), Topics: topics, UptimeSeconds: time.Since(s.cfg.Started).Seconds(),
	})
	return nil
}

func (s *Server) getMetrics(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.ServeHTTP(w, r)
		return nil
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	return s.agent.Metrics().WritePrometheus(w)
}

// AgentCardTransport names, in the agent card, what the daemon's HTTP
// address serves: this local API.
const AgentCardTransport = "X0XD-HTTP"

// getAgentCard serves the agent's A2A agent card; its main URL is the
// address the request arrived at (not the client's Host header).
func (s *Server) getAgentCard(w http.ResponseWriter, r *http.Request) error {
	var opts x0x.AgentCardOptions
	if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		opts.URL, opts.Transport = scheme+"://"+addr.String()+"/", AgentCardTransport
	}
	writeJSON(w, http.StatusOK, s.agent.AgentCard(opts))
	return nil
}

func (s *Server) getAgent(w http.ResponseWriter, r *http.Request) error {
	a := s.agent
	natType, external := a.NATType()
	writeJSON(w, http.StatusOK, AgentInfo{
		AgentID: a.AgentID().String(), MachineID: a.MachineID().String(), Addr: a.Addr(),
		AdvertisedAddr: a.AdvertisedAddr(), DialAddr: a.MachineID().String() + "@" + a.AdvertisedAddr(),
		NATType: natType, ExternalAddr: external, Version: x0x.Version,
	})
	return nil
}

func (s *Server) getPeers(w http.ResponseWriter, r *http.Request) error {
	out := []Peer{}
	for _, p := range s.agent.Peers() {
		svc := []string{}
		if p.Services.Has(x0x.ServiceCoordinator) {
			svc = append(svc, "coordinator")
		}
		if p.Services.Has(x0x.ServiceRelay) {
			svc = append(svc, "relay")
		}
		out = append(out, Peer{ID: p.ID.String(), Addr: p.Addr, Relayed: p.Relayed, Via: idString(p.Via),
			Services: svc, Agents: ids(s.agent.PeerAgents(p.ID))})
	}
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.ID, b.ID) })
	writeJSON(w, http.StatusOK, PeerList{Peers: out})
	return nil
}

func (s *Server) postPeer(w http.ResponseWriter, r *http.Request) error {
	var req ConnectRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if req.Addr == "" {
		return badRequest("addr is required")
	}
	peer, err := s.agent.Connect(r.Context(), req.Addr)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ConnectResponse{Peer: peer.String()})
	return nil
}

// ---- direct messages -------------------------------------------------

func (s *Server) postDirect(w http.ResponseWriter, r *http.Request) error {
	var req DirectRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	to, err := parseID("to", req.To)
	if err != nil {
		return err
	}
	payload, err := req.bytes()
	if err != nil {
		return err
	}
	if err := s.agent.SendDirect(r.Context(), to, payload); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, Empty{OK: true})
	return nil
}

func (s *Server) getDirectMessages(w http.ResponseWriter, r *http.Request) error {
	return servePage(s, w, r, s.inbox)
}

func (s *Server) getDirectStream(w http.ResponseWriter, r *http.Request) error {
	return serveStream(s, w, r, s.inbox, "direct", nil)
}

// ---- identity --------------------------------------------------------

func (s *Server) postExport(w http.ResponseWriter, r *http.Request) error {
	var req ExportRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if req.Passphrase == "" {
		return badRequest("passphrase is required: the bundle is sealed with it")
	}
	b, err := s.agent.ExportIdentity([]byte(req.Passphrase))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ExportResponse{AgentID: s.agent.AgentID().String(), BundleB64: base64.StdEncoding.EncodeToString(b)})
	return nil
}

// agentKeyFile is the agent key's file in a data directory (keystore).
const agentKeyFile = "agent.key"

// postImport stores an exported agent key as the data directory's agent
// key, for the daemon's next start. The key it replaces is kept beside
// it (agent.key.replaced-<unix nanoseconds>, created exclusively), never
// deleted or overwritten.
func (s *Server) postImport(w http.ResponseWriter, r *http.Request) error {
	var req ImportRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	bundle, err := base64.StdEncoding.DecodeString(req.BundleB64)
	if err != nil {
		return badRequest("bundle_b64: %v", err)
	}
	key, err := x0x.ImportIdentity(bundle, []byte(req.Passphrase))
	if err != nil {
		return err
	}
	s.importMu.Lock()
	defer s.importMu.Unlock()
	running := s.agent.AgentID()
	resp := ImportResponse{AgentID: key.ID().String(), RestartRequired: key.ID() != running}
	// The key on disk is the running agent's unless an import replaced
	// it: then even the running agent's own key must be written back.
	onDisk := running
	if s.imported != nil {
		onDisk = *s.imported
	}
	if key.ID() == onDisk {
		writeJSON(w, http.StatusOK, resp) // already the data directory's agent
		return nil
	}
	dir := s.agent.DataDir()
	cur := filepath.Join(dir, agentKeyFile)
	if _, err := os.Stat(cur); err == nil {
		if !req.Replace {
			return &apiError{Status: http.StatusConflict, Code: "would_replace",
				Message: "the data directory has an agent key (agent " + onDisk.String() + "); pass \"replace\": true to make the imported key the agent at the next start (the old key file is kept)"}
		}
		if resp.PreviousKeyFile, err = keepCopy(cur); err != nil {
			return err
		}
	}
	if err := x0x.SaveAgentKey(dir, key, s.cfg.KeyPassphrase); err != nil {
		return err
	}
	id := key.ID()
	s.imported = &id
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// keepCopy copies path to a new file beside it named
// <path>.replaced-<unix nanoseconds> (mode 0600, never overwriting one).
func keepCopy(path string) (string, error) {
	old, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for i := 0; ; i++ {
		name := fmt.Sprintf("%s.replaced-%d", path, time.Now().UnixNano()+int64(i))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) && i < 100 {
			continue
		}
		if err != nil {
			return "", err
		}
		if err := writeClose(f, old); err != nil {
			os.Remove(name)
			return "", err
		}
		return name, nil
	}
}

// writeClose writes b to f, syncs and closes it.
func writeClose(f *os.File, b []byte) error {
	_, err := f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ---- helpers ---------------------------------------------------------

func parseID(field, s string) (x0x.ID, error) {
	id, err := x0x.ParseID(s)
	if err != nil {
		return x0x.ID{}, badRequest("%s: want 64 hex digits: %v", field, err)
	}
	return id, nil
}

// cursorParams reads ?after=, ?limit= (1-1000, default 100) and
// ?wait_ms= (capped at the server's MaxWait).
func (s *Server) cursorParams(r *http.Request) (after uint64, limit int, wait time.Duration, err error) {
	q := r.URL.Query()
	limit = 100
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			return 0, 0, 0, badRequest("after: want a cursor (a non-negative integer)")
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return 0, 0, 0, badRequest("limit: want 1 to 1000")
		}
		limit = n
	}
	if v := q.Get("wait_ms"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms < 0 {
			return 0, 0, 0, badRequest("wait_ms: want a non-negative integer")
		}
		wait = min(time.Duration(ms)*time.Millisecond, s.lim.MaxWait)
	}
	return after, limit, wait, nil
}

var errNoTopic = errors.New("topic is required (?topic=...)")
