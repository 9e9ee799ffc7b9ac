#!/usr/bin/env bash
# Leadership lost while rounds wait for a commit places no job twice.  The
# leader c1 reaches etcd through a relay (tcpproxy) and holds its first
# commit 10 s before sending it (GPUPOOL_FAULT_COMMIT_HOLD_MS), its loop
# running meanwhile: its agent (direct) bids at once, so rounds (--batch 2)
# decide and wait behind that commit; c2, a standby, reaches etcd
# directly.  Once c1 holds its commit, the relay is stopped (a partition:
# keep-alives and the held commit cannot get through): c1's lease runs out
# while its rounds wait, c2 is elected and places every job; then the
# relay resumes and c1's held writes arrive, refused by the fences.  Every
# job ends placed exactly once, nothing booked twice.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
relay_start || bail_out "the relay did not start"
GPUPOOL_FAULT_COMMIT_HOLD_MS=10000 relay_coordinator c1 r1 --batch 2 --lease-ttl 4s || bail_out "c1 did not start"
leads() { [ "$(pool_leader r1)" = "$1" ]; }
wait_for 30 leads c1 || bail_out "c1 does not lead r1"
pool_coordinator c2 r1 --batch 2 || bail_out "c2 did not start"
pool_coordinator cx r0 || bail_out "cx did not start"
pool_agent a1 r1 2 4xA10:24576 || bail_out "the agent did not start"
AUTH="Authorization: Bearer $GPUPOOL_TOKEN"
wait_for 30 pool_sees_nodes c1 a1 2 || bail_out "c1 does not see the two nodes"

body="["
for i in $(seq 1 16); do body+="{\"id\": \"l-$i\", \"devices\": 1, \"mem_mib\": 2048, \"region\": \"r1\"},"; done
curl -s -m 30 -H "$AUTH" --data-binary "${body%,}]" "${POOL_API[cx]}/v1/jobs" >/dev/null
for i in $(seq 1 16); do echo "l-$i"; done >"$T_TMP/ids"
held() { grep -q 'fault injection: holding a commit' "$T_TMP/c1.log"; }
wait_for 60 held; ok $? "c1 holds its first commit"
kill -STOP "$(daemon_pid relay)"
wait_for 60 leads c2; ok $? "c1 cut off: c2 is elected"
kill -CONT "$(daemon_pid relay)"
# Whichever c1 learns first ends the waiting rounds: its lease lost (the
# keep-alive), or c2's leadership (its watch, once the relay resumes).
notsent() { grep -Eq 'round not committed .*reason="(lease lost|deposed|not the leader|decided under another term)"' "$T_TMP/c1.log"; }
wait_for 60 notsent; ok $? "c1 sent none of the rounds waiting for its commit"
diag "$(grep -E 'round not committed|lease lost' "$T_TMP/c1.log" | head -4)"
all_run() { [ "$(gpupool_ c2 ls -q --state running | grep -c '^l-')" = 16 ]; }
wait_for 60 all_run; ok $? "all sixteen run"
is "$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep -c .)" 16 "sixteen allocations"
pool_check --placed "$T_TMP/ids" >"$T_TMP/check.out" 2>&1
ok $? "each placed exactly once, nothing booked twice (pool_check)" || diag_file "$T_TMP/check.out"
for d in a1 c1 c2 cx; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
