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
#   bench: etcd_writes_per_placement W keys etcd wrote (its own put and delete counters)
#                                      per job, from the burst's first submission to the
#                                      last "running" report
#   bench: etcd_revisions_per_placement V   the same span by etcd's revision counter
#                                      (one revision per transaction, many jobs in each)
#   bench: submit_to_commit_p99_ms_at_half Q   p99 at half the burst's rate, one job per
#                                      request, from each job's scheduled time
#   bench: cpu_ms_per_one_job_request X   CPU of every process of the pool per job
#                                      in that phase, and in a comment its split, its
#                                      ratio to the burst's cpu_ms_per_placement and the
#                                      cores that phase needs (a ratio above 2 means
#                                      half the burst's rate as one-job requests asks
#                                      for more CPU than the burst used)
#   bench: coordinator_longest_loop_pass_ms_at_half X, agent_longest_loop_pass_ms_at_half X
#                                      in that phase, the longest pass of each daemon's
#                                      loop, as the bound of its loop_busy histogram's
#                                      bucket (10001: past the last one, 10 s)
#   bench: leases_lost_under_overload N   leases the agent and the leader lost (both on
#                                      3 s leases) through the burst and 60 s offered at
#                                      twice the burst's rate (jobs of 5 s, so that the
#                                      pool keeps room)
#   bench: overload_uncommitted_after_60s N   jobs the API accepted under overload and
#                                      that were not committed within 60 s after it
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
# How long a run waits for its last commits (longer on a machine others load).
export LOAD_WAIT_S=${BENCH_WAIT_S:-120}

