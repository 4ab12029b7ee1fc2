package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/cmd/internal/localapi"
)

// writeTestCert writes a self-signed ECDSA certificate for 127.0.0.1 and
// its key into a temporary directory.
func writeTestCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "x0xd test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// With -http-allow-remote and TLS the API is served over TLS 1.3 only.
// (The test binds 127.0.0.1: nothing in the tests binds a non-loopback
// address; TestCheckHTTPAddr covers the rule.)
func TestDaemonServesTLS(t *testing.T) {
	certFile, keyFile := writeTestCert(t)
	o := testOptions(t)
	o.allowRemote, o.tlsCert, o.tlsKey = true, certFile, keyFile
	d := startDaemon(t, o)
	addr := field(d.ready, "https")
	if addr == "" || field(d.ready, "http") != "" {
		t.Fatalf("ready line %q: want https=ADDR", d.ready)
	}
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	client := func(maxVersion uint16) *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MaxVersion: maxVersion}}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}

	resp, body := get(t, client(0), "https://"+addr+"/health", "")
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 {
		t.Fatalf("GET /health over TLS: %s, %+v", resp.Status, resp.TLS)
	}
	var h localapi.Health
	if err := json.Unmarshal([]byte(body), &h); err != nil || h.Status != "ok" {
		t.Fatalf("/health %s: %v", body, err)
	}
	token := d.token(t)
	if resp, _ := get(t, client(0), "https://"+addr+"/metrics", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without the token over TLS: %s", resp.Status)
	}
	if metrics := getOK(t, client(0), "https://"+addr+"/metrics", token); !strings.Contains(metrics, "x0x_uptime_seconds") {
		t.Errorf("/metrics over TLS:\n%s", metrics)
	}
	// The agent card names the https URL.
	var card struct{ URL string }
	if err := json.Unmarshal([]byte(getOK(t, client(0), "https://"+addr+"/.well-known/agent-card.json", token)), &card); err != nil ||
		card.URL != "https://"+addr+"/" {
		t.Errorf("card URL %q, %v", card.URL, err)
	}

	// TLS 1.2 is refused; so is plain HTTP.
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/health", nil)
	if resp, err := client(tls.VersionTLS12).Do(req); err == nil {
		resp.Body.Close()
		t.Error("a TLS 1.2 client was served")
	}
	if resp, _ := get(t, nil, "http://"+addr+"/health", ""); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain HTTP to the TLS port: %s", resp.Status)
	}
	d.stop(t)

	// A certificate that does not load stops the daemon before it starts.
	o = testOptions(t)
	o.tlsCert, o.tlsKey = certFile, certFile
	if err := serve(t.Context(), o, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "-http-tls-cert") {
		t.Errorf("bad key: %v", err)
	}
}
