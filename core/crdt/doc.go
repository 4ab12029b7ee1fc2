// Package crdt implements the conflict-free replicated data types x0x task
// lists are built from: an add-wins observed-remove set (ORSet), a
// last-writer-wins register stamped by a hybrid logical clock
// (LWWRegister, HLC) and a replicated growable array with moves (RGA).
//
// All three are delta-state CRDTs. Every local mutation returns a small
// delta; a delta is itself a (partial) state, so deltas can be joined with
// each other, merged into any replica in any order, duplicated or dropped
// and re-sent, and a replica's full state is just a delta that covers
// everything. ORSet and RGA can also produce the delta a peer is missing
// given the peer's VersionVector (DeltaSince).
//
// Identity. A replica is identified by a ReplicaID, the 32-byte
// identity.AgentID of the agent that writes through it. Every operation gets
// a Dot (replica, counter). Ties between concurrent operations are broken by
// comparing counters and then replica bytes lexicographically, a total order
// that any implementation can reproduce (no language-specific hashing).
// One ReplicaID must be written by one live replica at a time: two replicas
// minting dots under the same ID produce conflicting operations, which merges
// report as ErrConflict.
//
// Causal context. ORSet and RGA keep a DotSet of every dot they have seen,
// stored as sorted ranges per replica (a version vector plus a "dot cloud",
// compacted automatically), so no tombstones are needed to remember what was
// removed from an ORSet. The RGA keeps removed elements as tombstones (they
// anchor later inserts); compacting causally stable tombstones is not
// implemented.
//
// Wire format. Every delta and register implements cbor.Marshaler and
// cbor.Unmarshaler and is meant to be encoded with core/wire. Encodings are
// canonical (sorted, deterministic) and decoding is strict: any malformed or
// non-canonical input is rejected with an error wrapping ErrMalformed
// (*FormatError), never a panic. Semantic problems found while merging a
// well-formed delta are reported as ErrConflict, ErrCounterRange or
// ErrPendingFull, and a merge that fails leaves the replica unchanged.
//
// Concurrency. ORSet, RGA, LWWRegister and the delta types are not safe for
// concurrent use; their owner serialises access. HLC is safe for concurrent
// use.
package crdt
