#!/usr/bin/env bash
# log-retention: an ended job's folder (pid, exit, stdout, stderr) moves to
# state-dir/done/ and is kept there for log-retention, then removed.  The
# agent prunes done/ when it starts (and hourly after); here a folder made
# older than the retention (by its mtime) goes, a recent one stays.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
pool_agent a1 r1 1 1xA10:24576 --log-retention 10m || bail_out "agent did not start"
DONE=$T_TMP/a1.state/done
submit() { echo "$1" | gpupool_ c1 submit - >/dev/null; }
in_done() { ls "$DONE" 2>/dev/null | grep -q "^$1\\."; }

submit '{"id": "old", "devices": 1, "restart": "never", "command": ["sh", "-c", "echo old-output"]}'
wait_state c1 old succeeded 15; ok $? "a job runs to its end"
wait_for 10 in_done old; ok $? "its folder moved to state-dir/done/"
olddir=$(ls -d "$DONE"/old.* | head -1)
like "$(cat "$olddir/stdout")" "old-output" "with its stdout"
ls "$olddir" | tr '\n' ' ' | grep -q 'exit.*pid.*stderr.*stdout'; ok $? "pid, exit, stdout and stderr"
touch -d '1 hour ago' "$olddir"   # older than log-retention (10 min)

submit '{"id": "young", "devices": 1, "restart": "never", "command": ["true"]}'
wait_state c1 young succeeded 15 && wait_for 10 in_done young
ok $? "a second job ends, its folder in done/ too"

stop_daemon a1; is "$?" 0 "agent exits 0"
pool_agent a1b r1 1 1xA10:24576 --log-retention 10m --state-dir "$T_TMP/a1.state" --name a1 ||
    bail_out "agent did not restart"
wait_for 10 grep -q 'pruned old job folders count=1' "$T_TMP/a1b.log"
ok $? "the restarted agent prunes one folder"
[ ! -e "$olddir" ]; ok $? "the folder older than log-retention is gone"
in_done young; ok $? "the recent one is kept"
stop_daemon a1b; is "$?" 0 "agent exits 0"
done_testing
