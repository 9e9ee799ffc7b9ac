/*
 * placement_explain.c - why a job fits no node, as kube-scheduler says it:
 *
 *     0/6 nodes: 4 wrong model (want B200), 2 insufficient GPU memory
 *     (want 200000 MiB, most free 81920)
 *
 * Every node is judged by the first of the engine's filters it fails, in
 * the engine's order (placement.h): node health, region, cloud and zone
 * pins, labels, CPU, host memory; then its devices: of an allowed vendor
 * and model at all, enough of them, enough of an allowed model, healthy, on the uuid lists, with the memory,
 * then the compute, then both at once (or free, for whole devices); last,
 * the policy's own pick (a multi-GPU set it accepts).  The causes are
 * counted over the nodes and printed most frequent first, each with what
 * the job wants and the most any node of that cause offers, so that the
 * message never contradicts itself: a node is counted once, for one cause.
 *
 * It walks every node (no index, no sampling): it is for the jobs that do
 * not fit, not for the placement path.  Jobs that wait are asked about
 * again and again, many of the same request: the last 64 explanations are
 * kept by request (its shape, model and vendor lists, and no pins, labels
 * or uuid lists) and reused while the engine's clock (every change to a
 * node or an allocation moves it) has not moved.
 */
#include "placement_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "banned.h"

enum {
    C_UNHEALTHY, C_REGION, C_CLOUD, C_ZONE, C_LABEL, C_CPU, C_HOSTMEM, C_FEW, C_MODEL,
    C_GPU_UNHEALTHY, C_UUID, C_MEMORY, C_COMPUTE, C_ROOM, C_BUSY, C_SET, C_N
};

typedef struct {
    int count;
    int64_t most;              /* the most any node of this cause offers */
} s_cause_t;

static bool s_has(const int *ids, int n, int id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id && id >= 0)
            return true;
    return false;
}

