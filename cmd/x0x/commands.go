package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/saorsa-labs/x0x-go/cmd/internal/apiclient"
	"github.com/saorsa-labs/x0x-go/cmd/internal/localapi"
)

// command is one command (or a group of subcommands, subs).
type command struct {
	name    string
	args    string // the synopsis after the name
	summary string
	help    string // more text for x0x help COMMAND
	subs    []*command
	// setup registers the command's flags on fs and returns the function
	// that runs it with its positional arguments.
	setup func(c *cli, fs *flag.FlagSet) func(args []string) error
	// passThrough: the arguments after "--" are the command's own
	// (daemon start's x0xd flags).
	passThrough bool
	// completeArgs names what the positional arguments are, for the
	// completion scripts: "files", or a list of words.
	completeArgs []string
}

// commands is x0x's command tree, in the order help lists it.
var commands []*command

func init() {
	commands = []*command{
		{name: "id", summary: "this daemon's agent: agent and machine ID, dial address, NAT type", setup: cmdID,
			help: "The dial address (machine-id@host:port) is what another daemon passes to x0x connect."},
		{name: "peers", summary: "the connected peers", setup: cmdPeers},
		{name: "connect", args: "ADDR", summary: "connect to a peer (host:port or machine-id@host:port); prints its ID", setup: cmdConnect,
			help: "ADDR is another daemon's dial address (x0x id on that machine) or a host:port; the\n" +
				"connection is post-quantum authenticated and the daemon joins the overlay through it."},
		{name: "pub", args: "TOPIC [MSG|-]", summary: "publish a message on a topic; prints its ID", setup: cmdPub,
			help: "Without MSG, or with -, the message is stdin (its exact bytes); --file FILE reads it from\n" +
				"a file; --lines publishes each line of stdin as a message of its own. A message is at\n" +
				"most 1 MiB. Start MSG with -- if it begins with a dash: x0x pub TOPIC -- -1."},
		{name: "sub", args: "TOPIC", summary: "print a topic's messages as they arrive, one a line", setup: cmdSub,
			help: "Each line is \"<time> <sender's first 8 hex digits> <text>\" (a payload that is not UTF-8 is\n" +
				"printed as base64:<base64>; text with control characters is quoted); --json prints the\n" +
				"API's message objects, one a line, with their cursors. The stream alone makes the daemon\n" +
				"follow the topic only while it is open; x0x follow TOPIC makes it follow the topic from\n" +
				"then on and keep its recent messages, so that a later sub --after CURSOR starts after\n" +
				"that cursor (0: the oldest kept) instead of with the messages that arrive from now on\n" +
				"(a cursor from before a daemon restart or an unfollow starts again with the oldest kept).\n" +
				"x0x unsub TOPIC stops following it. Ends with exit code 0 on SIGINT or SIGTERM, 5 if the\n" +
				"daemon drops this client as too slow (the message says which --after resumes, past the\n" +
				"messages lost)."},
		{name: "follow", args: "TOPIC", summary: "make the daemon follow a topic from now on and keep its messages (for sub --after)", setup: cmdFollow,
			help: "Without it, x0x sub makes the daemon follow a topic only while the stream is open, and\n" +
				"what arrives between two subs is not kept. x0x unsub TOPIC stops following it."},
		{name: "topics", summary: "the topics the daemon follows", setup: cmdTopics},
		{name: "unsub", args: "TOPIC", summary: "stop following a topic (ends its streams)", setup: cmdUnsub},
		{name: "send", args: "AGENT MSG|-", summary: "send a direct message to an agent", setup: cmdSend,
			help: "AGENT is the agent ID (64 hex digits). With MSG -, the message is stdin (its exact bytes);\n" +
				"--file FILE reads it from a file. Prints nothing (--json: the API's {\"ok\":true})."},
		{name: "inbox", summary: "the direct messages received, one a line", setup: cmdInbox,
			help: "Prints the messages after --after CURSOR (default: all the daemon still keeps, read in\n" +
				"pages; --limit N prints at most N), one a line like sub's; --json prints the API's message\n" +
				"objects (each has its cursor: pass the last one as --after next time). --wait D waits up\n" +
				"to D for a message when there is none. --follow keeps printing messages as they arrive,\n" +
				"from now on or after --after CURSOR, like sub (and ends like it: exit code 0 on SIGINT, 5\n" +
				"if dropped as too slow)."},
		{name: "tasks", summary: "shared task lists", subs: []*command{
			{name: "new", args: "NAME", summary: "create a task list; prints its ID", setup: cmdTasksNew,
				help: "--open lets every agent that knows the list's ID write to it (default: only this agent)."},
			{name: "join", args: "LIST", summary: "join a task list another agent shared (its full ID)", setup: cmdTasksJoin},
			{name: "add", args: "LIST TITLE", summary: "add a task; prints its ID", setup: cmdTasksAdd},
			{name: "claim", args: "LIST TASK", summary: "claim a task", setup: cmdTasksClaim},
			{name: "done", args: "LIST TASK", summary: "complete a task this agent claimed", setup: cmdTasksDone},
			{name: "ls", args: "[LIST]", summary: "the task lists, or one list's tasks", setup: cmdTasksLs},
			{name: "watch", args: "LIST", summary: "print a list's changes as they happen, one a line", setup: cmdTasksWatch},
		}, help: "LIST is a list's ID or a unique prefix (8+ hex digits) of a list the daemon stores; TASK is\n" +
			"a task's ID or a unique prefix of 8+ hex digits (x0x tasks ls LIST shows 8)."},
		{name: "identity", summary: "export or import the agent key", subs: []*command{
			{name: "export", summary: "export the agent key, sealed with a passphrase", setup: cmdIdentityExport,
				help: "The passphrase comes from --passphrase-file FILE or $X0X_PASSPHRASE (x0x does not prompt\n" +
					"for it). Writes the sealed bundle, in base64, to --out FILE (mode 0600) or stdout."},
			{name: "import", args: "FILE|-", summary: "make an exported key the daemon's agent at its next start", setup: cmdIdentityImport,
				completeArgs: []string{"files"},
				help: "FILE holds a bundle from x0x identity export (base64 or raw). The passphrase comes from\n" +
					"--passphrase-file FILE or $X0X_PASSPHRASE. --replace is needed when the data directory\n" +
					"has an agent key already (it is kept beside the new one). Restart the daemon then:\n" +
					"x0x daemon stop && x0x daemon start."},
		}},
		{name: "daemon", summary: "run x0xd in the background, stop it, check it", subs: []*command{
			{name: "start", args: "[x0xd flags]", summary: "start x0xd in the background", setup: cmdDaemonStart, passThrough: true,
				help: "Starts the x0xd next to this x0x executable, in $PATH or at --x0xd PATH, with -data-dir\n" +
					"DIR, and -http ADDR when --api ADDR or $X0X_API is given (else x0xd's own setting, by\n" +
					"default 127.0.0.1:12600). Its output goes to DIR/x0xd.log, its process ID to\n" +
					"DIR/x0xd.pid. x0xd's -listen, -bootstrap, -network, -role, -passphrase-file, -http and -v\n" +
					"flags may be given here; others after --. Waits until the daemon is ready (up to 30 s)\n" +
					"and prints its API address, agent and machine. Refuses when one runs for DIR already."},
			{name: "stop", summary: "stop the x0xd started by x0x daemon start", setup: cmdDaemonStop,
				help: "Sends SIGTERM to the process in <data-dir>/x0xd.pid and waits up to 15 s for it to exit.\n" +
					"Exit code 3 if it was not running."},
			{name: "status", summary: "check that the daemon answers (exit code 0) or not (3)", setup: cmdDaemonStatus},
		}},
		{name: "completion", args: "bash|zsh|fish", summary: "print a shell completion script", setup: cmdCompletion,
			completeArgs: []string{"bash", "zsh", "fish"},
			help: "bash: source <(x0x completion bash)   zsh: x0x completion zsh > \"${fpath[1]}/_x0x\"\n" +
				"fish: x0x completion fish > ~/.config/fish/completions/x0x.fish"},
		{name: "mcp", summary: "serve the Model Context Protocol on stdin/stdout (for LLM agents)", setup: cmdMCP},
		{name: "version", summary: "print x0x's version", setup: cmdVersion},
		{name: "help", args: "[COMMAND]", summary: "print help", setup: cmdHelp},
	}
	// help's completions: the command names.
	for _, cmd := range commands {
		commands[len(commands)-1].completeArgs = append(commands[len(commands)-1].completeArgs, cmd.name)
	}
}

