package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// envOf is a getenv over a map.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigDefaultsAndRoles(t *testing.T) {
	o, err := parseConfig(nil, envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.dataDir != "" || o.listen != "0.0.0.0:12000" || o.httpAddr != "127.0.0.1:12600" || o.network != x0x.NetworkLocal ||
		o.role != "bootstrap" || o.logFormat != "text" || o.logLevel != "info" || o.allowRemote || o.printConfig {
		t.Fatalf("defaults = %+v", o)
	}
	for _, v := range o.values {
		if v.src != fromDefault {
			t.Errorf("%+v not a default", v)
		}
	}
	if _, err := parseConfig([]string{"-role", "gateway"}, envOf(nil), io.Discard); err == nil {
		t.Fatal("unknown role accepted")
	}
	for roles, want := range map[string]x0x.Services{
		"bootstrap": 0, "coordinator": x0x.ServiceCoordinator, "relay": x0x.ServiceRelay,
		"coordinator,relay": x0x.ServiceCoordinator | x0x.ServiceRelay, "bootstrap, relay": x0x.ServiceRelay,
	} {
		if _, err := parseConfig([]string{"-role", roles}, envOf(nil), io.Discard); err != nil {
			t.Errorf("-role %q: %v", roles, err)
		}
		if got, err := roleServices(roles); err != nil || got != want {
			t.Errorf("roleServices(%q) = %v, %v; want %v", roles, got, err, want)
		}
	}
	if _, err := parseConfig([]string{"stray"}, envOf(nil), io.Discard); err == nil {
		t.Fatal("stray argument accepted")
	}
	for _, args := range [][]string{
		{"-log-format", "xml"}, {"-log-level", "loud"}, {"-http-allow-remote=maybe"}, {"-v", "-log-level", "warn"},
		{"-http-tls-key", "k.pem"}, {"-config", ""},
	} {
		if _, err := parseConfig(args, envOf(nil), io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	o, err = parseConfig([]string{"-v"}, envOf(nil), io.Discard)
	if err != nil || o.logLevel != "debug" || o.values["log-level"].where != "flag -v" {
		t.Errorf("-v: %q (%s), %v", o.logLevel, o.values["log-level"].where, err)
	}
	if o, err := parseConfig([]string{"-v", "-log-level", "debug"}, envOf(nil), io.Discard); err != nil || o.logLevel != "debug" {
		t.Errorf("-v -log-level debug: %v", err)
	}
}

// Flags beat the environment, which beats the config file, which beats
// the defaults; X0X_DATA_DIR beats X0X_HOME.
func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, "x0xd.conf", `# a comment
listen = 127.0.0.1:1
   # an indented comment

http = 127.0.0.1:2
role = coordinator
log-format = json
log-level = warn
bootstrap =
network=local
data-dir = /from/file
http-allow-remote = false
`)
	env := map[string]string{
		"X0X_CONFIG": file,
		"X0X_HTTP":   "127.0.0.1:3", "X0X_ROLE": "relay", "X0X_LOG_LEVEL": "error",
		"X0X_BOOTSTRAP":       "",               // empty: unset
		"X0X_PASSPHRASE_FILE": "/from/env/pass", // not in the file
		"X0X_HOME":            "/from/home",
	}
	args := []string{"-role", "coordinator,relay", "-http-tls-cert", "c.pem", "-http-tls-key", "k.pem"}
	o, err := parseConfig(args, envOf(env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"listen": "127.0.0.1:1 file", "http": "127.0.0.1:3 env", "role": "coordinator,relay flag",
		"log-format": "json file", "log-level": "error env", "bootstrap": " file", "network": "local file",
		"data-dir": "/from/home env", "http-allow-remote": "false file", "passphrase-file": "/from/env/pass env",
		"http-tls-cert": "c.pem flag", "http-tls-key": "k.pem flag",
	}
	got := map[string]string{}
	for name, v := range o.values {
		got[name] = v.val + " " + v.src.String()
	}
	if !maps.Equal(got, want) {
		t.Errorf("values\n got %v\nwant %v", got, want)
	}
	if o.httpAddr != "127.0.0.1:3" || o.role != "coordinator,relay" || o.listen != "127.0.0.1:1" || o.logFormat != "json" ||
		o.logLevel != "error" || o.dataDir != "/from/home" || o.passFile != "/from/env/pass" || o.tlsCert != "c.pem" || o.configFile != file {
		t.Errorf("options %+v", o)
	}
	if w := o.values["listen"].where; w != "file "+file+" line 2" {
		t.Errorf("listen from %q", w)
	}

	// X0X_DATA_DIR beats X0X_HOME; -data-dir beats both; the file's
	// data-dir is used when neither variable is set.
	env["X0X_DATA_DIR"] = "/from/env"
	if o, err := parseConfig(nil, envOf(env), io.Discard); err != nil || o.dataDir != "/from/env" || o.values["data-dir"].where != "env X0X_DATA_DIR" {
		t.Errorf("X0X_DATA_DIR: %q (%s), %v", o.dataDir, o.values["data-dir"].where, err)
	}
	if o, err := parseConfig([]string{"-data-dir", "/from/flag"}, envOf(env), io.Discard); err != nil || o.dataDir != "/from/flag" {
		t.Errorf("-data-dir: %q, %v", o.dataDir, err)
	}
	if o, err := parseConfig(nil, envOf(map[string]string{"X0X_CONFIG": file}), io.Discard); err != nil || o.dataDir != "/from/file" {
		t.Errorf("file data-dir: %q, %v", o.dataDir, err)
	}
	// -config beats X0X_CONFIG.
	other := writeFile(t, "other.conf", "role = relay\n")
	if o, err := parseConfig([]string{"-config", other}, envOf(map[string]string{"X0X_CONFIG": file}), io.Discard); err != nil ||
		o.role != "relay" || o.listen != "0.0.0.0:12000" {
		t.Errorf("-config over X0X_CONFIG: %+v, %v", o, err)
	}
	// A bad value from the environment names the variable.
	if _, err := parseConfig(nil, envOf(map[string]string{"X0X_LOG_FORMAT": "xml"}), io.Discard); err == nil || !strings.Contains(err.Error(), "env X0X_LOG_FORMAT") {
		t.Errorf("bad env value: %v", err)
	}
	if _, err := parseConfig(nil, envOf(map[string]string{"X0X_HTTP_ALLOW_REMOTE": "yes please"}), io.Discard); err == nil ||
		!strings.Contains(err.Error(), "X0X_HTTP_ALLOW_REMOTE") {
		t.Errorf("bad env bool: %v", err)
	}
}

// A malformed line, an unknown name, a name given twice or a bad value is
// an error naming the file's line.
func TestConfigFileErrors(t *testing.T) {
	for _, c := range []struct {
		content, want string
	}{
		{"listen = 127.0.0.1:1\nthis is not a setting\n", "line 2: \"this is not a setting\" is not `name = value`"},
		{"\n\n= value\n", "line 3: \"= value\" is not `name = value`"},
		{"# ok\nlisten = 127.0.0.1:1\ncolour = blue\n", "line 3: unknown setting \"colour\""},
		{"config = other.conf\n", "line 1: unknown setting \"config\" (-config is a command-line flag only)"},
		{"-http = 127.0.0.1:1\n", "line 1: unknown setting \"-http\""},
		{"role = relay\nlisten = 127.0.0.1:1\nrole = coordinator\n", "line 3: role is set again (first on line 1)"},
		{"http-allow-remote = sometimes\n", "line 1: http-allow-remote = \"sometimes\": want true or false"},
		{"\n# x\nrole = gateway\n", "-role \"gateway\" (file %s line 3): unknown role \"gateway\""},
		{"log-level = loud\r\n", "-log-level \"loud\" (file %s line 1)"},
		{"http = 0.0.0.0:1\n", "(-http from file %s line 1)"},
	} {
		path := writeFile(t, "x0xd.conf", c.content)
		want := c.want
		if strings.Contains(want, "%s") {
			want = strings.ReplaceAll(want, "%s", path)
		}
		_, err := parseConfig([]string{"-config", path}, envOf(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v\nwant %q", c.content, err, want)
		}
	}
	if _, err := parseConfig([]string{"-config", filepath.Join(t.TempDir(), "missing.conf")}, envOf(nil), io.Discard); err == nil ||
		!strings.Contains(err.Error(), "missing.conf") {
		t.Errorf("missing file: %v", err)
	}
}

// -print-config prints every setting in the config file format with its
// origin; read back as the only source it gives the same configuration.
func TestPrintConfigRoundTrip(t *testing.T) {
	file := writeFile(t, "x0xd.conf", "listen = 127.0.0.1:1\nlog-format = json\n")
	env := map[string]string{"X0X_CONFIG": file, "X0X_HTTP": "[::1]:2", "X0X_HOME": "/home/x0x"}
	args := []string{"-role", "coordinator,relay", "-bootstrap", "127.0.0.1:5,127.0.0.1:6", "-http-allow-remote", "-v", "-print-config"}

	var stdout bytes.Buffer
	if err := run(args, &stdout, io.Discard); err != nil { // reads the real environment: nothing of it
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "\nrole = coordinator,relay\n") {
		t.Errorf("x0xd -print-config printed:\n%s", stdout.String())
	}
	o1, err := parseConfig(args, envOf(env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !o1.printConfig {
		t.Fatal("-print-config not seen")
	}
	var out bytes.Buffer
	if err := printConfig(&out, o1); err != nil {
		t.Fatal(err)
	}
	printed := out.String()
	for _, want := range []string{
		"# listen: file " + file + " line 1\nlisten = 127.0.0.1:1\n",
		"# http: env X0X_HTTP\nhttp = [::1]:2\n",
		"# data-dir: env X0X_HOME\ndata-dir = /home/x0x\n",
		"# role: flag -role\nrole = coordinator,relay\n",
		"# log-level: flag -v\nlog-level = debug\n",
		"# http-allow-remote: flag -http-allow-remote\nhttp-allow-remote = true\n",
		"# network: default\nnetwork = local\n",
		"# http-tls-cert: default\nhttp-tls-cert =\n",
	} {
		if !strings.Contains(printed, want) {
			t.Errorf("-print-config lacks %q:\n%s", want, printed)
		}
	}
	for _, s := range settings {
		if !strings.Contains(printed, "\n"+s.name+" =") {
			t.Errorf("-print-config lacks %s", s.name)
		}
	}

	o2, err := parseConfig([]string{"-config", writeFile(t, "printed.conf", printed)}, envOf(nil), io.Discard)
	if err != nil {
		t.Fatalf("the printed configuration does not read back: %v\n%s", err, printed)
	}
	for _, s := range settings {
		v1, v2 := o1.values[s.name], o2.values[s.name]
		if v1.val != v2.val || v2.src != fromFile {
			t.Errorf("%s: %q (%s) printed, %q (%s) read back", s.name, v1.val, v1.where, v2.val, v2.where)
		}
	}
	o1.values, o2.values, o1.configFile, o2.configFile = nil, nil, "", ""
	o1.printConfig = false
	if !reflect.DeepEqual(o1, o2) {
		t.Errorf("round trip:\n%+v\n%+v", o1, o2)
	}

	// The defaults round-trip too (an empty data-dir stays the library's
	// default).
	var def bytes.Buffer
	d1, _ := parseConfig(nil, envOf(nil), io.Discard)
	if err := printConfig(&def, d1); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(def.String(), "# data-dir: default (empty: $X0X_HOME, else ~/.x0x)\ndata-dir =\n") {
		t.Errorf("default data-dir:\n%s", def.String())
	}
	d2, err := parseConfig([]string{"-config", writeFile(t, "def.conf", def.String())}, envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if d1.values[s.name].val != d2.values[s.name].val {
			t.Errorf("default %s: %q, read back %q", s.name, d1.values[s.name].val, d2.values[s.name].val)
		}
	}
}

// x0xd -h documents every flag, its environment variable, the file format
// and the precedence, and is not an error.
func TestUsage(t *testing.T) {
	var stderr bytes.Buffer
	_, err := parseConfig([]string{"-h"}, envOf(nil), &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	help := stderr.String()
	for _, s := range settings {
		if !strings.Contains(help, "  -"+s.name) || !strings.Contains(help, "[env "+envName(s.name)+"]") {
			t.Errorf("-h lacks -%s or %s", s.name, envName(s.name))
		}
	}
	for _, want := range []string{"-config", "-print-config", "  -v", "X0X_CONFIG", "X0X_HOME", "name = value", "highest precedence first",
		"-http-allow-remote", "TLS 1.3", "token_file"} {
		if !strings.Contains(help, want) {
			t.Errorf("-h lacks %q", want)
		}
	}
	if envName("http-allow-remote") != "X0X_HTTP_ALLOW_REMOTE" || envName("data-dir") != "X0X_DATA_DIR" {
		t.Error("envName")
	}
}
