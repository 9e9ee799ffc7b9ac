#!/usr/bin/env bash
# Jobs in containers, against real podman: a real agent on fake GPUs runs
# jobs that name an image in containers named after the job and its
# allocation, with the shim and the slice inside.  A sliced job hits its
# memory limit through the shim; two containers share one device within
# their slices; suspend and resume hold and release a container's launches;
# cancel and preempt stop containers; a restarted agent adopts a running
# container, also one whose supervisor is gone (found by name); a job with
# a user of its own can use its slice; an image missing on the node is
# pulled from an allowed registry (a registry of the test's own); a missing
# or disallowed image is a job failure that says why.
#
# The image is built here (no registry is reachable): the test programs,
# the libraries ldd lists for them, the fake CUDA driver and NVML, imported
# with `podman import`.
. "$(dirname "$0")/../lib.sh"

skip_all() { echo "1..0 # SKIP $*"; exit 0; }
command -v podman >/dev/null 2>&1 || skip_all "podman is not installed (make deps installs it)"
[ "${GP_SAN:-0}" = 1 ] &&
    skip_all "the ASan-built shim needs libasan preloaded before it, which a container's LD_PRELOAD does not carry"

SHIMTEST=$GP_BUILD/tests/shim/shimtest
FAKELIB=$GP_BUILD/tests/fakecuda
TAG=ct$$
IMAGE=localhost/gpupool-test-$TAG:1
# Limits within this machine's, stated to the runtime (its defaults exceed
# them; runc is refused an nproc as high as the machine's own), runc and
# cgroupfs (crun refuses the hybrid cgroup layout).
ULIMITS="nofile=$(ulimit -Sn):$(ulimit -Hn),nproc=4096:4096"
PODMAN=(podman --runtime runc --cgroup-manager cgroupfs)

REMOTE=
c_cleanup() {
    local ids
    ids=$(podman ps -a --filter "name=^gpupool-$TAG-" -q 2>/dev/null)
    [ -n "$ids" ] && "${PODMAN[@]}" rm -f $ids >/dev/null 2>&1
    podman rmi -f "$IMAGE" ${REMOTE:+"$REMOTE"} >/dev/null 2>&1
}
trap 'rc=$?; c_cleanup; (exit $rc); t_cleanup' EXIT

# ---------------------------------------------------------------- the image
root=$T_TMP/rootfs
mkdir -p "$root/bin" "$root/usr/lib/fakecuda" "$root/tmp"
cp "$SHIMTEST" "$root/bin/"
cp "$FAKELIB/libcuda.so.1" "$FAKELIB/libnvidia-ml.so.1" "$root/usr/lib/fakecuda/"
for f in "$SHIMTEST" "$GP_BUILD/libgpupool-shim.so" "$FAKELIB/libcuda.so.1"; do
    for l in $(ldd "$f" | grep -o '/[^ ]*'); do
        mkdir -p "$root$(dirname "$l")"
        cp -L "$l" "$root$l"
    done
done
tar -C "$root" -cf "$T_TMP/rootfs.tar" . || bail_out "cannot pack the image"
out=$(podman import --quiet "$T_TMP/rootfs.tar" "$IMAGE" 2>&1) ||
    skip_all "podman cannot import an image here: $out"
out=$("${PODMAN[@]}" run --rm --ulimit "${ULIMITS%%,*}" --ulimit "${ULIMITS#*,}" \
      -e LD_LIBRARY_PATH=/usr/lib/fakecuda "$IMAGE" /bin/shimtest now 2>&1) ||
    skip_all "podman cannot run a container here: $(echo "$out" | tail -1)"

# ---------------------------------------------------------------- the pool
mkdir -p "$T_TMP/fake"
export FAKECUDA_STATE=$T_TMP/fake/gpus FAKECUDA_DEVICES=1 FAKECUDA_MEM_MIB=16384 FAKECUDA_MODEL=A10
now_ns() { LD_LIBRARY_PATH=$FAKELIB "$SHIMTEST" now; }
sleep_until() { local d=$(( $1 - $(now_ns) )); [ "$d" -gt 0 ] && sleep "$(awk -v d="$d" 'BEGIN { print d / 1e9 }')"; }
devmem() { LD_LIBRARY_PATH=$FAKELIB "$SHIMTEST" devmem 0; }

