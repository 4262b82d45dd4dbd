#!/usr/bin/env bash
# Installs, with apt-get, whatever of splitnet's build and test dependencies is missing on a
# Debian 12 machine. Needs root only when something must be installed.
set -euo pipefail

packages=(
    # toolchain: g++ 12 and clang 14 both build everything; clang-format-16 checks formatting
    g++ clang llvm libclang-rt-14-dev lld cmake ninja-build pkg-config clang-format-16
    # libraries: Boost.Lockfree and xxHash (the library), GoogleTest and Google Benchmark,
    # libxdp/libbpf (AF_XDP port), DPDK (peer benchmarks), Xen headers (layout tests)
    libboost-dev libxxhash-dev libgtest-dev libgmock-dev libbenchmark-dev
    libxdp-dev libbpf-dev libdpdk-dev libxen-dev
    # real-traffic tests and the demo: namespaces, veth, TAP, captures, kernel TCP
    iproute2 iputils-ping iperf3 tcpdump ethtool procps psmisc
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: missing packages: ${missing[*]}" >&2
    echo "deps.sh: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
