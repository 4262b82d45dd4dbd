#!/usr/bin/env bash
# Instructions per packet of learning_bridge::forward_burst, counted by callgrind: for each shape
# (16, 1K and 64K learned MACs; random destinations and trains of 16; the default hash and
# aes_key_hash), the fixed-length runs of
# learning_bridge_bench.cpp put exactly 10000 bursts of 32 frames (320000 packets) through
# run_burst, and callgrind counts only inside it (--toggle-collect), so the setup and the
# benchmark loop are left out. Instruction counts do not depend on the machine's load, which
# makes them the number to compare on a shared, noisy machine; times need the same-run ratios.
#
# usage: bench/bridge/callgrind.sh BUILD_DIR/bench/bridge/bridge_learning_bridge_bench
set -euo pipefail

bench=${1:?usage: $0 PATH/TO/bridge_learning_bridge_bench}
command -v valgrind >/dev/null || { echo "$0: valgrind is missing (apt-get install valgrind)" >&2; exit 2; }
packets=320000
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# The default hash, then aes_key_hash where the binary has it (x86 builds).
variants=(BM_bridge_forward)
"$bench" --benchmark_list_tests | grep -q '^BM_bridge_forward_aes/' && variants+=(BM_bridge_forward_aes)

printf '%-22s %-22s %14s %10s\n' benchmark shape instructions per_packet
for v in "${variants[@]}"; do
    for macs in 16 1024 65536; do
        for train in 0 16; do
            shape="macs:${macs}/train:${train}"
            valgrind --tool=callgrind --callgrind-out-file="$out/cg" --toggle-collect='*run_burst*' \
                "$bench" --benchmark_filter="^${v}/${shape}/iterations:10000\$" \
                >/dev/null 2>"$out/log"
            ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/log")
            [ -n "$ir" ] && [ "$ir" -gt 0 ] || { echo "$0: no count for $v $shape (see $out/log)" >&2; cat "$out/log" >&2; exit 1; }
            printf '%-22s %-22s %14d %10.1f\n' "$v" "$shape" "$ir" "$(echo "$ir / $packets" | bc -l)"
        done
    done
done
