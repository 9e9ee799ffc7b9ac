#!/usr/bin/env bash
# Placement at intake has one round's chance: a job submitted to the
# leader while at least `batch` older queued jobs can be placed is not
# held until they are all placed; it is stored alone at once, queued, and
# placed in its turn.  The leader holds its first commit 5 s
# (GPUPOOL_FAULT_COMMIT_HOLD_MS), so that the queue is still being placed
# when the job comes, however fast rounds and their grouped commits go.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
GPUPOOL_FAULT_COMMIT_HOLD_MS=5000 pool_coordinator c1 r1 --batch 1 || bail_out "c1 did not start"
wait_for 20 bash -c '[ "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/leader/r1 --print-value-only)" = c1 ]'
ok $? "c1 leads r1"
Q='"devices": 1, "mem_mib": 6144, "compute_percent": 25, "regions": ["r1"]'
post() {
    curl -s -m 60 -o "$T_TMP/answer" -w '%{http_code}' -H "Authorization: Bearer $GPUPOOL_TOKEN" \
        --data-binary "$2" "${POOL_API[$1]}/v1/jobs"
}
crev() { etcdctl_ get "$1" -w json | grep -o '"create_revision":[0-9]*' | head -1 | cut -d: -f2; }
# No node yet: forty jobs stored alone, queued.
: >"$T_TMP/ids"
pool_submit c1 "$T_TMP/ids" q 1 40 "$Q"
is "$(grep -c . "$T_TMP/ids")" 40 "forty jobs while no node fits: accepted"
is "$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep -c .)" 0 "none placed"
# Three nodes with room for forty-eight: the queue is placed one job a round.
pool_agent a1 r1 3 4xA10:24576 || bail_out "agent did not start"
wait_for 20 grep -q 'fault injection: holding a commit' "$T_TMP/c1.log"
ok $? "the queue is being placed (its first commit held)"
is "$(post c1 "{\"id\": \"x\", $Q}")" 201 "a job submitted meanwhile: 201"
# Every job, x included, is placed in the end, once.
wait_for 60 bash -c '[ "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/alloc/ --prefix --keys-only | grep -c .)" = 41 ]'
ok $? "all forty-one placed"
# x was stored (alone) before the queue ahead of it was placed, not
# after the last of it.
last=$(etcdctl_ get /gpupool/alloc/ --prefix -w json | grep -o '"create_revision":[0-9]*' | cut -d: -f2 | sort -n | tail -1)
x=$(crev /gpupool/jobs/x)
diag "x stored at revision $x; the last allocation created at $last"
ok "$([ -n "$x" ] && [ "$x" -lt "$last" ] && echo 0 || echo 1)" "x is stored before the jobs queued ahead of it are all placed"
is "$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep -c '/x$')" 1 "x once"
echo x >>"$T_TMP/ids"
pool_check --placed "$T_TMP/ids" >"$T_TMP/check.out"
is "$?" 0 "nothing double-booked, nothing lost (pool_check)"
for d in a1 c1; do stop_daemon $d; done
done_testing
