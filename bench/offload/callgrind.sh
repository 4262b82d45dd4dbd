#!/usr/bin/env bash
# Instructions per input segment of GRO, splitnet against DPDK librte_gro on the same traffic,
# counted by callgrind: the machine-independent counterpart of gro_bench's times, which move by
# 20-30% between runs on a shared machine. For each shape of gro_bench.cpp (burst mode with 1 and
# 16 flows, held mode with 16, 1024 and 4096 flows; with and without timestamps) it runs the
# benchmark once under callgrind, counting only inside the aggregators' entry points
# (--toggle-collect: splitnet's receive_burst and flush_all, DPDK's rte_gro_reassemble_burst,
# rte_gro_reassemble and rte_gro_timeout_flush), so the header restore both sides share is left
# out, and divides by the segments the run put through them. DPDK's burst mode zeroes its tables
# on every call (about half its count here, done with wider stores on hardware): compare that
# mode by time as well.
#
# usage: bench/offload/callgrind.sh BUILD_DIR/bench/offload/offload_gro_bench
set -euo pipefail

bench=${1:?usage: $0 PATH/TO/offload_gro_bench}
command -v valgrind >/dev/null || { echo "$0: valgrind is missing (apt-get install valgrind)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "$0: python3 is missing (apt-get install python3)" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# count NAME TOGGLE...: prints instructions per segment and segments per aggregate
count() {
    local name=$1
    shift
    local toggles=()
    for t in "$@"; do toggles+=("--toggle-collect=$t"); done
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" "${toggles[@]}" \
        "$bench" --benchmark_filter="^${name}\$" --benchmark_min_time=0.01 \
        --benchmark_format=json >"$out/json" 2>"$out/log" ||
        { echo "$0: $name failed under valgrind:" >&2; cat "$out/log" >&2; exit 1; }
    local ir
    ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/log")
    python3 - "$out/json" "$ir" "$name" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
runs = [b for b in d["benchmarks"] if b.get("run_type", "iteration") == "iteration"]
if not runs or "error_message" in runs[0]:
    print(f"{sys.argv[3]}: skipped ({runs[0].get('error_message', 'no run') if runs else 'no run'})")
    sys.exit(0)
b = runs[0]
# items_per_second * cpu_time = segments per iteration (the rate is per CPU second).
scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
segments = round(b["items_per_second"] * b["cpu_time"] * scale) * b["iterations"]
print(f"{int(sys.argv[2]) / segments:10.1f} {b.get('segs_per_agg', 0):10.1f}")
EOF
}

splitnet=('*gro_engine*receive_burst*' '*gro_engine*flush_all*')
dpdk=('rte_gro_reassemble_burst' 'rte_gro_reassemble' 'rte_gro_timeout_flush')
printf '%-24s %22s %22s %8s\n' shape "splitnet instr/seg,agg" "dpdk instr/seg,agg" "ratio"
for shape in false/flows:1 false/flows:16 true/flows:16 true/flows:1024 true/flows:4096; do
    for ts in 0 1; do
        mode=${shape%%/*}
        flows=${shape#*/}
        s=$(count "BM_splitnet_gro<${mode}>/${flows}/ts:${ts}" "${splitnet[@]}")
        d=$(count "BM_dpdk_gro<${mode}>/${flows}/ts:${ts}" "${dpdk[@]}")
        label=$([ "$mode" = false ] && echo burst || echo held)
        ratio=$(python3 -c "import sys; a=sys.argv[1].split(); b=sys.argv[2].split(); print(f'{float(b[0])/float(a[0]):.2f}x' if len(a)==2 and len(b)==2 else '-')" "$s" "$d")
        printf '%-24s %22s %22s %8s\n' "$label/$flows/ts:$ts" "$s" "$d" "$ratio"
    done
done
