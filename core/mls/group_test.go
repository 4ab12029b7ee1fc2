package mls

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"
)

// Group state machine tests under suite 1 (fast): the validity rules of
// RFC 9420 sections 6, 7.3, 10.1, 12.1 and 12.2 as Process and Commit
// enforce them, PSKs, group context extensions, encrypted handshakes,
// partial commits, retained epochs and joining without the tree.

const grpSuite = MLS128DHKEMX25519AES128GCMSHA256Ed25519

// testGroup is a group of n members built by one commit of the founder.
type testGroup struct {
	members []*testMember
	groups  []*Group
}

func newTestGroup(t *testing.T, n int, cfg *Config) *testGroup {
	t.Helper()
	tg := &testGroup{}
	for i := range n {
		tg.members = append(tg.members, newTestMember(t, grpSuite, string(rune('a'+i))))
	}
	gid := make([]byte, 16)
	rand.Read(gid)
	g0, err := CreateGroup(grpSuite, gid, tg.members[0].cred, tg.members[0].sigPriv, cfg)
	must(t, "create", err)
	tg.groups = append(tg.groups, g0)
	if n == 1 {
		return tg
	}
	var kps []*PrivateKeyPackage
	var opts CommitOptions
	for _, m := range tg.members[1:] {
		kp := m.keyPackage(t, grpSuite, cfg)
		kps = append(kps, kp)
		opts.Add = append(opts.Add, kp.KeyPackage())
	}
	res := mustCommit(t, g0, &opts)
	for _, kp := range kps {
		tg.groups = append(tg.groups, mustJoin(t, res.Welcome, kp, cfg))
	}
	checkInSync(t, tg.groups...)
	t.Cleanup(func() {
		for _, g := range tg.groups {
			g.Close()
		}
	})
	return tg
}

// others returns the groups except g.
func (tg *testGroup) others(g *Group) []*Group {
	var out []*Group
	for _, h := range tg.groups {
		if h != g && h.Active() {
			out = append(out, h)
		}
	}
	return out
}

// forgeCommit builds g's commit of the list state (bypassing the
// committer's own validation), then, if wire is not nil, alters the
// commit's content with it and signs and tags it again: a malicious
// member's commit, authentic but invalid.
func forgeCommit(t *testing.T, g *Group, state []listedProposal, wire func(*commit)) []byte {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	cc, err := g.createCommit(state, true)
	if err != nil {
		t.Fatalf("forging commit: %v", err)
	}
	cc.pending.next.wipe()
	if wire == nil {
		return cc.pending.message
	}
	m, err := decodeMLSMessage(cc.pending.message)
	must(t, "decode", err)
	wire(m.public.content.commit)
	ac, err := g.st.ctx.sign(wireFormatPublicMessage, &m.public.content, g.sigPriv, m.public.auth.confirmationTag)
	must(t, "sign", err)
	pm, err := g.st.ctx.protectPublic(ac)
	must(t, "protect", err)
	b, err := encode(&mlsMessage{wireFormat: wireFormatPublicMessage, public: pm})
	must(t, "encode", err)
	return b
}

