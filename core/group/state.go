package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/mls"
	"lukechampine.com/blake3"
)

// A replica's state, for storage (Snapshot, Restore):
//
//	state  = "x0xG" version:u8 (1) seq:u64 ever:ids cur:blob n:u8 forkpoint{n} check[32]
//	ids    = count:u32 id[32]{count}
//	blob   = len:u32 bytes[len]        (an mls state, MarshalState)
//	forkpoint = epoch:u64 hash[32] at:i64 (Unix ns) mine:u8 [add:ids remove:ids update:u8] before:blob
//
// check is BLAKE3 of everything before it: it catches accidental damage
// only. The state holds every secret of the group in the clear: the
// caller seals it.

const (
	stateMagic   = "x0xG"
	stateVersion = 1
)

// ErrBadState: a stored replica state is damaged or of another format.
var ErrBadState = errors.New("group: stored state is damaged or of an unknown format")

// Snapshot returns the replica's state for storage: the MLS state, the
// fork points (so that a restart inside the fork window can still switch
// to a winning commit), the sequence number and the past members. Only
// the last snapshot may be restored, and only once (two copies that both
// send would reuse message keys). Errors: ErrClosed, mls errors.
func (g *Group) Snapshot() ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, ErrClosed
	}
	return g.snapshotLocked()
}

func (g *Group) snapshotLocked() ([]byte, error) {
	cur, err := g.cur.MarshalState()
	if err != nil {
		return nil, err
	}
	b := append([]byte(stateMagic), stateVersion)
	b = binary.BigEndian.AppendUint64(b, g.seq)
	ever := make([]identity.AgentID, 0, len(g.ever))
	for m := range g.ever {
		ever = append(ever, m)
	}
	b = appendIDs(b, ever)
	b = appendBlob(b, cur)
	b = append(b, byte(len(g.history)))
	for _, fp := range g.history {
		before, err := fp.before.MarshalState()
		if err != nil {
			return nil, err
		}
		b = binary.BigEndian.AppendUint64(b, fp.epoch)
		b = append(b, fp.hash[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(fp.at.UnixNano()))
		if fp.mine == nil {
			b = append(b, 0)
		} else {
			b = append(b, 1)
			b = appendIDs(b, fp.mine.add)
			b = appendIDs(b, fp.mine.remove)
			u := byte(0)
			if fp.mine.update {
				u = 1
			}
			b = append(b, u)
		}
		b = appendBlob(b, before)
	}
	sum := blake3.Sum256(b)
	return append(b, sum[:]...), nil
}

func appendIDs(b []byte, ids []identity.AgentID) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(ids)))
	for _, id := range ids {
		b = append(b, id[:]...)
	}
	return b
}

func appendBlob(b, blob []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(blob)))
	return append(b, blob...)
}

// stateReader reads a state, every length checked against what is left.
type stateReader struct {
	b   []byte
	err error
}

func (r *stateReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("%w: truncated", ErrBadState)
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *stateReader) u8() byte {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *stateReader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *stateReader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *stateReader) ids() []identity.AgentID {
	n := r.u32()
	if r.err == nil && uint64(n)*identity.IDSize > uint64(len(r.b)) {
		r.err = fmt.Errorf("%w: %d IDs in %d bytes", ErrBadState, n, len(r.b))
		return nil
	}
	out := make([]identity.AgentID, 0, n)
	for range n {
		if b := r.take(identity.IDSize); b != nil {
			out = append(out, identity.AgentID(b))
		}
	}
	return out
}

func (r *stateReader) blob() []byte { return r.take(int(r.u32())) }

