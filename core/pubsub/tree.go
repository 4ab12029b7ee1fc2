package pubsub

import (
	"bytes"
	"slices"
	"time"

	"lukechampine.com/blake3"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
)

// A topic's broadcast tree is rooted. Plumtree alone builds its tree from
// whichever copies of whichever origins' messages arrive first; with many
// publishers every repair swaps one tree edge for another, and the tree
// drifts towards a random spanning tree, whose diameter grows like the
// square root of the topic's size (33 hops at 1,000 nodes). Here the
// subscriber whose key BLAKE3(topic || machine ID) is smallest is the root;
// it announces itself every TreeInterval, and each node takes as its tree
// parent the topic neighbour closest to the root (a breadth-first tree, as
// a distance-vector protocol builds it). The tree links of a node are its
// parent and the neighbours that name it as their parent: they are always
// eager, never pruned by duplicates. The other neighbours are lazy
// (Plumtree's IHAVE repair still runs over them, and a GRAFT still makes
// one eager until duplicates prune it, but only at a node whose parent has
// stopped pushing: see graftTimer). A tree of depth d has a diameter of
// at most 2d: ~4 levels at 1,000 nodes with 8 neighbours each.
//
// The root's announcement carries its own clock in milliseconds as a
// sequence number. Announcements older than treeFresh announcement periods
// behind the newest seen are stale: a root that stops announcing is
// forgotten after that long, and stale routes cannot form loops.
//
// Nothing here is signed: a hostile neighbour can claim to be close to the
// root (or grind a machine ID that makes it the root) and so become a tree
// parent. If it then drops messages, its subtree receives them through
// Plumtree's lazy repair, with repair latency, as before this tree existed.

// treeFresh is how many announcement periods a route's sequence number may
// lag the newest one seen for its root and still count, and how many
// periods without a new sequence number make a root dead.
const treeFresh = 3

// treeRemember is how many periods a root no neighbour announces any more
// is remembered; maxRoots bounds the roots remembered per topic.
const (
	treeRemember = 10
	maxRoots     = 64
)

// maxTreeDist bounds the depth of a tree; deeper announcements are ignored.
const maxTreeDist = 32

// TreeState is a node's position in a topic's tree, as announced to its
// topic neighbours.
type TreeState struct {
	Root   identity.PeerID `cbor:"1,keyasint"`
	Seq    uint64          `cbor:"2,keyasint"` // the root's clock (Unix ms) at its latest announcement
	Dist   uint8           `cbor:"3,keyasint"` // hops to the root
	Parent identity.PeerID `cbor:"4,keyasint,omitempty"`
}

// tree is one topic's tree state at this node.
type tree struct {
	self    TreeState                     // what we announce
	heard   map[identity.PeerID]TreeState // per topic neighbour
	roots   map[identity.PeerID]rootHeard // per root some neighbour announced
	links   []identity.PeerID             // parent and children
	changed bool                          // announce
}

// rootHeard is the newest sequence number of a root and when (our clock)
// it was first heard.
type rootHeard struct {
	seq uint64
	at  time.Time
}

func newTree(self identity.PeerID, now time.Time) *tree {
	return &tree{
		self:  TreeState{Root: self, Seq: uint64(now.UnixMilli())},
		heard: make(map[identity.PeerID]TreeState),
		roots: make(map[identity.PeerID]rootHeard),
	}
}

// rootKey orders root candidates of a topic.
func rootKey(topic TopicID, p identity.PeerID) [32]byte {
	var b [64]byte
	copy(b[:32], topic[:])
	copy(b[32:], p[:])
	return blake3.Sum256(b[:])
}

// Tree returns this node's position in the tree of subscribed topic
// name, and false if it does not subscribe.
func (ps *PubSub) Tree(name string) (TreeState, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if t := ps.topics[TopicIDOf(name)]; t != nil {
		return t.tree.self, true
	}
	return TreeState{}, false
}

func (ps *PubSub) isTreeLink(t *topic, p identity.PeerID) bool {
	return slices.Contains(t.tree.links, p)
}

// onTree records a neighbour's tree state.
func (ps *PubSub) onTree(t *topic, from identity.PeerID, s *TreeState) {
	if s.Dist > maxTreeDist || (s.Dist == 0 && s.Root != from) {
		ps.stats.DropMalformed++
		return
	}
	now := ps.cfg.Clock.Now().UnixMilli()
	if int64(s.Seq) > now+ps.cfg.MaxSkew.Milliseconds() {
		// A sequence number far ahead of our clock would outlive its root.
		ps.stats.DropStale++
		return
	}
	tr := t.tree
	tr.heard[from] = *s
	if r, ok := tr.roots[s.Root]; !ok || s.Seq > r.seq {
		tr.roots[s.Root] = rootHeard{seq: s.Seq, at: ps.cfg.Clock.Now()}
	}
	if len(tr.roots) > 2*maxRoots {
		ps.forgetRoots(t) // a neighbour naming ever new roots between ticks
	}
	ps.chooseParent(t)
	ps.announceTree(t)
}

