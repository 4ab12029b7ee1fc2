package membership

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
	"github.com/saorsa-labs/x0x-go/core/sim"
)

// blockingNet is a Network whose Connect blocks like a real handshake: until
// release is closed (success) or the context ends.
type blockingNet struct {
	mu      sync.Mutex
	release chan struct{}
	entered chan struct{} // receives once per Connect call
	dials   sync.WaitGroup
}

// Dial runs Connect on a goroutine the network owns, as transport.Node does.
func (b *blockingNet) Dial(ctx context.Context, p identity.PeerID, addr string, done func(error)) {
	b.dials.Go(func() { done(b.Connect(ctx, p, addr)) })
}

func (b *blockingNet) LocalID() identity.PeerID { return identity.DeriveID([]byte("blocking")) }
func (b *blockingNet) LocalAddr() string        { return "blocking:0" }
func (b *blockingNet) Connect(ctx context.Context, _ identity.PeerID, _ string) error {
	b.mu.Lock()
	release := b.release
	b.mu.Unlock()
	b.entered <- struct{}{}
	select {
	case <-release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (b *blockingNet) Disconnect(identity.PeerID) {}
func (b *blockingNet) Send(identity.PeerID, link.Protocol, link.Priority, []byte) error {
	return link.ErrNotConnected
}
func (b *blockingNet) Handle(link.Protocol, link.MessageHandler) {}
func (b *blockingNet) WatchPeers(func(link.PeerEvent))           {}
func (b *blockingNet) Peers() []identity.PeerID                  { return nil }
func (b *blockingNet) LastHeard(identity.PeerID) time.Time       { return time.Time{} }

// Over a transport whose Connect blocks, Dial returns at once and reports
// later; Close cancels the dials membership started (goleak checks that
// none is left).
func TestDialOnBlockingTransportIsOwned(t *testing.T) {
	clk := sim.NewClock(time.Unix(0, 0)) // never advanced: no timer runs
	net := &blockingNet{release: make(chan struct{}), entered: make(chan struct{}, 4)}
	m, err := New(net, Config{Clock: clk, Rand: bytes.NewReader(make([]byte, 64)), Records: SimulatedRecords{ID: net.LocalID()}})
	if err != nil {
		t.Fatal(err)
	}
	desc := func(id identity.PeerID, addr string) NodeDesc {
		rec, _ := SimulatedRecords{ID: id}.Sign(addr)
		return NodeDesc{ID: id, Addr: addr, Rec: rec}
	}
	var refused error
	m.Dial(NodeDesc{ID: testID(0, 1), Addr: "x"}, func(err error) { refused = err })
	if !errors.Is(refused, ErrUnvouched) || !errors.Is(refused, ErrBadRecord) || len(net.entered) != 0 {
		t.Fatalf("dial of an address without a record: %v (%d connects)", refused, len(net.entered))
	}
	ok := make(chan error, 1)
	m.Dial(desc(testID(0, 1), "x"), func(err error) { ok <- err })
	<-net.entered
	close(net.release)
	if err := <-ok; err != nil {
		t.Fatalf("dial: %v", err)
	}
	net.mu.Lock()
	net.release = make(chan struct{}) // later dials block until Close
	net.mu.Unlock()
	pending := make(chan error, 1)
	m.Dial(desc(testID(0, 2), "y"), func(err error) { pending <- err })
	<-net.entered // the dial goroutine is inside Connect
	m.Close()
	if got := <-pending; !errors.Is(got, context.Canceled) {
		t.Fatalf("after Close: %v, want context.Canceled", got)
	}
	net.dials.Wait()
	var got error
	m.Dial(desc(testID(0, 3), "z"), func(err error) { got = err })
	if !errors.Is(got, ErrClosed) {
		t.Fatalf("dial after close: %v", got)
	}
}
