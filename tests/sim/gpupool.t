#!/usr/bin/env bash
# gpupool's own policy against FGD (kept as published): on the openb default
# trace at 130% (seeds 42-51) and on each synthetic mix of
# simulations/scenarios/mixes.sh it leaves no more GPUs unallocated.  In
# time mode gpupool's queue is the price of its stranding term: the trace's
# 8-GPU jobs asking more than 64 cores wait for a free 8-GPU node with the
# cores (the term sends CPU-heavy jobs to such nodes), and without those
# jobs nothing waits.
. "$(dirname "$0")/common.sh"

OPENB_PODS="$PODS" "$GP_ROOT/simulations/scenarios/mixes.sh" "$T_TMP/mix"
ok $? "the synthetic mixes are written"

cmp_policies() { # label pods-file
    local out f g
    out=$("$SIM" replay -n "$NODES" -p "$2" -P fgd,gpupool --inflate 1.3 --seeds 42-51 --json -q)
    f=$(field "$(printf '%s\n' "$out" | grep '"policy":"fgd"')" alloc_pct_130)
    g=$(field "$(printf '%s\n' "$out" | grep '"policy":"gpupool"')" alloc_pct_130)
    num_ge "$g" "$f"; ok $? "$1: gpupool $g% >= fgd $f% at 130%"
}
cmp_policies "openb default" "$PODS"
for m in share multi cpu2 cpuhalf no810; do
    cmp_policies "mix $m" "$T_TMP/mix/$m.csv"
done

# time mode, synthetic arrivals (2/s, 1 h lifetimes, 20,000 jobs, seeds 42-46)
tm_queue() { # pods-file policy -> mean queue peak
    field "$("$SIM" replay -n "$NODES" -p "$1" -P "$2" --mode time --count 20000 \
             --arrival-rate 2 --duration 3600 --seeds 42-46 --json -q)" queue_peak
}
g=$(tm_queue "$PODS" gpupool)
num_gt "$g" 5; ok $? "time mode: gpupool's queue forms (mean peak $g)"
awk -F, 'NR == 1 || !($4 == 8 && $2 > 64000)' "$PODS" > "$T_TMP/no_big8.csv"
[ "$(wc -l < "$T_TMP/no_big8.csv")" -lt "$(wc -l < "$PODS")" ]
ok $? "the trace without its 8-GPU jobs of more than 64 cores"
g=$(tm_queue "$T_TMP/no_big8.csv" gpupool)
is "$g" 0 "time mode without them: gpupool's queue stays empty"
done_testing
