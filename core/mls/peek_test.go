package mls

import (
	"bytes"
	"errors"
	"testing"
)

// TestPeekMessage reads the headers of real application, proposal and
// commit messages, public and private, under suite 1 and the post-quantum
// suite, and refuses Welcomes, GroupInfos, KeyPackages and malformed
// headers with typed errors.
func TestPeekMessage(t *testing.T) {
	for _, cs := range []CipherSuite{grpSuite, pqSuite} {
		for _, encrypt := range []bool{false, true} {
			name := cs.String() + "/public"
			if encrypt {
				name = cs.String() + "/private"
			}
			t.Run(name, func(t *testing.T) { testPeekMessage(t, cs, encrypt) })
		}
	}
}

func testPeekMessage(t *testing.T, cs CipherSuite, encrypt bool) {
	cfg := &Config{EncryptHandshake: encrypt}
	sg := newSuiteGroup(t, cs, 2, cfg, true)
	a, b := sg.groups[0], sg.groups[1]
	gid := a.GroupID()

	check := func(what string, msg []byte, from *Group, kind ContentKind, private bool, epoch uint64, aad []byte) MessageInfo {
		t.Helper()
		info, err := PeekMessage(msg)
		must(t, what, err)
		if !bytes.Equal(info.GroupID, gid) || info.Epoch != epoch || info.Kind != kind || info.Private != private ||
			!bytes.Equal(info.AuthenticatedData, aad) {
			t.Fatalf("%s: %+v, want epoch %d kind %d private %v", what, info, epoch, kind, private)
		}
		if info.HasSender != !private || (!private && info.Sender != from.OwnIndex()) {
			t.Fatalf("%s: sender %v %d", what, info.HasSender, info.Sender)
		}
		// Every strict prefix is refused with a decode error, or (once the
		// header is complete) reads the same header.
		for n := range len(msg) {
			got, err := PeekMessage(msg[:n])
			if err != nil {
				if !isDecodeError(err) {
					t.Fatalf("%s: prefix of %d bytes: %v", what, n, err)
				}
				continue
			}
			if !bytes.Equal(got.GroupID, info.GroupID) || got.Epoch != info.Epoch || got.Kind != info.Kind {
				t.Fatalf("%s: prefix of %d bytes reads %+v", what, n, got)
			}
		}
		return info
	}

	epoch := a.Epoch()
	app, err := a.Protect([]byte("data"), []byte("route me"))
	must(t, "protect", err)
	check("application", app, a, KindApplication, true, epoch, []byte("route me"))
	// Handshake messages from b (leaf 1, so that the sender is checked).
	prop, err := b.ProposeUpdate()
	must(t, "propose", err)
	check("proposal", prop, b, KindProposal, encrypt, epoch, nil)
	mustProcess(t, prop, a)
	res, err := b.Commit(nil)
	must(t, "commit", err)
	info := check("commit", res.Commit, b, KindCommit, encrypt, epoch, nil)
	must(t, "merge", b.MergePendingCommit())
	mustProcess(t, res.Commit, a)
	// Routing: the commit is now for an older epoch.
	if info.Epoch >= a.Epoch() {
		t.Fatalf("commit of epoch %d, group in %d", info.Epoch, a.Epoch())
	}
	// The caller owns the slices.
	info.GroupID[0] ^= 1
	if !bytes.Equal(a.GroupID(), gid) {
		t.Fatal("peek aliases the message")
	}

	// Not group messages.
	kp := sg.members[1].keyPackage(t, cs, cfg)
	res, err = a.Commit(&CommitOptions{Add: [][]byte{newTestMember(t, cs, "z").keyPackage(t, cs, cfg).KeyPackage()}})
	must(t, "commit", err)
	a.DiscardPendingCommit()
	gi, err := encode(&mlsMessage{wireFormat: wireFormatGroupInfo, groupInfo: &groupInfo{groupContext: *a.st.gc}})
	must(t, "group info", err)
	for what, msg := range map[string][]byte{"welcome": res.Welcome, "key package": kp.KeyPackage(), "group info": gi} {
		_, err := PeekMessage(msg)
		wantErr(t, what, err, ErrNotGroupMessage, ErrInvalidMessage)
		_, err = b.Process(msg)
		wantErr(t, what+" processed", err, ErrNotGroupMessage)
	}

	// Malformed headers and sizes.
	for what, tc := range map[string]struct {
		msg  []byte
		want error
	}{
		"empty":           {nil, ErrTruncated},
		"version 2":       {append([]byte{0, 2}, app[2:]...), ErrInvalidValue},
		"wire format 9":   {append([]byte{0, 1, 0, 9}, app[4:]...), ErrUnknownValue},
		"content type 0":  {setContentType(t, app, 0), ErrUnknownValue},
		"content type 4":  {setContentType(t, app, 4), ErrUnknownValue},
		"truncated group": {app[:5], ErrTruncated},
	} {
		_, err := PeekMessage(tc.msg)
		var de *DecodeError
		if !errors.As(err, &de) || !errors.Is(err, tc.want) {
			t.Fatalf("%s: %v, want a decode error wrapping %v", what, err, tc.want)
		}
	}
	_, err = PeekMessageLimit(app, len(app)-1)
	wantErr(t, "over the limit", err, ErrMessageTooLarge)
	if _, err := PeekMessageLimit(app, len(app)); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	_, err = PeekMessage(make([]byte, DefaultMaxMessageSize+1))
	wantErr(t, "over the default limit", err, ErrMessageTooLarge)
}

