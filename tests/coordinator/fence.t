#!/usr/bin/env bash
# Fencing: a leader that stops between deciding and committing (fault
# injection: GPUPOOL_FAULT_COMMIT_PAUSE_MS, the whole process as a stopped
# VM would) loses its lease meanwhile; a standby takes over and places the
# same jobs; when the stalled leader wakes up and commits, etcd refuses the
# commit.  Nothing is double-booked.
. "$(dirname "$0")/../lib.sh"

etcd_start 3 || bail_out "etcd did not start"
GPUPOOL_FAULT_COMMIT_PAUSE_MS=4000 pool_coordinator c1 r1 || bail_out "c1 did not start"
wait_for 10 bash -c '[ -n "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/leader/r1 --print-value-only)" ]'
pool_coordinator c2 r1 || bail_out "c2 did not start"
# One node, one GPU: room for exactly 4 quarter-GPU jobs.
pool_agent a1 r1 1 1xA10:24576 || bail_out "agent did not start"
is "$(pool_leader r1)" c1 "c1 leads"

pool_submit c2 "$T_TMP/acked" q 1 6
is "$(sort -u "$T_TMP/acked" | wc -l)" 6 "6 jobs acknowledged for 4 slots"
wait_for 20 grep -q 'fault injection: pausing' "$T_TMP/c1.log"
ok $? "c1 decided a round and stalls before committing it"
wait_for 15 bash -c '[ "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/leader/r1 --print-value-only)" = c2 ]'
ok $? "c2 takes over while c1 stalls"
four() { [ "$(ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" get /gpupool/alloc/ --prefix --keys-only | grep -c .)" -eq 4 ]; }
wait_for 15 four
ok $? "c2 fills the GPU"
# c1 wakes up and commits its stale decision: etcd must refuse it.
metric() { pool_metric c1 "$1"; }
wait_for 15 bash -c "curl -s ${POOL_API[c1]}/metrics | grep -q '^gpupool_coordinator_commit_conflicts_total [1-9]'"
ok $? "the stalled leader's commit was refused (commit conflicts: $(metric gpupool_coordinator_commit_conflicts_total))"
is "$(metric gpupool_coordinator_placements_total)" 0 "the stalled leader placed nothing"
pool_check >"$T_TMP/check.out"; st=$?
diag "$(cat "$T_TMP/check.out")"
is "$st" 0 "no double-booking"
like "$(cat "$T_TMP/check.out")" "allocations=4 " "exactly 4 allocations"
stop_daemon a1; is "$?" 0 "agent exits 0"
stop_daemon c1; is "$?" 0 "c1 exits 0"
stop_daemon c2; is "$?" 0 "c2 exits 0"
done_testing
