/*
 * plan.c - `gpupool plan`: what-if questions about the running pool,
 * answered from one read of etcd (see cli.h for the flags).
 *
 * The pool is read with a single range request over the pool's prefix, so
 * the nodes, allocations and job records come from one etcd revision (a
 * consistent view; the revision is printed).  Nothing is written and no
 * coordinator is asked anything: the answers are computed here, with the
 * placement engine (placement.h) the coordinators use, on a copy of the
 * pool built from that read.
 *
 * --drain N1,N2: an engine holds every other node and every allocation on
 * them; the running jobs of the drained nodes are placed into it one by
 * one, the largest first (most devices, then most memory), each placement
 * committed before the next, as the coordinators would place them if they
 * were resubmitted in that order.  The jobs' own specs (pins, filters,
 * models) come from their records.
 *
 * --drain-candidates: consolidation, greedily.  The nodes are tried in
 * order of the least allocated first (fewest allocations, then fewest
 * devices in use, then name); a node joins the set when every running job
 * of the set and of the node still places elsewhere.  The set is one that
 * can be drained together, not necessarily the largest such set (that is
 * a bin-packing problem); the greedy order drains empty nodes first.  With
 * --prices FILE the dearest nodes are tried first (price per hour as
 * gpupool-sim's price file gives it, sim_node_price), so that the set
 * saves the most, and the saving is printed.  Each try builds an engine of
 * the pool afresh: nodes x (nodes + allocations) work, fine for hundreds of
 * nodes, all of it in this process.
 *
 * --add: the pending jobs are placed into the pool as it is, highest
 * priority first, each committed before the next.  Those that place need
 * nothing.  For the others, with --prices FILE --catalog INVENTORY, the
 * cheapest set of nodes to add is gpupool-sim's priced plan (sim_catalog.c,
 * linked in): the catalogue is INVENTORY's node types (gpupool-sim's
 * inventory formats), the workload the jobs left over (handed over as
 * JSON lines in an anonymous memory file), the target 100% placed.
 * Each job that does not place is also checked against an empty copy of
 * every node of the pool: "fits an empty node like N", or "no node of the
 * pool can ever hold it" with the engine's reason.
 */
#include "cli.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sysexits.h>
#include <unistd.h>

#include <jansson.h>

#include "etcd.h"
#include "jobrec.h"
#include "keys.h"
#include "model.h"
#include "placement.h"
#include "sim.h"

#include "banned.h"


typedef struct {
    gp_job_t spec;
    gp_job_state_t state;
    bool have;
} plan_job_t;

typedef struct {
    gp_node_t *nodes;
    int nnodes;
    gp_alloc_t *allocs;
    int nallocs;
    plan_job_t *jobs;
    int njobs;
    int64_t revision;
    const char *policy;
} pool_t;

/* Errors are "gpupool: plan: ..." (cli.h). */
#define s_fail(status, ...) cli_fail(status, "plan: " __VA_ARGS__)

/* arr with room for element n (capacity doubles at powers of two), or
 * NULL when out of memory (arr is then unchanged). */
static void *s_grow(void *arr, int n, size_t size)
{
    if (n > 0 && (n & (n - 1)) != 0)
        return arr;
    return realloc(arr, (size_t)(n ? 2 * n : 8) * size);
}

static void s_pool_free(pool_t *p)
{
    free(p->nodes);
    free(p->allocs);
    free(p->jobs);
    memset(p, 0, sizeof *p);
}

static bool s_has_prefix(const char *s, size_t len, const char *pre)
{
    size_t n = strlen(pre);
    return len >= n && memcmp(s, pre, n) == 0;
}

/* Read the pool: one range of the prefix.  Records that do not parse are
 * reported on stderr and left out. */
