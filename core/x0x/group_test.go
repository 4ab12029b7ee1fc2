package x0x

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/group"
	"github.com/saorsa-labs/x0x-go/core/transport"
	"github.com/saorsa-labs/x0x-go/core/wire"
)

// nextEvent waits for an agent event of kind k.
func nextEvent(ctx context.Context, t *testing.T, s *Stream[Event], k EventKind) Event {
	t.Helper()
	for {
		ev, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %v: %v", k, err)
		}
		if ev.Kind == k {
			return ev
		}
	}
}

// nextGroupEvent waits for a group event of kind k.
func nextGroupEvent(ctx context.Context, t *testing.T, s *Stream[GroupEvent], k GroupEventKind) GroupEvent {
	t.Helper()
	for {
		ev, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %v: %v", k, err)
		}
		if ev.Kind == k {
			return ev
		}
	}
}

// invite has inviter's group invite agent a, which accepts.
func invite(ctx context.Context, t *testing.T, g *Group, a *Agent) *Group {
	t.Helper()
	evs, err := a.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer evs.Close()
	if err := g.Invite(ctx, a.AgentID()); err != nil {
		t.Fatalf("invite %s: %v", a.AgentID().Short(), err)
	}
	ev := nextEvent(ctx, t, evs, EventGroupInvitation)
	if ev.Group != g.ID() || ev.From != g.agent.AgentID() {
		t.Fatalf("invitation %+v", ev)
	}
	invs := a.Invitations()
	if len(invs) != 1 || invs[0].Group != g.ID() || !slices.Contains(invs[0].Members, a.AgentID()) {
		t.Fatalf("invitations %+v", invs)
	}
	joined, err := a.AcceptInvitation(ctx, g.ID())
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Invitations()) != 0 {
		t.Fatal("the accepted invitation is still pending")
	}
	return joined
}

