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
	"unsafe"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// maxTopic is X0X_MAX_TOPIC.
const maxTopic = C.X0X_MAX_TOPIC

// Event kinds set by this file (as Go constants, for the tests).
const kindTopicMessage = C.X0X_EVENT_TOPIC_MESSAGE

// maxInjectPayload bounds x0x_debug_inject_events' payload_len.
const maxInjectPayload = 64 << 10

// goTopic copies a NUL-terminated topic of 1..maxTopic bytes.
func goTopic(p *C.char) (string, error) {
	if p == nil {
		return "", errInvalidArg("topic is NULL")
	}
	n := C.capi_strnlen(p, maxTopic)
	switch {
	case n > maxTopic:
		return "", errTooLarge(fmt.Sprintf("topic is longer than %d bytes", maxTopic))
	case n == 0:
		return "", errInvalidArg("topic is empty")
	}
	return C.GoStringN(p, C.int(n)), nil
}

// topicEvent converts a delivered topic message to an event record.
func topicEvent(m x0x.Message) event {
	return event{kind: kindTopicMessage, from: m.Origin, topic: m.Topic, payload: m.Payload,
		nums: [4]uint64{m.Seq, uint64(m.Time.UnixMilli()), uint64(m.Hops)}}
}

// subscribe is x0x_subscribe: unless the agent already subscribes to
// topic, it joins it with an internal topic handle (handle 0, not in the
// registry) and opens one subscription, whose records keep the ABI 0.2
// form (reserved[3] 0, no lag markers).
func (e *agentEntry) subscribe(topic string) error {
	e.legacyMu.Lock()
	defer e.legacyMu.Unlock()
	e.subMu.Lock()
	_, ok := e.legacy[topic]
	closed := e.legacy == nil
	e.subMu.Unlock()
	switch {
	case closed:
		return x0x.ErrClosed
	case ok:
		return nil
	}
	te, err := e.joinTopic(topic, false, nil, false)
	if err != nil {
		return err
	}
	if _, err = te.subscribe(false); err != nil {
		_ = te.leave(0)
		return err
	}
	e.subMu.Lock()
	defer e.subMu.Unlock()
	if e.legacy == nil { // destroyed meanwhile: its destroy left te
		return x0x.ErrClosed
	}
	e.legacy[topic] = te
	return nil
}

// unsubscribe ends the agent's subscription to topic.
func (e *agentEntry) unsubscribe(topic string) error {
	e.legacyMu.Lock()
	defer e.legacyMu.Unlock()
	e.subMu.Lock()
	if e.legacy == nil {
		e.subMu.Unlock()
		return x0x.ErrClosed
	}
	te, ok := e.legacy[topic]
	delete(e.legacy, topic)
	e.subMu.Unlock()
	if !ok {
		return &apiError{statusNotFound, fmt.Sprintf("not subscribed to topic %q", topic)}
	}
	return te.leave(0)
}

// subscriptionDrops returns the records subscriptions lost in their own
// buffers because the dispatcher fell behind.
func (e *agentEntry) subscriptionDrops() uint64 { return e.subsDropped.Load() }

// publish publishes data on topic through a publish-only handle: the
// agent need not subscribe, and publishing does not make its node carry
// the topic.
func (e *agentEntry) publish(ctx context.Context, topic string, data []byte) (x0x.MsgID, error) {
	t, err := e.a.Join(ctx, topic, x0x.PublishOnly())
	if err != nil {
		return x0x.MsgID{}, err
	}
	defer t.Leave()
	return t.Publish(ctx, data)
}

//export x0x_subscribe
func x0x_subscribe(h C.uint64_t, topic *C.char) C.int {
	return withAgent("x0x_subscribe", h, func(e *agentEntry) error {
		t, err := goTopic(topic)
		if err != nil {
			return err
		}
		return e.subscribe(t)
	})
}

//export x0x_unsubscribe
func x0x_unsubscribe(h C.uint64_t, topic *C.char) C.int {
	return withAgent("x0x_unsubscribe", h, func(e *agentEntry) error {
		t, err := goTopic(topic)
		if err != nil {
			return err
		}
		return e.unsubscribe(t)
	})
}

//export x0x_publish
func x0x_publish(h C.uint64_t, topic *C.char, payload *C.uint8_t, n C.size_t, timeoutMS C.uint32_t, outID *C.uint8_t) C.int {
	return withAgent("x0x_publish", h, func(e *agentEntry) error {
		t, err := goTopic(topic)
		if err != nil {
			return err
		}
		data, err := goBytes(payload, n, x0x.MaxPayload, "payload")
		if err != nil {
			return err
		}
		ctx, cancel := e.callCtx(timeoutMS)
		defer cancel()
		id, err := e.publish(ctx, t, data)
		if err != nil {
			if errors.Is(err, x0x.ErrPayloadTooLarge) {
				return errTooLarge(err.Error())
			}
			return err
		}
		if outID != nil {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(outID)), idSize), id[:])
		}
		return nil
	})
}

//export x0x_debug_inject_events
func x0x_debug_inject_events(h C.uint64_t, n C.uint32_t, payloadLen C.size_t) C.int {
	return withAgent("x0x_debug_inject_events", h, func(e *agentEntry) error {
		if payloadLen > maxInjectPayload {
			return errInvalidArg(fmt.Sprintf("payload_len %d is over %d", uint64(payloadLen), maxInjectPayload))
		}
		payload := make([]byte, int(payloadLen))
		for i := range payload {
			payload[i] = 0xAB
		}
		self := e.a.AgentID()
		ev := event{kind: C.X0X_EVENT_DIRECT_MESSAGE, peer: e.a.MachineID(), from: self, to: self,
			payload: payload, waitForRoom: true}
		for i := C.uint32_t(0); i < n; i++ {
			if !e.post(ev) {
				return x0x.ErrClosed
			}
		}
		return nil
	})
}
