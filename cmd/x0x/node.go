package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/saorsa-labs/x0x-go/cmd/internal/apiclient"
	"github.com/saorsa-labs/x0x-go/cmd/internal/localapi"
	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// maxMessage bounds a message read from stdin or a file: the API refuses
// payloads over 1 MiB anyway (too_large).
const maxMessage = 1 << 20

// inboxPage is the page size of x0x inbox without --limit: the API's
// largest.
const inboxPage = 1000

// ---- output --------------------------------------------------------------

// short is an ID's first 8 hex digits.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	if id == "" {
		return "-"
	}
	return id
}

// payloadText is a payload for a line of human output: the text, quoted
// if it has control characters (a line per message), or base64:<base64>
// when it is not UTF-8.
func payloadText(text *string, b64 string) string {
	if text == nil {
		return "base64:" + b64
	}
	return oneLine(*text)
}

// oneLine is s, quoted if it has control characters (a newline, say).
func oneLine(s string) string {
	if strings.ContainsFunc(s, unicode.IsControl) {
		return strconv.Quote(s)
	}
	return s
}

func timeText(t time.Time) string { return t.Local().Format(time.RFC3339) }

// ---- node ----------------------------------------------------------------

func cmdID(c *cli, fs *flag.FlagSet) func([]string) error {
	return apiCmd(c, 0, 0, func(ctx context.Context, cl *apiclient.Client, _ []string) (localapi.AgentInfo, error) {
		return cl.Agent(ctx)
	}, func(a localapi.AgentInfo) error {
		nat := a.NATType
		if a.ExternalAddr != "" {
			nat += " (external " + a.ExternalAddr + ")"
		}
		tw := c.tabs()
		fmt.Fprintf(tw, "agent\t%s\nmachine\t%s\ndial\t%s\naddr\t%s\nnat\t%s\nversion\t%s\n",
			a.AgentID, a.MachineID, a.DialAddr, a.Addr, nat, a.Version)
		return tw.Flush()
	})
}

func cmdPeers(c *cli, fs *flag.FlagSet) func([]string) error {
	return apiCmd(c, 0, 0, func(ctx context.Context, cl *apiclient.Client, _ []string) (localapi.PeerList, error) {
		peers, err := cl.Peers(ctx)
		return localapi.PeerList{Peers: orEmpty(peers)}, err
	}, func(l localapi.PeerList) error {
		return printTable(c, l.Peers, "no peers", "PEER\tADDR\tPATH\tSERVICES\tAGENTS", peerRow)
	})
}

// peerRow is a peer's row in x0x peers.
func peerRow(p localapi.Peer) string {
	path := "direct"
	if p.Relayed {
		path = "relayed"
		if p.Via != "" {
			path += " via " + short(p.Via)
		}
	}
	svc := strings.Join(p.Services, ",")
	if svc == "" {
		svc = "-"
	}
	agents := make([]string, len(p.Agents))
	for i, a := range p.Agents {
		agents[i] = short(a)
	}
	ag := strings.Join(agents, ",")
	if ag == "" {
		ag = "-"
	}
	return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", p.ID[:min(16, len(p.ID))], p.Addr, path, svc, ag)
}

func cmdConnect(c *cli, fs *flag.FlagSet) func([]string) error {
	return apiCmd(c, 1, 1, func(ctx context.Context, cl *apiclient.Client, args []string) (localapi.ConnectResponse, error) {
		peer, err := cl.Connect(ctx, args[0])
		return localapi.ConnectResponse{Peer: peer}, err
	}, func(r localapi.ConnectResponse) error {
		return c.println(r.Peer)
	})
}

// ---- topics ----------------------------------------------------------------