// lookup finds the command args name and returns it, its path ("tasks
// add") and the remaining arguments.
func lookup(args []string) (*command, string, []string, error) {
	list, path := commands, ""
	for {
		name := args[0]
		var found *command
		for _, cmd := range list {
			if cmd.name == name {
				found = cmd
			}
		}
		if found == nil {
			if path == "" {
				return nil, "", nil, &exitError{code: exitUsage, msg: fmt.Sprintf("unknown command %q", name), hint: "see x0x help"}
			}
			return nil, "", nil, &exitError{code: exitUsage, msg: fmt.Sprintf("unknown command %q", path+" "+name),
				hint: fmt.Sprintf("%s has: %s", path, subNames(list))}
		}
		path = strings.TrimSpace(path + " " + name)
		args = args[1:]
		if found.subs == nil {
			return found, path, args, nil
		}
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return nil, "", nil, &exitError{code: exitUsage, msg: fmt.Sprintf("%s needs a subcommand: %s", path, subNames(found.subs)),
				hint: "see x0x help " + path}
		}
		list = found.subs
	}
}

func subNames(list []*command) string {
	var names []string
	for _, cmd := range list {
		names = append(names, cmd.name)
	}
	return strings.Join(names, ", ")
}

// usage prints the overview of the commands, global flags and exit codes.
func (c *cli) usage(w io.Writer) {
	fmt.Fprint(w, "x0x: the command line of an x0x node (talks to x0xd, the local daemon)\n\n")
	fmt.Fprint(w, "usage: x0x [global flags] COMMAND [flags] [arguments]\n\ncommands:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, cmd := range commands {
		if cmd.subs == nil {
			fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(cmd.name+" "+cmd.args), cmd.summary)
			continue
		}
		for _, sub := range cmd.subs {
			fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(cmd.name+" "+sub.name+" "+sub.args), sub.summary)
		}
	}
	tw.Flush()
	fmt.Fprint(w, "\nglobal flags (before or after the command):\n")
	fs := flag.NewFlagSet("x0x", flag.ContinueOnError)
	g := *c
	g.addGlobals(fs)
	printFlags(w, fs)
	fmt.Fprint(w, exitCodesHelp)
	fmt.Fprint(w, "\nx0x help COMMAND describes a command.\n")
}

