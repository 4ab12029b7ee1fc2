package mls

import (
	"encoding/json"
	"fmt"
	"testing"
)

// runSecretTreeVector checks sender-data keys and every leaf's ratchets.
func runSecretTreeVector(t *testing.T, raw json.RawMessage) {
	var v struct {
		CipherSuite uint16 `json:"cipher_suite"`
		SenderData  struct {
			SenderDataSecret hexBytes `json:"sender_data_secret"`
			Ciphertext       hexBytes `json:"ciphertext"`
			Key              hexBytes `json:"key"`
			Nonce            hexBytes `json:"nonce"`
		} `json:"sender_data"`
		EncryptionSecret hexBytes `json:"encryption_secret"`
		Leaves           [][]struct {
			Generation       uint32   `json:"generation"`
			HandshakeKey     hexBytes `json:"handshake_key"`
			HandshakeNonce   hexBytes `json:"handshake_nonce"`
			ApplicationKey   hexBytes `json:"application_key"`
			ApplicationNonce hexBytes `json:"application_nonce"`
		} `json:"leaves"`
	}
	decodeVectorJSON(t, raw, &v)
	s := vectorSuiteImpl(t, v.CipherSuite)

	sd, err := senderDataKeyNonce(s, v.SenderData.SenderDataSecret, v.SenderData.Ciphertext)
	must(t, "sender data key", err)
	wantBytes(t, "sender data key", sd.key, v.SenderData.Key)
	wantBytes(t, "sender data nonce", sd.nonce, v.SenderData.Nonce)

	tree, err := newSecretTree(s, v.EncryptionSecret, uint32(len(v.Leaves)))
	must(t, "secret tree", err)
	for leaf, gens := range v.Leaves {
		for _, g := range gens {
			for _, c := range []struct {
				typ        ratchetType
				key, nonce []byte
			}{
				{handshakeRatchet, g.HandshakeKey, g.HandshakeNonce},
				{applicationRatchet, g.ApplicationKey, g.ApplicationNonce},
			} {
				k, err := tree.keyAt(uint32(leaf), c.typ, g.Generation)
				must(t, fmt.Sprintf("leaf %d %s generation %d", leaf, c.typ.label(), g.Generation), err)
				what := fmt.Sprintf("leaf %d %s generation %d", leaf, c.typ.label(), g.Generation)
				wantBytes(t, what+" key", k.key, c.key)
				wantBytes(t, what+" nonce", k.nonce, c.nonce)
				tree.erase(uint32(leaf), c.typ, g.Generation)
			}
		}
	}
	// A second tree deriving the same keys through the sending path (which
	// keeps nothing) must give the same application keys.
	send, err := newSecretTree(s, v.EncryptionSecret, uint32(len(v.Leaves)))
	must(t, "secret tree", err)
	for leaf, gens := range v.Leaves {
		for _, g := range gens {
			var k ratchetKey
			for {
				gen, key, err := send.nextKey(uint32(leaf), applicationRatchet)
				must(t, "nextKey", err)
				if gen == g.Generation {
					k = key
					break
				}
			}
			wantBytes(t, fmt.Sprintf("leaf %d sending key %d", leaf, g.Generation), k.key, g.ApplicationKey)
		}
	}
	tree.wipe()
	send.wipe()
}

