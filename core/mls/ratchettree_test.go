package mls

import (
	"errors"
	"testing"
)

func testLeaf(id string) *leafNode {
	return &leafNode{encryptionKey: []byte("enc-" + id), signatureKey: []byte("sig-" + id),
		credential: credential{typ: credentialBasic, identity: []byte(id)}, source: leafSourceKeyPackage}
}

func TestPublicTreeImport(t *testing.T) {
	leaf := &treeNode{leaf: testLeaf("a")}
	parent := &treeNode{parent: &parentNode{encryptionKey: []byte("p")}}
	for name, rt := range map[string]ratchetTree{
		"empty":                {},
		"trailing blank":       {leaf, nil, nil},
		"parent at leaf index": {parent},
		"leaf at parent index": {leaf, leaf, leaf},
		"node with both":       {{leaf: testLeaf("a"), parent: &parentNode{}}},
		"node with neither":    {{}},
		"unmerged outside":     {leaf, {parent: &parentNode{unmergedLeaves: []uint32{2}}}, leaf},
		"unmerged blank":       {leaf, {parent: &parentNode{unmergedLeaves: []uint32{1}}}, nil, nil, leaf},
	} {
		if _, err := newPublicTree(rt); !errors.Is(err, errTreeMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Five nodes extend to a full tree of seven.
	tree, err := newPublicTree(ratchetTree{leaf, nil, nil, nil, leaf})
	if err != nil || len(tree.nodes) != 7 || tree.size.leaves() != 4 {
		t.Fatalf("extension: %v, %d nodes", err, len(tree.nodes))
	}
	if got := tree.export(); len(got) != 5 {
		t.Errorf("export keeps %d nodes, want 5", len(got))
	}
}

func TestPublicTreeOperations(t *testing.T) {
	s := testSuite(t)
	tree, err := newPublicTree(ratchetTree{{leaf: testLeaf("a")}})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"b", "c"} {
		l, err := tree.addLeaf(testLeaf(id))
		if err != nil || l != uint32(i+1) {
			t.Fatalf("add %s: leaf %d, %v", id, l, err)
		}
	}
	if tree.size.leaves() != 4 {
		t.Fatalf("%d leaves after two adds to one", tree.size.leaves())
	}
	// A parent set on leaf 0's path lists later additions as unmerged.
	tree.nodes[1] = &treeNode{parent: &parentNode{encryptionKey: []byte("p1")}}
	tree.nodes[3] = &treeNode{parent: &parentNode{encryptionKey: []byte("p3")}}
	l, _ := tree.addLeaf(testLeaf("d"))
	if l != 3 || len(tree.nodes[3].parent.unmergedLeaves) != 1 || tree.nodes[3].parent.unmergedLeaves[0] != 3 {
		t.Fatalf("unmerged leaves after add: %+v", tree.nodes[3].parent)
	}
	if len(tree.nodes[1].parent.unmergedLeaves) != 0 {
		t.Fatal("node 1 is not above leaf 3")
	}
	if got := tree.resolution(3); len(got) != 2 || got[0] != 3 || got[1] != 6 {
		t.Fatalf("resolution(3) = %v", got)
	}
	before, _ := tree.rootHash(s)
	if err := tree.updateLeaf(1, testLeaf("b2")); err != nil {
		t.Fatal(err)
	}
	if tree.nodes[1] != nil || tree.nodes[3] != nil {
		t.Fatal("update did not blank the direct path")
	}
	after, _ := tree.rootHash(s)
	if string(before) == string(after) {
		t.Fatal("tree hash unchanged by an update")
	}
	// Removing leaves 3 then 2 truncates to two leaves; removing a blank
	// leaf or updating one fails.
	for _, l := range []uint32{3, 2} {
		if err := tree.removeLeaf(l); err != nil {
			t.Fatal(err)
		}
	}
	if tree.size.leaves() != 2 || len(tree.nodes) != 3 {
		t.Fatalf("after removals: %d leaves", tree.size.leaves())
	}
	if err := tree.removeLeaf(2); !errors.Is(err, errBlankLeaf) {
		t.Errorf("remove outside the tree: %v", err)
	}
	if err := tree.removeLeaf(1); err != nil {
		t.Fatal(err)
	}
	if tree.size.leaves() != 1 {
		t.Fatalf("after removing leaf 1: %d leaves", tree.size.leaves())
	}
	if err := tree.updateLeaf(1, testLeaf("x")); !errors.Is(err, errBlankLeaf) {
		t.Errorf("update of a blank leaf: %v", err)
	}
}

func TestLeafSignature(t *testing.T) {
	s := testSuite(t)
	priv, pub, _ := s.GenerateSignatureKeyPair()
	ln := testLeaf("a")
	ln.signatureKey = pub
	ln.source = leafSourceUpdate
	if err := signLeafNode(s, ln, []byte("g"), 3, priv); err != nil {
		t.Fatal(err)
	}
	if err := verifyLeafSignature(s, ln, []byte("g"), 3); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"other group": func() error { return verifyLeafSignature(s, ln, []byte("h"), 3) },
		"other leaf":  func() error { return verifyLeafSignature(s, ln, []byte("g"), 4) },
	} {
		if err := f(); !errors.Is(err, ErrCrypto) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
