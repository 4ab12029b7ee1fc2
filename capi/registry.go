package main

import (
	"fmt"
	"sync"
)

// handleKind is the type tag in the top byte of every handle.
type handleKind uint8

const (
	kindConfig       handleKind = 1
	kindAgent        handleKind = 2
	kindIdentity     handleKind = 3
	kindTaskList     handleKind = 4
	kindTopic        handleKind = 5
	kindSubscription handleKind = 6
	kindGroup        handleKind = 7

	kindShift = 56
	seqMask   = uint64(1)<<kindShift - 1
)

func (k handleKind) String() string {
	switch k {
	case kindConfig:
		return "config"
	case kindAgent:
		return "agent"
	case kindTaskList:
		return "task list"
	case kindIdentity:
		return "identity"
	case kindTopic:
		return "topic"
	case kindSubscription:
		return "subscription"
	case kindGroup:
		return "group"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// handleError is a bad handle given by the caller; it maps to
// X0X_ERR_INVALID_HANDLE.
type handleError struct {
	handle uint64
	want   handleKind
	why    string
}

func (e *handleError) Error() string {
	return fmt.Sprintf("invalid %s handle %#x: %s", e.want, e.handle, e.why)
}

// registry maps handles to the objects they name. Handles are
// kind<<56 | seq with seq counting up from 1 and never reused, so a stale
// handle can never name a newer object. It is safe for concurrent use.
type registry struct {
	mu   sync.Mutex
	next uint64 // next sequence number to issue; starts at 1
	objs map[uint64]any
}

func newRegistry() *registry { return &registry{next: 1, objs: make(map[uint64]any)} }

// add registers obj under a new handle of kind k.
func (r *registry) add(k handleKind, obj any) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next > seqMask {
		return 0, fmt.Errorf("handle space exhausted")
	}
	h := uint64(k)<<kindShift | r.next
	r.next++
	r.objs[h] = obj
	return h, nil
}

// check explains why h is not a live handle of kind k (nil if it is).
// r.mu must be held.
func (r *registry) check(h uint64, k handleKind) error {
	if h == 0 {
		return &handleError{h, k, "null handle"}
	}
	if got := handleKind(h >> kindShift); got != k {
		switch got {
		case kindConfig, kindAgent, kindIdentity, kindTaskList, kindTopic, kindSubscription, kindGroup:
			return &handleError{h, k, fmt.Sprintf("it is a %s handle", got)}
		}
		return &handleError{h, k, "not a handle issued by this library"}
	}
	if h&seqMask >= r.next {
		return &handleError{h, k, "not a handle issued by this library"}
	}
	if _, ok := r.objs[h]; !ok {
		return &handleError{h, k, "already destroyed"}
	}
	return nil
}

// get returns the object named by h, which must be a live handle of kind k.
func (r *registry) get(h uint64, k handleKind) (any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.check(h, k); err != nil {
		return nil, err
	}
	return r.objs[h], nil
}

// remove unregisters h (a live handle of kind k) and returns its object.
// Exactly one of several concurrent removals of h succeeds.
func (r *registry) remove(h uint64, k handleKind) (any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.check(h, k); err != nil {
		return nil, err
	}
	obj := r.objs[h]
	delete(r.objs, h)
	return obj, nil
}

// live returns how many handles are registered.
func (r *registry) live() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.objs)
}
