package mls

import (
	"errors"
	"slices"
	"testing"
)

func TestTreeSize(t *testing.T) {
	for _, n := range []uint64{0, 3, 5, 6, 12, maxLeaves + 1, maxLeaves * 2} {
		if _, err := newTreeSize(n); !errors.Is(err, errTreeSize) {
			t.Errorf("newTreeSize(%d): %v", n, err)
		}
	}
	for n, want := range map[uint64]uint32{0: 1, 1: 1, 2: 2, 3: 4, 5: 8, 8: 8, 9: 16, maxLeaves: maxLeaves} {
		got, err := treeSizeFor(n)
		if err != nil || got.leaves() != want {
			t.Errorf("treeSizeFor(%d) = %d, %v; want %d", n, got, err, want)
		}
	}
	// The largest tree's indices fit a uint32.
	n, err := newTreeSize(maxLeaves)
	if err != nil || n.width() != 1<<32-1 || n.root() != 1<<31-1 {
		t.Fatalf("largest tree: width %d root %d (%v)", n.width(), n.root(), err)
	}
	if _, err := n.parent(n.width() - 1); err != nil {
		t.Fatalf("parent of the last node of the largest tree: %v", err)
	}
}

// TestTreeMathStructure checks the arithmetic against the structure it
// describes, for every node of every tree up to 64 leaves.
func TestTreeMathStructure(t *testing.T) {
	for leaves := uint64(1); leaves <= 64; leaves *= 2 {
		n, err := newTreeSize(leaves)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.parent(n.root()); !errors.Is(err, errTreeIndex) {
			t.Errorf("%d leaves: root has a parent", leaves)
		}
		if _, err := n.parent(n.width()); !errors.Is(err, errTreeIndex) {
			t.Errorf("%d leaves: node %d outside the tree has a parent", leaves, n.width())
		}
		for x := range n.width() {
			if isLeaf(x) {
				if _, err := left(x); err == nil {
					t.Errorf("leaf %d has a left child", x)
				}
				if leafOfNode(x) >= n.leaves() || nodeOfLeaf(leafOfNode(x)) != x {
					t.Errorf("leaf node %d does not map to a leaf index", x)
				}
			} else {
				l, _ := left(x)
				r, _ := right(x)
				if pl, _ := n.parent(l); pl != x {
					t.Errorf("parent(left(%d)) = %d", x, pl)
				}
				if pr, _ := n.parent(r); pr != x {
					t.Errorf("parent(right(%d)) = %d", x, pr)
				}
				if s, _ := n.sibling(l); s != r {
					t.Errorf("sibling(left(%d)) = %d, want %d", x, s, r)
				}
				if l >= x || r <= x || level(l) != level(x)-1 || level(r) != level(x)-1 {
					t.Errorf("children of %d: %d, %d", x, l, r)
				}
			}
			dp, err := n.directPath(x)
			if err != nil {
				t.Fatal(err)
			}
			cp, err := n.copath(x)
			if err != nil {
				t.Fatal(err)
			}
			if len(dp) != len(cp) || (x != n.root() && dp[len(dp)-1] != n.root()) {
				t.Errorf("node %d: direct path %v, copath %v", x, dp, cp)
			}
			for i, p := range dp {
				if !isInSubtree(p, x) || isInSubtree(cp[i], x) || !isInSubtree(p, cp[i]) {
					t.Errorf("node %d: ancestor %d / copath node %d inconsistent", x, p, cp[i])
				}
			}
			for y := range n.width() {
				want := firstCommon(n, x, y)
				if got := commonAncestor(x, y); got != want {
					t.Errorf("commonAncestor(%d, %d) = %d, want %d", x, y, got, want)
				}
			}
		}
	}
}

// firstCommon is the lowest common ancestor by walking direct paths.
func firstCommon(n treeSize, x, y uint32) uint32 {
	px, _ := n.directPath(x)
	py, _ := n.directPath(y)
	px = append([]uint32{x}, px...)
	py = append([]uint32{y}, py...)
	for _, a := range px {
		if slices.Contains(py, a) {
			return a
		}
	}
	return n.root()
}
