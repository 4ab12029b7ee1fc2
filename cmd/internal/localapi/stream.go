package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// StatusSlowConsumer is the WebSocket close code of a client dropped for
// reading too slowly (1008, policy violation); the close reason starts
// with "slow consumer".
const StatusSlowConsumer = websocket.StatusPolicyViolation

// StreamNotice is a stream's control message (SSE events "missed", "end"
// and "error"; on a WebSocket a JSON text message with "notice" set, told
// apart from items by that field).
type StreamNotice struct {
	// Notice is "missed" (items after the cursor asked for were lost
	// before the stream opened; it goes on with the oldest kept), "reset"
	// (the cursor asked for is from an earlier feed: the daemon
	// restarted, or the topic was unfollowed since; it goes on with the
	// oldest item kept), "end"
	// (the stream ends normally: the feed was closed, e.g. the topic
	// unfollowed, or the daemon is stopping) or "error" (the client is
	// dropped as a slow consumer: Code "slow_consumer").
	Notice string `json:"notice"`
	Code   string `json:"code,omitempty"`
	// Missed counts the items lost; ResumeAfter is the cursor to resume
	// after (for "error": the last item sent).
	Missed      uint64 `json:"missed,omitempty"`
	ResumeAfter uint64 `json:"resume_after"`
	Message     string `json:"message,omitempty"`
}

// serveStream streams f's items after ?after= (default: from now on) as
// Server-Sent Events, or over a WebSocket when the request asks to
// upgrade, until the client goes, the feed closes or the server closes.
// Each item is one JSON text message (WebSocket) or one event named kind
// whose id is the item's cursor (SSE, so a client's Last-Event-ID header
// resumes after it). Items lost before the stream opened (the cursor was
// behind the feed) are reported once with a "missed" notice and the stream
// goes on. A client that falls behind while streaming (items it has not
// been sent were evicted) or takes longer than the write timeout for one
// item is dropped as a slow consumer: an "error" notice with
// code "slow_consumer" (SSE) or close code 1008 with reason "slow
// consumer: ..." (WebSocket). A normal end is an "end" notice (SSE) or
// close code 1001 (WebSocket). done, if not nil, runs when the stream
// ends.
func serveStream[T any](s *Server, w http.ResponseWriter, r *http.Request, f *feed[T], kind string, done func()) error {
	if done != nil {
		defer done()
	}
	// Last-Event-ID (an SSE client reconnecting, with its original URL)
	// beats ?after=, which beats "from now on".
	after := f.end()
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return badRequest("Last-Event-ID: want a cursor (a non-negative integer)")
		}
		after = n
	} else if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return badRequest("after: want a cursor (a non-negative integer)")
		}
		after = n
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() { // the server closing ends every stream
		select {
		case <-s.ctx.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	var out streamOut
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		// The default origin check refuses cross-origin browser pages.
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return nil // Accept wrote the response
		}
		defer c.CloseNow()
		ctx = c.CloseRead(ctx) // reads only to notice the client's close
		out = &wsOut{c: c, timeout: s.lim.WriteTimeout}
	} else {
		so := &sseOut{w: w, rc: http.NewResponseController(w), kind: kind, timeout: s.lim.WriteTimeout}
		if err := so.open(); err != nil {
			return nil
		}
		out = so
	}
	runStream(ctx, out, f, after)
	return nil
}

// streamOut is one client's end of a stream: SSE or WebSocket.
type streamOut interface {
	item(ctx context.Context, cursor uint64, b []byte) error
	notice(ctx context.Context, n StreamNotice) error
	// idle is called when nothing arrived for a while (SSE keep-alives).
	idle() error
	// flush sends what was written; an error means the client is gone or
	// too slow.
	flush() error
	// drop ends the stream for a slow consumer; end ends it normally.
	drop(n StreamNotice)
	end(n StreamNotice)
}