static int s_load(gp_etcd_t *etcd, const char *prefix, pool_t *p, gp_err_t *err)
{
    gp_etcd_op_t op = { .type = GP_ETCD_OP_RANGE, .key = prefix, .key_len = strlen(prefix),
                        .flags = GP_ETCD_PREFIX };
    gp_etcd_result_t res = { 0 };
    if (gp_etcd_do(etcd, &op, &res, err) < 0)
        return -1;
    p->revision = res.revision;
    /* the folders as keys.h names them */
    char knodes[GP_KEY_MAX], kalloc[GP_KEY_MAX], kjobs[GP_KEY_MAX];
    gp_key_node(knodes, prefix, NULL, NULL);
    gp_key_alloc(kalloc, prefix, NULL, NULL);
    gp_key_job(kjobs, prefix, NULL);
    size_t jlen = strlen(kjobs);
    int rc = 0;
    for (size_t i = 0; i < res.n_kvs && rc == 0; i++) {
        const gp_etcd_kv_t *kv = &res.kvs[i];
        bool is_node = s_has_prefix(kv->key, kv->key_len, knodes);
        bool is_alloc = s_has_prefix(kv->key, kv->key_len, kalloc);
        bool is_job = s_has_prefix(kv->key, kv->key_len, kjobs) &&
                      !memchr(kv->key + jlen, '/', kv->key_len - jlen);
        if (!is_node && !is_alloc && !is_job)
            continue;
        gp_err_t perr;
        if (is_job) {
            gp_jobrec_t rec;
            gp_jobrec_init(&rec);
            if (gp_jobrec_from_json_str(kv->value, kv->value_len, &rec, &perr) < 0) {
                fprintf(stderr, CLI_PROG ": plan: %.*s: %s (left out)\n", (int)kv->key_len, kv->key,
                        perr.msg);
                continue;
            }
            plan_job_t *grown = s_grow(p->jobs, p->njobs, sizeof *p->jobs);
            if (!grown) {
                gp_jobrec_clear(&rec);
                rc = gp_err_set(err, GP_ERR_NOMEM, "out of memory");
                break;
            }
            p->jobs = grown;
            p->jobs[p->njobs++] = (plan_job_t){ .spec = rec.spec, .state = rec.state, .have = true };
            gp_jobrec_clear(&rec);
            continue;
        }
        json_error_t jerr;
        json_t *doc = json_loadb(kv->value, kv->value_len, 0, &jerr);
        if (!doc) {
            fprintf(stderr, CLI_PROG ": plan: %.*s: %s (left out)\n", (int)kv->key_len, kv->key, jerr.text);
            continue;
        }
        if (is_node) {
            gp_node_t node, *grown = NULL;
            if (gp_node_from_json(doc, &node, &perr) < 0) {
                fprintf(stderr, CLI_PROG ": plan: %.*s: %s (left out)\n", (int)kv->key_len, kv->key,
                        perr.msg);
            } else if (!(grown = s_grow(p->nodes, p->nnodes, sizeof *p->nodes))) {
                rc = gp_err_set(err, GP_ERR_NOMEM, "out of memory");
            } else {
                p->nodes = grown;
                p->nodes[p->nnodes++] = node;
            }
        } else {
            gp_alloc_t a, *grown = NULL;
            if (gp_alloc_from_json(doc, &a, &perr) < 0) {
                fprintf(stderr, CLI_PROG ": plan: %.*s: %s (left out)\n", (int)kv->key_len, kv->key,
                        perr.msg);
            } else if (!(grown = s_grow(p->allocs, p->nallocs, sizeof *p->allocs))) {
                rc = gp_err_set(err, GP_ERR_NOMEM, "out of memory");
            } else {
                p->allocs = grown;
                p->allocs[p->nallocs++] = a;
            }
        }
        json_decref(doc);
    }
    gp_etcd_result_free(&res);
    return rc;
}

static int s_node_index(const pool_t *p, const char *name)
{
    for (int i = 0; i < p->nnodes; i++)
        if (!strcmp(p->nodes[i].name, name))
            return i;
    return -1;
}

static const plan_job_t *s_job(const pool_t *p, const char *id)
{
    for (int i = 0; i < p->njobs; i++)
        if (!strcmp(p->jobs[i].spec.id, id))
            return &p->jobs[i];
    return NULL;
}

