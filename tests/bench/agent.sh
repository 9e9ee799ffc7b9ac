#!/usr/bin/env bash
# Node agent footprint when idle: resident memory and CPU over a quiet
# interval, for a real agent (one node, devices from the fake NVML) and for
# one agent simulating 1000 nodes of 8 GPUs, both registered and connected
# to a coordinator.
#
#   bench: agent_idle_rss_mib X          target < 10
#   bench: agent_libraries_rss_mib X     reference: a program that only loads and
#                                        initialises the agent's libraries (rss_floor)
#   bench: agent_idle_pss_mib X          shared library pages divided among their users
#   bench: agent_idle_private_mib X      the agent's own memory
#   bench: agent_idle_cpu_pct X          % of one core; target well under 1
#   bench: agent_sim1000_rss_mib X
#   bench: agent_sim1000_cpu_pct X
. "$(dirname "$0")/../lib.sh"

secs=${BENCH_SECONDS:-10}
etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 --log-level warn || bail_out "coordinator did not start"
export FAKECUDA_STATE=$T_TMP/fakegpu FAKECUDA_DEVICES=2 FAKECUDA_MODEL=A10
start_daemon real 'gpupool-agent ready' 20 -- "$GP_BUILD/gpupool-agent" --name gpu1 --region r1 \
    --nvml "$GP_BUILD/tests/fakecuda/libnvidia-ml.so.1" --shim "" --etcd-endpoints "$ETCD_ENDPOINTS" \
    --state-dir "$T_TMP/real" --metrics-listen 127.0.0.1:0 --log-level warn || bail_out "agent did not start"
pool_agent sim r1 1000 8xA100:81920 --log-level warn || bail_out "simulating agent did not start"
sleep 3   # past start-up: registration, first usage records, coordinator discovery

# sample NAME: "RSS_KiB CPU_TICKS"
sample() {
    local pid=$1
    echo "$(awk '/^VmRSS/ {print $2}' /proc/"$pid"/status) $(awk '{print $14 + $15}' /proc/"$pid"/stat)"
}
hz=$(getconf CLK_TCK)
r0=($(sample "$(daemon_pid real)")); s0=($(sample "$(daemon_pid sim)"))
sleep "$secs"
r1=($(sample "$(daemon_pid real)")); s1=($(sample "$(daemon_pid sim)"))
mib() { awk -v k="$1" 'BEGIN { if (k ~ /^[0-9]+$/) printf "%.1f", k / 1024 }'; }
bench_figure agent_idle_rss_mib "$(mib "${r1[0]}")"
floor=$("$GP_BUILD/tests/bench/rss_floor") || bail_out "rss_floor failed"
bench_figure agent_libraries_rss_mib "$(mib "$(echo "$floor" | awk '/^rss_kib/ {print $2}')")"
awk '/^Pss:/ {p = $2} /^Private_(Clean|Dirty):/ {q += $2}
     END { printf "bench: agent_idle_pss_mib %.1f\nbench: agent_idle_private_mib %.1f\n", p / 1024, q / 1024 }' \
    /proc/"$(daemon_pid real)"/smaps_rollup
awk -v a="${r0[1]}" -v b="${r1[1]}" -v hz="$hz" -v s="$secs" \
    'BEGIN { printf "bench: agent_idle_cpu_pct %.2f\n", (b - a) * 100 / hz / s }'
awk -v k="${s1[0]}" 'BEGIN { printf "bench: agent_sim1000_rss_mib %.1f\n", k / 1024 }'
awk -v a="${s0[1]}" -v b="${s1[1]}" -v hz="$hz" -v s="$secs" \
    'BEGIN { printf "bench: agent_sim1000_cpu_pct %.2f\n", (b - a) * 100 / hz / s }'
echo "# idle ${secs}s; CPU ticks of ${hz}/s (resolution $(awk -v hz="$hz" -v s="$secs" 'BEGIN { printf "%.2f", 100 / hz / s }')%)"
echo "# target: a real agent under 10 MiB resident and well under 1% of a core"
echo "# RSS counts the shared libraries' pages: libcurl (Debian's build, with its OpenSSL, GnuTLS,"
echo "# Kerberos and LDAP dependencies), libzmq (libstdc++) and libmicrohttpd, loaded and initialised"
echo "# by a program that does nothing else, are agent_libraries_rss_mib resident; the agent's own"
echo "# share is the difference, and its private memory"
stop_daemon real >/dev/null
stop_daemon sim >/dev/null
