package mls

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
)

func TestVarintRoundTripAndBoundaries(t *testing.T) {
	for _, c := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x00}},
		{63, []byte{0x3f}},
		{64, []byte{0x40, 0x40}},
		{16383, []byte{0x7f, 0xff}},
		{16384, []byte{0x80, 0x00, 0x40, 0x00}},
		{maxVarint, []byte{0xbf, 0xff, 0xff, 0xff}},
	} {
		var e encoder
		e.varint(c.n)
		got, err := e.bytes()
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("encode %d = %x, %v; want %x", c.n, got, err, c.want)
		}
		n, err := readVectorHeader(c.want)
		if err != nil || n != c.n {
			t.Errorf("decode %x = %d, %v; want %d", c.want, n, err, c.n)
		}
	}
	var e encoder
	e.varint(maxVarint + 1)
	if _, err := e.bytes(); !errors.Is(err, ErrTooLong) {
		t.Errorf("encode 2^30: %v, want ErrTooLong", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		f    func(*decoder)
		err  error
		off  int
	}{
		{"empty varint", nil, func(d *decoder) { d.varint() }, ErrTruncated, 0},
		{"2-byte varint truncated", []byte{0x40}, func(d *decoder) { d.varint() }, ErrTruncated, 1},
		{"4-byte varint truncated", []byte{0x80, 0, 0}, func(d *decoder) { d.varint() }, ErrTruncated, 1},
		{"non-minimal 2-byte", []byte{0x40, 0x3f}, func(d *decoder) { d.varint() }, ErrNonMinimalVarint, 0},
		{"non-minimal 2-byte zero", []byte{0x40, 0x00}, func(d *decoder) { d.varint() }, ErrNonMinimalVarint, 0},
		{"non-minimal 4-byte", []byte{0x80, 0x00, 0x3f, 0xff}, func(d *decoder) { d.varint() }, ErrNonMinimalVarint, 0},
		{"prefix 11", []byte{0xc0, 0, 0, 0, 0, 0, 0, 0}, func(d *decoder) { d.varint() }, ErrInvalidVarint, 0},
		{"opaque longer than input", []byte{0x05, 1, 2}, func(d *decoder) { d.opaque() }, ErrTruncated, 1},
		{"huge opaque", []byte{0xbf, 0xff, 0xff, 0xff, 1}, func(d *decoder) { d.opaque() }, ErrTruncated, 4},
		{"trailing", []byte{0x01, 0xaa, 0xbb}, func(d *decoder) { d.opaque() }, ErrTrailingData, 2},
		{"optional 2", []byte{0x02}, func(d *decoder) { d.optional() }, ErrInvalidOptional, 0},
		{"u64 truncated", []byte{1, 2, 3}, func(d *decoder) { d.u64() }, ErrTruncated, 0},
		{"version 2", []byte{0, 2}, func(d *decoder) { d.version() }, ErrInvalidValue, 0},
		{"element truncated inside vector", []byte{0x03, 0x00, 0x01, 0x00}, func(d *decoder) { decodeVector(d, (*decoder).u16) }, ErrTruncated, 3},
		{"element consuming nothing", []byte{0x02, 0xaa, 0xbb}, func(d *decoder) { d.vector(func(*decoder) {}) }, ErrInvalidValue, 1},
		{"unknown credential", []byte{0x00, 0x09, 0x00}, func(d *decoder) { new(credential).unmarshal(d) }, ErrUnknownValue, 0},
		{"unknown proposal", []byte{0x00, 0x08}, func(d *decoder) { new(proposal).unmarshal(d) }, ErrUnknownValue, 0},
		{"reserved sender", []byte{0x00}, func(d *decoder) { new(sender).unmarshal(d) }, ErrUnknownValue, 0},
		{"wire format 9", []byte{0x00, 0x01, 0x00, 0x09}, func(d *decoder) { new(mlsMessage).unmarshal(d) }, ErrUnknownValue, 2},
	} {
		err := decodeAll("test", c.in, c.f)
		var de *DecodeError
		if !errors.As(err, &de) || !errors.Is(err, c.err) || de.Offset != c.off {
			t.Errorf("%s: got %v (offset %v), want %v at %d", c.name, err, offsetOf(de), c.err, c.off)
		}
	}
}

