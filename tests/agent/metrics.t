#!/usr/bin/env bash
# Every agent metric README lists is on /metrics and moves when its event
# happens: bids, job state changes, per-slice device memory, compute share
# achieved and time suspended, etcd errors, leases lost; counters are there
# at 0 before their first event, a job's slice series go when the job ends,
# and promtool check metrics passes on /metrics.  Jobs run real
# processes under the shim against the fake CUDA driver.  (Protocol
# errors: tests/agent/bids.t, whose bidprobe sends malformed messages.)
. "$(dirname "$0")/../lib.sh"

SHIMTEST=$GP_BUILD/tests/shim/shimtest
PRELOAD=$GP_BUILD/libgpupool-shim.so
if [ "${GP_SAN:-0}" = 1 ]; then
    PRELOAD="$(gcc -print-file-name=libasan.so) $PRELOAD"
    export ASAN_OPTIONS=detect_leaks=0
fi
FAKELIB=$GP_BUILD/tests/fakecuda
export FAKECUDA_STATE=$T_TMP/fakegpu FAKECUDA_DEVICES=1 FAKECUDA_MEM_MIB=24576 FAKECUDA_MODEL=A10
now_ns() { LD_LIBRARY_PATH=$FAKELIB "$SHIMTEST" now; }

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
alloc_port mport
start_daemon agent 'gpupool-agent ready' 20 -- "$GP_BUILD/gpupool-agent" --name gpu1 --region r1 \
    --nvml "$FAKELIB/libnvidia-ml.so.1" --shim "$PRELOAD" --etcd-endpoints "$ETCD_ENDPOINTS" \
    --state-dir "$T_TMP/state" --metrics-listen "127.0.0.1:$mport" --lease-ttl 3s \
    --heartbeat 500ms --stop-grace 2s --usage-interval 200ms || bail_out "agent did not start"
