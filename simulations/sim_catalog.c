/*
 * sim_catalog.c - the cheapest inventory that places a workload, from a
 * catalogue of node types with prices (gpupool-sim plan --prices).
 *
 * The catalogue is the inventory file's distinct node kinds (model, GPU
 * count, CPU, memory and, for node records, cloud, region, zone and
 * labels), each named by its "type" label (else "<GPUs>x<model>", or
 * "cpu<cores>").  A kind's price per hour comes from the price file:
 *
 *     # cloud  what            price per hour
 *     aws      type=g5.12xlarge  5.672     a node type in one cloud
 *     *        type=g5.12xlarge  5.672     a node type in any cloud
 *     gcp      gpu=T4            0.35      per GPU of a model in one cloud
 *     *        gpu=A10           1.10      per GPU of a model anywhere
 *
 * The most specific line wins (a type in its cloud, a type anywhere, a
 * model in the cloud, a model anywhere).  Whitespace separates the columns;
 * "#" starts a comment.  A kind without a price is an error naming the
 * inventory's line.
 *
 * The question: the counts x[k] of each kind whose total price is least
 * among the inventories where the workload places at the success target
 * (the snapshot of sim_plan.c: every pod once, in each seed's order, mean
 * success over the seeds), with at most --max-nodes per cloud.  Each job's
 * pins (clouds, regions, zones, models) are the engine's filters as ever.
 *
 * The oracle is a replay, so the search cannot be a formula.  It runs in
 * three steps:
 *
 *   1. Construction, as Karpenter provisions: replay on the inventory so
 *      far, take the pods left unplaced, and for each kind place them on one
 *      empty node of that kind; add nodes of the kind that places the most
 *      demand per unit of price (about half of what the unplaced pods would
 *      need of it, at least one), and repeat until the target is met.
 *   2. Improvement, as Karpenter consolidates: remove a node while the
 *      target still holds (dearest kinds first), replace a node by a
 *      cheaper one, or two by one, while that is cheaper and holds.
 *   3. Proof: walk the inventories cheaper than the one found in order of
 *      price (a best-first enumeration: from the empty inventory, each
 *      successor adds one node of a kind no earlier than the last one
 *      added, so each vector is met once), skipping those that cannot hold
 *      the workload by a capacity bound, and replaying the others.  The
 *      first that meets the target is the cheapest; if none does, the one
 *      found is.  The bound: pods that fit only a set F of kinds need, in
 *      each resource (device compute, device memory as a share and in MiB,
 *      CPU, host memory), what they ask less the largest asks that
 *      the success target lets fail, from the kinds in F.  A vector's
 *      successors only add kinds from its last one on, so each shortfall
 *      bought at the cheapest unit price among those kinds bounds the cost
 *      of every inventory below it: a branch whose bound reaches the price
 *      of the one found is not walked.  The walk stops
 *      after S_PROOF_POPS inventories or S_PROOF_PODS pods replayed (all
 *      replays together); the plan then says it is the best found, not
 *      that it is optimal.
 *
 * With --exhaustive N, every inventory of 0..N nodes per kind is replayed
 * instead (no bound, no heuristics): the check the tests compare with.
 */
#include "sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util.h"

#include "banned.h"

#define S_MAX_KINDS 64

/* The resources of the capacity bound.  Memory and compute shares of a
 * device are separate: slices whose larger shares differ in kind can share
 * a device beyond the sum of their larger shares. */
enum { S_RES_COMPUTE, S_RES_DEVMEM_SHARE, S_RES_DEVMEM_MIB, S_RES_CPU, S_RES_HOSTMEM, S_NRES };
/* Budgets, in pods replayed (a replay of n pods costs n), so that a small
 * workload gets many replays and a large one few: improvement, proof. */
#define S_IMPROVE_PODS 200000
#define S_PROOF_PODS 100000
#define S_PROOF_POPS 200000

typedef struct {
    char cloud[GP_SHORT_LEN];
    bool is_type;            /* type=NAME, else gpu=MODEL */
    char name[GP_SHORT_LEN];
    double price;
    int line;
} s_price_t;

typedef struct {
    int tmpl;                /* a node of this kind in d->nodes */
    char type[GP_SHORT_LEN], cloud[GP_SHORT_LEN], region[GP_SHORT_LEN];
    double price;
    int cloud_ix;
    double cap[S_NRES];      /* per resource (S_RES_*) */
} s_type_t;

typedef struct {
    const sim_data_t *d;
    const sim_plan_opts_t *o;
    s_type_t t[S_MAX_KINDS];
    int nt;
    char clouds[S_MAX_KINDS][GP_SHORT_LEN];
    int limit[S_MAX_KINDS];  /* per cloud, -1 none */
    bool limited;            /* some cloud has a limit */
    int nclouds;
    const gp_shape_t *sh;
    const double *w;
    int ns;
    bool whole;
    /* the capacity bound */
    uint64_t *fitmask;       /* per pod */
    uint64_t masks[256];
    double dem[256][S_NRES]; /* per mask, per resource */
    double ratio[256][S_NRES][S_MAX_KINDS + 1];  /* least price per unit among kinds >= k */
    int nmasks;
    bool bound_ok;           /* false: too many masks, no bound */
    int never;               /* pods no kind can hold */
    int drops;               /* pods the target lets fail */
    int evals;
    gp_job_t *job;
    gp_alloc_t *plan;
    gp_err_t *err;
} s_ctx_t;

typedef struct {
    int x[S_MAX_KINDS];
    double cost, success;
    int64_t gpus;
    int nodes;
    bool found, optimal;
    int evals;
} s_sol_t;

/* ---------------------------------------------------------------- prices */

