#!/usr/bin/env bash
# Compute shares (GP_SLICE_COMPUTE_MODE=share): the percent is a guarantee,
# and time a slice leaves unused goes to the busy share slices of the GPU in
# proportion to their shares.  Measured on the fake driver's device clock
# (each program reports the GPU time its kernels got per 20 ms), so the
# figures do not depend on how fast this machine runs the test.
. "$(dirname "$0")/common.sh"

US=2000
# start_at: t0, the origin of the next scenario's timeline (the three run
# one after the other, so that their programs do not compete for the cores)
start_at() { t0=$(( $(env "${DRIVER_ENV[@]}" "$SHIMTEST" now) + 700000000 )); }

# share FILE FROM_MS TO_MS: percent of the GPU's time the program's kernels
# got over [FROM, TO) from t0
share() {
    sed -n 's/^buckets=//p' "$1" | tr ',' '\n' |
        awk -v a=$(($2 / 20)) -v b=$(($3 / 20)) 'NR > a && NR <= b { s += $1 }
            END { printf "%d\n", s * 100 / ((b - a) * 20000) + 0.5 }'
}
# near NAME GOT WANT: GOT within 5 points of WANT
near() { [ "$2" -ge $(($3 - 5)) ] && [ "$2" -le $(($3 + 5)) ]; ok $? "$1: $2% (want $3 +/- 5)"; }

# in_share DIR NAME PCT MODE FROM TO SECONDS OUT: a sharelog program in slice
# NAME (run in the background: the program replaces the subshell, so that
# its pid is the program's)
in_share() {
    local dir=$1 name=$2 pct=$3 mode=$4 from=$5 to=$6 secs=$7 out=$8
    exec env "${DRIVER_ENV[@]}" FAKECUDA_STATE="$dir/fakegpu" "${SAN_ENV[@]}" \
        GP_SLICE_REGION="$dir/$name" GP_SLICE_COMPUTE="$pct" GP_SLICE_COMPUTE_MODE="$mode" \
        LD_PRELOAD="$PRELOAD" "$SHIMTEST" sharelog "$t0" "$from" "$to" "$secs" $US >"$out" 2>&1
}

# Each program's first second on a GPU its neighbours already keep busy is
# its start-up (its kernels' costs are not yet known): judged after it.
# A: 30/70 both busy; the 70 leaves (its process ends) and comes back in a
# new process of the same slice.
A=$T_TMP/a; mkdir -p "$A"; start_at
in_share "$A" s30 30 share 0 5000 5 "$A/s30.out" & p1=$!; track_pid $p1
in_share "$A" s70 70 share 0 2500 5 "$A/s70a.out" & p2=$!; track_pid $p2
in_share "$A" s70 70 share 3500 5000 5 "$A/s70b.out" & p3=$!; track_pid $p3
for p in $p1 $p2 $p3; do wait "$p"; is "$?" 0 "A: sharelog $p ran to the end"; done
# B: a cap-30 slice beside a share slice that is busy only at first.
B=$T_TMP/b; mkdir -p "$B"; start_at
in_share "$B" c30 30 cap 0 3000 3 "$B/c30.out" & p4=$!; track_pid $p4
in_share "$B" s70 70 share 0 300 3 "$B/s70.out" & p5=$!; track_pid $p5
for p in $p4 $p5; do wait "$p"; is "$?" 0 "B: sharelog $p ran to the end"; done
# C: 20/30/50 joining and leaving; the 50's process is killed.
C=$T_TMP/c; mkdir -p "$C"; start_at
in_share "$C" s20 20 share 0 4500 4.5 "$C/s20.out" & p6=$!; track_pid $p6
in_share "$C" s30 30 share 1000 4500 4.5 "$C/s30.out" & p7=$!; track_pid $p7
in_share "$C" s50 50 share 2000 4500 4.5 "$C/s50.out" & p8=$!; track_pid $p8
# kill the 50 at 3.2 s or later (it is judged until 3.2 s and from 3.8 s)
until [ "$(env "${DRIVER_ENV[@]}" "$SHIMTEST" now)" -ge $((t0 + 3200000000)) ]; do sleep 0.05; done
kill -KILL $p8
killed_ms=$(( ($(env "${DRIVER_ENV[@]}" "$SHIMTEST" now) - t0) / 1000000 ))
diag "the 50 killed at $killed_ms ms"
wait $p8
for p in $p6 $p7; do wait "$p"; is "$?" 0 "C: sharelog $p ran to the end"; done

# The checks judge each slice's part of the GPU time the slices got
# together (the split), and lending by what the slices got above what caps
# would have given them: on a loaded machine a program that is not
# scheduled leaves the GPU idle, which no limiter can fill, so the absolute
# figures (>= 90%, reclaim time) are benchmarks (tests/bench/share.sh).
# split NAME A B WANT_A: A's part of A + B within 5 points of WANT_A
split() {
    local tot=$(($2 + $3)) part=0
    [ "$tot" -gt 0 ] && part=$(( ($2 * 100 + tot / 2) / tot ))
    near "$1 ($2% and $3% of the GPU's time)" "$part" "$4"
}
a=$(share "$A/s30.out" 1000 2400); b=$(share "$A/s70a.out" 1000 2400)
split "A: both busy, the 30 share's part" "$a" "$b" 30
got=$(share "$A/s30.out" 2800 3500)
[ "$got" -ge 60 ]; ok $? "A: the 70 idle, the 30 share is lent its time: $got% (a cap would hold 30)"
a=$(share "$A/s30.out" 4000 5000); b=$(share "$A/s70b.out" 4000 5000)
split "A: the 70 back, the 30 share's part" "$a" "$b" 30

got=$(share "$B/c30.out" 800 3000)
[ "$got" -gt 0 ] && [ "$got" -le 35 ]
ok $? "B: a cap-30 slice beside an idle share slice stays within its cap: $got%"

got=$(share "$C/s20.out" 300 1000)
[ "$got" -ge 60 ]; ok $? "C: alone, the 20 share is lent the GPU: $got% (a cap would hold 20)"
a=$(share "$C/s20.out" 1600 2000); b=$(share "$C/s30.out" 1600 2000)
split "C: 20 and 30 busy, the 20's part" "$a" "$b" 40
[ $((a + b)) -ge 70 ]; ok $? "C: and together they are lent the idle rest: $((a + b))% (caps: 50)"
a=$(share "$C/s20.out" 2600 3200); b=$(share "$C/s30.out" 2600 3200)
split "C: all three busy, the 20's part of the 20 and 30" "$a" "$b" 40
[ $((a + b)) -le 55 ]; ok $? "C: and together they leave the 50 its share: $((a + b))% (want <= 55)"
a=$(share "$C/s20.out" 3800 4500); b=$(share "$C/s30.out" 3800 4500)
split "C: the 50 killed, the 20's part" "$a" "$b" 40
[ $((a + b)) -ge 70 ]; ok $? "C: and the killed slice's time is lent to them: $((a + b))% (caps: 50)"
[ -n "${SHARE_KEEP:-}" ] && cp -r "$T_TMP" "$SHARE_KEEP"
done_testing
