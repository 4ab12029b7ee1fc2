package group

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/saorsa-labs/x0x-go/core/identity"
)

// deliverRandom delivers every queued message in an order rapid draws:
// any member next, any of its queued messages next.
func (b *bus) deliverRandom(rt *rapid.T) {
	for step := 0; ; step++ {
		if step > 10000 {
			rt.Fatal("delivery does not end")
		}
		var busy []*member
		for _, m := range b.nodes {
			m.mu.Lock()
			if len(m.inbox) > 0 && m.g != nil {
				busy = append(busy, m)
			}
			m.mu.Unlock()
		}
		if len(busy) == 0 {
			return
		}
		m := busy[rapid.IntRange(0, len(busy)-1).Draw(rt, "member")]
		m.mu.Lock()
		i := rapid.IntRange(0, len(m.inbox)-1).Draw(rt, "message")
		e := m.inbox[i]
		m.inbox = slices.Delete(m.inbox, i, i+1)
		m.mu.Unlock()
		m.g.Handle(e.origin, e.msg)
	}
}

// Two members commit in the same epoch at the same moment (one updates its
// keys, the other removes a member), and everyone keeps talking; messages
// arrive in any order. Every member must end in the same epoch with the
// same tree, the loser's change must be made anyway, and no application
// message may be lost or delivered twice.
func TestConcurrentCommitsConverge(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		b := newBus(t)
		defer b.closeAll()
		a, c, e, d := b.agent(1), b.agent(2), b.agent(3), b.agent(4)
		a.create(t)
		b.invite(t, a, c, e, d)
		b.settle(t)
		start := a.g.Epoch()
		want := map[identity.AgentID][]string{}
		send := func(m *member, text string) {
			if err := m.g.Send([]byte(text)); err != nil {
				rt.Fatalf("send: %v", err)
			}
			want[m.id] = append(want[m.id], text)
		}
		send(e, "e before")
		if err := a.g.Update(); err != nil {
			rt.Fatal(err)
		}
		if err := c.g.Remove(d.id); err != nil {
			rt.Fatal(err)
		}
		send(a, "a after its commit")
		send(c, "c after its commit")
		// Part of the traffic arrives, then more is sent in whatever epoch
		// each member is in by then, then the rest arrives.
		for _, m := range []*member{a, c, e} {
			if rapid.Bool().Draw(rt, "early "+m.id.Short()) {
				m.deliver()
			}
		}
		send(e, "e later")
		send(a, "a later")
		b.deliverRandom(rt)
		b.settle(t)
		for _, m := range []*member{a, c, e} {
			if m.g.Closed() {
				rt.Fatalf("%s was removed", m.id.Short())
			}
		}
		sameState(t, a, c, e)
		if !d.g.Closed() || a.g.IsMember(d.id) {
			rt.Fatalf("the removal was lost: d closed %v, member %v", d.g.Closed(), a.g.IsMember(d.id))
		}
		if a.g.Epoch() < start+2 {
			rt.Fatalf("epoch %d: both changes should have been committed after %d", a.g.Epoch(), start)
		}
		for _, m := range []*member{a, c, e} {
			got := m.texts()
			for from, texts := range want {
				if from == m.id {
					continue
				}
				g := slices.Clone(got[from])
				slices.Sort(g)
				w := slices.Clone(texts)
				slices.Sort(w)
				if fmt.Sprint(g) != fmt.Sprint(w) {
					rt.Fatalf("%s received from %s %q, want %q", m.id.Short(), from.Short(), g, w)
				}
			}
		}
	})
}

// Commits of two sides of a fork that both added the same agent: the
// joiner is re-invited by the loser through Reinvite when the winner did
// not add it.
func TestLostInvitationIsReinvited(t *testing.T) {
	b := newBus(t)
	defer b.closeAll()
	a, c, j := b.agent(1), b.agent(2), b.agent(3)
	a.create(t)
	b.invite(t, a, c)
	b.settle(t)
	var reinvited []identity.AgentID
	for _, m := range []*member{a, c} {
		m.g.cfg.Reinvite = func(agent identity.AgentID) { reinvited = append(reinvited, agent) }
	}
	kp, err := NewKeyPackage(j.key, b.clk)
	if err != nil {
		t.Fatal(err)
	}
	defer kp.Wipe()
	// a invites j while c updates, in the same epoch.
	if _, err := a.g.Invite([][]byte{kp.KeyPackage()}); err != nil {
		t.Fatal(err)
	}
	if err := c.g.Update(); err != nil {
		t.Fatal(err)
	}
	aHash := a.g.history[len(a.g.history)-1].hash
	cHash := c.g.history[len(c.g.history)-1].hash
	b.settle(t)
	sameState(t, a, c)
	if aHash[0] < cHash[0] || (aHash[0] == cHash[0] && string(aHash[:]) < string(cHash[:])) {
		// a's invitation won: c's update was redone, no re-invitation.
		if len(reinvited) != 0 || !a.g.IsMember(j.id) {
			t.Fatalf("a won: reinvited %v, member %v", reinvited, a.g.IsMember(j.id))
		}
		return
	}
	if len(reinvited) != 1 || reinvited[0] != j.id || a.g.IsMember(j.id) {
		t.Fatalf("a lost: reinvited %v, member %v", reinvited, a.g.IsMember(j.id))
	}
}
