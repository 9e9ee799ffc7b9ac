/*
 * jobs.c - running what etcd says this node runs.
 *
 * The agent acts on committed allocations, never on messages: it watches
 * P alloc/<node>/ (with --simulate, P alloc/ filtered to its nodes), and
 *
 *   allocation appears   -> fetch the job record, start the job in its
 *                           slice, report "running"
 *   allocation vanishes  -> the coordinator cancelled, preempted or lost
 *                           the job: stop it (SIGTERM, SIGKILL after the
 *                           job's grace_s, else stop-grace), report nothing
 *                           (the coordinator wrote the state)
 *   allocation marked    -> a drain (coordinator/drain.c): stop it the same
 *   "stop"                  way (the mark's grace first), then requeue the
 *                           record and delete the allocation in one fenced
 *                           transaction, as for an end
 *   job ends by itself   -> report succeeded / failed (or requeue it by its
 *                           restart policy) and delete the allocation, in
 *                           one transaction fenced on the allocation
 *
 * Exactly once.  A job is started at most once per committed allocation,
 * identified by the allocation key's create revision: the runner's state
 * folder is named <job>.r<create revision>, and a folder that exists is
 * adopted, never started again.  An agent restarted after kill -9 lists the
 * allocations, finds the folders of running jobs and adopts them; a folder
 * whose allocation is gone is a job cancelled while the agent was away, and
 * is stopped.  (A job re-placed on the same node later is a new allocation,
 * with a new create revision, and starts again, as it should.)
 *
 * Fencing.  Every write of the agent is a transaction that compares the
 * allocation key's create revision with the one the job was started for:
 * a report about an allocation that was since deleted (a cancel racing the
 * job's exit) changes nothing.
 *
 * Batching.  Watch callbacks only record what changed (a new allocation
 * runs the jobs' work at once, not at the next tick); the work fetches job
 * records and writes reports in batches (many requests in flight), so
 * that a burst of thousands of allocations costs a few round trips.
 *
 * Nothing waits for a round trip across clouds.  The records are read
 * serializably, from the member the agent talks to (its cloud's): that
 * member delivered the allocation's watch event, so it has applied the
 * record the commit compared; a read that finds the member behind the
 * allocation's revision (after a failover) is repeated linearizably, as is
 * the read after a report refused.  Both the reads and the reports are
 * background batches (up to S_FETCH_FLIGHTS and S_REPORT_FLIGHTS in the
 * air, a job in one of each at a time) whose outcomes the etcd client's
 * callback applies, so that the loop keeps answering calls for bids: the
 * job starts when its record lands (never before), and its "running" is
 * sent from there at once.
 *
 * Jobs without a command are reservations: they "run" (nothing is
 * started) until their duration_s passes or they are cancelled.  This is
 * also how --simulate nodes run jobs that have no command.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "keys.h"
#include "log.h"
#include "txnbuild.h"
#include "util.h"

#include "banned.h"

#define S_MAX_ENV 32

static agent_node_t *s_node(agent_t *a, const char *name)
{
    return gp_strmap_get(a->node_index, name);
}

/* The job has fetching or reporting to do: the tick's passes look at the
 * jobs of a->busy alone, not at every job the agent runs. */
static void s_busy(agent_t *a, agent_job_t *j)
{
    if (a->busy && gp_strmap_put(a->busy, j->alloc.job, (void *)1) < 0)
        a->busy_lost = 1;   /* out of memory: the next tick looks at every job */
}

/* Whether a job still has work for the tick (else it leaves a->busy). */
static int s_has_work(const agent_job_t *j)
{
    return j->todo || j->ended || j->report_state || j->reporting ||
           (j->pretend && j->pretend_end_ms);
}

static void s_runner_id(const agent_job_t *j, char *buf, size_t size)
{
    snprintf(buf, size, "%s.r%lld", j->alloc.job, (long long)j->alloc_create_rev);
}

static void s_region_path(agent_t *a, agent_job_t *j)
{
    char rid[GP_NAME_LEN + 32];
    s_runner_id(j, rid, sizeof rid);
    snprintf(j->region_path, sizeof j->region_path, "%s/%s.region", a->slice_dir, rid);
}

static void s_job_free(agent_t *a, agent_job_t *j)
{
    agent_rightsize_forget(a, j);
    if (j->region) {
        gp_slice_region_close(&j->region);
        unlink(j->region_path);
    }
    gp_jobrec_clear(&j->rec);
    free(j->rs_run);
    free(j);
}

/* Forget a job: out of the engine, the runner's folder and the map. */
static void s_job_drop(agent_t *a, agent_job_t *j)
{
    char rid[GP_NAME_LEN + 32];
    s_runner_id(j, rid, sizeof rid);
    gp_err_t err;
    if (j->started && !j->pretend && gp_runner_forget(a->runner, rid, &err) < 0)
        gp_log_warn("cannot remove job folder job=%s err=\"%s\"", j->alloc.job, err.msg);
    gp_strmap_del(a->jobs, j->alloc.job);
    if (a->busy)
        gp_strmap_del(a->busy, j->alloc.job);
    s_job_free(a, j);
}

static void s_count_state(agent_t *a, const char *state)
{
    agent_metrics_job_state(&a->m, state);
}

/* How long a stop waits between SIGTERM and SIGKILL: the job's grace_s
 * when its record names one, else the agent's stop-grace. */
static int64_t s_grace_ms(agent_t *a, const agent_job_t *j)
{
    return j->have_rec && j->rec.grace_s >= 0 ? (int64_t)j->rec.grace_s * 1000
                                              : a->cfg.stop_grace_ms;
}

/* A drain asked for the job's stop: stop it; its end is reported as a
 * requeue (s_queue_report). */
static void s_drain_stop(agent_t *a, agent_job_t *j)
{
    j->drained = 1;
    gp_log_info("drain: stopping job=%s node=%s", j->alloc.job, j->alloc.node);
    s_count_state(a, "drained");
    if (!j->started || j->pretend || j->ended) {
        j->started = 1;
        j->ended = 1;   /* nothing runs: report at once */
        s_busy(a, j);
        return;
    }
    char rid[GP_NAME_LEN + 32];
    s_runner_id(j, rid, sizeof rid);
    gp_err_t err;
    int64_t grace = j->alloc.stop_grace_s >= 0 ? (int64_t)j->alloc.stop_grace_s * 1000
                                               : s_grace_ms(a, j);
    if (gp_runner_stop(a->runner, rid, grace, &err) < 0) {
        gp_log_warn("cannot stop job=%s err=\"%s\"", j->alloc.job, err.msg);
        j->ended = 1;
        s_busy(a, j);
    }
}

/* The allocation went away: stop what runs. */
static void s_alloc_gone(agent_t *a, agent_job_t *j)
{
    if (j->reporting) {
        /* A report of it is in flight (its end's own delete, often):
         * its answer is applied first, then this (s_reports_apply). */
        j->alloc_gone = 1;
        return;
    }
    gp_err_t err;
    gp_placement_remove_alloc(a->engine, j->alloc.job, &err);
    if (j->started && !j->pretend && !j->ended) {
        char rid[GP_NAME_LEN + 32];
        s_runner_id(j, rid, sizeof rid);
        j->stopping = 1;
        gp_log_info("allocation removed, stopping job=%s node=%s", j->alloc.job, j->alloc.node);
        if (gp_runner_stop(a->runner, rid, s_grace_ms(a, j), &err) < 0) {
            gp_log_warn("cannot stop job=%s err=\"%s\"", j->alloc.job, err.msg);
            s_job_drop(a, j);
        }
        s_count_state(a, "stopped");
        return;
    }
    s_job_drop(a, j);
}

/* Hold or release the slice's kernel launches, through its accounting
 * region (the shim checks the flag before every launch; memory stays). */
