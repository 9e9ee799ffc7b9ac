# tests/lib_wan.sh - a pool spread over three "clouds", for the WAN test and
# benchmark.  Source it after tests/lib.sh.
#
#     wan_start 3                    # etcd: member i in cloud i, peers behind relays
#     wan_set_delay 15               # one way: RTT 30 ms between clouds
#     wan_coordinator c0 0 [ARGS]    # region r0's coordinator, on member 0 first
#     wan_agent a0 0 8 8xA100:81920  # region r0's agent, 8 simulated nodes
#
# Cloud i holds etcd member i and region r<i>'s daemons.  Every byte between
# two clouds passes one relay (tests/coordinator/tcpproxy -f) that holds it
# back by the one-way delay in $WAN_DELAY_FILE:
#   - peer traffic: member i advertises its relay's address as its peer URL,
#     so every raft message to member i and every answer from it crosses
#     member i's peer relay: a round trip between two members costs 2 x delay;
#   - client traffic to another cloud's member: region r<i> reaches member j
#     (j != i) through member j's client relay.  A region's own member is
#     reached directly (same cloud).
# wan_set_delay changes the delay of every relay at once (SIGHUP), so one
# pool is measured at several distances.
#
# What it sets: ETCD_ENDPOINTS and ETCD_CLIENT_URL[i] (direct URLs, for
# etcdctl_, pool_check and measurements), WAN_ENDPOINTS[i] (region r<i>'s
# etcd-endpoints: the other members through their relays, then its own) and
# WAN_LOCAL[i] (its etcd-local-endpoints).  Members run with
# WAN_HEARTBEAT_MS / WAN_ELECTION_MS (default 100 / 1000: etcd's defaults,
# which fit round trips up to about 100 ms).

WAN_DELAY_FILE=
WAN_PEER_PORT=()
WAN_RELAY_PEER=()
WAN_ENDPOINTS=()
WAN_LOCAL=()
WAN_REMOTE_URL=()
: "${WAN_HEARTBEAT_MS:=100}"
: "${WAN_ELECTION_MS:=1000}"

wan_relay() { # NAME LISTEN TARGET
    start_daemon "$1" 'tcpproxy ready' 10 -- "$GP_BUILD/tests/coordinator/tcpproxy" \
        -f "$WAN_DELAY_FILE" "$2" "$3"
}

# wan_start N: N members (3), their relays, healthy.
wan_start() {
    local n=$1 i cluster="" cp pp rp rc
    WAN_DELAY_FILE=$T_TMP/wan-delay-ms
    echo 0 >"$WAN_DELAY_FILE"
    ETCD_N=$n
    ETCD_TOKEN="gpupool-wan-$$-$RANDOM"
    for i in $(seq 0 $((n - 1))); do
        alloc_port cp; alloc_port pp; alloc_port rp; alloc_port rc
        ETCD_CLIENT_URL[$i]="http://127.0.0.1:$cp"
        WAN_PEER_PORT[$i]=$pp
        WAN_RELAY_PEER[$i]=$rp
        ETCD_PEER_URL[$i]="http://127.0.0.1:$rp"
        WAN_REMOTE_URL[$i]="http://127.0.0.1:$rc"
        cluster+="${cluster:+,}m$i=http://127.0.0.1:$rp"
        wan_relay "peer-relay$i" "$rp" "$pp" || return 1
        wan_relay "client-relay$i" "$rc" "$cp" || return 1
    done
    ETCD_CLUSTER=$cluster
    ETCD_ENDPOINTS=$(IFS=,; echo "${ETCD_CLIENT_URL[*]}")
    export ETCD_ENDPOINTS
    local j eps
    for i in $(seq 0 $((n - 1))); do
        # the others first: only etcd-local-endpoints makes the daemons
        # start on (and come back to) their own member
        eps=
        for j in $(seq 0 $((n - 1))); do [ "$j" = "$i" ] || eps+="${WAN_REMOTE_URL[$j]},"; done
        WAN_ENDPOINTS[$i]=$eps${ETCD_CLIENT_URL[$i]}
        WAN_LOCAL[$i]=${ETCD_CLIENT_URL[$i]}
    done
    for i in $(seq 0 $((n - 1))); do wan_member_start "$i"; done
    for i in $(seq 0 $((n - 1))); do
        wait_for 60 etcdctl_ --endpoints "${ETCD_CLIENT_URL[$i]}" endpoint health ||
            { diag "etcd member $i not healthy"; diag_file "$T_TMP/etcd$i.log"; return 1; }
    done
}

