package mls

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

// testEpoch is a two-member epoch of suite 1 with member 1's signature key.
type testEpoch struct {
	s                  Suite
	gc                 *groupContext
	sigPriv, sigPub    []byte
	encryption, sdSec  []byte
	membershipKey      []byte
	sigKey             func(sender) ([]byte, error)
	newContext         func(t *testing.T) *epochContext
	applicationContent func(data string) *framedContent
}

func newTestEpoch(t *testing.T) *testEpoch {
	s := testSuite(t)
	sigPriv, sigPub, err := s.GenerateSignatureKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	e := &testEpoch{
		s:             s,
		gc:            &groupContext{version: protocolVersionMLS10, cipherSuite: s.ID(), groupID: []byte("group"), epoch: 7, treeHash: []byte{1}, confirmedTranscriptHash: []byte{2}},
		sigPriv:       sigPriv,
		sigPub:        sigPub,
		encryption:    bytes.Repeat([]byte{3}, 32),
		sdSec:         bytes.Repeat([]byte{4}, 32),
		membershipKey: bytes.Repeat([]byte{5}, 32),
	}
	e.sigKey = func(snd sender) ([]byte, error) {
		if snd.typ == senderMember && snd.index == 1 {
			return e.sigPub, nil
		}
		return nil, errSenderNotMember
	}
	e.newContext = func(t *testing.T) *epochContext {
		tree, err := newSecretTree(s, e.encryption, 2)
		if err != nil {
			t.Fatal(err)
		}
		c, err := newEpochContext(s, e.gc, e.membershipKey, e.sdSec, tree)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	e.applicationContent = func(data string) *framedContent {
		return &framedContent{groupID: []byte("group"), epoch: 7, sender: sender{typ: senderMember, index: 1},
			authenticatedData: []byte("ad"), contentType: contentApplication, applicationData: []byte(data)}
	}
	return e
}

func TestPrivateMessageTamperingDoesNotBurnKeys(t *testing.T) {
	e := newTestEpoch(t)
	send, recv := e.newContext(t), e.newContext(t)
	ac, err := send.sign(wireFormatPrivateMessage, e.applicationContent("hello"), e.sigPriv, nil)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := send.protectPrivate(ac, 3, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(p *privateMessage){
		"ciphertext":         func(p *privateMessage) { p.ciphertext[len(p.ciphertext)-1] ^= 1 },
		"sender data":        func(p *privateMessage) { p.encryptedSenderData[0] ^= 1 },
		"authenticated data": func(p *privateMessage) { p.authenticatedData = []byte("other") },
		"content type":       func(p *privateMessage) { p.contentType = contentProposal },
	} {
		bad := *pm
		bad.ciphertext = append([]byte{}, pm.ciphertext...)
		bad.encryptedSenderData = append([]byte{}, pm.encryptedSenderData...)
		mutate(&bad)
		if _, err := recv.unprotectPrivate(&bad, e.sigKey); !errors.Is(err, ErrCrypto) {
			t.Errorf("tampered %s: %v, want ErrCrypto", name, err)
		}
	}
	got, err := recv.unprotectPrivate(pm, e.sigKey)
	if err != nil {
		t.Fatalf("genuine message after forgeries: %v", err)
	}
	if string(got.content.applicationData) != "hello" || !bytes.Equal(got.content.authenticatedData, []byte("ad")) {
		t.Fatalf("content %q", got.content.applicationData)
	}
}

func TestPrivateMessageChecks(t *testing.T) {
	e := newTestEpoch(t)
	send, recv := e.newContext(t), e.newContext(t)
	content := e.applicationContent("x")

	// Non-zero padding is rejected.
	ac, _ := send.sign(wireFormatPrivateMessage, content, e.sigPriv, nil)
	var enc encoder
	ac.content.marshalBody(&enc)
	ac.auth.marshal(&enc, contentApplication)
	enc.raw([]byte{0, 0, 1})
	pt, _ := enc.bytes()
	pm, err := send.sealPrivate(&ac.content, pt, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recv.unprotectPrivate(pm, e.sigKey); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("non-zero padding: %v", err)
	}

	// A signature by someone else fails; the key is kept for the genuine
	// message.
	otherPriv, _, _ := e.s.GenerateSignatureKeyPair()
	forged, _ := send.sign(wireFormatPrivateMessage, content, otherPriv, nil)
	pm, _ = send.protectPrivate(forged, 0, rand.Reader)
	if _, err := recv.unprotectPrivate(pm, e.sigKey); !errors.Is(err, ErrCrypto) {
		t.Errorf("forged signature: %v", err)
	}

	// Wrong group or epoch, wrong wire format, non-member sender, bad
	// padding size, application data as PublicMessage.
	other := *content
	other.epoch = 8
	ac2, _ := send.sign(wireFormatPrivateMessage, &other, e.sigPriv, nil)
	if _, err := send.protectPrivate(ac2, 0, rand.Reader); !errors.Is(err, ErrWrongEpoch) {
		t.Errorf("wrong epoch: %v", err)
	}
	pm, _ = send.protectPrivate(ac, 0, rand.Reader)
	pm.groupID = []byte("other")
	if _, err := recv.unprotectPrivate(pm, e.sigKey); !errors.Is(err, ErrWrongGroup) {
		t.Errorf("wrong group: %v", err)
	}
	if _, err := send.protectPrivate(ac, -1, rand.Reader); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("negative padding: %v", err)
	}
	pub, _ := send.sign(wireFormatPublicMessage, content, e.sigPriv, nil)
	if _, err := send.protectPrivate(pub, 0, rand.Reader); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("PublicMessage content as PrivateMessage: %v", err)
	}
	if _, err := send.protectPublic(pub); !errors.Is(err, errApplicationInPublic) {
		t.Errorf("application as PublicMessage: %v", err)
	}
	ext := *content
	ext.sender = sender{typ: senderExternal, index: 0}
	extAC, _ := send.sign(wireFormatPrivateMessage, &ext, e.sigPriv, nil)
	if _, err := send.protectPrivate(extAC, 0, rand.Reader); !errors.Is(err, errSenderNotMember) {
		t.Errorf("external sender in PrivateMessage: %v", err)
	}
	commitContent := &framedContent{groupID: []byte("group"), epoch: 7, sender: sender{typ: senderMember, index: 1},
		contentType: contentCommit, commit: &commit{}}
	if _, err := send.sign(wireFormatPublicMessage, commitContent, e.sigPriv, nil); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("commit without confirmation tag: %v", err)
	}
}

