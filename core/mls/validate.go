package mls

import (
	"bytes"
	"fmt"
	"slices"
	"time"
)

// Validation of leaf nodes (RFC 9420 section 7.3), key packages (section
// 10.1), extension lists (section 13.4) and the tree-wide invariants a
// group's ratchet tree must keep after every commit and on join (sections
// 7.3, 11.1 and 12.4.3.1).

// Extension types of RFC 9420 section 17.3; all five are "default" types
// that capabilities need not list.
const (
	extApplicationID        uint16 = 1
	extRatchetTree          uint16 = 2
	extRequiredCapabilities uint16 = 3
	extExternalPub          uint16 = 4
	extExternalSenders      uint16 = 5
)

// isDefaultExtension reports whether t is one of RFC 9420's extension
// types, which every implementation supports.
func isDefaultExtension(t uint16) bool { return t >= extApplicationID && t <= extExternalSenders }

// isDefaultProposal reports whether t is one of RFC 9420's proposal types.
func isDefaultProposal(t uint16) bool {
	return t >= proposalAdd && t <= proposalGroupContextExtensions
}

// checkExtensionList fails if exts holds two extensions of one type (RFC
// 9420 section 13.4).
func checkExtensionList(exts []extension) error {
	seen := make(map[uint16]bool, len(exts))
	for _, x := range exts {
		if seen[x.typ] {
			return fmt.Errorf("%w: extension type %d appears twice", ErrInvalidValue, x.typ)
		}
		seen[x.typ] = true
	}
	return nil
}

// extensionTypes returns the types of exts.
func extensionTypes(exts []extension) []uint16 {
	out := make([]uint16, len(exts))
	for i, x := range exts {
		out[i] = x.typ
	}
	return out
}

// findExtension returns the data of the extension of type typ, if any.
func findExtension(exts []extension, typ uint16) ([]byte, bool) {
	for _, x := range exts {
		if x.typ == typ {
			return x.data, true
		}
	}
	return nil, false
}

// requiredCapabilities is the required_capabilities extension (RFC 9420
// section 11.1).
type requiredCapabilities struct {
	extensions, proposals, credentials []uint16
}

// groupRequirements returns the required_capabilities extension of a
// group's extensions (nil if absent), checking the list for duplicates.
func groupRequirements(exts []extension) (*requiredCapabilities, error) {
	if err := checkExtensionList(exts); err != nil {
		return nil, err
	}
	data, ok := findExtension(exts, extRequiredCapabilities)
	if !ok {
		return nil, nil
	}
	rc := new(requiredCapabilities)
	if err := decodeAll("RequiredCapabilities", data, func(d *decoder) {
		rc.extensions = unmarshalU16s(d)
		rc.proposals = unmarshalU16s(d)
		rc.credentials = unmarshalU16s(d)
	}); err != nil {
		return nil, err
	}
	return rc, nil
}

// checkCapabilities checks that ln supports what the group uses: its
// required capabilities and every non-default group context extension
// (RFC 9420 sections 7.3, 11.1 and 13.4), and that ln lists its own
// credential type and non-default extension types.
func checkCapabilities(ln *leafNode, groupExts []extension, rc *requiredCapabilities) error {
	c := &ln.capabilities
	if !slices.Contains(c.credentials, ln.credential.typ) {
		return fmt.Errorf("%w: credential type %d not in its capabilities", ErrInvalidLeafNode, ln.credential.typ)
	}
	if err := checkExtensionList(ln.extensions); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidLeafNode, err)
	}
	if t, ok := missing(extensionTypes(ln.extensions), c.extensions, isDefaultExtension); ok {
		return fmt.Errorf("%w: extension type %d not in its capabilities", ErrInvalidLeafNode, t)
	}
	if t, ok := missing(extensionTypes(groupExts), c.extensions, isDefaultExtension); ok {
		return fmt.Errorf("%w: group context extension type %d not supported", ErrInvalidLeafNode, t)
	}
	if rc != nil {
		if t, ok := missing(rc.extensions, c.extensions, isDefaultExtension); ok {
			return fmt.Errorf("%w: required extension type %d not supported", ErrInvalidLeafNode, t)
		}
		if t, ok := missing(rc.proposals, c.proposals, isDefaultProposal); ok {
			return fmt.Errorf("%w: required proposal type %d not supported", ErrInvalidLeafNode, t)
		}
		if t, ok := missing(rc.credentials, c.credentials, nil); ok {
			return fmt.Errorf("%w: required credential type %d not supported", ErrInvalidLeafNode, t)
		}
	}
	return nil
}

