#!/usr/bin/env bash
# Right-sizing benchmark (`make bench-rightsize`): the shipped example
# (simulations/examples/rightsize.jsonl: a week of 8,000+ runs of 44 job
# classes on 16 x 8 A100 80 GB, with what each run used; its assumptions are
# at its top) replayed in time mode with --rightsize auto, policy fgd.
#
#   bench: rightsize_util_before_pct P  GPU time used / GPU time allocated,
#                                       the runs sized as they asked
#   bench: rightsize_util_after_pct P   the same runs, right-sized
#   bench: rightsize_limit_hits_pct P   runs that would have hit their
#                                       slice's limit (memory refused, or
#                                       throttled at a compute cap), % of runs
#   bench: rightsize_gpus_before N, rightsize_gpus_after N  the most GPUs
#                                       allocated at once, each way
#   bench: rightsize_replay_s S         the replay's wall time
# Targets: after / before >= 2.5, limit hits <= 1%.
. "$(dirname "$0")/../lib.sh"

EX="$GP_ROOT/simulations/examples"
t0=$(date +%s.%N)
out=$("$GP_BUILD/gpupool-sim" replay -q --json -P fgd --mode time -n "$EX/rightsize_nodes.jsonl" \
      -p "$EX/rightsize.jsonl" --rightsize auto) || { echo "# replay failed"; exit 1; }
t1=$(date +%s.%N)
rs=$(printf '%s' "$out" | grep -o '"rightsize":{[^}]*}')
f() { printf '%s' "$rs" | grep -o "\"$1\":[^,}]*" | cut -d: -f2; }
echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_figure rightsize_util_before_pct "$(f util_before_pct)"
bench_figure rightsize_util_after_pct "$(f util_after_pct)"
bench_figure rightsize_limit_hits_pct "$(f limit_hits_pct)"
bench_figure rightsize_gpus_before "$(f gpus_before)"
bench_figure rightsize_gpus_after "$(f gpus_after)"
bench_figure rightsize_replay_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
echo "# after / before: $(awk -v a="$(f util_after_pct)" -v b="$(f util_before_pct)" 'BEGIN { printf "%.2f", a / b }') (goal >= 2.5); runs $(f runs), hits $(f limit_hits) (memory $(f mem_hits), compute $(f compute_hits))"
