#!/usr/bin/env bash
# Placement benchmark: a 3-member etcd cluster, one region with a leader,
# gpupool-agent --simulate 1000 (8 GPUs per node) and a load generator
# submitting fractional jobs through the REST API (placement_load.c).
#
#   bench: placements_per_s N          a burst of BENCH_JOBS jobs, submit to committed
#   bench: etcd_put_ceiling_per_s N    raw single-key puts, 64 in flight (libcurl loop), same cluster
#   bench: placements_to_put_ceiling R
#   bench: submit_to_commit_p50_ms X   at a fixed offered load of BENCH_RATE jobs/s
#   bench: submit_to_commit_p99_ms X
#   bench: submit_to_commit_p50_ms_at_200 X, ..._p99_ms_at_200 X   the same at 200 jobs/s
#   bench: submit_to_commit_p50_ms_at_5 X   a light load on the fresh pool (each job
#                                      nearly alone: the latency of the steps themselves)
#   bench: cpu_ms_per_placement X      CPU of every process of the pool per job placed
#                                      in the burst, and its split (etcd, coordinator,
#                                      agent, load generator) in a comment
#
# The members' data lives on tmpfs, as in the etcd benchmark: the figures are
# the software's, not the disk's fsync latency.
. "$(dirname "$0")/../lib.sh"

if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    rmdir "$T_TMP" && T_TMP=$(mktemp -d /dev/shm/gpupool-bench.XXXXXX) || bail_out "mktemp"
fi
jobs=${BENCH_JOBS:-20000}
rate=${BENCH_RATE:-1000}
secs=${BENCH_RATE_SECONDS:-10}

etcd_start 3 || bail_out "etcd did not start"
pool_coordinator c1 r1 --log-level warn --lease-ttl 5s || bail_out "coordinator did not start"
# The daemons' default leases (the test helpers' short ones are for quick failover tests).
pool_agent a1 r1 1000 8xA100:81920 --log-level warn --usage-interval 60s --lease-ttl 10s ||
    bail_out "agent did not start"
API=${POOL_API[c1]}
wait_for 60 bash -c "curl -s -H 'Authorization: Bearer $GPUPOOL_TOKEN' $API/v1/usage | grep -q '\"nodes\": *1000'" ||
    bail_out "the coordinator does not see 1000 nodes"
echo "# 1 region, 1000 simulated nodes x 8 A100 (8000 GPUs), jobs of 8 GiB / 10% of one GPU"

ceiling=$(ENDPOINT=${ETCD_CLIENT_URL[0]} "$GP_BUILD/tests/etcd/etcd_bench" ref put 64 3) ||
    bail_out "etcd_bench failed"
ceiling=$(echo "$ceiling" | awk '/^ops_per_s/ {print $2}')
load=$GP_BUILD/tests/bench/placement_load

# run_load LABEL ARGS...: run the load generator, its output as comments in
# $out; a failed run ends the benchmark with no figure.
run_load() {
    local label=$1
    shift
    out=$("$load" "$API" "$GPUPOOL_TOKEN" "$ETCD_ENDPOINTS" "$@" 2>&1)
    local st=$?
    echo "$out" | sed "s/^/# $label: /"
    [ "$st" -eq 0 ] || bail_out "placement_load $* failed (exit $st)"
}
field() { echo "$out" | awk -v k="$1" '$1 == k {print $2}'; }

# Latency first, on the fresh pool: a fixed offered load, one job per request.
LOAD_PREFIX=light run_load "rate 5" rate 5 4
bench_figure submit_to_commit_p50_ms_at_5 "$(field p50_ms)"
run_load rate rate "$rate" "$secs"
bench_figure submit_to_commit_p50_ms "$(field p50_ms)"
bench_figure submit_to_commit_p99_ms "$(field p99_ms)"
echo "# offered load ${rate} jobs/s for ${secs} s, one job per request"
LOAD_PREFIX=low run_load "rate 200" rate 200 "$secs"
bench_figure submit_to_commit_p50_ms_at_200 "$(field p50_ms)"
bench_figure submit_to_commit_p99_ms_at_200 "$(field p99_ms)"

# Throughput: a burst, as fast as the load generator can submit.  Every
# process of the pool shares this machine's cores: the CPU each one spends
# per placement says where the ceiling comes from.
cpu_ticks() { local p s=0; for p in "$@"; do s=$((s + $(awk '{print $14 + $15}' /proc/"$p"/stat))); done; echo "$s"; }
etcd_pids="$(daemon_pid etcd0) $(daemon_pid etcd1) $(daemon_pid etcd2)"
e0=$(cpu_ticks $etcd_pids); c0=$(cpu_ticks "$(daemon_pid c1)"); a0=$(cpu_ticks "$(daemon_pid a1)")
run_load burst burst "$jobs"
e1=$(cpu_ticks $etcd_pids); c1=$(cpu_ticks "$(daemon_pid c1)"); a1=$(cpu_ticks "$(daemon_pid a1)")
pps=$(field placements_per_s)
bench_figure placements_per_s "$pps"
bench_figure etcd_put_ceiling_per_s "$ceiling"
bench_figure placements_to_put_ceiling "$(awk -v p="$pps" -v c="$ceiling" 'BEGIN { if (c > 0) printf "%.3f", p / c }')"
echo "# burst of ${jobs} jobs in requests of 250, 8 in flight; the ceiling: raw single-key puts, 64 in flight, same cluster"
hz=$(getconf CLK_TCK)
lcpu=$(field cpu_s)
[ -n "$lcpu" ] || bail_out "the load generator did not report its CPU time"
awk -v e=$((e1 - e0)) -v c=$((c1 - c0)) -v a=$((a1 - a0)) -v l="$lcpu" \
    -v hz="$hz" -v n="$jobs" -v cores="$(nproc)" 'BEGIN {
    e = e / hz * 1000 / n; c = c / hz * 1000 / n; a = a / hz * 1000 / n; l = l * 1000 / n
    printf "bench: cpu_ms_per_placement %.2f\n", e + c + a + l
    printf "# CPU per placement (ms): etcd members %.2f, coordinator %.2f, agent %.2f, load generator %.2f;", e, c, a, l
    printf " %d cores: at most %.0f placements/s at this cost\n", cores, cores * 1000 / (e + c + a + l) }'
rss=$(awk '/VmRSS/ {print $2}' /proc/"$(daemon_pid c1)"/status)
echo "# coordinator RSS after $((jobs + rate * secs + 200 * secs + 20)) jobs: $((rss / 1024)) MiB"
stop_daemon a1 >/dev/null
stop_daemon c1 >/dev/null
