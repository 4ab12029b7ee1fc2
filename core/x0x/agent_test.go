package x0x

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/saorsa-labs/x0x-go/core/identity/keystore"
	"github.com/saorsa-labs/x0x-go/core/membership"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cheapKDF makes passphrase-sealed key files quick to open in tests.
func cheapKDF() KDFParams { return KDFParams{Time: 1, MemoryKiB: 64, Threads: 1} }

func build(t *testing.T, b *Builder) *Agent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := b.Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func TestBuilderCreatesThenLoadsKeys(t *testing.T) {
	dir := t.TempDir()
	a := build(t, NewBuilder().WithDataDir(dir))
	agentID, machineID := a.AgentID(), a.MachineID()
	if agentID == machineID || agentID.IsZero() {
		t.Fatal("agent and machine must be distinct non-zero identities")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	for _, f := range []string{keystore.MachineKeyFile, keystore.AgentKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", f, fi.Mode().Perm())
		}
	}
	b := build(t, NewBuilder().WithDataDir(dir))
	if b.AgentID() != agentID || b.MachineID() != machineID {
		t.Fatal("second run did not load the same keys")
	}
}

func TestBuilderWithMachineKeyAndAgentKey(t *testing.T) {
	machineDir := t.TempDir()
	dataDir := t.TempDir()
	donor := build(t, NewBuilder().WithDataDir(t.TempDir()))
	bundle, err := donor.ExportIdentity([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ImportIdentity(bundle, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ImportIdentity(bundle, []byte("wrong")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	path := filepath.Join(machineDir, "host.key")
	a := build(t, NewBuilder().WithDataDir(dataDir).WithMachineKey(path).WithAgentKey(kp))
	if a.AgentID() != donor.AgentID() {
		t.Fatal("imported agent has another ID")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("machine key not created at the given path: %v", err)
	}
	a.Close()
	if _, err := os.Stat(filepath.Join(dataDir, keystore.MachineKeyFile)); !os.IsNotExist(err) {
		t.Fatal("machine key also written to the data directory")
	}
	b := build(t, NewBuilder().WithDataDir(dataDir).WithMachineKey(path))
	if b.MachineID() != a.MachineID() {
		t.Fatal("machine key at path not reloaded")
	}
	if b.AgentID() == a.AgentID() {
		t.Fatal("WithAgentKey must not save the agent key to the data directory")
	}
}

func TestBuilderRefusesCorruptKeyFile(t *testing.T) {
	dir := t.TempDir()
	build(t, NewBuilder().WithDataDir(dir)).Close()
	path := filepath.Join(dir, keystore.AgentKeyFile)
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := NewBuilder().WithDataDir(dir).Build(context.Background())
	var fe *FileError
	if !errors.As(err, &fe) || fe.Path != path || !errors.Is(err, ErrCorrupt) || !errors.Is(fe, ErrCorrupt) {
		t.Fatalf("err = %v, want *FileError naming %s wrapping ErrCorrupt", err, path)
	}
	if b, _ := os.ReadFile(path); string(b) != "garbage" {
		t.Fatal("corrupt key file was modified")
	}
}

func TestBuilderPassphrase(t *testing.T) {
	dir := t.TempDir()
	a := build(t, NewBuilder().WithDataDir(dir).WithPassphrase([]byte("s3cret")).WithKDF(cheapKDF()))
	id := a.AgentID()
	a.Close()
	if _, err := NewBuilder().WithDataDir(dir).WithPassphrase([]byte("nope")).Build(context.Background()); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := NewBuilder().WithDataDir(dir).Build(context.Background()); !errors.Is(err, ErrPassphraseRequired) {
		t.Fatalf("missing passphrase: %v", err)
	}
	b := build(t, NewBuilder().WithDataDir(dir).WithPassphrase([]byte("s3cret")))
	if b.AgentID() != id {
		t.Fatal("passphrase-sealed keys did not reload")
	}
}

func TestBootstrapParsing(t *testing.T) {
	if _, err := NewBuilder().WithDataDir(t.TempDir()).WithBootstrap("nonsense").Build(context.Background()); err == nil {
		t.Fatal("bad bootstrap address accepted")
	}
	if _, err := NewBuilder().WithDataDir(t.TempDir()).WithBootstrap("zz@127.0.0.1:1").Build(context.Background()); err == nil {
		t.Fatal("bad bootstrap peer ID accepted")
	}
	if _, err := NewBuilder().WithDataDir(t.TempDir()).WithNetwork("mainnet").Build(context.Background()); err == nil {
		t.Fatal("unknown network accepted")
	}
	seeds, err := BootstrapPeers(NetworkTestnet)
	if err != nil || len(seeds) != 6 {
		t.Fatalf("testnet seeds = %v, %v", seeds, err)
	}
	if local, _ := BootstrapPeers(""); len(local) != 0 {
		t.Fatal("the default network must have no built-in peers")
	}
	a := build(t, NewBuilder().WithDataDir(t.TempDir()))
	if err := a.JoinNetwork(context.Background()); !errors.Is(err, ErrNoBootstrap) {
		t.Fatalf("JoinNetwork with nobody: %v", err)
	}
}

// Two agents join through a third node and exchange direct messages.
func TestAgentsExchangeDirectMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	boot := build(t, NewBuilder().WithDataDir(t.TempDir()))
	bootAddr := boot.MachineID().String() + "@" + boot.Addr()
	alice := build(t, NewBuilder().WithDataDir(t.TempDir()).WithBootstrap(bootAddr))
	bob := build(t, NewBuilder().WithDataDir(t.TempDir()).WithBootstrap(bootAddr))
	for _, a := range []*Agent{alice, bob} {
		if err := a.JoinNetwork(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := alice.Connect(ctx, bob.MachineID().String()+"@"+bob.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := alice.WaitForAgent(ctx, bob.AgentID()); err != nil {
		t.Fatal(err)
	}
	if err := bob.WaitForAgent(ctx, alice.AgentID()); err != nil {
		t.Fatal(err)
	}
	// Streams see events from when they are opened: open them first.
	events := map[*Agent]*Stream[Event]{}
	for _, a := range []*Agent{alice, bob} {
		s, err := a.Events()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		events[a] = s
	}
	recv := func(a *Agent) Event {
		for {
			ev, err := events[a].Next(ctx)
			if err != nil {
				t.Fatalf("waiting for a direct message: %v", err)
			}
			if ev.Kind == EventDirectMessage {
				return ev
			}
		}
	}
	msg := []byte("ping")
	if err := alice.SendDirect(ctx, bob.AgentID(), msg); err != nil {
		t.Fatal(err)
	}
	msg[0] = 'X' // the caller may reuse its buffer
	if ev := recv(bob); ev.From != alice.AgentID() || string(ev.Payload) != "ping" || ev.Peer != alice.MachineID() || ev.To != bob.AgentID() {
		t.Fatalf("bob got %q from %s", ev.Payload, ev.From.Short())
	}
	if err := bob.SendDirect(ctx, alice.AgentID(), []byte("pong")); err != nil {
		t.Fatal(err)
	}
	if ev := recv(alice); ev.From != bob.AgentID() || string(ev.Payload) != "pong" {
		t.Fatalf("alice got %q from %s", ev.Payload, ev.From.Short())
	}
	if err := alice.SendDirect(ctx, AgentID{9}, []byte("x")); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("send to an unknown agent: %v, want ErrNoRoute", err)
	}
	// A pinned ID that does not match the node at the address is refused.
	carol := build(t, NewBuilder().WithDataDir(t.TempDir()))
	var mismatch *PeerMismatchError
	_, err := alice.Connect(ctx, carol.MachineID().String()+"@"+bob.Addr())
	if !errors.As(err, &mismatch) || !errors.Is(err, ErrPeerMismatch) || mismatch.Expected != carol.MachineID() || mismatch.Got != bob.MachineID() {
		t.Fatalf("connecting to bob's address while expecting carol: err = %v, want *PeerMismatchError", err)
	}
}

// A restarted agent with no bootstrap configured finds its peers again
// through the persistent peer cache.
func TestRestartRejoinsFromPeerCache(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	peers := []*Agent{build(t, NewBuilder().WithDataDir(t.TempDir())), build(t, NewBuilder().WithDataDir(t.TempDir()))}
	dir := t.TempDir()
	a := build(t, NewBuilder().WithDataDir(dir))
	for _, p := range peers {
		if _, err := a.Connect(ctx, p.MachineID().String()+"@"+p.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil { // saves the peer cache
		t.Fatal(err)
	}
	b := build(t, NewBuilder().WithDataDir(dir))
	if err := b.JoinNetwork(ctx); err != nil {
		t.Fatalf("rejoin from cache: %v", err)
	}
	for _, p := range peers {
		if err := b.WaitForAgent(ctx, p.AgentID()); err != nil {
			t.Fatal(err)
		}
	}
}

// JoinNetwork keeps a bootstrap peer connected only for a service it
// offers (here hole-punch coordination): plain bootstrap peers are entry
// points, closed after the idle grace unless the overlay made them
// neighbours (issue 13: before, every bootstrap peer stayed connected for
// the agent's life).
func TestJoinNetworkReleasesPlainBootstrapPeers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Small views everywhere: with the default minimum of 8 neighbours, the
	// 7 agents of this test would keep asking each other to be neighbours.
	small := OverlayConfig{ActiveViewMin: 1, ActiveViewMax: 2, IdleConnectionGrace: 500 * time.Millisecond}
	var boots []string
	var coordinator PeerID
	for i := range 6 {
		b := NewBuilder().WithDataDir(t.TempDir()).WithKDF(cheapKDF()).WithOverlay(small)
		if i == 5 {
			b.WithServices(ServiceCoordinator)
		}
		if len(boots) > 0 {
			b.WithBootstrap(boots[0])
		}
		a := build(t, b)
		if len(boots) > 0 {
			if err := a.JoinNetwork(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if i == 5 {
			coordinator = a.MachineID()
		}
		boots = append(boots, fmt.Sprintf("%s@%s", a.MachineID(), a.Addr()))
	}
	newcomer := build(t, NewBuilder().WithDataDir(t.TempDir()).WithKDF(cheapKDF()).WithBootstrap(boots...).WithOverlay(small))
	if err := newcomer.JoinNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(newcomer.Peers()); n < 5 {
		t.Fatalf("only %d of 6 bootstrap peers connected", n)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		active := newcomer.overlay.Members.Active()
		var stray []PeerID
		for _, p := range newcomer.Peers() {
			if p.ID != coordinator && !slices.ContainsFunc(active, func(d membership.NodeDesc) bool { return d.ID == p.ID }) {
				stray = append(stray, p.ID)
			}
		}
		if len(stray) == 0 && len(active) <= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to bootstrap peers that are neither neighbours nor coordinators (active view %d)", len(stray), len(active))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The coordinator is still held (and redialled if its side closes).
	if !newcomer.overlay.Members.Protected(coordinator) {
		t.Fatal("the coordinating bootstrap peer was released")
	}
}

// The error a user of the public test network sees says why its seeds may
// not answer (built from the errors alone: no test contacts those hosts).
func TestJoinFailureExplainsTestnet(t *testing.T) {
	errs := []error{errors.New("bootstrap 142.93.199.50:12000: timeout")}
	if err := joinFailure(NetworkTestnet, errs); !strings.Contains(err.Error(), "only if they run this Go implementation") ||
		!strings.Contains(err.Error(), "timeout") {
		t.Fatalf("testnet: %v", err)
	}
	if err := joinFailure(NetworkLocal, errs); strings.Contains(err.Error(), "testnet") {
		t.Fatalf("local: %v", err)
	}
}

// One agent per data directory: a second one is refused at once with a
// clear error, and the directory is free again once the first closes.
func TestDataDirectoryIsLocked(t *testing.T) {
	dir := t.TempDir()
	first := build(t, NewBuilder().WithDataDir(dir).WithKDF(cheapKDF()))
	_, err := NewBuilder().WithDataDir(dir).WithKDF(cheapKDF()).Build(context.Background())
	if !errors.Is(err, ErrDataDirInUse) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second agent on %s: %v", dir, err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again := build(t, NewBuilder().WithDataDir(dir).WithKDF(cheapKDF()))
	if again.AgentID() != first.AgentID() {
		t.Fatal("the reopened directory has another agent")
	}
}
