package mls

import (
	"fmt"
)

// Transcript hashes (RFC 9420 section 8.2). Each commit advances them:
//
//	confirmed[n] = Hash(interim[n-1] || ConfirmedTranscriptHashInput[n])
//	interim[n]   = Hash(confirmed[n] || InterimTranscriptHashInput[n])
//
// where ConfirmedTranscriptHashInput is the commit's wire format, its
// FramedContent and its signature, and InterimTranscriptHashInput its
// confirmation tag, MAC(confirmation_key, confirmed[n]).

// confirmedTranscriptHash returns the confirmed transcript hash after the
// commit ac, given the interim transcript hash before it.
func confirmedTranscriptHash(s Suite, interimBefore []byte, ac *authenticatedContent) ([]byte, error) {
	if ac.content.contentType != contentCommit {
		return nil, fmt.Errorf("%w: transcript hash over content type %d, want a commit", ErrInvalidValue, ac.content.contentType)
	}
	e := encoder{b: append([]byte{}, interimBefore...)}
	e.u16(ac.wireFormat)
	ac.content.marshal(&e)
	e.opaque(ac.auth.signature)
	in, err := e.bytes()
	if err != nil {
		return nil, err
	}
	return s.Hash(in), nil
}

// interimTranscriptHash returns the interim transcript hash from the
// confirmed transcript hash and the commit's confirmation tag.
func interimTranscriptHash(s Suite, confirmed, confirmationTag []byte) ([]byte, error) {
	e := encoder{b: append([]byte{}, confirmed...)}
	e.opaque(confirmationTag)
	in, err := e.bytes()
	if err != nil {
		return nil, err
	}
	return s.Hash(in), nil
}

// confirmationTag is MAC(confirmation_key, confirmed_transcript_hash).
func confirmationTag(s Suite, confirmationKey, confirmed []byte) []byte {
	return s.MAC(confirmationKey, confirmed)
}

// verifyConfirmationTag checks a confirmation tag in constant time.
func verifyConfirmationTag(s Suite, confirmationKey, confirmed, tag []byte) error {
	if !s.VerifyMAC(confirmationKey, confirmed, tag) {
		return fmt.Errorf("%w: confirmation tag does not verify", ErrCrypto)
	}
	return nil
}
