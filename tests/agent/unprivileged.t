#!/usr/bin/env bash
# Jobs never run as root: each runs as its team's account (job-users; other
# teams as job-user), with no new privileges, no inherited descriptors, its
# resource limits, in a 0700 work folder of its own.  The jobs' own
# commands show that they cannot read /etc/shadow, the agent's key files,
# its state folder or another team's job folder.  An account of uid 0 is
# refused unless its team is allowed it by name.
#
# The accounts are numeric (uid:gid without a passwd entry), so that the
# test creates no user on the machine; the agent must be root to switch.
. "$(dirname "$0")/../lib.sh"

[ "$(id -u)" = 0 ] || { plan 1; skip 1 "the agent must run as root to switch users"; exit 0; }

K=$T_TMP/keys
mkdir -p "$K"
"$GP_BUILD/gpupool" keys curve "$K/coord" >/dev/null && "$GP_BUILD/gpupool" keys curve "$K/agent" >/dev/null ||
    bail_out "keys"
cp "$K/agent.pub" "$K/agents"
cp "$K/coord.pub" "$K/coordinators"
TOKENS=$T_TMP/tokens
OPS=$("$GP_BUILD/gpupool" keys token --principal ops --role operator --file "$TOKENS")
export GPUPOOL_TOKEN=$OPS
STATE=$T_TMP/a1.state

# An account of uid 0 is a configuration error, unless its team is named.
"$GP_BUILD/gpupool-agent" -n --shim "" --state-dir "$STATE" --job-users team-r=root >"$T_TMP/check.out" 2>&1
is "$?" 78 "job-users mapping a team to root: refused (exit 78)"
like "$(cat "$T_TMP/check.out")" 'team team-r maps to root \(root\), which only teams in job-root-teams may' \
     "saying why"
"$GP_BUILD/gpupool-agent" -n --shim "" --state-dir "$STATE" --job-user 0 >"$T_TMP/check.out" 2>&1
is "$?" 78 "job-user root: refused"
"$GP_BUILD/gpupool-agent" -n --shim "" --state-dir "$STATE" --job-users team-r=root --job-root-teams team-r \
    >/dev/null 2>&1
is "$?" 0 "allowed by name in job-root-teams"
"$GP_BUILD/gpupool-agent" -n --shim "" --state-dir "$STATE" --job-users team-x=no-such-account-here \
    >"$T_TMP/check.out" 2>&1
is "$?" 78 "an account that does not exist: refused"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 --curve-key "$K/coord.key" --agent-keys "$K/agents" ||
    bail_out "coordinator did not start"
pool_agent a1 r1 1 4xA10:24576 --curve-key "$K/agent.key" --coordinator-keys "$K/coordinators" \
    --job-users team-a=40001:40001,team-b=40002:40002 --job-rlimits core=0,nofile=1000 ||
    bail_out "agent did not start"

submit() { # ID OWNER SCRIPT
    printf '{"id": "%s", "owner": "%s", "cpu_milli": 100, "command": ["sh", "-c", %s]}' \
        "$1" "$2" "$(printf '%s' "$3" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')" |
        gpupool_ c1 submit - >/dev/null
}

# team-b's job keeps a file in its work folder and waits.
submit b1 team-b 'echo team-b-private > mine; touch ready; exec sleep 300'
wait_for 20 bash -c "ls $STATE/jobs/b1.*/work/ready" 2>/dev/null; ok $? "team-b's job runs"
BDIR=$(ls -d "$STATE"/jobs/b1.*)

# team-a's job looks around and writes what it found.
OUT=$T_TMP/a1.out
submit a1 team-a "
id -u > $OUT.uid; id -g > $OUT.gid; id -G > $OUT.groups
pwd > $OUT.pwd; stat -c '%a %u' . > $OUT.work; echo \"\$HOME\" > $OUT.home
grep NoNewPrivs /proc/self/status | tr -d '\t ' > $OUT.nnp
ulimit -n > $OUT.nofile; ulimit -c > $OUT.core
for f in /etc/shadow $K/agent.key $K/coord.key $BDIR/work/mine $BDIR/stdout $BDIR/pid; do
    if cat \"\$f\" >/dev/null 2>&1; then echo \"read \$f\"; else echo \"denied \$f\"; fi
