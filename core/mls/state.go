package mls

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"maps"
	"math"
	"slices"
)

// Persistence of a member's state (Group.MarshalState, UnmarshalState).
//
// The encoding uses the TLS presentation language of codec.go:
//
//	struct {
//	    opaque magic[4] = "x0xS";
//	    uint16 version = 1;
//	    uint32 own_leaf;
//	    GroupContext group_context;
//	    optional<Node> ratchet_tree<V>;      // as the ratchet_tree extension
//	    opaque confirmation_tag<V>;
//	    opaque sender_data_secret<V>;        // the current epoch's secrets,
//	    opaque exporter_secret<V>;           // Nh bytes each
//	    opaque external_secret<V>;
//	    opaque confirmation_key<V>;
//	    opaque membership_key<V>;
//	    opaque resumption_psk<V>;
//	    opaque epoch_authenticator<V>;
//	    opaque init_secret<V>;
//	    PrivateNodeKey private_keys<V>;      // ascending node index
//	    SecretTreeState secret_tree;
//	    CachedProposal proposals<V>;         // in arrival order
//	    OwnUpdate own_updates<V>;            // ascending reference
//	    ResumptionPSK resumption_psks<V>;    // past epochs, ascending
//	    PastEpoch past_epochs<V>;            // ascending epoch
//	    opaque checksum[32];                 // SHA-256 of everything before
//	} GroupState;
//
//	struct { uint32 node; opaque private_key<V>; } PrivateNodeKey;
//	struct { opaque ref<V>; uint32 sender; Proposal proposal; } CachedProposal;
//	struct { opaque ref<V>; opaque private_key<V>; } OwnUpdate;
//	struct { uint64 epoch; opaque secret<V>; } ResumptionPSK;
//	struct {
//	    GroupContext group_context;
//	    optional<Node> ratchet_tree<V>;
//	    opaque sender_data_secret<V>;
//	    SecretTreeState secret_tree;
//	} PastEpoch;
//	struct {
//	    NodeSecret nodes<V>;                 // ascending node index
//	    LeafRatchets ratchets<V>;            // ascending leaf index
//	} SecretTreeState;
//	struct { uint32 node; opaque secret<V>; } NodeSecret;
//	struct { uint32 leaf; Ratchet handshake; Ratchet application; } LeafRatchets;
//	struct {
//	    optional<opaque secret<V>>;          // absent once exhausted
//	    uint32 next_generation;
//	    KeptKey keys<V>;                     // ascending generation
//	} Ratchet;
//	struct { uint32 generation; opaque key<V>; opaque nonce<V>; } KeptKey;
//
// What can be recomputed is left out: the interim transcript hash, the
// public halves of private keys (taken from the tree, and checked), the
// current epoch's entry in the list of resumption PSKs (it is the epoch's
// resumption_psk secret, stored above). The joiner,
// welcome and encryption secrets are deleted when an epoch starts and are
// not stored. The encoding is canonical (maps in ascending key order), so
// a decoded state encodes to the same bytes.

// stateMagic starts every stored group state.
var stateMagic = [4]byte{'x', '0', 'x', 'S'}

// stateVersion is the version of the stored state format.
const stateVersion uint16 = 1

// stateHeaderSize is the size of the magic and version.
const stateHeaderSize = len(stateMagic) + 2

