package mls

import (
	"bytes"
	"fmt"
)

// Joining by Welcome (RFC 9420 section 12.4.3.1), up to the point where
// the ratchet tree is needed: finding the new member's entry, decrypting
// its GroupSecrets and the GroupInfo, and checking the GroupInfo's
// signature and confirmation tag.

// Reference labels (RFC 9420 section 5.2).
const (
	keyPackageRefLabel = "MLS 1.0 KeyPackage Reference"
	proposalRefLabel   = "MLS 1.0 Proposal Reference"
)

// keyPackageRef returns the KeyPackageRef of kp.
func keyPackageRef(s Suite, kp *keyPackage) ([]byte, error) {
	b, err := encode(kp)
	if err != nil {
		return nil, err
	}
	return s.RefHash(keyPackageRefLabel, b)
}

// proposalRef returns the ProposalRef of a proposal sent in ac.
func proposalRef(s Suite, ac *authenticatedContent) ([]byte, error) {
	b, err := encode(ac)
	if err != nil {
		return nil, err
	}
	return s.RefHash(proposalRefLabel, b)
}

// deriveWelcomeSecret returns welcome_secret from joiner_secret and
// psk_secret (nil: no PSKs), as in deriveEpochSecrets.
func deriveWelcomeSecret(s Suite, joinerSecret, pskSecret []byte) ([]byte, error) {
	if pskSecret == nil {
		pskSecret = make([]byte, s.HashSize())
	}
	member := s.Extract(joinerSecret, pskSecret)
	defer zero(member)
	return s.DeriveSecret(member, "welcome")
}

// openGroupSecrets finds the entry of the key package with reference kpRef
// in w and decrypts it with the key package's init private key.
func openGroupSecrets(s Suite, w *welcome, kpRef, initPriv []byte) (*groupSecrets, error) {
	if w.cipherSuite != s.ID() {
		return nil, fmt.Errorf("%w: Welcome for cipher suite %v", ErrInvalidValue, w.cipherSuite)
	}
	for _, egs := range w.secrets {
		if !bytes.Equal(egs.newMember, kpRef) {
			continue
		}
		pt, err := s.DecryptWithLabel(initPriv, "Welcome", w.encryptedGroupInfo, egs.secrets.kemOutput, egs.secrets.ciphertext)
		if err != nil {
			return nil, err
		}
		defer zero(pt)
		gs := new(groupSecrets)
		if err := decodeAll("GroupSecrets", pt, gs.unmarshal); err != nil {
			return nil, err
		}
		return gs, nil
	}
	return nil, ErrNotInWelcome
}

// openGroupInfo decrypts a Welcome's GroupInfo with welcome_secret.
func openGroupInfo(s Suite, w *welcome, welcomeSecret []byte) (*groupInfo, error) {
	k, err := welcomeKeyNonce(s, welcomeSecret)
	if err != nil {
		return nil, err
	}
	defer k.zero()
	pt, err := s.Open(k.key, k.nonce, nil, w.encryptedGroupInfo)
	if err != nil {
		return nil, err
	}
	gi := new(groupInfo)
	if err := decodeAll("GroupInfo", pt, gi.unmarshal); err != nil {
		return nil, err
	}
	if gi.groupContext.cipherSuite != s.ID() {
		return nil, fmt.Errorf("%w: GroupInfo for cipher suite %v", ErrInvalidValue, gi.groupContext.cipherSuite)
	}
	return gi, nil
}

// verifyGroupInfo checks a GroupInfo's signature with its signer's key.
func verifyGroupInfo(s Suite, gi *groupInfo, signerPub []byte) error {
	var e encoder
	gi.marshalTBS(&e)
	tbs, err := e.bytes()
	if err != nil {
		return err
	}
	return s.VerifyWithLabel(signerPub, "GroupInfoTBS", tbs, gi.signature)
}

// signGroupInfo signs gi with the signer's private key.
func signGroupInfo(s Suite, gi *groupInfo, signerPriv []byte) error {
	var e encoder
	gi.marshalTBS(&e)
	tbs, err := e.bytes()
	if err != nil {
		return err
	}
	gi.signature, err = s.SignWithLabel(signerPriv, "GroupInfoTBS", tbs)
	return err
}
