package group

import (
	"fmt"
	"slices"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/mls"
	"lukechampine.com/blake3"
)

// MaxData bounds the data of one application message (the group's MLS
// message must fit one pub/sub payload of 1 MiB).
const MaxData = 960 << 10

// Send encrypts data for the members and publishes it. Errors: ErrClosed,
// ErrTooLarge, the Publish error.
func (g *Group) Send(data []byte) error {
	if len(data) > MaxData {
		return fmt.Errorf("%w: %d bytes of data, limit %d", ErrTooLarge, len(data), MaxData)
	}
	g.mu.Lock()
	defer g.unlock()
	if g.closed {
		return ErrClosed
	}
	return g.sendLocked(kindMessage, data)
}

// sendLocked protects and publishes an envelope, keeping it for re-sending
// if its epoch loses a fork choice (presence beacons are not kept).
func (g *Group) sendLocked(k envelopeKind, data []byte) error {
	if g.mustUpdate {
		if _, err := g.removeLocked(nil); err != nil {
			return fmt.Errorf("group: key update after a restore: %w", err)
		}
	}
	g.seq++
	env := encodeEnvelope(k, g.seq, data)
	msg, err := g.cur.Protect(env, nil)
	if err != nil {
		return err
	}
	if err := g.cfg.Publish(msg); err != nil {
		return err
	}
	if k != kindPresence && len(g.history) > 0 {
		g.sent = append(g.sent, sentMessage{epoch: g.cur.Epoch(), env: env})
	}
	return nil
}

// resendLocked publishes again, in the current epoch, this member's
// messages sent after epoch (in epochs a fork choice undid).
func (g *Group) resendLocked(epoch uint64) {
	var again []sentMessage
	g.sent = slices.DeleteFunc(g.sent, func(s sentMessage) bool {
		if s.epoch > epoch {
			again = append(again, s)
			return true
		}
		return false
	})
	for _, s := range again {
		msg, err := g.cur.Protect(s.env, nil)
		if err == nil {
			err = g.cfg.Publish(msg)
		}
		if err != nil {
			g.cfg.Logger.Debug("group: re-send failed", "group", g.id.Short(), "err", err)
			continue
		}
		g.sent = append(g.sent, sentMessage{epoch: g.cur.Epoch(), env: s.env})
		g.stats.Resent++
	}
}

// redoLocked re-proposes what this member's undone commits did, on the
// winning epoch: removals and key updates it commits again, additions it
// hands to Config.Reinvite (the lost Welcome used up the key packages).
func (g *Group) redoLocked(lost []*intent) {
	g.stats.Redone += uint64(len(lost))
	var remove []identity.AgentID
	update := false
	for _, in := range lost {
		update = update || in.update
		for _, a := range in.remove {
			if slices.Contains(g.members, a) && !slices.Contains(remove, a) {
				remove = append(remove, a)
			}
		}
		for _, a := range in.add {
			if !slices.Contains(g.members, a) {
				if f := g.cfg.Reinvite; f != nil {
					g.out = append(g.out, func() { f(a) })
				}
			}
		}
	}
	if len(remove) > 0 || update {
		if _, err := g.removeLocked(remove); err != nil {
			g.cfg.Logger.Debug("group: re-proposing failed", "group", g.id.Short(), "err", err)
		}
	}
}

// commitLocked makes, publishes and applies a commit of this member.
func (g *Group) commitLocked(opts *mls.CommitOptions, in *intent) (*mls.CommitResult, error) {
	before, err := g.cur.Clone()
	if err != nil {
		return nil, err
	}
	res, err := g.cur.Commit(opts)
	if err != nil {
		before.Close()
		return nil, err
	}
	if err := g.cfg.Publish(res.Commit); err != nil {
		g.cur.DiscardPendingCommit()
		before.Close()
		return nil, err
	}
	if err := g.cur.MergePendingCommit(); err != nil {
		before.Close()
		return nil, err
	}
	g.mustUpdate = false // this member's own commit: fresh keys
	g.history = append(g.history, &forkPoint{epoch: before.Epoch(), before: before, hash: blake3.Sum256(res.Commit),
		at: g.cfg.Clock.Now(), mine: in})
	g.afterEpochLocked(res.Info)
	return res, nil
}

// Invitation is the result of Invite: the Welcome to hand to each invited
// agent over a direct connection, with what orders it among Welcomes.
type Invitation struct {
	// Agents are the agents added.
	Agents []identity.AgentID
	// Welcome is the MLS Welcome for all of them.
	Welcome []byte
	// Epoch is the epoch the Welcome starts.
	Epoch uint64
	// CommitHash is the BLAKE3 hash of the commit that added them: of two
	// Welcomes to the same epoch, the one with the lower hash is of the
	// winning commit.
	CommitHash [32]byte
}

