package tasklist

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"github.com/saorsa-labs/x0x-go/core/crdt"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// Wire-format limits.
const (
	// MaxDeltaSize is the largest signed delta accepted.
	MaxDeltaSize = 256 << 10
	// MaxFrameSize is the largest frame (broadcast or direct) accepted.
	MaxFrameSize = 4 << 20
	// SyncChunkSize bounds the deltas packed into one catch-up frame.
	SyncChunkSize = 1 << 20
	// deltaVersion is the version of the delta format. Version 2 added the
	// creation nonce, writers and the receipt rules; version-1 deltas (and
	// stores holding them) are refused as malformed, naming the version.
	deltaVersion = 2
)

// Check-set element kinds (checkElem.Kind).
const (
	elemAlive   = 1 // the task exists (add-wins existence)
	elemClaimed = 2 // Agent claimed the task at (Wall, Logical)
	elemDone    = 3 // Agent completed the task at (Wall, Logical)
)

// agentBytes is an AgentID that decodes strictly from a 32-byte byte string.
type agentBytes [32]byte

// MarshalCBOR encodes a as a byte string.
func (a agentBytes) MarshalCBOR() ([]byte, error) { return wire.Marshal(a[:]) }

// UnmarshalCBOR decodes exactly 32 bytes.
func (a *agentBytes) UnmarshalCBOR(data []byte) error {
	return unmarshalID32(data, (*[32]byte)(a), "agent id")
}

// checkElem is an element of a task's check set, an add-wins OR-Set that
// holds the task's existence (elemAlive) and its claims and completions.
// Claims and completions carry the agent and the HLC time of the delta
// that made them (which must be the agent's own delta).
type checkElem struct {
	_       struct{} `cbor:",toarray"`
	Kind    uint8
	Agent   agentBytes
	Wall    uint64
	Logical uint32
}

func (e checkElem) ts() crdt.Timestamp {
	return crdt.Timestamp{Wall: e.Wall, Logical: e.Logical, Replica: identity.AgentID(e.Agent)}
}

var aliveElem = checkElem{Kind: elemAlive}

// signedWire is the signed envelope: the body bytes and the author's
// ML-DSA-65 signature over them (context per operation kind).
type signedWire struct {
	_    struct{} `cbor:",toarray"`
	Body []byte
	Sig  []byte
}

// bodyWire is the signed content of a delta. Presence of the optional
// fields depends on Kind (checked by decodeDelta).
type bodyWire struct {
	V        uint8              `cbor:"1,keyasint"`
	List     ListID             `cbor:"2,keyasint"`
	Author   []byte             `cbor:"3,keyasint"`
	Seq      uint64             `cbor:"4,keyasint"`
	Deps     crdt.VersionVector `cbor:"5,keyasint"`
	Wall     uint64             `cbor:"6,keyasint"`
	Logical  uint32             `cbor:"7,keyasint"`
	Kind     uint8              `cbor:"8,keyasint"`
	PubKey   []byte             `cbor:"9,keyasint,omitempty"`
	Task     *TaskID            `cbor:"10,keyasint,omitempty"`
	Name     *string            `cbor:"11,keyasint,omitempty"`
	Title    *string            `cbor:"12,keyasint,omitempty"`
	Desc     *string            `cbor:"13,keyasint,omitempty"`
	Assignee []byte             `cbor:"14,keyasint,omitempty"`
	Priority *uint8             `cbor:"15,keyasint,omitempty"`
	Agent    []byte             `cbor:"16,keyasint,omitempty"`
	Order    cbor.RawMessage    `cbor:"17,keyasint,omitempty"`
	Check    cbor.RawMessage    `cbor:"18,keyasint,omitempty"`
	Nonce    []byte             `cbor:"19,keyasint,omitempty"` // INIT: the nonce of NewListID
	Open     *bool              `cbor:"20,keyasint,omitempty"` // INIT, WRITERS: every agent may write
	Grant    *bool              `cbor:"21,keyasint,omitempty"` // WRITERS: grant (true) or revoke Agent's access
}

