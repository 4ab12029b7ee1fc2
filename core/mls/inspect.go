package mls

// KeyPackageInfo is what InspectKeyPackage reports of a valid key package.
type KeyPackageInfo struct {
	// CipherSuite is the key package's suite.
	CipherSuite CipherSuite
	// Credential is its leaf's credential.
	Credential Credential
	// SignatureKey is its leaf's signature public key.
	SignatureKey []byte
}

// InspectKeyPackage checks a key package (an MLSMessage, as
// PrivateKeyPackage.KeyPackage returns) as a group adding it would: its
// encoding, suite, signature, lifetime (by cfg.Now) and leaf node,
// including cfg.ValidateCredential; it returns the key package's suite and
// credential. The result owns its memory. Errors: ErrMessageTooLarge,
// *DecodeError, ErrInvalidKeyPackage, ErrInvalidLeafNode,
// ErrUnsupportedSuite.
func InspectKeyPackage(keyPackage []byte, cfg *Config) (*KeyPackageInfo, error) {
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
	cred := exportCredential(&kp.leafNode.credential)
	return &KeyPackageInfo{CipherSuite: kp.cipherSuite, Credential: cred, SignatureKey: append([]byte(nil), kp.leafNode.signatureKey...)}, nil
}
