#!/usr/bin/env bash
# Cross-region placement: a job that does not fit in its region runs in
# another; a job that prefers another region goes there; a job pinned to a
# full region waits; a job whose only possible region has no leader waits
# (it is never lost) and moves once that region has a leader again.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "c1 did not start"
pool_coordinator c2 r2 || bail_out "c2 did not start"
pool_agent a1 r1 1 1xA10:24576 --cloud volc || bail_out "a1 did not start"
pool_agent a2 r2 1 2xA10:24576 --cloud tencent || bail_out "a2 did not start"

submit() { echo "$2" | gpupool_ "$1" submit - >/dev/null; }
submit c1 '{"id": "fill", "devices": 1}'
wait_state c1 fill running 15; ok $? "a whole-GPU job fills region r1"
is "$(job_field c1 fill node)" a1-0000 "on r1's node"

submit c1 '{"id": "spill", "devices": 1}'
wait_state c1 spill running 15; ok $? "a job that does not fit in r1 runs"
is "$(job_field c1 spill node)" a2-0000 "in region r2"
is "$(job_field c1 spill region)" r2 "which now owns it"
like "$(gpupool_ c1 -o json get spill | tr -d ' \n')" 'handedofffromr1tor2' "its history records the hand-off"
# Submitting the same job again is idempotent wherever it now lives: the
# region the hand-off rewrote is the pool's, not the submitter's.
resubmit() {
    curl -s -o "$T_TMP/resubmit" -w '%{http_code}' -H "Authorization: Bearer $GPUPOOL_TOKEN" \
        --data-binary "$2" "${POOL_API[$1]}/v1/jobs"
}
is "$(resubmit c1 '{"id": "spill", "devices": 1}')" 200 "the handed-off job submitted again to r1: 200"
like "$(cat "$T_TMP/resubmit")" '"region":"r2"' "with the stored record (owned by r2)"
is "$(resubmit c2 '{"id": "spill", "devices": 1}')" 200 "and to r2: 200"
is "$(resubmit c1 '{"id": "spill", "devices": 1, "region": "r1"}')" 200 "and naming r1 explicitly: 200"
is "$(resubmit c1 '{"id": "spill", "devices": 1, "mem_mib": 1024}')" 409 "a different job with its id: 409"

submit c1 '{"id": "pinned", "devices": 1, "regions": ["r1"]}'
reason_is() { job_field c1 "$1" reason | grep -q "$2"; }
wait_for 10 reason_is pinned "^0/2 nodes: "
ok $? "a round tried the job pinned to the full region, and it says why it waits"
is "$(job_field c1 pinned reason)" "0/2 nodes: 1 other region (want r1), 1 too few free whole GPUs (want 1, most free 0)" \
   "...node by node"
is "$(job_state c1 pinned)" pending "a job pinned to the full region waits"
is "$(job_field c1 pinned region)" r1 "it stays r1's"

stop_daemon c2 >/dev/null
wait_for 10 bash -c "[ -z \"\$(ETCDCTL_API=3 etcdctl --endpoints $ETCD_ENDPOINTS get /gpupool/leader/r2 --print-value-only)\" ]"
ok $? "r2 has no leader any more"
submit c1 '{"id": "orphan", "devices": 1, "mem_mib": 1024}'
wait_for 10 reason_is orphan "leader"
ok $? "a round tried the job, saying no region with a leader can hold it"
is "$(job_state c1 orphan)" pending "with r1 full and r2 leaderless, a job waits"
is "$(job_field c1 orphan region)" r1 "in r1's queue: never lost"
pool_coordinator c2b r2 || bail_out "c2b did not start"
wait_state c1 orphan running 20; ok $? "once r2 has a leader again, the job moves there and runs"
is "$(job_field c1 orphan node)" a2-0000 "on r2's node"

gpupool_ c1 cancel fill >/dev/null
submit c1 '{"id": "likes-r2", "devices": 1, "mem_mib": 1024, "prefer_regions": ["r2"]}'
wait_state c1 likes-r2 running 15; ok $? "a job that prefers r2 runs"
is "$(job_field c1 likes-r2 node)" a2-0000 "in r2, though r1 had room"
wait_state c1 pinned running 15; ok $? "the pinned job runs when r1 frees up"

pool_check >"$T_TMP/check.out"; is "$?" 0 "pool invariants hold"
diag "$(cat "$T_TMP/check.out")"
done_testing
