package mls

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// Fuzz targets for the group layer: processing arbitrary messages against
// a fixed group state, joining from arbitrary Welcomes and trees,
// processing arbitrary UpdatePaths, validating arbitrary key packages.
// Each must never panic and fail only with the documented error
// categories.
//
// The fixed states come from the official test vectors (a passive client
// joined from a Welcome, a TreeKEM tree with its members' private keys),
// so they are the same in every fuzzing process and the seeds (the
// vectors' own messages) are valid against them.

// groupErrors are the error categories the group layer documents.
var groupErrors = []error{
	ErrMessageTooLarge, ErrWrongGroup, ErrWrongEpoch, ErrReplay, ErrInvalidMessage, ErrInvalidSender,
	ErrOwnMessage, ErrInvalidProposal, ErrInvalidCommit, ErrInvalidKeyPackage, ErrInvalidLeafNode,
	ErrInvalidTree, ErrInvalidWelcome, ErrNotInWelcome, ErrUnknownPSK, ErrUnsupported, ErrInactive,
	ErrPendingProposals, ErrPendingCommit, ErrCrypto, ErrUnsupportedSuite, ErrInvalidValue,
}

// checkGroupError fails unless err is a *DecodeError or wraps a
// documented category.
func checkGroupError(t *testing.T, err error) {
	t.Helper()
	var de *DecodeError
	if errors.As(err, &de) {
		checkDecodeError(t, de)
		return
	}
	for _, known := range groupErrors {
		if errors.Is(err, known) {
			return
		}
	}
	t.Fatalf("undocumented error: %v", err)
}

// passiveFixture is a passive-client vector: what a member needs to join,
// and the messages of the epochs after.
type passiveFixture struct {
	cfg         *Config
	kp          *PrivateKeyPackage
	welcome     []byte
	ratchetTree []byte
	messages    [][]byte // every epoch's proposals, then its commit
}

