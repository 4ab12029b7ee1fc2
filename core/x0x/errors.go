package x0x

import (
	"errors"
	"fmt"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/identity/keystore"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/nat"
	"github.com/saorsa-labs/x0x-go/core/pubsub"
	"github.com/saorsa-labs/x0x-go/core/tasklist"
	"github.com/saorsa-labs/x0x-go/core/transport"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// The errors of this package. Every error a function or method of this
// package returns (and every Event.Err) matches, with errors.Is, each of
// these sentinels that describes it, however the layers below produced and
// wrapped it; callers never need to import a lower layer. Errors that carry
// details are typed: *FileError (a key file), *PeerMismatchError (a pinned
// peer ID that did not match), *LaggedError (a slow stream reader lost
// items) and *ConfigError (a bad setting); get them with errors.As. Errors
// of the standard library (context.Canceled, context.DeadlineExceeded,
// *fs.PathError, ...) are returned as they are.
var (
	// ErrClosed: the Agent, Topic, Stream or TaskList was closed (or left)
	// before or during the call. A Stream's Next returns it once the stream
	// is closed or its source ended.
	ErrClosed = errors.New("x0x: closed")
	// ErrInvalidArgument: an argument or setting is invalid (an empty topic
	// name, a negative buffer size, a bad Argon2id parameter, an invalid
	// task field, ...). *ConfigError values match it.
	ErrInvalidArgument = errors.New("x0x: invalid argument")
	// ErrPayloadTooLarge: a payload, message, frame or string is over its
	// size limit (MaxPayload for Publish, MaxTopicName for a topic name,
	// MaxTaskListName, MaxTaskTitle and MaxTaskDescription for task lists;
	// the task-list ones match ErrInvalidArgument too).
	ErrPayloadTooLarge = errors.New("x0x: payload too large")

	// ErrNoBootstrap: JoinNetwork had nobody to contact (no bootstrap peers
	// and an empty peer cache).
	ErrNoBootstrap = errors.New("x0x: no bootstrap peers and no cached peers to join")
	// ErrNotConnected: the peer is not connected.
	ErrNotConnected = errors.New("x0x: peer not connected")
	// ErrQueueFull: the peer's send queue was full; the message was dropped.
	ErrQueueFull = errors.New("x0x: send queue full")
	// ErrNoRoute: no connected peer carries the destination agent.
	ErrNoRoute = errors.New("x0x: no connected peer carries the agent")
	// ErrUnknownAgent: the sending agent is not registered on this node.
	ErrUnknownAgent = errors.New("x0x: agent not registered on this node")
	// ErrUnreachable: ConnectPeer found no way to the peer (direct, hole
	// punching and relay all failed, or no coordinator was connected).
	ErrUnreachable = errors.New("x0x: peer unreachable")
	// ErrAuthFailed: a peer failed the ML-DSA-65 identity proof.
	ErrAuthFailed = errors.New("x0x: peer authentication failed")
	// ErrAuthTimeout: a peer did not prove its identity in time.
	ErrAuthTimeout = errors.New("x0x: peer did not authenticate in time")
	// ErrPeerMismatch: the node at an address proved another identity than
	// the pinned one (see *PeerMismatchError).
	ErrPeerMismatch = errors.New("x0x: peer presented another identity than expected")
	// ErrNotPostQuantum: the TLS handshake did not negotiate X25519MLKEM768.
	ErrNotPostQuantum = errors.New("x0x: peer does not speak post-quantum TLS")
	// ErrSelfConnect: the address is this node's own.
	ErrSelfConnect = errors.New("x0x: refusing to connect to self")
	// ErrConnLimit: a connection or dial limit was reached.
	ErrConnLimit = errors.New("x0x: connection limit reached")
	// ErrCooldown: the peer was dialled unsuccessfully a moment ago.
	ErrCooldown = errors.New("x0x: redial cooldown in effect")
	// ErrPeerClosed: the peer closed the connection.
	ErrPeerClosed = errors.New("x0x: connection closed by peer")

	// ErrRejected: a topic validator refused the message (Publish; the
	// validator's own error is wrapped too).
	ErrRejected = errors.New("x0x: message rejected by the topic's validator")
	// ErrLagged: a stream's reader was too slow and items were dropped (see
	// *LaggedError); the stream goes on.
	ErrLagged = errors.New("x0x: stream reader lagged, items were dropped")

	// ErrKeyNotFound: a key file does not exist.
	ErrKeyNotFound = errors.New("x0x: key not found")
	// ErrCorrupt: a key file, bundle, task-list store or message is damaged,
	// of another kind, or belongs to something else; it is never modified.
	ErrCorrupt = errors.New("x0x: corrupt or foreign data")
	// ErrUnsupportedVersion: a key file or bundle has a format version this
	// library does not know.
	ErrUnsupportedVersion = errors.New("x0x: unsupported format version")
	// ErrWrongPassphrase: the passphrase does not open the key file or bundle.
	ErrWrongPassphrase = errors.New("x0x: wrong passphrase")
	// ErrPassphraseRequired: the key file is passphrase-sealed and none was given.
	ErrPassphraseRequired = errors.New("x0x: passphrase required")
	// ErrPassphraseNotUsed: a passphrase was given for a key file not sealed with one.
	ErrPassphraseNotUsed = errors.New("x0x: key file is not passphrase-protected but a passphrase was given")
	// ErrWrongSecret: the key file was sealed with another data directory's local secret.
	ErrWrongSecret = errors.New("x0x: key file sealed with a different local secret")
	// ErrMissingSecret: the data directory's local secret is missing.
	ErrMissingSecret = errors.New("x0x: local secret missing")
	// ErrPermissions: a key file or the data directory has unsafe permissions.
	ErrPermissions = errors.New("x0x: unsafe permissions")

	// ErrBadSignature: a signature does not verify.
	ErrBadSignature = errors.New("x0x: bad signature")
	// ErrBadKey: a key is not an ML-DSA-65 key.
	ErrBadKey = errors.New("x0x: not an ML-DSA-65 key")
	// ErrCertExpired: an agent certificate is expired or not yet valid.
	ErrCertExpired = errors.New("x0x: agent certificate expired or not yet valid")
	// ErrBadCertificate: an agent certificate is malformed, badly signed,
	// names another machine or another key.
	ErrBadCertificate = errors.New("x0x: bad agent certificate")

	// ErrTaskListNotFound: Agent.TaskList named a list that is not open.
	ErrTaskListNotFound = errors.New("x0x: task list not open")
	// ErrTaskNotFound: the task does not exist (or was removed).
	ErrTaskNotFound = errors.New("x0x: task not found")
	// ErrTaskDone: the task is done (reopen it first).
	ErrTaskDone = errors.New("x0x: task is done")
	// ErrTaskNotClaimed: the task is not claimed (Complete needs a claim).
	ErrTaskNotClaimed = errors.New("x0x: task is not claimed")
	// ErrClaimedByOther: another agent holds the winning claim.
	ErrClaimedByOther = errors.New("x0x: task is claimed by another agent")
	// ErrNotWriter: this agent may not write to the list (or only the
	// creator may make this change).
	ErrNotWriter = errors.New("x0x: not a writer of this list")
	// ErrStoreFailed: writing the task-list store failed (I/O).
	ErrStoreFailed = errors.New("x0x: task-list store write failed")

	// ErrGroupNotFound: Agent.Group named a group that is not open.
	ErrGroupNotFound = errors.New("x0x: group not open")
	// ErrNotMember: the agent is not a member of the group.
	ErrNotMember = errors.New("x0x: not a member of the group")
	// ErrAlreadyMember: the agent is already a member of the group.
	ErrAlreadyMember = errors.New("x0x: already a member of the group")
	// ErrInvitationNotFound: no invitation to that group is pending.
	ErrInvitationNotFound = errors.New("x0x: no pending invitation to the group")
	// ErrInvitationRefused: the agent does not accept invitations (it has
	// not called PublishKeyPackage) or is over its rate of invitations.
	ErrInvitationRefused = errors.New("x0x: the agent refused the invitation")
	// ErrDataDirInUse: another running agent holds the data directory
	// (one agent per data directory: they would share keys and stores).
	ErrDataDirInUse = errors.New("x0x: data directory in use")
	// ErrBadKeyPackage: a key package is invalid, expired, of another
	// cipher suite, or not the invited agent's.
	ErrBadKeyPackage = errors.New("x0x: invalid key package")
)

// lowerErrors pairs each lower-layer sentinel with the facade sentinel it
// is reported as (most specific first). It is a function, not a
// package-level table, so that the package has no mutable state; it runs
// only when a call fails.
func lowerErrors() [][2]error {
	return append(groupErrors(), [][2]error{
		{link.ErrClosed, ErrClosed},
		{pubsub.ErrClosed, ErrClosed},
		{keystore.ErrClosed, ErrClosed},
		{tasklist.ErrClosed, ErrClosed},
		{keystore.ErrInvalidParams, ErrInvalidArgument},
		{transport.ErrBadConfig, ErrInvalidArgument},
		{tasklist.ErrTooLong, ErrPayloadTooLarge},
		{tasklist.ErrInvalid, ErrInvalidArgument},
		{link.ErrBadProtocol, ErrInvalidArgument},
		{link.ErrTooLarge, ErrPayloadTooLarge},
		{wire.ErrTooLarge, ErrPayloadTooLarge},
		{pubsub.ErrPayloadTooLarge, ErrPayloadTooLarge},
		{link.ErrNotConnected, ErrNotConnected},
		{link.ErrQueueFull, ErrQueueFull},
		{transport.ErrNoRoute, ErrNoRoute},
		{transport.ErrUnknownAgent, ErrUnknownAgent},
		{nat.ErrUnreachable, ErrUnreachable},
		{nat.ErrNoCoordinator, ErrUnreachable},
		{transport.ErrAuthFailed, ErrAuthFailed},
		{transport.ErrAuthTimeout, ErrAuthTimeout},
		{transport.ErrPeerMismatch, ErrPeerMismatch},
		{transport.ErrNotPostQuantum, ErrNotPostQuantum},
		{transport.ErrSelfConnect, ErrSelfConnect},
		{transport.ErrConnLimit, ErrConnLimit},
		{transport.ErrDialLimit, ErrConnLimit},
		{transport.ErrCooldown, ErrCooldown},
		{transport.ErrPeerClosed, ErrPeerClosed},
		{pubsub.ErrRejected, ErrRejected},
		{keystore.ErrNotFound, ErrKeyNotFound},
		{keystore.ErrCorrupt, ErrCorrupt},
		{keystore.ErrWrongKind, ErrCorrupt},
		{keystore.ErrIDMismatch, ErrCorrupt},
		{tasklist.ErrStoreCorrupt, ErrCorrupt},
		{tasklist.ErrStoreForeign, ErrCorrupt},
		{keystore.ErrUnsupportedVersion, ErrUnsupportedVersion},
		{keystore.ErrWrongPassphrase, ErrWrongPassphrase},
		{keystore.ErrPassphraseRequired, ErrPassphraseRequired},
		{keystore.ErrPassphraseNotUsed, ErrPassphraseNotUsed},
		{keystore.ErrWrongSecret, ErrWrongSecret},
		{keystore.ErrMissingSecret, ErrMissingSecret},
		{keystore.ErrPermissions, ErrPermissions},
		{identity.ErrBadSignature, ErrBadSignature},
		{identity.ErrBadKey, ErrBadKey},
		{identity.ErrCertExpired, ErrCertExpired},
		{identity.ErrCertMalformed, ErrBadCertificate},
		{identity.ErrCertBadSignature, ErrBadCertificate},
		{identity.ErrCertWrongMachine, ErrBadCertificate},
		{identity.ErrCertKeyMismatch, ErrBadCertificate},
		{tasklist.ErrTaskNotFound, ErrTaskNotFound},
		{tasklist.ErrTaskDone, ErrTaskDone},
		{tasklist.ErrNotClaimed, ErrTaskNotClaimed},
		{tasklist.ErrClaimedByOther, ErrClaimedByOther},
		{tasklist.ErrNotWriter, ErrNotWriter},
		{tasklist.ErrStoreFailed, ErrStoreFailed},
		{tasklist.ErrMalformed, ErrCorrupt},
		{tasklist.ErrBadSignature, ErrBadSignature},
	}...)
}

// translatedError is a lower-layer error as this package returns it: its
// message is the original's, and errors.Is matches the facade sentinels
// that describe it as well as the original chain.
type translatedError struct {
	err  error
	wrap []error // the facade sentinels, then err
}

func (e *translatedError) Error() string   { return e.err.Error() }
func (e *translatedError) Unwrap() []error { return e.wrap }

// As converts the lower layers' detailed error types to this package's.
func (e *translatedError) As(target any) bool {
	switch t := target.(type) {
	case **FileError:
		var fe *keystore.FileError
		if errors.As(e.err, &fe) {
			*t = &FileError{Path: fe.Path, Err: translate(fe.Err)}
			return true
		}
	case **PeerMismatchError:
		var pm *transport.PeerMismatchError
		if errors.As(e.err, &pm) {
			*t = &PeerMismatchError{Expected: pm.Expected, Got: pm.Got, Addr: pm.Addr}
			return true
		}
	}
	return false
}

// translate returns err as this package reports it (see the sentinels).
// Errors that match no lower-layer sentinel are returned unchanged.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*translatedError); ok {
		return err
	}
	var wrap []error
	add := func(lower, facade error) {
		if errors.Is(err, lower) {
			for _, w := range wrap {
				if w == facade {
					return
				}
			}
			wrap = append(wrap, facade)
		}
	}
	for _, p := range lowerErrors() {
		add(p[0], p[1])
	}
	if len(wrap) == 0 {
		var fe *keystore.FileError
		if !errors.As(err, &fe) {
			return err
		}
	}
	return &translatedError{err: err, wrap: append(wrap, err)}
}

