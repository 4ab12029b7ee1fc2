package mls

import (
	"bytes"
	"crypto/rand"
	"fmt"
)

// Creating a group (RFC 9420 section 11) and joining one from a Welcome
// (section 12.4.3.1).

// CreateGroup creates a one-member group with ID groupID in cipher suite
// cs, whose founder has credential cred and signature private key sigPriv
// (cfg nil: defaults). Group IDs should be unique, e.g. random (RFC 9420
// section 11).
func CreateGroup(cs CipherSuite, groupID []byte, cred Credential, sigPriv []byte, cfg *Config) (*Group, error) {
	c := cfg.resolve()
	s, err := cs.Suite()
	if err != nil {
		return nil, err
	}
	sigPub, err := s.SignaturePublicKey(sigPriv)
	if err != nil {
		return nil, err
	}
	encPriv, encPub, err := s.GenerateHPKEKeyPair()
	if err != nil {
		return nil, err
	}
	priv := newPrivateTree(0)
	priv.set(0, nodeKey{priv: encPriv, pub: encPub})
	ok := false
	defer func() {
		if !ok {
			priv.wipe()
		}
	}()
	ln, err := newKeyPackageLeaf(s, &c, cred, sigPriv, sigPub, encPub)
	if err != nil {
		return nil, err
	}
	tree, err := newPublicTree(ratchetTree{{leaf: ln}})
	if err != nil {
		return nil, err
	}
	treeHash, err := tree.rootHash(s)
	if err != nil {
		return nil, err
	}
	gc := &groupContext{version: protocolVersionMLS10, cipherSuite: cs, groupID: bytes.Clone(groupID),
		treeHash: treeHash, confirmedTranscriptHash: []byte{}, extensions: []extension{}}
	encGC, err := encodeGroupContext(gc)
	if err != nil {
		return nil, err
	}
	// The first epoch's secrets come from a random secret (here the
	// joiner secret, from which the epoch secret is derived).
	joiner := make([]byte, s.HashSize())
	if _, err := rand.Read(joiner); err != nil {
		return nil, err
	}
	es, err := deriveEpochSecrets(s, joiner, nil, encGC)
	zero(joiner)
	if err != nil {
		return nil, err
	}
	tag := confirmationTag(s, es.confirmation, gc.confirmedTranscriptHash)
	interim, err := interimTranscriptHash(s, gc.confirmedTranscriptHash, tag)
	if err != nil {
		es.wipe()
		return nil, err
	}
	st, err := newEpochState(s, gc, tree, priv, es, interim, tag)
	if err != nil {
		es.wipe()
		return nil, err
	}
	ok = true
	return newGroup(s, &c, sigPriv, st), nil
}

// newGroup wraps a first epoch state as an active group.
func newGroup(s Suite, c *Config, sigPriv []byte, st *epochState) *Group {
	g := &Group{cfg: *c, suite: s, sigPriv: bytes.Clone(sigPriv), st: st, active: true}
	g.storeResumption()
	return g
}

