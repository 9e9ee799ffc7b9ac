#!/usr/bin/env python3
"""Offline check of deploy/kubernetes against the programs and the image recipe.

usage: check_manifests.py REPO BUILD

Prints one TAP-free line per finding, "ok: what" or "not ok: what", and exits
0 when every finding is ok.  What it checks, for every YAML document:
  - it parses, and has apiVersion, kind, metadata.name and the gpupool namespace;
  - every container's image is the one `make image` builds (IMAGE in
    deploy/build.mk, tagged with the programs' --version);
  - a container's command or args start with a program the image installs, and
    every --flag given is an option that program's --help lists;
  - every configuration file a ConfigMap carries passes the program's own
    --check-config once its paths are moved into a scratch root where the files
    they name exist (so an unknown option or a bad value fails here);
  - every file a configuration names lies under a volume mounted in the
    container, and, for a Secret or ConfigMap volume with items, is one of them;
  - every configMap volume names a ConfigMap of the manifests, every subPath a
    key of it; probes and Services name declared ports; selectors match labels.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

REPO, BUILD = sys.argv[1], sys.argv[2]
KDIR = os.path.join(REPO, "deploy", "kubernetes")
findings = []


def check(cond, what):
    findings.append((bool(cond), what))
    return bool(cond)


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def options_of(prog):
    """The long options a program's --help lists."""
    out = run([os.path.join(BUILD, prog), "--help"]).stdout
    return set(re.findall(r"--([a-z][a-z0-9-]*)", out))


def image_name():
    mk = open(os.path.join(REPO, "deploy", "build.mk")).read()
    base = re.search(r"^IMAGE_NAME\s*\?=\s*(\S+)", mk, re.M).group(1)
    version = run([os.path.join(BUILD, "gpupool"), "--version"]).stdout.split()[-1]
    return "%s:%s" % (base, version)


docs = []
for name in sorted(os.listdir(KDIR)):
    if not name.endswith(".yaml"):
        continue
    try:
        with open(os.path.join(KDIR, name)) as f:
            for d in yaml.safe_load_all(f):
                if d is not None:
                    docs.append((name, d))
        check(True, "%s parses" % name)
    except yaml.YAMLError as e:
        check(False, "%s parses: %s" % (name, e))

check(docs, "the manifests hold documents")
configmaps = {}
for name, d in docs:
    meta = d.get("metadata") or {}
    where = "%s: %s %s" % (name, d.get("kind"), meta.get("name"))
    check(d.get("apiVersion") and d.get("kind") and meta.get("name"),
          "%s has apiVersion, kind and metadata.name" % where)
    if d.get("kind") != "Namespace":
        check(meta.get("namespace") == "gpupool", "%s is in namespace gpupool" % where)
    if d.get("kind") == "ConfigMap":
        configmaps[meta["name"]] = d.get("data") or {}

programs = {p for p in ("gpupool", "gpupool-coordinator", "gpupool-agent", "gpupool-sim")}
want_image = image_name()
scratch = tempfile.mkdtemp(prefix="gp-manifests.")


def config_passes(prog, text, cm_name, key, mounts):
    """Run PROG --check-config on TEXT with its absolute paths under a scratch root."""
    root = os.path.join(scratch, cm_name, key)
    paths = re.findall(r"^\s*[a-z-]+\s*=\s*(/\S+)\s*$", text, re.M)
    for p in paths:
        inside = [m for m in mounts if p == m["mountPath"] or p.startswith(m["mountPath"].rstrip("/") + "/")]
        if not check(inside, "%s %s: %s lies under a mounted volume" % (cm_name, key, p)):
            continue
        m = inside[0]
        items = m.get("_items")
        if items is not None and p != m["mountPath"]:
            rel = os.path.relpath(p, m["mountPath"])
            check(rel in items, "%s %s: %s is an item of volume %s" % (cm_name, key, p, m["name"]))
    # Make each named file exist in the scratch root with content its reader accepts.
    moved = text
    for p in paths:
        dst = root + p
        moved = moved.replace(" " + p, " " + dst)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
    for line in moved.splitlines():
        m = re.match(r"^\s*([a-z-]+)\s*=\s*(\S+)\s*$", line)
        if not m or not m.group(2).startswith(root):
            continue
        opt, dst = m.group(1), m.group(2)
        if opt == "state-dir":
            os.makedirs(dst, exist_ok=True)
        elif opt == "curve-key":
            run([os.path.join(BUILD, "gpupool"), "keys", "curve", dst[:-len(".key")]])
        elif opt in ("agent-keys", "coordinator-keys"):
            run([os.path.join(BUILD, "gpupool"), "keys", "curve", dst + ".pair"])
            shutil.copy(dst + ".pair.pub", dst)
        elif opt == "api-tokens":
            with open(dst, "w") as f:
                f.write(run([os.path.join(BUILD, "gpupool"), "keys", "token"]).stdout)
        elif opt == "shim":
            shutil.copy(os.path.join(BUILD, "libgpupool-shim.so"), dst)
        else:
            open(dst, "a").close()
    cfg = os.path.join(root, "config")
    os.makedirs(root, exist_ok=True)
    with open(cfg, "w") as f:
        f.write(moved)
    r = run([os.path.join(BUILD, prog), "--check-config", "-c", cfg])
    check(r.returncode == 0, "%s's %s passes %s --check-config%s"
          % (cm_name, key, prog, "" if r.returncode == 0 else ": " + r.stderr.strip()))


