/*
 * policy_fgd.c - FGD, fragmentation gradient descent (Weng et al., "Beware
 * of Fragmentation: Scheduling GPU-Sharing Workloads with Fragmentation
 * Gradient Descent", USENIX ATC 2023).
 *
 * Fragmentation of a node, measured against a workload: the workload is a
 * distribution over "typical" job shapes t (CPU, devices n_t, share per
 * device m_t in thousandths, model), each with its popularity f_t.  For one
 * shape, the node's idle device capacity L (the sum of each device's free
 * share) counts as fragment
 *   - entirely, when a job of shape t cannot go there at all: it asks for
 *     no device (a CPU-only job leaves the GPUs idle), or it does not accept
 *     the node's model, or the node lacks the CPU, or fewer than n_t devices
 *     have m_t free;
 *   - otherwise only the free share of the devices that have less than m_t
 *     free (the crumbs that shape cannot use).
 * The node's fragmentation is the expectation over shapes:
 *   F(node) = sum_t f_t * frag_t(node).
 * FGD places a job on the node, and on the device(s) of that node, whose
 * fragmentation grows least.  As in the authors' simulator, the score is
 * a whole number, trunc(100 x sigmoid((F(before) - F(after)) / 1000)),
 * and the engine takes the best score, the first node in the seed's fixed
 * order among equals.  That coarseness (every change within a few
 * thousandths of a device scores 50) and first fit among equals are part
 * of FGD's published result: a finer score scatters whole-device jobs over
 * empty nodes.  For a single fractional job every device that can take it
 * is tried in index order, the first with the best score wins; a
 * multi-device or whole job takes the fitting devices with least free
 * share first.  The cluster's fragmentation (gp_placement_frag) is the sum
 * over nodes.
 *
 * Typical shapes: the most popular shapes (by count; among equal counts
 * the larger CPU, share, devices first) that together make 95% of the
 * jobs, CPU-only jobs included, renormalised, as the published simulator
 * computes them.  A shape's model is "" (any) or a list "A|B" of models
 * any of which can serve it.  They come from gp_placement_set_typical or
 * are learned from the jobs the engine places.
 *
 * Computing F fast.  frag_t depends on the node's CPU only through the
 * comparison cpu_free >= cpu_t, and shapes with the same (m, n) differ only
 * in cpu_t.  So the tables group shapes, per model, into classes (m, n);
 * the distinct CPU demands of all shapes form a sorted threshold list, and
 * a node's "CPU level" is how many thresholds it meets (binary search).
 * P[class][level] is the popularity of the class's shapes that the level
 * satisfies, F[class] the class's total.  Then
 *   F(node) = L * c_model
 *           + sum over classes: fits(m, n) ? P * S_<m + (F - P) * L : F * L
 * where c_model is the popularity of shapes that can never use the node
 * (CPU-only or another model) and S_<m the free share on devices with
 * less than m free.  That is O(classes x devices) per node state, with no
 * allocation; F(before) is cached per node, and the engine's per-node
 * score cache (keyed by job shape and node version) means a node is
 * re-scored only after it changed.  The per-class terms of a node's state
 * (devices that fit the class, free share on those that do not) are kept
 * by slot beside the tables, once per node version, so that the many shapes
 * re-scoring a changed node each add only the change of the devices they
 * would take (s_terms_get, s_terms_frag).
 */
#include "placement_internal.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "banned.h"

typedef struct {
    double cf;               /* shapes that never use this model */
    int ncls;
    int *m, *n;
    double *F;
    double *P;               /* ncls x (nlevels + 1) */
} s_group_t;

struct gp_pl_typical {
    int nlevels;
    int64_t *thr;
    int ngroups;
    s_group_t *g;
    /* the terms of each node's current state (s_terms_get), by slot */
    int maxcls;
    size_t tc_stride;
    unsigned char *tc;
    int tc_slots;
};

void gp_pl_typical_free(gp_pl_typical_t *t)
{
    if (t == NULL)
        return;
    for (int g = 0; g < t->ngroups; g++) {
        free(t->g[g].m);
        free(t->g[g].n);
        free(t->g[g].F);
        free(t->g[g].P);
    }
    free(t->g);
    free(t->thr);
    free(t->tc);
    free(t);
}

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Popularity order of the typical shapes: more frequent first; among
 * equally frequent ones the larger (CPU, then share, devices, models)
 * first, the order the published simulator sorts them in. */
