/*
 * metrics.h - a small Prometheus registry: counters, gauges and histograms,
 * rendered in the text exposition format (version 0.0.4) for /metrics.
 *
 * A metric family has a name, a help line and a type; each series of it is
 * one label set, written as Prometheus writes labels without braces:
 *
 *     gp_metric_t *bids = gp_metrics_counter(reg, "gpupool_agent_bids_total",
 *                                            "Bids sent", "result=\"won\"");
 *     gp_metric_inc(bids);
 *     gp_metric_t *lat = gp_metrics_histogram(reg, "gpupool_commit_seconds",
 *                                             "Commit latency", "", NULL, 0);
 *     gp_metric_observe(lat, 0.0021);
 *
 * Looking a series up again returns the same handle, so callers may cache
 * handles or not.
 *
 * The registry keeps what `promtool check metrics` and PromQL expect: a
 * counter's name ends in _total and no other type's does; a non-histogram's
 * name does not end in _bucket, _sum or _count; every series of a family has
 * the same label names (so that sum() over a family never counts anything
 * twice); label sets are well formed.  A lookup that would break one of
 * these returns NULL (and the update is a no-op): a programmer's error that
 * the tests' promtool runs and test_metrics catch.
 *
 * Series that describe something transient (a job's slice) are dropped when
 * it ends, by gp_metrics_sweep, so that a daemon that runs for months does
 * not keep (or export) series of every job it ever ran.  Handles stay valid
 * until the registry is destroyed, or the series reset
 * (gp_metrics_reset_family) or swept (gp_metrics_sweep).
 * Histograms without explicit bounds use latency buckets from 100 µs to
 * 10 s.  A registry is not thread-safe: use it from the event loop that
 * also serves /metrics.  Label values are the caller's to escape
 * (gp_metrics_escape helps).
 */
#ifndef GP_METRICS_H
#define GP_METRICS_H

#include <stddef.h>

typedef struct gp_metrics gp_metrics_t;
typedef struct gp_metric gp_metric_t;

gp_metrics_t *gp_metrics_new(void);
void gp_metrics_destroy(gp_metrics_t **self_p);

/* Get or create a series; NULL only when out of memory or when the name
 * is already registered with another type. */
gp_metric_t *gp_metrics_counter(gp_metrics_t *self, const char *name, const char *help,
                                const char *labels);
gp_metric_t *gp_metrics_gauge(gp_metrics_t *self, const char *name, const char *help,
                              const char *labels);
gp_metric_t *gp_metrics_histogram(gp_metrics_t *self, const char *name, const char *help,
                                  const char *labels, const double *bounds, int nbounds);

/* All accept NULL handles (a failed lookup) and then do nothing. */
void gp_metric_inc(gp_metric_t *m);
void gp_metric_add(gp_metric_t *m, double v);
void gp_metric_set(gp_metric_t *m, double v);
void gp_metric_observe(gp_metric_t *m, double v);
double gp_metric_value(const gp_metric_t *m);

/* Drop every series of a family (for gauges rebuilt at each scrape, e.g.
 * per-model allocation). */
void gp_metrics_reset_family(gp_metrics_t *self, const char *name);

/* Drop every series, of any family, that has label `label` and whose value
 * (as written, escaped) keep() refuses (returns 0 for).  Returns the number
 * of series dropped.  Handles to dropped series become invalid: callers that
 * sweep must not cache them. */
int gp_metrics_sweep(gp_metrics_t *self, const char *label,
                     int (*keep)(const char *value, void *arg), void *arg);

/* Render everything; *out is a NUL-terminated heap string the caller frees. */
int gp_metrics_render(const gp_metrics_t *self, char **out, size_t *len);

/* Escape a label value (\\, \", \n) into buf; returns buf. */
char *gp_metrics_escape(const char *value, char *buf, size_t size);

#endif
