#!/usr/bin/env bash
# Conformance of README's "Protocol reference": an agent written from it
# alone, in Python (pyagent.py: pyzmq and etcd's JSON gateway), takes part
# in a real pool (etcd, a coordinator; gpupool's agent joins it late).  It
# registers two nodes under one routing id, is called for bids and bids,
# wins, reports running then succeeded (seen through the CLI), requeues a
# failing job by its restart policy, holds a job while its allocation says
# suspended, stops a cancelled job when its allocation goes; a proposal its
# node cannot hold is rejected, counted and logged; killed, its nodes are
# lost and its job requeued, and run again when it comes back.
. "$(dirname "$0")/../lib.sh"

PY=/usr/bin/python3   # Debian's, with python3-zmq
if ! "$PY" -c 'import zmq' 2>/dev/null; then
    echo "1..0 # SKIP $PY cannot import zmq (Debian package python3-zmq)"
    exit 0
fi

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"

is "$(pool_metric c1 gpupool_coordinator_rejected_proposals_total)" 0 \
   "gpupool_coordinator_rejected_proposals_total is there at 0 from the start"

start_daemon py 'ready name=pyag' 30 -- "$PY" "$GP_ROOT/tests/protocol/pyagent.py" \
    --etcd "${ETCD_CLIENT_URL[0]}" --region r1 --name pyag --bad-proposal py-bad ||
    bail_out "the Python agent did not start"
PYLOG=$T_TMP/py.log

# Registration: two node records on one lease, found by the coordinator.
keys=$(etcdctl_ get /gpupool/nodes/r1/ --prefix --keys-only | grep -c .)
is "$keys" 2 "the Python agent registered two node records"
wait_for 10 bash -c "curl -s -H 'Authorization: Bearer $GPUPOOL_TOKEN' '${POOL_API[c1]}/v1/nodes' |
                     grep -q pyag-b"
ok $? "the coordinator serves both nodes through its API"
wait_for 10 grep -q '^connected coordinator=c1' "$PYLOG"
ok $? "the agent found the coordinator's registration and connected"

submit() { gpupool_ c1 submit - >/dev/null <<<"$1"; }
rejected() { pool_metric c1 gpupool_coordinator_rejected_proposals_total; }
rejected_some() { [ "$(rejected)" -ge 1 ]; }
reason_says() { gpupool_ c1 -o json get "$1" | grep -q "$2"; }
failed_reports() { [ "$(grep -c "^reported job=$1 state=failed ok=1" "$PYLOG")" -ge 1 ]; }

# ---- a job that succeeds
submit '{"id": "py-ok-1", "devices": 1, "mem_mib": 4096, "compute_percent": 25,
         "command": ["sh", "-c", "exit 0"]}'
wait_state c1 py-ok-1 succeeded 30; ok $? "py-ok-1 runs on the Python agent and succeeds (CLI)"
like "$(grep 'py-ok-1' "$PYLOG" | grep '^cfb')" 'round=[0-9]+' "the agent was called for bids on it"
like "$(grep '^bid job=py-ok-1' "$PYLOG")" 'node=pyag-[ab] score=' "it bid, with a score"
like "$(grep '^reported job=py-ok-1 state=running' "$PYLOG")" 'ok=1' \
     "its running report (fenced transaction) committed"
like "$(grep '^reported job=py-ok-1 state=succeeded' "$PYLOG")" 'ok=1' \
     "its end report committed"
rec=$(gpupool_ c1 -o json get py-ok-1 | tr -d ' \n')
like "$rec" '"state":"pending".*"state":"placed".*"state":"running".*"state":"succeeded"' \
     "its history: pending, placed, running, succeeded"
like "$rec" '"reason":"exitedwithcode0"' "the reason says how it ended"
like "$rec" '"attempts":1' "one attempt counted"
ran_on=$(sed -n 's/^started job=py-ok-1 node=\([^ ]*\) .*/\1/p' "$PYLOG")
like "$rec" "\"node\":\"$ran_on\"" "the record names the node it ran on ($ran_on)"
is "$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep -c py-ok-1)" 0 \
   "its allocation was deleted with the end report"
