package x0x

import (
	"net/url"
)

// The A2A (Agent2Agent) agent card of an x0x agent: a JSON document that
// tells other agents and their tools who the agent is and what it can do
// (A2A specification 0.3.0, section 5 "Agent Discovery: The Agent Card";
// its JSON schema's AgentCard definition). x0xd serves its agent's card at
// GET /.well-known/agent.json (and /.well-known/agent-card.json, the name
// A2A 0.3.0 recommends) on its local HTTP port; embedders serve
// Agent.AgentCard wherever they like.
//
// An x0x agent does not speak A2A's JSON-RPC, gRPC or HTTP+JSON transports:
// it is reached over x0x itself, which the card declares as the custom
// transport A2ATransport ("X0X"; A2A allows transports beyond its three)
// at the agent's x0x URL (see AgentURL), and its identity and addresses are
// in the card's x0x extension (AgentCardExtensionURI). skill/agent-card.md
// in the repository describes the card field by field.
const (
	// A2AProtocolVersion is the A2A protocol version whose AgentCard the
	// card follows.
	A2AProtocolVersion = "0.3.0"
	// A2ATransport names the x0x transport in a card's preferredTransport
	// and additionalInterfaces: QUIC with X25519MLKEM768 and ML-DSA-65
	// authentication, the agent addressed by its AgentID through its node.
	A2ATransport = "X0X"
	// AgentCardExtensionURI identifies the card extension whose params
	// carry the agent's x0x identity and addresses (AgentCardExtension).
	AgentCardExtensionURI = "https://github.com/saorsa-labs/x0x-go/blob/main/skill/agent-card.md"
	// AgentCardMediaType is the media type of x0x payloads: opaque bytes.
	AgentCardMediaType = "application/octet-stream"
)

// AgentCard is an A2A AgentCard. The JSON names and required fields are
// the specification's; fields x0x has no use for (security schemes, card
// signatures) are left out.
type AgentCard struct {
	// ProtocolVersion is the A2A version the card follows (A2AProtocolVersion).
	ProtocolVersion string `json:"protocolVersion"`
	// Name is a human-readable name for the agent.
	Name string `json:"name"`
	// Description says what the agent is and does.
	Description string `json:"description"`
	// URL is the agent's preferred endpoint, served with PreferredTransport.
	URL string `json:"url"`
	// PreferredTransport is the transport at URL.
	PreferredTransport string `json:"preferredTransport"`
	// AdditionalInterfaces lists every transport and URL the agent is
	// reached at, URL's first.
	AdditionalInterfaces []AgentInterface `json:"additionalInterfaces,omitempty"`
	// Provider is the organisation running the agent, if given.
	Provider *AgentProvider `json:"provider,omitempty"`
	// IconURL is an icon for the agent, if given.
	IconURL string `json:"iconUrl,omitempty"`
	// Version is the agent's own version (the x0x library's by default).
	Version string `json:"version"`
	// DocumentationURL is the agent's documentation, if given.
	DocumentationURL string `json:"documentationUrl,omitempty"`
	// Capabilities are the optional A2A features the agent supports.
	Capabilities AgentCapabilities `json:"capabilities"`
	// DefaultInputModes and DefaultOutputModes are the media types the
	// agent takes and gives ([AgentCardMediaType]: x0x carries bytes).
	DefaultInputModes  []string `json:"defaultInputModes"`
	DefaultOutputModes []string `json:"defaultOutputModes"`
	// Skills are what the agent can do: x0x's four services, then the
	// caller's (AgentCardOptions.Skills).
	Skills []AgentSkill `json:"skills"`
}

// AgentInterface is one transport and the URL it is served at.
type AgentInterface struct {
	URL       string `json:"url"`
	Transport string `json:"transport"`
}

// AgentProvider is the organisation that runs an agent.
type AgentProvider struct {
	Organization string `json:"organization"`
	URL          string `json:"url"`
}

// AgentCapabilities are the optional A2A features: x0x agents implement
// none of A2A's own (streaming over SSE, push notifications, task state
// history), and declare the x0x extension.
type AgentCapabilities struct {
	Streaming              bool                 `json:"streaming"`
	PushNotifications      bool                 `json:"pushNotifications"`
	StateTransitionHistory bool                 `json:"stateTransitionHistory"`
	Extensions             []AgentCardExtension `json:"extensions,omitempty"`
}

// AgentCardExtension is an A2A AgentExtension. The x0x one
// (AgentCardExtensionURI) has these params, all strings:
//
//	agentId    the agent's AgentID (64 hex digits)
//	machineId  its node's MachineID, which is the node's PeerID
//	address    the node's UDP address (its advertised one)
//	bootstrap  "<machineId>@<address>": what Builder.WithBootstrap,
//	           Agent.Connect and x0xd -bootstrap take to reach the node
type AgentCardExtension struct {
	URI         string         `json:"uri"`
	Description string         `json:"description,omitempty"`
	Required    bool           `json:"required"`
	Params      map[string]any `json:"params,omitempty"`
}

// AgentSkill is one thing an agent can do.
type AgentSkill struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Tags        []string `json:"tags"`
	Examples    []string `json:"examples,omitempty"`
	InputModes  []string `json:"inputModes,omitempty"`
	OutputModes []string `json:"outputModes,omitempty"`
}

