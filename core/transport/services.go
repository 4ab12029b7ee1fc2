package transport

import (
	"fmt"
	"strings"
)

// Services is the set of roles a node offers its peers. Each node states
// its own in the hello of every connection; peers learn them only from
// that authenticated exchange.
type Services uint8

// Roles a node can offer.
const (
	// ServiceCoordinator passes hole-punch requests between two of its
	// peers (core/nat).
	ServiceCoordinator Services = 1 << iota
	// ServiceRelay forwards the packets of relayed connections between two
	// of its peers, within Config.Relay's limits.
	ServiceRelay

	allServices = ServiceCoordinator | ServiceRelay
)

// Has reports whether s includes every service in x.
func (s Services) Has(x Services) bool { return s&x == x }

// String lists the services, comma-separated ("" for none).
func (s Services) String() string {
	var parts []string
	if s.Has(ServiceCoordinator) {
		parts = append(parts, "coordinator")
	}
	if s.Has(ServiceRelay) {
		parts = append(parts, "relay")
	}
	if rest := s &^ allServices; rest != 0 {
		parts = append(parts, fmt.Sprintf("0x%02x", uint8(rest)))
	}
	return strings.Join(parts, ",")
}

// ParseServices parses a comma-separated list of "coordinator" and
// "relay" (spaces and empty items are ignored).
func ParseServices(list string) (Services, error) {
	var s Services
	for _, p := range strings.Split(list, ",") {
		switch strings.TrimSpace(p) {
		case "":
		case "coordinator":
			s |= ServiceCoordinator
		case "relay":
			s |= ServiceRelay
		default:
			return 0, fmt.Errorf("%w: unknown service %q (want coordinator or relay)", ErrBadConfig, strings.TrimSpace(p))
		}
	}
	return s, nil
}
