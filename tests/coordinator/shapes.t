#!/usr/bin/env bash
# The coordinator learns the workload's typical shapes from the jobs it
# sees and places with them:
# 1. jobs of two shapes, 6 and 3 of them: the leader's metrics show each
#    shape's share of the weight (2/3, 1/3) and 9 jobs; a standby fed by
#    the same watch shows the same; the default policy is gpupool.
# 2. a coordinator started afterwards rebuilds the histogram from the job
#    records it lists; once the others are gone it leads, and a job of the
#    first shape is placed with the learned shapes: 7/10 and 3/10.
# 3. a job whose record is removed (ended, past the retention) leaves the
#    histogram: 6/9 and 3/9.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "c1 did not start"
wait_for 10 bash -c '[ -n "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/leader/r1 --print-value-only)" ]'
pool_coordinator c2 r1 || bail_out "c2 did not start"
pool_agent a1 r1 4 8xA100:81920 --cpu-milli 64000 || bail_out "agent did not start"
is "$(pool_leader r1)" c1 "c1 leads"
like "$("$GP_BUILD/gpupool-coordinator" --help 2>&1 | grep -e '--policy ')" '\(default gpupool\)' \
     "gpupool is the default policy"

SLICE='"devices": 1, "mem_mib": 8192, "compute_percent": 25, "cpu_milli": 2000'
WHOLE='"devices": 2, "whole": true, "cpu_milli": 8000'
A='gpupool_coordinator_typical_shape{cpu_milli="2000",gpu_milli="250",gpus="1",model=""}'
B='gpupool_coordinator_typical_shape{cpu_milli="8000",gpu_milli="1000",gpus="2",model=""}'
N=gpupool_coordinator_typical_shape_jobs
pool_submit c1 "$T_TMP/acked" s 1 6 "$SLICE"
pool_submit c1 "$T_TMP/acked" w 1 3 "$WHOLE"
is "$(sort -u "$T_TMP/acked" | wc -l)" 9 "nine jobs acknowledged"
for id in s-1 s-6 w-1 w-3; do
    wait_state c1 "$id" running 30 || break
done
ok $? "the jobs run"

# shares NAME: "<share of A> <share of B> <jobs>" on NAME's /metrics, to 3 places.
shares() {
    printf '%.3f %.3f %d' "$(pool_metric "$1" "$A")" "$(pool_metric "$1" "$B")" \
        "$(pool_metric "$1" "$N")" 2>/dev/null
}
shares_are() { [ "$(shares "$1")" = "$2" ]; }
wait_for 10 shares_are c1 "0.667 0.333 9"
is "$(shares c1)" "0.667 0.333 9" "the leader learned 2/3 of one shape, 1/3 of the other, 9 jobs"
wait_for 10 shares_are c2 "0.667 0.333 9"
is "$(shares c2)" "0.667 0.333 9" "the standby holds the same histogram (the same watch)"
upd=$(pool_metric c1 gpupool_coordinator_typical_updates_total)
[ "${upd:-0}" -ge 1 ] 2>/dev/null; ok $? "the leader gave them to its placement engine ($upd updates)"

# --- 2. a coordinator that lists the store afterwards
pool_coordinator c3 r1 --job-retention 1s || bail_out "c3 did not start"
wait_for 10 shares_are c3 "0.667 0.333 9"
is "$(shares c3)" "0.667 0.333 9" "a coordinator started later rebuilds it from the job records"
stop_daemon c1; is "$?" 0 "c1 exits 0 on SIGTERM"
stop_daemon c2; is "$?" 0 "c2 exits 0 on SIGTERM"
c3_leads() { [ "$(pool_leader r1)" = c3 ]; }
wait_for 30 c3_leads; ok $? "c3 leads"
pool_submit c3 "$T_TMP/acked" s 7 7 "$SLICE"
wait_state c3 s-7 running 30; ok $? "a job placed by the new leader runs"
wait_for 10 shares_are c3 "0.700 0.300 10"
is "$(shares c3)" "0.700 0.300 10" "the new leader counts it on top of what it rebuilt: 7/10, 3/10"
pool_check --placed <(sort -u "$T_TMP/acked") >"$T_TMP/check.out"
is "$?" 0 "every job placed exactly once"
diag "$(cat "$T_TMP/check.out")"

# --- 3. a record that goes takes its job out
gpupool_ c3 cancel s-1 >/dev/null; is "$?" 0 "s-1 cancelled"
record_gone() { [ -z "$(etcdctl_ get /gpupool/jobs/s-1 --print-value-only)" ]; }
wait_for 30 record_gone; ok $? "its record is removed after the retention (1 s)"
wait_for 10 shares_are c3 "0.667 0.333 9"
is "$(shares c3)" "0.667 0.333 9" "the removed record's job is taken out of the shapes: 6/9, 3/9"
stop_daemon a1; is "$?" 0 "the agent exits 0 on SIGTERM"
stop_daemon c3; is "$?" 0 "c3 exits 0 on SIGTERM"
done_testing
