package keystore

import (
	"crypto/rand"
	"errors"
	"io"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
	"lukechampine.com/blake3"
)

// BundleOptions configure ExportAgentWith. The zero value means
// crypto/rand and DefaultKDFParams.
type BundleOptions struct {
	// Rand supplies the salt and nonce (default crypto/rand.Reader).
	Rand io.Reader
	// KDF are the Argon2id parameters (default DefaultKDFParams). They are
	// recorded in the bundle, so the importer needs only the passphrase.
	KDF KDFParams
}

// ExportAgent seals the agent key kp into a portable bundle protected only
// by passphrase (Argon2id with DefaultKDFParams, then XChaCha20-Poly1305).
// The bundle does not depend on this machine's local.secret. The caller
// owns the returned bytes. An empty passphrase is ErrPassphraseRequired.
func ExportAgent(kp *identity.KeyPair, passphrase []byte) ([]byte, error) {
	return ExportAgentWith(kp, passphrase, BundleOptions{})
}

// ExportAgentWith is ExportAgent with explicit randomness and Argon2id
// parameters (tests use cheap ones). Parameters outside the accepted bounds
// are ErrInvalidParams.
func ExportAgentWith(kp *identity.KeyPair, passphrase []byte, opts BundleOptions) ([]byte, error) {
	if kp == nil {
		return nil, bundleErr(ErrInvalidParams, "nil key pair")
	}
	if len(passphrase) == 0 {
		return nil, bundleErr(ErrPassphraseRequired, "")
	}
	kdf := opts.KDF
	if kdf == (KDFParams{}) {
		kdf = DefaultKDFParams()
	}
	if err := kdf.Validate(); err != nil {
		return nil, bundleErr(err, "")
	}
	r := opts.Rand
	if r == nil {
		r = rand.Reader
	}
	salt, err := randBytes(r, saltSize)
	if err != nil {
		return nil, err
	}
	nonce, err := randBytes(r, nonceSize)
	if err != nil {
		return nil, err
	}
	id := kp.ID()
	header, err := wire.Marshal(bundleHeader{ID: id[:], KDF: kdf, Salt: salt, Nonce: nonce})
	if err != nil {
		return nil, bundleErr(err, "")
	}
	key := bundleKey(kdf, passphrase, salt)
	defer wipe(key)
	out, err := sealWith(key, bundleMagic, header, nonce, kp)
	if err != nil {
		return nil, bundleErr(err, "")
	}
	return out, nil
}

// ImportAgent opens a bundle made by ExportAgent and returns the agent key.
// It only decodes: nothing is written, so the existing agent.key is kept
// unless the caller then calls Store.SaveAgentKey. Errors (matched with
// errors.Is): ErrPassphraseRequired for an empty passphrase, ErrCorrupt for a
// truncated, damaged or non-bundle input, ErrWrongKind for a keystore key
// file, ErrUnsupportedVersion for another format version, ErrWrongPassphrase
// when an intact bundle does not decrypt, ErrIDMismatch when the key inside
// is not the agent named in the header. The Argon2id parameters come from
// the bundle and are bounded by MaxKDFTime and MaxKDFMemoryKiB.
func ImportAgent(bundle, passphrase []byte) (*identity.KeyPair, error) {
	if len(passphrase) == 0 {
		return nil, bundleErr(ErrPassphraseRequired, "")
	}
	sh, h, aad, err := decodeBundle(bundle)
	if err != nil {
		return nil, bundleErr(err, "")
	}
	key := bundleKey(h.KDF, passphrase, h.Salt)
	kp, err := openWith(key, sh, aad, h.Nonce)
	wipe(key)
	switch {
	case errors.Is(err, errOpenFailed):
		return nil, bundleErr(ErrWrongPassphrase, "")
	case err != nil:
		return nil, bundleErr(err, "")
	}
	if id := kp.ID(); string(id[:]) != string(h.ID) {
		return nil, bundleErr(ErrIDMismatch, "header names %x, key is %s", h.ID, id)
	}
	return kp, nil
}

// BundleAgentID returns the agent ID recorded in a bundle's header without
// decrypting it (no passphrase needed), e.g. to show which identity a file
// holds. The header is only authenticated by ImportAgent: do not trust the
// result until the bundle has been imported. Errors are as for ImportAgent.
func BundleAgentID(bundle []byte) (identity.AgentID, error) {
	var id identity.AgentID
	_, h, _, err := decodeBundle(bundle)
	if err != nil {
		return id, bundleErr(err, "")
	}
	copy(id[:], h.ID)
	return id, nil
}

func bundleKey(kdf KDFParams, passphrase, salt []byte) []byte {
	stretched := kdf.derive(passphrase, salt)
	defer wipe(stretched)
	key := make([]byte, keySize)
	blake3.DeriveKey(key, bundleContext, stretched)
	return key
}
