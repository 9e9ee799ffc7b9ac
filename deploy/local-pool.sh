#!/usr/bin/env bash
# deploy/local-pool.sh - a whole multi-region gpupool on one machine.
#
#   deploy/local-pool.sh up       start the pool, wait until every daemon is ready
#   deploy/local-pool.sh status   what runs: pids, ports, the API URL, `gpupool regions`
#   deploy/local-pool.sh down     SIGTERM everything, check exit statuses, remove the pool
#   deploy/local-pool.sh demo     up, a sample workload through the CLI, the result, down
#
# The pool, on 127.0.0.1 only, on free ports:
#   - a 3-member etcd cluster (Debian's etcd), one member per "cloud":
#     each region's daemons name their own cloud's member as their local
#     etcd endpoint (etcd-local-endpoints): they use it first, fail over to
#     the others and come back to it, as in a deployment across clouds;
#   - three regions named after their clouds, each with two coordinator
#     replicas (one leads, one stands by) and one agent simulating two GPU
#     nodes of different models:
#       volcengine-cn-beijing  (volcengine)  A100 80G node, A10 24G node
#       tencent-ap-guangzhou   (tencent)     T4 16G node,   V100 32G node
#       alibaba-cn-hangzhou    (alibaba)     A100 80G node, H800 80G node
#   - CURVE key pairs for every coordinator and agent (`gpupool keys curve`),
#     each side trusting only the other side's public keys;
#   - the API over HTTPS (deploy/certs.sh: the pool's CA, the coordinators'
#     certificate, an operator's client certificate), with principals: an
#     operator ("ops", token in keys/operator.token, or the client
#     certificate certs/api-client-operator.*) and a submitter of the demo's
#     teams ("submitter", keys/submitter.token); keys/api-tokens holds their
#     hashes (`gpupool keys token --principal ...`);
#   - each coordinator's audit log in logs/<name>.audit; jobs run as nobody.
#
# Everything lives in one directory, ${GPUPOOL_POOL_DIR:-/tmp/gpupool-local}:
#   conf/   one config file per daemon        logs/  one log per daemon
#   keys/   key pairs, trusted key lists, the API tokens   certs/ TLS
#   run/    <name>.pid and <name>.status (exit status, written when it ends)
#   etcd/   the members' data                 agents/ the agents' state dirs
#   pids    "name pid" of everything `up` started, in start order
#   ports   the TCP ports reserved for the pool
#   env     `. $DIR/env` sets GPUPOOL_API (every coordinator), GPUPOOL_CACERT and GPUPOOL_TOKEN_FILE
#           (the operator's) for the CLI
# `down` stops exactly what `up` started (the pids file) and removes the
# directory (GPUPOOL_KEEP=1 keeps it, logs, data and ports included).
# `up` on a kept directory restarts that pool with its data (after a reboot,
# say): the same ports, keys and configurations, etcd's members from their
# data directories, the agents adopting the jobs they find in their state.
#
# Programs come from $GP_BUILD (default: build/ next to this folder);
# etcd and etcdctl from $PATH.  Exit status: 0, or 1 with a message on
# stderr naming what failed and the tail of its log.
set -u
set -o pipefail

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
ROOT=$(cd "$(dirname "$SELF")/.." && pwd)
: "${GP_BUILD:=$ROOT/build}"
DIR=${GPUPOOL_POOL_DIR:-/tmp/gpupool-local}
PORT_LOCKS=${TMPDIR:-/tmp}/gpupool-ports   # shared with tests/lib.sh's free_port
READY_TIMEOUT=${GPUPOOL_READY_TIMEOUT:-30}

REGIONS=(volcengine-cn-beijing tencent-ap-guangzhou alibaba-cn-hangzhou)
declare -A CLOUD=([volcengine-cn-beijing]=volcengine [tencent-ap-guangzhou]=tencent
                  [alibaba-cn-hangzhou]=alibaba)
declare -A SHORT=([volcengine-cn-beijing]=volc [tencent-ap-guangzhou]=tencent
                  [alibaba-cn-hangzhou]=ali)
declare -A DEVICES=([volcengine-cn-beijing]="8xA100:81920,8xA10:24576"
                    [tencent-ap-guangzhou]="8xT4:15360,8xV100:32768"
                    [alibaba-cn-hangzhou]="8xA100:81920,8xH800:81920")
NODES_PER_AGENT=2

say() { printf 'local-pool: %s\n' "$*"; }
die() { printf 'local-pool: %s\n' "$*" >&2; exit 1; }

