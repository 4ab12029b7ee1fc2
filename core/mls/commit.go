package mls

import (
	"bytes"
	"errors"
	"fmt"
	"math"
)

// Commits (RFC 9420 section 12.4): creating one with its Welcome (section
// 12.4.1), and processing another member's (section 12.4.2).

// CommitOptions are proposals a commit makes by value, on top of the
// proposals of the epoch it includes by reference.
type CommitOptions struct {
	// Add holds the key packages (MLSMessages) of members to add.
	Add [][]byte
	// Remove holds the leaf indices of members to remove.
	Remove []uint32
}

// CommitInfo summarizes what a commit changed.
type CommitInfo struct {
	// Added holds the leaf indices of the members added.
	Added []uint32
	// Removed holds the leaf indices of the members removed.
	Removed []uint32
	// Updated holds the leaf indices of members whose Update proposals
	// were committed.
	Updated []uint32
	// SelfRemoved is true if the commit removed this member; the group is
	// then inactive and its secrets are zeroed.
	SelfRemoved bool
}

// CommitResult is a commit of this member, ready to send.
type CommitResult struct {
	// Commit is the commit message, for every current member.
	Commit []byte
	// Welcome is the Welcome message for the members the commit adds, nil
	// if it adds none.
	Welcome []byte
	// Info summarizes the commit.
	Info *CommitInfo
}

// Commit creates a commit of the epoch's pending proposals (those valid
// together: a Remove wins over Updates of the same leaf, this member's own
// Updates and Removes of itself are left to others) plus the Adds and
// Removes of opts (nil: none), always with an UpdatePath, so it also
// refreshes this member's leaf and path keys. The commit takes effect for
// this member only once MergePendingCommit is called (typically when the
// delivery service has accepted it); until then, or DiscardPendingCommit,
// no other commit can be created. Processing another member's commit of
// the same epoch discards it.
func (g *Group) Commit(opts *CommitOptions) (*CommitResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.checkActive(); err != nil {
		return nil, err
	}
	if g.pending != nil {
		return nil, fmt.Errorf("%w: a commit is pending", ErrPendingCommit)
	}
	if g.st.gc.epoch == math.MaxUint64 {
		return nil, fmt.Errorf("%w: epoch counter exhausted", ErrInvalidCommit)
	}
	if opts == nil {
		opts = &CommitOptions{}
	}
	var inline []listedProposal
	me := g.st.priv.leaf
	for _, b := range opts.Add {
		kp, err := parseKeyPackage(&g.cfg, b)
		if err != nil {
			return nil, err
		}
		inline = append(inline, listedProposal{p: &proposal{typ: proposalAdd, add: kp}, sender: me})
	}
	for _, r := range opts.Remove {
		inline = append(inline, listedProposal{p: &proposal{typ: proposalRemove, removed: r}, sender: me})
	}
	list := append(g.selectCached(inline), inline...)
	if err := g.validateProposalList(list, me); err != nil {
		return nil, err
	}
	pc, err := g.createCommit(list, true)
	if err != nil {
		return nil, err
	}
	g.pending = pc.pending
	return pc.result, nil
}

// createdCommit is a commit of this member and the state it leads to.
type createdCommit struct {
	pending *pendingCommit
	result  *CommitResult
}

