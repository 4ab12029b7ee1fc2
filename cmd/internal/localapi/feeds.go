package localapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// ---- the agent's events -------------------------------------------------

// pumpEvents collects the agent's direct messages into the inbox and the
// external addresses /health reports, until the server closes.
func (s *Server) pumpEvents(events *x0x.Stream[x0x.Event]) {
	defer events.Close()
	for {
		ev, err := events.Next(s.ctx)
		var lag *x0x.LaggedError
		if errors.As(err, &lag) {
			// Events dropped while the pump fell behind: count them as
			// missed direct messages (an over-count: other kinds too).
			s.inbox.noteLost(lag.Missed)
			continue
		}
		if err != nil {
			return
		}
		switch ev.Kind {
		case x0x.EventDirectMessage:
			text, b64 := encodePayload(ev.Payload)
			s.inbox.add(DirectMessage{From: ev.From.String(), To: ev.To.String(), Peer: ev.Peer.String(),
				Received: time.Now().UTC(), Text: text, PayloadB64: b64}, len(ev.Payload)+256,
				func(m *DirectMessage, c uint64) { m.Cursor = c })
		case x0x.EventExternalAddressDiscovered:
			s.mu.Lock()
			if !slices.Contains(s.externals, ev.Addr) {
				if len(s.externals) >= 16 {
					s.externals = s.externals[1:]
				}
				s.externals = append(s.externals, ev.Addr)
			}
			s.mu.Unlock()
		}
	}
}

// ---- topics ------------------------------------------------------------

// followed is a topic the daemon subscribed to for its clients: followed
// explicitly (POST /v1/topics, until DELETE) or only for the streams open
// on it (unfollowed when the last one ends). s.mu guards explicit and
// streams.
type followed struct {
	topic    *x0x.Topic
	sub      *x0x.Subscription
	messages *feed[TopicMessage]
	done     chan struct{}
	explicit bool
	streams  int
}

// hold records an explicit follow or one more stream. s.mu must be held.
func (f *followed) hold(explicit bool) {
	if explicit {
		f.explicit = true
	} else {
		f.streams++
	}
}

// unstream releases a stream's reference on topic name: a topic followed
// only for streams is unfollowed when its last stream ends.
func (s *Server) unstream(name string, f *followed) {
	s.mu.Lock()
	f.streams--
	last := f.streams == 0 && !f.explicit && s.topics[name] == f
	if last {
		delete(s.topics, name)
	}
	s.mu.Unlock()
	if last {
		f.stop()
	}
}

func (f *followed) stop() {
	f.sub.Close()
	f.topic.Leave()
	<-f.done
	f.messages.close()
}

// follow subscribes to topic unless it is followed already; explicit
// makes it stay followed until unfollowed, else the caller holds a stream
// reference (release it with unstream). A topic being joined counts
// against MaxFollowedTopics from the start.
func (s *Server) follow(ctx context.Context, name string, explicit bool) (*followed, error) {
	s.mu.Lock()
	if f := s.topics[name]; f != nil {
		f.hold(explicit)
		s.mu.Unlock()
		return f, nil
	}
	if s.closed {
		s.mu.Unlock()
		return nil, x0x.ErrClosed
	}
	if len(s.topics)+s.joining >= s.lim.MaxFollowedTopics {
		s.mu.Unlock()
		return nil, &apiError{Status: http.StatusConflict, Code: "too_many_topics",
			Message: fmt.Sprintf("%d topics are followed already (the limit); unfollow one first", s.lim.MaxFollowedTopics)}
	}
	s.joining++
	s.mu.Unlock()
	f, err := s.join(ctx, name)
	s.mu.Lock()
	s.joining--
	other := s.topics[name]
	switch {
	case err != nil:
		s.mu.Unlock()
		return nil, err
	case other != nil || s.closed:
		// Followed meanwhile by another request (or the server closed).
		if other != nil {
			other.hold(explicit)
		}
		s.mu.Unlock()
		f.stop()
		if other == nil {
			return nil, x0x.ErrClosed
		}
		return other, nil
	}
	f.hold(explicit)
	s.topics[name] = f
	s.mu.Unlock()
	return f, nil
}