# wan_member_start I: (re)start member I, listening for peers behind its relay.
wan_member_start() {
    local i=$1 state=new
    [ -d "$T_TMP/etcd$i/member" ] && state=existing
    etcd --name "m$i" --data-dir "$T_TMP/etcd$i" \
        --listen-client-urls "${ETCD_CLIENT_URL[$i]}" \
        --advertise-client-urls "${ETCD_CLIENT_URL[$i]}" \
        --listen-peer-urls "http://127.0.0.1:${WAN_PEER_PORT[$i]}" \
        --initial-advertise-peer-urls "${ETCD_PEER_URL[$i]}" \
        --initial-cluster "$ETCD_CLUSTER" --initial-cluster-state "$state" \
        --initial-cluster-token "$ETCD_TOKEN" \
        --heartbeat-interval "$WAN_HEARTBEAT_MS" --election-timeout "$WAN_ELECTION_MS" \
        --log-level warn --logger zap >>"$T_TMP/etcd$i.log" 2>&1 &
    local pid=$!
    track_pid "$pid"
    T_DAEMON_PID[etcd$i]=$pid
}

# wan_stop: stop the members and the relays and forget the members' data
# (the daemons are the caller's to stop first); wan_start may follow.
wan_stop() {
    local i
    for i in $(seq 0 $((ETCD_N - 1))); do
        etcd_member_kill "$i" TERM
        stop_daemon "peer-relay$i" >/dev/null
        stop_daemon "client-relay$i" >/dev/null
        rm -rf "$T_TMP/etcd$i"
    done
}

# wan_set_delay MS: every relay delays each direction by MS (RTT 2 x MS).
wan_set_delay() {
    local i name
    echo "$1" >"$WAN_DELAY_FILE"
    for i in $(seq 0 $((ETCD_N - 1))); do
        for name in "peer-relay$i" "client-relay$i"; do
            kill -HUP "$(daemon_pid "$name")"
            wait_for 10 grep -q "^tcpproxy delay_ms=$1\$" "$T_TMP/$name.log" ||
                { diag "$name did not take the delay"; return 1; }
        done
    done
}

# wan_raft_leader: the index of the member that leads raft.
wan_raft_leader() {
    local i
    for i in $(seq 0 $((ETCD_N - 1))); do
        if curl -s -m 5 -X POST -d '{}' "${ETCD_CLIENT_URL[$i]}/v3/maintenance/status" |
            python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d["leader"] == d["header"]["member_id"] else 1)' \
            2>/dev/null; then
            echo "$i"; return 0
        fi
    done
    return 1
}

# wan_leader_changes: raft leader changes seen so far, the most any member saw.
wan_leader_changes() {
    local i v max=0
    for i in $(seq 0 $((ETCD_N - 1))); do
        v=$(curl -s -m 5 "${ETCD_CLIENT_URL[$i]}/metrics" |
            awk '$1 == "etcd_server_leader_changes_seen_total" {print $2}')
        v=${v%%.*}
        [ -n "$v" ] && [ "$v" -gt "$max" ] && max=$v
    done
    echo "$max"
}

# wan_coordinator NAME I [ARGS]: region r<I>'s coordinator, its own member first.
wan_coordinator() {
    local name=$1 i=$2
    shift 2
    pool_coordinator "$name" "r$i" --etcd-endpoints "${WAN_ENDPOINTS[$i]}" \
        --etcd-local-endpoints "${WAN_LOCAL[$i]}" "$@"
}

# wan_agent NAME I NODES DEVICES [ARGS]: region r<I>'s simulated agent.
wan_agent() {
    local name=$1 i=$2 nodes=$3 devices=$4
    shift 4
    pool_agent "$name" "r$i" "$nodes" "$devices" --etcd-endpoints "${WAN_ENDPOINTS[$i]}" \
        --etcd-local-endpoints "${WAN_LOCAL[$i]}" "$@"
}

# wan_etcd_ports NAME: the etcd ports daemon NAME's TCP connections that
# received something in the last two seconds go to (idle ones are left out).
wan_etcd_ports() {
    local pid known
    pid=$(daemon_pid "$1")
    known=" ${ETCD_CLIENT_URL[*]##*:} ${WAN_REMOTE_URL[*]##*:} "
    ss -Htnpi state established 2>/dev/null |
        awk -v pid="pid=$pid," -v known="$known" '
            /^[^ \t]/ { peer = ""; if (index($0, pid)) { peer = $4; sub(/.*:/, "", peer) } next }
            peer != "" && index(known, " " peer " ") && match($0, /lastrcv:[0-9]+/) {
                if (substr($0, RSTART + 8, RLENGTH - 8) + 0 < 2000) print peer }' |
        sort -u | tr '\n' ' '
}
