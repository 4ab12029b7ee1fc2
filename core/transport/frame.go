package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/saorsa-labs/x0x-go/core/identity"
	"github.com/saorsa-labs/x0x-go/core/link"
)

// Wire format of every x0x stream (control and class streams alike):
//
//	frame  = type:u8 length:u32be body[length]
//
// A class stream (unidirectional, opened by the sender) starts with one byte
// naming its link.Class, followed by frames. The control stream (the first
// bidirectional stream, opened by the dialler) carries, in each direction,
// exactly: one auth frame, one agents frame (full set), one address frame.

// frameType identifies the body of a frame.
type frameType uint8

// Frame types.
const (
	frameAuth    frameType = 0x01 // authMsg (control stream, first frame)
	frameAgents  frameType = 0x02 // agentsMsg (control stream hello; direct stream updates)
	frameAddr    frameType = 0x03 // addrReport (control stream, after agents)
	frameRetire  frameType = 0x04 // retiring a dedup loser: class bitmap (control stream)
	frameDrained frameType = 0x05 // retiring: all the peer's data was read (control stream)
	frameDirect  frameType = 0x11 // agent-to-agent direct message (direct stream)
	frameService frameType = 0x12 // service:u8 || direct message of a library service (direct stream)
	// Relay frames (relay stream, on direct connections only); see relay.go.
	frameRelayFwd frameType = 0x20 // client to relay: target PeerID || QUIC packet
	frameRelayPkt frameType = 0x21 // relay to client: source PeerID || QUIC packet
	frameRelayErr frameType = 0x22 // relay to client: target PeerID || refusal code
	// Protocol frames: frameProto+p carries an opaque payload for the
	// handler of link.Protocol p, on the stream of p's class.
	frameProto frameType = 0x40
)

// protoFrame returns the frame type carrying payloads of p.
func protoFrame(p link.Protocol) frameType { return frameProto + frameType(p) }

// protocol returns the protocol t carries, or false if t is not a
// protocol frame of a known protocol.
func (t frameType) protocol() (link.Protocol, bool) {
	if t <= frameProto || t > frameProto+frameType(link.MaxProtocol) {
		return 0, false
	}
	return link.Protocol(t - frameProto), true
}

// frameHeaderSize is the size of a frame header.
const frameHeaderSize = 5

// Body limits for transport-internal frame types. Data and direct frames are
// bounded by Config.MaxFrameSize instead.
const (
	maxAuthBody   = 8 << 10 // key 1952 + signature 3309 + IDs and CBOR overhead
	maxAgentsBody = 1 << 20 // MaxAgentsPerPeer certificates of ~5.4 KB each
	maxAddrBody   = 128     // one host:port string
	directIDsSize = 2 * 32  // from and to AgentIDs in front of a direct payload
	// maxRelayPacket bounds one relayed QUIC packet (quic-go sends at most
	// 1452-byte packets; the margin allows other stacks' larger ones).
	maxRelayPacket = 2048
)

func (t frameType) String() string {
	switch t {
	case frameAuth:
		return "auth"
	case frameAgents:
		return "agents"
	case frameAddr:
		return "addr"
	case frameRetire:
		return "retire"
	case frameDrained:
		return "drained"
	case frameDirect:
		return "direct"
	case frameService:
		return "service"
	case frameRelayFwd:
		return "relay-forward"
	case frameRelayPkt:
		return "relay-packet"
	case frameRelayErr:
		return "relay-error"
	}
	if p, ok := t.protocol(); ok {
		return p.String()
	}
	return fmt.Sprintf("type(%#02x)", uint8(t))
}

// maxBody returns the largest body allowed for t, or -1 for unknown types.
func maxBody(t frameType, maxFrame int) int {
	switch t {
	case frameAuth:
		return maxAuthBody
	case frameAgents:
		return maxAgentsBody
	case frameAddr:
		return maxAddrBody
	case frameRetire:
		return 1
	case frameDrained:
		return 0
	case frameDirect, frameService:
		return maxFrame
	case frameRelayFwd, frameRelayPkt:
		return identity.IDSize + maxRelayPacket
	case frameRelayErr:
		return identity.IDSize + 1
	}
	if _, ok := t.protocol(); ok {
		return maxFrame
	}
	return -1
}

