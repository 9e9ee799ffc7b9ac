/*
 * placement_shapes.c - the decayed histogram of job shapes and the shapes'
 * wire form (placement_shapes.h).
 *
 * Weights are kept as 2^((t - ref) / half_life) summed per shape, with ref
 * the time of the first job counted.  When a job comes more than
 * S_REBASE half-lives after ref, ref moves to its time and every weight is
 * multiplied by 2^((old ref - new ref) / half_life): the proportions stay,
 * the numbers stay finite.  A shape's job count is kept too, so that a
 * shape whose last job is taken back weighs exactly 0 whatever the
 * rounding of the sums.
 */
#include "placement_shapes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "banned.h"

#define S_REBASE 256.0

typedef struct {
    gp_shape_t shape;
    double w;
    int64_t jobs;
} s_bin_t;

struct gp_shape_hist {
    double half_life;
    bool have_ref;
    int64_t ref_ms;
    s_bin_t *bins;
    int n, cap;
    int64_t jobs;
    uint64_t gen;
};

gp_shape_hist_t *gp_shape_hist_new(int64_t half_life_ms)
{
    gp_shape_hist_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return NULL;
    self->half_life = half_life_ms > 0 ? (double)half_life_ms : 1.0;
    return self;
}

void gp_shape_hist_destroy(gp_shape_hist_t **self_p)
{
    if (self_p && *self_p) {
        free((*self_p)->bins);
        free(*self_p);
        *self_p = NULL;
    }
}

void gp_shape_hist_clear(gp_shape_hist_t *self)
{
    self->n = 0;
    self->jobs = 0;
    self->have_ref = false;
    self->gen++;
}

static double s_weight(const gp_shape_hist_t *self, int64_t t_ms)
{
    return exp2((double)(t_ms - self->ref_ms) / self->half_life);
}

int gp_shape_hist_add(gp_shape_hist_t *self, const gp_shape_t *shape, int64_t t_ms)
{
    gp_shape_t key;
    memset(&key, 0, sizeof key);       /* compared with memcmp: no stray bytes */
    key.cpu_milli = shape->cpu_milli;
    key.milli = shape->milli;
    key.devices = shape->devices;
    gp_strlcpy(key.model, shape->model, sizeof key.model);
    int i;
    for (i = 0; i < self->n; i++)
        if (memcmp(&self->bins[i].shape, &key, sizeof key) == 0)
            break;
    if (i == self->n) {
        if (self->n == GP_SHAPE_HIST_MAX)
            return -1;
        if (self->n == self->cap) {
            int ncap = self->cap ? self->cap * 2 : 32;
            s_bin_t *nb = realloc(self->bins, sizeof *nb * (size_t)ncap);
            if (nb == NULL)
                return -1;
            self->bins = nb;
            self->cap = ncap;
        }
        self->bins[i] = (s_bin_t){ .shape = key };
        self->n++;
    }
    if (!self->have_ref) {
        self->ref_ms = t_ms;
        self->have_ref = true;
    } else if ((double)(t_ms - self->ref_ms) / self->half_life > S_REBASE) {
        double f = exp2((double)(self->ref_ms - t_ms) / self->half_life);
        for (int k = 0; k < self->n; k++)
            self->bins[k].w *= f;
        self->ref_ms = t_ms;
    }
    self->bins[i].w += s_weight(self, t_ms);
    self->bins[i].jobs++;
    self->jobs++;
    self->gen++;
    return i;
}

void gp_shape_hist_remove(gp_shape_hist_t *self, int index, int64_t t_ms)
{
    if (index < 0 || index >= self->n || self->bins[index].jobs == 0)
        return;
    s_bin_t *b = &self->bins[index];
    b->jobs--;
    b->w = b->jobs == 0 ? 0 : b->w - s_weight(self, t_ms);
    if (b->w < 0)
        b->w = 0;
    self->jobs--;
    self->gen++;
}

int64_t gp_shape_hist_jobs(const gp_shape_hist_t *self)
{
    return self->jobs;
}

uint64_t gp_shape_hist_generation(const gp_shape_hist_t *self)
{
    return self->gen;
}

/* Heaviest first; among equal weights the larger CPU, share, devices, then
 * model (the order FGD's tables sort shapes in). */
