package mls

import (
	"fmt"
	"math/bits"
)

// Tree math for the left-balanced binary tree of RFC 9420 (section 4.2 and
// appendix C). Nodes are numbered in-order: leaves have even indices (leaf
// L is node 2L), parents odd ones, and a node's level is the number of
// trailing one bits in its index. In RFC 9420 the tree is always full: the
// number of leaves is a power of two (unused leaves are blank), which keeps
// parent() a closed formula.

// errTreeIndex means a node or leaf index lies outside the tree, or the
// operation does not apply to it (the root has no parent, a leaf has no
// children).
var errTreeIndex = fmt.Errorf("%w: node index outside the tree or not applicable", ErrInvalidTree)

// errTreeSize means a leaf count is zero, not a power of two, or too large.
var errTreeSize = fmt.Errorf("%w: leaf count must be a power of two in [1, 2^31]", ErrInvalidTree)

// maxLeaves bounds trees so that node indices fit a uint32.
const maxLeaves = 1 << 31

// treeSize is a number of leaves, always a power of two.
type treeSize uint32

// newTreeSize checks that n leaves form a valid RFC 9420 tree.
func newTreeSize(n uint64) (treeSize, error) {
	if n == 0 || n > maxLeaves || n&(n-1) != 0 {
		return 0, errTreeSize
	}
	return treeSize(n), nil
}

// treeSizeFor returns the smallest valid tree holding at least n leaves.
func treeSizeFor(n uint64) (treeSize, error) {
	if n == 0 {
		return 1, nil
	}
	if n > maxLeaves {
		return 0, errTreeSize
	}
	return treeSize(uint64(1) << bits.Len64(n-1)), nil
}

// leaves is the number of leaves.
func (n treeSize) leaves() uint32 { return uint32(n) }

// width is the number of nodes, 2n-1.
func (n treeSize) width() uint32 { return 2*uint32(n) - 1 }

// root is the index of the root node.
func (n treeSize) root() uint32 { return uint32(n) - 1 }

// contains reports whether x is a node of the tree.
func (n treeSize) contains(x uint32) bool { return x < n.width() }

// nodeOfLeaf returns the node index of leaf l.
func nodeOfLeaf(l uint32) uint32 { return 2 * l }

// leafOfNode returns the leaf index of the leaf node x (x must be even).
func leafOfNode(x uint32) uint32 { return x / 2 }

// isLeaf reports whether node x is a leaf.
func isLeaf(x uint32) bool { return x&1 == 0 }

// level is the number of trailing ones in x: 0 for leaves.
func level(x uint32) int { return bits.TrailingZeros32(^x) }

// left returns the left child of parent node x.
func left(x uint32) (uint32, error) {
	k := level(x)
	if k == 0 {
		return 0, errTreeIndex
	}
	return x ^ (1 << (k - 1)), nil
}

// right returns the right child of parent node x.
func right(x uint32) (uint32, error) {
	k := level(x)
	if k == 0 {
		return 0, errTreeIndex
	}
	return x ^ (3 << (k - 1)), nil
}

// parent returns the parent of node x in a tree of size n.
func (n treeSize) parent(x uint32) (uint32, error) {
	if !n.contains(x) || x == n.root() {
		return 0, errTreeIndex
	}
	k := level(x)
	b := (x >> (k + 1)) & 1
	return (x | 1<<k) ^ (b << (k + 1)), nil
}

// sibling returns the other child of x's parent.
func (n treeSize) sibling(x uint32) (uint32, error) {
	p, err := n.parent(x)
	if err != nil {
		return 0, err
	}
	if x < p {
		return right(p)
	}
	return left(p)
}

// directPath returns the parents of x from its parent up to the root
// (excluding x, including the root; empty for the root).
func (n treeSize) directPath(x uint32) ([]uint32, error) {
	if !n.contains(x) {
		return nil, errTreeIndex
	}
	var path []uint32
	for x != n.root() {
		p, err := n.parent(x)
		if err != nil {
			return nil, err
		}
		path = append(path, p)
		x = p
	}
	return path, nil
}

// copath returns the siblings of x and of each node of its direct path
// except the root: the nodes whose subtrees cover the rest of the tree.
func (n treeSize) copath(x uint32) ([]uint32, error) {
	if !n.contains(x) {
		return nil, errTreeIndex
	}
	var out []uint32
	for x != n.root() {
		s, err := n.sibling(x)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
		x, _ = n.parent(x)
	}
	return out, nil
}

// commonAncestor returns the lowest node whose subtree holds both x and y.
func commonAncestor(x, y uint32) uint32 {
	// Nodes at level k share the same bits above bit k with their
	// ancestors; the common ancestor is found by clearing the low bits
	// that differ and setting the level bits.
	if x == y {
		return x
	}
	lx, ly := level(x)+1, level(y)+1
	if lx <= ly && x>>ly == y>>ly {
		return y
	}
	if ly <= lx && x>>lx == y>>lx {
		return x
	}
	xn, yn, k := x, y, 0
	for xn != yn {
		xn, yn = xn>>1, yn>>1
		k++
	}
	return xn<<k + (1<<(k-1) - 1)
}

// isInSubtree reports whether node x lies in the subtree rooted at a.
func isInSubtree(a, x uint32) bool {
	k := level(a)
	lo := a - (1<<k - 1)
	hi := a + (1<<k - 1)
	return lo <= x && x <= hi
}
