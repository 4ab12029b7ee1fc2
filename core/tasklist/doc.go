// Package tasklist implements x0x task lists: a replicated, ordered list of
// tasks with a claim/complete checkbox, built on core/crdt and synced
// between agents as signed deltas.
//
// # State
//
// Each task has last-writer-wins registers (crdt.LWWRegister, hybrid
// logical clock, AgentID bytes as the tie-break) for title, description,
// assignee and priority, and a check set: an add-wins OR-Set
// (crdt.ORSet) holding an "alive" element (task existence), Claimed(agent)
// and Done(agent) elements stamped with the claim's HLC time. A task
// exists while "alive" is in its set, so a remove concurrent with any edit,
// claim or move loses (add wins: every edit re-adds "alive"). Every delta
// on a task removes the "alive" elements made by the deltas in its causal
// past, and a reopen the claims and completions made in its past,
// whatever its check-set context names (for the deltas the API makes, it
// names exactly those): so a task's live elements follow from the causal
// order of its deltas, which lets a replica skip superseded deltas (see
// Sync). Done beats Claimed; of concurrent claims the earliest (HLC, then AgentID bytes)
// wins and all are listed in Task.Claims. Reopen removes the claims and
// completions it has seen, so an unseen concurrent claim survives. The
// order of tasks is a crdt.RGA of TaskIDs (insert after, move); removed
// tasks keep their RGA slot and are hidden.
//
// # Deltas
//
// Every local operation becomes one Delta: {list, author, seq (per author,
// contiguous from 1), deps (the author's version vector), HLC timestamp,
// kind, the operation's fields and its CRDT deltas}, encoded with
// core/wire and signed once by the author with ML-DSA-65 under a context
// per operation kind (wire.PurposeTask*), so the signature binds the kind.
// The author's public key travels in its seq 1 delta; AgentID must be its
// hash. Relays forward deltas unchanged.
//
// A replica applies a delta when it is the author's next (seq ==
// vv[author]+1) and every dependency is applied: delivery is causal.
// Earlier deltas are held in a bounded pending buffer and a catch-up is
// started. Before applying, a replica checks the signature and that the
// delta is consistent with the causal past it claims: the right list; a
// claim/completion/reopen names its author as the agent; every CRDT dot is
// minted by the author with counters in line (no skipping ahead); the task
// and positions it names are known; an added task's ID is
// NewTaskID(list, author, seq). Deltas that fail are dropped and counted
// (Stats.Drops); they never change state or the store, and do not use up
// the author's sequence number.
//
// # Who may write, and the rules every replica enforces on receipt
//
// A list's ID is NewListID(creator, name, nonce) and its creation (the
// OpInit delta) carries the nonce, so only the creator can create it. The
// creator may write; others only if the creator granted them (OpWriters,
// AddWriter/RemoveWriter) or declared the list open (OpenToAll, SetOpen).
// Every rule is checked against the state the delta's causal past (its
// version vector) describes, never against deltas concurrent with it, so
// every replica accepts or rejects a delta alike whatever the arrival
// order; the local API applies the same rules before signing, so honest
// deltas are never rejected. A delta is rejected (Stats.Drops, and it
// does not use up its author's sequence number) when:
//   - its author was not a writer as of the creator's deltas it depends
//     on, or it is an OpInit not by the creator, or an OpWriters not by
//     the creator (Drops.NotWriter);
//   - its timestamp is not after every delta it depends on, or is more
//     than the HLC drift (one minute) ahead of the receiver's clock; such
//     a delta is fetched again by catch-up later (Drops.BadTime);
//   - it names a task whose creation is not in its causal past
//     (Drops.UnknownTask);
//   - it claims a task that its causal past shows done or claimed by
//     another agent, or completes a task whose winning (earliest) claim in
//     its causal past is not its author's (Drops.Forbidden).
//
// A replica that took a state transfer (see Sync) does not hold the
// superseded history some of these rules judge by: it bounds a skipped
// dependency's time by the latest earlier one of its author it holds,
// checks check-set counters for freshness only, and judges a claim or
// completion without the skipped claims in its past (those a reopen in
// that past removed do not count anyway). An honest delta it refuses for
// lack of history (a completion by a writer that had not seen a reopen,
// whose winning claim was skipped) it accepts once a peer's repair answer
// has brought what it lacks and catch-up brings the delta again. A writer
// that breaks a rule only skipped history shows can get that delta
// accepted there and refused by replicas with the full history: a
// disagreement about its own delta, like the one equivocation already
// allows, and no power it lacks otherwise.
//
// What these rules cannot do: a writer may stamp an operation anywhere
// after its causal past, so a writer that hides a claim it has seen (by
// not depending on it) can still make an earlier concurrent claim that
// wins; and a revoked writer whose deltas do not depend on its revocation
// is still judged by the grant it depends on. Grant write access only to
// agents you trust to follow the protocol; strangers change nothing.
//
// # Sync
//
// Local deltas are broadcast (Transport.Broadcast). Catch-up: on PeerUp,
// every SyncInterval (with one random peer) and when a gap is detected, a
// replica sends a SyncRequest with its version vector; the receiver
// answers with exactly the deltas the requester lacks, in causal order, in
// frames of at most SyncChunkSize and at most MaxSyncBytes per request
// (the requester asks again for more), and asks back if the requester has
// deltas it lacks.
//
// A requester that lacks at least 256 deltas (a late joiner) receives
// state instead of history: only the effective signed deltas (each field's
// current value, live claims and completions, every task's creation and
// causal frontier, the order, the writers, what the rules need to judge
// those and later deltas), in frames whose gaps in an author's sequence
// numbers name the superseded deltas it skips (Stats.Skipped). It verifies
// every delta it applies; a sender cannot make it take merged state on its
// word. It sends what it skipped (packed, bounded) in its next requests to
// every peer, which answer with what of it is effective for them: so what
// a hostile sender withheld, or made stale, is repaired by the first
// honest peer it syncs with. See statesync.go for the design and its
// limits.
//
// # Persistence
//
// A Store (bbolt) keeps every list's signed delta log in apply order, the
// authors' keys and the list name. A local operation is committed
// (fsynced) before it is broadcast and before the API call returns;
// received deltas are committed once per received frame. The store also
// keeps a compacted snapshot of each list's merged state (snapshot.go),
// written on Close and after every max(4096, n/4) logged deltas: Open
// restores it and applies only the deltas logged after it, without
// verifying their signatures again (they were verified on receipt). A
// snapshot that is missing, of another format version, torn or otherwise
// unusable is detected (BLAKE3 checksum, bounded decoding, consistency
// checks) and Open replays the whole log instead, verifying every
// signature. The signed deltas stay in the log, and sync sends them
// unchanged (a restored list reads them from the store when asked). The
// log also records the numbers a state transfer skipped, where the list
// first relied on them, and the store keeps the transfer's checkpoint.
// Damaged or foreign files are typed errors and are never modified.
//
// # Concurrency
//
// A List is safe for concurrent use. It owns one worker goroutine, which
// processes received payloads (HandleBroadcast, HandleDirect never block:
// they queue, and drop and count when the queue is full), and one timer;
// Close stops both.
package tasklist