/* An engine of the pool's nodes but those with drained[i], with their
 * allocations.  Allocations the engine refuses are reported and left out. */
static gp_placement_t *s_engine(const pool_t *p, const bool *drained, gp_err_t *err)
{
    gp_placement_opts_t o = GP_PLACEMENT_OPTS_DEFAULT;
    o.policy = p->policy;
    gp_placement_t *pl = gp_placement_new(&o, err);
    if (!pl)
        return NULL;
    gp_err_t e;
    for (int i = 0; i < p->nnodes; i++)
        if (!(drained && drained[i]) && gp_placement_add_node(pl, &p->nodes[i], &e) < 0)
            fprintf(stderr, CLI_PROG ": plan: node %s: %s (left out)\n", p->nodes[i].name, e.msg);
    for (int i = 0; i < p->nallocs; i++) {
        int n = s_node_index(p, p->allocs[i].node);
        if (n < 0 || (drained && drained[n]))
            continue;
        if (gp_placement_add_alloc(pl, &p->allocs[i], &e) < 0)
            fprintf(stderr, CLI_PROG ": plan: allocation of %s on %s: %s (left out)\n",
                    p->allocs[i].job, p->allocs[i].node, e.msg);
    }
    return pl;
}

static int64_t s_alloc_mem(const gp_alloc_t *a)
{
    int64_t m = 0;
    for (int d = 0; d < a->ndevices; d++)
        m += a->devices[d].mem_mib;
    return m;
}

/* Largest first: most devices, then most memory, then id. */
static int s_cmp_alloc(const void *x, const void *y)
{
    const gp_alloc_t *a = *(const gp_alloc_t *const *)x, *b = *(const gp_alloc_t *const *)y;
    if (a->ndevices != b->ndevices)
        return b->ndevices - a->ndevices;
    int64_t ma = s_alloc_mem(a), mb = s_alloc_mem(b);
    if (ma != mb)
        return ma < mb ? 1 : -1;
    return strcmp(a->job, b->job);
}

static void s_print_devices(const pool_t *p, const gp_alloc_t *a)
{
    int n = s_node_index(p, a->node);
    for (int d = 0; d < a->ndevices; d++) {
        const gp_alloc_dev_t *ad = &a->devices[d];
        const char *model = n >= 0 && ad->index < p->nodes[n].ndevices
                                ? p->nodes[n].devices[ad->index].model : "?";
        if (ad->whole)
            printf("%s%s[%d] whole", d ? ", " : "", model, ad->index);
        else
            printf("%s%s[%d] %lld MiB %d%%", d ? ", " : "", model, ad->index,
                   (long long)ad->mem_mib, ad->compute_permille / 10);
    }
}

/* Place the allocations of the drained nodes elsewhere.  With verbose,
 * print each move.  Returns the number that do not place, -1 on error. */
static int s_relocate(const pool_t *p, const bool *drained, bool verbose, int *moved, gp_err_t *err)
{
    gp_placement_t *pl = s_engine(p, drained, err);
    if (!pl)
        return -1;
    const gp_alloc_t **todo = calloc((size_t)p->nallocs + 1, sizeof *todo);
    int n = 0, unplaced = 0;
    if (!todo) {
        gp_placement_destroy(&pl);
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < p->nallocs; i++) {
        int k = s_node_index(p, p->allocs[i].node);
        if (k >= 0 && drained[k])
            todo[n++] = &p->allocs[i];
    }
    qsort(todo, (size_t)n, sizeof *todo, s_cmp_alloc);
    for (int i = 0; i < n; i++) {
        const gp_alloc_t *a = todo[i];
        const plan_job_t *j = s_job(p, a->job);
        gp_alloc_t plan;
        gp_err_t e;
        int rc;
        if (!j) {
            rc = gp_err_set(&e, GP_ERR_NOTFOUND, "no job record");
        } else {
            gp_job_t spec = j->spec;
            spec.priority = a->priority;
            rc = gp_placement_place(pl, &spec, &plan, &e);
            if (rc == 0)
                rc = gp_placement_add_alloc(pl, &plan, &e);
        }
        if (rc < 0)
            unplaced++;
        if (verbose && rc == 0) {
            printf("  %s  %s -> %s  ", a->job, a->node, plan.node);
            s_print_devices(p, &plan);
            putchar('\n');
        } else if (verbose) {
            printf("  %s  %s -> nowhere: %s\n", a->job, a->node, e.msg);
        }
    }
    if (moved)
        *moved = n;
    free(todo);
    gp_placement_destroy(&pl);
    return unplaced;
}

