#!/usr/bin/env bash
# gpupool plan: read-only what-if questions on the live pool, from one etcd
# read.  A drain of a node lists where each of its jobs would go; draining
# it for real (its agent stopped, the jobs cancelled and resubmitted) puts
# them there; --drain-candidates finds the nodes that can go together; the
# command writes nothing to etcd.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "c1 did not start"
pool_agent a1 r1 1 2xA10:24576 || bail_out "a1 did not start"
submit() { echo "$1" | gpupool_ c1 submit - >/dev/null; }
plan_() { "$GP_BUILD/gpupool" plan --etcd-endpoints "$ETCD_ENDPOINTS" "$@"; }
spec='"devices": 1, "mem_mib": 16384, "compute_percent": 25, "models": ["A10"]'
# two jobs fill half of each of a1-0000's A10s: the node is half empty
for j in j1 j2; do
    submit "{\"id\": \"$j\", $spec}"
    wait_state c1 $j running 20; ok $? "$j runs"
done
is "$(job_field c1 j1 node) $(job_field c1 j2 node)" "a1-0000 a1-0000" "both run on a1-0000"
# two nodes of one A10 each: each holds one of those jobs
pool_agent a2 r1 2 1xA10:24576 || bail_out "a2 did not start"
nodes_seen() { [ "$(gpupool_ c1 nodes | grep -c 'a[12]-000')" = 3 ]; }
wait_for 15 nodes_seen || bail_out "the nodes are not listed"

# the plan's etcd read writes nothing: the pool's writers are held still
# (SIGSTOP) around it, and the revision is the same before and after
rev() { etcdctl_ endpoint status -w json | grep -o '"revision":[0-9]*' | head -1; }
for d in c1 a1 a2; do kill -STOP "$(daemon_pid $d)"; done
before=$(rev)
out=$(plan_ --drain a1-0000 2>&1); st=$?
after=$(rev)
for d in c1 a1 a2; do kill -CONT "$(daemon_pid $d)"; done
diag "$out"
is "$st" 0 "the drain of a1-0000 can be done (exit 0)"
isnt "$before" "" "etcd's revision is read"
is "$after" "$before" "plan wrote nothing to etcd ($before)"
like "$out" "pool at etcd revision ${before#*:}: 3 nodes, 2 allocations" "it reports the revision it read"
like "$out" 'can drain: all 2 jobs place elsewhere now' "all of a1-0000's jobs place elsewhere"
where() { printf '%s\n' "$out" | sed -n "s/^  $1  a1-0000 -> \\(a2-000[01]\\)  A10\\[0\\] 16384 MiB 25%\$/\\1/p"; }
p1=$(where j1); p2=$(where j2)
like "$p1 $p2" '^a2-000[01] a2-000[01]$' "each job's line names the node and device it would go to"
isnt "$p1" "$p2" "the two jobs go to different nodes"

out=$(plan_ --drain a1-0000,a2-0000); st=$?
is "$st" 1 "draining a1-0000 with a2-0000 cannot be done (exit 1)"
like "$out" 'cannot drain: 1 of 2 jobs place nowhere else' "one job would have nowhere to go"
like "$out" 'j[12]  a1-0000 -> nowhere: ' "and its line says so"

out=$(plan_ --drain-candidates); st=$?
diag "$out"
is "$st" 0 "--drain-candidates exits 0"
like "$out" 'drainable together: 2 of 3 nodes' "two nodes can go together"
is "$(printf '%s\n' "$out" | grep -c '^  a2-000[01]  cloud - region r1, 1 devices of A10, 0 jobs running$')" 2 \
   "the empty ones"
