package x0x

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/saorsa-labs/x0x-go/core/group"
	"github.com/saorsa-labs/x0x-go/core/mls"
	"github.com/saorsa-labs/x0x-go/core/pubsub"
	"github.com/saorsa-labs/x0x-go/core/tasklist"
	"github.com/saorsa-labs/x0x-go/core/transport"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// GroupID names a private group (32 random bytes, its MLS group ID). The
// group's topic is BLAKE3(GroupID).
type GroupID [32]byte

// String returns the ID in lowercase hex.
func (id GroupID) String() string { return hex.EncodeToString(id[:]) }

// ParseGroupID parses the 64 hex digits of a group ID. Errors match
// ErrInvalidArgument.
func ParseGroupID(s string) (GroupID, error) {
	var id GroupID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, invalidArg("group ID %q: want 64 hex digits", s)
	}
	copy(id[:], b)
	return id, nil
}

// GroupMessage is an application message of another member of a group.
type GroupMessage struct {
	// Group is the group it was sent to.
	Group GroupID
	// From is the sending member (authenticated by MLS).
	From AgentID
	// Data is the message; the reader owns it.
	Data []byte
	// Epoch is the group epoch it was sent in.
	Epoch uint64
}

// GroupEventKind says what a GroupEvent reports.
type GroupEventKind uint8

// Group event kinds.
const (
	// GroupMemberJoined: Agent became a member.
	GroupMemberJoined GroupEventKind = iota + 1
	// GroupMemberLeft: Agent left or was removed.
	GroupMemberLeft
	// GroupEpochChanged: the group moved to Epoch (its keys changed).
	GroupEpochChanged
	// GroupRemoved: this agent is no longer a member (it left or was
	// removed); the group is closed and its streams end.
	GroupRemoved
	// GroupMemberOnline: Agent announced its presence (only members see
	// it).
	GroupMemberOnline
)

// String returns the kind's name, e.g. "member-joined".
func (k GroupEventKind) String() string {
	switch k {
	case GroupMemberJoined:
		return "member-joined"
	case GroupMemberLeft:
		return "member-left"
	case GroupEpochChanged:
		return "epoch-changed"
	case GroupRemoved:
		return "removed"
	case GroupMemberOnline:
		return "member-online"
	}
	return fmt.Sprintf("group-event-kind(%d)", uint8(k))
}

// GroupEvent is a change of a group.
type GroupEvent struct {
	Kind  GroupEventKind
	Group GroupID
	Agent AgentID // MemberJoined, MemberLeft, MemberOnline
	Epoch uint64  // the epoch after the change
}

// GroupInvitation is an invitation waiting for AcceptInvitation or
// DeclineInvitation (reported by an EventGroupInvitation).
type GroupInvitation struct {
	// Group is the group the invitation is to.
	Group GroupID
	// From is the member that invited this agent.
	From AgentID
	// Members are the group's members at the invitation.
	Members []AgentID
	// Epoch is the epoch the invitation starts.
	Epoch uint64
}

// Group limits and timings.
const (
	// MaxGroupMessage bounds the data of one group message.
	MaxGroupMessage = group.MaxData
	// maxIssuedKeyPackages bounds the private key packages kept for
	// invitations not yet received (the oldest is discarded first).
	maxIssuedKeyPackages = 64
	// keyPackageRate is how many key packages one agent may obtain per
	// minute (each costs this node two ML-KEM key generations and a
	// signature, and a slot of the bound above).
	keyPackageRate = 4
	// maxInvitations and maxInvitationBytes bound the invitations waiting
	// for an answer.
	maxInvitations     = 64
	maxInvitationBytes = 16 << 20
	// inviteTimeout bounds an invitation's key-package fetch when the
	// caller's context has no deadline.
	inviteTimeout = 30 * time.Second
	// groupInbox bounds the group work queued for the groups worker.
	groupInbox = 4096
)

// groupWire is a message of the groups direct service (CBOR).
type groupWire struct {
	T       uint8  `cbor:"1,keyasint"`
	Req     uint64 `cbor:"2,keyasint,omitempty"`
	KP      []byte `cbor:"3,keyasint,omitempty"`
	Refused bool   `cbor:"4,keyasint,omitempty"`
	Group   []byte `cbor:"5,keyasint,omitempty"`
	Welcome []byte `cbor:"6,keyasint,omitempty"`
	Epoch   uint64 `cbor:"7,keyasint,omitempty"`
	Hash    []byte `cbor:"8,keyasint,omitempty"`
	// Ever lists (32 bytes each) the agents the inviter knows were ever
	// members: the joiner's task-list writers from before it joined.
	Ever []byte `cbor:"9,keyasint,omitempty"`
}

// Group service message types.
const (
	gwKeyPackageRequest uint8 = 1 // Req
	gwKeyPackage        uint8 = 2 // Req, KP or Refused
	gwWelcome           uint8 = 3 // Group, Welcome, Epoch, Hash, Ever
	gwDecline           uint8 = 4 // Group
)

