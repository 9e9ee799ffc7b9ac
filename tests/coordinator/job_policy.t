#!/usr/bin/env bash
# Placement policy per pool (the coordinator's `policy`, default binpack)
# and per job (`policy`): binpack puts a second small job next to the
# first, on the same device; spread puts it on the emptiest node.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "c1 did not start"
pool_coordinator c2 r2 --policy spread || bail_out "c2 did not start"
pool_agent a1 r1 2 2xA10:24576 || bail_out "a1 did not start"
pool_agent a2 r2 2 2xA10:24576 || bail_out "a2 did not start"
submit() { echo "$2" | gpupool_ "$1" submit - >/dev/null; }
dev() { gpupool_ "$1" -o json get "$2" | tr -d ' \n' | grep -o '"uuid":"[^"]*"' | head -1 | cut -d'"' -f4; }
small='"devices": 1, "mem_mib": 2048, "compute_percent": 10'

submit c1 "{\"id\": \"b1\", $small}"
wait_state c1 b1 running 15; ok $? "a first small job runs in r1 (binpack by default)"
submit c1 "{\"id\": \"b2\", $small}"
wait_state c1 b2 running 15; ok $? "a second one runs"
is "$(dev c1 b2)" "$(dev c1 b1)" "binpack: on the same device as the first ($(dev c1 b1))"
submit c1 "{\"id\": \"s1\", $small, \"policy\": \"spread\"}"
wait_state c1 s1 running 15; ok $? "a job with policy spread runs"
isnt "$(job_field c1 s1 node)" "$(job_field c1 b1 node)" "spread: on the other, empty node"

submit c2 "{\"id\": \"r2a\", $small, \"region\": \"r2\"}"
submit c2 "{\"id\": \"r2b\", $small, \"region\": \"r2\"}"
wait_state c2 r2a running 15 && wait_state c2 r2b running 15; ok $? "two small jobs run in r2 (pool policy spread)"
isnt "$(job_field c2 r2b node)" "$(job_field c2 r2a node)" "spread by default there: on two nodes"
submit c2 "{\"id\": \"r2c\", $small, \"region\": \"r2\", \"policy\": \"binpack\"}"
wait_state c2 r2c running 15; ok $? "a job with policy binpack runs in r2"
dc=$(dev c2 r2c)
[ "$dc" = "$(dev c2 r2a)" ] || [ "$dc" = "$(dev c2 r2b)" ]; ok $? "binpack: next to one of them ($dc)"
like "$(echo '{"id": "bad-policy", "devices": 1, "policy": "nonsense"}' | gpupool_ c1 submit - 2>&1)" 'policy' \
     "an unknown policy is refused, naming the field"
for d in a1 a2 c1 c2; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
