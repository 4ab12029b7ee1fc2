package x0x

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Network names accepted by BootstrapPeers.
const (
	// NetworkLocal has no built-in bootstrap peers: the caller names them.
	// It is the default, so nothing contacts a public host unless asked to.
	NetworkLocal = "local"
	// NetworkTestnet is the public x0x test network run by Saorsa Labs:
	// the roadmap's seed nodes. x0x's wire protocol is this
	// implementation's own (not the Rust x0x's), so the seeds answer only
	// if they run this implementation.
	NetworkTestnet = "testnet"
)

// BootstrapPeers returns the built-in bootstrap addresses of a named
// network. The public testnet seeds are returned only for NetworkTestnet:
// tests, demos and benchmarks never ask for it. The caller owns the slice.
func BootstrapPeers(network string) ([]string, error) {
	switch strings.ToLower(network) {
	case "", NetworkLocal:
		return nil, nil
	case NetworkTestnet:
		// UDP 12000 on the six seed nodes of the roadmap (Milestone 3.1).
		return []string{
			"142.93.199.50:12000",   // saorsa-2, New York
			"147.182.234.192:12000", // saorsa-3, San Francisco
			"65.21.157.229:12000",   // saorsa-6, Helsinki
			"116.203.101.172:12000", // saorsa-7, Nuremberg
			"149.28.156.231:12000",  // saorsa-8, Singapore
			"45.77.176.184:12000",   // saorsa-9, Tokyo
		}, nil
	default:
		return nil, fmt.Errorf("x0x: unknown network %q (want %q or %q)", network, NetworkLocal, NetworkTestnet)
	}
}

// splitHostPort checks that addr is host:port with a numeric port.
func splitHostPort(addr string) (string, string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", "", fmt.Errorf("bad port %q", port)
	}
	return host, port, nil
}
