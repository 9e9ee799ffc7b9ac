#!/usr/bin/env bash
# Gangs: all members or none, in one transaction; one zone when one zone
# can hold the gang; NVLink pairs for 2-GPU members; an incomplete gang
# waits; a gang that does not fit holds nothing, also under contention.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
pool_agent za r1 2 4xA100:81920 --zone z1 --simulate-nvlink pairs || bail_out "za did not start"
pool_agent zb r1 2 4xA100:81920 --zone z2 --simulate-nvlink pairs || bail_out "zb did not start"
member() { # gang size index gpus
    echo "{\"id\": \"$1-$3\", \"gang\": \"$1\", \"gang_size\": $2, \"devices\": $4}"
}
nodes_of() { # gang size
    local i; for i in $(seq 1 "$2"); do job_field c1 "$1-$i" node; done | sort | tr '\n' ' '
}
allocs_of() { etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep -c "/$1-[0-9]*$"; }

{ echo "["; member g1 2 1 4; echo ","; member g1 2 2 4; echo "]"; } | gpupool_ c1 submit - >/dev/null
wait_state c1 g1-1 running 15 && wait_state c1 g1-2 running 15
ok $? "a gang of 2 x 4 GPUs runs"
n=$(nodes_of g1 2)
like "$n" '^(za-0000 za-0001|zb-0000 zb-0001) $' "both members in one zone ($n)"

{ echo "["; member g2 2 1 2; echo ","; member g2 2 2 2; echo "]"; } | gpupool_ c1 submit - >/dev/null
wait_state c1 g2-1 running 15 && wait_state c1 g2-2 running 15
ok $? "a gang of 2 x 2 GPUs runs"
pairs=$(for i in 1 2; do gpupool_ c1 -o json get "g2-$i" | tr -d ' \n' | grep -o '"index":[0-9]' | cut -d: -f2 | tr -d '\n'; echo; done | sort -u | tr '\n' ' ')
like "$pairs" '^((01|23) )+$' "each member has an NVLink pair ($pairs)"

member g3 3 1 1 | gpupool_ c1 submit - >/dev/null
member g3 3 2 1 | gpupool_ c1 submit - >/dev/null
reason_is() { job_field c1 "$1" reason | grep -q "$2"; }
wait_for 10 reason_is g3-1 "2 of 3 members"
ok $? "a round saw the incomplete gang and says how many members are there"
is "$(job_state c1 g3-1)" pending "an incomplete gang waits"
is "$(allocs_of g3)" 0 "and holds nothing"
member g3 3 3 1 | gpupool_ c1 submit - >/dev/null
wait_state c1 g3-3 running 15; ok $? "with its last member it runs"
is "$(allocs_of g3)" 3 "all three members hold their GPU"

# 16 GPUs: g1 8, g2 4, g3 3 -> 1 free.  A gang of 2 x 1 GPU cannot fit whole.
{ echo "["; member g4 2 1 1; echo ","; member g4 2 2 1; echo "]"; } | gpupool_ c1 submit - >/dev/null
wait_for 10 reason_is g4-1 "gang does not fit"
ok $? "a round tried the gang that does not fit, and it says why"
like "$(job_field c1 g4-1 reason)" '^gang does not fit: member g4-[12] \(2 of 2\) does not fit: 0/4 nodes: 4 too few free whole GPUs \(want 1, most free 0\)$' \
     "...naming the member that does not fit, and why, node by node"
is "$(allocs_of g4)" 0 "a gang that does not fit holds nothing, though one member would"

# Contention: free g2's 4 GPUs, then gangs and single jobs race for them.
gpupool_ c1 cancel g2-1 g2-2 g4-1 g4-2 >/dev/null
body="["
for g in 5 6 7; do body+="$(member g$g 2 1 1),$(member g$g 2 2 1),"; done
for i in 1 2 3; do body+="{\"id\": \"s$i\", \"devices\": 1},"; done
body="${body%,}]"
echo "$body" | gpupool_ c1 submit - >/dev/null &
sub=$!
echo '[{"id": "s4", "devices": 1}, {"id": "s5", "devices": 1}]' | gpupool_ c1 submit - >/dev/null
wait "$sub"
# 5 GPUs are free (g2 and g4 gone): the pool fills them with 1-GPU
# allocations, whole gangs or single jobs; g1 and g3 hold 5 allocations.
n_allocs() { etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep -c .; }
filled() { [ "$(n_allocs)" -eq 10 ]; }
wait_for 30 filled; ok $? "the contended GPUs are all allocated ($(n_allocs) allocations, 10 expected)"
partial=0
for g in 5 6 7; do
    a=$(allocs_of g$g)
    diag "gang g$g holds $a of 2"
    [ "$a" = 0 ] || [ "$a" = 2 ] || partial=$((partial + 1))
done
is "$partial" 0 "under contention, never a partial gang in etcd"
pool_check >"$T_TMP/check.out"; is "$?" 0 "pool invariants hold"
diag "$(cat "$T_TMP/check.out")"
done_testing