// MarshalState encodes this member's state for storage (the format is
// documented in state.go): the current epoch with its secret tree
// (including the keys kept in each ratchet's out-of-order window), private
// tree keys, the epoch's cached proposals and this member's pending Update
// keys, the resumption PSKs and the retained past epochs, followed by a
// SHA-256 checksum.
//
// Not included: the signature private key (store it separately and pass
// it to UnmarshalState), the Config (passed to UnmarshalState again), and
// a pending commit of this member (after UnmarshalState there is none; a
// commit sent but not merged must be merged before marshalling, or
// discarded). The state holds every secret of the member in the clear:
// the caller owns the returned slice, must keep it confidential (encrypt
// it at rest) and should zero it once stored. The checksum only detects
// accidental corruption; it is not an authenticator. A stored state is a
// copy like Group.Clone's: a member restored from an old state reuses
// ratchet generations it had already sent with, and regains keys it had
// deleted, so store the state after every change that matters and resume
// only from the latest.
//
// It fails with ErrInactive for a closed or removed member, and with
// ErrMessageTooLarge if the encoding exceeds Config.MaxStateSize (it
// could not be loaded with that configuration).
func (g *Group) MarshalState() ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.checkActive(); err != nil {
		return nil, err
	}
	b, _, err := g.marshalStateLocked()
	if err != nil {
		return nil, err
	}
	if len(b) > g.cfg.MaxStateSize {
		zero(b)
		return nil, fmt.Errorf("%w: group state of %d bytes, limit %d", ErrMessageTooLarge, len(b), g.cfg.MaxStateSize)
	}
	return b, nil
}

// statePublic holds the encodings of a state's large public parts (group
// contexts, trees, cached proposals), made before anything secret is
// written, so that the state is written into one buffer of a size known
// in advance: a growing buffer would leave copies of the secrets behind
// in memory that can no longer be zeroed.
type statePublic struct {
	gc, tree  []byte
	proposals [][]byte
	pastGC    [][]byte
	pastTree  [][]byte
}

// marshalStateLocked encodes the state with its checksum; grew reports
// whether the buffer had to grow (the size bound was wrong), for tests.
func (g *Group) marshalStateLocked() (b []byte, grew bool, err error) {
	pub, err := g.encodePublicParts()
	if err != nil {
		return nil, false, err
	}
	size := g.stateSizeBound(pub)
	e := encoder{b: make([]byte, 0, size)}
	e.raw(stateMagic[:])
	e.u16(stateVersion)
	g.marshalState(&e, pub)
	if e.err != nil {
		zero(e.b)
		return nil, false, e.err
	}
	sum := sha256.Sum256(e.b)
	e.raw(sum[:])
	return e.b, cap(e.b) != size, nil
}

// encodePublicParts encodes the public parts of the state.
func (g *Group) encodePublicParts() (*statePublic, error) {
	pub := &statePublic{}
	var err error
	if pub.gc, err = encode(g.st.gc); err != nil {
		return nil, err
	}
	if pub.tree, err = encode(g.st.tree.export()); err != nil {
		return nil, err
	}
	for _, cp := range g.cache {
		b, err := encode(cp.p)
		if err != nil {
			return nil, err
		}
		pub.proposals = append(pub.proposals, b)
	}
	for _, p := range g.past {
		gc, err := encode(p.ctx.groupContext)
		if err != nil {
			return nil, err
		}
		tree, err := encode(p.tree.export())
		if err != nil {
			return nil, err
		}
		pub.pastGC, pub.pastTree = append(pub.pastGC, gc), append(pub.pastTree, tree)
	}
	return pub, nil
}

// Size bounds of the encoding: a vector header or opaque length prefix
// takes at most 4 bytes.
const (
	hdrBound = 4
	u32Size  = 4
)

// opaqueBound bounds the encoding of an opaque<V> of b.
func opaqueBound(b []byte) int { return hdrBound + len(b) }

