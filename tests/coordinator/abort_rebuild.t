#!/usr/bin/env bash
# The cache rebuilt while rounds wait for a commit places no job twice and
# books no device twice.  The leader c1 reaches etcd through a relay that
# holds every byte back (tcpproxy -f), so that a commit is long in the air
# while its agent (direct) bids at once; --batch 1, so that each job is a
# round of its own.  Three nodes of one whole GPU, six jobs that each want
# a whole GPU (stored through another region's coordinator, so that they
# are queued): j1's commit goes out, j2 and j3 are decided on the two other
# nodes and wait for it; then the cache is listed again
# (GPUPOOL_FAULT_RELIST_WAITING=2, as after a compacted watch), and a job k
# of higher priority is stored meanwhile.  The waiting rounds must not be
# sent: the rebuilt cache holds neither their plans nor their jobs' rounds,
# so the live round places k (first, by priority) on a GPU a waiting round
# had taken.  At the end three jobs hold the three GPUs, each once, and the
# others wait with a reason.  (Which three is not checked: k, first by
# priority in the rebuilt cache, was seen waiting while j2 and j3 ran.)  Only etcd's state and the logs are checked.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
relay_start || bail_out "the relay did not start"
GPUPOOL_FAULT_RELIST_WAITING=2 relay_coordinator c1 r1 --batch 1 --lease-ttl 10s ||
    bail_out "c1 did not start"
pool_coordinator cx r0 || bail_out "cx did not start"
pool_agent a1 r1 3 1xA10:24576 || bail_out "the agent did not start"
leads() { [ "$(pool_leader r1)" = c1 ]; }
wait_for 30 leads || bail_out "c1 does not lead r1"
AUTH="Authorization: Bearer $GPUPOOL_TOKEN"
wait_for 30 pool_sees_nodes c1 a1 3 || bail_out "c1 does not see the three nodes"
relay_delay 500

job() { echo "{\"id\": \"$1\", \"devices\": 1, \"mem_mib\": 24576, \"region\": \"r1\", \"priority\": $2}"; }
post() { curl -s -o /dev/null -w '%{http_code}' -m 30 -H "$AUTH" --data-binary "$1" "${POOL_API[cx]}/v1/jobs"; }
body="[$(for i in 1 2 3 4 5 6; do job "j$i" -10; echo ,; done | tr -d '\n')"
is "$(post "${body%,}]")" 200 "six jobs stored (through cx)"
wait_for 60 grep -Eq 'fault injection: the cache is listed again while [0-9]+ rounds wait' "$T_TMP/c1.log"
ok $? "the cache is listed again while rounds wait for the commit in flight"
# The listing's first read is in the relay: hold it there while k is
# stored, so that the rebuilt cache holds k (k's revision is checked below).
kill -STOP "$(daemon_pid relay)"
is "$(post "$(job k 0)")" 201 "a job k of higher priority is stored meanwhile"
kill -CONT "$(daemon_pid relay)"
failed() { [ "$(grep -c 'round not committed .*reason="the cache is rebuilt"' "$T_TMP/c1.log")" -ge 2 ]; }
wait_for 60 failed; ok $? "the rounds waiting for the commit are not committed"
wait_for 60 grep -q 'cache listed revision=.* jobs=7 ' "$T_TMP/c1.log"
K_IN=$?
[ "$K_IN" = 0 ] || diag "k was stored after the listing's revision (the relay was stopped too late)"

ALL="j1 j2 j3 j4 j5 j6 k"
placed() { [ "$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep -c .)" -ge 3 ]; }
wait_for 60 placed || diag "fewer than three allocations"
running() { [ "$(for j in $ALL; do job_state c1 "$j"; done | grep -c running)" -ge 3 ]; }
wait_for 60 running; ok $? "three jobs run"
# Quiet: every job not running waits with its reason (no round holds it).
waiting() {
    local j n=0
    for j in $ALL; do
        [ "$(job_state c1 "$j")" = pending ] && [ -n "$(job_field c1 "$j" reason)" ] && n=$((n + 1))
    done
    [ "$n" = 4 ]
}
wait_for 60 waiting; ok $? "the four others wait, each with a reason"
diag "$(for j in $ALL; do echo "$j: $(job_state c1 "$j") $(job_field c1 "$j" node) $(job_field c1 "$j" reason)"; done)"
is "$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep -c .)" 3 "three allocations, one per GPU"
pool_check >"$T_TMP/check.out" 2>&1
ok $? "no job with two allocations, no GPU booked twice (pool_check)" || diag_file "$T_TMP/check.out"
for j in $ALL; do
    [ "$(job_state c1 "$j")" = running ] && echo "$j"
done >"$T_TMP/ids"
pool_check --placed "$T_TMP/ids" >"$T_TMP/check.out" 2>&1
ok $? "each running job placed exactly once" || diag_file "$T_TMP/check.out"
for d in a1 c1 cx; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
