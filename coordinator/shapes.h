/*
 * shapes.h - the coordinator learns the workload's typical job shapes.
 *
 * The placement policies that fight fragmentation (fgd, gpupool, the
 * default) judge a node by how well the typical shapes would still fit it.
 * The coordinator learns them from the job records its cache sees
 * (placement_shapes.h: a histogram of shapes, each job weighted by its
 * submission time with a half-life, `shapes-half-life`):
 *
 *   - cache.c counts a job when its record first appears (listing or
 *     watch) and takes it back when the record is deleted.  Every
 *     coordinator of the pool is fed by the same watch and a job's weight
 *     depends only on its own submission time, so the standbys hold the
 *     leader's histogram, and a coordinator that lists the store after a
 *     failover or a compaction rebuilds it from the records: nothing about
 *     the shapes is stored in etcd.
 *   - Before ranking, a round applies the histogram to the placement
 *     engine (gp_placement_set_typical) when it has changed: at once while
 *     the engine has none, then when the jobs counted have grown by an
 *     eighth since the last time, or a second has passed since the last
 *     change (applying rebuilds the policy's tables and clears its score
 *     caches, so it is not done for every job).  The metrics then show what
 *     the engine uses: gpupool_coordinator_typical_shape{cpu_milli,
 *     gpu_milli,gpus,model} (each shape's share of the weight),
 *     gpupool_coordinator_typical_shape_jobs and ..._updates_total.
 *   - Calls for bids carry the heaviest shapes (coord_shapes_wire), so
 *     that the agents score their bids with the same distribution.
 *
 * All calls are from the coordinator's event loop; c->shapes is created by
 * the first coord_shapes_reset and freed by coord_shapes_destroy.
 */
#ifndef GP_COORD_SHAPES_H
#define GP_COORD_SHAPES_H

#include <jansson.h>

typedef struct coord coord_t;

/* Forget every job (the cache lists the store again); creates the state. */
void coord_shapes_reset(coord_t *c);
/* A job record seen for the first time: its parsed "spec" and its
 * "submitted_ms" (borrowed). */
void coord_shapes_job_seen(coord_t *c, const char *id, const json_t *spec, int64_t submitted_ms);
/* Whether coord_shapes_job_seen counted id already (a later record of it
 * has nothing to teach). */
int coord_shapes_job_known(coord_t *c, const char *id);
/* The job's record was deleted. */
void coord_shapes_job_gone(coord_t *c, const char *id);
/* Give the engine the learned shapes when due (see above). */
void coord_shapes_apply(coord_t *c);
/* The shapes for a call for bids: a new reference, or NULL when none. */
json_t *coord_shapes_wire(coord_t *c);
void coord_shapes_destroy(coord_t *c);

#endif
