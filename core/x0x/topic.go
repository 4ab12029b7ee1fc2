package x0x

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/saorsa-labs/x0x-go/core/pubsub"
)

// MaxPayload is the largest payload Topic.Publish accepts (1 MiB).
const MaxPayload = 1 << 20

// MsgID identifies a published message: BLAKE3 over its signed header.
type MsgID [32]byte

// String returns the ID in hex.
func (id MsgID) String() string { return hex.EncodeToString(id[:]) }

// Message is one topic message. Payload is the reader's own copy.
type Message struct {
	// Topic is the topic's name.
	Topic string
	// ID identifies the message.
	ID MsgID
	// Origin is the publishing agent; its ML-DSA-65 signature was verified.
	Origin AgentID
	// Seq is the origin's sequence number.
	Seq uint64
	// Time is the origin's timestamp.
	Time time.Time
	// Payload is the message.
	Payload []byte
	// Hops is the number of overlay hops the message took from its origin
	// (0 for this agent's own): tree deliveries have short paths, messages
	// repaired by IWANT or anti-entropy keep the length of theirs.
	Hops int
}

// messageOf describes a delivery (sharing its payload).
func messageOf(name string, d pubsub.Delivery) Message {
	return Message{Topic: name, ID: MsgID(d.ID), Origin: d.Origin, Seq: d.Seq, Time: d.Time, Payload: d.Payload, Hops: d.Hops}
}

func messageSize(m Message) int { return 128 + len(m.Payload) }

func cloneMessage(m Message) Message {
	m.Payload = slices.Clone(m.Payload)
	return m
}

// Subscription is a stream of a topic's messages (Topic.Subscribe).
type Subscription = Stream[Message]

// TopicEventKind says what a TopicEvent reports.
type TopicEventKind uint8

// Topic event kinds.
const (
	// TopicNeighbourUp: Peer became a neighbour of this node on the topic.
	TopicNeighbourUp TopicEventKind = iota + 1
	// TopicNeighbourDown: Peer is no longer a neighbour on the topic.
	TopicNeighbourDown
)

// String returns "neighbour-up" or "neighbour-down".
func (k TopicEventKind) String() string {
	switch k {
	case TopicNeighbourUp:
		return "neighbour-up"
	case TopicNeighbourDown:
		return "neighbour-down"
	}
	return fmt.Sprintf("topic-event-kind(%d)", uint8(k))
}

// TopicEvent is a change of this node's neighbours on a topic.
type TopicEvent struct {
	// Kind says what changed.
	Kind TopicEventKind
	// Topic is the topic's name.
	Topic string
	// Peer is the neighbour concerned.
	Peer PeerID
}

// TopicOption configures Agent.Join.
type TopicOption func(*topicOptions)

type topicOptions struct {
	validator   func(Message) error
	publishOnly bool
}

// WithValidator makes this handle check the topic's messages with v: a
// message v refuses (non-nil error) is neither delivered nor forwarded by
// this node, and a local Publish of it fails with an error matching
// ErrRejected (and v's error). While several handles of one topic have
// validators, a message must be accepted by all of them. v runs after the
// origin's signature, timestamp and replay window were checked, once per
// message new to this node (also while the handle has no Subscription),
// before the message is stored, delivered or forwarded; it runs on the
// goroutine that received the message, possibly on several at once, so it
// must be safe for concurrent use and quick (it delays the sender's
// stream). It must not modify or keep m.Payload (copy it to keep it). A
// panic counts as a refusal. It applies from the moment Join returns until
// the handle is left.
func WithValidator(v func(m Message) error) TopicOption {
	return func(o *topicOptions) { o.validator = v }
}

// PublishOnly makes a handle that publishes without joining: this node
// does not subscribe to the topic for it, so it carries no traffic for the
// topic (unless another handle joined it); a publication goes to a
// subscribed neighbour or walks to a subscriber. Subscribe on such a
// handle fails with ErrInvalidArgument.
func PublishOnly() TopicOption {
	return func(o *topicOptions) { o.publishOnly = true }
}

// Topic is a handle on a topic this agent joined (Agent.Join). Handles are
// independent: a topic can be joined several times, each handle has its
// own subscriptions, event streams and validator, and the node carries
// the topic while any handle (that is not PublishOnly) is joined. Its
// methods are safe for concurrent use.
type Topic struct {
	agent     *Agent
	name      string
	id        pubsub.TopicID
	opts      topicOptions
	messages  fanout[Message]
	neighbors fanout[TopicEvent]

	mu    sync.Mutex
	inner *pubsub.Subscription // the overlay subscription; nil if PublishOnly or left
	left  bool
}