etcd_start 3 || bail_out "etcd did not start"
# Both on 3 s leases, shorter than their defaults: overload must not cost a lease.
pool_coordinator c1 r1 --log-level warn --lease-ttl 3s || bail_out "coordinator did not start"
pool_agent a1 r1 1000 8xA100:81920 --log-level warn --usage-interval 60s --lease-ttl 3s ||
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
    echo "$out" | awk -v l="$label" '{ print "# " l ": " $0 }'   # labels may hold a "/"
    # Under overload (LOAD_REJECTS_OK) exit 1 means "an accepted job was not
    # committed in time": a figure, not a failed measurement.
    [ "$st" -eq 0 ] || { [ "$st" -eq 1 ] && [ -n "${LOAD_REJECTS_OK:-}" ]; } ||
        bail_out "placement_load $* failed (exit $st)"
}
field() { echo "$out" | awk -v k="$1" '$1 == k {print $2}'; }
# busy_buckets URL FAMILY: "le count" of each bucket of the histogram FAMILY
# on URL/metrics; longest_pass BEFORE AFTER: the bound (ms) of the smallest
# bucket that holds every pass counted between the two (10001 past 10 s).
busy_buckets() {
    curl -s -m 10 "$1/metrics" | awk -v f="$2_bucket{le=\"" 'index($1, f) == 1 {
        le = substr($1, length(f) + 1); sub(/".*/, "", le); print le, $2 }'
}
longest_pass() {
    awk 'NR == FNR { b[$1] = $2; next }
         { n++; le[n] = $1; d[n] = $2 - b[$1]; if ($1 == "+Inf") total = d[n] }
         END { for (i = 1; i <= n; i++) if (d[i] == total) { print le[i] == "+Inf" ? 10001 : le[i] * 1000; exit } }' "$1" "$2"
}
AGENT_METRICS=http://127.0.0.1:$(grep -o 'metrics=[0-9]*' "$T_TMP/a1.log" | head -1 | cut -d= -f2)

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
# etcd's own counters, from the first member (each member applies every write).
etcd_metric() { curl -s "${ETCD_CLIENT_URL[0]}/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
etcd_keys_written() { awk -v p="$(etcd_metric etcd_mvcc_put_total)" -v d="$(etcd_metric etcd_mvcc_delete_total)" 'BEGIN { printf "%.0f", p + d }'; }
etcd_revision() { etcdctl_ endpoint status -w json | grep -o '"revision":[0-9]*' | head -1 | cut -d: -f2; }
leases_lost() { cat "$T_TMP/c1.log" "$T_TMP/a1.log" | grep -c 'warn: lease lost'; }   # the daemons' own line, one per loss
lost0=$(leases_lost)
w0=$(etcd_keys_written); r0=$(etcd_revision)
cpu_ticks() { local p s=0; for p in "$@"; do s=$((s + $(awk '{print $14 + $15}' /proc/"$p"/stat))); done; echo "$s"; }
etcd_pids="$(daemon_pid etcd0) $(daemon_pid etcd1) $(daemon_pid etcd2)"
e0=$(cpu_ticks $etcd_pids); c0=$(cpu_ticks "$(daemon_pid c1)"); a0=$(cpu_ticks "$(daemon_pid a1)")
run_load burst burst "$jobs"
e1=$(cpu_ticks $etcd_pids); c1=$(cpu_ticks "$(daemon_pid c1)"); a1=$(cpu_ticks "$(daemon_pid a1)")
pps=$(field placements_per_s)
# Until the agent has reported every job running: etcd's put counter settles.
settled() { local a b; a=$(etcd_keys_written); sleep 2; b=$(etcd_keys_written); [ "$a" = "$b" ]; }
wait_for 120 settled || bail_out "etcd's writes did not settle after the burst"
w1=$(etcd_keys_written); r1=$(etcd_revision)
[ -n "$w0" ] && [ -n "$w1" ] && [ -n "$r0" ] && [ -n "$r1" ] || bail_out "etcd's counters could not be read"
bench_figure placements_per_s "$pps"
bench_figure etcd_put_ceiling_per_s "$ceiling"
bench_figure placements_to_put_ceiling "$(awk -v p="$pps" -v c="$ceiling" 'BEGIN { if (c > 0) printf "%.3f", p / c }')"
echo "# burst of ${jobs} jobs in requests of 250, 8 in flight; the ceiling: raw single-key puts, 64 in flight, same cluster"
bench_figure etcd_writes_per_placement "$(awk -v a="$w0" -v b="$w1" -v n="$jobs" 'BEGIN { printf "%.2f", (b - a) / n }')"
bench_figure etcd_revisions_per_placement "$(awk -v a="$r0" -v b="$r1" -v n="$jobs" 'BEGIN { printf "%.3f", (b - a) / n }')"
echo "# etcd: $((w1 - w0)) keys written (puts and deletes) and $((r1 - r0)) revisions from the burst's start until every job was reported running; reference: 3 keys (submission, allocation, running)"
# cpu_split N ETCD COORD AGENT LOAD: CPU per job in ms of the etcd members,
# the coordinator, the agent (ticks spent on N jobs), the load generator
# (its cpu_s), then their sum.
cpu_split() {
    [ -n "$5" ] && [ "$1" -gt 0 ] || bail_out "no CPU figures for the phase (load generator's: '$5')"
    awk -v n="$1" -v e="$2" -v c="$3" -v a="$4" -v l="$5" -v hz="$(getconf CLK_TCK)" 'BEGIN {
        e = e / hz * 1000 / n; c = c / hz * 1000 / n; a = a / hz * 1000 / n; l = l * 1000 / n
        printf "%.3f %.3f %.3f %.3f %.3f\n", e, c, a, l, e + c + a + l }'
}
read -r be bc ba bl burst_ms <<<"$(cpu_split "$jobs" $((e1 - e0)) $((c1 - c0)) $((a1 - a0)) "$(field cpu_s)")"
bench_figure cpu_ms_per_placement "$(printf '%.2f' "$burst_ms")"
awk -v e="$be" -v c="$bc" -v a="$ba" -v l="$bl" -v t="$burst_ms" -v cores="$(nproc)" 'BEGIN {
    printf "# CPU per placement (ms): etcd members %.2f, coordinator %.2f, agent %.2f, load generator %.2f;", e, c, a, l
    printf " %d cores: at most %.0f placements/s at this cost\n", cores, cores * 1000 / t }'