static int s_load_prices(const char *path, s_price_t **out, int *n, gp_err_t *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return gp_err_errno(err, "%s", path);
    s_price_t *p = NULL;
    int np = 0, cap = 0, lineno = 0, rc = -1;
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) >= 0) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *save = NULL, *col[4];
        int nc = 0;
        for (char *t = strtok_r(line, " \t\r\n", &save); t && nc < 4;
             t = strtok_r(NULL, " \t\r\n", &save))
            col[nc++] = t;
        if (nc == 0)
            continue;
        if (nc != 3) {
            gp_err_set(err, GP_ERR_INVALID, "%s:%d: expected CLOUD type=NAME|gpu=MODEL PRICE",
                       path, lineno);
            goto cleanup;
        }
        if (np == cap) {
            cap = cap ? cap * 2 : 32;
            s_price_t *q = realloc(p, sizeof *q * (size_t)cap);
            if (q == NULL) {
                gp_err_set(err, GP_ERR_NOMEM, "out of memory");
                goto cleanup;
            }
            p = q;
        }
        s_price_t *e = &p[np];
        memset(e, 0, sizeof *e);
        e->line = lineno;
        if (strncmp(col[1], "type=", 5) == 0)
            e->is_type = true;
        else if (strncmp(col[1], "gpu=", 4) != 0) {
            gp_err_set(err, GP_ERR_INVALID, "%s:%d: \"%s\": expected type=NAME or gpu=MODEL",
                       path, lineno, col[1]);
            goto cleanup;
        }
        const char *name = col[1] + (e->is_type ? 5 : 4);
        if (name[0] == '\0' || gp_strlcpy(e->name, name, sizeof e->name) >= sizeof e->name ||
            gp_strlcpy(e->cloud, col[0], sizeof e->cloud) >= sizeof e->cloud) {
            gp_err_set(err, GP_ERR_INVALID, "%s:%d: empty or too long a name", path, lineno);
            goto cleanup;
        }
        if (gp_parse_double(col[2], 0, 1e9, &e->price) < 0) {
            gp_err_set(err, GP_ERR_INVALID, "%s:%d: \"%s\" is not a price >= 0", path, lineno,
                       col[2]);
            goto cleanup;
        }
        for (int i = 0; i < np; i++)
            if (p[i].is_type == e->is_type && !strcmp(p[i].name, e->name) &&
                !strcmp(p[i].cloud, e->cloud)) {
                gp_err_set(err, GP_ERR_INVALID, "%s:%d: %s %s is priced already on line %d",
                           path, lineno, col[0], col[1], p[i].line);
                goto cleanup;
            }
        np++;
    }
    if (np == 0) {
        gp_err_set(err, GP_ERR_INVALID, "%s: no prices", path);
        goto cleanup;
    }
    rc = 0;
cleanup:
    free(line);
    fclose(f);
    if (rc == 0) {
        *out = p;
        *n = np;
    } else {
        free(p);
    }
    return rc;
}

static const s_price_t *s_price_of(const s_price_t *p, int np, bool is_type, const char *name,
                                   const char *cloud)
{
    for (int i = 0; i < np; i++)
        if (p[i].is_type == is_type && !strcmp(p[i].name, name) && !strcmp(p[i].cloud, cloud))
            return &p[i];
    for (int i = 0; i < np; i++)
        if (p[i].is_type == is_type && !strcmp(p[i].name, name) && !strcmp(p[i].cloud, "*"))
            return &p[i];
    return NULL;
}

/* The hourly price of one node record (sim.h). */
int sim_node_price(const char *prices, const gp_node_t *node, double *price, gp_err_t *err)
{
    s_price_t *p = NULL;
    int np = 0;
    if (s_load_prices(prices, &p, &np, err) < 0)
        return -1;
    char type[GP_SHORT_LEN + 16];
    const char *model = node->ndevices > 0 ? node->devices[0].model : NULL;
    const char *cloud = node->cloud[0] ? node->cloud : "-";
    if (model)
        snprintf(type, sizeof type, "%dx%s", node->ndevices, model);
    else
        snprintf(type, sizeof type, "cpu%lld", (long long)(node->cpu_milli / 1000));
    for (int l = 0; l < node->nlabels; l++)
        if (!strcmp(node->labels[l].key, "type"))
            gp_strlcpy(type, node->labels[l].value, sizeof type);
    const s_price_t *pr = s_price_of(p, np, true, type, cloud);
    int rc = 0;
    if (pr != NULL)
        *price = pr->price;
    else if (model && (pr = s_price_of(p, np, false, model, cloud)) != NULL)
        *price = pr->price * node->ndevices;
    else
        rc = gp_err_set(err, GP_ERR_INVALID, "%s: no price for node %s (type %s in cloud %s)",
                        prices, node->name, type, cloud);
    free(p);
    return rc;
}

/* ------------------------------------------------------------- catalogue */

static int s_cloud_ix(s_ctx_t *c, const char *cloud)
{
    for (int i = 0; i < c->nclouds; i++)
        if (!strcmp(c->clouds[i], cloud))
            return i;
    gp_strlcpy(c->clouds[c->nclouds], cloud, sizeof c->clouds[0]);
    c->limit[c->nclouds] = -1;
    return c->nclouds++;
}

