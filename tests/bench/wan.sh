#!/usr/bin/env bash
# WAN benchmark: the pool across three clouds at several distances, side by side.
#
# Three regions r0, r1, r2, each in its own "cloud" with its own etcd member
# (tests/lib_wan.sh): every byte between clouds - raft's peer traffic, and a
# region's requests to another cloud's member - passes a relay that holds it
# back by RTT/2 each way; each region's coordinator and agent (16 simulated
# nodes x 8 A100) name their own member as their local etcd endpoint.  The
# members run etcd's default timing (heartbeat 100 ms, election 1 s), which
# fits round trips up to about 100 ms.  At RTT 0, 30 and 80 ms (WAN_RTTS),
# each on a fresh pool:
#   - a low-rate series first, on the idle pool: WAN_RATE_JOBS (40) jobs at
#     WAN_RATE (5) per second, one per request, submitted in a region whose
#     member is a raft follower ("from a follower's cloud");
#   - the same series submitted in the raft leader's region ("from the
#     leader's cloud"), where a write costs one round trip instead of two;
#   - then a burst: WAN_JOBS jobs (1,500) from 16 clients spread over the
#     three regions' APIs, arrays of WAN_PER_REQ (20) jobs, one request at a
#     time per client.
# Jobs ask for 8 GiB / 10% of one GPU.  The distances take turns, WAN_ROUNDS
# (2) times; each figure is the median of its rounds.
# Figures:
#   bench: wan_placements_per_s_0 / _30 / _80    the bursts
#   bench: wan_throughput_ratio_30 / _80         against RTT 0 (goals 0.8 / 0.6)
#   bench: wan_submit_ack_p50_rtt                (ack p50 at 80 ms - at 0) / 80 ms
#   bench: wan_submit_to_running_p50_rtt         the same for submit -> running
#   bench: wan_submit_ack_p50_rtt_leader         the same two from the leader's cloud
#   bench: wan_submit_to_running_p50_rtt_leader
#   bench: wan_leader_changes                    raft leader changes + regions'
#                                                leadership changes, whole run
# and, as comments, where the time goes in each low-rate series: the API's
# answer (the submission stored), answer -> placed, placed -> running, in
# milliseconds and in round trips, and the follower region's coordinator's
# own means (intake, bid round, commit).  The members' data lives on tmpfs:
# the figures are the software's and the distance's, not the disk's.
. "$(dirname "$0")/../lib.sh"
. "$GP_ROOT/tests/lib_wan.sh"

if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    rmdir "$T_TMP" && T_TMP=$(mktemp -d /dev/shm/gpupool-bench-wan.XXXXXX) || bail_out "mktemp"
fi
jobs=${WAN_JOBS:-1500}
per_req=${WAN_PER_REQ:-20}
rate=${WAN_RATE:-5}
rate_jobs=${WAN_RATE_JOBS:-40}
rtts=${WAN_RTTS:-0 30 80}
LOAD=$GP_BUILD/tests/bench/wan_load

echo "# 3 regions x 16 simulated nodes x 8 A100; jobs of 8 GiB / 10% of one GPU; etcd heartbeat ${WAN_HEARTBEAT_MS} ms, election ${WAN_ELECTION_MS} ms"

# run_load LABEL ARGS...: the load generator; its output as comments; a
# failed run ends the benchmark with no figure.
run_load() {
    local label=$1
    shift
    out=$("$LOAD" "$GPUPOOL_TOKEN" "$@" 2>&1)
    local st=$?
    echo "$out" | sed "s/^/# $label: /"
    [ "$st" -eq 0 ] || bail_out "wan_load $label failed (exit $st)"
}
field() { echo "$out" | awk -v k="$1" '$1 == k {print $2}'; }
# hist NAME SERIES_PREFIX: "sum count" of a coordinator's histogram
hist() { curl -s "${POOL_API[$1]}/metrics" | awk -v s="$2_sum" -v c="$2_count" '$1 == s {a = $2} $1 == c {b = $2} END {print a + 0, b + 0}'; }
mean_ms() { # before after
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); n = y[2] - x[2];
        if (n > 0) printf "%.1f", (y[1] - x[1]) / n * 1000; else printf "-" }'
}
terms() { local i; for i in 0 1 2; do pool_leader_term "r$i"; done | tr '\n' ' '; }

