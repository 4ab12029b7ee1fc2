package x0x

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity/keystore"
	"github.com/saorsa-labs/x0x-go/core/membership"
	"github.com/saorsa-labs/x0x-go/core/pubsub"
	"github.com/saorsa-labs/x0x-go/core/transport"
)

// Every lower-layer sentinel is reported as its facade sentinel, however it
// is wrapped or joined; the facade's own sentinels are distinct values.
func TestLowerErrorsAreTranslated(t *testing.T) {
	for _, p := range lowerErrors() {
		lower, facade := p[0], p[1]
		for _, err := range []error{
			lower,
			fmt.Errorf("op: %w", lower),
			errors.Join(errors.New("other"), fmt.Errorf("x: %w", lower)),
			&keystore.FileError{Path: "/k", Err: lower},
		} {
			got := translate(err)
			if !errors.Is(got, facade) {
				t.Errorf("translate(%v) does not match %v", err, facade)
			}
			if got.Error() != err.Error() {
				t.Errorf("translate changed the message %q to %q", err, got)
			}
			if !errors.Is(got, lower) {
				t.Errorf("translate(%v) lost the original", err)
			}
		}
		if lower == facade {
			t.Errorf("%v is the lower layer's own value", facade)
		}
	}
	// A joined error matches the sentinel of each leaf.
	j := translate(errors.Join(transport.ErrPeerClosed, transport.ErrAuthFailed))
	if !errors.Is(j, ErrPeerClosed) || !errors.Is(j, ErrAuthFailed) {
		t.Fatalf("joined: %v", j)
	}
	// Pub/sub's rejection keeps the validator's own error.
	r := translate(fmt.Errorf("%w: %w", pubsub.ErrRejected, errBad))
	if !errors.Is(r, ErrRejected) || !errors.Is(r, errBad) {
		t.Fatalf("rejection: %v", r)
	}
	// Typed details convert to this package's types.
	var fe *FileError
	if err := translate(&keystore.FileError{Path: "/d/agent.key", Err: fmt.Errorf("%w: x", keystore.ErrCorrupt)}); !errors.As(err, &fe) || fe.Path != "/d/agent.key" || !errors.Is(fe, ErrCorrupt) {
		t.Fatalf("FileError: %v %+v", err, fe)
	}
	if err := translate(&keystore.FileError{Path: "/d", Err: &fs.PathError{Op: "open", Path: "/d", Err: fs.ErrPermission}}); !errors.As(err, &fe) || !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("FileError with an OS cause: %v", err)
	}
	var pm *PeerMismatchError
	mismatch := &transport.PeerMismatchError{Expected: PeerID{1}, Got: PeerID{2}, Addr: "127.0.0.1:1"}
	if err := translate(fmt.Errorf("join: %w", mismatch)); !errors.As(err, &pm) || pm.Expected != (PeerID{1}) || pm.Got != (PeerID{2}) || !errors.Is(err, ErrPeerMismatch) {
		t.Fatalf("PeerMismatchError: %v", err)
	}
	// Errors of no lower layer pass through unchanged.
	for _, err := range []error{nil, context.Canceled, context.DeadlineExceeded, ErrClosed, errBad} {
		if got := translate(err); got != err {
			t.Fatalf("translate(%v) = %v", err, got)
		}
	}
	if e := translate(fmt.Errorf("send: %w", transport.ErrNoRoute)); translate(e) != e || !errors.Is(e, ErrNoRoute) {
		t.Fatal("translating twice changed the error")
	}
	for _, e := range []error{ErrClosed, ErrInvalidArgument, ErrRejected, ErrLagged, ErrNotConnected, ErrPayloadTooLarge} {
		if !strings.HasPrefix(e.Error(), "x0x: ") {
			t.Fatalf("sentinel %q", e)
		}
	}
	if le := (&LaggedError{Missed: 3}); !errors.Is(le, ErrLagged) || !strings.Contains(le.Error(), "3") {
		t.Fatal("LaggedError")
	}
}

