#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

typedef enum { S_COUNTER, S_GAUGE, S_HISTOGRAM } s_type_t;

static const double s_default_bounds[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                           0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };

struct gp_metric {
    gp_metric_t *next;
    char *labels;
    double value;          /* counter / gauge; histogram: sum */
    unsigned long long count;
    unsigned long long *buckets;  /* histogram: cumulative at render time */
    const double *bounds;
    int nbounds;
};

typedef struct s_family {
    struct s_family *next;
    char *name, *help;
    s_type_t type;
    double *bounds;
    int nbounds;
    gp_metric_t *series, **tail;
} s_family_t;

struct gp_metrics {
    s_family_t *families, **tail;
};

gp_metrics_t *gp_metrics_new(void)
{
    gp_metrics_t *self = calloc(1, sizeof *self);
    if (self)
        self->tail = &self->families;
    return self;
}

static void s_free_series(s_family_t *f)
{
    for (gp_metric_t *m = f->series, *n; m; m = n) {
        n = m->next;
        free(m->labels);
        free(m->buckets);
        free(m);
    }
    f->series = NULL;
    f->tail = &f->series;
}

void gp_metrics_destroy(gp_metrics_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    for (s_family_t *f = (*self_p)->families, *n; f; f = n) {
        n = f->next;
        s_free_series(f);
        free(f->name);
        free(f->help);
        free(f->bounds);
        free(f);
    }
    free(*self_p);
    *self_p = NULL;
}

static s_family_t *s_family(gp_metrics_t *self, const char *name, const char *help, s_type_t type,
                            const double *bounds, int nbounds)
{
    for (s_family_t *f = self->families; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f->type == type ? f : NULL;
    s_family_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    if (type == S_HISTOGRAM && (bounds == NULL || nbounds <= 0)) {
        bounds = s_default_bounds;
        nbounds = (int)(sizeof s_default_bounds / sizeof s_default_bounds[0]);
    }
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->type = type;
    f->tail = &f->series;
    if (type == S_HISTOGRAM) {
        f->bounds = malloc(sizeof(double) * (size_t)nbounds);
        if (f->bounds)
            memcpy(f->bounds, bounds, sizeof(double) * (size_t)nbounds);
        f->nbounds = nbounds;
    }
    if (!f->name || !f->help || (type == S_HISTOGRAM && !f->bounds)) {
        free(f->name);
        free(f->help);
        free(f->bounds);
        free(f);
        return NULL;
    }
    *self->tail = f;
    self->tail = &f->next;
    return f;
}

static gp_metric_t *s_series(gp_metrics_t *self, const char *name, const char *help,
                             const char *labels, s_type_t type, const double *bounds, int nb)
{
    s_family_t *f = s_family(self, name, help, type, bounds, nb);
    if (f == NULL)
        return NULL;
    if (labels == NULL)
        labels = "";
    for (gp_metric_t *m = f->series; m; m = m->next)
        if (strcmp(m->labels, labels) == 0)
            return m;
    gp_metric_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->labels = strdup(labels);
    if (type == S_HISTOGRAM) {
        m->buckets = calloc((size_t)f->nbounds, sizeof *m->buckets);
        m->bounds = f->bounds;
        m->nbounds = f->nbounds;
    }
    if (m->labels == NULL || (type == S_HISTOGRAM && m->buckets == NULL)) {
        free(m->labels);
        free(m->buckets);
        free(m);
        return NULL;
    }
    *f->tail = m;
    f->tail = &m->next;
    return m;
}

gp_metric_t *gp_metrics_counter(gp_metrics_t *self, const char *name, const char *help,
                                const char *labels)
{
    return s_series(self, name, help, labels, S_COUNTER, NULL, 0);
}

gp_metric_t *gp_metrics_gauge(gp_metrics_t *self, const char *name, const char *help,
                              const char *labels)
{
    return s_series(self, name, help, labels, S_GAUGE, NULL, 0);
}

gp_metric_t *gp_metrics_histogram(gp_metrics_t *self, const char *name, const char *help,
                                  const char *labels, const double *bounds, int nbounds)
{
    return s_series(self, name, help, labels, S_HISTOGRAM, bounds, nbounds);
}

void gp_metric_inc(gp_metric_t *m) { gp_metric_add(m, 1); }
void gp_metric_add(gp_metric_t *m, double v) { if (m) m->value += v; }
void gp_metric_set(gp_metric_t *m, double v) { if (m) m->value = v; }
double gp_metric_value(const gp_metric_t *m) { return m ? m->value : 0; }

void gp_metric_observe(gp_metric_t *m, double v)
{
    if (m == NULL || m->buckets == NULL)
        return;
    m->value += v;
    m->count++;
    for (int i = 0; i < m->nbounds; i++) {
        if (v <= m->bounds[i]) {
            m->buckets[i]++;
            break;
        }
    }
}

void gp_metrics_reset_family(gp_metrics_t *self, const char *name)
{
    for (s_family_t *f = self->families; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            s_free_series(f);
}

char *gp_metrics_escape(const char *value, char *buf, size_t size)
{
    size_t o = 0;
    if (size == 0)
        return buf;
    for (const char *p = value; *p && o + 2 < size; p++) {
        if (*p == '\\' || *p == '"' || *p == '\n') {
            buf[o++] = '\\';
            buf[o++] = *p == '\n' ? 'n' : *p;
        } else {
            buf[o++] = *p;
        }
    }
    buf[o] = '\0';
    return buf;
}

/* Labels for one line: "{a="x",le="0.1"}" or "" */
static void s_labels(FILE *f, const char *labels, const char *extra)
{
    int has = labels && *labels, hasx = extra && *extra;
    if (!has && !hasx)
        return;
    fprintf(f, "{%s%s%s}", has ? labels : "", has && hasx ? "," : "", hasx ? extra : "");
}

int gp_metrics_render(const gp_metrics_t *self, char **out, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (f == NULL)
        return -1;
    static const char *const types[] = { "counter", "gauge", "histogram" };
    for (const s_family_t *fam = self->families; fam; fam = fam->next) {
        if (fam->series == NULL)
            continue;
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help, fam->name,
                types[fam->type]);
        for (const gp_metric_t *m = fam->series; m; m = m->next) {
            if (fam->type != S_HISTOGRAM) {
                fprintf(f, "%s", fam->name);
                s_labels(f, m->labels, NULL);
                fprintf(f, " %.17g\n", m->value);
                continue;
            }
            unsigned long long cum = 0;
            for (int i = 0; i < m->nbounds; i++) {
                char le[64];
                cum += m->buckets[i];
                snprintf(le, sizeof le, "le=\"%g\"", m->bounds[i]);
                fprintf(f, "%s_bucket", fam->name);
                s_labels(f, m->labels, le);
                fprintf(f, " %llu\n", cum);
            }
            fprintf(f, "%s_bucket", fam->name);
            s_labels(f, m->labels, "le=\"+Inf\"");
            fprintf(f, " %llu\n%s_sum", m->count, fam->name);
            s_labels(f, m->labels, NULL);
            fprintf(f, " %.17g\n%s_count", m->value, fam->name);
            s_labels(f, m->labels, NULL);
            fprintf(f, " %llu\n", m->count);
        }
    }
    if (fclose(f) != 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    if (len)
        *len = n;
    return 0;
}
