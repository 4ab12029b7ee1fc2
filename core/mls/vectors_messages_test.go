package mls

import (
	"encoding/json"
	"testing"
)

// codecValue is a struct pointer that encodes and decodes itself.
type codecValue interface {
	marshal(e *encoder)
	unmarshal(d *decoder)
}

// roundTrip decodes b into v (which must consume all of it) and checks
// that v re-encodes to b.
func roundTrip(t *testing.T, what string, b []byte, v codecValue) {
	t.Helper()
	if err := decodeAll(what, b, v.unmarshal); err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	got, err := encode(v)
	if err != nil {
		t.Errorf("%s: re-encode: %v", what, err)
		return
	}
	wantBytes(t, what+" re-encoded", got, b)
}

// Wrappers for the proposal bodies the messages vector serializes alone.
type removeBody struct{ removed uint32 }

func (r *removeBody) marshal(e *encoder)   { e.u32(r.removed) }
func (r *removeBody) unmarshal(d *decoder) { r.removed = d.u32() }

type externalInitBody struct{ kemOutput []byte }

func (x *externalInitBody) marshal(e *encoder)   { e.opaque(x.kemOutput) }
func (x *externalInitBody) unmarshal(d *decoder) { x.kemOutput = d.opaque() }

type extensionsBody struct{ exts []extension }

func (x *extensionsBody) marshal(e *encoder)   { marshalExtensions(e, x.exts) }
func (x *extensionsBody) unmarshal(d *decoder) { x.exts = unmarshalExtensions(d) }

// runMessagesVector decodes and re-encodes every message type.
func runMessagesVector(t *testing.T, raw json.RawMessage) {
	var v struct {
		MLSWelcome                     hexBytes `json:"mls_welcome"`
		MLSGroupInfo                   hexBytes `json:"mls_group_info"`
		MLSKeyPackage                  hexBytes `json:"mls_key_package"`
		RatchetTree                    hexBytes `json:"ratchet_tree"`
		GroupSecrets                   hexBytes `json:"group_secrets"`
		AddProposal                    hexBytes `json:"add_proposal"`
		UpdateProposal                 hexBytes `json:"update_proposal"`
		RemoveProposal                 hexBytes `json:"remove_proposal"`
		PreSharedKeyProposal           hexBytes `json:"pre_shared_key_proposal"`
		ReInitProposal                 hexBytes `json:"re_init_proposal"`
		ExternalInitProposal           hexBytes `json:"external_init_proposal"`
		GroupContextExtensionsProposal hexBytes `json:"group_context_extensions_proposal"`
		Commit                         hexBytes `json:"commit"`
		PublicMessageApplication       hexBytes `json:"public_message_application"`
		PublicMessageProposal          hexBytes `json:"public_message_proposal"`
		PublicMessageCommit            hexBytes `json:"public_message_commit"`
		PrivateMessage                 hexBytes `json:"private_message"`
	}
	decodeVectorJSON(t, raw, &v)
	envelopes := []struct {
		what        string
		b           []byte
		wireFormat  uint16
		contentType uint8
	}{
		{"mls_welcome", v.MLSWelcome, wireFormatWelcome, 0},
		{"mls_group_info", v.MLSGroupInfo, wireFormatGroupInfo, 0},
		{"mls_key_package", v.MLSKeyPackage, wireFormatKeyPackage, 0},
		{"public_message_application", v.PublicMessageApplication, wireFormatPublicMessage, contentApplication},
		{"public_message_proposal", v.PublicMessageProposal, wireFormatPublicMessage, contentProposal},
		{"public_message_commit", v.PublicMessageCommit, wireFormatPublicMessage, contentCommit},
		{"private_message", v.PrivateMessage, wireFormatPrivateMessage, 0},
	}
	for _, c := range envelopes {
		var m mlsMessage
		roundTrip(t, c.what, c.b, &m)
		if m.wireFormat != c.wireFormat {
			t.Errorf("%s: wire format %d, want %d", c.what, m.wireFormat, c.wireFormat)
		}
		if c.contentType != 0 && (m.public == nil || m.public.content.contentType != c.contentType) {
			t.Errorf("%s: not a PublicMessage of content type %d", c.what, c.contentType)
		}
	}
	var tree ratchetTree
	roundTrip(t, "ratchet_tree", v.RatchetTree, &tree)
	roundTrip(t, "group_secrets", v.GroupSecrets, &groupSecrets{})
	roundTrip(t, "add_proposal", v.AddProposal, &keyPackage{})
	roundTrip(t, "update_proposal", v.UpdateProposal, &leafNode{})
	roundTrip(t, "remove_proposal", v.RemoveProposal, &removeBody{})
	roundTrip(t, "pre_shared_key_proposal", v.PreSharedKeyProposal, &preSharedKeyID{})
	roundTrip(t, "re_init_proposal", v.ReInitProposal, &reInit{})
	roundTrip(t, "external_init_proposal", v.ExternalInitProposal, &externalInitBody{})
	roundTrip(t, "group_context_extensions_proposal", v.GroupContextExtensionsProposal, &extensionsBody{})
	roundTrip(t, "commit", v.Commit, &commit{})
}
