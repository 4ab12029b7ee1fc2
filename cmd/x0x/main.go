// Command x0x is the command line of an x0x node: it talks to the local
// daemon, x0xd, through the daemon's HTTP API (the bearer token in the
// data directory's api-token file) and can start and stop the daemon.
//
//	x0x [global flags] COMMAND [flags] [arguments]
//
// Global flags go before or after the command:
//
//	--api ADDR         the daemon's HTTP address (default $X0X_API, else 127.0.0.1:12600);
//	                   plain http (host:port or http://) only to a loopback
//	                   host, else https://, so that the token does not cross
//	                   a network in clear text (exit code 2 otherwise)
//	--data-dir DIR     the daemon's data directory (default $X0X_DATA_DIR, else
//	                   $X0X_HOME, else ~/.x0x: x0xd's default)
//	--token-file FILE  the API token (default DIR/api-token)
//	--json             print the API's JSON: one value per command; one object
//	                   per line for the streams (sub, inbox, tasks watch);
//	                   the daemon commands print x0x's own object (running,
//	                   pid, http_addr, data_dir, log_file, and /health's
//	                   JSON as health)
//	--timeout D        how long one call may take (default 30s; not streams)
//
// Commands:
//
//	id                       this daemon's agent: agent and machine ID, dial address, NAT type
//	peers                    the connected peers
//	connect ADDR             connect to a peer (host:port or machine-id@host:port)
//	pub TOPIC [MSG|-]        publish a message (no MSG or -: stdin); prints its ID
//	sub TOPIC                print a topic's messages as they arrive, one a line
//	                         (the daemon follows the topic only while the stream is open)
//	follow TOPIC             make the daemon follow a topic and keep its messages (for sub --after)
//	topics                   the topics the daemon follows
//	unsub TOPIC              stop following a topic
//	send AGENT MSG|-         send a direct message to an agent
//	inbox                    the direct messages the daemon keeps, one a line
//	tasks new NAME           create a task list; prints its ID
//	tasks join LIST          join a task list another agent shared
//	tasks add LIST TITLE     add a task; prints its ID
//	tasks claim LIST TASK    claim a task
//	tasks done LIST TASK     complete a task this agent claimed
//	tasks ls [LIST]          the task lists, or one list's tasks
//	tasks watch LIST         print a list's changes as they happen
//	identity export          export the agent key, sealed with a passphrase
//	identity import FILE     make an exported key the daemon's agent (at its next start)
//	daemon start|stop|status run x0xd in the background, stop it, check it
//	completion bash|zsh|fish print a shell completion script
//	mcp                      serve the Model Context Protocol on stdin/stdout
//	version                  print x0x's version
//	help [COMMAND]           print help
//
// Exit codes:
//
//	0    success
//	1    the call failed: the daemon answered with an error, printed as
//	     "x0x: <message> (<code>)" on stderr, the code being the API's
//	     (e.g. task_done, no_route, not_writer); or another failure
//	2    usage error: an unknown command or flag, missing arguments
//	3    the daemon cannot be reached: nothing answers at the address
//	     (connection refused), or there is no token file; x0x daemon start
//	     starts it
//	4    unauthorized: the token is not the daemon's
//	5    the daemon ended a stream (sub, inbox --follow, tasks watch)
//	     because this client read too slowly; resume with --after CURSOR
//	130  interrupted (SIGINT or SIGTERM); the streams exit 0 instead
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/saorsa-labs/x0x-go/cmd/internal/apiclient"
)