# with prices the dearest node is tried first: a1-0000 (two A10s) can go
# when its jobs move to the two one-A10 nodes, and then neither of those can
printf '# per GPU, any cloud\n*  gpu=A10  1.00\n*  gpu=T4  0.50\n' >"$T_TMP/prices.txt"
out=$(plan_ --drain-candidates --prices "$T_TMP/prices.txt"); st=$?
diag "$out"
is "$st" 0 "--drain-candidates --prices exits 0"
like "$out" 'drainable together: 1 of 3 nodes, saving 2\.00 per hour' "the dearest node can go, saving its price"
like "$out" '^  a1-0000  cloud - region r1, 2 devices of A10, 2 jobs running, 2\.00 per hour$' "a1-0000 is the one"
is "$(printf '%s\n' "$out" | grep -c '^  j[12]  a1-0000 -> a2-000[01]  A10')" 2 "and its two jobs go to the A10 nodes"
printf '*  gpu=H100  1.00\n' >"$T_TMP/noprice.txt"
out=$(plan_ --drain-candidates --prices "$T_TMP/noprice.txt" 2>&1); st=$?
is "$st" 65 "a node without a price is refused (65)"
like "$out" 'no price for node a[12]-000[01] \(type [12]xA10 in cloud -\)' "naming the node and its type"

out=$(plan_ --drain nosuch 2>&1); st=$?
is "$st" 65 "an unknown node is refused (65)"
like "$out" 'no node nosuch in the pool' "with a message naming it"
out=$(plan_ 2>&1); st=$?
is "$st" 64 "no question is a usage error"

# the real drain: a1's node goes away, the jobs are resubmitted in the
# order the plan placed them, and land where it said
stop_daemon a1; is "$?" 0 "a1 exits 0"
gone() { gpupool_ c1 nodes | grep -q '^a1-0000 .* NotReady '; }
wait_for 15 gone; ok $? "a1-0000 left the pool"
for j in j1 j2; do gpupool_ c1 cancel $j >/dev/null; done
for j in j1 j2; do
    submit "{\"id\": \"$j-again\", $spec}"
    wait_state c1 $j-again running 20; ok $? "$j-again runs"
done
got="$(job_field c1 j1-again node) $(job_field c1 j2-again node)"
is "$(echo $got | tr ' ' '\n' | sort | tr '\n' ' ')" "$(echo $p1 $p2 | tr ' ' '\n' | sort | tr '\n' ' ')" \
   "the jobs run on the nodes the plan named ($got)"

# --add: a T4 node runs a whole-T4 job and a second one waits; the plan
# says it fits an empty node like the T4 one, and, from the example
# catalogue and prices, adds the cheapest T4 node there is (gcp's, 2.92
# per hour)
pool_agent a3 r1 1 1xT4:15360 || bail_out "a3 did not start"
wait_for 15 bash -c "'$GP_BUILD/gpupool' --api '${POOL_API[c1]}' nodes | grep -q a3-0000" ||
    bail_out "a3-0000 is not listed"
submit '{"id": "t4a", "devices": 1, "models": ["T4"]}'
wait_state c1 t4a running 20; ok $? "a whole-T4 job runs"
submit '{"id": "t4b", "devices": 1, "models": ["T4"]}'
wait_state c1 t4b pending 20; ok $? "a second one is pending"
out=$(plan_ --add); st=$?
diag "$out"
is "$st" 1 "--add without a catalogue: some job needs more nodes (exit 1)"
like "$out" '^  t4b  does not place now; it fits an empty node like a3-0000$' \
     "the T4 job would fit another node like a3-0000"
ex=simulations/examples
for d in c1 a2 a3; do kill -STOP "$(daemon_pid $d)"; done
before=$(rev)
out=$(plan_ --add --prices $ex/prices.txt --catalog $ex/inventory.jsonl 2>&1); st=$?
after=$(rev)
for d in c1 a2 a3; do kill -CONT "$(daemon_pid $d)"; done
diag "$out"
is "$st" 0 "--add with a catalogue and prices exits 0"
is "$after" "$before" "plan --add wrote nothing to etcd"
like "$out" '^add 1 T4 node in cloud gcp, region europe-west4 \(type n1-standard-32-t4x4, 4 GPUs, 2\.92 per hour\)$' \
     "add 1 T4 node in cloud gcp, the cheapest T4 node of the catalogue"
like "$out" 'total: 1 nodes, 4 GPUs, 2\.92 per hour \(optimal\)' "the total"
out=$(plan_ --add --prices $ex/prices.txt 2>&1); st=$?
is "$st" 64 "--prices without --catalog is a usage error"
out=$(plan_ --add --prices /nonexistent --catalog $ex/inventory.jsonl 2>&1); st=$?
is "$st" 65 "a missing price file is refused (65)"
like "$out" 'nonexistent' "naming it"

for d in a2 a3 c1; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
