package mls

// The wire structs of RFC 9420 other than framing (framing.go): credentials,
// leaf nodes, key packages, proposals, commits, Welcome and GroupInfo, and
// the ratchet tree as the ratchet_tree extension carries it. Each has
// marshal(*encoder) and unmarshal(*decoder); decoding then encoding a value
// gives back the same bytes (the encoding is canonical: minimal vector
// headers, presence octets 0 or 1). Values whose body this implementation
// cannot delimit (unknown credential or proposal types, reserved enum
// values) fail with ErrUnknownValue.

// Credential types (RFC 9420 section 5.3).
const (
	credentialBasic uint16 = 1
	credentialX509  uint16 = 2
)

// credential is a Credential: a basic identity or an X.509 chain.
type credential struct {
	typ          uint16
	identity     []byte   // basic
	certificates [][]byte // x509
}

func (c *credential) marshal(e *encoder) {
	e.u16(c.typ)
	switch c.typ {
	case credentialBasic:
		e.opaque(c.identity)
	case credentialX509:
		encodeVector(e, c.certificates, func(e *encoder, cert []byte) { e.opaque(cert) })
	}
}

func (c *credential) unmarshal(d *decoder) {
	start := d.off
	c.typ = d.u16()
	switch c.typ {
	case credentialBasic:
		c.identity = d.opaque()
	case credentialX509:
		c.certificates = decodeVector(d, (*decoder).opaque)
	default:
		d.failAt(start, ErrUnknownValue)
	}
}

// capabilities lists what a client supports (RFC 9420 section 7.2).
type capabilities struct {
	versions     []uint16
	cipherSuites []uint16
	extensions   []uint16
	proposals    []uint16
	credentials  []uint16
}

func marshalU16s(e *encoder, v []uint16) {
	encodeVector(e, v, func(e *encoder, x uint16) { e.u16(x) })
}

func unmarshalU16s(d *decoder) []uint16 { return decodeVector(d, (*decoder).u16) }

func (c *capabilities) marshal(e *encoder) {
	for _, v := range [][]uint16{c.versions, c.cipherSuites, c.extensions, c.proposals, c.credentials} {
		marshalU16s(e, v)
	}
}

func (c *capabilities) unmarshal(d *decoder) {
	for _, v := range []*[]uint16{&c.versions, &c.cipherSuites, &c.extensions, &c.proposals, &c.credentials} {
		*v = unmarshalU16s(d)
	}
}

// Leaf node sources (RFC 9420 section 7.2).
const (
	leafSourceKeyPackage uint8 = 1
	leafSourceUpdate     uint8 = 2
	leafSourceCommit     uint8 = 3
)

// leafNode is a LeafNode: a member's keys, credential and capabilities,
// signed by the member.
type leafNode struct {
	encryptionKey []byte
	signatureKey  []byte
	credential    credential
	capabilities  capabilities
	source        uint8
	notBefore     uint64 // key_package
	notAfter      uint64 // key_package
	parentHash    []byte // commit
	extensions    []extension
	signature     []byte
}

// marshalTBSFields writes the fields the signature covers, up to and
// including the extensions.
func (l *leafNode) marshalTBSFields(e *encoder) {
	e.opaque(l.encryptionKey)
	e.opaque(l.signatureKey)
	l.credential.marshal(e)
	l.capabilities.marshal(e)
	e.u8(l.source)
	switch l.source {
	case leafSourceKeyPackage:
		e.u64(l.notBefore)
		e.u64(l.notAfter)
	case leafSourceCommit:
		e.opaque(l.parentHash)
	}
	marshalExtensions(e, l.extensions)
}

func (l *leafNode) marshal(e *encoder) {
	l.marshalTBSFields(e)
	e.opaque(l.signature)
}

func (l *leafNode) unmarshal(d *decoder) {
	l.encryptionKey = d.opaque()
	l.signatureKey = d.opaque()
	l.credential.unmarshal(d)
	l.capabilities.unmarshal(d)
	start := d.off
	l.source = d.u8()
	switch l.source {
	case leafSourceKeyPackage:
		l.notBefore = d.u64()
		l.notAfter = d.u64()
	case leafSourceUpdate:
	case leafSourceCommit:
		l.parentHash = d.opaque()
	default:
		d.failAt(start, ErrUnknownValue)
	}
	l.extensions = unmarshalExtensions(d)
	l.signature = d.opaque()
}

