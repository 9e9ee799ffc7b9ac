/*
 * rightsize.c - per-class usage summaries and recommendations (rightsize.h).
 */
#include "rightsize.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "util.h"

#include "banned.h"

#define S_VERSION    1
#define S_MEM_BASE   32.0      /* MiB: the first bucket's upper bound */
#define S_MEM_RATIO  1.05      /* each bucket 5% wider than the one before */
#define S_MIN_WEIGHT 1e-6
#define S_MAX_WEIGHT 1e12

struct gp_rightsize {
    char cls[GP_RIGHTSIZE_CLASS_LEN];
    char owner[GP_RIGHTSIZE_CLASS_LEN];
    int64_t updated_ms;
    int64_t runs, ends, ooms;
    int64_t mem_max;               /* MiB, -1 none */
    int cpu_max;                   /* percent, -1 none */
    int64_t asked_mem;
    int asked_cpt;
    double mem[GP_RIGHTSIZE_MEM_BUCKETS];
    double cpu[GP_RIGHTSIZE_CPU_BUCKETS];
};

static const char *const s_modes[] = { "off", "recommend", "auto" };

gp_rightsize_mode_t gp_rightsize_mode_parse(const char *s, int *ok)
{
    for (size_t i = 0; s && i < GP_ARRAY_LEN(s_modes); i++)
        if (!strcmp(s, s_modes[i])) {
            *ok = 1;
            return (gp_rightsize_mode_t)i;
        }
    *ok = 0;
    return GP_RIGHTSIZE_OFF;
}

const char *gp_rightsize_mode_name(gp_rightsize_mode_t m)
{
    return (unsigned)m < GP_ARRAY_LEN(s_modes) ? s_modes[m] : "off";
}

int gp_rightsize_class(const char *owner, const char *cls, const char *job_id, char *buf,
                       size_t size)
{
    char base[GP_RIGHTSIZE_CLASS_LEN];
    if (cls && *cls) {
        gp_strlcpy(base, cls, sizeof base);
    } else {
        gp_strlcpy(base, job_id ? job_id : "", sizeof base);
        size_t n = strlen(base);
        while (n > 0 && base[n - 1] >= '0' && base[n - 1] <= '9')
            n--;
        if (n > 0 && base[n - 1] == '-')
            n--;
        if (n > 0)          /* an id of digits alone is its own class */
            base[n] = '\0';
    }
    char out[2 * GP_RIGHTSIZE_CLASS_LEN + 2];
    snprintf(out, sizeof out, "%s%s%s", owner && *owner ? owner : "", owner && *owner ? "." : "",
             base);
    if (!gp_name_valid(out) || strlen(out) >= size || strlen(out) >= GP_RIGHTSIZE_CLASS_LEN)
        return -1;
    gp_strlcpy(buf, out, size);
    return 0;
}

gp_rightsize_t *gp_rightsize_new(const char *cls, const char *owner)
{
    gp_rightsize_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    gp_strlcpy(s->cls, cls ? cls : "", sizeof s->cls);
    gp_strlcpy(s->owner, owner ? owner : "", sizeof s->owner);
    s->mem_max = -1;
    s->cpu_max = -1;
    return s;
}