// Bad settings are refused by Build with a *ConfigError naming them,
// before anything is created on disk.
func TestBuildRefusesBadSettings(t *testing.T) {
	cases := map[string]*Builder{
		"OverlayConfig.ActiveViewMin":       NewBuilder().WithOverlay(OverlayConfig{ActiveViewMin: -1}),
		"OverlayConfig.ActiveViewMax":       NewBuilder().WithOverlay(OverlayConfig{ActiveViewMin: 10, ActiveViewMax: 5}),
		"OverlayConfig.PassiveViewMax":      NewBuilder().WithOverlay(OverlayConfig{PassiveViewMax: 1 << 20}),
		"OverlayConfig.ProbeInterval":       NewBuilder().WithOverlay(OverlayConfig{ProbeInterval: time.Microsecond}),
		"OverlayConfig.SuspectTimeout":      NewBuilder().WithOverlay(OverlayConfig{ProbeInterval: 5 * time.Second}),
		"OverlayConfig.AntiEntropyInterval": NewBuilder().WithOverlay(OverlayConfig{DedupTTL: 10 * time.Second}),
		"OverlayConfig.TopicStoreBytes":     NewBuilder().WithOverlay(OverlayConfig{TopicStoreBytes: 1000}),
		"OverlayConfig.TopicMaxPeers":       NewBuilder().WithOverlay(OverlayConfig{TopicMaxPeers: 5000}),
		"OverlayConfig.DedupTTL":            NewBuilder().WithOverlay(OverlayConfig{DedupTTL: -time.Second}),
		"ConnectionConfig.MaxConnections":   NewBuilder().WithConnections(ConnectionConfig{MaxConnections: -2}),
		"ConnectionConfig.KeepAlive":        NewBuilder().WithConnections(ConnectionConfig{IdleTimeout: 5 * time.Second}),
		"ConnectionConfig.ReconnectMax":     NewBuilder().WithConnections(ConnectionConfig{ReconnectMin: 2 * time.Minute}),
		"KDFParams":                         NewBuilder().WithKDF(KDFParams{Time: 1000, MemoryKiB: 64, Threads: 1}),
	}
	for setting, b := range cases {
		dir := t.TempDir()
		_, err := b.WithDataDir(dir).Build(context.Background())
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Setting != setting || !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: err = %v", setting, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s: Build wrote %v before checking the settings", setting, entries)
		}
	}
	if _, err := NewBuilder().WithDataDir(t.TempDir()).WithBootstrap("nonsense").Build(context.Background()); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad bootstrap: %v", err)
	}
	if _, err := ParseServices("coordinator, gateway"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad service: %v", err)
	}
	if s, err := ParseServices(" relay,coordinator,"); err != nil || s != ServiceCoordinator|ServiceRelay || s.String() != "coordinator,relay" {
		t.Errorf("ParseServices: %v %v", s, err)
	}
	if _, err := ParseID("zz"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad ID: %v", err)
	}
	if err := SaveAgentKey(t.TempDir(), nil, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("SaveAgentKey(nil): %v", err)
	}
	var none *AgentKey
	if !none.ID().IsZero() || !(&AgentKey{}).ID().IsZero() {
		t.Error("a nil AgentKey has an ID")
	}
	var nb *Builder
	if _, err := nb.Build(context.Background()); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("nil Builder: %v", err)
	}
}

// OverlayConfig reaches the layers' configurations (zero keeps theirs).
func TestOverlayConfigApply(t *testing.T) {
	var m membership.Config
	var p pubsub.Config
	OverlayConfig{}.apply(&m, &p)
	if m != (membership.Config{}) || p.TopicMaxPeers != 0 || p.AEWindow != 0 {
		t.Fatalf("zero config changed the layers: %+v %+v", m, p)
	}
	c := OverlayConfig{ActiveViewMax: 6, PassiveViewMax: 30, ShuffleInterval: time.Second, ProbeInterval: 200 * time.Millisecond,
		SuspectTimeout: time.Second, TopicMaxPeers: 2, IHaveInterval: 50 * time.Millisecond, GraftTimeout: 80 * time.Millisecond,
		AntiEntropyInterval: 5 * time.Second, DedupTTL: time.Minute, TopicStoreBytes: 4 << 20}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	c.apply(&m, &p)
	if m.ActiveMin != 6 || m.ActiveMax != 6 || m.PassiveMax != 30 || m.ShuffleInterval != time.Second ||
		m.ProbeInterval != 200*time.Millisecond || m.AckTimeout != 100*time.Millisecond ||
		m.SuspectTimeout != time.Second || m.SuspectMaxTimeout != 2*time.Second {
		t.Fatalf("membership: %+v", m)
	}
	if p.TopicMaxPeers != 2 || p.TopicMinPeers != 2 || p.IHaveInterval != 50*time.Millisecond || p.GraftTimeout != 80*time.Millisecond ||
		p.AEInterval != 5*time.Second || p.DedupTTL != time.Minute || p.AEWindow != 48*time.Second || p.StoreBytes != 4<<20 {
		t.Fatalf("pubsub: %+v", p)
	}
}