// delta is a decoded, structurally checked (not yet verified) delta.
type delta struct {
	raw    []byte // the signed encoding, as stored and forwarded
	body   []byte
	sig    []byte
	list   ListID
	author identity.AgentID
	seq    uint64
	deps   crdt.VersionVector
	ts     crdt.Timestamp
	kind   OpKind
	pub    []byte
	task   TaskID
	name   *string
	title  *string
	desc   *string
	assign *identity.AgentID
	prio   *uint8
	agent  *identity.AgentID
	order  *crdt.RGADelta[TaskID]
	check  *crdt.ORSetDelta[checkElem]
	nonce  []byte
	open   *bool
	grant  *bool

	verified  bool   // signature checked (set while held in the pending buffer)
	fromState bool   // received in a compacted answer (statesync.go)
	wins      uint64 // a completion: the seq of its author's winning claim (set by validate)
}

type authorSeq struct {
	author identity.AgentID
	seq    uint64
}

func (d *delta) key() authorSeq { return authorSeq{d.author, d.seq} }

func malformedf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// decodeDelta decodes a signed delta and checks its structure: field
// presence per kind, sizes, limits. It does not verify the signature.
// Errors wrap ErrMalformed.
func decodeDelta(raw []byte) (*delta, error) {
	if len(raw) > MaxDeltaSize {
		return nil, malformedf("delta is %d bytes, limit %d", len(raw), MaxDeltaSize)
	}
	var sw signedWire
	if err := wire.Unmarshal(raw, &sw, "signed delta"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(sw.Sig) != identity.SignatureSize {
		return nil, malformedf("signature is %d bytes, want %d", len(sw.Sig), identity.SignatureSize)
	}
	var b bodyWire
	if err := wire.Unmarshal(sw.Body, &b, "delta body"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if b.V != deltaVersion {
		return nil, malformedf("delta version %d, want %d", b.V, deltaVersion)
	}
	if len(b.Author) != identity.IDSize {
		return nil, malformedf("author is %d bytes, want %d", len(b.Author), identity.IDSize)
	}
	d := &delta{raw: raw, body: sw.Body, sig: sw.Sig, list: b.List, author: identity.AgentID(b.Author),
		seq: b.Seq, deps: b.Deps, kind: OpKind(b.Kind), pub: b.PubKey,
		name: b.Name, title: b.Title, desc: b.Desc, prio: b.Priority, nonce: b.Nonce, open: b.Open, grant: b.Grant}
	d.ts = crdt.Timestamp{Wall: b.Wall, Logical: b.Logical, Replica: d.author}
	if d.seq < 1 || d.seq > crdt.MaxCounter {
		return nil, malformedf("seq %d outside [1, 2^53-1]", d.seq)
	}
	if d.deps.Get(d.author) != d.seq-1 {
		return nil, malformedf("deps name author seq %d, want %d", d.deps.Get(d.author), d.seq-1)
	}
	if !d.kind.valid() {
		return nil, malformedf("unknown operation kind %d", b.Kind)
	}
	if (d.seq == 1) != (len(d.pub) > 0) {
		return nil, malformedf("public key must travel in (only) the author's first delta")
	}
	if len(d.pub) > 0 && len(d.pub) != identity.PublicKeySize {
		return nil, malformedf("public key is %d bytes, want %d", len(d.pub), identity.PublicKeySize)
	}
	if b.Task != nil {
		d.task = *b.Task
	}
	if b.Assignee != nil {
		if len(b.Assignee) != identity.IDSize {
			return nil, malformedf("assignee is %d bytes, want %d", len(b.Assignee), identity.IDSize)
		}
		a := identity.AgentID(b.Assignee)
		d.assign = &a
	}
	if b.Agent != nil {
		if len(b.Agent) != identity.IDSize {
			return nil, malformedf("agent is %d bytes, want %d", len(b.Agent), identity.IDSize)
		}
		a := identity.AgentID(b.Agent)
		d.agent = &a
	}
	if err := checkText(d.name, MaxNameLen, "name"); err != nil {
		return nil, err
	}
	if err := checkText(d.title, MaxTitleLen, "title"); err != nil {
		return nil, err
	}
	if err := checkText(d.desc, MaxDescriptionLen, "description"); err != nil {
		return nil, err
	}
	if len(b.Order) > 0 {
		d.order = crdt.NewRGADelta[TaskID]()
		if err := wire.Unmarshal(b.Order, d.order, "order delta"); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
	}
	if len(b.Check) > 0 {
		d.check = crdt.NewORSetDelta[checkElem]()
		if err := wire.Unmarshal(b.Check, d.check, "check delta"); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
	}
	if err := d.checkShape(b.Task != nil); err != nil {
		return nil, err
	}
	return d, nil
}

func checkText(s *string, limit int, what string) error {
	if s == nil {
		return nil
	}
	if len(*s) > limit {
		return fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLong, what, len(*s), limit)
	}
	if !utf8.ValidString(*s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	}
	return nil
}

// checkShape checks which optional fields a delta of its kind carries.
func (d *delta) checkShape(hasTask bool) error {
	type shape struct{ task, name, title, desc, fields, agent, order, check bool }
	var want shape
	if d.kind != OpInit && d.nonce != nil {
		return malformedf("%v delta carries a nonce", d.kind)
	}
	if d.kind != OpInit && d.kind != OpWriters && d.open != nil {
		return malformedf("%v delta carries the open flag", d.kind)
	}
	if d.kind != OpWriters && d.grant != nil {
		return malformedf("%v delta carries a grant", d.kind)
	}
	switch d.kind {
	case OpInit:
		want = shape{name: true}
		if d.seq != 1 {
			return malformedf("init delta with seq %d", d.seq)
		}
		if len(d.nonce) != 16 {
			return malformedf("init delta nonce of %d bytes, want 16", len(d.nonce))
		}
	case OpWriters:
		// Grant names an agent; the open flag stands alone or beside it.
		if (d.grant != nil) != (d.agent != nil) || (d.grant == nil && d.open == nil) {
			return malformedf("writers delta needs an agent with a grant, or the open flag")
		}
		want = shape{agent: d.agent != nil}
	case OpAdd:
		want = shape{task: true, title: true, desc: true, order: true, check: true}
	case OpUpdate:
		want = shape{task: true, fields: true, check: true}
	case OpClaim, OpComplete, OpReopen:
		want = shape{task: true, agent: true, check: true}
	case OpMove:
		want = shape{task: true, order: true, check: true}
	case OpRemove:
		want = shape{task: true, check: true}
	}
	anyField := d.title != nil || d.desc != nil || d.assign != nil || d.prio != nil
	switch {
	case hasTask != want.task:
		return malformedf("%v delta: task field presence wrong", d.kind)
	case (d.name != nil) != want.name:
		return malformedf("%v delta: name field presence wrong", d.kind)
	case want.fields && !anyField:
		return malformedf("%v delta changes no field", d.kind)
	case !want.fields && (d.assign != nil || d.prio != nil):
		return malformedf("%v delta carries assignee or priority", d.kind)
	case !want.fields && ((d.title != nil) != want.title || (d.desc != nil) != want.desc):
		return malformedf("%v delta: title/description presence wrong", d.kind)
	case (d.agent != nil) != want.agent:
		return malformedf("%v delta: agent field presence wrong", d.kind)
	case (d.order != nil) != want.order:
		return malformedf("%v delta: order field presence wrong", d.kind)
	case (d.check != nil) != want.check:
		return malformedf("%v delta: check field presence wrong", d.kind)
	}
	return nil
}

// verify checks d's signature with pub, which must hash to d's author.
// Errors wrap ErrBadSignature.
func (d *delta) verify(pub *identity.PublicKey) error {
	if pub.ID() != d.author {
		return fmt.Errorf("%w: key does not hash to author %s", ErrBadSignature, d.author.Short())
	}
	if err := pub.Verify(d.kind.purpose(), d.body, d.sig); err != nil {
		return fmt.Errorf("%w: %s seq %d", ErrBadSignature, d.author.Short(), d.seq)
	}
	return nil
}

// encodeDelta builds, signs and encodes a local delta. It returns the
// decoded form (with raw set), ready to apply and persist.
func encodeDelta(self *identity.KeyPair, b *bodyWire, order *crdt.RGADelta[TaskID], check *crdt.ORSetDelta[checkElem]) (*delta, error) {
	b.V = deltaVersion
	id := self.ID()
	b.Author = id[:]
	if b.Seq == 1 {
		b.PubKey = self.Public().Bytes()
	}
	var err error
	if order != nil {
		if b.Order, err = wire.Marshal(order); err != nil {
			return nil, fmt.Errorf("tasklist: encode order delta: %w", err)
		}
	}
	if check != nil {
		if b.Check, err = wire.Marshal(check); err != nil {
			return nil, fmt.Errorf("tasklist: encode check delta: %w", err)
		}
	}
	body, err := wire.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("tasklist: encode delta: %w", err)
	}
	sig := self.Sign(OpKind(b.Kind).purpose(), body)
	raw, err := wire.Marshal(signedWire{Body: body, Sig: sig})
	if err != nil {
		return nil, fmt.Errorf("tasklist: encode signed delta: %w", err)
	}
	d, err := decodeDelta(raw)
	if err != nil {
		return nil, fmt.Errorf("tasklist: local delta does not decode: %w", err)
	}
	return d, nil
}