// message returns the payload of pub or send: the argument, or stdin when
// it is "-" or absent (allowStdin), or file.
func (c *cli) message(args []string, file string) (localapi.Payload, error) {
	switch {
	case file != "":
		if len(args) > 0 {
			return localapi.Payload{}, usageError("give MSG or --file, not both")
		}
		f, err := os.Open(file)
		if err != nil {
			return localapi.Payload{}, failed("%v", err)
		}
		defer f.Close()
		b, err := readMessage(f)
		if err != nil {
			return localapi.Payload{}, failed("%s: %v", file, err)
		}
		return apiclient.Bytes(b), nil
	case len(args) == 0 || args[0] == "-":
		if f, ok := c.stdin.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				fmt.Fprintln(c.stderr, "x0x: reading the message from stdin (end it with Ctrl-D)")
			}
		}
		b, err := readMessage(c.stdin)
		if err != nil {
			return localapi.Payload{}, failed("stdin: %v", err)
		}
		return apiclient.Bytes(b), nil
	}
	return apiclient.Text(args[0]), nil
}

func readMessage(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxMessage+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMessage {
		return nil, fmt.Errorf("the message is over %d bytes (the API's limit)", maxMessage)
	}
	return b, nil
}

func cmdPub(c *cli, fs *flag.FlagSet) func([]string) error {
	file := fs.String("file", "", "publish the contents of `FILE`")
	lines := fs.Bool("lines", false, "publish each line of stdin as a message (prints an ID a line)")
	return argsCmd(1, 2, func(args []string) error {
		topic, rest := args[0], args[1:]
		cl, err := c.client()
		if err != nil {
			return err
		}
		if *lines {
			if len(rest) > 0 || *file != "" {
				return usageError("--lines reads stdin: give no MSG and no --file")
			}
			return c.pubLines(cl, topic)
		}
		p, err := c.message(rest, *file)
		if err != nil {
			return err
		}
		return c.publish(cl, topic, p)
	})
}

func (c *cli) publish(cl *apiclient.Client, topic string, p localapi.Payload) error {
	ctx, cancel := c.callContext()
	defer cancel()
	id, err := cl.Publish(ctx, topic, p)
	if err != nil {
		return err
	}
	return printResult(c, localapi.PublishResponse{ID: id}, func(r localapi.PublishResponse) error {
		return c.println(r.ID)
	})
}

func (c *cli) pubLines(cl *apiclient.Client, topic string) error {
	sc := bufio.NewScanner(c.stdin)
	sc.Buffer(make([]byte, 64<<10), maxMessage+1)
	for sc.Scan() {
		if err := c.publish(cl, topic, apiclient.Bytes(bytes.TrimSuffix(sc.Bytes(), []byte("\r")))); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return failed("stdin: %v", err)
	}
	return nil
}

// afterFlag registers --after: a cursor, nil when not given.
func afterFlag(fs *flag.FlagSet, usage string) **uint64 {
	var after *uint64
	fs.Func("after", usage, func(s string) error {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return errors.New("want a cursor (a non-negative integer)")
		}
		after = &n
		return nil
	})
	return &after
}

func cmdSub(c *cli, fs *flag.FlagSet) func([]string) error {
	after := afterFlag(fs, "start after this `CURSOR` (0: the oldest message the daemon keeps; default: from now on)")
	return argsCmd(1, 1, func(args []string) error {
		cl, err := c.client()
		if err != nil {
			return err
		}
		last := *after
		err = cl.StreamTopic(c.ctx, args[0], *after, func(m localapi.TopicMessage) error {
			last = &m.Cursor
			return printResult(c, m, func(m localapi.TopicMessage) error {
				return c.printf("%s %s %s\n", timeText(m.Time), short(m.From), payloadText(m.Text, m.PayloadB64))
			})
		}, c.onMissed())
		return c.streamEnd(cl, err, last)
	})
}

// onMissed reports, on stderr, items a stream says were lost before it
// opened (or dropped by the daemon's own subscription), and a cursor the
// stream reset (from an earlier feed); the stream goes on.
func (c *cli) onMissed() apiclient.StreamOption {
	return apiclient.OnMissed(func(n localapi.StreamNotice) {
		if n.Notice == "reset" {
			fmt.Fprintln(c.stderr, "x0x: the cursor is from an earlier feed (the daemon restarted or the topic was unfollowed); starting again with the oldest message kept")
			return
		}
		fmt.Fprintf(c.stderr, "x0x: %d items were lost (no longer kept by the daemon); continuing after cursor %d\n", n.Missed, n.ResumeAfter)
	})
}

