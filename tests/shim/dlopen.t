#!/usr/bin/env bash
# A program that opens libcuda itself by full path (a CUDA
# forward-compatibility directory) and looks its entry points up on that
# handle is held to the slice when that is the driver it uses; the entry
# points of a second, different copy, opened after the shim loaded one, are
# refused, never half hooked.
. "$(dirname "$0")/common.sh"

if [ "${GP_REAL_CUDA:-0}" = 1 ]; then
    skip 2 "copies the fake driver"
    done_testing
fi
mkdir -p "$T_TMP/compat" "$T_TMP/empty"
cp "$GP_BUILD/tests/fakecuda/libcuda.so.1" "$T_TMP/compat/libcuda.so.1"
DLOPENTEST=$GP_BUILD/tests/shim/dlopentest
# the only driver is the one at the full path (libcuda.so.1 is nowhere else)
env LD_LIBRARY_PATH="$T_TMP/empty" FAKECUDA_STATE="$T_TMP/gpu" "${SAN_ENV[@]}" \
    GP_SLICE_REGION="$T_TMP/slice" GP_SLICE_MEM_LIMIT=64 LD_PRELOAD="$PRELOAD" \
    "$DLOPENTEST" "$T_TMP/compat/libcuda.so.1" >"$T_TMP/only" 2>&1
tap_ok "$T_TMP/only" $? "a driver opened by full path is the one the slice is enforced on"
# another copy was loaded first
env "${DRIVER_ENV[@]}" "${SAN_ENV[@]}" GP_SLICE_REGION="$T_TMP/slice2" GP_SLICE_MEM_LIMIT=64 \
    LD_PRELOAD="$PRELOAD" "$DLOPENTEST" "$T_TMP/compat/libcuda.so.1" libcuda.so.1 >"$T_TMP/second" 2>&1
st=$?
grep -q 'refusing a second CUDA driver' "$T_TMP/second" || st=1
tap_ok "$T_TMP/second" $st "a second copy of the driver is refused, with an error in the log"
done_testing
