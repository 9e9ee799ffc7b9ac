#!/usr/bin/env bash
# Cross-region placement order (README, "Cross-region placement", rule 2):
# prefer_regions first, then regions with nodes in a prefer_clouds cloud,
# then the owner region, then the others by name.  Regions here: r2 owns
# the jobs (cloud volc); r1 (tencent) and r3 (alibaba) are the others, r3
# registered first so that "by name" is not "by arrival".
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c3 r3 || bail_out "c3 did not start"
pool_agent a3 r3 1 2xA10:24576 --cloud alibaba || bail_out "a3 did not start"
pool_coordinator c2 r2 || bail_out "c2 did not start"
pool_agent a2 r2 1 1xA10:24576 --cloud volc || bail_out "a2 did not start"
pool_coordinator c1 r1 || bail_out "c1 did not start"
pool_agent a1 r1 1 2xA10:24576 --cloud tencent || bail_out "a1 did not start"
leaders() { for r in r1 r2 r3; do [ -n "$(pool_leader $r)" ] || return 1; done; }
wait_for 15 leaders; ok $? "every region has a leader"

submit() { echo "$1" | gpupool_ c2 submit - >/dev/null; }
small='"devices": 1, "mem_mib": 1024, "compute_percent": 10'

submit "{\"id\": \"pc\", $small, \"prefer_clouds\": [\"alibaba\"]}"
wait_state c2 pc running 15; ok $? "a job preferring cloud alibaba runs"
is "$(job_field c2 pc node)" a3-0000 "on r3's node: prefer_clouds comes before the owner region r2, which had room"
like "$(gpupool_ c2 -o json get pc | tr -d ' \n')" 'handedofffromr2tor3' "handed off from r2 to r3"

submit "{\"id\": \"pr\", $small, \"prefer_regions\": [\"r1\"], \"prefer_clouds\": [\"alibaba\"]}"
wait_state c2 pr running 15; ok $? "a job preferring region r1 and cloud alibaba runs"
is "$(job_field c2 pr node)" a1-0000 "in r1: prefer_regions comes before prefer_clouds"

submit "{\"id\": \"home\", $small}"
wait_state c2 home running 15; ok $? "a job without preferences runs"
is "$(job_field c2 home node)" a2-0000 "in its owner region r2, though r1 comes first by name"

# r2's only GPU is shared now: a whole-GPU job cannot go there.
submit '{"id": "big", "devices": 1}'
wait_state c2 big running 15; ok $? "a whole-GPU job that r2 cannot hold runs"
is "$(job_field c2 big node)" a1-0000 "in r1: the others by name (r1 before r3, which registered first)"
is "$(job_field c2 big region)" r1 "r1 owns it now"

pool_check >"$T_TMP/check.out"; is "$?" 0 "pool invariants hold"
diag "$(cat "$T_TMP/check.out")"
for d in a1 a2 a3 c1 c2 c3; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