like "$(pool_metric c1 'gpupool_coordinator_bids_total{result="bid"}')" '^[1-9]' \
     "the coordinator counted the Python agent's bids"

# ---- two whole devices, on one node
submit '{"id": "py-two-1", "devices": 2, "command": ["sleep", "0.2"]}'
wait_state c1 py-two-1 succeeded 30; ok $? "a two-device whole job succeeds"
like "$(grep '^started job=py-two-1' "$PYLOG")" 'devices=0:PY-pyag-[ab]-0:16384,1:PY-pyag-[ab]-1:16384' \
     "it got both devices of one node, whole"

# ---- a share in percent of the device's memory (integer rounding as the reference says)
submit '{"id": "py-pct-1", "devices": 1, "mem_percent": 33.3, "compute_percent": 12.5,
         "command": ["true"]}'
wait_state c1 py-pct-1 succeeded 30; ok $? "a job asking 33.3% of a device's memory succeeds"
like "$(grep '^started job=py-pct-1' "$PYLOG")" 'devices=[01]:PY-pyag-[ab]-[01]:5455$' \
     "with 5455 MiB of the 16384 MiB device"
is "$(rejected)" 0 "none of the Python agent's proposals so far was rejected"

# ---- restart on failure, within max_restarts
submit '{"id": "py-fail-1", "devices": 1, "mem_mib": 1024, "restart": "on-failure",
         "max_restarts": 1, "command": ["sh", "-c", "exit 3"]}'
wait_for 30 failed_reports py-fail-1
ok $? "the failing job ended for good after its restart"
rec=$(gpupool_ c1 -o json get py-fail-1 | tr -d ' \n')
like "$rec" '"state":"failed"' "it is failed"
like "$rec" '"attempts":2' "after two attempts (max_restarts 1)"
like "$rec" '"exit_code":3' "with its exit code"
like "$rec" 'exitedwithcode3;restarting\(on-failure\)' "the first end requeued it"

# ---- cancel: the allocation goes, the agent stops the job
submit '{"id": "py-long-1", "devices": 1, "mem_mib": 2048, "command": ["sleep", "300"]}'
wait_state c1 py-long-1 running 30; ok $? "a long job runs on the Python agent"
pid=$(sed -n 's/^started job=py-long-1 .*pid=\([0-9]*\) .*/\1/p' "$PYLOG")
kill -0 "$pid" 2>/dev/null; ok $? "its process exists (pid $pid)"

# ---- suspend and resume: the allocation's suspended flag
proc_state() { awk '{print $3}' "/proc/$1/stat" 2>/dev/null; }
proc_is() { [ "$(proc_state "$1")" = "$2" ]; }
gpupool_ c1 suspend py-long-1 >/dev/null; is "$?" 0 "suspend exits 0"
is "$(job_state c1 py-long-1)" suspended "the record says suspended"
is "$(etcdctl_ get /gpupool/alloc/ --prefix --print-value-only | grep py-long-1 | grep -c '"suspended":true')" 1 \
   "the allocation carries the suspended flag"
wait_for 10 proc_is "$pid" T; ok $? "the agent held the job (process stopped)"
gpupool_ c1 resume py-long-1 >/dev/null; is "$?" 0 "resume exits 0"
is "$(job_state c1 py-long-1)" running "the record says running again"
wait_for 10 proc_is "$pid" S; ok $? "the agent let the job go on"
gpupool_ c1 cancel py-long-1 >/dev/null; is "$?" 0 "cancel exits 0"
is "$(job_state c1 py-long-1)" cancelled "the job is cancelled"
wait_for 10 grep -q '^stopped job=py-long-1' "$PYLOG"; ok $? "the agent saw its allocation deleted"
wait_for 10 bash -c "! kill -0 $pid 2>/dev/null"; ok $? "and stopped its process"
is "$(grep -c '^reported job=py-long-1 state=\(succeeded\|failed\)' "$PYLOG")" 0 \
   "and reported nothing after the cancel"

