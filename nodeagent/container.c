#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#include "banned.h"


/* What differs between the runtimes' CLIs.  Everything else (run's flags,
 * stop --time, inspect --format, wait, rm -f, pull, --env-file, --pull
 * never, CDI names in --device) is common to both. */
typedef struct {
    const char *name;
    int runtime_is_global;    /* --runtime R before the command (podman) or a run flag (docker) */
    int has_cgroup_manager;   /* --cgroup-manager M (podman's global flag; docker: daemon config) */
    const char *exists;       /* how the launch asks whether an image is on the node */
} s_runtime_t;

static const s_runtime_t s_runtimes[] = {
    { "podman", 1, 1, "exists" },    /* podman image exists IMG */
    { "docker", 0, 0, "inspect" },   /* docker image inspect IMG */
};

struct gp_container {
    const s_runtime_t *rt;
    char *program, *oci_runtime, *cgroup_manager, *ulimits, *network, *registries, *mount_paths,
        *devices, *shim;
};

/* The launch: the image on the node, pulled when missing (its registry was
 * checked against the allow-list before), else the reason and status 125. */
static const char s_launch_script[] =
    "p=$1 how=$2 img=$3 why=$4 pull=$5; shift 5\n"
    "if [ \"$how\" = exists ]; then \"$p\" image exists \"$img\"\n"
    "else \"$p\" image inspect \"$img\" >/dev/null 2>&1; fi\n"
    "if [ $? -ne 0 ]; then\n"
    "  if [ \"$pull\" != 1 ]; then\n"
    "    echo \"image $img is not on the node (localhost images are never pulled)\" >\"$why\"\n"
    "    exit 125\n"
    "  fi\n"
    "  \"$p\" pull \"$img\" >&2 ||\n"
    "    { echo \"image $img is not on the node and its pull failed\" >\"$why\"; exit 125; }\n"
    "fi\n"
    "exec \"$@\"\n";

void gp_container_name(char *buf, size_t size, const char *job, long long rev)
{
    snprintf(buf, size, "gpupool-%s-r%lld", job, rev);
}

void gp_container_destroy(gp_container_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    gp_container_t *c = *self_p;
    free(c->program);
    free(c->oci_runtime);
    free(c->cgroup_manager);
    free(c->ulimits);
    free(c->network);
    free(c->registries);
    free(c->mount_paths);
    free(c->devices);
    free(c->shim);
    free(c);
    *self_p = NULL;
}

static char *s_dup(const char *s) { return strdup(s ? s : ""); }

/* Each comma-separated item of list, in turn: fn(item, len, arg); stops at
 * the first non-zero return and returns it. */
static int s_each(const char *list, int (*fn)(const char *, size_t, void *), void *arg)
{
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > 0) {
            int r = fn(p, n, arg);
            if (r)
                return r;
        }
        p += n + (e != NULL);
    }
    return 0;
}

/* "name=soft:hard" or "name=value", name in lower-case letters. */
static int s_bad_ulimit(const char *s, size_t n, void *arg)
{
    (void)arg;
    const char *eq = memchr(s, '=', n);
    if (eq == NULL || eq == s)
        return 1;
    for (const char *p = s; p < eq; p++)
        if (*p < 'a' || *p > 'z')
            return 1;
    for (const char *p = eq + 1; p < s + n; p++)
        if (!((*p >= '0' && *p <= '9') || *p == ':' || *p == '-'))
            return 1;
    return eq + 1 == s + n;
}

static int s_bad_path(const char *s, size_t n, void *arg)
{
    (void)arg;
    return s[0] != '/' || memmem(s, n, "/..", 3) != NULL;
}