need() {
    local p
    for p in "$@"; do
        [ -x "$p" ] || command -v "$p" >/dev/null 2>&1 ||
            die "$p not found (run make first; etcd comes from the etcd-server package)"
    done
}

# ---------------------------------------------------------------- ports

# reserve_port: print a free TCP port on 127.0.0.1 and reserve it (a
# directory under $PORT_LOCKS, as tests/lib.sh does, so that tests and pools
# running at the same time never pick the same port).  Recorded in $DIR/ports.
reserve_port() {
    mkdir -p "$PORT_LOCKS" 2>/dev/null
    local port _
    for _ in $(seq 1 500); do
        port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
        mkdir "$PORT_LOCKS/$port" 2>/dev/null || continue
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null ||
           ss -Htan "( sport = :$port )" 2>/dev/null | grep -q .; then
            rmdir "$PORT_LOCKS/$port"; continue
        fi
        echo "$port" >>"$DIR/ports"
        echo "$port"
        return 0
    done
    die "no free port found"
}

# release_ports: give the pool's ports up (the list stays: a kept pool
# takes the same ones again when it restarts).
release_ports() {
    local p
    [ -f "$DIR/ports" ] || return 0
    while read -r p; do rmdir "$PORT_LOCKS/$p" 2>/dev/null; done <"$DIR/ports"
}

# ---------------------------------------------------------------- processes

# spawn NAME CMD...: start CMD in the background, detached from the caller's
# terminal and pipes, output in logs/NAME.log.  A small watcher shell waits
# for it and writes its exit status to run/NAME.status, so that `down` (a
# later invocation, not its parent) can check how it ended.
spawn() {
    local name=$1; shift
    rm -f "$DIR/run/$name.pid" "$DIR/run/$name.status"
    (
        "$@" </dev/null >>"$DIR/logs/$name.log" 2>&1 &
        pid=$!
        echo "$pid" >"$DIR/run/$name.pid.tmp" && mv "$DIR/run/$name.pid.tmp" "$DIR/run/$name.pid"
        wait "$pid"
        echo $? >"$DIR/run/$name.status.tmp" && mv "$DIR/run/$name.status.tmp" "$DIR/run/$name.status"
    ) </dev/null >/dev/null 2>&1 &
    local i
    for i in $(seq 1 200); do
        [ -s "$DIR/run/$name.pid" ] && break
        sleep 0.01
    done
    [ -s "$DIR/run/$name.pid" ] || die "$name: could not start"
    echo "$name $(cat "$DIR/run/$name.pid")" >>"$DIR/pids"
}

pid_of() { cat "$DIR/run/$1.pid" 2>/dev/null; }
alive() { local p; p=$(pid_of "$1") && [ -n "$p" ] && [ ! -e "$DIR/run/$1.status" ] && kill -0 "$p" 2>/dev/null; }

show_log() { # name
    echo "---- last lines of $DIR/logs/$1.log:" >&2
    tail -n 25 "$DIR/logs/$1.log" 2>/dev/null | sed 's/^/  | /' >&2
}

# wait_ready NAME REGEX: until the daemon's log holds its readiness line.
wait_ready() {
    local name=$1 re=$2
    local deadline=$(( $(date +%s) + READY_TIMEOUT ))
    while ! grep -Eq -- "$re" "$DIR/logs/$name.log" 2>/dev/null; do
        if ! alive "$name"; then
            show_log "$name"
            fail_up "$name exited before it was ready (status $(cat "$DIR/run/$name.status" 2>/dev/null || echo '?'))"
        fi
        [ "$(date +%s)" -lt "$deadline" ] || { show_log "$name"; fail_up "$name not ready after ${READY_TIMEOUT}s"; }
        sleep 0.05
    done
    grep -Em1 -- "$re" "$DIR/logs/$name.log" | sed -E 's/^gpupool-[a-z]+ ready //' >"$DIR/run/$name.info"
}

# A start that failed half-way stops what it started, then exits 1.
fail_up() {
    echo "local-pool: $*" >&2
    echo "local-pool: stopping what was started" >&2
    GPUPOOL_KEEP=${GPUPOOL_KEEP:-1} do_down >/dev/null 2>&1
    [ "${GPUPOOL_KEEP:-1}" = 1 ] && echo "local-pool: logs kept in $DIR/logs" >&2
    exit 1
}

# ---------------------------------------------------------------- up

etcdctl_() {
    ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" --dial-timeout 2s --command-timeout 5s "$@"
}