// putFrameHeader writes a header for a body of n bytes into b[:5].
func putFrameHeader(b []byte, t frameType, n int) {
	b[0] = byte(t)
	binary.BigEndian.PutUint32(b[1:frameHeaderSize], uint32(n))
}

// appendFrame appends a whole frame to dst.
func appendFrame(dst []byte, t frameType, body []byte) []byte {
	var h [frameHeaderSize]byte
	putFrameHeader(h[:], t, len(body))
	return append(append(dst, h[:]...), body...)
}

// parseFrameHeader decodes and validates a header. Unknown types and bodies
// over the type's limit are ErrMalformed.
func parseFrameHeader(h []byte, maxFrame int) (frameType, int, error) {
	t := frameType(h[0])
	n := binary.BigEndian.Uint32(h[1:frameHeaderSize])
	limit := maxBody(t, maxFrame)
	if limit < 0 {
		return 0, 0, fmt.Errorf("%w: unknown frame type %#02x", ErrMalformed, h[0])
	}
	if uint64(n) > uint64(limit) {
		return 0, 0, fmt.Errorf("%w: %s frame of %d bytes exceeds limit %d", ErrMalformed, t, n, limit)
	}
	return t, int(n), nil
}

// readFrame reads one frame from r. hdr is scratch space owned by the
// caller. It returns io.EOF only when r ends cleanly between frames; a
// stream ending inside a frame, an unknown type or an oversized length is
// ErrMalformed; other errors are r's (e.g. the connection closing). The
// returned body is freshly allocated and owned by the caller.
func readFrame(r io.Reader, hdr *[frameHeaderSize]byte, maxFrame int) (frameType, []byte, error) {
	t, n, err := readFrameHeader(r, hdr, maxFrame)
	if err != nil {
		return 0, nil, err
	}
	body, err := readFrameBody(r, t, n)
	return t, body, err
}

// readFrameHeader reads and validates one frame header.
func readFrameHeader(r io.Reader, hdr *[frameHeaderSize]byte, maxFrame int) (frameType, int, error) {
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, 0, fmt.Errorf("%w: truncated frame header", ErrMalformed)
		}
		return 0, 0, err
	}
	return parseFrameHeader(hdr[:], maxFrame)
}

// bodyChunk is how much of a frame body is allocated ahead of the bytes
// that arrived: a peer that announces a large frame and sends little of it
// costs little memory.
const bodyChunk = 64 << 10

// readFrameBody reads the n-byte body of a frame of type t, growing the
// buffer as the bytes arrive.
func readFrameBody(r io.Reader, t frameType, n int) ([]byte, error) {
	body := make([]byte, 0, min(n, bodyChunk))
	for len(body) < n {
		k := min(n-len(body), bodyChunk)
		body = slices.Grow(body, k)
		got, err := io.ReadFull(r, body[len(body):len(body)+k])
		body = body[:len(body)+got]
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: truncated %s frame (%d bytes announced)", ErrMalformed, t, n)
			}
			return nil, err
		}
	}
	return body, nil
}

// readClassHeader reads the first byte of a class stream and validates it.
func readClassHeader(r io.Reader) (link.Class, error) {
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("%w: class stream ended before its header", ErrMalformed)
		}
		return 0, err
	}
	c := link.Class(b[0])
	if !c.Valid() {
		return 0, fmt.Errorf("%w: unknown stream class %d", ErrMalformed, b[0])
	}
	return c, nil
}

// isProtocolOn reports whether t is a protocol frame whose protocol runs on
// class k (a protocol frame on another class's stream is a protocol error).
func (t frameType) isProtocolOn(k link.Class) bool {
	p, ok := t.protocol()
	return ok && p.Class() == k
}
