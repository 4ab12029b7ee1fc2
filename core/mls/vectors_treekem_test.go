package mls

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

// runTreeKEMVector checks UpdatePath processing (decap, parent hashes,
// commit secret, tree hash after merging) for every sender and member of a
// tree, then creates a new UpdatePath for each sender and checks that every
// other member derives the same commit secret from it.
func runTreeKEMVector(t *testing.T, raw json.RawMessage) {
	var v struct {
		CipherSuite             uint16   `json:"cipher_suite"`
		GroupID                 hexBytes `json:"group_id"`
		Epoch                   uint64   `json:"epoch"`
		ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
		RatchetTree             hexBytes `json:"ratchet_tree"`
		LeavesPrivate           []struct {
			Index          uint32   `json:"index"`
			EncryptionPriv hexBytes `json:"encryption_priv"`
			SignaturePriv  hexBytes `json:"signature_priv"`
			PathSecrets    []struct {
				Node       uint32   `json:"node"`
				PathSecret hexBytes `json:"path_secret"`
			} `json:"path_secrets"`
		} `json:"leaves_private"`
		UpdatePaths []struct {
			Sender        uint32     `json:"sender"`
			UpdatePath    hexBytes   `json:"update_path"`
			PathSecrets   []hexBytes `json:"path_secrets"`
			CommitSecret  hexBytes   `json:"commit_secret"`
			TreeHashAfter hexBytes   `json:"tree_hash_after"`
		} `json:"update_paths"`
	}
	decodeVectorJSON(t, raw, &v)
	s := vectorSuiteImpl(t, v.CipherSuite)
	tree := decodeTree(t, v.RatchetTree)
	must(t, "parent hashes of the tree", tree.verifyParentHashes(s))

	// Private states, checked against the public tree.
	privs := map[uint32]*privateTree{}
	sigPrivs := map[uint32][]byte{}
	for _, lp := range v.LeavesPrivate {
		p := newPrivateTree(lp.Index)
		pub, err := s.HPKEPublicKey(lp.EncryptionPriv)
		must(t, "leaf encryption key", err)
		p.set(nodeOfLeaf(lp.Index), nodeKey{priv: lp.EncryptionPriv, pub: pub})
		for _, ps := range lp.PathSecrets {
			k, err := deriveNodeKey(s, ps.PathSecret)
			must(t, "node key", err)
			p.set(ps.Node, k)
		}
		for x, k := range p.keys {
			if got := nodePublicKey(tree, x); got == nil || string(got) != string(k.pub) {
				t.Fatalf("leaf %d: private key of node %d does not match the tree", lp.Index, x)
			}
		}
		privs[lp.Index] = p
		sigPrivs[lp.Index] = lp.SignaturePriv
	}

	contextFor := func(treeHash []byte) ([]byte, error) {
		return encodeGroupContext(&groupContext{
			version: protocolVersionMLS10, cipherSuite: CipherSuite(v.CipherSuite), groupID: v.GroupID,
			epoch: v.Epoch, treeHash: treeHash, confirmedTranscriptHash: v.ConfirmedTranscriptHash,
			extensions: []extension{},
		})
	}

	for _, u := range v.UpdatePaths {
		var up updatePath
		must(t, "UpdatePath", decodeAll("UpdatePath", u.UpdatePath, up.unmarshal))
		merged := tree.clone()
		must(t, fmt.Sprintf("merge path of leaf %d", u.Sender), merged.mergePath(s, u.Sender, &up))
		must(t, "leaf signature", verifyLeafSignature(s, &up.leafNode, v.GroupID, u.Sender))
		must(t, "parent hashes after merge", merged.verifyParentHashes(s))
		th, err := merged.rootHash(s)
		must(t, "tree hash after", err)
		wantBytes(t, "tree_hash_after", th, u.TreeHashAfter)
		ctx, err := contextFor(th)
		must(t, "group context", err)
		for j, want := range u.PathSecrets {
			p := privs[uint32(j)]
			if uint32(j) == u.Sender || p == nil {
				if want != nil {
					t.Errorf("path secret given for leaf %d, which has no private state or is the sender", j)
				}
				continue
			}
			d, err := decapPath(s, merged, p, u.Sender, &up, nil, ctx)
			must(t, fmt.Sprintf("leaf %d decap of leaf %d's path", j, u.Sender), err)
			wantBytes(t, fmt.Sprintf("leaf %d path secret", j), d.pathSecret, want)
			wantBytes(t, fmt.Sprintf("leaf %d commit secret", j), d.commitSecret, u.CommitSecret)
			d.wipe()
		}

		// A changed node key breaks the committer's parent hash; a changed
		// ciphertext does not decrypt.
		if len(up.nodes) > 0 {
			var bad updatePath
			must(t, "UpdatePath", decodeAll("UpdatePath", u.UpdatePath, bad.unmarshal))
			bad.nodes[len(bad.nodes)-1].encryptionKey[0] ^= 1
			if err := tree.clone().mergePath(s, u.Sender, &bad); !errors.Is(err, errParentHash) {
				t.Errorf("path with a changed node key: %v", err)
			}
			must(t, "UpdatePath", decodeAll("UpdatePath", u.UpdatePath, bad.unmarshal))
			for i := range bad.nodes {
				for j := range bad.nodes[i].encryptedPathSecret {
					bad.nodes[i].encryptedPathSecret[j].ciphertext[0] ^= 1
				}
			}
			for j, p := range privs {
				if j == u.Sender {
					continue
				}
				if _, err := decapPath(s, merged, p, u.Sender, &bad, nil, ctx); !errors.Is(err, ErrCrypto) {
					t.Errorf("leaf %d, changed ciphertexts: %v", j, err)
				}
				break
			}
		}

		// A new UpdatePath from the same sender.
		fresh := tree.clone()
		enc, err := encapPath(s, fresh, u.Sender, tree.leaf(u.Sender), v.GroupID, sigPrivs[u.Sender], nil, contextFor)
		must(t, "encap", err)
		b, err := encode(enc.path)
		must(t, "encode UpdatePath", err)
		var up2 updatePath
		must(t, "decode new UpdatePath", decodeAll("UpdatePath", b, up2.unmarshal))
		merged2 := tree.clone()
		must(t, "merge new path", merged2.mergePath(s, u.Sender, &up2))
		must(t, "new leaf signature", verifyLeafSignature(s, &up2.leafNode, v.GroupID, u.Sender))
		must(t, "parent hashes after new path", merged2.verifyParentHashes(s))
		th2, err := merged2.rootHash(s)
		must(t, "tree hash", err)
		th2enc, _ := fresh.rootHash(s)
		wantBytes(t, "committer and receiver trees", th2, th2enc)
		ctx2, err := contextFor(th2)
		must(t, "group context", err)
		for j, p := range privs {
			if j == u.Sender {
				continue
			}
			d, err := decapPath(s, merged2, p, u.Sender, &up2, nil, ctx2)
			must(t, fmt.Sprintf("leaf %d decap of new path", j), err)
			wantBytes(t, fmt.Sprintf("leaf %d new commit secret", j), d.commitSecret, enc.commitSecret)
			d.wipe()
		}
		enc.wipe()
	}
}
