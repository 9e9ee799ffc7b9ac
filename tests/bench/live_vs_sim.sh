#!/usr/bin/env bash
# The live pool places as well as the simulator: one job sequence through a
# real local pool and through gpupool-sim, same inventory, same policy.
#
#   inventory  every 6th node of the openb node list (203 nodes, 1,016 GPUs),
#              one simulating agent per kind of node (--simulate N with the
#              kind's CPU, memory and devices)
#   jobs       the openb default trace from its first pod, in trace order,
#              until the next pod would take the GPU request past 130% of
#              the inventory (whole GPUs, shares, CPU-only pods; no
#              priorities), then one CPU-only sentinel
#   live       etcd (one member), one coordinator with its default policy
#              (gpupool), learning the typical shapes from the jobs as they
#              come; the jobs are submitted in order, in arrays of 100, and
#              stay (no departures); measured when the allocation has not
#              moved for 10 s: gpupool_gpu_milli_allocated / _capacity
#   sim        gpupool-sim replay --mode time of the same job specs (arrival
#              = position, no departures) on the node records the agents
#              registered (dumped from etcd), policy gpupool, seed 1 (the
#              coordinator's engine seed): the utilization after the last
#              job; its typical shapes are the whole sequence's
#
#   bench: live_alloc_pct X
#   bench: sim_alloc_pct Y
#   bench: live_minus_sim_pts Z        target |Z| <= 0.5
#   bench: live_seconds S              submission of the first job to settled
#
# BENCH_EVERY (6) picks the share of nodes; BENCH_SETTLE_S (10) the quiet time;
# BENCH_POLICY runs both with another policy (default: the coordinator's own).
. "$(dirname "$0")/../lib.sh"

EVERY=${BENCH_EVERY:-6}
SETTLE=${BENCH_SETTLE_S:-10}
POLICY=${BENCH_POLICY:-gpupool}
DATA=$GP_ROOT/simulations/data/openb
[ -f "$DATA/openb_node_list_gpu_node.csv" ] || bail_out "no openb node list in $DATA"

# --- the inventory and the job sequence
awk -F, -v every="$EVERY" 'NR > 1 && (NR - 2) % every == 0' "$DATA/openb_node_list_gpu_node.csv" \
    >"$T_TMP/nodes.csv"
# kinds: "index count cpu_milli mem_mib gpus model" in order of first appearance
awk -F, '{ k = $2 "," $3 "," $4 "," $5; if (!(k in ix)) { ix[k] = n++; key[ix[k]] = k } c[k]++ }
         END { for (i = 0; i < n; i++) { split(key[i], f, ","); print i, c[key[i]], f[1], f[2], f[3], f[4] } }' \
    "$T_TMP/nodes.csv" >"$T_TMP/kinds"
cap=$(awk -F, '{ s += $4 } END { print s * 1000 }' "$T_TMP/nodes.csv")
nnodes=$(wc -l <"$T_TMP/nodes.csv")
awk -F, -v cap="$cap" 'NR > 1 {
        r = $4 * $5; if (tot + r > 1.3 * cap) exit; tot += r; n++
        s = sprintf("{\"id\": \"j%05d\", \"cpu_milli\": %d, \"host_mem_mib\": %d", n, $2, $3)
        if ($4 > 0 && $5 == 1000) s = s sprintf(", \"devices\": %d, \"whole\": true", $4)
        else if ($4 > 0) s = s sprintf(", \"devices\": %d, \"compute_percent\": %.1f, \"mem_percent\": %.1f", $4, $5 / 10, $5 / 10)
        print s "}" }
     END { printf "{\"id\": \"j%05d\", \"cpu_milli\": 1, \"host_mem_mib\": 1}\n", n + 1 }' \
    "$DATA/openb_pod_list_default.csv" >"$T_TMP/jobs.jsonl"
njobs=$(wc -l <"$T_TMP/jobs.jsonl")
echo "# $nnodes nodes, $((cap / 1000)) GPUs in $(wc -l <"$T_TMP/kinds") kinds; $njobs jobs (the last a CPU-only sentinel)"