static bool s_before(const gp_shape_t *sh, const double *w, int a, int b)
{
    if (w[a] != w[b])
        return w[a] > w[b];
    const gp_shape_t *x = &sh[a], *y = &sh[b];
    if (x->cpu_milli != y->cpu_milli)
        return x->cpu_milli > y->cpu_milli;
    if (x->milli != y->milli)
        return x->milli > y->milli;
    if (x->devices != y->devices)
        return x->devices > y->devices;
    return strcmp(x->model, y->model) > 0;
}

/* Does a shape's model list ("" any, else models separated by '|') accept
 * a device model? */
static bool s_model_ok(const char *list, const char *model)
{
    if (list[0] == '\0')
        return true;
    size_t ml = strlen(model);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, '|');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == ml && strncmp(p, model, l) == 0)
            return true;
        if (e == NULL)
            break;
        p = e + 1;
    }
    return false;
}

static int s_level(const gp_pl_typical_t *t, int64_t cpu)
{
    int lo = 0, hi = t->nlevels;       /* count of thr <= cpu */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (t->thr[mid] <= cpu)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

gp_pl_typical_t *gp_pl_typical_build(const gp_placement_t *pl, const gp_shape_t *shapes,
                                     const double *w, int n)
{
    gp_pl_typical_t *t = calloc(1, sizeof *t);
    int *idx = malloc(sizeof *idx * (size_t)(n ? n : 1));
    double *f = calloc((size_t)(n ? n : 1), sizeof *f);
    if (t == NULL || idx == NULL || f == NULL)
        goto fail;
    /* the most popular shapes covering 95% of the weight */
    double total = 0;
    for (int i = 0; i < n; i++) {
        idx[i] = i;
        total += w[i];
    }
    for (int i = 1; i < n; i++) {       /* insertion sort: s_before order */
        int v = idx[i], j = i - 1;
        while (j >= 0 && s_before(shapes, w, v, idx[j])) {
            idx[j + 1] = idx[j];
            j--;
        }
        idx[j + 1] = v;
    }
    int keep = 0;
    double cum = 0;
    while (keep < n && cum < 0.95 * total)
        cum += w[idx[keep++]];
    for (int k = 0; k < keep; k++)
        f[idx[k]] = w[idx[k]] / cum;
    t->thr = malloc(sizeof *t->thr * (size_t)(keep ? keep : 1));
    if (t->thr == NULL)
        goto fail;
    for (int k = 0; k < keep; k++)
        t->thr[k] = shapes[idx[k]].cpu_milli;
    qsort(t->thr, (size_t)keep, sizeof *t->thr, s_cmp_i64);
    int nl = 0;
    for (int k = 0; k < keep; k++)
        if (nl == 0 || t->thr[nl - 1] != t->thr[k])
            t->thr[nl++] = t->thr[k];
    t->nlevels = nl;
    t->ngroups = pl->ngroups;
    t->g = calloc((size_t)(pl->ngroups ? pl->ngroups : 1), sizeof *t->g);
    if (t->g == NULL)
        goto fail;
    for (int g = 0; g < pl->ngroups; g++) {
        s_group_t *G = &t->g[g];
        G->m = malloc(sizeof *G->m * (size_t)(keep ? keep : 1));
        G->n = malloc(sizeof *G->n * (size_t)(keep ? keep : 1));
        G->F = calloc((size_t)(keep ? keep : 1), sizeof *G->F);
        G->P = calloc((size_t)(keep ? keep : 1) * (size_t)(nl + 1), sizeof *G->P);
        if (!G->m || !G->n || !G->F || !G->P)
            goto fail;
        for (int k = 0; k < keep; k++) {
            const gp_shape_t *s = &shapes[idx[k]];
            double fk = f[idx[k]];
            if (s->devices == 0 || s->milli == 0 || !s_model_ok(s->model, pl->group_model[g])) {
                G->cf += fk;
                continue;
            }
            int c;
            for (c = 0; c < G->ncls; c++)
                if (G->m[c] == s->milli && G->n[c] == s->devices)
                    break;
            if (c == G->ncls) {
                G->m[c] = s->milli;
                G->n[c] = s->devices;
                G->ncls++;
                if (G->ncls > t->maxcls)
                    t->maxcls = G->ncls;
            }
            G->F[c] += fk;
            int lv = s_level(t, s->cpu_milli);   /* thr index + 1 */
            for (int l = lv; l <= nl; l++)
                G->P[c * (nl + 1) + l] += fk;
        }
    }
    free(idx);
    free(f);
    return t;
fail:
    free(idx);
    free(f);
    gp_pl_typical_free(t);
    return NULL;
}

static gp_pl_typical_t *s_tables(gp_placement_t *pl)
{
    if (pl->typical == NULL && pl->nseen > 0)
        pl->typical = gp_pl_typical_build(pl, pl->seen, pl->seen_w, pl->nseen);
    return pl->typical;
}

double gp_pl_fgd_node_frag(gp_placement_t *pl, const gp_pl_node_t *node, int64_t cpu_free,
                           const int *mf)
{
    gp_pl_typical_t *t = s_tables(pl);
    if (t == NULL || node->group < 0 || node->group >= t->ngroups)
        return 0;
    double L = 0;
    for (int i = 0; i < node->ndev; i++)
        L += mf[i];
    if (L == 0)
        return 0;
    const s_group_t *G = &t->g[node->group];
    int lvl = s_level(t, cpu_free);
    double res = L * G->cf;
    for (int c = 0; c < G->ncls; c++) {
        int m = G->m[c], cnt = 0;
        double S = 0;
        for (int i = 0; i < node->ndev; i++) {
            if (mf[i] >= m)
                cnt++;
            else
                S += mf[i];
        }
        if (cnt >= G->n[c]) {
            double p = G->P[c * (t->nlevels + 1) + lvl];
            res += p * S + (G->F[c] - p) * L;
        } else {
            res += G->F[c] * L;
        }
    }
    return res;
}

double gp_pl_fgd_node_frag_cached(gp_placement_t *pl, gp_pl_node_t *node, const int *mf)
{
    if (node->frag_version != node->version || node->frag_epoch != pl->epoch ||
        node->version == 0) {
        node->frag = gp_pl_fgd_node_frag(pl, node, node->cpu_free, mf);
        node->frag_version = node->version;
        node->frag_epoch = pl->epoch;
    }
    return node->frag;
}

/* A node state's fragmentation terms (free share L, and per class the
 * devices that fit it and the free share on those that do not), so that
 * states differing in one device cost O(classes) each: s_terms_frag gives
 * gp_pl_fgd_node_frag's value exactly (the sums are of whole numbers, the
 * products and their order the same). */
#define S_TERMS_MAX 64

typedef struct {
    const s_group_t *G;
    int64_t L;
    int32_t cnt[S_TERMS_MAX];
    int32_t S[S_TERMS_MAX];  /* at most GP_MAX_DEVICES x 1000 */
} s_terms_t;

static bool s_terms_init(gp_placement_t *pl, const gp_pl_node_t *node, const int *mf,
                         s_terms_t *T)
{
    gp_pl_typical_t *t = s_tables(pl);
    if (t == NULL || node->group < 0 || node->group >= t->ngroups ||
        t->g[node->group].ncls > S_TERMS_MAX)
        return false;
    const s_group_t *G = &t->g[node->group];
    T->G = G;
    T->L = 0;
    for (int i = 0; i < node->ndev; i++)
        T->L += mf[i];
    int ndev = node->ndev;
    for (int c = 0; c < G->ncls; c++) {
        /* without branches: the free shares are data, not patterns */
        int32_t m = G->m[c], cnt = 0, S = 0;
        for (int i = 0; i < ndev; i++) {
            int32_t ge = mf[i] >= m;
            cnt += ge;
            S += mf[i] & (ge - 1);
        }
        T->cnt[c] = cnt;
        T->S[c] = S;
    }
    return true;
}

/* The terms of a node's current state, computed once per node version and
 * kept by slot beside the tables (a node's state, hence its terms, changes
 * only with its version; the tables' own rebuild drops them): every shape
 * that re-scores the node after a change reads them instead of going over
 * its devices per class again.  An entry is the version, L, then per class
 * the count (one byte: at most GP_MAX_DEVICES) and S (int32). */
static bool s_terms_get(gp_placement_t *pl, const gp_pl_node_t *node, const int *mf,
                        s_terms_t *T)
{
    gp_pl_typical_t *t = s_tables(pl);
    ptrdiff_t slot = node - pl->nodes;
    if (t == NULL || node->version == 0 || slot < 0 || slot >= pl->nslots ||
        node->group < 0 || node->group >= t->ngroups || t->maxcls > S_TERMS_MAX)
        return s_terms_init(pl, node, mf, T);
    if (slot >= t->tc_slots) {
        int ns = pl->slots_cap > pl->nslots ? pl->slots_cap : pl->nslots;
        size_t stride = (8 + (size_t)t->maxcls * 5 + 7) & ~(size_t)7;
        unsigned char *tc = realloc(t->tc, stride * (size_t)ns);
        if (tc == NULL)
            return s_terms_init(pl, node, mf, T);
        memset(tc + stride * (size_t)t->tc_slots, 0, stride * (size_t)(ns - t->tc_slots));
        t->tc = tc;
        t->tc_stride = stride;
        t->tc_slots = ns;
    }
    unsigned char *e = t->tc + t->tc_stride * (size_t)slot;
    const s_group_t *G = &t->g[node->group];
    uint32_t ver;
    int32_t L;
    memcpy(&ver, e, 4);
    int32_t *S = (int32_t *)(void *)(e + 8);
    uint8_t *cnt = e + 8 + 4 * (size_t)t->maxcls;
    if (ver == node->version) {
        memcpy(&L, e + 4, 4);
        T->G = G;
        T->L = L;
        for (int c = 0; c < G->ncls; c++) {
            T->cnt[c] = cnt[c];
            T->S[c] = S[c];
        }
        return true;
    }
    if (!s_terms_init(pl, node, mf, T))
        return false;
    ver = node->version;
    L = (int32_t)T->L;
    memcpy(e, &ver, 4);
    memcpy(e + 4, &L, 4);
    for (int c = 0; c < G->ncls; c++) {
        cnt[c] = (uint8_t)T->cnt[c];
        S[c] = T->S[c];
    }
    return true;
}

/* gp_policy_t.prefetch: the node's kept terms. */
static void s_fgd_prefetch(const gp_placement_t *pl, int slot)
{
    const gp_pl_typical_t *t = pl->typical;
    if (t != NULL && slot < t->tc_slots) {
        const unsigned char *e = t->tc + t->tc_stride * (size_t)slot;
        __builtin_prefetch(e);
        __builtin_prefetch(e + t->tc_stride - 1);
    }
}

/* The fragmentation with nchg devices' free shares changed from a[j] to
 * b[j], at CPU level lvl. */
static double s_terms_frag(const gp_pl_typical_t *t, const s_terms_t *T, const int *a,
                           const int *b, int nchg, int lvl)
{
    const s_group_t *G = T->G;
    int64_t l = T->L;
    for (int j = 0; j < nchg; j++)
        l += b[j] - a[j];
    double L = (double)l;
    if (L == 0)
        return 0;
    double res = L * G->cf;
    for (int c = 0; c < G->ncls; c++) {
        int m = G->m[c], cnt = T->cnt[c];
        int32_t S = T->S[c];
        for (int j = 0; j < nchg; j++) {
            cnt += (b[j] >= m) - (a[j] >= m);
            S += (b[j] < m ? b[j] : 0) - (a[j] < m ? a[j] : 0);
        }
        if (cnt >= G->n[c]) {
            double p = G->P[c * (t->nlevels + 1) + lvl];
            res += p * (double)S + (G->F[c] - p) * L;
        } else {
            res += G->F[c] * L;
        }
    }
    return res;
}

/* The published plugin's score: the fragmentation decrease through a
 * sigmoid, scaled to 0..100 and truncated to a whole number. */
static int s_sigmoid_score(double before, double after)
{
    return (int)(100.0 / (1.0 + exp(-(before - after) / 1000.0)));
}

/* The node's fragmentation as it is, cached per node version like
 * gp_pl_fgd_node_frag_cached, from its terms when there are (the same
 * value). */
static double s_frag_now(gp_placement_t *pl, gp_pl_node_t *node, const int *mf,
                         const s_terms_t *T)
{
    if (T == NULL)
        return gp_pl_fgd_node_frag_cached(pl, node, mf);
    if (node->frag_version != node->version || node->frag_epoch != pl->epoch ||
        node->version == 0) {
        node->frag = s_terms_frag(pl->typical, T, NULL, NULL, 0, s_level(pl->typical, node->cpu_free));
        node->frag_version = node->version;
        node->frag_epoch = pl->epoch;
    }
    return node->frag;
}

static bool s_fgd_score(gp_placement_t *pl, gp_pl_node_t *node, const gp_pl_req_t *r,
                        double *score, int8_t *pick)
{
    int mf[GP_MAX_DEVICES];
    for (int i = 0; i < node->ndev; i++)
        mf[i] = gp_pl_dev_free_milli(&node->dev[i]);
    int64_t cpu_after = node->cpu_free - r->cpu;
    double before = 0;
    if (r->n == 1 && !r->whole) {
        /* every fitting device in index order; the first with the best
         * (whole-number) score wins; the node's terms and fragmentation
         * once a device fits */
        int best = -1, best_sc = 0, seen_free[GP_MAX_DEVICES], nseen = 0, lvl = 0;
        s_terms_t T;
        T.G = NULL;
        T.L = 0;
        bool terms = false;
        for (int i = 0; i < node->ndev; i++) {
            const gp_pl_dev_t *d = &node->dev[i];
            if (!gp_pl_dev_fits(pl, d, r))
                continue;
            if (nseen == 0) {
                terms = s_terms_get(pl, node, mf, &T);
                lvl = terms ? s_level(pl->typical, cpu_after) : 0;
                before = s_frag_now(pl, node, mf, terms ? &T : NULL);
            }
            bool dup = false;      /* an earlier device in the same state scored the same */
            for (int k = 0; k < nseen; k++)
                if (seen_free[k] == mf[i])
                    dup = true;
            if (dup)
                continue;
            seen_free[nseen++] = mf[i];
            int keep = mf[i], sc;
            mf[i] = gp_pl_dev_milli_after(d, r);
            if (terms)
                sc = s_sigmoid_score(before, s_terms_frag(pl->typical, &T, &keep, &mf[i], 1, lvl));
            else
                sc = s_sigmoid_score(before, gp_pl_fgd_node_frag(pl, node, cpu_after, mf));
            mf[i] = keep;
            if (best < 0 || sc > best_sc) {
                best = i;
                best_sc = sc;
            }
        }
        if (best < 0)
            return false;
        pick[0] = (int8_t)best;
        *score = best_sc;
        return true;
    }
    if (!gp_pl_pick(pl, node, r, GP_PICK_PACK, pick))
        return false;
    s_terms_t T;
    T.G = NULL;
    T.L = 0;
    bool terms = s_terms_get(pl, node, mf, &T);
    before = s_frag_now(pl, node, mf, terms ? &T : NULL);
    if (r->n <= GP_MAX_DEVICES && terms) {
        int a[GP_MAX_DEVICES], b[GP_MAX_DEVICES];
        for (int k = 0; k < r->n; k++) {
            a[k] = mf[pick[k]];
            b[k] = gp_pl_dev_milli_after(&node->dev[pick[k]], r);
        }
        double after = s_terms_frag(pl->typical, &T, a, b, r->n, s_level(pl->typical, cpu_after));
        *score = s_sigmoid_score(before, after);
        return true;
    }
    for (int k = 0; k < r->n; k++)
        mf[pick[k]] = gp_pl_dev_milli_after(&node->dev[pick[k]], r);
    *score = s_sigmoid_score(before, gp_pl_fgd_node_frag(pl, node, cpu_after, mf));
    return true;
}

/* ------------------------------------------------------------ typical shapes */

int gp_placement_set_typical(gp_placement_t *self, const gp_shape_t *shapes,
                             const double *weights, int n, gp_err_t *err)
{
    for (int i = 0; i < n; i++)
        if (!(weights[i] > 0) || shapes[i].milli < 0 || shapes[i].milli > 1000 ||
            shapes[i].devices < 0 || shapes[i].devices > GP_MAX_DEVICES ||
            shapes[i].cpu_milli < 0)
            return gp_err_set(err, GP_ERR_INVALID, "typical shape %d is malformed", i);
    if (self->typical_fixed && n == self->nseen &&
        (n == 0 || (memcmp(shapes, self->seen, sizeof *shapes * (size_t)n) == 0 &&
                    memcmp(weights, self->seen_w, sizeof *weights * (size_t)n) == 0)))
        return 0;   /* the same: keep the tables and the caches built on them */
    gp_shape_t *s = malloc(sizeof *s * (size_t)(n ? n : 1));
    double *w = malloc(sizeof *w * (size_t)(n ? n : 1));
    if (s == NULL || w == NULL) {
        free(s);
        free(w);
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    }
    memcpy(s, shapes, sizeof *s * (size_t)n);
    memcpy(w, weights, sizeof *w * (size_t)n);
    free(self->seen);
    free(self->seen_w);
    self->seen = s;
    self->seen_w = w;
    self->nseen = self->seen_cap = n;
    self->typical_fixed = true;
    gp_pl_typical_free(self->typical);
    self->typical = NULL;
    self->epoch++;
    return 0;
}

int gp_placement_job_shape(gp_placement_t *self, const gp_job_t *job, gp_shape_t *out,
                           gp_err_t *err)
{
    gp_pl_req_t r;
    if (gp_pl_compile(self, job, &r, err) < 0)
        return -1;
    memset(out, 0, sizeof *out);
    out->cpu_milli = r.cpu;
    out->devices = r.n;
    out->milli = r.n ? r.milli : 0;
    size_t len = 0;
    for (int k = 0; k < job->models.n && len < sizeof out->model; k++)
        len += (size_t)snprintf(out->model + len, sizeof out->model - len, "%s%s", k ? "|" : "",
                                job->models.v[k]);
    return 0;
}

int gp_placement_batch_key(gp_placement_t *self, const gp_job_t *job, double *key,
                           gp_err_t *err)
{
    gp_pl_req_t r;
    *key = 0;
    if (gp_pl_compile(self, job, &r, err) < 0)
        return -1;
    if (r.policy->batch_key != NULL)
        *key = r.policy->batch_key(&r);
    return 0;
}

/* Learn the workload's shapes from the jobs placed, for FGD without a set
 * distribution.  The tables are rebuilt at 16, 32, 64, ... observations
 * and then every 4096, so that score caches stay warm between rebuilds. */
void gp_pl_observe(gp_placement_t *pl, const gp_pl_req_t *r)
{
    if (pl->typical_fixed || (r->policy != &gp_policy_fgd && r->policy != &gp_policy_gpupool))
        return;
    gp_shape_t sh;
    memset(&sh, 0, sizeof sh);
    sh.cpu_milli = r->cpu;
    sh.milli = r->n ? r->milli : 0;
    sh.devices = r->n;
    if (r->job->models.n == 1)
        gp_strlcpy(sh.model, r->job->models.v[0], sizeof sh.model);
    int i;
    for (i = 0; i < pl->nseen; i++)
        if (memcmp(&pl->seen[i], &sh, sizeof sh) == 0)
            break;
    if (i == pl->nseen && pl->nseen < 1024) {
        if (pl->nseen == pl->seen_cap) {
            int ncap = pl->seen_cap ? pl->seen_cap * 2 : 16;
            gp_shape_t *ns = realloc(pl->seen, sizeof *ns * (size_t)ncap);
            if (ns == NULL)
                return;
            pl->seen = ns;
            double *nw = realloc(pl->seen_w, sizeof *nw * (size_t)ncap);
            if (nw == NULL)
                return;
            pl->seen_w = nw;
            pl->seen_cap = ncap;
        }
        pl->seen[i] = sh;
        pl->seen_w[i] = 0;
        pl->nseen++;
    }
    if (i < pl->nseen)
        pl->seen_w[i] += 1;
    if (++pl->nobserved >= pl->next_learn || pl->typical == NULL) {
        pl->next_learn = pl->nobserved < 4096 ? pl->nobserved * 2 : pl->nobserved + 4096;
        gp_pl_typical_free(pl->typical);
        pl->typical = NULL;
        pl->epoch++;
    }
}

void gp_placement_frag(gp_placement_t *self, double *frag_milli, double *idle_milli)
{
    double f = 0, idle = 0;
    int mf[GP_MAX_DEVICES];
    for (int s = 0; s < self->nslots; s++) {
        gp_pl_node_t *n = &self->nodes[s];
        if (!n->used || !n->healthy)
            continue;
        for (int i = 0; i < n->ndev; i++) {
            mf[i] = gp_pl_dev_free_milli(&n->dev[i]);
            idle += mf[i];
        }
        f += gp_pl_fgd_node_frag(self, n, n->cpu_free, mf);
    }
    *frag_milli = f;
    *idle_milli = idle;
}

const gp_policy_t gp_policy_fgd = {
    "fgd",
    "fragmentation gradient descent: the node and devices whose expected "
    "fragmentation (over the workload's typical shapes) grows least",
    true, s_fgd_score, true, s_fgd_prefetch, NULL,
};
