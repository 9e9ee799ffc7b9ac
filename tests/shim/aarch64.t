#!/usr/bin/env bash
# The shim builds for aarch64 (Grace Hopper nodes): a cross-compile of its
# sources, of the common modules it carries, and of the fake driver, with
# the same warnings as errors -- no x86-only intrinsics, no x86-only glibc
# symbol version.  (Running the tests under qemu-user would need aarch64
# builds of every library the test programs link; it is not done here.)
. "$(dirname "$0")/common.sh"

XCC=aarch64-linux-gnu-gcc
if ! command -v "$XCC" >/dev/null 2>&1; then
    skip 3 "no $XCC (Debian's gcc-aarch64-linux-gnu; make deps installs it)"
    done_testing
fi
cd "$GP_ROOT" || bail_out "no repository"
flags=(-std=c11 -Wall -Wextra -Werror -O2 -g -D_GNU_SOURCE -fPIC -Wshadow -Wstrict-prototypes
       -Wmissing-prototypes -Wformat=2 -Icommon -Itests -Ishim -fvisibility=hidden)
xcompile() { # FILE...: compile each for aarch64; the failures' messages into $T_TMP/err
    local f st=0
    for f in "$@"; do
        "$XCC" "${flags[@]}" -c "$f" -o "$T_TMP/$(basename "$f" .c).o" 2>>"$T_TMP/err" || st=1
    done
    return $st
}
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
done_testing
