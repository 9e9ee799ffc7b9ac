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
 * handles or not.  Handles stay valid until the registry is destroyed.
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

/* Render everything; *out is a NUL-terminated heap string the caller frees. */
int gp_metrics_render(const gp_metrics_t *self, char **out, size_t *len);

/* Escape a label value (\\, \", \n) into buf; returns buf. */
char *gp_metrics_escape(const char *value, char *buf, size_t size);

#endif