# A registry of our own (Debian's docker-registry), when it is installed:
# an image the node does not have is pulled from an allowed registry.
REGISTRY=
if command -v docker-registry >/dev/null 2>&1; then
    alloc_port rport
    mkdir -p "$T_TMP/registry"
    cat > "$T_TMP/registry.yml" <<EOY
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $T_TMP/registry
http:
  addr: 127.0.0.1:$rport
EOY
    docker-registry serve "$T_TMP/registry.yml" > "$T_TMP/registry.log" 2>&1 &
    track_pid $!
    if wait_for 20 curl -sf "http://127.0.0.1:$rport/v2/"; then
        REGISTRY=127.0.0.1:$rport
        REMOTE=$REGISTRY/gpupool/test-$TAG:1
        # plain HTTP: this registry is insecure for podman (the agent's
        # environment carries the configuration to its launches)
        printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$REGISTRY" > "$T_TMP/registries.conf"
        export CONTAINERS_REGISTRIES_CONF=$T_TMP/registries.conf
        podman push --quiet --tls-verify=false "$IMAGE" "$REMOTE" >/dev/null 2>&1 ||
            bail_out "cannot push the test image to the test registry"
        podman rmi "$REMOTE" >/dev/null 2>&1
    fi
fi

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
AGENT_ARGS=(--name gpu1 --region r1 --nvml "$FAKELIB/libnvidia-ml.so.1"
    --shim "$GP_BUILD/libgpupool-shim.so" --etcd-endpoints "$ETCD_ENDPOINTS"
    --state-dir "$T_TMP/state" --metrics-listen 127.0.0.1:0 --lease-ttl 3s --heartbeat 500ms
    --stop-grace 2s --usage-interval 300ms
    --container-runtime podman --container-oci-runtime runc --container-cgroup-manager cgroupfs
    --container-ulimits "$ULIMITS" --container-devices none
    --container-registries "localhost${REGISTRY:+,$REGISTRY}"
    --container-mount-paths "$T_TMP/fake" --job-user 1000:1000)
start_daemon agent 'gpupool-agent ready' 30 -- "$GP_BUILD/gpupool-agent" "${AGENT_ARGS[@]}" ||
    bail_out "agent did not start"

# A job of the image: submit ID MEM_MIB COMMAND-JSON [MORE-FIELDS]
submit() {
    cat > "$T_TMP/$1.json" <<EOJ
{"id": "$TAG-$1", "devices": 1, "mem_mib": $2, "image": "$IMAGE",
 "mounts": ["$T_TMP/fake:$T_TMP/fake"],
 "env": {"LD_LIBRARY_PATH": "/usr/lib/fakecuda", "FAKECUDA_STATE": "$FAKECUDA_STATE",
         "FAKECUDA_DEVICES": "1", "FAKECUDA_MEM_MIB": "16384"},
 "command": $3 ${4:+, $4}}
EOJ
    gpupool_ c1 submit "$T_TMP/$1.json" >/dev/null
}
state() { job_state c1 "$TAG-$1"; }
folder() { ls -d "$T_TMP"/state/jobs/"$TAG-$1".r* 2>/dev/null | head -1; }
done_folder() { ls -d "$T_TMP"/state/done/"$TAG-$1".r* 2>/dev/null | head -1; }
running_container() { podman ps --filter "name=^gpupool-$TAG-$1-r[0-9]+\$" --format '{{.Names}}'; }
has_container() { [ -n "$(running_container "$1")" ]; }
no_container() { [ -z "$(running_container "$1")" ]; }

# Jobs run as the agent's job-user, 1000:1000 (--user): the fake GPU's
# files are theirs to use.
chmod -R a+rwX "$T_TMP/fake"