const exitCodesHelp = `
exit codes:
  0    success
  1    the call failed: the daemon's error is printed as "x0x: <message> (<code>)"
  2    usage error
  3    the daemon cannot be reached (not running, or no token file): x0x daemon start
  4    unauthorized: the token is not the daemon's
  5    a stream ended because the daemon dropped this client as too slow
  130  interrupted (streams exit 0 on SIGINT/SIGTERM instead)
`

// commandHelp prints a command's help.
func (c *cli) commandHelp(w io.Writer, cmd *command, path string) {
	if cmd.subs != nil {
		fmt.Fprintf(w, "x0x %s: %s\n\n", path, cmd.summary)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, sub := range cmd.subs {
			fmt.Fprintf(tw, "  x0x %s\t%s\n", strings.TrimSpace(path+" "+sub.name+" "+sub.args), sub.summary)
		}
		tw.Flush()
		if cmd.help != "" {
			fmt.Fprintf(w, "\n%s\n", cmd.help)
		}
		fmt.Fprintf(w, "\nx0x help %s SUBCOMMAND describes one.\n", path)
		return
	}
	fmt.Fprintf(w, "usage: x0x %s [flags]\n\n%s.\n", strings.TrimSpace(path+" "+cmd.args), upperFirst(cmd.summary))
	if cmd.help != "" {
		fmt.Fprintf(w, "\n%s\n", cmd.help)
	}
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	g := *c
	cmd.setup(&g, fs)
	if hasFlags(fs) {
		fmt.Fprint(w, "\nflags:\n")
		printFlags(w, fs)
	}
	fmt.Fprint(w, "\nand the global flags (x0x help).\n")
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// printFlags lists fs's flags, with two dashes.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		arg := "--" + f.Name
		if name != "" {
			arg += " " + name
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			def = " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s%s\n", arg, usage, def)
	})
	tw.Flush()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func cmdHelp(c *cli, fs *flag.FlagSet) func([]string) error {
	return func(args []string) error {
		if len(args) == 0 {
			c.usage(c.stdout)
			return nil
		}
		cmd, path, rest, err := lookupHelp(args)
		if err != nil {
			return err
		}
		if len(rest) > 0 {
			return usageError("unexpected arguments %q", rest)
		}
		c.commandHelp(c.stdout, cmd, path)
		return nil
	}
}

