package mls

import (
	"fmt"
)

// pskType is a PSKType (RFC 9420 section 8.4).
type pskType uint8

const (
	pskExternal   pskType = 1
	pskResumption pskType = 2
)

// resumptionUsage is a ResumptionPSKUsage (RFC 9420 section 8.4).
type resumptionUsage uint8

const (
	resumptionApplication resumptionUsage = 1
	resumptionReinit      resumptionUsage = 2
	resumptionBranch      resumptionUsage = 3
)

// preSharedKeyID names a PSK (RFC 9420 section 8.4): an external PSK by its
// ID, or a resumption PSK by group and epoch; plus a fresh nonce.
type preSharedKeyID struct {
	typ        pskType
	pskID      []byte          // external
	usage      resumptionUsage // resumption
	pskGroupID []byte          // resumption
	pskEpoch   uint64          // resumption
	pskNonce   []byte
}

func (p *preSharedKeyID) marshal(e *encoder) {
	e.u8(uint8(p.typ))
	switch p.typ {
	case pskExternal:
		e.opaque(p.pskID)
	case pskResumption:
		e.u8(uint8(p.usage))
		e.opaque(p.pskGroupID)
		e.u64(p.pskEpoch)
	}
	e.opaque(p.pskNonce)
}

func (p *preSharedKeyID) unmarshal(d *decoder) {
	start := d.off
	p.typ = pskType(d.u8())
	switch p.typ {
	case pskExternal:
		p.pskID = d.opaque()
	case pskResumption:
		ustart := d.off
		p.usage = resumptionUsage(d.u8())
		if p.usage < resumptionApplication || p.usage > resumptionBranch {
			d.failAt(ustart, ErrUnknownValue)
		}
		p.pskGroupID = d.opaque()
		p.pskEpoch = d.u64()
	default:
		d.failAt(start, ErrUnknownValue)
	}
	p.pskNonce = d.opaque()
}

// pskSecret combines PSKs into the key schedule's psk_secret (RFC 9420
// section 8.4):
//
//	psk_extracted[i] = KDF.Extract(0, psk[i])
//	psk_input[i]     = ExpandWithLabel(psk_extracted[i], "derived psk", PSKLabel{id[i], i, n}, Nh)
//	psk_secret[0]    = 0
//	psk_secret[i+1]  = KDF.Extract(psk_input[i], psk_secret[i])
//
// With no PSKs it is Nh zero bytes.
func pskSecret(s Suite, ids []preSharedKeyID, psks [][]byte) ([]byte, error) {
	if len(ids) != len(psks) {
		return nil, fmt.Errorf("%w: %d PSK IDs for %d PSKs", ErrInvalidValue, len(ids), len(psks))
	}
	if len(ids) > 0xffff {
		return nil, fmt.Errorf("%w: %d PSKs", ErrInvalidValue, len(ids))
	}
	secret := make([]byte, s.HashSize())
	for i := range ids {
		var e encoder
		ids[i].marshal(&e)
		e.u16(uint16(i))
		e.u16(uint16(len(ids)))
		label, err := e.bytes()
		if err != nil {
			return nil, err
		}
		extracted := s.Extract(nil, psks[i])
		input, err := s.ExpandWithLabel(extracted, "derived psk", label, s.HashSize())
		zero(extracted)
		if err != nil {
			return nil, err
		}
		next := s.Extract(input, secret)
		zero(input)
		zero(secret)
		secret = next
	}
	return secret, nil
}