func TestPublicMessageSenders(t *testing.T) {
	e := newTestEpoch(t)
	c := e.newContext(t)
	extPriv, extPub, _ := e.s.GenerateSignatureKeyPair()
	content := &framedContent{groupID: []byte("group"), epoch: 7, sender: sender{typ: senderExternal, index: 0},
		contentType: contentProposal, proposal: &proposal{typ: proposalRemove, removed: 1}}
	ac, err := c.sign(wireFormatPublicMessage, content, extPriv, nil)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := c.protectPublic(ac)
	if err != nil {
		t.Fatal(err)
	}
	if pm.membershipTag != nil {
		t.Fatal("external sender got a membership tag")
	}
	b, _ := encode(&mlsMessage{wireFormat: wireFormatPublicMessage, public: pm})
	m, err := decodeMLSMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	keyOf := func(snd sender) ([]byte, error) {
		if snd.typ == senderExternal {
			return extPub, nil
		}
		return nil, errSenderNotMember
	}
	got, err := c.unprotectPublic(m.public, keyOf)
	if err != nil || got.content.proposal.removed != 1 {
		t.Fatalf("external proposal: %v", err)
	}
	// The group context is not signed for external senders, so the same
	// message verifies in another epoch's context only if group and epoch
	// match; they are checked explicitly.
	m.public.content.epoch = 6
	if _, err := c.unprotectPublic(m.public, keyOf); !errors.Is(err, ErrWrongEpoch) {
		t.Errorf("wrong epoch: %v", err)
	}
}

