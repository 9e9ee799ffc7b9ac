#!/usr/bin/env bash
# Local endpoints: a client whose local member is member 1 of three uses it
# first, fails over when it dies, and comes back - watch included - once it
# is healthy again, with no event lost or delivered twice.
. "$(dirname "$0")/../lib.sh"
etcd_start 3 || bail_out "etcd did not start"
LOCAL=${ETCD_CLIENT_URL[1]}
LOCAL_PORT=${LOCAL##*:}

# The etcd ports of the probe's TCP connections that received something in
# the last two seconds: the ones in use (curl also keeps idle connections to the
# member it failed over to; they carry nothing).
probe_ports() {
    ss -Htnpi state established 2>/dev/null |
        awk -v pid="pid=$(daemon_pid probe)," '
            /^[^ \t]/ { peer = ""; if (index($0, pid)) { peer = $4; sub(/.*:/, "", peer) } next }
            peer != "" && match($0, /lastrcv:[0-9]+/) {
                if (substr($0, RSTART + 8, RLENGTH - 8) + 0 < 2000) print peer }' |
        sort -u | tr '\n' ' '
}
last_state() { grep '^state ' "$T_TMP/probe.log" | tail -1; }
state_has() { last_state | grep -q -- "$1"; }

ETCD_LOCAL=$LOCAL start_daemon probe '^state ' -- "$GP_BUILD/tests/etcd/home_probe" /test/home ||
    bail_out "home_probe did not start"
wait_for 10 state_has 'events=[1-9]'
like "$(last_state)" "endpoint=$LOCAL local=1" "the client starts on its local endpoint, not the first listed"
wait_ports() { for _ in $(seq 1 200); do [ "$(probe_ports)" = "$1" ] && break; sleep 0.1; done; probe_ports; }
is "$(wait_ports "$LOCAL_PORT ")" "$LOCAL_PORT " "every connection in use (requests and the watch stream) goes to the local member"

etcd_member_kill 1
wait_for 20 state_has 'local=0'
ok $? "with the local member killed, the client fails over to another"
before=$(last_state | sed 's/.*puts=\([0-9]*\).*/\1/')
wait_for 20 bash -c "[ \$(grep '^state ' '$T_TMP/probe.log' | tail -1 | sed 's/.*puts=\([0-9]*\).*/\1/') -gt $((before + 5)) ]"
ok $? "and its writes go on there"
like "$(last_state)" "failbacks=0" "no return while the local member is down"

etcd_member_start 1
wait_for 30 etcdctl_ --endpoints "$LOCAL" endpoint health || bail_out "member 1 did not come back"
wait_for 20 state_has "endpoint=$LOCAL local=1"
ok $? "once the local member is healthy again, the client comes back to it"
like "$(last_state)" "failbacks=1" "in one return (no flapping)"
# The watch stream moved too: soon every connection in use is the local member's.
is "$(wait_ports "$LOCAL_PORT ")" "$LOCAL_PORT " "the watch stream moved back to the local member with the requests"

stop_daemon probe
is "$?" 0 "the probe exits 0"
final=$(grep '^final ' "$T_TMP/probe.log")
like "$final" "gaps=0 dups=0" "the watch lost no event and delivered none twice across both moves"
like "$final" "events=[1-9]" "and it delivered events ($final)"
grep -q 'etcd endpoint back to local' "$T_TMP/probe.log"
ok $? "the return is logged"
done_testing