// JoinGroup joins a group from a Welcome message addressed to kp. The
// ratchet tree comes from ratchetTree (the ratchet_tree extension's
// encoding, as Group.RatchetTree returns) if it is non-nil, else from the
// Welcome's GroupInfo. Everything RFC 9420 section 12.4.3.1 requires is
// checked: the GroupInfo signature and confirmation tag, the tree hash,
// parent hashes, every leaf node and unmerged leaf, and that kp's leaf is
// in the tree. Checking that the group ID is not one the caller is already
// in is the caller's. kp's private keys are copied; Wipe it after.
func JoinGroup(welcomeMsg []byte, kp *PrivateKeyPackage, ratchetTree []byte, cfg *Config) (*Group, error) {
	c := cfg.resolve()
	if kp == nil || kp.initPriv == nil {
		return nil, fmt.Errorf("%w: no key package private keys", ErrInvalidKeyPackage)
	}
	if err := c.checkSize("welcome", welcomeMsg); err != nil {
		return nil, err
	}
	if ratchetTree != nil {
		if err := c.checkSize("ratchet tree", ratchetTree); err != nil {
			return nil, err
		}
	}
	m, err := decodeMLSMessage(welcomeMsg)
	if err != nil {
		return nil, err
	}
	if m.welcome == nil {
		return nil, fmt.Errorf("%w: MLSMessage of wire format %d", ErrInvalidWelcome, m.wireFormat)
	}
	s := kp.suite
	w := m.welcome
	if w.cipherSuite != s.ID() {
		return nil, fmt.Errorf("%w: welcome for cipher suite %v, key package of %v", ErrInvalidWelcome, w.cipherSuite, s.ID())
	}
	gs, err := openGroupSecrets(s, w, kp.ref, kp.initPriv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidWelcome, err)
	}
	defer func() {
		zero(gs.joinerSecret)
		zero(gs.pathSecret)
	}()
	for _, id := range gs.psks {
		if len(id.pskNonce) != s.HashSize() {
			return nil, fmt.Errorf("%w: PSK nonce of %d bytes", ErrInvalidWelcome, len(id.pskNonce))
		}
	}
	// A joiner holds no resumption PSKs of the group; external ones come
	// from the configuration.
	psk, err := lookupPSKs(s, &c, gs.psks, nil)
	if err != nil {
		return nil, err
	}
	defer zero(psk)
	welcomeSecret, err := deriveWelcomeSecret(s, gs.joinerSecret, psk)
	if err != nil {
		return nil, err
	}
	gi, err := openGroupInfo(s, w, welcomeSecret)
	zero(welcomeSecret)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidWelcome, err)
	}
	if err := checkExtensionList(gi.extensions); err != nil {
		return nil, fmt.Errorf("%w: GroupInfo: %w", ErrInvalidWelcome, err)
	}
	gc := &gi.groupContext
	if ratchetTree == nil {
		data, ok := findExtension(gi.extensions, extRatchetTree)
		if !ok {
			return nil, fmt.Errorf("%w: no ratchet tree in the welcome and none given", ErrInvalidWelcome)
		}
		ratchetTree = data
	}
	tree, err := importTree(s, ratchetTree, gc)
	if err != nil {
		return nil, err
	}
	signer := tree.leaf(gi.signer)
	if signer == nil {
		return nil, fmt.Errorf("%w: GroupInfo signer %d is not a member", ErrInvalidWelcome, gi.signer)
	}
	if err := verifyGroupInfo(s, gi, signer.signatureKey); err != nil {
		return nil, fmt.Errorf("%w: GroupInfo: %w", ErrInvalidWelcome, err)
	}
	if err := validateJoinedTree(s, tree, gc, c.leafPolicy()); err != nil {
		return nil, err
	}
	// This member's leaf: the one identical to the key package's.
	myLeaf, err := findLeaf(tree, &kp.kp.leafNode)
	if err != nil {
		return nil, err
	}
	priv := newPrivateTree(myLeaf)
	ok := false
	defer func() {
		if !ok {
			priv.wipe()
		}
	}()
	priv.set(nodeOfLeaf(myLeaf), nodeKey{priv: bytes.Clone(kp.encPriv), pub: bytes.Clone(kp.kp.leafNode.encryptionKey)})
	if gs.hasPathSecret {
		path, _, err := tree.filteredDirectPath(gi.signer)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidWelcome, err)
		}
		lca := commonAncestor(nodeOfLeaf(myLeaf), nodeOfLeaf(gi.signer))
		i := 0
		for i < len(path) && path[i] != lca {
			i++
		}
		if i == len(path) {
			return nil, fmt.Errorf("%w: path secret for node %d, not on the signer's filtered direct path", ErrInvalidWelcome, lca)
		}
		keys, err := pathKeysFromSecret(s, tree, path, i, gs.pathSecret)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidWelcome, err)
		}
		priv.mergeKeys(keys)
	}
	encGC, err := encodeGroupContext(gc)
	if err != nil {
		return nil, err
	}
	es, err := deriveEpochSecrets(s, gs.joinerSecret, psk, encGC)
	if err != nil {
		return nil, err
	}
	if err := verifyConfirmationTag(s, es.confirmation, gc.confirmedTranscriptHash, gi.confirmationTag); err != nil {
		es.wipe()
		return nil, fmt.Errorf("%w: %w", ErrInvalidWelcome, err)
	}
	interim, err := interimTranscriptHash(s, gc.confirmedTranscriptHash, gi.confirmationTag)
	if err != nil {
		es.wipe()
		return nil, err
	}
	st, err := newEpochState(s, gc, tree, priv, es, interim, gi.confirmationTag)
	if err != nil {
		es.wipe()
		return nil, err
	}
	ok = true
	return newGroup(s, &c, kp.sigPriv, st), nil
}

// importTree decodes a ratchet_tree extension for group context gc and
// checks its shape and its root hash against gc's tree hash.
func importTree(s Suite, b []byte, gc *groupContext) (*publicTree, error) {
	var rt ratchetTree
	if err := decodeAll("ratchet tree", b, rt.unmarshal); err != nil {
		return nil, err
	}
	tree, err := newPublicTree(rt)
	if err != nil {
		return nil, err
	}
	h, err := tree.rootHash(s)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(h, gc.treeHash) {
		return nil, fmt.Errorf("%w: tree hash does not match the group context", ErrInvalidTree)
	}
	return tree, nil
}

// validateJoinedTree checks a joined group's tree (RFC 9420 section
// 12.4.3.1): parent hashes, unmerged leaves, every leaf node (signature,
// credential, capabilities against the group's extensions) and the
// tree-wide invariants. Lifetimes of the leaves already in the tree are
// not checked: a member that joined long ago and never updated keeps its
// key package's lifetime, and RFC 9420 section 7.3 only recommends the
// check.
func validateJoinedTree(s Suite, tree *publicTree, gc *groupContext, policy *leafPolicy) error {
	if err := tree.verifyParentHashes(s); err != nil {
		return err
	}
	if err := tree.verifyUnmergedLeaves(); err != nil {
		return err
	}
	noLifetime := leafPolicy{validateCredential: policy.validateCredential}
	for l := range tree.size.leaves() {
		ln := tree.leaf(l)
		if ln == nil {
			continue
		}
		if err := validateLeafNode(s, ln, ln.source, gc.groupID, l, gc.extensions, &noLifetime); err != nil {
			return fmt.Errorf("%w: leaf %d: %w", ErrInvalidTree, l, err)
		}
	}
	return validateTreeLeaves(tree, gc.extensions)
}

// findLeaf returns the index of the leaf identical to ln.
func findLeaf(t *publicTree, ln *leafNode) (uint32, error) {
	want, err := encode(ln)
	if err != nil {
		return 0, err
	}
	for l := range t.size.leaves() {
		if n := t.leaf(l); n != nil && bytes.Equal(n.encryptionKey, ln.encryptionKey) {
			got, err := encode(n)
			if err == nil && bytes.Equal(got, want) {
				return l, nil
			}
		}
	}
	return 0, fmt.Errorf("%w: the key package's leaf is not in the tree", ErrInvalidWelcome)
}
