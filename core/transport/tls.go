package transport

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"slices"
	"sync/atomic"
	"time"
)

// ALPN is the application protocol negotiated by every x0x connection.
const ALPN = "x0x/1"

// exporterLabel is the TLS exporter label the channel-binding proof signs.
const exporterLabel = "EXPORTER-x0x-peer-auth-v1"

// exporterLen is the length of the exported keying material.
const exporterLen = 32

// pqCurve is the only key exchange x0x accepts.
const pqCurve = tls.X25519MLKEM768

// tlsConfigs builds the server and client TLS configurations of a node. The
// certificate is a throwaway self-signed Ed25519 certificate: TLS provides
// the post-quantum encrypted channel, and the node's identity is proven
// inside it by the ML-DSA channel-binding proof (auth.go). refused counts
// ClientHellos refused for lacking the post-quantum group.
func tlsConfigs(rnd io.Reader, now time.Time, refused *atomic.Uint64) (server, client *tls.Config, err error) {
	cert, err := selfSignedCert(rnd, now)
	if err != nil {
		return nil, nil, err
	}
	server = &tls.Config{
		MinVersion:             tls.VersionTLS13,
		MaxVersion:             tls.VersionTLS13,
		CurvePreferences:       []tls.CurveID{pqCurve},
		NextProtos:             []string{ALPN},
		Certificates:           []tls.Certificate{cert},
		ClientAuth:             tls.NoClientCert,
		SessionTicketsDisabled: true, // no resumption, hence no 0-RTT
	}
	// Refuse, and count, a ClientHello that cannot do the hybrid exchange.
	// crypto/tls would refuse it anyway; checking here makes it visible.
	base := server.Clone()
	server.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if !slices.Contains(hello.SupportedCurves, pqCurve) {
			if refused != nil {
				refused.Add(1)
			}
			return nil, fmt.Errorf("%w: client does not offer X25519MLKEM768", ErrNotPostQuantum)
		}
		return base, nil
	}
	client = &tls.Config{
		MinVersion:       tls.VersionTLS13,
		MaxVersion:       tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{pqCurve},
		NextProtos:       []string{ALPN},
		// The TLS certificate is not the identity: the peer proves its
		// ML-DSA-65 machine key over the TLS exporter right after the
		// handshake, and nothing is accepted before that proof verifies.
		InsecureSkipVerify: true,
		ServerName:         "x0x",
	}
	return server, client, nil
}

// selfSignedCert creates the per-node throwaway certificate.
func selfSignedCert(rnd io.Reader, now time.Time) (tls.Certificate, error) {
	var seed [ed25519.SeedSize]byte
	if _, err := io.ReadFull(rnd, seed[:]); err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: reading TLS key seed: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(seed[:])
	var serial [16]byte
	if _, err := io.ReadFull(rnd, serial[:]); err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: reading certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(serial[:]),
		Subject:      pkix.Name{CommonName: "x0x"},
		DNSNames:     []string{"x0x"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rnd, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: creating TLS certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}

// checkTLS asserts what DESIGN.md section 3 requires of a finished
// handshake: TLS 1.3, the hybrid post-quantum group, our ALPN, no 0-RTT.
func checkTLS(cs tls.ConnectionState, used0RTT bool) error {
	switch {
	case cs.Version != tls.VersionTLS13:
		return fmt.Errorf("%w: version %#x", ErrNotPostQuantum, cs.Version)
	case cs.CurveID != pqCurve:
		return fmt.Errorf("%w: negotiated group %v", ErrNotPostQuantum, cs.CurveID)
	case cs.NegotiatedProtocol != ALPN:
		return fmt.Errorf("%w: ALPN %q", ErrNotPostQuantum, cs.NegotiatedProtocol)
	case used0RTT || cs.DidResume:
		return fmt.Errorf("%w: resumed or 0-RTT session", ErrNotPostQuantum)
	}
	return nil
}

// exportKey returns the TLS exporter value the channel-binding proof signs.
func exportKey(cs tls.ConnectionState) ([]byte, error) {
	ekm, err := cs.ExportKeyingMaterial(exporterLabel, nil, exporterLen)
	if err != nil {
		return nil, fmt.Errorf("%w: TLS exporter: %v", ErrAuthFailed, err)
	}
	return ekm, nil
}
