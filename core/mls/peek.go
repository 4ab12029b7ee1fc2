package mls

import "fmt"

// Reading the clear header of a group message without keys, to route it
// (to a group, or to the state of an earlier epoch) before processing.

// MessageInfo is what the clear header of a group message tells.
type MessageInfo struct {
	// GroupID is the ID of the group the message is for (a copy, owned by
	// the caller).
	GroupID []byte
	// Epoch is the epoch the message was sent in.
	Epoch uint64
	// Kind is the content type: application data, proposal or commit.
	Kind ContentKind
	// Private is true for a PrivateMessage (encrypted content and sender),
	// false for a PublicMessage.
	Private bool
	// HasSender is true for a PublicMessage from a member; Sender is then
	// its leaf index (in Epoch's tree). A PrivateMessage's sender is
	// encrypted, and external or new-member senders have no leaf.
	HasSender bool
	// Sender is the sender's leaf index if HasSender.
	Sender uint32
	// AuthenticatedData is the message's authenticated_data (a copy),
	// which travels in the clear in both wire formats.
	AuthenticatedData []byte
}

// PeekMessage reads the clear header of an MLSMessage holding a
// PublicMessage or PrivateMessage (group ID, epoch, content type, the
// sender of a PublicMessage, the authenticated data) without any keys and
// without checking anything else: the message is not authenticated, so
// the result is only a routing hint until Process accepts the message.
// Messages longer than DefaultMaxMessageSize are refused (PeekMessageLimit
// takes another limit).
//
// Errors: ErrMessageTooLarge for a message over the limit; an error
// wrapping ErrNotGroupMessage (and ErrInvalidMessage) for a Welcome,
// GroupInfo or KeyPackage; a *DecodeError for a header that does not
// parse (truncated, a protocol version other than mls10, an unknown wire
// format, content type or sender type).
func PeekMessage(msg []byte) (MessageInfo, error) {
	return PeekMessageLimit(msg, DefaultMaxMessageSize)
}

// PeekMessageLimit is PeekMessage with maxSize (typically the group's
// Config.MaxMessageSize) as the size limit; maxSize <= 0 means
// DefaultMaxMessageSize.
func PeekMessageLimit(msg []byte, maxSize int) (MessageInfo, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxMessageSize
	}
	if len(msg) > maxSize {
		return MessageInfo{}, fmt.Errorf("%w: message of %d bytes, limit %d", ErrMessageTooLarge, len(msg), maxSize)
	}
	var info MessageInfo
	d := newDecoder(msg)
	d.version()
	wfStart := d.off
	wf := d.u16()
	var contentType uint8
	var ctStart int
	switch {
	case d.err != nil:
	case wf == wireFormatPublicMessage:
		// FramedContent: group_id, epoch, sender, authenticated_data,
		// content_type, then the body (not read).
		info.GroupID = d.opaque()
		info.Epoch = d.u64()
		var snd sender
		snd.unmarshal(d)
		info.HasSender, info.Sender = snd.typ == senderMember, snd.index
		info.AuthenticatedData = d.opaque()
		ctStart = d.off
		contentType = d.u8()
	case wf == wireFormatPrivateMessage:
		// PrivateMessage: group_id, epoch, content_type,
		// authenticated_data, then the encrypted parts (not read).
		info.Private = true
		info.GroupID = d.opaque()
		info.Epoch = d.u64()
		ctStart = d.off
		contentType = d.u8()
		info.AuthenticatedData = d.opaque()
	case wf == wireFormatWelcome || wf == wireFormatGroupInfo || wf == wireFormatKeyPackage:
		return MessageInfo{}, fmt.Errorf("%w: MLSMessage holds a %s", ErrNotGroupMessage, wireFormatName(wf))
	default:
		d.failAt(wfStart, ErrUnknownValue)
	}
	if d.err == nil && !validContentType(contentType) {
		d.failAt(ctStart, ErrUnknownValue)
	}
	if d.err != nil {
		return MessageInfo{}, &DecodeError{What: "MLSMessage header", Offset: d.errOff, Err: d.err}
	}
	switch contentType {
	case contentApplication:
		info.Kind = KindApplication
	case contentProposal:
		info.Kind = KindProposal
	default:
		info.Kind = KindCommit
	}
	return info, nil
}

// wireFormatName names the non-group wire formats.
func wireFormatName(wf uint16) string {
	switch wf {
	case wireFormatWelcome:
		return "Welcome"
	case wireFormatGroupInfo:
		return "GroupInfo"
	case wireFormatKeyPackage:
		return "KeyPackage"
	}
	return fmt.Sprintf("wire format %d", wf)
}
