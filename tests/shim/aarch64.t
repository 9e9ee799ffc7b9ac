#!/usr/bin/env bash
# The shim builds and works on aarch64 (Grace Hopper nodes).  A
# cross-compile (Debian's gcc-aarch64-linux-gnu) of its sources, of the
# common modules it carries and of the fake driver, with the same warnings
# as errors -- no x86-only intrinsics, no x86-only glibc symbol version;
# then the aarch64 builds RUN under qemu-user (Debian's qemu-user, with the
# aarch64 C library of libc6-arm64-cross as its sysroot): the shim's unit
# tests, and the shim preloaded into aarch64 test programs against the
# aarch64 fake driver -- every allocation path, granularity, VMM, pools,
# graph memory, contexts, fork, the fake driver's own rules, and 8
# processes sharing one slice (judged by the fake device's peak).
# qemu-user runs the programs' threads on the host's cores and
# turns aarch64 atomics into the host's, so this shows the aarch64 code
# right, not that its memory ordering holds on a weakly ordered CPU -- that
# is for a real aarch64 node (tests/shim/real-gpu.sh there).
. "$(dirname "$0")/common.sh"

XCC=aarch64-linux-gnu-gcc
SYSROOT=/usr/aarch64-linux-gnu
QEMU=qemu-aarch64
if ! command -v "$XCC" >/dev/null 2>&1; then
    skip 16 "no $XCC (Debian's gcc-aarch64-linux-gnu; make deps installs it)"
    done_testing
fi
cd "$GP_ROOT" || bail_out "no repository"
flags=(-std=c11 -Wall -Wextra -Werror -O2 -g -D_GNU_SOURCE -fPIC -Wshadow -Wstrict-prototypes
       -Wmissing-prototypes -Wformat=2 -Icommon -Itests -Ishim -fvisibility=hidden)
