package mls

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"slices"
)

// Proposals (RFC 9420 section 12.1): validating one proposal, validating a
// commit's list of proposals (section 12.2), applying a list to the tree
// and group context (section 12.3), and sending proposals.

// listedProposal is a proposal in a commit's list, with its sender and,
// if it was included by reference, its reference.
type listedProposal struct {
	p      *proposal
	sender uint32
	ref    []byte
}

// validateProposal checks one proposal from member sender against the
// current epoch (RFC 9420 section 12.1). groupExts are the group context
// extensions in force for it (a commit's new ones, if it changes them).
func (g *Group) validateProposal(p *proposal, sender uint32, groupExts []extension) error {
	st := g.st
	switch p.typ {
	case proposalAdd:
		if err := validateKeyPackage(g.suite, p.add, groupExts, g.cfg.leafPolicy()); err != nil {
			return fmt.Errorf("%w: add: %w", ErrInvalidProposal, err)
		}
	case proposalUpdate:
		old := st.tree.leaf(sender)
		if old == nil {
			return fmt.Errorf("%w: update from blank leaf %d", ErrInvalidProposal, sender)
		}
		policy := g.cfg.leafPolicy()
		if err := validateLeafNode(g.suite, p.update, leafSourceUpdate, st.gc.groupID, sender, groupExts, policy); err != nil {
			return fmt.Errorf("%w: update: %w", ErrInvalidProposal, err)
		}
		if bytes.Equal(p.update.encryptionKey, old.encryptionKey) {
			return fmt.Errorf("%w: update keeps leaf %d's encryption key", ErrInvalidProposal, sender)
		}
	case proposalRemove:
		if st.tree.leaf(p.removed) == nil {
			return fmt.Errorf("%w: remove of blank or absent leaf %d", ErrInvalidProposal, p.removed)
		}
	case proposalPSK:
		if len(p.psk.pskNonce) != g.suite.HashSize() {
			return fmt.Errorf("%w: PSK nonce of %d bytes", ErrInvalidProposal, len(p.psk.pskNonce))
		}
		if p.psk.typ == pskResumption && p.psk.usage != resumptionApplication {
			return fmt.Errorf("%w: resumption PSK with usage %d outside reinit or branch", ErrInvalidProposal, p.psk.usage)
		}
	case proposalGroupContextExtensions:
		if _, err := groupRequirements(p.gceExtension); err != nil {
			return fmt.Errorf("%w: group context extensions: %w", ErrInvalidProposal, err)
		}
	case proposalReInit:
		// Reinitialization creates a new group from the members of this
		// one (RFC 9420 section 11.2); the group layer does that by
		// creating a new group, so ReInit is not implemented.
		return fmt.Errorf("%w: ReInit proposal", ErrUnsupported)
	case proposalExternalInit:
		// ExternalInit belongs to external commits only, which are not
		// implemented (joins go through Add and Welcome).
		return fmt.Errorf("%w: ExternalInit proposal", ErrUnsupported)
	default:
		return fmt.Errorf("%w: proposal type %d", ErrUnsupported, p.typ)
	}
	return nil
}

// newExtensions returns the group context extensions a list of proposals
// leaves in force.
func newExtensions(cur []extension, list []listedProposal) []extension {
	for _, lp := range list {
		if lp.p.typ == proposalGroupContextExtensions {
			return lp.p.gceExtension
		}
	}
	return cur
}