// Tuned agents work together: fast SWIM and anti-entropy timers, small
// views, a small topic store.
func TestTunedOverlayDelivers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tune := OverlayConfig{ActiveViewMin: 2, ActiveViewMax: 4, PassiveViewMax: 16, ProbeInterval: 300 * time.Millisecond,
		SuspectTimeout: time.Second, AntiEntropyInterval: 2 * time.Second, DedupTTL: time.Minute, TopicStoreBytes: 2 << 20}
	a := build(t, NewBuilder().WithDataDir(t.TempDir()).WithOverlay(tune))
	b := build(t, NewBuilder().WithDataDir(t.TempDir()).WithOverlay(tune).
		WithConnections(ConnectionConfig{KeepAlive: 5 * time.Second, MaxConnections: 16}).
		WithBootstrap(a.MachineID().String()+"@"+a.Addr()))
	if err := b.JoinNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	ta, _ := joinSub(t, a, "tuned")
	_, sb := joinSub(t, b, "tuned")
	publishUntilHeard(t, ctx, ta, sb, "tuned hello")
}

// Metrics name every layer's counters as the daemon exports them.
func TestMetrics(t *testing.T) {
	a := cluster(t, 1)[0]
	list, err := a.CreateTaskList(context.Background(), "m")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := list.Add("x", ""); err != nil {
		t.Fatal(err)
	}
	ms := a.Metrics()
	for _, name := range []string{
		"x0x_transport_peers_connected", "x0x_transport_inbound_accepted_total", "x0x_nat_punches_ok_total",
		"x0x_pubsub_drop_bad_signature_total", "x0x_membership_forged_claims_total", "x0x_membership_local_health",
		"x0x_keys_bad_replies_total", "x0x_tasklist_drops_bad_signature_total", "x0x_transport_relay_forwarded_packets_total",
	} {
		if _, ok := ms.Value(name); !ok {
			t.Errorf("no metric %s", name)
		}
	}
	if n, ok := ms.Value("x0x_tasklist_local_ops_total"); !ok || n != 2 { // the creation and the add
		t.Errorf("local ops %d %v", n, ok)
	}
	if _, ok := ms.Value("x0x_transport_queue_dropped_total", Label{"class", "direct"}, Label{"priority", "eager"}); !ok {
		t.Error("no labelled queue drop series")
	}
	var buf bytes.Buffer
	if err := ms.WritePrometheus(&buf); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	for _, want := range []string{
		"# TYPE x0x_transport_peers_connected gauge\nx0x_transport_peers_connected 0\n",
		"# TYPE x0x_pubsub_drop_rejected_total counter\n",
		`x0x_transport_queue_dropped_total{class="direct",priority="eager"} 0`,
		`x0x_agent_stream_dropped_total{stream="messages"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
	if strings.Count(text, "# TYPE x0x_transport_frames_total ") != 1 {
		t.Error("a labelled metric's TYPE line is repeated")
	}
}

func TestSnakeAndCounters(t *testing.T) {
	for in, want := range map[string]string{"DropBadSignature": "drop_bad_signature", "AERounds": "ae_rounds",
		"PunchesOK": "punches_ok", "Requests": "requests", "IHavesSent": "i_haves_sent"} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
	type inner struct{ A, B uint64 }
	type stats struct {
		N     uint64
		Gauge int
		In    inner
		skip  uint64
		Name  string
	}
	got := sumMetrics(appendCounters(nil, "t", stats{N: 1, Gauge: 5, In: inner{A: 2}, skip: 9}),
		appendCounters(nil, "t", stats{N: 3, In: inner{A: 1, B: 7}}))
	var b strings.Builder
	if err := got.WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"x0x_t_n_total 4\n", "x0x_t_in_a_total 3\n", "x0x_t_in_b_total 7\n",
		"# TYPE x0x_t_gauge gauge\nx0x_t_gauge 5\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
	if len(got) != 4 {
		t.Errorf("unexported or non-numeric fields exported: %+v", got)
	}
}
