#!/usr/bin/env bash
# gpupool's own policy against FGD (kept as published): on the openb default
# trace at 130% (seeds 42-51) and on each synthetic mix of
# simulations/scenarios/mixes.sh it leaves no more GPUs unallocated.
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

done_testing
