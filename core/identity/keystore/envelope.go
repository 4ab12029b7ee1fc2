package keystore

import (
	"bytes"
	"crypto/sha3"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
	"lukechampine.com/blake3"
)

// On-disk format (version 1), shared by key files and export bundles.
//
// Every file is a CBOR map, the "shell", whose layout is fixed for all
// format versions so that a reader can always tell "not ours" (bad magic)
// from "ours, but a version I do not know":
//
//	1: magic    text   "x0x-keystore" (key file) or "x0x-agent-bundle"
//	2: version  uint   format version (1)
//	3: header   bytes  CBOR encoding of the version's header (below)
//	4: sealed   bytes  XChaCha20-Poly1305 ciphertext of the packed private key
//	5: check    bytes  BLAKE3-256(aad || sealed), an unkeyed checksum
//
// aad = CBOR{1: magic, 2: version, 3: header} is the AEAD associated data, so
// the magic, version, kind, ID, KDF parameters, salt and nonce are all
// authenticated. The unkeyed checksum reveals nothing secret; it lets the
// reader tell accidental corruption (checksum mismatch: ErrCorrupt) from a
// wrong passphrase or secret (checksum matches, AEAD fails).
//
// Key file header v1: {1: kind "machine"|"agent", 2: ID (32 bytes),
// 3: passphrase used (bool), 4: Argon2id params (zero without passphrase),
// 5: salt (32 bytes), 6: nonce (24 bytes)}. The AEAD key is
// BLAKE3-DeriveKey(sealContext, secret || salt || 0x00) without a passphrase
// and BLAKE3-DeriveKey(sealContext, secret || salt || 0x01 || A) with one,
// where A = Argon2id(passphrase, salt, params, 32 bytes).
//
// Bundle header v1: {1: agent ID, 2: Argon2id params, 3: salt, 4: nonce}; the
// AEAD key is BLAKE3-DeriveKey(bundleContext, Argon2id(passphrase, salt)).
const (
	keyFileMagic  = "x0x-keystore"
	bundleMagic   = "x0x-agent-bundle"
	formatVersion = 1

	sealContext   = "x0x v1 keystore seal key"
	bundleContext = "x0x v1 agent bundle key"

	kindMachine = "machine"
	kindAgent   = "agent"

	saltSize   = 32
	secretSize = 32
	keySize    = chacha20poly1305.KeySize
	nonceSize  = chacha20poly1305.NonceSizeX
	checkSize  = 32
	sealedSize = identity.PrivateKeySize + chacha20poly1305.Overhead

	// maxFileSize bounds what is read from a key file or accepted as a
	// bundle; a valid one is about 4.2 KB.
	maxFileSize = 64 << 10
)

// Bounds on Argon2id parameters, for options and for files read back: a
// hostile bundle must not be able to make an import take gigabytes or hours.
const (
	// MaxKDFTime is the largest accepted Argon2id time (pass) count.
	MaxKDFTime = 16
	// MaxKDFMemoryKiB is the largest accepted Argon2id memory, 1 GiB.
	MaxKDFMemoryKiB = 1 << 20
)

// KDFParams are Argon2id parameters (RFC 9106).
type KDFParams struct {
	// Time is the number of passes over memory (1..MaxKDFTime).
	Time uint32 `cbor:"1,keyasint"`
	// MemoryKiB is the memory cost in KiB (8*Threads..MaxKDFMemoryKiB).
	MemoryKiB uint32 `cbor:"2,keyasint"`
	// Threads is the degree of parallelism (1..255).
	Threads uint8 `cbor:"3,keyasint"`
}

// DefaultKDFParams returns the defaults used when Options or BundleOptions
// leave KDF zero: the second recommended option of RFC 9106 section 4
// (t=3, m=64 MiB, p=4), about a quarter of a second on a laptop core, which
// suits an interactive unlock once per process start.
func DefaultKDFParams() KDFParams { return KDFParams{Time: 3, MemoryKiB: 64 << 10, Threads: 4} }

// Validate reports (as ErrInvalidParams) parameters outside the accepted bounds.
func (p KDFParams) Validate() error {
	switch {
	case p.Time < 1 || p.Time > MaxKDFTime:
		return fmt.Errorf("%w: argon2id time %d not in 1..%d", ErrInvalidParams, p.Time, MaxKDFTime)
	case p.Threads < 1:
		return fmt.Errorf("%w: argon2id threads must be at least 1", ErrInvalidParams)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > MaxKDFMemoryKiB:
		return fmt.Errorf("%w: argon2id memory %d KiB not in %d..%d", ErrInvalidParams, p.MemoryKiB, 8*uint32(p.Threads), MaxKDFMemoryKiB)
	}
	return nil
}