// keyPackage is a KeyPackage (RFC 9420 section 10).
type keyPackage struct {
	version     uint16
	cipherSuite CipherSuite
	initKey     []byte
	leafNode    leafNode
	extensions  []extension
	signature   []byte
}

// marshalTBS writes KeyPackageTBS, the part the signature covers.
func (k *keyPackage) marshalTBS(e *encoder) {
	e.u16(k.version)
	e.u16(uint16(k.cipherSuite))
	e.opaque(k.initKey)
	k.leafNode.marshal(e)
	marshalExtensions(e, k.extensions)
}

func (k *keyPackage) marshal(e *encoder) {
	k.marshalTBS(e)
	e.opaque(k.signature)
}

func (k *keyPackage) unmarshal(d *decoder) {
	k.version = d.version()
	k.cipherSuite = CipherSuite(d.u16())
	k.initKey = d.opaque()
	k.leafNode.unmarshal(d)
	k.extensions = unmarshalExtensions(d)
	k.signature = d.opaque()
}

// Proposal types (RFC 9420 section 12.1).
const (
	proposalAdd                    uint16 = 1
	proposalUpdate                 uint16 = 2
	proposalRemove                 uint16 = 3
	proposalPSK                    uint16 = 4
	proposalReInit                 uint16 = 5
	proposalExternalInit           uint16 = 6
	proposalGroupContextExtensions uint16 = 7
)

// reInit is a ReInit proposal's body.
type reInit struct {
	groupID     []byte
	version     uint16
	cipherSuite CipherSuite
	extensions  []extension
}

func (r *reInit) marshal(e *encoder) {
	e.opaque(r.groupID)
	e.u16(r.version)
	e.u16(uint16(r.cipherSuite))
	marshalExtensions(e, r.extensions)
}

func (r *reInit) unmarshal(d *decoder) {
	r.groupID = d.opaque()
	r.version = d.u16()
	r.cipherSuite = CipherSuite(d.u16())
	r.extensions = unmarshalExtensions(d)
}

// proposal is a Proposal; exactly the field for typ is set.
type proposal struct {
	typ          uint16
	add          *keyPackage // add
	update       *leafNode   // update
	removed      uint32      // remove
	psk          *preSharedKeyID
	reInit       *reInit
	kemOutput    []byte      // external_init
	gceExtension []extension // group_context_extensions
}

func (p *proposal) marshal(e *encoder) {
	e.u16(p.typ)
	switch p.typ {
	case proposalAdd:
		p.add.marshal(e)
	case proposalUpdate:
		p.update.marshal(e)
	case proposalRemove:
		e.u32(p.removed)
	case proposalPSK:
		p.psk.marshal(e)
	case proposalReInit:
		p.reInit.marshal(e)
	case proposalExternalInit:
		e.opaque(p.kemOutput)
	case proposalGroupContextExtensions:
		marshalExtensions(e, p.gceExtension)
	}
}

func (p *proposal) unmarshal(d *decoder) {
	start := d.off
	p.typ = d.u16()
	switch p.typ {
	case proposalAdd:
		p.add = new(keyPackage)
		p.add.unmarshal(d)
	case proposalUpdate:
		p.update = new(leafNode)
		p.update.unmarshal(d)
	case proposalRemove:
		p.removed = d.u32()
	case proposalPSK:
		p.psk = new(preSharedKeyID)
		p.psk.unmarshal(d)
	case proposalReInit:
		p.reInit = new(reInit)
		p.reInit.unmarshal(d)
	case proposalExternalInit:
		p.kemOutput = d.opaque()
	case proposalGroupContextExtensions:
		p.gceExtension = unmarshalExtensions(d)
	default:
		d.failAt(start, ErrUnknownValue)
	}
}

// ProposalOrRef types (RFC 9420 section 12.4).
const (
	proposalOrRefProposal uint8 = 1
	proposalOrRefRef      uint8 = 2
)