scrape() { curl -s -m 5 "http://127.0.0.1:$mport/metrics" >"$T_TMP/metrics"; }
m() { awk -v s="$1" '$1 == s { v = $2 } END { print v + 0 }' "$T_TMP/metrics"; }
msum() { awk -v n="$1" '$1 == n || index($1, n "{") == 1 { v += $2 } END { print v + 0 }' "$T_TMP/metrics"; }
# slice NAME JOB: the value of a per-slice series of JOB (one device).
slice() { awk -v n="$1" -v j="job_id=\"$2\"" 'index($1, n "{") == 1 && index($1, j) { v = $2 } END { print v + 0 }' "$T_TMP/metrics"; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
above() { scrape; gt "$("$@")" "$ABOVE"; }   # ABOVE=x above FN ARGS...
submit() { echo "$1" | gpupool_ c1 submit - >/dev/null; }

scrape
for s in 'gpupool_agent_bids_total{result="refused"}' gpupool_agent_lease_lost_total \
         'gpupool_agent_protocol_errors_total{what="message"}' gpupool_agent_coordinators_refused_total \
         'gpupool_agent_jobs_total{state="failed"}'; do
    grep -q "^$s 0\$" "$T_TMP/metrics"; ok $? "$s is 0 before its first event"
done
# promtool_ok: promtool check metrics passes on the agent's /metrics.
promtool_ok() {
    scrape
    local out rc
    out=$(promtool check metrics <"$T_TMP/metrics" 2>&1); rc=$?
    [ -s "$T_TMP/metrics" ] && [ "$rc" = 0 ] && [ -z "$out" ] && return 0
    diag "promtool: rc=$rc $out"
    return 1
}
promtool_ok; ok $? "promtool check metrics passes at start"
bids0=$(msum gpupool_agent_bids_total)
started0=$(m 'gpupool_agent_jobs_total{state="started"}')
ended0=$(m 'gpupool_agent_jobs_total{state="succeeded"}')
etcd0=$(msum gpupool_agent_etcd_errors_total)
lost0=$(msum gpupool_agent_lease_lost_total)
fetch0=$(m gpupool_agent_record_fetch_seconds_count)
busy0=$(m gpupool_agent_loop_busy_seconds_count)

# --- bids and job state changes
submit "{\"id\": \"short\", \"devices\": 1, \"mem_mib\": 1024, \"compute_percent\": 10,
         \"restart\": \"never\", \"env\": {\"LD_LIBRARY_PATH\": \"$FAKELIB\"}, \"command\": [\"$SHIMTEST\", \"noop\"]}"
wait_state c1 short succeeded 20; ok $? "a short job runs to its end"
scrape
gt "$(msum gpupool_agent_bids_total)" "$bids0"; ok $? "gpupool_agent_bids_total moves ($bids0 -> $(msum gpupool_agent_bids_total))"
gt "$(m 'gpupool_agent_jobs_total{state="started"}')" "$started0"
ok $? "gpupool_agent_jobs_total{state=\"started\"} moves"
gt "$(m gpupool_agent_record_fetch_seconds_count)" "$fetch0"
ok $? "gpupool_agent_record_fetch_seconds counts the read of the job's record ($fetch0 -> $(m gpupool_agent_record_fetch_seconds_count))"
gt "$(m gpupool_agent_loop_busy_seconds_count)" "$busy0"
ok $? "gpupool_agent_loop_busy_seconds counts the loop's passes ($busy0 -> $(m gpupool_agent_loop_busy_seconds_count))"
# the agent counts the end when etcd's answer to its report is applied,
# which may come just after the record shows it
ABOVE=$ended0 wait_for 5 above m 'gpupool_agent_jobs_total{state="succeeded"}'
ok $? "gpupool_agent_jobs_total{state=\"succeeded\"} moves"

# --- per-slice memory, compute share, time suspended
submit "{\"id\": \"mem\", \"devices\": 1, \"mem_mib\": 4096, \"compute_percent\": 10,
         \"env\": {\"LD_LIBRARY_PATH\": \"$FAKELIB\"}, \"command\": [\"$SHIMTEST\", \"hold\", \"1024\", \"600\"]}"
wait_state c1 mem running 20; ok $? "a job holding 1 GiB of device memory runs"
mem_is_1g() { scrape; [ "$(slice gpupool_agent_slice_memory_bytes mem)" = 1073741824 ]; }
wait_for 15 mem_is_1g; ok $? "gpupool_agent_slice_memory_bytes{job_id=\"mem\"} is 1 GiB ($(slice gpupool_agent_slice_memory_bytes mem))"

submit "{\"id\": \"spin\", \"devices\": 1, \"mem_mib\": 1024, \"compute_percent\": 30,
         \"env\": {\"LD_LIBRARY_PATH\": \"$FAKELIB\"}, \"command\": [\"$SHIMTEST\", \"launchlog\", \"$(now_ns)\", \"600\", \"1000\"]}"
wait_state c1 spin running 20; ok $? "a job launching kernels runs"
ABOVE=0 wait_for 15 above slice gpupool_agent_slice_compute_percent spin
ok $? "gpupool_agent_slice_compute_percent{job_id=\"spin\"} moves above 0 ($(slice gpupool_agent_slice_compute_percent spin))"
is "$(slice gpupool_agent_slice_suspended_seconds spin)" 0 "gpupool_agent_slice_suspended_seconds{job_id=\"spin\"} is 0 before a suspension"
gpupool_ c1 suspend spin >/dev/null; ok $? "the job is suspended"
share_zero() { scrape; [ "$(slice gpupool_agent_slice_compute_percent spin)" = 0 ]; }
wait_for 15 share_zero; ok $? "while suspended, its compute share falls to 0"
# The shim adds a wait to the slice's suspended time when the wait ends.
gpupool_ c1 resume spin >/dev/null; ok $? "the job is resumed"
ABOVE=0 wait_for 15 above slice gpupool_agent_slice_suspended_seconds spin
ok $? "gpupool_agent_slice_suspended_seconds{job_id=\"spin\"} moves ($(slice gpupool_agent_slice_suspended_seconds spin))"
ABOVE=0 wait_for 15 above slice gpupool_agent_slice_compute_percent spin
ok $? "and its compute share is above 0 again"

promtool_ok; ok $? "promtool check metrics passes with slices running"

# --- a job's slice series go when it ends
gpupool_ c1 cancel mem >/dev/null; ok $? "the job holding memory is cancelled"
no_mem_series() { scrape; ! grep -q 'job_id="mem"' "$T_TMP/metrics"; }
wait_for 15 no_mem_series; ok $? "its slice series are gone from /metrics"
grep -q 'gpupool_agent_slice_memory_bytes{job_id="spin"' "$T_TMP/metrics"
ok $? "the running job's series stay"

# --- leases lost: revoke the agent's lease behind its back
lease=$(etcdctl_ get /gpupool/nodes/r1/gpu1 -w json | grep -o '"lease":[0-9]*' | cut -d: -f2)
etcdctl_ lease revoke "$(printf '%x' "$lease")" >/dev/null; ok $? "the agent's lease is revoked"
ABOVE=$lost0 wait_for 15 above msum gpupool_agent_lease_lost_total
ok $? "gpupool_agent_lease_lost_total moves ($lost0 -> $(msum gpupool_agent_lease_lost_total))"
registered() { [ -n "$(etcdctl_ get /gpupool/nodes/r1/gpu1 --keys-only)" ]; }
wait_for 15 registered; ok $? "and the agent registers again"

# --- etcd errors: etcd goes away for a while
etcd_member_kill 0
ABOVE=$etcd0 wait_for 30 above msum gpupool_agent_etcd_errors_total
ok $? "gpupool_agent_etcd_errors_total moves while etcd is down ($etcd0 -> $(msum gpupool_agent_etcd_errors_total))"
etcd_member_start 0
wait_for 20 etcdctl_ endpoint health

stop_daemon agent; is "$?" 0 "the agent exits 0"
stop_daemon c1; is "$?" 0 "the coordinator exits 0"
done_testing
