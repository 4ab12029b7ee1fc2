package mls

import (
	"bytes"
	"fmt"
	"slices"
)

// The public ratchet tree (RFC 9420 sections 4 and 7): leaves hold members'
// LeafNodes, parents hold the HPKE public keys TreeKEM sets, and blank nodes
// hold nothing. This file covers what every member can compute from the
// public tree: importing and exporting it (the ratchet_tree extension),
// resolutions, tree hashes, parent-hash and leaf-signature validation, and
// the tree changes of Add, Update and Remove proposals. TreeKEM (UpdatePath
// encryption and merging) builds on it.

// Errors of the ratchet tree.
var (
	// errTreeMalformed means a ratchet tree whose shape is invalid: empty,
	// ending in a blank node, a leaf at a parent position or vice versa,
	// or unmerged leaves that are blank or outside the node's subtree.
	errTreeMalformed = fmt.Errorf("%w: malformed", ErrInvalidTree)
	// errParentHash means a non-blank parent node that no descendant's
	// parent hash chains to (RFC 9420 section 7.9.2).
	errParentHash = fmt.Errorf("%w: parent hash does not verify", ErrInvalidTree)
	// errBlankLeaf means an operation on a blank leaf.
	errBlankLeaf = fmt.Errorf("%w: leaf is blank", ErrInvalidProposal)
)

// publicTree is a ratchet tree in memory: a full tree (its size a power of
// two) with nodes in index order, nil for blank nodes. Nodes are treated as
// immutable values: changes replace a node, so clones may share them.
type publicTree struct {
	size  treeSize
	nodes []*treeNode
}

// newPublicTree imports a ratchet_tree extension's node list: it checks
// that the last node is non-blank and that leaves and parents sit at their
// positions, and extends the list with blank nodes to a full tree.
func newPublicTree(rt ratchetTree) (*publicTree, error) {
	if len(rt) == 0 || rt[len(rt)-1] == nil {
		return nil, fmt.Errorf("%w: empty or ends in a blank node", errTreeMalformed)
	}
	size, err := treeSizeFor(uint64(len(rt)+1) / 2)
	if err != nil {
		return nil, fmt.Errorf("%w: %d nodes", errTreeMalformed, len(rt))
	}
	nodes := make([]*treeNode, size.width())
	copy(nodes, rt)
	for i, n := range nodes {
		if n == nil {
			continue
		}
		x := uint32(i)
		if isLeaf(x) != (n.leaf != nil) || (n.leaf == nil) == (n.parent == nil) {
			return nil, fmt.Errorf("%w: node %d has the wrong type", errTreeMalformed, x)
		}
		if n.parent != nil {
			for _, l := range n.parent.unmergedLeaves {
				if l >= size.leaves() || !isInSubtree(x, nodeOfLeaf(l)) || nodes[nodeOfLeaf(l)] == nil {
					return nil, fmt.Errorf("%w: node %d lists unmerged leaf %d, blank or outside its subtree", errTreeMalformed, x, l)
				}
			}
		}
	}
	return &publicTree{size: size, nodes: nodes}, nil
}

// export returns the ratchet_tree extension's node list: the nodes without
// the trailing blank ones.
func (t *publicTree) export() ratchetTree {
	end := len(t.nodes)
	for end > 0 && t.nodes[end-1] == nil {
		end--
	}
	return slices.Clone(ratchetTree(t.nodes[:end]))
}

// clone returns a copy that can be changed without changing t.
func (t *publicTree) clone() *publicTree {
	return &publicTree{size: t.size, nodes: slices.Clone(t.nodes)}
}

// leaf returns leaf l's LeafNode, or nil if it is blank or outside the tree.
func (t *publicTree) leaf(l uint32) *leafNode {
	if l >= t.size.leaves() || t.nodes[nodeOfLeaf(l)] == nil {
		return nil
	}
	return t.nodes[nodeOfLeaf(l)].leaf
}

