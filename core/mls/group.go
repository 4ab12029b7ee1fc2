package mls

import (
	"bytes"
	"fmt"
	"sync"
)

// The group state machine (RFC 9420 sections 11 and 12): a Group is one
// member's view of one MLS group, created by CreateGroup or JoinGroup. It
// proposes and commits changes, processes other members' proposals and
// commits epoch by epoch, protects and unprotects application messages and
// exports secrets. A Group is safe for concurrent use; its methods are
// serialized.
//
// Every method that fails leaves the state as it was: a commit is
// processed against copies and installed only once every check has passed.
// Secrets of an epoch are zeroed when the epoch ends (or, with
// Config.PastEpochs, when it leaves the window of retained epochs), and
// everything is zeroed by Close or when the member is removed.

// Group is one member's state of an MLS group.
type Group struct {
	mu      sync.Mutex
	cfg     Config
	suite   Suite
	sigPriv []byte
	st      *epochState
	// proposals received (or sent) in the current epoch, in order, and by
	// reference.
	cache    []*cachedProposal
	cacheRef map[string]*cachedProposal
	// ownUpdates holds the leaf key pair of each of this member's Update
	// proposals of the epoch, by proposal reference.
	ownUpdates map[string]nodeKey
	pending    *pendingCommit
	resumption []resumptionPSK // oldest first, the current epoch's last
	past       []*pastEpoch    // oldest first
	active     bool
}

// epochState is the state of one epoch.
type epochState struct {
	gc              *groupContext
	tree            *publicTree
	priv            *privateTree
	secrets         *epochSecrets
	interim         []byte // interim transcript hash
	confirmationTag []byte // the tag of the commit that started the epoch
	ctx             *epochContext
}

// newEpochState assembles an epoch from its parts, starting its secret
// tree; the joiner, welcome and encryption secrets are deleted (RFC 9420
// section 9.2).
func newEpochState(s Suite, gc *groupContext, tree *publicTree, priv *privateTree, es *epochSecrets, interim, tag []byte) (*epochState, error) {
	sec, err := newSecretTree(s, es.encryption, tree.size.leaves())
	if err != nil {
		return nil, err
	}
	ctx, err := newEpochContext(s, gc, es.membership, es.senderData, sec)
	if err != nil {
		sec.wipe()
		return nil, err
	}
	self := priv.leaf
	ctx.self = &self
	zero(es.joiner)
	zero(es.welcome)
	zero(es.encryption)
	return &epochState{gc: gc, tree: tree, priv: priv, secrets: es, interim: interim, confirmationTag: tag, ctx: ctx}, nil
}

// wipe zeroes the epoch's secrets.
func (st *epochState) wipe() {
	st.secrets.wipe()
	st.ctx.secretTree.wipe()
	st.priv.wipe()
}

// pastEpoch is what is kept of an ended epoch to decrypt late application
// messages: its protection context (secret tree and sender data secret)
// and its tree (for senders' signature keys).
type pastEpoch struct {
	ctx  *epochContext
	tree *publicTree
}

func (p *pastEpoch) wipe() {
	p.ctx.secretTree.wipe()
	zero(p.ctx.senderDataSecret)
}

// resumptionPSK is an epoch's resumption_psk (RFC 9420 section 8.6).
type resumptionPSK struct {
	epoch  uint64
	secret []byte
}

// cachedProposal is a proposal of the current epoch, by reference.
type cachedProposal struct {
	ref    []byte
	p      *proposal
	sender uint32
}

// pendingCommit is this member's commit, sent but not merged.
type pendingCommit struct {
	message []byte
	next    *epochState
	info    *CommitInfo
}

// Member is a member of the group.
type Member struct {
	// Index is the member's leaf index.
	Index uint32
	// Credential is the member's credential.
	Credential Credential
	// SignatureKey is the member's signature public key.
	SignatureKey []byte
}

// Extension is a group context extension (RFC 9420 section 13.4).
type Extension struct {
	// Type is the extension type (RFC 9420 section 17.3).
	Type uint16
	// Data is the extension's content.
	Data []byte
}

// checkActive fails if the member was removed or the group closed.
func (g *Group) checkActive() error {
	if !g.active {
		return ErrInactive
	}
	return nil
}

// GroupID returns the group's ID.
func (g *Group) GroupID() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return bytes.Clone(g.st.gc.groupID)
}

// Epoch returns the current epoch.
func (g *Group) Epoch() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.st.gc.epoch
}

// CipherSuite returns the group's cipher suite.
func (g *Group) CipherSuite() CipherSuite { return g.suite.ID() }

// OwnIndex returns this member's leaf index.
func (g *Group) OwnIndex() uint32 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.st.priv.leaf
}

// Active reports whether this member is still in the group (not removed,
// not closed).
func (g *Group) Active() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.active
}

// Members returns the current members, by leaf index.
func (g *Group) Members() []Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Member
	for l := range g.st.tree.size.leaves() {
		if ln := g.st.tree.leaf(l); ln != nil {
			out = append(out, Member{Index: l, Credential: exportCredential(&ln.credential), SignatureKey: bytes.Clone(ln.signatureKey)})
		}
	}
	return out
}