// validateProposalList checks a regular commit's list of proposals from
// committer (RFC 9420 section 12.2), each proposal individually included.
func (g *Group) validateProposalList(list []listedProposal, committer uint32) error {
	exts := newExtensions(g.st.gc.extensions, list)
	changed := map[uint32]bool{}
	var gce int
	pskIDs := map[string]bool{}
	for _, lp := range list {
		if err := g.validateProposal(lp.p, lp.sender, exts); err != nil {
			return err
		}
		switch lp.p.typ {
		case proposalUpdate:
			if lp.sender == committer {
				return fmt.Errorf("%w: update from the committer", ErrInvalidProposal)
			}
			if changed[lp.sender] {
				return fmt.Errorf("%w: two updates or removes of leaf %d", ErrInvalidProposal, lp.sender)
			}
			changed[lp.sender] = true
		case proposalRemove:
			if lp.p.removed == committer {
				return fmt.Errorf("%w: the committer removes itself", ErrInvalidProposal)
			}
			if changed[lp.p.removed] {
				return fmt.Errorf("%w: two updates or removes of leaf %d", ErrInvalidProposal, lp.p.removed)
			}
			changed[lp.p.removed] = true
		case proposalGroupContextExtensions:
			if gce++; gce > 1 {
				return fmt.Errorf("%w: two group context extensions proposals", ErrInvalidProposal)
			}
		case proposalPSK:
			id, err := encode(lp.p.psk)
			if err != nil {
				return err
			}
			if pskIDs[string(id)] {
				return fmt.Errorf("%w: the same PSK twice", ErrInvalidProposal)
			}
			pskIDs[string(id)] = true
		}
	}
	return nil
}

// pathRequired reports whether a commit with these proposals must carry
// an UpdatePath (RFC 9420 section 12.4).
func pathRequired(list []listedProposal) bool {
	if len(list) == 0 {
		return true
	}
	for _, lp := range list {
		switch lp.p.typ {
		case proposalUpdate, proposalRemove, proposalExternalInit, proposalGroupContextExtensions:
			return true
		}
	}
	return false
}

// appliedProposals is the outcome of applying a list of proposals.
type appliedProposals struct {
	tree       *publicTree
	extensions []extension
	added      []uint32 // new leaves, in Add order
	addedKPs   []*keyPackage
	psks       []preSharedKeyID
	info       *CommitInfo
}

// applyProposals applies a validated list to a copy of the current tree
// and extensions (RFC 9420 section 12.3): group context extensions, then
// updates, removes, adds, and PSKs in order.
func (g *Group) applyProposals(list []listedProposal) (*appliedProposals, error) {
	a := &appliedProposals{tree: g.st.tree.clone(), extensions: newExtensions(g.st.gc.extensions, list), info: &CommitInfo{}}
	for _, lp := range list {
		if lp.p.typ == proposalUpdate {
			if err := a.tree.updateLeaf(lp.sender, lp.p.update); err != nil {
				return nil, err
			}
			a.info.Updated = append(a.info.Updated, lp.sender)
		}
	}
	for _, lp := range list {
		if lp.p.typ == proposalRemove {
			if err := a.tree.removeLeaf(lp.p.removed); err != nil {
				return nil, err
			}
			a.info.Removed = append(a.info.Removed, lp.p.removed)
		}
	}
	for _, lp := range list {
		switch lp.p.typ {
		case proposalAdd:
			l, err := a.tree.addLeaf(&lp.p.add.leafNode)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
			}
			a.added = append(a.added, l)
			a.addedKPs = append(a.addedKPs, lp.p.add)
		case proposalPSK:
			a.psks = append(a.psks, *lp.p.psk)
		}
	}
	a.info.Added = slices.Clone(a.added)
	return a, nil
}

// pskSecretFor looks up the PSKs of a commit or Welcome and combines them
// (RFC 9420 section 8.4). Resumption PSKs must be of this group, from an
// epoch whose resumption PSK is still kept.
func (g *Group) pskSecretFor(ids []preSharedKeyID) ([]byte, error) {
	return lookupPSKs(g.suite, &g.cfg, ids, func(id *preSharedKeyID) ([]byte, bool) {
		if !bytes.Equal(id.pskGroupID, g.st.gc.groupID) {
			return nil, false
		}
		return g.resumptionSecret(id.pskEpoch)
	})
}