// Frame types.
const (
	frameDelta   = 1 // a broadcast delta
	frameRequest = 2 // SyncRequest: the sender's version vector
	frameDeltas  = 3 // catch-up answer: deltas in causal order
	// frameState is a catch-up answer of a state transfer: effective
	// deltas in causal order, where an author's numbers between the
	// receiver's and a delta's are superseded (statesync.go).
	frameState = 4
)

// frameWire is every payload a List sends: a broadcast delta, a sync
// request, or a chunk of catch-up deltas.
type frameWire struct {
	T      uint8               `cbor:"1,keyasint"`
	List   ListID              `cbor:"2,keyasint"`
	VV     *crdt.VersionVector `cbor:"3,keyasint,omitempty"`
	Reply  bool                `cbor:"4,keyasint,omitempty"`
	Deltas [][]byte            `cbor:"5,keyasint,omitempty"`
	More   bool                `cbor:"6,keyasint,omitempty"`
	Skips  []byte              `cbor:"7,keyasint,omitempty"` // request: the deltas the sender skipped (encodeSkips)
	Held   *crdt.VersionVector `cbor:"8,keyasint,omitempty"` // request: per author, how far past VV the sender holds deltas unapplied (or was told they are superseded)
	Self   []byte              `cbor:"9,keyasint,omitempty"` // request: the sender's agent (its own last delta on every task is kept for it)
}

