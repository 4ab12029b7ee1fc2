package x0x

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func testStream(t *testing.T, items, bytes int) (*fanout[Message], *Stream[Message], *atomic.Uint64) {
	t.Helper()
	var dropped atomic.Uint64
	f := &fanout[Message]{size: messageSize, clone: cloneMessage, dropped: &dropped}
	s, err := f.open([]StreamOption{WithBuffer(items, bytes)})
	if err != nil {
		t.Fatal(err)
	}
	return f, s, &dropped
}

func msg(i int) Message { return Message{Seq: uint64(i), Payload: []byte{byte(i)}} }

// A reader that falls behind gets one *LaggedError counting what it lost,
// then the messages after the gap, in order; the loss is reported once.
func TestStreamLagMarkerOnce(t *testing.T) {
	f, s, dropped := testStream(t, 4, 0)
	ctx := context.Background()
	for i := 1; i <= 10; i++ {
		f.publish(msg(i))
	}
	_, err := s.Next(ctx)
	var le *LaggedError
	if !errors.As(err, &le) || le.Missed != 6 || !errors.Is(err, ErrLagged) {
		t.Fatalf("first Next: %v, want *LaggedError{Missed: 6}", err)
	}
	for want := 7; want <= 10; want++ {
		m, err := s.Next(ctx)
		if err != nil || m.Seq != uint64(want) {
			t.Fatalf("after the gap: %+v %v, want seq %d", m, err, want)
		}
	}
	// It goes on: a second overflow is a second, separate report.
	f.publish(msg(11))
	if m, err := s.Next(ctx); err != nil || m.Seq != 11 {
		t.Fatalf("%+v %v", m, err)
	}
	for i := 12; i <= 17; i++ {
		f.publish(msg(i))
	}
	if _, err := s.Next(ctx); !errors.As(err, &le) || le.Missed != 2 {
		t.Fatalf("second overflow: %v, want Missed 2", err)
	}
	if m, err := s.Next(ctx); err != nil || m.Seq != 14 {
		t.Fatalf("%+v %v, want seq 14", m, err)
	}
	if dropped.Load() != 8 {
		t.Fatalf("drop counter %d, want 8", dropped.Load())
	}
}

// The byte bound drops old messages too; one message over the bound is
// still kept, alone.
func TestStreamByteBound(t *testing.T) {
	f, s, _ := testStream(t, 100, 3*(128+100))
	ctx := context.Background()
	for i := range 5 {
		f.publish(Message{Seq: uint64(i), Payload: make([]byte, 100)})
	}
	var le *LaggedError
	if _, err := s.Next(ctx); !errors.As(err, &le) || le.Missed != 2 {
		t.Fatalf("%v, want 2 missed", err)
	}
	for want := 2; want < 5; want++ {
		if m, err := s.Next(ctx); err != nil || m.Seq != uint64(want) {
			t.Fatalf("%+v %v", m, err)
		}
	}
	f.publish(Message{Seq: 9, Payload: make([]byte, 10000)})
	if m, err := s.Next(ctx); err != nil || m.Seq != 9 {
		t.Fatalf("oversized message: %+v %v", m, err)
	}
}

// Close unblocks a Next waiting on another goroutine with ErrClosed, and
// the fanout stops feeding the stream.
func TestStreamCloseUnblocksNext(t *testing.T) {
	f, s, _ := testStream(t, 0, 0)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Next(context.Background())
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	s.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Next after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Next")
	}
	if f.active() {
		t.Fatal("closed stream still registered")
	}
	f.publish(msg(1))
	if _, err := s.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("%v", err)
	}
	s.Close() // idempotent
}

// When the source ends, Next returns what was buffered, then ErrClosed;
// a context ends a wait with its error; bad options are refused.
func TestStreamEndContextAndOptions(t *testing.T) {
	f, s, _ := testStream(t, 0, 0)
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with an expiring context: %v", err)
	}
	f.publish(msg(1))
	f.close()
	//lint:ignore SA1012 a nil context must not panic
	if m, err := s.Next(nil); err != nil || m.Seq != 1 {
		t.Fatalf("buffered message after the end: %+v %v", m, err)
	}
	if _, err := s.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("after the end: %v", err)
	}
	if _, err := f.open(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("open on an ended source: %v", err)
	}
	var nilStream *Stream[Message]
	if _, err := nilStream.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatal("nil stream")
	}
	nilStream.Close()
	for _, o := range []StreamOption{WithBuffer(-1, 0), WithBuffer(0, -1), WithBuffer(maxStreamItems+1, 0)} {
		var ce *ConfigError
		if _, err := (&fanout[Message]{}).open([]StreamOption{o}); !errors.As(err, &ce) || !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("bad option accepted: %v", err)
		}
	}
	if _, err := (&fanout[Message]{}).open([]StreamOption{nil}); err != nil {
		t.Fatalf("nil option: %v", err)
	}
}

// Every stream of a source gets every item, in its own copy; readers on
// several goroutines each get distinct items.
func TestStreamFanoutCopiesAndConcurrentReaders(t *testing.T) {
	var dropped atomic.Uint64
	f := &fanout[Message]{size: messageSize, clone: cloneMessage, dropped: &dropped}
	a, _ := f.open([]StreamOption{WithBuffer(4096, 0)})
	b, _ := f.open(nil)
	f.publish(Message{Payload: []byte("x")})
	ma, _ := a.Next(context.Background())
	mb, _ := b.Next(context.Background())
	ma.Payload[0] = 'y'
	if string(mb.Payload) != "x" {
		t.Fatal("streams share a payload")
	}
	const n = 2000
	var got atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	for range 4 {
		wg.Go(func() {
			for {
				if _, err := a.Next(ctx); err != nil {
					return
				}
				got.Add(1)
			}
		})
	}
	for i := range n {
		f.publish(msg(i))
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for got.Load() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	// b was not read again: it lost all but its last DefaultStreamItems.
	if got.Load() != n || dropped.Load() != n-DefaultStreamItems {
		t.Fatalf("read %d of %d, dropped %d", got.Load(), n, dropped.Load())
	}
}
