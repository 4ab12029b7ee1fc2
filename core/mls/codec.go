package mls

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// The TLS presentation language as MLS uses it (RFC 9420 section 2.1, RFC
// 8446 section 3): big-endian fixed-width integers, fixed-length opaque
// arrays, variable-length vectors whose length in bytes is given by an MLS
// variable-length integer header (1, 2 or 4 bytes, at most 2^30-1, minimal
// encoding required), and optional<T> (a presence octet, 0 or 1, followed by
// T when 1).
//
// Decoding is bounded: every length is checked against the bytes that are
// left before anything is sliced or copied, nothing is pre-allocated from a
// declared length, and every failure is a *DecodeError wrapping one of the
// Err* values below. Decoders never panic. What a decoder allocates is
// linear in its input: every vector element consumes at least one byte, and
// the worst case (vectors of minimal elements, each a Go struct) allocates
// about 40 bytes per input byte in total, half of it garbage from slice
// growth (TestDecodeAmplification). Callers still cap message sizes.

// Errors returned (wrapped in a *DecodeError) by decoders, and by encoders
// for ErrTooLong.
var (
	// ErrTruncated means the input ended before the value did, or a vector
	// header declared more bytes than the input holds.
	ErrTruncated = errors.New("mls: input truncated")
	// ErrNonMinimalVarint means a variable-length integer was not encoded in
	// the fewest bytes, which RFC 9420 section 2.1.2 forbids.
	ErrNonMinimalVarint = errors.New("mls: variable-length integer not minimally encoded")
	// ErrInvalidVarint means a variable-length integer had the reserved
	// two-bit prefix 0b11.
	ErrInvalidVarint = errors.New("mls: invalid variable-length integer prefix")
	// ErrTrailingData means bytes were left after a complete value.
	ErrTrailingData = errors.New("mls: trailing bytes after value")
	// ErrInvalidOptional means an optional<T> presence octet was neither 0
	// nor 1.
	ErrInvalidOptional = errors.New("mls: optional presence octet is neither 0 nor 1")
	// ErrUnknownValue means an enumeration held a reserved value or one this
	// implementation cannot parse (e.g. an unknown proposal or credential
	// type, whose body has no length prefix).
	ErrUnknownValue = errors.New("mls: reserved or unsupported enumeration value")
	// ErrInvalidValue means a field held a value its structure forbids
	// (e.g. a protocol version other than mls10, or non-zero padding).
	ErrInvalidValue = errors.New("mls: invalid field value")
	// ErrTooLong means a vector is longer than the 2^30-1 bytes a
	// variable-length header can describe.
	ErrTooLong = errors.New("mls: vector longer than 2^30-1 bytes")
)

// maxVarint is the largest value an MLS variable-length integer can hold.
const maxVarint = 1<<30 - 1

// DecodeError reports where and why decoding bytes failed.
type DecodeError struct {
	What   string // the structure being decoded, e.g. "KeyPackage"
	Offset int    // byte offset into the input where decoding failed
	Err    error  // one of ErrTruncated, ErrNonMinimalVarint, ...
}

// Error implements error.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("mls: decoding %s at byte %d: %v", e.What, e.Offset, e.Err)
}

// Unwrap returns the underlying Err* value, for errors.Is.
func (e *DecodeError) Unwrap() error { return e.Err }

// decoder reads TLS-encoded values from b. Errors are sticky: after the
// first failure every read returns a zero value and consumes nothing, so a
// struct decoder can read all its fields and check d.err once at the end.
type decoder struct {
	b      []byte
	off    int
	base   int // offset of b[0] within the outermost input
	err    error
	errOff int
}

func newDecoder(b []byte) *decoder { return &decoder{b: b} }

// fail records err at the current position unless an error is recorded.
func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
		d.errOff = d.base + d.off
	}
}

// failAt records err at start, an offset already read past (so the error
// points at the value, not after it).
func (d *decoder) failAt(start int, err error) {
	if d.err == nil {
		d.off = start
		d.fail(err)
	}
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) empty() bool { return d.err != nil || d.off >= len(d.b) }

// take returns the next n bytes, aliased into the input.
func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > d.remaining() {
		d.fail(ErrTruncated)
		return nil
	}
	v := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return v
}

func (d *decoder) u8() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if v := d.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// varint reads an MLS variable-length integer (RFC 9420 section 2.1.2).
func (d *decoder) varint() int {
	start := d.off
	b0 := d.u8()
	if d.err != nil {
		return 0
	}
	v := uint32(b0 & 0x3f)
	switch b0 >> 6 {
	case 0:
		return int(v)
	case 1:
		v = v<<8 | uint32(d.u8())
		if d.err == nil && v < 1<<6 {
			d.failAt(start, ErrNonMinimalVarint)
		}
	case 2:
		rest := d.take(3)
		if rest != nil {
			v = v<<24 | uint32(rest[0])<<16 | uint32(rest[1])<<8 | uint32(rest[2])
			if v < 1<<14 {
				d.failAt(start, ErrNonMinimalVarint)
			}
		}
	default:
		d.failAt(start, ErrInvalidVarint)
	}
	if d.err != nil {
		return 0
	}
	return int(v)
}

// version reads a ProtocolVersion, which must be mls10.
func (d *decoder) version() uint16 {
	start := d.off
	v := d.u16()
	if v != protocolVersionMLS10 {
		d.failAt(start, ErrInvalidValue)
	}
	return v
}