func TestProposalListValidation(t *testing.T) {
	tg := newTestGroup(t, 4, nil)
	a, b := tg.groups[0], tg.groups[1]
	me := a.OwnIndex()
	nonce := func() []byte { n := make([]byte, 32); rand.Read(n); return n }
	resPSK := &proposal{typ: proposalPSK, psk: &preSharedKeyID{typ: pskResumption, usage: resumptionApplication,
		pskGroupID: a.GroupID(), pskEpoch: a.Epoch(), pskNonce: nonce()}}
	remove := func(l uint32) proposalOrRef {
		return proposalOrRef{typ: proposalOrRefProposal, proposal: &proposal{typ: proposalRemove, removed: l}}
	}
	byValue := func(ps ...*proposal) []listedProposal {
		var out []listedProposal
		for _, p := range ps {
			out = append(out, listedProposal{p: p, sender: me})
		}
		return out
	}
	dupKP := tg.members[2].keyPackage(t, grpSuite, nil) // an existing member's signature key
	a.mu.Lock()
	selfUpdate := *a.st.tree.leaf(me)
	a.mu.Unlock()
	_, selfUpdate.encryptionKey, _ = a.suite.GenerateHPKEKeyPair()
	selfUpdate.source = leafSourceUpdate
	must(t, "sign", signLeafNode(a.suite, &selfUpdate, a.GroupID(), me, a.sigPriv))
	b.mu.Lock()
	bobKey := bytes.Clone(b.st.tree.leaf(b.st.priv.leaf).encryptionKey)
	b.mu.Unlock()

	// Each case is a commit the committer computes for the list state,
	// then (as a malicious member) alters with wire and re-signs.
	cases := []struct {
		name  string
		state []listedProposal
		wire  func(c *commit)
		want  []error
	}{
		{"committer removes itself", nil, func(c *commit) { c.proposals = []proposalOrRef{remove(me)} }, []error{ErrInvalidProposal}},
		{"two removes of one leaf", byValue(&proposal{typ: proposalRemove, removed: 2}),
			func(c *commit) { c.proposals = append(c.proposals, remove(2)) }, []error{ErrInvalidProposal}},
		{"remove of a blank leaf", nil, func(c *commit) { c.proposals = []proposalOrRef{remove(9)} }, []error{ErrInvalidProposal}},
		{"update by the committer", nil, func(c *commit) {
			c.proposals = []proposalOrRef{{typ: proposalOrRefProposal, proposal: &proposal{typ: proposalUpdate, update: &selfUpdate}}}
		}, []error{ErrInvalidProposal}},
		{"remove without a path", byValue(&proposal{typ: proposalRemove, removed: 2}), func(c *commit) { c.path = nil }, []error{ErrInvalidCommit}},
		{"empty commit without a path", nil, func(c *commit) { c.path = nil }, []error{ErrInvalidCommit}},
		{"add of a present signature key", nil, func(c *commit) {
			c.proposals = []proposalOrRef{{typ: proposalOrRefProposal, proposal: &proposal{typ: proposalAdd, add: dupKP.kp}}}
		}, []error{ErrInvalidCommit, ErrInvalidTree}},
		{"two group context extensions", byValue(&proposal{typ: proposalGroupContextExtensions},
			&proposal{typ: proposalGroupContextExtensions}), nil, []error{ErrInvalidProposal}},
		{"re-init", byValue(&proposal{typ: proposalReInit, reInit: &reInit{version: 1, cipherSuite: grpSuite}}), nil, []error{ErrUnsupported}},
		{"PSK nonce of the wrong size", byValue(&proposal{typ: proposalPSK, psk: &preSharedKeyID{typ: pskResumption,
			usage: resumptionApplication, pskGroupID: a.GroupID(), pskEpoch: a.Epoch(), pskNonce: []byte{1}}}), nil, []error{ErrInvalidProposal}},
		{"the same PSK twice", byValue(resPSK, resPSK), nil, []error{ErrInvalidProposal}},
		{"unknown proposal reference", nil, func(c *commit) {
			c.proposals = []proposalOrRef{{typ: proposalOrRefRef, ref: bytes.Repeat([]byte{7}, 32)}}
		}, []error{ErrInvalidProposal}},
		{"path leaf with another source", nil, func(c *commit) { c.path.leafNode.source = leafSourceUpdate }, []error{ErrInvalidCommit, ErrInvalidLeafNode}},
		{"path leaf signature", nil, func(c *commit) { c.path.leafNode.signature[3] ^= 1 }, []error{ErrInvalidCommit, ErrCrypto}},
		{"path one node short", nil, func(c *commit) { c.path.nodes = c.path.nodes[1:] }, []error{ErrInvalidCommit}},
		{"path reusing a member's key", nil, func(c *commit) { c.path.nodes[0].encryptionKey = bobKey }, []error{ErrInvalidCommit}},
		{"path key changed", nil, func(c *commit) { c.path.nodes[0].encryptionKey = append([]byte{}, bobKey[:31]...) }, []error{ErrInvalidCommit}},
		{"path ciphertext", nil, func(c *commit) {
			for i := range c.path.nodes {
				for j := range c.path.nodes[i].encryptedPathSecret {
					c.path.nodes[i].encryptedPathSecret[j].ciphertext[0] ^= 1
				}
			}
		}, []error{ErrInvalidCommit, ErrCrypto}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := forgeCommit(t, a, c.state, c.wire)
			before, _ := b.EpochAuthenticator()
			_, err := b.Process(msg)
			wantErr(t, "process", err, c.want...)
			after, _ := b.EpochAuthenticator()
			if !bytes.Equal(before, after) {
				t.Fatal("a refused commit changed the state")
			}
		})
	}

	// Resumption PSKs for reinit or branch are invalid in a proposal.
	for _, u := range []resumptionUsage{resumptionReinit, resumptionBranch} {
		p := &proposal{typ: proposalPSK, psk: &preSharedKeyID{typ: pskResumption, usage: u,
			pskGroupID: a.GroupID(), pskEpoch: a.Epoch(), pskNonce: nonce()}}
		b.mu.Lock()
		err := b.validateProposal(p, 0, nil)
		b.mu.Unlock()
		wantErr(t, "resumption PSK usage", err, ErrInvalidProposal)
	}

	// Commit refuses invalid inline proposals itself.
	_, err := a.Commit(&CommitOptions{Remove: []uint32{me}})
	wantErr(t, "commit removing the committer", err, ErrInvalidProposal)
	_, err = a.Commit(&CommitOptions{Add: [][]byte{dupKP.KeyPackage()}})
	wantErr(t, "commit adding a present member", err, ErrInvalidProposal)

	// An Update from the committer, by reference.
	upd, err := b.ProposeUpdate()
	must(t, "propose update", err)
	mustProcess(t, upd, a)
	b.mu.Lock()
	ref := b.cache[0].ref
	b.mu.Unlock()
	b.mu.Lock()
	list := []listedProposal{{p: b.cache[0].p, sender: b.st.priv.leaf, ref: ref}}
	b.mu.Unlock()
	c := tg.groups[2]
	mustProcess(t, upd, c, tg.groups[3])
	_, err = c.Process(forgeCommit(t, b, list, nil))
	wantErr(t, "update from the committer", err, ErrInvalidProposal)
	// Committed by another member, it applies.
	res := mustCommit(t, a, nil)
	mustProcess(t, res.Commit, tg.others(a)...)
	checkInSync(t, tg.groups...)
}

