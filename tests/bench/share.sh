#!/usr/bin/env bash
# tests/bench/share.sh - compute shares (GP_SLICE_COMPUTE_MODE=share) on the
# fake driver's device clock: two share slices of one GPU, 30 and 70, with
# 2 ms kernels, each program reporting the GPU time its kernels got per
# 20 ms (shimtest sharelog).  Timeline from t0: both busy 0..5 s, the 70
# idle (the same process, launching nothing) from 2.5 s to 3.5 s.
#
#   share_busy_split_pts  largest deviation from 30/70 over 1.0..2.5 s,
#                         points (goal <= 5; the first second is start-up)
#   share_idle_lent_pct   the 30 slice's share while the 70 idles,
#                         2.8..3.5 s (goal >= 90)
#   share_reclaim_ms      from the 70's return at 3.5 s to the end of the
#                         first 100 ms window (20 ms steps) in which it has
#                         its share within 5 points (goal <= 200)
#
# The reference each figure is judged against is the slices' own shares in
# the same run.  Shares are read on the device clock, but the programs must
# be scheduled to keep the device fed: on a loaded machine a starved
# program shows as a lower share; the load average is printed with the
# figures.
set -u
BUILD=${GP_BUILD:-$(pwd)/build}
SHIM=$BUILD/libgpupool-shim.so
SHIMTEST=$BUILD/tests/shim/shimtest
DRV=$BUILD/tests/fakecuda
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT

t0=$(( $(LD_LIBRARY_PATH=$DRV "$SHIMTEST" now) + 700000000 ))
run() {   # NAME PCT OUT [IDLE_FROM IDLE_TO]
    exec env LD_LIBRARY_PATH="$DRV" FAKECUDA_STATE="$tmp/fakegpu" GP_SLICE_REGION="$tmp/$1" \
        GP_SLICE_COMPUTE="$2" GP_SLICE_COMPUTE_MODE=share LD_PRELOAD="$SHIM" \
        "$SHIMTEST" sharelog "$t0" 0 5000 5 2000 "${@:4}" >"$3" 2>&1
}
run s30 30 "$tmp/s30.out" & p30=$!; pids+=($p30)
run s70 70 "$tmp/s70.out" 2500 3500 & p70=$!; pids+=($p70)
wait $p30 || { echo "share: the 30 slice's program failed"; cat "$tmp/s30.out"; exit 1; }
wait $p70 || { echo "share: the 70 slice's program failed"; cat "$tmp/s70.out"; exit 1; }
pids=()

buckets() { sed -n 's/^buckets=//p' "$1" | tr ',' '\n'; }
share() {   # FILE FROM_MS TO_MS -> percent
    buckets "$1" | awk -v a=$(($2 / 20)) -v b=$(($3 / 20)) 'NR > a && NR <= b { s += $1 }
        END { printf "%d\n", s * 100 / ((b - a) * 20000) + 0.5 }'
}
n30=$(buckets "$tmp/s30.out" | wc -l); n70=$(buckets "$tmp/s70.out" | wc -l)
if [ "$n30" -ne 250 ] || [ "$n70" -ne 250 ]; then
    echo "share: measurement failed (buckets: $n30, $n70)"; exit 1
fi
a=$(share "$tmp/s30.out" 1000 2500); b=$(share "$tmp/s70.out" 1000 2500)
da=$((a > 30 ? a - 30 : 30 - a)); db=$((b > 70 ? b - 70 : 70 - b))
split=$((da > db ? da : db))
lent=$(share "$tmp/s30.out" 2800 3500)
reclaim=$(buckets "$tmp/s70.out" | awk 'NR > 175 { v[NR] = $1 }
    END { for (k = 176; k + 4 <= 250; k++) {
              s = 0; for (i = k; i < k + 5; i++) s += v[i]
              if (s * 100 / 100000 >= 65) { print (k + 4) * 20 - 3500; exit }
          }
          print -1 }')
load=$(cut -d' ' -f1 /proc/loadavg)
echo "share: both busy 30/70 -> $a/$b; the 70 idle -> the 30 at $lent%; load average $load, $(nproc) cores"
echo "bench: share_busy_split_pts $split (reference: the shares 30/70; goal <= 5)"
echo "bench: share_idle_lent_pct $lent (reference: the whole GPU, 100; goal >= 90)"
if [ "$reclaim" -lt 0 ]; then
    echo "share: the 70 slice never got its share back"; exit 1
fi
echo "bench: share_reclaim_ms $reclaim (reference: its share, 70 +/- 5; goal <= 200)"
