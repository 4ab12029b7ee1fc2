#!/usr/bin/env bash
# The NAT lab: network namespaces joined by veth pairs and bridges, NAT
# routers built with nftables, and build/x0x-natlab driving agents through
# every pair of NAT types (see cmd/x0x-natlab). Needs root (ip netns); installs
# nftables with apt-get when it is missing. Nothing here touches the host's
# own interfaces: every link is between two lab namespaces, the public
# segment is 198.18.0.0/24 (RFC 2544 benchmarking space) on a bridge inside
# a lab namespace, and no namespace has a route out. The lab is removed on
# exit, also when a check fails, and a run first removes any leftovers.
#
#   public segment 198.18.0.0/24 (bridge in x0xl-sw)
#     s1 .1, s2 .2      x0xd -role coordinator,relay (two observers)
#     none-a .3, none-b .4            agents with public addresses
#     full-a/b   .11/.12  full cone: endpoint-independent mapping and filtering
#     addr-a/b   .13/.14  address-restricted cone
#     port-a/b   .15/.16  port-restricted cone (Linux's default masquerade)
#     sym-a/b    .17/.18  symmetric (masquerade random: a port per destination)
#     double-a/b .19/.20  carrier-grade NAT (100.64.x.0/24 inside) with a
#                         port-restricted home router behind it
#     hair       .21      full cone with hairpinning, two hosts hair-a/b
#   each NAT host is 10.0.N.2 behind its router's 10.0.N.1.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "natlab: needs root for network namespaces" >&2
  exit 1
fi
missing=""
command -v nft >/dev/null 2>&1 || missing="$missing nftables"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
if [ -n "$missing" ]; then
  echo "natlab: installing$missing" >&2
  apt-get update -qq >/dev/null
  # shellcheck disable=SC2086 # $missing: a list of packages
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

P=x0xl
tmp=${TMPDIR:-/tmp}
cleanup() {
  local rc=$?
  for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  if [ "$rc" != 0 ]; then
    for f in "$tmp"/x0x-natlab-"$P"-*.log; do
      [ -f "$f" ] && { echo "== $f (last lines)" >&2; tail -n 20 "$f" >&2; }
    done
  fi
  rm -rf "$tmp"/x0x-natlab-* 2>/dev/null || true
}
trap cleanup EXIT
cleanup

ns() { ip netns add "$P-$1"; ip -n "$P-$1" link set lo up; }
nsx() { local n=$1; shift; ip netns exec "$P-$n" "$@"; }

# link A IFA ADDR_A B IFB ADDR_B: a veth pair between two namespaces
# (an empty address leaves that end unnumbered).
link() {
  ip -n "$P-$1" link add "$2" type veth peer name "$5" netns "$P-$4"
  ip -n "$P-$1" link set "$2" up
  ip -n "$P-$4" link set "$5" up
  [ -z "$3" ] || ip -n "$P-$1" addr add "$3" dev "$2"
  [ -z "$6" ] || ip -n "$P-$4" addr add "$6" dev "$5"
}

# The public switch.
ns sw
ip -n "$P-sw" link add br0 type bridge
ip -n "$P-sw" link set br0 up
port=0
public() { # public NS IF ADDR: attach NS's IF to the switch with ADDR/24
  port=$((port + 1))
  link "$1" "$2" "$3/24" sw "p$port" ""
  ip -n "$P-sw" link set "p$port" master br0
}

for s in s1:198.18.0.1 s2:198.18.0.2 none-a:198.18.0.3 none-b:198.18.0.4; do
  ns "${s%%:*}"; public "${s%%:*}" eth0 "${s#*:}"
done

# router NAME WANIP LANNET: a router namespace with forwarding on, a WAN
# link to the switch and a LAN bridge "lan" at LANNET.1/24.
router() {
  ns "$1"
  nsx "$1" sysctl -qw net.ipv4.ip_forward=1
  [ -z "$2" ] || public "$1" wan "$2"
  ip -n "$P-$1" link add lan type bridge
  ip -n "$P-$1" link set lan up
  ip -n "$P-$1" addr add "$3.1/24" dev lan
}
# host NAME ROUTER ADDR GW: a host on ROUTER's LAN bridge.
host() {
  ns "$1"
  link "$1" eth0 "$3/24" "$2" "h-$1" ""
  ip -n "$P-$2" link set "h-$1" master lan
  ip -n "$P-$1" route add default via "$4"
}

# nat ROUTER KIND WANIF: the NAT rules of one router.
nat() {
  local r=$1 kind=$2 wan=$3
  local masq="masquerade"
  [ "$kind" = sym ] && masq="masquerade random"
  nsx "$r" nft -f - <<EOF
table ip lab {
  # Like every home router, drop unsolicited traffic to the router itself:
  # a dropped packet leaves no conntrack entry, so a peer's early punch
  # packet does not take the port the host's own mapping needs.
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "$wan" ct state != established,related drop
  }
  # Only the LAN goes out; only replies (conntrack) and the cone's
  # deliberate openings (DNAT below) come in.
  chain forward {
    type filter hook forward priority filter; policy drop;
    iifname "lan" accept
    ct state established,related accept
    ct status dnat accept
  }
  chain postrouting {
    type nat hook postrouting priority srcnat;
    oifname "$wan" $masq
  }
}
EOF
  case "$kind" in
  full | hair)
    # Endpoint-independent filtering: once a LAN host has sent from a port,
    # anyone may send to that port (the mapping keeps the port: one
    # mapping per host port, remembered 2 minutes).
    local wanip
    wanip=$(ip -n "$P-$r" -4 -o addr show dev "$wan" | awk '{print $4}' | cut -d/ -f1)
    nsx "$r" nft -f - <<EOF