// lookupHelp is lookup that accepts a command group without a subcommand.
func lookupHelp(args []string) (*command, string, []string, error) {
	for _, cmd := range commands {
		if cmd.name == args[0] && cmd.subs != nil && len(args) == 1 {
			return cmd, cmd.name, nil, nil
		}
	}
	return lookup(args)
}

// ---- the client ----------------------------------------------------------

func tokenFileIn(dir string) string { return filepath.Join(dir, localapi.TokenFile) }

// client returns a client of the daemon with the token of the data
// directory (or --token-file); a usage error for an --api address over
// which the token would cross the network in clear text (see checkAPI).
func (c *cli) client() (*apiclient.Client, error) {
	if err := c.checkAPI(); err != nil {
		return nil, err
	}
	if _, err := c.dataDir(); err != nil && c.g.tokenFile == "" {
		return nil, &exitError{code: exitUnreachable, msg: err.Error()}
	}
	path := c.tokenPath()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &exitError{code: exitUnreachable, msg: fmt.Sprintf("no API token: %v", err),
			hint: "is x0xd running with this data directory? x0x daemon start starts it (or pass --data-dir DIR or --token-file FILE)"}
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return nil, &exitError{code: exitUnreachable, msg: fmt.Sprintf("the token file %s is empty", path)}
	}
	cl, err := apiclient.NewChecked(c.g.api, tok, c.httpClient())
	if err != nil {
		return nil, apiError(err)
	}
	return cl, nil
}

// checkAPI refuses (a usage error) an --api address that is plain http to
// a host that is not loopback: the bearer token would cross the network
// in clear text (apiclient.CheckBase).
func (c *cli) checkAPI() error {
	if err := apiclient.CheckBase(c.g.api); err != nil {
		return apiError(err)
	}
	return nil
}

// apiError is the usage error for an --api address apiclient refuses.
func apiError(err error) error {
	return &exitError{code: exitUsage, msg: "--api: " + err.Error(),
		hint: "a daemon on another machine serves its API over TLS only (x0xd -http-allow-remote): pass --api https://HOST:PORT"}
}

// httpClient is the invocation's HTTP client: its own transport, whose
// idle connections run closes at the end.
func (c *cli) httpClient() *http.Client {
	if c.tr == nil {
		c.tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	return &http.Client{Transport: c.tr}
}
