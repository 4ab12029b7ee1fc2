package mls

import (
	"bytes"
	"slices"
)

// Deep copies of a member's state (Group.Clone) and of the structures it
// is made of. Every copy owns all of its byte slices, maps and nodes: no
// memory is shared with the original, so wiping or advancing one never
// touches the other. Within one copy, the aliasing of the original is kept
// where the code relies on it (an epoch's protection context uses the
// epoch's own membership key and sender data secret) or where it saves
// memory (tree nodes shared between the current and past epochs' trees
// stay shared, as nodes are never changed in place).

// Clone returns a deep, fully independent copy of this member's state: the
// current epoch (group context, ratchet tree, private tree keys, epoch
// secrets, the secret tree with every sender's ratchets and their
// out-of-order windows), the epoch's cached proposals and this member's
// pending Update keys, the resumption PSKs, the retained past epochs, the
// configuration, the signature private key and the active flag. The clone
// shares no memory with the original (only the Config's functions and the
// immutable cipher suite): processing, committing, wiping or closing one
// leaves the other as it was. Both must be closed (Close) separately.
//
// A pending commit of this member (created by Commit, not yet merged or
// discarded) is not copied: the clone has none. Its commit message is
// still recognized by the original only; the clone refuses it as
// ErrOwnMessage. The group layer uses Clone for fork choice: it keeps a
// clone of the state before applying a commit and returns to it if a
// competing commit of the same epoch wins.
//
// A clone holds copies of every secret of the original: keys one copy uses
// and deletes stay in the other, so close (Close) the copy that is given
// up, and let only one copy send. Two copies that both send in an epoch
// take the same ratchet generations (the PrivateMessage reuse guard makes
// a nonce collision unlikely, not impossible), and break forward secrecy
// for those messages.
//
// Cloning a closed or removed member gives an inactive clone. The error is
// reserved for states that cannot be copied; Clone currently never fails.
func (g *Group) Clone() (*Group, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	nodes := map[*treeNode]*treeNode{}
	c := &Group{
		cfg:     g.cfg,
		suite:   g.suite,
		sigPriv: bytes.Clone(g.sigPriv),
		st:      g.st.clone(nodes),
		active:  g.active,
	}
	for _, cp := range g.cache {
		c.addToCache(&cachedProposal{ref: bytes.Clone(cp.ref), p: cp.p.clone(), sender: cp.sender})
	}
	if g.ownUpdates != nil {
		c.ownUpdates = make(map[string]nodeKey, len(g.ownUpdates))
		for ref, k := range g.ownUpdates {
			c.ownUpdates[ref] = k.clone()
		}
	}
	for _, r := range g.resumption {
		c.resumption = append(c.resumption, resumptionPSK{epoch: r.epoch, secret: bytes.Clone(r.secret)})
	}
	for _, p := range g.past {
		c.past = append(c.past, p.clone(nodes))
	}
	return c, nil
}

// clone returns a copy of the key pair.
func (k nodeKey) clone() nodeKey {
	return nodeKey{priv: bytes.Clone(k.priv), pub: bytes.Clone(k.pub)}
}

// clone returns a deep copy of the epoch, its protection context using
// the copy's own group context, membership key, sender data secret and
// secret tree as the original does. nodes maps original tree nodes to
// their copies, shared across the trees of one Group's copy.
func (st *epochState) clone(nodes map[*treeNode]*treeNode) *epochState {
	gc := st.gc.clone()
	es := st.secrets.clone()
	c := &epochState{
		gc:              gc,
		tree:            st.tree.deepClone(nodes),
		priv:            st.priv.clone(),
		secrets:         es,
		interim:         bytes.Clone(st.interim),
		confirmationTag: bytes.Clone(st.confirmationTag),
	}
	c.ctx = st.ctx.cloneWith(gc, es.membership, es.senderData)
	return c
}

// cloneWith returns a copy of the context for group context gc (a copy of
// c's) with the given membership key and sender data secret, and a deep
// copy of its secret tree.
func (c *epochContext) cloneWith(gc *groupContext, membershipKey, senderDataSecret []byte) *epochContext {
	out := &epochContext{
		suite:            c.suite,
		groupContext:     gc,
		encodedContext:   bytes.Clone(c.encodedContext),
		membershipKey:    membershipKey,
		senderDataSecret: senderDataSecret,
		secretTree:       c.secretTree.clone(),
	}
	if c.self != nil {
		self := *c.self
		out.self = &self
	}
	return out
}

// clone returns a deep copy of the past epoch.
func (p *pastEpoch) clone(nodes map[*treeNode]*treeNode) *pastEpoch {
	return &pastEpoch{
		ctx:  p.ctx.cloneWith(p.ctx.groupContext.clone(), bytes.Clone(p.ctx.membershipKey), bytes.Clone(p.ctx.senderDataSecret)),
		tree: p.tree.deepClone(nodes),
	}
}

// clone returns a copy of the secrets.
func (es *epochSecrets) clone() *epochSecrets {
	c := *es
	for _, p := range []*[]byte{&c.joiner, &c.welcome, &c.senderData, &c.encryption, &c.exporter, &c.external,
		&c.confirmation, &c.membership, &c.resumption, &c.epochAuthenticator, &c.init} {
		*p = bytes.Clone(*p)
	}
	return &c
}

