#!/usr/bin/env bash
# gpupool-sim benchmark.
#
#   bench: sim_openb_60runs_s S   the documented replay (openb, inflation to
#                                 130%) for the six published policies x 10
#                                 seeds (42-51), wall time; then the table of
#                                 mean allocation ratios.  Target: < 10 s.
#   bench: sim_openb_gpupool_10runs_s S  the same replay for gpupool's own
#                                 policy, 10 seeds; then its row and FGD's.
#   bench: sim_place_10k_nodes_us U  mean time per pod, 100,000 pods on
#                                 10,000 nodes, fgd.
#   bench: sim_1m_pods_s S        1,000,000 pods drawn from the openb trace on
#                                 100,000 nodes drawn from its node list
#                                 (inflation, no departures; policy
#                                 $SIM_1M_POLICY, default bestfit).  Target: < 60 s.
#   bench: sim_time_1m_jobs_s S   time mode (arrivals and departures): 1,000,000
#                                 jobs drawn from the openb trace arriving as a
#                                 Poisson process over a year (0.0317/s), mean
#                                 lifetime 2e7 s, on 100,000 nodes, fgd, wall time
#                                 of the replay.  Target: < 10 s.
#   bench: sim_time_1m_jobs_rss_mib M  the same run's peak resident memory.
#                                 Target: < 500 MiB.
#   bench: plan_2000_jobs_20_types_s S  plan --prices: the cheapest inventory
#                                 (sharing and whole GPUs) for the first 2,000
#                                 pods of the openb trace from 20 node types in
#                                 three clouds (openb's 15 node kinds, 5 also in
#                                 a second cloud, prices per GPU), wall time.
#                                 Target: < 5 s.
. "$(dirname "$0")/../lib.sh"

SIM="$GP_BUILD/gpupool-sim"
OPENB="$GP_ROOT/simulations/data/openb"
[ -x "$SIM" ] || bail_out "$SIM is not built"
cd "$GP_ROOT" || exit 1

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

t0=$(now)
out=$("$SIM" replay --nodes simulations/data/openb/openb_node_list_gpu_node.csv \
      --pods simulations/data/openb/openb_pod_list_default.csv --format openb \
      --policy random,dotprod,gpuclustering,gpupacking,bestfit,fgd \
      --inflate 1.3 --seeds 42-51 --json -q) || bail_out "replay failed"