# --- the live pool
etcd_start 1 || bail_out "etcd did not start"
policy_arg=()
[ -n "${BENCH_POLICY:-}" ] && policy_arg=(--policy "$POLICY")
pool_coordinator c1 r1 --log-level warn "${policy_arg[@]}" || bail_out "coordinator did not start"
gpu_mem() {
    case $1 in
    G1|G2|V100M32) echo 32768 ;; T4) echo 15360 ;; A10) echo 24576 ;; *) echo 16384 ;;
    esac
}
while read -r ix count cpu mem gpus model; do
    pool_agent "n$ix" r1 "$count" "${gpus}x$model:$(gpu_mem "$model")" --cpu-milli "$cpu" \
        --memory "$mem" --simulate-nvlink none --log-level warn || bail_out "agent n$ix did not start"
done <"$T_TMP/kinds"
API=${POOL_API[c1]}
metric() { curl -s -m 5 "$API/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
# region_sum FAMILY: the family's series of region r1 summed over their models.
region_sum() {
    curl -s -m 5 "$API/metrics" |
        awk -v p="$1{region=\"r1\"," 'index($1, p) == 1 { s += $2; n++ } END { if (n) printf "%d\n", s }'
}
total_is() { [ "$(region_sum gpupool_gpu_milli_capacity)" = "$cap" ]; }
wait_for 120 total_is || bail_out "the coordinator does not see $cap GPU milli (got $(region_sum gpupool_gpu_milli_capacity))"
ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" get /gpupool/nodes/r1/ --prefix --print-value-only |
    grep '^{' >"$T_TMP/nodes.jsonl"
[ "$(wc -l <"$T_TMP/nodes.jsonl")" = "$nnodes" ] || bail_out "$(wc -l <"$T_TMP/nodes.jsonl") node records in etcd, $nnodes expected"

t0=$(date +%s%N)
acked=0
for ((i = 1; i <= njobs; i += 100)); do
    body="[$(sed -n "${i},$((i + 99))p" "$T_TMP/jobs.jsonl" | paste -sd, -)]"
    n=$(curl -s -m 60 -H "Authorization: Bearer $GPUPOOL_TOKEN" --data-binary "$body" "$API/v1/jobs" |
        grep -o '"status":20[01]' | wc -l)
    acked=$((acked + n))
done
[ "$acked" = "$njobs" ] || bail_out "$acked of $njobs jobs acknowledged"
# settled: the allocation has not moved for SETTLE seconds
last="" same=0 t_last=$t0
for ((k = 0; k < 900 && same < SETTLE; k++)); do
    sleep 1
    now=$(region_sum gpupool_gpu_milli_allocated)
    if [ "$now" = "$last" ]; then
        same=$((same + 1))
    else
        same=0 last=$now t_last=$(date +%s%N)
    fi
done
[ "$same" -ge "$SETTLE" ] || bail_out "the allocation did not settle in 900 s"
alloc=$last
live=$(awk -v a="$alloc" -v c="$cap" 'BEGIN { if (a ~ /^[0-9.]+$/ && c > 0) printf "%.2f", a * 100 / c }')
secs=$(awk -v a="$t0" -v b="$t_last" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
placed=$(metric gpupool_coordinator_placements_total)

# --- the simulator, on the same records and jobs
awk '{ sub(/}$/, sprintf(", \"arrival\": %d}", NR)); print }' "$T_TMP/jobs.jsonl" >"$T_TMP/simjobs.jsonl"
"$GP_BUILD/gpupool-sim" replay --nodes "$T_TMP/nodes.jsonl" --pods "$T_TMP/simjobs.jsonl" \
    --format jsonl --policy "$POLICY" --seeds 1 --mode time --json -q >"$T_TMP/sim.json" ||
    bail_out "gpupool-sim failed: $(cat "$T_TMP/sim.json")"
sim=$(grep -o '"util_peak_pct":[0-9.]*' "$T_TMP/sim.json" | cut -d: -f2)
simplaced=$(grep -o '"placed":[0-9]*' "$T_TMP/sim.json" | cut -d: -f2)
sim=$(awk -v s="$sim" 'BEGIN { if (s ~ /^[0-9.]+$/) printf "%.2f", s }')

bench_figure live_alloc_pct "$live"
bench_figure sim_alloc_pct "$sim"
bench_figure live_minus_sim_pts "$(awk -v a="$live" -v b="$sim" 'BEGIN { printf "%.2f", a - b }')"
bench_figure live_seconds "$secs"
echo "# policy $POLICY; jobs placed: live ${placed:-?} of $njobs, simulator $simplaced; GPU milli allocated live $alloc of $cap"
echo "# target: |live_minus_sim_pts| <= 0.5; machine load $(cut -d' ' -f1-3 /proc/loadavg)"
