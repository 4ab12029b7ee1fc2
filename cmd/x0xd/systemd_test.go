package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const unitFile = "../../deploy/systemd/x0x-bootstrap.service"

// unitLines returns the values of key= in the unit file's [Service]
// section (in order).
func unitLines(t *testing.T, unit, key string) []string {
	t.Helper()
	var out []string
	section := ""
	for _, line := range strings.Split(unit, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = line
		}
		if v, ok := strings.CutPrefix(line, key+"="); ok && section == "[Service]" {
			out = append(out, v)
		}
	}
	return out
}

// buildX0xd builds this package's command into dir.
func buildX0xd(t *testing.T, dir string) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build x0xd: %v", err)
	}
	bin := filepath.Join(dir, "x0xd")
	if out, err := exec.Command(goCmd, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// The unit runs x0xd -role bootstrap under a dynamic user with its state
// in /var/lib/x0x, restarts it on failure and carries the hardening
// options; x0xd accepts its command line and environment; and
// `systemd-analyze verify` finds nothing to say about it (with ExecStart
// pointing at a freshly built x0xd: verify checks that the binary exists),
// nor `systemd-analyze security --offline` an exposure above 2.0 (of 10;
// --threshold counts in tenths).
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{
		"ExecStart=/usr/local/bin/x0xd -role bootstrap\n", "Restart=on-failure\n", "RestartSec=", "DynamicUser=yes\n",
		"StateDirectory=x0x\n", "Environment=X0X_HOME=%S/x0x\n", "ProtectSystem=strict\n", "ProtectHome=yes\n",
		"PrivateTmp=yes\n", "NoNewPrivileges=yes\n", "PrivateDevices=yes\n", "ProtectKernelTunables=yes\n",
		"ProtectKernelModules=yes\n", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK\n",
		"LockPersonality=yes\n", "MemoryDenyWriteExecute=yes\n", "SystemCallArchitectures=native\n",
		"CapabilityBoundingSet=\n", "AmbientCapabilities=\n", "LimitNOFILE=", "WantedBy=multi-user.target\n",
		"coordinator", "relay",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("%s lacks %q", unitFile, want)
		}
	}
	execStart := unitLines(t, unit, "ExecStart")
	if len(execStart) != 1 {
		t.Fatalf("ExecStart lines: %q", execStart)
	}
	args := strings.Fields(execStart[0])
	if args[0] != "/usr/local/bin/x0xd" {
		t.Fatalf("ExecStart runs %s", args[0])
	}

	dir := t.TempDir()
	bin := buildX0xd(t, dir)

	// x0xd takes the unit's command line and environment (%S is
	// /var/lib, here a temporary directory).
	stateDir := filepath.Join(dir, "state")
	cmd := exec.Command(bin, append(args[1:], "-print-config")...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "X0X_") })
	for _, e := range unitLines(t, unit, "Environment") {
		cmd.Env = append(cmd.Env, strings.ReplaceAll(e, "%S", stateDir))
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("x0xd %s -print-config: %v", strings.Join(args[1:], " "), err)
	}
	for _, want := range []string{
		"# role: flag -role\nrole = bootstrap\n",
		"# data-dir: env X0X_HOME\ndata-dir = " + filepath.Join(stateDir, "x0x") + "\n",
		"\nhttp = 127.0.0.1:12600\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("x0xd -print-config under the unit lacks %q:\n%s", want, out)
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if runtime.GOOS == "linux" && os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze is missing on a Linux CI machine: scripts/install-tools.sh (make tools) installs it")
		}
		t.Skip("systemd-analyze not found (Debian/Ubuntu package systemd; scripts/install-tools.sh installs it as root): unit not verified")
	}
	testUnit := filepath.Join(dir, "x0x-bootstrap.service")
	rewritten := strings.Replace(unit, "\nExecStart=/usr/local/bin/x0xd ", "\nExecStart="+bin+" ", 1)
	if err := os.WriteFile(testUnit, []byte(rewritten), 0o644); err != nil {
		t.Fatal(err)
	}
	// verify exits 0 on warnings (an unknown key, a bad value): it must
	// print nothing at all.
	var vout bytes.Buffer
	verify := exec.Command(analyze, "verify", "--man=no", testUnit)
	verify.Stdout, verify.Stderr = &vout, &vout
	if err := verify.Run(); err != nil || vout.Len() > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, vout.String())
	}

	sec := exec.Command(analyze, "security", "--offline=true", "--threshold=20", "--no-pager", testUnit)
	sout, err := sec.CombinedOutput()
	if err != nil && bytes.Contains(sout, []byte("unrecognized option")) {
		t.Logf("systemd-analyze security --offline is not supported here (systemd < 250): skipped\n%s", sout)
		return
	}
	if err != nil {
		t.Errorf("systemd-analyze security --offline --threshold=20: %v\n%s", err, sout)
	}
	if lines := strings.Split(strings.TrimSpace(string(sout)), "\n"); len(lines) > 0 {
		t.Log(lines[len(lines)-1])
	}
}