// MaxTopicName is the longest topic name, in bytes.
const MaxTopicName = 256

// checkTopicName requires a non-empty UTF-8 name of at most MaxTopicName
// bytes.
func checkTopicName(name string) error {
	switch {
	case name == "":
		return invalidArg("empty topic name")
	case len(name) > MaxTopicName:
		return fmt.Errorf("%w: topic name of %d bytes, limit %d", ErrPayloadTooLarge, len(name), MaxTopicName)
	case !utf8.ValidString(name):
		return invalidArg("topic name %q is not UTF-8", name)
	}
	return nil
}

// Join joins topic name: this node subscribes to it in the overlay (and so
// carries its traffic: it forwards the topic's messages to its topic
// neighbours) until the handle is left with Leave or the agent closed.
// It does not wait for topic neighbours (see Neighbours and Events); ctx
// is checked before joining. Errors: ErrInvalidArgument (an empty name,
// or one that is not UTF-8), ErrPayloadTooLarge (a name over MaxTopicName
// bytes), ErrClosed, ctx's error.
func (a *Agent) Join(ctx context.Context, name string, opts ...TopicOption) (*Topic, error) {
	ctx = orBackground(ctx)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkTopicName(name); err != nil {
		return nil, err
	}
	t := &Topic{agent: a, name: name, id: pubsub.TopicIDOf(name)}
	for _, f := range opts {
		if f != nil {
			f(&t.opts)
		}
	}
	t.messages = fanout[Message]{size: messageSize, clone: cloneMessage, dropped: &a.drops.messages}
	t.neighbors = fanout[TopicEvent]{dropped: &a.drops.topicEvents}
	if err := a.topics.add(a, t); err != nil {
		return nil, err
	}
	if t.opts.publishOnly {
		return t, nil
	}
	// Pub/sub reports topic events from inside Subscribe: no lock is held.
	inner, err := a.overlay.PubSub.SubscribeFunc(name, t.deliver)
	if err != nil {
		t.Leave()
		return nil, translate(err)
	}
	t.mu.Lock()
	if t.left {
		t.mu.Unlock()
		inner.Unsubscribe()
		return nil, ErrClosed
	}
	t.inner = inner
	t.mu.Unlock()
	return t, nil
}

// Name returns the topic's name.
func (t *Topic) Name() string { return t.name }

// Publish signs payload as this agent and sends it to the topic. It does
// not wait for delivery: nil means the message was accepted and sent to
// the topic's neighbours (this agent's own subscriptions receive it too).
// The caller may reuse payload afterwards. It returns the message's ID.
// Errors: ErrPayloadTooLarge (over MaxPayload), ErrRejected (a validator of
// this topic refused it), ErrClosed (the handle was left or the agent
// closed), ctx's error if ctx is already done.
func (t *Topic) Publish(ctx context.Context, payload []byte) (MsgID, error) {
	if err := orBackground(ctx).Err(); err != nil {
		return MsgID{}, err
	}
	t.mu.Lock()
	left := t.left
	t.mu.Unlock()
	if left {
		return MsgID{}, ErrClosed
	}
	id, err := t.agent.overlay.Publish(t.name, payload) // pub/sub copies payload
	return MsgID(id), translate(err)
}

// Subscribe opens a stream of the topic's messages from now on, each
// verified against its origin's ML-DSA-65 signature and accepted by the
// topic's validators. A handle may have several subscriptions; each
// receives every message. Close it when done; Leave closes it. Errors:
// ErrClosed, ErrInvalidArgument (a PublishOnly handle), *ConfigError (a bad
// StreamOption).
func (t *Topic) Subscribe(opts ...StreamOption) (*Subscription, error) {
	if t.opts.publishOnly {
		return nil, invalidArg("topic %q was joined PublishOnly", t.name)
	}
	return t.messages.open(opts)
}

// Events opens a stream of changes of this node's neighbours on the topic
// (TopicNeighbourUp, TopicNeighbourDown) from now on. The neighbours are
// the node's, shared by every handle of the topic. Errors: ErrClosed,
// *ConfigError.
func (t *Topic) Events(opts ...StreamOption) (*Stream[TopicEvent], error) {
	return t.neighbors.open(opts)
}