# spawn_etcd N CLIENT_URL PEER_URL CLUSTER TOKEN STATE: start member N.
spawn_etcd() {
    spawn "etcd$1" etcd --name "etcd$1" --data-dir "$DIR/etcd/etcd$1" \
        --listen-client-urls "$2" --advertise-client-urls "$2" \
        --listen-peer-urls "$3" --initial-advertise-peer-urls "$3" \
        --initial-cluster "$4" --initial-cluster-state "$6" \
        --initial-cluster-token "$5" \
        --heartbeat-interval 50 --election-timeout 500 --log-level warn --logger zap
    echo "client $2 peer $3" >"$DIR/run/etcd$1.info"
}

# wait_etcd URL...: until every member is healthy.
wait_etcd() {
    local deadline=$(( $(date +%s) + READY_TIMEOUT )) n=0 url
    for url in "$@"; do
        until ETCDCTL_API=3 etcdctl --endpoints "$url" --dial-timeout 1s \
                --command-timeout 2s endpoint health >/dev/null 2>&1; do
            alive "etcd$n" || { show_log "etcd$n"; fail_up "etcd$n exited"; }
            [ "$(date +%s)" -lt "$deadline" ] || { show_log "etcd$n"; fail_up "etcd$n not healthy"; }
            sleep 0.1
        done
        n=$((n + 1))
    done
}

# wait_daemons: until every coordinator, then every agent, is ready.
wait_daemons() {
    local r i
    for r in "${REGIONS[@]}"; do
        for i in 0 1; do wait_ready "$r-c$i" '^gpupool-coordinator ready '; done
    done
    say "coordinators: 2 in each of ${REGIONS[*]}"
    for r in "${REGIONS[@]}"; do wait_ready "$r-agent" '^gpupool-agent ready '; done
    say "agents: one per region, $NODES_PER_AGENT simulated nodes each"
}

