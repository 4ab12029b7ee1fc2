package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// Every facade sentinel maps to its status however it is wrapped (the
// facade translates the lower layers' errors to these; see core/x0x).
func TestSentinelStatus(t *testing.T) {
	want := map[error]status{
		x0x.ErrWrongPassphrase:    statusWrongPassphrase,
		x0x.ErrPassphraseRequired: statusWrongPassphrase,
		x0x.ErrCorrupt:            statusCorrupt,
		x0x.ErrUnsupportedVersion: statusCorrupt,
		x0x.ErrWrongSecret:        statusCrypto,
		x0x.ErrPermissions:        statusIO,
		x0x.ErrKeyNotFound:        statusNotFound,
		x0x.ErrInvalidArgument:    statusInvalidArg,
		x0x.ErrPayloadTooLarge:    statusTooLarge,
		x0x.ErrClosed:             statusClosed,
		x0x.ErrNoRoute:            statusNoRoute,
		x0x.ErrAuthFailed:         statusAuth,
		x0x.ErrAuthTimeout:        statusTimeout,
		x0x.ErrNotPostQuantum:     statusCrypto,
		x0x.ErrSelfConnect:        statusInvalidArg,
		x0x.ErrPeerClosed:         statusIO,
		x0x.ErrCertExpired:        statusCrypto,
	}
	for s, st := range want {
		wrapped := &x0x.FileError{Path: "/x/agent.key", Err: fmt.Errorf("%w: detail", s)}
		if got := classify(wrapped); got != st {
			t.Errorf("classify(%v) = %d, want %d", wrapped, got, st)
		}
	}
	for _, e := range sentinelStatus {
		if e.err == nil {
			t.Fatal("nil sentinel in the table")
		}
		if got := classify(fmt.Errorf("ctx: %w", e.err)); got != e.st {
			t.Errorf("classify(%v) = %d, want %d", e.err, got, e.st)
		}
	}
	if got := classify(&x0x.PeerMismatchError{}); got != statusAuth {
		t.Errorf("PeerMismatchError -> %d", got)
	}
	if got := classify(&x0x.ConfigError{Setting: "s", Reason: "r"}); got != statusInvalidArg {
		t.Errorf("ConfigError -> %d", got)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err  error
		want status
	}{
		{nil, statusOK},
		{errInvalidArg("x"), statusInvalidArg},
		{fmt.Errorf("wrap: %w", errTooLarge("x")), statusTooLarge},
		{x0x.ErrClosed, statusClosed},
		{fmt.Errorf("claim: %w: abc", x0x.ErrTaskDone), statusTaskDone},
		{fmt.Errorf("complete: %w", x0x.ErrTaskNotClaimed), statusTaskNotClaimed},
		{fmt.Errorf("complete: %w", x0x.ErrClaimedByOther), statusClaimedByOther},
		{fmt.Errorf("add: %w", x0x.ErrNotWriter), statusNotWriter},
		{fmt.Errorf("publish: %w: %w", x0x.ErrRejected, errRefused), statusRejected},
		{fmt.Errorf("publish: %w: %w", x0x.ErrRejected, x0x.ErrClosed), statusClosed},
		{fmt.Errorf("claim: %w", x0x.ErrTaskNotFound), statusNotFound},
		{fmt.Errorf("add: %w", x0x.ErrInvalidArgument), statusInvalidArg},
		{fmt.Errorf("open: %w", x0x.ErrCorrupt), statusCorrupt},
		{fmt.Errorf("remove: %w: abc", x0x.ErrNotMember), statusNotMember},
		{fmt.Errorf("invite: %w: abc", x0x.ErrAlreadyMember), statusAlreadyMember},
		{fmt.Errorf("invite: %w: abc", x0x.ErrInvitationRefused), statusRefused},
		{x0x.ErrGroupNotFound, statusNotFound},
		{x0x.ErrInvitationNotFound, statusNotFound},
		{fmt.Errorf("invite: %w", x0x.ErrBadKeyPackage), statusCorrupt},
		{fmt.Errorf("x0x: join failed: %w", x0x.ErrNoBootstrap), statusNoPeers},
		{fmt.Errorf("op: %w", context.DeadlineExceeded), statusTimeout},
		{os.ErrDeadlineExceeded, statusTimeout},
		{&net.AddrError{Err: "missing port", Addr: "x"}, statusInvalidArg},
		{&fs.PathError{Op: "open", Path: "/nope", Err: fs.ErrNotExist}, statusNotFound},
		{&fs.PathError{Op: "open", Path: "/nope", Err: fs.ErrPermission}, statusIO},
		// errors.Join: the most specific known leaf decides.
		{fmt.Errorf("x0x: join failed: %w", errors.Join(errors.New("unknown"), x0x.ErrPeerClosed, x0x.ErrPeerMismatch)), statusAuth},
		// As the transport reports a peer that closed after failed authentication.
		{fmt.Errorf("%w: %w (reason)", x0x.ErrPeerClosed, x0x.ErrAuthFailed), statusAuth},
		{fmt.Errorf("%w: the peer disconnected", x0x.ErrPeerClosed), statusIO},
		// An error with the same text as a sentinel is not that sentinel.
		{errors.New("wrong passphrase"), statusOther},
		{errors.New("something else"), statusOther},
	}
	for _, tc := range cases {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestCallRecoversPanicAndSetsLastError(t *testing.T) {
	if st := call("x0x_test", func() error { panic("boom") }); st != statusPanic {
		t.Fatalf("status %d, want statusPanic", st)
	}
	if msg := lastError(); !strings.Contains(msg, "boom") || !strings.HasPrefix(msg, "x0x_test: ") {
		t.Fatalf("last error %q does not mention the panic", msg)
	}
	if st := call("x0x_test", func() error { return nil }); st != statusOK || lastError() != "" {
		t.Fatalf("success: status %d, last error %q", st, lastError())
	}
	long := strings.Repeat("e", 5000)
	if st := call("x0x_test", func() error { return errors.New(long) }); st != statusOther || len(lastError()) != 1023 {
		t.Fatalf("long error: status %d, stored %d bytes (want truncation to 1023)", st, len(lastError()))
	}
}

func TestCheckAddr(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for _, ok := range []string{"127.0.0.1:1", "[::1]:12000", id + "@127.0.0.1:5", "localhost:0"} {
		if err := checkAddr(ok); err != nil {
			t.Errorf("checkAddr(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "127.0.0.1", ":5", "127.0.0.1:x", "127.0.0.1:70000", "zz@127.0.0.1:5", id + "@", "@127.0.0.1:5"} {
		if err := checkAddr(bad); classify(err) != statusInvalidArg {
			t.Errorf("checkAddr(%q) = %v, want an invalid-argument error", bad, err)
		}
	}
}