// Exit codes (see the package comment).
const (
	exitOK           = 0
	exitFailed       = 1
	exitUsage        = 2
	exitUnreachable  = 3
	exitUnauthorized = 4
	exitSlow         = 5
	exitInterrupted  = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, a second one gets its default action.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli is one invocation of x0x.
type cli struct {
	ctx    context.Context
	env    func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	g      globals
	tr     *http.Transport // httpClient's, made on first use
	apiSet bool            // --api or $X0X_API was given
}

// globals are the flags every command accepts.
type globals struct {
	api       string
	dataDir   string
	tokenFile string
	json      bool
	timeout   time.Duration
}

// run runs x0x with args (without the program name) and returns the exit
// code. env reads the environment; ctx ending is an interruption.
func run(ctx context.Context, args []string, env func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{ctx: ctx, env: env, stdin: stdin, stdout: stdout, stderr: stderr}
	c.g.api, c.apiSet = env("X0X_API"), env("X0X_API") != ""
	if c.g.api == "" {
		c.g.api = apiclient.DefaultAddr
	}
	c.g.timeout = 30 * time.Second
	defer func() {
		if c.tr != nil {
			c.tr.CloseIdleConnections()
		}
	}()
	return c.main(args)
}

// addGlobals registers the global flags on fs, with their current values
// as defaults (fs may be the second set they are registered on).
func (c *cli) addGlobals(fs *flag.FlagSet) {
	fs.StringVar(&c.g.api, "api", c.g.api, "the daemon's HTTP address `ADDR` ($X0X_API; https:// unless it is loopback)")
	fs.StringVar(&c.g.dataDir, "data-dir", c.g.dataDir, "the daemon's data directory `DIR` (default $X0X_DATA_DIR, else $X0X_HOME, else ~/.x0x)")
	fs.StringVar(&c.g.tokenFile, "token-file", c.g.tokenFile, "the API token's `FILE` (default DIR/api-token)")
	fs.BoolVar(&c.g.json, "json", c.g.json, "print JSON (one object a line for streams)")
	fs.DurationVar(&c.g.timeout, "timeout", c.g.timeout, "how long one call may take, `D` (not streams)")
}

func (c *cli) main(args []string) int {
	gfs := flag.NewFlagSet("x0x", flag.ContinueOnError)
	gfs.SetOutput(io.Discard)
	c.addGlobals(gfs)
	if err := gfs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.usage(c.stdout)
			return exitOK
		}
		return c.exit(&exitError{code: exitUsage, msg: err.Error(), hint: "see x0x help"})
	}
	rest := gfs.Args()
	if len(rest) == 0 {
		c.usage(c.stderr)
		return exitUsage
	}
	cmd, path, rest, err := lookup(rest)
	if err != nil {
		return c.exit(err)
	}
	fs := flag.NewFlagSet("x0x "+path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	runCmd := cmd.setup(c, fs)
	c.addGlobals(fs)
	pos, err := parseInterspersed(fs, rest, cmd.passThrough)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.commandHelp(c.stdout, cmd, path)
			return exitOK
		}
		return c.exit(&exitError{code: exitUsage, msg: err.Error(), hint: usageLine(cmd, path)})
	}
	if c.g.timeout <= 0 {
		return c.exit(usageError("--timeout must be positive"))
	}
	visit := func(f *flag.Flag) { c.apiSet = c.apiSet || f.Name == "api" }
	gfs.Visit(visit)
	fs.Visit(visit)
	err = runCmd(pos)
	var ee *exitError
	if errors.As(err, &ee) && ee.code == exitUsage && ee.hint == "" {
		ee.hint = usageLine(cmd, path)
	}
	return c.exit(err)
}

// usageLine is the hint of a usage error.
func usageLine(cmd *command, path string) string {
	return "usage: x0x " + strings.TrimSpace(path+" "+cmd.args) + " (x0x help " + path + ")"
}

// parseInterspersed parses flags anywhere among the positional arguments
// (which it returns); everything after "--" is positional. With
// passThrough, the arguments after "--" are returned after a "--" of
// their own, so the command can tell them apart.
func parseInterspersed(fs *flag.FlagSet, args []string, passThrough bool) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			if passThrough {
				pos = append(pos, "--")
			}
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// dataDir returns the data directory: --data-dir, else x0xd's default:
// $X0X_DATA_DIR, $X0X_HOME or ~/.x0x.
func (c *cli) dataDir() (string, error) {
	if c.g.dataDir != "" {
		return c.g.dataDir, nil
	}
	for _, v := range []string{"X0X_DATA_DIR", "X0X_HOME"} {
		if d := c.env(v); d != "" {
			return d, nil
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no --data-dir, no $X0X_HOME and no home directory: %w", err)
	}
	return filepath.Join(home, ".x0x"), nil
}

// hostPort returns the API address without a scheme.
func (c *cli) hostPort() string {
	a := c.g.api
	if _, rest, ok := strings.Cut(a, "://"); ok {
		a = rest
	}
	return strings.TrimRight(a, "/")
}

// callContext returns a context for one call (bounded by --timeout).
func (c *cli) callContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, c.g.timeout)
}

// nargs checks the number of positional arguments.
func nargs(args []string, lo, hi int) error {
	switch {
	case len(args) < lo:
		return usageError("missing arguments")
	case hi >= 0 && len(args) > hi:
		return usageError("unexpected arguments %q", args[hi:])
	}
	return nil
}