static void s_apply_suspension(agent_t *a, agent_job_t *j)
{
    if (j->region == NULL)
        return;   /* not started yet (applied at start), or nothing to hold */
    if (gp_slice_region_set_suspended(j->region, -1, j->alloc.suspended) < 0) {
        gp_log_warn("cannot change the suspension of job=%s", j->alloc.job);
        return;
    }
    j->suspended = j->alloc.suspended;
    gp_log_info("%s job=%s", j->suspended ? "suspended" : "resumed", j->alloc.job);
    s_count_state(a, j->suspended ? "suspended" : "resumed");
}

/* An allocation key was put (or listed). */
static void s_alloc_put(agent_t *a, const gp_etcd_kv_t *kv)
{
    gp_alloc_t alloc;
    gp_err_t err;
    if (gp_alloc_from_json_str(kv->value, &alloc, &err) < 0) {
        gp_metric_inc(a->m.protocol_errors[AGENT_PROTO_ALLOC_RECORD]);
        gp_log_warn("malformed allocation ignored key=%.*s err=\"%s\"", (int)kv->key_len, kv->key,
                    err.msg);
        return;
    }
    if (s_node(a, alloc.node) == NULL)
        return;   /* another node's (simulate mode watches every allocation) */
    agent_job_t *j = gp_strmap_get(a->jobs, alloc.job);
    if (j && j->alloc_create_rev == kv->create_revision) {
        /* An update of the same allocation: a suspend or a resume, or a
         * drain's stop. */
        j->alloc_mod_rev = kv->mod_revision;
        if (alloc.suspended != j->alloc.suspended) {
            j->alloc.suspended = alloc.suspended;
            s_apply_suspension(a, j);
        }
        if (alloc.stop && !j->drained && !j->stopping) {
            j->alloc.stop = true;
            j->alloc.stop_grace_s = alloc.stop_grace_s;
            s_drain_stop(a, j);
        }
        return;
    }
    if (j)
        s_alloc_gone(a, j);   /* replaced while we were not looking */
    j = calloc(1, sizeof *j);
    if (j == NULL)
        return;
    j->alloc = alloc;
    j->alloc_create_rev = kv->create_revision;
    j->alloc_mod_rev = kv->mod_revision;
    gp_jobrec_init(&j->rec);
    j->todo = 1;
    j->drained = alloc.stop;   /* marked while we were away: stopped once adopted */
    a->jobs_kick = 1;
    if (a->fresh)
        gp_strmap_put(a->fresh, alloc.job, (void *)1);
    if (gp_placement_add_alloc(a->engine, &alloc, &err) < 0) {
        gp_metric_inc(a->m.inconsistencies);
        gp_log_error("committed allocation does not fit the agent's view job=%s node=%s err=\"%s\"",
                     alloc.job, alloc.node, err.msg);
    }
    if (gp_strmap_put(a->jobs, alloc.job, j) < 0)
        s_job_free(a, j);
    else
        s_busy(a, j);
}

static void s_alloc_deleted(agent_t *a, const char *key, size_t key_len)
{
    size_t bl;
    const char *base = gp_key_base(key, key_len, &bl);
    char job[GP_NAME_LEN];
    snprintf(job, sizeof job, "%.*s", (int)bl, base);
    agent_job_t *j = gp_strmap_get(a->jobs, job);
    /* The key names the node: only a delete on the job's own node counts. */
    if (j && key_len > bl + 1) {
        char nodekey[GP_KEY_MAX];
        gp_key_alloc(nodekey, a->cfg.prefix, j->alloc.node, NULL);
        if (strlen(nodekey) == key_len - bl && !memcmp(nodekey, key, key_len - bl))
            s_alloc_gone(a, j);
    }
}

static void s_on_alloc_watch(gp_etcd_watch_t *w, const gp_etcd_watch_resp_t *resp, void *arg)
{
    (void)w;
    agent_t *a = arg;
    if (resp->kind == GP_ETCD_WATCH_COMPACTED || resp->kind == GP_ETCD_WATCH_ERROR) {
        gp_log_warn("allocation watch ended (%s), listing again",
                    resp->kind == GP_ETCD_WATCH_COMPACTED ? "compacted" : "error");
        a->alloc_relist = 1;
        return;
    }
    for (size_t i = 0; i < resp->n_events; i++) {
        const gp_etcd_event_t *e = &resp->events[i];
        if (e->type == GP_ETCD_EVENT_PUT)
            s_alloc_put(a, &e->kv);
        else
            s_alloc_deleted(a, e->kv.key, e->kv.key_len);
    }
}

static void s_alloc_prefix(agent_t *a, char *buf)
{
    if (a->cfg.simulate > 0)
        gp_key_alloc(buf, a->cfg.prefix, NULL, NULL);
    else
        gp_key_alloc(buf, a->cfg.prefix, a->nodes[0].node.name, NULL);
}

/* List the allocations, reconcile the table with them, watch from there. */
static int s_relist(agent_t *a, gp_err_t *err)
{
    gp_etcd_watch_destroy(&a->alloc_watch);
    char prefix[GP_KEY_MAX];
    s_alloc_prefix(a, prefix);
    gp_etcd_result_t res;
    /* Linearizable: jobs missing from the listing are stopped, so it must
     * not come from a member behind the allocations we saw. */
    if (gp_etcd_get(a->etcd, prefix, GP_ETCD_PREFIX, &res, err) < 0)
        return -1;
    gp_strmap_t *seen = gp_strmap_new();
    for (size_t i = 0; i < res.n_kvs; i++) {
        s_alloc_put(a, &res.kvs[i]);
        size_t bl;
        const char *base = gp_key_base(res.kvs[i].key, res.kvs[i].key_len, &bl);
        char job[GP_NAME_LEN];
        snprintf(job, sizeof job, "%.*s", (int)bl, base);
        if (seen)
            gp_strmap_put(seen, job, &res.kvs[i]);
    }
    for (gp_strmap_iter_t it = gp_strmap_first(a->jobs); seen && it.key;
         it = gp_strmap_next(a->jobs, it)) {
        agent_job_t *j = it.value;
        gp_etcd_kv_t *kv = gp_strmap_get(seen, it.key);
        if (kv == NULL || kv->create_revision != j->alloc_create_rev)
            if (!j->stopping)
                s_alloc_gone(a, j);
    }
    gp_strmap_destroy(&seen);
    gp_etcd_watch_opts_t wo = { .key = prefix, .prefix = true, .start_revision = res.revision + 1,
                                .cb = s_on_alloc_watch, .arg = a };
    gp_etcd_result_free(&res);
    a->alloc_watch = gp_etcd_watch_new(a->etcd, &wo, err);
    return a->alloc_watch ? 0 : -1;
}

/* ---------------------------------------------------------------- starting */

/* The slice's environment and its accounting region (a container job
 * finds the shim where its container mounts it). */
