package mls

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
)

// runMessageProtectionVector checks PublicMessage and PrivateMessage
// protection of a proposal, a commit and application data.
func runMessageProtectionVector(t *testing.T, raw json.RawMessage) {
	var v struct {
		CipherSuite             uint16   `json:"cipher_suite"`
		GroupID                 hexBytes `json:"group_id"`
		Epoch                   uint64   `json:"epoch"`
		TreeHash                hexBytes `json:"tree_hash"`
		ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
		SignaturePriv           hexBytes `json:"signature_priv"`
		SignaturePub            hexBytes `json:"signature_pub"`
		EncryptionSecret        hexBytes `json:"encryption_secret"`
		SenderDataSecret        hexBytes `json:"sender_data_secret"`
		MembershipKey           hexBytes `json:"membership_key"`
		Proposal                hexBytes `json:"proposal"`
		ProposalPub             hexBytes `json:"proposal_pub"`
		ProposalPriv            hexBytes `json:"proposal_priv"`
		Commit                  hexBytes `json:"commit"`
		CommitPub               hexBytes `json:"commit_pub"`
		CommitPriv              hexBytes `json:"commit_priv"`
		Application             hexBytes `json:"application"`
		ApplicationPriv         hexBytes `json:"application_priv"`
	}
	decodeVectorJSON(t, raw, &v)
	s := vectorSuiteImpl(t, v.CipherSuite)
	gc := &groupContext{
		version:                 protocolVersionMLS10,
		cipherSuite:             CipherSuite(v.CipherSuite),
		groupID:                 v.GroupID,
		epoch:                   v.Epoch,
		treeHash:                v.TreeHash,
		confirmedTranscriptHash: v.ConfirmedTranscriptHash,
	}
	// The sender is always leaf 1 of a two-member group.
	sigKey := func(snd sender) ([]byte, error) {
		if snd.typ != senderMember || snd.index != 1 {
			return nil, errors.New("unexpected sender")
		}
		return v.SignaturePub, nil
	}
	newContext := func() *epochContext {
		tree, err := newSecretTree(s, v.EncryptionSecret, 2)
		must(t, "secret tree", err)
		c, err := newEpochContext(s, gc, v.MembershipKey, v.SenderDataSecret, tree)
		must(t, "epoch context", err)
		return c
	}
	cases := []struct {
		name        string
		contentType uint8
		raw         []byte
		pub, priv   []byte
	}{
		{"proposal", contentProposal, v.Proposal, v.ProposalPub, v.ProposalPriv},
		{"commit", contentCommit, v.Commit, v.CommitPub, v.CommitPriv},
		{"application", contentApplication, v.Application, nil, v.ApplicationPriv},
	}
	for _, c := range cases {
		content := framedContent{
			groupID:     v.GroupID,
			epoch:       v.Epoch,
			sender:      sender{typ: senderMember, index: 1},
			contentType: c.contentType,
		}
		switch c.contentType {
		case contentProposal:
			content.proposal = new(proposal)
			must(t, "decode proposal", decodeAll("Proposal", c.raw, content.proposal.unmarshal))
		case contentCommit:
			content.commit = new(commit)
			must(t, "decode commit", decodeAll("Commit", c.raw, content.commit.unmarshal))
		default:
			content.applicationData = c.raw
		}
		// A confirmation tag needs the next epoch's key, which the vector
		// does not give; any value will do for protection.
		var tag []byte
		if c.contentType == contentCommit {
			tag = make([]byte, s.HashSize())
		}

		// The vector's PublicMessage verifies and yields the raw content.
		if c.pub != nil {
			m, err := decodeMLSMessage(c.pub)
			must(t, c.name+"_pub", err)
			if m.public == nil {
				t.Fatalf("%s_pub is not a PublicMessage", c.name)
			}
			ac, err := newContext().unprotectPublic(m.public, sigKey)
			must(t, "unprotect "+c.name+"_pub", err)
			wantBytes(t, c.name+"_pub content", contentBody(t, &ac.content), c.raw)
		}
		// Our own PublicMessage verifies (application data must fail).
		ctx := newContext()
		ac, err := ctx.sign(wireFormatPublicMessage, &content, v.SignaturePriv, tag)
		must(t, "sign "+c.name, err)
		pm, err := ctx.protectPublic(ac)
		if c.contentType == contentApplication {
			if !errors.Is(err, errApplicationInPublic) {
				t.Errorf("application data as PublicMessage: %v, want errApplicationInPublic", err)
			}
		} else {
			must(t, "protect public "+c.name, err)
			b, err := encode(&mlsMessage{wireFormat: wireFormatPublicMessage, public: pm})
			must(t, "encode", err)
			m, err := decodeMLSMessage(b)
			must(t, "decode own PublicMessage", err)
			got, err := newContext().unprotectPublic(m.public, sigKey)
			must(t, "unprotect own "+c.name+" PublicMessage", err)
			wantBytes(t, "own "+c.name+" PublicMessage content", contentBody(t, &got.content), c.raw)
			m.public.membershipTag[0] ^= 1
			if _, err := newContext().unprotectPublic(m.public, sigKey); !errors.Is(err, ErrCrypto) {
				t.Errorf("tampered membership tag: %v", err)
			}
		}

		// The vector's PrivateMessage decrypts and verifies.
		m, err := decodeMLSMessage(c.priv)
		must(t, c.name+"_priv", err)
		if m.private == nil {
			t.Fatalf("%s_priv is not a PrivateMessage", c.name)
		}
		got, err := newContext().unprotectPrivate(m.private, sigKey)
		must(t, "unprotect "+c.name+"_priv", err)
		wantBytes(t, c.name+"_priv content", contentBody(t, &got.content), c.raw)

		// Our own PrivateMessage round-trips between two members' trees.
		sendCtx, recvCtx := newContext(), newContext()
		ac, err = sendCtx.sign(wireFormatPrivateMessage, &content, v.SignaturePriv, tag)
		must(t, "sign "+c.name, err)
		for i := range 3 {
			priv, err := sendCtx.protectPrivate(ac, i*7, rand.Reader)
			must(t, "protect private "+c.name, err)
			b, err := encode(&mlsMessage{wireFormat: wireFormatPrivateMessage, private: priv})
			must(t, "encode", err)
			m, err := decodeMLSMessage(b)
			must(t, "decode own PrivateMessage", err)
			got, err := recvCtx.unprotectPrivate(m.private, sigKey)
			must(t, "unprotect own "+c.name+" PrivateMessage", err)
			wantBytes(t, "own "+c.name+" PrivateMessage content", contentBody(t, &got.content), c.raw)
			// A replay finds its key deleted.
			if _, err := recvCtx.unprotectPrivate(m.private, sigKey); !errors.Is(err, errGenerationUsed) {
				t.Errorf("replayed PrivateMessage: %v, want errGenerationUsed", err)
			}
		}
	}
}