// opaque reads an opaque<V> and returns a copy (empty, not nil, when the
// vector is empty, so that a decoded value re-encodes identically either
// way).
func (d *decoder) opaque() []byte {
	n := d.varint()
	v := d.take(n)
	if v == nil {
		return nil
	}
	return append([]byte{}, v...)
}

// vector reads a vector header and calls elem until the vector's bytes are
// consumed. elem reads from a decoder limited to the vector; an element that
// consumes no bytes is an error (it would loop forever).
func (d *decoder) vector(elem func(*decoder)) {
	n := d.varint()
	body := d.take(n)
	if d.err != nil {
		return
	}
	sub := &decoder{b: body, base: d.base + d.off - n}
	for !sub.empty() {
		before := sub.off
		elem(sub)
		if sub.err == nil && sub.off == before {
			sub.fail(ErrInvalidValue)
		}
	}
	if sub.err != nil {
		d.err, d.errOff = sub.err, sub.errOff
	}
}

// optional reads an optional<T> presence octet.
func (d *decoder) optional() bool {
	start := d.off
	switch d.u8() {
	case 0:
		return false
	case 1:
		return true
	default:
		d.failAt(start, ErrInvalidOptional)
		return false
	}
}

// finish returns the recorded error, or ErrTrailingData if bytes are left,
// as a *DecodeError naming what.
func (d *decoder) finish(what string) error {
	if d.err == nil && d.off != len(d.b) {
		d.fail(ErrTrailingData)
	}
	if d.err != nil {
		return &DecodeError{What: what, Offset: d.errOff, Err: d.err}
	}
	return nil
}

// decodeVector reads a vector of T using elem for each element. The slice
// grows by doubling (append grows large slices by only 1.25x, which makes
// the garbage left by growth several times the final slice), so the bytes
// allocated stay within a small constant factor of the input.
func decodeVector[T any](d *decoder, elem func(*decoder) T) []T {
	var out []T
	d.vector(func(s *decoder) {
		if len(out) == cap(out) {
			grown := make([]T, len(out), max(4, 2*len(out)))
			copy(grown, out)
			out = grown
		}
		out = append(out, elem(s))
	})
	return out
}

// decodeAll decodes data with f, requiring that f consumes all of it.
func decodeAll(what string, data []byte, f func(*decoder)) error {
	d := newDecoder(data)
	f(d)
	return d.finish(what)
}

// encoder appends TLS-encoded values to b. The only error an encoder can
// meet is a vector longer than maxVarint; it is sticky and returned by
// bytes.
type encoder struct {
	b   []byte
	err error
}

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }

// raw appends bytes with no length prefix (opaque[N] and pre-encoded
// structs).
func (e *encoder) raw(v []byte) { e.b = append(e.b, v...) }

// appendVarint appends the minimal MLS variable-length encoding of n.
func appendVarint(b []byte, n int) ([]byte, error) {
	switch {
	case n < 0 || n > maxVarint:
		return b, ErrTooLong
	case n < 1<<6:
		return append(b, byte(n)), nil
	case n < 1<<14:
		return append(b, 0x40|byte(n>>8), byte(n)), nil
	default:
		return append(b, 0x80|byte(n>>24), byte(n>>16), byte(n>>8), byte(n)), nil
	}
}

func (e *encoder) varint(n int) {
	var err error
	e.b, err = appendVarint(e.b, n)
	if err != nil && e.err == nil {
		e.err = err
	}
}

// opaque appends an opaque<V>.
func (e *encoder) opaque(v []byte) {
	e.varint(len(v))
	e.b = append(e.b, v...)
}

// vector appends a vector whose elements f writes, with its length header.
func (e *encoder) vector(f func(*encoder)) {
	start := len(e.b)
	f(e)
	var hdr [4]byte
	h, err := appendVarint(hdr[:0], len(e.b)-start)
	if err != nil {
		if e.err == nil {
			e.err = err
		}
		return
	}
	e.b = slices.Insert(e.b, start, h...)
}

// optional appends an optional<T> presence octet.
func (e *encoder) optional(present bool) {
	if present {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

func (e *encoder) bytes() ([]byte, error) {
	if e.err != nil {
		return nil, e.err
	}
	return e.b, nil
}

// encodeVector appends a vector of T using elem for each element.
func encodeVector[T any](e *encoder, v []T, elem func(*encoder, T)) {
	e.vector(func(e *encoder) {
		for _, x := range v {
			elem(e, x)
		}
	})
}

// marshaler is a struct that can encode itself.
type marshaler interface{ marshal(e *encoder) }

// encode returns the TLS encoding of v.
func encode(v marshaler) ([]byte, error) {
	var e encoder
	v.marshal(&e)
	return e.bytes()
}

// labelAndBytes encodes struct { opaque label<V>; opaque value<V>; }, the
// shape of RefHashInput, SignContent and EncryptContext.
func labelAndBytes(label string, value []byte) ([]byte, error) {
	var e encoder
	e.opaque([]byte(label))
	e.opaque(value)
	return e.bytes()
}

// readVectorHeader decodes one complete variable-length vector header (and
// nothing else) and returns the length it declares.
func readVectorHeader(b []byte) (int, error) {
	d := newDecoder(b)
	n := d.varint()
	if err := d.finish("vector header"); err != nil {
		return 0, err
	}
	return n, nil
}
