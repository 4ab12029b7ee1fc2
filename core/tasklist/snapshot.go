package tasklist

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"lukechampine.com/blake3"

	"github.com/saorsa-labs/x0x-go/core/crdt"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// Compacted snapshots.
//
// Replaying a list's log at Open decodes, verifies and applies every
// signed delta: about a second for 20,000 tasks. A snapshot is the merged
// state of the list after its first Ops logged deltas (the CRDTs, the
// version vector, the per-author timestamps and the access history and
// claim/reopen records the receipt rules judge later deltas by), so Open
// restores it and replays only the deltas logged after it. Deltas are
// verified on receipt and the store is local, so neither the snapshot nor
// the tail after it is verified again; the signed deltas stay in the log,
// unchanged, and sync sends them as before (read from the store on demand:
// a restored list does not hold them in memory).
//
// A snapshot is written in one bbolt transaction (the old one is replaced
// whole) when the list is closed and, while it runs, after a write that
// brings the deltas logged since the last snapshot to
// max(snapshotEvery, Ops/4): the amortised cost per operation stays
// constant as the list grows and a crash replays at most that tail. It is
// made only when memory and the log agree (no received delta unsaved, no
// failed write).
//
// It is a header (format version, Ops, number of parts, BLAKE3-256 of all
// of them) and parts of at most snapPartElems array elements and about
// snapPartBytes bytes each, decoded with wire.LimitMedium so that a
// damaged record cannot make the decoder allocate much. A missing
// snapshot, an unknown version, a checksum or decode failure, or a state
// that does not check is never fatal: Open logs it, counts it
// (Stats.SnapshotErrors) and replays the whole log instead, verifying
// every signature as before. Only an unreadable log is ErrStoreCorrupt.
//
// A late joiner cannot trust a sender's merged state, so it receives
// state as the effective signed deltas instead (statesync.go), which the
// log keeps. The snapshot also holds what that needs: the numbers the list
// skipped, its checkpoint, the move deltas, and per task its causal
// frontier, each author's last delta and the deltas holding the fields'
// values.

// snapshotVersion is the snapshot format; a header with another version
// is ignored (full replay) and replaced by the next snapshot.
const snapshotVersion = 2

const (
	// snapshotEvery is the least number of deltas logged after a snapshot
	// before the next is written while the list runs.
	snapshotEvery = 4096
	// snapPartElems bounds the array elements of one part (below
	// wire.LimitMedium's 4,096 per array, counting every array of the
	// part together); snapPartBytes is the size a part is closed at.
	snapPartElems = 4000
	snapPartBytes = 1 << 20
)

var (
	snapBucket    = []byte("s")  // part index (8 bytes, big endian) -> snapPart
	snapHeaderKey = []byte("sh") // snapHeader
)

// errSnapshot marks a snapshot that cannot be used or made; it never
// reaches callers.
var errSnapshot = errors.New("tasklist: snapshot unusable")

type snapHeader struct {
	V     uint8  `cbor:"1,keyasint"`
	Ops   uint64 `cbor:"2,keyasint"` // order records 0..Ops-1 are covered
	Parts uint64 `cbor:"3,keyasint"`
	Sum   []byte `cbor:"4,keyasint"` // snapSum(V, Ops, parts)
}

// snapSum binds the header's fields and every part's bytes, so a torn,
// truncated or bit-flipped snapshot is detected before it is decoded.
func snapSum(v uint8, ops uint64, parts [][]byte) []byte {
	h := blake3.New(32, nil)
	var b [17]byte
	b[0] = v
	binary.BigEndian.PutUint64(b[1:], ops)
	binary.BigEndian.PutUint64(b[9:], uint64(len(parts)))
	_, _ = h.Write(b[:])
	for _, p := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		_, _ = h.Write(n[:])
		_, _ = h.Write(p)
	}
	return h.Sum(nil)
}

// Agents are named in parts by their index in a table (the Agents of
// every part, in part order); references that may be absent use index+1
// with 0 for "none". Dots and ranges are flattened into uint64 arrays.

// snapPart is one record of a snapshot; sections appear in the order
// restore needs them (agents, globals, authors, order, access, RGA,
// tasks), possibly spread over several parts.
type snapPart struct {
	Agents  [][]byte     `cbor:"1,keyasint,omitempty"`
	Globals *snapGlobals `cbor:"2,keyasint,omitempty"`
	Authors []snapAuthor `cbor:"3,keyasint,omitempty"`
	Order   []uint64     `cbor:"4,keyasint,omitempty"` // (agent, first seq, count) runs of the apply order
	Access  []snapAccess `cbor:"5,keyasint,omitempty"`
	RGA     []byte       `cbor:"6,keyasint,omitempty"` // packed operations (packRGAOp)
	RGACtx  []uint64     `cbor:"7,keyasint,omitempty"` // (agent, lo, hi) ranges
	Tasks   []snapTask   `cbor:"8,keyasint,omitempty"`
	Skips   []uint64     `cbor:"9,keyasint,omitempty"`  // (agent, lo, hi) ranges of skipped deltas
	CK      []uint64     `cbor:"10,keyasint,omitempty"` // (agent, seq) pairs: the checkpoint
	Moves   []uint64     `cbor:"11,keyasint,omitempty"` // (agent, seq) pairs: the move deltas, in apply order
}