// contentBody returns the encoded proposal or commit, or the application
// data, of content.
func contentBody(t *testing.T, content *framedContent) []byte {
	t.Helper()
	switch content.contentType {
	case contentProposal:
		b, err := encode(content.proposal)
		must(t, "encode proposal", err)
		return b
	case contentCommit:
		b, err := encode(content.commit)
		must(t, "encode commit", err)
		return b
	}
	return content.applicationData
}

// runWelcomeVector decrypts a Welcome for a key package and checks the
// GroupInfo's signature and confirmation tag.
func runWelcomeVector(t *testing.T, raw json.RawMessage) {
	var v struct {
		CipherSuite uint16   `json:"cipher_suite"`
		InitPriv    hexBytes `json:"init_priv"`
		SignerPub   hexBytes `json:"signer_pub"`
		KeyPackage  hexBytes `json:"key_package"`
		Welcome     hexBytes `json:"welcome"`
	}
	decodeVectorJSON(t, raw, &v)
	s := vectorSuiteImpl(t, v.CipherSuite)
	kpMsg, err := decodeMLSMessage(v.KeyPackage)
	must(t, "key_package", err)
	wMsg, err := decodeMLSMessage(v.Welcome)
	must(t, "welcome", err)
	if kpMsg.keyPackage == nil || wMsg.welcome == nil {
		t.Fatal("key_package or welcome has the wrong wire format")
	}
	initPub, err := s.HPKEPublicKey(v.InitPriv)
	must(t, "init key", err)
	wantBytes(t, "init key", initPub, kpMsg.keyPackage.initKey)
	ref, err := keyPackageRef(s, kpMsg.keyPackage)
	must(t, "KeyPackageRef", err)
	gs, err := openGroupSecrets(s, wMsg.welcome, ref, v.InitPriv)
	must(t, "group secrets", err)
	if len(gs.psks) != 0 {
		t.Fatalf("%d PSKs; the vector has none", len(gs.psks))
	}
	welcomeSecret, err := deriveWelcomeSecret(s, gs.joinerSecret, nil)
	must(t, "welcome secret", err)
	gi, err := openGroupInfo(s, wMsg.welcome, welcomeSecret)
	must(t, "group info", err)
	must(t, "GroupInfo signature", verifyGroupInfo(s, gi, v.SignerPub))
	gc, err := encodeGroupContext(&gi.groupContext)
	must(t, "group context", err)
	es, err := deriveEpochSecrets(s, gs.joinerSecret, nil, gc)
	must(t, "epoch secrets", err)
	wantBytes(t, "welcome_secret", es.welcome, welcomeSecret)
	must(t, "confirmation tag", verifyConfirmationTag(s, es.confirmation, gi.groupContext.confirmedTranscriptHash, gi.confirmationTag))
	es.wipe()

	// A wrong key package finds no entry; a tampered signature fails.
	if _, err := openGroupSecrets(s, wMsg.welcome, append(ref, 0), v.InitPriv); !errors.Is(err, ErrNotInWelcome) {
		t.Errorf("foreign key package: %v", err)
	}
	gi.signer ^= 1
	if err := verifyGroupInfo(s, gi, v.SignerPub); !errors.Is(err, ErrCrypto) {
		t.Errorf("tampered GroupInfo: %v", err)
	}
}