static void s_list(char *out, size_t size, const gp_strlist_t *l)
{
    out[0] = '\0';
    size_t len = 0;
    for (int i = 0; i < l->n && len + 1 < size; i++) {
        int w = snprintf(out + len, size - len, "%s%s", i ? "|" : "", l->v[i]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
}

/* The first device filter node n fails for r (C_N: none), *most set. */
static int s_devices(const gp_pl_node_t *n, const gp_pl_req_t *r, int64_t *most)
{
    int allowed = 0;
    for (int i = 0; i < n->ndev; i++)
        allowed += r->allowed[n->dev[i].group] != 0;
    *most = 0;
    if (allowed == 0 && n->ndev > 0)
        return C_MODEL;   /* none of its models: that says more than a count */
    if (n->ndev < r->n) {
        *most = n->ndev;
        return C_FEW;
    }
    int model = 0, healthy = 0, listed = 0, mem = 0, comp = 0, both = 0, free = 0;
    int64_t mem_most = 0, comp_most = 0;
    for (int i = 0; i < n->ndev; i++) {
        const gp_pl_dev_t *d = &n->dev[i];
        if (!r->allowed[d->group])
            continue;
        model++;
        if (!d->healthy)
            continue;
        healthy++;
        if (r->dev_filter && !gp_pl_dev_fits_slow(d, r))
            continue;
        listed++;
        if (r->whole) {
            free += d->nalloc == 0 && !d->whole_taken;
            continue;
        }
        int64_t mfree = d->whole_taken ? 0 : d->mem_free;
        int cfree = d->whole_taken ? 0 : d->comp_free;
        int m = mfree >= gp_pl_dev_mem_need(d, r), cp = cfree >= r->comp_pm;
        mem += m;
        comp += cp;
        both += m && cp;
        if (mfree > mem_most)
            mem_most = mfree;
        if (cfree > comp_most)
            comp_most = cfree;
    }
    *most = 0;
    if (model < r->n)
        return C_MODEL;
    if (healthy < r->n)
        return C_GPU_UNHEALTHY;
    if (listed < r->n)
        return C_UUID;
    if (r->whole) {
        *most = free;
        return free < r->n ? C_BUSY : C_N;
    }
    if (mem < r->n) {
        *most = mem_most;
        return C_MEMORY;
    }
    if (comp < r->n) {
        *most = comp_most / 10;
        return C_COMPUTE;
    }
    return both < r->n ? C_ROOM : C_N;
}

/* The first filter node n fails for r (C_N: none: it fits). */
static int s_judge(gp_placement_t *pl, gp_pl_node_t *n, const gp_pl_req_t *r, int64_t *most)
{
    *most = 0;
    if (!n->healthy)
        return C_UNHEALTHY;
    int own[3] = { n->region, n->cloud, n->zone };
    for (int i = 0; i < 3; i++)
        if (r->npin[i] && !s_has(r->pin[i], r->npin[i], own[i]))
            return C_REGION + i;
    for (int i = 0; i < r->nlabels; i++)
        if (!s_has(n->labels, n->nlabels, r->labels[i]))
            return C_LABEL;
    if (n->cpu_free < r->cpu) {
        *most = n->cpu_free;
        return C_CPU;
    }
    if (n->mem_free < r->hmem) {
        *most = n->mem_free;
        return C_HOSTMEM;
    }
    if (r->n > 0) {
        int c = s_devices(n, r, most);
        if (c != C_N)
            return c;
    }
    double score;
    uint32_t mask;
    return gp_pl_eval(pl, n, r, &score, &mask) ? C_N : C_SET;
}

/* One cause as the message says it. */
static int s_say(char *out, size_t size, int cause, const s_cause_t *k, const gp_pl_req_t *r)
{
    const gp_job_t *j = r->job;
    char want[200];
    switch (cause) {
    case C_UNHEALTHY:
        return snprintf(out, size, "%d unhealthy", k->count);
    case C_REGION:
    case C_CLOUD:
    case C_ZONE: {
        const gp_strlist_t *l[3] = { &j->regions, &j->clouds, &j->zones };
        static const char *const what[3] = { "region", "cloud", "zone" };
        s_list(want, sizeof want, l[cause - C_REGION]);
        return snprintf(out, size, "%d other %s (want %s)", k->count, what[cause - C_REGION], want);
    }
    case C_LABEL:
        return snprintf(out, size, "%d without the labels", k->count);
    case C_CPU:
        return snprintf(out, size, "%d insufficient CPU (want %lld milli, most free %lld)", k->count,
                        (long long)r->cpu, (long long)k->most);
    case C_HOSTMEM:
        return snprintf(out, size, "%d insufficient host memory (want %lld MiB, most free %lld)",
                        k->count, (long long)r->hmem, (long long)k->most);
    case C_FEW:
        return snprintf(out, size, "%d too few GPUs (want %d, most %lld)", k->count, r->n,
                        (long long)k->most);
    case C_MODEL: {
        char v[100];
        s_list(want, sizeof want, &j->models);
        s_list(v, sizeof v, &j->vendors);
        if (want[0] == '\0' && v[0] == '\0')
            gp_strlcpy(want, "not the excluded ones", sizeof want);
        else if (want[0] == '\0')
            gp_strlcpy(want, v, sizeof want);
        return snprintf(out, size, "%d wrong model (want %s)", k->count, want);
    }
    case C_GPU_UNHEALTHY:
        return snprintf(out, size, "%d too few healthy GPUs (want %d)", k->count, r->n);
    case C_UUID:
        return snprintf(out, size, "%d too few GPUs on the job's uuid lists (want %d)", k->count,
                        r->n);
    case C_MEMORY:
        if (r->mem_mib > 0)
            snprintf(want, sizeof want, "%lld MiB", (long long)r->mem_mib);
        else
            snprintf(want, sizeof want, "%d%% of a GPU", r->mem_pm / 10);
        return snprintf(out, size, "%d insufficient GPU memory (want %s on %d GPU%s, most free %lld)",
                        k->count, want, r->n, r->n == 1 ? "" : "s", (long long)k->most);
    case C_COMPUTE:
        return snprintf(out, size, "%d insufficient compute (want %d%% on %d GPU%s, most free %lld%%)",
                        k->count, r->comp_pm / 10, r->n, r->n == 1 ? "" : "s", (long long)k->most);
    case C_ROOM:
        return snprintf(out, size, "%d too few GPUs with both the memory and the compute (want %d)",
                        k->count, r->n);
    case C_BUSY:
        return snprintf(out, size, "%d too few free whole GPUs (want %d, most free %lld)", k->count,
                        r->n, (long long)k->most);
    default:
        return snprintf(out, size, "%d no device set the policy accepts", k->count);
    }
}

#define S_MEMO 64

typedef struct {
    uint64_t key;
    uint32_t clock;
    int fits;
    char text[256];
} s_memo_t;

struct gp_pl_explain_memo {
    s_memo_t e[S_MEMO];
};

static uint64_t s_hash_list(uint64_t h, const gp_strlist_t *l)
{
    for (int i = 0; i < l->n; i++) {
        for (const char *p = l->v[i]; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
    }
    return (h ^ 0xfe) * 1099511628211ULL;
}

/* The memo key of r (0: not memoized: pins, labels or uuid lists). */
static uint64_t s_memo_key(const gp_pl_req_t *r)
{
    const gp_job_t *j = r->job;
    if (r->node_filter || r->dev_filter)
        return 0;
    uint64_t h = r->shape;
    h = s_hash_list(h, &j->models);
    h = s_hash_list(h, &j->vendors);
    h = s_hash_list(h, &j->exclude_models);
    h = s_hash_list(h, &j->exclude_vendors);
    return h ? h : 1;
}

static int s_explain(gp_placement_t *self, const gp_pl_req_t *r, char *buf, size_t size);

int gp_placement_explain(gp_placement_t *self, const gp_job_t *job, char *buf, size_t size,
                         gp_err_t *err)
{
    gp_pl_req_t r;
    if (gp_pl_compile(self, job, &r, err) < 0)
        return -1;
    uint64_t key = s_memo_key(&r);
    if (key && self->explain_memo == NULL)
        self->explain_memo = calloc(1, sizeof *self->explain_memo);
    s_memo_t *m = key && self->explain_memo ? &self->explain_memo->e[key % S_MEMO] : NULL;
    if (m && m->key == key && m->clock == self->clock) {
        snprintf(buf, size, "%s", m->text);
        return m->fits;
    }
    int fits = s_explain(self, &r, buf, size);
    if (m) {
        m->key = key;
        m->clock = self->clock;
        m->fits = fits;
        snprintf(m->text, sizeof m->text, "%s", buf);
    }
    return fits;
}

static int s_explain(gp_placement_t *self, const gp_pl_req_t *rq, char *buf, size_t size)
{
    gp_pl_req_t r = *rq;
    s_cause_t causes[C_N + 1];
    memset(causes, 0, sizeof causes);
    int total = 0;
    for (int s = 0; s < self->nslots; s++) {
        gp_pl_node_t *n = &self->nodes[s];
        if (!n->used)
            continue;
        total++;
        int64_t most;
        int c = s_judge(self, n, &r, &most);
        causes[c].count++;
        if (most > causes[c].most)
            causes[c].most = most;
    }
    int fits = causes[C_N].count;
    size_t len = 0;
    int w = snprintf(buf, size, fits ? "%d/%d nodes can hold it" : "%d/%d nodes", fits, total);
    len = w > 0 && (size_t)w < size ? (size_t)w : size - 1;
    /* Most frequent first; among equals, the engine's order. */
    bool done[C_N] = { false };
    for (int printed = 0;; printed++) {
        int best = -1;
        for (int c = 0; c < C_N; c++)
            if (!done[c] && causes[c].count && (best < 0 || causes[c].count > causes[best].count))
                best = c;
        if (best < 0 || fits)
            break;
        done[best] = true;
        if (len + 3 >= size)
            break;
        len += (size_t)snprintf(buf + len, size - len, printed ? ", " : ": ");
        w = s_say(buf + len, size - len, best, &causes[best], &r);
        len = w > 0 && len + (size_t)w < size ? len + (size_t)w : size - 1;
    }
    return fits;
}