gp_container_t *gp_container_new(const gp_container_opts_t *o, gp_err_t *err)
{
    const s_runtime_t *rt = NULL;
    for (size_t i = 0; i < GP_ARRAY_LEN(s_runtimes); i++)
        if (o->runtime && strcmp(o->runtime, s_runtimes[i].name) == 0)
            rt = &s_runtimes[i];
    if (rt == NULL) {
        gp_err_set(err, GP_ERR_INVALID, "container-runtime: expected podman or docker, got \"%s\"",
                   o->runtime ? o->runtime : "");
        return NULL;
    }
    if (o->cgroup_manager && *o->cgroup_manager && !rt->has_cgroup_manager) {
        gp_err_set(err, GP_ERR_INVALID,
                   "container-cgroup-manager: %s has no such flag (set it in its daemon's "
                   "configuration)", rt->name);
        return NULL;
    }
    if (s_each(o->ulimits, s_bad_ulimit, NULL)) {
        gp_err_set(err, GP_ERR_INVALID,
                   "container-ulimits: expected NAME=SOFT:HARD[,...], e.g. nofile=1024:1024");
        return NULL;
    }
    if (s_each(o->mount_paths, s_bad_path, NULL)) {
        gp_err_set(err, GP_ERR_INVALID,
                   "container-mount-paths: expected absolute paths without \"..\"");
        return NULL;
    }
    const char *dev = o->devices ? o->devices : "cdi";
    if (strcmp(dev, "cdi") && strcmp(dev, "none") &&
        (dev[0] != '/' || (!strstr(dev, "{index}") && !strstr(dev, "{uuid}")))) {
        gp_err_set(err, GP_ERR_INVALID,
                   "container-devices: expected cdi, none or a device path with {index} or "
                   "{uuid}, got \"%s\"", dev);
        return NULL;
    }
    gp_container_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->rt = rt;
    c->program = s_dup(o->program && *o->program ? o->program : rt->name);
    c->oci_runtime = s_dup(o->oci_runtime);
    c->cgroup_manager = s_dup(o->cgroup_manager);
    c->ulimits = s_dup(o->ulimits);
    c->network = s_dup(o->network);
    c->registries = s_dup(o->registries);
    c->mount_paths = s_dup(o->mount_paths);
    c->devices = s_dup(dev);
    c->shim = s_dup(o->shim);
    if (!c->program || !c->oci_runtime || !c->cgroup_manager || !c->ulimits || !c->network ||
        !c->registries || !c->mount_paths || !c->devices || !c->shim) {
        gp_container_destroy(&c);
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return c;
}

/* ---------------------------------------------------------------- policy */

typedef struct {
    const char *s;
    size_t n;
} s_span_t;

static int s_same(const char *item, size_t n, void *arg)
{
    s_span_t *want = arg;
    return n == want->n && memcmp(item, want->s, n) == 0;
}

/* path is the folder item or under it ("/data" allows "/data/x", not "/database"). */
static int s_under(const char *item, size_t n, void *arg)
{
    s_span_t *path = arg;
    while (n > 1 && item[n - 1] == '/')
        n--;
    if (n == 1 && item[0] == '/')
        return 1;
    return path->n >= n && memcmp(path->s, item, n) == 0 && (path->n == n || path->s[n] == '/');
}

int gp_container_check(const gp_container_t *self, const gp_container_job_t *job, gp_err_t *err)
{
    const char *slash = strchr(job->image, '/');
    s_span_t reg = { job->image, slash ? (size_t)(slash - job->image) : strlen(job->image) };
    if (!s_each(self->registries, s_same, &reg))
        return gp_err_set(err, GP_ERR_AUTH,
                          "image %s: registry %.*s is not allowed on this node "
                          "(container-registries: %s)", job->image, (int)reg.n, reg.s,
                          *self->registries ? self->registries : "none");
    for (char *const *m = job->mounts; m && *m; m++) {
        const char *colon = strchr(*m, ':');
        s_span_t host = { *m, colon ? (size_t)(colon - *m) : strlen(*m) };
        if (!s_each(self->mount_paths, s_under, &host))
            return gp_err_set(err, GP_ERR_AUTH,
                              "mount %.*s: the host path is not allowed on this node "
                              "(container-mount-paths: %s)", (int)host.n, host.s,
                              *self->mount_paths ? self->mount_paths : "none");
    }
    return 0;
}

int gp_container_write_env(const char *path, char *const env[], gp_err_t *err)
{
    for (char *const *e = env; e && *e; e++)
        if (strchr(*e, '\n')) {
            const char *eq = strchr(*e, '=');
            return gp_err_set(err, GP_ERR_INVALID,
                              "env %.*s: a value with a newline cannot be passed to a container",
                              (int)(eq ? eq - *e : (ptrdiff_t)strlen(*e)), *e);
        }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return gp_err_errno(err, "cannot create %s", path);
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        return gp_err_errno(err, "cannot write %s", path);
    }
    for (char *const *e = env; e && *e; e++)
        fprintf(f, "%s\n", *e);
    if (fclose(f) != 0)
        return gp_err_errno(err, "cannot write %s", path);
    return 0;
}