// resolution returns the resolution of node x (RFC 9420 section 4.1.1):
// x itself and its unmerged leaves if x is non-blank, nothing for a blank
// leaf, and the resolutions of its children for a blank parent.
func (t *publicTree) resolution(x uint32) []uint32 {
	var out []uint32
	var walk func(x uint32)
	walk = func(x uint32) {
		n := t.nodes[x]
		switch {
		case n != nil:
			out = append(out, x)
			if n.parent != nil {
				for _, l := range n.parent.unmergedLeaves {
					out = append(out, nodeOfLeaf(l))
				}
			}
		case !isLeaf(x):
			l, _ := left(x)
			r, _ := right(x)
			walk(l)
			walk(r)
		}
	}
	walk(x)
	return out
}

// nodeHash returns the tree hash of node x given its children's hashes
// (RFC 9420 section 7.8). excluded leaves count as blank and are removed
// from unmerged leaf lists (for original sibling tree hashes).
func (t *publicTree) nodeHash(s Suite, x uint32, leftHash, rightHash []byte, excluded map[uint32]bool) ([]byte, error) {
	var e encoder
	n := t.nodes[x]
	if isLeaf(x) {
		// TreeHashInput { leaf; LeafNodeHashInput { uint32 leaf_index; optional<LeafNode> } }
		e.u8(nodeTypeLeaf)
		e.u32(leafOfNode(x))
		present := n != nil && !excluded[leafOfNode(x)]
		e.optional(present)
		if present {
			n.leaf.marshal(&e)
		}
	} else {
		// TreeHashInput { parent; ParentNodeHashInput { optional<ParentNode>; left_hash<V>; right_hash<V> } }
		e.u8(nodeTypeParent)
		e.optional(n != nil)
		if n != nil {
			p := n.parent
			if len(excluded) > 0 {
				q := *p
				q.unmergedLeaves = slices.DeleteFunc(slices.Clone(p.unmergedLeaves), func(l uint32) bool { return excluded[l] })
				p = &q
			}
			p.marshal(&e)
		}
		e.opaque(leftHash)
		e.opaque(rightHash)
	}
	in, err := e.bytes()
	if err != nil {
		return nil, err
	}
	return s.Hash(in), nil
}

// treeHashes returns the tree hash of every node, by node index.
func (t *publicTree) treeHashes(s Suite) ([][]byte, error) {
	hashes := make([][]byte, len(t.nodes))
	var err error
	// Nodes of level k depend only on nodes of lower levels.
	for k := 0; err == nil && 1<<k <= t.size.leaves(); k++ {
		for i := uint64(1)<<k - 1; i < uint64(t.size.width()); i += 1 << (k + 1) {
			x := uint32(i)
			var lh, rh []byte
			if k > 0 {
				l, _ := left(x)
				r, _ := right(x)
				lh, rh = hashes[l], hashes[r]
			}
			if hashes[x], err = t.nodeHash(s, x, lh, rh, nil); err != nil {
				return nil, err
			}
		}
	}
	return hashes, nil
}

// rootHash returns the tree hash of the root.
func (t *publicTree) rootHash(s Suite) ([]byte, error) {
	h, err := t.treeHashes(s)
	if err != nil {
		return nil, err
	}
	return h[t.size.root()], nil
}

// subtreeHashExcluding returns the tree hash of the subtree at x with the
// excluded leaves blanked and removed from unmerged lists.
func (t *publicTree) subtreeHashExcluding(s Suite, x uint32, excluded map[uint32]bool, cached [][]byte) ([]byte, error) {
	touched := false
	for l := range excluded {
		if isInSubtree(x, nodeOfLeaf(l)) {
			touched = true
			break
		}
	}
	if !touched {
		return cached[x], nil
	}
	var lh, rh []byte
	if !isLeaf(x) {
		l, _ := left(x)
		r, _ := right(x)
		var err error
		if lh, err = t.subtreeHashExcluding(s, l, excluded, cached); err != nil {
			return nil, err
		}
		if rh, err = t.subtreeHashExcluding(s, r, excluded, cached); err != nil {
			return nil, err
		}
	}
	return t.nodeHash(s, x, lh, rh, excluded)
}

