#!/usr/bin/env bash
# Node maintenance: a cordoned node receives nothing, across restarts of
# every daemon; a drain moves a restartable job to another node (it runs
# there, the old process got SIGTERM and is gone, the allocation moved); a
# gang disruption budget of 1 stops a 3-member gang one member at a time;
# restart:never keeps a drain waiting until --force cancels it; a drain goes
# on through the leader's death half way.
. "$(dirname "$0")/../lib.sh"


etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "c1 did not start"
pool_coordinator c2 r1 || bail_out "c2 did not start"
pool_agent a1 r1 1 2xA10:24576 || bail_out "a1 did not start"
pool_agent a2 r1 1 2xA10:24576 || bail_out "a2 did not start"
pool_agent a3 r1 1 4xA10:24576 || bail_out "a3 did not start"
# the CLI with every coordinator (a restart gives one new ports)
cli() { "$GP_BUILD/gpupool" --api "${POOL_API[c1]},${POOL_API[c2]}" "$@"; }
run() { "$@" >"$T_TMP/out" 2>"$T_TMP/err"; rc=$?; out=$(cat "$T_TMP/out"); err=$(cat "$T_TMP/err"); }
schema2() { cli regions | grep -q 'store schema 2'; }
# every job given runs (the record's own state, not its history's)
all_running() {
    local id
    for id in "$@"; do
        [ "$(cli -o json get "$id" | tr -d ' \n' | grep -o '"state":"[a-z]*"' | head -1)" = \
          '"state":"running"' ] || return 1
    done
}
stopping_seen() { drain_rec "$1" | grep -q '"how":"stopping"'; }
submit() { echo "$1" | cli submit - >/dev/null; }
# A job that says when it got SIGTERM, takes $2 s to stop, and then exits.
job() { # id extra-fields stop-seconds
    submit "{\"id\": \"$1\", \"devices\": 1, $2 \"command\": [\"sh\", \"-c\",
        \"trap 'sleep $3; echo got TERM; exit 0' TERM; echo started; while :; do sleep 0.2; done\"]}"
}
pid_of() { awk '{print $2}' "$T_TMP"/*.state/jobs/"$1".r*/pid 2>/dev/null | head -1; }
allocs() { etcdctl_ get "/gpupool/alloc/$1/" --prefix --keys-only | grep -c .; }
drain_rec() { etcdctl_ get "/gpupool/drains/$1" --print-value-only; }
# stop intervals of the drain record's "stopped" entries: "since ended" lines
intervals() { drain_rec "$1" | python3 -c '
import json, sys
for e in json.load(sys.stdin)["stopped"]:
    if e["job"].startswith(sys.argv[1]): print(e["since_ms"], e.get("ended_ms", 0))' "$2"; }
# no two intervals overlap (sorted by start, each ends before the next starts)
disjoint() { sort -n | awk 'NR > 1 && $1 < end { bad = 1 } { end = $2 } END { exit bad }'; }

# --- the store schema: raised once every daemon reads it
wait_for 20 schema2
ok $? "the store schema is raised to 2 once every daemon of the pool reads it"

# --- cordon: nothing new lands there, across restarts of everything
run cli cordon a2-0000 --reason "new driver"
is "$rc" 0 "cordon exits 0"
run cli nodes
like "$(grep '^a2-0000 ' <<<"$out")" ' cordoned +0\.[0-9]' "nodes: a2-0000 cordoned, its agent's release beside it"
like "$out" 'a2-0000 cordoned since 20[0-9-]+ [0-9:]+ \([0-9]+[smh] ago\) by [^ ]+: new driver' \
    "...with since when, who and why"
wait_for 10 grep -q 'node cordoned: no bids node=a2-0000' "$T_TMP/a2.log"
ok $? "a2's agent stops bidding for it"
submit '{"id": "pinned", "devices": 1, "uuids": ["GPU-a2-0000-0"]}'
stop_daemon c1; stop_daemon c2; stop_daemon a2
pool_coordinator c1 r1 || bail_out "c1 did not restart"
pool_coordinator c2 r1 || bail_out "c2 did not restart"
pool_agent a2 r1 1 2xA10:24576 || bail_out "a2 did not restart"
submit '{"id": "probe", "devices": 1}'
wait_state c1 probe running 20; ok $? "after every daemon restarted, rounds place jobs again"
isnt "$(job_field c1 probe node)" a2-0000 "...but not on the cordoned node"
is "$(job_state c1 pinned)" pending "a job only the cordoned node can hold stays pending"
like "$(cli nodes)" 'a2-0000 cordoned since .*: new driver' "the cordon survived the restarts"
run cli uncordon a2-0000
is "$rc" 0 "uncordon exits 0"
wait_state c1 pinned running 20; ok $? "once uncordoned, the node takes the waiting job"
cli cancel pinned probe >/dev/null

# --- drain: a restartable job moves; the old process stops gracefully
job mover '"restart": "on-failure",' 0
wait_state c1 mover running 20; ok $? "a restartable job runs"
from=$(job_field c1 mover node)
oldpid=$(pid_of mover)
[ -n "$oldpid" ] && kill -0 "$oldpid"; ok $? "its process runs on $from (pid $oldpid)"
run cli drain "$from" --timeout 60s
is "$rc" 0 "drain $from exits 0 when the node is empty"
like "$out" "node $from drained \(1 job moved off\)" "...and says so"
wait_state c1 mover running 20; ok $? "the job runs again"
to=$(job_field c1 mover node)
isnt "$to" "$from" "...on another node ($to)"
! kill -0 "$oldpid" 2>/dev/null; ok $? "the old process is gone"
grep -q 'got TERM' "$T_TMP"/"${from%-0000}".state/done/mover.r*/stdout 2>/dev/null
ok $? "...after a SIGTERM it handled (graceful stop)"
is "$(allocs "$from")" 0 "no allocation is left on $from"
is "$(etcdctl_ get "/gpupool/alloc/$to/mover" --keys-only | grep -c .)" 1 "the allocation moved to $to"
like "$(cli -o json get mover | tr -d ' \n')" '"reason":"stoppedbythedrainofnode' \
    "the history says it was stopped by the drain, not failed"
run cli nodes
like "$(grep "^$from " <<<"$out")" ' drained ' "nodes shows $from drained"
cli uncordon "$from" >/dev/null

# --- a gang disruption budget of 1: one member stopped at a time
run cli quota set gt --gang-disruption-budget 1
is "$rc" 0 "quota set --gang-disruption-budget"
for n in a1-0000 a2-0000; do cli cordon "$n" >/dev/null; done   # the gang lands on a3-0000
for i in 0 1 2; do job "g-$i" '"restart": "always", "owner": "gt", "gang": "g", "gang_size": 3,' 1; done
wait_for 30 all_running g-0 g-1 g-2
ok $? "a 3-member gang runs"
is "$(for i in 0 1 2; do job_field c1 g-$i node; done | sort -u)" a3-0000 "...all on a3-0000"
for n in a1-0000 a2-0000; do cli uncordon "$n" >/dev/null; done
run cli drain a3-0000 --timeout 120s
is "$rc" 0 "draining a3-0000 ends"
is "$(intervals a3-0000 g- | grep -c .)" 3 "each member was stopped"
intervals a3-0000 g- | disjoint; ok $? "one at a time: no two members' stops overlap"
wait_for 30 all_running g-0 g-1 g-2
ok $? "the whole gang runs again elsewhere"
cli uncordon a3-0000 >/dev/null
cli cancel g-0 g-1 g-2 mover >/dev/null

# --- restart: never keeps the drain waiting; --force cancels it
job keeper '"restart": "never",' 0
wait_state c1 keeper running 20; ok $? "a job that may not restart runs"
node=$(job_field c1 keeper node)
kpid=$(pid_of keeper)
run cli drain "$node" --timeout 3s
is "$rc" 75 "without --force the drain times out (75)"
like "$out" "keeper: restart: never \(--force cancels it\)" "...saying what remains and why"
is "$(job_state c1 keeper)" running "the job still runs"
run cli drain "$node" --force --timeout 60s
is "$rc" 0 "with --force the drain ends"
is "$(job_state c1 keeper)" cancelled "...the job cancelled"
wait_for 10 bash -c "! kill -0 $kpid 2>/dev/null"; ok $? "...and its process gone"
cli uncordon "$node" >/dev/null

# --- a drain survives the leader's death half way
run cli quota set ft --disruption-budget 1
for n in a1-0000 a2-0000; do cli cordon "$n" >/dev/null; done
job f1 '"restart": "on-failure", "owner": "ft",' 3
job f2 '"restart": "on-failure", "owner": "ft",' 3
wait_state c1 f1 running 20 && wait_state c1 f2 running 20; ok $? "two jobs of team ft run on a3-0000"
for n in a1-0000 a2-0000; do cli uncordon "$n" >/dev/null; done
cli drain a3-0000 --timeout 120s >"$T_TMP/drain.out" 2>&1 &
drain_pid=$!
wait_for 20 stopping_seen a3-0000
ok $? "the drain stops a first job"
leader=$(pool_leader r1)
stop_daemon "$leader" KILL
wait "$drain_pid"
is "$?" 0 "the leader killed half way, the drain still ends (the CLI followed it to the new leader)"
diag "$(cat "$T_TMP/drain.out")"
wait_for 30 all_running f1 f2; ok $? "both jobs run again"
intervals a3-0000 f | disjoint; ok $? "the team's budget of 1 held across the failover"
pool_check >"$T_TMP/check.out"; is "$?" 0 "pool invariants hold"
diag "$(cat "$T_TMP/check.out")"
done_testing
