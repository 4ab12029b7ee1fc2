package group

import (
	"encoding/binary"
	"fmt"
)

// The content of every application message of a group (inside the MLS
// PrivateMessage, so only members read it):
//
//	envelope = version:u8 (1) kind:u8 seq:u64be data
//
// seq rises with every envelope a member sends; receivers use it to drop
// the copies of messages re-sent after a fork choice.

const envelopeVersion = 1

// envelopeHeader is the size of an envelope's fixed part.
const envelopeHeader = 10

// envelopeKind is what an envelope carries.
type envelopeKind uint8

const (
	kindMessage  envelopeKind = 1 // application data
	kindPresence envelopeKind = 2 // a presence beacon (no data)
	kindLeave    envelopeKind = 3 // the sender asks to be removed (no data)
)

func encodeEnvelope(k envelopeKind, seq uint64, data []byte) []byte {
	b := make([]byte, envelopeHeader, envelopeHeader+len(data))
	b[0], b[1] = envelopeVersion, byte(k)
	binary.BigEndian.PutUint64(b[2:], seq)
	return append(b, data...)
}

// decodeEnvelope splits an envelope; data aliases b.
func decodeEnvelope(b []byte) (k envelopeKind, seq uint64, data []byte, err error) {
	if len(b) < envelopeHeader {
		return 0, 0, nil, fmt.Errorf("%w: envelope of %d bytes", ErrMalformed, len(b))
	}
	if b[0] != envelopeVersion {
		return 0, 0, nil, fmt.Errorf("%w: envelope version %d", ErrMalformed, b[0])
	}
	k = envelopeKind(b[1])
	switch k {
	case kindMessage:
	case kindPresence, kindLeave:
		if len(b) != envelopeHeader {
			return 0, 0, nil, fmt.Errorf("%w: %d data bytes in a control envelope", ErrMalformed, len(b)-envelopeHeader)
		}
	default:
		return 0, 0, nil, fmt.Errorf("%w: envelope kind %d", ErrMalformed, k)
	}
	return k, binary.BigEndian.Uint64(b[2:]), b[envelopeHeader:], nil
}

// seqWindow remembers which of a sender's recent sequence numbers arrived:
// the highest, and a bitmap of the seqWindowSize below it. Older numbers
// count as seen (they can only be very late copies).
type seqWindow struct {
	max  uint64
	bits [seqWindowSize / 64]uint64 // bit i: max-i arrived
	any  bool
}

const seqWindowSize = 1024

// add records seq and reports whether it is new.
func (w *seqWindow) add(seq uint64) bool {
	if !w.any {
		w.any, w.max = true, seq
		w.bits[0] = 1
		return true
	}
	if seq > w.max {
		w.shift(seq - w.max)
		w.max = seq
		w.bits[0] |= 1
		return true
	}
	d := w.max - seq
	if d >= seqWindowSize {
		return false
	}
	word, bit := d/64, d%64
	if w.bits[word]&(1<<bit) != 0 {
		return false
	}
	w.bits[word] |= 1 << bit
	return true
}

// shift moves the window up by n.
func (w *seqWindow) shift(n uint64) {
	if n >= seqWindowSize {
		w.bits = [seqWindowSize / 64]uint64{}
		return
	}
	words, bits := int(n/64), n%64
	for i := len(w.bits) - 1; i >= 0; i-- {
		var v uint64
		if j := i - words; j >= 0 {
			v = w.bits[j] << bits
			if bits != 0 && j-1 >= 0 {
				v |= w.bits[j-1] >> (64 - bits)
			}
		}
		w.bits[i] = v
	}
}