func TestFramingRules(t *testing.T) {
	tg := newTestGroup(t, 3, nil)
	a, b := tg.groups[0], tg.groups[1]

	// Oversized input.
	_, err := a.Process(make([]byte, DefaultMaxMessageSize+1))
	wantErr(t, "oversized", err, ErrMessageTooLarge)
	// Not a group message.
	_, err = a.Process(tg.members[2].keyPackage(t, grpSuite, nil).KeyPackage())
	wantErr(t, "key package as a message", err, ErrInvalidMessage)
	// Application data in a PublicMessage, from a blank leaf, from an
	// external sender, for another group.
	a.mu.Lock()
	ctx := a.st.ctx
	content := &framedContent{groupID: a.st.gc.groupID, epoch: a.st.gc.epoch, sender: sender{typ: senderMember, index: 0},
		authenticatedData: []byte{}, contentType: contentApplication, applicationData: []byte("x")}
	ac, _ := ctx.sign(wireFormatPublicMessage, content, a.sigPriv, nil)
	pub := &publicMessage{content: ac.content, auth: ac.auth, membershipTag: make([]byte, 32)}
	appPublic, _ := encode(&mlsMessage{wireFormat: wireFormatPublicMessage, public: pub})
	blank := *content
	blank.contentType, blank.proposal = contentProposal, &proposal{typ: proposalRemove, removed: 1}
	blank.sender.index = 7
	ac, _ = ctx.sign(wireFormatPublicMessage, &blank, a.sigPriv, nil)
	pm, _ := ctx.protectPublic(ac)
	fromBlank, _ := encode(&mlsMessage{wireFormat: wireFormatPublicMessage, public: pm})
	ext := blank
	ext.sender = sender{typ: senderExternal, index: 0}
	ac, _ = ctx.sign(wireFormatPublicMessage, &ext, a.sigPriv, nil)
	pm, _ = ctx.protectPublic(ac)
	fromExternal, _ := encode(&mlsMessage{wireFormat: wireFormatPublicMessage, public: pm})
	a.mu.Unlock()
	_, err = b.Process(appPublic)
	wantErr(t, "application in a PublicMessage", err, ErrInvalidMessage)
	_, err = b.Process(fromBlank)
	wantErr(t, "sender at a blank leaf", err, ErrInvalidSender)
	_, err = b.Process(fromExternal)
	wantErr(t, "external sender", err, ErrUnsupported)

	other := newTestGroup(t, 1, nil).groups[0]
	msg, err := other.Protect([]byte("x"), nil)
	must(t, "protect", err)
	_, err = b.Process(msg)
	wantErr(t, "other group", err, ErrWrongGroup)

	// A proposal blocks application data until committed; a pending
	// commit blocks another commit; MergePendingCommit without one fails.
	prop, err := a.ProposeRemove(2)
	must(t, "propose remove", err)
	_, err = a.Protect([]byte("x"), nil)
	wantErr(t, "protect with a pending proposal", err, ErrPendingProposals)
	mustProcess(t, prop, b)
	if r := mustProcess(t, prop, a); r.Kind != KindProposal { // own proposal echoed: a no-op
		t.Fatal("echoed proposal")
	}
	res, err := b.Commit(nil)
	must(t, "commit", err)
	_, err = b.Commit(nil)
	wantErr(t, "second commit", err, ErrPendingCommit)
	b.DiscardPendingCommit()
	wantErr(t, "merge without pending", b.MergePendingCommit(), ErrPendingCommit)
	_, err = a.Process(res.Commit) // discarded by Bob, but valid: Alice applies it
	must(t, "process", err)
	_, err = b.Process(res.Commit)
	wantErr(t, "own discarded commit", err, ErrOwnMessage)
}

