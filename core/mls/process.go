package mls

import (
	"bytes"
	"crypto/rand"
	"fmt"
)

// Sending and receiving group messages: Protect encrypts application data,
// Process unprotects and applies whatever arrives (application messages,
// proposals, commits), enforcing the framing rules of RFC 9420 section 6.

// ContentKind is the kind of content a processed message carried.
type ContentKind uint8

// Content kinds.
const (
	// KindApplication is application data.
	KindApplication ContentKind = iota + 1
	// KindProposal is a proposal, now cached for the epoch's commit.
	KindProposal
	// KindCommit is a commit, now applied: the group is in a new epoch (or
	// this member was removed).
	KindCommit
)

// Received is a message Process accepted.
type Received struct {
	// Kind is what the message carried.
	Kind ContentKind
	// Sender is the sender's leaf index (in the epoch the message was
	// sent in).
	Sender uint32
	// Epoch is the epoch the message was sent in.
	Epoch uint64
	// AuthenticatedData is the message's authenticated (unencrypted)
	// data.
	AuthenticatedData []byte
	// ApplicationData is the content of an application message.
	ApplicationData []byte
	// Commit summarizes a commit's changes.
	Commit *CommitInfo
}

// Process unprotects an MLS message (an MLSMessage holding a PublicMessage
// or PrivateMessage of this group) and acts on it: an application message
// is returned; a proposal is validated and cached for the epoch's commit;
// a commit is validated (proposal list, sender, path, parent and tree
// hashes, confirmation tag) and applied, moving the group to the next
// epoch, or leaving it inactive if the commit removed this member. This
// member's own commit, if it is the pending one, is merged. Application
// messages of past epochs are accepted if Config.PastEpochs keeps them.
//
// On any error the state is unchanged (a PrivateMessage may still have
// ratcheted its sender's key chain forward, keeping the skipped keys).
func (g *Group) Process(msg []byte) (*Received, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.checkActive(); err != nil {
		return nil, err
	}
	if err := g.cfg.checkSize("message", msg); err != nil {
		return nil, err
	}
	if g.pending != nil && bytes.Equal(msg, g.pending.message) {
		r := &Received{Kind: KindCommit, Sender: g.st.priv.leaf, Epoch: g.st.gc.epoch, Commit: g.pending.info}
		next := g.pending.next
		g.pending = nil
		g.advance(next)
		return r, nil
	}
	m, err := decodeMLSMessage(msg)
	if err != nil {
		return nil, err
	}
	var ac *authenticatedContent
	switch {
	case m.public != nil:
		ac, err = g.unprotectPublic(m.public)
	case m.private != nil:
		ac, err = g.unprotectPrivate(m.private)
	default:
		return nil, fmt.Errorf("%w: MLSMessage holds a %s", ErrNotGroupMessage, wireFormatName(m.wireFormat))
	}
	if err != nil {
		return nil, err
	}
	r := &Received{
		Sender:            ac.content.sender.index,
		Epoch:             ac.content.epoch,
		AuthenticatedData: ac.content.authenticatedData,
	}
	switch ac.content.contentType {
	case contentApplication:
		r.Kind, r.ApplicationData = KindApplication, ac.content.applicationData
	case contentProposal:
		if err := g.receiveProposal(ac); err != nil {
			return nil, err
		}
		r.Kind = KindProposal
	case contentCommit:
		next, info, err := g.processCommit(ac)
		if err != nil {
			return nil, err
		}
		r.Kind, r.Commit = KindCommit, info
		g.discardPending()
		if next == nil {
			g.deactivate()
		} else {
			g.advance(next)
		}
	}
	return r, nil
}

// unprotectPublic checks a PublicMessage of the current epoch from a
// member.
func (g *Group) unprotectPublic(pm *publicMessage) (*authenticatedContent, error) {
	if pm.content.sender.typ != senderMember {
		return nil, fmt.Errorf("%w: PublicMessage from sender type %d (external senders and external commits)", ErrUnsupported, pm.content.sender.typ)
	}
	return g.st.ctx.unprotectPublic(pm, memberKeys(g.st.tree))
}

// unprotectPrivate decrypts a PrivateMessage of the current epoch, or an
// application message of a retained past epoch.
func (g *Group) unprotectPrivate(pm *privateMessage) (*authenticatedContent, error) {
	ctx, tree := g.st.ctx, g.st.tree
	if pm.epoch != g.st.gc.epoch && bytes.Equal(pm.groupID, g.st.gc.groupID) && pm.contentType == contentApplication {
		for _, p := range g.past {
			if p.ctx.groupContext.epoch == pm.epoch {
				ctx, tree = p.ctx, p.tree
				break
			}
		}
	}
	return ctx.unprotectPrivate(pm, memberKeys(tree))
}

// Protect encrypts application data as a PrivateMessage of the current
// epoch and returns the MLSMessage to send. authenticatedData travels in
// the clear but authenticated. It fails with ErrPendingProposals while
// proposals of the epoch are uncommitted.
func (g *Group) Protect(data, authenticatedData []byte) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.checkActive(); err != nil {
		return nil, err
	}
	if len(g.cache) > 0 {
		return nil, ErrPendingProposals
	}
	content := &framedContent{
		groupID:           g.st.gc.groupID,
		epoch:             g.st.gc.epoch,
		sender:            sender{typ: senderMember, index: g.st.priv.leaf},
		authenticatedData: bytes.Clone(authenticatedData),
		contentType:       contentApplication,
		applicationData:   bytes.Clone(data),
	}
	if content.authenticatedData == nil {
		content.authenticatedData = []byte{}
	}
	ac, err := g.st.ctx.sign(wireFormatPrivateMessage, content, g.sigPriv, nil)
	if err != nil {
		return nil, err
	}
	return g.protectAC(ac)
}

// handshakeWireFormat is the wire format of this member's proposals and
// commits.
func (g *Group) handshakeWireFormat() uint16 {
	if g.cfg.EncryptHandshake {
		return wireFormatPrivateMessage
	}
	return wireFormatPublicMessage
}

// protectContent signs a proposal of this member for its handshake wire
// format and protects it.
func (g *Group) protectContent(content *framedContent) ([]byte, *authenticatedContent, error) {
	ac, err := g.st.ctx.sign(g.handshakeWireFormat(), content, g.sigPriv, nil)
	if err != nil {
		return nil, nil, err
	}
	msg, err := g.protectAC(ac)
	if err != nil {
		return nil, nil, err
	}
	return msg, ac, nil
}

// protectAC protects signed content with the current epoch's keys and
// encodes it as an MLSMessage.
func (g *Group) protectAC(ac *authenticatedContent) ([]byte, error) {
	m := &mlsMessage{wireFormat: ac.wireFormat}
	var err error
	if ac.wireFormat == wireFormatPublicMessage {
		m.public, err = g.st.ctx.protectPublic(ac)
	} else {
		m.private, err = g.st.ctx.protectPrivate(ac, g.padding(ac), rand.Reader)
	}
	if err != nil {
		return nil, err
	}
	return g.encodeMessage(m)
}

// padding returns the zero bytes that bring ac's PrivateMessageContent to
// a multiple of Config.PaddingBlock.
func (g *Group) padding(ac *authenticatedContent) int {
	block := g.cfg.PaddingBlock
	if block <= 1 {
		return 0
	}
	var e encoder
	ac.content.marshalBody(&e)
	ac.auth.marshal(&e, ac.content.contentType)
	return (block - len(e.b)%block) % block
}
