package crdt

import (
	"bytes"
	"fmt"

	"github.com/saorsa-labs/x0x-go/core/identity"
)

// ReplicaID identifies a replica: the identity.AgentID of the agent that
// writes through it. Replica IDs are ordered by their bytes.
type ReplicaID = identity.AgentID

// MaxCounter is the largest counter a dot may carry (2^53-1, so counters are
// exact in every language binding). Counters start at 1; 0 means "none".
const MaxCounter = 1<<53 - 1

// Dot names one operation: the Counter-th event of Replica. The zero Dot
// names nothing; RGA uses it for the head of the sequence.
type Dot struct {
	// Replica is the replica that created the operation.
	Replica ReplicaID
	// Counter is the operation's counter, in [1, MaxCounter].
	Counter uint64
}

// IsZero reports whether d is the zero Dot (the RGA head).
func (d Dot) IsZero() bool { return d == Dot{} }

// Compare orders dots by counter, then by replica bytes: the portable total
// order used to break ties between concurrent operations. It returns -1, 0
// or +1.
func (d Dot) Compare(o Dot) int {
	switch {
	case d.Counter < o.Counter:
		return -1
	case d.Counter > o.Counter:
		return 1
	}
	return bytes.Compare(d.Replica[:], o.Replica[:])
}

// String formats d as "<replica short hex>:<counter>" for logs.
func (d Dot) String() string {
	if d.IsZero() {
		return "head"
	}
	return fmt.Sprintf("%s:%d", d.Replica.Short(), d.Counter)
}

func compareReplica(a, b ReplicaID) int { return bytes.Compare(a[:], b[:]) }

// nextCounter returns c+1, or ErrCounterRange if that exceeds MaxCounter.
func nextCounter(c uint64) (uint64, error) {
	if c >= MaxCounter {
		return 0, fmt.Errorf("%w: counter %d exhausted", ErrCounterRange, c)
	}
	return c + 1, nil
}