// streamEnd turns the end of a stream into the command's result: nil when
// the user interrupted it; exit code 5 when the daemon dropped the client
// as too slow (with the cursor to resume after); when the daemon ended it
// (an end notice, e.g. the topic was unfollowed) or the connection just
// ended, exit code 3 if the daemon is gone, else 1 (5 for a connection
// that ended without a notice: the daemon drops a client that does not
// take an item within its write timeout that way).
func (c *cli) streamEnd(cl *apiclient.Client, err error, last *uint64) error {
	if c.ctx.Err() != nil {
		return nil
	}
	var ae *apiclient.Error
	if errors.As(err, &ae) && ae.Code == "slow_consumer" {
		hint := fmt.Sprintf("--after %d resumes after the last item sent (reporting what was lost since)", ae.ResumeAfter)
		return &exitError{code: exitSlow, msg: "the daemon dropped this stream: " + ae.Message + " (" + ae.Code + ")", hint: hint}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, apiclient.ErrStreamBroken) {
		ctx, cancel := c.callContext()
		defer cancel()
		if _, herr := cl.Health(ctx); herr != nil {
			return &exitError{code: exitUnreachable, msg: "the daemon ended the stream: it stopped"}
		}
		if errors.Is(err, io.EOF) {
			return failed("the daemon ended the stream (the topic was unfollowed, or the list or group left)")
		}
		hint := "start again without --after (from now on)"
		if last != nil {
			hint = fmt.Sprintf("--after %d resumes after the last item printed", *last)
		}
		return &exitError{code: exitSlow, msg: "the stream's connection ended without the daemon's end notice: it drops a client that does not take an item in time", hint: hint}
	}
	return err
}

func cmdTopics(c *cli, fs *flag.FlagSet) func([]string) error {
	return apiCmd(c, 0, 0, func(ctx context.Context, cl *apiclient.Client, _ []string) (localapi.TopicList, error) {
		topics, err := cl.Topics(ctx)
		return localapi.TopicList{Topics: orEmpty(topics)}, err
	}, func(l localapi.TopicList) error {
		return printTable(c, l.Topics, "no topics followed", "TOPIC\tCURSOR\tNEIGHBOURS", func(t localapi.TopicInfo) string {
			return fmt.Sprintf("%s\t%d\t%d", t.Topic, t.Cursor, len(t.Neighbours))
		})
	})
}

func cmdFollow(c *cli, fs *flag.FlagSet) func([]string) error {
	return apiCmd(c, 1, 1, func(ctx context.Context, cl *apiclient.Client, args []string) (localapi.TopicInfo, error) {
		return cl.Follow(ctx, args[0])
	}, func(t localapi.TopicInfo) error {
		return c.printf("following %s (newest cursor %d)\n", t.Topic, t.Cursor)
	})
}

func cmdUnsub(c *cli, fs *flag.FlagSet) func([]string) error {
	return apiCmd(c, 1, 1, func(ctx context.Context, cl *apiclient.Client, args []string) (localapi.Empty, error) {
		return localapi.Empty{OK: true}, cl.Unfollow(ctx, args[0])
	}, nil)
}

// ---- direct messages -----------------------------------------------------------

func cmdSend(c *cli, fs *flag.FlagSet) func([]string) error {
	file := fs.String("file", "", "send the contents of `FILE`")
	return resultCmd(c, 1, 2, func(args []string) (localapi.Empty, error) {
		if len(args) == 1 && *file == "" {
			return localapi.Empty{}, usageError("missing MSG (- reads it from stdin)")
		}
		if _, err := x0x.ParseID(args[0]); err != nil {
			return localapi.Empty{}, usageError("AGENT: want an agent ID (64 hex digits): %q", args[0])
		}
		p, err := c.message(args[1:], *file)
		if err != nil {
			return localapi.Empty{}, err
		}
		return call(c, func(ctx context.Context, cl *apiclient.Client) (localapi.Empty, error) {
			return localapi.Empty{OK: true}, cl.SendDirect(ctx, args[0], p)
		})
	}, nil)
}

