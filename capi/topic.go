package main

/*
#include <stdlib.h>
#include "helpers.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// Event kinds and limits of the topic handles (as Go constants, for the
// tests).
const (
	kindNeighbourUp   = C.X0X_EVENT_TOPIC_NEIGHBOUR_UP
	kindNeighbourDown = C.X0X_EVENT_TOPIC_NEIGHBOUR_DOWN
	kindLagged        = C.X0X_EVENT_LAGGED
	kindValidate      = C.X0X_EVENT_VALIDATE

	flagPublishOnly     = C.X0X_TOPIC_PUBLISH_ONLY
	defaultValidationMS = C.X0X_DEFAULT_VALIDATION_MS
	maxValidationMS     = C.X0X_MAX_VALIDATION_MS
	verdictAccept       = C.X0X_VALIDATION_ACCEPT
)

// topicEntry is what a topic handle names: a facade topic handle with the
// C layer's subscriptions and validator. An x0x_subscribe makes one too,
// with handle 0 (it is never in the registry).
type topicEntry struct {
	handle      uint64 // 0 for the internal handle of an x0x_subscribe
	agent       *agentEntry
	name        string
	publishOnly bool
	val         *validation // nil without a validator

	mu   sync.Mutex
	t    *x0x.Topic             // nil until the facade join returned
	subs map[*subEntry]struct{} // open subscriptions; nil once left
}

// subEntry is what a subscription handle names: one facade stream of the
// topic's messages (x0x_topic_subscribe) or neighbour changes
// (x0x_topic_events), forwarded to the agent's events by its own
// goroutine. closed is set (under the agent queue's lock) when the
// subscription is closed: from then on none of its records is queued.
type subEntry struct {
	handle uint64 // 0 for the subscription of an x0x_subscribe
	topic  *topicEntry
	msgs   *x0x.Subscription           // x0x_topic_subscribe
	tevs   *x0x.Stream[x0x.TopicEvent] // x0x_topic_events
	closed atomic.Bool
}

// lagMarkers reports whether losses of s are reported with lag markers
// (every subscription except those of x0x_subscribe, whose records keep
// the ABI 0.2 form).
func (s *subEntry) lagMarkers() bool { return s.handle != 0 }

// lagEvent is the lag marker of s for n lost records.
func (s *subEntry) lagEvent(n uint64) event {
	return event{kind: kindLagged, topic: s.topic.name, nums: [4]uint64{n, 0, 0, s.handle}, sub: s}
}

// closeStream closes the facade stream of s.
func (s *subEntry) closeStream() {
	if s.msgs != nil {
		s.msgs.Close()
	}
	if s.tevs != nil {
		s.tevs.Close()
	}
}

// validation is the validator of a topic handle: a C function (fn), or
// asynchronous requests through the agent's events (fn nil).
type validation struct {
	fn    C.x0x_validator_fn
	ud    unsafe.Pointer // the caller's user data (never dereferenced)
	limit time.Duration

	mu      sync.Mutex
	left    bool                 // the handle was left: the validator no longer applies
	leftCh  chan struct{}        // closed when left: waiting requests are let through
	pending map[uint64]chan bool // asynchronous requests waiting for a verdict
	calls   sync.WaitGroup       // running calls of fn
}

// Why a validator refused a message (pub/sub wraps them in ErrRejected).
var (
	errRefused      = errors.New("refused by a validator of the topic handle")
	errNoVerdict    = errors.New("no verdict from the topic handle's validator within its time limit")
	errLateVerdict  = errors.New("the topic handle's validator took longer than its time limit")
	errRequestQueue = errors.New("the validation request found the agent's event queue full")
)

// validate is the facade validator of te: it runs on a network goroutine
// (or in Publish) for each message new to this node.
func (te *topicEntry) validate(m x0x.Message) error {
	v := te.val
	v.mu.Lock()
	if v.left {
		v.mu.Unlock()
		return nil
	}
	if v.fn != nil {
		v.calls.Add(1)
		v.mu.Unlock()
		defer v.calls.Done()
		return te.callValidator(m)
	}
	id := te.agent.requests.Add(1)
	ch := make(chan bool, 1)
	v.pending[id] = ch
	v.mu.Unlock()
	defer v.resolve(id, false) // forget the request however this ends
	return te.awaitVerdict(m, id, ch)
}

// validateEvent describes m as an X0X_EVENT_VALIDATE record.
func (te *topicEntry) validateEvent(m x0x.Message, request uint64) event {
	return event{kind: kindValidate, from: m.Origin, topic: te.name, payload: m.Payload,
		nums: [4]uint64{m.Seq, uint64(m.Time.UnixMilli()), request, te.handle}}
}

// callValidator calls the C validator function on m (the record lives in
// C memory for the duration of the call).
func (te *topicEntry) callValidator(m x0x.Message) error {
	v := te.val
	rec := (*C.x0x_event)(C.calloc(1, C.size_t(unsafe.Sizeof(C.x0x_event{}))))
	defer C.free(unsafe.Pointer(rec))
	ev := te.validateEvent(m, 0)
	ev.fill(rec)
	defer C.capi_event_free_fields(rec)
	start := time.Now()
	verdict := C.capi_invoke_validator(v.fn, C.uint64_t(te.handle), rec, v.ud)
	switch {
	case time.Since(start) > v.limit:
		return errLateVerdict
	case verdict != verdictAccept:
		return errRefused
	}
	return nil
}

// awaitVerdict queues the validation request id for m and waits for its
// verdict, at most the handle's time limit.
func (te *topicEntry) awaitVerdict(m x0x.Message, id uint64, ch chan bool) error {
	v, e := te.val, te.agent
	ev := te.validateEvent(m, id)
	ev.payload = append([]byte(nil), m.Payload...) // the validator must not keep m.Payload
	queueFull := make(chan struct{})
	ev.onDrop = func() { close(queueFull) }
	timer := time.NewTimer(v.limit)
	defer timer.Stop()
	select {
	case e.inbox <- ev:
	case <-timer.C:
		return errNoVerdict
	case <-e.stop:
		return x0x.ErrClosed
	case <-v.leftCh:
		return nil
	}
	select {
	case ok := <-ch:
		if ok {
			return nil
		}
		return errRefused
	case <-queueFull:
		return errRequestQueue
	case <-timer.C:
		return errNoVerdict
	case <-e.stop:
		return x0x.ErrClosed
	case <-v.leftCh:
		return nil
	}
}

// resolve gives pending request id its verdict; it reports false if no
// such request is pending.
func (v *validation) resolve(id uint64, accept bool) bool {
	v.mu.Lock()
	ch, ok := v.pending[id]
	delete(v.pending, id)
	v.mu.Unlock()
	if ok {
		ch <- accept // buffered, and only the one who deleted it sends
	}
	return ok
}

// markLeft makes the validator stop applying: new messages pass it and
// waiting requests are let through. It reports whether it was the first
// call.
func (v *validation) markLeft() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.left {
		return false
	}
	v.left = true
	close(v.leftCh)
	return true
}

// joinTopic joins name for the agent: it registers a topic handle (or,
// with register false, makes the internal handle of an x0x_subscribe).
func (e *agentEntry) joinTopic(name string, publishOnly bool, val *validation, register bool) (*topicEntry, error) {
	te := &topicEntry{agent: e, name: name, publishOnly: publishOnly, val: val, subs: map[*subEntry]struct{}{}}
	e.subMu.Lock()
	if e.topics == nil {
		e.subMu.Unlock()
		return nil, x0x.ErrClosed
	}
	if register {
		// Registered first so that the validator, which may run as soon as
		// the facade installs it, knows its handle; the entry is not usable
		// (te.t is nil) until the join returned.
		h, err := handles.add(kindTopic, te)
		if err != nil {
			e.subMu.Unlock()
			return nil, err
		}
		te.handle = h
	}
	e.topics[te] = struct{}{}
	e.subMu.Unlock()

	var opts []x0x.TopicOption
	if publishOnly {
		opts = append(opts, x0x.PublishOnly())
	}
	if val != nil {
		opts = append(opts, x0x.WithValidator(te.validate))
	}
	t, err := e.a.Join(context.Background(), name, opts...)
	if err != nil {
		te.forget()
		return nil, err
	}
	te.mu.Lock()
	left := te.subs == nil // the agent was destroyed meanwhile
	if !left {
		te.t = t
	}
	te.mu.Unlock()
	if left {
		t.Leave()
		return nil, x0x.ErrClosed
	}
	return te, nil
}

// forget removes te from the registry and from its agent.
func (te *topicEntry) forget() {
	if te.handle != 0 {
		_, _ = handles.remove(te.handle, kindTopic)
	}
	e := te.agent
	e.subMu.Lock()
	if e.topics != nil {
		delete(e.topics, te)
	}
	e.subMu.Unlock()
	if te.val != nil {
		te.val.markLeft()
	}
}

// facade returns the facade topic of a usable entry.
func (te *topicEntry) facade() (*x0x.Topic, error) {
	te.mu.Lock()
	defer te.mu.Unlock()
	if te.t == nil || te.subs == nil {
		return nil, &apiError{statusInvalidHandle, fmt.Sprintf("invalid topic handle %#x: not joined", te.handle)}
	}
	return te.t, nil
}

// subscribe opens a subscription of te: to its messages, or with events
// to its neighbour changes.
func (te *topicEntry) subscribe(events bool) (*subEntry, error) {
	e := te.agent
	te.mu.Lock()
	defer te.mu.Unlock()
	if te.t == nil || te.subs == nil {
		return nil, &apiError{statusInvalidHandle, fmt.Sprintf("invalid topic handle %#x: not joined", te.handle)}
	}
	s := &subEntry{topic: te}
	var err error
	if events {
		s.tevs, err = te.t.Events()
	} else {
		if te.publishOnly {
			return nil, errInvalidArg(fmt.Sprintf("topic %q was joined X0X_TOPIC_PUBLISH_ONLY", te.name))
		}
		s.msgs, err = te.t.Subscribe()
	}
	if err != nil {
		return nil, err
	}
	if te.handle != 0 {
		h, err := handles.add(kindSubscription, s)
		if err != nil {
			s.closeStream()
			return nil, err
		}
		s.handle = h
	}
	te.subs[s] = struct{}{}
	e.fwd.Add(1)
	if events {
		go e.forwardTopicEvents(s)
	} else {
		go e.forwardMessages(s)
	}
	return s, nil
}

// closeSub closes subscription s (already removed from the registry).
func (te *topicEntry) closeSub(s *subEntry) {
	te.mu.Lock()
	if te.subs != nil {
		delete(te.subs, s)
	}
	te.mu.Unlock()
	te.agent.q.closeSub(s)
	s.closeStream()
}

// leave leaves te: its subscriptions and handles end, its validator stops
// applying, and the facade handle is left. It waits for running calls of
// a validator function unless the calling thread runs one of te's
// (inValidator is the topic whose validator runs on this thread, or 0).
func (te *topicEntry) leave(inValidator uint64) error {
	te.mu.Lock()
	if te.subs == nil {
		te.mu.Unlock()
		return &apiError{statusInvalidHandle, fmt.Sprintf("invalid topic handle %#x: already left", te.handle)}
	}
	subs := te.subs
	te.subs = nil
	t := te.t
	te.mu.Unlock()
	te.forget()
	for s := range subs {
		if s.handle != 0 {
			_, _ = handles.remove(s.handle, kindSubscription)
		}
		te.agent.q.closeSub(s)
		s.closeStream()
	}
	if t != nil {
		t.Leave()
	}
	if v := te.val; v != nil && v.fn != nil && (te.handle == 0 || inValidator != te.handle) {
		v.calls.Wait()
	}
	return nil
}

// forwardMessages moves a subscription's messages to the dispatcher until
// the subscription ends or the agent is destroyed. Messages lost while
// the dispatcher was busy (the stream's buffer overflowed) are counted,
// and reported with a lag marker.
func (e *agentEntry) forwardMessages(s *subEntry) {
	defer e.fwd.Done()
	for {
		m, err := s.msgs.Next(context.Background())
		var lag *x0x.LaggedError
		if errors.As(err, &lag) {
			e.subsDropped.Add(lag.Missed)
			if s.lagMarkers() && !e.post(s.lagEvent(lag.Missed)) {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		ev := topicEvent(m)
		ev.sub = s
		ev.nums[3] = s.handle
		if !e.post(ev) {
			return
		}
	}
}

// forwardTopicEvents moves a subscription's neighbour changes to the
// dispatcher, as forwardMessages does messages.
func (e *agentEntry) forwardTopicEvents(s *subEntry) {
	defer e.fwd.Done()
	for {
		te, err := s.tevs.Next(context.Background())
		var lag *x0x.LaggedError
		if errors.As(err, &lag) {
			e.subsDropped.Add(lag.Missed)
			if !e.post(s.lagEvent(lag.Missed)) {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		kind := uint32(kindNeighbourUp)
		if te.Kind == x0x.TopicNeighbourDown {
			kind = kindNeighbourDown
		} else if te.Kind != x0x.TopicNeighbourUp {
			continue
		}
		if !e.post(event{kind: kind, peer: te.Peer, topic: s.topic.name, nums: [4]uint64{0, 0, 0, s.handle}, sub: s}) {
			return
		}
	}
}

// closeTopics leaves every topic of a destroyed agent (its handles become
// invalid; the agent's Close then ends the facade handles).
func (e *agentEntry) closeTopics(inValidator uint64) {
	e.subMu.Lock()
	topics := e.topics
	e.topics = nil
	e.legacy = nil
	e.subMu.Unlock()
	for te := range topics {
		_ = te.leave(inValidator)
	}
}

func getTopic(h uint64) (*topicEntry, error) {
	obj, err := handles.get(h, kindTopic)
	if err != nil {
		return nil, err
	}
	return obj.(*topicEntry), nil
}

// withTopic runs f on the topic named by h.
func withTopic(name string, h C.uint64_t, f func(te *topicEntry) error) C.int {
	return C.int(call(name, func() error {
		te, err := getTopic(uint64(h))
		if err != nil {
			return err
		}
		return f(te)
	}))
}

// join is x0x_topic_join and x0x_topic_join_validated.
func join(name string, h C.uint64_t, topic *C.char, flags C.uint32_t, val *validation, out *C.uint64_t) C.int {
	return withAgent(name, h, func(e *agentEntry) error {
		n, err := goTopic(topic)
		if err != nil {
			return err
		}
		if out == nil {
			return errInvalidArg("out is NULL")
		}
		if flags&^flagPublishOnly != 0 {
			return errInvalidArg(fmt.Sprintf("unknown flags %#x", uint32(flags&^flagPublishOnly)))
		}
		te, err := e.joinTopic(n, flags&flagPublishOnly != 0, val, true)
		if err != nil {
			return err
		}
		*out = C.uint64_t(te.handle)
		return nil
	})
}

//export x0x_topic_join
func x0x_topic_join(h C.uint64_t, topic *C.char, flags C.uint32_t, out *C.uint64_t) C.int {
	return join("x0x_topic_join", h, topic, flags, nil, out)
}

//export x0x_topic_join_validated
func x0x_topic_join_validated(h C.uint64_t, topic *C.char, flags C.uint32_t, fn C.x0x_validator_fn,
	ud unsafe.Pointer, limitMS C.uint32_t, out *C.uint64_t) C.int {
	if limitMS > maxValidationMS {
		return C.int(call("x0x_topic_join_validated", func() error {
			return errInvalidArg(fmt.Sprintf("time_limit_ms %d is over X0X_MAX_VALIDATION_MS (%d)", uint32(limitMS), maxValidationMS))
		}))
	}
	if limitMS == 0 {
		limitMS = defaultValidationMS
	}
	val := &validation{fn: fn, ud: ud, limit: time.Duration(limitMS) * time.Millisecond,
		leftCh: make(chan struct{}), pending: map[uint64]chan bool{}}
	return join("x0x_topic_join_validated", h, topic, flags, val, out)
}

//export x0x_topic_validation_result
func x0x_topic_validation_result(h C.uint64_t, request C.uint64_t, verdict C.int) C.int {
	return withTopic("x0x_topic_validation_result", h, func(te *topicEntry) error {
		if _, err := te.facade(); err != nil {
			return err
		}
		if te.val == nil || te.val.fn != nil {
			return &apiError{statusNotFound, "the topic handle has no asynchronous validator"}
		}
		if !te.val.resolve(uint64(request), verdict == verdictAccept) {
			return &apiError{statusNotFound, fmt.Sprintf("no pending validation request %d (answered, or its time limit passed)", uint64(request))}
		}
		return nil
	})
}

//export x0x_topic_publish
func x0x_topic_publish(h C.uint64_t, payload *C.uint8_t, n C.size_t, outID *C.uint8_t) C.int {
	return withTopic("x0x_topic_publish", h, func(te *topicEntry) error {
		t, err := te.facade()
		if err != nil {
			return err
		}
		data, err := goBytes(payload, n, x0x.MaxPayload, "payload")
		if err != nil {
			return err
		}
		id, err := t.Publish(context.Background(), data)
		if err != nil {
			return err
		}
		if outID != nil {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(outID)), idSize), id[:])
		}
		return nil
	})
}

// openSub is x0x_topic_subscribe and x0x_topic_events.
func openSub(name string, h C.uint64_t, events bool, out *C.uint64_t) C.int {
	return withTopic(name, h, func(te *topicEntry) error {
		if out == nil {
			return errInvalidArg("out is NULL")
		}
		s, err := te.subscribe(events)
		if err != nil {
			return err
		}
		*out = C.uint64_t(s.handle)
		return nil
	})
}

//export x0x_topic_subscribe
func x0x_topic_subscribe(h C.uint64_t, out *C.uint64_t) C.int {
	return openSub("x0x_topic_subscribe", h, false, out)
}

//export x0x_topic_events
func x0x_topic_events(h C.uint64_t, out *C.uint64_t) C.int {
	return openSub("x0x_topic_events", h, true, out)
}

//export x0x_subscription_close
func x0x_subscription_close(h C.uint64_t) C.int {
	return C.int(call("x0x_subscription_close", func() error {
		obj, err := handles.remove(uint64(h), kindSubscription)
		if err != nil {
			return err
		}
		s := obj.(*subEntry)
		s.topic.closeSub(s)
		return nil
	}))
}

//export x0x_topic_neighbours
func x0x_topic_neighbours(h C.uint64_t, out **C.uint8_t, count *C.size_t) C.int {
	return withTopic("x0x_topic_neighbours", h, func(te *topicEntry) error {
		if out == nil || count == nil {
			return errInvalidArg("out_ids or out_count is NULL")
		}
		t, err := te.facade()
		if err != nil {
			return err
		}
		peers := t.Neighbours()
		*out, *count = ids(peers), C.size_t(len(peers))
		return nil
	})
}

//export x0x_topic_leave
func x0x_topic_leave(h C.uint64_t) C.int {
	return withTopic("x0x_topic_leave", h, func(te *topicEntry) error {
		return te.leave(uint64(C.capi_in_validator()))
	})
}
