/*
 * sim_plan.c - capacity planning: the smallest inventory that holds a
 * workload.
 *
 * The inventory is a mix of node kinds (the distinct model, GPU count, CPU
 * and memory rows of the node list).  Each kind's share comes from the node
 * list itself, or from --mix MODEL=weight,... (the weight is split among a
 * model's kinds in their own proportion; models left out get none).  An
 * inventory of k nodes gives each kind round(k x share) nodes (largest
 * remainder, so they sum to k).  The workload is placed as a snapshot: every
 * pod once, in a seeded random order, nobody leaves.  Its success rate is
 * the share of pods placed (mean over seeds); the search doubles k until it
 * reaches the target, then bisects for the smallest k that does.
 *
 * The same search with every fractional request rounded up to whole GPUs
 * answers "how many GPUs does sharing save": the difference between the
 * two inventories' GPU counts.
 */
#include "sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util.h"

#include "banned.h"

typedef struct {
    int tmpl;               /* index of a representative node */
    double share;
    int count;
} s_kind_t;

static int s_kinds(const sim_data_t *d, const char *mix, s_kind_t **out, int *nk,
                   gp_err_t *err)
{
    s_kind_t *k = calloc((size_t)d->nnodes, sizeof *k);
    if (k == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    int n = 0;
    for (int i = 0; i < d->nnodes; i++) {
        const sim_node_t *a = &d->nodes[i];
        int j;
        for (j = 0; j < n; j++) {
            const sim_node_t *b = &d->nodes[k[j].tmpl];
            if (sim_node_same_kind(a, b))
                break;
        }
        if (j == n)
            k[n++].tmpl = i;
        k[j].count++;
    }
    if (mix == NULL) {
        for (int j = 0; j < n; j++)
            k[j].share = (double)k[j].count / d->nnodes;
    } else {
        double wsum = 0;
        double *mw = calloc((size_t)d->nmodels + 1, sizeof *mw);
        char *buf = strdup(mix);
        if (mw == NULL || buf == NULL) {
            free(mw);
            free(buf);
            free(k);
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        }
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(t, '=');
            double w;
            if (eq == NULL || (*eq = '\0', gp_parse_double(eq + 1, 0, 1e9, &w) < 0)) {
                gp_err_set(err, GP_ERR_INVALID, "--mix: \"%s\" is not MODEL=weight", t);
                goto bad;
            }
            int m;
            for (m = 0; m < d->nmodels; m++)
                if (strcmp(d->models[m].name, t) == 0)
                    break;
            int have = 0;
            for (int j = 0; j < n; j++)
                if (d->nodes[k[j].tmpl].model == m)
                    have = 1;
            if (m == d->nmodels || !have) {
                gp_err_set(err, GP_ERR_INVALID, "--mix: no node of model %s in the node list", t);
                goto bad;
            }
            mw[m] += w;
            wsum += w;
        }
        if (wsum <= 0) {
            gp_err_set(err, GP_ERR_INVALID, "--mix: the weights add up to 0");
            goto bad;
        }
        for (int m = 0; m < d->nmodels; m++) {
            int cnt = 0;
            for (int j = 0; j < n; j++)
                if (d->nodes[k[j].tmpl].model == m)
                    cnt += k[j].count;
            for (int j = 0; j < n; j++)
                if (d->nodes[k[j].tmpl].model == m)
                    k[j].share = mw[m] / wsum * k[j].count / cnt;
        }
        free(mw);
        free(buf);
        goto done;
bad:
        free(mw);
        free(buf);
        free(k);
        return -1;
    }
done:
    *out = k;
    *nk = n;
    return 0;
}