// missing returns a value of want (other than an implied one) that have
// lacks. Long lists are compared through a set, so hostile lists cost
// linear time.
func missing(want, have []uint16, implied func(uint16) bool) (uint16, bool) {
	contains := func(t uint16) bool { return slices.Contains(have, t) }
	if len(want)*len(have) > 1024 {
		set := make(map[uint16]bool, len(have))
		for _, t := range have {
			set[t] = true
		}
		contains = func(t uint16) bool { return set[t] }
	}
	for _, t := range want {
		if (implied == nil || !implied(t)) && !contains(t) {
			return t, true
		}
	}
	return 0, false
}

// leafPolicy is what leaf validation needs from the group's configuration.
type leafPolicy struct {
	now                time.Time // zero: lifetimes are not checked
	maxLifetime        time.Duration
	validateCredential func(Credential, []byte) error
}

// checkLifetime checks a key_package leaf's lifetime against now and the
// maximum total lifetime.
func (p *leafPolicy) checkLifetime(ln *leafNode) error {
	if p.now.IsZero() {
		return nil
	}
	now := p.now.Unix()
	if now < 0 || uint64(now) < ln.notBefore || uint64(now) > ln.notAfter {
		return fmt.Errorf("%w: lifetime [%d, %d] does not include now (%d)", ErrInvalidLeafNode, ln.notBefore, ln.notAfter, now)
	}
	if total := ln.notAfter - ln.notBefore; p.maxLifetime >= 0 && total > uint64(p.maxLifetime/time.Second) {
		return fmt.Errorf("%w: lifetime of %d s exceeds the maximum of %v", ErrInvalidLeafNode, total, p.maxLifetime)
	}
	return nil
}

// validateLeafNode checks ln as leaf l of group groupID (RFC 9420 section
// 7.3): its source, its signature, its credential (by the application's
// validator), its capabilities against the group's extensions, and for a
// key_package source its lifetime. Tree-wide rules (unique keys, credential
// types supported by all) are checked by validateTreeLeaves.
func validateLeafNode(s Suite, ln *leafNode, source uint8, groupID []byte, l uint32, groupExts []extension, p *leafPolicy) error {
	if ln.source != source {
		return fmt.Errorf("%w: leaf node source %d, want %d", ErrInvalidLeafNode, ln.source, source)
	}
	if err := verifyLeafSignature(s, ln, groupID, l); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidLeafNode, err)
	}
	if p.validateCredential != nil {
		if err := p.validateCredential(exportCredential(&ln.credential), bytes.Clone(ln.signatureKey)); err != nil {
			return fmt.Errorf("%w: credential rejected: %w", ErrInvalidLeafNode, err)
		}
	}
	rc, err := groupRequirements(groupExts)
	if err != nil {
		return fmt.Errorf("%w: group extensions: %w", ErrInvalidLeafNode, err)
	}
	if err := checkCapabilities(ln, groupExts, rc); err != nil {
		return err
	}
	if source == leafSourceKeyPackage {
		return p.checkLifetime(ln)
	}
	return nil
}

