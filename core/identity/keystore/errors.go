package keystore

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors about a file are returned as a *FileError that
// names the file and wraps one of these (usually with detail), so callers
// match them with errors.Is and show the error to a person as is. Errors
// about an export bundle wrap them the same way, without a path.
var (
	// ErrNotFound: the key file does not exist (Load*Key only; the
	// LoadOrCreate* methods create the key instead).
	ErrNotFound = errors.New("not found")
	// ErrCorrupt: the file is truncated, not CBOR, not an x0x keystore file,
	// fails its checksum, or holds key bytes that are not a valid ML-DSA-65
	// private key.
	ErrCorrupt = errors.New("corrupt")
	// ErrWrongPassphrase: the file is intact (its checksum matches) but does
	// not decrypt with the passphrase given. For a key file this can also
	// mean that local.secret is not the one that sealed the file; the two
	// cannot be told apart without weakening the seal.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrPassphraseRequired: the file is passphrase-protected and no
	// passphrase was given (or an export/import was attempted with an empty
	// passphrase).
	ErrPassphraseRequired = errors.New("passphrase required")
	// ErrPassphraseNotUsed: a passphrase was given but the key file was
	// sealed without one. The store refuses rather than silently ignoring
	// the passphrase, so nobody believes a key is protected when it is not.
	ErrPassphraseNotUsed = errors.New("file is not passphrase-protected but a passphrase was given")
	// ErrWrongSecret: an intact key file sealed without a passphrase does
	// not decrypt with this directory's local.secret (the secret was
	// replaced, or the key file was copied from another machine).
	ErrWrongSecret = errors.New("sealed with a different local secret")
	// ErrMissingSecret: local.secret is absent although sealed key files
	// exist, so they cannot be opened. It is never recreated in that state.
	ErrMissingSecret = errors.New("local secret missing")
	// ErrUnsupportedVersion: an x0x keystore file or bundle in a format
	// version this build does not read.
	ErrUnsupportedVersion = errors.New("unsupported format version")
	// ErrPermissions: a key file or local.secret is accessible by group or
	// other, is not a regular file, or the data directory is writable by
	// group or other. The file is refused, never "fixed".
	ErrPermissions = errors.New("unsafe permissions")
	// ErrWrongKind: the file holds another kind of key (an agent key where
	// the machine key was expected, or an export bundle instead of a key
	// file, or the reverse).
	ErrWrongKind = errors.New("wrong key kind")
	// ErrIDMismatch: a bundle decrypted to a key whose ID is not the agent
	// ID in its header.
	ErrIDMismatch = errors.New("agent ID does not match the key")
	// ErrInvalidParams: bad arguments or options (empty directory, nil key,
	// Argon2id parameters out of range).
	ErrInvalidParams = errors.New("invalid parameters")
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("store closed")
)

// FileError reports a problem with one file of the keystore (or its data
// directory). Err wraps one of the sentinel errors of this package, or an
// *os.PathError-style I/O error from the operating system.
type FileError struct {
	// Path is the file (or directory) concerned.
	Path string
	// Err is the cause; match it with errors.Is against the sentinels.
	Err error
}

// Error returns "keystore: <path>: <cause>".
func (e *FileError) Error() string { return fmt.Sprintf("keystore: %s: %v", e.Path, e.Err) }

// Unwrap returns the cause.
func (e *FileError) Unwrap() error { return e.Err }

func fileErr(path string, sentinel error, format string, args ...any) error {
	if format == "" {
		return &FileError{Path: path, Err: sentinel}
	}
	return &FileError{Path: path, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}

func bundleErr(sentinel error, format string, args ...any) error {
	if format == "" {
		return fmt.Errorf("keystore: agent bundle: %w", sentinel)
	}
	return fmt.Errorf("keystore: agent bundle: %w: "+format, append([]any{sentinel}, args...)...)
}
