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

// subscribe joins topic and subscribes to it unless the agent already
// is, and starts the forwarder that feeds its messages to the dispatcher.
func (e *agentEntry) subscribe(topic string) error {
	e.subMu.Lock()
	defer e.subMu.Unlock()
	if e.subs == nil {
		return x0x.ErrClosed
	}
	if _, ok := e.subs[topic]; ok {
		return nil
	}
	t, err := e.a.Join(context.Background(), topic)
	if err != nil {
		return err
	}
	sub, err := t.Subscribe()
	if err != nil {
		t.Leave()
		return err
	}
	e.subs[topic] = &topicSub{topic: t, sub: sub}
	e.fwd.Add(1)
	go e.forward(sub)
	return nil
}

// forward moves a subscription's messages to the dispatcher until the
// subscription ends or the agent is destroyed. While the dispatcher is
// busy, messages wait in the subscription's buffer; those it drops when
// full are counted (lag markers).
func (e *agentEntry) forward(sub *x0x.Subscription) {
	defer e.fwd.Done()
	for {
		m, err := sub.Next(context.Background())
		var lag *x0x.LaggedError
		if errors.As(err, &lag) {
			e.subsDropped.Add(lag.Missed)
			continue
		}
		if err != nil {
			return
		}
		if !e.post(topicEvent(m)) {
			return
		}
	}
}

// unsubscribe ends the agent's subscription to topic.
func (e *agentEntry) unsubscribe(topic string) error {
	e.subMu.Lock()
	if e.subs == nil {
		e.subMu.Unlock()
		return x0x.ErrClosed
	}
	ts, ok := e.subs[topic]
	if ok {
		delete(e.subs, topic)
	}
	e.subMu.Unlock()
	if !ok {
		return &apiError{statusNotFound, fmt.Sprintf("not subscribed to topic %q", topic)}
	}
	ts.sub.Close()
	ts.topic.Leave()
	return nil
}

// subscriptionDrops returns the messages subscriptions dropped because the
// dispatcher fell behind.
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
