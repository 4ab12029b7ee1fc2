package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// x0xd's settings come from four places; a value from a higher one wins:
// command-line flags, X0X_* environment variables, the config file (-config
// or X0X_CONFIG), the defaults. Every setting is a flag; its variable is
// X0X_ + the flag name in upper case with "-" as "_" (envName), and its
// name in the config file is the flag name.

// setting is one configurable value of the daemon.
type setting struct {
	name   string // the flag name, also its name in the config file
	def    string // the default ("true"/"false" for a bool)
	isBool bool
	usage  string
}

// settings lists, in the order -print-config prints them, every setting
// that flags, the environment and the config file can give. (-config,
// -print-config and -v are flags only.)
var settings = []setting{
	{name: "data-dir", usage: "data directory for the keys, peer cache, task lists and the local API's token file api-token " +
		"(default $X0X_HOME, else ~/.x0x; X0X_DATA_DIR beats X0X_HOME)"},
	{name: "listen", def: fmt.Sprintf("0.0.0.0:%d", x0x.DefaultPort), usage: "UDP address for QUIC"},
	{name: "http", def: "127.0.0.1:12600", usage: "TCP address of the local API (/health, /metrics, the agent card, /v1/...); " +
		"must be a loopback address unless -http-allow-remote and TLS are given"},
	{name: "http-allow-remote", def: "false", isBool: true, usage: "allow a non-loopback -http address; requires -http-tls-cert and -http-tls-key"},
	{name: "http-tls-cert", usage: "PEM certificate (chain) file: serve the local API over TLS 1.3 (with -http-tls-key)"},
	{name: "http-tls-key", usage: "PEM private key file of -http-tls-cert"},
	{name: "bootstrap", usage: "comma-separated bootstrap peers (host:port or peerid@host:port)"},
	{name: "network", def: x0x.NetworkLocal, usage: "network whose built-in seeds to use: local (none) or testnet (the roadmap's public seeds; " +
		"they answer only if they run this implementation, whose wire protocol is not the Rust x0x's)"},
	{name: "role", def: "bootstrap", usage: "node roles, comma-separated: bootstrap (the default: a node others join through), " +
		"coordinator (passes hole-punch requests between its peers), relay (forwards connections that cannot punch); " +
		"offer coordinator and relay only on a publicly reachable address"},
	{name: "passphrase-file", usage: "file holding a passphrase that seals the key files"},
	{name: "log-format", def: "text", usage: "log format on stderr: text or json (log/slog)"},
	{name: "log-level", def: "info", usage: "lowest level logged: debug, info, warn or error (-v is -log-level debug)"},
}

func lookupSetting(name string) (setting, bool) {
	i := slices.IndexFunc(settings, func(s setting) bool { return s.name == name })
	if i < 0 {
		return setting{}, false
	}
	return settings[i], true
}