// stateSizeBound bounds the length of the state's encoding, checksum
// included.
func (g *Group) stateSizeBound(pub *statePublic) int {
	st := g.st
	n := stateHeaderSize + sha256.Size + u32Size + len(pub.gc) + len(pub.tree) + opaqueBound(st.confirmationTag)
	for _, p := range st.secrets.storedFields() {
		n += opaqueBound(*p)
	}
	n += hdrBound
	for _, k := range st.priv.keys {
		n += u32Size + opaqueBound(k.priv)
	}
	n += secretTreeBound(st.ctx.secretTree)
	n += hdrBound
	for i, cp := range g.cache {
		n += opaqueBound(cp.ref) + u32Size + len(pub.proposals[i])
	}
	n += hdrBound
	for ref, k := range g.ownUpdates {
		n += hdrBound + len(ref) + opaqueBound(k.priv)
	}
	n += hdrBound
	for _, r := range g.resumption {
		n += 8 + opaqueBound(r.secret)
	}
	n += hdrBound
	for i, p := range g.past {
		n += len(pub.pastGC[i]) + len(pub.pastTree[i]) + opaqueBound(p.ctx.senderDataSecret) + secretTreeBound(p.ctx.secretTree)
	}
	return n
}

// secretTreeBound bounds the length of a SecretTreeState.
func secretTreeBound(t *secretTree) int {
	n := 2 * hdrBound
	for _, s := range t.nodes {
		n += u32Size + opaqueBound(s)
	}
	for _, rs := range t.ratchets {
		n += u32Size
		for _, r := range rs {
			n += 1 + opaqueBound(r.secret) + u32Size + hdrBound
			for _, k := range r.keys {
				n += u32Size + opaqueBound(k.key) + opaqueBound(k.nonce)
			}
		}
	}
	return n
}

// marshalState writes the GroupState fields after the version, with the
// public parts pub encoded in advance.
func (g *Group) marshalState(e *encoder, pub *statePublic) {
	st := g.st
	e.u32(st.priv.leaf)
	e.raw(pub.gc)
	e.raw(pub.tree)
	e.opaque(st.confirmationTag)
	for _, p := range st.secrets.storedFields() {
		e.opaque(*p)
	}
	e.vector(func(e *encoder) {
		for _, x := range slices.Sorted(maps.Keys(st.priv.keys)) {
			e.u32(x)
			e.opaque(st.priv.keys[x].priv)
		}
	})
	marshalSecretTree(e, st.ctx.secretTree)
	e.vector(func(e *encoder) {
		for i, cp := range g.cache {
			e.opaque(cp.ref)
			e.u32(cp.sender)
			e.raw(pub.proposals[i])
		}
	})
	e.vector(func(e *encoder) {
		for _, ref := range slices.Sorted(maps.Keys(g.ownUpdates)) {
			e.opaque([]byte(ref))
			e.opaque(g.ownUpdates[ref].priv)
		}
	})
	e.vector(func(e *encoder) {
		for _, r := range g.resumption {
			if r.epoch < st.gc.epoch {
				e.u64(r.epoch)
				e.opaque(r.secret)
			}
		}
	})
	e.vector(func(e *encoder) {
		for i, p := range g.past {
			e.raw(pub.pastGC[i])
			e.raw(pub.pastTree[i])
			e.opaque(p.ctx.senderDataSecret)
			marshalSecretTree(e, p.ctx.secretTree)
		}
	})
}

// storedFields returns the secrets a stored state holds, in their order.
func (es *epochSecrets) storedFields() []*[]byte {
	return []*[]byte{&es.senderData, &es.exporter, &es.external, &es.confirmation, &es.membership,
		&es.resumption, &es.epochAuthenticator, &es.init}
}

// marshalSecretTree writes a SecretTreeState.
func marshalSecretTree(e *encoder, t *secretTree) {
	e.vector(func(e *encoder) {
		for _, x := range slices.Sorted(maps.Keys(t.nodes)) {
			e.u32(x)
			e.opaque(t.nodes[x])
		}
	})
	e.vector(func(e *encoder) {
		for _, l := range slices.Sorted(maps.Keys(t.ratchets)) {
			e.u32(l)
			for _, r := range t.ratchets[l] {
				e.optional(r.secret != nil)
				if r.secret != nil {
					e.opaque(r.secret)
				}
				e.u32(r.next)
				e.vector(func(e *encoder) {
					for _, g := range slices.Sorted(maps.Keys(r.keys)) {
						e.u32(g)
						e.opaque(r.keys[g].key)
						e.opaque(r.keys[g].nonce)
					}
				})
			}
		}
	})
}