// validateKeyPackage checks a KeyPackage for use in group gc (RFC 9420
// section 10.1): suite and version, the leaf node as a key_package leaf,
// the KeyPackage signature, init key distinct from the encryption key, and
// its extensions.
func validateKeyPackage(s Suite, kp *keyPackage, groupExts []extension, p *leafPolicy) error {
	if kp.version != protocolVersionMLS10 || kp.cipherSuite != s.ID() {
		return fmt.Errorf("%w: version %d, cipher suite %v", ErrInvalidKeyPackage, kp.version, kp.cipherSuite)
	}
	if err := validateLeafNode(s, &kp.leafNode, leafSourceKeyPackage, nil, 0, groupExts, p); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	var e encoder
	kp.marshalTBS(&e)
	tbs, err := e.bytes()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	if err := s.VerifyWithLabel(kp.leafNode.signatureKey, "KeyPackageTBS", tbs, kp.signature); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	if bytes.Equal(kp.initKey, kp.leafNode.encryptionKey) {
		return fmt.Errorf("%w: init key equals the encryption key", ErrInvalidKeyPackage)
	}
	if err := checkExtensionList(kp.extensions); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	if t, ok := missing(extensionTypes(kp.extensions), kp.leafNode.capabilities.extensions, isDefaultExtension); ok {
		return fmt.Errorf("%w: extension type %d not in its capabilities", ErrInvalidKeyPackage, t)
	}
	return nil
}

// validateTreeLeaves checks the invariants that span the whole tree (RFC
// 9420 sections 7.3, 11.1 and 12.4.3.1): every member supports the group's
// extensions and required capabilities and every credential type in use;
// signature keys are unique among leaves and encryption keys among all
// nodes.
func validateTreeLeaves(t *publicTree, groupExts []extension) error {
	rc, err := groupRequirements(groupExts)
	if err != nil {
		return fmt.Errorf("%w: group extensions: %w", ErrInvalidTree, err)
	}
	used := map[uint16]bool{}
	sigKeys := map[string]uint32{}
	encKeys := map[string]uint32{}
	for x, n := range t.nodes {
		if n == nil {
			continue
		}
		var enc []byte
		if n.leaf != nil {
			l := leafOfNode(uint32(x))
			if err := checkCapabilities(n.leaf, groupExts, rc); err != nil {
				return fmt.Errorf("%w: leaf %d: %w", ErrInvalidTree, l, err)
			}
			used[n.leaf.credential.typ] = true
			if prev, dup := sigKeys[string(n.leaf.signatureKey)]; dup {
				return fmt.Errorf("%w: leaves %d and %d share a signature key", ErrInvalidTree, prev, l)
			}
			sigKeys[string(n.leaf.signatureKey)] = l
			enc = n.leaf.encryptionKey
		} else {
			enc = n.parent.encryptionKey
		}
		if prev, dup := encKeys[string(enc)]; dup {
			return fmt.Errorf("%w: nodes %d and %d share an encryption key", ErrInvalidTree, prev, x)
		}
		encKeys[string(enc)] = uint32(x)
	}
	for l := range t.size.leaves() {
		ln := t.leaf(l)
		if ln == nil {
			continue
		}
		for ct := range used {
			if !slices.Contains(ln.capabilities.credentials, ct) {
				return fmt.Errorf("%w: leaf %d does not support credential type %d in use", ErrInvalidTree, l, ct)
			}
		}
	}
	return nil
}

// verifyUnmergedLeaves checks that each unmerged leaf of a parent is listed
// once, and also by every non-blank node between the leaf and that parent
// (RFC 9420 section 12.4.3.1; newPublicTree checked that it is a non-blank
// descendant).
func (t *publicTree) verifyUnmergedLeaves() error {
	for i, n := range t.nodes {
		if n == nil || n.parent == nil {
			continue
		}
		p := uint32(i)
		seen := make(map[uint32]bool, len(n.parent.unmergedLeaves))
		for _, l := range n.parent.unmergedLeaves {
			if seen[l] {
				return fmt.Errorf("%w: node %d lists unmerged leaf %d twice", ErrInvalidTree, p, l)
			}
			seen[l] = true
			path, err := t.size.directPath(nodeOfLeaf(l))
			if err != nil {
				return fmt.Errorf("%w: %w", ErrInvalidTree, err)
			}
			for _, x := range path {
				if x == p {
					break
				}
				if m := t.nodes[x]; m != nil && !slices.Contains(m.parent.unmergedLeaves, l) {
					return fmt.Errorf("%w: node %d lacks unmerged leaf %d listed above it", ErrInvalidTree, x, l)
				}
			}
		}
	}
	return nil
}
