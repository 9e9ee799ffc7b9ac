/*
 * pool_check - check a pool's invariants on the state etcd holds.
 *
 *   pool_check --etcd-endpoints URLS [--prefix P] [--placed FILE] [--quiet]
 *
 * Reads every node record, allocation and job record at one revision and
 * checks, with its own arithmetic (not the placement engine's):
 *   - on every device, allocated memory <= memory x oversubscription and
 *     allocated compute <= 100%; a whole-device allocation is alone;
 *   - no job has more than one allocation;
 *   - every allocation's job record says pending (placed: the commit
 *     writes the allocation alone), or placed, running or suspended on
 *     that node;
 *   - and the other way: a job record that says placed, running or
 *     suspended has its allocation (every write that ends a placement --
 *     the agent's last report, a release, a drain, a preemption -- deletes
 *     the allocation and rewrites the record in one transaction);
 *   - with --placed FILE (one job id per line): each of those jobs has
 *     exactly one allocation, or has ended (succeeded/failed).
 * Prints one line "pool_check: allocations=N jobs=N violations=N" (and one
 * line per violation) and exits 1 when there is any violation, 2 when etcd
 * cannot be read.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "jobrec.h"
#include "keys.h"
#include "model.h"
#include "strmap.h"

#include "banned.h"

static int s_violations;

static void s_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void s_bad(const char *fmt, ...)
{
    va_list ap;
    s_violations++;
    printf("violation: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

int main(int argc, char **argv)
{
    const char *endpoints = NULL, *prefix = GP_DEFAULT_PREFIX, *placed = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--etcd-endpoints"))
            endpoints = argv[i + 1];
        else if (!strcmp(argv[i], "--prefix"))
            prefix = argv[i + 1];
        else if (!strcmp(argv[i], "--placed"))
            placed = argv[i + 1];
    }
    if (endpoints == NULL) {
        fprintf(stderr, "usage: pool_check --etcd-endpoints URLS [--prefix P] [--placed FILE]\n");
        return 2;
    }
    gp_etcd_config_t cfg = GP_ETCD_CONFIG_INIT;
    cfg.endpoints = endpoints;
    gp_err_t err;
    gp_etcd_t *etcd = gp_etcd_new(&cfg, &err);
    if (etcd == NULL)
        return 2;
    gp_etcd_result_t nodes, allocs, jobs;
    char key[GP_KEY_MAX];
    if (gp_etcd_get(etcd, gp_key_node(key, prefix, NULL, NULL), GP_ETCD_PREFIX, &nodes, &err) < 0) {
        fprintf(stderr, "pool_check: %s\n", err.msg);
        return 2;
    }
    gp_etcd_op_t op = { .type = GP_ETCD_OP_RANGE, .key = gp_key_alloc(key, prefix, NULL, NULL),
                        .flags = GP_ETCD_PREFIX, .revision = nodes.revision };
    if (gp_etcd_do(etcd, &op, &allocs, &err) < 0) {
        fprintf(stderr, "pool_check: %s\n", err.msg);
        return 2;
    }
    op.key = gp_key_job(key, prefix, NULL);
    if (gp_etcd_do(etcd, &op, &jobs, &err) < 0) {
        fprintf(stderr, "pool_check: %s\n", err.msg);
        return 2;
    }

    gp_strmap_t *node_map = gp_strmap_new(), *job_alloc = gp_strmap_new(), *job_rec = gp_strmap_new();
    gp_node_t *nv = calloc(nodes.n_kvs + 1, sizeof *nv);
    for (size_t i = 0; i < nodes.n_kvs; i++) {
        if (gp_node_from_json_str(nodes.kvs[i].value, &nv[i], &err) == 0)
            gp_strmap_put(node_map, nv[i].name, &nv[i]);
    }
    /* Per device: memory and compute used, whole or not, count. */
    typedef struct { int64_t mem; int compute; int whole; int n; } use_t;
    use_t *use = calloc((nodes.n_kvs + 1) * GP_MAX_DEVICES, sizeof *use);
    gp_alloc_t *av = calloc(allocs.n_kvs + 1, sizeof *av);
    for (size_t i = 0; i < allocs.n_kvs; i++) {
        if (gp_alloc_from_json_str(allocs.kvs[i].value, &av[i], &err) < 0) {
            s_bad("unreadable allocation %s", allocs.kvs[i].key);
            continue;
        }
        gp_alloc_t *al = &av[i];
        if (gp_strmap_get(job_alloc, al->job))
            s_bad("job %s has more than one allocation (another on %s)", al->job, al->node);
        gp_strmap_put(job_alloc, al->job, al);
        gp_node_t *n = gp_strmap_get(node_map, al->node);
        if (n == NULL)
            continue;   /* the node is gone: its allocations await release */
        size_t ni = (size_t)(n - nv);
        for (int d = 0; d < al->ndevices; d++) {
            int idx = al->devices[d].index;
            if (idx < 0 || idx >= n->ndevices || strcmp(n->devices[idx].uuid, al->devices[d].uuid)) {
                s_bad("allocation of %s names a device %s does not have", al->job, al->node);
                continue;
            }
            use_t *u = &use[ni * GP_MAX_DEVICES + (size_t)idx];
            u->n++;
            u->whole |= al->devices[d].whole;
            u->mem += al->devices[d].whole ? n->devices[idx].mem_mib : al->devices[d].mem_mib;
            u->compute += al->devices[d].whole ? 1000 : al->devices[d].compute_permille;
        }
    }
    for (size_t i = 0; i < nodes.n_kvs; i++) {
        for (int d = 0; d < nv[i].ndevices; d++) {
            use_t *u = &use[i * GP_MAX_DEVICES + (size_t)d];
            double cap = (double)nv[i].devices[d].mem_mib * (nv[i].oversub >= 1 ? nv[i].oversub : 1);
            if ((double)u->mem > cap)
                s_bad("device %s of %s: memory over-allocated", nv[i].devices[d].uuid, nv[i].name);
            if (u->compute > 1000)
                s_bad("device %s of %s: compute over 100%%", nv[i].devices[d].uuid, nv[i].name);
            if (u->whole && u->n > 1)
                s_bad("device %s of %s: a whole allocation shares it", nv[i].devices[d].uuid,
                      nv[i].name);
        }
    }
    gp_jobrec_t *jr = calloc(jobs.n_kvs + 1, sizeof *jr);
    for (size_t i = 0; i < jobs.n_kvs; i++) {
        if (gp_jobrec_from_json_str(jobs.kvs[i].value, jobs.kvs[i].value_len, &jr[i], &err) < 0) {
            s_bad("unreadable job record %s", jobs.kvs[i].key);
            continue;
        }
        gp_strmap_put(job_rec, jr[i].spec.id, &jr[i]);
    }
    for (size_t i = 0; i < allocs.n_kvs; i++) {
        gp_jobrec_t *r = gp_strmap_get(job_rec, av[i].job);
        if (r == NULL)
            s_bad("allocation of %s has no job record (node %s)", av[i].job, av[i].node);
        else if (r->state != GP_JOB_PENDING &&
                 ((r->state != GP_JOB_PLACED && r->state != GP_JOB_RUNNING &&
                   r->state != GP_JOB_SUSPENDED) ||
                  strcmp(r->node, av[i].node)))
            s_bad("job %s has an allocation on %s but its record disagrees", av[i].job, av[i].node);
    }
    for (size_t i = 0; i < jobs.n_kvs; i++) {
        const gp_jobrec_t *r = &jr[i];
        if ((r->state == GP_JOB_PLACED || r->state == GP_JOB_RUNNING ||
             r->state == GP_JOB_SUSPENDED) && gp_strmap_get(job_alloc, r->spec.id) == NULL)
            s_bad("job %s is %s on %s but has no allocation", r->spec.id,
                  gp_job_state_name(r->state), r->node);
    }
    int expected = 0;
    if (placed) {
        FILE *f = fopen(placed, "r");
        char line[256];
        while (f && fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = '\0';
            if (line[0] == '\0')
                continue;
            expected++;
            gp_jobrec_t *r = gp_strmap_get(job_rec, line);
            int ended = r && (r->state == GP_JOB_SUCCEEDED || r->state == GP_JOB_FAILED);
            if (r == NULL)
                s_bad("acknowledged job %s is not stored", line);
            else if (!ended && gp_strmap_get(job_alloc, line) == NULL)
                s_bad("acknowledged job %s is not placed (state %s)", line,
                      gp_job_state_name(r->state));
        }
        if (f)
            fclose(f);
    }
    printf("pool_check: allocations=%zu jobs=%zu expected_placed=%d violations=%d\n", allocs.n_kvs,
           jobs.n_kvs, expected, s_violations);
    for (size_t i = 0; i < jobs.n_kvs; i++)
        gp_jobrec_clear(&jr[i]);
    free(jr);
    free(av);
    free(use);
    free(nv);
    gp_strmap_destroy(&node_map);
    gp_strmap_destroy(&job_alloc);
    gp_strmap_destroy(&job_rec);
    gp_etcd_result_free(&nodes);
    gp_etcd_result_free(&allocs);
    gp_etcd_result_free(&jobs);
    gp_etcd_destroy(&etcd);
    return s_violations ? 1 : 0;
}
