package crdt

import (
	"bytes"
	"fmt"

	"github.com/saorsa-labs/x0x-go/core/wire"
)

// LWWRegister holds one value of type T with the HLC timestamp of the write
// that produced it. Merging keeps the write with the greater timestamp
// (ties on the full timestamp, which only a faulty replica can produce, go
// to the value with the greater canonical CBOR encoding, so merge stays
// commutative). The register is its own delta: send it whole.
//
// T must be encodable with core/wire; it should not contain floating-point
// NaNs (they never compare equal). The zero LWWRegister is unset: it holds
// the zero T and the zero Timestamp, which every write beats.
type LWWRegister[T comparable] struct {
	value T
	ts    Timestamp
}

// NewLWWRegister returns a register holding v written at ts.
func NewLWWRegister[T comparable](v T, ts Timestamp) LWWRegister[T] {
	return LWWRegister[T]{value: v, ts: ts}
}

// Value returns the current value (the zero T if unset).
func (r LWWRegister[T]) Value() T { return r.value }

// Timestamp returns the timestamp of the current value.
func (r LWWRegister[T]) Timestamp() Timestamp { return r.ts }

// IsSet reports whether the register has been written.
func (r LWWRegister[T]) IsSet() bool { return !r.ts.IsZero() }

// Set writes v with a fresh timestamp from h and returns the delta to send
// (the register itself). It first feeds the current timestamp to h, so a
// local write always beats every write this register has seen; if that
// timestamp is beyond h's drift limit the write is refused with
// ErrClockDrift and the register is unchanged.
func (r *LWWRegister[T]) Set(h *HLC, v T) (LWWRegister[T], error) {
	if err := h.Update(r.ts); err != nil {
		return LWWRegister[T]{}, err
	}
	r.value, r.ts = v, h.Now()
	return *r, nil
}

// Merge joins o into r and reports whether r changed. The only error is
// from encoding values to break an exact timestamp tie (T not encodable);
// r is then unchanged. Callers that keep an HLC should also pass
// o.Timestamp() to HLC.Update.
func (r *LWWRegister[T]) Merge(o LWWRegister[T]) (bool, error) {
	switch c := o.ts.Compare(r.ts); {
	case c < 0:
		return false, nil
	case c > 0:
		*r = o
		return true, nil
	}
	if o.value == r.value {
		return false, nil
	}
	mine, err := wire.Marshal(r.value)
	if err != nil {
		return false, fmt.Errorf("crdt: lww tie-break: %w", err)
	}
	theirs, err := wire.Marshal(o.value)
	if err != nil {
		return false, fmt.Errorf("crdt: lww tie-break: %w", err)
	}
	if bytes.Compare(theirs, mine) > 0 {
		*r = o
		return true, nil
	}
	return false, nil
}

type lwwWire[T any] struct {
	_       struct{} `cbor:",toarray"`
	Value   T
	Wall    uint64
	Logical uint32
	Replica []byte
}

// MarshalCBOR encodes r as [value, wall, logical, replica].
func (r LWWRegister[T]) MarshalCBOR() ([]byte, error) {
	return wire.Marshal(lwwWire[T]{Value: r.value, Wall: r.ts.Wall, Logical: r.ts.Logical, Replica: r.ts.Replica[:]})
}

// UnmarshalCBOR decodes r. A replica that is not 32 bytes, or an unset
// (zero) timestamp with a non-zero value, is a *FormatError. On error r is
// unchanged.
func (r *LWWRegister[T]) UnmarshalCBOR(data []byte) error {
	const what = "lww register"
	var w lwwWire[T]
	if err := wire.Unmarshal(data, &w, what); err != nil {
		return err
	}
	if len(w.Replica) != len(ReplicaID{}) {
		return malformed(what, "replica is %d bytes, want 32", len(w.Replica))
	}
	ts := Timestamp{Wall: w.Wall, Logical: w.Logical, Replica: ReplicaID(w.Replica)}
	var zero T
	if ts.IsZero() && w.Value != zero {
		return malformed(what, "unset register carries a value")
	}
	*r = LWWRegister[T]{value: w.Value, ts: ts}
	return nil
}
