# tests/lib.sh - shared helpers for gpupool's shell integration tests.
#
# A test script is tests/<part>/<name>.t:
#
#     #!/usr/bin/env bash
#     . "$(dirname "$0")/../lib.sh"
#     etcd_start 3                       # a real 3-member cluster on free ports
#     start_daemon agent 'gpupool-agent ready' -- "$GP_BUILD/gpupool-agent" -c "$T_TMP/a.conf"
#     is "$(etcdctl_ get /gpupool/nodes/ --prefix --keys-only | wc -l)" 1 "node registered"
#     stop_daemon agent; is "$?" 0 "agent exits 0 on SIGTERM"
#     done_testing
#
# What it gives:
#   - T_TMP: a private temporary directory, removed at exit (kept when
#     GP_KEEP_TMP=1, for debugging).
#   - A cleanup trap (EXIT, INT, TERM) that kills every process the script
#     started through these helpers, by pid (TERM, then KILL), and releases
#     every port it reserved.  Tests run in parallel under prove -j2.
#   - TAP: plan, ok, is, isnt, like, diag, skip, done_testing, bail_out.
#     A failure prints got/expected and the script's file:line.
#   - free_port: a free TCP port on 127.0.0.1, reserved against other test
#     scripts running at the same time.
#   - start_daemon / stop_daemon / daemon_pid: run a program in the
#     background with its output in $T_TMP/<name>.log, wait for its
#     readiness line.
#   - etcd_start N / etcd_member_kill I / etcd_member_start I / etcd_stop:
#     a real etcd cluster (Debian's etcd binary) of N members with their own
#     data directories.  ETCD_ENDPOINTS is the comma-separated list of client
#     URLs; ETCD_CLIENT_URL[i] one member's.  Set ETCD_SCHEME=https and
#     ETCD_EXTRA_ARGS (an array) before etcd_start for TLS.
#   - run_tap_program: run a C program that prints TAP itself, pass its
#     output through, and make its exit status the script's.
#
# GP_BUILD (set by make) is the build folder; GP_ROOT is the repository.

set -u

GP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${GP_BUILD:=$GP_ROOT/build}"
export GP_ROOT GP_BUILD
PATH="$GP_BUILD:$PATH"

T_NAME=$(basename "$0" .t)
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/gpupool-$T_NAME.XXXXXX") || { echo "Bail out! mktemp failed"; exit 255; }
# Agents run jobs as unprivileged accounts (nobody by default), and test
# jobs leave their findings in T_TMP: it is open to them as /tmp is
# (sticky); what the agent keeps there (state, keys) is its own, 0700/0600.
chmod 1777 "$T_TMP"

T_PIDS=()
T_PORTS=()
T_RUN=0
T_FAILED=0
T_PLANNED=-1
T_PORT_LOCKS=${TMPDIR:-/tmp}/gpupool-ports
declare -A T_DAEMON_PID=()

# ---------------------------------------------------------------- cleanup

# t_descendants PID...: the pids and every process below them.
t_descendants() {
    local p
    for p in "$@"; do
        echo "$p"
        t_descendants $(pgrep -P "$p")
    done
}

t_cleanup() {
    local rc=$?
    local pid left
    # Everything the test's daemons started, found before any of them is
    # killed: an agent's job supervisors are its children, and the TERM
    # below ends them, but not their jobs (their own process groups, with
    # commands that need not name the folder).
    left=$(t_descendants $(pgrep -f -- "$T_TMP/"))
    for pid in "${T_PIDS[@]}"; do
        pkill -TERM -P "$pid" 2>/dev/null   # a tracked subshell's command too
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${T_PIDS[@]}"; do
        local i
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    # What the daemons started and left (jobs' supervisors outlive an agent
    # by design): everything still naming this test's folder, and all that
    # was below it at the start.
    pkill -KILL -f -- "$T_TMP/" 2>/dev/null
    [ -n "$left" ] && kill -KILL $left 2>/dev/null
    local p
    for p in "${T_PORTS[@]}"; do
        rmdir "$T_PORT_LOCKS/$p" 2>/dev/null
    done
    if [ "${GP_KEEP_TMP:-0}" = 1 ]; then
        echo "# kept $T_TMP" >&2
    else
        rm -rf "$T_TMP"
    fi
    exit $rc
}
trap t_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Remember a pid so that cleanup kills it.
track_pid() { T_PIDS+=("$1"); }