func TestPSKsAndExtensions(t *testing.T) {
	psk := []byte("an external pre-shared key")
	cfg := &Config{ExternalPSK: func(id []byte) ([]byte, bool) {
		if string(id) == "ext" {
			return psk, true
		}
		return nil, false
	}}
	tg := newTestGroup(t, 3, cfg)
	a, b, c := tg.groups[0], tg.groups[1], tg.groups[2]

	// External and resumption PSKs, committed with an Add (no path
	// needed, but Commit always sends one).
	p1, err := a.ProposeExternalPSK([]byte("ext"))
	must(t, "external PSK", err)
	p2, err := b.ProposeResumptionPSK(b.Epoch())
	must(t, "resumption PSK", err)
	_, err = a.ProposeExternalPSK([]byte("unknown"))
	wantErr(t, "unknown PSK", err, ErrUnknownPSK)
	mustProcess(t, p1, b, c)
	mustProcess(t, p2, a, c)
	res := mustCommit(t, c, nil)
	mustProcess(t, res.Commit, a, b)
	checkInSync(t, a, b, c)
	// A joiner holds no resumption PSK of the group; an external one it
	// needs from its configuration.
	p1, err = a.ProposeExternalPSK([]byte("ext"))
	must(t, "external PSK", err)
	mustProcess(t, p1, b, c)
	newcomer := newTestMember(t, grpSuite, "d")
	kp := newcomer.keyPackage(t, grpSuite, cfg)
	res = mustCommit(t, c, &CommitOptions{Add: [][]byte{kp.KeyPackage()}})
	mustProcess(t, res.Commit, a, b)
	_, err = JoinGroup(res.Welcome, kp, nil, &Config{})
	wantErr(t, "join without the PSK", err, ErrUnknownPSK)
	d := mustJoin(t, res.Welcome, kp, cfg)
	defer d.Close()
	checkInSync(t, a, b, c, d)

	// A partial commit (an Add, no path) is valid.
	e := newTestMember(t, grpSuite, "e")
	kpE := e.keyPackage(t, grpSuite, cfg)
	list := []listedProposal{{p: &proposal{typ: proposalAdd, add: kpE.kp}, sender: a.OwnIndex()}}
	a.mu.Lock()
	cc, err := a.createCommit(list, false)
	a.mu.Unlock()
	must(t, "partial commit", err)
	a.mu.Lock()
	a.pending = cc.pending
	a.mu.Unlock()
	must(t, "merge", a.MergePendingCommit())
	mustProcess(t, cc.result.Commit, b, c, d)
	eg := mustJoin(t, cc.result.Welcome, kpE, cfg)
	defer eg.Close()
	checkInSync(t, a, b, c, d, eg)

	// Group context extensions: a default type applies; a non-default type
	// no member supports makes the commit invalid.
	p3, err := b.ProposeGroupContextExtensions([]Extension{{Type: extApplicationID, Data: []byte("app")}})
	must(t, "propose extensions", err)
	mustProcess(t, p3, a, c, d, eg)
	res = mustCommit(t, d, nil)
	mustProcess(t, res.Commit, a, b, c, eg)
	checkInSync(t, a, b, c, d, eg)
	if x := a.Extensions(); len(x) != 1 || x[0].Type != extApplicationID {
		t.Fatalf("extensions: %+v", x)
	}
	p4, err := b.ProposeGroupContextExtensions([]Extension{{Type: 0xff00}})
	must(t, "propose extensions", err)
	mustProcess(t, p4, a)
	// Alice skips nothing: the list is invalid after application.
	_, err = a.Commit(nil)
	wantErr(t, "commit of unsupported extensions", err, ErrInvalidProposal)
}

