#!/usr/bin/env bash
# etcd client benchmark: puts/s and single-key txns/s with 1 and with 64
# requests in flight, for the client library and for the simplest libcurl
# loop doing the same work (the reference), against a local 3-member
# cluster, in the same run.  Each pair runs three times, alternating
# reference and client; the best run of each is reported.
#
#   bench: etcd_put_64_per_s N      bench: etcd_put_64_ref_per_s N
#   ... put_1, txn_1, txn_64 likewise; and etcd_<w>_<n>_ratio (client/ref).
#
# BENCH_SECONDS (default 3) is the length of one run.
. "$(dirname "$0")/../lib.sh"

# The members' data on tmpfs when there is one: the benchmark measures the
# client and the gateway, not the disk's fsync latency.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    rmdir "$T_TMP" && T_TMP=$(mktemp -d /dev/shm/gpupool-bench.XXXXXX) || bail_out "mktemp"
fi

secs=${BENCH_SECONDS:-3}
bin=$GP_BUILD/tests/etcd/etcd_bench
[ -x "$bin" ] || bail_out "$bin is not built"
etcd_start 3 || bail_out "etcd did not start"
export ENDPOINT=${ETCD_CLIENT_URL[0]}
echo "# 3-member cluster, requests to $ENDPOINT, ${secs}s per run"

for w in put txn; do
    for n in 1 64; do
        ref=0 cli=0
        for round in 1 2 3; do
            r=$("$bin" ref "$w" "$n" "$secs" | awk '/^ops_per_s/ {print $2}')
            [ -n "$r" ] && [ "$r" -gt "$ref" ] && ref=$r
            c=$("$bin" client "$w" "$n" "$secs" | awk '/^ops_per_s/ {print $2}')
            [ -n "$c" ] && [ "$c" -gt "$cli" ] && cli=$c
        done
        echo "bench: etcd_${w}_${n}_per_s $cli"
        echo "bench: etcd_${w}_${n}_ref_per_s $ref"
        awk -v c="$cli" -v r="$ref" -v k="etcd_${w}_${n}_ratio" \
            'BEGIN { printf "bench: %s %.3f\n", k, (r > 0 ? c / r : 0) }'
    done
done
