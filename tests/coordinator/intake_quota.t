#!/usr/bin/env bash
# A team quota created after intake took a job and before the round that
# places it holds the job as it holds a queued one: the offer is not
# placed past the quota, it is stored alone and waits with the quota's
# reason.  The round before it is kept open by an agent that does not bid
# yet (stopped), so that the quota lands between intake and the round.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 --bid-timeout 8s || bail_out "c1 did not start"
wait_for 20 bash -c '[ "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/leader/r1 --print-value-only)" = c1 ]'
ok $? "c1 leads r1"
pool_agent a1 r1 1 2xA10:24576 || bail_out "agent did not start"
wait_for 20 bash -c 'curl -s -H "Authorization: Bearer $GPUPOOL_TOKEN" '"${POOL_API[c1]}"'/v1/nodes | grep -q a1-0000'
ok $? "the leader sees the node"
post() { # NAME BODY OUT: the HTTP status into OUT, the body into OUT.body
    curl -s -m 30 -o "$3.body" -w '%{http_code}' -H "Authorization: Bearer $GPUPOOL_TOKEN" \
        --data-binary "$2" "${POOL_API[$1]}/v1/jobs" >"$3"
}
J='"devices": 1, "mem_mib": 2048, "compute_percent": 50, "regions": ["r1"]'
kill -STOP "$(daemon_pid a1)"
# j1 is offered and its round waits for a1's bid; x is accepted meanwhile
# (team-q has no quota yet) and waits for the next round.
post c1 "{\"id\": \"j1\", \"owner\": \"team-p\", $J}" "$T_TMP/j1" &
p1=$!
sleep 1   # j1's round opens (nothing to wait on: it waits for a1)
post c1 "{\"id\": \"x\", \"owner\": \"team-q\", $J}" "$T_TMP/x" &
px=$!
sleep 0.5
gpupool_ c1 quota set team-q --gpus 0.25 >/dev/null; is "$?" 0 "team-q gets a quota of a quarter GPU"
wait_for 10 bash -c 'curl -s -H "Authorization: Bearer $GPUPOOL_TOKEN" '"${POOL_API[c1]}"'/v1/quotas | grep -q team-q'
ok $? "the leader knows the quota"
kill -CONT "$(daemon_pid a1)"
wait $p1; wait $px
is "$(cat "$T_TMP/j1")" 201 "j1: 201"
is "$(cat "$T_TMP/x")" 201 "x: 201"
over_quota() { job_field c1 x reason | grep -q 'over the quota'; }
wait_for 15 over_quota
ok $? "a round refused x for its team's quota"
is "$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep -c '/x$')" 0 "x is not placed"
is "$(job_state c1 x)" pending "x waits"
like "$(job_field c1 x reason)" "over the quota of team team-q" "with the quota's reason"
for d in a1 c1; do stop_daemon $d; done
done_testing
