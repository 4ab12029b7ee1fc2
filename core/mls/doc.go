// Package mls implements the Messaging Layer Security protocol (RFC 9420)
// for x0x groups.
//
// The package is built bottom-up and is held to the MLS working group's
// official test vectors (github.com/mlswg/mls-implementations) for every
// cipher suite 1-7; vectors_test.go runs them and lists, in pendingKinds,
// the vector kinds whose layer is not implemented yet.
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
//
// Not yet implemented (see pendingKinds in vectors_test.go): TreeKEM
// (UpdatePath creation and processing, path secrets, the commit secret) and
// the group state machine that joins by Welcome and processes commits.
//
// Secrets are []byte values the package zeroes when it deletes them (ratchet
// and tree secrets); callers own the slices they are given.
package mls
