package transport

import "github.com/saorsa-labs/x0x-go/core/link"

// Node is the QUIC implementation of link.Network.
var _ link.Network = (*Node)(nil)
