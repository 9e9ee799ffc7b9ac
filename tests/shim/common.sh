# tests/shim/common.sh - what the shim's shell tests share (sourced, not a test).
#
# Programs run "in a slice": preloaded with the shim, with GP_SLICE_* set,
# against the fake driver (tests/fakecuda) -- or, with GP_REAL_CUDA=1,
# against the machine's own driver and GPU.  Under GP_SAN=1 the ASan runtime
# is preloaded first, as a sanitized shim needs.

. "$(dirname "$0")/../lib.sh"

SHIM=$GP_BUILD/libgpupool-shim.so
SHIMTEST=$GP_BUILD/tests/shim/shimtest
SLICECTL=$GP_BUILD/tests/shim/slicectl
PRELOAD=$SHIM
SAN_ENV=()
if [ "${GP_SAN:-0}" = 1 ]; then
    PRELOAD="$(gcc -print-file-name=libasan.so) $SHIM"
    SAN_ENV=(ASAN_OPTIONS=detect_leaks=0)
fi
DRIVER_ENV=(LD_LIBRARY_PATH="$GP_BUILD/tests/fakecuda" FAKECUDA_STATE="$T_TMP/fakegpu")
[ "${GP_REAL_CUDA:-0}" = 1 ] && DRIVER_ENV=()

# in_slice REGION [VAR=VALUE...] -- PROGRAM ARGS...
in_slice() {
    local region=$1; shift
    local vars=()
    while [ "$1" != -- ]; do vars+=("$1"); shift; done
    shift
    env "${DRIVER_ENV[@]}" "${SAN_ENV[@]}" GP_SLICE_REGION="$region" "${vars[@]}" \
        LD_PRELOAD="$PRELOAD" "$@"
}

# usage_of REGION FIELD: one field of the region's usage (slicectl usage).
usage_of() { "$SLICECTL" usage "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# tap_ok OUTPUT_FILE STATUS DESC: one check for a TAP program's whole run;
# its diagnostics always shown, its output shown when it failed.
tap_ok() {
    grep '^# ' "$1" | grep -v 'Looks like' | sed 's/^# /  /' | while read -r l; do diag "$l"; done
    if [ "$2" != 0 ]; then diag_file "$1" 60; fi
    ok "$2" "$3"
}

MiB=1048576
