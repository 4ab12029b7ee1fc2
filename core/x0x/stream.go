package x0x

import (
	"context"
	"sync"
	"sync/atomic"
)

// Default stream bounds (see WithBuffer).
const (
	// DefaultStreamItems is how many items a stream buffers by default.
	DefaultStreamItems = 1024
	// DefaultStreamBytes is how many payload bytes a stream buffers by
	// default.
	DefaultStreamBytes = 16 << 20
	// maxStreamItems bounds WithBuffer's item count.
	maxStreamItems = 1 << 20
)

// StreamOption configures a stream when it is opened (Topic.Subscribe,
// Topic.Events, Agent.Events, TaskList.Changes).
type StreamOption func(*streamOptions)

type streamOptions struct {
	items, bytes int
}

// WithBuffer bounds the stream's buffer to items entries and about bytes
// bytes of payload (an item bigger than bytes is still kept, alone); zero
// keeps the default (DefaultStreamItems, DefaultStreamBytes). A negative
// value, or more than 1<<20 items, makes the call that opens the stream
// fail with a *ConfigError.
func WithBuffer(items, bytes int) StreamOption {
	return func(o *streamOptions) { o.items, o.bytes = items, bytes }
}

// streamConfig applies opts over the defaults and checks them.
func streamConfig(opts []StreamOption) (streamOptions, error) {
	var o streamOptions
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	switch {
	case o.items < 0 || o.items > maxStreamItems:
		return o, &ConfigError{Setting: "WithBuffer items", Reason: "want 0 (default) to 1<<20"}
	case o.bytes < 0:
		return o, &ConfigError{Setting: "WithBuffer bytes", Reason: "negative"}
	}
	if o.items == 0 {
		o.items = DefaultStreamItems
	}
	if o.bytes == 0 {
		o.bytes = DefaultStreamBytes
	}
	return o, nil
}

// Stream is a bounded stream of items of type T, read with Next: this
// package's one event mechanism. Topic messages (Topic.Subscribe), topic
// neighbour changes (Topic.Events), the agent's events and direct messages
// (Agent.Events) and task-list changes (TaskList.Changes) are all Streams.
//
// Every stream has its own bounded buffer (a number of items and a number
// of payload bytes, see WithBuffer). Its source never waits for the
// reader: when an item arrives at a full buffer, the oldest buffered items
// are dropped to make room, and the next Next reports the loss once, as a
// *LaggedError (errors.Is(err, ErrLagged)) counting the items lost, before
// it returns the items that follow the gap. Streams are independent: a
// slow reader loses only its own items. Close ends a stream; a stream also
// ends when its source does.
//
// Its methods are safe for concurrent use; each item is returned by one
// Next call. The zero value is not usable; a nil *Stream is closed.
type Stream[T any] struct {
	size    func(T) int    // bytes an item counts for
	dropped *atomic.Uint64 // the agent's counter of items dropped (Metrics)

	mu      sync.Mutex
	limits  streamOptions
	items   []streamItem[T]
	head    int // index of the oldest item in items
	bytes   int
	missed  uint64        // dropped since the last Next
	closed  bool          // Close was called
	ended   bool          // the source ended: Next drains, then ErrClosed
	wait    chan struct{} // closed on the next change; nil while nobody waits
	onClose func()
}

type streamItem[T any] struct {
	v    T
	size int
}

func newStream[T any](o streamOptions, size func(T) int, dropped *atomic.Uint64) *Stream[T] {
	return &Stream[T]{limits: o, size: size, dropped: dropped}
}

// Next returns the next item, waiting for one until ctx ends (ctx's
// error). After items were dropped it first returns a *LaggedError (once,
// counting every item lost since the previous call). Once the stream is
// closed (Close) it returns ErrClosed; once its source has ended (the
// topic was left, the list or the agent closed) it returns the items still
// buffered and then ErrClosed. The caller owns the returned item.
func (s *Stream[T]) Next(ctx context.Context) (T, error) {
	var zero T
	if s == nil {
		return zero, ErrClosed
	}
	ctx = orBackground(ctx)
	for {
		s.mu.Lock()
		switch {
		case s.closed:
			s.mu.Unlock()
			return zero, ErrClosed
		case s.missed > 0:
			m := s.missed
			s.missed = 0
			s.mu.Unlock()
			return zero, &LaggedError{Missed: m}
		case s.head < len(s.items):
			v := s.popLocked()
			s.mu.Unlock()
			return v, nil
		case s.ended:
			s.mu.Unlock()
			return zero, ErrClosed
		}
		if s.wait == nil {
			s.wait = make(chan struct{})
		}
		w := s.wait
		s.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return zero, ctx.Err()
		}
	}
}