// groups is an agent's group machinery: its open groups, invitations and
// key packages, and the worker that runs all of it off the network's
// goroutines.
type groups struct {
	mu        sync.Mutex
	open      map[GroupID]*Group
	invites   map[GroupID]*invitation
	issued    []*issuedKP // oldest first
	accepting bool
	reqs      map[uint64]keyPackageRequest // key-package requests in flight
	nextReq   uint64
	rate      map[AgentID][]time.Time // key packages issued per agent in the last minute
	store     *group.Store            // the agent's stored groups (GroupFile)
	closed    bool

	inbox      chan func()
	replySlots chan struct{} // key-package replies in flight
	ctx        context.Context
	stop       context.CancelFunc
	wg         sync.WaitGroup
}

// keyPackageRequest is a key-package request in flight: only the asked
// agent's reply is taken.
type keyPackageRequest struct {
	agent AgentID
	reply chan groupWire
}

// issuedKP is a key package handed out, kept until a Welcome uses it.
type issuedKP struct {
	kp *mls.PrivateKeyPackage
	to AgentID // the agent it was given to (zero: published by the caller)
}

// invitation is a Welcome waiting for the user's answer.
type invitation struct {
	from    AgentID
	welcome []byte
	kp      *issuedKP
	epoch   uint64
	hash    [32]byte
	members []AgentID
	ever    []AgentID // past members, as the inviter reports them
}

// Group is a private group this agent is a member of: MLS (RFC 9420) with
// x0x's post-quantum suite over the group's topic. Its methods are safe for
// concurrent use. Only members read its messages, task lists and presence;
// a removed member reads nothing sent after its removal, and a member's
// Update heals the group from a leak of its earlier keys.
//
// The group's state is saved, sealed with a key derived from the agent
// key, in the data directory at every epoch change and when it closes,
// and the agent restores it when it starts again. After a crash (a state
// saved at an epoch change) the replica commits a key update before it
// sends anything, so that it never reuses a message key. A replica that
// was away while the group moved on catches up from the commits its topic
// neighbours still hold (pub/sub's 5-minute store); one away longer must
// be removed and invited again.
type Group struct {
	agent    *Agent
	id       GroupID
	messages fanout[GroupMessage]
	events   fanout[GroupEvent]

	saveMu   sync.Mutex // serializes saves of the state
	saveDone bool       // the closing (or final) save happened: no more saves

	mu       sync.Mutex
	cur      *group.Group // replaced when a re-invitation moves the replica to the winning side of a fork
	sub      *pubsub.Subscription
	joined   time.Time   // when the current replica started
	joinRank *invitation // the invitation it started from (nil: created here)
}

// core returns the group's current replica.
func (g *Group) core() *group.Group {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cur
}

func (gs *groups) init(a *Agent) {
	gs.open = map[GroupID]*Group{}
	gs.invites = map[GroupID]*invitation{}
	gs.reqs = map[uint64]keyPackageRequest{}
	gs.rate = map[AgentID][]time.Time{}
	gs.inbox = make(chan func(), groupInbox)
	gs.replySlots = make(chan struct{}, 4)
	gs.ctx, gs.stop = context.WithCancel(context.Background())
	gs.wg.Add(1)
	go func() {
		defer gs.wg.Done()
		for {
			select {
			case f := <-gs.inbox:
				f()
			case <-gs.ctx.Done():
				return
			}
		}
	}()
	a.node.HandleDirect(transport.ServiceGroups, a.onGroupService)
}

// post queues work for the groups worker, dropping it (counted) when the
// queue is full: network input never blocks the transport.
func (a *Agent) post(f func()) {
	select {
	case a.groups.inbox <- f:
	default:
		a.drops.groupWork.Add(1)
	}
}

// goGroups runs f on a goroutine the groups machinery owns (Close waits
// for it; its context is a.groups.ctx), unless the agent is closing.
func (a *Agent) goGroups(f func()) {
	gs := &a.groups
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if gs.closed {
		return
	}
	gs.wg.Add(1)
	go func() {
		defer gs.wg.Done()
		f()
	}()
}

// closeGroups closes every group and stops the worker (Agent.Close).
func (a *Agent) closeGroups() error {
	gs := &a.groups
	gs.mu.Lock()
	gs.closed = true
	open := gs.open
	gs.open = map[GroupID]*Group{}
	for _, k := range gs.issued {
		k.kp.Wipe()
	}
	gs.issued = nil
	gs.invites = map[GroupID]*invitation{}
	gs.mu.Unlock()
	// Stop the worker first, so that the states saved below are the last.
	gs.stop()
	gs.wg.Wait()
	for _, g := range open {
		g.saveClosing()
		g.shut()
	}
	if gs.store != nil {
		return gs.store.Close()
	}
	return nil
}

// GroupFile is the name, in the data directory, of the store holding the
// agent's groups (sealed; see Group.Close).
const GroupFile = "groups.db"

// openGroupStore opens the group store and restores every group saved in
// it (Agent build). A record that does not open or restore is logged and
// left in the store; a store that is not one is an error naming the file.
func (a *Agent) openGroupStore() error {
	st, err := group.OpenStore(filepath.Join(a.dataDir, GroupFile))
	if err != nil {
		return translate(err)
	}
	a.groups.store = st
	states, errs := st.Load(a.agent)
	for _, err := range errs {
		a.logger.Warn("x0x: a stored group was not restored", "file", GroupFile, "err", err)
	}
	for _, s := range states {
		g := a.newGroup(GroupID(s.Group))
		var self atomic.Pointer[group.Group]
		core, err := group.Restore(s.State, g.config(&self), !s.Clean)
		if err != nil {
			a.logger.Warn("x0x: a stored group was not restored", "group", GroupID(s.Group), "err", err)
			continue
		}
		self.Store(core)
		g.cur = core
		// From now on the stored state may predate what the replica sends:
		// mark it so before it sends anything, or do not start it.
		if err := g.saveState(false); err != nil {
			a.logger.Warn("x0x: a stored group was not restored: its record cannot be marked", "group", g.id, "err", err)
			core.Close()
			continue
		}
		if err := a.startGroup(g); err != nil {
			return err
		}
		core.Resume()
	}
	return nil
}

