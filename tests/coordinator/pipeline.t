#!/usr/bin/env bash
# The coordinator's loop waits for no round trip to etcd.  A pool across
# three "clouds" 500 ms apart (tests/lib_wan.sh), region rF in a raft
# follower's cloud, so that each of its writes costs about a second and a
# linearizable read half of one.  While a submission is being stored, and
# while a job's record is being read, a listing (answered from the cache)
# is answered first: the loop kept serving meanwhile.  Then several
# submissions sent one after the other are all stored, and a job runs.
# Only the order of the answers is checked, never a duration.
. "$(dirname "$0")/../lib.sh"
. "$GP_ROOT/tests/lib_wan.sh"

wan_start 3 || bail_out "etcd did not start"
wan_set_delay 250 || bail_out "the relays did not take the delay"
leader=$(wan_raft_leader) || bail_out "no raft leader found"
f=$(( (leader + 1) % 3 ))
diag "raft leader: member $leader; the coordinator is in cloud $f"
wan_coordinator c "$f" --lease-ttl 10s || bail_out "the coordinator did not start"
wan_agent a "$f" 2 2xA100:81920 --lease-ttl 10s || bail_out "the agent did not start"
has_leader() { [ -n "$(pool_leader "r$f")" ]; }
wait_for 60 has_leader || bail_out "region r$f has no leader"
API=${POOL_API[c]}
AUTH="Authorization: Bearer $GPUPOOL_TOKEN"

# at NAME CMD...: run CMD in the background; its HTTP status, then the
# time it was answered (ns), go to $T_TMP/NAME.  settle: wait for them all
# (not for the daemons, also children of this shell).
PIDS=()
at() {
    local name=$1
    shift
    ( code=$("$@"); echo "$code $(date +%s%N)" >"$T_TMP/$name" ) &
    PIDS+=($!)
}
settle() { wait "${PIDS[@]}"; PIDS=(); }
post() { curl -s -o /dev/null -w '%{http_code}' -m 20 -H "$AUTH" --data-binary "$1" "$API/v1/jobs"; }
get() { curl -s -o /dev/null -w '%{http_code}' -m 20 -H "$AUTH" "$API$1"; }
answered() { cut -d' ' -f2 "$T_TMP/$1"; }
status() { cut -d' ' -f1 "$T_TMP/$1"; }

wait_listing() { [ "$(get /v1/jobs)" = 200 ]; }
wait_for 30 wait_listing || bail_out "the API does not answer"

job() { echo "{\"id\": \"$1\", \"devices\": 1, \"mem_mib\": 8192, \"compute_percent\": 10}"; }

# 1. a listing while a submission is stored
at sub1 post "$(job p1)"
sleep 0.2
at list1 get /v1/jobs
settle
is "$(status sub1) $(status list1)" "201 200" "the submission is stored, the listing answered"
ok "$(( $(answered list1) < $(answered sub1) ? 0 : 1 ))" \
   "the listing sent while the submission was being stored is answered first"

# 2. a listing while a job's record is read (linearizably, from etcd)
at get1 get /v1/jobs/p1
sleep 0.1
at list2 get /v1/jobs
settle
is "$(status get1) $(status list2)" "200 200" "the job is read, the listing answered"
ok "$(( $(answered list2) < $(answered get1) ? 0 : 1 ))" \
   "the listing sent while the job was being read is answered first"

# 3. submissions one after the other, each while the previous ones are stored
for i in 2 3 4 5; do
    at "sub$i" post "$(job "p$i")"
    sleep 0.1
done
settle
is "$(for i in 2 3 4 5; do status "sub$i"; done | tr '\n' ' ')" "201 201 201 201 " \
   "four submissions in flight together: each stored"
for i in 1 2 3 4 5; do
    wait_state c "p$i" running 60 || diag "p$i: $(job_field c "p$i" state)"
done
is "$(for i in 1 2 3 4 5; do job_state c "p$i"; done | tr '\n' ' ')" \
   "running running running running running " "the five jobs run"
pool_check >"$T_TMP/check.out" 2>&1
ok $? "nothing double-booked" || diag_file "$T_TMP/check.out"
done_testing