done > $OUT.reads
for d in $STATE $STATE/jobs $BDIR $BDIR/work $STATE/slices; do
    if ls \"\$d\" >/dev/null 2>&1; then echo \"listed \$d\"; else echo \"denied \$d\"; fi
done > $OUT.lists
if echo x > $BDIR/work/planted 2>/dev/null; then echo wrote; else echo denied; fi > $OUT.write
touch $OUT.done"
wait_for 20 test -e "$OUT.done"; ok $? "team-a's job ran"
is "$(cat "$OUT.uid")" 40001 "id shows the mapped account's uid"
is "$(cat "$OUT.gid")" 40001 "and gid"
is "$(cat "$OUT.groups")" 40001 "and no other group (none of root's)"
like "$(cat "$OUT.pwd")" "^$STATE/jobs/a1\.r[0-9]+/work$" "the job starts in its own work folder"
is "$(cat "$OUT.work")" "700 40001" "owned by its account, mode 0700"
is "$(cat "$OUT.home")" "$(cat "$OUT.pwd")" "which is its HOME"
is "$(cat "$OUT.nnp")" "NoNewPrivs:1" "no new privileges (PR_SET_NO_NEW_PRIVS)"
bpid=$(awk '{print $2}' "$BDIR/pid")
is "$(ls /proc/"$bpid"/fd 2>&1 | sort -n | tr '\n' ' ')" "0 1 2 " \
   "no descriptor inherited but stdin, stdout, stderr (team-b's running job)"
is "$(cat "$OUT.nofile")" 1000 "job-rlimits: nofile"
is "$(cat "$OUT.core")" 0 "job-rlimits: core"
is "$(grep -c '^denied' "$OUT.reads")" 6 "it reads none of: /etc/shadow, the agent's and coordinator's keys, team-b's files, its logs, its pid file"
is "$(grep -c '^denied' "$OUT.lists")" 5 "it lists neither the agent's state folders nor team-b's"
is "$(cat "$OUT.write")" denied "it cannot write into team-b's work folder"

# The same job as root would have; the agent runs as root.
[ "$(awk '/^Uid:/ {print $2}' /proc/"$(daemon_pid a1)"/status)" = 0 ]
ok $? "(the agent itself runs as root)"

# team-b sees its own file: the refusals were about the account.
submit b2 team-b "cat $BDIR/work/mine > $T_TMP/b2.out"
wait_for 20 test -s "$T_TMP/b2.out"
is "$(cat "$T_TMP/b2.out" 2>/dev/null)" team-b-private "another team-b job reads team-b's folder"

# A sliced job writes its own accounting region and the GPU's shared state.
printf '%s' '{"id": "a3", "owner": "team-a", "devices": 1, "mem_mib": 1024, "compute_percent": 10,
  "command": ["sh", "-c", "test -w \"$GP_SLICE_REGION\" && echo region > '"$T_TMP"'/a3.out; test -w '"$STATE"'/slices/gpu-$CUDA_VISIBLE_DEVICES.state && echo gpu-state >> '"$T_TMP"'/a3.out"]}' |
    gpupool_ c1 submit - >/dev/null
wait_for 20 test -s "$T_TMP/a3.out"
is "$(sort -u "$T_TMP/a3.out" 2>/dev/null | tr '\n' ' ')" "gpu-state region " \
   "a sliced job writes its slice region and its GPU's priority state"

# A job of a team without a mapping runs as job-user (nobody).
submit c1job team-c "id -u > $T_TMP/c.uid"
wait_for 20 test -s "$T_TMP/c.uid"
is "$(cat "$T_TMP/c.uid" 2>/dev/null)" "$(id -u nobody)" "an unmapped team runs as job-user (nobody)"

gpupool_ c1 cancel b1 >/dev/null
stop_daemon a1; is "$?" 0 "agent exits 0"
stop_daemon c1; is "$?" 0 "coordinator exits 0"
done_testing