# ---------------------------------------------------------------- TAP

t_where() { echo "${BASH_SOURCE[2]##*/}:${BASH_LINENO[1]}"; }

plan() { T_PLANNED=$1; echo "1..$1"; }

t_result() { # pass desc
    T_RUN=$((T_RUN + 1))
    if [ "$1" = 1 ]; then
        echo "ok $T_RUN - $2"
    else
        T_FAILED=$((T_FAILED + 1))
        echo "not ok $T_RUN - $2"
    fi
}

# ok COMMAND-STATUS DESC: ok "$?" or ok "$(( x > 3 ))"-style is not used;
# pass the exit status of a test, e.g. `[ -s file ]; ok $? "file written"`.
ok() {
    local st=$1 desc=$2
    if [ "$st" = 0 ]; then t_result 1 "$desc"; else
        t_result 0 "$desc"; echo "#   Failed test at $(t_where) (status $st)"; fi
}

is() { # got expected desc
    if [ "$1" = "$2" ]; then t_result 1 "$3"; else
        t_result 0 "$3"
        echo "#   Failed test at $(t_where)"
        echo "#          got: '$1'"
        echo "#     expected: '$2'"
    fi
}

isnt() { # got unexpected desc
    if [ "$1" != "$2" ]; then t_result 1 "$3"; else
        t_result 0 "$3"
        echo "#   Failed test at $(t_where)"
        echo "#          got: '$1'"
        echo "#     expected: anything else"
    fi
}

like() { # got extended-regex desc
    if printf '%s' "$1" | grep -Eq -- "$2"; then t_result 1 "$3"; else
        t_result 0 "$3"
        echo "#   Failed test at $(t_where)"
        echo "#          got: '$(printf '%s' "$1" | head -c 2000)'"
        echo "#     expected: /$2/"
    fi
}

diag() { printf '%s\n' "$*" | sed 's/^/# /'; }

skip() { # n why
    local i
    for i in $(seq 1 "$1"); do T_RUN=$((T_RUN + 1)); echo "ok $T_RUN # skip $2"; done
}

bail_out() { echo "Bail out! $*"; exit 255; }

