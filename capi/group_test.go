package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// These tests call the exported functions as C does. A test file cannot
// import "C", so it names the C types by the Go names cgo gives them in
// this package (_Ctype_*), and frees event records with the package's own
// C helper (_Cfunc_*).
type (
	cHandle = _Ctype_uint64_t
	cEvent  = _Ctype_x0x_event
)

// groupTestAgent is an agent with a queue large enough that a test
// draining another agent for a while loses nothing.
func groupTestAgent(t *testing.T, bootstrap ...string) (uint64, *agentEntry) {
	t.Helper()
	return testAgentQueue(t, 4096, bootstrap...)
}

// cID points C at the 32 bytes of id.
func cID(id *x0x.ID) *_Ctype_uint8_t { return (*_Ctype_uint8_t)(unsafe.Pointer(&id[0])) }

// want fails unless an exported call returned status st.
func want(t *testing.T, what string, got _Ctype_int, st status) {
	t.Helper()
	if status(got) != st {
		t.Fatalf("%s: status %d (%s), want %d", what, got, lastError(), st)
	}
}

// record is a drained x0x_event copied into Go memory.
type record struct {
	kind    uint32
	from    x0x.ID
	topic   string
	payload []byte
	agents  []x0x.ID
	nums    [4]uint64
}

// drainRecords drains agent h's queue with x0x_events_drain, copies the
// records and releases them.
func drainRecords(t *testing.T, h uint64) []record {
	t.Helper()
	var buf [64]cEvent
	var n _Ctype_size_t
	want(t, "x0x_events_drain", x0x_events_drain(cHandle(h), &buf[0], _Ctype_size_t(len(buf)), &n), statusOK)
	out := make([]record, int(n))
	for i := range out {
		ev := &buf[i]
		r := record{kind: uint32(ev.kind)}
		copy(r.from[:], unsafe.Slice((*byte)(unsafe.Pointer(&ev.from[0])), idSize))
		if ev.topic != nil {
			r.topic = _Cfunc_GoString(ev.topic)
		}
		if ev.payload_len > 0 {
			r.payload = _Cfunc_GoBytes(unsafe.Pointer(ev.payload), _Ctype_int(ev.payload_len))
		}
		all := unsafe.Slice((*byte)(unsafe.Pointer(ev.agents)), idSize*int(ev.agents_count))
		for k := 0; k < len(all); k += idSize {
			r.agents = append(r.agents, x0x.ID(all[k:k+idSize]))
		}
		for k := range r.nums {
			r.nums[k] = uint64(ev.reserved[k])
		}
		_Cfunc_capi_event_free_fields(ev)
		out[i] = r
	}
	return out
}

// recorder keeps what was drained from an agent until a test looks for it.
type recorder struct {
	h    uint64
	kept []record
}

