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
    char *label_names;     /* "a,b": every series of the family has these */
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
        free(f->label_names);
        free(f->bounds);
        free(f);
    }
    free(*self_p);
    *self_p = NULL;
}

/* The names of a label set, "a=\"x\",b=\"y\"" -> "a,b", into buf; -1 when
 * the set is malformed (a name that is not [a-zA-Z_][a-zA-Z0-9_]*, a value
 * not quoted, a reserved "__" name). */
static int s_label_names(const char *labels, char *buf, size_t size)
{
    size_t o = 0;
    const char *p = labels;
    buf[0] = '\0';
    while (*p) {
        const char *name = p;
        if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            return -1;
        while (*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
               (*p >= '0' && *p <= '9'))
            p++;
        size_t nl = (size_t)(p - name);
        if ((nl >= 2 && name[0] == '_' && name[1] == '_') || p[0] != '=' || p[1] != '"')
            return -1;
        for (p += 2; *p && *p != '"'; p++)
            if (*p == '\\' && *++p == '\0')
                return -1;
        if (*p++ != '"' || (*p != '\0' && *p++ != ','))
            return -1;
        if (o + nl + 2 > size)
            return -1;
        if (o)
            buf[o++] = ',';
        memcpy(buf + o, name, nl);
        o += nl;
        buf[o] = '\0';
    }
    return 0;
}

static int s_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static s_family_t *s_family(gp_metrics_t *self, const char *name, const char *help, s_type_t type,
                            const double *bounds, int nbounds)
{
    for (s_family_t *f = self->families; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f->type == type ? f : NULL;
    /* Prometheus' conventions: a counter's name ends in _total, no other
     * type's does, and only a histogram's series end in _bucket, _sum or
     * _count. */
    if ((type == S_COUNTER) != s_ends_with(name, "_total") ||
        (type != S_HISTOGRAM && (s_ends_with(name, "_bucket") || s_ends_with(name, "_sum") ||
                                 s_ends_with(name, "_count"))))
        return NULL;
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
    /* A new series: its label names must be the family's (the first
     * series' set them), so that sum() and friends never count twice. */
    char names[512];
    if (s_label_names(labels, names, sizeof names) < 0 ||
        (type == S_HISTOGRAM && (!strcmp(names, "le") || strstr(names, ",le") ||
                                 !strncmp(names, "le,", 3))))
        return NULL;
    if (f->label_names == NULL && (f->label_names = strdup(names)) == NULL)
        return NULL;
    if (strcmp(f->label_names, names) != 0)
        return NULL;
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

/* The raw (escaped) value of label `label` in a label set, into buf; 0 if
 * the set has no such label. */
static int s_label_value(const char *labels, const char *label, char *buf, size_t size)
{
    size_t ll = strlen(label);
    for (const char *p = labels; *p;) {
        const char *eq = strchr(p, '=');
        if (eq == NULL || eq[1] != '"')
            return 0;
        const char *v = eq + 2, *e = v;
        while (*e && *e != '"')
            e += (*e == '\\' && e[1]) ? 2 : 1;
        if ((size_t)(eq - p) == ll && strncmp(p, label, ll) == 0) {
            snprintf(buf, size, "%.*s", (int)(e - v), v);
            return 1;
        }
        p = *e ? e + 1 : e;
        if (*p == ',')
            p++;
    }
    return 0;
}

int gp_metrics_sweep(gp_metrics_t *self, const char *label,
                     int (*keep)(const char *value, void *arg), void *arg)
{
    int dropped = 0;
    char value[512];
    for (s_family_t *f = self->families; f; f = f->next) {
        gp_metric_t **pp = &f->series;
        f->tail = &f->series;
        while (*pp) {
            gp_metric_t *m = *pp;
            if (s_label_value(m->labels, label, value, sizeof value) && !keep(value, arg)) {
                *pp = m->next;
                free(m->labels);
                free(m->buckets);
                free(m);
                dropped++;
                continue;
            }
            pp = &m->next;
            f->tail = pp;
        }
    }
    return dropped;
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
        fprintf(f, "# HELP %s ", fam->name);
        for (const char *h = fam->help; *h; h++) {   /* HELP escapes \\ and newline */
            if (*h == '\\' || *h == '\n')
                fputc('\\', f);
            fputc(*h == '\n' ? 'n' : *h, f);
        }
        fprintf(f, "\n# TYPE %s %s\n", fam->name, types[fam->type]);
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