// clone returns a deep copy of the secret tree: its unexpanded node
// secrets and every ratchet with its kept keys.
func (t *secretTree) clone() *secretTree {
	c := *t
	c.nodes = make(map[uint32][]byte, len(t.nodes))
	for x, s := range t.nodes {
		c.nodes[x] = bytes.Clone(s)
	}
	c.ratchets = make(map[uint32]*[2]*hashRatchet, len(t.ratchets))
	for l, rs := range t.ratchets {
		c.ratchets[l] = &[2]*hashRatchet{rs[0].clone(), rs[1].clone()}
	}
	return &c
}

// clone returns a deep copy of the ratchet.
func (r *hashRatchet) clone() *hashRatchet {
	c := *r
	c.secret = bytes.Clone(r.secret)
	c.keys = make(map[uint32]ratchetKey, len(r.keys))
	for g, k := range r.keys {
		c.keys[g] = k.clone()
	}
	return &c
}

// deepClone returns a copy of the tree that shares no memory with t.
// nodes memoizes node copies, so that nodes shared by several trees of the
// original stay shared (and are copied once) in the copy.
func (t *publicTree) deepClone(nodes map[*treeNode]*treeNode) *publicTree {
	c := &publicTree{size: t.size, nodes: make([]*treeNode, len(t.nodes))}
	for i, n := range t.nodes {
		if n == nil {
			continue
		}
		cn, ok := nodes[n]
		if !ok {
			cn = n.clone()
			nodes[n] = cn
		}
		c.nodes[i] = cn
	}
	return c
}

// clone returns a deep copy of the node.
func (n *treeNode) clone() *treeNode {
	if n.leaf != nil {
		return &treeNode{leaf: n.leaf.clone()}
	}
	return &treeNode{parent: n.parent.clone()}
}

// clone returns a deep copy of the parent node.
func (p *parentNode) clone() *parentNode {
	return &parentNode{
		encryptionKey:  bytes.Clone(p.encryptionKey),
		parentHash:     bytes.Clone(p.parentHash),
		unmergedLeaves: slices.Clone(p.unmergedLeaves),
	}
}

// clone returns a deep copy of the leaf node.
func (l *leafNode) clone() *leafNode {
	c := *l
	c.encryptionKey = bytes.Clone(l.encryptionKey)
	c.signatureKey = bytes.Clone(l.signatureKey)
	c.credential = l.credential.clone()
	c.capabilities = l.capabilities.clone()
	c.parentHash = bytes.Clone(l.parentHash)
	c.extensions = cloneExtensions(l.extensions)
	c.signature = bytes.Clone(l.signature)
	return &c
}

// clone returns a deep copy of the credential.
func (c credential) clone() credential {
	out := credential{typ: c.typ, identity: bytes.Clone(c.identity)}
	if c.certificates != nil {
		out.certificates = make([][]byte, len(c.certificates))
		for i, cert := range c.certificates {
			out.certificates[i] = bytes.Clone(cert)
		}
	}
	return out
}

// clone returns a deep copy of the capabilities.
func (c capabilities) clone() capabilities {
	return capabilities{
		versions:     slices.Clone(c.versions),
		cipherSuites: slices.Clone(c.cipherSuites),
		extensions:   slices.Clone(c.extensions),
		proposals:    slices.Clone(c.proposals),
		credentials:  slices.Clone(c.credentials),
	}
}

// cloneExtensions returns a deep copy of an extension list (nil stays
// nil).
func cloneExtensions(exts []extension) []extension {
	if exts == nil {
		return nil
	}
	out := make([]extension, len(exts))
	for i, x := range exts {
		out[i] = extension{typ: x.typ, data: bytes.Clone(x.data)}
	}
	return out
}

// clone returns a deep copy of the group context.
func (g *groupContext) clone() *groupContext {
	c := *g
	c.groupID = bytes.Clone(g.groupID)
	c.treeHash = bytes.Clone(g.treeHash)
	c.confirmedTranscriptHash = bytes.Clone(g.confirmedTranscriptHash)
	c.extensions = cloneExtensions(g.extensions)
	return &c
}

// clone returns a deep copy of the key package.
func (k *keyPackage) clone() *keyPackage {
	c := *k
	c.initKey = bytes.Clone(k.initKey)
	c.leafNode = *k.leafNode.clone()
	c.extensions = cloneExtensions(k.extensions)
	c.signature = bytes.Clone(k.signature)
	return &c
}

// clone returns a deep copy of the PSK ID.
func (p *preSharedKeyID) clone() *preSharedKeyID {
	c := *p
	c.pskID = bytes.Clone(p.pskID)
	c.pskGroupID = bytes.Clone(p.pskGroupID)
	c.pskNonce = bytes.Clone(p.pskNonce)
	return &c
}

// clone returns a deep copy of the proposal.
func (p *proposal) clone() *proposal {
	c := &proposal{typ: p.typ, removed: p.removed, kemOutput: bytes.Clone(p.kemOutput), gceExtension: cloneExtensions(p.gceExtension)}
	if p.add != nil {
		c.add = p.add.clone()
	}
	if p.update != nil {
		c.update = p.update.clone()
	}
	if p.psk != nil {
		c.psk = p.psk.clone()
	}
	if p.reInit != nil {
		r := *p.reInit
		r.groupID = bytes.Clone(p.reInit.groupID)
		r.extensions = cloneExtensions(p.reInit.extensions)
		c.reInit = &r
	}
	return c
}