func TestKeyPackageValidation(t *testing.T) {
	tg := newTestGroup(t, 2, nil)
	a := tg.groups[0]
	m := newTestMember(t, grpSuite, "late")
	past := time.Now().Add(-400 * 24 * time.Hour)
	expired := m.keyPackage(t, grpSuite, &Config{Now: func() time.Time { return past }, KeyPackageLifetime: time.Hour})
	_, err := a.ProposeAdd(expired.KeyPackage())
	wantErr(t, "expired key package", err, ErrInvalidKeyPackage, ErrInvalidLeafNode)
	long := m.keyPackage(t, grpSuite, &Config{KeyPackageLifetime: 10 * 365 * 24 * time.Hour, MaxLifetime: -1})
	_, err = a.ProposeAdd(long.KeyPackage())
	wantErr(t, "key package lifetime beyond the maximum", err, ErrInvalidKeyPackage)
	// A tampered signature.
	kp := m.keyPackage(t, grpSuite, nil)
	bad := kp.KeyPackage()
	bad[len(bad)-1] ^= 1
	_, err = a.ProposeAdd(bad)
	wantErr(t, "tampered key package", err, ErrInvalidKeyPackage, ErrCrypto)
	// Wrong suite.
	other := newTestMember(t, MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519, "other")
	_, err = a.ProposeAdd(other.keyPackage(t, MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519, nil).KeyPackage())
	wantErr(t, "other suite", err, ErrInvalidKeyPackage)
	// A rejected credential.
	strict := &Config{ValidateCredential: func(c Credential, _ []byte) error {
		if string(c.Identity) == "late" {
			return errors.New("not allowed")
		}
		return nil
	}}
	sg := newTestGroup(t, 1, strict).groups[0]
	_, err = sg.ProposeAdd(kp.KeyPackage())
	wantErr(t, "rejected credential", err, ErrInvalidLeafNode)
	// Importing with a private key that does not match.
	_, err = ImportKeyPackage(kp.KeyPackage(), kp.encPriv, kp.encPriv, kp.sigPriv, nil)
	wantErr(t, "mismatched init key", err, ErrInvalidKeyPackage)
}

func TestJoinChecks(t *testing.T) {
	cfg := &Config{OmitRatchetTree: true}
	tg := newTestGroup(t, 1, cfg)
	a := tg.groups[0]
	m := newTestMember(t, grpSuite, "b")
	kp := m.keyPackage(t, grpSuite, nil)
	res := mustCommit(t, a, &CommitOptions{Add: [][]byte{kp.KeyPackage()}})
	_, err := JoinGroup(res.Welcome, kp, nil, nil)
	wantErr(t, "no tree", err, ErrInvalidWelcome)
	rt, err := a.RatchetTree()
	must(t, "tree", err)
	other := m.keyPackage(t, grpSuite, nil)
	_, err = JoinGroup(res.Welcome, other, rt, nil)
	wantErr(t, "another key package", err, ErrNotInWelcome)
	// A tree that does not match the group context.
	badTree := bytes.Clone(rt)
	badTree[len(badTree)-1] ^= 1
	_, err = JoinGroup(res.Welcome, kp, badTree, nil)
	wantErr(t, "tampered tree", err, ErrInvalidTree)
	// A tampered Welcome.
	bad := bytes.Clone(res.Welcome)
	bad[len(bad)-5] ^= 1
	_, err = JoinGroup(bad, kp, rt, nil)
	wantErr(t, "tampered welcome", err, ErrInvalidWelcome, ErrCrypto)
	b, err := JoinGroup(res.Welcome, kp, rt, nil)
	must(t, "join with the tree", err)
	defer b.Close()
	checkInSync(t, a, b)
}

