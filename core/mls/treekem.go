package mls

import (
	"bytes"
	"crypto/rand"
	"fmt"
)

// TreeKEM (RFC 9420 sections 7.4 to 7.6): a committer refreshes the keys
// on its filtered direct path and encrypts each new path secret to the
// resolution of the copath child below it (encapPath); every other member
// merges the UpdatePath's public keys into its tree (mergePath), decrypts
// the one path secret it can and derives the rest up to the root
// (decapPath). The last derivation gives the commit secret.
//
//	path_secret[0]   random (committer)
//	path_secret[n+1] = DeriveSecret(path_secret[n], "path")
//	node_secret[n]   = DeriveSecret(path_secret[n], "node")
//	node_priv[n], node_pub[n] = KEM.DeriveKeyPair(node_secret[n])
//	commit_secret    = path_secret[len(filtered direct path)]
//
// A member's private view of the tree (privateTree) holds the HPKE private
// keys of its leaf and of the parents on its direct path it knows.

// errUpdatePath means an UpdatePath that does not fit the tree or cannot
// be decrypted: a wrong number of nodes or ciphertexts, no private key to
// decrypt with, or derived public keys that differ from the path's.
var errUpdatePath = fmt.Errorf("%w: invalid update path", ErrInvalidCommit)

// nodeKey is an HPKE key pair of a tree node.
type nodeKey struct {
	priv, pub []byte
}

// privateTree is one member's private TreeKEM state: its leaf index and the
// HPKE key pairs it holds, by node index (its leaf and some parents on its
// direct path). Keys are checked against the public tree before use, and
// prune drops those the tree no longer carries.
type privateTree struct {
	leaf uint32
	keys map[uint32]nodeKey
}

func newPrivateTree(leaf uint32) *privateTree {
	return &privateTree{leaf: leaf, keys: map[uint32]nodeKey{}}
}

// clone returns a deep copy (the copy owns its own key bytes).
func (p *privateTree) clone() *privateTree {
	c := &privateTree{leaf: p.leaf, keys: make(map[uint32]nodeKey, len(p.keys))}
	for x, k := range p.keys {
		c.keys[x] = nodeKey{priv: bytes.Clone(k.priv), pub: bytes.Clone(k.pub)}
	}
	return c
}

// set stores a key pair for node x, wiping the one it replaces.
func (p *privateTree) set(x uint32, k nodeKey) {
	if old, ok := p.keys[x]; ok {
		zero(old.priv)
	}
	p.keys[x] = k
}

// prune deletes (and wipes) every key whose node in t is blank or carries
// another public key, so the state matches the tree after blanking.
func (p *privateTree) prune(t *publicTree) {
	for x, k := range p.keys {
		if !bytes.Equal(nodePublicKey(t, x), k.pub) {
			zero(k.priv)
			delete(p.keys, x)
		}
	}
}

// wipe zeroes every private key.
func (p *privateTree) wipe() {
	for x, k := range p.keys {
		zero(k.priv)
		delete(p.keys, x)
	}
}

// keyFor returns the private key of node x if it is held and matches the
// public key the tree carries there.
func (p *privateTree) keyFor(t *publicTree, x uint32) ([]byte, bool) {
	k, ok := p.keys[x]
	if !ok || !bytes.Equal(nodePublicKey(t, x), k.pub) {
		return nil, false
	}
	return k.priv, true
}

// nodePublicKey returns the HPKE public key of node x, or nil if it is
// blank or outside the tree.
func nodePublicKey(t *publicTree, x uint32) []byte {
	if x >= uint32(len(t.nodes)) || t.nodes[x] == nil {
		return nil
	}
	if n := t.nodes[x]; n.leaf != nil {
		return n.leaf.encryptionKey
	}
	return t.nodes[x].parent.encryptionKey
}