// parentHash returns ParentHash(P) as a child on the other side of sibling
// S sees it: Hash(ParentHashInput{P.encryption_key, P.parent_hash,
// original_sibling_tree_hash}) (RFC 9420 section 7.9).
func parentHash(s Suite, p *parentNode, originalSiblingHash []byte) ([]byte, error) {
	var e encoder
	e.opaque(p.encryptionKey)
	e.opaque(p.parentHash)
	e.opaque(originalSiblingHash)
	in, err := e.bytes()
	if err != nil {
		return nil, err
	}
	return s.Hash(in), nil
}

// nodeParentHash returns the parent_hash field of a node (nil if blank).
func nodeParentHash(n *treeNode) []byte {
	if n == nil {
		return nil
	}
	if n.leaf != nil {
		if n.leaf.source != leafSourceCommit {
			return nil
		}
		return n.leaf.parentHash
	}
	return n.parent.parentHash
}

// verifyParentHashes checks that every non-blank parent node is
// parent-hash valid (RFC 9420 section 7.9.2): for one of its children C,
// with sibling S, some node D in C's resolution carries
// ParentHash(P, original tree hash of S) and the rest of C's resolution is
// exactly P's unmerged leaves under C.
func (t *publicTree) verifyParentHashes(s Suite) error {
	hashes, err := t.treeHashes(s)
	if err != nil {
		return err
	}
	for i, n := range t.nodes {
		x := uint32(i)
		if n == nil || n.parent == nil {
			continue
		}
		excluded := map[uint32]bool{}
		for _, l := range n.parent.unmergedLeaves {
			excluded[l] = true
		}
		l, _ := left(x)
		r, _ := right(x)
		valid := false
		for _, side := range [][2]uint32{{l, r}, {r, l}} {
			c, sib := side[0], side[1]
			orig, err := t.subtreeHashExcluding(s, sib, excluded, hashes)
			if err != nil {
				return err
			}
			ph, err := parentHash(s, n.parent, orig)
			if err != nil {
				return err
			}
			if t.chainsTo(x, c, ph) {
				valid = true
				break
			}
		}
		if !valid {
			return fmt.Errorf("%w: node %d", errParentHash, x)
		}
	}
	return nil
}

// chainsTo reports whether a node D in the resolution of c (child of p)
// carries parent hash ph, with the rest of the resolution exactly p's
// unmerged leaves under c.
func (t *publicTree) chainsTo(p, c uint32, ph []byte) bool {
	res := t.resolution(c)
	var unmerged []uint32
	for _, l := range t.nodes[p].parent.unmergedLeaves {
		if isInSubtree(c, nodeOfLeaf(l)) {
			unmerged = append(unmerged, nodeOfLeaf(l))
		}
	}
	slices.Sort(unmerged)
	for i, d := range res {
		if !bytes.Equal(nodeParentHash(t.nodes[d]), ph) {
			continue
		}
		rest := append(slices.Clone(res[:i]), res[i+1:]...)
		slices.Sort(rest)
		if slices.Equal(rest, unmerged) {
			return true
		}
	}
	return false
}

// leafNodeTBS encodes LeafNodeTBS for leaf l's node ln: the signed fields,
// plus the group ID and leaf index for update and commit sources.
func leafNodeTBS(ln *leafNode, groupID []byte, l uint32) ([]byte, error) {
	var e encoder
	ln.marshalTBSFields(&e)
	if ln.source == leafSourceUpdate || ln.source == leafSourceCommit {
		e.opaque(groupID)
		e.u32(l)
	}
	return e.bytes()
}