func (p KDFParams) derive(passphrase, salt []byte) []byte {
	return argon2.IDKey(passphrase, salt, p.Time, p.MemoryKiB, p.Threads, keySize)
}

type shell struct {
	Magic   string `cbor:"1,keyasint"`
	Version uint64 `cbor:"2,keyasint"`
	Header  []byte `cbor:"3,keyasint"`
	Sealed  []byte `cbor:"4,keyasint"`
	Check   []byte `cbor:"5,keyasint"`
}

type aadFields struct {
	Magic   string `cbor:"1,keyasint"`
	Version uint64 `cbor:"2,keyasint"`
	Header  []byte `cbor:"3,keyasint"`
}

type keyHeader struct {
	Kind       string    `cbor:"1,keyasint"`
	ID         []byte    `cbor:"2,keyasint"`
	Passphrase bool      `cbor:"3,keyasint"`
	KDF        KDFParams `cbor:"4,keyasint"`
	Salt       []byte    `cbor:"5,keyasint"`
	Nonce      []byte    `cbor:"6,keyasint"`
}

type bundleHeader struct {
	ID    []byte    `cbor:"1,keyasint"`
	KDF   KDFParams `cbor:"2,keyasint"`
	Salt  []byte    `cbor:"3,keyasint"`
	Nonce []byte    `cbor:"4,keyasint"`
}

func (s *shell) aad() ([]byte, error) {
	return wire.Marshal(aadFields{Magic: s.Magic, Version: s.Version, Header: s.Header})
}

func checksum(aad, sealed []byte) []byte {
	h := blake3.New(checkSize, nil)
	h.Write(aad)
	h.Write(sealed)
	return h.Sum(nil)
}

// decodeShell parses the fixed outer layout and checks magic, version and
// checksum. wantMagic selects key file or bundle; the other magic yields
// ErrWrongKind. Errors wrap the package sentinels without a path.
func decodeShell(data []byte, wantMagic string) (*shell, []byte, error) {
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("%w: empty", ErrCorrupt)
	}
	if len(data) > maxFileSize {
		return nil, nil, fmt.Errorf("%w: %d bytes, more than %d", ErrCorrupt, len(data), maxFileSize)
	}
	var s shell
	if err := wire.Unmarshal(data, &s, "keystore envelope"); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	switch {
	case s.Magic == wantMagic:
	case s.Magic == keyFileMagic:
		return nil, nil, fmt.Errorf("%w: this is a keystore key file, not an agent export bundle", ErrWrongKind)
	case s.Magic == bundleMagic:
		return nil, nil, fmt.Errorf("%w: this is an agent export bundle, not a key file (import it instead)", ErrWrongKind)
	default:
		return nil, nil, fmt.Errorf("%w: not an x0x keystore file (magic %q)", ErrCorrupt, truncate(s.Magic, 32))
	}
	if s.Version == 0 {
		return nil, nil, fmt.Errorf("%w: format version missing", ErrCorrupt)
	}
	if s.Version != formatVersion {
		return nil, nil, fmt.Errorf("%w: format version %d, this build reads version %d", ErrUnsupportedVersion, s.Version, formatVersion)
	}
	aad, err := s.aad()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if len(s.Check) != checkSize || subtle.ConstantTimeCompare(s.Check, checksum(aad, s.Sealed)) != 1 {
		return nil, nil, fmt.Errorf("%w: checksum mismatch (damaged file)", ErrCorrupt)
	}
	if len(s.Sealed) != sealedSize {
		return nil, nil, fmt.Errorf("%w: sealed key is %d bytes, want %d", ErrCorrupt, len(s.Sealed), sealedSize)
	}
	return &s, aad, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// decodeKeyFile parses a key file (no decryption). Errors wrap the sentinels.
