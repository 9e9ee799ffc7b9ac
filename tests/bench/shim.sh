#!/usr/bin/env bash
# tests/bench/shim.sh - what the shim adds, against the fake driver, measured
# with and without the shim in the same run (best of several rounds each),
# in the process's CPU time:
#
#   shim_launch_added_ns          per cuLaunchKernel, no compute cap
#   shim_launch_capped_added_ns   per cuLaunchKernel, a 90% cap that does not bind
#                                 (empty kernels)
#   shim_allocfree_added_ns       per 1 MiB cuMemAlloc + cuMemFree pair, one process
#   shim_allocfree_8proc_slowdown what sharing one slice costs the shim: 8
#                                 processes of one slice allocating at once,
#                                 how much each slows down against one process
#                                 alone (CPU time per pair, 8 at once over 1
#                                 alone), divided by how much the same 8
#                                 processes slow down without the shim (on a
#                                 device of their own) in the same run.
#                                 1.0 = sharing the slice's accounting costs
#                                 nothing beyond what the processes pay
#                                 anyway; 1.2 = the shim makes the contended
#                                 pair 20% slower than the uncontended one,
#                                 relative to the driver alone.
#
# Why CPU time: the benchmark runs on machines of few cores that others use
# too, where wall-clock time is largely time spent waiting for a core: the
# 8-process figure by wall-clock moved from 1.0 to 2.1 between runs of the
# same code, with or without the shim, and at a load average of 30 a
# single process's alloc+free pair "cost" 800 ns more with the shim.  The
# process's CPU time (what it ran) holds what the shim's code costs, and
# what contention costs it -- spinning on the region's lock, cache lines
# moving between cores, yields -- but not the wait for a core.  Why the
# ratio: the run without the shim takes out what contention costs the
# driver itself (its own shared state) and what 8 processes sharing few
# cores' caches cost any code.  Wall-clock figures are printed, not judged.
#
# Targets: <= 10 ns, <= 50 ns, <= 150 ns, <= 1.2, and the slice's limit never
# exceeded -- judged by the device itself (the fake driver's peak of what it
# held), not by the shim's own count.  Differences are printed as measured
# (a negative one means the shim's run was the faster, within noise); a run
# that fails or prints no figure stops the benchmark with status 1 and no
# bench line.
set -u
: "${GP_BUILD:?run through make bench-shim}"
BENCH=$GP_BUILD/tests/shim/shimbench
SLICECTL=$GP_BUILD/tests/shim/slicectl
SHIM=${GP_BENCH_SHIM:-$GP_BUILD/libgpupool-shim.so}   # another build of the shim, to compare two
T=$(mktemp -d "${TMPDIR:-/tmp}/gpupool-bench-shim.XXXXXX")
trap 'rm -rf "$T"' EXIT
drv=(LD_LIBRARY_PATH="$GP_BUILD/tests/fakecuda" FAKECUDA_STATE="$T/gpu")
N_LAUNCH=${N_LAUNCH:-2000000}
N_ALLOC=${N_ALLOC:-200000}

field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }
min() { printf '%s\n' "$@" | sort -g | head -1; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }
fail() { echo "bench: $*" >&2; exit 1; }
# run NAME [VAR=VALUE...] PROGRAM ARGS...: one run; appends its figures to
# the arrays NAME_cpu (best round's CPU ns per op), NAME_cpumean (mean
# round's) and NAME_wall (best round's wall-clock ns per op), or stops
run() {
    local name=$1; shift
    local out f v
    out=$(env "$@" 2>&1) || fail "a run failed: $* -- $out"
    for f in cpu_ns_per_op:cpu cpu_ns_mean:cpumean ns_per_op:wall; do
        v=$(printf '%s' "$out" | field "${f%%:*}")
        [[ "$v" =~ ^[0-9]+(\.[0-9]+)?$ ]] || fail "no ${f%%:*} from: $* -- $out"
        eval "${name}_${f#*:}+=(\"\$v\")"
    done
}

# Alternate the runs with and without the shim, so that both see the same
# machine; keep the best of each.  The figures judged are CPU time (see
# above: a process waiting for a core is not slower code); the wall-clock
# figures are printed beside them.
ref_l_cpu=(); ref_l_cpumean=(); ref_l_wall=(); shim_l_cpu=(); shim_l_cpumean=(); shim_l_wall=()
cap_l_cpu=(); cap_l_cpumean=(); cap_l_wall=()
ref_a_cpu=(); ref_a_cpumean=(); ref_a_wall=(); shim_a_cpu=(); shim_a_cpumean=(); shim_a_wall=()
for round in 1 2 3 4 5; do
    run ref_l "${drv[@]}" "$BENCH" launch "$N_LAUNCH"
    run shim_l "${drv[@]}" GP_SLICE_REGION="$T/s-launch" LD_PRELOAD="$SHIM" "$BENCH" launch "$N_LAUNCH"
    run cap_l "${drv[@]}" GP_SLICE_REGION="$T/s-cap" GP_SLICE_COMPUTE=90 LD_PRELOAD="$SHIM" \
        "$BENCH" launch "$N_LAUNCH"
    run ref_a "${drv[@]}" "$BENCH" allocfree "$N_ALLOC" 1
    run shim_a "${drv[@]}" GP_SLICE_REGION="$T/s-alloc" GP_SLICE_MEM_LIMIT=1G LD_PRELOAD="$SHIM" \
        "$BENCH" allocfree "$N_ALLOC" 1