static int s_slice(agent_t *a, agent_job_t *j, char **env, int *nenv, int in_container,
                   gp_err_t *err)
{
    agent_node_t *an = s_node(a, j->alloc.node);
    gp_slice_config_t sc;
    memset(&sc, 0, sizeof sc);
    sc.ndevices = j->alloc.ndevices;
    sc.priority = gp_slice_priority_of(j->alloc.priority);
    sc.oversubscribe = an->node.oversub > 1.0;
    char uuids[GP_MAX_DEVICES * GP_SHORT_LEN], mem[GP_MAX_DEVICES * 24], cpt[GP_MAX_DEVICES * 8];
    size_t ul = 0, ml = 0, cl = 0;
    uuids[0] = mem[0] = cpt[0] = '\0';
    for (int i = 0; i < j->alloc.ndevices; i++) {
        const gp_alloc_dev_t *d = &j->alloc.devices[i];
        int64_t mib = d->mem_mib;
        if (d->whole || mib <= 0)
            mib = d->index >= 0 && d->index < an->node.ndevices ? an->node.devices[d->index].mem_mib
                                                                : mib;
        int pct = d->whole || d->compute_permille <= 0 ? 100 : (d->compute_permille + 9) / 10;
        gp_strlcpy(sc.dev[i].uuid, d->uuid, sizeof sc.dev[i].uuid);
        sc.dev[i].mem_limit = (uint64_t)mib << 20;
        sc.dev[i].compute_pct = (unsigned)pct;
        ul += (size_t)snprintf(uuids + ul, sizeof uuids - ul, "%s%s", i ? "," : "", d->uuid);
        ml += (size_t)snprintf(mem + ml, sizeof mem - ml, "%s%lld", i ? "," : "", (long long)mib);
        cl += (size_t)snprintf(cpt + cl, sizeof cpt - cl, "%s%d", i ? "," : "", pct);
    }
    s_region_path(a, j);
    if (sc.ndevices > 0) {
        j->region = gp_slice_region_open(j->region_path, &sc, err);
        if (j->region == NULL)
            return -1;
        agent_rightsize_track(a, j);
        if (j->alloc.suspended)
            s_apply_suspension(a, j);
    }
    int n = *nenv;
#define S_ENV(...) do { if (asprintf(&env[n], __VA_ARGS__) < 0) return gp_err_set(err, GP_ERR_NOMEM, "out of memory"); n++; } while (0)
    S_ENV("GPUPOOL_JOB=%s", j->alloc.job);
    S_ENV("GPUPOOL_NODE=%s", j->alloc.node);
    if (sc.ndevices > 0) {
        S_ENV("CUDA_VISIBLE_DEVICES=%s", uuids);
        S_ENV("NVIDIA_VISIBLE_DEVICES=%s", uuids);
        S_ENV("GP_SLICE_REGION=%s", j->region_path);
        S_ENV("GP_SLICE_DEVICES=%d", sc.ndevices);
        S_ENV("GP_SLICE_MEM_LIMIT=%s", mem);
        S_ENV("GP_SLICE_COMPUTE=%s", cpt);
        S_ENV("GP_SLICE_COMPUTE_MODE=%s", j->rec.compute_mode[0] ? j->rec.compute_mode
                                          : a->cfg.compute_mode ? a->cfg.compute_mode : "cap");
        S_ENV("GP_SLICE_PRIORITY=%s", gp_slice_priority_name(sc.priority));
        S_ENV("GP_SLICE_OVERSUBSCRIBE=%d", sc.oversubscribe);
        if (a->cfg.shim && *a->cfg.shim)
            S_ENV("LD_PRELOAD=%s", in_container ? GP_CONTAINER_SHIM : a->cfg.shim);
    } else {
        S_ENV("CUDA_VISIBLE_DEVICES=");
    }
#undef S_ENV
    *nenv = n;
    return 0;
}

gp_container_t *agent_containers_new(const agent_cfg_t *cfg, gp_err_t *err)
{
    gp_container_opts_t o = {
        .runtime = cfg->container_runtime, .oci_runtime = cfg->container_oci_runtime,
        .cgroup_manager = cfg->container_cgroup_manager, .ulimits = cfg->container_ulimits,
        .network = cfg->container_network, .registries = cfg->container_registries,
        .mount_paths = cfg->container_mount_paths, .devices = cfg->container_devices,
        .shim = cfg->shim,
    };
    return gp_container_new(&o, err);
}

/* Start a job that names an image: the node's policy first (registries,
 * mount paths), then the launch under a supervisor.  The container gets the
 * slice's accounting region and the per-GPU state files of its devices,
 * mounted at their host paths, so that the agent reads its usage and
 * suspends and resumes it as a host job's. */
