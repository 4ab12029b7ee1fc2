package mls

import (
	"bytes"
	"crypto/hmac"
	"fmt"
	"io"
)

// Message protection (RFC 9420 section 6): signing FramedContent, and
// wrapping it as a PublicMessage (membership tag) or a PrivateMessage
// (content under the secret tree, sender data under the sender data
// secret).

// Errors of message protection.
var (
	// errApplicationInPublic means application data in a PublicMessage,
	// which RFC 9420 section 6.2 forbids.
	errApplicationInPublic = fmt.Errorf("%w: application data must be sent as a PrivateMessage", ErrInvalidMessage)
	// errSenderNotMember means a PrivateMessage or membership tag needs a
	// member sender.
	errSenderNotMember = fmt.Errorf("%w: a member sender is required", ErrInvalidSender)
)

// reuseGuardSize is the size of a PrivateMessage's reuse guard.
const reuseGuardSize = 4

// maxPadding bounds the zero padding a sender adds to a PrivateMessage.
const maxPadding = 1 << 16

// epochContext is what protecting and unprotecting messages of one epoch
// needs: the suite, the epoch's GroupContext, and its membership key,
// sender data secret and secret tree. It does not own the secrets: the
// epoch state that holds it wipes them. Like the secret tree, it is not safe
// for concurrent use.
type epochContext struct {
	suite            Suite
	groupContext     *groupContext
	encodedContext   []byte // TLS encoding of groupContext
	membershipKey    []byte
	senderDataSecret []byte
	secretTree       *secretTree
	// self is the leaf index of the member that owns this context, if it
	// is a member: its own PrivateMessages are refused with ErrOwnMessage
	// (its sending ratchet deleted their keys).
	self *uint32
}

func newEpochContext(s Suite, gc *groupContext, membershipKey, senderDataSecret []byte, tree *secretTree) (*epochContext, error) {
	enc, err := encodeGroupContext(gc)
	if err != nil {
		return nil, err
	}
	return &epochContext{suite: s, groupContext: gc, encodedContext: enc,
		membershipKey: membershipKey, senderDataSecret: senderDataSecret, secretTree: tree}, nil
}

// tbs returns FramedContentTBS for ac in this epoch.
func (c *epochContext) tbs(ac *authenticatedContent) ([]byte, error) {
	var e encoder
	ac.marshalTBS(&e, c.encodedContext)
	return e.bytes()
}

// sign returns ac's content signed with sigPriv for wireFormat, with
// confirmationTag (commits only) in its authentication data.
func (c *epochContext) sign(wireFormat uint16, content *framedContent, sigPriv, confirmationTag []byte) (*authenticatedContent, error) {
	if content.contentType == contentCommit && confirmationTag == nil {
		return nil, fmt.Errorf("%w: a commit needs a confirmation tag", ErrInvalidValue)
	}
	ac := &authenticatedContent{wireFormat: wireFormat, content: *content}
	if content.contentType == contentCommit {
		ac.auth.confirmationTag = confirmationTag
	}
	tbs, err := c.tbs(ac)
	if err != nil {
		return nil, err
	}
	if ac.auth.signature, err = c.suite.SignWithLabel(sigPriv, "FramedContentTBS", tbs); err != nil {
		return nil, err
	}
	return ac, nil
}

// verify checks ac's signature with the sender's signature key.
func (c *epochContext) verify(ac *authenticatedContent, sigPub []byte) error {
	tbs, err := c.tbs(ac)
	if err != nil {
		return err
	}
	return c.suite.VerifyWithLabel(sigPub, "FramedContentTBS", tbs, ac.auth.signature)
}

// checkEpoch checks that a message is for this context's group and epoch.
func (c *epochContext) checkEpoch(groupID []byte, epoch uint64) error {
	if !bytes.Equal(groupID, c.groupContext.groupID) {
		return ErrWrongGroup
	}
	if epoch != c.groupContext.epoch {
		return fmt.Errorf("%w: epoch %d, current %d", ErrWrongEpoch, epoch, c.groupContext.epoch)
	}
	return nil
}

// membershipTag is MAC(membership_key, AuthenticatedContentTBM), with
// AuthenticatedContentTBM = FramedContentTBS || FramedContentAuthData.
func (c *epochContext) membershipTag(ac *authenticatedContent) ([]byte, error) {
	var e encoder
	ac.marshalTBS(&e, c.encodedContext)
	ac.auth.marshal(&e, ac.content.contentType)
	tbm, err := e.bytes()
	if err != nil {
		return nil, err
	}
	return c.suite.MAC(c.membershipKey, tbm), nil
}