type snapGlobals struct {
	_       struct{} `cbor:",toarray"`
	Name    snapLWW[string]
	Creator uint64 // agent+1
	RGAMax  uint64
}

// snapAuthor carries an author's delta timestamps From.. (12 bytes each:
// wall, logical), which also give its version vector entry, and the
// greatest RGA counter it used.
type snapAuthor struct {
	_       struct{} `cbor:",toarray"`
	A       uint64
	From    uint64
	Stamps  []byte
	RGALast uint64
}

type snapAccess struct {
	_       struct{} `cbor:",toarray"`
	Seq     uint64
	Open    bool
	Writers []uint64
}

type snapLWW[T any] struct {
	_ struct{} `cbor:",toarray"`
	V T
	R uint64 // agent+1; 0: unset
	W uint64
	L uint32
}

// snapTask is one task: its text fields, and everything else packed as
// unsigned varints (see packTask), which decodes several times faster
// than the same numbers as CBOR arrays of structs and bounds every count
// by the bytes left.
type snapTask struct {
	_     struct{} `cbor:",toarray"`
	ID    []byte
	Title string
	Desc  string
	N     []byte
}

// snapWriter packs sections into parts.
type snapWriter struct {
	idx   map[identity.AgentID]uint64
	parts [][]byte
	cur   snapPart
	elems int
	size  int
	err   error
}

// room closes the current part if adding elems array elements of about
// size bytes would overflow it.
func (w *snapWriter) room(elems, size int) {
	if elems > snapPartElems {
		w.fail(fmt.Errorf("%w: a record of %d elements", errSnapshot, elems))
		return
	}
	if w.elems+elems > snapPartElems || (w.elems > 0 && w.size+size > snapPartBytes) {
		w.flush()
	}
	w.elems += elems
	w.size += size
}

func (w *snapWriter) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *snapWriter) flush() {
	if w.elems == 0 && w.cur.Globals == nil {
		return
	}
	b, err := wire.Marshal(&w.cur)
	if err != nil {
		w.fail(err)
	}
	w.parts = append(w.parts, b)
	w.cur, w.elems, w.size = snapPart{}, 0, 0
}

func (w *snapWriter) ag(a identity.AgentID) uint64 {
	i, ok := w.idx[a]
	if !ok {
		w.fail(fmt.Errorf("%w: agent %s missing from the table", errSnapshot, a.Short()))
	}
	return i
}

// ag1 is ag(a)+1, or 0 for the zero AgentID.
func (w *snapWriter) ag1(a identity.AgentID) uint64 {
	if a.IsZero() {
		return 0
	}
	return w.ag(a) + 1
}

func (w *snapWriter) dot1(d crdt.Dot) (uint64, uint64) {
	if d.IsZero() {
		return 0, 0
	}
	return w.ag(d.Replica) + 1, d.Counter
}

func (w *snapWriter) ranges(s *crdt.DotSet) []uint64 {
	rs := s.Ranges()
	out := make([]uint64, 0, 3*len(rs))
	for _, r := range rs {
		out = append(out, w.ag(r.Replica), r.Lo, r.Hi)
	}
	return out
}

func lwwSnap[T comparable, W any](w *snapWriter, r crdt.LWWRegister[T], conv func(T) W) snapLWW[W] {
	if !r.IsSet() {
		return snapLWW[W]{}
	}
	ts := r.Timestamp()
	return snapLWW[W]{V: conv(r.Value()), R: w.ag(ts.Replica) + 1, W: ts.Wall, L: ts.Logical}
}

// packer appends unsigned varints.
type packer struct{ b []byte }

func (p *packer) u(vs ...uint64) {
	for _, v := range vs {
		p.b = binary.AppendUvarint(p.b, v)
	}
}

// lww packs a register's timestamp: agent+1 (0: unset), wall, logical.
func (p *packer) lww(w *snapWriter, ts crdt.Timestamp) {
	if ts.IsZero() {
		p.u(0, 0, 0)
		return
	}
	p.u(w.ag(ts.Replica)+1, ts.Wall, uint64(ts.Logical))
}

