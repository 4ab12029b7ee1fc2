package mls

// Message framing (RFC 9420 section 6): FramedContent, its authentication
// data, PublicMessage, PrivateMessage and the MLSMessage envelope.

// Wire formats (RFC 9420 section 6).
const (
	wireFormatPublicMessage  uint16 = 1
	wireFormatPrivateMessage uint16 = 2
	wireFormatWelcome        uint16 = 3
	wireFormatGroupInfo      uint16 = 4
	wireFormatKeyPackage     uint16 = 5
)

// Content types (RFC 9420 section 6).
const (
	contentApplication uint8 = 1
	contentProposal    uint8 = 2
	contentCommit      uint8 = 3
)

// Sender types (RFC 9420 section 6).
const (
	senderMember            uint8 = 1
	senderExternal          uint8 = 2
	senderNewMemberProposal uint8 = 3
	senderNewMemberCommit   uint8 = 4
)

// validContentType reports whether t is application, proposal or commit.
func validContentType(t uint8) bool { return t >= contentApplication && t <= contentCommit }

// sender is a Sender: a member by leaf index, an external sender by index
// into the external_senders extension, or a new member.
type sender struct {
	typ   uint8
	index uint32 // leaf_index (member) or sender_index (external)
}

func (s *sender) marshal(e *encoder) {
	e.u8(s.typ)
	if s.typ == senderMember || s.typ == senderExternal {
		e.u32(s.index)
	}
}

func (s *sender) unmarshal(d *decoder) {
	start := d.off
	s.typ = d.u8()
	switch s.typ {
	case senderMember, senderExternal:
		s.index = d.u32()
	case senderNewMemberProposal, senderNewMemberCommit:
	default:
		d.failAt(start, ErrUnknownValue)
	}
}

// framedContent is FramedContent: one application message, proposal or
// commit with its group, epoch and sender.
type framedContent struct {
	groupID           []byte
	epoch             uint64
	sender            sender
	authenticatedData []byte
	contentType       uint8
	applicationData   []byte    // application
	proposal          *proposal // proposal
	commit            *commit   // commit
}

// marshalBody writes the content-type-dependent body.
func (f *framedContent) marshalBody(e *encoder) {
	switch f.contentType {
	case contentApplication:
		e.opaque(f.applicationData)
	case contentProposal:
		f.proposal.marshal(e)
	case contentCommit:
		f.commit.marshal(e)
	}
}

// unmarshalBody reads the body of content type f.contentType.
func (f *framedContent) unmarshalBody(d *decoder) {
	switch f.contentType {
	case contentApplication:
		f.applicationData = d.opaque()
	case contentProposal:
		f.proposal = new(proposal)
		f.proposal.unmarshal(d)
	case contentCommit:
		f.commit = new(commit)
		f.commit.unmarshal(d)
	}
}

func (f *framedContent) marshal(e *encoder) {
	e.opaque(f.groupID)
	e.u64(f.epoch)
	f.sender.marshal(e)
	e.opaque(f.authenticatedData)
	e.u8(f.contentType)
	f.marshalBody(e)
}

func (f *framedContent) unmarshal(d *decoder) {
	f.groupID = d.opaque()
	f.epoch = d.u64()
	f.sender.unmarshal(d)
	f.authenticatedData = d.opaque()
	start := d.off
	f.contentType = d.u8()
	if !validContentType(f.contentType) {
		d.failAt(start, ErrUnknownValue)
		return
	}
	f.unmarshalBody(d)
}

// framedContentAuthData is FramedContentAuthData: the signature, and for a
// commit the confirmation tag.
type framedContentAuthData struct {
	signature       []byte
	confirmationTag []byte // commit only
}

func (a *framedContentAuthData) marshal(e *encoder, contentType uint8) {
	e.opaque(a.signature)
	if contentType == contentCommit {
		e.opaque(a.confirmationTag)
	}
}

func (a *framedContentAuthData) unmarshal(d *decoder, contentType uint8) {
	a.signature = d.opaque()
	if contentType == contentCommit {
		a.confirmationTag = d.opaque()
	}
}

// authenticatedContent is AuthenticatedContent: content with its wire
// format and authentication data.
type authenticatedContent struct {
	wireFormat uint16
	content    framedContent
	auth       framedContentAuthData
}

func (a *authenticatedContent) marshal(e *encoder) {
	e.u16(a.wireFormat)
	a.content.marshal(e)
	a.auth.marshal(e, a.content.contentType)
}