// protectPublic wraps signed content as a PublicMessage.
func (c *epochContext) protectPublic(ac *authenticatedContent) (*publicMessage, error) {
	if ac.wireFormat != wireFormatPublicMessage {
		return nil, fmt.Errorf("%w: content signed for wire format %d", ErrInvalidValue, ac.wireFormat)
	}
	if ac.content.contentType == contentApplication {
		return nil, errApplicationInPublic
	}
	if err := c.checkEpoch(ac.content.groupID, ac.content.epoch); err != nil {
		return nil, err
	}
	pm := &publicMessage{content: ac.content, auth: ac.auth}
	if ac.content.sender.typ == senderMember {
		tag, err := c.membershipTag(ac)
		if err != nil {
			return nil, err
		}
		pm.membershipTag = tag
	}
	return pm, nil
}

// unprotectPublic checks a PublicMessage's group, epoch and (for members)
// membership tag, then its signature with the key sigKey returns for its
// sender, and returns the authenticated content.
func (c *epochContext) unprotectPublic(pm *publicMessage, sigKey func(sender) ([]byte, error)) (*authenticatedContent, error) {
	if pm.content.contentType == contentApplication {
		return nil, errApplicationInPublic
	}
	if err := c.checkEpoch(pm.content.groupID, pm.content.epoch); err != nil {
		return nil, err
	}
	ac := &authenticatedContent{wireFormat: wireFormatPublicMessage, content: pm.content, auth: pm.auth}
	if pm.content.sender.typ == senderMember {
		tag, err := c.membershipTag(ac)
		if err != nil {
			return nil, err
		}
		if !hmac.Equal(tag, pm.membershipTag) {
			return nil, fmt.Errorf("%w: membership tag does not verify", ErrCrypto)
		}
	}
	pub, err := sigKey(pm.content.sender)
	if err != nil {
		return nil, err
	}
	if err := c.verify(ac, pub); err != nil {
		return nil, err
	}
	return ac, nil
}

// ratchetFor returns the ratchet a content type is encrypted under.
func ratchetFor(contentType uint8) ratchetType {
	if contentType == contentApplication {
		return applicationRatchet
	}
	return handshakeRatchet
}

// privateContentAAD encodes PrivateContentAAD.
func privateContentAAD(groupID []byte, epoch uint64, contentType uint8, authenticatedData []byte) ([]byte, error) {
	var e encoder
	e.opaque(groupID)
	e.u64(epoch)
	e.u8(contentType)
	e.opaque(authenticatedData)
	return e.bytes()
}

// senderDataAAD encodes SenderDataAAD.
func senderDataAAD(groupID []byte, epoch uint64, contentType uint8) ([]byte, error) {
	var e encoder
	e.opaque(groupID)
	e.u64(epoch)
	e.u8(contentType)
	return e.bytes()
}

// applyReuseGuard XORs the reuse guard into the first bytes of a copy of
// nonce.
func applyReuseGuard(nonce []byte, guard [reuseGuardSize]byte) []byte {
	n := append([]byte{}, nonce...)
	for i := range guard {
		n[i] ^= guard[i]
	}
	return n
}

// protectPrivate encrypts signed content (wire format PrivateMessage, from
// a member) as a PrivateMessage with padding zero bytes, taking the next
// key of the sender's ratchet and a fresh reuse guard from rand.
func (c *epochContext) protectPrivate(ac *authenticatedContent, padding int, rand io.Reader) (*privateMessage, error) {
	if ac.wireFormat != wireFormatPrivateMessage {
		return nil, fmt.Errorf("%w: content signed for wire format %d", ErrInvalidValue, ac.wireFormat)
	}
	if ac.content.sender.typ != senderMember {
		return nil, errSenderNotMember
	}
	if err := c.checkEpoch(ac.content.groupID, ac.content.epoch); err != nil {
		return nil, err
	}
	if padding < 0 || padding > maxPadding {
		return nil, fmt.Errorf("%w: padding %d", ErrInvalidValue, padding)
	}
	var e encoder
	ac.content.marshalBody(&e)
	ac.auth.marshal(&e, ac.content.contentType)
	e.raw(make([]byte, padding))
	plaintext, err := e.bytes()
	if err != nil {
		return nil, err
	}
	return c.sealPrivate(&ac.content, plaintext, rand)
}