// join subscribes to a topic and starts copying its messages to a new
// feed.
func (s *Server) join(ctx context.Context, name string) (*followed, error) {
	t, err := s.agent.Join(ctx, name)
	if err != nil {
		return nil, err
	}
	sub, err := t.Subscribe(x0x.WithBuffer(s.lim.FeedItems, s.lim.FeedBytes))
	if err != nil {
		t.Leave()
		return nil, err
	}
	f := &followed{topic: t, sub: sub, messages: newFeed[TopicMessage](s.lim.FeedItems, s.lim.FeedBytes, cursorBase(s.cfg.Now)),
		done: make(chan struct{})}
	s.wg.Go(func() {
		defer close(f.done)
		// The subscription ends when the topic is unfollowed (stop).
		pump(context.Background(), sub, f.messages, func(m x0x.Message) (TopicMessage, int) {
			text, b64 := encodePayload(m.Payload)
			return TopicMessage{Topic: m.Topic, ID: x0x.ID(m.ID).String(), From: m.Origin.String(), Seq: m.Seq,
				Time: m.Time.UTC(), Hops: m.Hops, Text: text, PayloadB64: b64}, len(m.Payload) + 256
		}, func(tm *TopicMessage, c uint64) { tm.Cursor = c })
	})
	return f, nil
}

func (s *Server) followedTopic(r *http.Request) (*followed, error) {
	name := r.URL.Query().Get("topic")
	if name == "" {
		return nil, badRequest("%v", errNoTopic)
	}
	s.mu.Lock()
	f := s.topics[name]
	s.mu.Unlock()
	if f == nil {
		return nil, notFound("topic %q is not followed (POST /v1/topics first)", name)
	}
	return f, nil
}

func (s *Server) getTopics(w http.ResponseWriter, r *http.Request) error {
	s.mu.Lock()
	out := make([]TopicInfo, 0, len(s.topics))
	for name, f := range s.topics {
		out = append(out, TopicInfo{Topic: name, Cursor: f.messages.end(), Neighbours: ids(f.topic.Neighbours())})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b TopicInfo) int { return strings.Compare(a.Topic, b.Topic) })
	writeJSON(w, http.StatusOK, TopicList{Topics: out})
	return nil
}

func (s *Server) postTopic(w http.ResponseWriter, r *http.Request) error {
	var req FollowRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	f, err := s.follow(r.Context(), req.Topic, true)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, TopicInfo{Topic: req.Topic, Cursor: f.messages.end(), Neighbours: ids(f.topic.Neighbours())})
	return nil
}

func (s *Server) deleteTopic(w http.ResponseWriter, r *http.Request) error {
	name := r.URL.Query().Get("topic")
	if name == "" {
		return badRequest("%v", errNoTopic)
	}
	s.mu.Lock()
	f := s.topics[name]
	delete(s.topics, name)
	s.mu.Unlock()
	if f == nil {
		return notFound("topic %q is not followed", name)
	}
	f.stop()
	writeJSON(w, http.StatusOK, Empty{OK: true})
	return nil
}

func (s *Server) postPublish(w http.ResponseWriter, r *http.Request) error {
	var req PublishRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	payload, err := req.bytes()
	if err != nil {
		return err
	}
	t, err := s.agent.Join(r.Context(), req.Topic, x0x.PublishOnly())
	if err != nil {
		return err
	}
	defer t.Leave()
	id, err := t.Publish(r.Context(), payload)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, PublishResponse{ID: x0x.ID(id).String()})
	return nil
}

func (s *Server) getTopicMessages(w http.ResponseWriter, r *http.Request) error {
	f, err := s.followedTopic(r)
	if err != nil {
		return err
	}
	return servePage(s, w, r, f.messages)
}

// getTopicStream streams a topic's messages, following it for as long as
// the stream is open if it is not followed yet.
func (s *Server) getTopicStream(w http.ResponseWriter, r *http.Request) error {
	name := r.URL.Query().Get("topic")
	if name == "" {
		return badRequest("%v", errNoTopic)
	}
	f, err := s.follow(r.Context(), name, false)
	if err != nil {
		return err
	}
	return serveStream(s, w, r, f.messages, "message", func() { s.unstream(name, f) })
}

// servePage writes the page of f after ?after= (waiting up to ?wait_ms=
// when there is nothing new).
func servePage[T any](s *Server, w http.ResponseWriter, r *http.Request, f *feed[T]) error {
	after, limit, wait, err := s.cursorParams(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	writePage(w, f.read(ctx, after, limit, wait > 0))
	return nil
}

func writePage[T any](w http.ResponseWriter, p page[T]) {
	items := p.items
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, Page[T]{Items: items, NextCursor: p.next, Missed: p.missed, Reset: p.reset})
}
