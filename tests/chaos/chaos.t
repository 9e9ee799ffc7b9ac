#!/usr/bin/env bash
# Chaos: a local pool (3 etcd members; regions r1 and r2 with two
# coordinators and one simulated 4-node agent each; r2's coordinators reach
# etcd only through relays) under a steady stream of submissions, while
# faults are injected one at a time.  After each fault heals, the store is
# read with etcdctl and checked by store_check.py (not gpupool's code):
# nothing over-committed and every acknowledged job stored, at once; then,
# once settled, every placed job has one allocation on an existing node, no
# allocation lacks its job, and no acknowledged job is still pending.
#
# CHAOS_FAULTS picks the faults (default, in `make test`: kill -9 of r1's
# leader, kill -9 and restart of etcd member 0, an agent stopped beyond its
# lease).  `make chaos` runs them all (CHAOS_FAULTS=all): kill -9 of a
# leader, kill -9 and restart of each etcd member in turn, an agent stopped
# beyond its lease, region r2 cut off from etcd, every daemon restarted.
# It prints the figures:
#   bench: chaos_faults_survived N           faults after which every check held
#   bench: chaos_jobs_stranded N             acknowledged jobs never placed
#   bench: chaos_max_recovery_s X            heal -> every acknowledged job placed (target <= 10)
#   bench: chaos_leaders_lost_on_member_restart N
. "$(dirname "$0")/../lib.sh"

FAULTS=${CHAOS_FAULTS:-"kill_leader member_0 stop_agent"}
[ "$FAULTS" = all ] &&
    FAULTS="kill_leader member_0 member_1 member_2 stop_agent partition restart_all"
CHECK=$GP_ROOT/tests/chaos/store_check.py
command -v python3 >/dev/null || bail_out "python3 is needed (Debian package python3)"

etcd_start 3 || bail_out "etcd did not start"
DIRECT=$ETCD_ENDPOINTS
relays=()
for i in 0 1 2; do
    alloc_port rport
    start_daemon "relay$i" 'tcpproxy ready' 5 -- "$GP_BUILD/tests/coordinator/tcpproxy" "$rport" \
        "${ETCD_CLIENT_URL[$i]##*:}" || bail_out "relay $i did not start"
    relays+=("http://127.0.0.1:$rport")
done
RELAYED=$(IFS=,; echo "${relays[*]}")
# Coordinators and agents on 5 s leases: a lease must outlive an etcd election.
coord() { # NAME REGION
    local ep=$DIRECT
    [ "$2" = r2 ] && ep=$RELAYED
    ETCD_ENDPOINTS=$ep pool_coordinator "$1" "$2" --lease-ttl 5s
    ETCD_ENDPOINTS=$DIRECT
}
agent() { pool_agent "$1" "$2" 4 4xA10:24576 --lease-ttl 5s; }
coord c1 r1 && coord c2 r1 && coord c3 r2 && coord c4 r2 || bail_out "a coordinator did not start"
agent a1 r1 && agent a2 r2 || bail_out "an agent did not start"
has_leaders() { [ -n "$(pool_leader r1)" ] && [ -n "$(pool_leader r2)" ]; }
wait_for 20 has_leaders || bail_out "no leaders"
: >"$T_TMP/acked"

# The load: a job every 50 ms to one of the four coordinators in turn, half
# of them owned by the other region; 2-second jobs of a twentieth of a GPU.
load_run() {
    local n=0 c r code
    local names=(c1 c3 c2 c4)
    while [ ! -e "$T_TMP/load.stop" ]; do
        c=${names[$((n % 4))]}; r=r1; [ $((n % 2)) = 0 ] && r=r2
        {
            code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $GPUPOOL_TOKEN" \
                --data-binary "{\"id\": \"$LOAD_TAG-$n\", \"region\": \"$r\", \"devices\": 1, \"mem_mib\": 1024, \"compute_percent\": 5, \"duration_s\": 2}" \
                "${POOL_API[$c]}/v1/jobs")
            case $code in 200|201) echo "$LOAD_TAG-$n" >>"$T_TMP/acked";; esac
        } &
        n=$((n + 1))
        sleep 0.05
    done
    wait
}
load_start() { rm -f "$T_TMP/load.stop"; LOAD_TAG=$1 load_run & LOAD_PID=$!; }
load_stop() { touch "$T_TMP/load.stop"; wait "$LOAD_PID"; }

store() { etcdctl_ --endpoints "$DIRECT" get /gpupool/ --prefix -w json; }
check() { store | python3 "$CHECK" /gpupool/ "$T_TMP/acked" "$@"; }
terms() { echo "$(pool_leader_term r1) $(pool_leader_term r2)"; }

