/*
 * shapes.c - the typical job shapes the coordinator learns (shapes.h).
 *
 * State: the histogram (placement_shapes.h), and per job counted the
 * histogram index and the submission time it was counted with, so that a
 * deleted record takes back exactly what it added.  Applying copies the
 * histogram's heaviest S_APPLY_MAX shapes into the engine (which keeps the
 * most popular 95% of them, as FGD does), and keeps the heaviest
 * S_WIRE_MAX of the same snapshot, in wire form, for the calls for bids.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "log.h"
#include "metrics.h"
#include "placement_shapes.h"
#include "shapes.h"
#include "util.h"

#include "banned.h"

#define S_APPLY_MAX 1024
#define S_WIRE_MAX 64
#define S_APPLY_EVERY_MS 1000

typedef struct {
    int index;
    int64_t t_ms;
} s_job_t;

struct coord_shapes {
    gp_shape_hist_t *hist;
    gp_strmap_t *jobs;          /* id -> s_job_t* */
    gp_job_t *scratch;
    bool applied;               /* since the last reset */
    uint64_t applied_gen;
    int64_t applied_jobs;
    int64_t applied_ms;
    json_t *wire;
};
typedef struct coord_shapes s_state_t;

static void s_free_jobs(s_state_t *s)
{
    if (s->jobs == NULL)
        return;
    for (gp_strmap_iter_t it = gp_strmap_first(s->jobs); it.key; it = gp_strmap_next(s->jobs, it))
        free(it.value);
    gp_strmap_destroy(&s->jobs);
}

void coord_shapes_reset(coord_t *c)
{
    s_state_t *s = c->shapes;
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL)
            return;
        s->hist = gp_shape_hist_new(c->cfg.shapes_half_life_ms);
        s->scratch = malloc(sizeof *s->scratch);
        if (s->hist == NULL || s->scratch == NULL) {
            gp_shape_hist_destroy(&s->hist);
            free(s->scratch);
            free(s);
            return;
        }
        c->shapes = s;
    }
    gp_shape_hist_clear(s->hist);
    s_free_jobs(s);
    s->jobs = gp_strmap_new();
    s->applied = false;
    json_decref(s->wire);
    s->wire = NULL;
}

void coord_shapes_job_seen(coord_t *c, const char *id, const json_t *spec, int64_t submitted_ms)
{
    s_state_t *s = c->shapes;
    if (s == NULL || s->jobs == NULL || coord_cache_engine(c) == NULL || gp_strmap_get(s->jobs, id))
        return;
    gp_shape_t shape;
    gp_err_t err;
    gp_job_init(s->scratch);
    if (spec == NULL || gp_job_from_json(spec, s->scratch, &err) < 0 ||
        gp_placement_job_shape(coord_cache_engine(c), s->scratch, &shape, &err) < 0)
        return;   /* a record the cache counts as bad already */
    int64_t t = submitted_ms;
    s_job_t *j = malloc(sizeof *j);
    if (j == NULL)
        return;
    j->t_ms = t;
    j->index = gp_shape_hist_add(s->hist, &shape, t);
    if (j->index < 0 || gp_strmap_put(s->jobs, id, j) < 0) {
        if (j->index >= 0)
            gp_shape_hist_remove(s->hist, j->index, t);
        free(j);
    }
}

int coord_shapes_job_known(coord_t *c, const char *id)
{
    s_state_t *s = c->shapes;
    return s && s->jobs && gp_strmap_get(s->jobs, id) != NULL;
}

void coord_shapes_job_gone(coord_t *c, const char *id)
{
    s_state_t *s = c->shapes;
    s_job_t *j = s && s->jobs ? gp_strmap_del(s->jobs, id) : NULL;
    if (j == NULL)
        return;
    gp_shape_hist_remove(s->hist, j->index, j->t_ms);
    free(j);
}

/* The shape's metric labels. */
static void s_labels(const gp_shape_t *sh, char *buf, size_t size)
{
    char esc[2 * GP_SHORT_LEN];
    snprintf(buf, size, "cpu_milli=\"%lld\",gpu_milli=\"%d\",gpus=\"%d\",model=\"%s\"",
             (long long)sh->cpu_milli, sh->milli, sh->devices,
             gp_metrics_escape(sh->model, esc, sizeof esc));
}

void coord_shapes_apply(coord_t *c)
{
    s_state_t *s = c->shapes;
    if (s == NULL || coord_cache_engine(c) == NULL)
        return;
    uint64_t gen = gp_shape_hist_generation(s->hist);
    int64_t jobs = gp_shape_hist_jobs(s->hist), now = gp_mono_ms();
    if (s->applied && gen == s->applied_gen)
        return;
    int64_t step = s->applied_jobs / 8 > 1 ? s->applied_jobs / 8 : 1;
    int64_t moved = jobs > s->applied_jobs ? jobs - s->applied_jobs : s->applied_jobs - jobs;
    if (s->applied && moved < step && now - s->applied_ms < S_APPLY_EVERY_MS)
        return;
    gp_shape_t *sh = malloc(sizeof *sh * S_APPLY_MAX);
    double *w = malloc(sizeof *w * S_APPLY_MAX);
    if (sh == NULL || w == NULL)
        goto cleanup;
    int n = gp_shape_hist_top(s->hist, sh, w, S_APPLY_MAX);
    gp_err_t err;
    if (n > 0 && gp_placement_set_typical(coord_cache_engine(c), sh, w, n, &err) < 0) {
        gp_log_warn("typical shapes not applied err=\"%s\"", err.msg);
        goto cleanup;
    }
    json_t *wire = n > 0 ? gp_shapes_to_json(sh, w, n < S_WIRE_MAX ? n : S_WIRE_MAX) : NULL;
    if (n > 0 && wire == NULL)
        goto cleanup;
    json_decref(s->wire);
    s->wire = wire;
    s->applied = true;
    s->applied_gen = gen;
    s->applied_jobs = jobs;
    s->applied_ms = now;
    coord_metrics_drop(&c->m, COORD_GAUGE_TYPICAL_SHAPE);
    for (int i = 0; i < n && i < S_WIRE_MAX; i++) {
        char labels[256];
        s_labels(&sh[i], labels, sizeof labels);
        gp_metric_set(coord_metrics_gauge(&c->m, COORD_GAUGE_TYPICAL_SHAPE, labels),
                      w[i]);
    }
    gp_metric_set(c->m.typical_shape_jobs,
                  (double)jobs);
    gp_metric_inc(c->m.typical_updates);
    gp_log_debug("typical shapes applied shapes=%d jobs=%lld", n, (long long)jobs);
cleanup:
    free(sh);
    free(w);
}

json_t *coord_shapes_wire(coord_t *c)
{
    s_state_t *s = c->shapes;
    return s && s->wire ? json_incref(s->wire) : NULL;
}

void coord_shapes_destroy(coord_t *c)
{
    s_state_t *s = c->shapes;
    if (s == NULL)
        return;
    s_free_jobs(s);
    gp_shape_hist_destroy(&s->hist);
    free(s->scratch);
    json_decref(s->wire);
    free(s);
    c->shapes = NULL;
}