# Restart a pool that `GPUPOOL_KEEP=1 down` kept: its ports again (refused
# if another program took one meanwhile), etcd from its data, the daemons
# from their configurations and state.
do_restart() {
    local p n held=()
    mkdir -p "$PORT_LOCKS" 2>/dev/null
    for p in $(cat "$DIR/ports"); do
        if mkdir "$PORT_LOCKS/$p" 2>/dev/null; then
            held+=("$p")
            (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || continue
        fi
        for n in "${held[@]}"; do rmdir "$PORT_LOCKS/$n" 2>/dev/null; done
        die "port $p of the kept pool in $DIR is taken; the pool cannot restart on its ports"
    done
    : >"$DIR/pids"
    local urls=() peers=() cluster="" token
    for n in 0 1 2; do
        read -r _ urls[n] _ peers[n] <"$DIR/run/etcd$n.info" ||
            fail_up "$DIR/run/etcd$n.info: unreadable; the kept pool is incomplete"
        cluster+="${cluster:+,}etcd$n=${peers[$n]}"
    done
    token=$(cat "$DIR/run/etcd-token" 2>/dev/null) || token=gpupool-local
    for n in 0 1 2; do
        spawn_etcd "$n" "${urls[$n]}" "${peers[$n]}" "$cluster" "$token" existing
    done
    wait_etcd "${urls[@]}"
    say "etcd: 3 members restarted from their data at $(cat "$DIR/run/etcd-endpoints")"
    local r i
    for r in "${REGIONS[@]}"; do
        for i in 0 1; do
            spawn "$r-c$i" "$GP_BUILD/gpupool-coordinator" -c "$DIR/conf/$r-c$i.conf"
        done
    done
    for r in "${REGIONS[@]}"; do
        spawn "$r-agent" "$GP_BUILD/gpupool-agent" -c "$DIR/conf/$r-agent.conf"
    done
    wait_daemons
    # shellcheck disable=SC1091
    say "up: API $(. "$DIR/env"; echo "$GPUPOOL_API"), token file $DIR/keys/operator.token (. $DIR/env)"
    # shellcheck disable=SC1091
    say "web console: $(. "$DIR/env"; echo "${GPUPOOL_API%%,*}")/ui/ (sign in with the token in $DIR/keys/operator.token)"
}

do_up() {
    need "$GP_BUILD/gpupool" "$GP_BUILD/gpupool-coordinator" "$GP_BUILD/gpupool-agent" etcd etcdctl
    if [ -f "$DIR/pids" ]; then
        die "a pool already lives in $DIR (run '$0 down' first, or set GPUPOOL_POOL_DIR)"
    fi
    if [ -f "$DIR/.local-pool" ] && [ -f "$DIR/env" ] && [ -d "$DIR/etcd/etcd0/member" ]; then
        say "restarting the pool kept in $DIR"
        do_restart
        return
    fi
    [ -e "$DIR" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ] &&
        die "$DIR exists and is not empty (the logs of a failed run? '$0 down' removes them)"
    mkdir -p "$DIR"/{conf,logs,keys,run,etcd,agents} || die "cannot create $DIR"
    # 0711: jobs (as nobody) reach their work folders under agents/ by name
    chmod 711 "$DIR"
    chmod 700 "$DIR/keys" "$DIR/conf" "$DIR/logs" "$DIR/run" "$DIR/etcd"
    : >"$DIR/pids"; : >"$DIR/ports"
    echo "a gpupool local pool: $SELF down removes this folder" >"$DIR/.local-pool"
    local cli=$GP_BUILD/gpupool

    # -- keys: one pair per daemon; each side trusts the other side's keys
    local r i
    # API principals: an operator and a submitter of the demo's teams (their
    # tokens for the CLI, only their hashes for the coordinators), and the
    # operator's client certificate.
    (umask 077
     "$cli" keys token --principal ops --role operator --file "$DIR/keys/api-tokens" \
         >"$DIR/keys/operator.token" &&
     "$cli" keys token --principal submitter --role submitter --team search --team ads \
         --team llm --team video --team ci --file "$DIR/keys/api-tokens" \
         >"$DIR/keys/submitter.token" &&
     echo "cert:operator ops operator -" >>"$DIR/keys/api-tokens") ||
        fail_up "gpupool keys token failed"
    bash "$(dirname "$SELF")/certs.sh" "$DIR/certs" >"$DIR/logs/certs.log" 2>&1 ||
        fail_up "deploy/certs.sh failed (see $DIR/logs/certs.log)"
    : >"$DIR/keys/agents.pub"; : >"$DIR/keys/coordinators.pub"
    for r in "${REGIONS[@]}"; do
        for i in 0 1; do
            "$cli" keys curve "$DIR/keys/$r-c$i" >/dev/null || fail_up "gpupool keys curve failed"
            cat "$DIR/keys/$r-c$i.pub" >>"$DIR/keys/coordinators.pub"
        done
        "$cli" keys curve "$DIR/keys/$r-agent" >/dev/null || fail_up "gpupool keys curve failed"
        cat "$DIR/keys/$r-agent.pub" >>"$DIR/keys/agents.pub"
    done

    # -- etcd: three members
    local cluster="" urls=() peers=() n
    local cp pp
    for n in 0 1 2; do
        cp=$(reserve_port) || fail_up "no free port"
        pp=$(reserve_port) || fail_up "no free port"
        urls[n]="http://127.0.0.1:$cp"
        peers[n]="http://127.0.0.1:$pp"
        cluster+="${cluster:+,}etcd$n=${peers[$n]}"
    done
    ETCD_ENDPOINTS=$(IFS=,; echo "${urls[*]}")
    local token="gpupool-local-$$-$RANDOM"
    echo "$token" >"$DIR/run/etcd-token"
    for n in 0 1 2; do
        spawn_etcd "$n" "${urls[$n]}" "${peers[$n]}" "$cluster" "$token" new
    done
    wait_etcd "${urls[@]}"
    echo "$ETCD_ENDPOINTS" >"$DIR/run/etcd-endpoints"
    say "etcd: 3 members at $ETCD_ENDPOINTS"

    # -- coordinators: two per region; region k's local member is etcd k
    local api_port api_url="" api_urls="" k
    declare -A LOCAL_EP=()
    for k in "${!REGIONS[@]}"; do LOCAL_EP[${REGIONS[$k]}]=${urls[$k]}; done
    for r in "${REGIONS[@]}"; do
        for i in 0 1; do
            api_port=$(reserve_port) || fail_up "no free port"
            [ -n "$api_url" ] || api_url="https://127.0.0.1:$api_port"
            api_urls+="${api_urls:+,}https://127.0.0.1:$api_port"
            cat >"$DIR/conf/$r-c$i.conf" <<EOF
# coordinator $i of region $r (written by local-pool.sh)
id = $r-c$i
region = $r
etcd-endpoints = $ETCD_ENDPOINTS
etcd-local-endpoints = ${LOCAL_EP[$r]}
api-listen = 127.0.0.1:$api_port
bid-listen = tcp://127.0.0.1:0
api-tokens = $DIR/keys/api-tokens
api-tls-cert = $DIR/certs/api-server.crt
api-tls-key = $DIR/certs/api-server.key
api-tls-client-ca = $DIR/certs/ca.crt
audit-log = $DIR/logs/$r-c$i.audit
curve-key = $DIR/keys/$r-c$i.key
agent-keys = $DIR/keys/agents.pub
lease-ttl = 3s
EOF
            spawn "$r-c$i" "$GP_BUILD/gpupool-coordinator" -c "$DIR/conf/$r-c$i.conf"
        done
    done

    # -- agents: one per region, each simulating two nodes
    for r in "${REGIONS[@]}"; do
        mkdir -p "$DIR/agents/$r"
        cat >"$DIR/conf/$r-agent.conf" <<EOF
# simulated agent of region $r (written by local-pool.sh)
name = ${SHORT[$r]}
region = $r
cloud = ${CLOUD[$r]}
cluster = ${SHORT[$r]}-gpu
zone = $r-a
etcd-endpoints = $ETCD_ENDPOINTS
etcd-local-endpoints = ${LOCAL_EP[$r]}
state-dir = $DIR/agents/$r
shim = $GP_BUILD/libgpupool-shim.so
metrics-listen = 127.0.0.1:0
simulate = $NODES_PER_AGENT
simulate-devices = ${DEVICES[$r]}
curve-key = $DIR/keys/$r-agent.key
coordinator-keys = $DIR/keys/coordinators.pub
lease-ttl = 3s
job-user = nobody
EOF
        spawn "$r-agent" "$GP_BUILD/gpupool-agent" -c "$DIR/conf/$r-agent.conf"
    done
    wait_daemons

    cat >"$DIR/env" <<EOF
# . $DIR/env   -- puts the gpupool CLI on PATH and points it at this pool
case ":\$PATH:" in *":$GP_BUILD:"*) ;; *) export PATH="$GP_BUILD:\$PATH" ;; esac
export GPUPOOL_API=$api_urls
export GPUPOOL_CACERT=$DIR/certs/ca.crt
export GPUPOOL_TOKEN_FILE=$DIR/keys/operator.token
unset GPUPOOL_TOKEN
EOF
    say "up: API $api_urls, token file $DIR/keys/operator.token (. $DIR/env)"
    say "web console: $api_url/ui/ (sign in with the token in $DIR/keys/operator.token)"
}