# ---------------------------------------------------------------- faults
# Each injects its fault and heals it; the load runs meanwhile.
f_kill_leader() {
    local l; l=$(pool_leader r1)
    stop_daemon "$l" KILL >/dev/null
    diag "killed r1's leader $l"
    other() { [ -n "$(pool_leader r1)" ] && [ "$(pool_leader r1)" != "$l" ]; }
    wait_for 20 other || diag "no new leader for r1"
    coord "$l" r1 || diag "$l did not restart"
}
f_member() { # I
    etcd_member_kill "$1"
    diag "killed etcd member $1"
    sleep 2   # the fault's duration: the pool runs on two members meanwhile
    etcd_member_start "$1"
    wait_for 30 etcdctl_ --endpoints "${ETCD_CLIENT_URL[$1]}" endpoint health || diag "member $1 not healthy"
}
f_stop_agent() {
    kill -STOP "$(daemon_pid a1)"
    diag "stopped agent a1"
    gone() { [ -z "$(etcdctl_ get /gpupool/nodes/r1/ --prefix --keys-only)" ]; }
    wait_for 30 gone || diag "a1's nodes did not vanish"
    kill -CONT "$(daemon_pid a1)"
    back() { [ "$(etcdctl_ get /gpupool/nodes/r1/ --prefix --keys-only | grep -c .)" = 4 ]; }
    wait_for 30 back || diag "a1's nodes did not come back"
}
f_partition() {
    local i
    for i in 0 1 2; do kill -STOP "$(daemon_pid relay$i)"; done
    diag "region r2 cut off from etcd"
    lapsed() { [ -z "$(pool_leader r2)" ]; }
    wait_for 30 lapsed || diag "r2's leadership did not lapse"
    for i in 0 1 2; do kill -CONT "$(daemon_pid relay$i)"; done
    wait_for 30 has_leaders || diag "r2 has no leader after healing"
}
f_restart_all() {
    local d
    for d in a1 a2 c1 c2 c3 c4; do
        stop_daemon "$d"; is "$?" 0 "$d exits 0 when the pool is restarted"
    done
    coord c1 r1 && coord c2 r1 && coord c3 r2 && coord c4 r2 || diag "a coordinator did not restart"
    agent a1 r1 && agent a2 r2 || diag "an agent did not restart"
}

survived=0 max_rec=0 lost_on_member=0 nf=0
for f in $FAULTS; do
    nf=$((nf + 1))
    load_start "$f"
    before=$(terms)
    case $f in
        member_*) f_member "${f#member_}" ;;
        *) "f_$f" ;;
    esac
    healed=$(date +%s%N)
    load_stop
    check >"$T_TMP/check.out"; st=$?
    is "$st" 0 "$f: nothing over-committed, every acknowledged job stored"
    [ "$st" = 0 ] || diag_file "$T_TMP/check.out" 20
    settled() { check --settled >"$T_TMP/check.out"; }
    wait_for 60 settled; st=$?
    rec=$(( ($(date +%s%N) - healed) / 1000000 ))
    ok "$st" "$f: once healed, every acknowledged job is placed and the store is consistent (${rec} ms)"
    [ "$st" = 0 ] && survived=$((survived + 1)) || diag_file "$T_TMP/check.out" 20
    diag "$(head -1 "$T_TMP/check.out")"
    [ "$rec" -gt "$max_rec" ] && max_rec=$rec
    case $f in
        member_*)
            after=$(terms)
            [ "$before" = "$after" ] || lost_on_member=$((lost_on_member + 1))
            is "$after" "$before" "$f: no region lost its leader" ;;
    esac
done
# store_check counts the acknowledged jobs still pending ("pending=N").
stranded=$(check | sed -n 's/^store_check: .* pending=\([0-9]*\) .*/\1/p')
is "$stranded" 0 "no acknowledged job is stranded ($(grep -c . "$T_TMP/acked") acknowledged)"
echo "bench: chaos_faults_survived $survived"
echo "bench: chaos_jobs_stranded $stranded"
awk -v ms="$max_rec" 'BEGIN { printf "bench: chaos_max_recovery_s %.1f\n", ms / 1000 }'
echo "bench: chaos_leaders_lost_on_member_restart $lost_on_member"
echo "# $nf faults: $FAULTS; target: every acknowledged job placed within 10 s of the heal"
for d in a1 a2 c1 c2 c3 c4; do stop_daemon "$d"; is "$?" 0 "$d exits 0"; done
done_testing
