package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// The cross-language team demo. Three agents, one each in Go (this
// program), Node and Python, meet through the x0xd bootstrap node and a
// shared work directory:
//
//   - every agent subscribes to teamTopic and publishes "hello from <lang>"
//     every half second until all three have finished (the file
//     done-<lang> exists for each), printing the first hello it hears from
//     each of the others;
//   - Go creates the task list and adds teamTasks, then writes the list ID
//     to the file list-id; Node and Python join it;
//   - once Node and Python see every task, each writes ready-<lang>; when
//     both exist, Go writes claim-at, a wall-clock time (Unix ms) 500 ms
//     ahead, and at that moment both claim the contested task. Claims made
//     before either sees the other's are both kept, and every replica picks
//     the same winner, who completes it. (Should one claim reach the other
//     agent first after all, that claim is refused with CLAIMED_BY_OTHER;
//     the transcript says so.) Node and Python also claim and complete
//     their own task, Go its own;
//   - each agent finishes when its replica shows every task done, and
//     prints the final list.
//
// The same protocol is implemented by bindings/node/examples/team-agent.js
// and bindings/python/examples/team_agent.py.
const teamTopic = "x0x-demo/chat"

// teamTasks are the list's tasks: the first is contested by Node and
// Python, the others belong to Node, Python and Go.
var teamTasks = []string{"draft the launch note", "review the API (node)", "write the tutorial (python)", "tag the release (go)"}

var teamLangs = []string{"go", "node", "python"}

// runTeam is the Go agent of the team demo.
func runTeam(ctx context.Context, dir, bootstrap string, out io.Writer) error {
	a, err := newAgent(ctx, filepath.Join(dir, "go-agent"), bootstrap)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.JoinNetwork(ctx); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	say(out, "go", "agent %s joined through the bootstrap node", a.AgentID().Short())
	topic, err := a.Join(ctx, teamTopic)
	if err != nil {
		return err
	}
	defer topic.Leave()
	sub, err := topic.Subscribe()
	if err != nil {
		return err
	}
	list, err := a.CreateTaskList(ctx, "launch checklist", x0x.OpenToAll())
	if err != nil {
		return err
	}
	ids := make([]x0x.TaskID, len(teamTasks))
	for i, title := range teamTasks {
		if ids[i], err = list.Add(title, ""); err != nil {
			return err
		}
	}
	say(out, "go", "created task list %q (%s) with %d tasks", list.Name(), list.ID().String()[:16], len(ids))
	if err := writeFileAtomic(filepath.Join(dir, "list-id"), list.ID().String()); err != nil {
		return err
	}

	heard := map[string]bool{}
	mine := ids[3]
	claimedMine, claimAtWritten := false, false
	finished := false
	nextHello := time.Now()
	for {
		// Say hello every 500 ms; read the topic in between.
		if !time.Now().Before(nextHello) {
			if _, err := topic.Publish(ctx, []byte("hello from go")); err != nil {
				return err
			}
			nextHello = time.Now().Add(500 * time.Millisecond)
		}
		wait, cancel := context.WithDeadline(ctx, nextHello)
		m, err := sub.Next(wait)
		cancel()
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("timed out (heard %v, tasks %s)", heard, summary(list.Snapshot()))
		case err == nil:
			text := string(m.Payload)
			if lang, ok := strings.CutPrefix(text, "hello from "); ok && lang != "go" && !heard[lang] {
				heard[lang] = true
				say(out, "go", "heard %q on %s from agent %s", text, teamTopic, m.Origin.Short())
			}
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, x0x.ErrLagged):
		default:
			return fmt.Errorf("subscription: %w", err)
		}
		if !claimAtWritten && allExist(dir, "ready-", []string{"node", "python"}) {
			at := time.Now().Add(500 * time.Millisecond).UnixMilli()
			if err := writeFileAtomic(filepath.Join(dir, "claim-at"), fmt.Sprint(at)); err != nil {
				return err
			}
			claimAtWritten = true
			say(out, "go", "node and python see every task: both claim %q at the same moment", teamTasks[0])
		}
		if !claimedMine {
			if err := list.Claim(mine); err != nil {
				return err
			}
			if err := list.Complete(mine); err != nil {
				return err
			}
			say(out, "go", "claimed and completed %q", teamTasks[3])
			claimedMine = true
		}
		if !finished && len(heard) == 2 && teamDone(list.Snapshot()) {
			finished = true
			if err := writeFileAtomic(filepath.Join(dir, "done-go"), "done"); err != nil {
				return err
			}
			say(out, "go", "every task is done; final list:")
			for _, t := range list.Snapshot() {
				fmt.Fprintf(out, "          %s\n", describe(t))
			}
		}
		if finished && allExist(dir, "done-", teamLangs) {
			return runPrivateGroup(ctx, a, dir, out)
		}
	}
}

