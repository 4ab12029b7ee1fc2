package x0x

import (
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/identity/keystore"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/pubsub"
	"github.com/saorsa-labs/x0x-go/core/transport"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// Errors from the layers below, re-exported so that callers (and the C ABI)
// can match any error this package returns with errors.Is using only this
// package. They are the same values as in the layers that define them.
var (
	// Key files and identity bundles (errors about a file are
	// *keystore.FileError values naming it).
	ErrKeyNotFound        = keystore.ErrNotFound
	ErrCorrupt            = keystore.ErrCorrupt
	ErrWrongPassphrase    = keystore.ErrWrongPassphrase
	ErrPassphraseRequired = keystore.ErrPassphraseRequired
	ErrPassphraseNotUsed  = keystore.ErrPassphraseNotUsed
	ErrWrongSecret        = keystore.ErrWrongSecret
	ErrMissingSecret      = keystore.ErrMissingSecret
	ErrUnsupportedVersion = keystore.ErrUnsupportedVersion
	ErrPermissions        = keystore.ErrPermissions
	ErrWrongKind          = keystore.ErrWrongKind
	ErrIDMismatch         = keystore.ErrIDMismatch
	ErrInvalidParams      = keystore.ErrInvalidParams
	ErrKeystoreClosed     = keystore.ErrClosed

	// Connections and messages.
	ErrTooLarge        = link.ErrTooLarge
	ErrNodeClosed      = link.ErrClosed
	ErrNotConnected    = link.ErrNotConnected
	ErrQueueFull       = link.ErrQueueFull
	ErrNoRoute         = transport.ErrNoRoute
	ErrUnknownAgent    = transport.ErrUnknownAgent
	ErrAuthFailed      = transport.ErrAuthFailed
	ErrAuthTimeout     = transport.ErrAuthTimeout
	ErrPeerMismatch    = transport.ErrPeerMismatch
	ErrNotPostQuantum  = transport.ErrNotPostQuantum
	ErrSelfConnect     = transport.ErrSelfConnect
	ErrBadConfig       = transport.ErrBadConfig
	ErrConnLimit       = transport.ErrConnLimit
	ErrCooldown        = transport.ErrCooldown
	ErrPeerClosed      = transport.ErrPeerClosed
	ErrMessageTooLarge = wire.ErrTooLarge

	// Publish/subscribe.
	ErrPayloadTooLarge = pubsub.ErrPayloadTooLarge

	// Signatures and certificates.
	ErrBadSignature     = identity.ErrBadSignature
	ErrBadKey           = identity.ErrBadKey
	ErrCertExpired      = identity.ErrCertExpired
	ErrCertWrongMachine = identity.ErrCertWrongMachine
	ErrCertKeyMismatch  = identity.ErrCertKeyMismatch
	ErrCertBadSignature = identity.ErrCertBadSignature
	ErrCertMalformed    = identity.ErrCertMalformed
)

// KDFParams are Argon2id parameters for passphrase-sealed key files and
// bundles (see Builder.WithKDF).
type KDFParams = keystore.KDFParams

// DefaultKDFParams returns the Argon2id parameters used when none are set.
func DefaultKDFParams() KDFParams { return keystore.DefaultKDFParams() }

// MaxPayload is the largest payload Publish accepts.
const MaxPayload = pubsub.MaxPayload