// runKeyScheduleVector checks a chain of epochs of the key schedule.
func runKeyScheduleVector(t *testing.T, raw json.RawMessage) {
	type epochVector struct {
		TreeHash                hexBytes `json:"tree_hash"`
		CommitSecret            hexBytes `json:"commit_secret"`
		PSKSecret               hexBytes `json:"psk_secret"`
		ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
		GroupContext            hexBytes `json:"group_context"`
		JoinerSecret            hexBytes `json:"joiner_secret"`
		WelcomeSecret           hexBytes `json:"welcome_secret"`
		InitSecret              hexBytes `json:"init_secret"`
		SenderDataSecret        hexBytes `json:"sender_data_secret"`
		EncryptionSecret        hexBytes `json:"encryption_secret"`
		ExporterSecret          hexBytes `json:"exporter_secret"`
		EpochAuthenticator      hexBytes `json:"epoch_authenticator"`
		ExternalSecret          hexBytes `json:"external_secret"`
		ConfirmationKey         hexBytes `json:"confirmation_key"`
		MembershipKey           hexBytes `json:"membership_key"`
		ResumptionPSK           hexBytes `json:"resumption_psk"`
		ExternalPub             hexBytes `json:"external_pub"`
		Exporter                struct {
			Label   string   `json:"label"`
			Context hexBytes `json:"context"`
			Length  int      `json:"length"`
			Secret  hexBytes `json:"secret"`
		} `json:"exporter"`
	}
	var v struct {
		CipherSuite       uint16        `json:"cipher_suite"`
		GroupID           hexBytes      `json:"group_id"`
		InitialInitSecret hexBytes      `json:"initial_init_secret"`
		Epochs            []epochVector `json:"epochs"`
	}
	decodeVectorJSON(t, raw, &v)
	s := vectorSuiteImpl(t, v.CipherSuite)
	initSecret := []byte(v.InitialInitSecret)
	for i, ep := range v.Epochs {
		gc := &groupContext{
			version:                 protocolVersionMLS10,
			cipherSuite:             CipherSuite(v.CipherSuite),
			groupID:                 v.GroupID,
			epoch:                   uint64(i),
			treeHash:                ep.TreeHash,
			confirmedTranscriptHash: ep.ConfirmedTranscriptHash,
		}
		gcBytes, err := encodeGroupContext(gc)
		must(t, "GroupContext", err)
		wantBytes(t, fmt.Sprintf("epoch %d group_context", i), gcBytes, ep.GroupContext)
		joiner, err := deriveJoinerSecret(s, initSecret, ep.CommitSecret, gcBytes)
		must(t, "joiner secret", err)
		wantBytes(t, fmt.Sprintf("epoch %d joiner_secret", i), joiner, ep.JoinerSecret)
		es, err := deriveEpochSecrets(s, joiner, ep.PSKSecret, gcBytes)
		must(t, "epoch secrets", err)
		for _, c := range []struct {
			name      string
			got, want []byte
		}{
			{"welcome_secret", es.welcome, ep.WelcomeSecret},
			{"init_secret", es.init, ep.InitSecret},
			{"sender_data_secret", es.senderData, ep.SenderDataSecret},
			{"encryption_secret", es.encryption, ep.EncryptionSecret},
			{"exporter_secret", es.exporter, ep.ExporterSecret},
			{"epoch_authenticator", es.epochAuthenticator, ep.EpochAuthenticator},
			{"external_secret", es.external, ep.ExternalSecret},
			{"confirmation_key", es.confirmation, ep.ConfirmationKey},
			{"membership_key", es.membership, ep.MembershipKey},
			{"resumption_psk", es.resumption, ep.ResumptionPSK},
		} {
			wantBytes(t, fmt.Sprintf("epoch %d %s", i, c.name), c.got, c.want)
		}
		_, pub, err := es.externalKeyPair(s)
		must(t, "external key pair", err)
		wantBytes(t, fmt.Sprintf("epoch %d external_pub", i), pub, ep.ExternalPub)
		x := ep.Exporter
		out, err := es.exportSecret(s, x.Label, x.Context, x.Length)
		must(t, "exporter", err)
		wantBytes(t, fmt.Sprintf("epoch %d exporter", i), out, x.Secret)
		initSecret = append([]byte{}, es.init...)
		es.wipe()
	}
}

// runPSKSecretVector checks psk_secret over a list of external PSKs.
func runPSKSecretVector(t *testing.T, raw json.RawMessage) {
	var v struct {
		CipherSuite uint16 `json:"cipher_suite"`
		PSKs        []struct {
			PSKID    hexBytes `json:"psk_id"`
			PSK      hexBytes `json:"psk"`
			PSKNonce hexBytes `json:"psk_nonce"`
		} `json:"psks"`
		PSKSecret hexBytes `json:"psk_secret"`
	}
	decodeVectorJSON(t, raw, &v)
	s := vectorSuiteImpl(t, v.CipherSuite)
	var ids []preSharedKeyID
	var psks [][]byte
	for _, p := range v.PSKs {
		ids = append(ids, preSharedKeyID{typ: pskExternal, pskID: p.PSKID, pskNonce: p.PSKNonce})
		psks = append(psks, p.PSK)
	}
	got, err := pskSecret(s, ids, psks)
	must(t, "psk_secret", err)
	wantBytes(t, "psk_secret", got, v.PSKSecret)
}

// runTranscriptHashesVector checks the confirmation tag and both
// transcript hashes after one commit.
func runTranscriptHashesVector(t *testing.T, raw json.RawMessage) {
	var v struct {
		CipherSuite                  uint16   `json:"cipher_suite"`
		ConfirmationKey              hexBytes `json:"confirmation_key"`
		AuthenticatedContent         hexBytes `json:"authenticated_content"`
		InterimTranscriptHashBefore  hexBytes `json:"interim_transcript_hash_before"`
		ConfirmedTranscriptHashAfter hexBytes `json:"confirmed_transcript_hash_after"`
		InterimTranscriptHashAfter   hexBytes `json:"interim_transcript_hash_after"`
	}
	decodeVectorJSON(t, raw, &v)
	s := vectorSuiteImpl(t, v.CipherSuite)
	var ac authenticatedContent
	must(t, "AuthenticatedContent", decodeAll("AuthenticatedContent", v.AuthenticatedContent, ac.unmarshal))
	if ac.content.contentType != contentCommit {
		t.Fatalf("content type %d, want commit", ac.content.contentType)
	}
	must(t, "confirmation tag", verifyConfirmationTag(s, v.ConfirmationKey, v.ConfirmedTranscriptHashAfter, ac.auth.confirmationTag))
	confirmed, err := confirmedTranscriptHash(s, v.InterimTranscriptHashBefore, &ac)
	must(t, "confirmed transcript hash", err)
	wantBytes(t, "confirmed_transcript_hash_after", confirmed, v.ConfirmedTranscriptHashAfter)
	interim, err := interimTranscriptHash(s, confirmed, ac.auth.confirmationTag)
	must(t, "interim transcript hash", err)
	wantBytes(t, "interim_transcript_hash_after", interim, v.InterimTranscriptHashAfter)
	wantBytes(t, "confirmation tag", confirmationTag(s, v.ConfirmationKey, confirmed), ac.auth.confirmationTag)
}
