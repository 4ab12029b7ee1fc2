package transport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/saorsa-labs/x0x-go/core/identity"
)

// Errors returned by the QUIC transport in addition to those declared in
// network.go. Errors that carry detail wrap one of these, so callers test
// them with errors.Is.
var (
	// ErrAuthFailed means the peer's channel-binding proof was missing,
	// malformed, made for another session, or did not verify.
	ErrAuthFailed = errors.New("transport: peer authentication failed")
	// ErrAuthTimeout means the peer did not complete authentication (proof
	// and hello) within Config.AuthTimeout.
	ErrAuthTimeout = errors.New("transport: peer did not authenticate in time")
	// ErrPeerMismatch means a dialled address answered with another
	// identity than the expected PeerID. See PeerMismatchError.
	ErrPeerMismatch = errors.New("transport: peer presented another identity than expected")
	// ErrNotPostQuantum means the TLS handshake did not negotiate TLS 1.3
	// with X25519MLKEM768 and ALPN x0x/1; the connection is refused.
	ErrNotPostQuantum = errors.New("transport: TLS did not negotiate TLS 1.3 with X25519MLKEM768")
	// ErrMalformed means the peer sent bytes that do not parse as a frame or
	// message (bad length, unknown frame type, invalid CBOR, truncation).
	ErrMalformed = errors.New("transport: malformed frame")
	// ErrProtocol means the peer sent a well-formed frame where the protocol
	// does not allow it (wrong stream, duplicate class stream, ...).
	ErrProtocol = errors.New("transport: protocol violation")
	// ErrConnLimit means Config.MaxConnections connections are already open.
	ErrConnLimit = errors.New("transport: connection limit reached")
	// ErrDialLimit means Config.MaxPendingDials outbound dials are already
	// in flight; try again later.
	ErrDialLimit = errors.New("transport: too many dials in flight")
	// ErrSelfConnect means a connection to this node's own PeerID was
	// attempted (or the remote presented this node's key).
	ErrSelfConnect = errors.New("transport: refusing to connect to self")
	// ErrDuplicate means the connection lost the deterministic tie-break
	// between two simultaneous dials; the other connection carries the peer.
	ErrDuplicate = errors.New("transport: connection superseded by a simultaneous dial")
	// ErrReplaced means a newer connection to the same peer replaced this one
	// (typically because the peer restarted).
	ErrReplaced = errors.New("transport: connection replaced by a newer one")
	// ErrPeerClosed means the remote side closed the connection; the error
	// also wraps the reason the peer gave when it is one of ours.
	ErrPeerClosed = errors.New("transport: connection closed by peer")
	// ErrNoRoute means no connected peer carries the destination agent.
	ErrNoRoute = errors.New("transport: no connected peer carries the agent")
	// ErrUnknownAgent means the agent is not registered on this node.
	ErrUnknownAgent = errors.New("transport: agent is not registered on this node")
	// ErrCooldown means a dial to the peer failed less than
	// Config.RedialCooldown ago; try again later.
	ErrCooldown = errors.New("transport: redial cooldown in effect")
	// ErrBadConfig means Config failed validation.
	ErrBadConfig = errors.New("transport: invalid config")
)

// PeerMismatchError reports that a dialled address proved ownership of a
// different key than the PeerID the dialler expected. It matches
// ErrPeerMismatch with errors.Is.
type PeerMismatchError struct {
	Expected identity.PeerID // the PeerID the caller asked for
	Got      identity.PeerID // the PeerID the remote key derives
	Addr     string          // the address that was dialled
}

// Error describes the mismatch.
func (e *PeerMismatchError) Error() string {
	return fmt.Sprintf("transport: dialled %s expecting peer %s, it proved to be %s",
		e.Addr, e.Expected.Short(), e.Got.Short())
}

// Unwrap returns ErrPeerMismatch.
func (e *PeerMismatchError) Unwrap() error { return ErrPeerMismatch }

// CooldownError is returned by Connect while a redial cooldown is running for
// the peer. It matches ErrCooldown with errors.Is.
type CooldownError struct {
	Peer identity.PeerID
	// Remaining is how long until the cooldown ends.
	Remaining time.Duration
}

// Error describes the cooldown.
func (e *CooldownError) Error() string {
	return fmt.Sprintf("transport: redial cooldown for peer %s, %v remaining", e.Peer.Short(), e.Remaining)
}

// Unwrap returns ErrCooldown.
func (e *CooldownError) Unwrap() error { return ErrCooldown }

// Application error codes sent in QUIC CONNECTION_CLOSE frames.
const (
	codeNormal      quic.ApplicationErrorCode = 0x0 // Disconnect by the local user
	codeProtocol    quic.ApplicationErrorCode = 0x1 // malformed input or protocol violation
	codeAuthFailed  quic.ApplicationErrorCode = 0x2
	codeAuthTimeout quic.ApplicationErrorCode = 0x3
	codeDuplicate   quic.ApplicationErrorCode = 0x4
	codeReplaced    quic.ApplicationErrorCode = 0x5
	codeConnLimit   quic.ApplicationErrorCode = 0x6
	codeNotPQ       quic.ApplicationErrorCode = 0x7
	codeShutdown    quic.ApplicationErrorCode = 0x8
	codeMismatch    quic.ApplicationErrorCode = 0x9
)

// errForCode maps a close code received from a peer to the matching sentinel.
func errForCode(code quic.ApplicationErrorCode) error {
	switch code {
	case codeProtocol:
		return ErrProtocol
	case codeAuthFailed, codeMismatch:
		return ErrAuthFailed
	case codeAuthTimeout:
		return ErrAuthTimeout
	case codeDuplicate:
		return ErrDuplicate
	case codeReplaced:
		return ErrReplaced
	case codeConnLimit:
		return ErrConnLimit
	case codeNotPQ:
		return ErrNotPostQuantum
	case codeShutdown, codeNormal:
		return nil
	}
	return nil
}

// remoteReason converts the cause of a closed QUIC connection into the error
// reported to users. A close by the peer wraps ErrPeerClosed and, when the
// peer gave one of our codes, the matching sentinel.
func remoteReason(cause error) error {
	var ae *quic.ApplicationError
	if errors.As(cause, &ae) && ae.Remote {
		if s := errForCode(ae.ErrorCode); s != nil {
			return fmt.Errorf("%w: %w (%s)", ErrPeerClosed, s, ae.ErrorMessage)
		}
		switch ae.ErrorCode {
		case codeShutdown:
			return fmt.Errorf("%w: the peer is shutting down", ErrPeerClosed)
		case codeNormal:
			return fmt.Errorf("%w: the peer disconnected", ErrPeerClosed)
		}
		return fmt.Errorf("%w (code %#x)", ErrPeerClosed, uint64(ae.ErrorCode))
	}
	if cause == nil || errors.Is(cause, context.Canceled) {
		return ErrPeerClosed
	}
	return cause
}

// isRemoteClose reports whether cause is a CONNECTION_CLOSE from the peer.
func isRemoteClose(cause error) bool {
	var ae *quic.ApplicationError
	return errors.As(cause, &ae) && ae.Remote
}

// isRemoteCode reports whether cause is a CONNECTION_CLOSE from the peer
// with the given code.
func isRemoteCode(cause error, code quic.ApplicationErrorCode) bool {
	var ae *quic.ApplicationError
	return errors.As(cause, &ae) && ae.Remote && ae.ErrorCode == code
}