static int s_cmp_bin(const void *pa, const void *pb)
{
    const s_bin_t *a = pa, *b = pb;
    if (a->w != b->w)
        return a->w > b->w ? -1 : 1;
    if (a->shape.cpu_milli != b->shape.cpu_milli)
        return a->shape.cpu_milli > b->shape.cpu_milli ? -1 : 1;
    if (a->shape.milli != b->shape.milli)
        return a->shape.milli > b->shape.milli ? -1 : 1;
    if (a->shape.devices != b->shape.devices)
        return a->shape.devices > b->shape.devices ? -1 : 1;
    return -strcmp(a->shape.model, b->shape.model);
}

int gp_shape_hist_top(const gp_shape_hist_t *self, gp_shape_t *shapes, double *weights, int max)
{
    if (self->n == 0 || max <= 0)
        return 0;
    s_bin_t *tmp = malloc(sizeof *tmp * (size_t)self->n);
    if (tmp == NULL)
        return 0;
    double total = 0;
    int m = 0;
    for (int i = 0; i < self->n; i++)
        if (self->bins[i].jobs > 0 && self->bins[i].w > 0) {
            tmp[m++] = self->bins[i];
            total += self->bins[i].w;
        }
    qsort(tmp, (size_t)m, sizeof *tmp, s_cmp_bin);
    int k = m < max ? m : max;
    for (int i = 0; i < k; i++) {
        shapes[i] = tmp[i].shape;
        weights[i] = tmp[i].w / total;
    }
    free(tmp);
    return k;
}

json_t *gp_shapes_to_json(const gp_shape_t *shapes, const double *weights, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) {
        json_t *o = json_pack("{s:I,s:i,s:i,s:s,s:f}", "cpu_milli", (json_int_t)shapes[i].cpu_milli,
                              "gpu_milli", shapes[i].milli, "gpus", shapes[i].devices, "model",
                              shapes[i].model, "weight", weights[i]);
        if (o == NULL || json_array_append_new(a, o) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

int gp_shapes_from_json(const json_t *array, gp_shape_t *shapes, double *weights, int max,
                        int *n, gp_err_t *err)
{
    if (!json_is_array(array))
        return gp_err_set(err, GP_ERR_INVALID, "shapes: expected an array");
    size_t len = json_array_size(array);
    if (len > (size_t)max)
        return gp_err_set(err, GP_ERR_INVALID, "shapes: %zu entries, at most %d", len, max);
    for (size_t i = 0; i < len; i++) {
        const json_t *o = json_array_get(array, i);
        json_t *cpu = json_object_get(o, "cpu_milli"), *milli = json_object_get(o, "gpu_milli");
        json_t *gpus = json_object_get(o, "gpus"), *model = json_object_get(o, "model");
        json_t *w = json_object_get(o, "weight");
        const char *ms = model ? json_string_value(model) : "";
        if (!json_is_integer(cpu) || json_integer_value(cpu) < 0 || !json_is_integer(milli) ||
            json_integer_value(milli) < 0 || json_integer_value(milli) > 1000 ||
            !json_is_integer(gpus) || json_integer_value(gpus) < 0 ||
            json_integer_value(gpus) > GP_MAX_DEVICES || ms == NULL ||
            strlen(ms) >= sizeof shapes[i].model || !json_is_number(w) ||
            !(json_number_value(w) > 0))
            return gp_err_set(err, GP_ERR_INVALID, "shapes[%zu]: expected {\"cpu_milli\", "
                              "\"gpu_milli\" 0..1000, \"gpus\", \"model\", \"weight\" > 0}", i);
        memset(&shapes[i], 0, sizeof shapes[i]);
        shapes[i].cpu_milli = json_integer_value(cpu);
        shapes[i].milli = (int)json_integer_value(milli);
        shapes[i].devices = (int)json_integer_value(gpus);
        gp_strlcpy(shapes[i].model, ms, sizeof shapes[i].model);
        weights[i] = json_number_value(w);
    }
    *n = (int)len;
    return 0;
}

int gp_placement_set_typical_json(gp_placement_t *pl, const json_t *array, gp_err_t *err)
{
    if (array == NULL)
        return 0;
    size_t len = json_array_size(array);
    gp_shape_t *sh = malloc(sizeof *sh * (len ? len : 1));
    double *w = malloc(sizeof *w * (len ? len : 1));
    int n = 0, rc = -1;
    if (sh == NULL || w == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if (gp_shapes_from_json(array, sh, w, GP_SHAPE_HIST_MAX, &n, err) < 0)
        goto cleanup;
    rc = n > 0 ? gp_placement_set_typical(pl, sh, w, n, err) : 0;
cleanup:
    free(sh);
    free(w);
    return rc;
}
