#!/usr/bin/env bash
# gpupool-sim on the openb default trace: the documented command,
# determinism, capacity accounting, and the policies' order at 130%
# (FGD > BestFit > Random, as published).
. "$(dirname "$0")/common.sh"

# --- the documented command, shortened to 2 seeds
out=$("$SIM" replay --nodes "$NODES" --pods "$PODS" --format openb --policy fgd \
      --inflate 1.3 --seeds 42-43 --json -q)
is "$?" 0 "the replay command exits 0"
is "$(printf '%s\n' "$out" | wc -l)" 1 "one JSON object"
for k in policy seeds alloc_pct_90 alloc_pct_100 alloc_pct_130 unallocated_gpus_130 \
         failed_pods frag_pct_100; do
    like "$out" "\"$k\":" "the object has $k"
done
like "$out" '"seeds":\[42,43\]' "the seeds are listed"

# --- determinism: same seed, same answer, whatever the thread count
a=$("$SIM" replay -n "$NODES" -p "$PODS" -P bestfit,fgd -s 44 --json -q -j 1 | sed 's/"wall_s":[^}]*//')
b=$("$SIM" replay -n "$NODES" -p "$PODS" -P bestfit,fgd -s 44 --json -q -j 2 | sed 's/"wall_s":[^}]*//')
is "$a" "$b" "deterministic for a seed, with 1 or 2 threads"
is "$(printf '%s\n' "$a" | wc -l)" 2 "a policy list gives one object per policy"

# --- accounting and the published ordering at 130% (2 seeds)
all=$("$SIM" replay -n "$NODES" -p "$PODS" -P random,dotprod,gpuclustering,gpupacking,bestfit,fgd,binpack,spread,topology \
      -s 42-43 --json -q)
is "$?" 0 "every policy runs and passes the accounting check (exit 0)"
bad=0
while read -r line; do
    for k in alloc_pct_90 alloc_pct_100 alloc_pct_130; do
        v=$(field "$line" $k)
        num_ge 100 "$v" || bad=1
        num_ge "$v" 0 || bad=1
    done
    placed=$(field "$line" placed); failed=$(field "$line" failed_pods); pods=$(field "$line" pods)
    awk -v p="$placed" -v f="$failed" -v n="$pods" 'BEGIN { exit !(p + f == n) }' || bad=1
done <<< "$all"
is "$bad" 0 "allocation ratios within 0..100% and placed + failed = pods"
get() { printf '%s\n' "$all" | grep "\"policy\":\"$1\"" | head -1; }
fgd=$(field "$(get fgd)" alloc_pct_130)
bf=$(field "$(get bestfit)" alloc_pct_130)
rnd=$(field "$(get random)" alloc_pct_130)
num_gt "$fgd" "$bf"; ok $? "FGD beats BestFit at 130% ($fgd > $bf)"
num_gt "$bf" "$rnd"; ok $? "BestFit beats Random at 130% ($bf > $rnd)"
num_gt "$(field "$(get bestfit)" unallocated_gpus_130)" "$(field "$(get fgd)" unallocated_gpus_130)"
ok $? "FGD leaves fewer GPUs unallocated"

# --- alloc_pct_130 is the allocation when the arrived request reaches 130%,
# not the end state: a workload that runs far past 130% (--count draws)
one=$("$SIM" replay -n "$NODES" -p "$PODS" -P bestfit --count 12000 -s 42 --json -q \
      --csv "$T_TMP/cross.csv")
fin=$(field "$one" arrived_pct_final)
num_gt "$fin" 140; ok $? "the drawn workload runs past 130% ($fin%)"
at130=$(grep '^bestfit,130,' "$T_TMP/cross.csv" | cut -d, -f3)
is "$(awk -v a="$(field "$one" alloc_pct_130)" -v b="$at130" 'BEGIN { d = a - b; print (d < 0.001 && d > -0.001) ? "same" : a " vs " b }')" \
   same "alloc_pct_130 is the series' value at arrived 130%"
num_gt "$(field "$one" alloc_pct_final)" "$(field "$one" alloc_pct_130)"
ok $? "and differs from the end state, which kept filling"

# --- a trace above 130% on its own is trimmed (random pods leave) to 130%
{ cat "$PODS"; tail -n +2 "$PODS"; } > "$T_TMP/double.csv"
two=$("$SIM" replay -n "$NODES" -p "$T_TMP/double.csv" -P bestfit -s 42 --json -q)
arr=$(field "$two" arrived_pct_final)
num_ge 130 "$arr" && num_ge "$arr" 129.9; ok $? "a trace of 196% is trimmed to 130% ($arr%)"

done_testing