// wait drains until a record matching pred arrives (or is kept from an
// earlier drain) and returns it; it and the records before it are no
// longer kept.
func (r *recorder) wait(t *testing.T, what string, pred func(record) bool) record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for i, rec := range r.kept {
			if pred(rec) {
				r.kept = r.kept[i+1:]
				return rec
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no such record", what)
		}
		got := drainRecords(t, r.h)
		r.kept = append(r.kept, got...)
		if len(got) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// has reports whether a record matching pred was drained (without waiting).
func (r *recorder) has(t *testing.T, pred func(record) bool) bool {
	r.kept = append(r.kept, drainRecords(t, r.h)...)
	return slices.ContainsFunc(r.kept, pred)
}

// cString returns and frees a string the library allocated.
func cString(p *_Ctype_char) string {
	defer _Cfunc_free(unsafe.Pointer(p))
	return _Cfunc_GoString(p)
}

// groupInfoOf calls x0x_group_info.
func groupInfoOf(t *testing.T, g uint64) groupInfoJSON {
	t.Helper()
	var js *_Ctype_char
	want(t, "x0x_group_info", x0x_group_info(cHandle(g), &js), statusOK)
	var info groupInfoJSON
	if err := json.Unmarshal([]byte(cString(js)), &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// waitGroupMembers waits until every group handle sees exactly members.
func waitGroupMembers(t *testing.T, groups []uint64, members ...x0x.ID) {
	t.Helper()
	wantHex := make([]string, len(members))
	for i, m := range members {
		wantHex[i] = m.String()
	}
	slices.Sort(wantHex)
	deadline := time.Now().Add(30 * time.Second)
	for _, g := range groups {
		for {
			info := groupInfoOf(t, g)
			if slices.Equal(info.Members, wantHex) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("group %#x: members %v, want %v", g, info.Members, wantHex)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// agentList calls fn (x0x_invitations, x0x_groups) on agent h and decodes
// the JSON array it returns.
func agentList[T any](t *testing.T, what string, fn func(cHandle, **_Ctype_char) _Ctype_int, h uint64) []T {
	t.Helper()
	var js *_Ctype_char
	want(t, what, fn(cHandle(h), &js), statusOK)
	var out []T
	s := cString(js)
	if err := json.Unmarshal([]byte(s), &out); err != nil || out == nil {
		t.Fatalf("%s: %q: %v", what, s, err)
	}
	return out
}

// invitations calls x0x_invitations.
func invitations(t *testing.T, h uint64) []invitationJSON {
	t.Helper()
	return agentList[invitationJSON](t, "x0x_invitations", x0x_invitations, h)
}

// groupIDs calls x0x_groups.
func groupIDs(t *testing.T, h uint64) []string {
	t.Helper()
	return agentList[string](t, "x0x_groups", x0x_groups, h)
}

// joinAgent has x join the network through a and waits until a sees it.
func joinAgent(t *testing.T, a, x *agentEntry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := x.a.JoinNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.a.WaitForAgent(ctx, x.a.AgentID()); err != nil {
		t.Fatal(err)
	}
}

// publishKeyPackage calls x0x_keypackage_publish and returns the key package.
func publishKeyPackage(t *testing.T, h uint64) []byte {
	t.Helper()
	var p *_Ctype_uint8_t
	var n _Ctype_size_t
	want(t, "x0x_keypackage_publish", x0x_keypackage_publish(cHandle(h), &p, &n), statusOK)
	defer _Cfunc_free(unsafe.Pointer(p))
	if n == 0 || n > maxKeyPackage {
		t.Fatalf("key package of %d bytes", n)
	}
	return _Cfunc_GoBytes(unsafe.Pointer(p), _Ctype_int(n))
}

// Four agents on loopback run a group through the C ABI: key packages,
// invitations through the pull API, accept and decline, messages and
// changes tagged with the group handle, a task list of the group,
// removal, leaving, close and the argument checks.
func TestGroupsThroughTheCABI(t *testing.T) {
	ha, a := groupTestAgent(t)
	boot := a.a.MachineID().String() + "@" + a.a.Addr()
	hb, b := groupTestAgent(t, boot)
	hc, c := groupTestAgent(t, boot)
	hd, d := groupTestAgent(t, boot)
	for _, x := range []*agentEntry{b, c, d} {
		joinAgent(t, a, x)
	}
	ra, rb, rc := &recorder{h: ha}, &recorder{h: hb}, &recorder{h: hc}
	aID, bID, cIDv, dID := a.a.AgentID(), b.a.AgentID(), c.a.AgentID(), d.a.AgentID()

	// Argument checks of the agent-level calls.
	var gh cHandle
	var js *_Ctype_char
	var gid x0x.ID
	var n _Ctype_size_t
	want(t, "create on handle 0", x0x_group_create(0, &gh), statusInvalidHandle)
	want(t, "create NULL out", x0x_group_create(cHandle(ha), nil), statusInvalidArg)
	want(t, "keypackage NULL out", x0x_keypackage_publish(cHandle(ha), nil, &n), statusInvalidArg)
	want(t, "invitations NULL", x0x_invitations(cHandle(ha), nil), statusInvalidArg)
	want(t, "accept NULL id", x0x_group_accept(cHandle(ha), nil, &gh), statusInvalidArg)
	want(t, "accept NULL out", x0x_group_accept(cHandle(ha), cID(&gid), nil), statusInvalidArg)
	want(t, "accept unknown", x0x_group_accept(cHandle(ha), cID(&gid), &gh), statusNotFound)
	want(t, "decline NULL id", x0x_group_decline(cHandle(ha), nil), statusInvalidArg)
	want(t, "decline unknown", x0x_group_decline(cHandle(ha), cID(&gid)), statusNotFound)
	if got := invitations(t, ha); len(got) != 0 {
		t.Fatalf("invitations %v", got)
	}

	publishKeyPackage(t, hb)
	kpC := publishKeyPackage(t, hc)

	// a creates the group.
	want(t, "x0x_group_create", x0x_group_create(cHandle(ha), &gh), statusOK)
	ga := uint64(gh)
	if ga>>kindShift != uint64(kindGroup) {
		t.Fatalf("group handle %#x not tagged", ga)
	}
	want(t, "x0x_group_id", x0x_group_id(gh, cID(&gid)), statusOK)
	want(t, "x0x_group_id NULL", x0x_group_id(gh, nil), statusInvalidArg)
	want(t, "x0x_group_info NULL", x0x_group_info(gh, nil), statusInvalidArg)
	want(t, "group_id of an agent handle", x0x_group_id(cHandle(ha), cID(&gid)), statusInvalidHandle)
	want(t, "never issued", x0x_group_id(cHandle(uint64(kindGroup)<<kindShift|1<<40), cID(&gid)), statusInvalidHandle)
	info := groupInfoOf(t, ga)
	if info.ID != gid.String() || !slices.Equal(info.Members, []string{aID.String()}) ||
		!slices.Equal(info.Online, []string{aID.String()}) || info.Closed {
		t.Fatalf("info %+v", info)
	}

	// d accepts no invitations; b accepts one, arriving as a record.
	want(t, "invite d", x0x_group_invite(gh, cID(&dID), 0), statusRefused)
	want(t, "invite NULL", x0x_group_invite(gh, nil, 0), statusInvalidArg)
	want(t, "invite b", x0x_group_invite(gh, cID(&bID), 0), statusOK)
	inv := rb.wait(t, "b's invitation", func(r record) bool { return r.kind == kindGroupInvitation })
	if inv.topic != gid.String() || inv.from != aID || !slices.Contains(inv.agents, aID) ||
		!slices.Contains(inv.agents, bID) || inv.nums[0] == 0 || inv.nums[3] != 0 {
		t.Fatalf("invitation record %+v", inv)
	}
	if got := invitations(t, hb); len(got) != 1 || got[0].Group != gid.String() || got[0].From != aID.String() ||
		got[0].Epoch != inv.nums[0] || len(got[0].Members) != 2 {
		t.Fatalf("invitations %+v", got)
	}
	want(t, "accept", x0x_group_accept(cHandle(hb), cID(&gid), &gh), statusOK)
	gb := uint64(gh)
	if len(invitations(t, hb)) != 0 {
		t.Fatal("accepted invitation still pending")
	}
	want(t, "invite a member", x0x_group_invite(cHandle(ga), cID(&bID), 0), statusAlreadyMember)
	// The agent's handle for a group it has is the one it gets again.
	if g, err := b.a.Group(x0x.GroupID(gid)); err != nil {
		t.Fatal(err)
	} else if again, err := b.openGroup(g); err != nil || again != gb {
		t.Fatalf("second handle for the same group: %#x, %v (have %#x)", again, err, gb)
	}

	// c declines a first invitation, then joins by its key package.
	want(t, "invite c", x0x_group_invite(cHandle(ga), cID(&cIDv), 0), statusOK)
	rc.wait(t, "c's invitation", func(r record) bool { return r.kind == kindGroupInvitation && r.topic == gid.String() })
	want(t, "decline", x0x_group_decline(cHandle(hc), cID(&gid)), statusOK)
	want(t, "decline again", x0x_group_decline(cHandle(hc), cID(&gid)), statusNotFound)
	want(t, "accept a declined invitation", x0x_group_accept(cHandle(hc), cID(&gid), &gh), statusNotFound)
	waitGroupMembers(t, []uint64{ga, gb}, aID, bID)
	want(t, "invite empty key package", x0x_group_invite_keypackage(cHandle(ga), nil, 0, 0), statusInvalidArg)
	want(t, "invite huge key package", x0x_group_invite_keypackage(cHandle(ga), nil, maxKeyPackage+1, 0), statusTooLarge)
	junk := []byte("not a key package")
	want(t, "invite junk key package", x0x_group_invite_keypackage(cHandle(ga),
		(*_Ctype_uint8_t)(unsafe.Pointer(&junk[0])), _Ctype_size_t(len(junk)), 0), statusCorrupt)
	want(t, "invite by key package", x0x_group_invite_keypackage(cHandle(ga),
		(*_Ctype_uint8_t)(unsafe.Pointer(&kpC[0])), _Ctype_size_t(len(kpC)), 0), statusOK)
	rc.wait(t, "c's second invitation", func(r record) bool { return r.kind == kindGroupInvitation && r.topic == gid.String() })
	want(t, "accept by c", x0x_group_accept(cHandle(hc), cID(&gid), &gh), statusOK)
	gc := uint64(gh)
	waitGroupMembers(t, []uint64{ga, gb, gc}, aID, bID, cIDv)
	ra.wait(t, "a sees c join", func(r record) bool {
		return r.kind == kindGroupChanged && r.nums[0] == groupMemberJoined && r.from == cIDv && r.nums[3] == ga
	})

	// Messages: each record names the receiving handle.
	want(t, "publish too large", x0x_group_publish(cHandle(gb), nil, x0x.MaxGroupMessage+1), statusTooLarge)
	want(t, "publish NULL", x0x_group_publish(cHandle(gb), nil, 5), statusInvalidArg)
	want(t, "publish empty", x0x_group_publish(cHandle(gb), nil, 0), statusOK)
	msg := []byte("hello group")
	isMsg := func(g uint64) func(record) bool {
		return func(r record) bool {
			return r.kind == kindGroupMessage && string(r.payload) == string(msg) && r.nums[3] == g
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for !ra.has(t, isMsg(ga)) || !rc.has(t, isMsg(gc)) {
		if time.Now().After(deadline) {
			t.Fatal("the group message never reached a and c")
		}
		want(t, "publish", x0x_group_publish(cHandle(gb), (*_Ctype_uint8_t)(unsafe.Pointer(&msg[0])), _Ctype_size_t(len(msg))), statusOK)
		time.Sleep(200 * time.Millisecond)
	}
	m := ra.wait(t, "message at a", isMsg(ga))
	if m.from != bID || m.topic != gid.String() || m.nums[0] == 0 {
		t.Fatalf("message record %+v", m)
	}

	// A task list of the group, shared by a and b.
	var lh cHandle
	name := []byte("sprint\x00")
	cName := (*_Ctype_char)(unsafe.Pointer(&name[0]))
	want(t, "tasklist NULL name", x0x_group_tasklist_create(cHandle(ga), nil, &lh), statusInvalidArg)
	want(t, "tasklist NULL out", x0x_group_tasklist_create(cHandle(ga), cName, nil), statusInvalidArg)
	want(t, "tasklist create", x0x_group_tasklist_create(cHandle(ga), cName, &lh), statusOK)
	la := uint64(lh)
	var lid x0x.ID
	want(t, "tasklist id", x0x_tasklist_id(lh, cID(&lid)), statusOK)
	want(t, "join outside the group", x0x_tasklist_join(cHandle(ha), cID(&lid), &lh), statusInvalidArg)
	want(t, "tasklist join NULL", x0x_group_tasklist_join(cHandle(gb), nil, &lh), statusInvalidArg)
	want(t, "tasklist join", x0x_group_tasklist_join(cHandle(gb), cID(&lid), &lh), statusOK)
	lb := uint64(lh)
	title := []byte("private task\x00")
	want(t, "tasklist add", x0x_tasklist_add(cHandle(la), (*_Ctype_char)(unsafe.Pointer(&title[0])), nil, nil), statusOK)
	for deadline := time.Now().Add(30 * time.Second); ; {
		want(t, "snapshot", x0x_tasklist_snapshot(cHandle(lb), &js), statusOK)
		if strings.Contains(cString(js), "private task") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the group's task never reached b")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Removal: c's handle stays for id, info and close; the rest is closed.
	want(t, "remove NULL", x0x_group_remove(cHandle(ga), nil), statusInvalidArg)
	want(t, "remove self", x0x_group_remove(cHandle(ga), cID(&aID)), statusNotMember)
	want(t, "remove a non-member", x0x_group_remove(cHandle(ga), cID(&dID)), statusNotMember)
	want(t, "remove c", x0x_group_remove(cHandle(ga), cID(&cIDv)), statusOK)
	rm := rc.wait(t, "c removed", func(r record) bool { return r.kind == kindGroupChanged && r.nums[0] == groupRemoved })
	if rm.nums[3] != gc || rm.topic != gid.String() || rm.from != (x0x.ID{}) {
		t.Fatalf("removal record %+v", rm)
	}
	ra.wait(t, "a sees c leave", func(r record) bool {
		return r.kind == kindGroupChanged && r.nums[0] == groupMemberLeft && r.from == cIDv && r.nums[3] == ga
	})
	if info := groupInfoOf(t, gc); !info.Closed || info.ID != gid.String() {
		t.Fatalf("removed member's info %+v", info)
	}
	var gid2 x0x.ID
	want(t, "id after removal", x0x_group_id(cHandle(gc), cID(&gid2)), statusOK)
	want(t, "publish after removal", x0x_group_publish(cHandle(gc), (*_Ctype_uint8_t)(unsafe.Pointer(&msg[0])), 1), statusClosed)
	want(t, "invite after removal", x0x_group_invite(cHandle(gc), cID(&dID), 0), statusClosed)
	want(t, "update after removal", x0x_group_update(cHandle(gc)), statusClosed)
	want(t, "leave after removal", x0x_group_leave(cHandle(gc)), statusClosed)
	want(t, "tasklist after removal", x0x_group_tasklist_create(cHandle(gc), cName, &lh), statusClosed)
	if rc.has(t, func(r record) bool {
		return (r.kind == kindGroupChanged || r.kind == kindGroupMessage) && r.nums[3] == gc
	}) {
		t.Fatal("a record of the group followed X0X_GROUP_REMOVED")
	}
	want(t, "close removed", x0x_group_close(cHandle(gc)), statusOK)
	want(t, "close twice", x0x_group_close(cHandle(gc)), statusInvalidHandle)
	want(t, "info after close", x0x_group_info(cHandle(gc), &js), statusInvalidHandle)

	// b leaves (a commits it); a, alone, may not leave.
	want(t, "update", x0x_group_update(cHandle(gb)), statusOK)
	want(t, "leave", x0x_group_leave(cHandle(gb)), statusOK)
	rb.wait(t, "b removed after leaving", func(r record) bool {
		return r.kind == kindGroupChanged && r.nums[0] == groupRemoved && r.nums[3] == gb
	})
	waitGroupMembers(t, []uint64{ga}, aID)
	want(t, "b's list after the group closed", x0x_tasklist_add(cHandle(lb), (*_Ctype_char)(unsafe.Pointer(&title[0])), nil, nil), statusClosed)
	want(t, "leave b's list", x0x_tasklist_leave(cHandle(lb)), statusOK)
	want(t, "last member leaves", x0x_group_leave(cHandle(ga)), statusNotMember)

	// Closing a's group invalidates the handle and its list's handle.
	want(t, "close", x0x_group_close(cHandle(ga)), statusOK)
	want(t, "list of a closed group", x0x_tasklist_add(cHandle(la), (*_Ctype_char)(unsafe.Pointer(&title[0])), nil, nil), statusInvalidHandle)
	want(t, "publish after close", x0x_group_publish(cHandle(ga), nil, 0), statusInvalidHandle)
	if got := a.a.Groups(); len(got) != 0 {
		t.Fatalf("a's groups after close: %v", got)
	}

	// Destroying an agent invalidates its group handles.
	want(t, "create on d", x0x_group_create(cHandle(hd), &gh), statusOK)
	want(t, "destroy d", x0x_agent_destroy(cHandle(hd)), statusOK)
	want(t, "group of a destroyed agent", x0x_group_info(gh, &js), statusInvalidHandle)
	want(t, "close group of a destroyed agent", x0x_group_close(gh), statusInvalidHandle)
}

// A group outlives its agent: created again from the same data directory,
// the agent lists the group (x0x_groups) and x0x_group_open gives it a
// handle (the same one when asked again), naming the other member's
// messages. Closing that handle stops the group until the next start,
// which restores it again.
func TestRestoredGroupThroughTheCABI(t *testing.T) {
	ha, a := groupTestAgent(t)
	boot := a.a.MachineID().String() + "@" + a.a.Addr()
	dirB := t.TempDir()
	hb, b := testAgentAt(t, dirB, 4096, boot)
	joinAgent(t, a, b)
	aID, bID := a.a.AgentID(), b.a.AgentID()
	publishKeyPackage(t, hb)
	var gh cHandle
	var gid x0x.ID
	want(t, "create", x0x_group_create(cHandle(ha), &gh), statusOK)
	ga := uint64(gh)
	want(t, "id", x0x_group_id(gh, cID(&gid)), statusOK)
	if got := groupIDs(t, ha); !slices.Equal(got, []string{gid.String()}) {
		t.Fatalf("a's groups %v", got)
	}
	want(t, "invite b", x0x_group_invite(gh, cID(&bID), 0), statusOK)
	(&recorder{h: hb}).wait(t, "b's invitation", func(r record) bool { return r.kind == kindGroupInvitation })
	want(t, "accept", x0x_group_accept(cHandle(hb), cID(&gid), &gh), statusOK)
	waitGroupMembers(t, []uint64{ga, uint64(gh)}, aID, bID)

	// b stops and starts again from its data directory.
	want(t, "destroy b", x0x_agent_destroy(cHandle(hb)), statusOK)
	hb, b = testAgentAt(t, dirB, 4096, boot)
	if b.a.AgentID() != bID {
		t.Fatal("b came back with another agent ID")
	}
	joinAgent(t, a, b)
	if got := groupIDs(t, hb); !slices.Equal(got, []string{gid.String()}) {
		t.Fatalf("restored groups %v, want [%s]", got, gid)
	}
	var js *_Ctype_char
	var unknown x0x.ID
	want(t, "groups NULL", x0x_groups(cHandle(hb), nil), statusInvalidArg)
	want(t, "groups on handle 0", x0x_groups(0, &js), statusInvalidHandle)
	want(t, "open NULL id", x0x_group_open(cHandle(hb), nil, &gh), statusInvalidArg)
	want(t, "open NULL out", x0x_group_open(cHandle(hb), cID(&gid), nil), statusInvalidArg)
	want(t, "open unknown", x0x_group_open(cHandle(hb), cID(&unknown), &gh), statusNotFound)
	want(t, "open on a group handle", x0x_group_open(cHandle(ga), cID(&gid), &gh), statusInvalidHandle)
	want(t, "open", x0x_group_open(cHandle(hb), cID(&gid), &gh), statusOK)
	gb := uint64(gh)
	if gb>>kindShift != uint64(kindGroup) {
		t.Fatalf("group handle %#x not tagged", gb)
	}
	want(t, "open again", x0x_group_open(cHandle(hb), cID(&gid), &gh), statusOK)
	if uint64(gh) != gb {
		t.Fatalf("second open: handle %#x, want %#x", gh, gb)
	}
	waitGroupMembers(t, []uint64{gb}, aID, bID)

	// a's messages reach b's restored replica, naming its handle.
	msg := []byte("after the restart")
	rb := &recorder{h: hb}
	isMsg := func(r record) bool {
		return r.kind == kindGroupMessage && string(r.payload) == string(msg) && r.nums[3] == gb
	}
	for deadline := time.Now().Add(30 * time.Second); !rb.has(t, isMsg); {
		if time.Now().After(deadline) {
			t.Fatal("a's message never reached b's restored group")
		}
		want(t, "publish", x0x_group_publish(cHandle(ga), (*_Ctype_uint8_t)(unsafe.Pointer(&msg[0])), _Ctype_size_t(len(msg))), statusOK)
		time.Sleep(200 * time.Millisecond)
	}
	if m := rb.wait(t, "message", isMsg); m.from != aID || m.topic != gid.String() {
		t.Fatalf("message record %+v", m)
	}

	// Closed, the group is not open until b starts again. While its close
	// is under way (x0x_group_close's two steps, here one at a time), it
	// is not open either: no new handle is made for it.
	obj, err := handles.remove(gb, kindGroup)
	if err != nil {
		t.Fatal(err)
	}
	want(t, "open while closing", x0x_group_open(cHandle(hb), cID(&gid), &gh), statusNotFound)
	if err := b.closeGroup(obj.(*groupEntry)); err != nil {
		t.Fatal(err)
	}
	want(t, "close again", x0x_group_close(cHandle(gb)), statusInvalidHandle)
	if got := groupIDs(t, hb); len(got) != 0 {
		t.Fatalf("groups after close %v", got)
	}
	want(t, "open a closed group", x0x_group_open(cHandle(hb), cID(&gid), &gh), statusNotFound)
	want(t, "destroy b again", x0x_agent_destroy(cHandle(hb)), statusOK)
	hb, _ = testAgentAt(t, dirB, 64)
	if got := groupIDs(t, hb); !slices.Equal(got, []string{gid.String()}) {
		t.Fatalf("groups restored after a close %v, want [%s]", got, gid)
	}
}

// When the facade shuts a group without a removal reaching the handle's
// stream (lost while the dispatcher was busy), the handle still gets its
// X0X_GROUP_REMOVED, then nothing more; the group's list handles report
// X0X_ERR_CLOSED until the list is opened again, which replaces them.
func TestGroupShutWithoutRemovalEvent(t *testing.T) {
	ha, a := groupTestAgent(t)
	r := &recorder{h: ha}
	var gh, lh cHandle
	want(t, "create", x0x_group_create(cHandle(ha), &gh), statusOK)
	var gid x0x.ID
	want(t, "id", x0x_group_id(gh, cID(&gid)), statusOK)
	name := []byte("solo\x00")
	want(t, "list", x0x_group_tasklist_create(gh, (*_Ctype_char)(unsafe.Pointer(&name[0])), &lh), statusOK)
	var lid x0x.ID
	want(t, "list id", x0x_tasklist_id(lh, cID(&lid)), statusOK)
	g, err := a.a.Group(x0x.GroupID(gid))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil { // as the facade does after a removal
		t.Fatal(err)
	}
	rec := r.wait(t, "removed", func(r record) bool { return r.kind == kindGroupChanged && r.nums[3] == uint64(gh) })
	if rec.nums[0] != groupRemoved || rec.topic != gid.String() {
		t.Fatalf("record %+v", rec)
	}
	if !groupInfoOf(t, uint64(gh)).Closed {
		t.Fatal("info: not closed")
	}
	want(t, "publish", x0x_group_publish(gh, nil, 0), statusClosed)
	want(t, "list after the group closed", x0x_tasklist_add(lh, (*_Ctype_char)(unsafe.Pointer(&name[0])), nil, nil), statusClosed)
	var lh2 cHandle
	want(t, "list opened again", x0x_tasklist_join(cHandle(ha), cID(&lid), &lh2), statusOK)
	want(t, "old list handle", x0x_tasklist_add(lh, (*_Ctype_char)(unsafe.Pointer(&name[0])), nil, nil), statusInvalidHandle)
	want(t, "close", x0x_group_close(gh), statusOK)
	want(t, "new list handle", x0x_tasklist_leave(lh2), statusOK)
}

// The dispatcher passes on nothing of a group after its X0X_GROUP_REMOVED,
// and queues nothing of a closed group.
func TestGroupRecordsEnd(t *testing.T) {
	_, e := groupTestAgent(t)
	ge, other := &groupEntry{handle: 1}, &groupEntry{handle: 2}
	e.deliver(event{kind: kindGroupMessage, payload: []byte("before"), grp: ge})
	e.deliver(event{kind: kindGroupChanged, nums: [4]uint64{groupRemoved, 5, 0, 1}, grp: ge})
	e.deliver(event{kind: kindGroupMessage, payload: []byte("after"), grp: ge})
	e.deliver(event{kind: kindGroupChanged, nums: [4]uint64{groupRemoved, 5, 0, 1}, grp: ge})
	e.q.closeGroup(other)
	e.deliver(event{kind: kindGroupMessage, payload: []byte("closed"), grp: other})
	got := e.q.pop(16)
	if len(got) != 2 || string(got[0].payload) != "before" || got[1].nums[0] != groupRemoved {
		t.Fatalf("queued %+v", got)
	}
	if d := e.q.droppedCount(); d != 0 {
		t.Fatalf("skipped records counted as dropped: %d", d)
	}
}