static int s_start_container(agent_t *a, agent_job_t *j, const char *rid, char **env,
                             const gp_run_user_t *user, gp_err_t *err)
{
    int rc = -1, nf = 0;
    char name[GP_NAME_LEN + 48], dir[4096], envfile[4200], reason[4200], ugid[48];
    char *files[GP_MAX_DEVICES + 2] = { NULL };
    char **argv = NULL;
    gp_container_name(name, sizeof name, j->alloc.job, (long long)j->alloc_create_rev);
    gp_strlcpy(dir, gp_runner_dir(a->runner, rid), sizeof dir);
    snprintf(envfile, sizeof envfile, "%s/env", dir);
    snprintf(reason, sizeof reason, "%s/reason", dir);
    gp_container_job_t cj = { .name = name, .image = j->rec.image, .workdir = j->rec.workdir,
                              .user = j->rec.user, .mounts = j->rec.mounts, .argv = j->rec.argv,
                              .env_file = envfile, .files = files };
    for (int d = 0; d < j->alloc.ndevices && d < 16; d++) {
        cj.uuids[d] = j->alloc.devices[d].uuid;
        cj.indexes[d] = j->alloc.devices[d].index;
        cj.ndevices = d + 1;
    }
    /* The container runs as the team's account (--user uid:gid).  A job's
     * own user must be that account's uid, by number: a name means
     * whatever the image says. */
    if (user) {
        snprintf(ugid, sizeof ugid, "%u:%u", (unsigned)user->uid, (unsigned)user->gid);
        if (j->rec.user[0] == '\0') {
            cj.user = ugid;
        } else {
            char *end;
            unsigned long uid = strtoul(j->rec.user, &end, 10);
            if (end == j->rec.user || (*end && *end != ':') || uid != (unsigned long)user->uid) {
                gp_err_set(err, GP_ERR_AUTH, "user %s: the jobs of team %s run as %s (uid %u) "
                                             "on this node", j->rec.user,
                           j->rec.owner[0] ? j->rec.owner : "(none)", user->name,
                           (unsigned)user->uid);
                goto cleanup;
            }
        }
    }
    if (gp_container_check(a->containers, &cj, err) < 0)
        goto cleanup;
    for (char **e = env; *e; e++)
        if (strchr(*e, '\n')) {
            gp_err_set(err, GP_ERR_INVALID, "env: a value with a newline cannot be passed to a "
                                            "container");
            goto cleanup;
        }
    if (j->region) {
        files[nf++] = strdup(j->region_path);
        /* A numeric user ("uid" or "uid:gid") must be able to write its
         * slice's region (a user name means nothing outside the image: the
         * region then stays the agent's, group-writable). */
        if (j->rec.user[0] >= '1' && j->rec.user[0] <= '9') {
            char *end;
            unsigned long uid = strtoul(j->rec.user, &end, 10);
            unsigned long gid = *end == ':' ? strtoul(end + 1, NULL, 10) : (unsigned long)-1;
            if (chown(j->region_path, (uid_t)uid, (gid_t)gid) < 0)
                gp_log_warn("cannot give the slice region to user=%s job=%s", j->rec.user,
                            j->alloc.job);
        }
        for (int d = 0; d < cj.ndevices; d++) {
            gp_gpu_state_t *g = gp_gpu_state_open(a->slice_dir, cj.uuids[d], NULL);
            gp_gpu_state_close(&g);
            if (asprintf(&files[nf], "%s/gpu-%s.state", a->slice_dir, cj.uuids[d]) < 0)
                files[nf] = NULL;
            else
                nf++;
        }
    }
    argv = gp_container_launch_argv(a->containers, &cj, reason);
    if (argv == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    rc = gp_runner_start_container(a->runner, rid, name, argv, env, err);
    if (rc == 0)
        gp_log_info("container started job=%s container=%s image=%s", j->alloc.job, name,
                    j->rec.image);
cleanup:
    for (int i = 0; i < nf; i++)
        free(files[i]);
    gp_container_argv_free(argv);
    return rc;
}

static void s_start(agent_t *a, agent_job_t *j)
{
    char rid[GP_NAME_LEN + 32];
    s_runner_id(j, rid, sizeof rid);
    gp_err_t err;
    gp_run_status_t st;
    int found = gp_runner_adopt(a->runner, rid, &st, &err);
    if (found == 1) {
        j->started = 1;
        if (st.state == GP_RUN_RUNNING) {
            gp_log_info("adopted running job=%s pid=%d", j->alloc.job, (int)st.pid);
            s_count_state(a, "adopted");
        } else {
            j->ended = 1;
            s_busy(a, j);
            j->exit_code = st.exit_code;
            j->term_signal = st.term_signal;
            j->lost = st.state == GP_RUN_LOST;
            gp_log_info("job ended while the agent was away job=%s", j->alloc.job);
        }
        if (j->rec.state == GP_JOB_RUNNING)
            j->reported_running = 1;
        if (j->region == NULL && j->alloc.ndevices > 0) {
            s_region_path(a, j);
            j->region = gp_slice_region_open(j->region_path, NULL, NULL);
            if (j->region)
                agent_rightsize_track(a, j);
        }
        if (j->drained && !j->ended)
            s_drain_stop(a, j);   /* marked while the agent was away */
        return;
    }
    if (j->drained) {
        j->started = 1;   /* a job being drained is never started */
        j->ended = 1;
        s_busy(a, j);
        return;
    }
    if (j->rec.argv == NULL && j->rec.image[0] == '\0') {
        j->pretend = 1;
        j->started = 1;
        j->pretend_end_ms = j->rec.duration_s > 0
                                ? gp_mono_ms() + (int64_t)(j->rec.duration_s * 1000.0) : 0;
        s_count_state(a, "started");
        return;
    }
    char *env[S_MAX_ENV + GP_JOB_MAX_ENV + 1];
    int n = 0;
    for (char **e = j->rec.env; e && *e && n < GP_JOB_MAX_ENV; e++)
        env[n++] = strdup(*e);
    int in_container = j->rec.image[0] != '\0';
    /* The team's account (accounts.h): never the agent's root. */
    gp_run_user_t user;
    int as_user = gp_accounts_for(a->accounts, j->rec.owner, &user, &err);
    int rc = as_user < 0 ? -1 : s_slice(a, j, env, &n, in_container, &err);
    env[n] = NULL;
    if (rc == 0 && as_user && j->region && chown(j->region_path, user.uid, user.gid) < 0)
        gp_log_warn("cannot give the slice region to uid=%u job=%s", (unsigned)user.uid,
                    j->alloc.job);
    /* The per-GPU priority state is shared by every job on the GPU, of any
     * account: made here (jobs cannot create files in the slice folder),
     * open to all as the GPU's device nodes are. */
    for (int d = 0; rc == 0 && as_user && j->region && d < j->alloc.ndevices; d++) {
        gp_gpu_state_t *g = gp_gpu_state_open(a->slice_dir, j->alloc.devices[d].uuid, NULL);
        gp_gpu_state_close(&g);
        char path[4200];
        snprintf(path, sizeof path, "%s/gpu-%s.state", a->slice_dir, j->alloc.devices[d].uuid);
        if (chmod(path, 0666) < 0)
            gp_log_warn("cannot share the GPU state path=%s err=\"%s\"", path, strerror(errno));
    }
    if (rc == 0 && in_container)
        rc = s_start_container(a, j, rid, env, as_user ? &user : NULL, &err);
    else if (rc == 0)
        rc = gp_runner_start_as(a->runner, rid, j->rec.argv, env, as_user ? &user : NULL, &err);
    for (int i = 0; i < n; i++)
        free(env[i]);
    if (rc < 0) {
        gp_log_error("cannot start job=%s err=\"%s\"", j->alloc.job, err.msg);
        j->started = 1;
        j->ended = 1;
        s_busy(a, j);
        j->exit_code = in_container ? 125 : 127;
        snprintf(j->fail_reason, sizeof j->fail_reason, "not started: %.240s", err.msg);
        return;
    }
    j->started = 1;
    s_count_state(a, "started");
    gp_log_info("started job=%s node=%s devices=%d", j->alloc.job, j->alloc.node,
                j->alloc.ndevices);
}

/* ---------------------------------------------------------------- reports */

/* When to try a job's failed etcd read or report again: a backoff from
 * 500 ms doubling to 10 s, with jitter (half to all of it), so that a full
 * or unreachable store is not hammered by every job of every node. */
static int64_t s_retry_at(agent_job_t *j, int64_t now)
{
    j->report_backoff_ms = j->report_backoff_ms ? j->report_backoff_ms * 2 : 500;
    if (j->report_backoff_ms > 10000)
        j->report_backoff_ms = 10000;
    int64_t half = j->report_backoff_ms / 2;
    return now + half + (int64_t)(random() % (half + 1));
}

/* The backoff before a restart, as Kubernetes' CrashLoopBackOff: the
 * first restart waits restart-backoff, each next one twice the last, at
 * most restart-backoff-max; a run of restart-backoff-reset or longer (from
 * the run's first "running" in the record's history, to now) starts again
 * from restart-backoff.
 * The record carries it (restarts, restart_delay_ms, restart_at_ms), so a
 * restarted agent, or another node's, continues it; the leader does not
 * place the job before restart_at_ms (round.c). */
static void s_restart_backoff(agent_t *a, gp_jobrec_t *rec, int64_t now)
{
    /* the run: from the first "running" after the last "placed" (a resume
     * after a suspension writes "running" again, mid-run) */
    int64_t ran_since = 0;
    size_t i;
    json_t *h;
    json_array_foreach(rec->history, i, h) {
        const char *st = json_string_value(json_object_get(h, "state"));
        if (st && !strcmp(st, "placed"))
            ran_since = 0;
        else if (st && !strcmp(st, "running") && ran_since == 0)
            ran_since = json_integer_value(json_object_get(h, "at_ms"));
    }
    int64_t delay = rec->restart_delay_ms * 2;
    if (rec->restart_delay_ms == 0 ||
        (ran_since > 0 && now - ran_since >= a->cfg.restart_backoff_reset_ms))
        delay = a->cfg.restart_backoff_ms;
    if (delay > a->cfg.restart_backoff_max_ms)
        delay = a->cfg.restart_backoff_max_ms;
    rec->restarts++;
    rec->restart_delay_ms = delay;
    rec->restart_at_ms = now + delay;
}

/* RFC 3339, UTC, to the second. */
static void s_fmt_utc(char *out, size_t size, int64_t ms)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&sec, &tm) == NULL || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, size, "?");
}

/* The fenced report, appended to a transaction that may carry other jobs'
 * reports: compare the allocation's create revision (and the job record's
 * mod revision), then write the record; on an end also delete the
 * allocation and, for a restart, queue the job again. */