// packTask packs a task's numbers:
//
//	by seq wall logical insert-counter
//	title-ts desc-ts assignee-ts [assignee: 32 bytes if set] priority-ts priority
//	n-elements {kind agent+1 wall logical n-dots {agent counter}}
//	n-ranges {agent lo hi}
//	n-marks {done agent seq wall logical wins}
//	n-reopens {author seq n-deps {agent seq}}
//	n-front {agent seq}   (the causal frontier)
//	n-last {agent seq}    (each author's last delta)
//	title-seq desc-seq assignee-seq priority-seq   (won)
func (w *snapWriter) packTask(t *taskState) []byte {
	var p packer
	p.u(w.ag(t.createdBy), t.createdSeq, t.createdAt.Wall, uint64(t.createdAt.Logical), t.insert.Counter)
	p.lww(w, t.title.Timestamp())
	p.lww(w, t.desc.Timestamp())
	p.lww(w, t.assignee.Timestamp())
	if t.assignee.IsSet() {
		a := t.assignee.Value()
		p.b = append(p.b, a[:]...)
	}
	p.lww(w, t.priority.Timestamp())
	p.u(uint64(t.priority.Value()))
	es := t.check.Entries()
	slices.SortFunc(es, func(a, b crdt.ORSetEntry[checkElem]) int { return cmpElem(a.Value, b.Value) })
	p.u(uint64(len(es)))
	for _, e := range es {
		p.u(uint64(e.Value.Kind), w.ag1(identity.AgentID(e.Value.Agent)), e.Value.Wall, uint64(e.Value.Logical), uint64(len(e.Dots)))
		for _, d := range e.Dots {
			p.u(w.ag(d.Replica), d.Counter)
		}
	}
	ctx := t.check.Context()
	rs := w.ranges(&ctx)
	p.u(uint64(len(rs) / 3))
	p.u(rs...)
	p.u(uint64(len(t.marks)))
	for _, m := range t.marks {
		done := uint64(0)
		if m.done {
			done = 1
		}
		p.u(done, w.ag(m.agent), m.seq, m.ts.Wall, uint64(m.ts.Logical), m.wins)
	}
	p.u(uint64(len(t.reopens)))
	for _, r := range t.reopens {
		deps := r.deps.Replicas()
		p.u(w.ag(r.author), r.seq, uint64(len(deps)))
		for _, a := range deps {
			p.u(w.ag(a), r.deps.Get(a))
		}
	}
	by := slices.SortedFunc(maps.Keys(t.front), func(x, y identity.AgentID) int { return bytes.Compare(x[:], y[:]) })
	p.u(uint64(len(by)))
	for _, a := range by {
		p.u(w.ag(a), t.front[a])
	}
	by = slices.SortedFunc(maps.Keys(t.lastBy), func(x, y identity.AgentID) int { return bytes.Compare(x[:], y[:]) })
	p.u(uint64(len(by)))
	for _, a := range by {
		p.u(w.ag(a), t.lastBy[a])
	}
	p.u(t.won[:]...)
	return p.b
}

// unpacker reads what packer wrote; the first error sticks.
type unpacker struct {
	b   []byte
	err error
}

func (u *unpacker) u() uint64 {
	v, n := binary.Uvarint(u.b)
	if n <= 0 {
		if u.err == nil {
			u.err = snapErrf("packed record truncated")
		}
		u.b = nil
		return 0
	}
	u.b = u.b[n:]
	return v
}

// count reads a count of items of at least minBytes bytes each, refusing
// more than the bytes left could hold: allocations stay bounded by the
// input.
func (u *unpacker) count(minBytes int) int {
	n := u.u()
	if n > uint64(len(u.b)/minBytes) {
		if u.err == nil {
			u.err = snapErrf("count %d exceeds the record", n)
		}
		u.b = nil
		return 0
	}
	return int(n)
}

func (u *unpacker) raw(n int) []byte {
	if len(u.b) < n {
		if u.err == nil {
			u.err = snapErrf("packed record truncated")
		}
		u.b = nil
		return make([]byte, n)
	}
	out := u.b[:n]
	u.b = u.b[n:]
	return out
}

func (u *unpacker) u32() uint32 {
	v := u.u()
	if v > 1<<32-1 && u.err == nil {
		u.err = snapErrf("value %d out of range", v)
	}
	return uint32(v)
}

// ts reads a packed timestamp (agent+1, wall, logical); ok is false for
// an unset one, which must be all zero.
func (u *unpacker) ts(r *snapReader) (crdt.Timestamp, bool) {
	a1, wall, logical := u.u(), u.u(), u.u32()
	if a1 == 0 {
		if (wall != 0 || logical != 0) && u.err == nil {
			u.err = snapErrf("unset register with a time")
		}
		return crdt.Timestamp{}, false
	}
	a, err := r.ag(a1 - 1)
	if err != nil && u.err == nil {
		u.err = err
	}
	return crdt.Timestamp{Wall: wall, Logical: logical, Replica: a}, true
}

func (u *unpacker) agent(r *snapReader) identity.AgentID {
	a, err := r.ag(u.u())
	if err != nil && u.err == nil {
		u.err = err
	}
	return a
}

func same[T any](v T) T { return v }

