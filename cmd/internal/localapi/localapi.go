// Package localapi is x0xd's local API: the HTTP + JSON interface through
// which programs that are not written in Go, Node or Python, shell scripts
// (the x0x CLI) and LLM agents (the MCP server) use the daemon's agent.
//
// Every route but GET /health needs the bearer token of the daemon's data
// directory (LoadOrCreateToken); a request without it gets 401. The routes
// are listed by Routes and described by the OpenAPI 3.1 document served at
// /openapi.json (openapi.go, checked against Routes by a test).
//
// Everything the agent receives is read through feeds: a followed topic's
// messages, the direct-message inbox, a task list's changes and a group's
// messages. A feed is a bounded buffer whose items carry cursors; a client
// reads the items after the cursor it last saw, as a JSON page (which can
// wait for news: wait_ms) or as a stream (Server-Sent Events, or a
// WebSocket when the request asks to upgrade) that can resume from a
// cursor. A client that falls so far behind that items it has not read
// are evicted is told how many it missed (pages) or disconnected (streams:
// WebSocket close code 1008, reason "slow consumer"; an SSE "error"
// event), so nothing is ever buffered without bound for it.
package localapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// Config configures a Server.
type Config struct {
	// Agent is the daemon's agent; the server does not close it.
	Agent *x0x.Agent
	// Token is the bearer token every route but /health requires
	// (LoadOrCreateToken). Required.
	Token string
	// Role is reported by /health (e.g. "bootstrap" or "coordinator,relay").
	Role string
	// Started is when the daemon started (/health's uptime).
	Started time.Time
	// Metrics serves GET /metrics (behind the token). Nil: the agent's
	// counters in the Prometheus text format.
	Metrics http.Handler
	// KeyPassphrase seals the agent key that /v1/identity/import stores
	// (the daemon's -passphrase-file); empty for an unsealed key.
	KeyPassphrase []byte
	// Logger receives the server's own messages; nil: discarded.
	Logger *slog.Logger
	// Limits bound what the server buffers; zero fields take defaults.
	Limits Limits
	// Now is the clock feeds take their first cursors from (nil:
	// time.Now).
	Now func() time.Time
	// AllowRemote accepts requests whose Host header is not a loopback
	// name or address (x0xd's -http-allow-remote). Without it such
	// requests get 403: a web page that rebinds its DNS name to 127.0.0.1
	// cannot read even /health.
	AllowRemote bool
}

// Limits bound the server's buffers and waits.
type Limits struct {
	// MaxFollowedTopics bounds the topics followed at once (default 64).
	MaxFollowedTopics int
	// FeedItems and FeedBytes bound each feed (defaults 1,024 items and
	// 4 MiB): a topic's messages, the inbox, a list's changes, a group's
	// messages.
	FeedItems, FeedBytes int
	// MaxWait caps a page request's wait_ms (default 30 s).
	MaxWait time.Duration
	// WriteTimeout is how long a stream may take to accept one item
	// before the client is dropped as too slow (default 10 s).
	WriteTimeout time.Duration
	// MaxBody bounds a request body (default 8 MiB: a 1 MiB payload as
	// JSON text, where escaping may make each byte six, \u00XX).
	MaxBody int64
}

func (l *Limits) fill() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxFollowedTopics, 64)
	def(&l.FeedItems, 1024)
	def(&l.FeedBytes, 4<<20)
	if l.MaxWait <= 0 {
		l.MaxWait = 30 * time.Second
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = 10 * time.Second
	}
	if l.MaxBody <= 0 {
		l.MaxBody = 8 << 20
	}
}

// Route is one route of the API, as Routes lists it.
type Route struct {
	Method string
	// Path is the pattern, with {name} for a path parameter.
	Path string
	// Public routes need no token (only /health).
	Public bool
}

