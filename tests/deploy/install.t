#!/usr/bin/env bash
# make install / make uninstall into a staging root (DESTDIR): every program,
# the shim where the agent's configuration will look for it, the systemd
# units and the example configurations naming the installed paths, and the
# installed example configurations pass the installed daemons' --check-config
# once the files they name exist; uninstall removes what install wrote.
. "$(dirname "$0")/../lib.sh"

[ -x "$GP_BUILD/gpupool-agent" ] || { skip 1 "gpupool not built"; done_testing; }
dest=$T_TMP/root
prefix=/opt/gp
mk() { make -s -C "$GP_ROOT" BUILD="$GP_BUILD" DESTDIR="$dest" PREFIX="$prefix" "$@"; }

mk install >"$T_TMP/install.out" 2>&1
is "$?" 0 "make install exits 0" || diag_file "$T_TMP/install.out"
version=$("$GP_BUILD/gpupool" --version | awk '{print $2}')
for p in gpupool gpupool-coordinator gpupool-agent gpupool-sim; do
    is "$("$dest$prefix/bin/$p" --version 2>&1)" "$p $version" "$p is installed and says version $version"
done
is "$(stat -c %a "$dest$prefix/lib/gpupool/libgpupool-shim.so" 2>/dev/null)" 755 \
    "the shim is in \$PREFIX/lib/gpupool"
docs=$dest$prefix/share/doc/gpupool
for u in gpupool-coordinator gpupool-agent; do
    unit=$dest$prefix/lib/systemd/system/$u.service
    like "$(grep '^ExecStart=' "$unit" 2>/dev/null)" "^ExecStart=$prefix/bin/$u " "$u.service starts the installed program"
done
is "$(grep -c '^shim = ' "$docs/agent.conf.example")" 1 "the installed agent example names a shim..."
shim=$(sed -n 's/^shim = //p' "$docs/agent.conf.example")
is "$shim" "$prefix/lib/gpupool/libgpupool-shim.so" "...the installed one"
[ -s "$docs/README.md" ] && [ -s "$docs/openb/openb_pod_list_default.csv" ]
ok $? "README and the openb trace are installed"

# The installed examples are valid configurations: move /etc and the prefix
# under the staging root, make the files they name, and check them.
gp=$dest$prefix/bin/gpupool
etc=$dest/etc/gpupool
mkdir -p "$etc/pki"
bash "$GP_ROOT/deploy/certs.sh" "$etc/pki" >/dev/null 2>&1
"$gp" keys token >"$etc/api-tokens" 2>/dev/null
"$gp" keys curve "$etc/coordinator" >/dev/null 2>&1
"$gp" keys curve "$etc/agent" >/dev/null 2>&1
cp "$etc/agent.pub" "$etc/agents.pub"; cp "$etc/coordinator.pub" "$etc/coordinators.pub"
for d in coordinator agent; do
    sed -e "s|/etc/gpupool/|$etc/|g" -e "s|$prefix/|$dest$prefix/|g" \
        -e "s|/var/lib/gpupool/|$T_TMP/state/|g" "$docs/$d.conf.example" >"$T_TMP/$d.conf"
    out=$("$dest$prefix/bin/gpupool-$d" --check-config -c "$T_TMP/$d.conf" 2>&1)
    is "$?" 0 "the installed $d example passes --check-config" || diag "$out"
done
# ...and the check would catch a bad one.
sed -i 's|^state-dir = |state-dri = |' "$T_TMP/agent.conf"
"$dest$prefix/bin/gpupool-agent" --check-config -c "$T_TMP/agent.conf" >/dev/null 2>&1
is "$?" 78 "...and a misspelt option fails it (78)"

mk uninstall >"$T_TMP/uninstall.out" 2>&1
is "$?" 0 "make uninstall exits 0"
is "$(find "$dest$prefix" -type f | wc -l)" 0 "...and leaves no installed file"
done_testing
