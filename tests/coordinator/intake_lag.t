#!/usr/bin/env bash
# Placement at intake while the leader's watch lags (fault injection:
# GPUPOOL_FAULT_WATCH_LAG_MS): a job placed at intake is known to the
# leader from its commit on, not from the watch's echo of it.  The same id
# submitted again before the echo is answered as the same job and planned
# nowhere; the jobs after it are not planned onto its device.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
GPUPOOL_FAULT_WATCH_LAG_MS=3000 pool_coordinator c1 r1 || bail_out "c1 did not start"
wait_for 20 bash -c '[ "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/leader/r1 --print-value-only)" = c1 ]'
ok $? "c1 leads r1"
# One node, two GPUs: room for two whole-GPU jobs.
pool_agent a1 r1 1 2xA10:24576 || bail_out "agent did not start"
wait_for 20 bash -c 'curl -s -H "Authorization: Bearer $GPUPOOL_TOKEN" '"${POOL_API[c1]}"'/v1/nodes | grep -q a1-0000'
ok $? "the leader sees the node (3 s late)"

post() {
    curl -s -m 30 -o "$T_TMP/answer" -w '%{http_code}' -H "Authorization: Bearer $GPUPOOL_TOKEN" \
        --data-binary "$2" "${POOL_API[$1]}/v1/jobs"
}
W='"devices": 1, "regions": ["r1"]'
is "$(post c1 "{\"id\": \"A\", $W}")" 201 "A placed at intake"
is "$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep -c '/A$')" 1 "A's allocation is stored"
# Within the watch's lag: the leader's cache has neither A's record nor its
# allocation yet.
is "$(post c1 "{\"id\": \"A\", $W}")" 200 "A again before the watch shows it: 200, the same job"
is "$(post c1 "[{\"id\": \"B\", $W}, {\"id\": \"C\", $W}]")" 200 "B and C"
# Once the watch has caught up: A and one of B, C on the two GPUs, the
# other waiting; no device holds two.
wait_for 20 bash -c '[ "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/alloc/ --prefix --keys-only | grep -c .)" -ge 2 ]'
ok $? "two allocations"
sleep 4   # a third, wrongly planned, would come within the lag
is "$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep -c .)" 2 "only two: one job per GPU"
is "$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep -c '/A$')" 1 "A keeps its one allocation"
printf 'A\n' >"$T_TMP/ids"
pool_check --placed "$T_TMP/ids" >"$T_TMP/check.out"
is "$?" 0 "nothing double-booked (pool_check)"
diag "$(cat "$T_TMP/check.out")"
for d in a1 c1; do stop_daemon $d; done
done_testing