/* Build a sim_data_t view with k nodes (shares the pods). */
static int s_inventory(const sim_data_t *d, s_kind_t *kinds, int nk, int k, sim_data_t *v)
{
    *v = *d;
    v->nodes = NULL;
    v->nnodes = v->nodes_cap = 0;
    v->gpu_total = 0;
    double *rem = malloc(sizeof *rem * (size_t)nk);
    if (rem == NULL)
        return -1;
    int sum = 0;
    for (int j = 0; j < nk; j++) {
        double x = kinds[j].share * k;
        kinds[j].count = (int)floor(x);
        rem[j] = x - kinds[j].count;
        sum += kinds[j].count;
    }
    while (sum < k) {
        int b = 0;
        for (int j = 1; j < nk; j++)
            if (rem[j] > rem[b])
                b = j;
        kinds[b].count++;
        rem[b] = -1;
        sum++;
    }
    free(rem);
    int idx = 0;
    for (int j = 0; j < nk; j++)
        for (int c = 0; c < kinds[j].count; c++) {
            sim_node_t n = d->nodes[kinds[j].tmpl];
            snprintf(n.name, sizeof n.name, "plan-%d", idx++);
            if (sim_add_node(v, &n) < 0)
                return -1;
        }
    return 0;
}

typedef struct {
    int nodes;
    int64_t gpus;
    double success;
    int *per_kind;
} s_answer_t;

static int s_eval(const sim_data_t *d, const sim_plan_opts_t *o, s_kind_t *kinds, int nk,
                  int k, bool whole, const gp_shape_t *sh, const double *w, int ns,
                  double *success, int64_t *gpus, gp_err_t *err)
{
    sim_data_t v;
    if (s_inventory(d, kinds, nk, k, &v) < 0) {
        free(v.nodes);
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    }
    double s = 0;
    for (int i = 0; i < o->nseeds; i++) {
        sim_run_opts_t ro;
        memset(&ro, 0, sizeof ro);
        ro.policy = o->policy;
        ro.seed = o->seeds[i];
        ro.inflate = 0;           /* the trace once, no copies */
        ro.candidates = o->candidates;
        ro.whole_only = whole;
        sim_result_t r;
        if (sim_run(&v, &ro, sh, w, ns, &r, err) < 0) {
            free(v.nodes);
            return -1;
        }
        s += r.pods > 0 ? 100.0 * r.placed / r.pods : 100;
        sim_result_free(&r);
    }
    *success = s / o->nseeds;
    *gpus = v.gpu_total;
    free(v.nodes);
    return 0;
}

static int s_search(const sim_data_t *d, const sim_plan_opts_t *o, s_kind_t *kinds, int nk,
                    bool whole, const gp_shape_t *sh, const double *w, int ns, s_answer_t *ans,
                    gp_err_t *err)
{
    int lo = 0, hi = d->nnodes > 0 ? d->nnodes : 1;
    double succ;
    int64_t gpus;
    for (;;) {
        if (s_eval(d, o, kinds, nk, hi, whole, sh, w, ns, &succ, &gpus, err) < 0)
            return -1;
        if (succ >= o->success)
            break;
        lo = hi;
        if (hi > 10000000)
            return gp_err_set(err, GP_ERR_NOTFOUND,
                              "no inventory up to %d nodes places %.2f%% of the pods "
                              "(some pods fit no node kind)", hi, o->success);
        hi *= 2;
    }
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        if (s_eval(d, o, kinds, nk, mid, whole, sh, w, ns, &succ, &gpus, err) < 0)
            return -1;
        if (succ >= o->success)
            hi = mid;
        else
            lo = mid;
    }
    if (s_eval(d, o, kinds, nk, hi, whole, sh, w, ns, &succ, &gpus, err) < 0)
        return -1;
    ans->nodes = hi;
    ans->gpus = gpus;
    ans->success = succ;
    ans->per_kind = malloc(sizeof *ans->per_kind * (size_t)nk);
    if (ans->per_kind == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    for (int j = 0; j < nk; j++)
        ans->per_kind[j] = kinds[j].count;
    return 0;
}

