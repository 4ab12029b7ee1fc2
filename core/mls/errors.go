package mls

import (
	"errors"
	"fmt"
)

// Error categories of the group layer. Every error that Group methods,
// CreateGroup, JoinGroup and the key package functions return wraps one or
// more of these (test with errors.Is), or ErrCrypto, ErrUnsupportedSuite, or
// a *DecodeError for input that does not parse; the message adds the
// detail. A call that fails leaves the group state as it was.
var (
	// ErrMessageTooLarge means an input longer than Config.MaxMessageSize,
	// refused before decoding, or an outgoing message that would be.
	ErrMessageTooLarge = errors.New("mls: message exceeds the maximum size")
	// ErrWrongGroup means a message for another group.
	ErrWrongGroup = errors.New("mls: message is for another group")
	// ErrWrongEpoch means a message for an epoch other than the current one
	// (or, for application messages, a retained past one). A message for a
	// later epoch may be retried once the group has caught up.
	ErrWrongEpoch = errors.New("mls: message is for another epoch")
	// ErrReplay means a PrivateMessage whose key was already used and
	// deleted, or has left the out-of-order window: a replay or a message
	// too old to decrypt.
	ErrReplay = errors.New("mls: message key already used or evicted")
	// ErrInvalidMessage means a message that breaks a framing rule: the
	// wrong wire format or content type for its sender, application data
	// in a PublicMessage, a generation too far ahead, non-zero padding.
	ErrInvalidMessage = errors.New("mls: invalid message")
	// ErrInvalidSender means a sender that is not a current member (a blank
	// or out-of-range leaf).
	ErrInvalidSender = errors.New("mls: sender is not a member")
	// ErrOwnMessage means a message this member sent. A member cannot
	// decrypt its own PrivateMessages (its sending ratchet deleted the
	// keys); its own commit takes effect by MergePendingCommit.
	ErrOwnMessage = errors.New("mls: message sent by this member")
	// ErrInvalidProposal means a proposal, or a commit's list of
	// proposals, that RFC 9420 sections 12.1 and 12.2 forbid.
	ErrInvalidProposal = errors.New("mls: invalid proposal")
	// ErrInvalidCommit means a commit that fails validation: a missing or
	// invalid path, a parent hash or tree hash that does not verify, a
	// confirmation tag that does not match.
	ErrInvalidCommit = errors.New("mls: invalid commit")
	// ErrInvalidKeyPackage means a KeyPackage that fails RFC 9420 section
	// 10.1 validation.
	ErrInvalidKeyPackage = errors.New("mls: invalid key package")
	// ErrInvalidLeafNode means a LeafNode that fails RFC 9420 section 7.3
	// validation (signature, source, lifetime, capabilities, uniqueness).
	ErrInvalidLeafNode = errors.New("mls: invalid leaf node")
	// ErrInvalidTree means a ratchet tree that is malformed or fails the
	// integrity checks of RFC 9420 section 12.4.3.1.
	ErrInvalidTree = errors.New("mls: invalid ratchet tree")
	// ErrInvalidWelcome means a Welcome or its GroupInfo that cannot be
	// used to join.
	ErrInvalidWelcome = errors.New("mls: invalid welcome")
	// ErrNotInWelcome means a Welcome that holds no secrets for the key
	// package it was opened with.
	ErrNotInWelcome = errors.New("mls: welcome has no entry for this key package")
	// ErrUnknownPSK means a pre-shared key that is not available.
	ErrUnknownPSK = errors.New("mls: pre-shared key not available")
	// ErrUnsupported means a valid RFC 9420 feature this package does not
	// implement: ReInit and ExternalInit proposals, external commits, and
	// messages from external or new-member senders.
	ErrUnsupported = errors.New("mls: not supported by this implementation")
	// ErrInactive means the member was removed from the group or the group
	// was closed.
	ErrInactive = errors.New("mls: not an active member of the group")
	// ErrPendingProposals means sending application data while proposals
	// of the epoch are uncommitted (RFC 9420 section 12.4 requires a
	// commit first).
	ErrPendingProposals = errors.New("mls: proposals pending: commit before sending application data")
	// ErrPendingCommit means creating a commit while this member's previous
	// commit is neither merged nor discarded, or merging when none is
	// pending.
	ErrPendingCommit = errors.New("mls: pending commit state does not allow this")
	// ErrNotGroupMessage means an MLSMessage that is not a group message
	// (a PublicMessage or PrivateMessage) where one was expected: a
	// Welcome, GroupInfo or KeyPackage. It wraps ErrInvalidMessage.
	ErrNotGroupMessage = fmt.Errorf("%w: not a PublicMessage or PrivateMessage", ErrInvalidMessage)
	// ErrInvalidState means a stored group state (UnmarshalState) that is
	// corrupt or inconsistent: its checksum does not match, or a decoded
	// value breaks an invariant of the group state (sizes, indices, keys
	// that do not match the tree, a signature private key that is not the
	// member's). Input that does not parse is a *DecodeError instead.
	ErrInvalidState = errors.New("mls: invalid stored group state")
)
