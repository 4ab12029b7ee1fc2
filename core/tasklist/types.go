package tasklist

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
	"lukechampine.com/blake3"
)

// Domain-separation contexts for the BLAKE3 derivations of IDs.
const (
	listIDContext = "x0x/v1/tasklist/list-id"
	taskIDContext = "x0x/v1/tasklist/task-id"
)

// Limits on task fields, checked at the API (ErrTooLong, which matches
// ErrInvalid too) and on received deltas (dropped as invalid).
const (
	// MaxTitleLen is the largest title, in bytes of UTF-8.
	MaxTitleLen = 1 << 10
	// MaxDescriptionLen is the largest description, in bytes of UTF-8.
	MaxDescriptionLen = 16 << 10
	// MaxNameLen is the largest list name, in bytes of UTF-8.
	MaxNameLen = 1 << 10
	// MaxWriters bounds the agents granted write access to one list.
	MaxWriters = 1024
)

// ListID names a task list: BLAKE3 (derive-key mode, domain-separated) of
// its creator, name and a random nonce. It encodes in CBOR as a 32-byte
// byte string.
type ListID [32]byte

// NewListID derives the ID of a list created by creator under name with a
// random nonce (16 bytes from a CSPRNG make IDs unique). It is
// deterministic: the same inputs give the same ID in every implementation.
func NewListID(creator identity.AgentID, name string, nonce [16]byte) ListID {
	msg := make([]byte, 0, 32+16+8+len(name))
	msg = append(msg, creator[:]...)
	msg = append(msg, nonce[:]...)
	msg = appendUint64(msg, uint64(len(name)))
	msg = append(msg, name...)
	var id ListID
	blake3.DeriveKey(id[:], listIDContext, msg)
	return id
}

// String returns the ID in lowercase hex.
func (id ListID) String() string { return hex.EncodeToString(id[:]) }

// MarshalCBOR encodes id as a 32-byte byte string.
func (id ListID) MarshalCBOR() ([]byte, error) { return wire.Marshal(id[:]) }

// UnmarshalCBOR decodes a 32-byte byte string; any other length is an
// error wrapping ErrMalformed.
func (id *ListID) UnmarshalCBOR(data []byte) error {
	return unmarshalID32(data, (*[32]byte)(id), "list id")
}

// TaskID names a task: BLAKE3 (derive-key mode, domain-separated) of the
// list, the author and the author's delta sequence number of the delta that
// created it. Unique (an author's sequence numbers are never reused) and
// verifiable by every replica. It encodes in CBOR as a 32-byte byte string.
type TaskID [32]byte

// NewTaskID derives the ID of the task created by author's seq-th delta in
// list. Replicas recompute it to check received creations.
func NewTaskID(list ListID, author identity.AgentID, seq uint64) TaskID {
	msg := make([]byte, 0, 32+32+8)
	msg = append(msg, list[:]...)
	msg = append(msg, author[:]...)
	msg = appendUint64(msg, seq)
	var id TaskID
	blake3.DeriveKey(id[:], taskIDContext, msg)
	return id
}

