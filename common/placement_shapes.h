/*
 * placement_shapes.h - the workload's typical shapes, learned from the jobs
 * a pool sees: a decayed histogram, and the shapes' wire form.
 *
 * FGD and gpupool (placement.h) judge a node by how well the workload's
 * typical shapes would still fit it, so they need the distribution of job
 * shapes (CPU, share per device, devices, models; gp_shape_t).  gpupool-sim
 * reads it off the trace; a live coordinator learns it from the jobs it
 * sees, with this histogram:
 *
 *     gp_shape_hist_t *h = gp_shape_hist_new(3600000);      // 1 h half-life
 *     int ix = gp_shape_hist_add(h, &shape, job_submitted_ms);
 *     ...
 *     gp_shape_hist_remove(h, ix, job_submitted_ms);        // the job is gone
 *     n = gp_shape_hist_top(h, shapes, weights, 64);        // heaviest first
 *     gp_placement_set_typical(engine, shapes, weights, n, &err);
 *
 * Decay: a job submitted at time t weighs 2^(t / half_life) (relative to a
 * reference time the histogram moves forward as time passes, rescaling
 * every weight, so that nothing overflows).  A job's weight depends only on
 * its own submission time, never on the order in which the histogram
 * learns of it: a coordinator that rebuilds the histogram from the job
 * records in its cache after a failover gets the histogram the old leader
 * had, and the region's coordinators, fed by the same watch, agree.
 * remove() takes back exactly what add() put in (the caller keeps the index
 * and time), so the histogram is always that of the jobs still known.
 *
 * At most GP_SHAPE_HIST_MAX distinct shapes; further new shapes are not
 * counted (add returns -1).  Not thread-safe.
 *
 * Wire form (the CFB's "shapes", README): a JSON array of
 * {"cpu_milli", "gpu_milli", "gpus", "model", "weight"}.
 */
#ifndef GP_PLACEMENT_SHAPES_H
#define GP_PLACEMENT_SHAPES_H

#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "placement.h"

#define GP_SHAPE_HIST_MAX 4096

typedef struct gp_shape_hist gp_shape_hist_t;

/* half_life_ms > 0; the caller owns the histogram.  NULL when out of memory. */
gp_shape_hist_t *gp_shape_hist_new(int64_t half_life_ms);
void gp_shape_hist_destroy(gp_shape_hist_t **self_p);
void gp_shape_hist_clear(gp_shape_hist_t *self);

/* Count one job of this shape submitted at t_ms; returns the shape's index
 * (stable until clear) or -1 (too many shapes, or out of memory). */
int gp_shape_hist_add(gp_shape_hist_t *self, const gp_shape_t *shape, int64_t t_ms);
/* Take back one job counted by add (same index, same time). */
void gp_shape_hist_remove(gp_shape_hist_t *self, int index, int64_t t_ms);

/* Jobs counted now (not decayed). */
int64_t gp_shape_hist_jobs(const gp_shape_hist_t *self);
/* Bumped by every add and remove: "has it changed since?" */
uint64_t gp_shape_hist_generation(const gp_shape_hist_t *self);

/* The max heaviest shapes with their weights (fractions of the whole
 * histogram's weight), heaviest first; returns how many (0 when empty). */
int gp_shape_hist_top(const gp_shape_hist_t *self, gp_shape_t *shapes, double *weights, int max);

/* Give the engine the shapes of a wire-form array (gp_placement_set_typical;
 * the same shapes again change nothing).  NULL: nothing to do, 0. */
int gp_placement_set_typical_json(gp_placement_t *pl, const json_t *array, gp_err_t *err);

/* Wire form of n shapes (a new reference; NULL when out of memory). */
json_t *gp_shapes_to_json(const gp_shape_t *shapes, const double *weights, int n);
/* Parse the wire form into shapes[0..max) and weights; *n gets how many.
 * -1 with GP_ERR_INVALID (and nothing written to *n) on a malformed entry. */
int gp_shapes_from_json(const json_t *array, gp_shape_t *shapes, double *weights, int max,
                        int *n, gp_err_t *err);

#endif