# ---------------------------------------------------------------- the limit
submit paths 1024 '["shimtest", "paths"]'
submit over 1024 '["shimtest", "hold", "2048", "1"]'
wait_state c1 "$TAG-paths" succeeded 60; ok $? "every allocation path holds the slice's limit in a container (shimtest paths)"
f=$(done_folder paths)
is "$(grep -c '^not ok' "$f/stdout")" 0 "no check of it failed"
like "$(grep -c '^ok' "$f/stdout")" '^[1-9][0-9]+$' "its checks ran in the container ($(grep -c '^ok' "$f/stdout"))"
like "$(cat "$f/container")" "^gpupool-$TAG-paths-r[0-9]+\$" "the container is named after the job and its allocation"
is "$(tr -d '\n' < "$f/exit")" "exit 0" "its exit status is recorded"
wait_state c1 "$TAG-over" failed 60; ok $? "a job that allocates beyond its slice fails"
f=$(done_folder over)
like "$(cat "$f/stderr")" 'cuMemAlloc_v2.*failed: 2' "refused with CUDA_ERROR_OUT_OF_MEMORY by the shim in the container"
peak=$(devmem | sed -n 's/.*peak=//p')
[ -n "$peak" ] && [ "$peak" -le 1073741824 ]; ok $? "the device never held more than the 1 GiB slice ($(devmem))"
env_file=$f/env
like "$(cat "$env_file")" "LD_PRELOAD=/gpupool/libgpupool-shim.so" "the shim is preloaded from its read-only mount"
like "$(grep -c '^GP_SLICE_' "$env_file")" '^[5-9]$' "every GP_SLICE_ variable is set ($(grep -o '^GP_SLICE_[A-Z_]*' "$env_file" | tr '\n' ' '))"

# A job that runs as a user of its own, in a working directory.
chmod -R a+rwX "$T_TMP/fake"
submit asuser 1024 '["shimtest", "hold", "256", "0.1"]' '"user": "1000:1000", "workdir": "/tmp"'
wait_state c1 "$TAG-asuser" succeeded 60
ok $? "a container that runs as uid 1000 uses its slice (the agent gave it its region)"
diag_file "$(done_folder asuser)/stderr" 5
submit otheruser 1024 '["true"]' '"user": "1001"'
wait_state c1 "$TAG-otheruser" failed 60
ok $? "a container asking for another uid than its team's account is refused"
like "$(job_field c1 "$TAG-otheruser" reason)" 'user 1001: the jobs of team \(none\) run as 1000:1000 \(uid 1000\)' \
     "saying which account its team runs as"

# ---------------------------------------------------------------- sharing
submit share1 6144 '["shimtest", "hold", "4096", "300"]'
submit share2 6144 '["shimtest", "hold", "4096", "300"]'
wait_for 60 bash -c "grep -q holding $T_TMP/state/jobs/$TAG-share1.r*/stdout && grep -q holding $T_TMP/state/jobs/$TAG-share2.r*/stdout"
ok $? "two containers on one device both hold 4 GiB in their 6 GiB slices"
has_container share1 && has_container share2; ok $? "both containers run"
is "$(podman inspect --format '{{.Config.User}}' "$(running_container share1)" 2>&1)" 1000:1000 \
   "as the team's account (job-user: --user 1000:1000)"
like "$(devmem)" '^used=8589934592 ' "the device holds both (8 GiB)"
usage() { etcdctl_ get /gpupool/usage/r1/gpu1 --print-value-only; }
both_used() { [ "$(usage | grep -o '"mem_used_mib":4096' | wc -l)" = 2 ]; }
wait_for 15 both_used; ok $? "the agent reads each container's usage from its accounting region ($(usage | head -c 300))"

