package main

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/saorsa-labs/x0x-go/cmd/internal/apiclient"
)

// exitError is a failure with its exit code, message and an optional hint
// (printed on a line of its own).
type exitError struct {
	code int
	msg  string
	hint string
}

func (e *exitError) Error() string { return e.msg }

func usageError(format string, a ...any) error {
	return &exitError{code: exitUsage, msg: fmt.Sprintf(format, a...)}
}

func failed(format string, a ...any) error {
	return &exitError{code: exitFailed, msg: fmt.Sprintf(format, a...)}
}

// exit prints err (if any) on stderr and returns the exit code for it.
func (c *cli) exit(err error) int {
	if err == nil {
		return exitOK
	}
	if c.ctx.Err() != nil {
		fmt.Fprintln(c.stderr, "x0x: interrupted")
		return exitInterrupted
	}
	code, msg, hint := c.classify(err)
	fmt.Fprintln(c.stderr, "x0x: "+msg)
	if hint != "" {
		fmt.Fprintln(c.stderr, hint)
	}
	return code
}

// classify maps an error to its exit code, message and hint.
func (c *cli) classify(err error) (code int, msg, hint string) {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code, ee.msg, ee.hint
	}
	var ae *apiclient.Error
	if errors.As(err, &ae) {
		msg = fmt.Sprintf("%s (%s)", ae.Message, ae.Code)
		switch ae.Code {
		case "unauthorized":
			return exitUnauthorized, msg, fmt.Sprintf("the token in %s is not the token of the daemon at %s (--token-file, --data-dir, --api)", c.tokenPath(), c.hostPort())
		case "slow_consumer":
			return exitSlow, msg, ""
		case "would_replace":
			return exitFailed, msg, "x0x identity import --replace FILE replaces it"
		}
		return exitFailed, msg, ""
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return exitUnreachable, fmt.Sprintf("cannot reach the daemon at %s: %v", c.hostPort(), oe.Err),
			"is x0xd running? x0x daemon start starts it (or pass --api ADDR)"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return exitFailed, fmt.Sprintf("no answer within %v (--timeout)", c.g.timeout), ""
	}
	return exitFailed, err.Error(), ""
}

// tokenPath is the token file the client reads ("" if there is no data
// directory either).
func (c *cli) tokenPath() string {
	if c.g.tokenFile != "" {
		return c.g.tokenFile
	}
	dir, err := c.dataDir()
	if err != nil {
		return ""
	}
	return tokenFileIn(dir)
}