// save stores the replica's state taken now (not at its close); failures
// are counted and logged.
func (g *Group) save(clean bool) {
	if err := g.saveState(clean); err != nil {
		g.agent.drops.groupSaves.Add(1)
		g.agent.logger.Warn("x0x: saving a group failed", "group", g.id, "err", err)
	}
}

// saveState stores the replica's state. Saves of one group are serialized
// and none follows the closing one; a closed replica saves nothing.
func (g *Group) saveState(clean bool) error {
	g.saveMu.Lock()
	defer g.saveMu.Unlock()
	st := g.agent.groups.store
	c := g.core()
	if st == nil || c == nil || g.saveDone {
		return nil
	}
	snap, err := c.Snapshot()
	if err != nil {
		if errors.Is(err, group.ErrClosed) {
			return nil // removed (the record is deleted) or shut
		}
		return err
	}
	return st.Save(g.agent.agent, group.StoredState{Group: group.ID(g.id), State: snap, Clean: clean}, g.agent.rand())
}

// saveClosing closes the replica and stores its state as exact, in one
// step: nothing can be sent between the snapshot and the close.
func (g *Group) saveClosing() {
	g.saveMu.Lock()
	defer g.saveMu.Unlock()
	st := g.agent.groups.store
	c := g.core()
	if c == nil || g.saveDone {
		return
	}
	g.saveDone = true
	snap, err := c.CloseWithSnapshot()
	if err != nil || st == nil {
		return
	}
	if err := st.Save(g.agent.agent, group.StoredState{Group: group.ID(g.id), State: snap, Clean: true}, g.agent.rand()); err != nil {
		g.agent.drops.groupSaves.Add(1)
		g.agent.logger.Warn("x0x: saving a closing group failed", "group", g.id, "err", err)
	}
}

// forget deletes the stored state (the agent is no longer a member).
func (g *Group) forget() {
	g.saveMu.Lock()
	defer g.saveMu.Unlock()
	g.saveDone = true
	if st := g.agent.groups.store; st != nil {
		if err := st.Delete(g.agent.agent, group.ID(g.id)); err != nil {
			g.agent.logger.Warn("x0x: deleting a group's state failed", "group", g.id, "err", err)
		}
	}
}

// PublishKeyPackage makes this agent invitable: from now on, members of
// groups may fetch single-use key packages from it over a direct
// connection (Group.Invite), at most 4 per inviting agent per minute. It
// also returns one key package, which the caller may hand to an inviter
// by other means (Group.InviteKeyPackage); it stays valid for 90 days or
// until this agent closes. Errors: ErrClosed.
func (a *Agent) PublishKeyPackage(ctx context.Context) ([]byte, error) {
	if err := orBackground(ctx).Err(); err != nil {
		return nil, err
	}
	gs := &a.groups
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if gs.closed {
		return nil, ErrClosed
	}
	gs.accepting = true
	k, err := a.issueKeyPackageLocked(AgentID{})
	if err != nil {
		return nil, err
	}
	return k.KeyPackage(), nil
}

// issueKeyPackageLocked creates and keeps a key package for agent to.
func (a *Agent) issueKeyPackageLocked(to AgentID) (*mls.PrivateKeyPackage, error) {
	kp, err := group.NewKeyPackage(a.agent, a.clk)
	if err != nil {
		return nil, err
	}
	gs := &a.groups
	if len(gs.issued) >= maxIssuedKeyPackages {
		// Evict the oldest key package no pending invitation uses (the
		// last published one stays too); refuse if there is none.
		inUse := map[*issuedKP]bool{}
		for _, inv := range gs.invites {
			inUse[inv.kp] = true
		}
		for i := len(gs.issued) - 1; i >= 0; i-- {
			if gs.issued[i].to.IsZero() {
				inUse[gs.issued[i]] = true
				break
			}
		}
		i := slices.IndexFunc(gs.issued, func(k *issuedKP) bool { return !inUse[k] })
		if i < 0 {
			kp.Wipe()
			return nil, fmt.Errorf("%w: every issued key package is in use", ErrInvitationRefused)
		}
		gs.issued[i].kp.Wipe()
		gs.issued = slices.Delete(gs.issued, i, i+1)
	}
	gs.issued = append(gs.issued, &issuedKP{kp: kp, to: to})
	return kp, nil
}

// CreateGroup creates a private group with this agent as its only member
// and joins its topic. Errors: ErrClosed, ctx's error.
func (a *Agent) CreateGroup(ctx context.Context) (*Group, error) {
	if err := orBackground(ctx).Err(); err != nil {
		return nil, err
	}
	id, err := group.NewID(a.rand())
	if err != nil {
		return nil, err
	}
	g := a.newGroup(GroupID(id))
	var self atomic.Pointer[group.Group]
	core, err := group.Create(id, g.config(&self))
	if err != nil {
		return nil, translate(err)
	}
	self.Store(core)
	g.cur = core
	if err := a.startGroup(g); err != nil {
		return nil, err
	}
	g.save(false)
	return g, nil
}

