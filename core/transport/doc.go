// Package transport is x0x's QUIC transport. *Node implements Network, the
// interface the overlay layers (membership, pubsub, discovery) run on.
//
// # Connections
//
// A node owns one UDP socket and one quic.Transport that both listens and
// dials, so inbound and outbound traffic share NAT mappings. TLS is 1.3
// only, with X25519MLKEM768 as the only key exchange (checked again after
// the handshake), ALPN "x0x/1", no resumption and no 0-RTT. The TLS
// certificate is a throwaway: identity is proven inside the session.
//
// # Authentication (channel binding)
//
// The dialler opens the control stream (the first bidirectional stream) and
// sends its proof: its ML-DSA-65 machine key, its role, both PeerIDs, and a
// signature (purpose wire.PurposePeerAuth) over
// ExportKeyingMaterial("EXPORTER-x0x-peer-auth-v1", nil, 32), the role and
// both PeerIDs, and its hello right behind it. The listener verifies the
// proof and answers with its own proof and hello.
// A proof from another TLS session, a reflected proof, a key that does not
// derive the claimed PeerID or an unexpected PeerID closes the connection;
// nothing else the peer sent is read before the proof verifies, and all of
// this must finish within Config.AuthTimeout.
//
// A hello holds the certificates of the sender's agents
// (identity.AgentCert, verified against the peer's MachineID and the clock)
// and the address it sees the peer at (from which ExternalAddressDiscovered
// events come).
//
// # Traffic
//
// Node implements link.Network. Each link.Class (membership, pubsub, bulk,
// direct, nat, relay) has one long-lived unidirectional stream per
// direction, opened on first use, carrying length-prefixed frames (type u8,
// length u32 big-endian, body) capped at Config.MaxFrameSize. Sub-protocols
// (link.Protocol) are named by the frame type, 0x40 + protocol, and each
// runs only on its own class's stream; the node hands each frame to its
// protocol's handler (Handle), so protocols that share a class need no tag
// of their own. Every connection has, per class, a bounded queue with
// three priorities (control before eager before lazy) drained by that
// class's writer, so one class never waits for another; QUIC stream urgency
// also favours membership over pubsub, direct and bulk. A full queue drops
// the frame, counts it and returns link.ErrQueueFull. Malformed or forbidden
// input closes only the offending connection and is counted.
//
// Direct messages between agents travel on the direct stream, after the
// agent announcements that precede them, and are delivered as
// EventDirectMessage only if the sending agent is certified on the sending
// machine and the recipient is local.
//
// # Duplicates, restarts, reconnection
//
// Each node draws a random instance nonce per Listen and sends it with its
// proof. Two connections between the same two running instances are
// duplicates: the one dialled by the lower PeerID wins (for two in the same
// direction, the one with the lower TLS exporter value), both ends decide
// alike, the winner takes over silently and the loser is retired: each side
// finishes writing what it had queued on it, reads what the peer sent on it
// to the end, and only then is it closed, so nothing is lost and no
// PeerDisconnected is emitted. A connection from a new instance of a peer
// (it restarted) replaces the old one with PeerDisconnected then
// PeerConnected. Peers marked with KeepConnected are redialled with jittered
// exponential backoff and a per-peer redial cooldown.
//
// # Services, relayed connections and hole punching
//
// Each side's hello also states the services it offers (Config.Services:
// ServiceCoordinator, ServiceRelay); peers learn roles only from this
// authenticated exchange (PeerInfo.Services). A node that offers
// ServiceRelay forwards, within Config.Relay's per-client limits, the QUIC
// packets of connections between two of its peers (ConnectRelayed): the
// ends run an ordinary x0x connection over a second quic.Transport whose
// packets travel on the relay stream class, so the relay sees only
// ciphertext and cannot impersonate either end (see relay.go). A direct
// connection always replaces a relayed one to the same peer through the
// dedup below, without loss. DialDirect dials a list of candidate
// addresses at once from the one socket, for coordinated hole punching
// (core/nat).
//
// # Ownership
//
// Every goroutine belongs to the Node and stops in Close. Payloads passed to
// Send and SendDirect must not be modified afterwards; frames and payloads
// delivered to handlers and events belong to the receiver.
package transport