static int s_drain(const pool_t *p, const char *list)
{
    bool *drained = calloc((size_t)p->nnodes + 1, sizeof *drained);
    char *copy = strdup(list);
    int rc = EX_OSERR;
    if (!drained || !copy)
        goto cleanup;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int k = s_node_index(p, t);
        if (k < 0) {
            rc = s_fail(EX_DATAERR, "--drain: no node %s in the pool", t);
            goto cleanup;
        }
        drained[k] = true;
    }
    printf("pool at etcd revision %lld: %d nodes, %d allocations; policy %s\n",
           (long long)p->revision, p->nnodes, p->nallocs, p->policy);
    printf("drain %s:\n", list);
    gp_err_t err;
    int moved = 0;
    int unplaced = s_relocate(p, drained, true, &moved, &err);
    if (unplaced < 0) {
        rc = s_fail(EX_SOFTWARE, "%s", err.msg);
        goto cleanup;
    }
    if (moved == 0)
        printf("  no running jobs\n");
    if (unplaced == 0) {
        printf("can drain: all %d jobs place elsewhere now\n", moved);
        rc = 0;
    } else {
        printf("cannot drain: %d of %d jobs place nowhere else\n", unplaced, moved);
        rc = 1;
    }
cleanup:
    free(copy);
    free(drained);
    return rc;
}

typedef struct {
    int node;
    int allocs;
    int devices;
    double price;            /* per hour; 0 without --prices */
} load_t;

/* The dearest first (with prices), then the least allocated. */
static int s_cmp_load(const void *x, const void *y)
{
    const load_t *a = x, *b = y;
    if (a->price != b->price)
        return a->price < b->price ? 1 : -1;
    if (a->allocs != b->allocs)
        return a->allocs - b->allocs;
    if (a->devices != b->devices)
        return a->devices - b->devices;
    return a->node - b->node;
}

static int s_drain_candidates(const pool_t *p, const char *prices)
{
    bool *drained = calloc((size_t)p->nnodes + 1, sizeof *drained);
    load_t *order = calloc((size_t)p->nnodes + 1, sizeof *order);
    int rc = EX_OSERR;
    if (!drained || !order)
        goto cleanup;
    gp_err_t err;
    for (int i = 0; i < p->nnodes; i++) {
        order[i].node = i;
        if (prices && sim_node_price(prices, &p->nodes[i], &order[i].price, &err) < 0) {
            rc = s_fail(EX_DATAERR, "%s", err.msg);
            goto cleanup;
        }
    }
    for (int i = 0; i < p->nallocs; i++) {
        int k = s_node_index(p, p->allocs[i].node);
        if (k >= 0) {
            order[k].allocs++;
            order[k].devices += p->allocs[i].ndevices;
        }
    }
    qsort(order, (size_t)p->nnodes, sizeof *order, s_cmp_load);
    printf("pool at etcd revision %lld: %d nodes, %d allocations; policy %s\n",
           (long long)p->revision, p->nnodes, p->nallocs, p->policy);
    int count = 0;
    double saved = 0;
    for (int i = 0; i < p->nnodes; i++) {
        int k = order[i].node;
        drained[k] = true;
        int unplaced = s_relocate(p, drained, false, NULL, &err);
        if (unplaced < 0) {
            rc = s_fail(EX_SOFTWARE, "%s", err.msg);
            goto cleanup;
        }
        if (unplaced > 0) {
            drained[k] = false;
            continue;
        }
        count++;
        saved += order[i].price;
    }
    printf("drainable together: %d of %d nodes", count, p->nnodes);
    if (prices)
        printf(", saving %.2f per hour", saved);
    putchar('\n');
    for (int i = 0; i < p->nnodes; i++) {
        int k = order[i].node;
        if (!drained[k])
            continue;
        const gp_node_t *n = &p->nodes[k];
        printf("  %s  cloud %s region %s, %d devices%s%s, %d jobs running", n->name,
               n->cloud[0] ? n->cloud : "-", n->region[0] ? n->region : "-", n->ndevices,
               n->ndevices ? " of " : "", n->ndevices ? n->devices[0].model : "", order[i].allocs);
        if (prices)
            printf(", %.2f per hour", order[i].price);
        putchar('\n');
    }
    if (count > 0) {
        printf("where their jobs go:\n");
        int moved = 0;
        if (s_relocate(p, drained, true, &moved, &err) < 0) {
            rc = s_fail(EX_SOFTWARE, "%s", err.msg);
            goto cleanup;
        }
        if (moved == 0)
            printf("  (no running jobs)\n");
    }
    rc = 0;
cleanup:
    free(order);
    free(drained);
    return rc;
}