// filteredDirectPath returns leaf l's filtered direct path (RFC 9420
// section 4.1.2): its direct path without the nodes whose copath child has
// an empty resolution, and for each node kept that copath child.
func (t *publicTree) filteredDirectPath(l uint32) (path, copath []uint32, err error) {
	if l >= t.size.leaves() {
		return nil, nil, errLeafIndex
	}
	x := nodeOfLeaf(l)
	dp, err := t.size.directPath(x)
	if err != nil {
		return nil, nil, err
	}
	cp, err := t.size.copath(x)
	if err != nil {
		return nil, nil, err
	}
	for i := range dp {
		if len(t.resolution(cp[i])) > 0 {
			path = append(path, dp[i])
			copath = append(copath, cp[i])
		}
	}
	return path, copath, nil
}

// resolutionExcluding returns the resolution of x without the leaves in
// excluded (members added by the commit being built or processed).
func (t *publicTree) resolutionExcluding(x uint32, excluded map[uint32]bool) []uint32 {
	res := t.resolution(x)
	if len(excluded) == 0 {
		return res
	}
	out := res[:0]
	for _, r := range res {
		if !isLeaf(r) || !excluded[leafOfNode(r)] {
			out = append(out, r)
		}
	}
	return out
}

// deriveNodeKey returns the HPKE key pair of a path secret's node.
func deriveNodeKey(s Suite, pathSecret []byte) (nodeKey, error) {
	nodeSecret, err := s.DeriveSecret(pathSecret, "node")
	if err != nil {
		return nodeKey{}, err
	}
	defer zero(nodeSecret)
	priv, pub, err := s.DeriveHPKEKeyPair(nodeSecret)
	if err != nil {
		return nodeKey{}, err
	}
	return nodeKey{priv: priv, pub: pub}, nil
}

// setPathKeys blanks leaf l's direct path, puts the given public keys on
// its filtered direct path (with empty unmerged leaves), fills in the
// parent hashes from the root down and returns the parent hash the leaf
// must carry (RFC 9420 sections 7.5 and 7.9).
func (t *publicTree) setPathKeys(s Suite, l uint32, path, copath []uint32, pubs [][]byte) ([]byte, error) {
	t.blankDirectPath(l)
	for i, x := range path {
		t.nodes[x] = &treeNode{parent: &parentNode{encryptionKey: pubs[i], parentHash: []byte{}}}
	}
	// The copath subtrees do not contain the path, so their tree hashes
	// are those of the tree as it now is; and each path node's unmerged
	// leaves are empty, so they are also the original sibling hashes.
	hashes, err := t.treeHashes(s)
	if err != nil {
		return nil, err
	}
	ph := []byte{}
	for i := len(path) - 1; i >= 0; i-- {
		p := t.nodes[path[i]].parent
		p.parentHash = ph
		if ph, err = parentHash(s, p, hashes[copath[i]]); err != nil {
			return nil, err
		}
	}
	return ph, nil
}

// pathEncap is what a committer's UpdatePath generation produces.
type pathEncap struct {
	path         *updatePath
	pathSecrets  map[uint32][]byte // by node of the filtered direct path
	commitSecret []byte
	keys         map[uint32]nodeKey // the committer's new leaf and path keys
}

// wipe zeroes the secrets.
func (e *pathEncap) wipe() {
	for _, ps := range e.pathSecrets {
		zero(ps)
	}
	zero(e.commitSecret)
	for _, k := range e.keys {
		zero(k.priv)
	}
}

