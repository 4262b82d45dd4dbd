#!/usr/bin/env bash
# Captures real kernel traffic into a pcap: two network namespaces joined by a veth pair, ping,
# TCP over IPv4 and IPv6 and UDP with iperf3, recorded by
# tcpdump on the receiving end. Offloads are off on both ends so the capture holds MTU-sized
# segments with complete checksums, as they would cross a real wire. (VLAN-tagged traffic is not
# captured: kernels without CONFIG_VLAN_8021Q, like the CI machines', cannot make it.)
#
# usage: scripts/capture-kernel-traffic.sh OUT.pcap [BYTES_PER_TCP_FLOW]   (needs root)
set -euo pipefail

out=${1:?usage: $0 OUT.pcap [BYTES_PER_TCP_FLOW]}
bytes=${2:-200K}
for tool in ip tcpdump iperf3 ethtool ping; do
    command -v "$tool" >/dev/null || { echo "$0: $tool is missing (apt-get install iproute2 tcpdump iperf3 ethtool iputils-ping)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "$0: needs root (network namespaces)" >&2; exit 2; }

tag=$$
ns_a=spl-cap-a-$tag
ns_b=spl-cap-b-$tag
log=$(mktemp)
tcpdump_pid=""
cleanup() {
    [ -n "$tcpdump_pid" ] && kill "$tcpdump_pid" 2>/dev/null || true
    ip netns pids "$ns_b" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$ns_a" 2>/dev/null || true
    ip netns del "$ns_b" 2>/dev/null || true
    [ -n "${KEEP_LOG:-}" ] && cat "$log" >&2
    rm -f "$log"
}
trap cleanup EXIT

ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add va netns "$ns_a" type veth peer name vb netns "$ns_b"
for side in a b; do
    ns=spl-cap-$side-$tag
    dev=v$side
    n=$([ $side = a ] && echo 1 || echo 2)
    ip -n "$ns" link set lo up
    ip netns exec "$ns" ethtool -K "$dev" tx off tso off gso off gro off >/dev/null 2>&1 || true
    ip -n "$ns" addr add 10.77.0.$n/24 dev "$dev"
    ip -n "$ns" addr add fd77::$n/64 dev "$dev" nodad
    ip -n "$ns" link set "$dev" up
done

ip netns exec "$ns_b" tcpdump -i vb -n -s 0 -B 65536 --immediate-mode -U -w "$out" 2>"$log" &
tcpdump_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.05; done

ip netns exec "$ns_b" iperf3 -s -D
# iperf3 -D returns before the daemon listens; a client that comes too early is refused.
for _ in $(seq 100); do
    [ -n "$(ip netns exec "$ns_b" ss -Hltn 'sport = :5201')" ] && break
    sleep 0.05
done
ip netns exec "$ns_a" ping -c 2 -i 0.2 10.77.0.2 >/dev/null
ip netns exec "$ns_a" ping -c 2 -i 0.2 fd77::2 >/dev/null
ip netns exec "$ns_a" iperf3 -c 10.77.0.2 -n "$bytes" >/dev/null
ip netns exec "$ns_a" iperf3 -c fd77::2 -n "$bytes" >/dev/null
ip netns exec "$ns_a" iperf3 -c 10.77.0.2 -u -b 20M -l 1200 -n 60K >/dev/null
# tcpdump may lag behind the burst: wait until the file stops growing, then stop it.
last=-1
for _ in $(seq 100); do
    size=$(stat -c %s "$out")
    [ "$size" = "$last" ] && break
    last=$size
    sleep 0.3
done
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" || true
tcpdump_pid=""
grep -E "dropped by kernel" "$log" >&2 || true
echo "captured $(tcpdump -r "$out" -n 2>/dev/null | wc -l) packets into $out"