// chooseParent picks the root and parent from what the neighbours
// announced, updates the tree links and the eager set, and marks the state
// for announcement if it changed.
func (ps *PubSub) chooseParent(t *topic) {
	tr := t.tree
	now := ps.cfg.Clock.Now()
	selfKey := rootKey(t.id, ps.self.ID)
	period := ps.cfg.TreeInterval.Milliseconds()
	dead := now.Add(-treeFresh * ps.cfg.TreeInterval)
	best := TreeState{Root: ps.self.ID, Seq: tr.self.Seq, Dist: 0}
	if tr.self.Root != ps.self.ID {
		best.Seq = uint64(now.UnixMilli())
	}
	bestKey := selfKey
	var bestVia identity.PeerID
	for _, p := range t.peers() {
		s, ok := tr.heard[p]
		if !ok || s.Root == ps.self.ID || s.Parent == ps.self.ID || s.Dist >= maxTreeDist {
			continue
		}
		r := tr.roots[s.Root]
		if r.at.Before(dead) || s.Seq+uint64(treeFresh*period) < r.seq {
			continue // a dead root, or a stale route to a live one
		}
		k := rootKey(t.id, s.Root)
		c := bytes.Compare(k[:], bestKey[:])
		if c > 0 {
			continue
		}
		if c == 0 && bestVia != (identity.PeerID{}) {
			// Same root: fewer hops, then the current parent, then a
			// per-pair hash so that children spread over equal parents.
			d, bd := s.Dist+1, best.Dist
			if d > bd {
				continue
			}
			if d == bd && !ps.preferParent(t, p, bestVia) {
				continue
			}
		}
		bestKey = k
		bestVia = p
		best = TreeState{Root: s.Root, Seq: r.seq, Dist: s.Dist + 1, Parent: p}
	}
	if best != tr.self {
		tr.changed = true
		if best.Parent != tr.self.Parent || best.Root != tr.self.Root {
			ps.stats.TreeParentChanges++
		}
	}
	tr.self = best
	ps.updateLinks(t)
}

// preferParent reports whether p is a better parent than cur among equally
// distant neighbours.
func (ps *PubSub) preferParent(t *topic, p, cur identity.PeerID) bool {
	if cur == t.tree.self.Parent {
		return false
	}
	if p == t.tree.self.Parent {
		return true
	}
	hp, hc := pairHash(ps.self.ID, p), pairHash(ps.self.ID, cur)
	return bytes.Compare(hp[:], hc[:]) < 0
}

func pairHash(a, b identity.PeerID) [32]byte {
	var x [64]byte
	copy(x[:32], a[:])
	copy(x[32:], b[:])
	return blake3.Sum256(x[:])
}

// updateLinks recomputes the tree links: the parent and every neighbour
// that announced us as its parent under the same root. A link that joins
// the tree becomes eager; one that leaves it becomes lazy.
func (ps *PubSub) updateLinks(t *topic) {
	tr := t.tree
	var links []identity.PeerID
	for _, p := range t.peers() {
		s, ok := tr.heard[p]
		if p == tr.self.Parent || (ok && s.Parent == ps.self.ID && s.Root == tr.self.Root) {
			links = append(links, p)
		}
	}
	for _, p := range tr.links {
		if !slices.Contains(links, p) {
			tr.links = links // so that toLazy does not refuse
			ps.toLazy(t, p)
		}
	}
	tr.links = links
	for _, p := range links {
		ps.toEager(t, p)
	}
}

// treeTick runs every TreeInterval: the root announces a new sequence
// number; every node re-chooses (stale routes expire) and announces its
// state to its topic neighbours if it changed or its sequence advanced.
func (ps *PubSub) treeTick(t *topic) {
	tr := t.tree
	if tr.self.Root == ps.self.ID {
		tr.self.Seq = uint64(ps.cfg.Clock.Now().UnixMilli())
		tr.changed = true
	}
	ps.chooseParent(t)
	ps.forgetRoots(t)
	ps.announceTree(t)
}

// forgetRoots drops roots no neighbour announces any more, but remembers
// a dead one for treeRemember periods so that a late re-announcement of
// its last sequence number does not revive it; and keeps at most
// maxRoots (the oldest unreferenced go first: identities are free, so
// roots are too).
func (ps *PubSub) forgetRoots(t *topic) {
	tr := t.tree
	now := ps.cfg.Clock.Now()
	referenced := func(r identity.PeerID) bool {
		return r == tr.self.Root || slices.ContainsFunc(t.peers(), func(p identity.PeerID) bool { return tr.heard[p].Root == r })
	}
	var idle []identity.PeerID
	for r, h := range tr.roots {
		if referenced(r) {
			continue
		}
		if h.at.Before(now.Add(-treeRemember * ps.cfg.TreeInterval)) {
			delete(tr.roots, r)
		} else {
			idle = append(idle, r)
		}
	}
	if len(tr.roots) > maxRoots {
		slices.SortFunc(idle, func(a, b identity.PeerID) int { return tr.roots[a].at.Compare(tr.roots[b].at) })
		for _, r := range idle[:min(len(idle), len(tr.roots)-maxRoots)] {
			delete(tr.roots, r)
		}
	}
}

// announceTree sends our state to every topic neighbour if it changed.
func (ps *PubSub) announceTree(t *topic) {
	if !t.tree.changed {
		return
	}
	t.tree.changed = false
	st := t.tree.self
	for _, p := range t.peers() {
		ps.stats.TreeAnnounced++
		ps.send(p, link.PriorityControl, &Frame{Kind: kindTree, Topic: t.id, Tree: &st})
	}
}
