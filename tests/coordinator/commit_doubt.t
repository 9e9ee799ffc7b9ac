#!/usr/bin/env bash
# A commit whose outcome is unknown places nothing twice and loses nothing.
# The commit writes the allocations alone (the records stay as they were),
# so a job whose commit failed in transport must not simply be placed
# again: it waits out of the queue until the leader knows.  Fault
# injection (GPUPOOL_FAULT_COMMIT_LOST) loses the answers of one commit:
# "applied" -- etcd applied it; the leader finds the allocations and counts
# the jobs placed; "dropped" -- it never reached etcd; the leader makes sure
# it never will (the record rewritten as it is, only if the allocation does
# not exist) and places the jobs again.  The jobs are submitted through
# another region's coordinator (cx), so that they are stored first and
# queued (a job submitted to its region's leader is stored with its
# allocation in one transaction: intake_place.t).
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
GPUPOOL_FAULT_COMMIT_LOST=applied pool_coordinator c1 r1 || bail_out "c1 did not start"
pool_coordinator cx r0 || bail_out "cx did not start"
pool_agent a1 r1 2 2xA10:24576 || bail_out "agent did not start"
body() { local p=$1 i out="["; for i in 1 2 3 4 5 6; do out+="{\"id\": \"$p-$i\", \"devices\": 1, \"mem_mib\": 2048, \"region\": \"r1\"},"; done; echo "${out%,}]"; }
ids() { for i in 1 2 3 4 5 6; do echo "$1-$i"; done; }

body a | curl -s -m 30 -H "Authorization: Bearer $GPUPOOL_TOKEN" --data-binary @- "${POOL_API[cx]}/v1/jobs" >/dev/null
wait_for 20 grep -q 'the answers of a commit are lost (applied)' "$T_TMP/c1.log"
ok $? "a commit's answers are lost after etcd applied it"
settled() { [ "$(grep -c 'commit in doubt settled: placed' "$T_TMP/c1.log")" -ge 1 ]; }
wait_for 20 settled; ok $? "the leader settles the doubt: placed"
grep -q 'settled: not placed' "$T_TMP/c1.log"; is "$?" 1 "no job it committed is taken for unplaced"
ids a >"$T_TMP/ids"
all_run() { [ "$(gpupool_ c1 ls -q --state running | grep -c '^a-')" = 6 ]; }
wait_for 30 all_run; ok $? "all six run"
pool_check --placed "$T_TMP/ids" >"$T_TMP/check.out"; is "$?" 0 "each placed exactly once"
diag "$(cat "$T_TMP/check.out")"
stop_daemon c1; is "$?" 0 "c1 exits 0"

GPUPOOL_FAULT_COMMIT_LOST=dropped pool_coordinator c2 r1 || bail_out "c2 did not start"
wait_for 15 bash -c '[ "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/leader/r1 --print-value-only)" = c2 ]'
ok $? "c2 leads"
body b | curl -s -m 30 -H "Authorization: Bearer $GPUPOOL_TOKEN" --data-binary @- "${POOL_API[cx]}/v1/jobs" >/dev/null
wait_for 20 grep -q 'the answers of a commit are lost (dropped)' "$T_TMP/c2.log"
ok $? "a commit is lost before it reached etcd"
requeued() { grep -q 'commit in doubt settled: not placed, queued again' "$T_TMP/c2.log"; }
wait_for 20 requeued; ok $? "the leader settles the doubt: not placed, queued again"
ids b >>"$T_TMP/ids"
all_run_b() { [ "$(gpupool_ c2 ls -q --state running | grep -c '^b-')" = 6 ]; }
wait_for 30 all_run_b; ok $? "and places them: all six run"
pool_check --placed "$T_TMP/ids" >"$T_TMP/check.out"; is "$?" 0 "all twelve placed exactly once"
diag "$(cat "$T_TMP/check.out")"
for d in a1 c2 cx; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
