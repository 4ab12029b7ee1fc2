package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// The local API (cmd/internal/localapi) serves the agent to programs on
// this machine; its bearer token guards every route but /health. By
// default it listens on loopback only: a non-loopback address needs
// -http-allow-remote and TLS, so that the token never crosses a network
// in clear text.

// checkHTTPAddr refuses a -http address that is not loopback unless
// allowRemote and useTLS are both set. A loopback address is an IP
// literal in 127.0.0.0/8 or ::1, or the name "localhost"; any other name,
// and an empty host (every interface), counts as remote.
func checkHTTPAddr(addr string, allowRemote, useTLS bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-http %q: %w", addr, err)
	}
	if isLoopbackHost(host) {
		return nil
	}
	if !allowRemote {
		return fmt.Errorf("-http %s is not a loopback address, so the local API would be reachable from other machines: "+
			"use 127.0.0.1 or [::1], or give -http-allow-remote with -http-tls-cert and -http-tls-key", addr)
	}
	if !useTLS {
		return fmt.Errorf("-http %s with -http-allow-remote needs TLS, so that the bearer token does not cross the network "+
			"in clear text: give -http-tls-cert FILE and -http-tls-key FILE", addr)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// checkBound re-checks the address a listener got (a name like
// "localhost" resolves when listening).
func checkBound(ln net.Listener, allowRemote bool) error {
	if allowRemote {
		return nil
	}
	ap, err := netip.ParseAddrPort(ln.Addr().String())
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		return fmt.Errorf("-http bound %s, which is not a loopback address; give -http-allow-remote with TLS to allow it", ln.Addr())
	}
	return nil
}

// tlsConfig loads the local API's certificate: TLS 1.3 only. Nil when TLS
// is not configured.
func tlsConfig(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("-http-tls-cert %s / -http-tls-key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}, nil
}
