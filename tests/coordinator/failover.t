#!/usr/bin/env bash
# Leader failover, proven with etcd's own facts rather than a stopwatch.
#
# 1. kill -9 of the leader under load: its election key goes when its lease
#    expires (nobody revokes it), and the standby holds a new key before a
#    lease of twice the dead leader's TTL, granted at the kill, expires:
#    a dead leader is replaced within its lease-ttl.  Every acknowledged
#    job is placed exactly once.
# 2. SIGTERM of the leader: it revokes its lease, so the standby holds the
#    key while a sentinel lease shorter than what the old lease had left
#    is still alive -- the old lease cannot have expired, it was revoked.
. "$(dirname "$0")/../lib.sh"

LKEY=/gpupool/leader/r1
# leader_fact FIELD: the leader key's value, lease (decimal), create_revision.
leader_json() { etcdctl_ get "$LKEY" -w json 2>/dev/null | tr -d '\n '; }
leader_fact() {
    case $1 in
    value) pool_leader r1 ;;
    *) leader_json | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2 ;;
    esac
}
hex() { printf '%x' "$1"; }
# lease_remaining HEX: seconds left on a lease, -1 when it no longer exists.
lease_remaining() {
    local out
    out=$(etcdctl_ lease timetolive "$1" 2>&1)
    case $out in
    *"already expired"*|*"not found"*) echo -1 ;;
    *remaining*) echo "$out" | sed -n 's/.*remaining(\(-\{0,1\}[0-9]*\)s).*/\1/p' ;;
    *) echo "error: $out" ;;
    esac
}
# sentinel TTL_S: grant a lease, print its hex id.
sentinel() { etcdctl_ lease grant "$1" | awk '/granted/ {print $2}'; }

etcd_start 3 || bail_out "etcd did not start"
pool_coordinator c1 r1 --lease-ttl 4s || bail_out "c1 did not start"
wait_for 10 bash -c '[ -n "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/leader/r1 --print-value-only)" ]'
pool_coordinator c2 r1 --lease-ttl 30s || bail_out "c2 did not start"
pool_agent a1 r1 16 8xA100:81920 || bail_out "agent did not start"
is "$(leader_fact value)" c1 "c1 leads"

# --- 1. kill -9 under load
l1=$(leader_fact lease); rev1=$(leader_fact create_revision)
etcdctl_ watch "$LKEY" >"$T_TMP/watch.out" 2>/dev/null &
track_pid $!
spec='"devices": 1, "mem_mib": 8192, "compute_percent": 10'
pool_submit c2 "$T_TMP/acked" x 1 100 "$spec"
stop_daemon c1 KILL   # reaped here, so bash prints no "Killed" notice
s1=$(sentinel 8)   # twice c1's lease-ttl, from the kill on
diag "killed the leader c1 with SIGKILL; its lease $(hex "$l1"), sentinel lease $s1 (8 s)"
pool_submit c2 "$T_TMP/acked" y 1 200 "$spec"
# held_or_late ID SENTINEL: ID holds the key, or the sentinel lease is gone.
held_or_late() { [ "$(leader_fact value)" = "$1" ] || [ "$(lease_remaining "$2")" = -1 ]; }
wait_for 30 held_or_late c2 "$s1"
is "$(leader_fact value)" c2 "c2 holds the election key after c1's death"
rem=$(lease_remaining "$s1")
[ "$rem" != -1 ] && [ "$rem" -ge 0 ] 2>/dev/null
ok $? "before a lease of twice c1's TTL, granted at the kill, expired (it has ${rem}s left)"
is "$(lease_remaining "$(hex "$l1")")" -1 "c1's lease is gone: it expired (nobody could revoke it)"
rev2=$(leader_fact create_revision)
[ "${rev2:-0}" -gt "${rev1:-0}" ]; ok $? "c2's key is a new one (create revision $rev1 -> $rev2): the fencing token changed"
wait_for 5 grep -qx c2 "$T_TMP/watch.out"
is "$(grep -x -e DELETE -e PUT -e c1 -e c2 "$T_TMP/watch.out" | tr '\n' ' ')" "DELETE PUT c2 " \
   "the key's history: deleted with c1's lease, then created by c2, nothing between"
pool_submit c2 "$T_TMP/acked" z 1 100 "$spec"

sort -u "$T_TMP/acked" > "$T_TMP/ids"
is "$(wc -l < "$T_TMP/ids")" 400 "all 400 submissions were acknowledged"
placed() { [ "$(ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" get /gpupool/alloc/ --prefix --keys-only | grep -c .)" -ge 400 ]; }
wait_for 60 placed
ok $? "400 allocations appear"
pool_check --placed "$T_TMP/ids" >"$T_TMP/check.out"; st=$?
diag "$(cat "$T_TMP/check.out")"
is "$st" 0 "every acknowledged job is placed exactly once"
like "$(cat "$T_TMP/check.out")" "allocations=400 jobs=400 expected_placed=400 violations=0" \
     "400 jobs, 400 allocations"

# --- 2. SIGTERM: the leader resigns by revoking its lease
pool_coordinator c3 r1 --lease-ttl 30s || bail_out "c3 did not start"
l2=$(leader_fact lease)
# c2's lease (30 s) is refreshed every 10 s, so it always has more than 15 s
# left; a 15 s sentinel granted now expires before it could.
left=$(lease_remaining "$(hex "$l2")")
[ "${left:--1}" -gt 15 ] 2>/dev/null; ok $? "c2's lease has more than 15 s left (${left}s)"
s2=$(sentinel 15)
kill -TERM "$(daemon_pid c2)"
wait_for 30 held_or_late c3 "$s2"
is "$(leader_fact value)" c3 "after SIGTERM to c2, c3 holds the election key"
rem=$(lease_remaining "$s2")
[ "$rem" != -1 ] && [ "$rem" -ge 0 ] 2>/dev/null
ok $? "while the 15 s sentinel is still alive (${rem}s left)"
is "$(lease_remaining "$(hex "$l2")")" -1 "c2's lease is gone before it could expire: it was revoked"
stop_daemon c2; is "$?" 0 "c2 exits 0"
wait_for 30 placed
pool_check --placed "$T_TMP/ids" >"$T_TMP/check.out"; is "$?" 0 "still every job placed exactly once"

stop_daemon a1; is "$?" 0 "agent exits 0"
stop_daemon c3; is "$?" 0 "c3 exits 0"
done_testing
