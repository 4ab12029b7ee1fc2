// Package group runs x0x's private groups on core/mls (RFC 9420) with x0x's
// post-quantum cipher suite: a Group is one member's replica of one group,
// fed the MLS messages that reach it over the group's topic and handing
// back what to publish, deliver and report through its Config.
//
// # Members
//
// A member's MLS signature key is its agent's ML-DSA-65 key and its basic
// credential is its AgentID, so every member checks, for every leaf it
// receives, that the credential is the ID of the signature key: no member
// can pose as another agent. Proposals, commits and application data all
// travel as PrivateMessages: forwarders that are not members read nothing
// but the group ID's hash (the topic), the epoch and the content type.
//
// # Commit ordering without a server
//
// MLS assumes that a delivery service orders commits; x0x has none, so two
// members may commit in the same epoch. Every member applies the same fork
// choice: of the commits made in one epoch, the one whose message has the
// lowest BLAKE3 hash wins. A member applies the first valid commit it sees
// at once (commits are rare and usually uncontested) but keeps, for the
// last Config.ForkWindow epochs, a copy of its state from before each
// commit; when a competing commit of such an epoch arrives and its hash is
// lower, the member rolls back to that copy, applies the winner and
// replays what it buffered. Every member that receives the same commits
// therefore ends in the same epoch with the same tree, whatever the order
// of arrival.
//
// The side that lost re-proposes: a member whose own commit was undone
// commits its removals and key update again on the winning epoch, and asks
// its Config.Reinvite to invite again the agents it had added that the
// winner did not add (their key packages were used up by the lost
// Welcome). Application messages are never lost: each carries its sender's
// sequence number, every member re-sends its own messages sent in an epoch
// that lost (receivers drop the copies they already have by sequence
// number), and messages a member cannot read yet (from a later epoch, or a
// branch it has not switched to) wait in a bounded buffer and are retried
// after every epoch change.
//
// A commit older than the fork window can no longer win; the window is
// the bound on how long members keep old epochs' secrets (forward secrecy
// is delayed by at most ForkWindow epochs, or ForkTime).
//
// # Leaving, declining, presence and task lists
//
// MLS does not let a member remove itself, so Leave sends a leave request
// (an application message only the group can read); the remaining members
// commit the removal, the lowest leaf first and the others after a
// rank-ordered delay if it did not. A declined invitation is turned into a
// removal by the inviter the same way. Presence beacons are application
// messages too, so only members see who is online. Task lists of a group
// are sealed with ChaCha20-Poly1305 under keys derived from the epoch's
// MLS exporter (Seal, Open); their writers are the group's members.
package group
