package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if bins.dir != "" {
			os.RemoveAll(bins.dir)
		}
	}))
}

// runCLI runs x0x in this process with an empty environment but env.
func runCLI(t *testing.T, stdin string, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code = run(t.Context(), args, getenv, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{nil, "usage: x0x"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"tasks"}, "tasks needs a subcommand: new, join, add, claim, done, ls, watch"},
		{[]string{"tasks", "frob"}, `unknown command "tasks frob"`},
		{[]string{"pub"}, "usage: x0x pub TOPIC [MSG|-]"},
		{[]string{"pub", "t", "m", "extra"}, `unexpected arguments ["extra"]`},
		{[]string{"--bogus", "id"}, "flag provided but not defined: -bogus"},
		{[]string{"id", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"id", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"send", "1234", "hi"}, "AGENT: want an agent ID"},
		{[]string{"send", strings.Repeat("ab", 32)}, "missing MSG"},
		{[]string{"tasks", "claim", "xyz", "0123abcd"}, "LIST: want a task list ID"},
		{[]string{"completion", "powershell"}, `unknown shell "powershell"`},
		{[]string{"identity", "export"}, "a passphrase is needed"},
		{[]string{"inbox", "--limit", "5000"}, "--limit: want 1 to 1000"},
		{[]string{"sub", "t", "--after", "-1"}, "want a cursor"},
		{[]string{"daemon", "start", "stray"}, "x0xd's other flags go after --"},
		{[]string{"help", "frob"}, `unknown command "frob"`},
	} {
		code, _, stderr := runCLI(t, "", nil, append([]string{"--data-dir", dir}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("x0x %q: exit code %d, stderr %q; want %d and %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
}

// Global flags go before or after the command, and flags mix with the
// positional arguments; "--" ends the flags.
func TestFlagsAnywhere(t *testing.T) {
	for _, args := range [][]string{{"--json", "version"}, {"version", "--json"}, {"-json", "version"}} {
		code, out, stderr := runCLI(t, "", nil, args...)
		var v struct{ Version string }
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Version == "" {
			t.Errorf("x0x %q: %d %q %q", args, code, out, stderr)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	desc := fs.String("description", "", "")
	open := fs.Bool("open", false, "")
	pos, err := parseInterspersed(fs, []string{"L", "--open", "title", "--description", "d", "--", "--not-a-flag", "-"}, false)
	if err != nil || !slices.Equal(pos, []string{"L", "title", "--not-a-flag", "-"}) || *desc != "d" || !*open {
		t.Fatalf("parseInterspersed: %q %v %q %v", pos, err, *desc, *open)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	pos, err = parseInterspersed(fs, []string{"--", "-listen", "x"}, true)
	if err != nil || !slices.Equal(pos, []string{"--", "-listen", "x"}) {
		t.Fatalf("parseInterspersed with pass-through: %q %v", pos, err)
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := runCLI(t, "", nil, "help")
	for _, want := range []string{"tasks claim LIST TASK", "daemon start", "--token-file", "exit codes:", "130"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("x0x help: exit code %d, no %q in\n%s", code, want, out)
		}
	}
	for _, args := range [][]string{{"help", "tasks", "add"}, {"tasks", "add", "-h"}, {"tasks", "add", "--help"}} {
		code, out, _ := runCLI(t, "", nil, args...)
		if code != 0 || !strings.Contains(out, "usage: x0x tasks add LIST TITLE") || !strings.Contains(out, "--description") {
			t.Errorf("x0x %q: exit code %d:\n%s", args, code, out)
		}
	}
	if code, out, _ := runCLI(t, "", nil, "help", "tasks"); code != 0 || !strings.Contains(out, "x0x tasks watch LIST") {
		t.Errorf("x0x help tasks: %d\n%s", code, out)
	}
	// The exit codes the package comment documents are the ones help lists.
	for _, code := range []string{"0", "1", "2", "3", "4", "5", "130"} {
		if !strings.Contains(exitCodesHelp, "\n  "+code+" ") {
			t.Errorf("exit code %s missing from the help", code)
		}
	}
}

// Without a daemon: exit code 3, with a hint.
func TestNoDaemon(t *testing.T) {
	empty := t.TempDir()
	code, _, stderr := runCLI(t, "", nil, "--data-dir", empty, "id")
	if code != exitUnreachable || !strings.Contains(stderr, "no API token") || !strings.Contains(stderr, "x0x daemon start") {
		t.Errorf("no token file: exit code %d, stderr %q", code, stderr)
	}
	// A token, but nothing listening at the address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tokenDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(tokenDir, "api-token"), []byte(strings.Repeat("a", 64)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"id"}, {"tasks", "ls"}, {"sub", "t"}, {"daemon", "status"}} {
		code, _, stderr = runCLI(t, "", map[string]string{"X0X_API": addr, "X0X_HOME": tokenDir}, args...)
		if code != exitUnreachable || !strings.Contains(stderr, addr) {
			t.Errorf("x0x %q with nothing at %s: exit code %d, stderr %q", args, addr, code, stderr)
		}
	}
	// x0xd's data directory variables, X0X_DATA_DIR first.
	code, _, stderr = runCLI(t, "", map[string]string{"X0X_DATA_DIR": empty, "X0X_HOME": tokenDir}, "id")
	if code != exitUnreachable || !strings.Contains(stderr, filepath.Join(empty, "api-token")) {
		t.Errorf("X0X_DATA_DIR: exit code %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "", nil, "--data-dir", empty, "daemon", "stop")
	if code != exitUnreachable || !strings.Contains(stderr, "not running") {
		t.Errorf("daemon stop without a daemon: exit code %d, stderr %q", code, stderr)
	}
}

// The interrupted context is exit code 130 for a call, 0 for a stream.
func TestInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out, errb bytes.Buffer
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "api-token"), []byte(strings.Repeat("a", 64)), 0o600); err != nil {
		t.Fatal(err)
	}
	code := run(ctx, []string{"--data-dir", dir, "id"}, func(string) string { return "" }, strings.NewReader(""), &out, &errb)
	if code != exitInterrupted || !strings.Contains(errb.String(), "interrupted") {
		t.Errorf("interrupted call: exit code %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	code = run(ctx, []string{"--data-dir", dir, "sub", "t"}, func(string) string { return "" }, strings.NewReader(""), &out, &errb)
	if code != 0 {
		t.Errorf("interrupted stream: exit code %d, stderr %q", code, errb.String())
	}
}

// The completion scripts name every command and subcommand; bash's
// completes them.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, stderr := runCLI(t, "", nil, "completion", sh)
		if code != 0 {
			t.Fatalf("completion %s: %d %s", sh, code, stderr)
		}
		for _, cmd := range commands {
			if !strings.Contains(out, cmd.name) {
				t.Errorf("completion %s: no %s", sh, cmd.name)
			}
			for _, sub := range cmd.subs {
				if !strings.Contains(out, sub.name) {
					t.Errorf("completion %s: no %s %s", sh, cmd.name, sub.name)
				}
			}
		}
		if path, err := exec.LookPath(sh); err == nil && sh != "bash" {
			if b, err := exec.CommandContext(t.Context(), path, "-n", "-c", out).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", sh, err, b)
			}
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	_, script, _ := runCLI(t, "", nil, "completion", "bash")
	for _, tc := range []struct {
		line string // the words typed; the last is being completed
		want string
	}{
		{"x0x ''", "id peers connect pub sub follow topics unsub send inbox tasks identity daemon completion mcp version help"},
		{"x0x ta", "tasks"},
		{"x0x tasks c", "claim"},
		{"x0x --json tasks ''", "new join add claim done ls watch"},
		{"x0x tasks add --d", "--description --data-dir"},
		{"x0x daemon ''", "start stop status"},
		{"x0x daemon start --x", "--x0xd"},
		{"x0x completion ''", "bash zsh fish"},
		{"x0x help ta", "tasks"},
		{"x0x --api 127.0.0.1:1 ''", "id peers connect pub sub follow topics unsub send inbox tasks identity daemon completion mcp version help"},
		{"x0x pub --l", "--lines"},
	} {
		prog := script + "\nCOMP_WORDS=(" + tc.line + "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _x0x; echo \"${COMPREPLY[*]}\"\n"
		out, err := exec.CommandContext(t.Context(), bash, "--norc", "--noprofile", "-c", prog).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tc.want {
			t.Errorf("completing %q: %q %v; want %q", tc.line, out, err, tc.want)
		}
	}
	if code, out, _ := runCLI(t, "", nil, "completion", "bash"); code != 0 || !strings.Contains(out, "complete -F _x0x x0x") {
		t.Errorf("completion bash: %d", code)
	}
	if _, err := exec.CommandContext(t.Context(), bash, "-n", "-c", script).CombinedOutput(); err != nil {
		t.Errorf("bash -n: %v", err)
	}
}

// x0x mcp needs the daemon like every command.
func TestMCPWithoutDaemon(t *testing.T) {
	code, _, stderr := runCLI(t, "", nil, "--data-dir", t.TempDir(), "mcp")
	if code != exitUnreachable || !strings.Contains(stderr, "no API token") {
		t.Errorf("mcp: %d %q", code, stderr)
	}
}
