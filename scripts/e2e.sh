#!/usr/bin/env bash
# The driver domain end to end on this machine, with real kernel TCP (iperf3) as the traffic:
#
#   ns spl-wire (the remote host)      ns spl-dd (the driver domain)       ns spl-g1, spl-g2
#   (each name ends in -PID of the run)
#   veth-wire 10.77.0.1  <-- veth -->  veth-dd: splitnet-netback (AF_XDP)  eth0 (TAP): 10.77.0.11
#                                      control socket /run/splitnet-e2e-PID.sock ...   10.77.0.12
#                                                                          splitnet-netfront each
#
# and then the same topology with a Linux bridge in spl-dd instead (the guests' eth0 are veths
# enslaved to it), with GRO off and on, for comparison. The sender never segments in hardware
# (TSO/GSO off on the wire side) so frames on the wire are MTU-sized, as from a real NIC.
#
# Modes:
#   --mode demo   (default) pings, iperf3 in each direction on each path, one table; --json FILE
#   --mode test   the integration test: pings every way, short iperf3 runs that must move data,
#                 a front end killed and restarted while traffic flows, then the same with the
#                 guests copying (--copy frontend); exits non-zero on failure
# Options: --bin DIR (where splitnet-netback/-netfront are), --seconds N (per iperf3 run),
#          --json FILE, --netback-args "...", --keep (leave the namespaces for inspection).
set -uo pipefail

mode=demo
bin=""
secs=4
json=""
nb_args=""
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
    --mode) mode=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --seconds) secs=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --netback-args) nb_args=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "e2e.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