// verifyLeafSignature checks leaf l's LeafNode signature with its own
// signature key.
func verifyLeafSignature(s Suite, ln *leafNode, groupID []byte, l uint32) error {
	tbs, err := leafNodeTBS(ln, groupID, l)
	if err != nil {
		return err
	}
	if err := s.VerifyWithLabel(ln.signatureKey, "LeafNodeTBS", tbs, ln.signature); err != nil {
		return fmt.Errorf("leaf %d: %w", l, err)
	}
	return nil
}

// signLeafNode signs ln as leaf l of group groupID.
func signLeafNode(s Suite, ln *leafNode, groupID []byte, l uint32, sigPriv []byte) error {
	tbs, err := leafNodeTBS(ln, groupID, l)
	if err != nil {
		return err
	}
	ln.signature, err = s.SignWithLabel(sigPriv, "LeafNodeTBS", tbs)
	return err
}

// verifyLeafSignatures checks the signature of every non-blank leaf.
func (t *publicTree) verifyLeafSignatures(s Suite, groupID []byte) error {
	for l := range t.size.leaves() {
		if ln := t.leaf(l); ln != nil {
			if err := verifyLeafSignature(s, ln, groupID, l); err != nil {
				return err
			}
		}
	}
	return nil
}

// blankDirectPath blanks the parents on leaf l's direct path.
func (t *publicTree) blankDirectPath(l uint32) {
	path, _ := t.size.directPath(nodeOfLeaf(l))
	for _, x := range path {
		t.nodes[x] = nil
	}
}

// addLeaf puts ln in the leftmost blank leaf, doubling the tree if none is
// blank, adds the new leaf to the unmerged leaves of the non-blank parents
// above it, and returns its index (RFC 9420 section 12.1.1).
func (t *publicTree) addLeaf(ln *leafNode) (uint32, error) {
	l := uint32(0)
	for l < t.size.leaves() && t.leaf(l) != nil {
		l++
	}
	if l == t.size.leaves() {
		bigger, err := newTreeSize(2 * uint64(t.size.leaves()))
		if err != nil {
			return 0, err
		}
		t.nodes = append(t.nodes, make([]*treeNode, bigger.width()-t.size.width())...)
		t.size = bigger
	}
	x := nodeOfLeaf(l)
	t.nodes[x] = &treeNode{leaf: ln}
	path, _ := t.size.directPath(x)
	for _, p := range path {
		if n := t.nodes[p]; n != nil {
			q := *n.parent
			q.unmergedLeaves = append(slices.Clone(q.unmergedLeaves), l)
			t.nodes[p] = &treeNode{parent: &q}
		}
	}
	return l, nil
}

// updateLeaf replaces leaf l's LeafNode and blanks its direct path (RFC
// 9420 section 12.1.2).
func (t *publicTree) updateLeaf(l uint32, ln *leafNode) error {
	if t.leaf(l) == nil {
		return errBlankLeaf
	}
	t.nodes[nodeOfLeaf(l)] = &treeNode{leaf: ln}
	t.blankDirectPath(l)
	return nil
}

// removeLeaf blanks leaf l and its direct path, then truncates the tree
// while its right half is entirely blank (RFC 9420 section 12.1.3).
func (t *publicTree) removeLeaf(l uint32) error {
	if t.leaf(l) == nil {
		return errBlankLeaf
	}
	t.nodes[nodeOfLeaf(l)] = nil
	t.blankDirectPath(l)
	for t.size.leaves() > 1 {
		half := t.size.leaves() / 2
		blank := true
		for r := half; r < t.size.leaves() && blank; r++ {
			blank = t.leaf(r) == nil
		}
		if !blank {
			break
		}
		smaller, _ := newTreeSize(uint64(half))
		t.nodes = t.nodes[:smaller.width()]
		t.size = smaller
	}
	return nil
}