// createCommit builds the commit of a validated list of proposals, with an
// UpdatePath if withPath (which the list may require).
func (g *Group) createCommit(list []listedProposal, withPath bool) (*createdCommit, error) {
	s, st := g.suite, g.st
	me := st.priv.leaf
	a, err := g.applyProposals(list)
	if err != nil {
		return nil, err
	}
	excluded := map[uint32]bool{}
	for _, l := range a.added {
		excluded[l] = true
	}
	if a.tree.leaf(me) == nil {
		return nil, fmt.Errorf("%w: the commit removes the committer", ErrInvalidProposal)
	}
	enc := &pathEncap{}
	if withPath {
		template := *a.tree.leaf(me)
		provisional := func(treeHash []byte) ([]byte, error) {
			return encodeGroupContext(&groupContext{
				version: protocolVersionMLS10, cipherSuite: s.ID(), groupID: st.gc.groupID, epoch: st.gc.epoch + 1,
				treeHash: treeHash, confirmedTranscriptHash: st.gc.confirmedTranscriptHash, extensions: a.extensions,
			})
		}
		if enc, err = encapPath(s, a.tree, me, &template, st.gc.groupID, g.sigPriv, excluded, provisional); err != nil {
			return nil, err
		}
		defer enc.wipe()
	} else if pathRequired(list) {
		return nil, fmt.Errorf("%w: the proposals require a path", ErrInvalidCommit)
	}
	if err := validateTreeLeaves(a.tree, a.extensions); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
	}

	c := &commit{path: enc.path}
	for _, lp := range list {
		if lp.ref != nil {
			c.proposals = append(c.proposals, proposalOrRef{typ: proposalOrRefRef, ref: lp.ref})
		} else {
			c.proposals = append(c.proposals, proposalOrRef{typ: proposalOrRefProposal, proposal: lp.p})
		}
	}
	content := &framedContent{
		groupID:           st.gc.groupID,
		epoch:             st.gc.epoch,
		sender:            sender{typ: senderMember, index: me},
		authenticatedData: []byte{},
		contentType:       contentCommit,
		commit:            c,
	}
	// The signature does not cover the confirmation tag, which depends on
	// the signature (through the confirmed transcript hash): sign with a
	// placeholder, then set the tag.
	ac, err := st.ctx.sign(g.handshakeWireFormat(), content, g.sigPriv, []byte{})
	if err != nil {
		return nil, err
	}
	treeHash, err := a.tree.rootHash(s)
	if err != nil {
		return nil, err
	}
	next, err := g.nextEpoch(ac, a, treeHash, enc.commitSecret)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			next.es.wipe()
		}
	}()
	ac.auth.confirmationTag = next.tag
	msg, err := g.protectAC(ac)
	if err != nil {
		return nil, err
	}
	var welcome []byte
	if len(a.added) > 0 {
		if welcome, err = g.buildWelcome(next.gc, a, enc, next.es, next.tag); err != nil {
			return nil, err
		}
	}
	priv := st.priv.clone()
	priv.mergeKeys(enc.keys)
	enc.keys = nil
	priv.prune(a.tree)
	nst, err := newEpochState(s, next.gc, a.tree, priv, next.es, next.interim, next.tag)
	if err != nil {
		priv.wipe()
		return nil, err
	}
	ok = true
	return &createdCommit{
		pending: &pendingCommit{message: msg, next: nst, info: a.info},
		result:  &CommitResult{Commit: bytes.Clone(msg), Welcome: welcome, Info: a.info},
	}, nil
}

// nextEpochSecrets is the key schedule of the epoch a commit starts.
type nextEpochSecrets struct {
	gc      *groupContext
	es      *epochSecrets
	tag     []byte // the confirmation tag
	interim []byte
}

// nextEpoch runs the key schedule for the commit ac (signed; its
// confirmation tag is not used): the confirmed transcript hash, the new
// GroupContext, the PSKs, the epoch secrets, the confirmation tag and the
// interim transcript hash.
func (g *Group) nextEpoch(ac *authenticatedContent, a *appliedProposals, treeHash, commitSecret []byte) (*nextEpochSecrets, error) {
	s, st := g.suite, g.st
	confirmed, err := confirmedTranscriptHash(s, st.interim, ac)
	if err != nil {
		return nil, err
	}
	gc := &groupContext{
		version: protocolVersionMLS10, cipherSuite: s.ID(), groupID: st.gc.groupID, epoch: st.gc.epoch + 1,
		treeHash: treeHash, confirmedTranscriptHash: confirmed, extensions: a.extensions,
	}
	encGC, err := encodeGroupContext(gc)
	if err != nil {
		return nil, err
	}
	psk, err := g.pskSecretFor(a.psks)
	if err != nil {
		return nil, err
	}
	defer zero(psk)
	joiner, err := deriveJoinerSecret(s, st.secrets.init, commitSecret, encGC)
	if err != nil {
		return nil, err
	}
	defer zero(joiner)
	es, err := deriveEpochSecrets(s, joiner, psk, encGC)
	if err != nil {
		return nil, err
	}
	tag := confirmationTag(s, es.confirmation, confirmed)
	interim, err := interimTranscriptHash(s, confirmed, tag)
	if err != nil {
		es.wipe()
		return nil, err
	}
	return &nextEpochSecrets{gc: gc, es: es, tag: tag, interim: interim}, nil
}

