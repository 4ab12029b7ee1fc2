package mls

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Fuzz targets for the decoders of network input. Each checks that
// decoding never panics, fails only with a *DecodeError wrapping one of the
// documented errors, and that whatever decodes re-encodes to exactly the
// input (the encoding is canonical).

// checkDecodeError fails unless err is a *DecodeError of a documented kind.
func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("decode error of type %T: %v", err, err)
	}
	for _, known := range []error{ErrTruncated, ErrNonMinimalVarint, ErrInvalidVarint, ErrTrailingData,
		ErrInvalidOptional, ErrUnknownValue, ErrInvalidValue} {
		if errors.Is(err, known) {
			return
		}
	}
	t.Fatalf("undocumented decode error: %v", err)
}

// fuzzRoundTrip decodes b into v and, if that works, checks that v
// re-encodes to b.
func fuzzRoundTrip(t *testing.T, what string, b []byte, v codecValue) {
	if err := decodeAll(what, b, v.unmarshal); err != nil {
		checkDecodeError(t, err)
		return
	}
	got, err := encode(v)
	if err != nil {
		t.Fatalf("%s: re-encode: %v", what, err)
	}
	if !bytes.Equal(got, b) {
		t.Fatalf("%s: re-encoding differs:\n in  %x\n out %x", what, b, got)
	}
}

// seedFromMessagesVector adds the official messages vector's first entries
// as seeds, when the vectors are present.
func seedFromMessagesVector(f *testing.F, fields ...string) {
	dir, err := vectorsDir()
	if err != nil {
		return
	}
	vs, err := readVectorFile(filepath.Join(dir, "messages.json.gz"))
	if err != nil {
		if vs, err = readVectorFile(filepath.Join(dir, "messages.json")); err != nil {
			return
		}
	}
	for _, raw := range vs[:min(len(vs), 4)] {
		var m map[string]hexBytes
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		for _, k := range fields {
			if b := m[k]; len(b) > 0 && len(b) < 1<<14 {
				f.Add([]byte(b))
			}
		}
	}
}

// FuzzDecodeMLSMessage fuzzes the MLSMessage decoder, which reaches every
// wire struct: PublicMessage (proposals, commits, update paths, leaf
// nodes, key packages), PrivateMessage, Welcome, GroupInfo, KeyPackage.
func FuzzDecodeMLSMessage(f *testing.F) {
	f.Add([]byte{0x00, 0x01, 0x00, 0x05})
	f.Add([]byte{0x00, 0x01, 0x00, 0x02, 0x01, 0xaa, 0, 0, 0, 0, 0, 0, 0, 1, 0x01, 0x00, 0x00, 0x00})
	seedFromMessagesVector(f, "mls_welcome", "mls_group_info", "mls_key_package",
		"public_message_application", "public_message_proposal", "public_message_commit", "private_message")
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRoundTrip(t, "MLSMessage", b, new(mlsMessage))
	})
}

// FuzzDecodeRatchetTree fuzzes the ratchet_tree extension decoder and,
// for trees that decode, importing them and computing resolutions, tree
// hashes and parent-hash validity (which must fail cleanly, never panic).
func FuzzDecodeRatchetTree(f *testing.F) {
	f.Add([]byte{0x03, 0x00, 0x00, 0x00})
	f.Add([]byte{0x0a, 0x01, 0x02, 0x01, 0xaa, 0x00, 0x04, 0, 0, 0, 7})
	seedFromMessagesVector(f, "ratchet_tree")
	s, err := MLS128DHKEMX25519AES128GCMSHA256Ed25519.Suite()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var rt ratchetTree
		fuzzRoundTrip(t, "ratchet tree", b, &rt)
		if decodeAll("ratchet tree", b, rt.unmarshal) != nil {
			return
		}
		tree, err := newPublicTree(rt)
		if err != nil {
			return
		}
		for x := range tree.size.width() {
			tree.resolution(x)
		}
		if _, err := tree.treeHashes(s); err != nil {
			t.Fatalf("tree hashes: %v", err)
		}
		if err := tree.verifyParentHashes(s); err != nil && !errors.Is(err, errParentHash) {
			t.Fatalf("parent hashes: %v", err)
		}
		_ = tree.verifyLeafSignatures(s, nil)
	})
}

// FuzzDecodeVectorHeader fuzzes the variable-length integer decoder: it
// accepts exactly the minimal encodings, which re-encode to themselves.
func FuzzDecodeVectorHeader(f *testing.F) {
	for _, h := range []string{"00", "3f", "4040", "7fff", "80004000", "bfffffff", "4000", "c0"} {
		b, _ := hexDecode(h)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := readVectorHeader(b)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		got, err := appendVarint(nil, n)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("header %x decodes to %d, which encodes to %x (%v)", b, n, got, err)
		}
	})
}

func hexDecode(s string) ([]byte, error) {
	var h hexBytes
	err := h.UnmarshalJSON([]byte(`"` + s + `"`))
	return h, err
}

// TestFuzzSeedsExist keeps the seed helper honest: the vectors folder is
// present in this repository's layout.
func TestFuzzSeedsExist(t *testing.T) {
	dir, err := vectorsDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("vectors folder: %v", err)
	}
}
