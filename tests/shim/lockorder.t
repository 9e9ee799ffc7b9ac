#!/usr/bin/env bash
# The shim never holds its own lock while it waits for the dynamic loader's:
# a driver call from a library constructor (the loader's lock held) while
# another thread's first driver call makes the shim load the driver returns
# -- a shim that loaded under its own lock would deadlock, which the bound
# on the run reports as a failure (status 124).
. "$(dirname "$0")/common.sh"

timeout 60 env "${DRIVER_ENV[@]}" "${SAN_ENV[@]}" GP_SLICE_REGION="$T_TMP/slice" GP_SLICE_MEM_LIMIT=64 \
    LD_PRELOAD="$PRELOAD" "$GP_BUILD/tests/shim/lockorder" "$GP_BUILD/tests/shim/libctorlib.so" \
    >"$T_TMP/out" 2>&1
tap_ok "$T_TMP/out" $? "a driver call made with the loader's lock held while the shim loads returns"
done_testing