static int s_catalogue(s_ctx_t *c, const s_price_t *p, int np, gp_err_t *err)
{
    const sim_data_t *d = c->d;
    for (int i = 0; i < d->nnodes; i++) {
        const sim_node_t *n = &d->nodes[i];
        int k;
        for (k = 0; k < c->nt; k++)
            if (sim_node_same_kind(n, &d->nodes[c->t[k].tmpl]))
                break;
        if (k < c->nt)
            continue;
        if (c->nt == S_MAX_KINDS)
            return gp_err_set(err, GP_ERR_INVALID, "%s: more than %d node kinds",
                              d->nodes_path, S_MAX_KINDS);
        s_type_t *t = &c->t[c->nt];
        memset(t, 0, sizeof *t);
        t->tmpl = i;
        const char *model = n->ngpu > 0 ? d->models[n->model].name : NULL;
        if (model)
            snprintf(t->type, sizeof t->type, "%dx%s", n->ngpu, model);
        else
            snprintf(t->type, sizeof t->type, "cpu%lld", (long long)(n->cpu / 1000));
        gp_strlcpy(t->cloud, "-", sizeof t->cloud);
        gp_strlcpy(t->region, "-", sizeof t->region);
        if (n->full) {
            for (int l = 0; l < n->full->nlabels; l++)
                if (!strcmp(n->full->labels[l].key, "type"))
                    gp_strlcpy(t->type, n->full->labels[l].value, sizeof t->type);
            if (n->full->cloud[0])
                gp_strlcpy(t->cloud, n->full->cloud, sizeof t->cloud);
            if (n->full->region[0])
                gp_strlcpy(t->region, n->full->region, sizeof t->region);
        }
        const s_price_t *pr = s_price_of(p, np, true, t->type, t->cloud);
        if (pr != NULL) {
            t->price = pr->price;
        } else if (model && (pr = s_price_of(p, np, false, model, t->cloud)) != NULL) {
            t->price = pr->price * n->ngpu;
        } else {
            return gp_err_set(err, GP_ERR_INVALID, "%s:%d: no price for node type %s in cloud "
                              "%s (give \"%s type=%s PRICE\"%s%s%s)", d->nodes_path, n->line,
                              t->type, t->cloud, t->cloud, t->type, model ? " or \"" : "",
                              model ? model : "", model ? " per GPU\"" : "");
        }
        t->cloud_ix = s_cloud_ix(c, t->cloud);
        t->cap[S_RES_COMPUTE] = 1000.0 * n->ngpu;
        t->cap[S_RES_CPU] = (double)n->cpu;
        t->cap[S_RES_HOSTMEM] = (double)n->mem;
        double oversub = n->full && n->full->oversub > 1 ? n->full->oversub : 1;
        t->cap[S_RES_DEVMEM_SHARE] = 1000.0 * n->ngpu * oversub;
        if (n->full) {
            for (int g = 0; g < n->full->ndevices; g++)
                t->cap[S_RES_DEVMEM_MIB] += (double)n->full->devices[g].mem_mib * oversub;
        } else if (n->ngpu) {
            t->cap[S_RES_DEVMEM_MIB] = (double)n->ngpu * (double)d->models[n->model].mem_mib;
        }
        c->nt++;
    }
    return 0;
}

/* "aws=10,gcp=4" */
static int s_limits(s_ctx_t *c, const char *spec, gp_err_t *err)
{
    if (spec == NULL)
        return 0;
    char *buf = strdup(spec);
    if (buf == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    char *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        int64_t v;
        if (eq == NULL || (*eq = '\0', gp_parse_int64(eq + 1, 0, 1000000, &v) < 0)) {
            rc = gp_err_set(err, GP_ERR_INVALID, "--max-nodes: \"%s\" is not CLOUD=N", t);
            break;
        }
        int i;
        for (i = 0; i < c->nclouds; i++)
            if (!strcmp(c->clouds[i], t))
                break;
        if (i == c->nclouds) {
            rc = gp_err_set(err, GP_ERR_INVALID, "--max-nodes: no node type in cloud \"%s\"", t);
            break;
        }
        c->limit[i] = (int)v;
        c->limited = true;
    }
    free(buf);
    return rc;
}

static bool s_within_limits(const s_ctx_t *c, const int *x)
{
    if (!c->limited)
        return true;
    int used[S_MAX_KINDS] = {0};
    for (int k = 0; k < c->nt; k++)
        used[c->t[k].cloud_ix] += x[k];
    for (int i = 0; i < c->nclouds; i++)
        if (c->limit[i] >= 0 && used[i] > c->limit[i])
            return false;
    return true;
}

static double s_cost(const s_ctx_t *c, const int *x)
{
    double s = 0;
    for (int k = 0; k < c->nt; k++)
        s += x[k] * c->t[k].price;
    return s;
}

/* ------------------------------------------------------------ the oracle */

static void s_job_of(const s_ctx_t *c, int pod, gp_job_t *job)
{
    const sim_pod_t *p = &c->d->pods[pod];
    sim_pod_job(c->d, p, job);
    snprintf(job->id, sizeof job->id, "p%d", pod);
    if (c->whole && job->devices > 0 && !job->whole) {
        job->whole = true;
        job->mem_mib = 0;
        job->mem_permille = 0;
        job->compute_permille = 0;
    }
}