// loadPassiveFixture loads the first suite-1 vector of a passive-client
// file (with the ratchet tree given out of band if outOfBandTree), or
// skips if the vectors are absent.
func loadPassiveFixture(f testing.TB, kind string, outOfBandTree bool) *passiveFixture {
	dir, err := vectorsDir()
	if err != nil {
		f.Skip(err)
	}
	vs, err := readVectorFile(filepath.Join(dir, kind+".json.gz"))
	if err != nil {
		f.Skip(err)
	}
	for _, raw := range vs {
		var v struct {
			CipherSuite    uint16   `json:"cipher_suite"`
			KeyPackage     hexBytes `json:"key_package"`
			SignaturePriv  hexBytes `json:"signature_priv"`
			EncryptionPriv hexBytes `json:"encryption_priv"`
			InitPriv       hexBytes `json:"init_priv"`
			Welcome        hexBytes `json:"welcome"`
			RatchetTree    hexBytes `json:"ratchet_tree"`
			ExternalPSKs   []struct {
				PSKID hexBytes `json:"psk_id"`
				PSK   hexBytes `json:"psk"`
			} `json:"external_psks"`
			Epochs []struct {
				Proposals []hexBytes `json:"proposals"`
				Commit    hexBytes   `json:"commit"`
			} `json:"epochs"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			f.Fatal(err)
		}
		if v.CipherSuite != 1 || (v.RatchetTree != nil) != outOfBandTree {
			continue
		}
		m, err := decodeMLSMessage(v.KeyPackage)
		if err != nil || m.keyPackage == nil {
			f.Fatalf("key package: %v", err)
		}
		now := time.Unix(int64(min(m.keyPackage.leafNode.notBefore, 1<<62)), 0)
		psks := map[string][]byte{}
		for _, p := range v.ExternalPSKs {
			psks[string(p.PSKID)] = p.PSK
		}
		cfg := &Config{
			Now:         func() time.Time { return now },
			MaxLifetime: -1,
			ExternalPSK: func(id []byte) ([]byte, bool) { p, ok := psks[string(id)]; return p, ok },
		}
		kp, err := ImportKeyPackage(v.KeyPackage, v.InitPriv, v.EncryptionPriv, v.SignaturePriv, cfg)
		if err != nil {
			f.Fatal(err)
		}
		fx := &passiveFixture{cfg: cfg, kp: kp, welcome: v.Welcome, ratchetTree: v.RatchetTree}
		for _, e := range v.Epochs {
			for _, p := range e.Proposals {
				fx.messages = append(fx.messages, p)
			}
			fx.messages = append(fx.messages, e.Commit)
		}
		return fx
	}
	f.Skipf("no suite-1 %s vector", kind)
	return nil
}

// splitMessages splits a fuzz input into messages, each prefixed by a
// 16-bit length (a short last prefix or body ends the list), at most 8.
func splitMessages(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 2 && len(out) < 8 {
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		n = min(n, len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// joinMessages is the inverse of splitMessages.
func joinMessages(ms ...[]byte) []byte {
	var out []byte
	for _, m := range ms {
		out = binary.BigEndian.AppendUint16(out, uint16(len(m)))
		out = append(out, m...)
	}
	return out
}

// FuzzProcess processes a sequence of arbitrary MLS messages against a
// group freshly joined from a passive-client-handling-commit vector. The
// seeds are the vector's proposals and commits, so mutations start from
// messages that verify.
func FuzzProcess(f *testing.F) {
	fx := loadPassiveFixture(f, "passive-client-handling-commit", false)
	f.Add(joinMessages(fx.messages...))
	for _, m := range fx.messages {
		if len(m) < 1<<16 {
			f.Add(joinMessages(m))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := JoinGroup(fx.welcome, fx.kp, fx.ratchetTree, fx.cfg)
		if err != nil {
			t.Fatalf("join: %v", err)
		}
		defer g.Close()
		for _, m := range splitMessages(b) {
			if _, err := g.Process(m); err != nil {
				checkGroupError(t, err)
			}
		}
		// Whatever happened, the group still works or is inactive.
		if _, err := g.Protect([]byte("after"), nil); err != nil {
			checkGroupError(t, err)
		}
		if _, err := g.Commit(nil); err != nil {
			checkGroupError(t, err)
		}
	})
}

// FuzzJoinGroup joins from arbitrary Welcome messages (the ratchet tree in
// the GroupInfo) with a vector's key package.
func FuzzJoinGroup(f *testing.F) {
	fx := loadPassiveFixture(f, "passive-client-welcome", false)
	f.Add(fx.welcome)
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := JoinGroup(b, fx.kp, nil, fx.cfg)
		if err != nil {
			checkGroupError(t, err)
			return
		}
		g.Close()
	})
}

// FuzzJoinGroupTree joins a vector's Welcome with an arbitrary ratchet
// tree given out of band: tree decoding, tree hash, parent hashes, leaf
// validation, the joiner's leaf and path secret.
func FuzzJoinGroupTree(f *testing.F) {
	fx := loadPassiveFixture(f, "passive-client-welcome", true)
	f.Add(fx.ratchetTree)
	s := fx.kp.suite
	gc := &groupContext{version: protocolVersionMLS10, cipherSuite: s.ID(), groupID: []byte("g"),
		extensions: []extension{{typ: extRequiredCapabilities, data: []byte{0, 0, 2, 0, 1}}}}
	policy := fx.cfg.resolve()
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := JoinGroup(fx.welcome, fx.kp, b, fx.cfg)
		if err != nil {
			checkGroupError(t, err)
		} else {
			g.Close()
		}
		// The checks behind the tree hash, which mutations rarely pass:
		// run them on any tree that decodes.
		var rt ratchetTree
		if decodeAll("ratchet tree", b, rt.unmarshal) != nil {
			return
		}
		tree, err := newPublicTree(rt)
		if err != nil {
			checkGroupError(t, err)
			return
		}
		if err := validateJoinedTree(s, tree, gc, policy.leafPolicy()); err != nil {
			checkGroupError(t, err)
		}
		for l := range min(tree.size.leaves(), 64) {
			if _, _, err := tree.filteredDirectPath(l); err != nil {
				checkGroupError(t, err)
			}
		}
	})
}

// FuzzUpdatePath merges and decrypts an arbitrary UpdatePath from an
// arbitrary sender into a treekem vector's tree with each member's
// private keys.
func FuzzUpdatePath(f *testing.F) {
	dir, err := vectorsDir()
	if err != nil {
		f.Skip(err)
	}
	vs, err := readVectorFile(filepath.Join(dir, "treekem.json.gz"))
	if err != nil {
		f.Skip(err)
	}
	var v struct {
		CipherSuite   uint16   `json:"cipher_suite"`
		RatchetTree   hexBytes `json:"ratchet_tree"`
		LeavesPrivate []struct {
			Index          uint32   `json:"index"`
			EncryptionPriv hexBytes `json:"encryption_priv"`
			PathSecrets    []struct {
				Node       uint32   `json:"node"`
				PathSecret hexBytes `json:"path_secret"`
			} `json:"path_secrets"`
		} `json:"leaves_private"`
		UpdatePaths []struct {
			Sender     uint32   `json:"sender"`
			UpdatePath hexBytes `json:"update_path"`
		} `json:"update_paths"`
	}
	if err := json.Unmarshal(vs[0], &v); err != nil {
		f.Fatal(err)
	}
	s, err := CipherSuite(v.CipherSuite).Suite()
	if err != nil {
		f.Fatal(err)
	}
	var rt ratchetTree
	if err := decodeAll("ratchet tree", v.RatchetTree, rt.unmarshal); err != nil {
		f.Fatal(err)
	}
	tree, err := newPublicTree(rt)
	if err != nil {
		f.Fatal(err)
	}
	var privs []*privateTree
	for _, lp := range v.LeavesPrivate {
		p := newPrivateTree(lp.Index)
		pub, err := s.HPKEPublicKey(lp.EncryptionPriv)
		if err != nil {
			f.Fatal(err)
		}
		p.set(nodeOfLeaf(lp.Index), nodeKey{priv: lp.EncryptionPriv, pub: pub})
		for _, ps := range lp.PathSecrets {
			k, err := deriveNodeKey(s, ps.PathSecret)
			if err != nil {
				f.Fatal(err)
			}
			p.set(ps.Node, k)
		}
		privs = append(privs, p)
	}
	for _, u := range v.UpdatePaths {
		f.Add(uint32(u.Sender), []byte(u.UpdatePath))
	}
	ctx := []byte("context")
	f.Fuzz(func(t *testing.T, sender uint32, b []byte) {
		var up updatePath
		if err := decodeAll("UpdatePath", b, up.unmarshal); err != nil {
			checkDecodeError(t, err)
			return
		}
		merged := tree.clone()
		if err := merged.mergePath(s, sender, &up); err != nil {
			checkGroupError(t, err)
			return
		}
		for _, p := range privs {
			if p.leaf == sender {
				continue
			}
			if d, err := decapPath(s, merged, p, sender, &up, nil, ctx); err != nil {
				checkGroupError(t, err)
			} else {
				d.wipe()
			}
		}
	})
}

// FuzzKeyPackage parses and validates arbitrary key packages as an Add
// proposal's.
func FuzzKeyPackage(f *testing.F) {
	seedFromMessagesVector(f, "mls_key_package")
	fx := loadPassiveFixture(f, "passive-client-handling-commit", false)
	f.Add(fx.kp.KeyPackage())
	cfg := fx.cfg.resolve()
	f.Fuzz(func(t *testing.T, b []byte) {
		kp, err := parseKeyPackage(&cfg, b)
		if err != nil {
			checkGroupError(t, err)
			return
		}
		s, err := kp.cipherSuite.Suite()
		if err != nil {
			checkGroupError(t, err)
			return
		}
		if err := validateKeyPackage(s, kp, nil, cfg.leafPolicy()); err != nil {
			checkGroupError(t, err)
		}
	})
}