for name, d in docs:
    spec = (d.get("spec") or {})
    tmpl = spec.get("template")
    if not tmpl:
        continue
    where = "%s: %s %s" % (name, d["kind"], d["metadata"]["name"])
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    check(sel and all(labels.get(k) == v for k, v in sel.items()),
          "%s: the selector matches the pod template's labels" % where)
    pod = tmpl.get("spec") or {}
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    for c in (pod.get("initContainers") or []) + (pod.get("containers") or []):
        cw = "%s container %s" % (where, c["name"])
        check(c.get("image") == want_image, "%s runs %s (got %s)" % (cw, want_image, c.get("image")))
        argv = (c.get("command") or []) + (c.get("args") or [])
        prog = argv[0] if argv else ""
        ports = {p["name"] for p in c.get("ports") or []}
        for probe in ("readinessProbe", "livenessProbe"):
            port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
            if port is not None:
                check(port in ports, "%s: %s names declared port %s" % (cw, probe, port))
        mounts = []
        for m in c.get("volumeMounts") or []:
            v = volumes.get(m["name"])
            if not check(v, "%s mounts volume %s, which the pod declares" % (cw, m["name"])):
                continue
            m = dict(m)
            src = v.get("secret") or v.get("configMap")
            m["_items"] = [i["path"] for i in src["items"]] if src and src.get("items") else None
            if v.get("configMap"):
                cm = v["configMap"]["name"]
                if check(cm in configmaps, "%s: ConfigMap %s is in the manifests" % (cw, cm)) \
                        and m.get("subPath"):
                    check(m["subPath"] in configmaps[cm],
                          "%s: subPath %s is a key of ConfigMap %s" % (cw, m["subPath"], cm))
            mounts.append(m)
        if prog in ("sh", "/bin/sh"):
            for p in re.findall(r"/usr/(?:bin|lib)/gpupool\S*", " ".join(argv)):
                check(p.startswith("/usr/bin/") or p.startswith("/usr/lib/gpupool/"),
                      "%s: %s is installed by the image" % (cw, p))
            continue
        if not check(prog in programs, "%s starts a program the image installs (%s)" % (cw, prog)):
            continue
        known = options_of(prog)
        for a in argv[1:]:
            if a.startswith("--"):
                check(a[2:] in known, "%s: %s is an option of %s" % (cw, a, prog))
        for i, a in enumerate(argv):
            if a in ("-c", "--config") and i + 1 < len(argv):
                path = argv[i + 1]
                m = [x for x in mounts if x["mountPath"] == path and x.get("subPath")]
                if check(m, "%s: its configuration %s is a mounted ConfigMap key" % (cw, path)):
                    cm = volumes[m[0]["name"]]["configMap"]["name"]
                    config_passes(prog, configmaps[cm][m[0]["subPath"]], cm, m[0]["subPath"], mounts)

for name, d in docs:
    if d.get("kind") != "Service":
        continue
    sel = d["spec"].get("selector") or {}
    pods = [t for n, t in docs if t.get("kind") in ("Deployment", "DaemonSet")
            and all(((t["spec"]["template"].get("metadata") or {}).get("labels") or {}).get(k) == v
                    for k, v in sel.items())]
    if check(pods, "%s: Service %s selects a workload" % (name, d["metadata"]["name"])):
        ports = {p["name"] for c in pods[0]["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports") or []}
        for p in d["spec"].get("ports") or []:
            check(p.get("targetPort") in ports,
                  "%s: Service port %s targets a declared port" % (name, p.get("name")))

shutil.rmtree(scratch, ignore_errors=True)
for good, what in findings:
    print("%s: %s" % ("ok" if good else "not ok", what))
sys.exit(0 if all(g for g, _ in findings) else 1)
