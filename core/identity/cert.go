package identity

import (
	"errors"
	"fmt"
	"time"

	"github.com/saorsa-labs/x0x-go/core/wire"
)

// DefaultCertValidity is how long a new agent certificate is valid.
const DefaultCertValidity = 365 * 24 * time.Hour

// Errors returned by AgentCert.Verify. Each is wrapped with detail.
var (
	ErrCertExpired      = errors.New("identity: agent certificate expired or not yet valid")
	ErrCertWrongMachine = errors.New("identity: agent certificate names another machine")
	ErrCertKeyMismatch  = errors.New("identity: agent ID does not match the certificate key")
	ErrCertBadSignature = errors.New("identity: agent certificate signature does not verify")
	ErrCertMalformed    = errors.New("identity: malformed agent certificate")
)

// AgentCert binds an agent (its public key) to a machine for a period. It is
// signed by the agent key, so only the agent can place itself on a machine.
type AgentCert struct {
	AgentKey  []byte    `cbor:"1,keyasint"`
	MachineID MachineID `cbor:"2,keyasint"`
	NotBefore int64     `cbor:"3,keyasint"` // Unix seconds
	NotAfter  int64     `cbor:"4,keyasint"` // Unix seconds
	Signature []byte    `cbor:"5,keyasint"`
}

type certBody struct {
	AgentKey  []byte    `cbor:"1,keyasint"`
	MachineID MachineID `cbor:"2,keyasint"`
	NotBefore int64     `cbor:"3,keyasint"`
	NotAfter  int64     `cbor:"4,keyasint"`
}

func (c *AgentCert) signedBytes() ([]byte, error) {
	return wire.Marshal(certBody{c.AgentKey, c.MachineID, c.NotBefore, c.NotAfter})
}

// IssueAgentCert signs a certificate placing agent on machine from now for validity.
func IssueAgentCert(agent *KeyPair, machine MachineID, now time.Time, validity time.Duration) (*AgentCert, error) {
	c := &AgentCert{
		AgentKey:  agent.Public().Bytes(),
		MachineID: machine,
		NotBefore: now.Add(-5 * time.Minute).Unix(), // tolerate modest clock skew
		NotAfter:  now.Add(validity).Unix(),
	}
	msg, err := c.signedBytes()
	if err != nil {
		return nil, err
	}
	c.Signature = agent.Sign(wire.PurposeAgentCert, msg)
	return c, nil
}

// AgentID returns the ID derived from the certificate's agent key.
func (c *AgentCert) AgentID() AgentID { return DeriveID(c.AgentKey) }

// Verify checks the signature, the validity period at now, and that the
// certificate names machine. It returns the agent's public key on success;
// errors wrap one of the ErrCert* values.
func (c *AgentCert) Verify(machine MachineID, now time.Time) (*PublicKey, error) {
	return c.VerifyCached(nil, machine, now)
}

// VerifyCached is Verify with the key parse and the signature check going
// through cache (nil: no cache); the machine and the validity period are
// checked every time.
func (c *AgentCert) VerifyCached(cache *VerifyCache, machine MachineID, now time.Time) (*PublicKey, error) {
	parse, verify := ParsePublicKey, (*PublicKey).Verify
	if cache != nil {
		parse, verify = cache.ParsePublicKey, cache.Verify
	}
	pub, err := parse(c.AgentKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCertMalformed, err)
	}
	msg, err := c.signedBytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCertMalformed, err)
	}
	if verify(pub, wire.PurposeAgentCert, msg, c.Signature) != nil {
		return nil, ErrCertBadSignature
	}
	if c.MachineID != machine {
		return nil, fmt.Errorf("%w: certificate names %s, peer is %s", ErrCertWrongMachine, c.MachineID.Short(), machine.Short())
	}
	t := now.Unix()
	if t < c.NotBefore || t > c.NotAfter {
		return nil, fmt.Errorf("%w: valid %s to %s", ErrCertExpired,
			time.Unix(c.NotBefore, 0).UTC().Format(time.RFC3339), time.Unix(c.NotAfter, 0).UTC().Format(time.RFC3339))
	}
	return pub, nil
}

// VerifyAgent is Verify plus a check that the certificate's key derives the
// expected agent ID (detects key substitution).
func (c *AgentCert) VerifyAgent(agent AgentID, machine MachineID, now time.Time) (*PublicKey, error) {
	if c.AgentID() != agent {
		return nil, fmt.Errorf("%w: expected %s, key gives %s", ErrCertKeyMismatch, agent.Short(), c.AgentID().Short())
	}
	return c.Verify(machine, now)
}

// Marshal encodes the certificate as CBOR.
func (c *AgentCert) Marshal() ([]byte, error) { return wire.Marshal(c) }

// UnmarshalAgentCert decodes a CBOR certificate (structure only; call Verify).
func UnmarshalAgentCert(b []byte) (*AgentCert, error) {
	var c AgentCert
	if err := wire.Unmarshal(b, &c, "agent certificate"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCertMalformed, err)
	}
	return &c, nil
}

// VerifyPeerKey checks that pub derives the expected ID. It is the check a
// dialler makes against key substitution.
func VerifyPeerKey(expected ID, pub *PublicKey) error {
	if pub.ID() != expected {
		return fmt.Errorf("%w: expected %s, key gives %s", ErrCertKeyMismatch, expected.Short(), pub.ID().Short())
	}
	return nil
}