// setContentType returns a copy of a PrivateMessage with its content type
// replaced.
func setContentType(t *testing.T, msg []byte, ct uint8) []byte {
	t.Helper()
	m, err := decodeMLSMessage(msg)
	must(t, "decode", err)
	// version, wire format, group_id<V>, epoch: the content type follows.
	off := 4 + varintLen(len(m.private.groupID)) + len(m.private.groupID) + 8
	out := bytes.Clone(msg)
	out[off] = ct
	return out
}

// varintLen is the size of a minimal vector header for n.
func varintLen(n int) int {
	b, _ := appendVarint(nil, n)
	return len(b)
}

// FuzzPeekMessage peeks at arbitrary messages: no panic, only documented
// errors, and for a message that decodes completely the header read
// agrees with the full decoding.
func FuzzPeekMessage(f *testing.F) {
	f.Add([]byte{0x00, 0x01, 0x00, 0x05})
	f.Add([]byte{0x00, 0x01, 0x00, 0x02, 0x01, 0xaa, 0, 0, 0, 0, 0, 0, 0, 1, 0x01, 0x00, 0x00, 0x00})
	seedFromMessagesVector(f, "mls_welcome", "public_message_application", "public_message_proposal",
		"public_message_commit", "private_message")
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := PeekMessage(b)
		if err != nil {
			if !errors.Is(err, ErrNotGroupMessage) {
				checkDecodeError(t, err)
			}
			return
		}
		m, err := decodeMLSMessage(b)
		if err != nil {
			return // the body need not parse
		}
		var gid, aad []byte
		var epoch uint64
		var ct uint8
		switch {
		case m.public != nil:
			c := &m.public.content
			gid, epoch, ct, aad = c.groupID, c.epoch, c.contentType, c.authenticatedData
			if info.Private || info.HasSender != (c.sender.typ == senderMember) || (info.HasSender && info.Sender != c.sender.index) {
				t.Fatalf("public message header %+v", info)
			}
		case m.private != nil:
			p := m.private
			gid, epoch, ct, aad = p.groupID, p.epoch, p.contentType, p.authenticatedData
			if !info.Private || info.HasSender {
				t.Fatalf("private message header %+v", info)
			}
		default:
			t.Fatalf("peek accepted wire format %d", m.wireFormat)
		}
		if !bytes.Equal(info.GroupID, gid) || info.Epoch != epoch || uint8(info.Kind) != ct || !bytes.Equal(info.AuthenticatedData, aad) {
			t.Fatalf("header %+v differs from the message", info)
		}
	})
}