# A fresh pool for each distance, so that no series inherits another's
# jobs or backlog: the low-rate series first (on the idle pool: the
# latencies of the steps themselves), then the burst.
# The distances take turns, WAN_ROUNDS (2) times, and each figure is the
# median of its rounds (of two: their mean): the machine's load varies
# over the run, and every distance then sees the same spread of it.
declare -A PPS ACK RUN PLACED ACKL RUNL
changes=0
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END {
    if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "# load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
for round in $(seq 1 "${WAN_ROUNDS:-2}"); do
for rtt in $rtts; do
    wan_start 3 || bail_out "etcd did not start"
    wan_set_delay $((rtt / 2)) || bail_out "the relays did not take the delay"
    for i in 0 1 2; do
        wan_coordinator "c$i" "$i" --log-level warn --lease-ttl 5s || bail_out "c$i did not start"
        wan_agent "a$i" "$i" 16 8xA100:81920 --log-level warn --lease-ttl 10s --usage-interval 60s ||
            bail_out "a$i did not start"
    done
    for i in 0 1 2; do
        wait_for 60 bash -c "[ -n \"\$(ETCDCTL_API=3 etcdctl --endpoints $ETCD_ENDPOINTS get /gpupool/leader/r$i --print-value-only)\" ]" ||
            bail_out "region r$i has no leader"
        wait_for 60 bash -c "curl -s -H 'Authorization: Bearer $GPUPOOL_TOKEN' ${POOL_API[c$i]}/v1/usage | grep -q '\"nodes\": *48'" ||
            bail_out "c$i does not see the 48 nodes"
    done
    terms_before=$(terms)
    raft_before=$(wan_leader_changes)
    leader=$(wan_raft_leader) || bail_out "no raft leader"
    follower=$(( (leader + 1) % 3 ))
    apis=()
    for i in 0 1 2; do apis+=("${POOL_API[c$i]}=r$i"); done
    echo "# == round $round, RTT $rtt ms between clouds (a fresh pool); raft leader: member $leader (cloud of r$leader)"
    h0_i=$(hist "c$follower" gpupool_coordinator_intake_seconds)
    h0_r=$(hist "c$follower" gpupool_coordinator_round_seconds)
    h0_c=$(hist "c$follower" gpupool_coordinator_commit_seconds)
    run_load "low rate $rtt, from r$follower" "${ETCD_CLIENT_URL[$leader]}" "low$rtt" rate "$rate" "$rate_jobs" \
        "${POOL_API[c$follower]}=r$follower"
    ACK[$rtt]+=" $(field ack_p50_ms)"
    RUN[$rtt]+=" $(field running_p50_ms)"
    PLACED[$rtt]+=" $(field placed_p50_ms)"
    echo "# RTT $rtt: submit -> answered $(field ack_p50_ms) ms, -> placed $(field placed_p50_ms) ms, -> running $(field running_p50_ms) ms (p50s, $rate jobs/s)"
    echo "# RTT $rtt: r$follower's leader, means over the series: intake $(mean_ms "$h0_i" "$(hist "c$follower" gpupool_coordinator_intake_seconds)") ms," \
         "bid round $(mean_ms "$h0_r" "$(hist "c$follower" gpupool_coordinator_round_seconds)") ms," \
         "commit $(mean_ms "$h0_c" "$(hist "c$follower" gpupool_coordinator_commit_seconds)") ms"
    run_load "low rate $rtt, from r$leader" "${ETCD_CLIENT_URL[$leader]}" "lowl$rtt" rate "$rate" "$rate_jobs" \
        "${POOL_API[c$leader]}=r$leader"
    ACKL[$rtt]+=" $(field ack_p50_ms)"
    RUNL[$rtt]+=" $(field running_p50_ms)"
    echo "# RTT $rtt, from the leader's cloud: submit -> answered $(field ack_p50_ms) ms, -> placed $(field placed_p50_ms) ms, -> running $(field running_p50_ms) ms (p50s)"
    run_load "burst $rtt" "${ETCD_CLIENT_URL[$leader]}" "burst$rtt" burst "$jobs" 16 "$per_req" "${apis[@]}"
    PPS[$rtt]+=" $(field placements_per_s)"
    raft=$(( $(wan_leader_changes) - raft_before ))
    terms_after=$(terms)
    regions=0
    for t in $terms_before; do case " $terms_after " in *" $t "*) ;; *) regions=$((regions + 1)) ;; esac; done
    echo "# RTT $rtt: raft leader changes $raft, regions' leadership changes $regions"
    changes=$((changes + raft + regions))
    for i in 0 1 2; do stop_daemon "a$i" >/dev/null; stop_daemon "c$i" >/dev/null; done
    wan_stop
    rm -rf "$T_TMP"/a[0-9].state