// runStream copies f's items after "after" to out.
func runStream[T any](ctx context.Context, out streamOut, f *feed[T], after uint64) {
	first := true
	for {
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		p := f.read(rctx, after, 256, true)
		idle := rctx.Err() != nil && ctx.Err() == nil
		cancel()
		if p.evicted > 0 && !first {
			out.drop(StreamNotice{Notice: "error", Code: "slow_consumer", Missed: p.missed, ResumeAfter: after,
				Message: fmt.Sprintf("slow consumer: %d items after cursor %d were evicted before they could be sent", p.evicted, after)})
			return
		}
		resume := p.next // the cursor just before this page's first item
		if len(p.items) > 0 {
			resume = p.cursors[0] - 1
		}
		if p.reset {
			if out.notice(ctx, StreamNotice{Notice: "reset", ResumeAfter: resume,
				Message: fmt.Sprintf("cursor %d is from an earlier feed (the daemon restarted, or the topic was unfollowed since): starting with the oldest item kept", after)}) != nil {
				return
			}
		}
		if p.missed > 0 {
			// Lost before the stream opened, or dropped by the daemon's own
			// subscription: reported, and the stream goes on.
			if out.notice(ctx, StreamNotice{Notice: "missed", Missed: p.missed, ResumeAfter: resume,
				Message: fmt.Sprintf("%d items after cursor %d were lost", p.missed, after)}) != nil {
				return
			}
		}
		first = false
		for i, it := range p.items {
			b, err := marshalItem(it)
			if err != nil {
				return
			}
			if err := out.item(ctx, p.cursors[i], b); err != nil {
				if ctx.Err() == nil {
					out.drop(StreamNotice{Notice: "error", Code: "slow_consumer", ResumeAfter: after,
						Message: "slow consumer: an item was not taken in time"})
				}
				return
			}
			after = p.cursors[i]
		}
		after = max(after, p.next)
		if len(p.items) == 0 && idle {
			if out.idle() != nil {
				return
			}
		}
		if err := out.flush(); err != nil {
			return // the client went, or was too slow to take the stream
		}
		switch {
		case p.closed && len(p.items) == 0:
			out.end(StreamNotice{Notice: "end", ResumeAfter: after, Message: "the feed ended"})
			return
		case ctx.Err() != nil:
			out.end(StreamNotice{Notice: "end", ResumeAfter: after, Message: "the stream was closed"})
			return
		}
	}
}

// marshalItem encodes an item as JSON without HTML escaping (which would
// turn each '<', '>' and '&' of a payload into six bytes) and without the
// encoder's trailing newline.
func marshalItem(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// wsOut streams over a WebSocket: items and notices as JSON text messages.
type wsOut struct {
	c       *websocket.Conn
	timeout time.Duration
}

func (o *wsOut) item(ctx context.Context, _ uint64, b []byte) error {
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	return o.c.Write(wctx, websocket.MessageText, b)
}

func (o *wsOut) notice(ctx context.Context, n StreamNotice) error {
	b, _ := json.Marshal(n)
	return o.item(ctx, 0, b)
}

func (o *wsOut) idle() error  { return nil }
func (o *wsOut) flush() error { return nil }

func (o *wsOut) drop(n StreamNotice) { o.c.Close(StatusSlowConsumer, closeReason(n.Message)) }

func (o *wsOut) end(n StreamNotice) { o.c.Close(websocket.StatusGoingAway, closeReason(n.Message)) }

// closeReason fits a WebSocket close reason (at most 123 bytes).
func closeReason(s string) string {
	if len(s) > 123 {
		return s[:123]
	}
	return s
}

// sseOut streams Server-Sent Events.
type sseOut struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	kind    string
	timeout time.Duration
}

func (o *sseOut) open() error {
	h := o.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	o.w.WriteHeader(http.StatusOK)
	// A comment first, so that the client sees the stream open at once.
	if _, err := fmt.Fprint(o.w, ": x0xd stream\n\n"); err != nil {
		return err
	}
	return o.rc.Flush()
}

func (o *sseOut) item(_ context.Context, cursor uint64, b []byte) error {
	_ = o.rc.SetWriteDeadline(time.Now().Add(o.timeout))
	_, err := fmt.Fprintf(o.w, "event: %s\nid: %d\ndata: %s\n\n", o.kind, cursor, b)
	return err
}

func (o *sseOut) notice(_ context.Context, n StreamNotice) error {
	_ = o.rc.SetWriteDeadline(time.Now().Add(o.timeout))
	b, _ := json.Marshal(n)
	_, err := fmt.Fprintf(o.w, "event: %s\ndata: %s\n\n", n.Notice, b)
	return err
}

func (o *sseOut) idle() error {
	_ = o.rc.SetWriteDeadline(time.Now().Add(o.timeout))
	_, err := fmt.Fprint(o.w, ": keepalive\n\n")
	return err
}

func (o *sseOut) flush() error {
	_ = o.rc.SetWriteDeadline(time.Now().Add(o.timeout))
	return o.rc.Flush()
}

func (o *sseOut) drop(n StreamNotice) {
	if o.notice(context.Background(), n) == nil {
		_ = o.rc.Flush()
	}
}

func (o *sseOut) end(n StreamNotice) { o.drop(n) }
