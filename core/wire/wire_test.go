package wire

import (
	"bytes"
	"errors"
	"testing"
)

type sample struct {
	A uint64 `cbor:"1,keyasint"`
	B []byte `cbor:"2,keyasint"`
	C string `cbor:"3,keyasint"`
}

func TestNewCodec(t *testing.T) {
	if _, err := NewCodec(); err != nil {
		t.Fatal(err)
	}
}

func TestRoundTripDeterministic(t *testing.T) {
	in := sample{A: 7, B: []byte{1, 2}, C: "x"}
	b1, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := Marshal(map[uint64]any{3: "x", 1: uint64(7), 2: []byte{1, 2}})
	if !bytes.Equal(b1, b2) {
		t.Fatalf("encoding not canonical: %x vs %x", b1, b2)
	}
	var out sample
	if err := Unmarshal(b1, &out, "sample"); err != nil {
		t.Fatal(err)
	}
	if out.A != 7 || !bytes.Equal(out.B, in.B) || out.C != "x" {
		t.Fatalf("round trip: %+v", out)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	good, _ := Marshal(sample{A: 1})
	cases := map[string][]byte{
		"trailing":  append(append([]byte{}, good...), 0x00),
		"truncated": good[:len(good)-1],
		"empty":     {},
		// map {1: 1, 1: 2}: duplicate key
		"duplicate key": {0xa2, 0x01, 0x01, 0x01, 0x02},
		// indefinite-length byte string
		"indefinite": {0x5f, 0x41, 0x00, 0xff},
		// unknown field 9
		"unknown field": {0xa1, 0x09, 0x01},
		// a tag
		"tag": {0xc1, 0x01},
	}
	for name, in := range cases {
		var out sample
		err := Unmarshal(in, &out, "sample")
		var de *DecodeError
		if !errors.As(err, &de) || de.What != "sample" {
			t.Errorf("%s: err = %v, want *DecodeError naming sample", name, err)
		}
	}
	var out sample
	if err := Unmarshal(make([]byte, MaxMessageSize+1), &out, "sample"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversize: err = %v", err)
	}
	// Deep nesting is bounded.
	deep := bytes.Repeat([]byte{0x81}, MaxNesting+2)
	deep = append(deep, 0x01)
	var anyv any
	if err := Unmarshal(deep, &anyv, "deep"); err == nil {
		t.Error("over-deep nesting accepted")
	}
}

func TestSigContext(t *testing.T) {
	if got := string(SigContext(PurposeAgentCert)); got != "x0x/v1/agent-cert" {
		t.Fatal(got)
	}
}

func FuzzUnmarshal(f *testing.F) {
	good, _ := Marshal(sample{A: 1, B: []byte("b"), C: "c"})
	f.Add(good)
	f.Fuzz(func(t *testing.T, data []byte) {
		var out sample
		if err := Unmarshal(data, &out, "sample"); err != nil {
			return
		}
		// Anything accepted re-encodes and decodes to the same value.
		again, err := Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		var out2 sample
		if err := Unmarshal(again, &out2, "sample"); err != nil {
			t.Fatal(err)
		}
		if out.A != out2.A || !bytes.Equal(out.B, out2.B) || out.C != out2.C {
			t.Fatal("not stable")
		}
	})
}

func TestUnmarshalLimit(t *testing.T) {
	for _, tc := range []struct {
		limit Limit
		max   int
	}{{LimitSmall, 64}, {LimitMedium, 4096}} {
		ok, _ := Marshal(make([]uint16, tc.max))
		var v []uint16
		if err := UnmarshalLimit(ok, &v, "list", tc.limit); err != nil || len(v) != tc.max {
			t.Fatalf("limit %d: %d elements refused: %v", tc.max, tc.max, err)
		}
		over, _ := Marshal(make([]uint16, tc.max+1))
		var de *DecodeError
		if err := UnmarshalLimit(over, &v, "list", tc.limit); !errors.As(err, &de) {
			t.Fatalf("limit %d: %d elements accepted (%v)", tc.max, tc.max+1, err)
		}
		// Maps are bounded as well.
		m := make(map[int]bool, tc.max+1)
		for i := range tc.max + 1 {
			m[i] = true
		}
		mb, _ := Marshal(m)
		var mv map[int]bool
		if err := UnmarshalLimit(mb, &mv, "map", tc.limit); !errors.As(err, &de) {
			t.Fatalf("limit %d: map of %d pairs accepted (%v)", tc.max, tc.max+1, err)
		}
	}
	// The default is Unmarshal's bound.
	big, _ := Marshal(make([]uint16, 5000))
	var v []uint16
	if err := UnmarshalLimit(big, &v, "list", LimitDefault); err != nil {
		t.Fatal(err)
	}
}