// FileError reports a problem with one file of the data directory (a key
// file or the directory itself). Err matches the sentinels (ErrCorrupt,
// ErrWrongPassphrase, ...) or is an operating-system error.
type FileError struct {
	// Path is the file or directory concerned.
	Path string
	// Err is the cause.
	Err error
}

// Error returns "x0x: <path>: <cause>".
func (e *FileError) Error() string { return fmt.Sprintf("x0x: %s: %v", e.Path, e.Err) }

// Unwrap returns the cause.
func (e *FileError) Unwrap() error { return e.Err }

// PeerMismatchError reports that the node at a dialled address proved
// another identity than the pinned PeerID. It matches ErrPeerMismatch.
type PeerMismatchError struct {
	// Expected is the pinned PeerID.
	Expected PeerID
	// Got is the PeerID the node at Addr proved.
	Got PeerID
	// Addr is the address dialled.
	Addr string
}

// Error describes the mismatch.
func (e *PeerMismatchError) Error() string {
	return fmt.Sprintf("x0x: dialled %s expecting peer %s, it proved to be %s", e.Addr, e.Expected.Short(), e.Got.Short())
}

// Unwrap returns ErrPeerMismatch.
func (e *PeerMismatchError) Unwrap() error { return ErrPeerMismatch }

// LaggedError is what a Stream's Next returns, once, when items were
// dropped because the stream's buffer was full: Missed items were lost
// between the item Next returned before and the one it returns next. The
// stream goes on. It matches ErrLagged.
type LaggedError struct {
	// Missed is the number of items dropped since the last Next.
	Missed uint64
}

// Error says how many items were lost.
func (e *LaggedError) Error() string {
	return fmt.Sprintf("x0x: stream reader lagged: %d items dropped", e.Missed)
}

// Unwrap returns ErrLagged.
func (e *LaggedError) Unwrap() error { return ErrLagged }

// ConfigError reports an invalid setting (a Builder, OverlayConfig,
// ConnectionConfig or StreamOption value). It matches ErrInvalidArgument.
type ConfigError struct {
	// Setting names the setting, e.g. "OverlayConfig.ActiveViewMax".
	Setting string
	// Reason says what is wrong with it.
	Reason string
}

// Error returns "x0x: invalid <setting>: <reason>".
func (e *ConfigError) Error() string { return fmt.Sprintf("x0x: invalid %s: %s", e.Setting, e.Reason) }

// Unwrap returns ErrInvalidArgument.
func (e *ConfigError) Unwrap() error { return ErrInvalidArgument }

// invalidArg returns an error matching ErrInvalidArgument with a message.
func invalidArg(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, a...))
}
