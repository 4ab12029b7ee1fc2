package mls

import (
	"bytes"
	"fmt"
	"time"
)

// Config holds the policies of a group, and of key package creation. The
// zero value (or a nil *Config) gives the defaults documented per field.
// A Config is copied when a group is created or joined; its functions must
// be safe to call from whichever goroutine uses the group.
type Config struct {
	// Now is the clock for lifetime checks and new key packages; nil means
	// time.Now.
	Now func() time.Time
	// MaxMessageSize bounds every encoded input (MLS messages, Welcomes,
	// key packages, ratchet trees) before it is decoded, and every message
	// this member produces. Decoding can allocate about 40 bytes per input
	// byte on hostile input (see codec.go), so this is the memory bound
	// per message too. 0 means DefaultMaxMessageSize.
	MaxMessageSize int
	// KeyPackageLifetime is the lifetime of new key packages and of a
	// group creator's leaf; 0 means DefaultKeyPackageLifetime.
	KeyPackageLifetime time.Duration
	// MaxLifetime is the longest total lifetime (not_after - not_before)
	// accepted in a key package (RFC 9420 section 7.2 requires a bound);
	// 0 means DefaultMaxLifetime, a negative value means no bound.
	MaxLifetime time.Duration
	// ExternalPSK returns the external pre-shared key with the given ID,
	// or false if it is unknown; nil means no external PSKs.
	ExternalPSK func(id []byte) ([]byte, bool)
	// ValidateCredential decides whether a member's credential (and the
	// signature key it presents) is acceptable (RFC 9420 section 5.3.1);
	// it is called for every leaf node received. nil accepts every
	// credential.
	ValidateCredential func(c Credential, signatureKey []byte) error
	// EncryptHandshake sends this member's proposals and commits as
	// PrivateMessages; by default they are PublicMessages (signed and
	// membership-tagged, readable by the delivery service).
	EncryptHandshake bool
	// OmitRatchetTree leaves the ratchet_tree extension out of Welcome
	// messages; joiners then need the tree from Group.RatchetTree, passed
	// to JoinGroup.
	OmitRatchetTree bool
	// PastEpochs is how many past epochs stay able to decrypt late
	// application messages (their secret trees are kept, with their
	// out-of-order windows). 0 keeps none: a commit deletes the old
	// epoch's keys at once, the strongest forward secrecy.
	PastEpochs int
	// ResumptionPSKEpochs is how many past epochs' resumption PSKs are
	// kept for PreSharedKey proposals, besides the current epoch's; 0
	// means DefaultResumptionPSKEpochs, a negative value none.
	ResumptionPSKEpochs int
	// PaddingBlock pads the content of this member's PrivateMessages to a
	// multiple of this many bytes; 0 means no padding.
	PaddingBlock int
	// MaxStateSize bounds a stored group state (Group.MarshalState,
	// UnmarshalState) and a stored key package (MarshalPrivate,
	// UnmarshalPrivateKeyPackage): larger input is refused before it is
	// decoded, and a larger state is not produced. The work and memory of
	// loading a state are linear in its size (see UnmarshalState), so this
	// bounds them too. 0 means DefaultMaxStateSize.
	MaxStateSize int
}

// Defaults of Config.
const (
	// DefaultMaxMessageSize is the default Config.MaxMessageSize: 1 MiB,
	// enough for a Welcome carrying the ratchet tree of about 130 members
	// under the post-quantum suite (a leaf node is about 6.5 KiB, a parent
	// node 1.3 KiB; a key package 11 KiB) or a few thousand under the
	// classical suites. Larger groups raise it, or deliver the tree out of
	// band (Config.OmitRatchetTree).
	DefaultMaxMessageSize = 1 << 20
	// DefaultKeyPackageLifetime is the default Config.KeyPackageLifetime.
	DefaultKeyPackageLifetime = 90 * 24 * time.Hour
	// DefaultMaxLifetime is the default Config.MaxLifetime.
	DefaultMaxLifetime = 366 * 24 * time.Hour
	// DefaultResumptionPSKEpochs is the default Config.ResumptionPSKEpochs.
	DefaultResumptionPSKEpochs = 8
	// DefaultMaxStateSize is the default Config.MaxStateSize: 64 MiB, the
	// state of several thousand members under the post-quantum suite
	// (about 7.5 KiB per member for the tree, plus the tree of every
	// retained past epoch).
	DefaultMaxStateSize = 64 << 20
)

// clockSkew is how far in the past a new key package's lifetime starts, to
// tolerate clocks that are slightly behind.
const clockSkew = time.Hour