// Server serves the local API for one agent. Create it with New, serve
// Handler, and Close it before closing the agent.
type Server struct {
	cfg    Config
	agent  *x0x.Agent
	lim    Limits
	log    *slog.Logger
	mux    *http.ServeMux
	routes []Route
	token  []byte
	// openapi is the OpenAPI document (buildOpenAPI).
	openapi []byte

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	inbox *feed[DirectMessage]

	mu        sync.Mutex
	topics    map[string]*followed
	joining   int // topics being joined (they count against MaxFollowedTopics)
	lists     map[x0x.TaskListID]*openList
	groups    map[x0x.GroupID]*openGroup
	externals []string // external addresses discovered, oldest first (at most 16)

	importMu sync.Mutex
	imported *x0x.AgentID // the agent an import made the data directory's (importMu)
	closed   bool
}

// New starts a server for cfg.Agent: it begins collecting the agent's
// direct messages into the inbox at once. Errors: a missing agent or
// token.
func New(cfg Config) (*Server, error) {
	if cfg.Agent == nil {
		return nil, errors.New("localapi: no agent")
	}
	if len(cfg.Token) < 32 {
		return nil, errors.New("localapi: the token must have at least 32 characters")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Started.IsZero() {
		cfg.Started = cfg.Now()
	}
	lim := cfg.Limits
	lim.fill()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, agent: cfg.Agent, lim: lim, log: log, mux: http.NewServeMux(), token: []byte(cfg.Token),
		inbox:  newFeed[DirectMessage](lim.FeedItems, lim.FeedBytes, cursorBase(cfg.Now)),
		topics: make(map[string]*followed),
		lists:  make(map[x0x.TaskListID]*openList),
		groups: make(map[x0x.GroupID]*openGroup),
	}
	doc, err := buildOpenAPI()
	if err != nil {
		return nil, fmt.Errorf("localapi: the OpenAPI document: %w", err)
	}
	s.openapi = doc
	s.ctx, s.cancel = context.WithCancel(context.Background())
	events, err := cfg.Agent.Events(x0x.WithBuffer(lim.FeedItems, lim.FeedBytes))
	if err != nil {
		return nil, fmt.Errorf("localapi: agent events: %w", err)
	}
	s.wg.Go(func() { s.pumpEvents(events) })
	s.register()
	return s, nil
}

// Handler returns the API's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Routes lists every route the handler serves, in registration order.
func (s *Server) Routes() []Route { return slices.Clone(s.routes) }

// Close stops the server's feeds and streams (open streams end) and
// leaves the topics it followed; open task lists and groups stay with the
// agent. It does not close the agent. Idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	topics, lists, groups := s.topics, s.lists, s.groups
	s.topics, s.lists, s.groups = map[string]*followed{}, map[x0x.TaskListID]*openList{}, map[x0x.GroupID]*openGroup{}
	s.mu.Unlock()
	s.cancel()
	for _, f := range topics {
		f.stop()
	}
	for _, l := range lists {
		l.changes.close()
	}
	for _, g := range groups {
		g.messages.close()
	}
	s.inbox.close()
	s.wg.Wait()
}

