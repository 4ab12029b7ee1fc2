// Package wire holds x0x's CBOR codec, size limits and domain-separated
// signing contexts. Every layer encodes what it sends with this package so
// that the limits applied to network input are the same everywhere.
package wire

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Limits applied when decoding untrusted CBOR.
const (
	// MaxMessageSize is the largest encoded message any decoder accepts.
	MaxMessageSize = 16 << 20
	// MaxNesting bounds the depth of nested arrays and maps.
	MaxNesting = 16
	// MaxElements bounds the length of any one array, map or byte string header.
	MaxElements = 1 << 20
)

// ErrTooLarge is returned for input larger than MaxMessageSize.
var ErrTooLarge = errors.New("wire: message exceeds size limit")

// DecodeError reports CBOR input that could not be decoded into the target type.
type DecodeError struct {
	// What names the type that was being decoded.
	What string
	// Err is the underlying codec error.
	Err error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("wire: decode %s: %v", e.What, e.Err) }

// Unwrap returns the underlying codec error.
func (e *DecodeError) Unwrap() error { return e.Err }

// Limit bounds the number of elements in any one array or map that a
// decoder accepts, so that a small message cannot make it allocate many
// elements (a 1 MB array of a million empty maps decoded into structs costs
// tens of megabytes). Each message type decodes with the smallest Limit its
// valid messages fit in.
type Limit uint8

// Element limits for UnmarshalLimit.
const (
	// LimitDefault allows MaxElements (what Unmarshal applies).
	LimitDefault Limit = iota
	// LimitSmall allows 64 elements: control messages.
	LimitSmall
	// LimitMedium allows 4,096 elements: batches of IDs or certificates.
	LimitMedium
	numLimits
)

// elements returns the element bound of l.
func (l Limit) elements() int {
	switch l {
	case LimitSmall:
		return 64
	case LimitMedium:
		return 4096
	}
	return MaxElements
}

// Codec is an immutable pair of CBOR encode/decode modes: deterministic
// (RFC 8949 core) encoding, so that signed bytes are stable, and strict
// decoding with bounded sizes and no duplicate map keys.
type Codec struct {
	enc cbor.EncMode
	dec [numLimits]cbor.DecMode // one per Limit
}

// NewCodec builds the x0x codec. It only fails if the library rejects the
// fixed options, which a test guards against.
func NewCodec() (*Codec, error) {
	enc, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		return nil, err
	}
	c := &Codec{enc: enc}
	for l := range numLimits {
		c.dec[l], err = cbor.DecOptions{
			DupMapKey:         cbor.DupMapKeyEnforcedAPF,
			MaxNestedLevels:   MaxNesting,
			MaxArrayElements:  l.elements(),
			MaxMapPairs:       l.elements(),
			IndefLength:       cbor.IndefLengthForbidden,
			TagsMd:            cbor.TagsForbidden,
			ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		}.DecMode()
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// std is the codec every package uses; it is never modified after init.
var std = mustCodec()

func mustCodec() *Codec {
	c, err := NewCodec()
	if err != nil {
		panic(err) // fixed options: cannot happen at run time (covered by TestNewCodec)
	}
	return c
}

// Marshal encodes v deterministically.
func Marshal(v any) ([]byte, error) { return std.enc.Marshal(v) }

// Unmarshal decodes exactly one CBOR item from data into v. Trailing bytes,
// oversized input and malformed input are errors (*DecodeError or ErrTooLarge);
// what names the target in the error message.
func Unmarshal(data []byte, v any, what string) error {
	return UnmarshalLimit(data, v, what, LimitDefault)
}

// UnmarshalLimit is Unmarshal with at most limit's number of elements in
// any array or map of data (more is a *DecodeError, found before the
// elements are allocated).
func UnmarshalLimit(data []byte, v any, what string, limit Limit) error {
	if len(data) > MaxMessageSize {
		return ErrTooLarge
	}
	if limit >= numLimits {
		limit = LimitDefault
	}
	rest, err := std.dec[limit].UnmarshalFirst(data, v)
	if err != nil {
		return &DecodeError{What: what, Err: err}
	}
	if len(rest) != 0 {
		return &DecodeError{What: what, Err: fmt.Errorf("%d trailing bytes", len(rest))}
	}
	return nil
}

// SigContext returns the ML-DSA context string for a signing purpose:
// "x0x/v1/<purpose>". Each purpose is used for exactly one kind of signed
// object, so a signature can never be replayed as another kind.
func SigContext(purpose string) []byte { return []byte("x0x/v1/" + purpose) }

// Signing purposes used across x0x. Add new ones here so that the list of
// domains stays in one place.
const (
	PurposeAgentCert = "agent-cert"
	PurposePeerAuth  = "peer-auth"
	PurposeBundle    = "bundle"
	// PurposeAddrRecord signs a node's address record (core/membership).
	PurposeAddrRecord = "addr-record"
)

// Signing purposes of the pub/sub overlay.
const (
	// PurposePubSubMessage signs a published message's header (origin signature).
	PurposePubSubMessage = "pubsub-message"
)

// Signing purposes of task lists (core/tasklist): one per operation kind, so
// a signed delta can never be replayed as an operation of another kind.
const (
	// PurposeTaskListInit signs a list's creation delta (name and creator).
	PurposeTaskListInit = "tasklist-init"
	// PurposeTaskAdd signs a delta that adds a task.
	PurposeTaskAdd = "tasklist-add"
	// PurposeTaskUpdate signs a delta that changes task fields.
	PurposeTaskUpdate = "tasklist-update"
	// PurposeTaskClaim signs a delta that claims a task for its author.
	PurposeTaskClaim = "tasklist-claim"
	// PurposeTaskComplete signs a delta that marks a task done by its author.
	PurposeTaskComplete = "tasklist-complete"
	// PurposeTaskReopen signs a delta that reopens a task.
	PurposeTaskReopen = "tasklist-reopen"
	// PurposeTaskWriters signs a delta by which a list's creator grants or
	// revokes write access or opens the list to everyone.
	PurposeTaskWriters = "tasklist-writers"
	// PurposeTaskMove signs a delta that moves a task.
	PurposeTaskMove = "tasklist-move"
	// PurposeTaskRemove signs a delta that removes a task.
	PurposeTaskRemove = "tasklist-remove"
)