// resolve returns a copy of c with the defaults filled in.
func (c *Config) resolve() Config {
	var r Config
	if c != nil {
		r = *c
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.MaxMessageSize <= 0 {
		r.MaxMessageSize = DefaultMaxMessageSize
	}
	if r.MaxStateSize <= 0 {
		r.MaxStateSize = DefaultMaxStateSize
	}
	if r.KeyPackageLifetime <= 0 {
		r.KeyPackageLifetime = DefaultKeyPackageLifetime
	}
	if r.MaxLifetime == 0 {
		r.MaxLifetime = DefaultMaxLifetime
	}
	r.PastEpochs = max(r.PastEpochs, 0)
	switch {
	case r.ResumptionPSKEpochs == 0:
		r.ResumptionPSKEpochs = DefaultResumptionPSKEpochs
	case r.ResumptionPSKEpochs < 0:
		r.ResumptionPSKEpochs = 0
	}
	r.PaddingBlock = min(max(r.PaddingBlock, 0), maxPadding)
	return r
}

// leafPolicy returns the leaf validation policy of the configuration.
func (c *Config) leafPolicy() *leafPolicy {
	return &leafPolicy{now: c.Now(), maxLifetime: c.MaxLifetime, validateCredential: c.ValidateCredential}
}

// checkSize refuses an input longer than the configured maximum.
func (c *Config) checkSize(what string, b []byte) error {
	if len(b) > c.MaxMessageSize {
		return fmt.Errorf("%w: %s of %d bytes, limit %d", ErrMessageTooLarge, what, len(b), c.MaxMessageSize)
	}
	return nil
}

// Credential identifies a member (RFC 9420 section 5.3): a basic
// credential, an identity byte string, or, if Certificates is non-empty,
// an X.509 credential (DER certificates, the member's first). This package
// checks credentials only through Config.ValidateCredential.
type Credential struct {
	// Identity is the basic credential's identity.
	Identity []byte
	// Certificates is the X.509 chain of an X.509 credential.
	Certificates [][]byte
}

// internal returns the wire form of c.
func (c Credential) internal() credential {
	if len(c.Certificates) > 0 {
		certs := make([][]byte, len(c.Certificates))
		for i, cert := range c.Certificates {
			certs[i] = bytes.Clone(cert)
		}
		return credential{typ: credentialX509, certificates: certs}
	}
	return credential{typ: credentialBasic, identity: bytes.Clone(c.Identity)}
}

// exportCredential returns a copy of c as a Credential.
func exportCredential(c *credential) Credential {
	if c.typ == credentialX509 {
		certs := make([][]byte, len(c.certificates))
		for i, cert := range c.certificates {
			certs[i] = bytes.Clone(cert)
		}
		return Credential{Certificates: certs}
	}
	return Credential{Identity: bytes.Clone(c.identity)}
}

// defaultCapabilities are the capabilities of this implementation's leaf
// nodes: MLS 1.0, the group's suite, no non-default extensions or
// proposals, basic and X.509 credentials (their validation is the
// application's, through Config.ValidateCredential).
func defaultCapabilities(cs CipherSuite) capabilities {
	return capabilities{
		versions:     []uint16{protocolVersionMLS10},
		cipherSuites: []uint16{uint16(cs)},
		extensions:   []uint16{},
		proposals:    []uint16{},
		credentials:  []uint16{credentialBasic, credentialX509},
	}
}

// newKeyPackageLeaf returns a signed key_package leaf node for cred with
// the given keys and a lifetime from cfg.
func newKeyPackageLeaf(s Suite, cfg *Config, cred Credential, sigPriv, sigPub, encPub []byte) (*leafNode, error) {
	now := cfg.Now()
	notBefore := now.Add(-clockSkew).Unix()
	notAfter := now.Add(cfg.KeyPackageLifetime).Unix()
	if notBefore < 0 || notAfter < notBefore {
		return nil, fmt.Errorf("%w: clock %v gives no valid lifetime", ErrInvalidLeafNode, now)
	}
	ln := &leafNode{
		encryptionKey: encPub,
		signatureKey:  sigPub,
		credential:    cred.internal(),
		capabilities:  defaultCapabilities(s.ID()),
		source:        leafSourceKeyPackage,
		notBefore:     uint64(notBefore),
		notAfter:      uint64(notAfter),
		extensions:    []extension{},
	}
	if err := signLeafNode(s, ln, nil, 0, sigPriv); err != nil {
		return nil, err
	}
	return ln, nil
}

// PrivateKeyPackage is a KeyPackage (RFC 9420 section 10) with the private
// keys that go with it: the HPKE init key that opens a Welcome, the HPKE
// leaf encryption key and the signature key. Publish KeyPackage(); keep
// the value to join with JoinGroup, then Wipe it (key packages are single
// use). It is safe for concurrent use as long as Wipe is not concurrent.
type PrivateKeyPackage struct {
	suite                      Suite
	kp                         *keyPackage
	encoded                    []byte // the MLSMessage
	ref                        []byte
	initPriv, encPriv, sigPriv []byte
}

// NewKeyPackage creates a key package for cred in cipher suite cs, signed
// with the signature private key sigPriv (in the suite's format, see
// Suite), with fresh HPKE init and encryption keys and a lifetime from cfg
// (nil: defaults).
func NewKeyPackage(cs CipherSuite, cred Credential, sigPriv []byte, cfg *Config) (*PrivateKeyPackage, error) {
	c := cfg.resolve()
	s, err := cs.Suite()
	if err != nil {
		return nil, err
	}
	sigPub, err := s.SignaturePublicKey(sigPriv)
	if err != nil {
		return nil, err
	}
	initPriv, initPub, err := s.GenerateHPKEKeyPair()
	if err != nil {
		return nil, err
	}
	encPriv, encPub, err := s.GenerateHPKEKeyPair()
	if err != nil {
		zero(initPriv)
		return nil, err
	}
	p := &PrivateKeyPackage{suite: s, initPriv: initPriv, encPriv: encPriv, sigPriv: bytes.Clone(sigPriv)}
	ln, err := newKeyPackageLeaf(s, &c, cred, sigPriv, sigPub, encPub)
	if err != nil {
		p.Wipe()
		return nil, err
	}
	kp := &keyPackage{version: protocolVersionMLS10, cipherSuite: cs, initKey: initPub, leafNode: *ln, extensions: []extension{}}
	var e encoder
	kp.marshalTBS(&e)
	tbs, err := e.bytes()
	if err == nil {
		kp.signature, err = s.SignWithLabel(sigPriv, "KeyPackageTBS", tbs)
	}
	if err == nil {
		err = p.setKeyPackage(kp)
	}
	if err != nil {
		p.Wipe()
		return nil, err
	}
	return p, nil
}

// setKeyPackage stores kp, its MLSMessage encoding and its reference.
func (p *PrivateKeyPackage) setKeyPackage(kp *keyPackage) error {
	b, err := encode(&mlsMessage{wireFormat: wireFormatKeyPackage, keyPackage: kp})
	if err != nil {
		return err
	}
	ref, err := keyPackageRef(p.suite, kp)
	if err != nil {
		return err
	}
	p.kp, p.encoded, p.ref = kp, b, ref
	return nil
}

// ImportKeyPackage reassembles a PrivateKeyPackage from a key package (an
// MLSMessage, as KeyPackage returns) and its three private keys, checking
// that each private key matches its public key and that the key package
// is valid now (cfg nil: defaults).
func ImportKeyPackage(keyPackage, initPriv, encryptionPriv, signaturePriv []byte, cfg *Config) (*PrivateKeyPackage, error) {
	c := cfg.resolve()
	kp, err := parseKeyPackage(&c, keyPackage)
	if err != nil {
		return nil, err
	}
	s, err := kp.cipherSuite.Suite()
	if err != nil {
		return nil, err
	}
	if err := validateKeyPackage(s, kp, nil, c.leafPolicy()); err != nil {
		return nil, err
	}
	for _, k := range []struct {
		what      string
		pub, priv []byte
		derive    func([]byte) ([]byte, error)
	}{
		{"init", kp.initKey, initPriv, s.HPKEPublicKey},
		{"encryption", kp.leafNode.encryptionKey, encryptionPriv, s.HPKEPublicKey},
		{"signature", kp.leafNode.signatureKey, signaturePriv, s.SignaturePublicKey},
	} {
		pub, err := k.derive(k.priv)
		if err != nil {
			return nil, fmt.Errorf("%w: %s private key: %w", ErrInvalidKeyPackage, k.what, err)
		}
		if !bytes.Equal(pub, k.pub) {
			return nil, fmt.Errorf("%w: %s private key does not match the key package", ErrInvalidKeyPackage, k.what)
		}
	}
	p := &PrivateKeyPackage{suite: s, initPriv: bytes.Clone(initPriv), encPriv: bytes.Clone(encryptionPriv), sigPriv: bytes.Clone(signaturePriv)}
	if err := p.setKeyPackage(kp); err != nil {
		p.Wipe()
		return nil, err
	}
	return p, nil
}

// parseKeyPackage decodes a KeyPackage carried in an MLSMessage.
func parseKeyPackage(c *Config, b []byte) (*keyPackage, error) {
	if err := c.checkSize("key package", b); err != nil {
		return nil, err
	}
	m, err := decodeMLSMessage(b)
	if err != nil {
		return nil, err
	}
	if m.keyPackage == nil {
		return nil, fmt.Errorf("%w: MLSMessage of wire format %d, want a key package", ErrInvalidKeyPackage, m.wireFormat)
	}
	return m.keyPackage, nil
}

// KeyPackage returns the key package to publish, an MLSMessage.
func (p *PrivateKeyPackage) KeyPackage() []byte { return bytes.Clone(p.encoded) }

// Ref returns the key package's KeyPackageRef (RFC 9420 section 5.2), by
// which a Welcome names its recipients.
func (p *PrivateKeyPackage) Ref() []byte { return bytes.Clone(p.ref) }

// CipherSuite returns the key package's cipher suite.
func (p *PrivateKeyPackage) CipherSuite() CipherSuite { return p.suite.ID() }

// Wipe zeroes the private keys; the value cannot be used to join after.
func (p *PrivateKeyPackage) Wipe() {
	zero(p.initPriv)
	zero(p.encPriv)
	zero(p.sigPriv)
	p.initPriv, p.encPriv, p.sigPriv = nil, nil, nil
}
