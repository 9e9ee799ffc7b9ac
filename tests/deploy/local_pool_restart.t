#!/usr/bin/env bash
# deploy/local-pool.sh: a pool that `GPUPOOL_KEEP=1 down` kept comes back
# with `up`, with its data: the same API, the jobs it had, places new ones;
# a kept pool whose port another program took is refused with a message.
. "$(dirname "$0")/../lib.sh"

POOL=$GP_ROOT/deploy/local-pool.sh
CLI=$GP_BUILD/gpupool
export GPUPOOL_POOL_DIR=$T_TMP/pool
unset GPUPOOL_API GPUPOOL_TOKEN GPUPOOL_TOKEN_FILE
trap 'rc=$?; [ -f "$GPUPOOL_POOL_DIR/pids" ] && bash "$POOL" down >/dev/null 2>&1; (exit $rc); t_cleanup' EXIT

bash "$POOL" up >"$T_TMP/up.out" 2>&1 || { diag_file "$T_TMP/up.out" 40; bail_out "the pool did not come up"; }
# shellcheck disable=SC1091
(PATH=/usr/bin:/bin; . "$GPUPOOL_POOL_DIR/env"; command -v gpupool) >"$T_TMP/which"
is "$(cat "$T_TMP/which")" "$GP_BUILD/gpupool" "sourcing the pool's env puts the gpupool CLI on PATH"
. "$GPUPOOL_POOL_DIR/env"
api=$GPUPOOL_API
echo '{"id": "before", "region": "volcengine-cn-beijing", "devices": 1, "mem_mib": 1024}' |
    "$CLI" submit - >/dev/null
running() { [ "$("$CLI" -o json get "$1" 2>/dev/null | grep -o '"state": *"[a-z]*"' | head -1)" = '"state": "running"' ]; }
wait_for 20 running before; ok $? "a job runs in the first life of the pool"
GPUPOOL_KEEP=1 bash "$POOL" down >"$T_TMP/down.out" 2>&1
is "$?" 0 "GPUPOOL_KEEP=1 down exits 0"
[ -d "$GPUPOOL_POOL_DIR/etcd/etcd0/member" ]; ok $? "and keeps etcd's data"

bash "$POOL" up >"$T_TMP/up2.out" 2>&1
st=$?
is "$st" 0 "up on the kept pool exits 0"
[ "$st" = 0 ] || diag_file "$T_TMP/up2.out" 40
like "$(cat "$T_TMP/up2.out")" "restarting the pool kept in" "saying it restarts the kept pool"
# shellcheck disable=SC1091
. "$GPUPOOL_POOL_DIR/env"
is "$GPUPOOL_API" "$api" "on the same API address"
like "$("$CLI" -o json get before 2>/dev/null | tr -d ' \n')" '"id":"before"' "the job of its first life is still known"
echo '{"id": "after", "region": "volcengine-cn-beijing", "devices": 1, "mem_mib": 1024}' |
    "$CLI" submit - >/dev/null
wait_for 20 running after; ok $? "and it places new jobs"
GPUPOOL_KEEP=1 bash "$POOL" down >/dev/null 2>&1; is "$?" 0 "kept again"

# Another program takes one of the kept pool's ports.
port=$(head -1 "$GPUPOOL_POOL_DIR/ports")
mkdir -p "${TMPDIR:-/tmp}/gpupool-ports/$port"
out=$(bash "$POOL" up 2>&1); st=$?
rmdir "${TMPDIR:-/tmp}/gpupool-ports/$port"
isnt "$st" 0 "up refuses a kept pool whose port is taken"
like "$out" "port $port of the kept pool .* is taken" "and names the port"
[ ! -f "$GPUPOOL_POOL_DIR/pids" ]; ok $? "starting nothing"
bash "$POOL" down >/dev/null 2>&1; is "$?" 0 "down removes the kept pool"
[ ! -e "$GPUPOOL_POOL_DIR" ]; ok $? "its directory is gone"
done_testing