t1=$(now)
echo "bench: sim_openb_60runs_s $(secs "$t0" "$t1")"
echo "# openb default trace, 1213 nodes / 6212 GPUs, inflation to 130%, mean of seeds 42-51"
printf '%s\n' "$out" | awk '
    function f(k,   m) { if (match($0, "\"" k "\":[^,}]*")) { m = substr($0, RSTART, RLENGTH); sub(/^[^:]*:/, "", m); gsub(/"/, "", m); return m } return "" }
    BEGIN { printf "# %-14s %9s %10s %10s %15s %10s %11s\n", "policy", "alloc@90%", "alloc@100%", "alloc@130%", "unalloc.GPUs", "frag@100%", "failed.pods" }
    { printf "# %-14s %8.2f%% %9.2f%% %9.2f%% %15.1f %9.2f%% %11.1f\n", f("policy"), f("alloc_pct_90"), f("alloc_pct_100"), f("alloc_pct_130"), f("unallocated_gpus_130"), f("frag_pct_100"), f("failed_pods") }'

t0=$(now)
gp=$("$SIM" replay --nodes simulations/data/openb/openb_node_list_gpu_node.csv \
      --pods simulations/data/openb/openb_pod_list_default.csv --format openb \
      --policy gpupool --inflate 1.3 --seeds 42-51 --json -q) || bail_out "gpupool replay failed"
t1=$(now)
echo "bench: sim_openb_gpupool_10runs_s $(secs "$t0" "$t1")"
printf '%s\n%s\n' "$(printf '%s\n' "$out" | grep '"policy":"fgd"')" "$gp" | awk '
    function f(k,   m) { if (match($0, "\"" k "\":[^,}]*")) { m = substr($0, RSTART, RLENGTH); sub(/^[^:]*:/, "", m); gsub(/"/, "", m); return m } return "" }
    { printf "# %-14s alloc@130%% %.2f%%, %.1f GPUs unallocated\n", f("policy"), f("alloc_pct_130"), f("unallocated_gpus_130") }'

# one placement on a 10,000-node, 80,000-GPU cluster (8-GPU nodes drawn from
# openb's 8-GPU kinds would need a filter; all openb kinds are used, and the
# pods fill it past capacity so that failed searches are timed too)
t0=$(now)
ten=$("$SIM" replay --nodes "$OPENB/openb_node_list_gpu_node.csv" \
      --pods "$OPENB/openb_pod_list_default.csv" --policy fgd \
      --scale-nodes 10000 --count 100000 --seeds 42 --json -q) || bail_out "10k replay failed"
t1=$(now)
echo "bench: sim_place_10k_nodes_us $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1e6 / 100000 }')"
echo "# 100,000 pods on 10,000 nodes, fgd, mean wall time per pod (placement + commit)"

pol=${SIM_1M_POLICY:-bestfit}
t0=$(now)
big=$("$SIM" replay --nodes "$OPENB/openb_node_list_gpu_node.csv" \
      --pods "$OPENB/openb_pod_list_default.csv" --policy "$pol" \
      --scale-nodes 100000 --count 1000000 --seeds 42 --json -q) || bail_out "1M replay failed"
t1=$(now)
echo "bench: sim_1m_pods_s $(secs "$t0" "$t1")"
echo "# 1,000,000 pods on 100,000 nodes, policy $pol: $big"

# --- time mode on a year of arrivals
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "# load average before the time mode: $(load)"
TIMEFORMAT='%U %S'
{ time "$SIM" replay --nodes "$OPENB/openb_node_list_gpu_node.csv" \
     --pods "$OPENB/openb_pod_list_default.csv" --policy fgd --mode time \
     --scale-nodes 100000 --count 1000000 --arrival-rate 0.0317 --duration 2e7 \
     --seeds 42 --json -q > "$T_TMP/tm.json" ; } 2> "$T_TMP/tm.cpu" ||
    bail_out "time mode replay failed"
tm=$(cat "$T_TMP/tm.json")
w=$(printf '%s' "$tm" | grep -o '"wall_s":[0-9.]*' | cut -d: -f2)
r=$(printf '%s' "$tm" | grep -o '"max_rss_mib":[0-9.]*' | cut -d: -f2)
[ -n "$w" ] && [ -n "$r" ] || bail_out "time mode: no wall_s or max_rss_mib in $tm"
echo "bench: sim_time_1m_jobs_s $w"
echo "bench: sim_time_1m_jobs_rss_mib $r"
echo "# 1,000,000 jobs on 100,000 nodes, fgd, time mode; targets < 10 s and < 500 MiB"
echo "# CPU time of the replay: $(awk '{ printf "%.2f", $1 + $2 }' "$T_TMP/tm.cpu") s; load average after: $(load)"
printf '%s\n' "$tm" | grep -o '"pods".*"unplaced":[0-9.]*' | sed 's/^/# /'

# --- the cheapest inventory from 20 node types in three clouds
plan_dir="$T_TMP/plan"
mkdir -p "$plan_dir"
awk -F, 'NR > 1 && !seen[$2 "," $3 "," $4 "," $5]++ { print $2, $3, $4, $5 }' \
    "$OPENB/openb_node_list_gpu_node.csv" | awk -v dir="$plan_dir" '
    BEGIN { split("aws gcp azure", cl, " ")
            mem["G2"] = 32768; mem["G3"] = 16384; mem["V100M32"] = 32768; mem["V100M16"] = 16384
            mem["T4"] = 15360; mem["P100"] = 16384; mem["A10"] = 24576
            base["G2"] = 2.0; base["G3"] = 1.2; base["V100M32"] = 2.5; base["V100M16"] = 2.0
            base["T4"] = 0.6; base["P100"] = 1.4; base["A10"] = 1.1
            f["aws"] = 1.0; f["gcp"] = 0.93; f["azure"] = 1.05 }
    function node(i, c, cpu, m, n, model,   s, g) {
        s = sprintf("{\"name\":\"t%d-%s\",\"cloud\":\"%s\",\"region\":\"%s-1\",\"labels\":{\"type\":\"t%d\"},\"cpu_milli\":%d,\"mem_mib\":%d,\"devices\":[", i, c, c, c, i, cpu, m)
        for (g = 0; g < n; g++)
            s = s sprintf("%s{\"uuid\":\"t%d-%s-%d\",\"model\":\"%s\",\"mem_mib\":%d}", g ? "," : "", i, c, g, model, mem[model])
        print s "]}" > (dir "/catalogue.jsonl")
    }
    { k[NR] = $0 }
    END {
        for (i = 1; i <= NR; i++) { split(k[i], a, " "); node(i, cl[i % 3 + 1], a[1], a[2], a[3], a[4]) }
        for (i = 1; i <= 5; i++) { split(k[i], a, " "); node(i, cl[(i + 1) % 3 + 1], a[1], a[2], a[3], a[4]) }
        for (m in base) for (c in f)
            printf "%s gpu=%s %.3f\n", c, m, base[m] * f[c] > (dir "/prices.txt")
    }'
head -2001 "$OPENB/openb_pod_list_default.csv" > "$plan_dir/pods.csv"
[ "$(wc -l < "$plan_dir/catalogue.jsonl")" -eq 20 ] || bail_out "the catalogue has not 20 types"
echo "# load average before the plan: $(load)"
t0=$(now)
pj=$("$SIM" plan --nodes "$plan_dir/catalogue.jsonl" --pods "$plan_dir/pods.csv" \
     --prices "$plan_dir/prices.txt" --policy fgd --success 99 --json) || bail_out "plan failed"
t1=$(now)
echo "bench: plan_2000_jobs_20_types_s $(secs "$t0" "$t1")"
echo "# 2,000 openb pods, 20 node types in 3 clouds, fgd, 99% placed; target < 5 s (wall and CPU)"
printf '%s\n' "$pj" | python3 -c '
import json, sys
j = json.loads(sys.stdin.read())
for k in ("shared", "whole"):
    s = j[k]
    print("# %s: %d nodes, %d GPUs, %.2f per hour, %s, %d replays" % (k, s["nodes"], s["gpus"],
          s["cost_per_hour"], "optimal" if s["optimal"] else "best found", s["evaluations"]))
print("# CPU time of the plan: %.2f s" % j["cpu_s"])'