static void s_queue_report(agent_t *a, gp_txnb_t *t, agent_job_t *j, int end)
{
    char akey[GP_KEY_MAX], jkey[GP_KEY_MAX];
    gp_key_alloc(akey, a->cfg.prefix, j->alloc.node, j->alloc.job);
    gp_key_job(jkey, a->cfg.prefix, j->alloc.job);
    int64_t now = gp_wall_ms();
    gp_txnb_cmp(t, akey, GP_ETCD_CMP_CREATE, j->alloc_create_rev);
    gp_txnb_cmp(t, jkey, GP_ETCD_CMP_MOD, j->rec_mod_rev);
    if (!end && j->report_state && j->reported_running) {
        gp_jobrec_set_state(&j->rec, j->prio_suspended ? GP_JOB_SUSPENDED : GP_JOB_RUNNING,
                            j->alloc.node,
                            j->prio_suspended ? "compute preempted by a high-priority job on its GPU"
                                              : "resumed: the high-priority job is idle", now);
    } else if (!end) {
        if (j->rec.state == GP_JOB_PENDING) {
            /* The commit wrote the allocation alone: this report is the
             * record's first word of the placement. */
            char why[64];
            j->rec.attempts++;
            snprintf(why, sizeof why, "attempt %d", j->rec.attempts);
            gp_jobrec_set_state(&j->rec, GP_JOB_PLACED, j->alloc.node, why, now);
        }
        gp_jobrec_set_state(&j->rec, GP_JOB_RUNNING, j->alloc.node, "started", now);
        if (j->rec.rightsize == GP_RIGHTSIZE_AUTO && j->alloc.ndevices > 0 &&
            !j->alloc.devices[0].whole) {
            /* The slice this run was given (the request stays in the spec). */
            j->rec.applied_mem_mib = j->alloc.devices[0].mem_mib;
            j->rec.applied_compute_pct = (j->alloc.devices[0].compute_permille + 9) / 10;
        }
    } else if (j->drained && j->rec.restart != GP_RESTART_NEVER) {
        /* Stopped for a drain: not the job's failure; it runs elsewhere. */
        char why[200];
        snprintf(why, sizeof why, "stopped by the drain of node %s; requeued", j->alloc.node);
        j->rec.exit_code = j->term_signal ? 128 + j->term_signal : j->exit_code;
        gp_jobrec_set_state(&j->rec, GP_JOB_PENDING, "", why, now);
        if (j->rec.region[0] == '\0')
            gp_strlcpy(j->rec.region, a->cfg.region, sizeof j->rec.region);
        gp_txnb_del(t, akey);
    } else {
        int failed = j->lost || j->term_signal || j->exit_code != 0 || j->fail_reason[0];
        /* A right-sized run that died of OOM in its slice goes again, bigger,
         * within max_restarts whatever its policy, and at once: the bump is
         * the remedy, not a crash loop (rightsize.c). */
        int oom = failed && j->rs_oom_bump_mib > 0;
        int restart = gp_jobrec_restarts_again(&j->rec, failed) ||
                      (oom && j->rec.attempts <= j->rec.max_restarts);
        char reason[300];
        if (oom)
            j->rec.rightsize_floor_mib = j->rs_oom_bump_mib;
        if (j->fail_reason[0])
            snprintf(reason, sizeof reason, "%s", j->fail_reason);
        else if (j->lost)
            snprintf(reason, sizeof reason, "the job's process vanished");
        else if (j->term_signal)
            snprintf(reason, sizeof reason, "killed by signal %d", j->term_signal);
        else
            snprintf(reason, sizeof reason, "exited with code %d", j->exit_code);
        j->rec.exit_code = j->term_signal ? 128 + j->term_signal : j->exit_code;
        gp_jobrec_set_state(&j->rec, failed ? GP_JOB_FAILED : GP_JOB_SUCCEEDED, j->alloc.node,
                            reason, now);
        if (restart) {
            char why[420], at[40];
            if (oom) {
                snprintf(why, sizeof why, "%.200s after memory was refused in its slice; "
                         "restarting with %lld MiB", reason, (long long)j->rs_oom_bump_mib);
            } else {
                s_restart_backoff(a, &j->rec, now);
                s_fmt_utc(at, sizeof at, j->rec.restart_at_ms);
                snprintf(why, sizeof why, "%.200s; restarting (%s): restart %d in %llds, at %s",
                         reason, j->rec.restart == GP_RESTART_ALWAYS ? "always" : "on-failure",
                         j->rec.restarts, (long long)((j->rec.restart_delay_ms + 999) / 1000), at);
            }
            gp_jobrec_set_state(&j->rec, GP_JOB_PENDING, "", why, now);
            if (j->rec.region[0] == '\0')
                gp_strlcpy(j->rec.region, a->cfg.region, sizeof j->rec.region);
        }
        gp_txnb_del(t, akey);
    }
    char *text = gp_jobrec_dump(&j->rec);
    gp_txnb_put(t, jkey, text);
    free(text);
}

static void s_parse_record(agent_t *a, agent_job_t *j, const gp_etcd_result_t *res)
{
    gp_err_t err;
    if (res->n_kvs == 0) {
        gp_log_warn("allocation without a job record job=%s", j->alloc.job);
        return;
    }
    gp_jobrec_t rec;
    if (gp_jobrec_from_json_str(res->kvs[0].value, res->kvs[0].value_len, &rec, &err) < 0) {
        gp_metric_inc(a->m.protocol_errors[AGENT_PROTO_JOB_RECORD]);
        gp_log_warn("malformed job record job=%s err=\"%s\"", j->alloc.job, err.msg);
        return;
    }
    gp_jobrec_clear(&j->rec);
    j->rec = rec;
    j->rec_mod_rev = res->kvs[0].mod_revision;
    j->have_rec = 1;
}

/* Etcd work per tick is bounded, so that the loop keeps answering calls
 * for bids while thousands of jobs start; the rest waits for the next tick. */
#define S_WORK_PER_TICK 1024
#define S_RANGES_PER_TXN 120     /* etcd: at most 128 operations per txn */
#define S_REPORT_CMPS 2          /* a report's compares: the allocation, the record */
#define S_REPORT_OPS 3           /* its operations, at most */

/* The job of an entry of src: src is a->jobs (every job) or a->fresh (the
 * ids of new allocations, for a kick: it looks at those alone). */
static agent_job_t *s_job_of(agent_t *a, gp_strmap_t *src, gp_strmap_iter_t it)
{
    return src == a->jobs ? it.value : gp_strmap_get(a->jobs, it.key);
}

static void s_report(agent_t *a, gp_strmap_t *src);

/* Fetch the records of new jobs (many ranges per transaction) in a
 * background batch (up to S_FETCH_FLIGHTS in the air, a job in one at a
 * time) and start each job when its record lands: the loop keeps answering
 * calls for bids meanwhile.  The outcomes are applied by job id and
 * allocation: a job dropped meanwhile (its allocation gone) or replaced is
 * skipped, and nothing starts before its record is read and confirmed. */
#define S_FETCH_FLIGHTS 4

typedef struct s_fetches {
    agent_t *a;
    gp_etcd_batch_t *b;
    size_t n;
    char (*ids)[GP_NAME_LEN];
    int64_t *create_rev;
    int64_t sent_ns;
    struct s_fetches *next;
} s_fetches_t;

static void s_fetches_free(s_fetches_t *f)
{
    gp_etcd_batch_destroy(&f->b);
    free(f->ids);
    free(f->create_rev);
    free(f);
}

static void s_fetches_apply(s_fetches_t *f)
{
    agent_t *a = f->a;
    int64_t now = gp_mono_ms();
    gp_strmap_t *started = gp_strmap_new();
    for (size_t i = 0; i < f->n; i++) {
        agent_job_t *j = gp_strmap_get(a->jobs, f->ids[i]);
        if (j == NULL || j->alloc_create_rev != f->create_rev[i])
            continue;   /* dropped (or replaced) while the read was in flight */
        j->fetching = 0;
        const gp_etcd_result_t *res;
        gp_err_t err;
        if (gp_etcd_batch_result(f->b, i / S_RANGES_PER_TXN, &res, &err) < 0 ||
            i % S_RANGES_PER_TXN >= res->n_responses) {
            j->report_after_ms = s_retry_at(j, now);
            continue;
        }
        if (j->stopping || (j->have_rec && j->started))
            continue;
        if (res->revision < j->alloc_mod_rev) {
            j->fetch_linear = 1;   /* the member is behind the allocation: ask the leader */
            a->fetch_again = 1;
            continue;
        }
        j->fetch_linear = 0;
        s_parse_record(a, j, &res->responses[i % S_RANGES_PER_TXN]);
        if (j->have_rec && !j->started &&
            (gp_job_state_final(j->rec.state) || j->rec.state == GP_JOB_LOST)) {
            /* Ended (a cancel that raced the commit): the region's leader
             * releases the allocation; nothing starts meanwhile. */
            j->have_rec = 0;
        }
        if (!j->have_rec) {
            j->report_after_ms = now + 1000;
            continue;
        }
        if (!j->started) {
            s_start(a, j);
            if (started)
                gp_strmap_put(started, j->alloc.job, (void *)1);
        }
    }
    /* Report the jobs just started at once, not at the next tick. */
    if (started && gp_strmap_size(started) > 0)
        s_report(a, started);
    gp_strmap_destroy(&started);
}

static void s_fetch_and_start(agent_t *a, gp_strmap_t *src);

static void s_fetches_landed(gp_etcd_batch_t *b, void *arg)
{
    (void)b;
    s_fetches_t *f = arg;
    agent_t *a = f->a;
    for (s_fetches_t **p = (s_fetches_t **)&a->fetches; *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            a->nfetches--;
            break;
        }
    }
    gp_metric_observe(a->m.record_fetch, (double)(gp_mono_ns() - f->sent_ns) / 1e9);
    s_fetches_apply(f);
    s_fetches_free(f);
    if (a->fetch_again) {
        /* Jobs waited for a free flight, or must be read again from the
         * leader: fetch them now rather than at the next tick. */
        a->fetch_again = 0;
        s_fetch_and_start(a, a->busy);
    }
}