// privateTasks are the tasks of the private group's list, one per agent.
var privateTasks = []string{"secret task (go)", "secret task (node)", "secret task (python)"}

// runPrivateGroup is phase 2 of the team demo, the private group:
//
//   - every agent writes member-<lang>, "<agent ID> <machine>@<address>";
//     Node and Python first make themselves invitable
//     (PublishKeyPackage);
//   - Go creates an MLS group and invites Node and Python (fetching their
//     key packages and sending the Welcomes over direct connections);
//     they accept the invitation that comes from Go's agent;
//   - Go creates a task list that belongs to the group, adds
//     privateTasks and writes its ID to group-list-id; Node and Python
//     join it through the group, and each agent claims and completes its
//     own task. The list's operations travel sealed under the group's
//     keys: x0xd, which relays the overlay's traffic, reads none of them;
//   - every agent says "hello group from <lang>" in the group every half
//     second until it has heard the two others and sees every task done,
//     then writes group-done-<lang> and finishes when all three exist.
func runPrivateGroup(ctx context.Context, a *x0x.Agent, dir string, out io.Writer) error {
	self := a.AgentID().String() + " " + a.MachineID().String() + "@" + a.AdvertisedAddr()
	if err := writeFileAtomic(filepath.Join(dir, "member-go"), self); err != nil {
		return err
	}
	say(out, "go", "phase 2: creating a private group (MLS, post-quantum suite)")
	g, err := a.CreateGroup(ctx)
	if err != nil {
		return err
	}
	defer g.Close()
	msgs, err := g.Messages()
	if err != nil {
		return err
	}
	defer msgs.Close()
	for _, lang := range []string{"node", "python"} {
		if err := inviteMember(ctx, a, g, dir, lang, out); err != nil {
			return err
		}
	}
	for len(g.Members()) != 3 {
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for the members: %w", err)
		}
	}
	list, err := g.CreateTaskList(ctx, "private plan")
	if err != nil {
		return err
	}
	var mine x0x.TaskID
	for i, title := range privateTasks {
		id, err := list.Add(title, "only the group's members can read this")
		if err != nil {
			return err
		}
		if i == 0 {
			mine = id
		}
	}
	if err := writeFileAtomic(filepath.Join(dir, "group-list-id"), list.ID().String()); err != nil {
		return err
	}
	say(out, "go", "created the group's task list %s (sealed with the group's epoch keys)", list.ID().String()[:16])
	if err := list.Claim(mine); err != nil {
		return err
	}
	if err := list.Complete(mine); err != nil {
		return err
	}
	heard := map[string]bool{}
	finished := false
	next := time.Now()
	for {
		if !time.Now().Before(next) {
			if err := g.Publish(ctx, []byte("hello group from go")); err != nil {
				return err
			}
			next = time.Now().Add(500 * time.Millisecond)
		}
		wait, cancel := context.WithDeadline(ctx, next)
		m, err := msgs.Next(wait)
		cancel()
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("phase 2 timed out (heard %v, tasks %s)", heard, summary(list.Snapshot()))
		case err == nil:
			if lang, ok := strings.CutPrefix(string(m.Data), "hello group from "); ok && !heard[lang] {
				heard[lang] = true
				say(out, "go", "heard %q in the group from agent %s (epoch %d)", m.Data, m.From.Short(), m.Epoch)
			}
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, x0x.ErrLagged):
		default:
			return fmt.Errorf("group messages: %w", err)
		}
		if !finished && len(heard) == 2 && allDone(list.Snapshot(), len(privateTasks)) {
			finished = true
			if err := writeFileAtomic(filepath.Join(dir, "group-done-go"), "done"); err != nil {
				return err
			}
			say(out, "go", "the private list is done (group epoch %d, members %d); final list:", g.Epoch(), len(g.Members()))
			for _, t := range list.Snapshot() {
				fmt.Fprintf(out, "          %s\n", describe(t))
			}
		}
		if finished && allExist(dir, "group-done-", teamLangs) {
			return nil
		}
	}
}

