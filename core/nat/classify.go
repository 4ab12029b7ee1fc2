// Package nat gets x0x nodes connected across NATs: it learns the node's
// external addresses and NAT mapping behaviour from what its peers report,
// coordinates hole punches through a node connected to both sides, and
// falls back to a relay when punching fails, then keeps trying to upgrade
// the relayed connection to a direct one.
//
// # Address discovery
//
// Every authenticated direct connection carries, in its hello, the address
// the peer sees this node at (transport.PeerInfo.Observed). Classify
// combines those reports, one vote per observer IP (so one host with many
// identities counts once), into a Type: TypeNone when observers agree on
// one of the node's own interface addresses, TypeEndpointIndependent
// (a cone NAT: one external address whatever the destination) when two or
// more observers agree on another address, TypeEndpointDependent (a
// symmetric NAT: a new external port per destination) when observers see
// the same external IP at different ports, and TypeUnknown until two
// observers at different IPs have reported. The NAT types are judged on
// the node's public-facing side, one address family at a time: a peer on
// the node's own LAN (which sees a private or local address) or on the
// other address family does not hide a symmetric NAT. A Service emits
// transport.EventNatTypeDetected whenever the result changes.
//
// # Coordinated hole punching
//
// To reach B, A sends a punch request to a coordinator C (a peer that
// offers transport.ServiceCoordinator and is connected to both). C passes
// an offer to B with A's candidate addresses: the address C observes A at
// (a fact of an authenticated connection) and the private-range interface
// addresses A states (only LAN addresses: a peer's bare assertion never
// makes another node send to a public address). B answers through C with
// its own candidates. A has now measured the round trip A-C-B-C-A; as in
// libp2p's DCUtR it sends a sync through C, waits half that round trip
// (the time the sync needs to reach B) and dials B's candidates, while B
// dials A's as the sync arrives: both send from their one QUIC socket at
// about the same moment, so each side's first packets leave its NAT
// before the other's arrive, and cone NATs on both sides let them
// through. Both dials may succeed; the transport's dedup keeps one.
//
// # Relay fallback and upgrade
//
// When punching fails (or cannot work: both sides report an
// endpoint-dependent NAT), A connects to B through a coordinator that also
// offers transport.ServiceRelay (transport.Node.ConnectRelayed): the same
// end-to-end QUIC session with the ML-DSA binding, its packets forwarded
// by the relay. The Service then retries a hole punch on a backoff; when
// one succeeds the direct connection replaces the relayed one without
// loss (the transport's dedup prefers direct paths).
//
// # Hostile peers
//
// A coordinator acts only for its own connected peers, rate-limits
// requests per requester, keeps a bounded table of pending punches and
// forwards an answer only from the peer that was asked. A node acts on an
// offer only from a coordinator it is directly connected to, rate-limits
// offers per coordinator, dials at most MaxCandidates addresses per offer
// for at most PunchTimeout, and accepts as public addresses only the one
// the coordinator observed. Messages are bounded before they are decoded.
package nat

import (
	"net/netip"
	"slices"

	"github.com/saorsa-labs/x0x-go/core/identity"
)

// Type is a NAT mapping behaviour, as far as the node's peers reveal it.
type Type uint8

// NAT types.
const (
	// TypeUnknown: fewer than two observers at different IPs have reported.
	TypeUnknown Type = iota
	// TypeNone: peers see the node at one of its own interface addresses.
	TypeNone
	// TypeEndpointIndependent: one external address towards every peer (a
	// full-cone, address-restricted or port-restricted NAT); hole punching
	// works with any peer that is not behind a symmetric NAT.
	TypeEndpointIndependent
	// TypeEndpointDependent: a new external port per destination (a
	// symmetric NAT); hole punching works only towards permissive NATs.
	TypeEndpointDependent
)

// String names the type as it appears in events and logs.
func (t Type) String() string {
	switch t {
	case TypeNone:
		return "none"
	case TypeEndpointIndependent:
		return "endpoint-independent"
	case TypeEndpointDependent:
		return "endpoint-dependent"
	}
	return "unknown"
}

// Observation is one peer's report of the address it sees this node at.
type Observation struct {
	Observer     identity.PeerID
	ObserverAddr netip.Addr     // the observer's IP as this node sees it
	Observed     netip.AddrPort // this node's address as the observer sees it
}