done
done

echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
# the medians
declare -A M_PPS M_ACK M_RUN M_PLACED M_ACKL M_RUNL
for rtt in $rtts; do
    M_ACKL[$rtt]=$(echo "${ACKL[$rtt]}" | median)
    M_RUNL[$rtt]=$(echo "${RUNL[$rtt]}" | median)
    M_PPS[$rtt]=$(echo "${PPS[$rtt]}" | median)
    M_ACK[$rtt]=$(echo "${ACK[$rtt]}" | median)
    M_RUN[$rtt]=$(echo "${RUN[$rtt]}" | median)
    M_PLACED[$rtt]=$(echo "${PLACED[$rtt]}" | median)
    bench_figure "wan_placements_per_s_$rtt" "${M_PPS[$rtt]}"
    echo "# RTT $rtt, every round: placements/s${PPS[$rtt]}; answered p50 (ms)${ACK[$rtt]}; placed${PLACED[$rtt]}; running${RUN[$rtt]}"
    [ "$rtt" = 0 ] && continue
    awk -v r="$rtt" -v a="${M_ACK[$rtt]}" -v p="${M_PLACED[$rtt]}" -v u="${M_RUN[$rtt]}" \
        -v a0="${M_ACK[0]}" -v p0="${M_PLACED[0]}" -v u0="${M_RUN[0]}" 'BEGIN {
        printf "# RTT %d, in round trips beyond the loopback figures (medians): answered %.1f, placed %.1f, running %.1f; step by step: answer %.1f, answer -> placed %.1f, placed -> running %.1f\n",
            r, (a - a0) / r, (p - p0) / r, (u - u0) / r, (a - a0) / r, ((p - a) - (p0 - a0)) / r, ((u - p) - (u0 - p0)) / r }'
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b }'; }
for rtt in $rtts; do
    [ "$rtt" = 0 ] && continue
    bench_figure "wan_throughput_ratio_$rtt" "$(ratio "${M_PPS[$rtt]}" "${M_PPS[0]}")"
done
echo "# goals: ratio_30 >= 0.8, ratio_80 >= 0.6"
far=${rtts##* }
bench_figure wan_submit_ack_p50_rtt "$(awk -v a="${M_ACK[$far]}" -v a0="${M_ACK[0]}" -v r="$far" 'BEGIN { printf "%.2f", (a - a0) / r }')"
bench_figure wan_submit_to_running_p50_rtt "$(awk -v a="${M_RUN[$far]}" -v a0="${M_RUN[0]}" -v r="$far" 'BEGIN { printf "%.2f", (a - a0) / r }')"
echo "# at RTT $far ms from a follower's cloud, beyond the loopback figures; goals: ack <= 2.2, running <= 4"
bench_figure wan_submit_ack_p50_rtt_leader "$(awk -v a="${M_ACKL[$far]}" -v a0="${M_ACKL[0]}" -v r="$far" 'BEGIN { printf "%.2f", (a - a0) / r }')"
bench_figure wan_submit_to_running_p50_rtt_leader "$(awk -v a="${M_RUNL[$far]}" -v a0="${M_RUNL[0]}" -v r="$far" 'BEGIN { printf "%.2f", (a - a0) / r }')"
echo "# the same from the leader's cloud (the job's agent there too); goals: ack <= 1.2, running <= 4"
bench_figure wan_leader_changes "$changes"
echo "# raft leader changes + regions' leadership changes over the whole run (want 0)"