// AgentCardOptions are what Agent.AgentCard cannot know. Every field is
// optional.
type AgentCardOptions struct {
	// Name defaults to "x0x agent <short agent ID>".
	Name string
	// Description defaults to a sentence naming the agent and x0x's
	// services.
	Description string
	// URL is the card's main endpoint; it defaults to the agent's x0x URL
	// (AgentURL). x0xd sets its local HTTP endpoint.
	URL string
	// Transport is the transport served at URL (A2ATransport by default).
	// x0xd sets "X0XD-HTTP": its local HTTP API.
	Transport string
	// Version defaults to the x0x library's Version.
	Version string
	// Provider, DocumentationURL and IconURL are copied when set.
	Provider         *AgentProvider
	DocumentationURL string
	IconURL          string
	// Skills are appended to x0x's own four.
	Skills []AgentSkill
}

// AgentURL returns the agent's x0x URL,
// "x0x://<machine id>@<host:port>/<agent id>": the node to connect to
// (pinned to its MachineID, as in a bootstrap address) and the agent it
// carries. The address is the node's advertised one (AdvertisedAddr).
func (a *Agent) AgentURL() string { return a.agentURL(a.AdvertisedAddr()) }

func (a *Agent) agentURL(addr string) string {
	u := url.URL{Scheme: "x0x", User: url.User(a.MachineID().String()), Host: addr, Path: "/" + a.AgentID().String()}
	return u.String()
}

// AgentCard returns the agent's A2A agent card, for an embedder to serve
// (as JSON, at /.well-known/agent.json or agent-card.json). It describes
// the agent's x0x services — signed publish/subscribe topics, direct
// messages, replicated task lists and private MLS groups — and carries its
// AgentID, MachineID and address in the x0x extension. It is a snapshot:
// the advertised address may change (AdvertisedAddr).
func (a *Agent) AgentCard(opts AgentCardOptions) AgentCard {
	id, machine, addr := a.AgentID(), a.MachineID(), a.AdvertisedAddr()
	self := a.agentURL(addr)
	card := AgentCard{
		ProtocolVersion:    A2AProtocolVersion,
		Name:               opts.Name,
		Description:        opts.Description,
		URL:                opts.URL,
		PreferredTransport: opts.Transport,
		Provider:           opts.Provider,
		IconURL:            opts.IconURL,
		Version:            opts.Version,
		DocumentationURL:   opts.DocumentationURL,
		Capabilities: AgentCapabilities{Extensions: []AgentCardExtension{{
			URI:         AgentCardExtensionURI,
			Description: "The agent's x0x identity and the address of the node carrying it.",
			Params: map[string]any{
				"agentId":   id.String(),
				"machineId": machine.String(),
				"address":   addr,
				"bootstrap": machine.String() + "@" + addr,
			},
		}}},
		DefaultInputModes:  bytesMode(),
		DefaultOutputModes: bytesMode(),
		Skills:             append(x0xSkills(), opts.Skills...),
	}
	if card.Name == "" {
		card.Name = "x0x agent " + id.Short()
	}
	if card.Description == "" {
		card.Description = "An agent on x0x, the post-quantum peer-to-peer network for AI agents (agent ID " + id.String() +
			"): it gossips on signed publish/subscribe topics, takes direct messages, shares replicated task lists " +
			"and joins private MLS groups, over QUIC with ML-KEM-768 key exchange and ML-DSA-65 signatures."
	}
	if card.URL == "" {
		card.URL = self
	}
	if card.PreferredTransport == "" {
		card.PreferredTransport = A2ATransport
	}
	if card.Version == "" {
		card.Version = Version
	}
	card.AdditionalInterfaces = []AgentInterface{{URL: card.URL, Transport: card.PreferredTransport}}
	if card.URL != self {
		card.AdditionalInterfaces = append(card.AdditionalInterfaces, AgentInterface{URL: self, Transport: A2ATransport})
	}
	return card
}

// x0xSkills are the services every x0x agent offers.
func x0xSkills() []AgentSkill {
	return []AgentSkill{{
		ID:   "x0x-pubsub",
		Name: "Publish/subscribe topics",
		Description: "Joins named gossip topics (HyParView membership, a Plumtree tree per topic) and publishes and " +
			"receives messages on them; every message is signed by its origin with ML-DSA-65 and verified by every receiver.",
		Tags:        []string{"x0x", "pubsub", "gossip", "topics"},
		Examples:    []string{"join the topic \"news\" and publish \"hello\""},
		InputModes:  bytesMode(),
		OutputModes: bytesMode(),
	}, {
		ID:          "x0x-direct",
		Name:        "Direct messages",
		Description: "Takes messages addressed to its AgentID over an authenticated post-quantum QUIC connection (direct, hole-punched or relayed).",
		Tags:        []string{"x0x", "direct-messages", "quic", "post-quantum"},
		Examples:    []string{"send the bytes \"hi\" to this agent's AgentID"},
		InputModes:  bytesMode(),
		OutputModes: bytesMode(),
	}, {
		ID:   "x0x-tasklists",
		Name: "Task lists",
		Description: "Shares replicated task lists (CRDTs: add, claim, complete, reorder) whose every operation is signed " +
			"by its author and checked by every member; concurrent claims resolve to the same winner everywhere.",
		Tags:        []string{"x0x", "tasks", "crdt", "coordination"},
		Examples:    []string{"join a task list by its ID and claim the task \"write the docs\""},
		InputModes:  bytesMode(),
		OutputModes: bytesMode(),
	}, {
		ID:   "x0x-groups",
		Name: "Private groups",
		Description: "Joins private MLS (RFC 9420) groups with a post-quantum suite: messages, task lists and presence " +
			"only the members read. It accepts invitations once it has published a key package.",
		Tags:        []string{"x0x", "groups", "mls", "encryption"},
		Examples:    []string{"invite this agent into a group and send it a message only members read"},
		InputModes:  bytesMode(),
		OutputModes: bytesMode(),
	}}
}

// bytesMode is a new media-type list holding AgentCardMediaType.
func bytesMode() []string { return []string{AgentCardMediaType} }