// Result is what Classify concludes.
type Result struct {
	Type Type
	// External is the address most observers agree on (invalid if none
	// agree); for TypeEndpointDependent it is the address the latest
	// observer reported.
	External netip.AddrPort
	// Observers is the number of distinct observer IPs counted.
	Observers int
}

// Classify combines observations (in the order they were made) into a
// NAT type. local lists the node's own interface addresses. Each observer
// IP votes once, with its latest observation.
//
// The mapping behaviour is judged first on the node's public-facing side:
// the observers that see it at an address that is neither one of its own
// (local) nor a LAN address (see isLAN), taken one address family at a
// time, the family with more such observers first (IPv4 on a tie: NATs
// are mostly an IPv4 matter). In a family, two or more observers agreeing
// on an address make it TypeEndpointIndependent; two or more that see the
// same IP and no two the same port make it TypeEndpointDependent. So a
// peer on the node's own LAN (which sees its private address), or one
// reached over the other address family, neither hides a symmetric NAT
// nor outvotes a cone NAT's external address. Only when neither family
// decides do all observations vote: two or more agreeing on one of the
// node's own addresses make it TypeNone (on the internet, or on a network
// without a NAT), on another address TypeEndpointIndependent.
func Classify(obs []Observation, local []netip.AddrPort) Result {
	latest := make(map[netip.Addr]netip.AddrPort)
	var order []netip.Addr
	for _, o := range obs {
		if !o.Observed.IsValid() || !o.ObserverAddr.IsValid() {
			continue
		}
		ip := o.ObserverAddr.Unmap()
		if _, seen := latest[ip]; !seen {
			order = append(order, ip)
		}
		latest[ip] = netip.AddrPortFrom(o.Observed.Addr().Unmap(), o.Observed.Port())
	}
	r := Result{Observers: len(latest)}
	// The public-facing observers, by the family of the address they see.
	var v4, v6 []netip.Addr
	for _, ip := range order {
		a := latest[ip]
		switch {
		case slices.Contains(local, a) || isLAN(a.Addr()):
		case a.Addr().Is4():
			v4 = append(v4, ip)
		default:
			v6 = append(v6, ip)
		}
	}
	families := [][]netip.Addr{v4, v6}
	if len(v6) > len(v4) {
		families = [][]netip.Addr{v6, v4}
	}
	for _, fam := range families {
		if best, n := vote(fam, latest); n >= 2 {
			r.Type, r.External = TypeEndpointIndependent, best
			return r
		}
		if sameIP(fam, latest) {
			r.Type, r.External = TypeEndpointDependent, latest[fam[len(fam)-1]]
			return r
		}
	}
	if best, n := vote(order, latest); n >= 2 {
		r.External = best
		r.Type = TypeEndpointIndependent
		if slices.Contains(local, best) {
			r.Type = TypeNone
		}
	}
	return r
}

// vote returns the address most of the observers ips see (the first to
// reach the highest count) and how many see it.
func vote(ips []netip.Addr, latest map[netip.Addr]netip.AddrPort) (netip.AddrPort, int) {
	votes := make(map[netip.AddrPort]int)
	best, bestVotes := netip.AddrPort{}, 0
	for _, ip := range ips {
		a := latest[ip]
		votes[a]++
		if votes[a] > bestVotes {
			best, bestVotes = a, votes[a]
		}
	}
	return best, bestVotes
}

// sameIP reports whether two or more observers are in ips and all see the
// same IP.
func sameIP(ips []netip.Addr, latest map[netip.Addr]netip.AddrPort) bool {
	if len(ips) < 2 {
		return false
	}
	for _, ip := range ips[1:] {
		if latest[ip].Addr() != latest[ips[0]].Addr() {
			return false
		}
	}
	return true
}

// isLAN reports whether addr is in a private, shared (carrier-grade NAT),
// loopback or unique-local range: an address a peer may state for itself
// without it being observed.
func isLAN(addr netip.Addr) bool {
	addr = addr.Unmap()
	if addr.IsPrivate() || addr.IsLoopback() {
		return true
	}
	return cgnat.Contains(addr)
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")
