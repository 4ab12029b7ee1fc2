package apiclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/cmd/internal/localapi"
	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// NewChecked refuses plain http to a host that is not loopback (the token
// would cross the network in clear text) and accepts https anywhere.
func TestNewChecked(t *testing.T) {
	ok := []string{
		"127.0.0.1:12600",
		"127.1.2.3:1",
		"localhost:12600",
		"LOCALHOST:12600",
		"[::1]:12600",
		"[::ffff:127.0.0.1]:12600",
		"http://127.0.0.1:12600",
		"http://127.0.0.1:12600/",
		"HTTP://localhost:1",
		"http://[::1]:12600",
		"http://127.0.0.1",
		"https://10.0.0.5:12600",
		"https://x0x.example.org",
		"https://[2001:db8::1]:443",
	}
	for _, base := range ok {
		if _, err := NewChecked(base, "tok", nil); err != nil {
			t.Errorf("NewChecked(%q): %v", base, err)
		}
	}
	refused := []string{
		"10.0.0.5:12600",
		"http://10.0.0.5:12600",
		"http://192.0.2.1",
		"0.0.0.0:12600",
		"http://[::]:12600",
		"[2001:db8::1]:12600",
		"example.org:12600",
		"http://example.org:12600",
		"localhost.example.org:1",
		"http://127.0.0.1.example.org:1",
		"http://127.0.0.1:1@example.org:1", // userinfo: the host is example.org
		":12600",
		"http://:12600",
		"https://",
		"ftp://127.0.0.1:21",
		"ws://127.0.0.1:12600",
		"http://[fe80::1%25eth0]:1",
	}
	for _, base := range refused {
		c, err := NewChecked(base, "tok", nil)
		if err == nil {
			t.Errorf("NewChecked(%q) = %v, want an error", base, c.base)
		}
	}
	_, err := NewChecked("http://10.0.0.5:12600", "tok", nil)
	if err == nil || !strings.Contains(err.Error(), "clear text") {
		t.Errorf("NewChecked(http://10.0.0.5:12600): %v, want the clear-text error", err)
	}
}

// sse serves one Server-Sent Events stream: events written by write.
func sse(t *testing.T, write func(w io.Writer)) *Client {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		write(w)
	}))
	t.Cleanup(hs.Close)
	return New(hs.URL, "tok", hs.Client())
}

func notice(w io.Writer, event string, n localapi.StreamNotice) {
	b, _ := json.Marshal(n)
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
}

// A stream carries an item with a 1 MiB payload escaped at its worst
// (each byte a control character: six bytes of JSON) and in base64.
func TestStreamLargestItem(t *testing.T) {
	payload := strings.Repeat("\x01", x0x.MaxPayload)
	m := localapi.TopicMessage{Cursor: 7, Topic: "t", Text: &payload, PayloadB64: base64.StdEncoding.EncodeToString([]byte(payload)),
		ID: strings.Repeat("a", 64), From: strings.Repeat("b", 64), Time: time.Now()}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 7<<20 {
		t.Fatalf("the item is %d bytes of JSON, want the worst case, over 7 MiB", len(b))
	}
	c := sse(t, func(w io.Writer) {
		fmt.Fprintf(w, "event: message\nid: 7\ndata: %s\n\n", b)
		notice(w, "end", localapi.StreamNotice{Notice: "end", ResumeAfter: 7})
	})
	var got []localapi.TopicMessage
	err = c.StreamTopic(context.Background(), "t", nil, func(m localapi.TopicMessage) error {
		got = append(got, m)
		return nil
	})
	if !errors.Is(err, io.EOF) {
		t.Fatalf("StreamTopic: %v, want io.EOF", err)
	}
	if len(got) != 1 || got[0].Text == nil || *got[0].Text != payload {
		t.Fatalf("got %d items, want the one with the 1 MiB payload", len(got))
	}
}

// "missed" and "reset" notices go to OnMissed and the stream goes on.
func TestStreamNotices(t *testing.T) {
	c := sse(t, func(w io.Writer) {
		notice(w, "reset", localapi.StreamNotice{Notice: "reset", ResumeAfter: 1000, Message: "cursor 5 is from an earlier feed"})
		fmt.Fprint(w, "event: message\nid: 1001\ndata: {\"cursor\":1001,\"payload_b64\":\"\"}\n\n")
		notice(w, "missed", localapi.StreamNotice{Notice: "missed", Missed: 3, ResumeAfter: 1004})
		fmt.Fprint(w, "event: message\nid: 1005\ndata: {\"cursor\":1005,\"payload_b64\":\"\"}\n\n")
		notice(w, "end", localapi.StreamNotice{Notice: "end", ResumeAfter: 1005})
	})
	var seen []string
	err := c.StreamTopic(context.Background(), "t", new(uint64), func(m localapi.TopicMessage) error {
		seen = append(seen, fmt.Sprint("item ", m.Cursor))
		return nil
	}, OnMissed(func(n localapi.StreamNotice) {
		seen = append(seen, fmt.Sprintf("%s %d %d", n.Notice, n.Missed, n.ResumeAfter))
	}))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("StreamTopic: %v, want io.EOF", err)
	}
	want := "reset 0 1000,item 1001,missed 3 1004,item 1005"
	if got := strings.Join(seen, ","); got != want {
		t.Fatalf("saw %s, want %s", got, want)
	}
}