static int s_cmp_prio(const void *x, const void *y)
{
    const plan_job_t *a = *(const plan_job_t *const *)x, *b = *(const plan_job_t *const *)y;
    if (a->spec.priority != b->spec.priority)
        return b->spec.priority - a->spec.priority;
    return strcmp(a->spec.id, b->spec.id);
}

/* The first node of the pool that holds job when empty, or -1 (reason in
 * err). */
static int s_fits_empty(const pool_t *p, const gp_job_t *job, gp_err_t *err)
{
    gp_placement_opts_t o = GP_PLACEMENT_OPTS_DEFAULT;
    o.policy = p->policy;
    gp_err_set(err, GP_ERR_NOTFOUND, "the pool has no nodes");
    for (int i = 0; i < p->nnodes; i++) {
        gp_placement_t *pl = gp_placement_new(&o, err);
        if (!pl)
            return -1;
        gp_alloc_t plan;
        int ok = gp_placement_add_node(pl, &p->nodes[i], err) == 0 &&
                 gp_placement_place(pl, job, &plan, err) == 0;
        gp_placement_destroy(&pl);
        if (ok)
            return i;
    }
    return -1;
}

/* The cheapest nodes for the jobs left[0..n) from the catalogue, through
 * gpupool-sim's priced plan. */