/* ---------------------------------------------------------------- argv */

typedef struct {
    char **v;
    size_t n, cap;
    int failed;
} s_argv_t;

static void s_add(s_argv_t *a, const char *s)
{
    if (a->failed)
        return;
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        char **v = realloc(a->v, cap * sizeof *v);
        if (v == NULL) {
            a->failed = 1;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    if ((a->v[a->n] = strdup(s)) == NULL) {
        a->failed = 1;
        return;
    }
    a->v[++a->n] = NULL;
}

static void s_addf(s_argv_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_addf(s_argv_t *a, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        a->failed = 1;
        return;
    }
    s_add(a, s);
    free(s);
}

static char **s_done(s_argv_t *a)
{
    if (a->failed || a->v == NULL) {
        gp_container_argv_free(a->v);
        return NULL;
    }
    return a->v;
}

void gp_container_argv_free(char **argv)
{
    for (char **p = argv; p && *p; p++)
        free(*p);
    free(argv);
}

/* The program and the runtime's global flags. */
static void s_head(const gp_container_t *self, s_argv_t *a)
{
    s_add(a, self->program);
    if (self->rt->runtime_is_global && *self->oci_runtime) {
        s_add(a, "--runtime");
        s_add(a, self->oci_runtime);
    }
    if (self->rt->has_cgroup_manager && *self->cgroup_manager) {
        s_add(a, "--cgroup-manager");
        s_add(a, self->cgroup_manager);
    }
}

static int s_add_ulimit(const char *s, size_t n, void *arg)
{
    s_argv_t *a = arg;
    s_add(a, "--ulimit");
    s_addf(a, "%.*s", (int)n, s);
    return 0;
}

/* The device template with {index} and {uuid} replaced. */
static void s_add_device(s_argv_t *a, const char *tmpl, int index, const char *uuid)
{
    char out[512];
    size_t o = 0;
    for (const char *p = tmpl; *p && o + 1 < sizeof out;) {
        if (!strncmp(p, "{index}", 7)) {
            o += (size_t)snprintf(out + o, sizeof out - o, "%d", index);
            p += 7;
        } else if (!strncmp(p, "{uuid}", 6)) {
            o += (size_t)snprintf(out + o, sizeof out - o, "%s", uuid);
            p += 6;
        } else {
            out[o++] = *p++;
        }
        if (o >= sizeof out)
            o = sizeof out - 1;
    }
    out[o] = '\0';
    s_add(a, "--device");
    s_add(a, out);
}

static void s_run(const gp_container_t *self, const gp_container_job_t *job, s_argv_t *a)
{
    s_head(self, a);
    s_add(a, "run");
    s_add(a, "--name");
    s_add(a, job->name);
    if (!self->rt->runtime_is_global && *self->oci_runtime) {
        s_add(a, "--runtime");
        s_add(a, self->oci_runtime);
    }
    static const char *const fixed[] = { "--pull", "never", "--pid", "host", "--cap-drop", "all",
                                         "--security-opt", "no-new-privileges", NULL };
    for (int i = 0; fixed[i]; i++)
        s_add(a, fixed[i]);
    s_add(a, "--env-file");
    s_add(a, job->env_file);
    s_each(self->ulimits, s_add_ulimit, a);
    if (*self->network) {
        s_add(a, "--network");
        s_add(a, self->network);
    }
    if (job->user && *job->user) {
        s_add(a, "--user");
        s_add(a, job->user);
    }
    if (job->workdir && *job->workdir) {
        s_add(a, "--workdir");
        s_add(a, job->workdir);
    }
    if (*self->shim) {
        s_add(a, "-v");
        s_addf(a, "%s:" GP_CONTAINER_SHIM ":ro", self->shim);
    }
    for (char *const *f = job->files; f && *f; f++) {
        s_add(a, "-v");
        s_addf(a, "%s:%s", *f, *f);
    }
    for (char *const *m = job->mounts; m && *m; m++) {
        s_add(a, "-v");
        s_add(a, *m);
    }
    for (int i = 0; i < job->ndevices && i < 16; i++) {
        if (!strcmp(self->devices, "cdi"))
            s_add_device(a, "nvidia.com/gpu={uuid}", job->indexes[i], job->uuids[i]);
        else if (strcmp(self->devices, "none"))
            s_add_device(a, self->devices, job->indexes[i], job->uuids[i]);
    }
    s_add(a, job->image);
    for (char *const *p = job->argv; p && *p; p++)
        s_add(a, *p);
}

char **gp_container_run_argv(const gp_container_t *self, const gp_container_job_t *job)
{
    s_argv_t a = { 0 };
    s_run(self, job, &a);
    return s_done(&a);
}

char **gp_container_launch_argv(const gp_container_t *self, const gp_container_job_t *job,
                                const char *reason_path)
{
    s_argv_t a = { 0 };
    s_add(&a, "/bin/sh");
    s_add(&a, "-c");
    s_add(&a, s_launch_script);
    s_add(&a, "gpupool-launch");   /* $0 */
    s_add(&a, self->program);
    s_add(&a, self->rt->exists);
    s_add(&a, job->image);
    s_add(&a, reason_path);
    s_add(&a, strncmp(job->image, "localhost/", 10) ? "1" : "0");
    s_run(self, job, &a);
    return s_done(&a);
}

char **gp_container_stop_argv(const gp_container_t *self, const char *name, int grace_s)
{
    s_argv_t a = { 0 };
    s_head(self, &a);
    s_add(&a, "stop");
    s_add(&a, "--time");
    s_addf(&a, "%d", grace_s);
    s_add(&a, name);
    return s_done(&a);
}

char **gp_container_state_argv(const gp_container_t *self, const char *name)
{
    s_argv_t a = { 0 };
    s_head(self, &a);
    s_add(&a, "inspect");
    s_add(&a, "--format");
    s_add(&a, "{{.State.Status}} {{.State.ExitCode}}");
    s_add(&a, name);
    return s_done(&a);
}

char **gp_container_wait_argv(const gp_container_t *self, const char *name)
{
    s_argv_t a = { 0 };
    s_add(&a, "/bin/sh");
    s_add(&a, "-c");
    s_add(&a, "code=$(\"$@\") || exit 125; exit \"$code\"");
    s_add(&a, "gpupool-wait");
    s_head(self, &a);
    s_add(&a, "wait");
    s_add(&a, name);
    return s_done(&a);
}

char **gp_container_remove_argv(const gp_container_t *self, const char *name)
{
    s_argv_t a = { 0 };
    s_head(self, &a);
    s_add(&a, "rm");
    s_add(&a, "-f");
    s_add(&a, name);
    return s_done(&a);
}