static void s_fetch_and_start(agent_t *a, gp_strmap_t *src)
{
    if (a->nfetches >= S_FETCH_FLIGHTS) {
        a->fetch_again = 1;   /* at the next landing */
        return;
    }
    s_fetches_t *f = calloc(1, sizeof *f);
    gp_txnb_t *t = gp_txnb_new();
    int64_t now = gp_mono_ms();
    if (f == NULL || t == NULL)
        goto fail;
    f->a = a;
    f->b = gp_etcd_batch_new(a->etcd);
    f->ids = malloc(sizeof *f->ids * S_WORK_PER_TICK);
    f->create_rev = malloc(sizeof *f->create_rev * S_WORK_PER_TICK);
    if (f->b == NULL || f->ids == NULL || f->create_rev == NULL)
        goto fail;
    for (gp_strmap_iter_t it = gp_strmap_first(src); it.key; it = gp_strmap_next(src, it)) {
        agent_job_t *j = s_job_of(a, src, it);
        if (j == NULL || !j->todo || j->stopping || j->fetching || (j->have_rec && j->started) ||
            now < j->report_after_ms)
            continue;
        if (f->n == S_WORK_PER_TICK) {
            a->fetch_again = 1;   /* more than one flight's worth */
            break;
        }
        char key[GP_KEY_MAX];
        gp_txnb_range_flags(t, gp_key_job(key, a->cfg.prefix, j->alloc.job),
                            j->fetch_linear ? 0 : GP_ETCD_SERIALIZABLE);
        gp_strlcpy(f->ids[f->n], j->alloc.job, GP_NAME_LEN);
        f->create_rev[f->n] = j->alloc_create_rev;
        f->n++;
        j->fetching = 1;
        if (gp_txnb_ops(t) == S_RANGES_PER_TXN) {
            gp_txnb_add(t, f->b, NULL);
            gp_txnb_reset(t);
        }
    }
    if (gp_txnb_ops(t) > 0)
        gp_txnb_add(t, f->b, NULL);
    gp_txnb_destroy(&t);
    if (f->n == 0) {
        s_fetches_free(f);
        return;
    }
    gp_err_t err;
    f->sent_ns = gp_mono_ns();
    if (gp_etcd_batch_start(f->b, 64, s_fetches_landed, f, &err) == 0) {
        f->next = a->fetches;
        a->fetches = f;
        a->nfetches++;
        return;
    }
    agent_metrics_etcd_error(&a->m, "fetch", &err);
    s_fetches_apply(f);   /* each one failed: retried after its backoff */
    s_fetches_free(f);
    return;
fail:
    gp_txnb_destroy(&t);
    if (f)
        s_fetches_free(f);
}

/* Write "running", state and end reports: as many jobs per transaction as
 * etcd takes (128 compares, 128 operations: 64 "running" reports, fewer
 * ends), all the transactions in one background batch: etcd's cost is
 * also per transaction (a raft entry, an apply on every member).  A transaction fails whole
 * when any of its compares fails (an allocation deleted meanwhile, a record
 * changed): its jobs re-read their records (linearizably) and report alone
 * next time.  The outcomes are applied by job id and allocation: a job
 * dropped meanwhile (its allocation gone) is skipped. */
#define S_REPORT_FLIGHTS 4

typedef struct s_reports {
    agent_t *a;
    gp_etcd_batch_t *b;
    size_t n;
    char (*ids)[GP_NAME_LEN];
    int64_t *create_rev;
    int *kind, *txn_of;
    struct s_reports *next;
} s_reports_t;

static void s_reports_free(s_reports_t *f)
{
    gp_etcd_batch_destroy(&f->b);
    free(f->ids);
    free(f->create_rev);
    free(f->kind);
    free(f->txn_of);
    free(f);
}

/* One job's report outcome (its report was in transaction txn_of[i]). */
static void s_report_outcome(agent_t *a, s_reports_t *f, size_t i, agent_job_t *j, int64_t now)
{
    const gp_etcd_result_t *res;
    gp_err_t err;
    if (gp_etcd_batch_result(f->b, (size_t)f->txn_of[i], &res, &err) < 0) {
        agent_metrics_etcd_error(&a->m, "report", &err);
        j->have_rec = 0;   /* the record was changed in memory: read it again */
        j->fetch_linear = 1;
        j->todo = 1;
        s_busy(a, j);
        j->report_after_ms = s_retry_at(j, now);
        return;
    }
    if (!res->succeeded) {
        /* The allocation is gone (the watch will say so) or the record
         * changed under us: read it again, and report alone. */
        j->solo = 1;
        j->have_rec = 0;
        j->fetch_linear = 1;
        j->todo = 1;
        s_busy(a, j);
        j->report_after_ms = now + 100;
        return;
    }
    j->solo = 0;
    j->report_backoff_ms = 0;
    if (!f->kind[i]) {
        if (j->reported_running && j->report_state) {
            j->report_state = 0;
            s_count_state(a, j->prio_suspended ? "priority-suspended" : "priority-resumed");
        } else {
            s_count_state(a, "running");
        }
        j->reported_running = 1;
        j->todo = 0;
        j->rec_mod_rev = res->revision;
        return;
    }
    s_count_state(a, gp_job_state_name(j->rec.state));
    gp_log_info("job ended job=%s state=%s exit_code=%d", j->alloc.job,
                gp_job_state_name(j->rec.state), j->rec.exit_code);
    gp_placement_remove_alloc(a->engine, j->alloc.job, &err);
    s_job_drop(a, j);
}

static void s_reports_apply(s_reports_t *f)
{
    agent_t *a = f->a;
    int64_t now = gp_mono_ms();
    for (size_t i = 0; i < f->n; i++) {
        agent_job_t *j = gp_strmap_get(a->jobs, f->ids[i]);
        if (j == NULL || j->alloc_create_rev != f->create_rev[i])
            continue;   /* dropped (or replaced) while the report was in flight */
        j->reporting = 0;
        s_report_outcome(a, f, i, j, now);
        /* The allocation went while the report was in flight: act on it
         * now (unless the report ended the job, which dropped it). */
        j = gp_strmap_get(a->jobs, f->ids[i]);
        if (j && j->alloc_create_rev == f->create_rev[i] && j->alloc_gone) {
            j->alloc_gone = 0;
            s_alloc_gone(a, j);
        }
    }
}

static void s_reports_landed(gp_etcd_batch_t *b, void *arg)
{
    (void)b;
    s_reports_t *f = arg;
    agent_t *a = f->a;
    for (s_reports_t **p = (s_reports_t **)&a->reports; *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            a->nreports--;
            break;
        }
    }
    s_reports_apply(f);
    s_reports_free(f);
}