// lookupPSKs resolves PSK IDs (external by Config.ExternalPSK, resumption
// with usage application by resumption) and returns the psk_secret (nil
// when there are none).
func lookupPSKs(s Suite, cfg *Config, ids []preSharedKeyID, resumption func(*preSharedKeyID) ([]byte, bool)) ([]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	psks := make([][]byte, len(ids))
	for i := range ids {
		id := &ids[i]
		var psk []byte
		ok := false
		switch {
		case id.typ == pskExternal && cfg.ExternalPSK != nil:
			psk, ok = cfg.ExternalPSK(id.pskID)
		case id.typ == pskResumption && id.usage == resumptionApplication:
			if resumption != nil {
				psk, ok = resumption(id)
			}
		case id.typ == pskResumption:
			return nil, fmt.Errorf("%w: resumption PSK with usage %d (reinit and branch are not implemented)", ErrUnsupported, id.usage)
		}
		if !ok {
			return nil, fmt.Errorf("%w: PSK %d of type %d", ErrUnknownPSK, i, id.typ)
		}
		psks[i] = psk
	}
	return pskSecret(s, ids, psks)
}

// sendProposal frames, signs and protects a proposal of this member,
// caches it for the next commit and returns the MLSMessage and its
// reference.
func (g *Group) sendProposal(p *proposal) ([]byte, []byte, error) {
	st := g.st
	content := &framedContent{
		groupID:           st.gc.groupID,
		epoch:             st.gc.epoch,
		sender:            sender{typ: senderMember, index: st.priv.leaf},
		authenticatedData: []byte{},
		contentType:       contentProposal,
		proposal:          p,
	}
	msg, ac, err := g.protectContent(content)
	if err != nil {
		return nil, nil, err
	}
	ref, err := proposalRef(g.suite, ac)
	if err != nil {
		return nil, nil, err
	}
	g.addToCache(&cachedProposal{ref: ref, p: p, sender: st.priv.leaf})
	return msg, ref, nil
}

// propose validates and sends one proposal of this member.
func (g *Group) propose(p *proposal) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.checkActive(); err != nil {
		return nil, err
	}
	if len(g.cache) >= maxEpochProposals {
		return nil, fmt.Errorf("%w: more than %d proposals in one epoch", ErrInvalidProposal, maxEpochProposals)
	}
	if err := g.validateProposal(p, g.st.priv.leaf, newExtensions(g.st.gc.extensions, []listedProposal{{p: p}})); err != nil {
		return nil, err
	}
	msg, _, err := g.sendProposal(p)
	return msg, err
}

// ProposeAdd proposes adding the member of keyPackage (an MLSMessage, as
// PrivateKeyPackage.KeyPackage returns). It returns the proposal message
// to send to the group; the proposal takes effect when a commit includes
// it.
func (g *Group) ProposeAdd(keyPackage []byte) ([]byte, error) {
	kp, err := parseKeyPackage(&g.cfg, keyPackage)
	if err != nil {
		return nil, err
	}
	return g.propose(&proposal{typ: proposalAdd, add: kp})
}

// ProposeRemove proposes removing the member at leaf index leaf (which may
// be this member).
func (g *Group) ProposeRemove(leaf uint32) ([]byte, error) {
	return g.propose(&proposal{typ: proposalRemove, removed: leaf})
}

// ProposeUpdate proposes replacing this member's leaf with a fresh HPKE
// key (RFC 9420 section 12.1.2). Another member must commit it; a
// member's own commit refreshes its leaf anyway.
func (g *Group) ProposeUpdate() ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.checkActive(); err != nil {
		return nil, err
	}
	st := g.st
	priv, pub, err := g.suite.GenerateHPKEKeyPair()
	if err != nil {
		return nil, err
	}
	ln := *st.tree.leaf(st.priv.leaf)
	ln.encryptionKey = pub
	ln.source = leafSourceUpdate
	ln.notBefore, ln.notAfter, ln.parentHash = 0, 0, nil
	if err := signLeafNode(g.suite, &ln, st.gc.groupID, st.priv.leaf, g.sigPriv); err != nil {
		zero(priv)
		return nil, err
	}
	p := &proposal{typ: proposalUpdate, update: &ln}
	msg, ref, err := g.sendProposal(p)
	if err != nil {
		zero(priv)
		return nil, err
	}
	if g.ownUpdates == nil {
		g.ownUpdates = map[string]nodeKey{}
	}
	g.ownUpdates[string(ref)] = nodeKey{priv: priv, pub: pub}
	return msg, nil
}