func (a *authenticatedContent) unmarshal(d *decoder) {
	start := d.off
	a.wireFormat = d.u16()
	if a.wireFormat != wireFormatPublicMessage && a.wireFormat != wireFormatPrivateMessage {
		d.failAt(start, ErrUnknownValue)
	}
	a.content.unmarshal(d)
	a.auth.unmarshal(d, a.content.contentType)
}

// marshalTBS writes FramedContentTBS: what the sender signs. The group
// context is included for member and new-member-commit senders; gc must
// then be the encoded GroupContext of the content's epoch.
func (a *authenticatedContent) marshalTBS(e *encoder, gc []byte) {
	e.u16(protocolVersionMLS10)
	e.u16(a.wireFormat)
	a.content.marshal(e)
	if t := a.content.sender.typ; t == senderMember || t == senderNewMemberCommit {
		e.raw(gc)
	}
}

// publicMessage is a PublicMessage: signed (and for members MACed) content
// in the clear.
type publicMessage struct {
	content       framedContent
	auth          framedContentAuthData
	membershipTag []byte // member senders only
}

func (p *publicMessage) marshal(e *encoder) {
	p.content.marshal(e)
	p.auth.marshal(e, p.content.contentType)
	if p.content.sender.typ == senderMember {
		e.opaque(p.membershipTag)
	}
}

func (p *publicMessage) unmarshal(d *decoder) {
	p.content.unmarshal(d)
	p.auth.unmarshal(d, p.content.contentType)
	if p.content.sender.typ == senderMember {
		p.membershipTag = d.opaque()
	}
}

// privateMessage is a PrivateMessage: content encrypted under the secret
// tree, sender encrypted under the sender data secret.
type privateMessage struct {
	groupID             []byte
	epoch               uint64
	contentType         uint8
	authenticatedData   []byte
	encryptedSenderData []byte
	ciphertext          []byte
}

func (p *privateMessage) marshal(e *encoder) {
	e.opaque(p.groupID)
	e.u64(p.epoch)
	e.u8(p.contentType)
	e.opaque(p.authenticatedData)
	e.opaque(p.encryptedSenderData)
	e.opaque(p.ciphertext)
}

func (p *privateMessage) unmarshal(d *decoder) {
	p.groupID = d.opaque()
	p.epoch = d.u64()
	start := d.off
	p.contentType = d.u8()
	if !validContentType(p.contentType) {
		d.failAt(start, ErrUnknownValue)
	}
	p.authenticatedData = d.opaque()
	p.encryptedSenderData = d.opaque()
	p.ciphertext = d.opaque()
}

// mlsMessage is MLSMessage, the envelope of everything MLS sends; exactly
// the field for wireFormat is set.
type mlsMessage struct {
	wireFormat uint16
	public     *publicMessage
	private    *privateMessage
	welcome    *welcome
	groupInfo  *groupInfo
	keyPackage *keyPackage
}

func (m *mlsMessage) marshal(e *encoder) {
	e.u16(protocolVersionMLS10)
	e.u16(m.wireFormat)
	switch m.wireFormat {
	case wireFormatPublicMessage:
		m.public.marshal(e)
	case wireFormatPrivateMessage:
		m.private.marshal(e)
	case wireFormatWelcome:
		m.welcome.marshal(e)
	case wireFormatGroupInfo:
		m.groupInfo.marshal(e)
	case wireFormatKeyPackage:
		m.keyPackage.marshal(e)
	}
}

func (m *mlsMessage) unmarshal(d *decoder) {
	d.version()
	start := d.off
	m.wireFormat = d.u16()
	if d.err != nil {
		return
	}
	switch m.wireFormat {
	case wireFormatPublicMessage:
		m.public = new(publicMessage)
		m.public.unmarshal(d)
	case wireFormatPrivateMessage:
		m.private = new(privateMessage)
		m.private.unmarshal(d)
	case wireFormatWelcome:
		m.welcome = new(welcome)
		m.welcome.unmarshal(d)
	case wireFormatGroupInfo:
		m.groupInfo = new(groupInfo)
		m.groupInfo.unmarshal(d)
	case wireFormatKeyPackage:
		m.keyPackage = new(keyPackage)
		m.keyPackage.unmarshal(d)
	default:
		d.failAt(start, ErrUnknownValue)
	}
}

// decodeMLSMessage decodes a complete MLSMessage.
func decodeMLSMessage(b []byte) (*mlsMessage, error) {
	m := new(mlsMessage)
	if err := decodeAll("MLSMessage", b, m.unmarshal); err != nil {
		return nil, err
	}
	return m, nil
}