static void s_report(agent_t *a, gp_strmap_t *src)
{
    if (a->nreports >= S_REPORT_FLIGHTS)
        return;   /* the next tick, or the next landing */
    s_reports_t *f = calloc(1, sizeof *f);
    gp_txnb_t *t = gp_txnb_new();
    int ntxn = 0, in_txn = 0;
    int64_t now = gp_mono_ms();
    if (f == NULL || t == NULL)
        goto fail;
    f->a = a;
    f->b = gp_etcd_batch_new(a->etcd);
    f->ids = malloc(sizeof *f->ids * S_WORK_PER_TICK);
    f->create_rev = malloc(sizeof *f->create_rev * S_WORK_PER_TICK);
    f->kind = malloc(sizeof *f->kind * S_WORK_PER_TICK);
    f->txn_of = malloc(sizeof *f->txn_of * S_WORK_PER_TICK);
    if (f->b == NULL || f->ids == NULL || f->create_rev == NULL || f->kind == NULL ||
        f->txn_of == NULL)
        goto fail;
    for (gp_strmap_iter_t it = gp_strmap_first(src); it.key && f->n < S_WORK_PER_TICK;
         it = gp_strmap_next(src, it)) {
        agent_job_t *j = s_job_of(a, src, it);
        if (j == NULL || !j->have_rec || !j->started || j->stopping || j->reporting || now < j->report_after_ms)
            continue;
        if (j->pretend && j->pretend_end_ms && now >= j->pretend_end_ms && !j->ended) {
            j->ended = 1;
            j->exit_code = 0;
        }
        int end = j->ended;
        if (!end && j->reported_running && !j->report_state)
            continue;
        if (in_txn > 0 && (j->solo || gp_txnb_cmps(t) + S_REPORT_CMPS > GP_TXN_MAX_OPS ||
                           gp_txnb_ops(t) + S_REPORT_OPS > GP_TXN_MAX_OPS)) {
            gp_txnb_add(t, f->b, NULL);
            gp_txnb_reset(t);
            ntxn++;
            in_txn = 0;
        }
        s_queue_report(a, t, j, end);
        gp_strlcpy(f->ids[f->n], j->alloc.job, GP_NAME_LEN);
        f->create_rev[f->n] = j->alloc_create_rev;
        f->kind[f->n] = end;
        f->txn_of[f->n] = ntxn;
        f->n++;
        j->reporting = 1;
        in_txn++;
        if (j->solo) {
            gp_txnb_add(t, f->b, NULL);
            gp_txnb_reset(t);
            ntxn++;
            in_txn = 0;
        }
    }
    if (in_txn > 0)
        gp_txnb_add(t, f->b, NULL);
    gp_txnb_destroy(&t);
    if (f->n == 0) {
        s_reports_free(f);
        return;
    }
    gp_err_t err;
    if (gp_etcd_batch_start(f->b, 64, s_reports_landed, f, &err) == 0) {
        f->next = a->reports;
        a->reports = f;
        a->nreports++;
        return;
    }
    gp_log_debug("reports not sent err=\"%s\"", err.msg);
    s_reports_apply(f);   /* each one failed: retried after its backoff */
    s_reports_free(f);
    return;
fail:
    gp_txnb_destroy(&t);
    if (f)
        s_reports_free(f);
}

/* ---------------------------------------------------------------- ends */

typedef struct {
    agent_t *a;
} s_poll_ctx_t;

static void s_on_end(const gp_run_status_t *st, void *arg)
{
    agent_t *a = ((s_poll_ctx_t *)arg)->a;
    /* st->job is "<job>.r<rev>" */
    char job[GP_NAME_LEN];
    gp_strlcpy(job, st->job, sizeof job);
    char *r = strrchr(job, '.');
    if (r && r[1] == 'r')
        *r = '\0';
    agent_job_t *j = gp_strmap_get(a->jobs, job);
    if (j == NULL) {
        /* A job whose allocation went while the agent was away. */
        gp_runner_forget(a->runner, st->job, NULL);
        return;
    }
    agent_rightsize_run_end(a, j);
    if (j->stopping) {
        gp_log_info("stopped job=%s", j->alloc.job);
        s_job_drop(a, j);
        return;
    }
    j->ended = 1;
    s_busy(a, j);
    /* A container that could not be started says why (container.h). */
    char path[4200];
    snprintf(path, sizeof path, "%s/reason", gp_runner_dir(a->runner, st->job));
    FILE *f = fopen(path, "r");
    if (f) {
        if (fgets(j->fail_reason, sizeof j->fail_reason, f))
            j->fail_reason[strcspn(j->fail_reason, "\n")] = '\0';
        fclose(f);
    }
    j->exit_code = st->state == GP_RUN_EXITED ? st->exit_code : 0;
    j->term_signal = st->state == GP_RUN_KILLED ? st->term_signal : 0;
    j->lost = st->state == GP_RUN_LOST;
}

/* At start-up: folders of jobs whose allocation is gone are stopped. */
static void s_orphan(const char *rid, void *arg)
{
    agent_t *a = arg;
    char job[GP_NAME_LEN];
    gp_strlcpy(job, rid, sizeof job);
    char *r = strrchr(job, '.');
    if (r == NULL || r[1] != 'r')
        return;
    long long rev = strtoll(r + 2, NULL, 10);
    *r = '\0';
    agent_job_t *j = gp_strmap_get(a->jobs, job);
    if (j && j->alloc_create_rev == rev)
        return;
    gp_run_status_t st;
    gp_err_t err;
    if (gp_runner_adopt(a->runner, rid, &st, &err) == 1 && st.state == GP_RUN_RUNNING) {
        gp_log_info("allocation gone while the agent was away, stopping job=%s", job);
        gp_runner_stop(a->runner, rid, a->cfg.stop_grace_ms, &err);
    } else {
        gp_runner_forget(a->runner, rid, &err);
    }
}