// envName is the environment variable of a flag: X0X_ + its name in upper
// case with "-" as "_".
func envName(flagName string) string {
	return "X0X_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// homeEnv is the library's own data-directory variable; x0xd reads it as a
// second, weaker name of X0X_DATA_DIR.
const homeEnv = "X0X_HOME"

// source says where a value came from.
type source int

const (
	fromDefault source = iota
	fromFile
	fromEnv
	fromFlag
)

func (s source) String() string {
	return [...]string{"default", "file", "env", "flag"}[s]
}

// value is a setting's effective value and where it came from.
type value struct {
	val   string
	src   source
	where string // e.g. "default", "flag -http", "env X0X_HTTP", "file x0xd.conf line 3"
}

// options is the daemon's effective configuration.
type options struct {
	dataDir     string
	listen      string
	httpAddr    string
	allowRemote bool
	tlsCert     string
	tlsKey      string
	bootstrap   string
	network     string
	role        string
	passFile    string
	logFormat   string // "" is text
	logLevel    string // "" is info

	printConfig bool
	configFile  string
	values      map[string]value // every setting, for -print-config
}

// parseConfig builds the effective configuration from the command line,
// the environment (getenv) and the config file. -h prints the usage and
// returns flag.ErrHelp.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("x0xd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, s := range settings {
		usage := s.usage + " [env " + envName(s.name) + "]"
		if s.isBool {
			fs.Bool(s.name, s.def == "true", usage)
		} else {
			fs.String(s.name, s.def, usage)
		}
	}
	configFlag := fs.String("config", "", "`FILE` of settings, one \"name = value\" per line (see above) [env X0X_CONFIG]")
	printConfig := fs.Bool("print-config", false, "print the effective configuration in the config file format, each value's origin in a comment, and exit")
	verbose := fs.Bool("v", false, "log debug messages (the same as -log-level debug)")
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	flags := map[string]string{}
	fs.Visit(func(f *flag.Flag) { flags[f.Name] = f.Value.String() })

	if *verbose {
		if lvl, ok := flags["log-level"]; ok && lvl != "debug" {
			return options{}, fmt.Errorf("-v is -log-level debug, but -log-level %s is given too", lvl)
		}
		flags["log-level"] = "debug"
	}

	configFile, configFrom := *configFlag, "flag -config"
	if _, ok := flags["config"]; !ok {
		configFile, configFrom = getenv("X0X_CONFIG"), "env X0X_CONFIG"
	}
	var file map[string]value
	if _, set := flags["config"]; set || configFile != "" {
		if configFile == "" {
			return options{}, fmt.Errorf("%s: empty file name", configFrom)
		}
		var err error
		if file, err = readConfigFile(configFile); err != nil {
			return options{}, err
		}
	}

	values := make(map[string]value, len(settings))
	for _, s := range settings {
		v := value{val: s.def, src: fromDefault, where: "default"}
		if fv, ok := file[s.name]; ok {
			v = fv
		}
		if s.name == "data-dir" {
			if e := getenv(homeEnv); e != "" {
				v = value{val: e, src: fromEnv, where: "env " + homeEnv}
			}
		}
		if e := getenv(envName(s.name)); e != "" {
			v = value{val: e, src: fromEnv, where: "env " + envName(s.name)}
		}
		if f, ok := flags[s.name]; ok {
			v = value{val: f, src: fromFlag, where: "flag -" + s.name}
			if s.name == "log-level" && *verbose {
				v.where = "flag -v"
			}
		}
		values[s.name] = v
	}
	o, err := optionsFrom(values)
	if err != nil {
		return options{}, err
	}
	o.printConfig, o.configFile = *printConfig, configFile
	return o, nil
}

// optionsFrom checks every value and builds the options; an error names
// the setting and where its value came from.
func optionsFrom(values map[string]value) (options, error) {
	o := options{values: values}
	bad := func(name string, format string, a ...any) error {
		v := values[name]
		return fmt.Errorf("-%s %q (%s): %s", name, v.val, v.where, fmt.Sprintf(format, a...))
	}
	for _, s := range settings {
		v := values[s.name].val
		if strings.ContainsAny(v, "\r\n") {
			return o, bad(s.name, "a value must be one line")
		}
		if v != strings.TrimSpace(v) {
			return o, bad(s.name, "leading or trailing white space")
		}
		var b bool
		if s.isBool {
			var err error
			if b, err = strconv.ParseBool(v); err != nil {
				return o, bad(s.name, "want true or false")
			}
		}
		switch s.name {
		case "data-dir":
			o.dataDir = v
		case "listen":
			o.listen = v
		case "http":
			o.httpAddr = v
		case "http-allow-remote":
			o.allowRemote = b
		case "http-tls-cert":
			o.tlsCert = v
		case "http-tls-key":
			o.tlsKey = v
		case "bootstrap":
			o.bootstrap = v
		case "network":
			o.network = v
		case "role":
			if _, err := roleServices(v); err != nil {
				return o, bad(s.name, "%v", err)
			}
			o.role = v
		case "passphrase-file":
			o.passFile = v
		case "log-format":
			if v != "text" && v != "json" {
				return o, bad(s.name, "want text or json")
			}
			o.logFormat = v
		case "log-level":
			if _, err := parseLevel(v); err != nil {
				return o, bad(s.name, "%v", err)
			}
			o.logLevel = v
		default:
			panic("x0xd: setting without a field: " + s.name)
		}
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return o, errors.New("-http-tls-cert and -http-tls-key go together: give both or neither")
	}
	if err := checkHTTPAddr(o.httpAddr, o.allowRemote, o.tlsCert != ""); err != nil {
		return o, fmt.Errorf("%w (-http from %s)", err, values["http"].where)
	}
	return o, nil
}