static int s_add_priced(const pool_t *p, const plan_job_t **left, int n, const char *prices,
                        const char *catalog)
{
    int rc = EX_DATAERR, fd = -1;
    char path[64];
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = NULL;
    json_t *doc = NULL;
    sim_data_t d = { 0 };
    gp_err_t err;
    fd = memfd_create("gpupool-plan-pending", MFD_CLOEXEC);
    if (fd < 0) {
        rc = s_fail(EX_OSERR, "memfd_create failed");
        goto cleanup;
    }
    for (int i = 0; i < n; i++) {
        json_t *j = gp_job_to_json(&left[i]->spec);
        char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
        bool ok = line && dprintf(fd, "%s\n", line) > 0;
        free(line);
        json_decref(j);
        if (!ok) {
            rc = s_fail(EX_OSERR, "cannot hand the pending jobs over");
            goto cleanup;
        }
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (sim_load_nodes(&d, catalog, NULL, &err) < 0 || sim_load_pods(&d, path, "jsonl", &err) < 0) {
        rc = s_fail(EX_DATAERR, "%s", err.msg);
        goto cleanup;
    }
    uint64_t seed = 1;
    sim_plan_opts_t o = { .policy = p->policy, .seeds = &seed, .nseeds = 1, .success = 100,
                          .json = true, .prices = prices };
    if (!(mem = open_memstream(&buf, &len))) {
        rc = s_fail(EX_OSERR, "open_memstream failed");
        goto cleanup;
    }
    int prc = sim_plan_priced(&d, &o, mem, &err);
    fclose(mem);
    mem = NULL;
    if (prc < 0) {
        rc = s_fail(err.code == GP_ERR_NOTFOUND ? 1 : EX_DATAERR, "%s", err.msg);
        goto cleanup;
    }
    doc = json_loads(buf, 0, NULL);
    json_t *shared = json_object_get(doc, "shared");
    json_t *types = json_object_get(shared, "by_type");
    if (!json_is_array(types)) {
        rc = s_fail(EX_SOFTWARE, "the priced plan's answer is not understood");
        goto cleanup;
    }
    size_t k;
    json_t *t;
    json_array_foreach(types, k, t) {
        json_int_t nodes = json_integer_value(json_object_get(t, "nodes"));
        const char *model = json_string_value(json_object_get(t, "model"));
        printf("add %lld %s node%s in cloud %s, region %s (type %s, %lld GPUs, %.2f per hour)\n",
               (long long)nodes, model ? model : "CPU-only", nodes == 1 ? "" : "s",
               json_string_value(json_object_get(t, "cloud")),
               json_string_value(json_object_get(t, "region")),
               json_string_value(json_object_get(t, "type")),
               (long long)json_integer_value(json_object_get(t, "gpus")),
               json_real_value(json_object_get(t, "cost_per_hour")));
    }
    printf("total: %lld nodes, %lld GPUs, %.2f per hour (%s)\n",
           (long long)json_integer_value(json_object_get(shared, "nodes")),
           (long long)json_integer_value(json_object_get(shared, "gpus")),
           json_real_value(json_object_get(shared, "cost_per_hour")),
           json_is_true(json_object_get(shared, "optimal")) ? "optimal" : "best found");
    rc = 0;
cleanup:
    if (mem)
        fclose(mem);
    free(buf);
    json_decref(doc);
    sim_data_free(&d);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int s_add(const pool_t *p, const char *prices, const char *catalog)
{
    const plan_job_t **pend = calloc((size_t)p->njobs + 1, sizeof *pend);
    const plan_job_t **left = calloc((size_t)p->njobs + 1, sizeof *left);
    gp_placement_t *pl = NULL;
    int rc = EX_OSERR, n = 0, nleft = 0;
    gp_err_t err;
    if (!pend || !left)
        goto cleanup;
    for (int i = 0; i < p->njobs; i++)
        if (p->jobs[i].state == GP_JOB_PENDING)
            pend[n++] = &p->jobs[i];
    qsort(pend, (size_t)n, sizeof *pend, s_cmp_prio);
    printf("pool at etcd revision %lld: %d nodes, %d allocations, %d pending jobs; policy %s\n",
           (long long)p->revision, p->nnodes, p->nallocs, n, p->policy);
    if (!(pl = s_engine(p, NULL, &err))) {
        rc = s_fail(EX_SOFTWARE, "%s", err.msg);
        goto cleanup;
    }
    for (int i = 0; i < n; i++) {
        gp_alloc_t plan;
        if (gp_placement_place(pl, &pend[i]->spec, &plan, &err) == 0 &&
            gp_placement_add_alloc(pl, &plan, &err) == 0) {
            printf("  %s  places now on %s\n", pend[i]->spec.id, plan.node);
            continue;
        }
        left[nleft++] = pend[i];
        int k = s_fits_empty(p, &pend[i]->spec, &err);
        if (k >= 0)
            printf("  %s  does not place now; it fits an empty node like %s\n", pend[i]->spec.id,
                   p->nodes[k].name);
        else
            printf("  %s  no node of the pool can ever hold it: %s\n", pend[i]->spec.id, err.msg);
    }
    if (nleft == 0) {
        printf("nothing to add: every pending job places now\n");
        rc = 0;
    } else if (prices) {
        rc = s_add_priced(p, left, nleft, prices, catalog);
    } else {
        printf("%d pending jobs need more nodes (--prices FILE --catalog INVENTORY: the cheapest)\n",
               nleft);
        rc = 1;
    }
cleanup:
    gp_placement_destroy(&pl);
    free(pend);
    free(left);
    return rc;
}

typedef struct {
    cli_etcd_flags_t etcd;
    char *drain, *policy, *prices, *catalog;
    int candidates, add;
} s_plan_args_t;

static const gp_opt_t s_plan_opts[] = {
    CLI_ETCD_OPTIONS(s_plan_args_t, etcd),
    { "drain", GP_OPT_STRING, offsetof(s_plan_args_t, drain), NULL, 0, 0, "NODE[,NODE...]" },
    { "drain-candidates", GP_OPT_BOOL, offsetof(s_plan_args_t, candidates), "no", 0, 0,
      "nodes that can go together" },
    { "add", GP_OPT_BOOL, offsetof(s_plan_args_t, add), "no", 0, 0, "nodes the pending jobs need" },
    { "prices", GP_OPT_STRING, offsetof(s_plan_args_t, prices), NULL, 0, 0, "price list" },
    { "catalog", GP_OPT_STRING, offsetof(s_plan_args_t, catalog), NULL, 0, 0, "node types" },
    { "policy", GP_OPT_STRING, offsetof(s_plan_args_t, policy), "gpupool", 0, 0, "placement policy" },
    { NULL, 0, 0, NULL, 0, 0, NULL },
};

static int s_plan(const s_plan_args_t *a, const char *usage);

int cli_plan(int argc, char **argv)
{
    static const char usage[] =
        "gpupool plan --drain NODE[,NODE...] | --drain-candidates [--prices FILE] | "
        "--add [--prices FILE --catalog INVENTORY] [--policy P] [--etcd-endpoints URLS] "
        "[--etcd-ca F] [--etcd-cert F] [--etcd-key F] [--etcd-user U] [--prefix P]";
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: %s\n", usage);
            return 0;
        }
    s_plan_args_t a = { 0 };
    int rc = cli_args(s_plan_opts, &a, &argc, argv, usage);
    if (rc == 0 && argc > 1)
        rc = s_fail(EX_USAGE, "unknown argument %s\nusage: %s", argv[1], usage);
    if (rc == 0)
        rc = s_plan(&a, usage);
    gp_config_free(s_plan_opts, &a);
    return rc;
}

static int s_plan(const s_plan_args_t *a, const char *usage)
{
    cli_etcd_opts_t eo;
    cli_etcd_opts_from(&eo, &a->etcd);
    const char *drain = *a->drain ? a->drain : NULL, *policy = a->policy;
    const char *prices = *a->prices ? a->prices : NULL, *catalog = *a->catalog ? a->catalog : NULL;
    bool candidates = a->candidates, add = a->add;
    if (!!drain + candidates + add != 1)
        return s_fail(EX_USAGE, "one of --drain, --drain-candidates, --add\nusage: %s", usage);
    if (catalog && (!add || !prices))
        return s_fail(EX_USAGE, "--catalog goes with --add and --prices");
    if (prices && !candidates && !(add && catalog))
        return s_fail(EX_USAGE, "--prices goes with --drain-candidates, or --add and --catalog");
    if (!gp_prefix_valid(eo.prefix))
        return s_fail(EX_USAGE, "--prefix \"%s\" must start and end with '/'", eo.prefix);
    bool known = false;
    for (const char *const *n = gp_policy_names(); *n; n++)
        known |= !strcmp(*n, policy);
    if (!known)
        return s_fail(EX_USAGE, "--policy: unknown policy \"%s\"", policy);

    int rc;
    gp_err_t err;
    pool_t pool = { .policy = policy };
    gp_etcd_t *etcd = cli_etcd_open(&eo, &err);
    if (!etcd) {
        rc = s_fail(EX_USAGE, "%s", err.msg);
        goto cleanup;
    }
    if (s_load(etcd, eo.prefix, &pool, &err) < 0) {
        rc = s_fail(EX_UNAVAILABLE, "etcd: %s", err.msg);
        goto cleanup;
    }
    rc = drain ? s_drain(&pool, drain) : candidates ? s_drain_candidates(&pool, prices)
                                                    : s_add(&pool, prices, catalog);
cleanup:
    s_pool_free(&pool);
    gp_etcd_destroy(&etcd);
    return rc;
}