rss=$(awk '/VmRSS/ {print $2}' /proc/"$(daemon_pid c1)"/status)
echo "# coordinator RSS after $((jobs + rate * secs + 200 * secs + 20)) jobs: $((rss / 1024)) MiB"

# Latency at half the measured burst rate.
half=$(awk -v p="$pps" 'BEGIN { printf "%d", p / 2 < 1 ? 1 : p / 2 }')
busy_buckets "$API" gpupool_coordinator_loop_busy_seconds >"$T_TMP/cbusy0"
busy_buckets "$AGENT_METRICS" gpupool_agent_loop_busy_seconds >"$T_TMP/abusy0"
e0=$(cpu_ticks $etcd_pids); c0=$(cpu_ticks "$(daemon_pid c1)"); a0=$(cpu_ticks "$(daemon_pid a1)")
LOAD_PREFIX=half run_load "rate $half (half the burst's)" rate "$half" "$secs"
e1=$(cpu_ticks $etcd_pids); c1=$(cpu_ticks "$(daemon_pid c1)"); a1=$(cpu_ticks "$(daemon_pid a1)")
busy_buckets "$API" gpupool_coordinator_loop_busy_seconds >"$T_TMP/cbusy1"
busy_buckets "$AGENT_METRICS" gpupool_agent_loop_busy_seconds >"$T_TMP/abusy1"
bench_figure submit_to_commit_p50_ms_at_half "$(field p50_ms)"
bench_figure submit_to_commit_p99_ms_at_half "$(field p99_ms)"
# A loop's longest pass is what a request, a bid or a watch event could wait
# behind, besides the CPU the other processes take.
bench_figure coordinator_longest_loop_pass_ms_at_half "$(longest_pass "$T_TMP/cbusy0" "$T_TMP/cbusy1")"
bench_figure agent_longest_loop_pass_ms_at_half "$(longest_pass "$T_TMP/abusy0" "$T_TMP/abusy1")"
# What one job costs when each comes alone, beside the burst's: the half
# rate asks the machine for half the burst's rate times this.
read -r he hc ha hl half_ms <<<"$(cpu_split "$(field committed)" $((e1 - e0)) $((c1 - c0)) $((a1 - a0)) "$(field cpu_s)")"
bench_figure cpu_ms_per_one_job_request "$(printf '%.2f' "$half_ms")"
awk -v e="$he" -v c="$hc" -v a="$ha" -v l="$hl" -v t="$half_ms" -v b="$burst_ms" -v r="$half" \
    -v p="$pps" -v cores="$(nproc)" 'BEGIN {
    printf "# CPU per job at %d jobs/s, one per request (ms): etcd members %.2f, coordinator %.2f, agent %.2f,", r, e, c, a
    printf " load generator %.2f; %.2f times the burst'"'"'s per placement: this phase asks for %.2f cores of %d", l, t / b, r * t / 1000, cores
    printf " (the burst used %.2f)\n", p * b / 1000 }'

# Overload: twice the burst's rate for 60 s, one job per request, jobs of
# 5 s; every job the API accepted must be committed within 60 s after.
over=$((2 * ${pps%.*}))
LOAD_PREFIX=over LOAD_DURATION_S=5 LOAD_WAIT_S=60 LOAD_REJECTS_OK=1 \
    run_load "overload, $over jobs/s offered" rate "$over" 60
bench_figure leases_lost_under_overload "$(( $(leases_lost) - lost0 ))"
bench_figure overload_uncommitted_after_60s "$(field uncommitted_accepted)"
echo "# overload: $(field accepted) of $((over * 60)) jobs accepted by the API; leader and agent on 3 s leases since the burst"
stop_daemon a1 >/dev/null
stop_daemon c1 >/dev/null
