#!/usr/bin/env bash
# deploy/local-pool.sh when a daemon cannot start: `up` says which one and
# why, stops everything it had started (etcd), keeps the logs, and exits 1;
# `down` then removes the leftovers.
. "$(dirname "$0")/../lib.sh"

POOL=$GP_ROOT/deploy/local-pool.sh
[ -x "$GP_BUILD/gpupool" ] || { skip 7 "gpupool not built"; done_testing; }
export GPUPOOL_POOL_DIR=$T_TMP/pool
trap 'rc=$?; [ -f "$GPUPOOL_POOL_DIR/pids" ] && bash "$POOL" down >/dev/null 2>&1; (exit $rc); t_cleanup' EXIT

# A build folder whose coordinator refuses its configuration.
fake=$T_TMP/build
mkdir -p "$fake"
ln -s "$GP_BUILD/gpupool" "$fake/gpupool"
printf '#!/bin/sh\necho "gpupool-coordinator: region: required" >&2\nexit 78\n' >"$fake/gpupool-coordinator"
printf '#!/bin/sh\nexit 1\n' >"$fake/gpupool-agent"
chmod +x "$fake/gpupool-coordinator" "$fake/gpupool-agent"

GP_BUILD=$fake bash "$POOL" up >"$T_TMP/up.out" 2>"$T_TMP/up.err"
is "$?" 1 "up exits 1 when a coordinator cannot start"
err=$(cat "$T_TMP/up.err")
like "$err" 'volcengine-cn-beijing-c0 exited before it was ready \(status 78\)' "...naming it and its status"
like "$err" 'region: required' "...with the end of its log"
is "$(pgrep -f -- "$GPUPOOL_POOL_DIR/" | tr '\n' ' ')" "" "...and nothing it started still runs"
[ -s "$GPUPOOL_POOL_DIR/logs/volcengine-cn-beijing-c0.log" ]; ok $? "the logs are kept"
bash "$POOL" down >/dev/null 2>&1
is "$?" 0 "down after a failed up exits 0"
[ ! -e "$GPUPOOL_POOL_DIR" ]; ok $? "...and removes the leftovers"
done_testing