// Invite adds the agents of keyPackages (each fetched from its agent, as
// KeyPackageAgent names it) in one commit, published to the group, and
// returns the Welcome to send them. Errors: ErrBadKeyPackage,
// ErrAlreadyMember, ErrClosed, mls errors, the Publish error.
func (g *Group) Invite(keyPackages [][]byte) (*Invitation, error) {
	agents := make([]identity.AgentID, 0, len(keyPackages))
	for _, kp := range keyPackages {
		a, err := KeyPackageAgent(kp, g.cfg.Clock)
		if err != nil {
			return nil, err
		}
		if slices.Contains(agents, a) {
			return nil, fmt.Errorf("%w: two key packages of %s", ErrBadKeyPackage, a.Short())
		}
		agents = append(agents, a)
	}
	g.mu.Lock()
	defer g.unlock()
	if g.closed {
		return nil, ErrClosed
	}
	for _, a := range agents {
		if slices.Contains(g.members, a) {
			return nil, fmt.Errorf("%w: %s", ErrAlreadyMember, a.Short())
		}
	}
	res, err := g.commitLocked(&mls.CommitOptions{Add: keyPackages}, &intent{add: agents})
	if err != nil {
		return nil, err
	}
	return &Invitation{Agents: agents, Welcome: res.Welcome, Epoch: g.cur.Epoch(), CommitHash: blake3.Sum256(res.Commit)}, nil
}

// Remove removes agents from the group in one commit. Errors:
// ErrNotMember (an agent is not a member, or is this member: use Leave),
// ErrClosed, mls errors, the Publish error.
func (g *Group) Remove(agents ...identity.AgentID) error {
	g.mu.Lock()
	defer g.unlock()
	if g.closed {
		return ErrClosed
	}
	for _, a := range agents {
		if !slices.Contains(g.members, a) || a == g.cfg.Self.ID() {
			return fmt.Errorf("%w: %s", ErrNotMember, a.Short())
		}
	}
	if len(agents) == 0 {
		return nil
	}
	_, err := g.removeLocked(agents)
	return err
}

// Update refreshes this member's leaf and path keys with a commit (healing
// the group from a compromise of this member's earlier keys). Errors:
// ErrClosed, mls errors, the Publish error.
func (g *Group) Update() error {
	g.mu.Lock()
	defer g.unlock()
	if g.closed {
		return ErrClosed
	}
	_, err := g.removeLocked(nil)
	return err
}

// removeLocked commits the removal of agents (none: a key update only).
func (g *Group) removeLocked(agents []identity.AgentID) (*mls.CommitResult, error) {
	leaves := make([]uint32, 0, len(agents))
	for _, a := range agents {
		if l, ok := g.leafOfLocked(a); ok {
			leaves = append(leaves, l)
		}
	}
	in := &intent{remove: agents, update: len(agents) == 0}
	return g.commitLocked(&mls.CommitOptions{Remove: leaves}, in)
}

// Leave asks the other members to remove this member (MLS does not let a
// member commit its own removal). The group closes, with EventRemoved,
// when the removal commit arrives. Errors: ErrClosed, ErrNotMember (this
// member is alone: Close the group instead), the Publish error.
func (g *Group) Leave() error {
	g.mu.Lock()
	defer g.unlock()
	if g.closed {
		return ErrClosed
	}
	others := 0
	for _, m := range g.members {
		if !m.IsZero() && m != g.cfg.Self.ID() {
			others++
		}
	}
	if others == 0 {
		return fmt.Errorf("%w: no other member can commit the removal", ErrNotMember)
	}
	return g.sendLocked(kindLeave, nil)
}

// RequestRemoval removes agent if it is a member, now, as if it had asked
// to leave and this member's turn had come: used when the agent declined
// an invitation this member sent.
func (g *Group) RequestRemoval(agent identity.AgentID) {
	g.mu.Lock()
	defer g.unlock()
	if g.closed {
		return
	}
	g.scheduleRemovalLocked(agent, true)
}

// scheduleRemovalLocked arranges for agent's removal: the remaining
// members take turns by leaf index, RemovalDelay apart, and a member's
// turn commits the removal if nobody did before; now skips the wait.
func (g *Group) scheduleRemovalLocked(agent identity.AgentID, now bool) {
	if !slices.Contains(g.members, agent) || agent == g.cfg.Self.ID() || g.removal[agent] != nil {
		return
	}
	rank := 0
	self := g.cfg.Self.ID()
	for _, m := range g.members {
		if m == self {
			break
		}
		if !m.IsZero() && m != agent {
			rank++
		}
	}
	if now || rank == 0 {
		if _, err := g.removeLocked([]identity.AgentID{agent}); err != nil {
			g.cfg.Logger.Debug("group: removal commit failed", "group", g.id.Short(), "agent", agent.Short(), "err", err)
		}
		return
	}
	g.removal[agent] = g.cfg.Clock.AfterFunc(g.cfg.RemovalDelay*time.Duration(rank), func() {
		g.mu.Lock()
		defer g.unlock()
		if g.closed {
			return
		}
		delete(g.removal, agent)
		if slices.Contains(g.members, agent) {
			if _, err := g.removeLocked([]identity.AgentID{agent}); err != nil {
				g.cfg.Logger.Debug("group: removal commit failed", "group", g.id.Short(), "agent", agent.Short(), "err", err)
			}
		}
		g.drainLocked()
	})
}

// scheduleBeaconLocked sends a presence beacon every PresenceInterval and
// trims the fork window by age meanwhile.
func (g *Group) scheduleBeaconLocked() {
	g.beacon = g.cfg.Clock.AfterFunc(g.cfg.PresenceInterval, func() {
		g.mu.Lock()
		defer g.unlock()
		if g.closed {
			return
		}
		if err := g.sendLocked(kindPresence, nil); err != nil {
			g.cfg.Logger.Debug("group: presence beacon failed", "group", g.id.Short(), "err", err)
		}
		g.trimLocked()
		g.scheduleBeaconLocked()
	})
}

// ForkPoints returns how many commits can still be overturned (for tests
// and metrics).
func (g *Group) ForkPoints() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.history)
}
