#!/usr/bin/env bash
# Web console benchmark: what open consoles cost the coordinator that
# serves them, and how soon they show a change.  One etcd member (tmpfs),
# one coordinator, gpupool-agent --simulate 1000 (8 A100 each: 8,000 GPUs),
# BENCH_UI_JOBS jobs placed, and one new job a second throughout (so the
# consoles' views change every second and are rendered again).
#
#   bench: ui_coordinator_cpu_pct X        the coordinator's CPU (% of one core)
#                                         with BENCH_UI_CONSOLES (20) consoles open
#   bench: ui_coordinator_cpu_pct_idle X   the reference: the same pool and churn,
#                                         no console, measured just before
#   bench: ui_coordinator_cpu_pct_steady X the same consoles once the churn stops (their
#                                         answers are 304s: the cost of an open console)
#   bench: ui_update_latency_ms_p50 X      a job's submission answered -> in an open
#   bench: ui_update_latency_ms_max X      console's queue data (polling each second)
#
# The consoles are emulated (tests/bench/ui_consoles.py) as app.js behaves:
# one request a second each, with If-None-Match, pages in turn the overview,
# the nodes page (100 nodes) and the queue.
. "$(dirname "$0")/../lib.sh"

if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    rmdir "$T_TMP" && T_TMP=$(mktemp -d /dev/shm/gpupool-bench.XXXXXX) || bail_out "mktemp"
fi
consoles=${BENCH_UI_CONSOLES:-20}
secs=${BENCH_UI_SECONDS:-30}
njobs=${BENCH_UI_JOBS:-2000}
py=/usr/bin/python3
[ -x "$py" ] || py=python3

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 --log-level warn --lease-ttl 5s || bail_out "coordinator did not start"
pool_agent a1 r1 1000 8xA100:81920 --log-level warn --usage-interval 60s --lease-ttl 10s ||
    bail_out "agent did not start"
API=${POOL_API[c1]}
AUTH="Authorization: Bearer $GPUPOOL_TOKEN"
wait_for 60 bash -c "curl -s -H '$AUTH' $API/v1/usage | grep -q '\"nodes\": *1000'" ||
    bail_out "the coordinator does not see 1000 nodes"
pool_submit c1 "$T_TMP/acked" fill 1 "$njobs" '"devices": 1, "mem_mib": 8192, "compute_percent": 10, "duration_s": 3600, "owner": "fill"'
placed() { curl -s -H "$AUTH" "$API/v1/usage" | tr -d ' \n' | grep -q '"pool":{[^}]*"jobs_pending":0'; }
wait_for 120 placed || bail_out "the $njobs jobs were not placed"
echo "# 1 region, 1000 simulated nodes x 8 A100 (8000 GPUs), $(wc -l <"$T_TMP/acked") jobs placed"

# One new job a second, until the steady measurement.
churn() {
    i=0
    while :; do
        i=$((i + 1))
        curl -s -o /dev/null -m 5 -H "$AUTH" --data-binary \
            "{\"id\": \"churn-$i\", \"devices\": 1, \"mem_mib\": 4096, \"compute_percent\": 5, \"duration_s\": 3600, \"owner\": \"churn\"}" \
            "$API/v1/jobs"
        sleep 1
    done
}
churn &
churn_pid=$!
track_pid $churn_pid

hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' /proc/"$1"/stat; }
cpid=$(daemon_pid c1)
# pct TICKS NANOSECONDS: CPU time as a percentage of one core
pct() { awk -v d="$1" -v hz="$hz" -v ns="$2" 'BEGIN { printf "%.1f", 100 * d / hz / (ns / 1e9) }'; }

sleep 3   # the churn under way
t0=$(cpu_ticks "$cpid"); s0=$(date +%s%N)
sleep "$secs"
t1=$(cpu_ticks "$cpid"); s1=$(date +%s%N)
idle=$(pct $((t1 - t0)) $((s1 - s0)))

t0=$(cpu_ticks "$cpid"); s0=$(date +%s%N)
out=$("$py" "$GP_ROOT/tests/bench/ui_consoles.py" "$API" "$GPUPOOL_TOKEN" consoles "$consoles" "$secs" 2>&1)
st=$?
t1=$(cpu_ticks "$cpid"); s1=$(date +%s%N)
echo "$out" | sed 's/^/# consoles: /'
[ "$st" -eq 0 ] || bail_out "the emulated consoles failed (exit $st)"
busy=$(pct $((t1 - t0)) $((s1 - s0)))

out=$("$py" "$GP_ROOT/tests/bench/ui_consoles.py" "$API" "$GPUPOOL_TOKEN" latency 10 2>&1)
st=$?
echo "$out" | sed 's/^/# latency: /'
[ "$st" -eq 0 ] || bail_out "the latency measurement failed (exit $st)"

lat=$out

kill "$churn_pid"; wait "$churn_pid" 2>/dev/null
sleep 2
t0=$(cpu_ticks "$cpid"); s0=$(date +%s%N)
out=$("$py" "$GP_ROOT/tests/bench/ui_consoles.py" "$API" "$GPUPOOL_TOKEN" consoles "$consoles" "$secs" 2>&1)
st=$?
t1=$(cpu_ticks "$cpid"); s1=$(date +%s%N)
echo "$out" | sed 's/^/# steady consoles: /'
[ "$st" -eq 0 ] || bail_out "the emulated consoles failed (exit $st)"
steady=$(pct $((t1 - t0)) $((s1 - s0)))

bench_figure ui_coordinator_cpu_pct "$busy"
bench_figure ui_coordinator_cpu_pct_idle "$idle"
bench_figure ui_coordinator_cpu_pct_steady "$steady"
bench_figure ui_update_latency_ms_p50 "$(echo "$lat" | awk '$1 == "p50_ms" {print $2}')"
bench_figure ui_update_latency_ms_max "$(echo "$lat" | awk '$1 == "max_ms" {print $2}')"
echo "# $consoles consoles for ${secs} s each polling once a second; the reference: the same ${secs} s before, no console; one new job a second until the steady measurement"
echo "# load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
stop_daemon a1 >/dev/null
stop_daemon c1; st=$?
[ "$st" -eq 0 ] || bail_out "the coordinator exited $st"
