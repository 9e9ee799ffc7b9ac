#!/usr/bin/env bash
# The pool across clouds: three regions, each with its own etcd member, the
# members 30 ms apart (a relay delays every peer message by 15 ms each way;
# a region reaching another cloud's member pays it too).  A burst and a
# low-rate series: every job placed and run, no leader change, each daemon
# on its own cloud's member; then a region's member dies and comes back, and
# its daemons fail over and return to it.  No timing is asserted: the
# figures are bench-wan's.
. "$(dirname "$0")/../lib.sh"
. "$GP_ROOT/tests/lib_wan.sh"
LOAD=$GP_BUILD/tests/bench/wan_load

wan_start 3 || bail_out "etcd did not start"
wan_set_delay 15 || bail_out "the relays did not take the delay"
for i in 0 1 2; do
    wan_coordinator "c$i" "$i" --log-level info || bail_out "c$i did not start"
    wan_agent "a$i" "$i" 4 8xA100:81920 || bail_out "a$i did not start"
done
for i in 0 1 2; do
    wait_for 30 bash -c "[ -n \"\$(ETCDCTL_API=3 etcdctl --endpoints $ETCD_ENDPOINTS get /gpupool/leader/r$i --print-value-only)\" ]" ||
        bail_out "region r$i has no leader"
done
terms_before=$(for i in 0 1 2; do pool_leader_term "r$i"; done | tr '\n' ' ')
changes_before=$(wan_leader_changes)
leader=$(wan_raft_leader) || bail_out "no raft leader found"
follower=$(( (leader + 1) % 3 ))
diag "raft leader: member $leader; the low-rate series comes from region r$follower"

apis=()
for i in 0 1 2; do apis+=("${POOL_API[c$i]}=r$i"); done
out=$("$LOAD" "$GPUPOOL_TOKEN" "${ETCD_CLIENT_URL[$leader]}" burst burst 300 6 10 "${apis[@]}" 2>&1)
st=$?
diag "$out"
is "$st" 0 "a burst of 300 jobs from 6 clients over the three regions: every one acknowledged and placed"
like "$out" "placed 300 / 300" "300 placements seen"

out=$("$LOAD" "$GPUPOOL_TOKEN" "${ETCD_CLIENT_URL[$leader]}" low rate 10 20 "${POOL_API[c$follower]}=r$follower" 2>&1)
st=$?
diag "$out"
is "$st" 0 "20 jobs at 10/s from a follower's region: each acknowledged, placed and running"
like "$out" "running 20 / 20" "20 jobs running"

for i in 0 1 2; do
    for d in "c$i" "a$i"; do
        is "$(wan_etcd_ports "$d")" "${ETCD_CLIENT_URL[$i]##*:} " "$d talks to its own cloud's member only"
    done
done
is "$(wan_leader_changes)" "$changes_before" "etcd's raft leader did not change"
is "$(for i in 0 1 2; do pool_leader_term "r$i"; done | tr '\n' ' ')" "$terms_before" \
    "no region's coordinator lost its leadership"
pool_check --quiet
ok $? "nothing is double-booked"

# Region r1's member dies: r1's daemons go to another cloud's member and
# keep working; once it is back and healthy they return to it.
etcd_member_kill 1
wait_for 20 grep -q 'etcd endpoint failed .*local=no' "$T_TMP/c1.log"
ok $? "c1 fails over to another cloud's member"
out=$("$LOAD" "$GPUPOOL_TOKEN" "${ETCD_CLIENT_URL[$(( leader == 1 ? 0 : leader ))]}" away rate 10 10 "${POOL_API[c1]}=r1" 2>&1)
st=$?
is "$st" 0 "with its member down, region r1 still places and runs jobs"
[ "$st" = 0 ] || diag "$out"
wan_member_start 1
wait_for 30 etcdctl_ --endpoints "${ETCD_CLIENT_URL[1]}" endpoint health || bail_out "member 1 did not come back"
wait_for 30 grep -q 'etcd endpoint back to local' "$T_TMP/c1.log"
ok $? "c1 comes back to its own member once it is healthy"
wait_for 30 grep -q 'etcd endpoint back to local' "$T_TMP/a1.log"
ok $? "a1 comes back to its own member too"
out=$("$LOAD" "$GPUPOOL_TOKEN" "${ETCD_CLIENT_URL[1]}" back rate 10 10 "${POOL_API[c1]}=r1" 2>&1)
is "$?" 0 "region r1 places and runs jobs after the return"
for d in c1 a1; do
    p=""
    for _ in $(seq 1 100); do p=$(wan_etcd_ports "$d"); [ "$p" = "${ETCD_CLIENT_URL[1]##*:} " ] && break; sleep 0.1; done
    is "$p" "${ETCD_CLIENT_URL[1]##*:} " "$d's connections in use (requests, watches) are its own member's again"
done
is "$(grep -c 'etcd endpoint back to local' "$T_TMP/c1.log")" 1 "c1 came back once (no flapping)"

# gpupool doctor, with r1's settings, from r1's cloud (this host reaches
# member 1 directly and the others through their relays)
doc=$("$GP_BUILD/gpupool" doctor --etcd-endpoints "${WAN_ENDPOINTS[1]}" \
    --etcd-local-endpoints "${WAN_LOCAL[1]}" --lease-ttl 10s 2>&1)
diag "$doc"
is "$(echo "$doc" | grep -c '^http://')" 3 "gpupool doctor measures all three members"
like "$doc" "${WAN_LOCAL[1]} +yes " "and lists r1's own member first, as local"
unlike_local=$(echo "$doc" | grep -c 'etcd-local-endpoints')
is "$unlike_local" 0 "it finds nothing wrong with r1's local endpoint"
doc=$("$GP_BUILD/gpupool" doctor --etcd-endpoints "${WAN_ENDPOINTS[1]}" 2>&1)
st=$?
like "$doc" "warning: .*no etcd-local-endpoints is set: name the nearest \\(${WAN_LOCAL[1]}\\)" \
    "without local endpoints, it names the nearest member"
is "$st" 1 "and exits 1"
wan_set_delay 120 || bail_out "the relays did not take the delay"
doc=$("$GP_BUILD/gpupool" doctor --etcd-endpoints "${WAN_ENDPOINTS[1]}" --etcd-local-endpoints "${WAN_LOCAL[1]}" 2>&1)
diag "$doc"
like "$doc" "warning: heartbeat-interval 100 ms is under half the round trip" \
    "at 240 ms between members, the 100 ms heartbeat is reported too short"
like "$doc" "warning: election-timeout 1000 ms is under ten round trips" "and the 1 s election timeout"
like "$doc" "suggested for these distances: --heartbeat-interval [0-9]+ --election-timeout [0-9]+" \
    "with values that fit"
wan_set_delay 15

for i in 0 1 2; do
    stop_daemon "a$i"; is "$?" 0 "a$i exits 0"
    stop_daemon "c$i"; is "$?" 0 "c$i exits 0"
done
done_testing