// encodeSnapshot encodes the list's state as snapshot parts; l.mu held.
// Every map is walked in sorted order, so equal states encode alike.
func (l *List) encodeSnapshot() ([][]byte, error) {
	if l.rga.Pending() != 0 {
		// Unreachable: validateOrder admits only operations on known slots.
		return nil, fmt.Errorf("%w: RGA operations pending", errSnapshot)
	}
	// The agent table: every author, writer, and agent a CRDT names.
	set := map[identity.AgentID]struct{}{}
	for _, a := range l.vv.Replicas() {
		set[a] = struct{}{}
	}
	for _, a := range l.ck.Replicas() {
		set[a] = struct{}{}
	}
	for _, s := range l.access {
		for a := range s.writers {
			set[a] = struct{}{}
		}
	}
	if l.name.IsSet() {
		set[l.name.Timestamp().Replica] = struct{}{}
	}
	rgaState := l.rga.State()
	rgaOps := rgaState.Ops()
	for _, op := range rgaOps {
		set[op.ID.Replica] = struct{}{}
	}
	liveCtx := l.rga.Context()
	for _, r := range liveCtx.Ranges() {
		set[r.Replica] = struct{}{}
	}
	taskIDs := slices.SortedFunc(maps.Keys(l.tasks), func(a, b TaskID) int { return bytes.Compare(a[:], b[:]) })
	for _, id := range taskIDs {
		t := l.tasks[id]
		for _, r := range []crdt.Timestamp{t.title.Timestamp(), t.desc.Timestamp(), t.assignee.Timestamp(), t.priority.Timestamp()} {
			set[r.Replica] = struct{}{}
		}
		ctx := t.check.Context()
		for _, r := range ctx.Ranges() {
			set[r.Replica] = struct{}{}
		}
		for _, e := range t.check.Entries() {
			set[identity.AgentID(e.Value.Agent)] = struct{}{}
		}
	}
	delete(set, identity.AgentID{})
	agents := slices.SortedFunc(maps.Keys(set), func(a, b identity.AgentID) int { return bytes.Compare(a[:], b[:]) })
	w := &snapWriter{idx: make(map[identity.AgentID]uint64, len(agents))}
	for i, a := range agents {
		w.idx[a] = uint64(i)
		w.room(1, 40)
		w.cur.Agents = append(w.cur.Agents, a[:])
	}
	w.room(0, 64+len(l.name.Value()))
	w.cur.Globals = &snapGlobals{Name: lwwSnap(w, l.name, same[string]), Creator: w.ag1(l.creator), RGAMax: l.rgaMax}
	for _, a := range l.vv.Replicas() {
		g := l.logs[a]
		if g == nil {
			return nil, fmt.Errorf("%w: no log of %s", errSnapshot, a.Short())
		}
		for _, sg := range g.segs {
			for from := 0; from < len(sg.ts); from += 4096 {
				chunk := sg.ts[from:min(from+4096, len(sg.ts))]
				b := make([]byte, 0, 12*len(chunk))
				for _, ts := range chunk {
					b = binary.BigEndian.AppendUint64(b, ts.Wall)
					b = binary.BigEndian.AppendUint32(b, ts.Logical)
				}
				w.room(1, 64+len(b))
				w.cur.Authors = append(w.cur.Authors, snapAuthor{A: w.ag(a), From: sg.first + uint64(from), Stamps: b, RGALast: l.rgaLast[a]})
			}
		}
	}
	ps := l.persistedSkip()
	for _, a := range ps.authors() {
		for _, r := range ps.m[a] {
			w.room(3, 30)
			w.cur.Skips = append(w.cur.Skips, w.ag(a), r.lo, r.hi)
		}
	}
	for _, a := range l.ck.Replicas() {
		w.room(2, 20)
		w.cur.CK = append(w.cur.CK, w.ag(a), l.ck.Get(a))
	}
	for _, mv := range l.moves {
		w.room(2, 20)
		w.cur.Moves = append(w.cur.Moves, w.ag(mv.author), mv.seq)
	}
	for i := 0; i < len(l.order); {
		j := i + 1
		for j < len(l.order) && l.order[j].author == l.order[i].author && l.order[j].seq == l.order[j-1].seq+1 {
			j++
		}
		w.room(3, 30)
		w.cur.Order = append(w.cur.Order, w.ag(l.order[i].author), l.order[i].seq, uint64(j-i))
		i = j
	}
	for _, s := range l.access {
		ws := make([]uint64, 0, len(s.writers))
		for a := range s.writers {
			ws = append(ws, w.ag(a))
		}
		slices.Sort(ws)
		w.room(1+len(ws), 16+9*len(ws))
		w.cur.Access = append(w.cur.Access, snapAccess{Seq: s.seq, Open: s.open, Writers: ws})
	}
	for _, op := range rgaOps {
		var pk packer
		pk.u(uint64(op.Kind), w.ag(op.ID.Replica), op.ID.Counter)
		pk.u(w.dot1(op.Origin))
		pk.u(w.dot1(op.Target))
		if op.Kind == crdt.RGAInsert {
			pk.b = append(pk.b, op.Value[:]...)
		}
		w.room(0, len(pk.b))
		w.cur.RGA = append(w.cur.RGA, pk.b...)
	}
	rgaCtx := rgaState.Context()
	rctx := w.ranges(&rgaCtx)
	for i := 0; i < len(rctx); i += 3 {
		w.room(3, 30)
		w.cur.RGACtx = append(w.cur.RGACtx, rctx[i:i+3]...)
	}
	for _, id := range taskIDs {
		t := l.tasks[id]
		if t.insert.Replica != t.createdBy {
			return nil, fmt.Errorf("%w: task %s inserted by another agent", errSnapshot, id.Short())
		}
		st := snapTask{ID: slices.Clone(id[:]), Title: t.title.Value(), Desc: t.desc.Value(), N: w.packTask(t)}
		w.room(1, 64+len(st.Title)+len(st.Desc)+len(st.N))
		w.cur.Tasks = append(w.cur.Tasks, st)
	}
	w.flush()
	if w.err != nil {
		return nil, w.err
	}
	return w.parts, nil
}