die() { echo "e2e.sh: $*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
    echo "e2e.sh: needs root: it creates network namespaces, veth pairs, TAP devices and attaches an XDP program (run: sudo $0)" >&2
    [ "$mode" = test ] && exit 77 # ctest: skipped
    exit 1
fi
[ -n "$bin" ] || die "--bin DIR is required (the build's examples directory)"
for b in splitnet-netback splitnet-netfront; do
    [ -x "$bin/$b" ] || die "$bin/$b is missing: build it (cmake --build --preset release), it needs libxdp-dev and libbpf-dev"
done
for t in ip iperf3 ping ethtool; do
    command -v "$t" >/dev/null || die "$t is missing (apt-get install iproute2 iperf3 iputils-ping ethtool)"
done

# Names carry this run's id, so two runs on one host (the demo beside the test suite) do not
# tear down each other's namespaces.
run=$$
NS_WIRE=spl-wire-$run NS_DD=spl-dd-$run NS_G1=spl-g1-$run NS_G2=spl-g2-$run
CTL=/run/splitnet-e2e-$run.sock
LOG=${TMPDIR:-/tmp}/splitnet-e2e-$run
mkdir -p "$LOG"
pids=()

cleanup() {
    for p in "${pids[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null
    done
    for p in "${pids[@]:-}"; do
        [ -n "$p" ] && wait "$p" 2>/dev/null
    done
    pids=()
    if [ "$keep" = 0 ]; then
        for ns in $NS_WIRE $NS_DD $NS_G1 $NS_G2; do
            ip netns del "$ns" 2>/dev/null
        done
        rm -f "$CTL"
    fi
}
# The logs stay when something failed (the messages name them), or with --keep.
trap 'rc=$?; cleanup; [ "$rc" = 0 ] && [ "$keep" = 0 ] && rm -rf "$LOG"' EXIT
trap 'echo "e2e.sh: interrupted" >&2; exit 130' INT TERM

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# Total busy CPU time of the machine so far, in seconds (all CPUs: user, system, softirq...).
cpu_seconds() {
    awk '/^cpu /{busy=$2+$3+$4+$7+$8+$9; printf "%.3f\n", busy/100}' /proc/stat
}

fresh_namespaces() {
    cleanup
    for ns in $NS_WIRE $NS_DD $NS_G1 $NS_G2; do
        ip netns add "$ns" || die "cannot create network namespace $ns"
        in_ns "$ns" ip link set lo up
        in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    done
    ip link add veth-wire netns $NS_WIRE type veth peer name veth-dd netns $NS_DD ||
        die "cannot create a veth pair"
    in_ns $NS_WIRE ip addr add 10.77.0.1/24 dev veth-wire
    in_ns $NS_WIRE ip link set veth-wire up
    in_ns $NS_DD ip link set veth-dd up
    # The wire behaves like a real NIC's: MTU-sized frames (no TSO/GSO on the sender) with their
    # checksums filled in (a veth would otherwise hand over partial checksums, as no real wire
    # does).
    in_ns $NS_WIRE ethtool -K veth-wire tso off gso off tx off >/dev/null 2>&1
    in_ns $NS_DD ethtool -K veth-dd tso off gso off tx off >/dev/null 2>&1
}

# start_netback [extra args]
start_netback() {
    rm -f "$CTL"
    # Started with ip directly (not through a shell function) so $! is the daemon itself.
    ip netns exec $NS_DD "$bin/splitnet-netback" --nic veth-dd --control "$CTL" \
        --json "$LOG/netback.json" $nb_args "$@" >"$LOG/netback.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        [ -S "$CTL" ] && return 0
        if ! kill -0 "${pids[-1]}" 2>/dev/null; then
            cat "$LOG/netback.log" >&2
            die "splitnet-netback did not start (AF_XDP unavailable? see above)"
        fi
        sleep 0.05
    done
    die "splitnet-netback did not open its control socket $CTL"
}

# start_netfront NS IP MAC [extra args]: a guest whose kernel uses a TAP device eth0.
start_netfront() {
    local ns=$1 ip=$2 mac=$3
    shift 3
    ip netns exec "$ns" "$bin/splitnet-netfront" --control "$CTL" --tap eth0 --mac "$mac" "$@" \
        >"$LOG/netfront-$ns.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        in_ns "$ns" ip link show eth0 >/dev/null 2>&1 && break
        sleep 0.05
    done
    in_ns "$ns" ip link show eth0 >/dev/null 2>&1 || { cat "$LOG/netfront-$ns.log" >&2; die "netfront in $ns did not create eth0"; }
    in_ns "$ns" ip addr add "$ip/24" dev eth0 2>/dev/null
    in_ns "$ns" ip link set eth0 up
}

# splitnet_topology [extra args for both daemons]
splitnet_topology() {
    fresh_namespaces
    start_netback "$@"
    start_netfront $NS_G1 10.77.0.11 02:00:00:77:00:11 "$@"
    start_netfront $NS_G2 10.77.0.12 02:00:00:77:00:12 "$@"
}

# bridge_topology on|off: the same namespaces with a Linux bridge in the driver domain.
bridge_topology() {
    local gro=$1
    fresh_namespaces
    in_ns $NS_DD ip link add br0 type bridge
    in_ns $NS_DD ip link set veth-dd master br0
    for g in 1 2; do
        local ns=$NS_G1
        [ "$g" = 2 ] && ns=$NS_G2
        ip link add eth0 netns $ns type veth peer name vg$g netns $NS_DD
        in_ns $ns ip addr add 10.77.0.1$g/24 dev eth0
        in_ns $ns ip link set eth0 up
        in_ns $NS_DD ip link set vg$g master br0
        in_ns $NS_DD ip link set vg$g up
        # The guest's own sender segments nothing either (as on the splitnet path, where the
        # kernel behind the TAP sends what its virtio-net offloads allow).
    done
    in_ns $NS_DD ip link set br0 up
    for dev in veth-dd vg1 vg2; do
        in_ns $NS_DD ethtool -K $dev gro $gro >/dev/null 2>&1
    done
}

ping_ok() { in_ns "$1" ping -c 3 -i 0.2 -W 2 -q "$2" >/dev/null 2>&1; }

# wait_listening NS PORT: until a TCP socket listens on PORT in NS (iperf3 -s forks and returns
# before it listens; a client that comes too early is refused), at most 5 s.
wait_listening() {
    for _ in $(seq 100); do
        [ -n "$(ip netns exec "$1" ss -Hltn "sport = :$2")" ] && return 0
        sleep 0.05
    done
    say "  nothing listens on port $2 in $1 after 5 s"
}

# iperf3_run CLIENT_NS SERVER_NS SERVER_IP SECONDS -> prints "gbps cpu_s bytes"
iperf3_run() {
    local cns=$1 sns=$2 sip=$3 t=$4
    ip netns exec "$sns" iperf3 -s -1 -p 5301 >/dev/null 2>&1 &
    local sp=$!
    wait_listening "$sns" 5301
    local c0
    c0=$(cpu_seconds)
    timeout $((t + 10)) ip netns exec "$cns" iperf3 -c "$sip" -p 5301 -t "$t" --connect-timeout 3000 \
        -J >"$LOG/iperf3.json" 2>/dev/null
    local c1
    c1=$(cpu_seconds)
    kill $sp 2>/dev/null
    wait $sp 2>/dev/null
    local bits bytes
    bits=$(grep -A8 '"sum_received"' "$LOG/iperf3.json" | awk -F'[:,]' '/bits_per_second/{print $2; exit}')
    bytes=$(grep -A8 '"sum_received"' "$LOG/iperf3.json" | awk -F'[:,]' '/"bytes"/{print $2; exit}')
    [ -n "$bits" ] || bits=0
    [ -n "$bytes" ] || bytes=0
    awk -v b="$bits" -v c0="$c0" -v c1="$c1" -v by="$bytes" \
        'BEGIN{printf "%.2f %.3f %d\n", b/1e9, c1-c0, by}'
}

# The netback's counters now (SIGUSR1 writes its report as JSON):
# "aggregates aggregated_segments guest_rx_segments notifications drops"
netback_snapshot() {
    local nb=${pids[0]}
    rm -f "$LOG/netback.json"
    kill -USR1 "$nb" 2>/dev/null
    for _ in $(seq 100); do
        [ -s "$LOG/netback.json" ] && break
        sleep 0.02
    done
    local j
    j=$(cat "$LOG/netback.json" 2>/dev/null)
    sum() { grep -o "\"$1\":[0-9]*" <<<"$j" | awk -F: '{s+=$2} END{printf "%d", s}'; }
    echo "$(sum aggregates) $(sum aggregated_segments) $(sum rx_segments) $(sum notifications) $(sum drops)"
}

results=()
record() { results+=("$*"); }

measure_path() { # label client_ns server_ns server_ip config
    local label=$1 cns=$2 sns=$3 sip=$4 config=$5
    local before after r
    if [ "$config" = splitnet ]; then before=$(netback_snapshot); fi
    r=$(iperf3_run "$cns" "$sns" "$sip" "$secs")
    local gbps cpu bytes
    read -r gbps cpu bytes <<<"$r"
    local spa="-" ppn="-" drops="-"
    if [ "$config" = splitnet ]; then
        after=$(netback_snapshot)
        read -r a0 s0 r0 n0 d0 <<<"$before"
        read -r a1 s1 r1 n1 d1 <<<"$after"
        spa=$(awk -v s="$((s1 - s0))" -v a="$((a1 - a0))" 'BEGIN{ if (a>0) printf "%.1f", s/a; else print "-" }')
        ppn=$(awk -v r="$((r1 - r0))" -v n="$((n1 - n0))" 'BEGIN{ if (n>0) printf "%.1f", r/n; else print "-" }')
        drops=$((d1 - d0))
    fi
    local cpg
    cpg=$(awk -v c="$cpu" -v b="$bytes" 'BEGIN{ if (b>0) printf "%.2f", c/(b/1e9); else print "-" }')
    record "$label|$config|$gbps|$cpg|$spa|$ppn|$drops"
}

paths() { # config
    measure_path "wire -> guest1" $NS_WIRE $NS_G1 10.77.0.11 "$1"
    measure_path "guest1 -> wire" $NS_G1 $NS_WIRE 10.77.0.1 "$1"
    measure_path "guest1 -> guest2" $NS_G1 $NS_G2 10.77.0.12 "$1"
}

check_pings() {
    local ok=0
    for pair in "$NS_WIRE 10.77.0.11" "$NS_WIRE 10.77.0.12" "$NS_G1 10.77.0.1" "$NS_G1 10.77.0.12" \
        "$NS_G2 10.77.0.1" "$NS_G2 10.77.0.11"; do
        set -- $pair
        if ping_ok "$1" "$2"; then
            say "  ping $1 -> $2: ok"
        else
            say "  ping $1 -> $2: FAILED"
            ok=1
        fi
    done
    return $ok
}

print_table() {
    printf '\n%-18s %-20s %10s %12s %10s %12s %8s\n' "path" "driver domain" "Gbit/s" "CPU s/GB" \
        "segs/agg" "pkts/notify" "drops"
    printf '%s\n' "------------------------------------------------------------------------------------------------"
    local r
    for r in "${results[@]}"; do
        IFS='|' read -r l c g cp s p d <<<"$r"
        printf '%-18s %-20s %10s %12s %10s %12s %8s\n' "$l" "$c" "$g" "$cp" "$s" "$p" "$d"
    done
}

write_json() {
    [ -n "$json" ] || return 0
    {
        printf '{"seconds_per_run":%s,"runs":[' "$secs"
        local first=1 r
        for r in "${results[@]}"; do
            IFS='|' read -r l c g cp s p d <<<"$r"
            [ $first = 1 ] || printf ','
            first=0
            printf '{"path":"%s","config":"%s","gbit_s":%s,"cpu_s_per_gb":"%s","segs_per_agg":"%s","pkts_per_notify":"%s","drops":"%s"}' \
                "$l" "$c" "$g" "$cp" "$s" "$p" "$d"
        done
        printf ']}\n'
    } >"$json"
    say "figures written to $json"
}

# must_move "CLIENT_NS SERVER_NS SERVER_IP"...: a 2 s iperf3 run on each path must move data.
must_move() {
    local ok=0 p r gbps bytes
    for p in "$@"; do
        set -- $p
        r=$(iperf3_run "$1" "$2" "$3" 2)
        read -r gbps _ bytes <<<"$r"
        say "  iperf3 $1 -> $2: $gbps Gbit/s ($bytes bytes)"
        [ "${bytes:-0}" -gt 1000000 ] || { say "  ... moved no data: FAILED"; ok=1; }
    done
    return $ok
}

if [ "$mode" = test ]; then
    fail=0
    say "== splitnet driver domain: AF_XDP back end, two TAP front ends"
    splitnet_topology
    sleep 0.5
    check_pings || fail=1
    must_move "$NS_WIRE $NS_G1 10.77.0.11" "$NS_G1 $NS_WIRE 10.77.0.1" "$NS_G1 $NS_G2 10.77.0.12" ||
        fail=1
    say "== a front end killed and restarted while traffic flows"
    ip netns exec $NS_G1 iperf3 -s -1 -p 5302 >/dev/null 2>&1 &
    srv=$!
    wait_listening $NS_G1 5302
    timeout 20 ip netns exec $NS_WIRE iperf3 -c 10.77.0.11 -p 5302 -t 6 --connect-timeout 3000 -J \
        >"$LOG/iperf3-restart.json" 2>/dev/null &
    cli=$!
    sleep 1.5
    kill -9 "${pids[1]}" 2>/dev/null
    wait "${pids[1]}" 2>/dev/null
    pids[1]=""
    sleep 0.3
    start_netfront $NS_G1 10.77.0.11 02:00:00:77:00:11
    wait $cli
    wait $srv 2>/dev/null
    bytes=$(grep -A8 '"sum_received"' "$LOG/iperf3-restart.json" | awk -F'[:,]' '/"bytes"/{print $2; exit}')
    say "  traffic across the restart: ${bytes:-0} bytes"
    [ "${bytes:-0}" -gt 1000000 ] || { say "  ... FAILED"; fail=1; }
    ping_ok $NS_WIRE 10.77.0.11 && say "  ping to the restarted guest: ok" || { say "  ping to the restarted guest: FAILED"; fail=1; }
    kill -INT "${pids[0]}" 2>/dev/null
    wait "${pids[0]}" 2>/dev/null
    pids[0]=""
    if grep -q "left: the front end closed the control channel" "$LOG/netback.log"; then
        say "  the back end saw the killed guest go and reclaimed what it held"
    else
        say "  the back end did not record the killed guest's departure: FAILED"
        fail=1
    fi
    cleanup
    say "== frontend copy: the guests write the back end's buffers to their TAPs in place"
    splitnet_topology --copy frontend
    sleep 0.5
    check_pings || fail=1
    must_move "$NS_WIRE $NS_G1 10.77.0.11" "$NS_G1 $NS_G2 10.77.0.12" || fail=1
    grep -q "frontend copy, RX ring 1024 slots" "$LOG/netfront-$NS_G1.log" ||
        { say "  the guest did not get a 4-page RX ring: FAILED"; fail=1; }
    [ $fail = 0 ] && say "== all end-to-end checks passed" || say "== FAILED (logs in $LOG)"
    exit $fail
fi

say "== splitnet driver domain (netback: AF_XDP on veth-dd; 2 guests behind TAP devices)"
splitnet_topology
sleep 0.5
check_pings || die "connectivity through splitnet failed (logs in $LOG)"
paths splitnet
say "$(tail -n 12 "$LOG/netback.log" | grep -v '^\[' || true)"
kill -INT "${pids[0]}" 2>/dev/null
wait "${pids[0]}" 2>/dev/null
cleanup
for gro in off on; do
    say "== Linux bridge, GRO $gro"
    bridge_topology $gro
    sleep 0.5
    check_pings >/dev/null || say "  (some pings failed on the Linux bridge)"
    paths "linux-bridge-gro-$gro"
    cleanup
done
print_table
write_json