// buildWelcome creates the Welcome for the members a commit adds (RFC 9420
// section 12.4.3.1): the new epoch's GroupInfo (with the ratchet tree
// unless Config.OmitRatchetTree), signed and encrypted under the welcome
// secret, and for each new member its GroupSecrets (joiner secret, the
// path secret of its lowest common ancestor with this member, the PSK IDs)
// encrypted to its init key.
func (g *Group) buildWelcome(gc *groupContext, a *appliedProposals, enc *pathEncap, es *epochSecrets, tag []byte) ([]byte, error) {
	s := g.suite
	me := g.st.priv.leaf
	exts := []extension{}
	if !g.cfg.OmitRatchetTree {
		rt, err := encode(a.tree.export())
		if err != nil {
			return nil, err
		}
		exts = append(exts, extension{typ: extRatchetTree, data: rt})
	}
	gi := &groupInfo{groupContext: *gc, extensions: exts, confirmationTag: tag, signer: me}
	if err := signGroupInfo(s, gi, g.sigPriv); err != nil {
		return nil, err
	}
	giBytes, err := encode(gi)
	if err != nil {
		return nil, err
	}
	k, err := welcomeKeyNonce(s, es.welcome)
	if err != nil {
		return nil, err
	}
	defer k.zero()
	encGI, err := s.Seal(k.key, k.nonce, nil, giBytes)
	if err != nil {
		return nil, err
	}
	w := &welcome{cipherSuite: s.ID(), encryptedGroupInfo: encGI}
	for i, l := range a.added {
		kp := a.addedKPs[i]
		gs := groupSecrets{joinerSecret: es.joiner, psks: a.psks}
		if ps, ok := enc.pathSecrets[commonAncestor(nodeOfLeaf(l), nodeOfLeaf(me))]; ok {
			gs.hasPathSecret, gs.pathSecret = true, ps
		}
		pt, err := encode(&gs)
		if err != nil {
			return nil, err
		}
		kem, ct, err := s.EncryptWithLabel(kp.initKey, "Welcome", encGI, pt)
		zero(pt)
		if err != nil {
			return nil, fmt.Errorf("%w: encrypting to leaf %d's init key: %w", ErrInvalidKeyPackage, l, err)
		}
		ref, err := keyPackageRef(s, kp)
		if err != nil {
			return nil, err
		}
		w.secrets = append(w.secrets, encryptedGroupSecrets{newMember: ref, secrets: hpkeCiphertext{kemOutput: kem, ciphertext: ct}})
	}
	return g.encodeMessage(&mlsMessage{wireFormat: wireFormatWelcome, welcome: w})
}

