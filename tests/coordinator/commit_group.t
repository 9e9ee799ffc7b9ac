#!/usr/bin/env bash
# Rounds decide while a commit is in flight, and the rounds that closed
# meanwhile commit together; intake's flights that wait at the round take
# no slot of those writing to etcd.  A pool across three "clouds" 500 ms
# apart (tests/lib_wan.sh, the distance set once the pool runs; raft's
# heartbeat and election timeout sized for it), the region in a raft
# follower's cloud, so that each write costs seconds while the agent (same
# cloud) bids at once; one node, so that every job lands on it.  Job A is
# placed at intake and its commit goes out; eight more, one request each,
# are submitted one after the other while it is in the air, so that A's
# flight and theirs are nine at the round.  Each is offered at once (more
# flights than intake lets write at a time), each round closes on its bids,
# and all of them commit together once A's commit has landed: their
# records are created at one revision (one transaction), after A's.  Rounds
# that closed in turn, each after the previous commit, would have written
# them apart, and so would intake holding the ninth flight back until one
# had landed.  Only etcd's revisions are checked, never a duration.
. "$(dirname "$0")/../lib.sh"
WAN_HEARTBEAT_MS=500
WAN_ELECTION_MS=5000
. "$GP_ROOT/tests/lib_wan.sh"

wan_start 3 || bail_out "etcd did not start"
leader=$(wan_raft_leader) || bail_out "no raft leader found"
f=$(( (leader + 1) % 3 ))
diag "raft leader: member $leader; the coordinator is in cloud $f"
wan_coordinator c "$f" --lease-ttl 10s || bail_out "the coordinator did not start"
wan_agent a "$f" 1 2xA100:81920 --lease-ttl 10s || bail_out "the agent did not start"
has_leader() { [ -n "$(pool_leader "r$f")" ]; }
wait_for 60 has_leader || bail_out "region r$f has no leader"
API=${POOL_API[c]}
AUTH="Authorization: Bearer $GPUPOOL_TOKEN"
post() { curl -s -o /dev/null -w '%{http_code}' -m 30 -H "$AUTH" --data-binary "$1" "$API/v1/jobs"; }
job() { echo "{\"id\": \"$1\", \"devices\": 1, \"mem_mib\": 8192, \"compute_percent\": 10}"; }
seen() { [ "$(curl -s -o /dev/null -w '%{http_code}' -m 20 -H "$AUTH" "$API/v1/nodes")" = 200 ] &&
         curl -s -m 20 -H "$AUTH" "$API/v1/nodes" | grep -q '"a-0000"'; }
wait_for 60 seen || bail_out "the coordinator does not see the node"
# A first job, placed and running: the agent has answered a call for bids.
is "$(post "$(job w0)")" 201 "a first job is stored"
wait_state c w0 running 60 || bail_out "w0 does not run"
wan_set_delay 500 || bail_out "the relays did not take the delay"

# created REV of job ID's record (the revision of the commit that stored it)
created() { etcdctl_ get "/gpupool/jobs/$1" -w fields | awk '$1 == "\"CreateRevision\"" {print $3}'; }

JOBS="B1 B2 B3 B4 B5 B6 B7 B8"
PIDS=()
for j in A $JOBS; do
    ( post "$(job "$j")" >"$T_TMP/$j" ) &
    PIDS+=($!)
    sleep 0.1
done
wait "${PIDS[@]}"
is "$(for j in A $JOBS; do cat "$T_TMP/$j"; echo; done | sort | uniq -c | awk '{print $1, $2}')" \
   "9 201" "A and the eight after it are stored"
ra=$(created A)
revs=$(for j in $JOBS; do created "$j"; done | sort -u)
diag "created at revisions: A $ra, the eight: $(echo $revs)"
[ -n "$ra" ] && [ -n "$revs" ] || bail_out "the records' revisions could not be read"
ok "$(( ${revs%%$'\n'*} > ra ? 0 : 1 ))" "the eight are committed after A"
is "$(echo "$revs" | wc -l)" 1 "the eight, each in a round and a flight of its own, are committed together (one revision)"
is "$(pool_metric c gpupool_coordinator_commit_conflicts_total)" 0 "no commit conflict"
for j in A $JOBS; do
    wait_state c "$j" running 60 || diag "$j: $(job_field c "$j" state)"
done
is "$(for j in A $JOBS; do job_state c "$j"; done | sort | uniq -c | awk '{print $1, $2}')" \
   "9 running" "the nine jobs run"
pool_check >"$T_TMP/check.out" 2>&1
ok $? "nothing double-booked" || diag_file "$T_TMP/check.out"
done_testing