func offsetOf(de *DecodeError) any {
	if de == nil {
		return nil
	}
	return de.Offset
}

// TestDecodeNoAllocationFromDeclaredLength checks that a header declaring
// a vector much longer than the input allocates nothing for it.
func TestDecodeNoAllocationFromDeclaredLength(t *testing.T) {
	in := []byte{0xbf, 0xff, 0xff, 0xff, 0x00}
	allocs := testing.AllocsPerRun(100, func() {
		d := newDecoder(in)
		_ = d.opaque()
		_ = d.finish("x")
	})
	// The only allocation is the *DecodeError (and its boxing).
	if allocs > 2 {
		t.Errorf("%.0f allocations decoding a truncated 1 GiB vector", allocs)
	}
}

// TestDecodeAmplification bounds the memory a decoder allocates relative
// to its input on the structures that allocate the most per input byte.
func TestDecodeAmplification(t *testing.T) {
	const n = 1 << 16
	cases := map[string][]byte{}
	// A ratchet tree of blank nodes: one byte per node.
	cases["blank tree"] = withHeader(bytes.Repeat([]byte{0x00}, n))
	// A commit of empty proposal references: two bytes each.
	cases["commit refs"] = append(withHeader(bytes.Repeat([]byte{0x02, 0x00}, n/2)), 0x00)
	// Extensions with empty data: three bytes each.
	cases["extensions"] = withHeader(bytes.Repeat([]byte{0x00, 0x01, 0x00}, n/3))
	for name, in := range cases {
		var v codecValue
		switch name {
		case "blank tree":
			v = new(ratchetTree)
		case "commit refs":
			v = new(commit)
		default:
			v = new(extensionsBody)
		}
		// The fewest bytes allocated over a few runs (TotalAlloc counts
		// every allocation, garbage included).
		var best uint64
		for range 3 {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := decodeAll(name, in, v.unmarshal)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; best == 0 || n < best {
				best = n
			}
		}
		ratio := float64(best) / float64(len(in))
		t.Logf("%s: %d input bytes, %d bytes allocated (%.1fx)", name, len(in), best, ratio)
		if ratio > 48 {
			t.Errorf("%s: decoding allocates %.1fx its input", name, ratio)
		}
	}
}

func withHeader(body []byte) []byte {
	b, err := appendVarint(nil, len(body))
	if err != nil {
		panic(err)
	}
	return append(b, body...)
}

func TestEncodeVectorNested(t *testing.T) {
	// A vector long enough to need a 2-byte header inside one needing a
	// 4-byte header.
	inner := bytes.Repeat([]byte{7}, 100)
	outer := make([][]byte, 200)
	for i := range outer {
		outer[i] = inner
	}
	var e encoder
	encodeVector(&e, outer, func(e *encoder, b []byte) { e.opaque(b) })
	b, err := e.bytes()
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	if err := decodeAll("nested", b, func(d *decoder) { got = decodeVector(d, (*decoder).opaque) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(outer) || !bytes.Equal(got[199], inner) {
		t.Fatalf("nested vector did not round-trip: %d elements", len(got))
	}
	if b[0]>>6 != 2 {
		t.Fatalf("outer header %x is not 4 bytes", b[:4])
	}
}

func TestDecodedBytesAreCopies(t *testing.T) {
	in := []byte{0x02, 0xaa, 0xbb}
	var v []byte
	if err := decodeAll("x", in, func(d *decoder) { v = d.opaque() }); err != nil {
		t.Fatal(err)
	}
	in[1] = 0
	if v[0] != 0xaa {
		t.Fatal("decoded opaque aliases the input")
	}
}
