package mls

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// decodeTree decodes a ratchet_tree extension and imports it.
func decodeTree(t *testing.T, b []byte) *publicTree {
	t.Helper()
	var rt ratchetTree
	must(t, "ratchet tree", decodeAll("ratchet tree", b, rt.unmarshal))
	tree, err := newPublicTree(rt)
	must(t, "import ratchet tree", err)
	return tree
}

// runTreeValidationVector checks resolutions, tree hashes, parent hashes
// and leaf signatures of a tree.
func runTreeValidationVector(t *testing.T, raw json.RawMessage) {
	var v struct {
		CipherSuite uint16     `json:"cipher_suite"`
		Tree        hexBytes   `json:"tree"`
		GroupID     hexBytes   `json:"group_id"`
		Resolutions [][]uint32 `json:"resolutions"`
		TreeHashes  []hexBytes `json:"tree_hashes"`
	}
	decodeVectorJSON(t, raw, &v)
	s := vectorSuiteImpl(t, v.CipherSuite)
	tree := decodeTree(t, v.Tree)
	if len(v.Resolutions) != len(tree.nodes) || len(v.TreeHashes) != len(tree.nodes) {
		t.Fatalf("%d nodes, %d resolutions, %d tree hashes", len(tree.nodes), len(v.Resolutions), len(v.TreeHashes))
	}
	hashes, err := tree.treeHashes(s)
	must(t, "tree hashes", err)
	for i := range tree.nodes {
		got := tree.resolution(uint32(i))
		if !slices.Equal(got, v.Resolutions[i]) {
			t.Errorf("resolution(%d) = %v, want %v", i, got, v.Resolutions[i])
		}
		wantBytes(t, fmt.Sprintf("tree hash of node %d", i), hashes[i], v.TreeHashes[i])
	}
	must(t, "parent hashes", tree.verifyParentHashes(s))
	// Changing any parent's public key breaks its parent-hash chain.
	for i, n := range tree.nodes {
		if n == nil || n.parent == nil {
			continue
		}
		bad := tree.clone()
		q := *n.parent
		q.encryptionKey = append([]byte{1}, q.encryptionKey...)
		bad.nodes[i] = &treeNode{parent: &q}
		if err := bad.verifyParentHashes(s); !errors.Is(err, errParentHash) {
			t.Errorf("tampered parent %d: %v", i, err)
		}
		break
	}
	must(t, "leaf signatures", tree.verifyLeafSignatures(s, v.GroupID))
	if err := tree.verifyLeafSignatures(s, append(v.GroupID, 0)); err == nil && hasSignedLeafWithGroup(tree) {
		t.Error("leaf signatures verify under another group ID")
	}
	// Re-exporting gives back the vector's bytes.
	b, err := encode(tree.export())
	must(t, "export", err)
	wantBytes(t, "exported tree", b, v.Tree)
}

// hasSignedLeafWithGroup reports whether some leaf's signature covers the
// group ID (update or commit source).
func hasSignedLeafWithGroup(tree *publicTree) bool {
	for l := range tree.size.leaves() {
		if ln := tree.leaf(l); ln != nil && ln.source != leafSourceKeyPackage {
			return true
		}
	}
	return false
}

// runTreeOperationsVector applies one proposal to a tree.
func runTreeOperationsVector(t *testing.T, raw json.RawMessage) {
	var v struct {
		CipherSuite    uint16   `json:"cipher_suite"`
		TreeBefore     hexBytes `json:"tree_before"`
		Proposal       hexBytes `json:"proposal"`
		ProposalSender uint32   `json:"proposal_sender"`
		TreeHashBefore hexBytes `json:"tree_hash_before"`
		TreeAfter      hexBytes `json:"tree_after"`
		TreeHashAfter  hexBytes `json:"tree_hash_after"`
	}
	decodeVectorJSON(t, raw, &v)
	s := vectorSuiteImpl(t, v.CipherSuite)
	before := decodeTree(t, v.TreeBefore)
	h, err := before.rootHash(s)
	must(t, "tree hash before", err)
	wantBytes(t, "tree_hash_before", h, v.TreeHashBefore)
	var p proposal
	must(t, "proposal", decodeAll("Proposal", v.Proposal, p.unmarshal))
	after := before.clone()
	switch p.typ {
	case proposalAdd:
		_, err = after.addLeaf(&p.add.leafNode)
	case proposalUpdate:
		err = after.updateLeaf(v.ProposalSender, p.update)
	case proposalRemove:
		err = after.removeLeaf(p.removed)
	default:
		t.Fatalf("proposal type %d", p.typ)
	}
	must(t, "apply proposal", err)
	b, err := encode(after.export())
	must(t, "export", err)
	wantBytes(t, "tree_after", b, v.TreeAfter)
	h, err = after.rootHash(s)
	must(t, "tree hash after", err)
	wantBytes(t, "tree_hash_after", h, v.TreeHashAfter)
	// The tree before is unchanged by the clone's change.
	h, _ = before.rootHash(s)
	wantBytes(t, "tree_hash_before after the change", h, v.TreeHashBefore)
}
