//go:build unix

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// detached puts x0xd in a session of its own: the terminal's signals
// (Ctrl-C) do not reach it.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

// alive reports whether process pid exists and has not exited (a zombie
// has, where /proc tells).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		// The state follows the command name in parentheses.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
			return false
		}
	}
	return true
}

// isX0xd reports whether process pid runs x0xd, where /proc tells (so a
// reused process ID is not mistaken for the daemon); elsewhere true.
func isX0xd(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return true
	}
	argv0, _, _ := bytes.Cut(b, []byte{0})
	return strings.HasPrefix(filepath.Base(string(argv0)), "x0xd")
}

// terminate asks process pid to shut down gracefully.
func terminate(pid int) error { return syscall.Kill(pid, syscall.SIGTERM) }

// exited reports whether the child p has exited (reaping it), and how.
func exited(p *os.Process) (bool, string) {
	var ws syscall.WaitStatus
	pid, err := syscall.Wait4(p.Pid, &ws, syscall.WNOHANG, nil)
	if err != nil || pid != p.Pid {
		return false, ""
	}
	switch {
	case ws.Exited():
		return true, fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return true, "killed by " + ws.Signal().String()
	}
	return true, ws.Signal().String()
}