func TestEncryptedHandshakeAndPastEpochs(t *testing.T) {
	cfg := &Config{EncryptHandshake: true, PastEpochs: 1, PaddingBlock: 64}
	tg := newTestGroup(t, 3, cfg)
	a, b, c := tg.groups[0], tg.groups[1], tg.groups[2]
	late, err := c.Protect([]byte("sent before the commit"), nil)
	must(t, "protect", err)
	tooLate, err := c.Protect([]byte("two epochs late"), nil)
	must(t, "protect", err)
	upd, err := c.ProposeUpdate()
	must(t, "update", err)
	if m, _ := decodeMLSMessage(upd); m.private == nil {
		t.Fatal("handshake not encrypted")
	}
	mustProcess(t, upd, a, b)
	res := mustCommit(t, b, nil)
	mustProcess(t, res.Commit, a, c)
	checkInSync(t, a, b, c)
	// The previous epoch's application message still decrypts.
	if r := mustProcess(t, late, a); r.Epoch != 1 || string(r.ApplicationData) != "sent before the commit" {
		t.Fatalf("late message: %+v", r)
	}
	// One more epoch: the message is now two epochs back, beyond the one
	// retained.
	res = mustCommit(t, a, nil)
	mustProcess(t, res.Commit, b, c)
	_, err = b.Process(tooLate)
	wantErr(t, "message two epochs back", err, ErrWrongEpoch)
	// Handshake messages of a past epoch are refused.
	_, err = b.Process(upd)
	wantErr(t, "proposal of a past epoch", err, ErrWrongEpoch)
	// The padded messages have a length multiple of the block.
	msg, err := a.Protect([]byte("pad me"), nil)
	must(t, "protect", err)
	mustProcess(t, msg, b, c)
}

func TestConcurrentUseAndClose(t *testing.T) {
	tg := newTestGroup(t, 2, nil)
	a, b := tg.groups[0], tg.groups[1]
	done := make(chan error, 4)
	for i := range 4 {
		go func() {
			for j := range 10 {
				msg, err := a.Protect([]byte{byte(i), byte(j)}, nil)
				if err != nil {
					done <- err
					return
				}
				if _, err := b.Process(msg); err != nil {
					done <- err
					return
				}
				_ = b.Members()
				_, _ = b.Export("l", nil, 16)
			}
			done <- nil
		}()
	}
	for range 4 {
		must(t, "concurrent use", <-done)
	}
	a.Close()
	_, err := a.Protect([]byte("x"), nil)
	wantErr(t, "after close", err, ErrInactive)
	_, err = a.Commit(nil)
	wantErr(t, "commit after close", err, ErrInactive)
	a.Close() // idempotent
}

func TestMaxMessageSize(t *testing.T) {
	cfg := &Config{MaxMessageSize: 4096}
	tg := newTestGroup(t, 2, cfg)
	a, b := tg.groups[0], tg.groups[1]
	_, err := a.Protect(make([]byte, 5000), nil)
	wantErr(t, "outgoing message over the limit", err, ErrMessageTooLarge)
	msg, err := a.Protect(make([]byte, 1000), nil)
	must(t, "protect", err)
	mustProcess(t, msg, b)
	big := newTestGroup(t, 1, nil).groups[0]
	huge, err := big.Protect(make([]byte, 5000), nil)
	must(t, "protect", err)
	_, err = b.Process(huge)
	wantErr(t, "incoming message over the limit", err, ErrMessageTooLarge)
	_, err = JoinGroup(make([]byte, 5000), tg.members[1].keyPackage(t, grpSuite, cfg), nil, cfg)
	wantErr(t, "welcome over the limit", err, ErrMessageTooLarge)
}
