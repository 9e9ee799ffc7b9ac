#!/usr/bin/env bash
# Placement at intake: a job submitted to its region's leader is stored
# together with its allocation, in one fenced transaction (one revision
# holds the record and the allocation); a job it cannot place now is stored
# alone and waits; the same id again is answered as before (200 the same
# job, 409 another); a leader deposed while it commits (fault injection:
# GPUPOOL_FAULT_COMMIT_PAUSE_MS) commits nothing, and the job is still
# stored once and placed once, by the new leader; a combined commit whose
# answer is lost after etcd applied it (GPUPOOL_FAULT_COMMIT_LOST=applied)
# still stores the job once, placed once.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "c1 did not start"
wait_for 10 bash -c '[ "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/leader/r1 --print-value-only)" = c1 ]'
ok $? "c1 leads r1"
# One node, one GPU: room for exactly 4 quarter-GPU jobs.
pool_agent a1 r1 1 1xA10:24576 || bail_out "agent did not start"
wait_for 10 bash -c '[ -n "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/nodes/r1/a1-0000 --print-value-only)" ]'

# Quarter-GPU jobs, each kept in its region (no hand-offs between the
# test's regions).
Q='"devices": 1, "mem_mib": 6144, "compute_percent": 25, "regions": ["r1"]'
Q2=${Q/r1/r2}
Q3=${Q/r1/r3}
# post NAME BODY: the HTTP status, the body in $T_TMP/answer.
post() {
    curl -s -m 30 -o "$T_TMP/answer" -w '%{http_code}' -H "Authorization: Bearer $GPUPOOL_TOKEN" \
        --data-binary "$2" "${POOL_API[$1]}/v1/jobs"
}
# crev KEY: the key's create revision ("" when absent).
crev() { etcdctl_ get "$1" -w json | grep -o '"create_revision":[0-9]*' | head -1 | cut -d: -f2; }
# alloc_keys JOB: the job's allocation keys.
alloc_keys() { etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep "/$1\$"; }
same_rev() { # JOB: its record and its one allocation were created in one revision
    local j=$1 a r
    a=$(alloc_keys "$j")
    [ "$(echo "$a" | grep -c .)" = 1 ] || return 1
    r=$(crev "/gpupool/jobs/$j")
    [ -n "$r" ] && [ "$r" = "$(crev "$a")" ]
}

