#!/usr/bin/env bash
# Jobs that cannot run now wait; only a job that no node the pool has ever
# known could hold is refused, and both say why node by node, as
# kube-scheduler does ("0/2 nodes: 1 wrong model (want B200), ...").  A node
# whose agent is gone stays listed, NotReady since a time, for
# node-retention (in etcd, so that a coordinator started later knows it
# too), and a job only it could hold is accepted meanwhile; it is forgotten
# after node-retention.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 --node-retention 8s || bail_out "coordinator did not start"
pool_agent a1 r1 1 2xA100:81920 || bail_out "a1 did not start"
pool_agent a2 r1 1 1xT4:15360 || bail_out "a2 did not start"
nodes_seen() { [ "$(gpupool_ c1 nodes | grep -c 'a[12]-0000')" = 2 ]; }
wait_for 15 nodes_seen || bail_out "the nodes did not register"

run() { out=$("$@" 2>&1); rc=$?; }
submit() { run gpupool_ "${2:-c1}" submit - <<<"$1"; }

# --- refused: no node the pool knows could ever hold it
submit '{"id": "b200", "devices": 1, "models": ["B200"]}'
is "$rc" 65 "a model the pool never had: refused (65)"
like "$out" 'no node the pool knows could ever hold this job: 0/2 nodes: 2 wrong model \(want B200\)' \
     "...saying why, node by node"
submit '{"id": "huge", "devices": 1, "mem_mib": 200000}'
like "$out" '0/2 nodes: 2 insufficient GPU memory \(want 200000 MiB on 1 GPU, most free 81920\)' \
     "too much memory: what it wants and the most a device has"
submit '{"id": "sixteen", "devices": 16, "mem_mib": 200000, "models": ["B200"]}'
like "$out" '0/2 nodes: 2 wrong model \(want B200\) \(HTTP 400\)$' \
     "several reasons: each node counted once, under the first filter it fails"
submit '{"id": "mixed", "devices": 2, "mem_mib": 90000}'
like "$out" '0/2 nodes: 1 too few GPUs \(want 2, most 1\), 1 insufficient GPU memory \(want 90000 MiB on 2 GPUs, most free 81920\) \(HTTP 400\)$' \
     "different nodes, different causes, counted apart"
submit '{"id": "elsewhere", "devices": 16, "mem_mib": 200000, "models": ["B200"], "regions": ["tencent"]}'
like "$out" '0/2 nodes: 2 other region \(want tencent\) \(HTTP 400\)$' \
     "a region the pool never had: the first filter each node fails, nothing contradictory"
is "$(gpupool_ c1 ls -q | grep -c .)" 0 "nothing refused was stored"

# --- accepted: it cannot run now, it waits with the reason
submit '{"id": "big", "devices": 2, "models": ["A100"]}'
wait_state c1 big running 15; ok $? "a job takes both A100s"
submit '{"id": "wait", "devices": 2, "models": ["A100"]}'
is "$rc" 0 "a job that cannot run now is accepted"
reason() { job_field c1 "$1" reason; }
reason_like() { reason "$1" | grep -Eq "$2"; }
wait_for 10 reason_like wait '^0/2 nodes'
like "$(reason wait)" '^0/2 nodes: 1 wrong model \(want A100\), 1 too few free whole GPUs \(want 2, most free 0\)$' \
     "it waits, saying why for each node"
is "$(job_state c1 wait)" pending "and stays pending"

# --- NotReady: a2's agent is gone
stop_daemon a2 KILL
notready() { gpupool_ c1 nodes | grep -Eq '^a2-0000 .* NotReady [0-9]+[smh] '; }
wait_for 15 notready; ok $? "a node whose agent is gone is listed NotReady, with how long"
run gpupool_ c1 nodes
like "$(grep '^a1-0000 ' <<<"$out")" ' Ready ' "...the other one Ready"
like "$(head -1 <<<"$out")" '^NODE +REGION +ZONE +MODEL +GPUS +MEM +ALLOCATED +JOBS +HEALTHY +STATUS +AGENT$' \
     "nodes has a STATUS column"
like "$(gpupool_ c1 -o json nodes | tr -d ' \n' | grep -o '"name":"a2-0000".*')" '"state":"NotReady","not_ready_since_ms":1[0-9]{12}' \
     "the API says since when"
like "$(curl -s -H "Authorization: Bearer $GPUPOOL_TOKEN" "${POOL_API[c1]}/v1/nodes" | tr -d ' \n')" \
     '"not_ready_since":"20[0-9-]+T[0-9:.]+Z"' "...in the API's own JSON, not only the CLI's"
like "$(gpupool_ c1 regions | grep '^r1 ')" '^r1 +c1 +c1 +1 +1 ' "regions counts it: 1 node, 1 NotReady"
stored() { etcdctl_ get /gpupool/notready/r1/a2-0000 --print-value-only | grep -q '"since_ms"'; }
wait_for 10 stored; ok $? "the leader records it in etcd (notready/<region>/<node>)"

submit '{"id": "t4", "devices": 1, "models": ["T4"]}'
is "$rc" 0 "a job only the NotReady node could hold is accepted"
wait_for 10 reason_like t4 'NotReady'
like "$(reason t4)" '^0/2 nodes: 1 NotReady, 1 wrong model \(want T4\)$' "and waits, counting the NotReady node"

pool_coordinator c2 r1 --node-retention 8s || bail_out "c2 did not start"
like "$(gpupool_ c2 nodes | grep '^a2-0000 ')" 'NotReady' "a coordinator started later lists it too (from etcd)"
submit '{"id": "t4-c2", "devices": 1, "models": ["T4"]}' c2
is "$rc" 0 "...and accepts a job only it could hold"

# --- back: Ready again, the waiting jobs run
pool_agent a2 r1 1 1xT4:15360 || bail_out "a2 did not restart"
wait_state c1 t4 running 20; ok $? "the agent is back: the job runs on it"
ready() { gpupool_ c1 nodes | grep -Eq '^a2-0000 .* Ready '; }
wait_for 10 ready; ok $? "the node is Ready again"
unstored() { ! etcdctl_ get /gpupool/notready/r1/a2-0000 --print-value-only | grep -q .; }
wait_for 10 unstored; ok $? "its NotReady record is gone from etcd"

# --- forgotten after node-retention
gpupool_ c1 cancel t4 t4-c2 >/dev/null
stop_daemon a2 KILL
wait_for 15 notready; ok $? "NotReady again"
gone() { ! gpupool_ c1 nodes | grep -q '^a2-0000 ' && ! gpupool_ c2 nodes | grep -q '^a2-0000 '; }
wait_for 25 gone; ok $? "after node-retention it is no longer listed, by either coordinator"
wait_for 10 unstored; ok $? "nor recorded in etcd"
submit '{"id": "t4-late", "devices": 1, "models": ["T4"]}'
is "$rc" 65 "a job only the forgotten node could hold is refused again"
like "$out" '0/1 nodes: 1 wrong model \(want T4\)' "...by the nodes the pool still knows"

for d in c2 c1; do stop_daemon $d; is "$?" 0 "$d exits 0 on SIGTERM"; done
done_testing