int sim_plan(const sim_data_t *d, const sim_plan_opts_t *o, FILE *out, gp_err_t *err)
{
    if (o->prices)
        return sim_plan_priced(d, o, out, err);
    s_kind_t *kinds = NULL;
    int nk = 0, rc = -1;
    gp_shape_t *sh = NULL;
    double *w = NULL;
    int ns = 0;
    s_answer_t shared = {0}, whole = {0};
    if (s_kinds(d, o->mix, &kinds, &nk, err) < 0)
        return -1;
    if (sim_typical(d, &sh, &w, &ns) < 0) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if (s_search(d, o, kinds, nk, false, sh, w, ns, &shared, err) < 0 ||
        s_search(d, o, kinds, nk, true, sh, w, ns, &whole, err) < 0)
        goto cleanup;
    double saved = (double)(whole.gpus - shared.gpus);
    double saved_pct = whole.gpus ? saved * 100.0 / whole.gpus : 0;
    if (o->json) {
        json_t *per = json_object();
        for (int m = 0; m < d->nmodels; m++) {
            int64_t gs = 0, gw = 0;
            for (int j = 0; j < nk; j++)
                if (d->nodes[kinds[j].tmpl].model == m) {
                    gs += (int64_t)shared.per_kind[j] * d->nodes[kinds[j].tmpl].ngpu;
                    gw += (int64_t)whole.per_kind[j] * d->nodes[kinds[j].tmpl].ngpu;
                }
            if (gs || gw)
                json_object_set_new(per, d->models[m].name,
                                    json_pack("{s:I, s:I}", "shared", (json_int_t)gs,
                                              "whole", (json_int_t)gw));
        }
        json_t *j = json_pack("{s:s, s:f, s:{s:i, s:I, s:f}, s:{s:i, s:I, s:f}, s:I, s:f, s:o}",
            "policy", o->policy, "target_success_pct", o->success,
            "shared", "nodes", shared.nodes, "gpus", (json_int_t)shared.gpus,
                      "success_pct", shared.success,
            "whole", "nodes", whole.nodes, "gpus", (json_int_t)whole.gpus,
                     "success_pct", whole.success,
            "gpus_saved_by_sharing", (json_int_t)(whole.gpus - shared.gpus),
            "saved_pct", saved_pct, "gpus_by_model", per);
        char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s)
            fprintf(out, "%s\n", s);
        free(s);
        json_decref(j);
    } else {
        fprintf(out, "capacity plan: policy %s, %d pods, target %.2f%% placed\n", o->policy,
                d->npods, o->success);
        fprintf(out, "%-18s %8s %8s %10s\n", "allocation", "nodes", "GPUs", "placed");
        fprintf(out, "%-18s %8d %8lld %9.2f%%\n", "fractional sharing", shared.nodes,
                (long long)shared.gpus, shared.success);
        fprintf(out, "%-18s %8d %8lld %9.2f%%\n", "whole GPUs", whole.nodes,
                (long long)whole.gpus, whole.success);
        fprintf(out, "sharing saves %.0f GPUs (%.1f%%)\n", saved, saved_pct);
        fprintf(out, "%-10s %8s %8s\n", "model", "shared", "whole");
        for (int m = 0; m < d->nmodels; m++) {
            int64_t gs = 0, gw = 0;
            for (int j = 0; j < nk; j++)
                if (d->nodes[kinds[j].tmpl].model == m) {
                    gs += (int64_t)shared.per_kind[j] * d->nodes[kinds[j].tmpl].ngpu;
                    gw += (int64_t)whole.per_kind[j] * d->nodes[kinds[j].tmpl].ngpu;
                }
            if (gs || gw)
                fprintf(out, "%-10s %8lld %8lld\n", d->models[m].name, (long long)gs,
                        (long long)gw);
        }
    }
    rc = 0;
cleanup:
    free(shared.per_kind);
    free(whole.per_kind);
    free(kinds);
    free(sh);
    free(w);
    return rc;
}
