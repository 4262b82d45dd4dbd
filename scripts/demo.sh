#!/usr/bin/env bash
# splitnet's demo. Until the driver-domain pipeline lands, it shows the packet layer on real
# traffic: it builds the tools, captures fresh kernel TCP/UDP traffic between two network
# namespaces (when run as root), and runs splitnet-pcap-info over that capture and over the
# sample committed in tests/data. Installs missing packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

echo "==> building the tools (build/release)"
cmake --preset release >/dev/null
cmake --build --preset release --target splitnet-pcap-info

tool=build/release/examples/splitnet-pcap-info
echo
echo "==> the committed sample: kernel traffic captured on a veth pair"
"$tool" tests/data/kernel_traffic.pcap

if [ "$(id -u)" = 0 ]; then
    capture=$(mktemp --suffix=.pcap)
    trap 'rm -f "$capture"' EXIT
    echo
    echo "==> a fresh capture from this machine's kernel (namespaces, veth, iperf3, tcpdump)"
    scripts/capture-kernel-traffic.sh "$capture" 1M
    "$tool" "$capture"
else
    echo
    echo "(run as root to also capture and parse fresh traffic from this machine's kernel)"
fi