# ---- gpupool's own agent beside it: its proposals pass the coordinator's check
pool_agent a1 r1 1 2xA10:24576 || bail_out "the gpupool agent did not start"
submit '{"id": "c-ok-1", "devices": 1, "mem_percent": 50, "compute_percent": 30,
         "models": ["A10"], "command": ["true"]}'
submit '{"id": "c-two-1", "devices": 2, "models": ["A10"], "command": ["true"]}'
wait_state c1 c-ok-1 succeeded 30; ok $? "a share placed on gpupool's agent beside it succeeds"
wait_state c1 c-two-1 succeeded 30; ok $? "and a two-device whole job"
is "$(rejected)" 0 "none of gpupool's agent's proposals was rejected either"

# ---- a proposal the node cannot hold: rejected, counted, logged
submit '{"id": "py-bad-1", "devices": 1, "mem_mib": 2048, "models": ["PYGPU"], "command": ["true"]}'
wait_for 30 rejected_some
ok $? "gpupool_coordinator_rejected_proposals_total counts the proposal of 4x the device's memory"
like "$(grep '^bid job=py-bad-1' "$PYLOG" | head -1)" 'mem=65536' "(the agent proposed 65536 MiB on a 16384 MiB device)"
like "$(grep 'proposal rejected' "$T_TMP/c1.log" | head -1)" \
     'agent=pyag job=py-bad-1 node=pyag-[ab] reason=.*65536 MiB, the device offers 16384' \
     "the coordinator logs the agent, the job, the node and why"
wait_for 10 reason_says py-bad-1 'proposal rejected'
ok $? "the job's pending reason says its proposal was rejected"
is "$(job_state c1 py-bad-1)" pending "the job is not placed"
is "$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep -c py-bad-1)" 0 \
   "no allocation was committed for it"
gpupool_ c1 cancel py-bad-1 >/dev/null

# ---- a lost node: the agent dies, its lease expires, the leader requeues
submit '{"id": "py-lost-1", "devices": 1, "mem_mib": 1024, "restart": "on-failure",
         "models": ["PYGPU"], "command": ["sleep", "3"]}'
wait_state c1 py-lost-1 running 30; ok $? "a job runs on the Python agent"
stop_daemon py KILL
pyag_nodes() { etcdctl_ get /gpupool/nodes/r1/ --prefix --keys-only | grep -c pyag; }
no_pyag_nodes() { [ "$(pyag_nodes)" = 0 ]; }
wait_for 20 no_pyag_nodes; ok $? "killed, its node records go with its lease"
wait_for 20 reason_says py-lost-1 'vanished'; ok $? "the leader marked the job lost"
rec=$(gpupool_ c1 -o json get py-lost-1 | tr -d ' \n')
like "$rec" '"state":"lost".*"state":"pending","node":"","reason":"requeuedafteritsnodewaslost"' \
     "and requeued it by its restart policy"
is "$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep -c py-lost-1)" 0 \
   "its allocation was released"
start_daemon py2 'ready name=pyag' 30 -- "$PY" "$GP_ROOT/tests/protocol/pyagent.py" \
    --etcd "${ETCD_CLIENT_URL[0]}" --region r1 --name pyag ||
    bail_out "the Python agent did not start again"
wait_state c1 py-lost-1 succeeded 30; ok $? "back, the agent runs the requeued job to the end"
like "$(gpupool_ c1 -o json get py-lost-1 | tr -d ' \n')" '"attempts":2' "its second attempt"

stop_daemon a1; is "$?" 0 "gpupool's agent exits 0 on SIGTERM"
stop_daemon py2; is "$?" 0 "the Python agent exits 0 on SIGTERM"
stop_daemon c1; is "$?" 0 "the coordinator exits 0 on SIGTERM"
done_testing