static gp_placement_t *s_engine(s_ctx_t *c, const int *x, uint64_t seed)
{
    gp_placement_opts_t po = GP_PLACEMENT_OPTS_DEFAULT;
    po.policy = c->o->policy;
    po.seed = seed;
    if (c->o->candidates > 0)
        po.max_candidates = c->o->candidates;
    gp_placement_t *pl = gp_placement_new(&po, c->err);
    gp_node_t *rec = malloc(sizeof *rec);
    if (pl == NULL || rec == NULL) {
        if (pl)
            gp_err_set(c->err, GP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    int idx = 0;
    for (int k = 0; k < c->nt; k++)
        for (int i = 0; i < x[k]; i++) {
            sim_node_record(c->d, &c->d->nodes[c->t[k].tmpl], 0, rec);
            snprintf(rec->name, sizeof rec->name, "plan-%d", idx);
            for (int g = 0; g < rec->ndevices; g++)
                snprintf(rec->devices[g].uuid, sizeof rec->devices[g].uuid, "plan-%d-%d", idx, g);
            idx++;
            if (gp_placement_add_node(pl, rec, c->err) < 0)
                goto fail;
        }
    if (c->ns > 0 && gp_placement_set_typical(pl, c->sh, c->w, c->ns, c->err) < 0)
        goto fail;
    free(rec);
    return pl;
fail:
    free(rec);
    gp_placement_destroy(&pl);
    return NULL;
}

/* Replay the snapshot on x with one seed: every pod once, in the seed's
 * order (as sim_run with no inflation).  *placed gets the count; failed,
 * when given, the pods left (their count in *nfailed). */
static int s_snapshot(s_ctx_t *c, const int *x, uint64_t seed, int *placed, int *failed,
                      int *nfailed)
{
    const sim_data_t *d = c->d;
    int *order = malloc(sizeof *order * (size_t)d->npods);
    gp_placement_t *pl = NULL;
    int rc = -1;
    if (order == NULL) {
        gp_err_set(c->err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if ((pl = s_engine(c, x, seed)) == NULL)
        goto cleanup;
    uint64_t rs = seed;
    for (int i = 0; i < d->npods; i++)
        order[i] = i;
    for (long i = d->npods - 1; i > 0; i--) {          /* Fisher-Yates, as sim_run */
        long j = (long)(sim_rand(&rs) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    int ok = 0, nf = 0;
    for (int i = 0; i < d->npods; i++) {
        s_job_of(c, order[i], c->job);
        snprintf(c->job->id, sizeof c->job->id, "p%d", i);
        gp_err_t e;
        if (gp_placement_place(pl, c->job, c->plan, &e) == 0 &&
            gp_placement_add_alloc(pl, c->plan, &e) == 0) {
            ok++;
        } else if (e.code != GP_ERR_NOTFOUND) {
            gp_err_set(c->err, e.code, "%s:%d: %s", d->pods_path, d->pods[order[i]].line, e.msg);
            goto cleanup;
        } else if (failed) {
            failed[nf++] = order[i];
        }
    }
    *placed = ok;
    if (nfailed)
        *nfailed = nf;
    rc = 0;
cleanup:
    gp_placement_destroy(&pl);
    free(order);
    return rc;
}

/* Mean success over the seeds, percent. */
static int s_eval(s_ctx_t *c, const int *x, double *success)
{
    double s = 0;
    c->evals++;
    for (int i = 0; i < c->o->nseeds; i++) {
        int placed;
        if (s_snapshot(c, x, c->o->seeds[i], &placed, NULL, NULL) < 0)
            return -1;
        s += c->d->npods > 0 ? 100.0 * placed / c->d->npods : 100;
    }
    *success = s / c->o->nseeds;
    return 0;
}

static int s_meets(s_ctx_t *c, const int *x, bool *ok)
{
    double s;
    if (s_eval(c, x, &s) < 0)
        return -1;
    *ok = s >= c->o->success - 1e-9;
    return 0;
}

/* ------------------------------------------------------ the capacity bound */

/* What a pod takes of each resource, at least, wherever it goes. */
static void s_demand(const s_ctx_t *c, int pod, double *dem)
{
    const sim_pod_t *p = &c->d->pods[pod];
    for (int r = 0; r < S_NRES; r++)
        dem[r] = 0;
    dem[S_RES_CPU] = (double)p->cpu;
    dem[S_RES_HOSTMEM] = (double)p->mem;
    if (p->n == 0)
        return;
    if (c->whole || p->whole) {
        dem[S_RES_COMPUTE] = dem[S_RES_DEVMEM_SHARE] = 1000.0 * p->n;
        return;
    }
    dem[S_RES_COMPUTE] = (double)p->comp_pm * p->n;
    if (p->mem_mib > 0)
        dem[S_RES_DEVMEM_MIB] = (double)p->mem_mib * p->n;
    else if (p->mem_pm > 1)   /* a share's MiB are rounded down: less than a permille off */
        dem[S_RES_DEVMEM_SHARE] = (double)(p->mem_pm - 1) * p->n;
}

static int s_cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* Which kinds each pod fits alone (an engine with one empty node of each
 * kind), the pods no kind holds, and per set of kinds the demand that
 * must go there. */
static int s_bound_init(s_ctx_t *c)
{
    const sim_data_t *d = c->d;
    int ones[S_MAX_KINDS];
    gp_placement_t *pl = NULL;
    double *v = NULL;
    int rc = -1;
    c->fitmask = calloc((size_t)d->npods + 1, sizeof *c->fitmask);
    v = malloc(sizeof *v * ((size_t)d->npods + 1));
    if (c->fitmask == NULL || v == NULL) {
        gp_err_set(c->err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    for (int k = 0; k < c->nt; k++)
        ones[k] = 1;
    if ((pl = s_engine(c, ones, 1)) == NULL)
        goto cleanup;
    c->never = 0;
    for (int i = 0; i < d->npods; i++) {
        /* pods read from one line (a count) are alike: ask once */
        if (i > 0 && d->pods[i].line == d->pods[i - 1].line) {
            c->fitmask[i] = c->fitmask[i - 1];
        } else {
            s_job_of(c, i, c->job);
            for (int k = 0; k < c->nt; k++) {
                char name[32];
                snprintf(name, sizeof name, "plan-%d", k);
                if (gp_placement_fits(pl, name, c->job))
                    c->fitmask[i] |= 1ULL << k;
            }
        }
        if (c->fitmask[i] == 0)
            c->never++;
    }
    c->drops = d->npods - (int)ceil(d->npods * c->o->success / 100.0 - 1e-9);
    if (c->drops < 0)
        c->drops = 0;
    c->nmasks = 0;
    c->bound_ok = true;
    for (int i = 0; i < d->npods; i++) {
        int m;
        for (m = 0; m < c->nmasks; m++)
            if (c->masks[m] == c->fitmask[i])
                break;
        if (m == c->nmasks) {
            if (c->nmasks == 256) {
                c->bound_ok = false;
                break;
            }
            c->masks[c->nmasks++] = c->fitmask[i];
        }
    }
    /* per set F: the pods that fit only kinds of F, less the largest asks
     * the target lets fail, per resource */
    for (int m = 0; c->bound_ok && m < c->nmasks; m++)
        for (int r = 0; r < S_NRES; r++) {
            int nv = 0;
            double sum = 0;
            for (int i = 0; i < d->npods; i++)
                if (c->fitmask[i] && (c->fitmask[i] & ~c->masks[m]) == 0) {
                    double dem[S_NRES];
                    s_demand(c, i, dem);
                    v[nv++] = dem[r];
                    sum += dem[r];
                }
            qsort(v, (size_t)nv, sizeof *v, s_cmp_desc);
            for (int i = 0; i < c->drops && i < nv; i++)
                sum -= v[i];
            c->dem[m][r] = sum;
            c->ratio[m][r][c->nt] = INFINITY;
            for (int k = c->nt - 1; k >= 0; k--) {
                double cap = c->t[k].cap[r];
                double q = (c->masks[m] & (1ULL << k)) && cap > 0 ? c->t[k].price / cap
                                                                  : INFINITY;
                c->ratio[m][r][k] = q < c->ratio[m][r][k + 1] ? q : c->ratio[m][r][k + 1];
            }
        }
    rc = 0;
cleanup:
    gp_placement_destroy(&pl);
    free(v);
    return rc;
}

/* What x supplies of each resource to the jobs of each set m (the kinds of
 * its mask). */
static void s_supply(const s_ctx_t *c, const int *x, double sup[][S_NRES])
{
    for (int m = 0; m < c->nmasks; m++) {
        for (int r = 0; r < S_NRES; r++)
            sup[m][r] = 0;
        for (int k = 0; k < c->nt; k++)
            if (c->masks[m] & (1ULL << k))
                for (int r = 0; r < S_NRES; r++)
                    sup[m][r] += x[k] * c->t[k].cap[r];
    }
}

/* Does supply sup meet the capacity bound? (necessary, not sufficient) */
static bool s_bound_sup(const s_ctx_t *c, double sup[][S_NRES])
{
    if (!c->bound_ok)
        return true;
    for (int m = 0; m < c->nmasks; m++)
        for (int r = 0; r < S_NRES; r++)
            if (sup[m][r] + 1e-6 < c->dem[m][r])
                return false;
    return true;
}

/* Can x hold the workload at all, by capacity? */
static bool s_bound(const s_ctx_t *c, const int *x)
{
    double sup[256][S_NRES];
    if (!c->bound_ok)
        return true;
    s_supply(c, x, sup);
    return s_bound_sup(c, sup);
}

/* A lower bound of the cost of any inventory that keeps x's counts of the
 * kinds before `from` and meets the capacity bound: each (set, resource)
 * shortfall bought at its cheapest unit price among the kinds from `from`
 * on.  INFINITY when some shortfall cannot be bought.  x is a vector whose
 * supply is psup plus one node of kind `from` (the successor of a vector
 * in the proof's walk: its supply is the parent's and one node's, with no
 * pass over the kinds; capacities are whole numbers or halves, so the sums
 * are the same in any order). */
static double s_lower(const s_ctx_t *c, const int *x, int from, double psup[][S_NRES])
{
    double cost = s_cost(c, x), worst = 0;
    if (!c->bound_ok)
        return cost;
    const double *add = c->t[from].cap;
    for (int m = 0; m < c->nmasks; m++) {
        bool has = (c->masks[m] >> from) & 1;
        for (int r = 0; r < S_NRES; r++) {
            double need = c->dem[m][r] - (has ? psup[m][r] + add[r] : psup[m][r]);
            if (need <= 1e-6)
                continue;
            double q = c->ratio[m][r][from];
            if (isinf(q))
                return INFINITY;
            if (need * q > worst)
                worst = need * q;
        }
    }
    return cost + worst;
}

/* --------------------------------------------------------------- search */

/* Step 1: add nodes of the kind that takes the most unplaced demand per
 * unit of price until the target is met. */
static int s_construct(s_ctx_t *c, int *x, bool *found)
{
    const sim_data_t *d = c->d;
    int *failed = malloc(sizeof *failed * ((size_t)d->npods + 1));
    int rc = -1;
    *found = false;
    if (failed == NULL) {
        gp_err_set(c->err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    memset(x, 0, sizeof *x * S_MAX_KINDS);
    double cpu_per_milli = 0, gsum = 0;
    for (int k = 0; k < c->nt; k++) {
        cpu_per_milli += c->t[k].cap[S_RES_CPU];
        gsum += c->t[k].cap[S_RES_COMPUTE];
    }
    cpu_per_milli = gsum > 0 ? cpu_per_milli / gsum : 1;
    for (int iter = 0; iter < 100000; iter++) {
        int placed, nf;
        if (s_snapshot(c, x, c->o->seeds[0], &placed, failed, &nf) < 0)
            goto cleanup;
        c->evals++;
        bool ok;
        if (100.0 * placed / d->npods >= c->o->success - 1e-9) {
            if (s_meets(c, x, &ok) < 0)
                goto cleanup;
            if (ok) {
                *found = true;
                break;
            }
        }
        /* per kind: the unplaced demand one empty node of it takes */
        int best = -1, best_n = 1;
        double best_v = 0;
        for (int k = 0; k < c->nt; k++) {
            x[k]++;
            bool lim = s_within_limits(c, x);
            x[k]--;
            if (!lim)
                continue;
            int one[S_MAX_KINDS] = {0};
            one[k] = 1;
            gp_placement_t *pl = s_engine(c, one, c->o->seeds[0]);
            if (pl == NULL)
                goto cleanup;
            double took = 0, fits = 0;
            for (int i = 0; i < nf; i++) {
                if (!(c->fitmask[failed[i]] & (1ULL << k)))
                    continue;
                double dem[S_NRES];
                s_demand(c, failed[i], dem);
                double gpu = dem[S_RES_COMPUTE] > dem[S_RES_DEVMEM_SHARE] ? dem[S_RES_COMPUTE]
                                                                          : dem[S_RES_DEVMEM_SHARE];
                double size = gpu + dem[S_RES_CPU] / cpu_per_milli + 1;
                fits += size;
                s_job_of(c, failed[i], c->job);
                snprintf(c->job->id, sizeof c->job->id, "u%d", i);
                gp_err_t e;
                if (gp_placement_place(pl, c->job, c->plan, &e) == 0 &&
                    gp_placement_add_alloc(pl, c->plan, &e) == 0)
                    took += size;
            }
            gp_placement_destroy(&pl);
            double v = c->t[k].price > 0 ? took / c->t[k].price : took * 1e12;
            if (took > 0 && (best < 0 || v > best_v)) {
                best = k;
                best_v = v;
                best_n = (int)(fits / took / 2);
                if (best_n < 1)
                    best_n = 1;
            }
        }
        if (best < 0)
            break;           /* nothing left places anywhere */
        for (int i = 0; i < best_n; i++) {
            x[best]++;
            if (!s_within_limits(c, x)) {
                x[best]--;
                break;
            }
        }
    }
    rc = 0;
cleanup:
    free(failed);
    return rc;
}

/* Try y instead of x: taken when cheaper, within limits and meeting the
 * target. */
static int s_try(s_ctx_t *c, int *x, const int *y, bool *taken)
{
    *taken = false;
    for (int k = 0; k < c->nt; k++)
        if (y[k] < 0)
            return 0;
    if (s_cost(c, y) >= s_cost(c, x) - 1e-9 || !s_within_limits(c, y) || !s_bound(c, y))
        return 0;
    bool ok;
    if (s_meets(c, y, &ok) < 0)
        return -1;
    if (ok) {
        memcpy(x, y, sizeof *x * S_MAX_KINDS);
        *taken = true;
    }
    return 0;
}

/* A budget of pods replayed, as a number of replays (at least 20). */
static int s_budget(const s_ctx_t *c, long pods)
{
    long per = (long)c->d->npods * c->o->nseeds;
    long n = per > 0 ? pods / per : pods;
    return n < 20 ? 20 : (int)(n > 100000 ? 100000 : n);
}

static int s_cmp_price_desc(const void *a, const void *b, void *arg)
{
    const s_ctx_t *c = arg;
    double x = c->t[*(const int *)a].price, y = c->t[*(const int *)b].price;
    return (x < y) - (x > y);
}

/* Step 2: remove, replace one by a cheaper one, two by one. */
static int s_improve(s_ctx_t *c, int *x)
{
    int ord[S_MAX_KINDS];
    for (int k = 0; k < c->nt; k++)
        ord[k] = k;
    qsort_r(ord, (size_t)c->nt, sizeof *ord, s_cmp_price_desc, c);
    int start = c->evals, budget = s_budget(c, S_IMPROVE_PODS);
    bool changed = true;
    while (changed && c->evals - start < budget) {
        changed = false;
        int y[S_MAX_KINDS];
        bool taken;
        for (int a = 0; a < c->nt; a++) {        /* remove: an eighth, then fewer */
            int k = ord[a];
            for (int r = x[k] / 8 > 1 ? x[k] / 8 : 1; r >= 1 && x[k] > 0;) {
                memcpy(y, x, sizeof y);
                y[k] -= r < y[k] ? r : y[k];
                if (s_try(c, x, y, &taken) < 0)
                    return -1;
                if (taken)
                    changed = true;
                else
                    r /= 2;
            }
        }
        for (int a = 0; a < c->nt && !changed && c->evals - start < budget; a++) {  /* replace */
            int k = ord[a];
            for (int b = c->nt - 1; b >= 0 && x[k] > 0 && !changed; b--) {
                int j = ord[b];
                if (j == k)
                    continue;
                for (int take = 1; take <= 2 && !changed; take++) {
                    memcpy(y, x, sizeof y);
                    y[k] -= take;
                    y[j]++;
                    if (s_try(c, x, y, &taken) < 0)
                        return -1;
                    changed = taken;
                }
            }
        }
    }
    return 0;
}

/* Step 3: the cheaper inventories in order of price.  The heap holds
 * vectors (counts, then the last kind incremented). */
typedef struct {
    double cost;
    int last;
    uint16_t x[];
} s_node_t;

typedef struct {
    s_node_t **a;
    int n, cap;
} s_pq_t;

static int s_pq_push(s_pq_t *q, s_node_t *e)
{
    if (q->n == q->cap) {
        int nc = q->cap ? q->cap * 2 : 1024;
        s_node_t **na = realloc(q->a, sizeof *na * (size_t)nc);
        if (na == NULL)
            return -1;
        q->a = na;
        q->cap = nc;
    }
    int i = q->n++;
    while (i > 0 && q->a[(i - 1) / 2]->cost > e->cost) {
        q->a[i] = q->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    q->a[i] = e;
    return 0;
}

static s_node_t *s_pq_pop(s_pq_t *q)
{
    s_node_t *top = q->a[0], *last = q->a[--q->n];
    int i = 0;
    for (;;) {
        int ch = 2 * i + 1;
        if (ch >= q->n)
            break;
        if (ch + 1 < q->n && q->a[ch + 1]->cost < q->a[ch]->cost)
            ch++;
        if (q->a[ch]->cost >= last->cost)
            break;
        q->a[i] = q->a[ch];
        i = ch;
    }
    if (q->n > 0)
        q->a[i] = last;
    return top;
}

static int s_prove(s_ctx_t *c, s_sol_t *sol)
{
    s_pq_t q = {0};
    int rc = -1, pops = 0, evals = 0, budget = s_budget(c, S_PROOF_PODS);
    size_t sz = sizeof(s_node_t) + sizeof(uint16_t) * (size_t)c->nt;
    double bound = sol->found ? sol->cost - 1e-9 : INFINITY;
    double (*sup)[S_NRES] = malloc(sizeof *sup * 256);
    s_node_t *e = calloc(1, sz);
    if (sup == NULL || e == NULL || s_pq_push(&q, e) < 0) {
        free(e);
        gp_err_set(c->err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    sol->optimal = false;
    while (q.n > 0) {
        if (pops >= S_PROOF_POPS || evals >= budget)
            goto done;           /* not proven */
        e = s_pq_pop(&q);
        pops++;
        int x[S_MAX_KINDS] = {0};
        for (int k = 0; k < c->nt; k++)
            x[k] = e->x[k];
        if (c->bound_ok)
            s_supply(c, x, sup);
        if (s_within_limits(c, x) && s_bound_sup(c, sup)) {
            bool ok;
            evals++;
            if (s_meets(c, x, &ok) < 0) {
                free(e);
                goto cleanup;
            }
            if (ok) {
                memcpy(sol->x, x, sizeof x);
                sol->found = true;
                sol->cost = e->cost;
                sol->optimal = true;
                free(e);
                goto done;
            }
        }
        for (int k = e->last < 0 ? 0 : e->last; k < c->nt; k++) {
            double nc = e->cost + c->t[k].price;
            if (!(nc < bound) || e->x[k] == UINT16_MAX)
                continue;
            x[k]++;
            bool lim = s_within_limits(c, x);
            double lb = lim ? s_lower(c, x, k, sup) : INFINITY;
            x[k]--;
            if (!lim || !(lb < bound))
                continue;    /* nothing below it can be cheaper, or fit the limits */
            s_node_t *s = malloc(sz);
            if (s == NULL) {
                free(e);
                gp_err_set(c->err, GP_ERR_NOMEM, "out of memory");
                goto cleanup;
            }
            memcpy(s, e, sz);
            s->x[k]++;
            s->cost = nc;
            s->last = k;
            if (s_pq_push(&q, s) < 0) {
                free(s);
                free(e);
                gp_err_set(c->err, GP_ERR_NOMEM, "out of memory");
                goto cleanup;
            }
        }
        free(e);
    }
    sol->optimal = true;         /* nothing cheaper meets the target */
done:
    rc = 0;
cleanup:
    free(sup);
    for (int i = 0; i < q.n; i++)
        free(q.a[i]);
    free(q.a);
    return rc;
}

/* --exhaustive N: every vector of 0..N per kind. */
static int s_exhaustive(s_ctx_t *c, int max, s_sol_t *sol)
{
    int x[S_MAX_KINDS] = {0};
    double all = pow(max + 1, c->nt);
    if (all > 1e7)
        return gp_err_set(c->err, GP_ERR_INVALID, "--exhaustive: %d node types with 0..%d "
                          "nodes each are %.3g inventories, too many", c->nt, max, all);
    sol->found = false;
    for (;;) {
        if (s_within_limits(c, x)) {
            double cost = s_cost(c, x);
            if (!sol->found || cost < sol->cost - 1e-9) {
                bool ok;
                if (s_meets(c, x, &ok) < 0)
                    return -1;
                if (ok) {
                    memcpy(sol->x, x, sizeof x);
                    sol->cost = cost;
                    sol->found = true;
                }
            }
        }
        int k = 0;
        while (k < c->nt && x[k] == max)
            x[k++] = 0;
        if (k == c->nt)
            break;
        x[k]++;
    }
    sol->optimal = sol->found;
    return 0;
}

static int s_solve(s_ctx_t *c, s_sol_t *sol)
{
    memset(sol, 0, sizeof *sol);
    int start = c->evals;
    if (c->o->exhaustive > 0) {
        if (s_exhaustive(c, c->o->exhaustive, sol) < 0)
            return -1;
    } else {
        if (s_construct(c, sol->x, &sol->found) < 0)
            return -1;
        if (sol->found && s_improve(c, sol->x) < 0)
            return -1;
        sol->cost = s_cost(c, sol->x);
        if (s_prove(c, sol) < 0)
            return -1;
    }
    if (!sol->found)
        return gp_err_set(c->err, GP_ERR_NOTFOUND, "no inventory of the node types%s places "
                          "%.2f%% of the pods (%d of %d fit no node type)",
                          c->nclouds && c->o->max_nodes ? " within --max-nodes" : "",
                          c->o->success, c->never, c->d->npods);
    if (s_eval(c, sol->x, &sol->success) < 0)
        return -1;
    sol->cost = s_cost(c, sol->x);
    sol->gpus = 0;
    sol->nodes = 0;
    for (int k = 0; k < c->nt; k++) {
        sol->gpus += (int64_t)sol->x[k] * c->d->nodes[c->t[k].tmpl].ngpu;
        sol->nodes += sol->x[k];
    }
    sol->evals = c->evals - start;
    return 0;
}

/* ---------------------------------------------------------------- output */

static json_t *s_sol_json(const s_ctx_t *c, const s_sol_t *s)
{
    const sim_data_t *d = c->d;
    json_t *types = json_array(), *models = json_object();
    for (int k = 0; k < c->nt; k++) {
        if (s->x[k] == 0)
            continue;
        const s_type_t *t = &c->t[k];
        const sim_node_t *n = &d->nodes[t->tmpl];
        json_array_append_new(types, json_pack("{s:s, s:s, s:s, s:i, s:i, s:s?, s:f}",
            "type", t->type, "cloud", t->cloud, "region", t->region, "nodes", s->x[k],
            "gpus", s->x[k] * n->ngpu, "model", n->ngpu ? d->models[n->model].name : NULL,
            "cost_per_hour", round(s->x[k] * t->price * 1000) / 1000));
        if (n->ngpu) {
            const char *m = d->models[n->model].name;
            json_int_t have = json_integer_value(json_object_get(models, m));
            json_object_set_new(models, m, json_integer(have + s->x[k] * n->ngpu));
        }
    }
    return json_pack("{s:i, s:I, s:f, s:f, s:b, s:i, s:o, s:o}", "nodes", s->nodes,
                     "gpus", (json_int_t)s->gpus, "cost_per_hour", round(s->cost * 1000) / 1000,
                     "success_pct", s->success, "optimal", s->optimal, "evaluations", s->evals,
                     "by_type", types, "gpus_by_model", models);
}

static void s_sol_rows(FILE *out, const s_ctx_t *c, const s_sol_t *a, const s_sol_t *b)
{
    const sim_data_t *d = c->d;
    for (int k = 0; k < c->nt; k++) {
        if (a->x[k] == 0 && b->x[k] == 0)
            continue;
        const s_type_t *t = &c->t[k];
        int g = d->nodes[t->tmpl].ngpu;
        fprintf(out, "%-20.20s %-6.6s %-13.13s %6d %6d %10.2f %6d %6d %10.2f\n", t->type,
                t->cloud, t->region, a->x[k], a->x[k] * g, a->x[k] * t->price, b->x[k],
                b->x[k] * g, b->x[k] * t->price);
    }
    fprintf(out, "%-41s %6d %6lld %10.2f %6d %6lld %10.2f\n", "total", a->nodes,
            (long long)a->gpus, a->cost, b->nodes, (long long)b->gpus, b->cost);
}

typedef struct {
    const s_ctx_t *c;
    const s_sol_t *a, *b;
} s_plot_t;

/* The cost per hour of each node type used by either plan. */
static void s_plot_data(FILE *f, const char *data, void *arg)
{
    (void)data;
    const s_plot_t *p = arg;
    const s_ctx_t *c = p->c;
    for (int k = 0; k < c->nt; k++)
        if (p->a->x[k] || p->b->x[k])
            fprintf(f, "\"%s %s\" %.3f %.3f\n", c->t[k].type, c->t[k].cloud,
                    p->a->x[k] * c->t[k].price, p->b->x[k] * c->t[k].price);
}

static void s_plot_script(FILE *g, const char *data, void *arg)
{
    const s_plot_t *p = arg;
    fprintf(g, "set title 'cost per hour by node type: sharing %.2f, whole GPUs %.2f'\n"
               "set style data histograms\nset style histogram clustered\n"
               "set style fill solid 0.8\nset ylabel 'cost per hour'\nset grid ytics\n"
               "set xtics rotate by -30\nset key left top\n", p->a->cost, p->b->cost);
    fprintf(g, "plot '%s' using 2:xtic(1) title 'fractional sharing', '' using 3 title "
               "'whole GPUs'\n", data);
}

static int s_plot(const char *path, const s_ctx_t *c, const s_sol_t *a, const s_sol_t *b,
                  gp_err_t *err)
{
    s_plot_t p = { c, a, b };
    return sim_gnuplot(path, s_plot_data, s_plot_script, &p, err);
}

int sim_plan_priced(const sim_data_t *d, const sim_plan_opts_t *o, FILE *out, gp_err_t *err)
{
    s_ctx_t *c = calloc(1, sizeof *c);
    s_price_t *prices = NULL;
    int np = 0, rc = -1;
    gp_shape_t *sh = NULL;
    double *w = NULL;
    if (c == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    c->d = d;
    c->o = o;
    c->err = err;
    c->job = calloc(1, sizeof *c->job);
    c->plan = malloc(sizeof *c->plan);
    if (c->job == NULL || c->plan == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    gp_job_init(c->job);
    if (s_load_prices(o->prices, &prices, &np, err) < 0 || s_catalogue(c, prices, np, err) < 0 ||
        s_limits(c, o->max_nodes, err) < 0)
        goto cleanup;
    if (sim_typical(d, &sh, &w, &c->ns) < 0) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    c->sh = sh;
    c->w = w;
    s_sol_t shared, whole;
    int64_t t0 = gp_mono_ns();
    c->whole = false;
    if (s_bound_init(c) < 0 || s_solve(c, &shared) < 0)
        goto cleanup;
    free(c->fitmask);
    c->fitmask = NULL;
    c->whole = true;
    if (s_bound_init(c) < 0 || s_solve(c, &whole) < 0)
        goto cleanup;
    double secs = (double)(gp_mono_ns() - t0) / 1e9;
    int64_t gsaved = whole.gpus - shared.gpus;
    double csaved = whole.cost - shared.cost;
    if (o->json) {
        json_t *j = json_pack("{s:s, s:f, s:i, s:o, s:o, s:I, s:f, s:f, s:f}", "policy",
                              o->policy, "target_success_pct", o->success, "pods", d->npods,
                              "shared", s_sol_json(c, &shared), "whole", s_sol_json(c, &whole),
                              "gpus_saved_by_sharing", (json_int_t)gsaved,
                              "cost_saved_per_hour", round(csaved * 1000) / 1000,
                              "search_s", round(secs * 1000) / 1000,
                              "cpu_s", round(sim_cpu_s() * 1000) / 1000);
        char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
        if (s)
            fprintf(out, "%s\n", s);
        free(s);
        json_decref(j);
    } else {
        fprintf(out, "cheapest inventory: policy %s, %d pods, target %.2f%% placed, %d node "
                "types\n", o->policy, d->npods, o->success, c->nt);
        fprintf(out, "%-41s %24s %24s\n", "", "--- fractional sharing --", "------- whole GPUs -----");
        fprintf(out, "%-20s %-6s %-13s %6s %6s %10s %6s %6s %10s\n", "type", "cloud", "region",
                "nodes", "GPUs", "cost/h", "nodes", "GPUs", "cost/h");
        s_sol_rows(out, c, &shared, &whole);
        fprintf(out, "placed: %.2f%% (sharing), %.2f%% (whole GPUs)\n", shared.success,
                whole.success);
        fprintf(out, "GPUs by model (sharing / whole):");
        for (int m = 0; m < d->nmodels; m++) {
            int64_t gs = 0, gw = 0;
            for (int k = 0; k < c->nt; k++)
                if (d->nodes[c->t[k].tmpl].ngpu && d->nodes[c->t[k].tmpl].model == m) {
                    gs += (int64_t)shared.x[k] * d->nodes[c->t[k].tmpl].ngpu;
                    gw += (int64_t)whole.x[k] * d->nodes[c->t[k].tmpl].ngpu;
                }
            if (gs || gw)
                fprintf(out, " %s %lld / %lld", d->models[m].name, (long long)gs,
                        (long long)gw);
        }
        fprintf(out, "\nsharing saves %lld GPUs and %.2f per hour (%.1f%%)\n", (long long)gsaved,
                csaved, whole.cost > 0 ? csaved * 100 / whole.cost : 0);
        const s_sol_t *ss[] = {&shared, &whole};
        const char *nm[] = {"sharing", "whole GPUs"};
        for (int i = 0; i < 2; i++)
            fprintf(out, "search (%s): %s, %d replays\n", nm[i],
                    o->exhaustive ? "exhaustive" : ss[i]->optimal
                        ? "optimal (no cheaper inventory meets the target)"
                        : "best found (the proof stopped at its limit; not shown optimal)",
                    ss[i]->evals);
    }
    fflush(out);
    if (o->plot && s_plot(o->plot, c, &shared, &whole, err) < 0)
        goto cleanup;
    rc = 0;
cleanup:
    free(c->fitmask);
    free(c->job);
    free(c->plan);
    free(c);
    free(prices);
    free(sh);
    free(w);
    return rc;
}