// Group returns the open group id, or ErrGroupNotFound.
func (a *Agent) Group(id GroupID) (*Group, error) {
	a.groups.mu.Lock()
	defer a.groups.mu.Unlock()
	if g := a.groups.open[id]; g != nil {
		return g, nil
	}
	return nil, ErrGroupNotFound
}

// Groups lists the open groups' IDs, sorted.
func (a *Agent) Groups() []GroupID {
	a.groups.mu.Lock()
	defer a.groups.mu.Unlock()
	out := make([]GroupID, 0, len(a.groups.open))
	for id := range a.groups.open {
		out = append(out, id)
	}
	slices.SortFunc(out, func(x, y GroupID) int { return bytes.Compare(x[:], y[:]) })
	return out
}

// Invitations lists the invitations waiting for an answer, by group ID.
func (a *Agent) Invitations() []GroupInvitation {
	a.groups.mu.Lock()
	defer a.groups.mu.Unlock()
	out := make([]GroupInvitation, 0, len(a.groups.invites))
	for id, inv := range a.groups.invites {
		out = append(out, GroupInvitation{Group: id, From: inv.from, Members: slices.Clone(inv.members), Epoch: inv.epoch})
	}
	slices.SortFunc(out, func(x, y GroupInvitation) int { return bytes.Compare(x.Group[:], y.Group[:]) })
	return out
}

// AcceptInvitation joins the group of a pending invitation and its topic.
// Errors: ErrInvitationNotFound, ErrCorrupt (the Welcome does not open
// with the key package it names: a forged invitation), ErrClosed, ctx's
// error.
func (a *Agent) AcceptInvitation(ctx context.Context, id GroupID) (*Group, error) {
	if err := orBackground(ctx).Err(); err != nil {
		return nil, err
	}
	inv, err := a.takeInvitation(id)
	if err != nil {
		return nil, err
	}
	return a.joinFromWelcome(id, inv)
}

// joinFromWelcome starts this agent's replica of group id from an
// invitation's Welcome; an open replica of the same group is replaced in
// place (same Group, same streams and subscription).
func (a *Agent) joinFromWelcome(id GroupID, inv *invitation) (*Group, error) {
	st, err := group.JoinMLS(inv.welcome, inv.kp.kp, a.clk)
	inv.kp.kp.Wipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if !bytes.Equal(st.GroupID(), id[:]) {
		st.Close()
		return nil, fmt.Errorf("%w: the Welcome is for another group than announced", ErrCorrupt)
	}
	g, _ := a.Group(id)
	fresh := g == nil
	if fresh {
		g = a.newGroup(id)
	}
	var self atomic.Pointer[group.Group]
	cfg := g.config(&self)
	cfg.PastMembers = inv.ever
	core, err := group.Open(st, cfg)
	if err != nil {
		st.Close()
		return nil, translate(err)
	}
	self.Store(core)
	g.mu.Lock()
	old := g.cur
	g.cur, g.joined, g.joinRank = core, a.clk.Now(), inv
	g.mu.Unlock()
	if !fresh {
		if old != nil {
			old.Close()
		}
	} else if err := a.startGroup(g); err != nil {
		return nil, err
	}
	g.save(false)
	return g, nil
}

// takeInvitation removes and returns the pending invitation to id.
func (a *Agent) takeInvitation(id GroupID) (*invitation, error) {
	a.groups.mu.Lock()
	defer a.groups.mu.Unlock()
	if a.groups.closed {
		return nil, ErrClosed
	}
	inv := a.groups.invites[id]
	if inv == nil {
		return nil, ErrInvitationNotFound
	}
	delete(a.groups.invites, id)
	a.forgetKeyPackageLocked(inv.kp)
	return inv, nil
}

func (a *Agent) forgetKeyPackageLocked(k *issuedKP) {
	a.groups.issued = slices.DeleteFunc(a.groups.issued, func(x *issuedKP) bool { return x == k })
}

// DeclineInvitation refuses a pending invitation: its key package is
// wiped and the inviter is asked (over a direct connection, if one is
// up) to remove this agent, which the Welcome's commit already added.
// Errors: ErrInvitationNotFound, ErrClosed.
func (a *Agent) DeclineInvitation(ctx context.Context, id GroupID) error {
	inv, err := a.takeInvitation(id)
	if err != nil {
		return err
	}
	inv.kp.kp.Wipe()
	msg, _ := wire.Marshal(&groupWire{T: gwDecline, Group: id[:]})
	if err := a.node.SendService(orBackground(ctx), transport.ServiceGroups, a.agent.ID(), inv.from, msg); err != nil {
		a.logger.Debug("x0x: decline not delivered", "group", id, "inviter", inv.from.Short(), "err", err)
	}
	return nil
}

// newGroup builds a Group handle (not yet started).
func (a *Agent) newGroup(id GroupID) *Group {
	g := &Group{agent: a, id: id, joined: a.clk.Now()}
	g.messages = fanout[GroupMessage]{size: func(m GroupMessage) int { return 64 + len(m.Data) },
		clone: func(m GroupMessage) GroupMessage { m.Data = bytes.Clone(m.Data); return m }, dropped: &a.drops.messages}
	g.events = fanout[GroupEvent]{dropped: &a.drops.events}
	return g
}