# ---------------------------------------------------------------- status

do_status() {
    [ -f "$DIR/pids" ] || die "no pool in $DIR"
    local name pid state extra
    printf '%-30s %8s  %-8s  %s\n' NAME PID STATE READY
    while read -r name pid; do
        if alive "$name"; then state=running
        else state="exited($(cat "$DIR/run/$name.status" 2>/dev/null || echo '?'))"; fi
        extra=$(cat "$DIR/run/$name.info" 2>/dev/null)
        [ -n "$extra" ] || extra=-
        printf '%-30s %8s  %-8s  %s\n' "$name" "$pid" "$state" "$extra"
    done <"$DIR/pids"
    echo "etcd:  $(cat "$DIR/run/etcd-endpoints")"
    # shellcheck disable=SC1091
    . "$DIR/env"
    echo "API:   $GPUPOOL_API"
    echo "console: ${GPUPOOL_API%%,*}/ui/"
    echo "token: $GPUPOOL_TOKEN_FILE"
    echo "logs:  $DIR/logs"
    echo
    "$GP_BUILD/gpupool" regions
}

# ---------------------------------------------------------------- down

# Stop every daemon of the pids file with SIGTERM, a group at a time: the
# agents, then the coordinators, then etcd (which the others need to shut
# down cleanly); wait for each and read its exit status.  Jobs
# the agents started keep running by design when their agent stops, so the
# supervisors left in the agents' state dirs are stopped too.
do_down() {
    if [ ! -f "$DIR/pids" ]; then
        [ -f "$DIR/.local-pool" ] || die "no pool in $DIR"
        # what a failed start left behind (its logs): nothing runs
        rm -rf "$DIR" && say "removed $DIR (no daemon of it was running)"
        return
    fi
    local failed=0 group name pid
    for group in '*-agent' '*-c[0-9]*' 'etcd*'; do
        local names=() pids=() k
        while read -r name pid; do
            # shellcheck disable=SC2254
            case $name in $group) names+=("$name"); pids+=("$pid");; esac
        done <"$DIR/pids"
        if [ "$group" = 'etcd*' ]; then
            # One member at a time: a member stopping while its peers stop
            # too waits for a leadership transfer that cannot happen.
            for k in "${!names[@]}"; do
                alive "${names[$k]}" && kill -TERM "${pids[$k]}" 2>/dev/null
                stop_wait "${names[$k]}" "${pids[$k]}" || failed=1
            done
            continue
        fi
        for k in "${!names[@]}"; do
            alive "${names[$k]}" && kill -TERM "${pids[$k]}" 2>/dev/null
        done
        for k in "${!names[@]}"; do
            stop_wait "${names[$k]}" "${pids[$k]}" || failed=1
        done
    done
    # job supervisors left behind by the agents (jobs with a command)
    local f sup job
    for f in "$DIR"/agents/*/jobs/*/pid; do
        [ -f "$f" ] || continue
        read -r sup job _ <"$f" 2>/dev/null || continue
        [ -n "$job" ] && kill -TERM -- "-$job" 2>/dev/null
        [ -n "$sup" ] && kill -TERM "$sup" 2>/dev/null
    done
    release_ports
    if [ "$failed" = 0 ]; then
        say "down: every daemon stopped and exited 0"
    fi
    if [ "${GPUPOOL_KEEP:-0}" = 1 ]; then
        say "kept $DIR"
        rm -f "$DIR/pids"
    else
        rm -rf "$DIR"
    fi
    return "$failed"
}