// handle registers one route; public routes skip the token check.
func (s *Server) handle(method, path string, public bool, h func(w http.ResponseWriter, r *http.Request) error) {
	s.routes = append(s.routes, Route{Method: method, Path: path, Public: public})
	s.mux.HandleFunc(method+" "+path, func(w http.ResponseWriter, r *http.Request) {
		if !s.cfg.AllowRemote && !loopbackHost(r.Host) {
			writeError(w, &apiError{Status: http.StatusForbidden, Code: "forbidden_host",
				Message: "the local API answers only requests to a loopback host (127.0.0.1, [::1], localhost), not " + r.Host})
			return
		}
		if !public && !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="x0xd"`)
			writeError(w, &apiError{Status: http.StatusUnauthorized, Code: "unauthorized",
				Message: "this route needs the bearer token of the daemon's data directory (file " + TokenFile + "): Authorization: Bearer <token>"})
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.lim.MaxBody)
		}
		if err := h(w, r); err != nil {
			writeError(w, asAPIError(err))
		}
	})
}

// authorized checks the bearer token in constant time (the scheme's name
// is case-insensitive, RFC 7235).
func (s *Server) authorized(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), s.token) == 1
}

// loopbackHost reports whether a Host header names a loopback address or
// localhost (with or without a port).
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// cursorBase is a new feed's first cursor: now in microseconds (see feed).
func cursorBase(now func() time.Time) uint64 {
	return uint64(max(now().UnixMicro(), 1))
}

// ---- errors ----------------------------------------------------------

// apiError is an error with its HTTP status and a stable code, written as
// {"error": {"code": ..., "message": ...}}.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return e.Message }

func badRequest(format string, a ...any) error {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_argument", Message: fmt.Sprintf(format, a...)}
}

func notFound(format string, a ...any) error {
	return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf(format, a...)}
}

// errorCodes maps the facade's errors to HTTP statuses and codes; the
// first match wins.
var errorCodes = []struct {
	err    error
	status int
	code   string
}{
	{x0x.ErrPayloadTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
	{x0x.ErrInvalidArgument, http.StatusBadRequest, "invalid_argument"},
	{x0x.ErrTaskListNotFound, http.StatusNotFound, "not_found"},
	{x0x.ErrTaskNotFound, http.StatusNotFound, "task_not_found"},
	{x0x.ErrGroupNotFound, http.StatusNotFound, "not_found"},
	{x0x.ErrInvitationNotFound, http.StatusNotFound, "not_found"},
	{x0x.ErrNoRoute, http.StatusNotFound, "no_route"},
	{x0x.ErrTaskDone, http.StatusConflict, "task_done"},
	{x0x.ErrTaskNotClaimed, http.StatusConflict, "task_not_claimed"},
	{x0x.ErrClaimedByOther, http.StatusConflict, "claimed_by_other"},
	{x0x.ErrNotWriter, http.StatusForbidden, "not_writer"},
	{x0x.ErrNotMember, http.StatusForbidden, "not_member"},
	{x0x.ErrAlreadyMember, http.StatusConflict, "already_member"},
	{x0x.ErrInvitationRefused, http.StatusConflict, "invitation_refused"},
	{x0x.ErrWrongPassphrase, http.StatusBadRequest, "wrong_passphrase"},
	{x0x.ErrPassphraseRequired, http.StatusBadRequest, "passphrase_required"},
	{x0x.ErrCorrupt, http.StatusBadRequest, "corrupt"},
	{x0x.ErrUnsupportedVersion, http.StatusBadRequest, "unsupported_version"},
	{x0x.ErrRejected, http.StatusUnprocessableEntity, "rejected"},
	{x0x.ErrPeerMismatch, http.StatusBadGateway, "peer_mismatch"},
	{x0x.ErrAuthFailed, http.StatusBadGateway, "auth_failed"},
	{x0x.ErrNotPostQuantum, http.StatusBadGateway, "not_post_quantum"},
	{x0x.ErrSelfConnect, http.StatusBadRequest, "self_connect"},
	{x0x.ErrUnreachable, http.StatusBadGateway, "unreachable"},
	{x0x.ErrQueueFull, http.StatusServiceUnavailable, "queue_full"},
	{x0x.ErrConnLimit, http.StatusServiceUnavailable, "connection_limit"},
	{x0x.ErrCooldown, http.StatusServiceUnavailable, "cooldown"},
	{x0x.ErrClosed, http.StatusServiceUnavailable, "closed"},
	{context.DeadlineExceeded, http.StatusGatewayTimeout, "timeout"},
}

func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large",
			Message: fmt.Sprintf("request body over %d bytes", mbe.Limit)}
	}
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return &apiError{Status: c.status, Code: c.code, Message: err.Error()}
		}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return &apiError{Status: http.StatusBadGateway, Code: "network", Message: err.Error()}
	}
	return &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: err.Error()}
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.Status, map[string]*apiError{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// readJSON decodes a request body into v: one JSON object, no unknown
// fields, within the body limit.
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("request body: %v", err)
	}
	if dec.More() {
		return badRequest("request body: more than one JSON value")
	}
	return nil
}