# bench_figure NAME VALUE: print a benchmark's figure as "bench: NAME VALUE".
# A value that is not a number means the measurement failed: say so and
# exit non-zero, printing no figure (a benchmark never reports a default).
bench_figure() {
    if [[ ! "$2" =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; then
        echo "# benchmark failed: $1 was not measured (got '$2')"
        exit 1
    fi
    echo "bench: $1 $2"
}

done_testing() {
    if [ "$T_PLANNED" -lt 0 ]; then echo "1..$T_RUN"
    elif [ "$T_PLANNED" != "$T_RUN" ]; then
        echo "# Looks like you planned $T_PLANNED tests but ran $T_RUN."; exit 255
    fi
    [ "$T_FAILED" = 0 ] || echo "# Looks like you failed $T_FAILED of $T_RUN."
    exit $((T_FAILED > 254 ? 254 : T_FAILED))
}

# Run a program that prints TAP itself; its lines pass through and its exit
# status becomes the script's (cleanup still runs).
run_tap_program() {
    "$@"
    exit $?
}

# Print a file's last lines as diagnostics (for a daemon that failed).
diag_file() { [ -f "$1" ] && tail -n "${2:-30}" "$1" | sed 's/^/#   | /'; }

# ---------------------------------------------------------------- waiting

# wait_for TIMEOUT_S COMMAND...: run COMMAND every 0.05 s until it succeeds.
wait_for() {
    local timeout=$1; shift
    local deadline=$(( $(date +%s%N) + timeout * 1000000000 ))
    while ! "$@" >/dev/null 2>&1; do
        [ "$(date +%s%N)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
    return 0
}

# ---------------------------------------------------------------- ports

# free_port: print a TCP port on 127.0.0.1 that nothing listens on and that
# no other test script holds.  The reservation is a directory under
# $T_PORT_LOCKS (mkdir is atomic), released at cleanup; reservations older
# than an hour are stale leftovers of a killed run and are reused.
free_port() {
    mkdir -p "$T_PORT_LOCKS" 2>/dev/null
    local try port
    for try in $(seq 1 500); do
        port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
        if ! mkdir "$T_PORT_LOCKS/$port" 2>/dev/null; then
            find "$T_PORT_LOCKS/$port" -maxdepth 0 -mmin +60 -exec rmdir {} \; 2>/dev/null
            continue
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            rmdir "$T_PORT_LOCKS/$port"; continue   # something listens there
        fi
        if ss -Htan "( sport = :$port )" 2>/dev/null | grep -q .; then
            rmdir "$T_PORT_LOCKS/$port"; continue   # in use (TIME_WAIT, outgoing)
        fi
        T_PORTS+=("$port")
        echo "$port"
        return 0
    done
    bail_out "no free port found"
}
# free_port in a $(...) subshell cannot record the reservation in the
# parent; use `alloc_port VAR` to get the port and its release at cleanup.
alloc_port() {
    local p
    p=$(free_port) || exit 255
    T_PORTS+=("$p")
    printf -v "$1" '%s' "$p"
}

# ---------------------------------------------------------------- daemons

# start_daemon NAME READY_REGEX [TIMEOUT_S] -- CMD ARGS...
# Start CMD in the background, output to $T_TMP/NAME.log, and wait until a
# line matching READY_REGEX appears.  Fails (status 1, log shown) when the
# process exits first or the timeout (default 20 s) passes.
start_daemon() {
    local name=$1 ready=$2 timeout=20
    shift 2
    if [ "$1" != "--" ]; then timeout=$1; shift; fi
    shift
    "$@" >"$T_TMP/$name.log" 2>&1 &
    local pid=$!
    track_pid "$pid"
    T_DAEMON_PID[$name]=$pid
    local deadline=$(( $(date +%s%N) + timeout * 1000000000 ))
    while ! grep -Eq -- "$ready" "$T_TMP/$name.log" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            diag "$name exited before it was ready; its log:"; diag_file "$T_TMP/$name.log"
            return 1
        fi
        if [ "$(date +%s%N)" -ge "$deadline" ]; then
            diag "$name not ready after ${timeout}s; its log:"; diag_file "$T_TMP/$name.log"
            return 1
        fi
        sleep 0.05
    done
    return 0
}

daemon_pid() { echo "${T_DAEMON_PID[$1]:-}"; }

# stop_daemon NAME [SIGNAL] [TIMEOUT_S]: signal it (TERM by default), wait
# for it to exit and return its exit status (124 if it did not exit in time,
# after which it is killed).
stop_daemon() {
    local name=$1 sig=${2:-TERM} timeout=${3:-20}
    local pid=${T_DAEMON_PID[$name]:-}
    [ -n "$pid" ] || return 127
    kill -"$sig" "$pid" 2>/dev/null
    local deadline=$(( $(date +%s%N) + timeout * 1000000000 ))
    while kill -0 "$pid" 2>/dev/null; do
        # a zombie is exited: wait reaps it below
        [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ] && break
        if [ "$(date +%s%N)" -ge "$deadline" ]; then
            kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; return 124
        fi
        sleep 0.05
    done
    wait "$pid" 2>/dev/null   # (bash would report a killed job on stderr)
}

# ---------------------------------------------------------------- etcd

ETCD_SCHEME=${ETCD_SCHEME:-http}
ETCD_N=0
ETCD_ENDPOINTS=
ETCD_CLIENT_URL=()
ETCD_PEER_URL=()
ETCD_CLUSTER=
ETCD_TOKEN=
if ! declare -p ETCD_EXTRA_ARGS >/dev/null 2>&1; then ETCD_EXTRA_ARGS=(); fi
ETCDCTL_ARGS=()

# etcd_start N: start an N-member cluster (N = 1 or 3) and wait until every
# member is healthy.  Timing is tuned for tests: 50 ms heartbeats, 500 ms
# election timeout.  The data lives in $T_TMP/etcd<i>.
etcd_start() {
    local n=$1 i
    ETCD_N=$n
    ETCD_TOKEN="gpupool-test-$$-$RANDOM"
    ETCD_CLUSTER=
    for i in $(seq 0 $((n - 1))); do
        local cp pp
        alloc_port cp; alloc_port pp
        ETCD_CLIENT_URL[$i]="$ETCD_SCHEME://127.0.0.1:$cp"
        ETCD_PEER_URL[$i]="http://127.0.0.1:$pp"
        ETCD_CLUSTER+="${ETCD_CLUSTER:+,}m$i=${ETCD_PEER_URL[$i]}"
    done
    ETCD_ENDPOINTS=$(IFS=,; echo "${ETCD_CLIENT_URL[*]}")
    export ETCD_ENDPOINTS
    for i in $(seq 0 $((n - 1))); do
        etcd_member_start "$i" || return 1
    done
    local ep
    for ep in "${ETCD_CLIENT_URL[@]}"; do
        if ! wait_for 30 etcdctl_ --endpoints "$ep" endpoint health; then
            diag "etcd member $ep not healthy"; return 1
        fi
    done
    return 0
}

# etcd_member_start I: (re)start member I with its own data directory.
etcd_member_start() {
    local i=$1
    local state=new
    [ -d "$T_TMP/etcd$i/member" ] && state=existing
    etcd --name "m$i" --data-dir "$T_TMP/etcd$i" \
        --listen-client-urls "${ETCD_CLIENT_URL[$i]}" \
        --advertise-client-urls "${ETCD_CLIENT_URL[$i]}" \
        --listen-peer-urls "${ETCD_PEER_URL[$i]}" \
        --initial-advertise-peer-urls "${ETCD_PEER_URL[$i]}" \
        --initial-cluster "$ETCD_CLUSTER" --initial-cluster-state "$state" \
        --initial-cluster-token "$ETCD_TOKEN" \
        --heartbeat-interval 50 --election-timeout 500 \
        --log-level warn --logger zap \
        "${ETCD_EXTRA_ARGS[@]}" >>"$T_TMP/etcd$i.log" 2>&1 &
    local pid=$!
    track_pid "$pid"
    T_DAEMON_PID[etcd$i]=$pid
    return 0
}

# etcd_member_kill I [SIGNAL]: stop member I (KILL by default) and wait.
etcd_member_kill() {
    local pid=${T_DAEMON_PID[etcd$1]:-}
    [ -n "$pid" ] || return 1
    kill -"${2:-KILL}" "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

etcd_stop() {
    local i
    for i in $(seq 0 $((ETCD_N - 1))); do etcd_member_kill "$i" TERM; done
}

# etcdctl_ ARGS...: etcdctl (v3 API) against the test cluster.
etcdctl_() {
    ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" --dial-timeout 2s \
        --command-timeout 5s "${ETCDCTL_ARGS[@]}" "$@"
}

# etcd_fill PREFIX: write 1 MB values under PREFIX until etcd refuses one
# (its NOSPACE alarm, with a small --quota-backend-bytes) or 64 are stored.
etcd_fill() {
    local i
    head -c 1000000 /dev/zero | tr '\0' x >"$T_TMP/etcd-fill.blob"
    for i in $(seq 1 64); do
        etcdctl_ put "$1$i" <"$T_TMP/etcd-fill.blob" >/dev/null 2>&1 || break
    done
}

# etcd_recover_nospace PREFIX: etcd's documented recovery from a full store:
# delete what filled it, compact, defragment, disarm the alarm.
etcd_recover_nospace() {
    local rev
    etcdctl_ del "$1" --prefix >/dev/null
    rev=$(etcdctl_ get / -w json | grep -o '"revision":[0-9]*' | head -1 | cut -d: -f2)
    etcdctl_ compact "$rev" >/dev/null 2>&1
    etcdctl_ defrag >/dev/null
    etcdctl_ alarm disarm >/dev/null
}

# ---------------------------------------------------------------- a pool

# pool_token: an API token in $T_TMP/tokens, exported as GPUPOOL_TOKEN for
# the CLI.
pool_token() {
    GPUPOOL_TOKEN=$(printf 'test-token-%s-%s' "$$" "$RANDOM$RANDOM")
    echo "$GPUPOOL_TOKEN" > "$T_TMP/tokens"
    export GPUPOOL_TOKEN
}

declare -A POOL_API=()

# pool_coordinator NAME REGION [ARGS...]: start gpupool-coordinator with id
# NAME on free ports; its API URL is ${POOL_API[NAME]}.  Lease 2 s, so that
# failover tests are quick.
pool_coordinator() {
    local name=$1 region=$2 port
    shift 2
    [ -f "$T_TMP/tokens" ] || pool_token
    alloc_port port
    POOL_API[$name]="http://127.0.0.1:$port"
    start_daemon "$name" 'gpupool-coordinator ready' 30 -- "$GP_BUILD/gpupool-coordinator" \
        --id "$name" --region "$region" --etcd-endpoints "$ETCD_ENDPOINTS" \
        --api-listen "127.0.0.1:$port" --bid-listen tcp://127.0.0.1:0 \
        --api-tokens "$T_TMP/tokens" --lease-ttl 2s "$@"
}

# relay_start: a relay ("relay", tests/coordinator/tcpproxy -f) to etcd's
# first member that holds every byte back by a delay, 0 ms at first; a
# daemon started with ETCD_ENDPOINTS=$RELAY_ENDPOINTS reaches etcd through
# it.  relay_delay MS sets the delay (the relay reads it again on SIGHUP).
relay_start() {
    local port
    echo 0 >"$T_TMP/relay-delay-ms"
    alloc_port port
    start_daemon relay 'tcpproxy ready' 10 -- "$GP_BUILD/tests/coordinator/tcpproxy" \
        -f "$T_TMP/relay-delay-ms" "$port" "${ETCD_CLIENT_URL[0]##*:}" || return 1
    RELAY_ENDPOINTS=http://127.0.0.1:$port
}
relay_delay() {
    echo "$1" >"$T_TMP/relay-delay-ms" && kill -HUP "$(daemon_pid relay)"
}
# relay_coordinator NAME REGION [ARGS...]: pool_coordinator, reaching etcd
# through the relay instead of directly.
relay_coordinator() { ETCD_ENDPOINTS=$RELAY_ENDPOINTS pool_coordinator "$@"; }

# pool_sees_nodes COORD AGENT N: COORD's GET /v1/nodes lists N nodes of the
# simulated agent AGENT (named AGENT-0000...).
pool_sees_nodes() {
    [ "$(curl -s -m 10 -H "Authorization: Bearer $GPUPOOL_TOKEN" "${POOL_API[$1]}/v1/nodes" |
        grep -o "\"$2-[0-9]*\"" | sort -u | wc -l)" = "$3" ]
}

# pool_agent NAME REGION N DEVICES [ARGS...]: a simulated agent of N nodes
# named NAME-0000..., devices as --simulate-devices (e.g. 2xA10:24576).
pool_agent() {
    local name=$1 region=$2 n=$3 devices=$4
    shift 4
    start_daemon "$name" 'gpupool-agent ready' 30 -- "$GP_BUILD/gpupool-agent" \
        --name "$name" --region "$region" --simulate "$n" --simulate-devices "$devices" \
        --etcd-endpoints "$ETCD_ENDPOINTS" --state-dir "$T_TMP/$name.state" \
        --metrics-listen 127.0.0.1:0 --shim "" --lease-ttl 3s --heartbeat 500ms \
        --stop-grace 2s "$@"
}

# gpupool_ NAME ARGS...: the CLI against coordinator NAME.
gpupool_() {
    local name=$1
    shift
    "$GP_BUILD/gpupool" --api "${POOL_API[$name]}" "$@"
}

# pool_check ARGS...: check the pool's invariants in etcd (pool_check.c).
pool_check() {
    "$GP_BUILD/tests/coordinator/pool_check" --etcd-endpoints "$ETCD_ENDPOINTS" "$@"
}

# pool_submit NAME FILE PREFIX FROM TO [SPEC]: submit jobs PREFIX-FROM..TO in
# arrays of 20 to coordinator NAME; the ids the API acknowledged (201/200)
# are appended to FILE.  SPEC is the JSON fields of each job besides its id.
pool_submit() {
    local name=$1 file=$2 prefix=$3 from=$4 to=$5
    local spec=${6:-'"devices": 1, "mem_mib": 6144, "compute_percent": 25'}
    local i body
    for ((i = from; i <= to; i += 20)); do
        body="["
        local k
        for ((k = i; k < i + 20 && k <= to; k++)); do
            body+="{\"id\": \"$prefix-$k\", $spec},"
        done
        body="${body%,}]"
        curl -s -m 10 -H "Authorization: Bearer $GPUPOOL_TOKEN" --data-binary "$body" \
            "${POOL_API[$name]}/v1/jobs" 2>/dev/null |
            grep -o '"id":"[^"]*","status":20[01]' | sed 's/"id":"\([^"]*\)".*/\1/' >>"$file"
    done
}

# pool_leader REGION: the id of the region's leader, from etcd.
pool_leader() { etcdctl_ get "/gpupool/leader/$1" --print-value-only 2>/dev/null; }
# pool_leader_term REGION: the leader key's create revision, which names one
# term of leadership (it changes when the lease is lost or handed over).
pool_leader_term() { etcdctl_ get "/gpupool/leader/$1" -w json | grep -o '"create_revision":[0-9]*'; }

# pool_metric NAME SERIES: one series' value on coordinator NAME's /metrics
# (SERIES as printed, labels included); empty when it is not there.
pool_metric() { curl -s "${POOL_API[$1]}/metrics" | awk -v m="$2" '$1 == m {print $2}'; }

# job_state NAME ID / job_field NAME ID FIELD: from the CLI's JSON (as the
# first occurrence, i.e. the record's own field, not its history's).
job_field() {
    gpupool_ "$1" -o json get "$2" 2>/dev/null | tr -d '\n' |
        grep -o "\"$3\": *\"[^\"]*\"" | head -1 | sed 's/^[^:]*: *"//; s/"$//'
}
job_state() { job_field "$1" "$2" state; }
# wait_state NAME ID STATE TIMEOUT_S
wait_state() {
    local i
    for i in $(seq 1 $(( $4 * 10 ))); do
        [ "$(job_state "$1" "$2")" = "$3" ] && return 0
        sleep 0.1
    done
    return 1
}

# launch_sums FILE LO-HI LO-HI LO-HI: the sums of three ranges of the
# per-100-ms launch counts that `shimtest launchlog` printed ("buckets=...").
launch_sums() {
    local b r out=""
    b=$(sed -n 's/^buckets=//p' "$1")
    shift
    for r in "$@"; do
        out+="$(echo "$b" | tr ',' '\n' | awk -v lo="${r%-*}" -v hi="${r#*-}" \
            'NR - 1 >= lo && NR - 1 <= hi { s += $1 } END { print s + 0 }') "
    done
    echo "${out% }"
}

# suspend_ranges T0 T_SUSPEND T_HELD T_RESUME T_FREE LAST: launch_sums's three
# ranges for a job suspended and resumed while `shimtest launchlog` ran from
# T0 (ns, the shim's clock): the buckets before the suspend command was sent
# (T_SUSPEND); those after the one in which the agent was seen to hold the
# launches (T_HELD: the launch in flight then completes) and before the
# resume command (T_RESUME); those after the resume was seen (T_FREE), up to
# bucket LAST.  A suspension takes hold when the agent's watch delivers it,
# not when the command returns: on a loaded machine, later.
suspend_ranges() {
    local t0=$1 b=100000000
    echo "1-$(( ($2 - t0) / b - 1 )) $(( ($3 - t0) / b + 2 ))-$(( ($4 - t0) / b - 1 )) $(( ($5 - t0) / b + 1 ))-$6"
}