void gp_rightsize_destroy(gp_rightsize_t **self_p)
{
    if (self_p && *self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

const char *gp_rightsize_class_name(const gp_rightsize_t *self)
{
    return self->cls;
}

const char *gp_rightsize_owner(const gp_rightsize_t *self)
{
    return self->owner;
}

static int s_mem_bucket(int64_t mib)
{
    if (mib <= S_MEM_BASE)
        return 0;
    double b = ceil(log((double)mib / S_MEM_BASE) / log(S_MEM_RATIO) - 1e-9);
    return b >= GP_RIGHTSIZE_MEM_BUCKETS - 1 ? GP_RIGHTSIZE_MEM_BUCKETS - 1 : (int)b;
}

static int64_t s_mem_upper(int b)
{
    return (int64_t)ceil(S_MEM_BASE * pow(S_MEM_RATIO, b) - 1e-9);
}

void gp_rightsize_run_busy(gp_rightsize_run_t *run, double pct)
{
    if (!(pct >= 0))
        return;
    int b = (int)ceil(pct - 1e-9);
    run->busy[b > 100 ? 100 : b] += 1;
}

int64_t gp_rightsize_oom_bump(int64_t peak_mib, const gp_rightsize_opts_t *o)
{
    int64_t a = peak_mib + o->oom_min_mib;
    int64_t b = (int64_t)ceil((double)peak_mib * o->oom_factor);
    return a > b ? a : b;
}

int gp_rightsize_compute_bump(int cap_pct, const gp_rightsize_opts_t *o)
{
    int a = cap_pct + 5, b = (int)ceil((double)cap_pct * o->oom_factor - 1e-9);
    int c = a > b ? a : b;
    return c > 100 ? 100 : c;
}

static void s_decay(gp_rightsize_t *s, int64_t now_ms, int64_t half_life_ms)
{
    if (s->updated_ms > 0 && now_ms > s->updated_ms && half_life_ms > 0) {
        double f = pow(0.5, (double)(now_ms - s->updated_ms) / (double)half_life_ms);
        for (int i = 0; i < GP_RIGHTSIZE_MEM_BUCKETS; i++)
            s->mem[i] = s->mem[i] * f < S_MIN_WEIGHT ? 0 : s->mem[i] * f;
        for (int i = 0; i < GP_RIGHTSIZE_CPU_BUCKETS; i++)
            s->cpu[i] = s->cpu[i] * f < S_MIN_WEIGHT ? 0 : s->cpu[i] * f;
    }
    if (now_ms > s->updated_ms)
        s->updated_ms = now_ms;
}

void gp_rightsize_add_run(gp_rightsize_t *s, const gp_rightsize_run_t *run, int64_t now_ms,
                          const gp_rightsize_opts_t *o)
{
    s_decay(s, now_ms, o->half_life_ms);
    s->runs++;
    s->ends += run->end != 0;
    if (run->mem_peak_mib >= 0) {
        int64_t need = run->mem_peak_mib;
        if (run->oom) {
            s->ooms++;
            need = gp_rightsize_oom_bump(run->mem_peak_mib, o);
        }
        if (s->mem[s_mem_bucket(need)] < S_MAX_WEIGHT)
            s->mem[s_mem_bucket(need)] += 1;
        if (need > s->mem_max)
            s->mem_max = need;
    }
    if (run->throttled && run->cap_pct > 0) {
        int b = gp_rightsize_compute_bump(run->cap_pct, o);
        s->cpu[b] += 1;
        if (b > s->cpu_max)
            s->cpu_max = b;
    }
    for (int i = 0; i < GP_RIGHTSIZE_CPU_BUCKETS; i++) {
        if (run->busy[i] <= 0)
            continue;
        if (s->cpu[i] < S_MAX_WEIGHT)
            s->cpu[i] += run->busy[i];
        if (i > s->cpu_max)
            s->cpu_max = i;
    }
    if (run->asked_mem_mib > 0)
        s->asked_mem = run->asked_mem_mib;
    if (run->asked_compute_pct > 0)
        s->asked_cpt = run->asked_compute_pct;
}

/* The bucket where the weighted percentile p (0..100) falls; -1 empty. */
static int s_percentile(const double *h, int n, double p)
{
    double total = 0;
    for (int i = 0; i < n; i++)
        total += h[i];
    if (total <= 0)
        return -1;
    double want = total * p / 100.0, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += h[i];
        if (h[i] > 0 && acc >= want * (1 - 1e-12))
            return i;
    }
    for (int i = n - 1; i >= 0; i--)
        if (h[i] > 0)
            return i;
    return -1;
}

static int64_t s_mem_pct(const gp_rightsize_t *s, double p)
{
    int b = s_percentile(s->mem, GP_RIGHTSIZE_MEM_BUCKETS, p);
    if (b < 0)
        return -1;
    int64_t v = b == GP_RIGHTSIZE_MEM_BUCKETS - 1 ? s->mem_max : s_mem_upper(b);
    return v > s->mem_max ? s->mem_max : v;
}

static int s_cpu_pct(const gp_rightsize_t *s, double p)
{
    int b = s_percentile(s->cpu, GP_RIGHTSIZE_CPU_BUCKETS, p);
    return b > s->cpu_max ? s->cpu_max : b;
}

void gp_rightsize_recommend(const gp_rightsize_t *s, const gp_rightsize_opts_t *o,
                            gp_rightsize_rec_t *out)
{
    memset(out, 0, sizeof *out);
    out->compute_p50 = out->compute_p95 = out->compute_max = -1;
    if (s == NULL)
        return;
    out->runs = s->runs;
    out->ends = s->ends;
    out->ooms = s->ooms;
    out->asked_mem_mib = s->asked_mem;
    out->asked_compute_pct = s->asked_cpt;
    out->mem_max = s->mem_max;
    out->mem_p50 = s_mem_pct(s, 50);
    out->mem_p95 = s_mem_pct(s, 95);
    int64_t pm = s_mem_pct(s, o->mem_percentile);
    if (s->runs < o->min_runs) {
        /* Too few samples to stand for the class: shown, not applied. */
    } else if (pm >= 0) {
        out->have = 1;
        int64_t g = o->mem_granularity_mib > 0 ? o->mem_granularity_mib : 1;
        int64_t m = (int64_t)ceil((double)pm * (1 + o->mem_margin) - 1e-9);
        m = (m + g - 1) / g * g;
        out->mem_mib = m > 0 ? m : g;
    }
    out->compute_max = s->cpu_max;
    out->compute_p50 = s_cpu_pct(s, 50);
    out->compute_p95 = s_cpu_pct(s, 95);
    int pc = s_cpu_pct(s, o->compute_percentile);
    if (pc >= 0 && s->runs >= o->min_runs) {
        int c = (int)ceil((double)pc * (1 + o->compute_margin) - 1e-9);
        out->compute_pct = c < 1 ? 1 : c > 100 ? 100 : c;
    }
}

void gp_rightsize_apply(const gp_rightsize_rec_t *rec, int64_t asked_mem, int asked_cpt,
                        int64_t floor_mib, int64_t device_mib, int64_t *mem_mib,
                        int *compute_pct)
{
    int64_t m = asked_mem;
    int c = asked_cpt;
    if (rec && rec->have && asked_mem > 0 && rec->mem_mib > 0) {
        if (rec->mem_mib < m)
            m = rec->mem_mib;
        if (rec->mem_max > m)          /* never below the observed max (an OOM bump's too) */
            m = rec->mem_max;
    }
    if (rec && rec->compute_pct > 0 && asked_cpt > 0) {
        if (rec->compute_pct < c)
            c = rec->compute_pct;
        if (rec->compute_max > c)
            c = rec->compute_max > 100 ? 100 : rec->compute_max;
    }
    if (floor_mib > 0 && asked_mem > 0 && m < floor_mib)
        m = floor_mib;
    if (m > asked_mem && device_mib > 0 && m > device_mib)
        m = device_mib > asked_mem ? device_mib : asked_mem;
    *mem_mib = m;
    *compute_pct = c;
}

/* ---------------------------------------------------------------- codec */

static json_t *s_hist_json(const double *h, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        if (h[i] > 0)
            json_array_append_new(a, json_pack("[i,f]", i, h[i]));
    return a;
}

json_t *gp_rightsize_to_json(const gp_rightsize_t *s)
{
    json_t *o = json_pack("{s:i,s:s,s:I,s:I,s:I,s:I}", "v", S_VERSION, "class", s->cls,
                          "updated_ms", (json_int_t)s->updated_ms, "runs", (json_int_t)s->runs,
                          "ends", (json_int_t)s->ends, "ooms", (json_int_t)s->ooms);
    if (o == NULL)
        return NULL;
    if (s->owner[0])
        json_object_set_new(o, "owner", json_string(s->owner));
    json_object_set_new(o, "mem", json_pack("{s:I,s:o}", "max_mib", (json_int_t)s->mem_max,
                                            "buckets", s_hist_json(s->mem, GP_RIGHTSIZE_MEM_BUCKETS)));
    json_object_set_new(o, "compute", json_pack("{s:i,s:o}", "max_pct", s->cpu_max, "buckets",
                                                s_hist_json(s->cpu, GP_RIGHTSIZE_CPU_BUCKETS)));
    json_object_set_new(o, "asked", json_pack("{s:I,s:i}", "mem_mib", (json_int_t)s->asked_mem,
                                              "compute_percent", s->asked_cpt));
    return o;
}

char *gp_rightsize_dump(const gp_rightsize_t *s)
{
    json_t *o = gp_rightsize_to_json(s);
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return t;
}

static int s_int(json_t *o, const char *name, int64_t lo, int64_t hi, int64_t *out, gp_err_t *err)
{
    json_t *v = json_object_get(o, name);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return gp_err_set(err, GP_ERR_INVALID, "%s: expected an integer %lld..%lld", name,
                          (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return 0;
}

static int s_hist_from(json_t *o, const char *what, double *h, int n, gp_err_t *err)
{
    json_t *a = json_object_get(o, "buckets"), *e;
    size_t i;
    if (!json_is_array(a) || json_array_size(a) > (size_t)n)
        return gp_err_set(err, GP_ERR_INVALID, "%s.buckets: expected an array of at most %d",
                          what, n);
    json_array_foreach(a, i, e) {
        json_t *k = json_array_get(e, 0), *w = json_array_get(e, 1);
        if (!json_is_array(e) || json_array_size(e) != 2 || !json_is_integer(k) ||
            json_integer_value(k) < 0 || json_integer_value(k) >= n || !json_is_number(w) ||
            !(json_number_value(w) > 0) || !(json_number_value(w) <= S_MAX_WEIGHT) ||
            h[json_integer_value(k)] != 0)
            return gp_err_set(err, GP_ERR_INVALID,
                              "%s.buckets[%zu]: expected [bucket 0..%d, weight > 0], each "
                              "bucket once", what, i, n - 1);
        h[json_integer_value(k)] = json_number_value(w);
    }
    return 0;
}

gp_rightsize_t *gp_rightsize_from_json_str(const char *text, size_t len, gp_err_t *err)
{
    json_error_t jerr;
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    gp_rightsize_t *s = calloc(1, sizeof *s);
    int64_t v, x;
    json_t *mem, *cpu, *asked;
    const char *cls, *owner;
    if (s == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (o == NULL) {
        gp_err_set(err, GP_ERR_INVALID, "not valid JSON: %s", jerr.text);
        goto fail;
    }
    if (!json_is_object(o)) {
        gp_err_set(err, GP_ERR_INVALID, "expected a JSON object");
        goto fail;
    }
    if (s_int(o, "v", S_VERSION, S_VERSION, &v, err) < 0)
        goto fail;
    cls = json_string_value(json_object_get(o, "class"));
    if (cls == NULL || !gp_name_valid(cls) || strlen(cls) >= sizeof s->cls) {
        gp_err_set(err, GP_ERR_INVALID, "class: expected a name");
        goto fail;
    }
    gp_strlcpy(s->cls, cls, sizeof s->cls);
    owner = json_string_value(json_object_get(o, "owner"));
    if (json_object_get(o, "owner") && (owner == NULL || strlen(owner) >= sizeof s->owner)) {
        gp_err_set(err, GP_ERR_INVALID, "owner: expected a string");
        goto fail;
    }
    gp_strlcpy(s->owner, owner ? owner : "", sizeof s->owner);
    if (s_int(o, "updated_ms", 0, INT64_MAX, &s->updated_ms, err) < 0 ||
        s_int(o, "runs", 0, INT64_MAX, &s->runs, err) < 0 ||
        s_int(o, "ends", 0, s->runs, &s->ends, err) < 0 ||
        s_int(o, "ooms", 0, s->runs, &s->ooms, err) < 0)
        goto fail;
    mem = json_object_get(o, "mem");
    cpu = json_object_get(o, "compute");
    asked = json_object_get(o, "asked");
    if (!json_is_object(mem) || !json_is_object(cpu) || !json_is_object(asked)) {
        gp_err_set(err, GP_ERR_INVALID, "mem, compute, asked: expected objects");
        goto fail;
    }
    if (s_int(mem, "max_mib", -1, INT64_C(1) << 40, &s->mem_max, err) < 0 ||
        s_int(cpu, "max_pct", -1, 100, &x, err) < 0)
        goto fail;
    s->cpu_max = (int)x;
    if (s_hist_from(mem, "mem", s->mem, GP_RIGHTSIZE_MEM_BUCKETS, err) < 0 ||
        s_hist_from(cpu, "compute", s->cpu, GP_RIGHTSIZE_CPU_BUCKETS, err) < 0)
        goto fail;
    /* The maxima bound every bucket with weight: otherwise the figures lie. */
    for (int i = 0; i < GP_RIGHTSIZE_MEM_BUCKETS; i++)
        if (s->mem[i] > 0 && (s->mem_max < 0 || s_mem_bucket(s->mem_max) < i)) {
            gp_err_set(err, GP_ERR_INVALID, "mem: bucket %d lies above max_mib %lld", i,
                       (long long)s->mem_max);
            goto fail;
        }
    for (int i = 0; i < GP_RIGHTSIZE_CPU_BUCKETS; i++)
        if (s->cpu[i] > 0 && i > s->cpu_max) {
            gp_err_set(err, GP_ERR_INVALID, "compute: bucket %d lies above max_pct %d", i,
                       s->cpu_max);
            goto fail;
        }
    if (s_int(asked, "mem_mib", 0, INT64_C(1) << 40, &s->asked_mem, err) < 0 ||
        s_int(asked, "compute_percent", 0, 100, &x, err) < 0)
        goto fail;
    s->asked_cpt = (int)x;
    json_decref(o);
    return s;
fail:
    json_decref(o);
    free(s);
    return NULL;
}

json_t *gp_rightsize_rec_to_json(const gp_rightsize_rec_t *r)
{
    json_t *o = json_pack("{s:b,s:I,s:I,s:I}", "history", r->have, "runs", (json_int_t)r->runs,
                          "ends", (json_int_t)r->ends, "ooms", (json_int_t)r->ooms);
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "requested", json_pack("{s:I,s:i}", "mem_mib", (json_int_t)r->asked_mem_mib,
                                                  "compute_percent", r->asked_compute_pct));
    json_t *obs = json_object();
    if (r->have)
        json_object_set_new(obs, "mem_mib", json_pack("{s:I,s:I,s:I}", "p50", (json_int_t)r->mem_p50,
                                                      "p95", (json_int_t)r->mem_p95, "max",
                                                      (json_int_t)r->mem_max));
    if (r->compute_max >= 0)
        json_object_set_new(obs, "compute_percent",
                            json_pack("{s:i,s:i,s:i}", "p50", r->compute_p50, "p95", r->compute_p95,
                                      "max", r->compute_max));
    json_object_set_new(o, "observed", obs);
    json_t *rec = json_object();
    if (r->have)
        json_object_set_new(rec, "mem_mib", json_integer(r->mem_mib));
    if (r->compute_pct > 0)
        json_object_set_new(rec, "compute_percent", json_integer(r->compute_pct));
    json_object_set_new(o, "recommended", rec);
    return o;
}