func cmpElem(a, b checkElem) int {
	if c := int(a.Kind) - int(b.Kind); c != 0 {
		return c
	}
	if c := bytes.Compare(a.Agent[:], b.Agent[:]); c != 0 {
		return c
	}
	return a.ts().Compare(b.ts())
}

// snapReader resolves the references of the parts being restored.
type snapReader struct {
	agents []identity.AgentID
}

func snapErrf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errSnapshot, fmt.Sprintf(format, args...))
}

func (r *snapReader) ag(i uint64) (identity.AgentID, error) {
	if i >= uint64(len(r.agents)) {
		return identity.AgentID{}, snapErrf("agent index %d of %d", i, len(r.agents))
	}
	return r.agents[i], nil
}

func (r *snapReader) ag1(i uint64) (identity.AgentID, error) {
	if i == 0 {
		return identity.AgentID{}, nil
	}
	return r.ag(i - 1)
}

func (r *snapReader) dot1(i, c uint64) (crdt.Dot, error) {
	if i == 0 {
		if c != 0 {
			return crdt.Dot{}, snapErrf("head reference with counter %d", c)
		}
		return crdt.Dot{}, nil
	}
	a, err := r.ag(i - 1)
	return crdt.Dot{Replica: a, Counter: c}, err
}

func (r *snapReader) ranges(flat []uint64, into *crdt.DotSet) error {
	if len(flat)%3 != 0 {
		return snapErrf("range list of %d numbers", len(flat))
	}
	for i := 0; i < len(flat); i += 3 {
		a, err := r.ag(flat[i])
		if err != nil {
			return err
		}
		if err := into.AddRange(a, flat[i+1], flat[i+2]); err != nil {
			return fmt.Errorf("%w: %w", errSnapshot, err)
		}
	}
	return nil
}

func lwwRestore[W, T comparable](r *snapReader, s snapLWW[W], conv func(W) (T, error)) (crdt.LWWRegister[T], error) {
	var zero W
	if s.R == 0 {
		if s.V != zero || s.W != 0 || s.L != 0 {
			return crdt.LWWRegister[T]{}, snapErrf("unset register with a value")
		}
		return crdt.LWWRegister[T]{}, nil
	}
	a, err := r.ag(s.R - 1)
	if err != nil {
		return crdt.LWWRegister[T]{}, err
	}
	v, err := conv(s.V)
	if err != nil {
		return crdt.LWWRegister[T]{}, err
	}
	return crdt.NewLWWRegister(v, crdt.Timestamp{Wall: s.W, Logical: s.L, Replica: a}), nil
}

func ident[T any](v T) (T, error) { return v, nil }

func agentOf(b []byte) (identity.AgentID, error) {
	if len(b) != identity.IDSize {
		return identity.AgentID{}, snapErrf("agent of %d bytes", len(b))
	}
	return identity.AgentID(b), nil
}