# 1. To the leader: record and allocation in one revision.
is "$(post c1 "{\"id\": \"p-1\", $Q}")" 201 "a job submitted to the leader: 201"
a=$(alloc_keys p-1)
like "$a" "^/gpupool/alloc/a1-0000/p-1$" "its allocation is there when the answer comes"
diag "record create_revision $(crev /gpupool/jobs/p-1), allocation create_revision $(crev "$a")"
same_rev p-1; ok $? "one revision holds both the record and the allocation"
is "$(post c1 "[{\"id\": \"p-2\", $Q}, {\"id\": \"p-3\", $Q}, {\"id\": \"p-4\", $Q}]")" 200 \
    "three more in one request: 200"
is "$(grep -o '"status":201' "$T_TMP/answer" | wc -l)" 3 "each of them 201"
for j in p-2 p-3 p-4; do same_rev $j; ok $? "$j: record and allocation in one revision"; done

# 2. No room left: stored alone, pending, and not placed.
is "$(post c1 "{\"id\": \"p-5\", $Q}")" 201 "a job that does not fit: 201"
is "$(crev /gpupool/jobs/p-5 | grep -c .)" 1 "its record is stored"
is "$(alloc_keys p-5 | grep -c .)" 0 "without an allocation"
wait_for 10 bash -c '[ "$(curl -s '"${POOL_API[c1]}"'/metrics | awk '"'"'$1 == "gpupool_coordinator_queue_depth" {print $2}'"'"')" = 1 ]'
ok $? "it waits in the queue (depth 1): the four placed at intake are not queued"

# 3. The same id again: the same job 200 with its record, another 409;
#    nothing is stored or placed twice.
is "$(post c1 "{\"id\": \"p-1\", $Q}")" 200 "the same job again: 200"
like "$(cat "$T_TMP/answer")" '"id":"p-1"' "with its stored record"
is "$(post c1 "{\"id\": \"p-1\", \"devices\": 1, \"mem_mib\": 1024, \"regions\": [\"r1\"]}")" 409 "another job with its id: 409"
is "$(post c1 "[{\"id\": \"p-2\", $Q}, {\"id\": \"p-2b\", \"devices\": 1, \"mem_mib\": 20000, \"regions\": [\"r1\"]}]")" 200 \
    "an array with a placed id again and a new job"
like "$(cat "$T_TMP/answer")" '"id":"p-2","status":200' "the placed one: 200"
like "$(cat "$T_TMP/answer")" '"id":"p-2b","status":201' "the new one: 201"
is "$(alloc_keys p-1 | grep -c .)" 1 "p-1 has one allocation"

# 4. Exactly once: the agent starts each on the allocation and reports it
#    running, one attempt each.
all_run() { [ "$(gpupool_ c1 ls -q --state running | grep -c '^p-[1-4]$')" = 4 ]; }
wait_for 20 all_run; ok $? "the four run"
is "$(gpupool_ c1 -o json get p-1 | grep -o '"attempts": *[0-9]*' | head -1 | grep -o '[0-9]*$')" 1 \
    "p-1: one attempt"
is "$(pool_metric c1 gpupool_coordinator_commit_conflicts_total)" 0 "no commit conflict"
is "$(pool_metric c1 gpupool_coordinator_placements_total)" 4 "four placements"
printf 'p-1\np-2\np-3\np-4\n' >"$T_TMP/ids"
pool_check --placed "$T_TMP/ids" >"$T_TMP/check.out"; is "$?" 0 "each placed exactly once, nothing double-booked"
diag "$(cat "$T_TMP/check.out")"

# 5. A leader deposed while it commits: the combined transaction is fenced.
GPUPOOL_FAULT_COMMIT_PAUSE_MS=4000 pool_coordinator c2 r2 || bail_out "c2 did not start"
wait_for 10 bash -c '[ "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/leader/r2 --print-value-only)" = c2 ]'
ok $? "c2 leads r2"
pool_coordinator c3 r2 || bail_out "c3 did not start"
pool_agent a2 r2 1 1xA10:24576 || bail_out "agent a2 did not start"
wait_for 10 bash -c '[ -n "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/nodes/r2/a2-0000 --print-value-only)" ]'
is "$(post c2 "{\"id\": \"d-1\", $Q2}")" 201 "a job submitted to a leader that stalls while it commits: 201"
grep -q 'fault injection: pausing' "$T_TMP/c2.log"; ok $? "c2 stalled before its commit"
is "$(pool_leader r2)" c3 "c3 took over meanwhile"
wait_for 15 bash -c "curl -s ${POOL_API[c2]}/metrics | grep -q '^gpupool_coordinator_commit_conflicts_total [1-9]'"
ok $? "the deposed leader's combined commit was refused"
is "$(pool_metric c2 gpupool_coordinator_placements_total)" 0 "the deposed leader placed nothing"
is "$(crev /gpupool/jobs/d-1 | grep -c .)" 1 "the job is stored"
wait_for 15 bash -c "[ \"\$(ETCDCTL_API=3 etcdctl --endpoints $ETCD_ENDPOINTS get /gpupool/alloc/ --prefix --keys-only | grep -c '/d-1\$')\" = 1 ]"
ok $? "and placed by the new leader"
same_rev d-1; is "$?" 1 "stored alone first, then placed (two revisions)"
printf 'd-1\n' >>"$T_TMP/ids"
pool_check --placed "$T_TMP/ids" >"$T_TMP/check.out"; is "$?" 0 "placed exactly once"
diag "$(cat "$T_TMP/check.out")"

# 6. A combined commit applied by etcd whose answer is lost: the job is
#    found stored (200, the same job) and is placed once.
GPUPOOL_FAULT_COMMIT_LOST=applied pool_coordinator c4 r3 || bail_out "c4 did not start"
wait_for 10 bash -c '[ "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/leader/r3 --print-value-only)" = c4 ]'
pool_agent a3 r3 1 1xA10:24576 || bail_out "agent a3 did not start"
wait_for 10 bash -c '[ -n "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/nodes/r3/a3-0000 --print-value-only)" ]'
is "$(post c4 "{\"id\": \"l-1\", $Q3}")" 200 "a combined commit whose answer was lost: the job is found stored (200)"
grep -q 'the answers of a commit are lost (applied)' "$T_TMP/c4.log"; ok $? "the commit's answers were lost"
same_rev l-1; ok $? "its record and allocation are one revision"
wait_state c4 l-1 running 20; ok $? "it runs"
printf 'l-1\n' >>"$T_TMP/ids"
pool_check --placed "$T_TMP/ids" >"$T_TMP/check.out"; is "$?" 0 "placed exactly once"
diag "$(cat "$T_TMP/check.out")"

for d in a1 a2 a3 c1 c2 c3 c4; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