# ---------------------------------------------------------------- adoption
stop_daemon agent; is "$?" 0 "the agent exits 0, the containers run on"
has_container share1 && has_container share2; ok $? "both containers still run"
# share2 loses its supervisor and the runtime's client: only the container is left.
read -r sup pid _ < "$(folder share2)/pid"
kill -KILL "$sup" "$pid"
wait_for 10 bash -c "! kill -0 $sup && ! kill -0 $pid"; ok $? "share2's supervisor and podman client are gone"
has_container share2; ok $? "its container runs on"
start_daemon agent2 'gpupool-agent ready' 30 -- "$GP_BUILD/gpupool-agent" "${AGENT_ARGS[@]}" ||
    bail_out "agent did not restart"
# (adoption ends once the jobs' records are read back, after "ready")
wait_for 30 grep -q "adopted running job=$TAG-share1" "$T_TMP/agent2.log"
st=$?
ok $st "the restarted agent adopts share1"
# (on stderr, which prove shows: the lines that say why)
[ "$st" = 0 ] || {
    diag "agents' lines on share1: $(grep -h "$TAG-share1" "$T_TMP/agent.log" "$T_TMP/agent2.log" | tail -8)" >&2
    diag "share1's folder: $(ls "$T_TMP/state/jobs" "$T_TMP/state/done" 2>&1 | grep share1 | tr '\n' ' ')" >&2
    diag "containers: $(podman ps -a --filter "name=^gpupool-$TAG-share" --format '{{.Names}} {{.Status}}' | tr '\n' ';')" >&2
}
wait_for 30 grep -q "container found by name, adopted job=$TAG-share2" "$T_TMP/agent2.log"
ok $? "and finds share2's container by name"
is "$(state share1)/$(state share2)" running/running "both still run"
is "$(podman ps -a --filter "name=^gpupool-$TAG-share" -q | wc -l)" 2 "no container was started twice"

# ---------------------------------------------------------------- cancel, preempt
gpupool_ c1 cancel "$TAG-share1" >/dev/null; is "$?" 0 "cancel exits 0"
wait_for 20 no_container share1; ok $? "the cancelled job's container stops"
akey=$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep "/$TAG-share2\$")
etcdctl_ get "/gpupool/jobs/$TAG-share2" --print-value-only |
    sed 's/"state":"[a-z]*"/"state":"preempted"/' | etcdctl_ put "/gpupool/jobs/$TAG-share2" >/dev/null
etcdctl_ del "$akey" >/dev/null
wait_for 20 no_container share2; ok $? "the preempted job's container (the adopted-by-name one) stops"
wait_for 20 bash -c "ls $T_TMP/state/done | grep -q '^$TAG-share1\\.' && ls $T_TMP/state/done | grep -q '^$TAG-share2\\.'"
ok $? "the agent has handled both ends"
is "$(state share1)/$(state share2)" cancelled/preempted "the agent leaves the coordinator's records alone"
gone() { [ -z "$(podman ps -a --filter "name=^gpupool-$TAG-share" -q)" ]; }
wait_for 20 gone; ok $? "ended containers are removed"

# ---------------------------------------------------------------- suspend, resume
t0=$(( $(now_ns) + 8000000000 ))   # a container may take seconds to start on a busy host
submit spin 2048 "[\"shimtest\", \"launchlog\", \"$t0\", \"6.0\", \"1000\"]"
wait_state c1 "$TAG-spin" running 30; ok $? "a container that launches kernels runs"
sleep_until $(( t0 + 1000000000 ))
t_suspend=$(now_ns)
gpupool_ c1 suspend "$TAG-spin" >/dev/null; is "$?" 0 "suspend exits 0"
wait_for 15 grep -q "suspended job=$TAG-spin" "$T_TMP/agent2.log"; t_held=$(now_ns)
# resumed 2.5 s from t0, or 1.2 s after the suspension took hold when later
t_resume=$(( t0 + 2500000000 )); [ "$t_resume" -ge $(( t_held + 1200000000 )) ] || t_resume=$(( t_held + 1200000000 ))
sleep_until "$t_resume"
t_resume=$(now_ns)
gpupool_ c1 resume "$TAG-spin" >/dev/null; is "$?" 0 "resume exits 0"
wait_for 15 grep -q "resumed job=$TAG-spin" "$T_TMP/agent2.log"; t_free=$(now_ns)
wait_state c1 "$TAG-spin" succeeded 30; ok $? "the container ends"
f=$(done_folder spin)
ranges=$(suspend_ranges "$t0" "$t_suspend" "$t_held" "$t_resume" "$t_free" 59)
diag "buckets before, during, after: $ranges"
read -r before during after <<<"$(launch_sums "$f/stdout" $ranges)"
diag "launches per 100 ms: $(sed -n 's/^buckets=//p' "$f/stdout")"
[ "$before" -gt 0 ]; ok $? "launches before the suspension ($before)"
is "$during" 0 "no launch while suspended"
[ "$after" -gt 0 ]; ok $? "launches after the resume ($after)"