// Extensions returns the group context extensions.
func (g *Group) Extensions() []Extension {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Extension, len(g.st.gc.extensions))
	for i, x := range g.st.gc.extensions {
		out[i] = Extension{Type: x.typ, Data: bytes.Clone(x.data)}
	}
	return out
}

// EpochAuthenticator returns the current epoch's epoch_authenticator (RFC
// 9420 section 8.7), a value all members share that applications can
// compare out of band to detect impersonation.
func (g *Group) EpochAuthenticator() ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.checkActive(); err != nil {
		return nil, err
	}
	return bytes.Clone(g.st.secrets.epochAuthenticator), nil
}

// Export returns MLS-Exporter(label, context, length) of the current epoch
// (RFC 9420 section 8.5): a secret for use outside MLS, shared by all
// members of the epoch. Refresh exported values after every commit.
func (g *Group) Export(label string, context []byte, length int) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.checkActive(); err != nil {
		return nil, err
	}
	return g.st.secrets.exportSecret(g.suite, label, context, length)
}

// RatchetTree returns the group's ratchet tree as the ratchet_tree
// extension encodes it, for joiners whose Welcome omits it
// (Config.OmitRatchetTree).
func (g *Group) RatchetTree() ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return encode(g.st.tree.export())
}

// Close zeroes every secret the group holds; the group cannot be used
// after.
func (g *Group) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.deactivate()
}

// deactivate zeroes all secrets and marks the group inactive.
func (g *Group) deactivate() {
	g.active = false
	g.st.wipe()
	g.discardPending()
	g.clearCache()
	for _, r := range g.resumption {
		zero(r.secret)
	}
	g.resumption = nil
	for _, p := range g.past {
		p.wipe()
	}
	g.past = nil
	zero(g.sigPriv)
}

// discardPending drops this member's pending commit, wiping its state.
func (g *Group) discardPending() {
	if g.pending != nil {
		g.pending.next.wipe()
		g.pending = nil
	}
}

// clearCache drops the epoch's proposals and this member's pending Update
// keys.
func (g *Group) clearCache() {
	g.cache = nil
	g.cacheRef = nil
	for ref, k := range g.ownUpdates {
		zero(k.priv)
		delete(g.ownUpdates, ref)
	}
}

// advance makes next the current epoch: the old epoch's secrets are zeroed
// (its protection context is kept if Config.PastEpochs allows), the
// epoch's proposals are dropped, and the new epoch's resumption PSK is
// stored.
func (g *Group) advance(next *epochState) {
	old := g.st
	if g.cfg.PastEpochs > 0 {
		ctx := *old.ctx
		ctx.senderDataSecret = bytes.Clone(old.ctx.senderDataSecret)
		ctx.membershipKey = nil
		g.past = append(g.past, &pastEpoch{ctx: &ctx, tree: old.tree})
		for len(g.past) > g.cfg.PastEpochs {
			g.past[0].wipe()
			g.past = g.past[1:]
		}
		old.secrets.wipe()
		old.priv.wipe()
	} else {
		old.wipe()
	}
	g.st = next
	g.clearCache()
	g.storeResumption()
}

// storeResumption keeps the current epoch's resumption PSK, dropping the
// oldest beyond Config.ResumptionPSKEpochs past epochs.
func (g *Group) storeResumption() {
	g.resumption = append(g.resumption, resumptionPSK{epoch: g.st.gc.epoch, secret: bytes.Clone(g.st.secrets.resumption)})
	for len(g.resumption) > g.cfg.ResumptionPSKEpochs+1 {
		zero(g.resumption[0].secret)
		g.resumption = g.resumption[1:]
	}
}

// resumptionSecret returns the stored resumption PSK of epoch.
func (g *Group) resumptionSecret(epoch uint64) ([]byte, bool) {
	for _, r := range g.resumption {
		if r.epoch == epoch {
			return r.secret, true
		}
	}
	return nil, false
}

// memberKeys returns the sender-key lookup for messages protected in an
// epoch with tree t: only members, only non-blank leaves.
func memberKeys(t *publicTree) func(sender) ([]byte, error) {
	return func(s sender) ([]byte, error) {
		if s.typ != senderMember {
			return nil, fmt.Errorf("%w: sender type %d", ErrUnsupported, s.typ)
		}
		ln := t.leaf(s.index)
		if ln == nil {
			return nil, fmt.Errorf("%w: leaf %d is blank or outside the tree", ErrInvalidSender, s.index)
		}
		return ln.signatureKey, nil
	}
}

// encodeMessage encodes an MLSMessage, refusing one larger than the
// configured maximum (receivers would refuse it).
func (g *Group) encodeMessage(m *mlsMessage) ([]byte, error) {
	b, err := encode(m)
	if err != nil {
		return nil, err
	}
	if err := g.cfg.checkSize("outgoing message", b); err != nil {
		return nil, err
	}
	return b, nil
}
