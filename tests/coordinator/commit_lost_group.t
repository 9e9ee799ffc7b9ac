#!/usr/bin/env bash
# A lost answer hitting a commit of several rounds together places every
# job of the group exactly once.  The leader c1 reaches etcd through a
# relay that holds every byte back (tcpproxy -f), so that a commit is long
# in the air while its agent (direct) bids at once; --batch 2, so that the
# rounds that close meanwhile commit together when it lands.  The answers
# of the first such group are lost after etcd applied it
# (GPUPOOL_FAULT_COMMIT_LOST=applied,grouped): its jobs are in doubt until
# the leader settles it, and none may be placed again.  Twelve jobs, stored
# through another region's coordinator so that they are queued.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
relay_start || bail_out "the relay did not start"
GPUPOOL_FAULT_COMMIT_LOST=applied,grouped relay_coordinator c1 r1 --batch 2 --lease-ttl 10s ||
    bail_out "c1 did not start"
pool_coordinator cx r0 || bail_out "cx did not start"
pool_agent a1 r1 2 4xA10:24576 || bail_out "the agent did not start"
leads() { [ "$(pool_leader r1)" = c1 ]; }
wait_for 30 leads || bail_out "c1 does not lead r1"
AUTH="Authorization: Bearer $GPUPOOL_TOKEN"
wait_for 30 pool_sees_nodes c1 a1 2 || bail_out "c1 does not see the two nodes"
relay_delay 300

body="["
for i in $(seq 1 12); do body+="{\"id\": \"g-$i\", \"devices\": 1, \"mem_mib\": 2048, \"region\": \"r1\"},"; done
curl -s -m 30 -H "$AUTH" --data-binary "${body%,}]" "${POOL_API[cx]}/v1/jobs" >/dev/null
for i in $(seq 1 12); do echo "g-$i"; done >"$T_TMP/ids"
wait_for 60 grep -Eq 'the answers of a commit are lost \(applied\) rounds=([2-9]|[1-9][0-9])' "$T_TMP/c1.log"
ok $? "the answers of a commit of several rounds are lost after etcd applied it"
diag "$(grep 'answers of a commit are lost' "$T_TMP/c1.log")"
settled() { grep -q 'commit in doubt settled: placed' "$T_TMP/c1.log"; }
wait_for 60 settled; ok $? "the leader settles the doubt: placed"
grep -q 'settled: not placed' "$T_TMP/c1.log"; is "$?" 1 "no job it committed is taken for unplaced"
all_run() { [ "$(gpupool_ c1 ls -q --state running | grep -c '^g-')" = 12 ]; }
wait_for 60 all_run; ok $? "all twelve run"
is "$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep -c .)" 12 "twelve allocations"
pool_check --placed "$T_TMP/ids" >"$T_TMP/check.out" 2>&1
ok $? "each placed exactly once, nothing booked twice (pool_check)" || diag_file "$T_TMP/check.out"
for d in a1 c1 cx; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