done
ref_launch=$(min "${ref_l_cpu[@]}"); shim_launch=$(min "${shim_l_cpu[@]}"); cap_launch=$(min "${cap_l_cpu[@]}")
ref_alloc=$(min "${ref_a_cpu[@]}"); shim_alloc=$(min "${shim_a_cpu[@]}")
ref_cpu1=$(min "${ref_a_cpumean[@]}"); shim_cpu1=$(min "${shim_a_cpumean[@]}")

# 8 processes on one slice of 16 MiB, each allocating and freeing 1 MiB
# (which the device backs with a 2 MiB page), all starting at the same
# instant, on a device of their own (whose peak is the witness of the
# limit); the same 8 without the shim on another device, alternated with
# them, three times; the best (least disturbed) run of each.
cores=$(nproc)
run8() { # NAME ENV... : "CPU-ns wall-ns" per pair, each the mean over the 8 processes
    local name=$1; shift
    local start pids=() p i
    start=$(( $(env "${drv[@]}" "$GP_BUILD/tests/shim/shimtest" now) + 300000000 ))
    for i in 1 2 3 4 5 6 7 8; do
        env "${drv[@]}" "$@" "$BENCH" allocfree $((N_ALLOC / 4)) 1 "$start" >"$T/$name$i" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do
        wait "$p" || { echo "bench: an 8-process run failed" >&2; cat "$T/$name"* >&2; exit 1; }
    done
    [ "$(cat "$T/$name"[1-8] | field cpu_ns_mean | grep -cE '^[0-9.]+$')" = 8 ] &&
    [ "$(cat "$T/$name"[1-8] | field ns_mean | grep -cE '^[0-9.]+$')" = 8 ] ||
        { echo "bench: an 8-process run printed no figure" >&2; cat "$T/$name"* >&2; exit 1; }
    printf '%s %s' "$(cat "$T/$name"[1-8] | field cpu_ns_mean | awk '{ s += $1 } END { printf "%.1f", s / NR }')" \
                   "$(cat "$T/$name"[1-8] | field ns_mean | awk '{ s += $1 } END { printf "%.1f", s / NR }')"
}
ref8_cpu=(); ref8_wall=(); shim8_cpu=(); shim8_wall=()
for round in 1 2 3; do
    r=$(run8 ref) || exit 1; ref8_cpu+=("${r% *}"); ref8_wall+=("${r#* }")
    r=$(run8 shim FAKECUDA_STATE="$T/gpu8" GP_SLICE_REGION="$T/s-8" GP_SLICE_MEM_LIMIT=16 \
        LD_PRELOAD="$SHIM") || exit 1; shim8_cpu+=("${r% *}"); shim8_wall+=("${r#* }")
done
ref8=$(min "${ref8_cpu[@]}"); shim8=$(min "${shim8_cpu[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
shim_slow=$(ratio "$shim8" "$shim_cpu1"); ref_slow=$(ratio "$ref8" "$ref_cpu1")
slowdown=$(awk -v s="$shim8" -v s1="$shim_cpu1" -v r="$ref8" -v r1="$ref_cpu1" \
           'BEGIN { printf "%.2f", (s / s1) / (r / r1) }')
# the device's own peak, and the region's final count
peak=$(env LD_LIBRARY_PATH="$GP_BUILD/tests/fakecuda" FAKECUDA_STATE="$T/gpu8" \
       "$GP_BUILD/tests/shim/shimtest" devmem | field peak)
used=$("$SLICECTL" usage "$T/s-8" | field mem_used)
[[ "$peak" =~ ^[0-9]+$ ]] && [[ "$used" =~ ^[0-9]+$ ]] || fail "no device peak or region usage"
limit_ok=0
[ "$peak" -le $((16 * 1048576)) ] && [ "$used" = 0 ] && limit_ok=1

echo "# CPU time, fake driver without the shim: ${ref_launch} ns per launch, ${ref_alloc} ns per 1 MiB alloc+free"
echo "# CPU time with the shim: ${shim_launch} ns per launch, ${cap_launch} ns per capped launch," \
     "${shim_alloc} ns per alloc+free"
echo "# wall-clock, best rounds (not judged): without the shim $(min "${ref_l_wall[@]}") ns per launch," \
     "$(min "${ref_a_wall[@]}") ns per alloc+free; with it $(min "${shim_l_wall[@]}"), capped" \
     "$(min "${cap_l_wall[@]}"), $(min "${shim_a_wall[@]}")"
echo "# one process alone, mean round: ${ref_cpu1} ns per alloc+free without the shim, ${shim_cpu1} ns with it"
echo "# 8 processes at once on $cores cores (load average $(cut -d' ' -f1 /proc/loadavg)), CPU time per alloc+free each:" \
     "${ref8} ns without the shim (x${ref_slow} of one alone), ${shim8} ns with it (x${shim_slow})"
echo "# their wall-clock time per alloc+free each (waits for a core included; not judged):" \
     "without the shim $(printf '%s ' "${ref8_wall[@]}")ns, with it $(printf '%s ' "${shim8_wall[@]}")ns"
echo "# the device's peak with the shim $((peak / 1048576)) MiB, the slice's limit 16"
echo "bench: shim_launch_added_ns $(sub "$shim_launch" "$ref_launch")"
echo "bench: shim_launch_capped_added_ns $(sub "$cap_launch" "$ref_launch")"
echo "bench: shim_allocfree_added_ns $(sub "$shim_alloc" "$ref_alloc")"
echo "bench: shim_allocfree_8proc_slowdown $slowdown"
echo "bench: shim_allocfree_8proc_limit_held $limit_ok"
