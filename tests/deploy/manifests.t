#!/usr/bin/env bash
# deploy/kubernetes and deploy/container, checked offline: the manifests parse
# and reference only programs, options, files, ConfigMap keys, Secret items and
# ports that exist (tests/deploy/check_manifests.py), their configurations pass
# the daemons' own --check-config, and the image recipe copies sources that
# exist and installs the run-time package of every library the programs link.
. "$(dirname "$0")/../lib.sh"

[ -x "$GP_BUILD/gpupool-agent" ] || { skip 1 "gpupool not built"; done_testing; }
# Debian's python3 carries python3-yaml (a DEB_PACKAGES entry).
py=python3; [ -x /usr/bin/python3 ] && py=/usr/bin/python3
$py -c 'import yaml' 2>/dev/null || bail_out "python3-yaml is needed (Debian package python3-yaml)"
CHECK=$GP_ROOT/tests/deploy/check_manifests.py

$py "$CHECK" "$GP_ROOT" "$GP_BUILD" >"$T_TMP/check.out" 2>&1
is "$?" 0 "the manifests pass every check" || grep -v '^ok:' "$T_TMP/check.out" | diag "$(cat)"
like "$(grep -c '^ok:' "$T_TMP/check.out")" '^[0-9]{2,}$' "...of which there are dozens"
grep -q "^ok: gpupool-agent's agent.conf passes gpupool-agent --check-config" "$T_TMP/check.out"
ok $? "...including the agent's configuration through its own --check-config"

# The checker fails a manifest with a misspelt option, a wrong image and a
# file outside every mounted volume.
fake=$T_TMP/repo
mkdir -p "$fake/deploy"
cp -r "$GP_ROOT/deploy/kubernetes" "$GP_ROOT/deploy/build.mk" "$fake/deploy/"
sed -i -e 's/^    cluster = /    clustre = /' -e 's|gpupool/gpupool:[0-9.]*|gpupool/gpupool:0.0.1|' \
    -e 's|^    state-dir = /var/lib/gpupool/agent|    state-dir = /srv/agent|' \
    "$fake/deploy/kubernetes/agent.yaml"
$py "$CHECK" "$fake" "$GP_BUILD" >"$T_TMP/bad.out" 2>&1
is "$?" 1 "a broken manifest fails the check"
grep -q "^not ok: gpupool-agent's agent.conf passes gpupool-agent --check-config.*clustre" "$T_TMP/bad.out"
ok $? "...naming the unknown option"
grep -q '^not ok: .*container agent runs registry.example.com/gpupool/gpupool:.* (got .*:0.0.1)' "$T_TMP/bad.out"
ok $? "...the wrong image"
grep -q '^not ok: gpupool-agent agent.conf: /srv/agent lies under a mounted volume' "$T_TMP/bad.out"
ok $? "...and the path no volume holds"

# The image recipe.
cf=$GP_ROOT/deploy/container/Containerfile
n=0; missing=
while read -r src; do
    n=$((n + 1)); [ -e "$GP_ROOT/$src" ] || missing="$missing $src"
done < <(awk '$1 == "COPY" && $2 !~ /^--from/ { for (i = 2; i < NF; i++) print $i }' "$cf")
is "$missing" "" "every source the Containerfile copies exists ($n)"
# The run-time stage is everything after the last FROM.
runtime=$(awk '/^FROM /{s=""} {s=s"\n"$0} END{print s}' "$cf")
need=
for b in gpupool gpupool-coordinator gpupool-agent gpupool-sim libgpupool-shim.so; do
    # (a sanitizer build links its runtime; the image is built without one)
    for lib in $(readelf -d "$GP_BUILD/$b" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | grep -Ev '^lib(a|ub|l|t)san\.'); do
        path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64|x86_64|AArch64/ {print $NF; exit}')
        [ -n "$path" ] || continue
        real=$(readlink -f "$path")
        # dpkg knows a file by the path its package ships (/lib or /usr/lib).
        pkg=$(dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null)
        need="$need ${pkg%%:*}"
    done
done
need=$(printf '%s\n' $need | sort -u | tr '\n' ' ')
like "$need" 'libcurl4 ' "the programs' libraries map to Debian packages ($need)"
absent=
for p in $need; do grep -qw -- "$p" <<<"$runtime" || absent="$absent $p"; done
is "$absent" "" "the image's run-time stage installs each of them"
done_testing