// ProposeExternalPSK proposes injecting the external pre-shared key with
// this ID (known to every member through Config.ExternalPSK) into the next
// epoch's key schedule.
func (g *Group) ProposeExternalPSK(id []byte) ([]byte, error) {
	return g.proposePSK(preSharedKeyID{typ: pskExternal, pskID: bytes.Clone(id)})
}

// ProposeResumptionPSK proposes injecting the resumption PSK of a past
// epoch of this group (kept per Config.ResumptionPSKEpochs) into the next
// epoch's key schedule.
func (g *Group) ProposeResumptionPSK(epoch uint64) ([]byte, error) {
	return g.proposePSK(preSharedKeyID{typ: pskResumption, usage: resumptionApplication, pskGroupID: g.GroupID(), pskEpoch: epoch})
}

func (g *Group) proposePSK(id preSharedKeyID) ([]byte, error) {
	id.pskNonce = make([]byte, g.suite.HashSize())
	if _, err := rand.Read(id.pskNonce); err != nil {
		return nil, err
	}
	g.mu.Lock()
	secret, err := g.pskSecretFor([]preSharedKeyID{id})
	g.mu.Unlock()
	zero(secret)
	if err != nil {
		return nil, err
	}
	return g.propose(&proposal{typ: proposalPSK, psk: &id})
}

// ProposeGroupContextExtensions proposes replacing the group context
// extensions with exts (a wholesale replacement, RFC 9420 section
// 12.1.7). Every member after the commit must support them, or the commit
// is invalid.
func (g *Group) ProposeGroupContextExtensions(exts []Extension) ([]byte, error) {
	return g.propose(&proposal{typ: proposalGroupContextExtensions, gceExtension: internalExtensions(exts)})
}

// internalExtensions returns the wire form of exts.
func internalExtensions(exts []Extension) []extension {
	out := make([]extension, len(exts))
	for i, x := range exts {
		out[i] = extension{typ: x.Type, data: bytes.Clone(x.Data)}
	}
	return out
}

// receiveProposal validates a proposal from another member (or this
// member's own, echoed back) and caches it for the epoch's commit.
func (g *Group) receiveProposal(ac *authenticatedContent) error {
	ref, err := proposalRef(g.suite, ac)
	if err != nil {
		return err
	}
	if g.cacheRef[string(ref)] != nil {
		return nil // already known (a duplicate, or this member's own echoed)
	}
	if len(g.cache) >= maxEpochProposals {
		return fmt.Errorf("%w: more than %d proposals in one epoch", ErrInvalidProposal, maxEpochProposals)
	}
	sender := ac.content.sender.index
	if sender == g.st.priv.leaf {
		return fmt.Errorf("%w: proposal not sent in this epoch's state", ErrOwnMessage)
	}
	p := ac.content.proposal
	if err := g.validateProposal(p, sender, newExtensions(g.st.gc.extensions, []listedProposal{{p: p, sender: sender}})); err != nil {
		return err
	}
	g.addToCache(&cachedProposal{ref: ref, p: p, sender: sender})
	return nil
}

// maxEpochProposals bounds the proposals cached in one epoch, so that a
// member flooding proposals cannot grow the state without bound.
const maxEpochProposals = 1024

// addToCache records a proposal of the epoch.
func (g *Group) addToCache(cp *cachedProposal) {
	if g.cacheRef == nil {
		g.cacheRef = map[string]*cachedProposal{}
	}
	g.cache = append(g.cache, cp)
	g.cacheRef[string(cp.ref)] = cp
}