// proposalOrRef is a proposal carried in a commit by value or by
// reference (a ProposalRef hash).
type proposalOrRef struct {
	typ      uint8
	proposal *proposal
	ref      []byte
}

func (p *proposalOrRef) marshal(e *encoder) {
	e.u8(p.typ)
	if p.typ == proposalOrRefProposal {
		p.proposal.marshal(e)
	} else {
		e.opaque(p.ref)
	}
}

func (p *proposalOrRef) unmarshal(d *decoder) {
	start := d.off
	p.typ = d.u8()
	switch p.typ {
	case proposalOrRefProposal:
		p.proposal = new(proposal)
		p.proposal.unmarshal(d)
	case proposalOrRefRef:
		p.ref = d.opaque()
	default:
		d.failAt(start, ErrUnknownValue)
	}
}

// hpkeCiphertext is an HPKECiphertext: an HPKE encapsulation and its
// ciphertext.
type hpkeCiphertext struct {
	kemOutput  []byte
	ciphertext []byte
}

func (h *hpkeCiphertext) marshal(e *encoder) {
	e.opaque(h.kemOutput)
	e.opaque(h.ciphertext)
}

func (h *hpkeCiphertext) unmarshal(d *decoder) {
	h.kemOutput = d.opaque()
	h.ciphertext = d.opaque()
}

// updatePathNode is one parent node of an UpdatePath: its new public key
// and the path secret encrypted to each node of its copath resolution.
type updatePathNode struct {
	encryptionKey       []byte
	encryptedPathSecret []hpkeCiphertext
}

// updatePath is an UpdatePath (RFC 9420 section 7.6).
type updatePath struct {
	leafNode leafNode
	nodes    []updatePathNode
}

func (u *updatePath) marshal(e *encoder) {
	u.leafNode.marshal(e)
	encodeVector(e, u.nodes, func(e *encoder, n updatePathNode) {
		e.opaque(n.encryptionKey)
		encodeVector(e, n.encryptedPathSecret, func(e *encoder, c hpkeCiphertext) { c.marshal(e) })
	})
}

func (u *updatePath) unmarshal(d *decoder) {
	u.leafNode.unmarshal(d)
	u.nodes = decodeVector(d, func(d *decoder) updatePathNode {
		n := updatePathNode{encryptionKey: d.opaque()}
		n.encryptedPathSecret = decodeVector(d, func(d *decoder) hpkeCiphertext {
			var c hpkeCiphertext
			c.unmarshal(d)
			return c
		})
		return n
	})
}

// commit is a Commit (RFC 9420 section 12.4).
type commit struct {
	proposals []proposalOrRef
	path      *updatePath // optional
}

func (c *commit) marshal(e *encoder) {
	encodeVector(e, c.proposals, func(e *encoder, p proposalOrRef) { p.marshal(e) })
	e.optional(c.path != nil)
	if c.path != nil {
		c.path.marshal(e)
	}
}

func (c *commit) unmarshal(d *decoder) {
	c.proposals = decodeVector(d, func(d *decoder) proposalOrRef {
		var p proposalOrRef
		p.unmarshal(d)
		return p
	})
	if d.optional() {
		c.path = new(updatePath)
		c.path.unmarshal(d)
	}
}

// groupInfo is a GroupInfo (RFC 9420 section 12.4.3).
type groupInfo struct {
	groupContext    groupContext
	extensions      []extension
	confirmationTag []byte
	signer          uint32
	signature       []byte
}

// marshalTBS writes GroupInfoTBS, the part the signature covers.
func (g *groupInfo) marshalTBS(e *encoder) {
	g.groupContext.marshal(e)
	marshalExtensions(e, g.extensions)
	e.opaque(g.confirmationTag)
	e.u32(g.signer)
}

func (g *groupInfo) marshal(e *encoder) {
	g.marshalTBS(e)
	e.opaque(g.signature)
}

func (g *groupInfo) unmarshal(d *decoder) {
	g.groupContext.unmarshal(d)
	g.extensions = unmarshalExtensions(d)
	g.confirmationTag = d.opaque()
	g.signer = d.u32()
	g.signature = d.opaque()
}