// Neighbours returns this node's current neighbours on the topic (its
// tree's eager and lazy peers), sorted; nil when the node does not carry
// the topic. The caller owns the slice.
func (t *Topic) Neighbours() []PeerID {
	eager, lazy := t.agent.overlay.PubSub.TopicPeers(t.id)
	out := append(eager, lazy...)
	slices.SortFunc(out, func(a, b PeerID) int { return slices.Compare(a[:], b[:]) })
	return slices.Compact(out)
}

// Leave releases the handle: its subscriptions and event streams end
// (their Next returns what they buffered, then ErrClosed), its validator
// no longer applies, and the node stops carrying the topic if no other
// handle joined it. Publish then fails with ErrClosed. It is safe to call
// more than once.
func (t *Topic) Leave() {
	t.mu.Lock()
	if t.left {
		t.mu.Unlock()
		return
	}
	t.left = true
	inner := t.inner
	t.inner = nil
	t.mu.Unlock()
	if inner != nil {
		inner.Unsubscribe()
	}
	t.agent.topics.remove(t)
	t.messages.close()
	t.neighbors.close()
}

// deliver hands a delivery to the handle's subscriptions; pub/sub calls it
// without its lock held, and it never blocks.
func (t *Topic) deliver(d pubsub.Delivery) {
	if !t.messages.active() {
		return
	}
	t.messages.publish(cloneMessage(messageOf(t.name, d)))
}

// topicRegistry is an agent's topic handles, by topic, and the combined
// validator it installs for each topic in pub/sub.
type topicRegistry struct {
	mu     sync.Mutex // serialises changes, so validators are installed in order
	byID   map[pubsub.TopicID][]*Topic
	closed bool
}

func (r *topicRegistry) init() { r.byID = make(map[pubsub.TopicID][]*Topic) }

// add registers t. Errors: ErrClosed, or a pub/sub error installing the
// validator.
func (r *topicRegistry) add(a *Agent, t *Topic) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	r.byID[t.id] = append(r.byID[t.id], t)
	if t.opts.validator == nil {
		return nil
	}
	if err := r.installLocked(a, t.id, t.name); err != nil {
		r.byID[t.id] = slices.DeleteFunc(r.byID[t.id], func(x *Topic) bool { return x == t })
		if len(r.byID[t.id]) == 0 {
			delete(r.byID, t.id)
		}
		return translate(err)
	}
	return nil
}

// remove unregisters t.
func (r *topicRegistry) remove(t *Topic) {
	r.mu.Lock()
	defer r.mu.Unlock()
	hs := slices.DeleteFunc(r.byID[t.id], func(x *Topic) bool { return x == t })
	if len(hs) == 0 {
		delete(r.byID, t.id)
	} else {
		r.byID[t.id] = hs
	}
	if t.opts.validator != nil && !r.closed {
		_ = r.installLocked(t.agent, t.id, t.name) // fails only once pub/sub is closed
	}
}

// installLocked installs in pub/sub the validator of topic id: every
// handle's validator must accept (in join order); none removes it. r.mu
// is held.
func (r *topicRegistry) installLocked(a *Agent, id pubsub.TopicID, name string) error {
	var vs []func(Message) error
	for _, h := range r.byID[id] {
		if h.opts.validator != nil {
			vs = append(vs, h.opts.validator)
		}
	}
	if len(vs) == 0 {
		return a.overlay.PubSub.SetValidator(name, nil)
	}
	return a.overlay.PubSub.SetValidator(name, func(d pubsub.Delivery) error {
		m := messageOf(name, d)
		for _, v := range vs {
			if err := v(m); err != nil {
				return err
			}
		}
		return nil
	})
}

// neighbourEvent reports a topic neighbour change to the topic's handles.
func (r *topicRegistry) neighbourEvent(ev pubsub.Event) {
	var k TopicEventKind
	switch ev.Kind {
	case pubsub.TopicNeighborUp:
		k = TopicNeighbourUp
	case pubsub.TopicNeighborDown:
		k = TopicNeighbourDown
	default:
		return
	}
	r.mu.Lock()
	hs := slices.Clone(r.byID[ev.Topic])
	r.mu.Unlock()
	for _, h := range hs {
		h.neighbors.publish(TopicEvent{Kind: k, Topic: h.name, Peer: ev.Peer})
	}
}

// closeTopics leaves every handle (Agent.Close).
func (a *Agent) closeTopics() {
	r := &a.topics
	r.mu.Lock()
	r.closed = true
	var all []*Topic
	for _, hs := range r.byID {
		all = append(all, hs...)
	}
	r.mu.Unlock()
	for _, t := range all {
		t.Leave()
	}
}
