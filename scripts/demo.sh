#!/usr/bin/env bash
# splitnet's demo: the driver domain end to end with real kernel TCP. It builds the reference
# back end and front end, then (scripts/e2e.sh) creates network namespaces and veth pairs (a
# "wire" namespace as the remote peer, two guests), starts splitnet-netback on the wire's veth
# through AF_XDP and a splitnet-netfront (TAP with virtio-net headers) in each guest, checks
# connectivity with ping, runs iperf3 TCP from the wire to a guest, from a guest to the wire and
# guest to guest; then the same traffic through a Linux bridge set up the same way (GRO off, then
# on), and prints one table: Gbit/s, CPU seconds per GB, segments per aggregate, packets per
# notification, drops. Everything it creates is removed at the end, also when interrupted.
#
#   scripts/demo.sh [--json FILE] [--seconds N] [--netback-args "..."]
#
# Needs root (namespaces, TAP, XDP). Installs missing packages first.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "demo.sh: needs root: it creates network namespaces, veth pairs and TAP devices and" >&2
    echo "demo.sh: attaches an XDP program (AF_XDP). Run: sudo scripts/demo.sh" >&2
    exit 1
fi
scripts/deps.sh
mkdir -p build

echo "==> building splitnet-netback and splitnet-netfront (build/release)"
cmake --preset release >build/demo-configure.log 2>&1 || { cat build/demo-configure.log; exit 1; }
if ! grep -q "LibXdp" build/release/CMakeCache.txt || ! cmake --build --preset release \
    --target splitnet-netback splitnet-netfront; then
    echo "demo.sh: splitnet-netback could not be built: it needs libxdp-dev and libbpf-dev" >&2
    exit 1
fi

if [ ! -d /sys/fs/bpf ] && ! grep -q bpf /proc/filesystems; then
    echo "demo.sh: this kernel has no BPF filesystem; AF_XDP needs CONFIG_XDP_SOCKETS and BPF" >&2
    exit 1
fi

exec scripts/e2e.sh --mode demo --bin build/release/examples "$@"
