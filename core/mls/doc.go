// Package mls implements the Messaging Layer Security protocol (RFC 9420)
// for x0x groups.
//
// The package is built bottom-up and is held to the MLS working group's
// official test vectors (github.com/mlswg/mls-implementations) for every
// cipher suite 1-7; vectors_test.go runs them all (its pendingKinds table of
// unimplemented vector kinds is empty).
//
// Layers, each in its own file:
//
//   - codec.go: the TLS presentation language (RFC 9420 section 2.1) with
//     MLS variable-length vector headers. Every decoder is bounded by its
//     input, returns a *DecodeError and never panics.
//   - treemath.go: node index arithmetic of the left-balanced binary tree
//     (RFC 9420 appendix C).
//   - suite.go, hpke.go, signature.go: the cipher suites behind the Suite
//     interface (hash, HKDF, MAC, AEAD, HPKE, signatures) and the labelled
//     MLS functions (ExpandWithLabel, DeriveSecret, RefHash, SignWithLabel,
//     EncryptWithLabel, ...).
//   - secrettree.go: the secret tree and per-sender hash ratchets with a
//     bounded out-of-order window (RFC 9420 section 9).
//   - keyschedule.go, psk.go: epoch secrets, exporter and PSK secret (RFC
//     9420 section 8).
//   - structs.go, framing.go: the wire structs (KeyPackage, LeafNode,
//     Proposal, Commit, Welcome, GroupInfo, MLSMessage, ...).
//   - transcript.go: confirmed / interim transcript hashes and the
//     confirmation tag (RFC 9420 section 8.2).
//   - protect.go: PublicMessage / PrivateMessage protection (RFC 9420
//     section 6).
//   - welcome.go: KeyPackageRef / ProposalRef, decrypting a Welcome's
//     GroupSecrets and GroupInfo, GroupInfo signatures.
//   - ratchettree.go: the public ratchet tree: import / export, resolution,
//     tree hashes, parent-hash and leaf-signature validation, and the tree
//     changes of Add, Update and Remove.
//   - treekem.go: TreeKEM (RFC 9420 sections 7.4-7.6): filtered direct
//     paths, UpdatePath creation (path secrets, node keys, encryption to
//     the copath resolutions, parent hashes), merging and decryption, the
//     commit secret, and each member's private view of the tree.
//   - validate.go, keypackage.go: leaf node, key package, extension and
//     tree-wide validation (sections 7.3, 10.1, 11.1, 12.4.3.1); Config,
//     Credential and key package creation.
//   - group.go, join.go, proposals.go, commit.go, process.go: the group
//     state machine (sections 11 and 12): CreateGroup, JoinGroup (Welcome),
//     proposals, commits and their validation (sections 12.1-12.4),
//     Process for everything received, Protect for application data,
//     exporters and epoch authenticators.
//   - clone.go, state.go: deep copies of a member's state (Group.Clone,
//     for fork choice) and its versioned, checksummed storage encoding
//     (Group.MarshalState, UnmarshalState), validated when loaded.
//   - peek.go: the clear header of a group message (PeekMessage), to route
//     it without keys.
//   - keypackage_store.go: storing a key package with its private keys
//     (PrivateKeyPackage.MarshalPrivate, UnmarshalPrivateKeyPackage).
//   - errors.go: the error categories the group layer returns.
//
// # Group API
//
// A member creates a group (CreateGroup) or joins one from a Welcome with
// the private half of the key package it was added with (NewKeyPackage,
// JoinGroup). It proposes changes (ProposeAdd, ProposeUpdate,
// ProposeRemove, ProposeExternalPSK, ProposeResumptionPSK,
// ProposeGroupContextExtensions) and commits them (Commit, then
// MergePendingCommit once the delivery service accepted the commit); it
// passes every message it receives to Process, which returns application
// data or applies proposals and commits; it encrypts application data with
// Protect and derives secrets with Export. PeekMessage reads a message's
// group, epoch and content type before it is processed, Clone copies the
// state (to return to it if a competing commit wins), and MarshalState /
// UnmarshalState and MarshalPrivate / UnmarshalPrivateKeyPackage store the
// state and unused key packages. Every input is bounded by
// Config.MaxMessageSize (a stored one by Config.MaxStateSize) before it is
// decoded, every error wraps one of the
// categories in errors.go (or is a *DecodeError), and a failed call leaves
// the state unchanged.
//
// Not implemented (refused with ErrUnsupported): ReInit and ExternalInit
// proposals, external commits, resumption PSKs for reinit and branch, and
// messages from external or new-member senders. The group layer can
// reinitialize a group by creating a new one.
//
// Secrets are []byte values the package zeroes when it deletes them (epoch,
// ratchet, tree and path secrets, private keys); callers own the slices they
// are given and get.
package mls