X=$T_TMP/aarch64
mkdir -p "$X/obj"
xcompile() { # FILE...: compile each for aarch64 into $X/obj; the failures' messages into $T_TMP/err
    local f st=0
    for f in "$@"; do
        "$XCC" "${flags[@]}" -c "$f" -o "$X/obj/$(basename "$f" .c).o" 2>>"$T_TMP/err" || st=1
    done
    return $st
}
o() { local f; for f in "$@"; do printf '%s ' "$X/obj/$f.o"; done; }
: >"$T_TMP/err"
xcompile shim/*.c common/err.c common/util.c common/log.c
st=$?
[ $st = 0 ] || diag_file "$T_TMP/err" 30
ok $st "the shim's sources and the common modules it carries compile for aarch64"
: >"$T_TMP/err"
xcompile tests/fakecuda/fakecuda.c tests/fakecuda/fakenvml.c tests/fakecuda/fakestate.c
st=$?
[ $st = 0 ] || diag_file "$T_TMP/err" 30
ok $st "the fake driver compiles for aarch64"
: >"$T_TMP/err"
xcompile common/slice_region.c
st=$?
[ $st = 0 ] || diag_file "$T_TMP/err" 30
ok $st "the slice region (shared with the agent) compiles for aarch64"

# link what the tests run: the shim, the fake driver, the test programs
: >"$T_TMP/err"
shim_objs=$(for f in shim/*.c; do o "$(basename "$f" .c)"; done)
# shellcheck disable=SC2046,SC2086
{
    xcompile tests/tap.c tests/shim/shimtest.c tests/shim/slicectl.c \
             tests/shim/test_slice_region.c tests/shim/test_config.c &&
    "$XCC" -shared -Wl,-Bsymbolic -Wl,-soname,libgpupool-shim.so -o "$X/libgpupool-shim.so" \
        $shim_objs $(o slice_region err util log) -ldl -lpthread &&
    "$XCC" -shared -Wl,-Bsymbolic -Wl,-soname,libcuda.so.1 -o "$X/libcuda.so.1" \
        $(o fakecuda fakestate) -lpthread &&
    "$XCC" -shared -Wl,-Bsymbolic -Wl,-soname,libnvidia-ml.so.1 -o "$X/libnvidia-ml.so.1" \
        $(o fakenvml fakestate) -lpthread &&
    "$XCC" -o "$X/shimtest" $(o shimtest tap util err log) -L"$X" -l:libcuda.so.1 -ldl -lpthread -lm &&
    "$XCC" -o "$X/slicectl" $(o slicectl slice_region util err log) -lpthread &&
    "$XCC" -o "$X/test_slice_region" $(o test_slice_region tap slice_region util err log) -lpthread -lm &&
    "$XCC" -o "$X/test_config" $(o test_config tap shim_config util err log) -lpthread -lm
} 2>>"$T_TMP/err"
st=$?
[ $st = 0 ] || diag_file "$T_TMP/err" 30
ok $st "the shim, the fake driver and the test programs link for aarch64"
machines=$(for f in libgpupool-shim.so libcuda.so.1 shimtest test_slice_region; do
               od -An -tu2 -j18 -N2 "$X/$f" 2>/dev/null | tr -d ' '; done | sort -u)
is "$machines" 183 "  and are aarch64 ELF objects (e_machine 183)"

if [ $st != 0 ] || ! command -v "$QEMU" >/dev/null 2>&1 || [ ! -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ]; then
    why="no $QEMU (Debian's qemu-user; make deps installs it)"
    [ $st != 0 ] && why="the aarch64 build failed"
    [ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ] || why="no aarch64 C library in $SYSROOT (libc6-arm64-cross)"
    skip 11 "$why"
    done_testing
fi

# arun [VAR=VALUE...] -- PROGRAM ARGS...: run an aarch64 program under
# qemu-user, the variables set for it alone (not for qemu itself, which an
# aarch64 LD_PRELOAD would not fit).
arun() {
    local e=()
    while [ "$1" != -- ]; do e+=(-E "$1"); shift; done
    shift
    timeout 300 "$QEMU" -L "$SYSROOT" -E LD_LIBRARY_PATH="$X" -E FAKECUDA_STATE="$T_TMP/fakegpu" \
        "${e[@]}" "$@"
}
# an aarch64 program in a slice: the aarch64 shim preloaded
aslice() { local r=$1; shift; arun GP_SLICE_REGION="$r" LD_PRELOAD="$X/libgpupool-shim.so" "$@"; }
# tap_run NAME DESC [VAR=VALUE...] -- PROGRAM ARGS...: one check for a TAP program's whole run
tap_run() {
    local name=$1 desc=$2; shift 2
    "$@" >"$T_TMP/$name.out" 2>&1
    local st=$?
    grep -q '^not ok' "$T_TMP/$name.out" && st=1
    grep -q '^ok' "$T_TMP/$name.out" || st=1
    tap_ok "$T_TMP/$name.out" "$st" "$desc ($(grep -c '^ok' "$T_TMP/$name.out") checks)"
}

tap_run unit_region "aarch64 under qemu: the slice region's unit test" arun -- "$X/test_slice_region"
tap_run unit_config "aarch64 under qemu: the slice contract parser's unit test" arun -- "$X/test_config"
tap_run fakedriver "aarch64 under qemu: the fake driver's own memory rules" \
    arun FAKECUDA_STATE="$T_TMP/fakegpu-fd" FAKECUDA_DEVICES=2 FAKECUDA_CTX_MIB=10 -- "$X/shimtest" fakedriver
tap_run paths "aarch64 under qemu: every allocation path holds the limit" \
    aslice "$T_TMP/s-paths" GP_SLICE_MEM_LIMIT=64 GP_SLICE_CTX_OVERHEAD_MIB=2 FAKECUDA_CTX_MIB=2 \
    FAKECUDA_STATE="$T_TMP/fakegpu-paths" -- "$X/shimtest" paths
for mode in gran vmm pool graphmem contexts; do
    limit=64; [ "$mode" = contexts ] && limit=256    # as in tests/shim/<mode>.t
    tap_run "$mode" "aarch64 under qemu: shimtest $mode against the fake driver" \
        aslice "$T_TMP/s-$mode" GP_SLICE_MEM_LIMIT=$limit GP_SLICE_CTX_OVERHEAD_MIB=4 FAKECUDA_CTX_MIB=4 \
        FAKECUDA_STATE="$T_TMP/fakegpu-$mode" -- "$X/shimtest" "$mode"
done
tap_run fork "aarch64 under qemu: a forked child shares the slice" \
    aslice "$T_TMP/s-fork" GP_SLICE_MEM_LIMIT=256 GP_SLICE_CTX_OVERHEAD_MIB=3 \
    FAKECUDA_STATE="$T_TMP/fakegpu-fork" -- "$X/shimtest" fork

# 8 aarch64 processes of one slice allocating and freeing at once.  Under
# the limit: a refused allocation makes the shim reclaim the slots of dead
# processes, and qemu-user answers a process's reads of its own
# /proc/<pid>/stat with a start time of its making, not the kernel's that
# the others read -- so under qemu a live process would look like a pid
# reused and lose its slot (tests/shim/concurrency.t has them contend at
# the limit, natively).
pids=()
for i in 1 2 3 4 5 6 7 8; do
    aslice "$T_TMP/s-8" GP_SLICE_MEM_LIMIT=4G FAKECUDA_STATE="$T_TMP/fakegpu-8" -- \
        "$X/shimtest" stress 2 "$i" >"$T_TMP/p$i" 2>&1 &
    pids+=($!)
    track_pid $!
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
dev_peak=$(arun FAKECUDA_STATE="$T_TMP/fakegpu-8" -- "$X/shimtest" devmem | tr ' ' '\n' | sed -n 's/^peak=//p')
usage=$(arun -- "$X/slicectl" usage "$T_TMP/s-8" | tr ' ' '\n')
used=$(printf '%s\n' "$usage" | sed -n 's/^mem_used=//p')
slice_peak=$(printf '%s\n' "$usage" | sed -n 's/^mem_peak=//p')
nprocs=$(printf '%s\n' "$usage" | sed -n 's/^nprocs=//p')
granted=$(cat "$T_TMP"/p[1-8] | tr ' ' '\n' | sed -n 's/^ok=//p' | awk '{ s += $1 } END { print s + 0 }')
diag "8 aarch64 processes: $granted allocations; device peak $((${dev_peak:-0} / MiB)) MiB, the slice's count's peak $((${slice_peak:-0} / MiB)) MiB"
[ "$failed" = 0 ] && [ "$granted" -gt 100 ] && [ -n "$dev_peak" ] && [ -n "$slice_peak" ] &&
    [ "$dev_peak" -gt 0 ] && [ "$dev_peak" -le "$slice_peak" ] && [ "$used" = 0 ] && [ "$nprocs" = 0 ]
st=$?
[ $st = 0 ] || { diag "failed=$failed used=$used nprocs=$nprocs"; diag_file "$T_TMP/p1" 10; }
ok $st "aarch64 under qemu: 8 processes of one slice: the device never held more than the slice counted, which ends at zero"
done_testing