// decodeFrame decodes and checks a frame. Errors wrap ErrMalformed.
func decodeFrame(payload []byte) (*frameWire, error) {
	if len(payload) > MaxFrameSize {
		return nil, malformedf("frame is %d bytes, limit %d", len(payload), MaxFrameSize)
	}
	var f frameWire
	if err := wire.Unmarshal(payload, &f, "tasklist frame"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	switch f.T {
	case frameDelta:
		if len(f.Deltas) != 1 || f.VV != nil || f.Reply || f.More || f.Skips != nil || f.Held != nil || f.Self != nil {
			return nil, malformedf("delta frame must carry exactly one delta")
		}
	case frameRequest:
		if f.VV == nil || len(f.Deltas) != 0 || f.More {
			return nil, malformedf("sync request must carry a version vector only")
		}
		if f.Self != nil && len(f.Self) != identity.IDSize {
			return nil, malformedf("sync request names an agent of %d bytes", len(f.Self))
		}
	case frameDeltas, frameState:
		if f.VV != nil || f.Reply || f.Skips != nil || f.Held != nil || f.Self != nil {
			return nil, malformedf("deltas frame carries request fields")
		}
	default:
		return nil, malformedf("unknown frame type %d", f.T)
	}
	return &f, nil
}

func encodeFrame(f *frameWire) ([]byte, error) {
	b, err := wire.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("tasklist: encode frame: %w", err)
	}
	return b, nil
}

func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) }
