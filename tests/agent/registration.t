#!/usr/bin/env bash
# Registration: records appear on the agent's lease, vanish when the agent
# is killed (the lease expires), come back on restart and after etcd was
# unreachable for longer than the TTL; SIGHUP reloads labels; bad
# configurations are refused before anything starts.
. "$(dirname "$0")/../lib.sh"

AGENT=("$GP_BUILD/gpupool-agent" --name n --region r1 --simulate 2 --simulate-devices 2xT4:15360
       --state-dir "$T_TMP/state" --shim "" --metrics-listen 127.0.0.1:0 --lease-ttl 2s)

out=$("${AGENT[@]}" --lease-ttl 1s -n 2>&1); st=$?
is "$st" 64 "a lease-ttl flag below its minimum is a usage error (EX_USAGE)"
like "$out" "lease-ttl" "naming the option"
echo "lease-ttl = 1s" > "$T_TMP/bad.conf"
out=$("${AGENT[@]}" -c "$T_TMP/bad.conf" -n 2>&1); st=$?
is "$st" 78 "the same in a config file is a configuration error (EX_CONFIG)"
like "$out" "bad.conf:1: lease-ttl" "naming the file, line and option"
out=$("${AGENT[@]}" --simulate-devices 2xT4 -n 2>&1); st=$?
is "$st" 0 "-n checks the option table only"
out=$("${AGENT[@]}" --name 'bad/name' -n 2>&1); st=$?
is "$st" 78 "a bad node name is refused"
out=$("${AGENT[@]}" --bogus 1 2>&1); st=$?
is "$st" 64 "an unknown flag is a usage error"
like "$("${AGENT[@]}" -n)" "configuration OK" "a good configuration checks OK"

etcd_start 1 || bail_out "etcd did not start"
count() { etcdctl_ get /gpupool/nodes/r1/ --prefix --keys-only | grep -c .; }
echo "labels = team=a" > "$T_TMP/agent.conf"
start_daemon agent 'gpupool-agent ready' 20 -- "${AGENT[@]}" -c "$T_TMP/agent.conf" \
    --etcd-endpoints "$ETCD_ENDPOINTS" || bail_out "agent did not start"
is "$(count)" 2 "both virtual nodes are registered"
rec=$(etcdctl_ get /gpupool/nodes/r1/n-0001 --print-value-only)
like "$rec" '"model":"T4"' "the record lists the devices"
like "$rec" '"team":"a"' "and the labels from the config file"
lease=$(etcdctl_ get /gpupool/nodes/r1/n-0001 -w json | grep -o '"lease":[0-9]*' | cut -d: -f2)
isnt "${lease:-0}" 0 "the record is on a lease"

echo "labels = team=b" > "$T_TMP/agent.conf"
kill -HUP "$(daemon_pid agent)"
wait_for 10 bash -c "ETCDCTL_API=3 etcdctl --endpoints $ETCD_ENDPOINTS get /gpupool/nodes/r1/n-0000 --print-value-only | grep -q '\"team\":\"b\"'"
ok $? "SIGHUP reloads the labels into the records"
echo "lease-ttl = nonsense" > "$T_TMP/agent.conf"
kill -HUP "$(daemon_pid agent)"
wait_for 5 grep -q 'reload refused' "$T_TMP/agent.log"
ok $? "a bad configuration on SIGHUP is refused, the old one kept"
kill -0 "$(daemon_pid agent)"; ok $? "the agent keeps running"
echo "labels = team=b" > "$T_TMP/agent.conf"

stop_daemon agent KILL
wait_for 10 bash -c "[ \$(ETCDCTL_API=3 etcdctl --endpoints $ETCD_ENDPOINTS get /gpupool/nodes/r1/ --prefix --keys-only | grep -c .) = 0 ]"
ok $? "kill -9: the records vanish when the lease expires"

start_daemon agent2 'gpupool-agent ready' 20 -- "${AGENT[@]}" -c "$T_TMP/agent.conf" \
    --etcd-endpoints "$ETCD_ENDPOINTS" || bail_out "agent did not restart"
is "$(count)" 2 "a restarted agent registers again"

etcd_member_kill 0
wait_for 20 grep -q 'lease lost' "$T_TMP/agent2.log"
ok $? "with etcd away longer than the TTL, the agent's keep-alive gives the lease up"
etcd_member_start 0
wait_for 20 etcdctl_ endpoint health
wait_for 20 bash -c "[ \$(ETCDCTL_API=3 etcdctl --endpoints $ETCD_ENDPOINTS get /gpupool/nodes/r1/ --prefix --keys-only 2>/dev/null | grep -c .) = 2 ] && [ \$(grep -c 'registered nodes' $T_TMP/agent2.log) -ge 2 ]"
ok $? "after etcd was away longer than the TTL, the agent registers again"
stop_daemon agent2; is "$?" 0 "the agent exits 0 on SIGTERM"
done_testing