func cmdInbox(c *cli, fs *flag.FlagSet) func([]string) error {
	afterp := afterFlag(fs, "the messages after this `CURSOR` (default: all the daemon keeps; with --follow, from now on)")
	wait := fs.Duration("wait", 0, "wait up to `D` for a message when there is none")
	limit := fs.Int("limit", 0, "at most `N` messages (1-1000; default: all the daemon keeps)")
	follow := fs.Bool("follow", false, "keep printing messages as they arrive (a stream, like sub)")
	return argsCmd(0, 0, func(args []string) error {
		if *limit < 0 || *limit > 1000 {
			return usageError("--limit: want 1 to 1000")
		}
		if *wait < 0 {
			return usageError("--wait: want a positive duration")
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		print := func(m localapi.DirectMessage) error {
			return printResult(c, m, func(m localapi.DirectMessage) error {
				return c.printf("%s %s %s\n", timeText(m.Received), short(m.From), payloadText(m.Text, m.PayloadB64))
			})
		}
		if *follow {
			if *wait != 0 || *limit != 0 {
				return usageError("--follow streams: no --wait or --limit")
			}
			last := *afterp
			err := cl.StreamDirect(c.ctx, *afterp, func(m localapi.DirectMessage) error {
				last = &m.Cursor
				return print(m)
			}, c.onMissed())
			return c.streamEnd(cl, err, last)
		}
		var after uint64
		if *afterp != nil {
			after = **afterp
		}
		// A page of --limit; without --limit, pages of inboxPage until
		// one is not full (all the daemon keeps). With --wait, first
		// pages until a message arrives or the wait is over (the daemon
		// caps one wait at 30 s).
		all, size := *limit == 0, *limit
		if all {
			size = inboxPage
		}
		deadline := time.Now().Add(*wait)
		waiting := true // no message yet
		for {
			r := apiclient.Read{After: after, Limit: size}
			if left := time.Until(deadline); waiting && left > 0 {
				r.WaitMs = int(min(left, 30*time.Second) / time.Millisecond)
			}
			ctx, cancel := context.WithTimeout(c.ctx, c.g.timeout+time.Duration(r.WaitMs)*time.Millisecond)
			p, err := cl.DirectMessages(ctx, r)
			cancel()
			if err != nil {
				return err
			}
			if p.Missed > 0 {
				fmt.Fprintf(c.stderr, "x0x: %d messages after cursor %d were lost before they were read\n", p.Missed, after)
			}
			for _, m := range p.Items {
				if err := print(m); err != nil {
					return err
				}
			}
			waiting = waiting && len(p.Items) == 0
			switch {
			case waiting && time.Until(deadline) <= 0:
				return nil // no message
			case !waiting && (!all || len(p.Items) < size):
				return nil // --limit's page, or the last page
			}
			after = p.NextCursor
		}
	})
}

// ---- misc ------------------------------------------------------------------------

// versionInfo is x0x version's JSON.
type versionInfo struct {
	Version string `json:"version"`
}

func cmdVersion(c *cli, fs *flag.FlagSet) func([]string) error {
	return resultCmd(c, 0, 0, func([]string) (versionInfo, error) {
		return versionInfo{x0x.Version}, nil
	}, func(v versionInfo) error {
		return c.println("x0x", v.Version)
	})
}

func cmdMCP(c *cli, fs *flag.FlagSet) func([]string) error {
	return argsCmd(0, 0, func(args []string) error {
		cl, err := c.client()
		if err != nil {
			return err
		}
		return runMCP(c.ctx, cl, c.stdin, c.stdout)
	})
}