// restoreSnapshot rebuilds the list's state from a snapshot's parts
// covering ops deltas, with the authors' stored keys; l.mu held (or Open
// before it returns), state fresh. On error the state is partly built:
// the caller resets it.
func (l *List) restoreSnapshot(ops uint64, parts [][]byte, keys map[identity.AgentID][]byte) error {
	r := &snapReader{}
	var globals *snapGlobals
	var rgaOps []crdt.RGAOp[TaskID]
	var rgaCtx crdt.DotSet
	// Decoding and building tasks dominate; both run on every core.
	decoded := make([]snapPart, len(parts))
	if err := parallel(len(parts), func(i int) error {
		if err := wire.UnmarshalLimit(parts[i], &decoded[i], "tasklist snapshot part", wire.LimitMedium); err != nil {
			return fmt.Errorf("%w: part %d: %w", errSnapshot, i, err)
		}
		return nil
	}); err != nil {
		return err
	}
	l.order = make([]authorSeq, 0, ops)
	seen := make(map[authorSeq]bool, ops)
	for i := range decoded {
		p := &decoded[i]
		for _, b := range p.Agents {
			a, err := agentOf(b)
			if err != nil {
				return err
			}
			if n := len(r.agents); n > 0 && bytes.Compare(r.agents[n-1][:], a[:]) >= 0 {
				return snapErrf("agent table not ascending")
			}
			r.agents = append(r.agents, a)
		}
		if p.Globals != nil {
			if globals != nil {
				return snapErrf("two globals records")
			}
			globals = p.Globals
		}
		for _, sa := range p.Authors {
			a, err := r.ag(sa.A)
			if err != nil {
				return err
			}
			g := l.logOf(a)
			if sa.From == 0 || sa.From <= g.last() || sa.From > crdt.MaxCounter || len(sa.Stamps)%12 != 0 || len(sa.Stamps) == 0 {
				return snapErrf("stamps of %s from %d out of line", a.Short(), sa.From)
			}
			seq := sa.From
			for b := sa.Stamps; len(b) > 0; b = b[12:] {
				g.put(seq, crdt.Timestamp{Wall: binary.BigEndian.Uint64(b), Logical: binary.BigEndian.Uint32(b[8:]), Replica: a}, nil)
				seq++
			}
			l.rgaLast[a] = max(l.rgaLast[a], sa.RGALast)
		}
		if len(p.Skips)%3 != 0 || len(p.CK)%2 != 0 || len(p.Moves)%2 != 0 {
			return snapErrf("skip, checkpoint or move list of odd length")
		}
		for j := 0; j < len(p.Skips); j += 3 {
			a, err := r.ag(p.Skips[j])
			if err != nil {
				return err
			}
			lo, hi := p.Skips[j+1], p.Skips[j+2]
			rs := l.skip.m[a]
			if lo == 0 || hi < lo || hi > crdt.MaxCounter || (len(rs) > 0 && rs[len(rs)-1].hi+1 >= lo) {
				return snapErrf("skip range %d..%d of %s out of line", lo, hi, a.Short())
			}
			l.skip.add(a, lo, hi)
		}
		for j := 0; j < len(p.CK); j += 2 {
			a, err := r.ag(p.CK[j])
			if err != nil {
				return err
			}
			if p.CK[j+1] == 0 || p.CK[j+1] > crdt.MaxCounter || l.ck.Get(a) != 0 {
				return snapErrf("checkpoint entry of %s", a.Short())
			}
			l.ck.Set(a, p.CK[j+1])
		}
		for j := 0; j < len(p.Moves); j += 2 {
			a, err := r.ag(p.Moves[j])
			if err != nil {
				return err
			}
			if _, ok := l.logs[a].stamp(p.Moves[j+1]); !ok {
				return snapErrf("move of %s seq %d not applied", a.Short(), p.Moves[j+1])
			}
			l.moves = append(l.moves, authorSeq{a, p.Moves[j+1]})
		}
		if len(p.Order)%3 != 0 {
			return snapErrf("order of %d numbers", len(p.Order))
		}
		for j := 0; j < len(p.Order); j += 3 {
			a, err := r.ag(p.Order[j])
			if err != nil {
				return err
			}
			first, n := p.Order[j+1], p.Order[j+2]
			if n == 0 || first == 0 || first > crdt.MaxCounter || n > crdt.MaxCounter-first {
				return snapErrf("order run of %s seq %d+%d out of line", a.Short(), first, n)
			}
			for s := first; s < first+n; s++ {
				as := authorSeq{a, s}
				if _, ok := l.logs[a].stamp(s); !ok || seen[as] {
					return snapErrf("order names %s seq %d twice or unapplied", a.Short(), s)
				}
				seen[as] = true
				l.order = append(l.order, as)
			}
		}
		for _, sa := range p.Access {
			if n := len(l.access); n > 0 && l.access[n-1].seq >= sa.Seq {
				return snapErrf("access records not ascending")
			}
			ws := make(map[identity.AgentID]bool, len(sa.Writers))
			for _, x := range sa.Writers {
				a, err := r.ag(x)
				if err != nil {
					return err
				}
				ws[a] = true
			}
			l.access = append(l.access, writersSnap{seq: sa.Seq, writers: ws, open: sa.Open})
		}
		for u := (&unpacker{b: p.RGA}); len(u.b) > 0; {
			op := crdt.RGAOp[TaskID]{Kind: crdt.RGAOpKind(u.u())}
			op.ID = crdt.Dot{Replica: u.agent(r), Counter: u.u()}
			var err error
			if op.Origin, err = r.dot1(u.u(), u.u()); err != nil {
				return err
			}
			if op.Target, err = r.dot1(u.u(), u.u()); err != nil {
				return err
			}
			if op.Kind == crdt.RGAInsert {
				op.Value = TaskID(u.raw(len(TaskID{})))
			}
			if u.err != nil {
				return u.err
			}
			rgaOps = append(rgaOps, op)
		}
		if err := r.ranges(p.RGACtx, &rgaCtx); err != nil {
			return err
		}
	}
	if globals == nil {
		return snapErrf("no globals record")
	}
	if uint64(len(l.order)) > ops {
		return snapErrf("order covers %d deltas, header %d records", len(l.order), ops)
	}
	l.logLen = ops
	for a, g := range l.logs {
		// Every number up to the author's last applied delta is applied
		// or skipped, not both.
		last, skipped := g.last(), uint64(0)
		for _, rg := range l.skip.m[a] {
			i, ok := g.locate(rg.lo)
			if ok || (i < len(g.segs) && g.segs[i].first <= rg.hi) {
				return snapErrf("skip range %d..%d of %s overlaps its log", rg.lo, rg.hi, a.Short())
			}
			skipped += rg.hi - rg.lo + 1
			last = max(last, rg.hi)
		}
		if g.count()+skipped != last {
			return snapErrf("%s has %d deltas and %d skipped of %d", a.Short(), g.count(), skipped, last)
		}
		l.vv.Set(a, last)
		// Unverified (local) keys are checked against the author, so a
		// damaged key record cannot let another key sign as it.
		pk, err := identity.ParsePublicKey(keys[a])
		if err != nil || pk.ID() != a {
			return snapErrf("no valid stored key for %s", a.Short())
		}
		l.keys[a] = pk
		for _, sg := range g.segs {
			for _, ts := range sg.ts {
				_ = l.hlc.Update(ts) // as replay does: the clock follows what is within the drift
			}
		}
	}
	for a := range l.skip.m {
		if l.logs[a] == nil {
			return snapErrf("skip ranges of %s without deltas", a.Short())
		}
	}
	var err error
	if l.name, err = lwwRestore(r, globals.Name, ident[string]); err != nil {
		return err
	}
	if l.creator, err = r.ag1(globals.Creator); err != nil {
		return err
	}
	if (l.creator.IsZero() != (len(l.access) == 0)) || (len(l.access) > 0 && l.access[0].seq != 1) {
		return snapErrf("creator and access records disagree")
	}
	l.rgaMax = globals.RGAMax
	d, err := crdt.NewRGADeltaOf(rgaOps, rgaCtx)
	if err != nil {
		return fmt.Errorf("%w: %w", errSnapshot, err)
	}
	// The sequence is rebuilt while the tasks are (it touches only l.rga).
	merged := make(chan error, 1)
	go func() {
		err := l.rga.Merge(d)
		if err == nil && l.rga.Pending() != 0 {
			err = fmt.Errorf("%d operations pending", l.rga.Pending())
		}
		merged <- err
	}()
	err = l.restoreTasks(r, rgaOps, decoded)
	if merr := <-merged; merr != nil {
		return snapErrf("order does not rebuild: %v", merr)
	}
	if err != nil {
		return err
	}
	n := uint64(len(l.order))
	l.stats.Replayed, l.stats.FromSnapshot = n, n
	return nil
}