// storedState is a GroupState as decoded, before it is validated and
// assembled into a Group. Its byte slices are copies of the input.
type storedState struct {
	leaf       uint32
	gc         groupContext
	tree       ratchetTree
	tag        []byte
	secrets    epochSecrets
	priv       map[uint32][]byte
	secretTree *secretTree
	cache      []*cachedProposal
	ownUpdates []storedUpdate
	resumption []resumptionPSK
	past       []*storedPast
}

// storedUpdate is an OwnUpdate.
type storedUpdate struct {
	ref, priv []byte
}

// storedPast is a PastEpoch.
type storedPast struct {
	gc         groupContext
	tree       ratchetTree
	senderData []byte
	secretTree *secretTree
}

// decodeIndexed reads a vector whose entries start with a uint32 index in
// strictly ascending order, calling elem for the rest of each entry.
func decodeIndexed(d *decoder, elem func(d *decoder, index uint32)) {
	first, prev := true, uint32(0)
	d.vector(func(d *decoder) {
		start := d.off
		x := d.u32()
		if d.err != nil {
			return
		}
		if !first && x <= prev {
			d.failAt(start, ErrInvalidValue)
			return
		}
		first, prev = false, x
		elem(d, x)
	})
}

// unmarshalSecretTree reads a SecretTreeState into a secret tree without
// its suite and size (set when it is validated).
func unmarshalSecretTree(d *decoder) *secretTree {
	t := &secretTree{nodes: map[uint32][]byte{}, ratchets: map[uint32]*[2]*hashRatchet{}}
	decodeIndexed(d, func(d *decoder, x uint32) {
		t.nodes[x] = d.opaque()
	})
	decodeIndexed(d, func(d *decoder, l uint32) {
		var rs [2]*hashRatchet
		for i := range rs {
			r := &hashRatchet{keys: map[uint32]ratchetKey{}}
			if d.optional() {
				r.secret = d.opaque()
			}
			r.next = d.u32()
			decodeIndexed(d, func(d *decoder, g uint32) {
				r.keys[g] = ratchetKey{key: d.opaque(), nonce: d.opaque()}
			})
			rs[i] = r
		}
		t.ratchets[l] = &rs
	})
	return t
}

func (sd *storedState) unmarshal(d *decoder) {
	sd.leaf = d.u32()
	sd.gc.unmarshal(d)
	sd.tree.unmarshal(d)
	sd.tag = d.opaque()
	for _, p := range sd.secrets.storedFields() {
		*p = d.opaque()
	}
	sd.priv = map[uint32][]byte{}
	decodeIndexed(d, func(d *decoder, x uint32) {
		sd.priv[x] = d.opaque()
	})
	sd.secretTree = unmarshalSecretTree(d)
	sd.cache = decodeVector(d, func(d *decoder) *cachedProposal {
		cp := &cachedProposal{ref: d.opaque(), sender: d.u32(), p: new(proposal)}
		cp.p.unmarshal(d)
		return cp
	})
	var prevRef []byte
	sd.ownUpdates = decodeVector(d, func(d *decoder) storedUpdate {
		start := d.off
		u := storedUpdate{ref: d.opaque(), priv: d.opaque()}
		if d.err == nil && prevRef != nil && bytes.Compare(u.ref, prevRef) <= 0 {
			d.failAt(start, ErrInvalidValue)
		}
		prevRef = u.ref
		return u
	})
	first, prevEpoch := true, uint64(0)
	sd.resumption = decodeVector(d, func(d *decoder) resumptionPSK {
		start := d.off
		r := resumptionPSK{epoch: d.u64(), secret: d.opaque()}
		if d.err == nil && !first && r.epoch <= prevEpoch {
			d.failAt(start, ErrInvalidValue)
		}
		first, prevEpoch = false, r.epoch
		return r
	})
	first = true
	sd.past = decodeVector(d, func(d *decoder) *storedPast {
		start := d.off
		p := new(storedPast)
		p.gc.unmarshal(d)
		p.tree.unmarshal(d)
		p.senderData = d.opaque()
		p.secretTree = unmarshalSecretTree(d)
		if d.err == nil && !first && p.gc.epoch <= prevEpoch {
			d.failAt(start, ErrInvalidValue)
		}
		first, prevEpoch = false, p.gc.epoch
		return p
	})
}