// readConfigFile parses a config file: one "name = value" per line, where
// name is a flag name (without "-") and value is the rest of the line
// without its surrounding white space (it may be empty); lines that are
// blank or start with "#" are skipped. Unknown names, lines without "=" and
// a name given twice are errors naming the line.
func readConfigFile(path string) (map[string]value, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	out := map[string]value{}
	lineOf := map[string]int{}
	for i, line := range strings.Split(string(b), "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, "=")
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		if !ok || name == "" {
			return nil, fmt.Errorf("config file %s line %d: %q is not `name = value`", path, n, line)
		}
		s, known := lookupSetting(name)
		if !known {
			hint := ""
			if name == "config" || name == "print-config" || name == "v" {
				hint = " (-" + name + " is a command-line flag only)"
			}
			return nil, fmt.Errorf("config file %s line %d: unknown setting %q%s; known: %s", path, n, name, hint, settingNames())
		}
		if first, dup := lineOf[name]; dup {
			return nil, fmt.Errorf("config file %s line %d: %s is set again (first on line %d)", path, n, name, first)
		}
		if s.isBool {
			if _, err := strconv.ParseBool(val); err != nil {
				return nil, fmt.Errorf("config file %s line %d: %s = %q: want true or false", path, n, name, val)
			}
		}
		lineOf[name] = n
		out[name] = value{val: val, src: fromFile, where: fmt.Sprintf("file %s line %d", path, n)}
	}
	return out, nil
}

func settingNames() string {
	names := make([]string, len(settings))
	for i, s := range settings {
		names[i] = s.name
	}
	return strings.Join(names, ", ")
}

// printConfig writes the effective configuration in the config file
// format; reading it back as a config file (with no flags or environment)
// gives the same configuration.
func printConfig(w io.Writer, o options) error {
	var b strings.Builder
	b.WriteString("# x0xd configuration (x0xd -print-config): one `name = value` per line, names are the flag names.\n")
	b.WriteString("# Precedence: flags > X0X_* environment > config file > defaults; the comment above each line says where its value came from.\n")
	for _, s := range settings {
		v := o.values[s.name]
		fmt.Fprintf(&b, "\n# %s: %s", s.name, v.where)
		if s.name == "data-dir" && v.val == "" {
			b.WriteString(" (empty: $X0X_HOME, else ~/.x0x)")
		}
		if v.val == "" {
			fmt.Fprintf(&b, "\n%s =\n", s.name)
		} else {
			fmt.Fprintf(&b, "\n%s = %s\n", s.name, v.val)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// envNames lists the settings' variables, wrapped for the usage text.
func envNames() string {
	var b strings.Builder
	col := 6
	for i, s := range settings {
		n := envName(s.name)
		if i < len(settings)-1 {
			n += ","
		}
		if col+1+len(n) > 76 {
			b.WriteString("\n     ")
			col = 5
		} else if i > 0 {
			b.WriteString(" ")
			col++
		}
		b.WriteString(n)
		col += len(n)
	}
	return b.String()
}

func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprint(w, `Usage: x0xd [flags]

x0xd runs an x0x node: an agent that others join through (-role), with the
local API on -http (every route but /health needs the bearer token in
<data dir>/api-token, created at the first start with mode 0600). It prints
one "x0xd ready ..." line on stdout once serving (with token_file=, the
token's path; never the token) and stops cleanly on SIGTERM or SIGINT.

Configuration, highest precedence first:
  1. command-line flags;
  2. environment variables: X0X_ + the flag name in upper case with "-" as
     "_" (`+envNames()+`);
     X0X_HOME also names the data directory (below X0X_DATA_DIR); an empty
     variable counts as unset;
  3. the config file of -config FILE (or X0X_CONFIG): one "name = value"
     per line, name a flag name without "-" (e.g. "http-allow-remote =
     true"), value the rest of the line without surrounding blanks (may be
     empty); blank lines and lines starting with "#" are skipped ("#" later
     in a line is part of the value); an unknown name, a line without "="
     or a name given twice is an error naming the line;
  4. the defaults below.
x0xd -print-config prints the effective configuration in the config file
format, each value's origin in a comment, and exits.

The local API listens on loopback only unless -http-allow-remote is given
together with -http-tls-cert and -http-tls-key (TLS 1.3).

Flags:
`)
	fs.PrintDefaults()
}