// restoreTasks rebuilds the slots and the tasks; l.rga is not touched.
func (l *List) restoreTasks(r *snapReader, rgaOps []crdt.RGAOp[TaskID], decoded []snapPart) error {
	insertOf := make(map[crdt.Dot]TaskID, len(rgaOps))
	for _, op := range rgaOps {
		if op.Kind == crdt.RGAInsert {
			insertOf[op.ID] = op.Value
			l.slots[op.ID] = op.Value
		}
	}
	for _, op := range rgaOps {
		if op.Kind == crdt.RGAMove {
			id, ok := insertOf[op.Target]
			if !ok {
				return snapErrf("move %v of a non-insert", op.ID)
			}
			l.slots[op.ID] = id
		}
	}
	built := make([][]*taskState, len(decoded))
	if err := parallel(len(decoded), func(i int) error {
		ts := decoded[i].Tasks
		built[i] = make([]*taskState, len(ts))
		for j := range ts {
			t, err := l.buildTask(r, &ts[j])
			if err != nil {
				return err
			}
			built[i][j] = t
		}
		return nil
	}); err != nil {
		return err
	}
	for _, ts := range built {
		for _, t := range ts {
			if l.tasks[t.id] != nil {
				return snapErrf("task %s twice", t.id.Short())
			}
			l.tasks[t.id] = t
		}
	}
	if len(insertOf) != len(l.tasks) {
		return snapErrf("%d inserts for %d tasks", len(insertOf), len(l.tasks))
	}
	return nil
}