// selectCached picks the epoch's cached proposals this member can commit
// together with the inline ones: valid ones only; no Update of its own
// (its path refreshes its leaf) and no Remove of itself; per leaf the
// first Remove, else the latest Update; the latest GroupContextExtensions;
// each PSK once; no Add of a signature key already present.
func (g *Group) selectCached(inline []listedProposal) []listedProposal {
	st := g.st
	me := st.priv.leaf
	removed := map[uint32]bool{}
	for _, lp := range inline {
		if lp.p.typ == proposalRemove {
			removed[lp.p.removed] = true
		}
	}
	var candidates []listedProposal
	for _, cp := range g.cache {
		lp := listedProposal{p: cp.p, sender: cp.sender, ref: cp.ref}
		if g.validateProposal(cp.p, cp.sender, st.gc.extensions) != nil {
			continue
		}
		switch cp.p.typ {
		case proposalUpdate:
			if cp.sender == me {
				continue
			}
		case proposalRemove:
			if cp.p.removed == me || removed[cp.p.removed] {
				continue
			}
			removed[cp.p.removed] = true
		}
		candidates = append(candidates, lp)
	}
	lastUpdate := map[uint32]int{}
	lastGCE := -1
	for i, lp := range candidates {
		switch lp.p.typ {
		case proposalUpdate:
			lastUpdate[lp.sender] = i
		case proposalGroupContextExtensions:
			lastGCE = i
		}
	}
	sigKeys := map[string]bool{}
	for l := range st.tree.size.leaves() {
		if ln := st.tree.leaf(l); ln != nil && !removed[l] {
			sigKeys[string(ln.signatureKey)] = true
		}
	}
	for _, lp := range inline {
		if lp.p.typ == proposalAdd {
			sigKeys[string(lp.p.add.leafNode.signatureKey)] = true
		}
	}
	var out []listedProposal
	pskIDs := map[string]bool{}
	for i, lp := range candidates {
		switch lp.p.typ {
		case proposalUpdate:
			if removed[lp.sender] || lastUpdate[lp.sender] != i {
				continue
			}
		case proposalGroupContextExtensions:
			if i != lastGCE {
				continue
			}
		case proposalPSK:
			id, err := encode(lp.p.psk)
			if err != nil || pskIDs[string(id)] {
				continue
			}
			secret, err := g.pskSecretFor([]preSharedKeyID{*lp.p.psk})
			zero(secret)
			if err != nil {
				continue
			}
			pskIDs[string(id)] = true
		case proposalAdd:
			k := string(lp.p.add.leafNode.signatureKey)
			if sigKeys[k] {
				continue
			}
			sigKeys[k] = true
		}
		out = append(out, lp)
	}
	return out
}

// MergePendingCommit makes this member's pending commit take effect: the
// group moves to the epoch it starts. Call it once the delivery service
// has accepted the commit (Process does it too if the commit comes back).
func (g *Group) MergePendingCommit() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.checkActive(); err != nil {
		return err
	}
	if g.pending == nil {
		return fmt.Errorf("%w: no commit is pending", ErrPendingCommit)
	}
	next := g.pending.next
	g.pending = nil
	g.advance(next)
	return nil
}

// DiscardPendingCommit drops this member's pending commit (for instance
// when the delivery service rejected it), wiping the state it prepared.
func (g *Group) DiscardPendingCommit() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.discardPending()
}

