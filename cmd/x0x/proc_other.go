//go:build !unix

package main

import (
	"os"
	"syscall"
)

// detached: x0xd runs in the background as it is.
func detached() *syscall.SysProcAttr { return nil }

// alive reports whether process pid exists.
func alive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	_ = p.Release()
	return true
}

// isX0xd cannot tell here: a process with the pid file's ID is taken for
// the daemon.
func isX0xd(pid int) bool { return true }

// terminate ends process pid (without signals, abruptly).
func terminate(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// exited cannot tell without waiting: start then waits for the ready line
// until its deadline.
func exited(p *os.Process) (bool, string) { return false, "" }