func decodeKeyFile(data []byte) (*shell, *keyHeader, []byte, error) {
	s, aad, err := decodeShell(data, keyFileMagic)
	if err != nil {
		return nil, nil, nil, err
	}
	var h keyHeader
	if err := wire.Unmarshal(s.Header, &h, "keystore key header"); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	switch {
	case h.Kind != kindMachine && h.Kind != kindAgent:
		return nil, nil, nil, fmt.Errorf("%w: unknown key kind %q", ErrCorrupt, truncate(h.Kind, 32))
	case len(h.ID) != identity.IDSize:
		return nil, nil, nil, fmt.Errorf("%w: ID is %d bytes", ErrCorrupt, len(h.ID))
	case len(h.Salt) != saltSize:
		return nil, nil, nil, fmt.Errorf("%w: salt is %d bytes", ErrCorrupt, len(h.Salt))
	case len(h.Nonce) != nonceSize:
		return nil, nil, nil, fmt.Errorf("%w: nonce is %d bytes", ErrCorrupt, len(h.Nonce))
	}
	if h.Passphrase {
		if err := h.KDF.Validate(); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	} else if h.KDF != (KDFParams{}) {
		return nil, nil, nil, fmt.Errorf("%w: KDF parameters on a file without passphrase", ErrCorrupt)
	}
	return s, &h, aad, nil
}

// decodeBundle parses an export bundle (no decryption).
func decodeBundle(data []byte) (*shell, *bundleHeader, []byte, error) {
	s, aad, err := decodeShell(data, bundleMagic)
	if err != nil {
		return nil, nil, nil, err
	}
	var h bundleHeader
	if err := wire.Unmarshal(s.Header, &h, "agent bundle header"); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	switch {
	case len(h.ID) != identity.IDSize:
		return nil, nil, nil, fmt.Errorf("%w: agent ID is %d bytes", ErrCorrupt, len(h.ID))
	case len(h.Salt) != saltSize:
		return nil, nil, nil, fmt.Errorf("%w: salt is %d bytes", ErrCorrupt, len(h.Salt))
	case len(h.Nonce) != nonceSize:
		return nil, nil, nil, fmt.Errorf("%w: nonce is %d bytes", ErrCorrupt, len(h.Nonce))
	}
	if err := h.KDF.Validate(); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return s, &h, aad, nil
}

// encodeShell fills in the checksum and encodes.
func encodeShell(magic string, header, sealed []byte) ([]byte, error) {
	s := shell{Magic: magic, Version: formatVersion, Header: header, Sealed: sealed}
	aad, err := s.aad()
	if err != nil {
		return nil, err
	}
	s.Check = checksum(aad, sealed)
	return wire.Marshal(s)
}

// sealWith seals the packed private key of kp under key, with aad built
// from magic and header. It wipes its copy of the private key.
func sealWith(key []byte, magic string, header, nonce []byte, kp *identity.KeyPair) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	aad, err := (&shell{Magic: magic, Version: formatVersion, Header: header}).aad()
	if err != nil {
		return nil, err
	}
	priv := kp.PrivateBytes()
	sealed := aead.Seal(nil, nonce, priv, aad)
	wipe(priv)
	return encodeShell(magic, header, sealed)
}

// errOpenFailed is returned by openWith when authentication fails; callers
// translate it into the right sentinel for their context.
var errOpenFailed = errors.New("keystore: authentication failed")

// openWith decrypts s.Sealed with key and parses the private key. The
// returned error is errOpenFailed (AEAD failure) or wraps ErrCorrupt.
func openWith(key []byte, s *shell, aad, nonce []byte) (*identity.KeyPair, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	priv, err := aead.Open(nil, nonce, s.Sealed, aad)
	if err != nil {
		return nil, errOpenFailed
	}
	defer wipe(priv)
	return parsePrivate(priv)
}

// parsePrivate accepts only a canonical FIPS 204 private key whose tr field
// is SHAKE256 of the public key it implies, so bytes that merely have the
// right length are refused.
func parsePrivate(priv []byte) (*identity.KeyPair, error) {
	kp, err := identity.ParsePrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	again := kp.PrivateBytes()
	canonical := bytes.Equal(again, priv)
	wipe(again)
	if !canonical {
		return nil, fmt.Errorf("%w: private key is not canonically encoded", ErrCorrupt)
	}
	const trOffset, trSize = 64, 64
	tr := sha3.SumSHAKE256(kp.Public().Bytes(), trSize)
	if !bytes.Equal(tr, priv[trOffset:trOffset+trSize]) {
		return nil, fmt.Errorf("%w: private key is inconsistent with its public key", ErrCorrupt)
	}
	return kp, nil
}

func randBytes(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("keystore: reading randomness: %w", err)
	}
	return b, nil
}

// wipe zeroes secret material that is no longer needed.
func wipe(b []byte) { clear(b) }