// processCommit validates and applies another member's commit (RFC 9420
// section 12.4.2), returning the next epoch's state, or nil if the commit
// removes this member.
func (g *Group) processCommit(ac *authenticatedContent) (*epochState, *CommitInfo, error) {
	s, st := g.suite, g.st
	if ac.content.sender.typ != senderMember {
		// new_member_commit: external commits are not implemented.
		return nil, nil, fmt.Errorf("%w: commit from sender type %d", ErrUnsupported, ac.content.sender.typ)
	}
	committer := ac.content.sender.index
	me := st.priv.leaf
	if st.gc.epoch == math.MaxUint64 {
		return nil, nil, fmt.Errorf("%w: epoch counter exhausted", ErrInvalidCommit)
	}
	if committer == me {
		return nil, nil, fmt.Errorf("%w: a commit of this member that is not pending", ErrOwnMessage)
	}
	c := ac.content.commit
	list := make([]listedProposal, 0, len(c.proposals))
	for _, por := range c.proposals {
		if por.typ == proposalOrRefProposal {
			list = append(list, listedProposal{p: por.proposal, sender: committer})
			continue
		}
		found := g.cacheRef[string(por.ref)]
		if found == nil {
			return nil, nil, fmt.Errorf("%w: unknown proposal reference %x", ErrInvalidProposal, por.ref)
		}
		list = append(list, listedProposal{p: found.p, sender: found.sender, ref: found.ref})
	}
	if err := g.validateProposalList(list, committer); err != nil {
		return nil, nil, err
	}
	a, err := g.applyProposals(list)
	if err != nil {
		return nil, nil, err
	}
	if c.path == nil && pathRequired(list) {
		return nil, nil, fmt.Errorf("%w: the proposals require a path", ErrInvalidCommit)
	}
	// The tree after the proposals must be valid (added members unique and
	// supporting the group's extensions); checked again after the path.
	if err := validateTreeLeaves(a.tree, a.extensions); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
	}
	var provisional []byte
	if c.path != nil {
		if provisional, err = g.mergeCommitPath(a, committer, c.path); err != nil {
			return nil, nil, err
		}
		if err := validateTreeLeaves(a.tree, a.extensions); err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
		}
	}
	if a.tree.leaf(me) == nil {
		// Removed: the path is not encrypted to this member, which cannot
		// derive the new epoch (nor check its confirmation tag) and leaves.
		a.info.SelfRemoved = true
		return nil, a.info, nil
	}

	priv := st.priv.clone()
	ok := false
	defer func() {
		if !ok {
			priv.wipe()
		}
	}()
	for _, lp := range list {
		if lp.p.typ == proposalUpdate && lp.sender == me {
			k, found := g.ownUpdates[string(lp.ref)]
			if !found {
				return nil, nil, fmt.Errorf("%w: an update of this member's leaf it did not propose", ErrInvalidCommit)
			}
			priv.set(nodeOfLeaf(me), nodeKey{priv: bytes.Clone(k.priv), pub: bytes.Clone(k.pub)})
		}
	}
	var commitSecret []byte
	if c.path != nil {
		excluded := map[uint32]bool{}
		for _, l := range a.added {
			excluded[l] = true
		}
		d, err := decapPath(s, a.tree, priv, committer, c.path, excluded, provisional)
		if err != nil {
			return nil, nil, invalidCommit(err)
		}
		zero(d.pathSecret)
		priv.mergeKeys(d.keys)
		commitSecret = d.commitSecret
		defer zero(commitSecret)
	}
	priv.prune(a.tree)
	treeHash, err := a.tree.rootHash(s)
	if err != nil {
		return nil, nil, err
	}
	next, err := g.nextEpoch(ac, a, treeHash, commitSecret)
	if err != nil {
		return nil, nil, err
	}
	if !s.VerifyMAC(next.es.confirmation, next.gc.confirmedTranscriptHash, ac.auth.confirmationTag) {
		next.es.wipe()
		return nil, nil, fmt.Errorf("%w: %w: confirmation tag does not verify", ErrInvalidCommit, ErrCrypto)
	}
	nst, err := newEpochState(s, next.gc, a.tree, priv, next.es, next.interim, next.tag)
	if err != nil {
		next.es.wipe()
		return nil, nil, err
	}
	ok = true
	return nst, a.info, nil
}

// mergeCommitPath validates the committer's UpdatePath (its leaf node, and
// that none of its keys is already in the tree), merges it into a.tree
// (checking the parent hash) and returns the encoded provisional
// GroupContext its path secrets are encrypted under.
func (g *Group) mergeCommitPath(a *appliedProposals, committer uint32, up *updatePath) ([]byte, error) {
	s, st := g.suite, g.st
	ln := &up.leafNode
	if err := validateLeafNode(s, ln, leafSourceCommit, st.gc.groupID, committer, a.extensions, g.cfg.leafPolicy()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
	}
	// None of the path's public keys may already be in the tree (this
	// covers the committer's current leaf key too).
	keys := map[string]bool{string(ln.encryptionKey): true}
	for _, n := range up.nodes {
		if keys[string(n.encryptionKey)] {
			return nil, fmt.Errorf("%w: an encryption key appears twice in the path", ErrInvalidCommit)
		}
		keys[string(n.encryptionKey)] = true
	}
	for x := range a.tree.nodes {
		if pub := nodePublicKey(a.tree, uint32(x)); pub != nil && keys[string(pub)] {
			return nil, fmt.Errorf("%w: the path reuses the encryption key of node %d", ErrInvalidCommit, x)
		}
	}
	if err := a.tree.mergePath(s, committer, up); err != nil {
		return nil, invalidCommit(err)
	}
	treeHash, err := a.tree.rootHash(s)
	if err != nil {
		return nil, err
	}
	return encodeGroupContext(&groupContext{
		version: protocolVersionMLS10, cipherSuite: s.ID(), groupID: st.gc.groupID, epoch: st.gc.epoch + 1,
		treeHash: treeHash, confirmedTranscriptHash: st.gc.confirmedTranscriptHash, extensions: a.extensions,
	})
}

// invalidCommit wraps err as ErrInvalidCommit unless it already is.
func invalidCommit(err error) error {
	if errors.Is(err, ErrInvalidCommit) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInvalidCommit, err)
}
