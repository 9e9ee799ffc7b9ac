#!/usr/bin/env bash
# The usage record P usage/<region>/<node> is rewritten only on material
# change.  One agent speaks for two nodes and samples both in the same
# pass (every usage-interval, 200 ms here): when node 1's usage changes
# and its record is rewritten, node 0's record -- whose usage did not
# change -- keeps its revision; when node 0's usage changes, it is
# rewritten too.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
pool_agent a1 r1 2 2xA10:24576 --usage-interval 200ms || bail_out "agent did not start"
submit() { echo "$1" | gpupool_ c1 submit - >/dev/null; }
U=/gpupool/usage/r1
modrev() { etcdctl_ get "$U/$1" -w json | tr -d ' \n' | grep -o '"mod_revision":[0-9]*' | cut -d: -f2; }
usage_has() { etcdctl_ get "$U/$1" --print-value-only | grep -q "\"job\":\"$2\""; }
usage_lacks() { ! usage_has "$@"; }

submit '{"id": "j0", "devices": 1, "mem_mib": 1024, "uuids": ["GPU-a1-0000-0"], "duration_s": 600}'
wait_for 15 usage_has a1-0000 j0; ok $? "a job on node 0 appears in node 0's usage record"
rev0=$(modrev a1-0000)
isnt "${rev0:-}" "" "node 0's usage record exists (revision $rev0)"

submit '{"id": "j1", "devices": 1, "mem_mib": 1024, "uuids": ["GPU-a1-0001-0"], "duration_s": 600}'
wait_for 15 usage_has a1-0001 j1; ok $? "a job on node 1 appears in node 1's usage record"
rev1=$(modrev a1-0001)
# Two more material changes on node 1, each a pass that also sampled node 0.
submit '{"id": "j1b", "devices": 1, "mem_mib": 1024, "uuids": ["GPU-a1-0001-1"], "duration_s": 600}'
wait_for 15 usage_has a1-0001 j1b; ok $? "and a second one"
gpupool_ c1 cancel j1 >/dev/null
wait_for 15 usage_lacks a1-0001 j1; ok $? "node 1's record is rewritten when a job leaves it"
[ "$(modrev a1-0001)" -gt "$rev1" ]; ok $? "node 1's record was rewritten ($rev1 -> $(modrev a1-0001))"
is "$(modrev a1-0000)" "$rev0" "node 0's record, sampled in the same passes with nothing changed, was not"

gpupool_ c1 cancel j0 >/dev/null
wait_for 15 usage_lacks a1-0000 j0; ok $? "node 0's record is rewritten when its usage changes"
[ "$(modrev a1-0000)" -gt "$rev0" ]; ok $? "a new revision ($rev0 -> $(modrev a1-0000))"
stop_daemon a1; is "$?" 0 "agent exits 0"
stop_daemon c1; is "$?" 0 "coordinator exits 0"
done_testing
