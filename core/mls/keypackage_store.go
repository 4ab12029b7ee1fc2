package mls

import (
	"bytes"
	"fmt"
)

// Persistence of a key package with its private keys, so that a member
// can join with it after a restart:
//
//	struct {
//	    opaque magic[4] = "x0xK";
//	    uint16 version = 1;
//	    opaque key_package<V>;               // the MLSMessage
//	    opaque init_private_key<V>;
//	    opaque encryption_private_key<V>;
//	} StoredKeyPackage;
//
// The signature private key is not stored: the caller keeps it (it is the
// member's long-term key) and passes it to UnmarshalPrivateKeyPackage.

// keyPackageMagic starts every stored key package.
var keyPackageMagic = [4]byte{'x', '0', 'x', 'K'}

// keyPackageStoreVersion is the version of the stored key package format.
const keyPackageStoreVersion uint16 = 1

// MarshalPrivate encodes the key package and its HPKE init and encryption
// private keys for storage (the format is documented in
// keypackage_store.go); the signature private key is not included. The
// result holds private keys in the clear: the caller owns it, must keep it
// confidential and should zero it once stored. It fails with
// ErrInvalidKeyPackage once the package was wiped.
func (p *PrivateKeyPackage) MarshalPrivate() ([]byte, error) {
	if p.initPriv == nil || p.encPriv == nil {
		return nil, fmt.Errorf("%w: the private keys were wiped", ErrInvalidKeyPackage)
	}
	var e encoder
	e.raw(keyPackageMagic[:])
	e.u16(keyPackageStoreVersion)
	e.opaque(p.encoded)
	e.opaque(p.initPriv)
	e.opaque(p.encPriv)
	b, err := e.bytes()
	if err != nil {
		zero(e.b)
		return nil, err
	}
	return b, nil
}

// UnmarshalPrivateKeyPackage restores a key package stored by
// MarshalPrivate, with the signature private key sigPriv and the
// configuration cfg (nil: defaults). It runs ImportKeyPackage's checks:
// the key package must be valid now (by cfg.Now), and each private key,
// sigPriv included, must match its public key in the key package. So a
// stored key package whose lifetime has expired is refused (with
// ErrInvalidLeafNode, as ImportKeyPackage does): publish a fresh one.
// The result copies the keys; the caller owns b and sigPriv and may zero
// them.
//
// Errors: ErrMessageTooLarge for input longer than Config.MaxStateSize;
// a *DecodeError for input that is not a stored key package (wrong magic,
// unknown version) or does not parse; ErrInvalidKeyPackage (or
// ErrInvalidLeafNode, ErrUnsupportedSuite, a *DecodeError of the key
// package) for a key package that fails validation or private keys that
// do not match it.
func UnmarshalPrivateKeyPackage(b, sigPriv []byte, cfg *Config) (*PrivateKeyPackage, error) {
	c := cfg.resolve()
	if len(b) > c.MaxStateSize {
		return nil, fmt.Errorf("%w: stored key package of %d bytes, limit %d", ErrMessageTooLarge, len(b), c.MaxStateSize)
	}
	var kp, initPriv, encPriv []byte
	err := decodeAll("stored key package", b, func(d *decoder) {
		magic := d.take(len(keyPackageMagic))
		if d.err == nil && !bytes.Equal(magic, keyPackageMagic[:]) {
			d.failAt(0, ErrInvalidValue)
			return
		}
		vstart := d.off
		if v := d.u16(); d.err == nil && v != keyPackageStoreVersion {
			d.failAt(vstart, ErrUnknownValue)
			return
		}
		kp = d.opaque()
		initPriv = d.opaque()
		encPriv = d.opaque()
	})
	defer func() {
		zero(initPriv)
		zero(encPriv)
	}()
	if err != nil {
		return nil, err
	}
	return ImportKeyPackage(kp, initPriv, encPriv, sigPriv, cfg)
}