int agent_jobs_start(agent_t *a, gp_err_t *err)
{
    a->jobs = gp_strmap_new();
    a->fresh = gp_strmap_new();
    a->busy = gp_strmap_new();
    if (a->jobs == NULL || a->fresh == NULL || a->busy == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    a->runner = gp_runner_new(a->cfg.state_dir, a->cfg.runner, err);
    if (a->runner == NULL)
        return -1;
    a->containers = agent_containers_new(&a->cfg, err);
    if (a->containers == NULL)
        return -1;
    gp_runner_set_containers(a->runner, a->containers);
    a->accounts = gp_accounts_new(a->cfg.job_users, a->cfg.job_user, a->cfg.job_root_teams,
                                  a->cfg.job_rlimits, err);
    if (a->accounts == NULL)
        return -1;
    if (geteuid() != 0)
        gp_log_warn("the agent is not root: jobs run as its own user, not as their teams' accounts");
    snprintf(a->slice_dir, sizeof a->slice_dir, "%s/slices", a->cfg.state_dir);
    /* Jobs open their own region by name (0711: they list nothing). */
    if ((mkdir(a->slice_dir, 0711) < 0 && errno != EEXIST) || chmod(a->slice_dir, 0711) < 0)
        return gp_err_errno(err, "cannot create %s", a->slice_dir);
    if (agent_rightsize_start(a, err) < 0)
        return -1;
    if (s_relist(a, err) < 0) {
        gp_log_warn("cannot list allocations yet, will retry err=\"%s\"", err->msg);
        a->alloc_relist = 1;
    } else {
        s_fetch_and_start(a, a->jobs);
        gp_runner_scan(a->runner, s_orphan, a, NULL);
    }
    return 0;
}

static void s_fresh_reset(agent_t *a)
{
    if (a->fresh && gp_strmap_size(a->fresh) == 0)
        return;
    gp_strmap_destroy(&a->fresh);
    a->fresh = gp_strmap_new();
}

/* Drop the jobs that have no work left from a->busy; after a failed insert,
 * rebuild it from every job. */
static void s_busy_prune(agent_t *a)
{
    if (a->busy_lost) {
        a->busy_lost = 0;
        for (gp_strmap_iter_t it = gp_strmap_first(a->jobs); it.key;
             it = gp_strmap_next(a->jobs, it))
            if (s_has_work(it.value))
                s_busy(a, it.value);
    }
    for (gp_strmap_iter_t it = gp_strmap_first(a->busy); it.key;
         it = gp_strmap_next(a->busy, it)) {
        agent_job_t *j = gp_strmap_get(a->jobs, it.key);
        if (j == NULL || !s_has_work(j))
            gp_strmap_del(a->busy, it.key);
    }
}

void agent_jobs_tick(agent_t *a)
{
    if (a->alloc_relist) {
        gp_err_t err;
        a->alloc_relist = 0;
        if (s_relist(a, &err) < 0) {
            agent_metrics_etcd_error(&a->m, "list-allocations", &err);
            a->alloc_relist = 1;
        } else {
            gp_runner_scan(a->runner, s_orphan, a, NULL);
        }
    }
    s_poll_ctx_t ctx = { a };
    gp_runner_poll(a->runner, s_on_end, &ctx);
    if (gp_mono_ms() >= a->next_prune_ms) {
        int n = gp_runner_prune(a->runner, a->cfg.log_retention_ms / 1000);
        if (n > 0)
            gp_log_info("pruned old job folders count=%d", n);
        a->next_prune_ms = gp_mono_ms() + 3600 * 1000;
    }
    agent_rightsize_tick(a);
    s_busy_prune(a);
    if (gp_strmap_size(a->busy) == 0)
        return;   /* nothing to fetch or report */
    s_fresh_reset(a);   /* this pass looks at every job with work */
    s_fetch_and_start(a, a->busy);
    agent_bidder_handle(a);   /* calls for bids that came meanwhile: answer them first */
    s_report(a, a->busy);
}

void agent_jobs_kick(agent_t *a)
{
    gp_strmap_t *fresh = a->fresh;
    a->fresh = gp_strmap_new();
    if (fresh == NULL)
        return;
    s_fetch_and_start(a, fresh);
    s_report(a, fresh);
    gp_strmap_destroy(&fresh);
}

void agent_jobs_stop(agent_t *a)
{
    gp_etcd_watch_destroy(&a->alloc_watch);
    gp_strmap_destroy(&a->fresh);
    gp_strmap_destroy(&a->busy);
    /* Reports in flight are cancelled: a restarted agent adopts its jobs
     * and reports them again. */
    while (a->reports) {
        s_reports_t *f = a->reports;
        a->reports = f->next;
        s_reports_free(f);
    }
    a->nreports = 0;
    while (a->fetches) {
        s_fetches_t *f = a->fetches;
        a->fetches = f->next;
        s_fetches_free(f);
    }
    a->nfetches = 0;
    agent_rightsize_stop(a);
    if (a->jobs) {
        for (gp_strmap_iter_t it = gp_strmap_first(a->jobs); it.key;
             it = gp_strmap_next(a->jobs, it)) {
            agent_job_t *j = it.value;
            if (j->region)
                gp_slice_region_close(&j->region);   /* keep the file: the job runs on */
            gp_jobrec_clear(&j->rec);
            free(j->rs_run);
            free(j);
        }
        gp_strmap_destroy(&a->jobs);
    }
    gp_runner_destroy(&a->runner);
    gp_container_destroy(&a->containers);
    gp_accounts_destroy(&a->accounts);
}

int agent_jobs_count(agent_t *a)
{
    return a->jobs ? (int)gp_strmap_size(a->jobs) : 0;
}

/* Compute preemption on a shared GPU: a low-priority slice's shim holds
 * its launches while a high-priority slice on the same GPU is active (the
 * per-GPU state file, slice_region.h).  The agent reads the same file and
 * records it in the job's record: "suspended" while held, "running" again
 * after, so that `gpupool get` shows it. */
#define S_PRIORITY_IDLE_NS (500LL * 1000000LL)   /* the shim's default idle interval */

static void s_watch_priority(agent_t *a, agent_job_t *j)
{
    if (j->region == NULL || gp_slice_priority_of(j->alloc.priority) != GP_SLICE_PRIO_LOW ||
        j->alloc.suspended || j->ended || j->stopping)
        return;
    int held = 0;
    int64_t now = gp_mono_ns();
    for (int d = 0; d < j->alloc.ndevices && !held; d++) {
        gp_gpu_state_t *g = gp_gpu_state_open(a->slice_dir, j->alloc.devices[d].uuid, NULL);
        if (g == NULL)
            continue;
        int64_t last = atomic_load(&g->hp_last_active_ns);
        held = last > 0 && now - last < S_PRIORITY_IDLE_NS;
        gp_gpu_state_close(&g);
    }
    if (held != j->prio_suspended) {
        j->prio_suspended = held;
        j->report_state = 1;
        s_busy(a, j);
    }
}

json_t **agent_jobs_usage(agent_t *a)
{
    json_t **out = calloc((size_t)a->nnodes + 1, sizeof *out);
    if (out == NULL)
        return NULL;
    for (int i = 0; i < a->nnodes; i++)
        if ((out[i] = json_array()) == NULL) {
            agent_jobs_usage_free(a, out);
            return NULL;
        }
    int64_t now = gp_mono_ms();
    for (gp_strmap_iter_t it = gp_strmap_first(a->jobs); it.key; it = gp_strmap_next(a->jobs, it)) {
        agent_job_t *j = it.value;
        agent_node_t *an = s_node(a, j->alloc.node);
        if (an == NULL)
            continue;
        json_t *devs = json_array();
        uint64_t delta[GP_MAX_DEVICES] = { 0 };
        int ndelta = 0;
        int64_t interval = j->prev_sample_ms ? now - j->prev_sample_ms : 0;
        if (j->region) {
            gp_slice_region_reclaim(j->region);
            for (int d = 0; d < gp_slice_region_ndevices(j->region) && d < GP_MAX_DEVICES; d++) {
                gp_slice_usage_t u;
                if (gp_slice_region_usage(j->region, d, &u) < 0)
                    continue;
                if (j->prev_sample_ms && u.charged_ns > j->prev_charged_ns[d])
                    delta[d] = u.charged_ns - j->prev_charged_ns[d];
                ndelta = d + 1;
                if (j->prev_sample_ms && now > j->prev_sample_ms)
                    j->compute_share[d] = 100.0 * (double)(u.charged_ns - j->prev_charged_ns[d]) /
                                          ((double)(now - j->prev_sample_ms) * 1e6);
                j->prev_charged_ns[d] = u.charged_ns;
                char labels[256];
                snprintf(labels, sizeof labels, "job_id=\"%s\",device=\"%s\"", j->alloc.job,
                         d < j->alloc.ndevices ? j->alloc.devices[d].uuid : "?");
                gp_metric_set(agent_metrics_slice(&a->m, AGENT_SLICE_MEMORY_BYTES, labels),
                              (double)u.mem_used);
                gp_metric_set(agent_metrics_slice(&a->m, AGENT_SLICE_COMPUTE_PERCENT, labels),
                              j->compute_share[d]);
                if (u.mem_limit != UINT64_MAX)
                    gp_metric_set(agent_metrics_slice(&a->m, AGENT_SLICE_MEMORY_LIMIT_BYTES, labels),
                                  (double)u.mem_limit);
                gp_metric_set(agent_metrics_slice(&a->m, AGENT_SLICE_COMPUTE_LIMIT_PERCENT, labels),
                              d < j->alloc.ndevices && !j->alloc.devices[d].whole &&
                                      j->alloc.devices[d].compute_permille > 0
                                  ? j->alloc.devices[d].compute_permille / 10.0 : 100.0);
                gp_metric_set(agent_metrics_slice(&a->m, AGENT_SLICE_SUSPENDED_SECONDS, labels),
                              (double)u.suspended_ns / 1e9);
                json_array_append_new(
                    devs, json_pack("{s:s,s:I,s:I,s:I,s:f,s:I,s:b}", "uuid",
                                    d < j->alloc.ndevices ? j->alloc.devices[d].uuid : "",
                                    "mem_used_mib", (json_int_t)(u.mem_used >> 20), "host_mib",
                                    (json_int_t)(u.host_used >> 20), "mem_limit_mib",
                                    (json_int_t)(u.mem_limit >> 20), "compute_percent",
                                    j->compute_share[d], "suspended_ms",
                                    (json_int_t)(u.suspended_ns / 1000000), "suspended",
                                    u.suspended != 0));
            }
            j->prev_sample_ms = now;
            agent_rightsize_window(a, j, ndelta, delta, interval);
        }
        s_watch_priority(a, j);
        json_array_append_new(out[an - a->nodes],
                              json_pack("{s:s,s:o}", "job", j->alloc.job, "devices", devs));
    }
    return out;
}

void agent_jobs_usage_free(agent_t *a, json_t **usage)
{
    for (int i = 0; usage && i < a->nnodes; i++)
        json_decref(usage[i]);
    free(usage);
}