// encapPath generates an UpdatePath for leaf l of t, which it changes in
// place into the tree after the path is merged. template gives the new leaf
// node's content (keys, credential, capabilities, extensions); encapPath
// sets a fresh encryption key, source commit and the parent hash, and signs
// it for group groupID. The path secrets are encrypted under the encoded
// GroupContext that context returns for the new tree's root hash, to the
// copath resolutions minus the leaves in excluded.
func encapPath(s Suite, t *publicTree, l uint32, template *leafNode, groupID, sigPriv []byte,
	excluded map[uint32]bool, context func(treeHash []byte) ([]byte, error)) (*pathEncap, error) {
	path, copath, err := t.filteredDirectPath(l)
	if err != nil {
		return nil, err
	}
	out := &pathEncap{pathSecrets: map[uint32][]byte{}, keys: map[uint32]nodeKey{}}
	ok := false
	defer func() {
		if !ok {
			out.wipe()
		}
	}()
	leafPriv, leafPub, err := s.GenerateHPKEKeyPair()
	if err != nil {
		return nil, err
	}
	out.keys[nodeOfLeaf(l)] = nodeKey{priv: leafPriv, pub: leafPub}
	secret := make([]byte, s.HashSize())
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("mls: reading path secret: %w", err)
	}
	pubs := make([][]byte, len(path))
	for i, x := range path {
		out.pathSecrets[x] = secret
		k, err := deriveNodeKey(s, secret)
		if err != nil {
			return nil, err
		}
		out.keys[x] = k
		pubs[i] = k.pub
		if secret, err = s.DeriveSecret(secret, "path"); err != nil {
			return nil, err
		}
	}
	out.commitSecret = secret

	ph, err := t.setPathKeys(s, l, path, copath, pubs)
	if err != nil {
		return nil, err
	}
	ln := *template
	ln.encryptionKey = leafPub
	ln.source = leafSourceCommit
	ln.notBefore, ln.notAfter = 0, 0
	ln.parentHash = ph
	if err := signLeafNode(s, &ln, groupID, l, sigPriv); err != nil {
		return nil, err
	}
	t.nodes[nodeOfLeaf(l)] = &treeNode{leaf: &ln}
	treeHash, err := t.rootHash(s)
	if err != nil {
		return nil, err
	}
	ctx, err := context(treeHash)
	if err != nil {
		return nil, err
	}
	up := &updatePath{leafNode: ln, nodes: make([]updatePathNode, len(path))}
	for i, x := range path {
		up.nodes[i].encryptionKey = pubs[i]
		for _, r := range t.resolutionExcluding(copath[i], excluded) {
			kem, ct, err := s.EncryptWithLabel(nodePublicKey(t, r), "UpdatePathNode", ctx, out.pathSecrets[x])
			if err != nil {
				return nil, err
			}
			up.nodes[i].encryptedPathSecret = append(up.nodes[i].encryptedPathSecret, hpkeCiphertext{kemOutput: kem, ciphertext: ct})
		}
	}
	out.path = up
	ok = true
	return out, nil
}

// mergePath merges sender's UpdatePath into t (RFC 9420 section 7.5): it
// checks that the path has one node per node of the sender's filtered
// direct path, blanks the direct path, sets the new public keys, recomputes
// the parent hashes and checks the one the new leaf node carries. The leaf
// node itself is validated by the caller.
func (t *publicTree) mergePath(s Suite, sender uint32, up *updatePath) error {
	path, copath, err := t.filteredDirectPath(sender)
	if err != nil {
		return err
	}
	if len(up.nodes) != len(path) {
		return fmt.Errorf("%w: %d nodes for a filtered direct path of %d", errUpdatePath, len(up.nodes), len(path))
	}
	pubs := make([][]byte, len(path))
	for i := range up.nodes {
		pubs[i] = up.nodes[i].encryptionKey
	}
	ph, err := t.setPathKeys(s, sender, path, copath, pubs)
	if err != nil {
		return err
	}
	if up.leafNode.source != leafSourceCommit || !bytes.Equal(up.leafNode.parentHash, ph) {
		return fmt.Errorf("%w: committer's leaf node", errParentHash)
	}
	ln := up.leafNode
	t.nodes[nodeOfLeaf(sender)] = &treeNode{leaf: &ln}
	return nil
}

// pathDecap is what a member learns from another's UpdatePath.
type pathDecap struct {
	pathSecret   []byte // the one decrypted, at the lowest common ancestor
	commitSecret []byte
	keys         map[uint32]nodeKey // private keys of the path nodes above it
}

func (d *pathDecap) wipe() {
	zero(d.pathSecret)
	zero(d.commitSecret)
	for _, k := range d.keys {
		zero(k.priv)
	}
}

