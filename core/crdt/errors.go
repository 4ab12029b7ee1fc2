package crdt

import (
	"errors"
	"fmt"
)

// Errors reported by this package. Use errors.Is to test for them.
var (
	// ErrMalformed is wrapped by every *FormatError: encoded input that is
	// not a well-formed, canonical encoding of the expected type.
	ErrMalformed = errors.New("crdt: malformed encoding")
	// ErrConflict means two definitions of one operation (the same dot)
	// differ, or a dot is claimed by two elements. It indicates a faulty or
	// malicious peer, or a ReplicaID used by two live replicas.
	ErrConflict = errors.New("crdt: conflicting definitions of one operation")
	// ErrCounterRange means a counter is zero or above MaxCounter, or a
	// replica has used up its counters.
	ErrCounterRange = errors.New("crdt: counter out of range")
	// ErrPendingFull means an RGA merge would buffer more operations whose
	// references are still unknown than the replica's MaxPending allows.
	ErrPendingFull = errors.New("crdt: too many operations waiting for unknown references")
	// ErrUnknownElement means a local operation named an element the replica
	// does not have.
	ErrUnknownElement = errors.New("crdt: unknown element")
	// ErrRemoved means a local operation named an element that has been
	// removed.
	ErrRemoved = errors.New("crdt: element has been removed")
	// ErrIndexRange means a position is outside the visible sequence.
	ErrIndexRange = errors.New("crdt: index out of range")
	// ErrClockDrift means a remote HLC timestamp is further ahead of the
	// local physical clock than the HLC's maximum drift allows.
	ErrClockDrift = errors.New("crdt: remote timestamp too far in the future")
)

// FormatError describes why encoded input was rejected. It wraps
// ErrMalformed.
type FormatError struct {
	// What names the type being decoded, e.g. "rga delta".
	What string
	// Reason says what is wrong, e.g. "replica index 7 out of range".
	Reason string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("crdt: malformed %s: %s", e.What, e.Reason)
}

// Unwrap returns ErrMalformed.
func (e *FormatError) Unwrap() error { return ErrMalformed }

func malformed(what, format string, args ...any) error {
	return &FormatError{What: what, Reason: fmt.Sprintf(format, args...)}
}