# stop_wait NAME PID: wait (20 s, then SIGKILL) for the daemon's status file.
stop_wait() {
    local name=$1 pid=$2 i
    for i in $(seq 1 400); do
        [ -e "$DIR/run/$name.status" ] && break
        kill -0 "$pid" 2>/dev/null || { sleep 0.05; [ -e "$DIR/run/$name.status" ] && break; }
        sleep 0.05
    done
    if [ ! -e "$DIR/run/$name.status" ] && kill -0 "$pid" 2>/dev/null; then
        echo "local-pool: $name (pid $pid) did not exit within 20s of SIGTERM; killed" >&2
        kill -KILL "$pid" 2>/dev/null
        show_log "$name"
        return 1
    fi
    local st
    st=$(cat "$DIR/run/$name.status" 2>/dev/null || echo '?')
    # etcd cleans up on SIGTERM and then re-raises it: 143 is its clean exit.
    case $name in etcd*) [ "$st" = 143 ] && st=0;; esac
    if [ "$st" != 0 ]; then
        echo "local-pool: $name exited with status $st" >&2
        show_log "$name"
        echo 0 >"$DIR/run/$name.status"   # reported once
        return 1
    fi
    return 0
}

# ---------------------------------------------------------------- demo

# The sample workload: what a platform's submitters would send.  Each job
# is submitted to a region ("region"), whose leader places it; jobs that pin
# a model or a cloud go to the region that has it.
demo_jobs() {
    local i r sep=""
    local volc=volcengine-cn-beijing tencent=tencent-ap-guangzhou ali=alibaba-cn-hangzhou
    local spread=("$volc" "$tencent" "$ali")
    echo "["
    # 20 inference services, each on a quarter of a GPU with 10 GiB
    for i in $(seq 1 20); do
        r=${spread[$(( (i - 1) % 3 ))]}
        printf '%s{"id":"infer-%02d","region":"%s","devices":1,"mem_mib":10240,"compute_percent":25,"owner":"search","priority":10}\n' \
            "$sep" "$i" "$r"
        sep=","
    done
    # HAMi-style requests (the nvidia.com/* resource names): 8 GiB and 30%
    # of a T4 or a V100
    for i in 1 2 3 4; do
        printf ',{"id":"hami-%s","region":"%s","nvidia.com/gpu":1,"nvidia.com/gpumem":8192,"nvidia.com/gpucores":30,"nvidia.com/use-gputype":"T4,V100","owner":"ads"}\n' "$i" "$tencent"
    done
    # training on whole GPUs: 4 A100s, and two jobs of 2 GPUs
    printf ',{"id":"train-a100-x4","region":"%s","devices":4,"models":["A100"],"owner":"llm","priority":50}\n' "$volc"
    printf ',{"id":"train-x2-1","region":"%s","devices":2,"owner":"llm"}\n' "$ali"
    printf ',{"id":"train-x2-2","region":"%s","devices":2,"owner":"llm"}\n' "$ali"
    # jobs pinned to a GPU model (and a cloud)
    printf ',{"id":"t4-batch-1","region":"%s","devices":1,"mem_mib":4096,"compute_percent":50,"models":["T4"],"owner":"video"}\n' "$tencent"
    printf ',{"id":"t4-batch-2","region":"%s","devices":1,"mem_mib":4096,"compute_percent":50,"models":["T4"],"owner":"video"}\n' "$tencent"
    printf ',{"id":"h800-finetune","region":"%s","devices":2,"models":["H800"],"clouds":["alibaba"],"owner":"llm","priority":20}\n' "$ali"
    printf ',{"id":"a10-render","region":"%s","devices":1,"mem_mib":12288,"compute_percent":40,"models":["A10"],"owner":"video"}\n' "$volc"
    # short tests that finish by themselves: reservations of 3 s, and one
    # real process started by the agent inside its slice
    for i in 1 2 3; do
        printf ',{"id":"ci-test-%s","region":"%s","devices":1,"mem_mib":2048,"compute_percent":10,"duration_s":3,"owner":"ci"}\n' "$i" "${spread[$((i - 1))]}"
    done
    # shellcheck disable=SC2016  # $GPUPOOL_JOB and friends expand in the job
    printf ',{"id":"ci-hello","region":"%s","devices":1,"mem_mib":1024,"compute_percent":10,"owner":"ci","command":["sh","-c","echo hello from $GPUPOOL_JOB on $GPUPOOL_NODE as $(id -un): devices $GP_SLICE_DEVICES, memory $GP_SLICE_MEM_LIMIT, compute $GP_SLICE_COMPUTE"]}\n' "$volc"
    echo "]"
}