# ---------------------------------------------------------------- refusals
cat > "$T_TMP/missing.json" <<EOJ
{"id": "$TAG-missing", "devices": 1, "mem_mib": 512, "image": "localhost/gpupool-none-$TAG:1",
 "command": ["shimtest", "now"]}
EOJ
gpupool_ c1 submit "$T_TMP/missing.json" >/dev/null
wait_state c1 "$TAG-missing" failed 30; ok $? "a job whose image is not on the node fails"
like "$(job_field c1 "$TAG-missing" reason)" "image localhost/gpupool-none-$TAG:1 is not on the node" \
    "and says why"
cat > "$T_TMP/foreign.json" <<EOJ
{"id": "$TAG-foreign", "devices": 1, "mem_mib": 512, "image": "registry.example.com/app:1"}
EOJ
gpupool_ c1 submit "$T_TMP/foreign.json" >/dev/null
wait_state c1 "$TAG-foreign" failed 30; ok $? "a job whose image comes from a registry not allowed fails"
like "$(job_field c1 "$TAG-foreign" reason)" "registry registry.example.com is not allowed on this node" \
    "and says why, without a pull"
cat > "$T_TMP/etc.json" <<EOJ
{"id": "$TAG-etc", "devices": 1, "mem_mib": 512, "image": "$IMAGE", "mounts": ["/etc:/host-etc:ro"],
 "command": ["shimtest", "now"]}
EOJ
gpupool_ c1 submit "$T_TMP/etc.json" >/dev/null
wait_state c1 "$TAG-etc" failed 30; ok $? "a job that mounts a host path not allowed fails"
like "$(job_field c1 "$TAG-etc" reason)" "mount /etc: the host path is not allowed" "and says why"

# ---------------------------------------------------------------- pulls
if [ -n "$REGISTRY" ]; then
    podman image exists "$REMOTE"; isnt "$?" 0 "the registry's image is not on the node"
    cat > "$T_TMP/pulled.json" <<EOJ
{"id": "$TAG-pulled", "devices": 1, "mem_mib": 512, "image": "$REMOTE",
 "mounts": ["$T_TMP/fake:$T_TMP/fake"],
 "env": {"LD_LIBRARY_PATH": "/usr/lib/fakecuda", "FAKECUDA_STATE": "$FAKECUDA_STATE"},
 "command": ["shimtest", "hold", "256", "0.1"]}
EOJ
    gpupool_ c1 submit "$T_TMP/pulled.json" >/dev/null
    wait_state c1 "$TAG-pulled" succeeded 60; ok $? "a job whose image is in an allowed registry runs"
    podman image exists "$REMOTE"; ok $? "its image was pulled"
    cat > "$T_TMP/nopull.json" <<EOJ
{"id": "$TAG-nopull", "devices": 1, "mem_mib": 512, "image": "$REGISTRY/gpupool/none-$TAG:1"}
EOJ
    gpupool_ c1 submit "$T_TMP/nopull.json" >/dev/null
    wait_state c1 "$TAG-nopull" failed 60; ok $? "a job whose image its allowed registry does not have fails"
    like "$(job_field c1 "$TAG-nopull" reason)" "is not on the node and its pull failed" "and says why"
else
    skip 5 "docker-registry is not installed: no registry to pull from"
fi

stop_daemon agent2; is "$?" 0 "the agent exits 0"
done_testing