// wipe zeroes every secret of a decoded state that is discarded.
func (sd *storedState) wipe() {
	zero(sd.tag)
	sd.secrets.wipe()
	for _, k := range sd.priv {
		zero(k)
	}
	if sd.secretTree != nil {
		sd.secretTree.wipe()
	}
	for _, u := range sd.ownUpdates {
		zero(u.priv)
	}
	for _, r := range sd.resumption {
		zero(r.secret)
	}
	for _, p := range sd.past {
		if p != nil {
			zero(p.senderData)
			if p.secretTree != nil {
				p.secretTree.wipe()
			}
		}
	}
}

// UnmarshalState restores a member's state stored by MarshalState, with
// the member's signature private key sigPriv (checked against the
// signature key of the member's leaf) and the configuration cfg (nil:
// defaults; it is not stored). Past epochs and resumption PSKs beyond
// cfg's PastEpochs and ResumptionPSKEpochs are dropped, oldest first. The
// restored group has no pending commit. UnmarshalState copies what it
// keeps: the caller may zero state and sigPriv afterwards, and owns them.
//
// Input longer than Config.MaxStateSize is refused with
// ErrMessageTooLarge before it is read. Input that is not a stored state
// (wrong magic, unknown version) or does not parse is refused with a
// *DecodeError (wrapping ErrInvalidValue, ErrUnknownValue, ErrTruncated,
// ...); a wrong checksum, a state that breaks an invariant (tree hash,
// tree shape and sizes, the member's leaf, private keys that do not match
// the tree, secret sizes, the secret tree's coverage of the leaves, the
// confirmation tag, cached proposals and own Update keys) or a signature
// key that does not match with an error wrapping ErrInvalidState (and
// ErrUnsupportedSuite for an unknown suite). Leaf signatures and parent
// hashes were checked when the tree was received and are not checked
// again. UnmarshalState never panics, and its work and allocations are
// linear in the input's length: decoding allocates at most about 40 bytes
// per input byte (codec.go), and hashing the stored trees allocates short-
// lived garbage of up to about 300 bytes per input byte (a tree of blank
// nodes, one byte each), of which only one tree path is live at a time.
func UnmarshalState(state, sigPriv []byte, cfg *Config) (*Group, error) {
	c := cfg.resolve()
	if len(state) > c.MaxStateSize {
		return nil, fmt.Errorf("%w: group state of %d bytes, limit %d", ErrMessageTooLarge, len(state), c.MaxStateSize)
	}
	body, err := openState(state)
	if err != nil {
		return nil, err
	}
	var sd storedState
	d := &decoder{b: body, base: stateHeaderSize}
	sd.unmarshal(d)
	if err := d.finish("group state"); err != nil {
		sd.wipe()
		return nil, err
	}
	g, err := sd.build(&c, sigPriv)
	if err != nil {
		sd.wipe()
		return nil, err
	}
	return g, nil
}