// inviteMember invites the agent of member-<lang> into g once it is
// invitable, connecting to its machine first.
func inviteMember(ctx context.Context, a *x0x.Agent, g *x0x.Group, dir, lang string, out io.Writer) error {
	var fields []string
	for len(fields) != 2 {
		if b, err := os.ReadFile(filepath.Join(dir, "member-"+lang)); err == nil {
			fields = strings.Fields(string(b))
		}
		if len(fields) != 2 {
			if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
				return fmt.Errorf("waiting for member-%s: %w", lang, err)
			}
		}
	}
	agent, err := x0x.ParseID(fields[0])
	if err != nil {
		return fmt.Errorf("member-%s: %w", lang, err)
	}
	if _, err := a.Connect(ctx, fields[1]); err != nil && !errors.Is(err, x0x.ErrSelfConnect) {
		return fmt.Errorf("connect to %s's machine: %w", lang, err)
	}
	if err := a.WaitForAgent(ctx, agent); err != nil {
		return err
	}
	for {
		err := g.Invite(ctx, agent)
		if err == nil {
			say(out, "go", "invited %s's agent %s (key package fetched, Welcome sent directly)", lang, agent.Short())
			return nil
		}
		if !errors.Is(err, x0x.ErrInvitationRefused) {
			return fmt.Errorf("invite %s: %w", lang, err)
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil { // not invitable yet
			return fmt.Errorf("invite %s: %w", lang, err)
		}
	}
}

// allDone reports whether the list holds n tasks, all done.
func allDone(tasks []x0x.Task, n int) bool {
	if len(tasks) != n {
		return false
	}
	for _, t := range tasks {
		if t.State != x0x.TaskDone {
			return false
		}
	}
	return true
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// teamDone reports whether every task is done.
func teamDone(tasks []x0x.Task) bool { return allDone(tasks, len(teamTasks)) }

// describe renders one task of the final list.
func describe(t x0x.Task) string {
	s := fmt.Sprintf("[%s] %-30s", map[x0x.TaskState]string{x0x.TaskEmpty: " ", x0x.TaskClaimed: "~", x0x.TaskDone: "x"}[t.State], t.Title)
	if t.State != x0x.TaskEmpty {
		s += " by " + t.Claimant.Short()
	}
	if len(t.Claims) > 1 {
		others := make([]string, len(t.Claims))
		for i, c := range t.Claims {
			others[i] = c.Short()
		}
		s += fmt.Sprintf(" (claimed concurrently by %s)", strings.Join(others, " and "))
	}
	return s
}

func summary(tasks []x0x.Task) string {
	parts := make([]string, len(tasks))
	for i, t := range tasks {
		parts[i] = fmt.Sprintf("%s:%s/%d", t.Title, t.State, len(t.Claims))
	}
	return strings.Join(parts, ", ")
}

func allExist(dir, prefix string, names []string) bool {
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, prefix+n)); err != nil {
			return false
		}
	}
	return true
}

// writeFileAtomic writes data to path through a rename, so readers never
// see a partial file.
func writeFileAtomic(path, data string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
