package group

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/mls"
)

func TestInviteSendLeave(t *testing.T) {
	b := newBus(t)
	defer b.closeAll()
	a, c, d := b.agent(1), b.agent(2), b.agent(3)
	a.create(t)
	b.invite(t, a, c)
	b.invite(t, c, d) // any member may invite
	b.settle(t)
	sameState(t, a, c, d)
	if got := a.g.Members(); len(got) != 3 {
		t.Fatalf("members %v", got)
	}
	if len(a.eventsOf(EventMemberJoined)) != 2 || len(c.eventsOf(EventMemberJoined)) != 1 {
		t.Fatalf("joined events: a %v c %v", a.eventsOf(EventMemberJoined), c.eventsOf(EventMemberJoined))
	}
	for i, m := range []*member{a, c, d} {
		if err := m.g.Send([]byte(fmt.Sprintf("hello from %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	b.settle(t)
	for _, m := range []*member{a, c, d} {
		got := m.texts()
		if len(got) != 2 {
			t.Fatalf("%s received from %d senders: %v", m.id.Short(), len(got), got)
		}
		for from, texts := range got {
			if len(texts) != 1 || from == m.id {
				t.Fatalf("%s received %v from %s", m.id.Short(), texts, from.Short())
			}
		}
	}
	// Presence: every member announced itself on joining.
	if on := a.g.Online(); len(on) != 3 {
		t.Fatalf("online %v", on)
	}
	// d leaves: a (the lowest leaf) commits the removal at once.
	if err := d.g.Leave(); err != nil {
		t.Fatal(err)
	}
	b.settle(t)
	if !d.g.Closed() || len(d.eventsOf(EventRemoved)) != 1 {
		t.Fatalf("the leaver is still in: closed %v events %v", d.g.Closed(), d.events)
	}
	sameState(t, a, c)
	if a.g.IsMember(d.id) || !a.g.WasMember(d.id) || len(c.eventsOf(EventMemberLeft)) != 1 {
		t.Fatalf("after leaving: member %v was %v left events %v", a.g.IsMember(d.id), a.g.WasMember(d.id), c.eventsOf(EventMemberLeft))
	}
	if err := d.g.Send([]byte("ghost")); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after leaving: %v", err)
	}
}

func TestLeaveTurnsWhenTheFirstMemberIsSilent(t *testing.T) {
	b, ms := newGroupOf(t, 3)
	a, c, d := ms[0], ms[1], ms[2]
	if err := d.g.Leave(); err != nil {
		t.Fatal(err)
	}
	// a (first turn) is offline: only c receives the request, and waits
	// its turn.
	c.deliver()
	if c.g.IsMember(d.id) == false {
		t.Fatal("c removed d before its turn")
	}
	b.clk.advance(DefaultRemovalDelay)
	d.deliver()
	if !d.g.Closed() {
		t.Fatal("c did not commit the removal on its turn")
	}
	b.settle(t)
	sameState(t, a, c)
}

func TestInviteChecksKeyPackages(t *testing.T) {
	b := newBus(t)
	defer b.closeAll()
	a, c := b.agent(1), b.agent(2)
	a.create(t)
	kp, err := NewKeyPackage(c.key, b.clk)
	if err != nil {
		t.Fatal(err)
	}
	defer kp.Wipe()
	if _, err := a.g.Invite([][]byte{kp.KeyPackage(), kp.KeyPackage()}); !errors.Is(err, ErrBadKeyPackage) {
		t.Fatalf("two key packages of one agent: %v", err)
	}
	bad := kp.KeyPackage()
	bad[len(bad)-5] ^= 1
	if _, err := a.g.Invite([][]byte{bad}); !errors.Is(err, ErrBadKeyPackage) {
		t.Fatalf("a damaged key package: %v", err)
	}
	// A key package whose credential names another agent than its key.
	other, err := mls.NewKeyPackage(Suite, credential(agentKey(9)), c.key.PrivateBytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Wipe()
	if _, err := a.g.Invite([][]byte{other.KeyPackage()}); !errors.Is(err, ErrBadKeyPackage) {
		t.Fatalf("a key package posing as another agent: %v", err)
	}
	if got, err := KeyPackageAgent(kp.KeyPackage(), b.clk); err != nil || got != c.id {
		t.Fatalf("KeyPackageAgent: %v %v", got, err)
	}
	if _, err := a.g.Invite([][]byte{kp.KeyPackage()}); err != nil {
		t.Fatal(err)
	}
	kp2, _ := NewKeyPackage(c.key, b.clk)
	defer kp2.Wipe()
	if _, err := a.g.Invite([][]byte{kp2.KeyPackage()}); !errors.Is(err, ErrAlreadyMember) {
		t.Fatalf("inviting a member: %v", err)
	}
	if err := a.g.Remove(agentKey(7).ID()); !errors.Is(err, ErrNotMember) {
		t.Fatalf("removing a stranger: %v", err)
	}
	if err := a.g.Remove(a.id); !errors.Is(err, ErrNotMember) {
		t.Fatalf("removing oneself: %v", err)
	}
	if err := a.g.Send(make([]byte, MaxData+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized data: %v", err)
	}
}

// Forward secrecy: a removed member's state, kept from before its removal
// (as an attacker who seized it would), decrypts nothing sent after it.
func TestRemovedMemberReadsNothingAfter(t *testing.T) {
	b, ms := newGroupOf(t, 3)
	a, c, d := ms[0], ms[1], ms[2]
	d.g.mu.Lock()
	kept, err := d.g.cur.Clone()
	d.g.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	if err := a.g.Send([]byte("before")); err != nil {
		t.Fatal(err)
	}
	if err := a.g.Remove(d.id); err != nil {
		t.Fatal(err)
	}
	if err := a.g.Send([]byte("after")); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	captured := slices.Clone(d.inbox) // everything an eavesdropper on the topic sees
	d.mu.Unlock()
	b.settle(t)
	if !d.g.Closed() {
		t.Fatal("d was not removed")
	}
	if got := c.texts()[a.id]; len(got) != 2 {
		t.Fatalf("c received %v", got)
	}
	read := 0
	for _, e := range captured {
		r, err := kept.Process(e.msg)
		if err != nil {
			continue
		}
		if r.Kind == mls.KindApplication {
			_, _, data, _ := decodeEnvelope(r.ApplicationData)
			if string(data) == "after" {
				t.Fatal("the removed member's old state read a message sent after its removal")
			}
			read++
		}
	}
	if read != 1 {
		t.Fatalf("the kept state read %d messages, want exactly the one sent before the removal", read)
	}
}

// Post-compromise security: state stolen from a member before its update
// follows nothing after it.
func TestUpdateHealsAStolenState(t *testing.T) {
	b, ms := newGroupOf(t, 2)
	a, c := ms[0], ms[1]
	c.g.mu.Lock()
	stolen, err := c.g.cur.Clone()
	c.g.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	defer stolen.Close()
	if err := a.g.Send([]byte("before the update")); err != nil {
		t.Fatal(err)
	}
	// The attacker reads the traffic until c heals.
	a.deliverTo(t, stolen, c, 1)
	if err := c.g.Update(); err != nil {
		t.Fatal(err)
	}
	b.settle(t)
	sameState(t, a, c)
	if err := a.g.Send([]byte("after the update")); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	captured := slices.Clone(c.inbox)
	c.mu.Unlock()
	b.settle(t)
	if got := c.texts()[a.id]; len(got) != 2 {
		t.Fatalf("c received %v", got)
	}
	for _, e := range captured {
		if r, err := stolen.Process(e.msg); err == nil && r.Kind == mls.KindApplication {
			t.Fatalf("the stolen state read %q after the update", r.ApplicationData)
		}
	}
	// The attacker also had c's update commit, which it cannot follow.
	if stolen.Epoch() == c.g.Epoch() {
		t.Fatal("the stolen state followed the update")
	}
}

// deliverTo processes, in the attacker's state st, the first n messages
// queued for victim (without removing them).
func (m *member) deliverTo(t *testing.T, st *mls.Group, victim *member, n int) {
	t.Helper()
	victim.mu.Lock()
	in := slices.Clone(victim.inbox)
	victim.mu.Unlock()
	read := 0
	for _, e := range in[:n] {
		if r, err := st.Process(e.msg); err == nil && r.Kind == mls.KindApplication {
			read++
		}
	}
	if read != n {
		t.Fatalf("the stolen state read %d of %d messages before the update", read, n)
	}
}

func TestSealOpen(t *testing.T) {
	b, ms := newGroupOf(t, 3)
	a, c, d := ms[0], ms[1], ms[2]
	label := []byte("list-1")
	if _, err := a.g.Seal(label, nil, bytes.NewReader(nil)); err == nil {
		t.Fatal("Seal with an empty random source succeeded")
	}
	rnd := bytes.NewReader(bytes.Repeat([]byte{7}, 1<<10))
	sealed, err := a.g.Seal(label, []byte("task delta"), rnd)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := c.g.Open(label, sealed); err != nil || string(pt) != "task delta" {
		t.Fatalf("open: %q %v", pt, err)
	}
	if _, err := c.g.Open([]byte("list-2"), sealed); !errors.Is(err, ErrMalformed) {
		t.Fatalf("another label: %v", err)
	}
	bad := bytes.Clone(sealed)
	bad[len(bad)-1] ^= 1
	if _, err := c.g.Open(label, bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("tampered: %v", err)
	}
	// After d's removal, d cannot open what is sealed in the new epoch;
	// members still open what was sealed in the old one.
	if err := a.g.Remove(d.id); err != nil {
		t.Fatal(err)
	}
	b.settle(t)
	newer, err := a.g.Seal(label, []byte("secret"), rnd)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := c.g.Open(label, sealed); err != nil || string(pt) != "task delta" {
		t.Fatalf("old epoch within the window: %q %v", pt, err)
	}
	if _, err := d.g.Open(label, newer); !errors.Is(err, ErrClosed) {
		t.Fatalf("removed member: %v", err)
	}
	// Past the fork window the old epoch's keys are gone.
	for range DefaultForkWindow + 1 {
		if err := a.g.Update(); err != nil {
			t.Fatal(err)
		}
	}
	b.settle(t)
	if _, err := c.g.Open(label, sealed); !errors.Is(err, ErrUnknownEpoch) {
		t.Fatalf("an epoch outside the window: %v", err)
	}
}

func TestForkWindowForgetsByTime(t *testing.T) {
	b, ms := newGroupOf(t, 2)
	a, c := ms[0], ms[1]
	if err := a.g.Update(); err != nil {
		t.Fatal(err)
	}
	b.settle(t)
	if a.g.ForkPoints() == 0 || c.g.ForkPoints() == 0 {
		t.Fatal("no fork points kept")
	}
	b.clk.advance(DefaultPresenceInterval) // past ForkTime: the beacon trims
	if a.g.ForkPoints() != 0 || c.g.ForkPoints() != 0 {
		t.Fatalf("fork points kept after the fork time: %d, %d", a.g.ForkPoints(), c.g.ForkPoints())
	}
	b.settle(t)
}

func TestEnvelopeAndWindow(t *testing.T) {
	for _, tc := range []struct {
		b   []byte
		bad bool
	}{
		{encodeEnvelope(kindMessage, 5, []byte("x")), false},
		{encodeEnvelope(kindPresence, 5, nil), false},
		{encodeEnvelope(kindPresence, 5, []byte("x")), true},
		{encodeEnvelope(kindLeave, 5, []byte("x")), true},
		{encodeEnvelope(9, 5, nil), true},
		{[]byte{2, 1, 0, 0, 0, 0, 0, 0, 0, 1}, true},
		{[]byte{1, 1, 0}, true},
	} {
		_, _, _, err := decodeEnvelope(tc.b)
		if (err != nil) != tc.bad || (err != nil && !errors.Is(err, ErrMalformed)) {
			t.Fatalf("%x: %v", tc.b, err)
		}
	}
	var w seqWindow
	for _, s := range []uint64{100, 90, 101, 5000, 4000, 4999} {
		if !w.add(s) {
			t.Fatalf("%d refused as seen", s)
		}
	}
	for _, s := range []uint64{100, 5000, 4999, 4000, 3975, 3000} {
		if w.add(s) {
			t.Fatalf("%d accepted twice (or too old)", s)
		}
	}
	if !w.add(3977) || !w.add(5000+seqWindowSize) || w.add(4999) {
		t.Fatal("window shift")
	}
}

func TestHandleDropsGarbage(t *testing.T) {
	b, ms := newGroupOf(t, 2)
	a, c := ms[0], ms[1]
	epoch := a.g.Epoch()
	kp, _ := NewKeyPackage(c.key, b.clk)
	defer kp.Wipe()
	for _, junk := range [][]byte{nil, {0}, bytes.Repeat([]byte{0xff}, 100), kp.KeyPackage()} {
		a.g.Handle(c.id, junk)
	}
	if a.g.Epoch() != epoch || a.g.Closed() {
		t.Fatal("garbage changed the group")
	}
	_ = identity.AgentID{}
	_ = time.Second
}
