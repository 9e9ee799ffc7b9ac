#!/usr/bin/env bash
# deploy/local-pool.sh: `up` brings a three-region pool (3 etcd members, 2
# coordinators and one simulated agent per region) into a directory of its
# own; every region elects a leader; a fractional job is placed; `status`
# reports it; `down` stops every process it started, each exiting cleanly,
# and removes the directory.
. "$(dirname "$0")/../lib.sh"

POOL=$GP_ROOT/deploy/local-pool.sh
CLI=$GP_BUILD/gpupool
for p in gpupool gpupool-coordinator gpupool-agent; do
    [ -x "$GP_BUILD/$p" ] || { skip 20 "$p not built"; done_testing; }
done
export GPUPOOL_POOL_DIR=$T_TMP/pool
unset GPUPOOL_API GPUPOOL_TOKEN GPUPOOL_TOKEN_FILE

# Whatever happens, the pool goes down before lib.sh's cleanup.
trap 'rc=$?; [ -f "$GPUPOOL_POOL_DIR/pids" ] && bash "$POOL" down >/dev/null 2>&1; (exit $rc); t_cleanup' EXIT

bash "$POOL" up >"$T_TMP/up.out" 2>&1
up_rc=$?
is "$up_rc" 0 "local-pool.sh up exits 0"
[ "$up_rc" = 0 ] || { diag_file "$T_TMP/up.out" 40; bail_out "the pool did not come up"; }
like "$(cat "$T_TMP/up.out")" 'up: API https://127\.0\.0\.1:[0-9]+' "up prints the API URL (HTTPS)"
is "$(wc -l <"$GPUPOOL_POOL_DIR/pids")" 12 "12 daemons started: 3 etcd, 6 coordinators, 3 agents"
pids=$(awk '{print $2}' "$GPUPOOL_POOL_DIR/pids")
[ "$(stat -c %a "$GPUPOOL_POOL_DIR/keys/api-tokens")" = 600 ]; ok $? "the API token file is private"
# shellcheck disable=SC1091
. "$GPUPOOL_POOL_DIR/env"
like "$GPUPOOL_API" '^https://127\.0\.0\.1:[0-9]+(,https://127\.0\.0\.1:[0-9]+){5}$' \
    "the env lists the 6 coordinators' APIs"

# Every region has its leader (a standby may still be registering: poll).
leaders_ok() {
    "$CLI" -o json regions >"$T_TMP/regions.json" || return 1
    local r
    for r in volcengine-cn-beijing tencent-ap-guangzhou alibaba-cn-hangzhou; do
        grep -q "\"name\": \"$r\"" "$T_TMP/regions.json" || return 1
    done
    [ "$(grep -cE '"leader": "[^"]+"' "$T_TMP/regions.json")" = 3 ]
}
wait_for 20 leaders_ok; ok $? "gpupool regions: 3 regions, each with a leader"
[ -f "$T_TMP/regions.json" ] && is "$(grep -c '"name": ' "$T_TMP/regions.json")" 3 "...and no other region"

cat >"$T_TMP/job.json" <<'JSON'
{"id": "frac-1", "region": "tencent-ap-guangzhou", "devices": 1, "mem_mib": 4096,
 "compute_percent": 25, "models": ["T4"]}
JSON
out=$("$CLI" submit "$T_TMP/job.json" 2>&1)
is "$out" "frac-1 pending" "a fractional job is accepted"
placed() { "$CLI" ls --state running -q | grep -qx frac-1; }
wait_for 20 placed; ok $? "...and runs"
out=$("$CLI" get frac-1)
like "$out" 'Node: +tencent-0000' "...on the T4 node of its region"
like "$out" 'gpu[0-9]+ +GPU-[^ ]+ +4G memory, 25% compute' "...in a 4 GiB / 25% slice"

out=$(bash "$POOL" status 2>&1)
is "$?" 0 "status exits 0"
like "$out" 'tencent-ap-guangzhou-c1 +[0-9]+ +running' "status lists the coordinators as running"
like "$out" "token: $GPUPOOL_POOL_DIR/keys/operator.token" "status names the token file"
console=$(echo "$out" | sed -n 's/^console: //p')
like "$console" '^https://127\.0\.0\.1:[0-9]+/ui/$' "status gives the web console's URL"
like "$(curl -s -m 5 --cacert "$GPUPOOL_POOL_DIR/certs/ca.crt" "$console")" 'id="login"' "which serves the console"

bash "$POOL" down >"$T_TMP/down.out" 2>&1
is "$?" 0 "down exits 0: every daemon exited cleanly"
left=""
for p in $pids; do kill -0 "$p" 2>/dev/null && left+=" $p"; done
is "$left" "" "no process of the pool is left"
is "$(pgrep -f -- "$GPUPOOL_POOL_DIR/" | tr '\n' ' ')" "" "...nor any process naming its directory"
[ ! -e "$GPUPOOL_POOL_DIR" ]; ok $? "the pool's directory is gone"
done_testing