// config is the group core's configuration for g.
// config is the group core's configuration for a replica of g; self is
// set to that replica once it exists, and its callbacks are ignored once
// another replica has replaced it (a re-invitation).
func (g *Group) config(self *atomic.Pointer[group.Group]) group.Config {
	a := g.agent
	topic := group.ID(g.id).TopicName()
	current := func() bool { c := self.Load(); return c != nil && g.core() == c }
	return group.Config{
		Self: a.agent, Clock: a.clk, Logger: a.logger,
		Publish: func(msg []byte) error {
			_, err := a.overlay.Publish(topic, msg)
			return err
		},
		OnMessage: func(m group.Message) {
			if current() {
				g.messages.publish(GroupMessage{Group: g.id, From: m.From, Data: m.Data, Epoch: m.Epoch})
			}
		},
		OnEvent: func(ev group.Event) {
			if !current() {
				return
			}
			e := GroupEvent{Group: g.id, Agent: ev.Agent, Epoch: ev.Epoch}
			switch ev.Kind {
			case group.EventMemberJoined:
				e.Kind = GroupMemberJoined
			case group.EventMemberLeft:
				e.Kind = GroupMemberLeft
			case group.EventEpochChanged:
				e.Kind = GroupEpochChanged
				g.save(false)
			case group.EventOnline:
				e.Kind = GroupMemberOnline
			case group.EventRemoved:
				e.Kind = GroupRemoved
				g.forget()
				g.events.publish(e)
				// The replica is gone: close the group now (not through
				// the worker's queue, which could drop it). A replica that
				// replaced this one in the meantime is left alone.
				if c := g.core(); c == nil || c.Closed() {
					g.Close()
				}
				return
			}
			g.events.publish(e)
		},
		Reinvite: func(agent AgentID) {
			if !current() {
				return
			}
			a.goGroups(func() {
				ctx, cancel := context.WithTimeout(a.groups.ctx, inviteTimeout)
				defer cancel()
				if err := g.Invite(ctx, agent); err != nil {
					a.logger.Debug("x0x: re-invitation after a lost commit failed", "group", g.id, "agent", agent.Short(), "err", err)
				}
			})
		},
	}
}

// startGroup registers g (its replica set) and subscribes to its topic.
func (a *Agent) startGroup(g *Group) error {
	gs := &a.groups
	gs.mu.Lock()
	if gs.closed {
		gs.mu.Unlock()
		g.shut()
		return ErrClosed
	}
	gs.open[g.id] = g
	gs.mu.Unlock()
	sub, err := a.overlay.PubSub.SubscribeFunc(group.ID(g.id).TopicName(), func(d pubsub.Delivery) {
		origin, payload := d.Origin, d.Payload
		a.post(func() { g.core().Handle(origin, payload) })
	})
	if err != nil {
		g.Close()
		return translate(err)
	}
	g.mu.Lock()
	g.sub = sub
	g.mu.Unlock()
	return nil
}

// ID returns the group's ID.
func (g *Group) ID() GroupID { return g.id }

// Epoch returns the group's current epoch.
func (g *Group) Epoch() uint64 { return g.core().Epoch() }

// Members returns the current members, sorted.
func (g *Group) Members() []AgentID { return g.core().Members() }

// Online returns the members that announced their presence in the last 15
// minutes (and this agent), sorted. Presence travels encrypted inside the
// group: only members see it.
func (g *Group) Online() []AgentID { return g.core().Online() }

// EpochAuthenticator returns a value every member of the current epoch
// shares; comparing it out of band detects impersonation. Errors:
// ErrClosed.
func (g *Group) EpochAuthenticator() ([]byte, error) {
	b, err := g.core().EpochAuthenticator()
	return b, translate(err)
}

// Publish encrypts data for the members and sends it on the group's topic.
// Errors: ErrPayloadTooLarge (over MaxGroupMessage), ErrClosed, ctx's
// error.
func (g *Group) Publish(ctx context.Context, data []byte) error {
	if err := orBackground(ctx).Err(); err != nil {
		return err
	}
	return translate(g.core().Send(data))
}

// Messages opens a stream of the other members' messages from now on.
// Errors: ErrClosed, *ConfigError.
func (g *Group) Messages(opts ...StreamOption) (*Stream[GroupMessage], error) {
	return g.messages.open(opts)
}

// Events opens a stream of the group's changes from now on. Errors:
// ErrClosed, *ConfigError.
func (g *Group) Events(opts ...StreamOption) (*Stream[GroupEvent], error) {
	return g.events.open(opts)
}

// Invite adds agent to the group: it fetches a key package from the agent
// over a direct connection (the agent must have called PublishKeyPackage
// and be carried by a connected peer), commits the addition to the group
// and sends the agent the Welcome over the direct connection; the agent
// then accepts or declines. If ctx has no deadline the fetch gives up
// after 30 s. Errors: ErrAlreadyMember, ErrNoRoute, ErrInvitationRefused
// (the agent does not accept invitations, or refused this one),
// ErrBadKeyPackage, ErrClosed, ctx's error.
func (g *Group) Invite(ctx context.Context, agent AgentID) error {
	ctx = orBackground(ctx)
	if g.core().Closed() {
		return ErrClosed
	}
	if g.core().IsMember(agent) {
		return fmt.Errorf("%w: %s", ErrAlreadyMember, agent.Short())
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, inviteTimeout)
		defer cancel()
	}
	kp, err := g.agent.fetchKeyPackage(ctx, agent)
	if err != nil {
		return err
	}
	return g.inviteWith(ctx, agent, kp)
}