do_demo() {
    local t0=$SECONDS
    do_up || exit 1
    # From here on, whatever happens, the pool goes down.
    trap 'do_down >/dev/null 2>&1' EXIT
    # shellcheck disable=SC1091
    . "$DIR/env"
    local cli=$GP_BUILD/gpupool
    echo
    "$cli" regions || demo_fail "gpupool regions failed"
    echo
    demo_jobs >"$DIR/demo-jobs.json"
    local njobs
    njobs=$(grep -c '"id"' "$DIR/demo-jobs.json")
    say "submitting $njobs jobs as the teams' submitter: 20 inference slices (10 GiB, 25%), 4 HAMi-style T4/V100 slices, whole-GPU training, model-pinned jobs, 4 short tests"
    "$cli" --token-file "$DIR/keys/submitter.token" submit "$DIR/demo-jobs.json" \
        >"$DIR/demo-submit.out" || { cat "$DIR/demo-submit.out"; demo_fail "submit failed"; }
    grep -c ' created$' "$DIR/demo-submit.out" | sed 's/^/local-pool: created: /'

    # Wait until nothing is pending or placed-but-not-started, and the short
    # tests have succeeded.
    local deadline=$(( SECONDS + 30 )) pending succeeded
    while :; do
        pending=$( { "$cli" ls --state pending -q; "$cli" ls --state placed -q; } | wc -l)
        succeeded=$("$cli" ls --state succeeded -q | grep -c '^ci-')
        [ "$pending" = 0 ] && [ "$succeeded" = 4 ] && break
        if [ $SECONDS -ge $deadline ]; then
            "$cli" ls >&2
            demo_fail "after 30s: $pending jobs not running, $succeeded of 4 tests succeeded"
        fi
        check_daemons
        sleep 0.5
    done
    local failed
    failed=$("$cli" ls --state failed -q | wc -l)
    [ "$failed" = 0 ] || { "$cli" ls --state failed >&2; demo_fail "$failed jobs failed"; }
    say "every job placed; the tests succeeded"
    echo
    echo "== gpupool ls"
    "$cli" ls
    echo
    echo "== gpupool nodes"
    "$cli" nodes
    echo
    echo "== gpupool top --once"
    "$cli" top --once
    echo
    echo "== gpupool get infer-01"
    "$cli" get infer-01
    echo
    echo "== the output of ci-hello (jobs run as an unprivileged account)"
    cat "$DIR"/agents/*/done/ci-hello*/stdout 2>/dev/null || echo "(not found)"
    grep -qs ' as nobody:' "$DIR"/agents/*/done/ci-hello*/stdout ||
        demo_fail "ci-hello did not run as nobody"
    echo
    echo "== roles: the submitter may not set a quota; the operator's client certificate may"
    if "$cli" --token-file "$DIR/keys/submitter.token" quota set llm --gpus 16; then
        demo_fail "the submitter could set a quota"
    fi
    GPUPOOL_TOKEN_FILE='' "$cli" --cert "$DIR/certs/api-client-operator.crt" \
        --key "$DIR/certs/api-client-operator.key" quota set llm --gpus 16 ||
        demo_fail "the operator's certificate could not set a quota"
    echo
    echo "== gpupool audit --limit 4 (the audit log of the coordinator the CLI talks to)"
    "$cli" audit --limit 4 || demo_fail "gpupool audit failed"
    echo
    say "cancelling everything for the second act"
    local ids
    mapfile -t ids < <("$cli" ls --state running -q)
    [ ${#ids[@]} -eq 0 ] || "$cli" cancel "${ids[@]}" >/dev/null || demo_fail "cancel failed"
    sleep 1
    demo_act2 "$cli"
    check_daemons
    trap - EXIT
    if [ "${GPUPOOL_DEMO_KEEP:-0}" = 1 ]; then
        say "demo done in $((SECONDS - t0))s; the pool stays up: web console ${GPUPOOL_API%%,*}/ui/ (token in $DIR/keys/operator.token), $SELF down stops it"
        return 0
    fi
    do_down || exit 1
    say "demo done in $((SECONDS - t0))s (GPUPOOL_DEMO_KEEP=1 make demo keeps the pool up for the web console)"
}

# The second act: what makes the pool more than separate clusters.
#   - a job only another region can hold, submitted where it cannot run:
#     its owner region hands it over;
#   - a training gang of 2 x 6 GPUs: on two nodes, all or nothing;
#   - a high-priority service that fits nowhere preempts a batch job.
demo_act2() {
    local cli=$1 volc=volcengine-cn-beijing ali=alibaba-cn-hangzhou
    say "act 2: a V100 job submitted to $volc (no V100 there), a 2-node gang, a preemption"
    "$cli" submit - >/dev/null <<EOJ || demo_fail "submit failed"
[{"id":"v100-eval","region":"$volc","devices":1,"mem_mib":8192,"models":["V100"],"owner":"research"},
 {"id":"pretrain-0","region":"$ali","gang":"pretrain","gang_size":2,"devices":6,"owner":"llm"},
 {"id":"pretrain-1","region":"$ali","gang":"pretrain","gang_size":2,"devices":6,"owner":"llm"},
 {"id":"render-batch","region":"$volc","devices":8,"models":["A10"],"priority":0,"owner":"video",
  "restart":"on-failure"}]
EOJ
    demo_wait "$cli" running v100-eval pretrain-0 pretrain-1 render-batch
    echo '{"id":"online-a10","region":"'"$volc"'","devices":1,"models":["A10"],"priority":100,"owner":"search"}' |
        "$cli" submit - >/dev/null || demo_fail "submit failed"
    demo_wait "$cli" running online-a10
    demo_wait "$cli" pending render-batch
    echo
    echo "== cross-region: v100-eval"
    "$cli" get v100-eval | grep -iE '^(state|node|region):|handed' | head -8
    echo
    echo "== the gang: pretrain-0 and pretrain-1 (all or nothing, one transaction)"
    "$cli" ls | grep -E '^(ID|pretrain-)'
    echo
    echo "== preemption: online-a10 (priority 100) took render-batch's place; render-batch waits"
    "$cli" ls | grep -E '^(ID|online-a10|render-batch)'
    "$cli" get render-batch | grep -E 'preempted|requeued' | head -3
    mapfile -t ids < <("$cli" ls --state running -q)
    [ ${#ids[@]} -eq 0 ] || "$cli" cancel "${ids[@]}" >/dev/null || demo_fail "cancel failed"
    "$cli" cancel render-batch >/dev/null || demo_fail "cancel failed"
    echo
}

# demo_wait CLI STATE ID...: wait (30 s at most) until every job is in STATE.
demo_wait() {
    local cli=$1 want=$2 id
    shift 2
    local deadline=$(( SECONDS + 30 ))
    for id in "$@"; do
        until "$cli" -o json get "$id" 2>/dev/null | tr -d ' \n' | grep -q "^{\"id\":\"$id\".*\"state\":\"$want\",\"reason\""; do
            [ $SECONDS -lt $deadline ] || { "$cli" get "$id" >&2; demo_fail "$id is not $want after 30s"; }
            check_daemons
            sleep 0.3
        done
    done
}

check_daemons() {
    local name pid
    while read -r name pid; do
        alive "$name" || { show_log "$name"; demo_fail "$name is not running"; }
    done <"$DIR/pids"
}

demo_fail() {
    echo "local-pool: demo failed: $*" >&2
    trap - EXIT
    GPUPOOL_KEEP=1 do_down >/dev/null
    echo "local-pool: logs kept in $DIR/logs (remove $DIR before the next run)" >&2
    exit 1
}

# ---------------------------------------------------------------- main

case ${1:-} in
    up)     do_up ;;
    status) do_status ;;
    down)   do_down ;;
    demo)   do_demo ;;
    -h|--help|help)
        sed -n '2,/^set -u/p' "$SELF" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//' ;;
    *)      echo "usage: $0 up|status|down|demo   (see $0 --help)" >&2; exit 64 ;;
esac
