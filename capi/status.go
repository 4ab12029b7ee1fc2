package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include
#include "helpers.h"
*/
import "C"

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"syscall"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// status is an x0x_status code of include/x0x.h.
type status int

// The status codes, taken from the header so the two cannot disagree.
const (
	statusOK              status = C.X0X_OK
	statusInvalidArg      status = C.X0X_ERR_INVALID_ARG
	statusInvalidHandle   status = C.X0X_ERR_INVALID_HANDLE
	statusClosed          status = C.X0X_ERR_CLOSED
	statusIO              status = C.X0X_ERR_IO
	statusCrypto          status = C.X0X_ERR_CRYPTO
	statusWrongPassphrase status = C.X0X_ERR_WRONG_PASSPHRASE
	statusNotFound        status = C.X0X_ERR_NOT_FOUND
	statusTimeout         status = C.X0X_ERR_TIMEOUT
	statusTooLarge        status = C.X0X_ERR_TOO_LARGE
	statusPanic           status = C.X0X_ERR_PANIC
	statusNoRoute         status = C.X0X_ERR_NO_ROUTE
	statusCorrupt         status = C.X0X_ERR_CORRUPT
	statusAuth            status = C.X0X_ERR_AUTH
	statusNoPeers         status = C.X0X_ERR_NO_PEERS
	statusTaskDone        status = C.X0X_ERR_TASK_DONE
	statusTaskNotClaimed  status = C.X0X_ERR_TASK_NOT_CLAIMED
	statusClaimedByOther  status = C.X0X_ERR_TASK_CLAIMED_BY_OTHER
	statusNotWriter       status = C.X0X_ERR_NOT_WRITER
	statusRejected        status = C.X0X_ERR_REJECTED
	statusNotMember       status = C.X0X_ERR_NOT_MEMBER
	statusAlreadyMember   status = C.X0X_ERR_ALREADY_MEMBER
	statusRefused         status = C.X0X_ERR_REFUSED
	statusOther           status = C.X0X_ERR_OTHER
)

// apiError is an error detected by this layer with the status it maps to.
type apiError struct {
	st  status
	msg string
}

func (e *apiError) Error() string { return e.msg }

func errInvalidArg(msg string) error { return &apiError{statusInvalidArg, msg} }
func errTooLarge(msg string) error   { return &apiError{statusTooLarge, msg} }

// sentinelStatus maps the facade's sentinel errors to statuses, most
// specific first: when an error joins or wraps several (e.g. "connection
// closed by peer: peer authentication failed", or a join that failed
// differently for each bootstrap peer), the first match in this order is
// reported.
//
// An error matching both ErrInvalidArgument and ErrPayloadTooLarge (a
// task-list name, title or description over its limit: the facade keeps
// ErrInvalidArgument for its Go callers) is X0X_ERR_TOO_LARGE, as the
// header documents; classify checks that before this table.
var sentinelStatus = []struct {
	err error
	st  status
}{
	{x0x.ErrRejected, statusRejected},
	{x0x.ErrInvalidArgument, statusInvalidArg},
	{x0x.ErrTaskDone, statusTaskDone},
	{x0x.ErrTaskNotClaimed, statusTaskNotClaimed},
	{x0x.ErrClaimedByOther, statusClaimedByOther},
	{x0x.ErrNotWriter, statusNotWriter},
	{x0x.ErrTaskNotFound, statusNotFound},
	{x0x.ErrNotMember, statusNotMember},
	{x0x.ErrAlreadyMember, statusAlreadyMember},
	{x0x.ErrInvitationRefused, statusRefused},
	{x0x.ErrGroupNotFound, statusNotFound},
	{x0x.ErrInvitationNotFound, statusNotFound},
	{x0x.ErrBadKeyPackage, statusCorrupt},
	{x0x.ErrStoreFailed, statusIO},
	// Another running agent (in this process or another) holds the data
	// directory's lock: an operating-system condition of the directory, so
	// X0X_ERR_IO, with a message naming the directory.
	{x0x.ErrDataDirInUse, statusIO},
	{x0x.ErrSelfConnect, statusInvalidArg},
	{x0x.ErrWrongPassphrase, statusWrongPassphrase},
	{x0x.ErrPassphraseRequired, statusWrongPassphrase},
	{x0x.ErrPassphraseNotUsed, statusWrongPassphrase},
	{x0x.ErrCorrupt, statusCorrupt},
	{x0x.ErrUnsupportedVersion, statusCorrupt},
	{x0x.ErrWrongSecret, statusCrypto},
	{x0x.ErrMissingSecret, statusCrypto},
	{x0x.ErrNotPostQuantum, statusCrypto},
	{x0x.ErrBadSignature, statusCrypto},
	{x0x.ErrBadKey, statusCrypto},
	{x0x.ErrCertExpired, statusCrypto},
	{x0x.ErrBadCertificate, statusCrypto},
	{x0x.ErrAuthFailed, statusAuth},
	{x0x.ErrPeerMismatch, statusAuth},
	{x0x.ErrPayloadTooLarge, statusTooLarge},
	{x0x.ErrNoRoute, statusNoRoute},
	{x0x.ErrKeyNotFound, statusNotFound},
	{x0x.ErrUnknownAgent, statusNotFound},
	{x0x.ErrAuthTimeout, statusTimeout},
	{x0x.ErrPermissions, statusIO},
	{x0x.ErrConnLimit, statusIO},
	{x0x.ErrCooldown, statusIO},
	{x0x.ErrQueueFull, statusIO},
	{x0x.ErrNotConnected, statusIO},
	{x0x.ErrPeerClosed, statusIO},
}

// classify maps an error to a status: errors of this layer first, then the
// facade's sentinels (see sentinelStatus), then standard library errors.
func classify(err error) status {
	if err == nil {
		return statusOK
	}
	var ae *apiError
	var he *handleError
	var ne net.Error
	var addrErr *net.AddrError
	var pathErr *fs.PathError
	var opErr *net.OpError
	var errno syscall.Errno
	switch {
	case errors.As(err, &ae):
		return ae.st
	case errors.As(err, &he):
		return statusInvalidHandle
	case errors.Is(err, x0x.ErrClosed):
		return statusClosed
	case errors.Is(err, x0x.ErrNoBootstrap):
		return statusNoPeers
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return statusTimeout
	case errors.Is(err, context.Canceled):
		return statusClosed
	case errors.Is(err, x0x.ErrInvalidArgument) && errors.Is(err, x0x.ErrPayloadTooLarge) && !errors.Is(err, x0x.ErrRejected):
		return statusTooLarge // an argument over its size limit (see sentinelStatus)
	}
	for _, e := range sentinelStatus {
		if errors.Is(err, e.err) {
			return e.st
		}
	}
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return statusTimeout
	case errors.As(err, &addrErr):
		return statusInvalidArg
	case errors.Is(err, fs.ErrNotExist):
		return statusNotFound
	case errors.As(err, &pathErr), errors.As(err, &opErr), errors.As(err, &errno), errors.As(err, &ne):
		return statusIO
	}
	return statusOther
}