// InviteKeyPackage adds the agent whose key package keyPackage is (from
// its PublishKeyPackage, handed over by other means) and sends it the
// Welcome over a direct connection. Errors: as Invite.
func (g *Group) InviteKeyPackage(ctx context.Context, keyPackage []byte) error {
	agent, err := group.KeyPackageAgent(keyPackage, g.agent.clk)
	if err != nil {
		return translate(err)
	}
	return g.inviteWith(orBackground(ctx), agent, keyPackage)
}

func (g *Group) inviteWith(ctx context.Context, agent AgentID, kp []byte) error {
	if got, err := group.KeyPackageAgent(kp, g.agent.clk); err != nil || got != agent {
		return fmt.Errorf("%w: not a valid key package of %s", ErrBadKeyPackage, agent.Short())
	}
	inv, err := g.core().Invite([][]byte{kp})
	if err != nil {
		return translate(err)
	}
	var ever []byte
	for _, m := range g.core().EverMembers() {
		ever = append(ever, m[:]...)
	}
	msg, err := wire.Marshal(&groupWire{T: gwWelcome, Group: g.id[:], Welcome: inv.Welcome, Epoch: inv.Epoch,
		Hash: inv.CommitHash[:], Ever: ever})
	if err == nil {
		err = g.agent.node.SendService(ctx, transport.ServiceGroups, g.agent.agent.ID(), agent, msg)
	}
	if err != nil {
		// The agent is in the tree but cannot join: take it out again.
		if rerr := g.core().Remove(agent); rerr != nil {
			g.agent.logger.Debug("x0x: removing an agent whose Welcome failed", "group", g.id, "err", rerr)
		}
		return translate(err)
	}
	return nil
}

// Remove removes a member. Errors: ErrNotMember (also for this agent:
// use Leave), ErrClosed, ctx's error.
func (g *Group) Remove(ctx context.Context, agent AgentID) error {
	if err := orBackground(ctx).Err(); err != nil {
		return err
	}
	return translate(g.core().Remove(agent))
}

// Update replaces this agent's keys in the group (a commit), so that keys
// it held before, if they leaked, read nothing sent after. Errors:
// ErrClosed, ctx's error.
func (g *Group) Update(ctx context.Context) error {
	if err := orBackground(ctx).Err(); err != nil {
		return err
	}
	return translate(g.core().Update())
}

// Leave asks the other members to remove this agent; the group closes
// (GroupRemoved) when they have. Errors: ErrNotMember (this agent is the
// only member: Close the group instead), ErrClosed, ctx's error.
func (g *Group) Leave(ctx context.Context) error {
	if err := orBackground(ctx).Err(); err != nil {
		return err
	}
	return translate(g.core().Leave())
}

// Close ends this agent's replica of the group for now: it saves the
// group's state (sealed, in the data directory's GroupFile), leaves the
// topic, ends the streams and the group's task lists, and zeroes the
// secrets in memory. The agent's next start restores it (Agent.Group,
// Agent.Groups). It does not remove this agent from the group: Leave does,
// and a removal deletes the saved state. Closing twice is a no-op.
func (g *Group) Close() error {
	a := g.agent
	a.groups.mu.Lock()
	if a.groups.open[g.id] == g {
		delete(a.groups.open, g.id)
	}
	a.groups.mu.Unlock()
	g.saveClosing()
	g.shut()
	return nil
}

// shut stops the replica without touching the registry.
func (g *Group) shut() {
	g.mu.Lock()
	sub := g.sub
	g.sub = nil
	g.mu.Unlock()
	if sub != nil {
		sub.Unsubscribe()
	}
	// The group's lists cannot be read or written without its keys.
	for _, l := range g.agent.openTaskLists() {
		if l.group == g {
			if err := l.Leave(); err != nil {
				g.agent.logger.Debug("x0x: closing a group's task list", "list", l.ID(), "err", err)
			}
		}
	}
	if c := g.core(); c != nil {
		c.Close()
	}
	g.messages.close()
	g.events.close()
}

// fetchKeyPackage asks agent for a key package over the direct service.
func (a *Agent) fetchKeyPackage(ctx context.Context, agent AgentID) ([]byte, error) {
	gs := &a.groups
	gs.mu.Lock()
	if gs.closed {
		gs.mu.Unlock()
		return nil, ErrClosed
	}
	gs.nextReq++
	req := gs.nextReq
	ch := make(chan groupWire, 1)
	gs.reqs[req] = keyPackageRequest{agent: agent, reply: ch}
	gs.mu.Unlock()
	defer func() {
		gs.mu.Lock()
		delete(gs.reqs, req)
		gs.mu.Unlock()
	}()
	msg, _ := wire.Marshal(&groupWire{T: gwKeyPackageRequest, Req: req})
	if err := a.node.SendService(ctx, transport.ServiceGroups, a.agent.ID(), agent, msg); err != nil {
		return nil, translate(err)
	}
	select {
	case r := <-ch:
		if r.Refused || len(r.KP) == 0 {
			return nil, fmt.Errorf("%w: %s", ErrInvitationRefused, agent.Short())
		}
		return r.KP, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("x0x: no key package from %s: %w", agent.Short(), ctx.Err())
	case <-gs.ctx.Done():
		return nil, ErrClosed
	}
}