func TestKeyScheduleMisc(t *testing.T) {
	s := testSuite(t)
	// A nil commit secret is Nh zeros.
	gc := []byte("gc")
	a, _ := deriveJoinerSecret(s, bytes.Repeat([]byte{1}, 32), nil, gc)
	b, _ := deriveJoinerSecret(s, bytes.Repeat([]byte{1}, 32), make([]byte, 32), gc)
	if !bytes.Equal(a, b) {
		t.Error("nil commit secret differs from zeros")
	}
	es, err := deriveEpochSecrets(s, a, nil, gc)
	if err != nil {
		t.Fatal(err)
	}
	ws, _ := deriveWelcomeSecret(s, a, nil)
	if !bytes.Equal(ws, es.welcome) {
		t.Error("deriveWelcomeSecret differs from the key schedule")
	}
	init := es.init
	es.wipe()
	if !isZero(init) {
		t.Error("wipe left the init secret")
	}
	// GroupContext with another protocol version does not decode.
	g := &groupContext{version: 2, cipherSuite: 1}
	enc, _ := encode(g)
	if err := decodeAll("GroupContext", enc, new(groupContext).unmarshal); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("version 2 GroupContext: %v", err)
	}
	// PSKs: mismatched lists, no PSKs, resumption IDs round-trip.
	if _, err := pskSecret(s, make([]preSharedKeyID, 1), nil); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("mismatched PSK lists: %v", err)
	}
	if z, err := pskSecret(s, nil, nil); err != nil || !bytes.Equal(z, make([]byte, 32)) {
		t.Errorf("no PSKs: %x, %v", z, err)
	}
	id := &preSharedKeyID{typ: pskResumption, usage: resumptionBranch, pskGroupID: []byte("g"), pskEpoch: 9, pskNonce: []byte("n")}
	enc, _ = encode(id)
	var back preSharedKeyID
	if err := decodeAll("PreSharedKeyID", enc, back.unmarshal); err != nil || back.pskEpoch != 9 || back.usage != resumptionBranch {
		t.Errorf("resumption PSK ID: %v", err)
	}
	enc[1] = 7 // usage
	if err := decodeAll("PreSharedKeyID", enc, new(preSharedKeyID).unmarshal); !errors.Is(err, ErrUnknownValue) {
		t.Errorf("unknown resumption usage: %v", err)
	}
}

func TestReferencesAndGroupInfoSignature(t *testing.T) {
	e := newTestEpoch(t)
	c := e.newContext(t)
	content := &framedContent{groupID: []byte("group"), epoch: 7, sender: sender{typ: senderMember, index: 1},
		contentType: contentProposal, proposal: &proposal{typ: proposalRemove, removed: 0}}
	ac, _ := c.sign(wireFormatPublicMessage, content, e.sigPriv, nil)
	r1, err := proposalRef(e.s, ac)
	if err != nil || len(r1) != e.s.HashSize() {
		t.Fatalf("ProposalRef: %x, %v", r1, err)
	}
	b, _ := encode(ac)
	want, _ := e.s.RefHash("MLS 1.0 Proposal Reference", b)
	if !bytes.Equal(r1, want) {
		t.Error("ProposalRef is not RefHash over the AuthenticatedContent")
	}
	ac.content.proposal.removed = 1
	if r2, _ := proposalRef(e.s, ac); bytes.Equal(r1, r2) {
		t.Error("different proposals share a reference")
	}

	gi := &groupInfo{groupContext: *e.gc, confirmationTag: []byte{9}, signer: 1}
	if err := signGroupInfo(e.s, gi, e.sigPriv); err != nil {
		t.Fatal(err)
	}
	if err := verifyGroupInfo(e.s, gi, e.sigPub); err != nil {
		t.Fatal(err)
	}
	gi.groupContext.epoch++
	if err := verifyGroupInfo(e.s, gi, e.sigPub); !errors.Is(err, ErrCrypto) {
		t.Errorf("tampered GroupInfo: %v", err)
	}
}
