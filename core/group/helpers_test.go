package group

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/mls"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// manualClock is a clock whose time and timers move only with advance.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	c       *manualClock
	at      time.Time
	f       func()
	stopped bool
}

func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func newClock() *manualClock { return &manualClock{now: time.Unix(1_800_000_000, 0)} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// advance moves time forward by d, firing due timers in order.
func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *manualTimer
		for _, t := range c.timers {
			if !t.stopped && !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		next.stopped = true
		c.now = next.at
		c.mu.Unlock()
		next.f()
	}
}

// bus is an in-memory group topic: every published message is queued for
// every other member, and the test decides when and in which order each
// member receives its queue.
type bus struct {
	t     testing.TB
	clk   *manualClock
	mu    sync.Mutex
	nodes []*member
	last  map[identity.AgentID][]byte // each member's last published message
}

// member is one agent with its group replica and what it received.
type member struct {
	b      *bus
	key    *identity.KeyPair
	id     identity.AgentID
	g      *Group
	mu     sync.Mutex
	inbox  []envelopeIn
	msgs   []Message
	events []Event
}

type envelopeIn struct {
	origin identity.AgentID
	msg    []byte
}

func newBus(t testing.TB) *bus { return &bus{t: t, clk: newClock()} }

func agentKey(n int) *identity.KeyPair {
	var seed [32]byte
	copy(seed[:], fmt.Sprintf("group-test-agent-%d", n))
	return identity.KeyPairFromSeed(seed)
}

// agent adds member n (not yet in a group).
func (b *bus) agent(n int) *member {
	k := agentKey(n)
	m := &member{b: b, key: k, id: k.ID()}
	b.mu.Lock()
	b.nodes = append(b.nodes, m)
	b.mu.Unlock()
	return m
}

func (m *member) config() Config {
	return Config{
		Self: m.key, Clock: m.b.clk,
		Publish: func(msg []byte) error {
			m.b.publish(m, msg)
			return nil
		},
		OnMessage: func(msg Message) { m.mu.Lock(); m.msgs = append(m.msgs, msg); m.mu.Unlock() },
		OnEvent:   func(ev Event) { m.mu.Lock(); m.events = append(m.events, ev); m.mu.Unlock() },
	}
}

// lastPublished returns the last message published by m (nil if none
// is queued anywhere).
func (b *bus) lastPublished(m *member) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last[m.id]
}

func (b *bus) publish(from *member, msg []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last == nil {
		b.last = map[identity.AgentID][]byte{}
	}
	b.last[from.id] = bytes.Clone(msg)
	for _, n := range b.nodes {
		if n != from {
			n.mu.Lock()
			n.inbox = append(n.inbox, envelopeIn{from.id, bytes.Clone(msg)})
			n.mu.Unlock()
		}
	}
}

// create makes m the founder of a new group.
func (m *member) create(t testing.TB) {
	t.Helper()
	id, err := NewID(nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := Create(id, m.config())
	if err != nil {
		t.Fatal(err)
	}
	m.g = g
}

// invite adds the joiners to inviter's group with fresh key packages;
// joiners join from the Welcome at once. Messages queued for the joiners
// before are dropped (they could not read them).
func (b *bus) invite(t testing.TB, inviter *member, joiners ...*member) *Invitation {
	t.Helper()
	var kps [][]byte
	var privs []*mls.PrivateKeyPackage
	for _, j := range joiners {
		kp, err := NewKeyPackage(j.key, b.clk)
		if err != nil {
			t.Fatal(err)
		}
		kps = append(kps, kp.KeyPackage())
		privs = append(privs, kp)
	}
	inv, err := inviter.g.Invite(kps)
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	for i, j := range joiners {
		g, err := Join(inv.Welcome, privs[i], j.config())
		privs[i].Wipe()
		if err != nil {
			t.Fatalf("join: %v", err)
		}
		j.mu.Lock()
		j.inbox = nil
		j.mu.Unlock()
		j.g = g
	}
	return inv
}

// deliver hands m its queued messages, in order; it reports how many.
func (m *member) deliver() int {
	m.mu.Lock()
	in := m.inbox
	m.inbox = nil
	m.mu.Unlock()
	for _, e := range in {
		if m.g != nil {
			m.g.Handle(e.origin, e.msg)
		}
	}
	return len(in)
}

// settle delivers until no member has anything queued.
func (b *bus) settle(t testing.TB) {
	t.Helper()
	for round := 0; ; round++ {
		if round > 1000 {
			t.Fatal("the bus does not settle")
		}
		n := 0
		for _, m := range b.nodes {
			n += m.deliver()
		}
		if n == 0 {
			return
		}
	}
}

// texts returns the data of the messages m received, by sender.
func (m *member) texts() map[identity.AgentID][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[identity.AgentID][]string{}
	for _, msg := range m.msgs {
		out[msg.From] = append(out[msg.From], string(msg.Data))
	}
	return out
}

func (m *member) eventsOf(k EventKind) []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Event
	for _, e := range m.events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// closeAll closes every member's group.
func (b *bus) closeAll() {
	for _, m := range b.nodes {
		if m.g != nil {
			m.g.Close()
		}
	}
}

// sameState fails unless every given member is in the same epoch with the
// same epoch authenticator and members.
func sameState(t testing.TB, ms ...*member) {
	t.Helper()
	a0, err := ms[0].g.EpochAuthenticator()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[1:] {
		a, err := m.g.EpochAuthenticator()
		if err != nil {
			t.Fatal(err)
		}
		if m.g.Epoch() != ms[0].g.Epoch() || !bytes.Equal(a, a0) {
			t.Fatalf("%s in epoch %d, %s in epoch %d (authenticators equal: %v)", ms[0].id.Short(), ms[0].g.Epoch(),
				m.id.Short(), m.g.Epoch(), bytes.Equal(a, a0))
		}
		if fmt.Sprint(m.g.Members()) != fmt.Sprint(ms[0].g.Members()) {
			t.Fatalf("members differ: %v vs %v", m.g.Members(), ms[0].g.Members())
		}
	}
}

// newGroupOf returns a bus with agents 1..n in one group, created by agent
// 1, with every invitation delivered; the group closes with the test.
func newGroupOf(t testing.TB, n int) (*bus, []*member) {
	t.Helper()
	b := newBus(t)
	t.Cleanup(b.closeAll)
	ms := make([]*member, n)
	for i := range ms {
		ms[i] = b.agent(i + 1)
	}
	ms[0].create(t)
	b.invite(t, ms[0], ms[1:]...)
	b.settle(t)
	return b, ms
}