// decapPath decrypts sender's UpdatePath with the private state priv, in t
// after the path was merged (mergePath): it finds the lowest node of the
// sender's filtered direct path above priv's leaf, decrypts its path
// secret with a key priv holds for the copath resolution (minus excluded
// leaves), derives the path secrets above it, checks every derived public
// key against the path, and returns the new keys and the commit secret.
func decapPath(s Suite, t *publicTree, priv *privateTree, sender uint32, up *updatePath,
	excluded map[uint32]bool, ctx []byte) (*pathDecap, error) {
	path, copath, err := t.filteredDirectPath(sender)
	if err != nil {
		return nil, err
	}
	if len(up.nodes) != len(path) {
		return nil, fmt.Errorf("%w: %d nodes for a filtered direct path of %d", errUpdatePath, len(up.nodes), len(path))
	}
	me := nodeOfLeaf(priv.leaf)
	i := 0
	for i < len(path) && !isInSubtree(copath[i], me) {
		i++
	}
	if i == len(path) {
		return nil, fmt.Errorf("%w: leaf %d is not below the path of leaf %d", errUpdatePath, priv.leaf, sender)
	}
	res := t.resolutionExcluding(copath[i], excluded)
	cts := up.nodes[i].encryptedPathSecret
	if len(cts) != len(res) {
		return nil, fmt.Errorf("%w: %d ciphertexts for a resolution of %d", errUpdatePath, len(cts), len(res))
	}
	var secret []byte
	for j, r := range res {
		key, ok := priv.keyFor(t, r)
		if !ok {
			continue
		}
		if secret, err = s.DecryptWithLabel(key, "UpdatePathNode", ctx, cts[j].kemOutput, cts[j].ciphertext); err != nil {
			return nil, err
		}
		break
	}
	if secret == nil {
		return nil, fmt.Errorf("%w: no private key for the resolution of node %d", errUpdatePath, copath[i])
	}
	out := &pathDecap{pathSecret: bytes.Clone(secret), keys: map[uint32]nodeKey{}}
	for k := i; k < len(path); k++ {
		nk, err := deriveNodeKey(s, secret)
		if err == nil && !bytes.Equal(nk.pub, up.nodes[k].encryptionKey) {
			zero(nk.priv)
			err = fmt.Errorf("%w: derived public key of node %d differs from the path's", errUpdatePath, path[k])
		}
		var next []byte
		if err == nil {
			out.keys[path[k]] = nk
			next, err = s.DeriveSecret(secret, "path")
		}
		zero(secret)
		if err != nil {
			out.wipe()
			return nil, err
		}
		secret = next
	}
	out.commitSecret = secret
	return out, nil
}

// pathKeysFromSecret derives the private keys of the nodes of path from
// index i up, starting from the path secret of path[i] (a joiner's
// path_secret from a Welcome, RFC 9420 section 12.4.3.1), and checks them
// against the public keys in t.
func pathKeysFromSecret(s Suite, t *publicTree, path []uint32, i int, pathSecret []byte) (map[uint32]nodeKey, error) {
	keys := map[uint32]nodeKey{}
	secret := bytes.Clone(pathSecret)
	defer func() { zero(secret) }()
	for ; i < len(path); i++ {
		nk, err := deriveNodeKey(s, secret)
		if err != nil {
			wipeKeys(keys)
			return nil, err
		}
		keys[path[i]] = nk
		if !bytes.Equal(nk.pub, nodePublicKey(t, path[i])) {
			wipeKeys(keys)
			return nil, fmt.Errorf("%w: path secret does not give node %d's public key", errUpdatePath, path[i])
		}
		next, err := s.DeriveSecret(secret, "path")
		if err != nil {
			wipeKeys(keys)
			return nil, err
		}
		zero(secret)
		secret = next
	}
	return keys, nil
}

// wipeKeys zeroes the private keys of a key map.
func wipeKeys(keys map[uint32]nodeKey) {
	for _, k := range keys {
		zero(k.priv)
	}
}

// mergeKeys moves keys into p (replacing and wiping what they replace).
func (p *privateTree) mergeKeys(keys map[uint32]nodeKey) {
	for x, k := range keys {
		p.set(x, k)
	}
}
