#!/usr/bin/env bash
# gpupool top: pool totals, per region and per model, from GET /v1/usage;
# --once prints one screen; without it the screen is refreshed every
# --interval (a new allocation shows up) until SIGINT, which exits 0.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "c1 did not start"
pool_coordinator c2 r2 || bail_out "c2 did not start"
pool_agent a1 r1 1 2xA10:24576 || bail_out "a1 did not start"
pool_agent a2 r2 1 1xT4:15360 || bail_out "a2 did not start"
submit() { echo "$1" | gpupool_ c1 submit - >/dev/null; }
nodes_seen() { [ "$(gpupool_ c1 nodes | grep -c 'a[12]-0000')" = 2 ]; }
wait_for 15 nodes_seen || bail_out "the nodes are not listed"

submit '{"id": "half", "devices": 1, "mem_mib": 12288, "compute_percent": 10, "models": ["A10"]}'
wait_state c1 half running 15; ok $? "a half-A10 job runs"

out=$(gpupool_ c1 top --once); st=$?
is "$st" 0 "top --once exits 0"
row() { printf '%s\n' "$out" | grep "^$1 " | sed 's/ *$//'; }
like "$out" 'pool: 2 nodes, 3 GPUs, 0\.50 GPUs allocated \(16\.7%\), 1 jobs running, 0 pending' \
     "pool totals: nodes, GPUs, allocated, running, pending"
like "$(row r1)" '^r1 +1 +2 +0\.50/2 \(25%\) +1 +0$' "r1's row: 1 node, 2 GPUs, 0.50 allocated, 1 running"
like "$(row r2)" '^r2 +1 +1 +0\.00/1 \(0%\) +0 +0$' "r2's row: 1 node, 1 GPU, nothing allocated"
like "$(row A10)" '^A10 +2 +0\.50/2 \(25%\)$' "the A10 row"
like "$(row T4)" '^T4 +1 +0\.00/1 \(0%\)$' "the T4 row"
json=$(gpupool_ c1 -o json top --once | tr -d ' \n')
like "$json" '"pool":\{[^}]*"gpus":3' "-o json prints the server's usage document"

"$GP_BUILD/gpupool" --api "${POOL_API[c1]}" top --interval 200ms >"$T_TMP/top.out" 2>&1 &
toppid=$!
track_pid "$toppid"
screens() { grep -c '^pool:' "$T_TMP/top.out"; }
wait_for 10 bash -c "[ \$(grep -c '^pool:' $T_TMP/top.out) -ge 1 ]"; ok $? "top without --once prints a screen"
submit '{"id": "whole", "devices": 1, "models": ["T4"]}'
wait_state c1 whole running 15; ok $? "a whole-T4 job runs"
wait_for 10 grep -q 'pool: 2 nodes, 3 GPUs, 1\.50 GPUs allocated' "$T_TMP/top.out"
ok $? "a later screen shows the new allocation ($(screens) screens so far)"
kill -INT "$toppid"
wait "$toppid"; is "$?" 0 "SIGINT stops top with exit 0"
for d in a1 a2 c1 c2; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
