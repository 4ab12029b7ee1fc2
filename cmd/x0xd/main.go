// Command x0xd runs an x0x node daemon.
//
//	x0xd [-data-dir DIR] [-listen 0.0.0.0:12000] [-http 127.0.0.1:12600]
//	     [-bootstrap ADDR,...] [-network local|testnet]
//	     [-role bootstrap|coordinator|relay[,...]]
//
// It serves GET /health (JSON) and GET /metrics (Prometheus text) on the
// HTTP address, keeps its keys and peer cache in the data directory, prints
// one "x0xd ready ..." line on stdout once it is serving, and shuts down
// gracefully on SIGTERM or SIGINT.
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
	"strings"
	"syscall"
	"time"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

type options struct {
	dataDir   string
	listen    string
	httpAddr  string
	bootstrap string
	network   string
	role      string
	passFile  string
	verbose   bool
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "x0xd:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("x0xd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.dataDir, "data-dir", "", "data directory for keys and peer cache (default $X0X_HOME or ~/.x0x)")
	fs.StringVar(&o.listen, "listen", fmt.Sprintf("0.0.0.0:%d", x0x.DefaultPort), "UDP address for QUIC")
	fs.StringVar(&o.httpAddr, "http", "127.0.0.1:12600", "HTTP address for /health and /metrics")
	fs.StringVar(&o.bootstrap, "bootstrap", "", "comma-separated bootstrap peers (host:port or peerid@host:port)")
	fs.StringVar(&o.network, "network", x0x.NetworkLocal, "network whose built-in seeds to use: local (none) or testnet (the roadmap's public seeds; they answer only if they run this implementation, whose wire protocol is not the Rust x0x's)")
	fs.StringVar(&o.role, "role", "bootstrap", "node roles, comma-separated: bootstrap (the default: a node others join through), "+
		"coordinator (passes hole-punch requests between its peers), relay (forwards connections that cannot punch); "+
		"offer coordinator and relay only on a publicly reachable address")
	fs.StringVar(&o.passFile, "passphrase-file", "", "file holding a passphrase that seals the key files")
	fs.BoolVar(&o.verbose, "v", false, "log debug messages to stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if _, err := roleServices(o.role); err != nil {
		return o, err
	}
	return o, nil
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
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return serve(ctx, o, stdout, stderr)
}

// serve runs the daemon until ctx is cancelled.
func serve(ctx context.Context, o options, stdout, stderr io.Writer) error {
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	services, err := roleServices(o.role)
	if err != nil {
		return err
	}
	b := x0x.NewBuilder().WithDataDir(o.dataDir).WithBindAddr(o.listen).WithNetwork(o.network).WithLogger(logger).
		WithServices(services)
	if o.bootstrap != "" {
		b.WithBootstrap(strings.Split(o.bootstrap, ",")...)
	}
	if o.passFile != "" {
		pass, err := os.ReadFile(o.passFile)
		if err != nil {
			return err
		}
		b.WithPassphrase([]byte(strings.TrimRight(string(pass), "\r\n")))
	}
	agent, err := b.Build(ctx)
	if err != nil {
		return err
	}
	defer agent.Close()

	ln, err := net.Listen("tcp", o.httpAddr)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	started := time.Now()
	srv := &http.Server{Handler: newHandler(agent, o.role, started), ReadHeaderTimeout: 5 * time.Second}
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(ln) }()

	// Log the agent's events; the stream ends when the agent closes.
	events, err := agent.Events()
	if err != nil {
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
	fmt.Fprintf(stdout, "x0xd ready role=%s machine=%s agent=%s udp=%s http=%s\n",
		o.role, agent.MachineID(), agent.AgentID(), agent.Addr(), ln.Addr())

	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-httpErr:
		return fmt.Errorf("http server: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(srv.Shutdown(shutdownCtx), agent.Close())
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