// openState checks a stored state's magic, version and checksum and
// returns the body between the header and the checksum (aliased).
func openState(b []byte) ([]byte, error) {
	if len(b) < stateHeaderSize+sha256.Size {
		return nil, &DecodeError{What: "group state", Offset: len(b), Err: ErrTruncated}
	}
	if !bytes.Equal(b[:len(stateMagic)], stateMagic[:]) {
		return nil, &DecodeError{What: "group state magic", Offset: 0, Err: ErrInvalidValue}
	}
	if v := uint16(b[4])<<8 | uint16(b[5]); v != stateVersion {
		return nil, &DecodeError{What: "group state version", Offset: 4, Err: ErrUnknownValue}
	}
	end := len(b) - sha256.Size
	sum := sha256.Sum256(b[:end])
	if !bytes.Equal(sum[:], b[end:]) {
		return nil, fmt.Errorf("%w: checksum does not match", ErrInvalidState)
	}
	return b[stateHeaderSize:end], nil
}

// invalidState returns an ErrInvalidState error.
func invalidState(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidState}, args...)...)
}

// loadTree imports a stored ratchet tree and checks its shape and its
// root hash against gc's tree hash.
func loadTree(s Suite, rt ratchetTree, gc *groupContext) (*publicTree, error) {
	tree, err := newPublicTree(rt)
	if err != nil {
		return nil, invalidState("epoch %d: %w", gc.epoch, err)
	}
	if !bytes.Equal(tree.compactRootHash(s), gc.treeHash) {
		return nil, invalidState("epoch %d: tree hash does not match the group context", gc.epoch)
	}
	return tree, nil
}

// compactRootHash returns the tree hash of the root, keeping only the
// hashes of one path in memory (rootHash keeps every node's).
func (t *publicTree) compactRootHash(s Suite) []byte {
	var h func(x uint32) []byte
	h = func(x uint32) []byte {
		var lh, rh []byte
		if !isLeaf(x) {
			l, _ := left(x)
			r, _ := right(x)
			lh, rh = h(l), h(r)
		}
		out, err := t.nodeHash(s, x, lh, rh, nil)
		if err != nil {
			return nil // unreachable: tree nodes decoded from bounded input encode
		}
		return out
	}
	return h(t.size.root())
}

