#!/usr/bin/env bash
# Partition: region r1's coordinator reaches etcd through a relay that is
# then stopped (packets neither delivered nor refused).  r1 stops committing
# (its lease expires, its commits are fenced); r2 keeps placing; jobs for r1
# wait, stored, and are placed once the partition heals.  Nothing is
# double-booked, checked on the final etcd state.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
alloc_port pport
start_daemon proxy 'tcpproxy ready' 5 -- "$GP_BUILD/tests/coordinator/tcpproxy" "$pport" \
    "${ETCD_CLIENT_URL[0]##*:}" || bail_out "proxy did not start"
ENDPOINTS=$ETCD_ENDPOINTS
ETCD_ENDPOINTS="http://127.0.0.1:$pport" pool_coordinator c1 r1 || bail_out "c1 did not start"
ETCD_ENDPOINTS=$ENDPOINTS
pool_coordinator c2 r2 || bail_out "c2 did not start"
pool_agent a1 r1 1 4xA10:24576 || bail_out "a1 did not start"
pool_agent a2 r2 1 4xA10:24576 || bail_out "a2 did not start"
submit() { echo "$2" | gpupool_ "$1" submit - >/dev/null; }
placements() { pool_metric c1 gpupool_coordinator_placements_total; }

submit c1 '{"id": "r1-a", "devices": 1, "mem_mib": 4096}'
submit c2 '{"id": "r2-a", "devices": 1, "mem_mib": 4096}'
wait_state c2 r1-a running 15 && wait_state c2 r2-a running 15
ok $? "both regions place jobs"
before=$(placements)

kill -STOP "$(daemon_pid proxy)"
diag "r1's coordinator is cut off from etcd"
wait_for 15 bash -c "[ -z \"\$(ETCDCTL_API=3 etcdctl --endpoints $ETCD_ENDPOINTS get /gpupool/leader/r1 --print-value-only)\" ]"
ok $? "r1's leadership lapses (its lease expired)"
submit c2 '{"id": "r2-b", "devices": 1, "mem_mib": 4096}'
submit c2 '{"id": "r1-b", "devices": 1, "mem_mib": 4096, "region": "r1"}'
wait_state c2 r2-b running 15; ok $? "r2 keeps placing during the partition"
# r2-b, submitted after r1-b, runs: r2's leader has had rounds since, and
# it leaves r1's job alone (r1's own leader is cut off).
is "$(job_state c2 r1-b)" pending "a job for r1 is stored and waits"
is "$(placements)" "$before" "r1's coordinator committed nothing while cut off"

kill -CONT "$(daemon_pid proxy)"
diag "the partition heals"
wait_state c2 r1-b running 30; ok $? "after healing, r1 places its waiting job"
wait_for 10 grep -q 'lease lost' "$T_TMP/c1.log"; ok $? "r1's coordinator noticed it had lost its lease"
pool_check >"$T_TMP/check.out"; is "$?" 0 "nothing is double-booked"
diag "$(cat "$T_TMP/check.out")"
like "$(cat "$T_TMP/check.out")" "allocations=4 " "four jobs, four allocations"
stop_daemon c1; is "$?" 0 "c1 exits 0"
done_testing
