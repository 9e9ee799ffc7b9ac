#!/usr/bin/env bash
# The CLI's tables and bulk cancel against a real pool: `cancel --all`,
# `--state`, `--owner` (list, then cancel what has not ended, printing each
# job cancelled); `ls -o wide` and `nodes -o wide` (more columns, local and
# relative times); a memory-only slice shown as "no cap"; and RFC 3339
# times beside the "_ms" fields of -o json.
. "$(dirname "$0")/../lib.sh"

unset GPUPOOL_API GPUPOOL_TOKEN GPUPOOL_TOKEN_FILE
etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "c1 did not start"
pool_agent a1 r1 1 2xA10:24576 || bail_out "a1 did not start"
nodes_seen() { gpupool_ c1 nodes | grep -q 'a1-0000'; }
wait_for 15 nodes_seen || bail_out "the node is not listed"

run() {
    "$@" >"$T_TMP/out" 2>"$T_TMP/err"
    rc=$?
    out=$(cat "$T_TMP/out")
    err=$(cat "$T_TMP/err")
}
submit() { echo "$1" | gpupool_ c1 submit - >/dev/null; }

submit '{"id": "m1", "owner": "team-a", "devices": 1, "mem_mib": 2048, "compute_percent": 0}'
submit '{"id": "a2", "owner": "team-a", "devices": 1, "mem_mib": 1024, "compute_percent": 10}'
submit '{"id": "b1", "owner": "team-b", "devices": 1}'
wait_state c1 m1 running 20; ok $? "a memory-only slice runs"
wait_state c1 a2 running 20; ok $? "a 10% slice runs"
wait_state c1 b1 running 20; ok $? "a whole GPU runs"
submit '{"id": "p1", "owner": "team-b", "devices": 2}'
is "$(job_state c1 p1)" pending "two whole GPUs wait while one is shared"

# --- "no cap" for memory-only slices
run gpupool_ c1 ls
like "$(grep '^m1 ' <<<"$out")" ' 1x 2G no cap ' "ls: the memory-only slice has no compute cap"
like "$(grep '^a2 ' <<<"$out")" ' 1x 1G 10% ' "ls: the 10% slice shows 10%"
unlike_0pct() { ! grep -q '^m1 .* 0%' <<<"$out"; }
unlike_0pct; ok $? "...and never 0%"
run gpupool_ c1 get m1
like "$out" 'gpu[0-9]+ +GPU-[^ ]+ +2G memory, no compute cap' "get: no compute cap"
like "$out" 'Request: +1x 2G no cap' "get: the request too"

# --- -o wide
run gpupool_ c1 -o wide ls
is "$rc" 0 "ls -o wide exits 0"
like "$(head -1 <<<"$out")" '^ID +STATE +REGION +NODE +DEVICES +PRIORITY +OWNER +ATTEMPTS +SUBMITTED +UPDATED +REASON' \
    "ls -o wide: owner, attempts, submitted and updated columns"
like "$(grep '^a2 ' <<<"$out")" 'team-a +[0-9]+ +20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} +[0-9]+[smhd] ago' \
    "...the owner, local submission time and how long ago it changed"
run gpupool_ c1 ls
like "$(head -1 <<<"$out")" '^ID +STATE +REGION +NODE +DEVICES +PRIORITY +AGE +REASON' "plain ls keeps its columns"
run gpupool_ c1 nodes -o wide
like "$(head -1 <<<"$out")" '^NODE +REGION +ZONE +MODEL +GPUS +MEM +ALLOCATED +JOBS +HEALTHY +STATUS +AGENT +CLOUD +CPUS +HOST-MEM +OVERSUB +LABELS' \
    "nodes -o wide: cloud, CPUs, host memory, oversubscription, labels"
like "$(grep '^a1-0000 ' <<<"$out")" ' yes +Ready +[0-9.]+ +[^ ]+ +[0-9.]+ +[0-9.]+[MGT]? +[0-9.]+ +[^ ]+$' "...filled in for the node"
run gpupool_ c1 -o yaml ls
is "$rc" 64 "-o yaml: 64"
like "$err" 'expected table, wide or json' "...naming wide"

# --- RFC 3339 beside _ms
json=$(gpupool_ c1 -o json get a2)
ms=$(grep -o '"submitted_ms": [0-9]*' <<<"$json" | head -1 | grep -o '[0-9]*$')
want=$(date -u -d "@$((ms / 1000))" +%Y-%m-%dT%H:%M:%S).$(printf '%03d' $((ms % 1000)))Z
like "$json" "\"submitted\": \"$want\"" "-o json: submitted (RFC 3339, UTC) beside submitted_ms"
like "$json" '"at": "20[0-9-]{8}T[0-9:]{8}\.[0-9]{3}Z"' "...and beside each history entry's at_ms"
like "$(gpupool_ c1 -o json ls)" '"updated": "20[0-9-]{8}T' "...in listings too"

# --- bulk cancel
run gpupool_ c1 cancel --bogus
is "$rc" 64 "cancel --bogus: 64"
run gpupool_ c1 cancel a2 --all
is "$rc" 64 "ids and --all together: 64"
run gpupool_ c1 cancel --state pending
is "$rc" 0 "cancel --state pending exits 0"
is "$out" "p1 cancelled" "...cancels the pending job and says so"
run gpupool_ c1 cancel --owner team-a
is "$rc" 0 "cancel --owner team-a exits 0"
is "$(sort <<<"$out" | tr '\n' ' ')" "a2 cancelled m1 cancelled " "...cancels team-a's jobs, printing each"
is "$(job_state c1 b1)" running "...and leaves team-b's running job"
run gpupool_ c1 cancel --all
is "$out" "b1 cancelled" "cancel --all cancels what has not ended (ended jobs are not touched)"
run gpupool_ c1 cancel --all
is "$rc" 0 "cancel --all with nothing left exits 0"
is "$err" "gpupool: no job to cancel" "...and says so"
is "$out" "" "...printing no job"

for d in a1 c1; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
