#!/usr/bin/env bash
# The shell test library itself: ports, daemons, the etcd cluster helpers, cleanup.
. "$(dirname "$0")/../lib.sh"

alloc_port p1; alloc_port p2
isnt "$p1" "$p2" "two reserved ports differ"
[ -d "$T_PORT_LOCKS/$p1" ]; ok $? "a reserved port is held against other scripts"

start_daemon sleeper 'ready' 5 -- bash -c 'echo ready; exec sleep 600'
ok $? "start_daemon waits for the readiness line"
start_daemon dies 'ready' 5 -- bash -c 'echo not-it; exit 3'
isnt "$?" 0 "start_daemon fails when the program exits before it is ready"
stop_daemon sleeper
is "$?" 143 "stop_daemon returns the exit status (143 = killed by SIGTERM)"

etcd_start 3
ok $? "a 3-member etcd cluster starts"
etcdctl_ put /t/k v >/dev/null
is "$(etcdctl_ get /t/k --print-value-only)" v "the cluster stores a key"
etcd_member_kill 0
is "$(etcdctl_ --endpoints "${ETCD_CLIENT_URL[1]}" get /t/k --print-value-only 2>/dev/null)" v \
   "the cluster serves with one member killed"
etcd_member_start 0
wait_for 20 etcdctl_ --endpoints "${ETCD_CLIENT_URL[0]}" endpoint health
ok $? "a killed member restarts from its data directory"

# Cleanup kills what the script started: check it in a child script, which
# proves first that its daemon was alive and its directory existed.
child=$T_TMP/child.t
cat > "$child" <<EOS
. "$GP_ROOT/tests/lib.sh"
start_daemon s ready 5 -- bash -c 'echo ready; exec sleep 600' || exit 3
kill -0 "\$(daemon_pid s)" && [ -d "\$T_TMP" ] || exit 4
echo "pid \$(daemon_pid s) tmp \$T_TMP"
EOS
out=$(GP_KEEP_TMP=0 bash "$child"); crc=$?
is "$crc" 0 "the child script started its daemon and exited 0"
cpid=$(echo "$out" | awk '/^pid/{print $2}'); ctmp=$(echo "$out" | awk '/^pid/{print $4}')
like "$cpid $ctmp" '^[0-9]+ /.+' "the child reported its daemon's pid and its directory"
gone() { ! kill -0 "$cpid" 2>/dev/null; }
[ -n "$cpid" ] && wait_for 10 gone; ok $? "cleanup kills the daemons a script started"
[ -n "$ctmp" ] && [ ! -e "$ctmp" ]; ok $? "cleanup removes the script's temporary directory"
done_testing