// groupSecrets is GroupSecrets (RFC 9420 section 12.4.3.1), what a Welcome
// encrypts to each new member.
type groupSecrets struct {
	joinerSecret  []byte
	hasPathSecret bool
	pathSecret    []byte
	psks          []preSharedKeyID
}

func (g *groupSecrets) marshal(e *encoder) {
	e.opaque(g.joinerSecret)
	e.optional(g.hasPathSecret)
	if g.hasPathSecret {
		e.opaque(g.pathSecret)
	}
	encodeVector(e, g.psks, func(e *encoder, p preSharedKeyID) { p.marshal(e) })
}

func (g *groupSecrets) unmarshal(d *decoder) {
	g.joinerSecret = d.opaque()
	if g.hasPathSecret = d.optional(); g.hasPathSecret {
		g.pathSecret = d.opaque()
	}
	g.psks = decodeVector(d, func(d *decoder) preSharedKeyID {
		var p preSharedKeyID
		p.unmarshal(d)
		return p
	})
}

// encryptedGroupSecrets is GroupSecrets encrypted to one new member's
// KeyPackage, named by its KeyPackageRef.
type encryptedGroupSecrets struct {
	newMember []byte
	secrets   hpkeCiphertext
}

// welcome is a Welcome (RFC 9420 section 12.4.3.1).
type welcome struct {
	cipherSuite        CipherSuite
	secrets            []encryptedGroupSecrets
	encryptedGroupInfo []byte
}

func (w *welcome) marshal(e *encoder) {
	e.u16(uint16(w.cipherSuite))
	encodeVector(e, w.secrets, func(e *encoder, s encryptedGroupSecrets) {
		e.opaque(s.newMember)
		s.secrets.marshal(e)
	})
	e.opaque(w.encryptedGroupInfo)
}

func (w *welcome) unmarshal(d *decoder) {
	w.cipherSuite = CipherSuite(d.u16())
	w.secrets = decodeVector(d, func(d *decoder) encryptedGroupSecrets {
		s := encryptedGroupSecrets{newMember: d.opaque()}
		s.secrets.unmarshal(d)
		return s
	})
	w.encryptedGroupInfo = d.opaque()
}

// Node types of the ratchet tree (RFC 9420 section 7.8).
const (
	nodeTypeLeaf   uint8 = 1
	nodeTypeParent uint8 = 2
)

// parentNode is a ParentNode of the ratchet tree.
type parentNode struct {
	encryptionKey  []byte
	parentHash     []byte
	unmergedLeaves []uint32
}

func (p *parentNode) marshal(e *encoder) {
	e.opaque(p.encryptionKey)
	e.opaque(p.parentHash)
	encodeVector(e, p.unmergedLeaves, func(e *encoder, l uint32) { e.u32(l) })
}

func (p *parentNode) unmarshal(d *decoder) {
	p.encryptionKey = d.opaque()
	p.parentHash = d.opaque()
	p.unmergedLeaves = decodeVector(d, (*decoder).u32)
}

// treeNode is a non-blank Node of the ratchet tree: a leaf or a parent.
type treeNode struct {
	leaf   *leafNode
	parent *parentNode
}

// ratchetTree is the ratchet_tree extension's optional<Node> ratchet_tree<V>:
// the tree's nodes in index order, nil for blank nodes.
type ratchetTree []*treeNode

func (t ratchetTree) marshal(e *encoder) {
	encodeVector(e, t, func(e *encoder, n *treeNode) {
		e.optional(n != nil)
		switch {
		case n == nil:
		case n.leaf != nil:
			e.u8(nodeTypeLeaf)
			n.leaf.marshal(e)
		default:
			e.u8(nodeTypeParent)
			n.parent.marshal(e)
		}
	})
}

func (t *ratchetTree) unmarshal(d *decoder) {
	*t = decodeVector(d, func(d *decoder) *treeNode {
		if !d.optional() {
			return nil
		}
		start := d.off
		switch d.u8() {
		case nodeTypeLeaf:
			n := &treeNode{leaf: new(leafNode)}
			n.leaf.unmarshal(d)
			return n
		case nodeTypeParent:
			n := &treeNode{parent: new(parentNode)}
			n.parent.unmarshal(d)
			return n
		default:
			d.failAt(start, ErrUnknownValue)
			return nil
		}
	})
}