// onGroupService receives a message of the groups direct service (on the
// transport's goroutine: the work goes to the groups worker).
func (a *Agent) onGroupService(_ PeerID, from, to AgentID, payload []byte) {
	if to != a.agent.ID() {
		return
	}
	m, err := decodeGroupWire(payload)
	if err != nil {
		a.logger.Debug("x0x: bad group service message", "from", from.Short(), "err", err)
		return
	}
	switch m.T {
	case gwKeyPackage:
		// Answers go straight to the waiting Invite.
		a.groups.mu.Lock()
		r, ok := a.groups.reqs[m.Req]
		a.groups.mu.Unlock()
		if ok && r.agent == from {
			select {
			case r.reply <- *m:
			default:
			}
		}
	case gwKeyPackageRequest, gwWelcome, gwDecline:
		a.post(func() { a.handleGroupService(from, m) })
	}
}

// decodeGroupWire decodes and checks a groups service message: its type
// and the fields it needs, with their sizes. Errors match ErrCorrupt.
func decodeGroupWire(payload []byte) (*groupWire, error) {
	var m groupWire
	if err := wire.UnmarshalLimit(payload, &m, "group service message", wire.LimitSmall); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	bad := func(why string) (*groupWire, error) {
		return nil, fmt.Errorf("%w: group service message type %d: %s", ErrCorrupt, m.T, why)
	}
	switch m.T {
	case gwKeyPackageRequest:
	case gwKeyPackage:
		if !m.Refused && len(m.KP) == 0 {
			return bad("no key package")
		}
	case gwWelcome:
		switch {
		case len(m.Group) != len(GroupID{}), len(m.Hash) != 32, len(m.Welcome) == 0:
			return bad("group ID, hash or Welcome missing")
		case len(m.Ever)%len(AgentID{}) != 0:
			return bad("past members not a whole number of IDs")
		}
	case gwDecline:
		if len(m.Group) != len(GroupID{}) {
			return bad("no group ID")
		}
	default:
		return bad("unknown type")
	}
	return &m, nil
}

// handleGroupService runs on the groups worker.
func (a *Agent) handleGroupService(from AgentID, m *groupWire) {
	switch m.T {
	case gwKeyPackageRequest:
		reply := groupWire{T: gwKeyPackage, Req: m.Req}
		if kp := a.keyPackageFor(from); kp != nil {
			reply.KP = kp
		} else {
			reply.Refused = true
		}
		msg, _ := wire.Marshal(&reply)
		// Never on the worker, and never waiting for a peer that does not
		// read: a few replies at a time, dropped when all slots are busy.
		select {
		case a.groups.replySlots <- struct{}{}:
		default:
			a.drops.groupWork.Add(1)
			return
		}
		a.goGroups(func() {
			defer func() { <-a.groups.replySlots }()
			ctx, cancel := context.WithTimeout(a.groups.ctx, time.Second)
			defer cancel()
			if err := a.node.SendService(ctx, transport.ServiceGroups, a.agent.ID(), from, msg); err != nil {
				a.logger.Debug("x0x: key package reply not sent", "to", from.Short(), "err", err)
			}
		})
	case gwWelcome:
		a.receiveWelcome(from, m)
	case gwDecline:
		if g, err := a.Group(GroupID(m.Group)); err == nil {
			g.core().RequestRemoval(from)
		}
	}
}

// keyPackageFor issues a key package to agent if this agent accepts
// invitations and agent is within its rate; nil otherwise.
func (a *Agent) keyPackageFor(agent AgentID) []byte {
	gs := &a.groups
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if !gs.accepting || gs.closed {
		return nil
	}
	now := a.clk.Now()
	recent := slices.DeleteFunc(gs.rate[agent], func(t time.Time) bool { return now.Sub(t) > time.Minute })
	if len(recent) >= keyPackageRate {
		gs.rate[agent] = recent
		return nil
	}
	kp, err := a.issueKeyPackageLocked(agent)
	if err != nil {
		return nil
	}
	gs.rate[agent] = append(recent, now)
	if len(gs.rate) > 4*maxIssuedKeyPackages { // forget idle agents
		for k, ts := range gs.rate {
			if len(ts) == 0 || now.Sub(ts[len(ts)-1]) > time.Minute {
				delete(gs.rate, k)
			}
		}
	}
	return kp.KeyPackage()
}

