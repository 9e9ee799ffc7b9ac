#!/usr/bin/env bash
# Every coordinator metric README lists is on /metrics and moves when its
# event happens: queue depth, placements, the bid round, commit and
# submit-to-commit latency histograms, bids, protocol errors, unauthorized
# requests, allocated and registered GPU milli by region and model.  (Commit
# conflicts: tests/coordinator/fence.t, which provokes one.)  And what makes
# a scrape of every coordinator add up: promtool check metrics passes on
# the leader's and a standby's /metrics, counters exist at 0 before their
# first event, pool-wide gauges come from the leader only.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
pool_coordinator c2 r1 || bail_out "the standby did not start"
pool_agent a1 r1 1 2xA10:24576 || bail_out "agent did not start"
API=${POOL_API[c1]}
scrape() { curl -s -m 5 "$API/metrics" >"$T_TMP/metrics"; }
# promtool_ok URL NAME: promtool check metrics passes on URL's /metrics.
promtool_ok() {
    curl -s -m 5 "$1/metrics" >"$T_TMP/promtool.in"
    local out rc
    out=$(promtool check metrics <"$T_TMP/promtool.in" 2>&1); rc=$?
    [ -s "$T_TMP/promtool.in" ] && [ "$rc" = 0 ] && [ -z "$out" ] && return 0
    diag "promtool on $2: rc=$rc $out"
    return 1
}
# one_label_set: no family of the last scrape mixes label names.
one_label_set() {
    awk '!/^#/ { n = $1; l = ""; if ((i = index(n, "{")) > 0) { l = substr(n, i + 1); n = substr(n, 1, i - 1) }
                 sub(/_(bucket|sum|count)$/, "", n)
                 gsub(/="([^"\\]|\\.)*"/, "", l); sub(/}$/, "", l); gsub(/,?le$/, "", l)
                 if (n in seen && seen[n] != l) { print n ": {" seen[n] "} and {" l "}"; bad = 1 }
                 seen[n] = l }
         END { exit bad }' "$T_TMP/metrics"
}
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
         gpupool_coordinator_unauthorized_total gpupool_coordinator_loop_busy_seconds_count; do
    printf -v "before_${s}" '%s' "$(msum "$s")"
done
b() { local v="before_$1"; echo "${!v}"; }
# --- before any event
for s in gpupool_coordinator_unauthorized_total gpupool_coordinator_commit_conflicts_total \
         'gpupool_coordinator_protocol_errors_total{what="message"}' \
         'gpupool_coordinator_protocol_errors_total{what="bid-not-asked"}' \
         gpupool_coordinator_curve_refusals_total gpupool_coordinator_preempted_total; do
    grep -q "^$s 0\$" "$T_TMP/metrics"; ok $? "$s is 0 before its first event"
done
grep -q '^gpupool_coordinator_round_seconds_count 0$' "$T_TMP/metrics"
ok $? "histograms exist, empty, before the first round"
is "$(m 'gpupool_gpu_milli_allocated{region="r1",model="A10"}')" 0 "nothing allocated in r1 at first"
promtool_ok "$API" "the leader"; ok $? "promtool check metrics passes on the leader"
promtool_ok "${POOL_API[c2]}" "the standby"; ok $? "promtool check metrics passes on the standby"

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
         gpupool_coordinator_bids_total gpupool_coordinator_loop_busy_seconds_count; do
    gt "$(msum "$s")" "$(b "$s")"; ok $? "$s moves ($(b "$s") -> $(msum "$s"))"
done
for h in round commit submit_to_commit loop_busy; do
    grep -q "^gpupool_coordinator_${h}_seconds_bucket{le=\"" "$T_TMP/metrics"
    ok $? "gpupool_coordinator_${h}_seconds is a histogram with buckets"
done
is "$(m 'gpupool_gpu_milli_allocated{region="r1",model="A10"}')" 500 "gpupool_gpu_milli_allocated{region=\"r1\",model=\"A10\"} is 500"
is "$(m 'gpupool_gpu_milli_capacity{region="r1",model="A10"}')" 2000 "gpupool_gpu_milli_capacity{region=\"r1\",model=\"A10\"} is 2000"
is "$(msum gpupool_gpu_milli_allocated)" 500 "sum(gpupool_gpu_milli_allocated) counts the slice once"
one_label_set; ok $? "no family mixes label sets"
promtool_ok "$API" "the leader, after a placement"; ok $? "promtool check metrics passes after a placement"

# --- the standby: pool-wide gauges come from the leader only
curl -s -m 5 "${POOL_API[c2]}/metrics" >"$T_TMP/standby"
grep -q '^gpupool_coordinator_leader{region="r1"} 0$' "$T_TMP/standby"; ok $? "the standby says it does not lead"
grep -q '^gpupool_coordinator_leader{region="r1"} 1$' "$T_TMP/metrics"; ok $? "the leader says it leads"
for s in gpupool_gpu_milli_allocated gpupool_gpu_milli_capacity gpupool_coordinator_queue_depth \
         gpupool_coordinator_queue_oldest_seconds gpupool_coordinator_store_db_bytes; do
    grep -q "^$s[{ ]" "$T_TMP/metrics"; ok $? "the leader shows $s"
    ! grep -q "^$s[{ ]" "$T_TMP/standby"; ok $? "the standby does not"