// Restore builds a replica from a Snapshot; call Resume to start it. If the snapshot may be older
// than what the replica sent before it stopped (it was not taken at a
// clean close), pass mustUpdate: the replica then commits a key update
// before it sends anything, unless another member's commit moves it to a
// new epoch first, so that it never reuses a message key. Errors:
// ErrBadState (also for a state of another agent), a Config error.
func Restore(state []byte, cfg Config, mustUpdate bool) (*Group, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if len(state) < len(stateMagic)+1+32 {
		return nil, fmt.Errorf("%w: truncated", ErrBadState)
	}
	body := state[:len(state)-32]
	if sum := blake3.Sum256(body); string(sum[:]) != string(state[len(body):]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrBadState)
	}
	r := &stateReader{b: body}
	if string(r.take(len(stateMagic))) != stateMagic || r.u8() != stateVersion {
		return nil, fmt.Errorf("%w: not a group state", ErrBadState)
	}
	seq := r.u64()
	ever := r.ids()
	curState := r.blob()
	n := int(r.u8())
	type fpRaw struct {
		fp     forkPoint
		before []byte
	}
	raws := make([]fpRaw, 0, n)
	for range n {
		var x fpRaw
		x.fp.epoch = r.u64()
		copy(x.fp.hash[:], r.take(32))
		x.fp.at = time.Unix(0, int64(r.u64()))
		switch r.u8() {
		case 0:
		case 1:
			x.fp.mine = &intent{add: r.ids(), remove: r.ids(), update: r.u8() == 1}
		default:
			r.err = fmt.Errorf("%w: bad fork point", ErrBadState)
		}
		x.before = r.blob()
		raws = append(raws, x)
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", ErrBadState, len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	mcfg := mlsConfig(&cfg)
	sig := cfg.Self.PrivateBytes()
	cur, err := mls.UnmarshalState(curState, sig, mcfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	if len(cur.GroupID()) != len(ID{}) {
		cur.Close()
		return nil, fmt.Errorf("%w: group ID of %d bytes", ErrBadState, len(cur.GroupID()))
	}
	var history []*forkPoint
	fail := func(err error) (*Group, error) {
		cur.Close()
		for _, fp := range history {
			fp.before.Close()
		}
		return nil, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	for _, x := range raws {
		before, err := mls.UnmarshalState(x.before, sig, mcfg)
		if err != nil {
			return fail(err)
		}
		fp := x.fp
		fp.before = before
		history = append(history, &fp)
		if before.Epoch() != fp.epoch || fp.epoch >= cur.Epoch() {
			return fail(fmt.Errorf("fork point of epoch %d (state %d, current %d)", fp.epoch, before.Epoch(), cur.Epoch()))
		}
	}
	cfg.PastMembers = append(cfg.PastMembers, ever...)
	g := newReplica(ID(cur.GroupID()), cfg, cur)
	g.mu.Lock()
	g.seq = max(g.seq, seq)
	if mustUpdate {
		// The member may have sent up to this many messages after the
		// snapshot: jump past them so that receivers do not take new
		// messages for copies.
		g.seq = max(g.seq, seq+1<<32)
	}
	g.history = history
	g.mustUpdate, g.restored = mustUpdate, mustUpdate
	g.trimLocked()
	g.mu.Unlock()
	return g, nil
}

// Resume starts a restored replica's timers (presence beacons), announcing
// it at once unless it must commit a key update first. Call it once the
// caller has recorded that the stored state may now predate what the
// replica sends; nothing is sent before.
func (g *Group) Resume() {
	g.mu.Lock()
	must := g.mustUpdate
	closed := g.closed
	g.mu.Unlock()
	if !closed {
		g.startTimers(!must)
	}
}

// CloseWithSnapshot takes the replica's Snapshot and closes it in one step,
// so that nothing is sent after the snapshot: a state saved this way is
// exact. Errors: ErrClosed, mls errors (the replica is closed anyway).
func (g *Group) CloseWithSnapshot() ([]byte, error) {
	g.mu.Lock()
	defer g.unlock()
	if g.closed {
		return nil, ErrClosed
	}
	snap, err := g.snapshotLocked()
	g.closeLocked()
	return snap, err
}