// receiveWelcome checks a Welcome from agent from against the key
// packages this agent issued to it and holds it as an invitation (an
// EventGroupInvitation), or, if it re-invites this agent into a group it
// joined moments ago on a side of a fork that lost, switches at once.
func (a *Agent) receiveWelcome(from AgentID, m *groupWire) {
	id := GroupID(m.Group)
	gs := &a.groups
	gs.mu.Lock()
	var kps []*issuedKP
	for _, k := range gs.issued {
		if k.to == from || k.to.IsZero() {
			kps = append(kps, k)
		}
	}
	gs.mu.Unlock()
	// Find the key package the Welcome is for by opening it: this proves
	// the Welcome genuine before the user hears of it.
	var used *issuedKP
	var st *mls.Group
	for _, k := range kps {
		s, err := group.JoinMLS(m.Welcome, k.kp, a.clk)
		if err == nil {
			used, st = k, s
			break
		}
	}
	if st == nil {
		a.logger.Debug("x0x: Welcome opens with no key package issued to its sender", "from", from.Short(), "group", id)
		return
	}
	valid := bytes.Equal(st.GroupID(), id[:])
	welcomeEpoch := st.Epoch()
	var members []AgentID
	for _, mem := range st.Members() {
		if len(mem.Credential.Identity) == len(AgentID{}) {
			members = append(members, AgentID(mem.Credential.Identity))
		}
	}
	st.Close()
	if !valid || !slices.Contains(members, from) {
		return
	}
	inv := &invitation{from: from, welcome: m.Welcome, kp: used, epoch: m.Epoch, hash: [32]byte(m.Hash), members: members}
	for i := 0; i < len(m.Ever); i += len(AgentID{}) {
		inv.ever = append(inv.ever, AgentID(m.Ever[i:i+len(AgentID{})]))
	}
	// A Welcome into a group this agent joined within the fork time, for
	// a later epoch or from a winning commit of the same one, means the
	// replica is on a side of a fork that lost: switch without asking.
	if g, err := a.Group(id); err == nil {
		g.mu.Lock()
		r, joined := g.joinRank, g.joined
		g.mu.Unlock()
		// Only a current member of this replica may move it, with a
		// Welcome of the epoch it claims: a stranger holding one of this
		// agent's key packages could otherwise swap the replica for a
		// group of its own making under the same ID.
		if r != nil && a.clk.Now().Sub(joined) <= group.DefaultForkTime && g.core().IsMember(from) &&
			welcomeEpoch == m.Epoch &&
			(m.Epoch > g.Epoch() || (m.Epoch == r.epoch && bytes.Compare(m.Hash, r.hash[:]) < 0)) {
			gs.mu.Lock()
			a.forgetKeyPackageLocked(used)
			gs.mu.Unlock()
			if _, err := a.joinFromWelcome(id, inv); err != nil {
				a.logger.Debug("x0x: switching to a re-invitation failed", "group", id, "err", err)
			}
			return
		}
	}
	gs.mu.Lock()
	size := 0
	for _, x := range gs.invites {
		size += len(x.welcome)
	}
	old := gs.invites[id]
	switch {
	case gs.closed, old == nil && (len(gs.invites) >= maxInvitations || size+len(inv.welcome) > maxInvitationBytes):
		gs.mu.Unlock()
		return
	case old != nil && old.from != from:
		// Another agent's invitation to the same group waits for an
		// answer: keep it (a stranger must not replace it).
		gs.mu.Unlock()
		return
	}
	if old != nil && old.kp != used {
		old.kp.kp.Wipe()
		a.forgetKeyPackageLocked(old.kp)
	}
	gs.invites[id] = inv
	gs.mu.Unlock()
	a.events.publish(Event{Kind: EventGroupInvitation, From: from, Group: id})
}

// errGroup maps group-layer sentinels (used by translate).
func groupErrors() [][2]error {
	return [][2]error{
		{group.ErrClosed, ErrClosed},
		{group.ErrNotMember, ErrNotMember},
		{group.ErrAlreadyMember, ErrAlreadyMember},
		{group.ErrBadKeyPackage, ErrBadKeyPackage},
		{group.ErrTooLarge, ErrPayloadTooLarge},
		{group.ErrMalformed, ErrCorrupt},
		{group.ErrUnknownEpoch, ErrCorrupt},
		{mls.ErrInactive, ErrClosed},
	}
}

// CreateTaskList creates a task list that belongs to the group: its
// operations travel sealed under keys of the group's epochs
// (ChaCha20-Poly1305), so only members read them, and only the group's
// members (present or past) may write to it, enforced by every replica.
// Errors: as Agent.CreateTaskList, and ErrClosed if the group is closed.
func (g *Group) CreateTaskList(ctx context.Context, name string) (*TaskList, error) {
	if err := orBackground(ctx).Err(); err != nil {
		return nil, err
	}
	if g.core().Closed() {
		return nil, ErrClosed
	}
	var nonce [16]byte
	if _, err := io.ReadFull(g.agent.rand(), nonce[:]); err != nil {
		return nil, fmt.Errorf("x0x: task list nonce: %w", err)
	}
	l, err := g.agent.openTaskList(TaskListID(tasklist.NewListID(g.agent.agent.ID(), name, nonce)), name, nonce, false, g)
	return l, translate(err)
}

// JoinTaskList opens a task list of the group (see CreateTaskList). Errors:
// as Agent.JoinTaskList, ErrInvalidArgument (the list is open outside this
// group), ErrClosed.
func (g *Group) JoinTaskList(ctx context.Context, id TaskListID) (*TaskList, error) {
	if err := orBackground(ctx).Err(); err != nil {
		return nil, err
	}
	if g.core().Closed() {
		return nil, ErrClosed
	}
	l, err := g.agent.openTaskList(id, "", [16]byte{}, false, g)
	return l, translate(err)
}
