package crdt

import (
	"sync"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/wire"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rid returns a replica ID whose bytes are all b (so rid(1) < rid(2)).
func rid(b byte) ReplicaID {
	var r ReplicaID
	for i := range r {
		r[i] = b
	}
	return r
}

// manualClock is a clock.Clock whose time moves only when the test says so.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func newManualClock(ms int64) *manualClock { return &manualClock{now: time.UnixMilli(ms)} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) set(ms int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = time.UnixMilli(ms)
}

// AfterFunc is not used by this package; the timer it returns never fires.
func (c *manualClock) AfterFunc(time.Duration, func()) clock.Timer { return nopTimer{} }

type nopTimer struct{}

func (nopTimer) Stop() bool { return false }

// enc encodes v with the wire codec or fails the test.
func enc(t testing.TB, v any) []byte {
	t.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return b
}

// ridb returns rid(b) as a byte slice.
func ridb(b byte) []byte { r := rid(b); return r[:] }