// waitMembers waits until every group sees exactly want as members, in
// one epoch.
func waitMembers(t *testing.T, gs []*Group, want ...AgentID) {
	t.Helper()
	slices.SortFunc(want, func(a, b AgentID) int { return slices.Compare(a[:], b[:]) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for _, g := range gs {
			if fmt.Sprint(g.Members()) != fmt.Sprint(want) || g.Epoch() != gs[0].Epoch() {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			for _, g := range gs {
				t.Logf("%s: epoch %d members %v", g.agent.AgentID().Short(), g.Epoch(), g.Members())
			}
			t.Fatalf("members never became %v", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGroupInviteMessagesTaskListRemoveLeave(t *testing.T) {
	agents := cluster(t, 4)
	a, b, c, d := agents[0], agents[1], agents[2], agents[3]
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for _, x := range []*Agent{b, c} {
		kp, err := x.PublishKeyPackage(ctx)
		if err != nil || len(kp) == 0 {
			t.Fatalf("publish key package: %v", err)
		}
	}
	ga, err := a.CreateGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Group(ga.ID()); err != nil || got != ga {
		t.Fatalf("Group: %v", err)
	}
	if err := ga.Invite(ctx, d.AgentID()); !errors.Is(err, ErrInvitationRefused) {
		t.Fatalf("inviting an agent that published no key package: %v", err)
	}
	gb := invite(ctx, t, ga, b)
	gc := invite(ctx, t, gb, c) // any member may invite
	if err := ga.Invite(ctx, c.AgentID()); !errors.Is(err, ErrAlreadyMember) {
		t.Fatalf("inviting a member: %v", err)
	}
	all := []*Group{ga, gb, gc}
	waitMembers(t, all, a.AgentID(), b.AgentID(), c.AgentID())
	waitTopic(t, []*Agent{a, b, c}, group.ID(ga.ID()).TopicName())

	// Messages: every member reads the others', once.
	streams := make([]*Stream[GroupMessage], 3)
	for i, g := range all {
		if streams[i], err = g.Messages(); err != nil {
			t.Fatal(err)
		}
		defer streams[i].Close()
	}
	for i, g := range all {
		if err := g.Publish(ctx, []byte(fmt.Sprintf("hello from %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range streams {
		got := map[string]bool{}
		for len(got) < 2 {
			m, err := s.Next(ctx)
			if err != nil {
				t.Fatalf("member %d: %v (got %v)", i, err, got)
			}
			if m.Group != ga.ID() || m.From == all[i].agent.AgentID() {
				t.Fatalf("member %d got %+v", i, m)
			}
			got[string(m.Data)] = true
		}
	}

	// A task list of the group: members write, an outsider on the list's
	// topic reads nothing and cannot write.
	la, err := ga.CreateTaskList(ctx, "private sprint")
	if err != nil {
		t.Fatal(err)
	}
	lb, err := gb.JoinTaskList(ctx, la.ID())
	if err != nil {
		t.Fatal(err)
	}
	lc, err := gc.JoinTaskList(ctx, la.ID())
	if err != nil {
		t.Fatal(err)
	}
	ld, err := d.JoinTaskList(ctx, la.ID()) // the outsider, without the group
	if err != nil {
		t.Fatal(err)
	}
	waitTopic(t, []*Agent{a, b, c, d}, TaskListTopic(la.ID()))
	if _, err := la.Add("first", "only members read this"); err != nil {
		t.Fatal(err)
	}
	waitSame(t, []*TaskList{la, lb, lc}, 1)
	id, err := lb.Add("second", "")
	if err != nil {
		t.Fatal(err)
	}
	waitSame(t, []*TaskList{la, lb, lc}, 2)
	if err := lc.Claim(id); err != nil {
		t.Fatal(err)
	}
	if err := lc.Complete(id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if tk, err := la.Task(id); err == nil && tk.State == TaskDone && tk.Claimant == c.AgentID() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the completion never reached the creator")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(ld.Snapshot()); n != 0 || ld.Name() != "" {
		t.Fatalf("the outsider reads %d tasks, name %q", n, ld.Name())
	}
	if _, err := ld.Add("spam", ""); !errors.Is(err, ErrNotWriter) {
		t.Fatalf("the outsider writes: %v", err)
	}
	if again, err := ga.JoinTaskList(ctx, la.ID()); err != nil || again != la {
		t.Fatalf("joining the group's list again: %v", err)
	}
	if _, err := a.JoinTaskList(ctx, la.ID()); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("joining a group's list outside the group: %v", err)
	}

	// Removal: c's replica closes and its list with it; the others go on.
	evc, err := gc.Events()
	if err != nil {
		t.Fatal(err)
	}
	if err := ga.Remove(ctx, c.AgentID()); err != nil {
		t.Fatal(err)
	}
	nextGroupEvent(ctx, t, evc, GroupRemoved)
	waitMembers(t, []*Group{ga, gb}, a.AgentID(), b.AgentID())
	if _, err := c.Group(ga.ID()); !errors.Is(err, ErrGroupNotFound) {
		deadline := time.Now().Add(5 * time.Second)
		for err == nil && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			_, err = c.Group(ga.ID())
		}
		if !errors.Is(err, ErrGroupNotFound) {
			t.Fatalf("the removed member's group is still open: %v", err)
		}
	}
	if err := gc.Publish(ctx, []byte("ghost")); !errors.Is(err, ErrClosed) {
		t.Fatalf("publishing after removal: %v", err)
	}

	// Declining: d is added by the Welcome's commit, then removed by the
	// inviter when it declines.
	if _, err := d.PublishKeyPackage(ctx); err != nil {
		t.Fatal(err)
	}
	evd, err := d.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer evd.Close()
	if err := ga.Invite(ctx, d.AgentID()); err != nil {
		t.Fatal(err)
	}
	nextEvent(ctx, t, evd, EventGroupInvitation)
	if err := d.DeclineInvitation(ctx, ga.ID()); err != nil {
		t.Fatal(err)
	}
	if err := d.DeclineInvitation(ctx, ga.ID()); !errors.Is(err, ErrInvitationNotFound) {
		t.Fatalf("declining twice: %v", err)
	}
	waitMembers(t, []*Group{ga, gb}, a.AgentID(), b.AgentID())

	// A late joiner accepts what members removed before it joined wrote
	// (c's completion): the inviter tells it the past members.
	if err := ld.Leave(); err != nil {
		t.Fatal(err)
	}
	gd := invite(ctx, t, gb, d)
	waitMembers(t, []*Group{ga, gb, gd}, a.AgentID(), b.AgentID(), d.AgentID())
	if !gd.core().WasMember(c.AgentID()) {
		t.Fatal("the joiner does not know the removed member wrote to the group")
	}
	ld, err = gd.JoinTaskList(ctx, la.ID())
	if err != nil {
		t.Fatal(err)
	}
	waitTopic(t, []*Agent{d}, TaskListTopic(la.ID()))
	deadline = time.Now().Add(30 * time.Second)
	for {
		if tk, err := ld.Task(id); err == nil && tk.State == TaskDone && tk.Claimant == c.AgentID() && len(ld.Snapshot()) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the late joiner never caught up: %+v", ld.Snapshot())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := gd.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, []*Group{ga, gb}, a.AgentID(), b.AgentID())

	// Leaving: a commits b's removal.
	evb, err := gb.Events()
	if err != nil {
		t.Fatal(err)
	}
	if err := gb.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	nextGroupEvent(ctx, t, evb, GroupRemoved)
	waitMembers(t, []*Group{ga}, a.AgentID())
	if err := ga.Leave(ctx); !errors.Is(err, ErrNotMember) {
		t.Fatalf("the last member leaving: %v", err)
	}
	if ga.Close() != nil || len(a.Groups()) != 0 {
		t.Fatal("close")
	}
}

// Two members commit at the same moment over the real network while all
// three keep publishing: every member ends in the same epoch with the same
// tree (equal epoch authenticators), and every message arrives once.
func TestGroupConcurrentCommits(t *testing.T) {
	agents := cluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for _, x := range agents[1:] {
		if _, err := x.PublishKeyPackage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ga, err := agents[0].CreateGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gs := []*Group{ga, invite(ctx, t, ga, agents[1]), nil}
	gs[2] = invite(ctx, t, ga, agents[2])
	waitMembers(t, gs, agents[0].AgentID(), agents[1].AgentID(), agents[2].AgentID())
	waitTopic(t, agents, group.ID(ga.ID()).TopicName())
	streams := make([]*Stream[GroupMessage], 3)
	for i, g := range gs {
		if streams[i], err = g.Messages(); err != nil {
			t.Fatal(err)
		}
		defer streams[i].Close()
	}
	start := ga.Epoch()
	const per = 5
	done := make(chan error, 3)
	for i, g := range gs {
		go func() {
			for k := range per {
				if err := g.Publish(ctx, []byte(fmt.Sprintf("%d/%d", i, k))); err != nil {
					done <- err
					return
				}
				if k == 1 && i > 0 {
					if err := g.Update(ctx); err != nil { // members 1 and 2 commit at once
						done <- err
						return
					}
				}
			}
			done <- nil
		}()
	}
	for range gs {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range streams {
		got := map[string]bool{}
		for len(got) < 2*per {
			m, err := s.Next(ctx)
			if err != nil {
				t.Fatalf("member %d: %v after %d messages", i, err, len(got))
			}
			if got[string(m.Data)] {
				t.Fatalf("member %d got %q twice", i, m.Data)
			}
			got[string(m.Data)] = true
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		a0, _ := gs[0].EpochAuthenticator()
		same := gs[0].Epoch() >= start+2
		for _, g := range gs[1:] {
			a, _ := g.EpochAuthenticator()
			same = same && g.Epoch() == gs[0].Epoch() && string(a) == string(a0)
		}
		if same {
			var rb uint64
			for _, g := range gs {
				rb += g.core().Stats().Rollbacks
			}
			t.Logf("converged in epoch %d from %d after %d rollbacks", gs[0].Epoch(), start, rb)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("epochs %d %d %d never converged (from %d)", gs[0].Epoch(), gs[1].Epoch(), gs[2].Epoch(), start)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func FuzzDecodeGroupWire(f *testing.F) {
	for _, m := range []groupWire{
		{T: gwKeyPackageRequest, Req: 1},
		{T: gwKeyPackage, Req: 1, KP: []byte{1, 2}},
		{T: gwKeyPackage, Req: 1, Refused: true},
		{T: gwWelcome, Group: make([]byte, 32), Hash: make([]byte, 32), Welcome: []byte{1}, Ever: make([]byte, 64)},
		{T: gwDecline, Group: make([]byte, 32)},
	} {
		b, err := wire.Marshal(&m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeGroupWire(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		switch m.T {
		case gwWelcome:
			if len(m.Group) != 32 || len(m.Hash) != 32 || len(m.Ever)%32 != 0 || len(m.Welcome) == 0 {
				t.Fatalf("accepted %+v", m)
			}
		case gwDecline:
			if len(m.Group) != 32 {
				t.Fatalf("accepted %+v", m)
			}
		}
	})
}

// Hostile agents: a Welcome nobody asked for is dropped before the user
// hears of it, and key packages are rate-limited per asking agent.
func TestGroupServiceRefusesStrangers(t *testing.T) {
	agents := cluster(t, 3)
	a, b, d := agents[0], agents[1], agents[2]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := b.PublishKeyPackage(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitForAgent(ctx, b.AgentID()); err != nil {
		t.Fatal(err)
	}
	// d forges a Welcome into a group of its own making, with a garbage
	// body, and one that is a real Welcome but for a key package b never
	// gave d.
	forged, _ := wire.Marshal(&groupWire{T: gwWelcome, Group: make([]byte, 32), Hash: make([]byte, 32), Welcome: []byte("junk")})
	if err := d.node.SendService(ctx, transport.ServiceGroups, d.AgentID(), b.AgentID(), forged); err != nil {
		t.Fatal(err)
	}
	gd, err := d.CreateGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := group.NewKeyPackage(b.agent, nil) // b's key, but not one b issued
	if err != nil {
		t.Fatal(err)
	}
	inv, err := gd.core().Invite([][]byte{kp.KeyPackage()})
	kp.Wipe()
	if err != nil {
		t.Fatal(err)
	}
	real, _ := wire.Marshal(&groupWire{T: gwWelcome, Group: gd.id[:], Hash: inv.CommitHash[:], Welcome: inv.Welcome, Epoch: inv.Epoch})
	if err := d.node.SendService(ctx, transport.ServiceGroups, d.AgentID(), b.AgentID(), real); err != nil {
		t.Fatal(err)
	}
	// Then a genuine invitation: it must be the only one b reports.
	evs, err := b.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer evs.Close()
	ga, err := a.CreateGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ga.Invite(ctx, b.AgentID()); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(ctx, t, evs, EventGroupInvitation); ev.From != a.AgentID() {
		t.Fatalf("invitation from %s", ev.From.Short())
	}
	if invs := b.Invitations(); len(invs) != 1 || invs[0].From != a.AgentID() {
		t.Fatalf("invitations %+v", invs)
	}
	// Key packages: 4 per asking agent per minute (a's invite used one).
	got := 0
	for range 5 {
		if _, err := d.fetchKeyPackage(ctx, b.AgentID()); err == nil {
			got++
		} else if !errors.Is(err, ErrInvitationRefused) {
			t.Fatal(err)
		}
	}
	if got != keyPackageRate {
		t.Fatalf("d obtained %d key packages in a burst, want %d", got, keyPackageRate)
	}
}

// A member's group survives a restart of its agent: the state is saved
// (sealed) when the agent closes and restored when it starts again, and a
// commit made while it was away reaches it from its topic neighbours.
func TestGroupSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	fast := OverlayConfig{AntiEntropyInterval: time.Second}
	boot := build(t, NewBuilder().WithDataDir(t.TempDir()).WithKDF(cheapKDF()).WithOverlay(fast))
	bootAddr := fmt.Sprintf("%s@%s", boot.MachineID(), boot.Addr())
	start := func(dir string) *Agent {
		a, err := NewBuilder().WithDataDir(dir).WithKDF(cheapKDF()).WithOverlay(fast).WithBootstrap(bootAddr).Build(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.JoinNetwork(ctx); err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := start(t.TempDir())
	defer a.Close()
	dirB := t.TempDir()
	b := start(dirB)
	if _, err := b.PublishKeyPackage(ctx); err != nil {
		t.Fatal(err)
	}
	ga, err := a.CreateGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WaitForAgent(ctx, b.AgentID()); err != nil {
		t.Fatal(err)
	}
	gb := invite(ctx, t, ga, b)
	waitMembers(t, []*Group{ga, gb}, a.AgentID(), b.AgentID())
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// While b is away, a updates its keys.
	if err := ga.Update(ctx); err != nil {
		t.Fatal(err)
	}
	b = start(dirB)
	defer b.Close()
	gb, err = b.Group(ga.ID())
	if err != nil {
		t.Fatalf("the group was not restored: %v (groups %v)", err, b.Groups())
	}
	waitMembers(t, []*Group{ga, gb}, a.AgentID(), b.AgentID())
	msgs, err := gb.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer msgs.Close()
	back, err := ga.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	waitTopic(t, []*Agent{a, b}, group.ID(ga.ID()).TopicName())
	if err := ga.Publish(ctx, []byte("welcome back")); err != nil {
		t.Fatal(err)
	}
	if m, err := msgs.Next(ctx); err != nil || string(m.Data) != "welcome back" {
		t.Fatalf("restored member: %q %v", m.Data, err)
	}
	if err := gb.Publish(ctx, []byte("thanks")); err != nil {
		t.Fatal(err)
	}
	if m, err := back.Next(ctx); err != nil || string(m.Data) != "thanks" {
		t.Fatalf("from the restored member: %q %v", m.Data, err)
	}
	// The stored state is sealed: the file holds no group secret in the
	// clear that a reader could use, and no plaintext message.
	raw, err := os.ReadFile(filepath.Join(dirB, GroupFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("x0xG")) || bytes.Contains(raw, ga.id[:]) {
		t.Fatal("the group store holds a state or group ID in the clear")
	}
}

// A stranger holding one of a fresh joiner's key packages cannot swap the
// joiner's replica for a group of its own making under the same ID (the
// automatic switch after a lost fork is only for current members): its
// Welcome is an ordinary invitation the user may decline.
func TestStrangerCannotSwapAReplica(t *testing.T) {
	agents := cluster(t, 3)
	a, b, d := agents[0], agents[1], agents[2]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := b.PublishKeyPackage(ctx); err != nil {
		t.Fatal(err)
	}
	ga, err := a.CreateGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gb := invite(ctx, t, ga, b)
	waitMembers(t, []*Group{ga, gb}, a.AgentID(), b.AgentID())
	if err := d.WaitForAgent(ctx, b.AgentID()); err != nil {
		t.Fatal(err)
	}
	kp, err := d.fetchKeyPackage(ctx, b.AgentID())
	if err != nil {
		t.Fatal(err)
	}
	fake, err := group.Create(group.ID(ga.ID()), group.Config{Self: d.agent, Publish: func([]byte) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	inv, err := fake.Invite([][]byte{kp})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := b.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer evs.Close()
	msg, _ := wire.Marshal(&groupWire{T: gwWelcome, Group: ga.id[:], Welcome: inv.Welcome, Epoch: 1 << 40, Hash: make([]byte, 32)})
	if err := d.node.SendService(ctx, transport.ServiceGroups, d.AgentID(), b.AgentID(), msg); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(ctx, t, evs, EventGroupInvitation); ev.From != d.AgentID() {
		t.Fatalf("invitation from %s", ev.From.Short())
	}
	if got := gb.Members(); slices.Contains(got, d.AgentID()) || len(got) != 2 {
		t.Fatalf("the stranger swapped the replica: members %v", got)
	}
	if err := b.DeclineInvitation(ctx, ga.ID()); err != nil {
		t.Fatal(err)
	}
}
