package crdt

import (
	"bytes"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// Timestamp is a hybrid logical clock reading: wall-clock milliseconds since
// the Unix epoch, a logical counter that orders events within one
// millisecond, and the replica that produced it. Timestamps are totally
// ordered by (Wall, Logical, Replica bytes); the zero Timestamp sorts first
// and means "never".
type Timestamp struct {
	// Wall is physical time in milliseconds since the Unix epoch.
	Wall uint64
	// Logical orders events that share a Wall value.
	Logical uint32
	// Replica breaks ties between replicas (compared as bytes).
	Replica ReplicaID
}

// Compare returns -1, 0 or +1 as t sorts before, equal to or after o.
func (t Timestamp) Compare(o Timestamp) int {
	switch {
	case t.Wall < o.Wall:
		return -1
	case t.Wall > o.Wall:
		return 1
	case t.Logical < o.Logical:
		return -1
	case t.Logical > o.Logical:
		return 1
	}
	return bytes.Compare(t.Replica[:], o.Replica[:])
}

// IsZero reports whether t is the zero Timestamp.
func (t Timestamp) IsZero() bool { return t == Timestamp{} }

// String formats t for logs.
func (t Timestamp) String() string {
	return fmt.Sprintf("%d.%d@%s", t.Wall, t.Logical, t.Replica.Short())
}

type timestampWire struct {
	_       struct{} `cbor:",toarray"`
	Wall    uint64
	Logical uint32
	Replica []byte
}

// MarshalCBOR encodes t as [wall, logical, replica].
func (t Timestamp) MarshalCBOR() ([]byte, error) {
	return wire.Marshal(timestampWire{Wall: t.Wall, Logical: t.Logical, Replica: t.Replica[:]})
}

// UnmarshalCBOR decodes t; a replica that is not 32 bytes is a
// *FormatError. On error t is unchanged.
func (t *Timestamp) UnmarshalCBOR(data []byte) error {
	var w timestampWire
	if err := wire.Unmarshal(data, &w, "timestamp"); err != nil {
		return err
	}
	if len(w.Replica) != len(ReplicaID{}) {
		return malformed("timestamp", "replica is %d bytes, want 32", len(w.Replica))
	}
	*t = Timestamp{Wall: w.Wall, Logical: w.Logical, Replica: ReplicaID(w.Replica)}
	return nil
}

// DefaultMaxDrift is how far ahead of the local physical clock a remote
// timestamp may be before HLC.Update refuses it.
const DefaultMaxDrift = time.Minute

// HLC is a hybrid logical clock for one replica. Its readings never go
// backwards, stay close to physical time, and after Update(t) every reading
// is greater than t. Safe for concurrent use.
type HLC struct {
	clk      clock.Clock
	replica  ReplicaID
	maxDrift uint64 // milliseconds

	mu      sync.Mutex
	wall    uint64
	logical uint32
}

// NewHLC returns a clock for replica reading physical time from clk.
// maxDrift bounds how far ahead of physical time Update accepts a remote
// timestamp; maxDrift <= 0 selects DefaultMaxDrift.
func NewHLC(clk clock.Clock, replica ReplicaID, maxDrift time.Duration) *HLC {
	if maxDrift <= 0 {
		maxDrift = DefaultMaxDrift
	}
	return &HLC{clk: clk, replica: replica, maxDrift: uint64(maxDrift / time.Millisecond)}
}

func (h *HLC) physical() uint64 {
	ms := h.clk.Now().UnixMilli()
	if ms < 0 {
		return 0
	}
	return uint64(ms)
}

// Now returns a timestamp greater than every timestamp this clock has
// returned or been updated with.
func (h *HLC) Now() Timestamp {
	pt := h.physical()
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case pt > h.wall:
		h.wall, h.logical = pt, 0
	case h.logical < math.MaxUint32:
		h.logical++
	case h.wall < math.MaxUint64:
		// Logical counter exhausted within one millisecond: borrow from the
		// next millisecond (the wall clock will catch up).
		h.wall, h.logical = h.wall+1, 0
	}
	return Timestamp{Wall: h.wall, Logical: h.logical, Replica: h.replica}
}

// Update records a timestamp received from another replica so that later
// readings sort after it. If remote is more than the maximum drift ahead of
// the local physical clock it returns ErrClockDrift and leaves the clock
// unchanged.
func (h *HLC) Update(remote Timestamp) error {
	pt := h.physical()
	if remote.Wall > pt && remote.Wall-pt > h.maxDrift {
		return fmt.Errorf("%w: %d ms ahead, limit %d ms", ErrClockDrift, remote.Wall-pt, h.maxDrift)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if remote.Wall > h.wall || (remote.Wall == h.wall && remote.Logical > h.logical) {
		h.wall, h.logical = remote.Wall, remote.Logical
	}
	return nil
}

// Replica returns the replica the clock stamps its readings with.
func (h *HLC) Replica() ReplicaID { return h.replica }
