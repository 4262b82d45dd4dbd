#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Test of examples/gro_pcap.cpp (splitnet-gro-pcap) on real kernel TCP traffic
# (tests/data/kernel_traffic.pcap, made by scripts/capture-kernel-traffic.sh):
#  - gro and lro modes, per burst and held across bursts, with --resegment: the tool reports an
#    exact round trip and made aggregates; the output has fewer records than the input; the
#    resegmented file has exactly the input's size (same records, same lengths) and the output
#    is no larger than the input (fewer record headers, same bytes);
#  - local-delivery merging is not reversible: the oracle must see differences (it is not blind);
#  - a truncated copy of the capture and a 10-byte file fail with status 1 and a message naming
#    the file, the byte offset and the record, and leave no output behind;
#  - bad usage fails with status 2.
#
# usage: gro_pcap_tool_test.sh path/to/splitnet-gro-pcap path/to/kernel_traffic.pcap
set -u

tool=${1:?usage: $0 TOOL CAPTURE}
capture=${2:?usage: $0 TOOL CAPTURE}
work=$(mktemp -d "${TMPDIR:-/tmp}/gro-pcap-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# run NAME EXPECTED_STATUS ARGS...: runs the tool, keeps stdout/stderr in $work/NAME.{out,err}.
run() {
    local name=$1 want=$2
    shift 2
    "$tool" "$@" >"$work/$name.out" 2>"$work/$name.err"
    local got=$?
    if [ "$got" != "$want" ]; then
        fail "$name: exit status $got, expected $want ($tool $*)"
        sed 's/^/    /' "$work/$name.out" "$work/$name.err" >&2
        return 1
    fi
}

size() { stat -c %s "$1"; }

# Numbers from the summary line "IN: A frames in, B frames out to OUT".
frames_in() { sed -n 's/.*: \([0-9]*\) frames in, .*/\1/p' "$1" | head -1; }
frames_out() { sed -n 's/.* frames in, \([0-9]*\) frames out .*/\1/p' "$1" | head -1; }
aggregates() { sed -n 's/.*; \([0-9]*\) aggregates of .*/\1/p' "$1" | head -1; }

check_exact_run() {
    local name=$1
    shift
    run "$name" 0 "$capture" "$work/$name.pcap" --resegment "$work/$name.back.pcap" --stats "$@" ||
        return
    local out=$work/$name.out
    grep -q -- '-> exact$' "$out" || fail "$name: round trip not reported exact: $(grep round "$out")"
    grep -q '0 differ, 0 missing, 0 extra' "$out" || fail "$name: round trip counters not clean"
    local in_n out_n agg
    in_n=$(frames_in "$out")
    out_n=$(frames_out "$out")
    agg=$(aggregates "$out")
    [ -n "$in_n" ] && [ "$in_n" -gt 400 ] || fail "$name: read ${in_n:-?} frames, expected the 479"
    [ -n "$agg" ] && [ "$agg" -ge 5 ] || fail "$name: ${agg:-?} aggregates, expected at least 5"
    [ -n "$out_n" ] && [ -n "$in_n" ] && [ "$out_n" -lt "$in_n" ] ||
        fail "$name: ${out_n:-?} frames out for ${in_n:-?} in: nothing was merged"
    grep -Eq '^  merged +[1-9][0-9]*$' "$out" || fail "$name: --stats shows no merged segments"
    grep -q '^flushes by reason:' "$out" || fail "$name: --stats lacks flushes by reason"
    grep -q '^passed through by reason:' "$out" || fail "$name: --stats lacks pass reasons"
    # Independent of the tool's own oracle: the same records with the same lengths make a file
    # of the same size; the aggregated output holds the same bytes under fewer record headers.
    [ "$(size "$work/$name.back.pcap")" = "$(size "$capture")" ] ||
        fail "$name: resegmented file is $(size "$work/$name.back.pcap") bytes, the input $(size "$capture")"
    [ "$(size "$work/$name.pcap")" -lt "$(size "$capture")" ] ||
        fail "$name: output is not smaller than the input"
}

check_exact_run gro_burst --mode gro
check_exact_run lro_burst --mode lro
check_exact_run gro_held --mode gro --timeout-us 2000 --flows 16
check_exact_run lro_held --mode lro --timeout-us 2000 --flows 2 --burst 8

# Local-delivery merging rewrites ACK/window/timestamps: the oracle must notice (status 0: that
# mode promises no round trip).
if run local 0 "$capture" "$work/local.pcap" --merge local --timeout-us 100000 \
    --resegment "$work/local.back.pcap"; then
    grep -q 'not exact (expected' "$work/local.out" ||
        fail "local: the round-trip oracle saw no difference after local-delivery merging"
    grep -Eq 'record [0-9]+ \(TCP .*\): resegmented frame differs from byte [0-9]+' "$work/local.out" ||
        fail "local: no difference named by record"
fi

# A truncated capture: cut in the middle of a record.
head -c 200000 "$capture" >"$work/truncated.pcap"
if run truncated 1 "$work/truncated.pcap" "$work/truncated.out.pcap" \
    --resegment "$work/truncated.back.pcap"; then
    err=$(cat "$work/truncated.err")
    case $err in
    *truncated.pcap*offset\ [0-9]*truncated\ record*record\ [0-9]*) ;;
    *) fail "truncated: message does not name file, offset and record: $err" ;;
    esac
    [ ! -e "$work/truncated.out.pcap" ] && [ ! -e "$work/truncated.back.pcap" ] ||
        fail "truncated: output files were created for an input that does not read"
fi
head -c 10 "$capture" >"$work/stub.pcap"
if run stub 1 "$work/stub.pcap" "$work/stub.out.pcap"; then
    grep -q 'stub.pcap: offset 0: not a pcap file' "$work/stub.err" ||
        fail "stub: unexpected message: $(cat "$work/stub.err")"
fi
run missing 1 "$work/does-not-exist.pcap" "$work/x.pcap" &&
    { grep -q 'does-not-exist.pcap: cannot open' "$work/missing.err" || fail "missing: $(cat "$work/missing.err")"; }

# Usage errors.
run no_output 2 "$capture"
run bad_mode 2 "$capture" "$work/x.pcap" --mode tso
run bad_burst 2 "$capture" "$work/x.pcap" --burst 0
run same_file 2 "$capture" "$capture"
run help 0 --help && { grep -q -- '--timeout-us' "$work/help.out" || fail "help: --timeout-us undocumented"; }

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "all splitnet-gro-pcap checks passed"