// build validates a decoded state and assembles the Group. On error the
// caller wipes sd.
func (sd *storedState) build(c *Config, sigPriv []byte) (*Group, error) {
	s, err := sd.gc.cipherSuite.Suite()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	nh := s.HashSize()
	gc := &sd.gc
	tree, err := loadTree(s, sd.tree, gc)
	if err != nil {
		return nil, err
	}
	me := sd.leaf
	own := tree.leaf(me)
	if own == nil {
		return nil, invalidState("own leaf %d is blank or outside the tree of %d leaves", me, tree.size.leaves())
	}
	sigPub, err := s.SignaturePublicKey(sigPriv)
	if err != nil {
		return nil, invalidState("signature private key: %w", err)
	}
	if !bytes.Equal(sigPub, own.signatureKey) {
		return nil, invalidState("signature private key does not match leaf %d's signature key", me)
	}
	for _, p := range sd.secrets.storedFields() {
		if len(*p) != nh {
			return nil, invalidState("epoch secret of %d bytes, want %d", len(*p), nh)
		}
	}
	if !s.VerifyMAC(sd.secrets.confirmation, gc.confirmedTranscriptHash, sd.tag) {
		return nil, invalidState("confirmation tag does not verify")
	}
	interim, err := interimTranscriptHash(s, gc.confirmedTranscriptHash, sd.tag)
	if err != nil {
		return nil, err
	}

	// Private keys: the member's leaf and nodes of its direct path, each
	// matching the tree's public key.
	path, err := tree.size.directPath(nodeOfLeaf(me))
	if err != nil {
		return nil, invalidState("%w", err)
	}
	if _, ok := sd.priv[nodeOfLeaf(me)]; !ok {
		return nil, invalidState("no private key for own leaf %d", me)
	}
	priv := newPrivateTree(me)
	for x, k := range sd.priv {
		if x != nodeOfLeaf(me) && !slices.Contains(path, x) {
			return nil, invalidState("private key of node %d, not on leaf %d's direct path", x, me)
		}
		pub := nodePublicKey(tree, x)
		if pub == nil {
			return nil, invalidState("private key of blank node %d", x)
		}
		got, err := s.HPKEPublicKey(k)
		if err != nil {
			return nil, invalidState("private key of node %d: %w", x, err)
		}
		if !bytes.Equal(got, pub) {
			return nil, invalidState("private key of node %d does not match the tree", x)
		}
		priv.keys[x] = nodeKey{priv: k, pub: bytes.Clone(pub)}
	}
	if err := sd.secretTree.checkStored(s, tree.size); err != nil {
		return nil, invalidState("epoch %d: %w", gc.epoch, err)
	}

	// The epoch's proposals and this member's Update keys.
	if len(sd.cache) > maxEpochProposals {
		return nil, invalidState("%d cached proposals, at most %d", len(sd.cache), maxEpochProposals)
	}
	refs := make(map[string]*cachedProposal, len(sd.cache))
	for _, cp := range sd.cache {
		if len(cp.ref) != nh {
			return nil, invalidState("proposal reference of %d bytes, want %d", len(cp.ref), nh)
		}
		if refs[string(cp.ref)] != nil {
			return nil, invalidState("proposal %x cached twice", cp.ref)
		}
		refs[string(cp.ref)] = cp
		if tree.leaf(cp.sender) == nil {
			return nil, invalidState("proposal from blank or absent leaf %d", cp.sender)
		}
		switch cp.p.typ {
		case proposalAdd, proposalUpdate, proposalRemove, proposalPSK, proposalGroupContextExtensions:
		default:
			return nil, invalidState("cached proposal of type %d", cp.p.typ)
		}
	}
	ownUpdates := make(map[string]nodeKey, len(sd.ownUpdates))
	for _, u := range sd.ownUpdates {
		cp := refs[string(u.ref)]
		if cp == nil || cp.sender != me || cp.p.typ != proposalUpdate {
			return nil, invalidState("update key for %x, not an update of this member's", u.ref)
		}
		got, err := s.HPKEPublicKey(u.priv)
		if err != nil {
			return nil, invalidState("update private key: %w", err)
		}
		if !bytes.Equal(got, cp.p.update.encryptionKey) {
			return nil, invalidState("update private key does not match the proposal's leaf")
		}
		ownUpdates[string(u.ref)] = nodeKey{priv: u.priv, pub: got}
	}

	for _, r := range sd.resumption {
		if r.epoch >= gc.epoch || len(r.secret) != nh {
			return nil, invalidState("resumption PSK of epoch %d (%d bytes), current epoch %d", r.epoch, len(r.secret), gc.epoch)
		}
	}

	// Past epochs: the same group and suite, earlier epochs, consistent
	// trees and secret trees.
	pastTrees := make([]*publicTree, len(sd.past))
	for i, p := range sd.past {
		if p.gc.epoch >= gc.epoch || !bytes.Equal(p.gc.groupID, gc.groupID) || p.gc.cipherSuite != gc.cipherSuite {
			return nil, invalidState("past epoch %d does not precede epoch %d of the group", p.gc.epoch, gc.epoch)
		}
		if len(p.senderData) != nh {
			return nil, invalidState("past epoch %d: sender data secret of %d bytes", p.gc.epoch, len(p.senderData))
		}
		if pastTrees[i], err = loadTree(s, p.tree, &p.gc); err != nil {
			return nil, err
		}
		if err := p.secretTree.checkStored(s, pastTrees[i].size); err != nil {
			return nil, invalidState("past epoch %d: %w", p.gc.epoch, err)
		}
	}

	// Assemble. The deleted secrets of the epoch are zero, as in a live
	// state.
	es := sd.secrets
	es.joiner, es.welcome, es.encryption = make([]byte, nh), make([]byte, nh), make([]byte, nh)
	ctx, err := newEpochContext(s, gc, es.membership, es.senderData, sd.secretTree)
	if err != nil {
		return nil, err
	}
	self := me
	ctx.self = &self
	st := &epochState{gc: gc, tree: tree, priv: priv, secrets: &es, interim: interim, confirmationTag: sd.tag, ctx: ctx}
	g := &Group{cfg: *c, suite: s, sigPriv: bytes.Clone(sigPriv), st: st, active: true}
	for _, cp := range sd.cache {
		g.addToCache(cp)
	}
	if len(ownUpdates) > 0 {
		g.ownUpdates = ownUpdates
	}
	g.resumption = append(g.resumption, sd.resumption...)
	g.storeResumption() // the current epoch's, and the limit of c
	var past []*pastEpoch
	for i, p := range sd.past {
		pctx, err := newEpochContext(s, &p.gc, nil, p.senderData, p.secretTree)
		if err != nil {
			return nil, err
		}
		pself := me
		pctx.self = &pself
		past = append(past, &pastEpoch{ctx: pctx, tree: pastTrees[i]})
	}
	for len(past) > c.PastEpochs {
		past[0].wipe()
		past = past[1:]
	}
	g.past = past
	return g, nil
}