table ip cone {
  map open { type inet_service : ipv4_addr; flags timeout; timeout 120s; }
  chain track {
    type filter hook forward priority filter - 10;
    iifname "lan" meta l4proto udp update @open { udp sport : ip saddr }
  }
  chain prerouting {
    type nat hook prerouting priority dstnat;
    iifname "$wan" meta l4proto udp dnat to udp dport map @open
    # Hairpinning: a LAN host sending to the public address of another.
    iifname "lan" ip daddr $wanip meta l4proto udp dnat to udp dport map @open
  }
  chain postrouting {
    type nat hook postrouting priority srcnat;
    iifname "lan" oifname "lan" ct status dnat masquerade
  }
}
EOF
    ;;
  addr)
    # Address-restricted: a remote IP the host has sent to may send to the
    # host's port from any of its ports.
    nsx "$r" nft -f - <<EOF
table ip cone {
  map contacted { type ipv4_addr . inet_service : ipv4_addr; flags timeout; timeout 120s; }
  chain track {
    type filter hook forward priority filter - 10;
    iifname "lan" meta l4proto udp update @contacted { ip daddr . udp sport : ip saddr }
  }
  chain prerouting {
    type nat hook prerouting priority dstnat;
    iifname "$wan" meta l4proto udp dnat to ip saddr . udp dport map @contacted
  }
}
EOF
    ;;
  esac
}

# Single NATs: full, addr, port, sym; a and b each behind their own router.
n=10
hostlist="none-a:none:$P-none-a,none-b:none:$P-none-b"
for kind in full addr port sym; do
  for side in a b; do
    n=$((n + 1))
    router "r-$kind-$side" "198.18.0.$n" "10.0.$n"
    nat "r-$kind-$side" "$kind" wan
    host "$kind-$side" "r-$kind-$side" "10.0.$n.2" "10.0.$n.1"
    hostlist="$hostlist,$kind-$side:$kind:$P-$kind-$side"
  done
done
# Double NAT: a carrier-grade NAT with a home router behind it, per side.
for side in a b; do
  n=$((n + 1))
  router "cg-$side" "198.18.0.$n" "100.64.$n"
  nat "cg-$side" port wan
  router "r-double-$side" "" "10.0.$n"
  link "r-double-$side" wan "100.64.$n.2/24" "cg-$side" "h-home" ""
  ip -n "$P-cg-$side" link set h-home master lan
  ip -n "$P-r-double-$side" route add default via "100.64.$n.1"
  nat "r-double-$side" port wan
  host "double-$side" "r-double-$side" "10.0.$n.2" "10.0.$n.1"
  hostlist="$hostlist,double-$side:double:$P-double-$side"
done
# Hairpinning router with two hosts on one LAN.
n=$((n + 1))
router r-hair "198.18.0.$n" "10.0.$n"
nat r-hair hair wan
host hair-a r-hair "10.0.$n.2" "10.0.$n.1"
host hair-b r-hair "10.0.$n.3" "10.0.$n.1"
hostlist="$hostlist,hair-a:full:$P-hair-a,hair-b:full:$P-hair-b"

# Isolation, checked: no lab link ends in the host's namespace, and no lab
# namespace has a route off the lab (a route lookup sends nothing).
# (The lab's own link names: p<N> on the switch, h-<host> on routers, and
# "wan"/"lan" in routers; eth0 is also the host's usual name, so it is
# not looked for.)
if ip -o link show | awk -F': ' '{print $2}' | grep -qE '^(p[0-9]+|h-[a-z0-9-]+|wan|lan)(@|$)'; then
  ip -o link show >&2
  echo "natlab: FAIL: a lab link is in the host's namespace" >&2
  exit 1
fi
for ns in $(ip netns list | awk '{print $1}' | grep "^$P-"); do
  for dst in 8.8.8.8 192.0.2.1; do
    if ip -n "$ns" route get "$dst" >/dev/null 2>&1 && ! ip -n "$ns" route get "$dst" 2>/dev/null | grep -qE 'via (198\.18\.|10\.|100\.64\.)'; then
      echo "natlab: FAIL: $ns routes $dst off the lab: $(ip -n "$ns" route get "$dst" 2>&1)" >&2
      exit 1
    fi
  done
done

echo "natlab: $(ip netns list | grep -c "^$P-") namespaces up" >&2
# The upgrade case: full-a's router drops traffic with full-b's router
# (198.18.0.12) until the driver lifts the block.
./build/x0x-natlab drive -x0xd ./build/x0xd \
  -servers "$P-s1=198.18.0.1:12000,$P-s2=198.18.0.2:12000" \
  -hosts "$hostlist" -upgrade "full-a,full-b,$P-r-full-a,198.18.0.12" "$@"