// buildTask rebuilds one task; it only reads the list (l.slots, l.selfID),
// so tasks are built concurrently.
func (l *List) buildTask(r *snapReader, st *snapTask) (*taskState, error) {
	if len(st.ID) != len(TaskID{}) {
		return nil, snapErrf("task ID of %d bytes", len(st.ID))
	}
	u := &unpacker{b: st.N}
	t := &taskState{id: TaskID(st.ID)}
	t.createdBy = u.agent(r)
	t.createdSeq = u.u()
	t.createdAt = crdt.Timestamp{Wall: u.u(), Logical: u.u32(), Replica: t.createdBy}
	t.insert = crdt.Dot{Replica: t.createdBy, Counter: u.u()}
	if ts, ok := u.ts(r); ok {
		t.title = crdt.NewLWWRegister(st.Title, ts)
	} else if st.Title != "" {
		return nil, snapErrf("unset title with a value")
	}
	if ts, ok := u.ts(r); ok {
		t.desc = crdt.NewLWWRegister(st.Desc, ts)
	} else if st.Desc != "" {
		return nil, snapErrf("unset description with a value")
	}
	if ts, ok := u.ts(r); ok {
		t.assignee = crdt.NewLWWRegister(identity.AgentID(u.raw(identity.IDSize)), ts)
	}
	if ts, ok := u.ts(r); ok {
		p := u.u()
		if p > 255 {
			return nil, snapErrf("priority %d", p)
		}
		t.priority = crdt.NewLWWRegister(uint8(p), ts)
	} else if u.u() != 0 {
		return nil, snapErrf("unset priority with a value")
	}
	es := make([]crdt.ORSetEntry[checkElem], u.count(6))
	for i := range es {
		kind := u.u()
		var a identity.AgentID
		if a1 := u.u(); a1 != 0 {
			var err error
			if a, err = r.ag(a1 - 1); err != nil {
				return nil, err
			}
		}
		if kind > 255 {
			return nil, snapErrf("element kind %d", kind)
		}
		es[i].Value = checkElem{Kind: uint8(kind), Agent: agentBytes(a), Wall: u.u(), Logical: u.u32()}
		es[i].Dots = make([]crdt.Dot, u.count(2))
		for j := range es[i].Dots {
			es[i].Dots[j] = crdt.Dot{Replica: u.agent(r), Counter: u.u()}
		}
	}
	var ctx crdt.DotSet
	for range u.count(3) {
		a, lo, hi := u.agent(r), u.u(), u.u()
		if err := ctx.AddRange(a, lo, hi); err != nil {
			return nil, fmt.Errorf("%w: %w", errSnapshot, err)
		}
	}
	t.marks = make([]mark, u.count(6))
	for i := range t.marks {
		done := u.u()
		m := mark{done: done == 1, agent: u.agent(r), seq: u.u()}
		m.ts = crdt.Timestamp{Wall: u.u(), Logical: u.u32(), Replica: m.agent}
		m.wins = u.u()
		if done > 1 {
			return nil, snapErrf("bad mark")
		}
		t.marks[i] = m
	}
	t.reopens = make([]reopenRec, u.count(3))
	for i := range t.reopens {
		rec := reopenRec{author: u.agent(r), seq: u.u()}
		for range u.count(2) {
			a, seq := u.agent(r), u.u()
			if seq == 0 || seq > crdt.MaxCounter {
				return nil, snapErrf("dependency seq %d", seq)
			}
			rec.deps.Set(a, seq)
		}
		t.reopens[i] = rec
	}
	n := u.count(2)
	t.front = make(map[identity.AgentID]uint64, n)
	for range n {
		a, seq := u.agent(r), u.u()
		if seq == 0 || seq > crdt.MaxCounter {
			return nil, snapErrf("frontier seq %d", seq)
		}
		t.front[a] = seq
	}
	n = u.count(2)
	t.lastBy = make(map[identity.AgentID]uint64, n)
	for range n {
		a, seq := u.agent(r), u.u()
		if seq == 0 || seq > crdt.MaxCounter {
			return nil, snapErrf("last delta seq %d", seq)
		}
		t.lastBy[a] = seq
	}
	for i := range t.won {
		t.won[i] = u.u()
	}
	if u.err != nil {
		return nil, u.err
	}
	if len(u.b) != 0 {
		return nil, snapErrf("task %s: %d trailing bytes", t.id.Short(), len(u.b))
	}
	if l.slots[t.insert] != t.id {
		return nil, snapErrf("task %s has no insert slot", t.id.Short())
	}
	var err error
	if t.check, err = crdt.RestoreORSet(l.selfID, es, ctx); err != nil {
		return nil, fmt.Errorf("%w: task %s: %w", errSnapshot, t.id.Short(), err)
	}
	return t, nil
}

// snapshot writes a snapshot of the list if the log has grown since the
// last one and memory matches the log (nothing unsaved, no failed
// write); l.mu held. Failures are logged and counted: the log stays
// authoritative, so a missing snapshot only makes the next Open slower.
func (l *List) snapshot() {
	n := l.logLen
	if l.store == nil || l.store.noSnapshots || l.failed != nil || len(l.unsaved) > 0 || l.nameDirty || n <= l.snapOps {
		return
	}
	l.snapTried = n
	parts, err := l.encodeSnapshot()
	if err == nil {
		err = l.store.saveSnapshot(l.id, n, parts)
	}
	if err != nil {
		l.stats.SnapshotErrors++
		if !errors.Is(err, ErrClosed) {
			l.log.Warn("tasklist: writing snapshot failed", "list", l.id.String()[:8], "err", err)
		}
		return
	}
	l.snapOps = n
}

// maybeSnapshot writes a snapshot once max(snapEvery, covered/4) deltas
// have been logged since the last one (or since a failed attempt, so that
// a list whose state cannot be snapshotted does not retry on every
// write); l.mu held, after a successful write to the store.
func (l *List) maybeSnapshot() {
	since := max(l.snapOps, l.snapTried)
	if l.logLen-since >= max(uint64(l.snapEvery), l.snapOps/4) {
		l.snapshot()
	}
}

// withDeltas runs fn with a function returning applied signed deltas:
// from memory, or from the store for those a snapshot restore left there
// (in one read transaction for the whole of fn). The bytes are valid only
// until fn returns; l.mu held.
func (l *List) withDeltas(fn func(get func(authorSeq) ([]byte, error)) error) error {
	mem := func(as authorSeq) []byte {
		raw, _ := l.logs[as.author].rawAt(as.seq)
		return raw
	}
	if l.snapOps == 0 || l.store == nil {
		return fn(func(as authorSeq) ([]byte, error) { return mem(as), nil })
	}
	return l.store.readDeltas(l.id, func(disk func([]byte) []byte) error {
		return fn(func(as authorSeq) ([]byte, error) {
			if raw := mem(as); raw != nil {
				return raw, nil
			}
			if raw := disk(deltaKey(as.author, as.seq)); raw != nil {
				return raw, nil
			}
			return nil, fmt.Errorf("%w: list %s: delta %s seq %d missing", ErrStoreCorrupt, l.id, as.author.Short(), as.seq)
		})
	})
}

// parallel runs f(0..n-1) on up to GOMAXPROCS goroutines and returns the
// first error.
func parallel(n int, f func(i int) error) error {
	workers := min(n, runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := range n {
			if err := f(i); err != nil {
				return err
			}
		}
		return nil
	}
	var next atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || errs[w] != nil {
					return
				}
				errs[w] = f(i)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