// Close closes the stream: buffered items are discarded, a Next waiting
// on another goroutine returns ErrClosed, and the source stops feeding it.
// It is safe to call more than once.
func (s *Stream[T]) Close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	clear(s.items)
	s.items, s.head, s.bytes, s.missed = nil, 0, 0, 0
	s.wakeLocked()
	f := s.onClose
	s.onClose = nil
	s.mu.Unlock()
	if f != nil {
		f()
	}
}

// push appends v, dropping the oldest items while the buffer is over its
// bounds. It never blocks.
func (s *Stream[T]) push(v T) {
	n := 0
	if s.size != nil {
		n = s.size(v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.ended {
		return
	}
	var dropped uint64
	for s.head < len(s.items) && (len(s.items)-s.head >= s.limits.items || s.bytes+n > s.limits.bytes) {
		s.popLocked()
		dropped++
	}
	if dropped > 0 {
		s.missed += dropped
		if s.dropped != nil {
			s.dropped.Add(dropped)
		}
	}
	s.items = append(s.items, streamItem[T]{v: v, size: n})
	s.bytes += n
	s.wakeLocked()
}

// end marks the source as finished: Next drains the buffer, then returns
// ErrClosed.
func (s *Stream[T]) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	s.onClose = nil
	s.wakeLocked()
}

// popLocked removes and returns the oldest item; s.mu is held and the
// buffer is not empty.
func (s *Stream[T]) popLocked() T {
	it := s.items[s.head]
	s.items[s.head] = streamItem[T]{}
	s.head++
	s.bytes -= it.size
	switch {
	case s.head == len(s.items):
		s.items, s.head = s.items[:0], 0
	case s.head >= 64 && s.head*2 >= len(s.items):
		k := copy(s.items, s.items[s.head:])
		clear(s.items[k:])
		s.items, s.head = s.items[:k], 0
	}
	return it.v
}

// wakeLocked wakes every waiting Next; s.mu is held.
func (s *Stream[T]) wakeLocked() {
	if s.wait != nil {
		close(s.wait)
		s.wait = nil
	}
}

// fanout feeds every open stream of one source (a topic's subscriptions,
// an agent's event streams, ...).
type fanout[T any] struct {
	size    func(T) int    // bytes an item counts for (nil: 0)
	clone   func(T) T      // copies an item for each stream but the first (nil: shared)
	dropped *atomic.Uint64 // counter of items the streams dropped

	mu      sync.Mutex
	streams []*Stream[T]
	closed  bool
}

// open adds a stream configured by opts. Errors: *ConfigError, ErrClosed
// (the source has ended).
func (f *fanout[T]) open(opts []StreamOption) (*Stream[T], error) {
	o, err := streamConfig(opts)
	if err != nil {
		return nil, err
	}
	s := newStream(o, f.size, f.dropped)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	s.onClose = func() { f.remove(s) }
	f.streams = append(f.streams, s)
	return s, nil
}

func (f *fanout[T]) remove(s *Stream[T]) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.streams {
		if x == s {
			f.streams = append(f.streams[:i], f.streams[i+1:]...)
			return
		}
	}
}

// publish hands v to every open stream. It never blocks on a reader.
func (f *fanout[T]) publish(v T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.streams {
		if i > 0 && f.clone != nil {
			s.push(f.clone(v))
		} else {
			s.push(v)
		}
	}
}

// active reports whether any stream is open.
func (f *fanout[T]) active() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.streams) > 0
}

// close ends every stream and refuses new ones.
func (f *fanout[T]) close() {
	f.mu.Lock()
	streams := f.streams
	f.streams, f.closed = nil, true
	f.mu.Unlock()
	for _, s := range streams {
		s.end()
	}
}

// orBackground returns ctx, or context.Background() for a nil ctx (a nil
// context is a caller's bug, but it must not panic).
func orBackground(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}