// checkStored checks a decoded secret tree against the tree size of its
// epoch and completes it: node secrets and ratchets within the tree and of
// the right sizes, at most the out-of-order window of kept keys per
// ratchet, generations consistent with each ratchet's position, and every
// leaf covered exactly once, by a node secret on its path or by its own
// ratchets (the secret tree's deletion schedule keeps exactly that).
func (t *secretTree) checkStored(s Suite, size treeSize) error {
	t.s, t.size = s, size
	t.maxForward, t.window = defaultMaxForwardDistance, defaultOutOfOrderWindow
	nh, nk, nn := s.HashSize(), s.KeySize(), s.NonceSize()
	var covered uint64
	for x, sec := range t.nodes {
		if !size.contains(x) {
			return fmt.Errorf("secret of node %d outside the tree", x)
		}
		if len(sec) != nh {
			return fmt.Errorf("secret of node %d has %d bytes", x, len(sec))
		}
		path, _ := size.directPath(x)
		for _, p := range path {
			if _, ok := t.nodes[p]; ok {
				return fmt.Errorf("secrets of node %d and its ancestor %d", x, p)
			}
		}
		covered += uint64(1) << level(x)
	}
	for l, rs := range t.ratchets {
		if l >= size.leaves() {
			return fmt.Errorf("ratchets of leaf %d outside the tree", l)
		}
		x := nodeOfLeaf(l)
		path, _ := size.directPath(x)
		for _, p := range append(path, x) {
			if _, ok := t.nodes[p]; ok {
				return fmt.Errorf("ratchets of leaf %d and a secret of node %d above it", l, p)
			}
		}
		for _, r := range rs {
			r.s, r.maxForward, r.window = s, t.maxForward, t.window
			if r.secret == nil && r.next != math.MaxUint32 {
				return fmt.Errorf("leaf %d: ratchet without a secret at generation %d", l, r.next)
			}
			if r.secret != nil && len(r.secret) != nh {
				return fmt.Errorf("leaf %d: ratchet secret of %d bytes", l, len(r.secret))
			}
			if len(r.keys) > r.window {
				return fmt.Errorf("leaf %d: %d kept keys, window %d", l, len(r.keys), r.window)
			}
			for g, k := range r.keys {
				if g > r.next || (g == r.next && r.secret != nil) {
					return fmt.Errorf("leaf %d: kept key of generation %d, not before %d", l, g, r.next)
				}
				if len(k.key) != nk || len(k.nonce) != nn {
					return fmt.Errorf("leaf %d: kept key of generation %d has the wrong size", l, g)
				}
			}
		}
		covered++
	}
	if covered != uint64(size.leaves()) {
		return fmt.Errorf("secret tree covers %d of %d leaves", covered, size.leaves())
	}
	return nil
}
