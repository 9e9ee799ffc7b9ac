#!/usr/bin/env bash
# Every coordinator metric README lists is on /metrics and moves when its
# event happens: queue depth, placements, the bid round, commit and
# submit-to-commit latency histograms, bids, protocol errors, unauthorized
# requests, per-region and per-model allocated GPU milli.  (Commit
# conflicts: tests/coordinator/fence.t, which provokes one.)
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
pool_agent a1 r1 1 2xA10:24576 || bail_out "agent did not start"
API=${POOL_API[c1]}
scrape() { curl -s -m 5 "$API/metrics" >"$T_TMP/metrics"; }
# m SERIES: the value of one series (exact name and labels) in the last
# scrape, 0 when absent; msum NAME: the sum of every series of NAME.
m() { awk -v s="$1" '$1 == s { v = $2 } END { print v + 0 }' "$T_TMP/metrics"; }
msum() { awk -v n="$1" '$1 == n || index($1, n "{") == 1 { v += $2 } END { print v + 0 }' "$T_TMP/metrics"; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
# above FN NAME BEFORE: a fresh scrape shows FN NAME (m or msum) above BEFORE.
above() { scrape; gt "$($1 "$2")" "$3"; }
submit() { echo "$1" | gpupool_ c1 submit - >/dev/null; }

scrape
for s in gpupool_coordinator_placements_total gpupool_coordinator_round_seconds_count \
         gpupool_coordinator_commit_seconds_count gpupool_coordinator_submit_to_commit_seconds_count \
         gpupool_coordinator_bids_total gpupool_coordinator_protocol_errors_total \
         gpupool_coordinator_unauthorized_total; do
    printf -v "before_${s}" '%s' "$(msum "$s")"
done
b() { local v="before_$1"; echo "${!v}"; }
is "$(m 'gpupool_gpu_milli_allocated{region="r1"}')" 0 "nothing allocated in r1 at first"

# --- unauthorized requests
is "$(curl -s -o /dev/null -w '%{http_code}' "$API/v1/jobs")" 401 "a request without a token is refused"
wait_for 5 above msum gpupool_coordinator_unauthorized_total "$(b gpupool_coordinator_unauthorized_total)"
ok $? "gpupool_coordinator_unauthorized_total moves ($(msum gpupool_coordinator_unauthorized_total))"

# --- a placement
submit '{"id": "half", "devices": 1, "mem_mib": 12288, "compute_percent": 10}'
wait_state c1 half running 15; ok $? "a half-GPU job is placed and runs"
scrape
for s in gpupool_coordinator_placements_total gpupool_coordinator_round_seconds_count \
         gpupool_coordinator_commit_seconds_count gpupool_coordinator_submit_to_commit_seconds_count \
         gpupool_coordinator_bids_total; do
    gt "$(msum "$s")" "$(b "$s")"; ok $? "$s moves ($(b "$s") -> $(msum "$s"))"
done
for h in round commit submit_to_commit; do
    grep -q "^gpupool_coordinator_${h}_seconds_bucket{le=\"" "$T_TMP/metrics"
    ok $? "gpupool_coordinator_${h}_seconds is a histogram with buckets"
done
is "$(m 'gpupool_gpu_milli_allocated{region="r1"}')" 500 "gpupool_gpu_milli_allocated{region=\"r1\"} is 500"
is "$(m 'gpupool_gpu_milli_allocated{model="A10"}')" 500 "gpupool_gpu_milli_allocated{model=\"A10\"} is 500"
is "$(m 'gpupool_gpu_milli_total{region="r1"}')" 2000 "gpupool_gpu_milli_total{region=\"r1\"} is 2000"

# --- queue depth: one whole GPU is free, two whole-GPU jobs come
is "$(m gpupool_coordinator_queue_depth)" 0 "queue depth 0 with nothing waiting"
submit '{"id": "w1", "devices": 1}'
submit '{"id": "w2", "devices": 1}'
# series_is SERIES VALUE: a fresh scrape shows SERIES at VALUE.
series_is() { scrape; [ "$(m "$1")" = "$2" ]; }
wait_for 15 series_is 'gpupool_gpu_milli_allocated{region="r1"}' 1500
ok $? "allocated GPU milli follows when one of them is placed (1500)"
wait_for 15 series_is gpupool_coordinator_queue_depth 1
ok $? "gpupool_coordinator_queue_depth is 1 while the other waits"
waiting=$(for j in w1 w2; do [ "$(job_state c1 $j)" = pending ] && echo $j; done)
gpupool_ c1 cancel "$waiting" >/dev/null
wait_for 15 series_is gpupool_coordinator_queue_depth 0; ok $? "and back to 0 when the waiting job ($waiting) is cancelled"

# --- protocol errors: messages no agent would send, on the bid socket
bid=$(etcdctl_ get /gpupool/coordinators/r1/c1 --print-value-only | grep -o '"bid":"[^"]*"' | cut -d'"' -f4)
like "$bid" '^tcp://' "the coordinator's bid endpoint ($bid)"
"$GP_BUILD/tests/coordinator/wiresend" "$bid" gpupool/9 HELLO '{}'
"$GP_BUILD/tests/coordinator/wiresend" "$bid" gpupool/2 HELLO 'not json'
two_more() { scrape; [ "$(msum gpupool_coordinator_protocol_errors_total)" -ge $(( $(b gpupool_coordinator_protocol_errors_total) + 2 )) ]; }
wait_for 10 two_more
ok $? "gpupool_coordinator_protocol_errors_total counts a wrong version and a body that is not JSON ($(msum gpupool_coordinator_protocol_errors_total))"
kill -0 "$(daemon_pid c1)"; ok $? "the coordinator is still up"

stop_daemon a1; is "$?" 0 "agent exits 0"
stop_daemon c1; is "$?" 0 "coordinator exits 0"
done_testing
