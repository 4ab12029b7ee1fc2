package pubsub

import (
	"encoding/binary"
	"errors"

	"lukechampine.com/blake3"
)

// IBLT is an invertible Bloom lookup table over message IDs. Two nodes each
// build one over their recent IDs with the same number of cells; the
// difference of the two tables decodes to the symmetric difference of the
// sets, as long as that difference is small relative to the size (about
// cells/1.5 entries). It is a value type with no internal locking.
type IBLT struct {
	cells []cell
}

type cell struct {
	count   int32
	keySum  MsgID
	hashSum uint64
}

const (
	ibltHashes = 3
	// cellSize is the wire size of one cell: count, key sum, hash sum.
	cellSize = 4 + 32 + 8
	// maxAELevel bounds the sketch size: 64 << level cells.
	maxAELevel = 6
)

// ErrIBLTUndecodable means the difference was too large for the table.
var ErrIBLTUndecodable = errors.New("pubsub: IBLT difference too large to decode")

// NewIBLT returns an empty table with n cells (rounded up to a multiple of 3).
func NewIBLT(n int) *IBLT {
	n = max(n, ibltHashes)
	n += (ibltHashes - n%ibltHashes) % ibltHashes
	return &IBLT{cells: make([]cell, n)}
}

// Len returns the number of cells.
func (t *IBLT) Len() int { return len(t.cells) }

func keyCheck(k MsgID) uint64 {
	h := blake3.Sum256(append([]byte("x0x-iblt"), k[:]...))
	return binary.LittleEndian.Uint64(h[:8])
}

// positions returns one cell per sub-table (the table is split in three
// equal parts so that a key never hits the same cell twice).
func (t *IBLT) positions(k MsgID) [ibltHashes]int {
	part := len(t.cells) / ibltHashes
	var p [ibltHashes]int
	for i := range p {
		v := binary.LittleEndian.Uint64(k[8*i : 8*i+8])
		p[i] = i*part + int(v%uint64(part))
	}
	return p
}

func (t *IBLT) update(k MsgID, d int32) {
	chk := keyCheck(k)
	for _, i := range t.positions(k) {
		c := &t.cells[i]
		c.count += d
		for j := range c.keySum {
			c.keySum[j] ^= k[j]
		}
		c.hashSum ^= chk
	}
}

// Insert adds k.
func (t *IBLT) Insert(k MsgID) { t.update(k, 1) }

// Subtract returns t minus o cell by cell; both must have the same size.
func (t *IBLT) Subtract(o *IBLT) (*IBLT, error) {
	if len(t.cells) != len(o.cells) {
		return nil, errors.New("pubsub: IBLT sizes differ")
	}
	r := &IBLT{cells: make([]cell, len(t.cells))}
	for i := range t.cells {
		a, b := t.cells[i], o.cells[i]
		r.cells[i].count = a.count - b.count
		for j := range a.keySum {
			r.cells[i].keySum[j] = a.keySum[j] ^ b.keySum[j]
		}
		r.cells[i].hashSum = a.hashSum ^ b.hashSum
	}
	return r, nil
}

// Decode peels a difference table: plus holds keys only in the minuend,
// minus keys only in the subtrahend. It returns ErrIBLTUndecodable if the
// table cannot be emptied. It consumes t.
func (t *IBLT) Decode() (plus, minus []MsgID, err error) {
	pure := func(c *cell) bool {
		return (c.count == 1 || c.count == -1) && keyCheck(c.keySum) == c.hashSum
	}
	queue := make([]int, 0, len(t.cells))
	for i := range t.cells {
		if pure(&t.cells[i]) {
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		i := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		c := &t.cells[i]
		if !pure(c) {
			continue
		}
		k, d := c.keySum, c.count
		if d == 1 {
			plus = append(plus, k)
		} else {
			minus = append(minus, k)
		}
		if len(plus)+len(minus) > len(t.cells) {
			return nil, nil, ErrIBLTUndecodable
		}
		t.update(k, -d)
		for _, j := range t.positions(k) {
			if pure(&t.cells[j]) {
				queue = append(queue, j)
			}
		}
	}
	for i := range t.cells {
		c := &t.cells[i]
		if c.count != 0 || c.hashSum != 0 || c.keySum != (MsgID{}) {
			return nil, nil, ErrIBLTUndecodable
		}
	}
	return plus, minus, nil
}

// MarshalBinary encodes the cells (cellSize bytes each).
func (t *IBLT) MarshalBinary() []byte {
	out := make([]byte, 0, len(t.cells)*cellSize)
	for _, c := range t.cells {
		out = binary.LittleEndian.AppendUint32(out, uint32(c.count))
		out = append(out, c.keySum[:]...)
		out = binary.LittleEndian.AppendUint64(out, c.hashSum)
	}
	return out
}

// UnmarshalIBLT decodes cells written by MarshalBinary. The length must be a
// positive multiple of 3 cells and at most MaxIBLTCells cells.
func UnmarshalIBLT(b []byte) (*IBLT, error) {
	if len(b) == 0 || len(b)%cellSize != 0 || len(b)/cellSize > MaxIBLTCells || (len(b)/cellSize)%ibltHashes != 0 {
		return nil, errors.Join(ErrMalformed, errors.New("bad IBLT length"))
	}
	t := &IBLT{cells: make([]cell, len(b)/cellSize)}
	for i := range t.cells {
		p := b[i*cellSize:]
		t.cells[i].count = int32(binary.LittleEndian.Uint32(p))
		copy(t.cells[i].keySum[:], p[4:36])
		t.cells[i].hashSum = binary.LittleEndian.Uint64(p[36:44])
	}
	return t, nil
}

// sketchCells is the number of cells at a level.
func sketchCells(level uint8) int { return 66 << level } // multiple of 3
