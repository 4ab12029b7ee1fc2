package mls

import (
	"fmt"
)

// protocolVersionMLS10 is ProtocolVersion mls10, the only version RFC 9420
// defines.
const protocolVersionMLS10 uint16 = 1

// extension is an Extension (RFC 9420 section 13): a type and opaque data.
type extension struct {
	typ  uint16
	data []byte
}

func marshalExtensions(e *encoder, exts []extension) {
	encodeVector(e, exts, func(e *encoder, x extension) {
		e.u16(x.typ)
		e.opaque(x.data)
	})
}

func unmarshalExtensions(d *decoder) []extension {
	return decodeVector(d, func(d *decoder) extension {
		return extension{typ: d.u16(), data: d.opaque()}
	})
}

// groupContext is the GroupContext (RFC 9420 section 8.1): the summary of
// a group's state that every epoch's secrets are bound to.
type groupContext struct {
	version                 uint16
	cipherSuite             CipherSuite
	groupID                 []byte
	epoch                   uint64
	treeHash                []byte
	confirmedTranscriptHash []byte
	extensions              []extension
}

func (g *groupContext) marshal(e *encoder) {
	e.u16(g.version)
	e.u16(uint16(g.cipherSuite))
	e.opaque(g.groupID)
	e.u64(g.epoch)
	e.opaque(g.treeHash)
	e.opaque(g.confirmedTranscriptHash)
	marshalExtensions(e, g.extensions)
}

func (g *groupContext) unmarshal(d *decoder) {
	g.version = d.version()
	g.cipherSuite = CipherSuite(d.u16())
	g.groupID = d.opaque()
	g.epoch = d.u64()
	g.treeHash = d.opaque()
	g.confirmedTranscriptHash = d.opaque()
	g.extensions = unmarshalExtensions(d)
}

// epochSecrets are the secrets of one epoch (RFC 9420 section 8):
//
//	                 init_secret[n-1]
//	                       |
//	commit_secret --> KDF.Extract
//	                       |
//	         ExpandWithLabel(., "joiner", GroupContext[n], Nh) = joiner_secret
//	                       |
//	psk_secret -----> KDF.Extract = member secret --> DeriveSecret(., "welcome")
//	                       |
//	         ExpandWithLabel(., "epoch", GroupContext[n], Nh) = epoch_secret
//	                       |
//	                 DeriveSecret(., <label>) = <secret>
//
// The member secret and epoch_secret are deleted once the rest is derived.
type epochSecrets struct {
	joiner             []byte
	welcome            []byte
	senderData         []byte // "sender data"
	encryption         []byte // "encryption"
	exporter           []byte // "exporter"
	external           []byte // "external"
	confirmation       []byte // "confirm"
	membership         []byte // "membership"
	resumption         []byte // "resumption"
	epochAuthenticator []byte // "authentication"
	init               []byte // "init": the next epoch's init_secret
}

// deriveJoinerSecret returns joiner_secret from the previous epoch's
// init_secret, the commit_secret (nil: Nh zeros, for a commit without a
// path) and the encoded GroupContext of the new epoch.
func deriveJoinerSecret(s Suite, initSecret, commitSecret, groupContext []byte) ([]byte, error) {
	if commitSecret == nil {
		commitSecret = make([]byte, s.HashSize())
	}
	prk := s.Extract(initSecret, commitSecret)
	defer zero(prk)
	return s.ExpandWithLabel(prk, "joiner", groupContext, s.HashSize())
}

// deriveEpochSecrets derives an epoch's secrets from its joiner_secret, its
// psk_secret (nil: Nh zeros, no PSKs) and its encoded GroupContext. The
// returned value keeps a copy of joinerSecret.
func deriveEpochSecrets(s Suite, joinerSecret, pskSecret, groupContext []byte) (*epochSecrets, error) {
	if pskSecret == nil {
		pskSecret = make([]byte, s.HashSize())
	}
	member := s.Extract(joinerSecret, pskSecret)
	defer zero(member)
	es := &epochSecrets{joiner: append([]byte{}, joinerSecret...)}
	var err error
	if es.welcome, err = s.DeriveSecret(member, "welcome"); err != nil {
		es.wipe()
		return nil, err
	}
	epoch, err := s.ExpandWithLabel(member, "epoch", groupContext, s.HashSize())
	if err != nil {
		es.wipe()
		return nil, err
	}
	defer zero(epoch)
	for _, x := range []struct {
		dst   *[]byte
		label string
	}{
		{&es.senderData, "sender data"},
		{&es.encryption, "encryption"},
		{&es.exporter, "exporter"},
		{&es.external, "external"},
		{&es.confirmation, "confirm"},
		{&es.membership, "membership"},
		{&es.resumption, "resumption"},
		{&es.epochAuthenticator, "authentication"},
		{&es.init, "init"},
	} {
		if *x.dst, err = s.DeriveSecret(epoch, x.label); err != nil {
			es.wipe()
			return nil, err
		}
	}
	return es, nil
}

// exportSecret is MLS-Exporter(label, context, length) (RFC 9420 section
// 8.5).
func (es *epochSecrets) exportSecret(s Suite, label string, context []byte, length int) ([]byte, error) {
	derived, err := s.DeriveSecret(es.exporter, label)
	if err != nil {
		return nil, err
	}
	defer zero(derived)
	return s.ExpandWithLabel(derived, "exported", s.Hash(context), length)
}

// externalKeyPair returns the HPKE key pair derived from external_secret
// (RFC 9420 section 8.3); its public half is the external_pub extension.
func (es *epochSecrets) externalKeyPair(s Suite) (priv, pub []byte, err error) {
	return s.DeriveHPKEKeyPair(es.external)
}

// wipe zeroes every secret.
func (es *epochSecrets) wipe() {
	for _, b := range [][]byte{es.joiner, es.welcome, es.senderData, es.encryption, es.exporter,
		es.external, es.confirmation, es.membership, es.resumption, es.epochAuthenticator, es.init} {
		zero(b)
	}
}

// welcomeKeyNonce derives the AEAD key and nonce that protect a Welcome's
// GroupInfo from welcome_secret (RFC 9420 section 12.4.3.1).
func welcomeKeyNonce(s Suite, welcomeSecret []byte) (ratchetKey, error) {
	key, err := s.ExpandWithLabel(welcomeSecret, "key", nil, s.KeySize())
	if err != nil {
		return ratchetKey{}, err
	}
	nonce, err := s.ExpandWithLabel(welcomeSecret, "nonce", nil, s.NonceSize())
	if err != nil {
		return ratchetKey{}, err
	}
	return ratchetKey{key: key, nonce: nonce}, nil
}

// encodeGroupContext returns the TLS encoding of g.
func encodeGroupContext(g *groupContext) ([]byte, error) {
	b, err := encode(g)
	if err != nil {
		return nil, fmt.Errorf("encoding GroupContext: %w", err)
	}
	return b, nil
}