// String returns the ID in lowercase hex.
func (id TaskID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 4 bytes in hex, for logs.
func (id TaskID) Short() string { return hex.EncodeToString(id[:4]) }

// MarshalCBOR encodes id as a 32-byte byte string.
func (id TaskID) MarshalCBOR() ([]byte, error) { return wire.Marshal(id[:]) }

// UnmarshalCBOR decodes a 32-byte byte string; any other length is an
// error wrapping ErrMalformed.
func (id *TaskID) UnmarshalCBOR(data []byte) error {
	return unmarshalID32(data, (*[32]byte)(id), "task id")
}

func unmarshalID32(data []byte, out *[32]byte, what string) error {
	var b []byte
	if err := wire.Unmarshal(data, &b, what); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(b) != 32 {
		return fmt.Errorf("%w: %s is %d bytes, want 32", ErrMalformed, what, len(b))
	}
	copy(out[:], b)
	return nil
}

func appendUint64(b []byte, v uint64) []byte {
	return append(b, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// Errors. Use errors.Is: returned errors wrap them with detail.
var (
	// ErrTaskNotFound: no live task has this ID (never created here, or
	// removed).
	ErrTaskNotFound = errors.New("tasklist: task not found")
	// ErrTaskDone: the task is done; claiming or completing it again needs
	// a Reopen first.
	ErrTaskDone = errors.New("tasklist: task is done")
	// ErrNotClaimed: Complete on a task nobody has claimed.
	ErrNotClaimed = errors.New("tasklist: task is not claimed")
	// ErrClaimedByOther: Complete (or Claim) on a task another agent holds.
	ErrClaimedByOther = errors.New("tasklist: task is claimed by another agent")
	// ErrNotWriter: this agent may not write to the list (the creator has
	// not granted it access and the list is not open, or this replica has
	// not yet received the list's creation), or, for AddWriter,
	// RemoveWriter and SetOpen, is not the list's creator.
	ErrNotWriter = errors.New("tasklist: not a writer of this list")
	// ErrClosed: the list (or store) has been closed.
	ErrClosed = errors.New("tasklist: closed")
	// ErrInvalid: an argument is out of range (field too long, invalid
	// UTF-8, a task moved after itself, a bad Config).
	ErrInvalid = errors.New("tasklist: invalid argument")
	// ErrTooLong: a name, title or description is over its limit
	// (MaxNameLen, MaxTitleLen, MaxDescriptionLen). It wraps ErrInvalid,
	// so errors.Is(err, ErrInvalid) holds for it too.
	ErrTooLong = fmt.Errorf("%w: field too long", ErrInvalid)
	// ErrMalformed: encoded input (network or store) is not a well-formed
	// encoding of the expected type.
	ErrMalformed = errors.New("tasklist: malformed encoding")
	// ErrBadSignature: a delta's signature does not verify with its
	// author's key, or the key does not hash to the author.
	ErrBadSignature = errors.New("tasklist: bad delta signature")
	// ErrRejected: a well-formed, signed delta breaks a rule (wrong list,
	// claim for another agent, unknown task its dependencies should cover,
	// counters out of line); see the wrapped detail.
	ErrRejected = errors.New("tasklist: delta rejected")
	// ErrStoreCorrupt: the store file, or a list's records in it, cannot be
	// read as a task-list store. The file is left untouched.
	ErrStoreCorrupt = errors.New("tasklist: store is corrupt")
	// ErrStoreForeign: the file is a valid database of something else. It
	// is left untouched.
	ErrStoreForeign = errors.New("tasklist: store file belongs to something else")
	// ErrStoreFailed: a write to the store failed; the list refuses further
	// local operations (reopen it to recover the last durable state).
	ErrStoreFailed = errors.New("tasklist: store write failed")
)

// State is a task's checkbox.
type State uint8

// Checkbox states. Done beats Claimed, which beats Empty.
const (
	// Empty: nobody has claimed the task.
	Empty State = iota
	// Claimed: at least one agent has claimed it (Task.Claimant is the winner).
	Claimed
	// Done: at least one agent has completed it (Task.Claimant did).
	Done
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case Empty:
		return "empty"
	case Claimed:
		return "claimed"
	case Done:
		return "done"
	}
	return "invalid"
}

// OpKind is the kind of an operation (and of the signed delta carrying it).
type OpKind uint8

// Operation kinds. The numbers are part of the wire format.
const (
	// OpInit creates the list (carries its name); Change.Task is zero.
	OpInit OpKind = iota + 1
	// OpAdd adds a task.
	OpAdd
	// OpUpdate changes task fields.
	OpUpdate
	// OpClaim claims a task for the author.
	OpClaim
	// OpComplete marks a task done by the author.
	OpComplete
	// OpReopen clears a task's claims and completions.
	OpReopen
	// OpMove moves a task.
	OpMove
	// OpRemove removes a task.
	OpRemove
	// OpWriters grants or revokes an agent's write access, or opens or
	// closes the list to every agent; only the list's creator makes it
	// (Change.Task is zero).
	OpWriters
)

var opNames = [...]string{"invalid", "init", "add", "update", "claim", "complete", "reopen", "move", "remove", "writers"}

var opPurposes = [...]string{"", wire.PurposeTaskListInit, wire.PurposeTaskAdd, wire.PurposeTaskUpdate,
	wire.PurposeTaskClaim, wire.PurposeTaskComplete, wire.PurposeTaskReopen, wire.PurposeTaskMove, wire.PurposeTaskRemove,
	wire.PurposeTaskWriters}

// String returns the kind's name.
func (k OpKind) String() string {
	if k.valid() {
		return opNames[k]
	}
	return opNames[0]
}

func (k OpKind) valid() bool { return k >= OpInit && k <= OpWriters }

// purpose returns the signing purpose of deltas of kind k.
func (k OpKind) purpose() string { return opPurposes[k] }

// Task is one task as a snapshot shows it. It is a value: the caller owns
// it (Claims is a fresh slice).
type Task struct {
	// ID names the task.
	ID TaskID
	// Title and Description are last-writer-wins fields.
	Title, Description string
	// Assignee is a last-writer-wins field; the zero AgentID means nobody.
	Assignee identity.AgentID
	// Priority is a last-writer-wins field (0 unless set).
	Priority uint8
	// State is the checkbox.
	State State
	// Claimant is the agent whose claim won (State Claimed) or whose
	// completion counts (State Done); zero when Empty.
	Claimant identity.AgentID
	// Claims are the agents holding a claim, winner first (earliest claim
	// by hybrid logical clock, AgentID bytes as the tie-break).
	Claims []identity.AgentID
	// CreatedBy is the agent that added the task.
	CreatedBy identity.AgentID
	// CreatedAt is the creator's hybrid-logical-clock wall time at creation.
	CreatedAt time.Time
}

// Update names the fields List.Update changes; nil fields stay as they are.
type Update struct {
	// Title, if not nil, is the new title (at most MaxTitleLen bytes).
	Title *string
	// Description, if not nil, is the new description (at most
	// MaxDescriptionLen bytes).
	Description *string
	// Assignee, if not nil, is the new assignee; the zero AgentID
	// unassigns.
	Assignee *identity.AgentID
	// Priority, if not nil, is the new priority.
	Priority *uint8
}

// Change reports one operation applied to the list, local or remote.
type Change struct {
	// Task is the task the operation concerns (zero for OpInit).
	Task TaskID
	// Author is the agent that made the operation.
	Author identity.AgentID
	// Kind is the operation.
	Kind OpKind
	// Local is true for operations made through this List's methods (and
	// false for operations replayed from the store at Open: those are not
	// reported at all).
	Local bool
}

// Drops counts received input that was discarded, by reason.
type Drops struct {
	// Malformed: frames or deltas that do not decode.
	Malformed uint64
	// BadSignature: deltas whose signature or key does not check.
	BadSignature uint64
	// UnknownAuthor: deltas whose author's key is unknown when they become
	// applicable (their author's first delta is missing or was forged).
	UnknownAuthor uint64
	// WrongList: deltas or frames for another list.
	WrongList uint64
	// WrongAgent: claims, completions or reopens made for another agent,
	// or CRDT operations not minted by the delta's author.
	WrongAgent uint64
	// UnknownTask: deltas naming a task (or position) their dependencies
	// should cover but this replica does not know.
	UnknownTask uint64
	// Invalid: other rule violations (bad task ID, counters out of line,
	// field limits, inconsistent dependencies).
	Invalid uint64
	// Equivocation: a validly signed delta that differs from the one this
	// replica holds for the same author and sequence number.
	Equivocation uint64
	// NotWriter: deltas whose author could not write to the list as of the
	// delta's causal past (not the creator, not granted, list not open),
	// and list creations by an agent that did not create the list.
	NotWriter uint64
	// BadTime: deltas whose timestamp is not after every delta they depend
	// on, or is further ahead of this replica's clock than the allowed
	// drift (such a delta is fetched again by catch-up later).
	BadTime uint64
	// Forbidden: claims of a task that is done or held by another agent,
	// and completions by an agent that does not hold the winning claim, as
	// of the delta's causal past.
	Forbidden uint64
	// PendingFull: deltas that arrived out of order and found the pending
	// buffer full (they are fetched again by catch-up).
	PendingFull uint64
	// InboxFull: received payloads dropped because the processing queue was
	// full.
	InboxFull uint64
	// ChangesFull: Change events dropped because the Changes channel was full.
	ChangesFull uint64
	// SendErrors: Broadcast or Send calls that returned an error.
	SendErrors uint64
}

// Stats are a List's counters (a copy).
type Stats struct {
	// LocalOps and RemoteOps count operations applied (replayed ones at
	// Open count in Replayed).
	LocalOps, RemoteOps, Replayed uint64
	// FromSnapshot is how many of the Replayed operations Open restored
	// from the store's compacted snapshot instead of replaying them.
	FromSnapshot uint64
	// SnapshotErrors counts snapshots Open could not use (it replayed the
	// whole log instead) and snapshots that could not be written.
	SnapshotErrors uint64
	// Duplicates counts received deltas this replica already had.
	Duplicates uint64
	// Skipped counts the deltas this replica took as superseded without
	// receiving them, named by the gaps in compacted catch-up answers
	// (state transfers, see the package doc); Unverified is how many of
	// them it has still not received (it asks the peers it syncs with to
	// send any that are not superseded for them); Filled counts skipped
	// deltas received and applied later.
	Skipped, Filled, Unverified uint64
	// DeltasOmitted counts the superseded deltas this replica left out of
	// its compacted catch-up answers.
	DeltasOmitted uint64
	// Pending is how many received deltas wait for their dependencies now.
	Pending int
	// DeltasBroadcast counts local deltas broadcast.
	DeltasBroadcast uint64
	// DeltasSent counts deltas sent in catch-up frames; DeltasReceived
	// counts deltas received (broadcast or catch-up), before validation.
	DeltasSent, DeltasReceived uint64
	// SyncRequestsSent and SyncRequestsReceived count catch-up requests.
	SyncRequestsSent, SyncRequestsReceived uint64
	// BytesSent and BytesReceived count payload bytes through Transport.
	BytesSent, BytesReceived uint64
	// Drops counts discarded input by reason.
	Drops Drops
}