done

# --- queue depth: one whole GPU is free, two whole-GPU jobs come
is "$(m gpupool_coordinator_queue_depth)" 0 "queue depth 0 with nothing waiting"
submit '{"id": "w1", "devices": 1}'
submit '{"id": "w2", "devices": 1}'
# series_is SERIES VALUE: a fresh scrape shows SERIES at VALUE.
series_is() { scrape; [ "$(m "$1")" = "$2" ]; }
wait_for 15 series_is 'gpupool_gpu_milli_allocated{region="r1",model="A10"}' 1500
ok $? "allocated GPU milli follows when one of them is placed (1500)"
wait_for 15 series_is gpupool_coordinator_queue_depth 1
ok $? "gpupool_coordinator_queue_depth is 1 while the other waits"
# The console's history samples the same figure every 10 s, from a total
# kept as allocations come and go (not a pass over them): a new sample
# shows 1500 too.
# last_sample_alloc: the allocated milli of the overview's newest sample.
last_sample_alloc() {
    curl -s -m 5 -H "Authorization: Bearer $GPUPOOL_TOKEN" "$API/ui/api/overview" |
        python3 -c 'import json, sys; s = json.load(sys.stdin)["history"]["samples"]; print(s[-1][2] if s else -1)'
}
sample_is() { [ "$(last_sample_alloc)" = "$1" ]; }
wait_for 25 sample_is 1500; ok $? "the console's history samples 1500 allocated too ($(last_sample_alloc))"
waiting=$(for j in w1 w2; do [ "$(job_state c1 $j)" = pending ] && echo $j; done)
gpupool_ c1 cancel "$waiting" >/dev/null
wait_for 15 series_is gpupool_coordinator_queue_depth 0; ok $? "and back to 0 when the waiting job ($waiting) is cancelled"

# --- protocol errors: messages no agent would send, on the bid socket
bid=$(etcdctl_ get /gpupool/coordinators/r1/c1 --print-value-only | grep -o '"bid":"[^"]*"' | cut -d'"' -f4)
like "$bid" '^tcp://' "the coordinator's bid endpoint ($bid)"
"$GP_BUILD/tests/coordinator/wiresend" "$bid" gpupool/9 BIDS '{}'
"$GP_BUILD/tests/coordinator/wiresend" "$bid" gpupool/2 HELLO 'not json'
two_more() { scrape; [ "$(msum gpupool_coordinator_protocol_errors_total)" -ge $(( $(b gpupool_coordinator_protocol_errors_total) + 2 )) ]; }
wait_for 10 two_more
ok $? "gpupool_coordinator_protocol_errors_total counts a wrong version and a body that is not JSON ($(msum gpupool_coordinator_protocol_errors_total))"
grep -q 'message dropped agent=wiresend reason="unknown protocol version gpupool/9"' "$T_TMP/c1.log"
ok $? "the log line of a dropped message names its sender"

# --- a bid for a job the round did not ask about: bidspoof plays the agent
# of a node ("ghost-0", a copy of a1-0000's record) and answers the call
# for bids with a bid for "not-asked".
etcdctl_ get /gpupool/nodes/r1/a1-0000 --print-value-only | sed 's/"a1-0000"/"ghost-0"/g' |
    etcdctl_ put /gpupool/nodes/r1/ghost-0 >/dev/null
ok $? "a node record for ghost-0"
"$GP_BUILD/tests/coordinator/bidspoof" "$bid" r1 ghost-0 2>"$T_TMP/bidspoof.err" &
spoof=$!
# Until bidspoof has answered a call (its HELLO may arrive after a first
# submission), a small job every half second.
n=0
answered() {
    kill -0 "$spoof" 2>/dev/null || return 0
    n=$((n + 1))
    submit "{\"id\": \"small-$n\", \"devices\": 1, \"mem_mib\": 1024, \"compute_percent\": 5}"
    local i
    for i in $(seq 10); do kill -0 "$spoof" 2>/dev/null || return 0; sleep 0.05; done
    return 1
}
wait_for 30 answered
wait "$spoof"; ok $? "bidspoof was called for bids and answered for a job it was not asked about"
unasked() { scrape; [ "$(m 'gpupool_coordinator_protocol_errors_total{what="bid-not-asked"}')" -ge 1 ]; }
wait_for 10 unasked; ok $? "gpupool_coordinator_protocol_errors_total{what=\"bid-not-asked\"} counts it"
grep -q 'bid dropped agent=bidspoof job=not-asked reason="not asked of this agent"' "$T_TMP/c1.log"
ok $? "and the coordinator logs it, naming the agent and the job"
kill -0 "$(daemon_pid c1)"; ok $? "the coordinator is still up"

stop_daemon a1; is "$?" 0 "agent exits 0"
# Its nodes are gone: what they hold no longer counts (the total is counted
# again once a node changed).
wait_for 25 sample_is 0; ok $? "the history's next samples count nothing allocated ($(last_sample_alloc))"
stop_daemon c2; is "$?" 0 "the standby exits 0"
stop_daemon c1; is "$?" 0 "coordinator exits 0"
done_testing
