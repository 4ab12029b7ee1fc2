// Command x0xd runs an x0x node daemon.
//
//	x0xd [-config FILE] [-data-dir DIR] [-listen 0.0.0.0:12000]
//	     [-http 127.0.0.1:12600] [-http-allow-remote -http-tls-cert FILE -http-tls-key FILE]
//	     [-bootstrap ADDR,...] [-network local|testnet]
//	     [-role bootstrap|coordinator|relay[,...]] [-passphrase-file FILE]
//	     [-log-format text|json] [-log-level debug|info|warn|error] [-v]
//	x0xd -print-config
//
// It serves the local API (cmd/internal/localapi: GET /health, GET
// /metrics in the Prometheus format, the A2A agent card, /openapi.json and
// the /v1 routes) on the HTTP address, keeps its keys, peer cache and the
// API's bearer token (api-token, mode 0600) in the data directory, prints
// one "x0xd ready ... token_file=PATH" line on stdout once it is serving,
// and shuts down gracefully on SIGTERM or SIGINT. Settings come from flags,
// X0X_* environment variables and a config file (config.go; x0xd -h).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/saorsa-labs/x0x-go/cmd/internal/localapi"
	"github.com/saorsa-labs/x0x-go/core/x0x"
)

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "x0xd:", err)
		os.Exit(1)
	}
}

// roleServices maps a -role list to the services the node offers.
func roleServices(roles string) (x0x.Services, error) {
	var list []string
	for _, r := range strings.Split(roles, ",") {
		switch r = strings.TrimSpace(r); r {
		case "bootstrap":
		case "coordinator", "relay":
			list = append(list, r)
		default:
			return 0, fmt.Errorf("unknown role %q (want bootstrap, coordinator or relay)", r)
		}
	}
	return x0x.ParseServices(strings.Join(list, ","))
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseConfig(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	if o.printConfig {
		return printConfig(stdout, o)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return serve(ctx, o, stdout, stderr)
}

// serve runs the daemon until ctx is cancelled.
func serve(ctx context.Context, o options, stdout, stderr io.Writer) error {
	started := time.Now()
	logger, err := newLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		return err
	}
	services, err := roleServices(o.role)
	if err != nil {
		return err
	}
	if err := checkHTTPAddr(o.httpAddr, o.allowRemote, o.tlsCert != "" || o.tlsKey != ""); err != nil {
		return err
	}
	tlsConf, err := tlsConfig(o.tlsCert, o.tlsKey)
	if err != nil {
		return err
	}
	b := x0x.NewBuilder().WithDataDir(o.dataDir).WithBindAddr(o.listen).WithNetwork(o.network).WithLogger(logger).
		WithServices(services)
	if o.bootstrap != "" {
		b.WithBootstrap(strings.Split(o.bootstrap, ",")...)
	}
	var pass []byte
	if o.passFile != "" {
		p, err := os.ReadFile(o.passFile)
		if err != nil {
			return err
		}
		pass = []byte(strings.TrimRight(string(p), "\r\n"))
		b.WithPassphrase(pass)
	}
	agent, err := b.Build(ctx)
	if err != nil {
		return err
	}
	defer agent.Close()

	// The local API, behind the bearer token of the agent's data
	// directory (created at the first start).
	token, err := localapi.LoadOrCreateToken(agent.DataDir())
	if err != nil {
		return err
	}
	tokenFile := filepath.Join(agent.DataDir(), localapi.TokenFile)
	if abs, err := filepath.Abs(tokenFile); err == nil {
		tokenFile = abs
	}
	api, err := localapi.New(localapi.Config{
		Agent: agent, Token: token, Role: o.role, Started: started, KeyPassphrase: pass, Logger: logger, AllowRemote: o.allowRemote,
		Metrics: metricsHandler(newMetrics(agent.Metrics, started, logger), logger),
	})
	if err != nil {
		return err
	}
	defer api.Close() // before agent.Close (deferred calls run last first)

	ln, err := net.Listen("tcp", o.httpAddr)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	if err := checkBound(ln, o.allowRemote); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler: api.Handler(), TLSConfig: tlsConf,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	httpErr := make(chan error, 1)
	scheme := "http"
	if tlsConf != nil {
		scheme = "https"
		go func() { httpErr <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { httpErr <- srv.Serve(ln) }()
	}

	// Log the agent's events; the stream ends when the agent closes.
	events, err := agent.Events()
	if err != nil {
		srv.Close()
		return err
	}
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		for {
			ev, err := events.Next(context.Background())
			if errors.Is(err, x0x.ErrLagged) {
				logger.Warn("events dropped while logging fell behind", "err", err)
				continue
			}
			if err != nil {
				return
			}
			logEvent(logger, ev)
		}
	}()
	defer func() { events.Close(); <-logged }()

	if err := agent.JoinNetwork(ctx); err != nil && !errors.Is(err, x0x.ErrNoBootstrap) {
		logger.Warn("joining the network failed; peers will be retried", "err", err)
	}
	// The token file's path, never the token. It comes last: the rest of
	// the line is the path.
	fmt.Fprintf(stdout, "x0xd ready role=%s machine=%s agent=%s udp=%s %s=%s token_file=%s\n",
		o.role, agent.MachineID(), agent.AgentID(), agent.Addr(), scheme, ln.Addr(), tokenFile)
	logger.Info("x0xd ready", "role", o.role, "machine", agent.MachineID().String(), "udp", agent.Addr(),
		scheme, ln.Addr().String(), "token_file", tokenFile, "version", x0x.Version)

	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-httpErr:
		serveErr = fmt.Errorf("http server: %w", err)
	}
	// The API first (its streams end, so Shutdown need not wait for them),
	// then the HTTP server, then the agent.
	api.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(serveErr, srv.Shutdown(shutdownCtx), agent.Close())
}

func logEvent(l *slog.Logger, ev x0x.Event) {
	switch ev.Kind {
	case x0x.EventDirectMessage:
		l.Info("direct message", "from", ev.From.Short(), "bytes", len(ev.Payload))
	case x0x.EventPeerConnected:
		l.Info("peer connected", "peer", ev.Peer.Short(), "addr", ev.Addr, "agents", len(ev.Agents))
	case x0x.EventPeerDisconnected:
		l.Info("peer disconnected", "peer", ev.Peer.Short(), "err", ev.Err)
	case x0x.EventNatTypeDetected:
		l.Info("NAT type detected", "nat", ev.NAT, "external", ev.Addr)
	default:
		l.Debug("event", "kind", ev.Kind.String(), "peer", ev.Peer.Short(), "addr", ev.Addr, "err", ev.Err)
	}
}
