package mls

import (
	"encoding/json"
	"testing"
)

// runDeserializationVector checks one variable-length vector header.
func runDeserializationVector(t *testing.T, raw json.RawMessage) {
	var v struct {
		Header hexBytes `json:"vlbytes_header"`
		Length int      `json:"length"`
	}
	decodeVectorJSON(t, raw, &v)
	n, err := readVectorHeader(v.Header)
	must(t, "decode header", err)
	if n != v.Length {
		t.Errorf("header %x: length %d, want %d", v.Header, n, v.Length)
	}
	// The minimal encoding of the length is the header itself.
	var e encoder
	e.varint(v.Length)
	got, err := e.bytes()
	must(t, "encode header", err)
	wantBytes(t, "re-encoded header", got, v.Header)
}

// runTreeMathVector checks left, right, parent and sibling of every node.
func runTreeMathVector(t *testing.T, raw json.RawMessage) {
	var v struct {
		NLeaves uint32    `json:"n_leaves"`
		NNodes  uint32    `json:"n_nodes"`
		Root    uint32    `json:"root"`
		Left    []*uint32 `json:"left"`
		Right   []*uint32 `json:"right"`
		Parent  []*uint32 `json:"parent"`
		Sibling []*uint32 `json:"sibling"`
	}
	decodeVectorJSON(t, raw, &v)
	n, err := newTreeSize(uint64(v.NLeaves))
	must(t, "tree size", err)
	if n.width() != v.NNodes {
		t.Errorf("width %d, want %d", n.width(), v.NNodes)
	}
	if n.root() != v.Root {
		t.Errorf("root %d, want %d", n.root(), v.Root)
	}
	for name, tc := range map[string]struct {
		want []*uint32
		f    func(uint32) (uint32, error)
	}{
		"left":    {v.Left, left},
		"right":   {v.Right, right},
		"parent":  {v.Parent, n.parent},
		"sibling": {v.Sibling, n.sibling},
	} {
		if len(tc.want) != int(v.NNodes) {
			t.Fatalf("%s: %d entries for %d nodes", name, len(tc.want), v.NNodes)
		}
		for i, want := range tc.want {
			got, err := tc.f(uint32(i))
			switch {
			case want == nil && err == nil:
				t.Errorf("%s(%d) = %d, want none", name, i, got)
			case want != nil && err != nil:
				t.Errorf("%s(%d): %v, want %d", name, i, err, *want)
			case want != nil && got != *want:
				t.Errorf("%s(%d) = %d, want %d", name, i, got, *want)
			}
		}
	}
}

// runCryptoBasicsVector checks the labelled functions of one suite.
func runCryptoBasicsVector(t *testing.T, raw json.RawMessage) {
	var v struct {
		CipherSuite uint16 `json:"cipher_suite"`
		RefHash     struct {
			Label string   `json:"label"`
			Value hexBytes `json:"value"`
			Out   hexBytes `json:"out"`
		} `json:"ref_hash"`
		ExpandWithLabel struct {
			Secret  hexBytes `json:"secret"`
			Label   string   `json:"label"`
			Context hexBytes `json:"context"`
			Length  int      `json:"length"`
			Out     hexBytes `json:"out"`
		} `json:"expand_with_label"`
		DeriveSecret struct {
			Secret hexBytes `json:"secret"`
			Label  string   `json:"label"`
			Out    hexBytes `json:"out"`
		} `json:"derive_secret"`
		DeriveTreeSecret struct {
			Secret     hexBytes `json:"secret"`
			Label      string   `json:"label"`
			Generation uint32   `json:"generation"`
			Length     int      `json:"length"`
			Out        hexBytes `json:"out"`
		} `json:"derive_tree_secret"`
		SignWithLabel struct {
			Priv      hexBytes `json:"priv"`
			Pub       hexBytes `json:"pub"`
			Content   hexBytes `json:"content"`
			Label     string   `json:"label"`
			Signature hexBytes `json:"signature"`
		} `json:"sign_with_label"`
		EncryptWithLabel struct {
			Priv       hexBytes `json:"priv"`
			Pub        hexBytes `json:"pub"`
			Label      string   `json:"label"`
			Context    hexBytes `json:"context"`
			Plaintext  hexBytes `json:"plaintext"`
			KEMOutput  hexBytes `json:"kem_output"`
			Ciphertext hexBytes `json:"ciphertext"`
		} `json:"encrypt_with_label"`
	}
	decodeVectorJSON(t, raw, &v)
	s := vectorSuiteImpl(t, v.CipherSuite)

	rh, err := s.RefHash(v.RefHash.Label, v.RefHash.Value)
	must(t, "RefHash", err)
	wantBytes(t, "RefHash", rh, v.RefHash.Out)

	e := v.ExpandWithLabel
	out, err := s.ExpandWithLabel(e.Secret, e.Label, e.Context, e.Length)
	must(t, "ExpandWithLabel", err)
	wantBytes(t, "ExpandWithLabel", out, e.Out)

	out, err = s.DeriveSecret(v.DeriveSecret.Secret, v.DeriveSecret.Label)
	must(t, "DeriveSecret", err)
	wantBytes(t, "DeriveSecret", out, v.DeriveSecret.Out)

	d := v.DeriveTreeSecret
	out, err = s.DeriveTreeSecret(d.Secret, d.Label, d.Generation, d.Length)
	must(t, "DeriveTreeSecret", err)
	wantBytes(t, "DeriveTreeSecret", out, d.Out)

	sg := v.SignWithLabel
	pub, err := s.SignaturePublicKey(sg.Priv)
	must(t, "SignaturePublicKey", err)
	wantBytes(t, "signature public key", pub, sg.Pub)
	must(t, "VerifyWithLabel(vector signature)", s.VerifyWithLabel(sg.Pub, sg.Label, sg.Content, sg.Signature))
	sig, err := s.SignWithLabel(sg.Priv, sg.Label, sg.Content)
	must(t, "SignWithLabel", err)
	must(t, "VerifyWithLabel(new signature)", s.VerifyWithLabel(sg.Pub, sg.Label, sg.Content, sig))
	if s.VerifyWithLabel(sg.Pub, sg.Label+"x", sg.Content, sig) == nil {
		t.Error("signature verifies under another label")
	}

	en := v.EncryptWithLabel
	hpub, err := s.HPKEPublicKey(en.Priv)
	must(t, "HPKEPublicKey", err)
	wantBytes(t, "HPKE public key", hpub, en.Pub)
	pt, err := s.DecryptWithLabel(en.Priv, en.Label, en.Context, en.KEMOutput, en.Ciphertext)
	must(t, "DecryptWithLabel(vector)", err)
	wantBytes(t, "DecryptWithLabel(vector)", pt, en.Plaintext)
	kem, ct, err := s.EncryptWithLabel(en.Pub, en.Label, en.Context, en.Plaintext)
	must(t, "EncryptWithLabel", err)
	pt, err = s.DecryptWithLabel(en.Priv, en.Label, en.Context, kem, ct)
	must(t, "DecryptWithLabel(new)", err)
	wantBytes(t, "DecryptWithLabel(new)", pt, en.Plaintext)
	if _, err := s.DecryptWithLabel(en.Priv, en.Label, append(en.Context, 0), kem, ct); err == nil {
		t.Error("ciphertext decrypts under another context")
	}
}