// sealPrivate encrypts plaintext, an encoded PrivateMessageContent, for
// content's group, epoch, sender and authenticated data.
func (c *epochContext) sealPrivate(content *framedContent, plaintext []byte, rand io.Reader) (*privateMessage, error) {
	ct := content.contentType
	aad, err := privateContentAAD(content.groupID, content.epoch, ct, content.authenticatedData)
	if err != nil {
		return nil, err
	}
	var guard [reuseGuardSize]byte
	if _, err := io.ReadFull(rand, guard[:]); err != nil {
		return nil, fmt.Errorf("mls: reading reuse guard: %w", err)
	}
	leaf := content.sender.index
	gen, k, err := c.secretTree.nextKey(leaf, ratchetFor(ct))
	if err != nil {
		return nil, err
	}
	defer k.zero()
	nonce := applyReuseGuard(k.nonce, guard)
	defer zero(nonce)
	ciphertext, err := c.suite.Seal(k.key, nonce, aad, plaintext)
	if err != nil {
		return nil, err
	}
	var sd encoder
	sd.u32(leaf)
	sd.u32(gen)
	sd.raw(guard[:])
	senderData, _ := sd.bytes()
	sdAAD, err := senderDataAAD(content.groupID, content.epoch, ct)
	if err != nil {
		return nil, err
	}
	sdKey, err := senderDataKeyNonce(c.suite, c.senderDataSecret, ciphertext)
	if err != nil {
		return nil, err
	}
	defer sdKey.zero()
	encSenderData, err := c.suite.Seal(sdKey.key, sdKey.nonce, sdAAD, senderData)
	if err != nil {
		return nil, err
	}
	return &privateMessage{
		groupID:             content.groupID,
		epoch:               content.epoch,
		contentType:         ct,
		authenticatedData:   content.authenticatedData,
		encryptedSenderData: encSenderData,
		ciphertext:          ciphertext,
	}, nil
}

// unprotectPrivate decrypts a PrivateMessage of this epoch, checks its
// padding and its signature with the key sigKey returns for the sender, and
// returns the authenticated content. The key it used is deleted only once
// everything checks, so a forged message cannot burn a generation.
func (c *epochContext) unprotectPrivate(pm *privateMessage, sigKey func(sender) ([]byte, error)) (*authenticatedContent, error) {
	if err := c.checkEpoch(pm.groupID, pm.epoch); err != nil {
		return nil, err
	}
	if !validContentType(pm.contentType) {
		return nil, fmt.Errorf("%w: content type %d", ErrUnknownValue, pm.contentType)
	}
	sdKey, err := senderDataKeyNonce(c.suite, c.senderDataSecret, pm.ciphertext)
	if err != nil {
		return nil, err
	}
	defer sdKey.zero()
	sdAAD, err := senderDataAAD(pm.groupID, pm.epoch, pm.contentType)
	if err != nil {
		return nil, err
	}
	senderData, err := c.suite.Open(sdKey.key, sdKey.nonce, sdAAD, pm.encryptedSenderData)
	if err != nil {
		return nil, err
	}
	var leaf, gen uint32
	var guard [reuseGuardSize]byte
	if err := decodeAll("SenderData", senderData, func(d *decoder) {
		leaf, gen = d.u32(), d.u32()
		copy(guard[:], d.take(reuseGuardSize))
	}); err != nil {
		return nil, err
	}
	if c.self != nil && leaf == *c.self {
		return nil, ErrOwnMessage
	}
	typ := ratchetFor(pm.contentType)
	k, err := c.secretTree.keyAt(leaf, typ, gen)
	if err != nil {
		return nil, err
	}
	defer k.zero()
	nonce := applyReuseGuard(k.nonce, guard)
	defer zero(nonce)
	aad, err := privateContentAAD(pm.groupID, pm.epoch, pm.contentType, pm.authenticatedData)
	if err != nil {
		return nil, err
	}
	plaintext, err := c.suite.Open(k.key, nonce, aad, pm.ciphertext)
	if err != nil {
		return nil, err
	}
	ac := &authenticatedContent{
		wireFormat: wireFormatPrivateMessage,
		content: framedContent{
			groupID:           pm.groupID,
			epoch:             pm.epoch,
			sender:            sender{typ: senderMember, index: leaf},
			authenticatedData: pm.authenticatedData,
			contentType:       pm.contentType,
		},
	}
	// PrivateMessageContent: body, auth data, then zero padding to the end.
	d := newDecoder(plaintext)
	ac.content.unmarshalBody(d)
	ac.auth.unmarshal(d, pm.contentType)
	for d.err == nil && d.off < len(d.b) {
		if d.b[d.off] != 0 {
			d.fail(ErrInvalidValue)
			break
		}
		d.off++
	}
	if err := d.finish("PrivateMessageContent"); err != nil {
		return nil, err
	}
	pub, err := sigKey(ac.content.sender)
	if err != nil {
		return nil, err
	}
	if err := c.verify(ac, pub); err != nil {
		return nil, err
	}
	c.secretTree.erase(leaf, typ, gen)
	return ac, nil
}
