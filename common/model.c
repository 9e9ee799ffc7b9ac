/* model.c - records of the pool and their JSON codecs (see model.h). */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jscan.h"
#include "util.h"

#include "banned.h"

void gp_device_init(gp_device_t *dev)
{
    memset(dev, 0, sizeof *dev);
    gp_strlcpy(dev->vendor, "nvidia", sizeof dev->vendor);
    dev->healthy = true;
}

void gp_node_init(gp_node_t *node)
{
    memset(node, 0, sizeof *node);
    node->oversub = 1.0;
    node->healthy = true;
}

void gp_job_init(gp_job_t *job)
{
    memset(job, 0, sizeof *job);
}

void gp_alloc_init(gp_alloc_t *alloc)
{
    memset(alloc, 0, sizeof *alloc);
    alloc->stop_grace_s = -1;
}

int gp_schema_check(const json_t *v, gp_err_t *err)
{
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < GP_SCHEMA_MIN)
        return gp_err_set(err, GP_ERR_INVALID, "field \"schema\": expected an integer >= %d",
                          GP_SCHEMA_MIN);
    if (json_integer_value(v) > GP_SCHEMA_VERSION)
        return gp_err_set(err, GP_ERR_INVALID,
                          "schema %lld: written by a newer release (this one reads %d to %d)",
                          (long long)json_integer_value(v), GP_SCHEMA_MIN, GP_SCHEMA_VERSION);
    return 0;
}

int gp_strlist_add(gp_strlist_t *list, const char *s)
{
    if (list->n >= GP_MAX_LIST || strlen(s) >= GP_SHORT_LEN || *s == '\0')
        return -1;
    gp_strlcpy(list->v[list->n++], s, GP_SHORT_LEN);
    return 0;
}

bool gp_strlist_has(const gp_strlist_t *list, const char *s)
{
    for (int i = 0; i < list->n; i++)
        if (strcmp(list->v[i], s) == 0)
            return true;
    return false;
}

int gp_node_add_label(gp_node_t *node, const char *key, const char *value)
{
    if (node->nlabels >= GP_MAX_LABELS || strlen(key) >= GP_SHORT_LEN ||
        strlen(value) >= GP_SHORT_LEN || *key == '\0')
        return -1;
    gp_label_t *l = &node->labels[node->nlabels++];
    gp_strlcpy(l->key, key, sizeof l->key);
    gp_strlcpy(l->value, value, sizeof l->value);
    return 0;
}

/* ------------------------------------------------------------ field readers */

static int s_str(const json_t *v, const char *field, char *dst, size_t size, gp_err_t *err)
{
    if (!json_is_string(v))
        return gp_err_set(err, GP_ERR_INVALID, "field \"%s\": expected a string", field);
    const char *s = json_string_value(v);
    if (strlen(s) >= size)
        return gp_err_set(err, GP_ERR_INVALID, "field \"%s\": longer than %zu characters",
                          field, size - 1);
    gp_strlcpy(dst, s, size);
    return 0;
}

/* A number, or (when lenient, for HAMi's Kubernetes quantities) a numeric string. */
static int s_num(const json_t *v, const char *field, bool lenient, double *out, gp_err_t *err)
{
    if (json_is_integer(v)) {
        *out = (double)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        *out = json_real_value(v);
        if (!isfinite(*out))
            return gp_err_set(err, GP_ERR_INVALID, "field \"%s\": not a finite number", field);
        return 0;
    }
    if (lenient && json_is_string(v) &&
        gp_parse_double(json_string_value(v), -1e18, 1e18, out) == 0)
        return 0;
    return gp_err_set(err, GP_ERR_INVALID, "field \"%s\": expected a number", field);
}

static int s_int(const json_t *v, const char *field, bool lenient, int64_t min, int64_t max,
                 int64_t *out, gp_err_t *err)
{
    double d;
    if (s_num(v, field, lenient, &d, err) < 0)
        return -1;
    if (d != floor(d))
        return gp_err_set(err, GP_ERR_INVALID, "field \"%s\": %g is not a whole number", field, d);
    if (d < (double)min || d > (double)max)
        return gp_err_set(err, GP_ERR_INVALID, "field \"%s\": %.0f out of range %lld..%lld",
                          field, d, (long long)min, (long long)max);
    *out = (int64_t)d;
    return 0;
}

static int s_bool(const json_t *v, const char *field, bool *out, gp_err_t *err)
{
    if (!json_is_boolean(v))
        return gp_err_set(err, GP_ERR_INVALID, "field \"%s\": expected true or false", field);
    *out = json_is_true(v);
    return 0;
}

/* A list: a JSON array of strings, or one comma-separated string (HAMi). */
static int s_list(const json_t *v, const char *field, gp_strlist_t *out, gp_err_t *err)
{
    gp_strlist_t l = {0};
    if (json_is_string(v)) {
        char buf[GP_MAX_LIST * GP_SHORT_LEN];
        if (strlen(json_string_value(v)) >= sizeof buf)
            return gp_err_set(err, GP_ERR_INVALID, "field \"%s\": list too long", field);
        gp_strlcpy(buf, json_string_value(v), sizeof buf);
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ')
                t++;
            size_t n = strlen(t);
            while (n > 0 && t[n - 1] == ' ')
                t[--n] = '\0';
            if (n == 0)
                continue;
            if (gp_strlist_add(&l, t) < 0)
                return gp_err_set(err, GP_ERR_INVALID,
                                  "field \"%s\": more than %d entries or an entry too long",
                                  field, GP_MAX_LIST);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (!json_is_string(e) || json_string_length(e) == 0)
                return gp_err_set(err, GP_ERR_INVALID,
                                  "field \"%s\"[%zu]: expected a non-empty string", field, i);
            if (gp_strlist_add(&l, json_string_value(e)) < 0)
                return gp_err_set(err, GP_ERR_INVALID,
                                  "field \"%s\": more than %d entries or an entry too long",
                                  field, GP_MAX_LIST);
        }
    } else {
        return gp_err_set(err, GP_ERR_INVALID,
                          "field \"%s\": expected an array of strings", field);
    }
    *out = l;
    return 0;
}

static int s_labels(const json_t *v, const char *field, gp_label_t *labels, int *nlabels,
                    gp_err_t *err)
{
    if (!json_is_object(v))
        return gp_err_set(err, GP_ERR_INVALID, "field \"%s\": expected an object", field);
    int n = 0;
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)v, k, e) {
        if (!json_is_string(e))
            return gp_err_set(err, GP_ERR_INVALID, "field \"%s.%s\": expected a string", field, k);
        if (n >= GP_MAX_LABELS || strlen(k) >= GP_SHORT_LEN || *k == '\0' ||
            json_string_length(e) >= GP_SHORT_LEN)
            return gp_err_set(err, GP_ERR_INVALID,
                              "field \"%s\": more than %d labels or a label too long",
                              field, GP_MAX_LABELS);
        gp_strlcpy(labels[n].key, k, GP_SHORT_LEN);
        gp_strlcpy(labels[n].value, json_string_value(e), GP_SHORT_LEN);
        n++;
    }
    *nlabels = n;
    return 0;
}

static json_t *s_labels_json(const gp_label_t *labels, int n)
{
    json_t *o = json_object();
    for (int i = 0; o && i < n; i++)
        json_object_set_new(o, labels[i].key, json_string(labels[i].value));
    return o;
}

static json_t *s_list_json(const gp_strlist_t *l)
{
    json_t *a = json_array();
    for (int i = 0; a && i < l->n; i++)
        json_array_append_new(a, json_string(l->v[i]));
    return a;
}

static int s_parse_text(const char *text, json_t **out, gp_err_t *err)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL)
        return gp_err_set(err, GP_ERR_INVALID, "bad JSON at line %d column %d: %s",
                          je.line, je.column, je.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return gp_err_set(err, GP_ERR_INVALID, "expected a JSON object");
    }
    *out = j;
    return 0;
}

/* ------------------------------------------------------------------ jobs */

int gp_job_validate(const gp_job_t *j, gp_err_t *err)
{
    if (j->devices < 0 || j->devices > GP_MAX_DEVICES)
        return gp_err_set(err, GP_ERR_INVALID, "devices %d out of range 0..%d", j->devices,
                          GP_MAX_DEVICES);
    bool frac = j->mem_mib > 0 || j->mem_permille > 0 || j->compute_permille > 0;
    if (j->mem_mib > 0 && j->mem_permille > 0)
        return gp_err_set(err, GP_ERR_INVALID, "mem_mib and mem_percent are exclusive");
    if (j->mem_mib < 0 || j->mem_permille < 0 || j->mem_permille > 1000 ||
        j->compute_permille < 0 || j->compute_permille > 1000)
        return gp_err_set(err, GP_ERR_INVALID, "device memory or compute out of range");
    if (frac && j->devices == 0)
        return gp_err_set(err, GP_ERR_INVALID,
                          "a memory or compute share needs devices >= 1");
    if (frac && j->whole)
        return gp_err_set(err, GP_ERR_INVALID,
                          "whole devices take no memory or compute share");
    if (j->whole && j->devices == 0)
        return gp_err_set(err, GP_ERR_INVALID, "whole needs devices >= 1");
    if (j->cpu_milli < 0 || j->host_mem_mib < 0)
        return gp_err_set(err, GP_ERR_INVALID, "cpu_milli and host_mem_mib must be >= 0");
    if (j->priority < GP_PRIORITY_MIN || j->priority > GP_PRIORITY_MAX)
        return gp_err_set(err, GP_ERR_INVALID, "priority %d out of range %d..%d", j->priority,
                          GP_PRIORITY_MIN, GP_PRIORITY_MAX);
    if (j->gang_size < 0 || j->gang_size > 1024 || (j->gang_size > 0 && j->gang[0] == '\0'))
        return gp_err_set(err, GP_ERR_INVALID, "gang_size needs a gang name and 1..1024");
    for (int i = 0; i < j->uuids.n; i++)
        if (gp_strlist_has(&j->exclude_uuids, j->uuids.v[i]))
            return gp_err_set(err, GP_ERR_INVALID, "uuid %s both allowed and excluded",
                              j->uuids.v[i]);
    for (int i = 0; i < j->models.n; i++)
        if (gp_strlist_has(&j->exclude_models, j->models.v[i]))
            return gp_err_set(err, GP_ERR_INVALID, "model %s both allowed and excluded",
                              j->models.v[i]);
    if (j->devices == 0 && j->cpu_milli == 0 && j->host_mem_mib == 0)
        return gp_err_set(err, GP_ERR_INVALID, "the job asks for nothing");
    return 0;
}

int gp_job_from_json(const json_t *obj, gp_job_t *out, gp_err_t *err)
{
    if (!json_is_object(obj))
        return gp_err_set(err, GP_ERR_INVALID, "a job spec must be a JSON object");
    gp_job_t j;
    gp_job_init(&j);
    bool whole_set = false, hami_prio = false, prio_set = false;
    const char *k;
    json_t *v;
    int64_t i64;
    double d;
    json_object_foreach((json_t *)obj, k, v) {
        bool hami = strncmp(k, "nvidia.com/", 11) == 0;
        if (!strcmp(k, "id")) {
            if (s_str(v, k, j.id, sizeof j.id, err) < 0)
                return -1;
        } else if (!strcmp(k, "devices") || !strcmp(k, "nvidia.com/gpu")) {
            if (s_int(v, k, hami, 0, GP_MAX_DEVICES, &i64, err) < 0)
                return -1;
            j.devices = (int)i64;
        } else if (!strcmp(k, "whole")) {
            if (s_bool(v, k, &j.whole, err) < 0)
                return -1;
            whole_set = true;
        } else if (!strcmp(k, "mem_mib") || !strcmp(k, "nvidia.com/gpumem")) {
            if (s_int(v, k, hami, 1, INT64_C(1) << 40, &i64, err) < 0)
                return -1;
            j.mem_mib = i64;
        } else if (!strcmp(k, "mem_percent") || !strcmp(k, "nvidia.com/gpumem-percentage")) {
            if (s_num(v, k, hami, &d, err) < 0)
                return -1;
            if (!(d > 0 && d <= 100))
                return gp_err_set(err, GP_ERR_INVALID, "field \"%s\": %g not in (0, 100]", k, d);
            j.mem_permille = (int)lround(d * 10);
            if (j.mem_permille == 0)
                j.mem_permille = 1;
        } else if (!strcmp(k, "compute_percent") || !strcmp(k, "nvidia.com/gpucores")) {
            if (s_num(v, k, hami, &d, err) < 0)
                return -1;
            if (!(d >= 0 && d <= 100))
                return gp_err_set(err, GP_ERR_INVALID, "field \"%s\": %g not in [0, 100]", k, d);
            j.compute_permille = (int)lround(d * 10);
        } else if (!strcmp(k, "cpu_milli")) {
            if (s_int(v, k, false, 0, INT64_C(1) << 40, &j.cpu_milli, err) < 0)
                return -1;
        } else if (!strcmp(k, "host_mem_mib")) {
            if (s_int(v, k, false, 0, INT64_C(1) << 40, &j.host_mem_mib, err) < 0)
                return -1;
        } else if (!strcmp(k, "vendors")) {
            if (s_list(v, k, &j.vendors, err) < 0) return -1;
        } else if (!strcmp(k, "exclude_vendors")) {
            if (s_list(v, k, &j.exclude_vendors, err) < 0) return -1;
        } else if (!strcmp(k, "models") || !strcmp(k, "nvidia.com/use-gputype")) {
            if (s_list(v, k, &j.models, err) < 0) return -1;
        } else if (!strcmp(k, "exclude_models") || !strcmp(k, "nvidia.com/nouse-gputype")) {
            if (s_list(v, k, &j.exclude_models, err) < 0) return -1;
        } else if (!strcmp(k, "uuids") || !strcmp(k, "nvidia.com/use-gpuuuid")) {
            if (s_list(v, k, &j.uuids, err) < 0) return -1;
        } else if (!strcmp(k, "exclude_uuids") || !strcmp(k, "nvidia.com/nouse-gpuuuid")) {
            if (s_list(v, k, &j.exclude_uuids, err) < 0) return -1;
        } else if (!strcmp(k, "regions")) {
            if (s_list(v, k, &j.regions, err) < 0) return -1;
        } else if (!strcmp(k, "clouds")) {
            if (s_list(v, k, &j.clouds, err) < 0) return -1;
        } else if (!strcmp(k, "zones")) {
            if (s_list(v, k, &j.zones, err) < 0) return -1;
        } else if (!strcmp(k, "prefer_regions")) {
            if (s_list(v, k, &j.prefer_regions, err) < 0) return -1;
        } else if (!strcmp(k, "prefer_clouds")) {
            if (s_list(v, k, &j.prefer_clouds, err) < 0) return -1;
        } else if (!strcmp(k, "prefer_zones")) {
            if (s_list(v, k, &j.prefer_zones, err) < 0) return -1;
        } else if (!strcmp(k, "labels")) {
            if (s_labels(v, k, j.labels, &j.nlabels, err) < 0)
                return -1;
        } else if (!strcmp(k, "priority")) {
            if (s_int(v, k, false, GP_PRIORITY_MIN, GP_PRIORITY_MAX, &i64, err) < 0)
                return -1;
            j.priority = (int)i64;
            prio_set = true;
        } else if (!strcmp(k, "nvidia.com/priority")) {
            if (s_int(v, k, true, 0, 1, &i64, err) < 0)
                return -1;
            j.priority = i64 == 0 ? 100 : -100;   /* HAMi: 0 high, 1 low */
            hami_prio = true;
        } else if (!strcmp(k, "gang")) {
            if (s_str(v, k, j.gang, sizeof j.gang, err) < 0)
                return -1;
        } else if (!strcmp(k, "gang_size")) {
            if (s_int(v, k, false, 1, 1024, &i64, err) < 0)
                return -1;
            j.gang_size = (int)i64;
        } else if (!strcmp(k, "policy")) {
            if (s_str(v, k, j.policy, sizeof j.policy, err) < 0)
                return -1;
        } else {
            return gp_err_set(err, GP_ERR_INVALID, "unknown field \"%s\"", k);
        }
    }
    if (prio_set && hami_prio)
        return gp_err_set(err, GP_ERR_INVALID,
                          "\"priority\" and \"nvidia.com/priority\" are exclusive");
    bool frac = j.mem_mib > 0 || j.mem_permille > 0 || j.compute_permille > 0;
    if (!whole_set && j.devices > 0 && !frac)
        j.whole = true;
    if (frac && j.mem_mib == 0 && j.mem_permille == 0)
        j.mem_permille = 1000;     /* HAMi: unset memory is the whole device's */
    if (j.gang[0] && j.gang_size == 0)
        j.gang_size = 1;
    if (gp_job_validate(&j, err) < 0)
        return -1;
    *out = j;
    return 0;
}

int gp_job_from_json_str(const char *text, gp_job_t *out, gp_err_t *err)
{
    json_t *j;
    if (s_parse_text(text, &j, err) < 0)
        return -1;
    int rc = gp_job_from_json(j, out, err);
    json_decref(j);
    return rc;
}

/* A job's string lists, by their names in a record, in the order written. */
typedef struct {
    const char *name;
    const gp_strlist_t *l;
} s_named_list_t;
#define S_JOB_LISTS 12

static void s_job_lists(const gp_job_t *j, s_named_list_t out[S_JOB_LISTS])
{
    const s_named_list_t lists[S_JOB_LISTS] = {
        {"vendors", &j->vendors}, {"exclude_vendors", &j->exclude_vendors},
        {"models", &j->models}, {"exclude_models", &j->exclude_models},
        {"uuids", &j->uuids}, {"exclude_uuids", &j->exclude_uuids},
        {"regions", &j->regions}, {"clouds", &j->clouds}, {"zones", &j->zones},
        {"prefer_regions", &j->prefer_regions}, {"prefer_clouds", &j->prefer_clouds},
        {"prefer_zones", &j->prefer_zones},
    };
    memcpy(out, lists, sizeof lists);
}

json_t *gp_job_to_json(const gp_job_t *j)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    if (j->id[0])
        json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "devices", json_integer(j->devices));
    if (j->devices > 0)
        json_object_set_new(o, "whole", json_boolean(j->whole));
    if (j->mem_mib)
        json_object_set_new(o, "mem_mib", json_integer(j->mem_mib));
    if (j->mem_permille)
        json_object_set_new(o, "mem_percent", json_real(j->mem_permille / 10.0));
    if (j->compute_permille)
        json_object_set_new(o, "compute_percent", json_real(j->compute_permille / 10.0));
    json_object_set_new(o, "cpu_milli", json_integer(j->cpu_milli));
    json_object_set_new(o, "host_mem_mib", json_integer(j->host_mem_mib));
    s_named_list_t lists[S_JOB_LISTS];
    s_job_lists(j, lists);
    for (size_t i = 0; i < GP_ARRAY_LEN(lists); i++)
        if (lists[i].l->n)
            json_object_set_new(o, lists[i].name, s_list_json(lists[i].l));
    if (j->nlabels)
        json_object_set_new(o, "labels", s_labels_json(j->labels, j->nlabels));
    json_object_set_new(o, "priority", json_integer(j->priority));
    if (j->gang[0]) {
        json_object_set_new(o, "gang", json_string(j->gang));
        json_object_set_new(o, "gang_size", json_integer(j->gang_size));
    }
    if (j->policy[0])
        json_object_set_new(o, "policy", json_string(j->policy));
    return o;
}

/* A list of strings as a JSON array, appended to b. */
static int s_list_text(const gp_strlist_t *l, gp_ebuf_t *b)
{
    int bad = gp_ebuf_adds(b, "[");
    for (int i = 0; i < l->n; i++)
        bad |= gp_ebuf_adds(b, i ? "," : "") | gp_ebuf_json_str(b, l->v[i]);
    return bad | gp_ebuf_adds(b, "]");
}

int gp_job_dump_buf(const gp_job_t *j, gp_ebuf_t *b)
{
    for (int i = 0; i < j->nlabels; i++)   /* a repeated key: the tree keeps one */
        for (int k = 0; k < i; k++)
            if (!strcmp(j->labels[i].key, j->labels[k].key))
                return -1;
    int bad = gp_ebuf_adds(b, "{");
    if (j->id[0])
        bad |= gp_ebuf_adds(b, "\"id\":") | gp_ebuf_json_str(b, j->id) | gp_ebuf_adds(b, ",");
    bad |= gp_ebuf_addf(b, "\"devices\":%d", j->devices);
    if (j->devices > 0)
        bad |= gp_ebuf_adds(b, j->whole ? ",\"whole\":true" : ",\"whole\":false");
    if (j->mem_mib)
        bad |= gp_ebuf_addf(b, ",\"mem_mib\":%lld", (long long)j->mem_mib);
    if (j->mem_permille)
        bad |= gp_ebuf_adds(b, ",\"mem_percent\":") | gp_ebuf_json_real(b, j->mem_permille / 10.0);
    if (j->compute_permille)
        bad |= gp_ebuf_adds(b, ",\"compute_percent\":") |
               gp_ebuf_json_real(b, j->compute_permille / 10.0);
    bad |= gp_ebuf_addf(b, ",\"cpu_milli\":%lld,\"host_mem_mib\":%lld", (long long)j->cpu_milli,
                        (long long)j->host_mem_mib);
    s_named_list_t lists[S_JOB_LISTS];
    s_job_lists(j, lists);
    for (size_t i = 0; i < GP_ARRAY_LEN(lists); i++)
        if (lists[i].l->n)
            bad |= gp_ebuf_addf(b, ",\"%s\":", lists[i].name) | s_list_text(lists[i].l, b);
    if (j->nlabels) {
        bad |= gp_ebuf_adds(b, ",\"labels\":{");
        for (int i = 0; i < j->nlabels; i++)
            bad |= gp_ebuf_adds(b, i ? "," : "") | gp_ebuf_json_str(b, j->labels[i].key) |
                   gp_ebuf_adds(b, ":") | gp_ebuf_json_str(b, j->labels[i].value);
        bad |= gp_ebuf_adds(b, "}");
    }
    bad |= gp_ebuf_addf(b, ",\"priority\":%d", j->priority);
    if (j->gang[0])
        bad |= gp_ebuf_adds(b, ",\"gang\":") | gp_ebuf_json_str(b, j->gang) |
               gp_ebuf_addf(b, ",\"gang_size\":%d", j->gang_size);
    if (j->policy[0])
        bad |= gp_ebuf_adds(b, ",\"policy\":") | gp_ebuf_json_str(b, j->policy);
    return bad | gp_ebuf_adds(b, "}") ? -1 : 0;
}

/* ------------------------------------------------------------------ nodes */

int gp_node_validate(const gp_node_t *n, gp_err_t *err)
{
    if (n->name[0] == '\0')
        return gp_err_set(err, GP_ERR_INVALID, "node: empty name");
    if (n->cpu_milli < 0 || n->mem_mib < 0)
        return gp_err_set(err, GP_ERR_INVALID, "node %s: negative cpu_milli or mem_mib", n->name);
    if (!(n->oversub >= 1.0 && n->oversub <= 16.0))
        return gp_err_set(err, GP_ERR_INVALID, "node %s: oversub %g not in [1, 16]", n->name,
                          n->oversub);
    if (n->ndevices < 0 || n->ndevices > GP_MAX_DEVICES)
        return gp_err_set(err, GP_ERR_INVALID, "node %s: more than %d devices", n->name,
                          GP_MAX_DEVICES);
    for (int i = 0; i < n->ndevices; i++) {
        const gp_device_t *d = &n->devices[i];
        if (d->uuid[0] == '\0' || d->model[0] == '\0')
            return gp_err_set(err, GP_ERR_INVALID, "node %s: device %d needs uuid and model",
                              n->name, i);
        if (d->mem_mib <= 0)
            return gp_err_set(err, GP_ERR_INVALID, "node %s: device %s: mem_mib must be > 0",
                              n->name, d->uuid);
        if (d->compute_units < 0)
            return gp_err_set(err, GP_ERR_INVALID, "node %s: device %s: negative compute_units",
                              n->name, d->uuid);
        if (d->links >> n->ndevices || (d->links >> i & 1u))
            return gp_err_set(err, GP_ERR_INVALID, "node %s: device %s: bad link index",
                              n->name, d->uuid);
        for (int k = 0; k < i; k++)
            if (strcmp(n->devices[k].uuid, d->uuid) == 0)
                return gp_err_set(err, GP_ERR_INVALID, "node %s: duplicate device uuid %s",
                                  n->name, d->uuid);
    }
    return 0;
}

static int s_device_from_json(const json_t *obj, int idx, gp_device_t *d, gp_err_t *err)
{
    char f[64];
    if (!json_is_object(obj))
        return gp_err_set(err, GP_ERR_INVALID, "field \"devices[%d]\": expected an object", idx);
    gp_device_init(d);
    const char *k;
    json_t *v;
    int64_t i64;
    json_object_foreach((json_t *)obj, k, v) {
        snprintf(f, sizeof f, "devices[%d].%s", idx, k);
        if (!strcmp(k, "uuid")) {
            if (s_str(v, f, d->uuid, sizeof d->uuid, err) < 0) return -1;
        } else if (!strcmp(k, "vendor")) {
            if (s_str(v, f, d->vendor, sizeof d->vendor, err) < 0) return -1;
        } else if (!strcmp(k, "model")) {
            if (s_str(v, f, d->model, sizeof d->model, err) < 0) return -1;
        } else if (!strcmp(k, "mem_mib")) {
            if (s_int(v, f, false, 1, INT64_C(1) << 40, &d->mem_mib, err) < 0) return -1;
        } else if (!strcmp(k, "compute_units")) {
            if (s_int(v, f, false, 0, 1 << 20, &i64, err) < 0) return -1;
            d->compute_units = (int)i64;
        } else if (!strcmp(k, "numa")) {
            if (s_int(v, f, false, -1, 1024, &i64, err) < 0) return -1;
            d->numa = (int)i64;
        } else if (!strcmp(k, "links")) {
            if (!json_is_array(v))
                return gp_err_set(err, GP_ERR_INVALID, "field \"%s\": expected an array", f);
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) {
                if (s_int(e, f, false, 0, GP_MAX_DEVICES - 1, &i64, err) < 0) return -1;
                d->links |= 1u << i64;
            }
        } else if (!strcmp(k, "healthy")) {
            if (s_bool(v, f, &d->healthy, err) < 0) return -1;
        } else {
            return gp_err_set(err, GP_ERR_INVALID, "unknown field \"%s\"", f);
        }
    }
    if (d->uuid[0] == '\0' || d->model[0] == '\0' || d->mem_mib == 0)
        return gp_err_set(err, GP_ERR_INVALID,
                          "field \"devices[%d]\": uuid, model and mem_mib are required", idx);
    return 0;
}

int gp_node_from_json(const json_t *obj, gp_node_t *out, gp_err_t *err)
{
    if (!json_is_object(obj))
        return gp_err_set(err, GP_ERR_INVALID, "a node record must be a JSON object");
    gp_node_t *n = malloc(sizeof *n);
    if (n == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    gp_node_init(n);
    int rc = -1;
    bool have_cpu = false, have_mem = false;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        if (!strcmp(k, "name")) {
            if (s_str(v, k, n->name, sizeof n->name, err) < 0) goto cleanup;
        } else if (!strcmp(k, "cloud")) {
            if (s_str(v, k, n->cloud, sizeof n->cloud, err) < 0) goto cleanup;
        } else if (!strcmp(k, "cluster")) {
            if (s_str(v, k, n->cluster, sizeof n->cluster, err) < 0) goto cleanup;
        } else if (!strcmp(k, "region")) {
            if (s_str(v, k, n->region, sizeof n->region, err) < 0) goto cleanup;
        } else if (!strcmp(k, "zone")) {
            if (s_str(v, k, n->zone, sizeof n->zone, err) < 0) goto cleanup;
        } else if (!strcmp(k, "labels")) {
            if (s_labels(v, k, n->labels, &n->nlabels, err) < 0) goto cleanup;
        } else if (!strcmp(k, "cpu_milli")) {
            if (s_int(v, k, false, 0, INT64_C(1) << 40, &n->cpu_milli, err) < 0) goto cleanup;
            have_cpu = true;
        } else if (!strcmp(k, "mem_mib")) {
            if (s_int(v, k, false, 0, INT64_C(1) << 40, &n->mem_mib, err) < 0) goto cleanup;
            have_mem = true;
        } else if (!strcmp(k, "oversub")) {
            if (s_num(v, k, false, &n->oversub, err) < 0) goto cleanup;
        } else if (!strcmp(k, "healthy")) {
            if (s_bool(v, k, &n->healthy, err) < 0) goto cleanup;
        } else if (!strcmp(k, "devices")) {
            if (!json_is_array(v)) {
                gp_err_set(err, GP_ERR_INVALID, "field \"devices\": expected an array");
                goto cleanup;
            }
            if (json_array_size(v) > GP_MAX_DEVICES) {
                gp_err_set(err, GP_ERR_INVALID, "field \"devices\": more than %d devices",
                           GP_MAX_DEVICES);
                goto cleanup;
            }
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e)
                if (s_device_from_json(e, (int)i, &n->devices[i], err) < 0)
                    goto cleanup;
            n->ndevices = (int)json_array_size(v);
        } else {
            gp_err_set(err, GP_ERR_INVALID, "unknown field \"%s\"", k);
            goto cleanup;
        }
    }
    if (n->name[0] == '\0' || !have_cpu || !have_mem) {
        gp_err_set(err, GP_ERR_INVALID, "name, cpu_milli and mem_mib are required");
        goto cleanup;
    }
    if (gp_node_validate(n, err) < 0)
        goto cleanup;
    *out = *n;
    rc = 0;
cleanup:
    free(n);
    return rc;
}

int gp_node_from_json_str(const char *text, gp_node_t *out, gp_err_t *err)
{
    json_t *j;
    if (s_parse_text(text, &j, err) < 0)
        return -1;
    int rc = gp_node_from_json(j, out, err);
    json_decref(j);
    return rc;
}

json_t *gp_node_to_json(const gp_node_t *n)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "name", json_string(n->name));
    const char *f[] = {"cloud", "cluster", "region", "zone"};
    const char *val[] = {n->cloud, n->cluster, n->region, n->zone};
    for (int i = 0; i < 4; i++)
        if (val[i][0])
            json_object_set_new(o, f[i], json_string(val[i]));
    json_object_set_new(o, "labels", s_labels_json(n->labels, n->nlabels));
    json_object_set_new(o, "cpu_milli", json_integer(n->cpu_milli));
    json_object_set_new(o, "mem_mib", json_integer(n->mem_mib));
    json_object_set_new(o, "oversub", json_real(n->oversub));
    json_object_set_new(o, "healthy", json_boolean(n->healthy));
    json_t *devs = json_array();
    for (int i = 0; i < n->ndevices; i++) {
        const gp_device_t *d = &n->devices[i];
        json_t *links = json_array();
        for (int b = 0; b < GP_MAX_DEVICES; b++)
            if (d->links >> b & 1u)
                json_array_append_new(links, json_integer(b));
        json_array_append_new(devs, json_pack("{s:s, s:s, s:s, s:I, s:i, s:i, s:o, s:b}",
            "uuid", d->uuid, "vendor", d->vendor, "model", d->model,
            "mem_mib", (json_int_t)d->mem_mib, "compute_units", d->compute_units,
            "numa", d->numa, "links", links, "healthy", d->healthy));
    }
    json_object_set_new(o, "devices", devs);
    return o;
}

/* ------------------------------------------------------------ allocations */

int gp_alloc_from_json(const json_t *obj, gp_alloc_t *out, gp_err_t *err)
{
    if (!json_is_object(obj))
        return gp_err_set(err, GP_ERR_INVALID, "an allocation must be a JSON object");
    gp_alloc_t a;
    gp_alloc_init(&a);
    const char *k;
    json_t *v;
    int64_t i64;
    char f[64];
    json_object_foreach((json_t *)obj, k, v) {
        if (!strcmp(k, "job")) {
            if (s_str(v, k, a.job, sizeof a.job, err) < 0) return -1;
        } else if (!strcmp(k, "node")) {
            if (s_str(v, k, a.node, sizeof a.node, err) < 0) return -1;
        } else if (!strcmp(k, "priority")) {
            if (s_int(v, k, false, GP_PRIORITY_MIN, GP_PRIORITY_MAX, &i64, err) < 0) return -1;
            a.priority = (int)i64;
        } else if (!strcmp(k, "cpu_milli")) {
            if (s_int(v, k, false, 0, INT64_C(1) << 40, &a.cpu_milli, err) < 0) return -1;
        } else if (!strcmp(k, "host_mem_mib")) {
            if (s_int(v, k, false, 0, INT64_C(1) << 40, &a.host_mem_mib, err) < 0) return -1;
        } else if (!strcmp(k, "suspended")) {
            if (s_bool(v, k, &a.suspended, err) < 0) return -1;
        } else if (!strcmp(k, "schema")) {
            if (gp_schema_check(v, err) < 0) return -1;
        } else if (!strcmp(k, "stop")) {
            if (s_bool(v, k, &a.stop, err) < 0) return -1;
        } else if (!strcmp(k, "stop_grace_s")) {
            if (s_int(v, k, false, 0, 3600, &i64, err) < 0) return -1;
            a.stop_grace_s = (int)i64;
        } else if (!strcmp(k, "devices")) {
            if (!json_is_array(v) || json_array_size(v) > GP_MAX_DEVICES)
                return gp_err_set(err, GP_ERR_INVALID,
                                  "field \"devices\": expected an array of at most %d",
                                  GP_MAX_DEVICES);
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) {
                gp_alloc_dev_t *d = &a.devices[i];
                if (!json_is_object(e))
                    return gp_err_set(err, GP_ERR_INVALID, "field \"devices[%zu]\": expected an object", i);
                const char *dk;
                json_t *dv;
                double pct;
                json_object_foreach(e, dk, dv) {
                    snprintf(f, sizeof f, "devices[%zu].%s", i, dk);
                    if (!strcmp(dk, "uuid")) {
                        if (s_str(dv, f, d->uuid, sizeof d->uuid, err) < 0) return -1;
                    } else if (!strcmp(dk, "index")) {
                        if (s_int(dv, f, false, 0, GP_MAX_DEVICES - 1, &i64, err) < 0) return -1;
                        d->index = (int)i64;
                    } else if (!strcmp(dk, "mem_mib")) {
                        if (s_int(dv, f, false, 0, INT64_C(1) << 40, &d->mem_mib, err) < 0) return -1;
                    } else if (!strcmp(dk, "compute_percent")) {
                        if (s_num(dv, f, false, &pct, err) < 0) return -1;
                        if (!(pct >= 0 && pct <= 100))
                            return gp_err_set(err, GP_ERR_INVALID, "field \"%s\": %g not in [0, 100]", f, pct);
                        d->compute_permille = (int)lround(pct * 10);
                    } else if (!strcmp(dk, "whole")) {
                        if (s_bool(dv, f, &d->whole, err) < 0) return -1;
                    } else {
                        return gp_err_set(err, GP_ERR_INVALID, "unknown field \"%s\"", f);
                    }
                }
                if (d->uuid[0] == '\0')
                    return gp_err_set(err, GP_ERR_INVALID, "field \"devices[%zu].uuid\" is required", i);
            }
            a.ndevices = (int)json_array_size(v);
        } else {
            return gp_err_set(err, GP_ERR_INVALID, "unknown field \"%s\"", k);
        }
    }
    if (a.job[0] == '\0' || a.node[0] == '\0')
        return gp_err_set(err, GP_ERR_INVALID, "job and node are required");
    *out = a;
    return 0;
}

/* A bare integer in [min, max]. */
static bool s_scan_int(gp_jscan_t *s, int64_t min, int64_t max, int64_t *out)
{
    gp_jscan_ws(s);
    int64_t v;
    if (s->p >= s->end || *s->p == '"' || !gp_jscan_i64(s, &v) || v < min || v > max ||
        (s->p < s->end && (*s->p == '.' || *s->p == 'e' || *s->p == 'E')))
        return false;
    *out = v;
    return true;
}

static bool s_scan_str(gp_jscan_t *s, char *dst, size_t size)
{
    const char *v;
    size_t n;
    if (!gp_jscan_str(s, &v, &n) || n >= size)
        return false;
    memcpy(dst, v, n);
    dst[n] = '\0';
    return true;
}

/* A device of an allocation, in place. */
static bool s_scan_alloc_dev(gp_jscan_t *s, gp_alloc_dev_t *d)
{
    bool first = true, ok = gp_jscan_lit(s, '{');
    unsigned seen = 0;
    const char *k;
    size_t kn;
    int64_t v;
    while (ok && gp_jscan_obj_next(s, &k, &kn, &first, &ok)) {
        unsigned bit;
        if (gp_jscan_key_is(k, kn, "uuid")) {
            bit = 1;
            ok = s_scan_str(s, d->uuid, sizeof d->uuid);
        } else if (gp_jscan_key_is(k, kn, "index")) {
            bit = 2;
            ok = s_scan_int(s, 0, GP_MAX_DEVICES - 1, &v);
            d->index = (int)v;
        } else if (gp_jscan_key_is(k, kn, "mem_mib")) {
            bit = 4;
            ok = s_scan_int(s, 0, INT64_C(1) << 40, &d->mem_mib);
        } else if (gp_jscan_key_is(k, kn, "compute_percent")) {
            bit = 8;
            gp_jscan_ws(s);
            const char *num = s->p;
            ok = num < s->end && *num != '"' && *num != '{' && *num != '[' && *num != 't' &&
                 *num != 'f' && *num != 'n' && gp_jscan_skip(s) && s->p - num < 40;
            if (ok) {
                char buf[40];
                memcpy(buf, num, (size_t)(s->p - num));
                buf[s->p - num] = '\0';
                double pct = strtod(buf, NULL);   /* as jansson reads numbers */
                ok = pct >= 0 && pct <= 100;
                d->compute_permille = (int)lround(pct * 10);
            }
        } else if (gp_jscan_key_is(k, kn, "whole")) {
            bit = 16;
            ok = gp_jscan_bool(s, &d->whole);
        } else {
            return false;
        }
        ok = ok && !(seen & bit);
        seen |= bit;
    }
    return ok && d->uuid[0] != '\0';
}

/*
 * The allocation as gpupool writes it (gp_alloc_dump_buf), read in place:
 * a burst brings every process that follows alloc/ thousands of them.
 * Anything else -- a field it does not expect (schema), an escape, a
 * number of another form, a value out of range, a repeated key -- is not
 * taken (false), and gp_alloc_from_json judges the text, with its errors.
 * What it takes, gp_alloc_from_json takes the same.
 */
bool gp_alloc_scan(const char *text, size_t len, gp_alloc_t *out)
{
    gp_alloc_t a;
    gp_alloc_init(&a);
    gp_jscan_t s = GP_JSCAN_INIT(text, len);
    bool first = true, ok = gp_jscan_lit(&s, '{');
    unsigned seen = 0;
    const char *k;
    size_t kn;
    int64_t v;
    while (ok && gp_jscan_obj_next(&s, &k, &kn, &first, &ok)) {
        unsigned bit;
        if (gp_jscan_key_is(k, kn, "job")) {
            bit = 1;
            ok = s_scan_str(&s, a.job, sizeof a.job);
        } else if (gp_jscan_key_is(k, kn, "node")) {
            bit = 2;
            ok = s_scan_str(&s, a.node, sizeof a.node);
        } else if (gp_jscan_key_is(k, kn, "priority")) {
            bit = 4;
            ok = s_scan_int(&s, GP_PRIORITY_MIN, GP_PRIORITY_MAX, &v);
            a.priority = (int)v;
        } else if (gp_jscan_key_is(k, kn, "cpu_milli")) {
            bit = 8;
            ok = s_scan_int(&s, 0, INT64_C(1) << 40, &a.cpu_milli);
        } else if (gp_jscan_key_is(k, kn, "host_mem_mib")) {
            bit = 16;
            ok = s_scan_int(&s, 0, INT64_C(1) << 40, &a.host_mem_mib);
        } else if (gp_jscan_key_is(k, kn, "suspended")) {
            bit = 32;
            ok = gp_jscan_bool(&s, &a.suspended);
        } else if (gp_jscan_key_is(k, kn, "stop")) {
            bit = 64;
            ok = gp_jscan_bool(&s, &a.stop);
        } else if (gp_jscan_key_is(k, kn, "stop_grace_s")) {
            bit = 128;
            ok = s_scan_int(&s, 0, 3600, &v);
            a.stop_grace_s = (int)v;
        } else if (gp_jscan_key_is(k, kn, "devices")) {
            bit = 256;
            ok = gp_jscan_lit(&s, '[');
            a.ndevices = 0;
            if (ok && !gp_jscan_lit(&s, ']')) {
                do {
                    if (a.ndevices == GP_MAX_DEVICES)
                        return false;
                    memset(&a.devices[a.ndevices], 0, sizeof a.devices[0]);
                    ok = s_scan_alloc_dev(&s, &a.devices[a.ndevices++]);
                } while (ok && gp_jscan_lit(&s, ','));
                ok = ok && gp_jscan_lit(&s, ']');
            }
        } else {
            return false;   /* "schema", or a field the tree path refuses by name */
        }
        ok = ok && !(seen & bit);
        seen |= bit;
    }
    gp_jscan_ws(&s);
    if (!ok || s.p != s.end || a.job[0] == '\0' || a.node[0] == '\0')
        return false;
    *out = a;
    return true;
}

int gp_alloc_from_json_str(const char *text, gp_alloc_t *out, gp_err_t *err)
{
    if (gp_alloc_scan(text, strlen(text), out))
        return 0;
    json_t *j;
    if (s_parse_text(text, &j, err) < 0)
        return -1;
    int rc = gp_alloc_from_json(j, out, err);
    json_decref(j);
    return rc;
}

json_t *gp_alloc_to_json(const gp_alloc_t *a)
{
    json_t *devs = json_array();
    for (int i = 0; devs && i < a->ndevices; i++) {
        const gp_alloc_dev_t *d = &a->devices[i];
        json_array_append_new(devs, json_pack("{s:s, s:i, s:I, s:f, s:b}",
            "uuid", d->uuid, "index", d->index, "mem_mib", (json_int_t)d->mem_mib,
            "compute_percent", d->compute_permille / 10.0, "whole", d->whole));
    }
    json_t *o = json_pack("{s:s, s:s, s:i, s:I, s:I, s:o}", "job", a->job, "node", a->node,
                          "priority", a->priority, "cpu_milli", (json_int_t)a->cpu_milli,
                          "host_mem_mib", (json_int_t)a->host_mem_mib, "devices", devs);
    if (o && a->suspended)
        json_object_set_new(o, "suspended", json_true());
    if (o && a->stop) {
        json_object_set_new(o, "schema", json_integer(2));
        json_object_set_new(o, "stop", json_true());
        if (a->stop_grace_s >= 0)
            json_object_set_new(o, "stop_grace_s", json_integer(a->stop_grace_s));
    }
    return o;
}

int gp_alloc_dump_buf(const gp_alloc_t *a, gp_ebuf_t *b)
{
    int bad = gp_ebuf_adds(b, "{\"job\":") | gp_ebuf_json_str(b, a->job) |
              gp_ebuf_adds(b, ",\"node\":") | gp_ebuf_json_str(b, a->node) |
              gp_ebuf_addf(b, ",\"priority\":%d,\"cpu_milli\":%lld,\"host_mem_mib\":%lld,\"devices\":[",
                           a->priority, (long long)a->cpu_milli, (long long)a->host_mem_mib);
    for (int i = 0; i < a->ndevices; i++) {
        const gp_alloc_dev_t *d = &a->devices[i];
        bad |= gp_ebuf_adds(b, i ? ",{\"uuid\":" : "{\"uuid\":") | gp_ebuf_json_str(b, d->uuid) |
               gp_ebuf_addf(b, ",\"index\":%d,\"mem_mib\":%lld,\"compute_percent\":", d->index,
                            (long long)d->mem_mib) |
               gp_ebuf_json_real(b, d->compute_permille / 10.0) |
               gp_ebuf_adds(b, d->whole ? ",\"whole\":true}" : ",\"whole\":false}");
    }
    bad |= gp_ebuf_adds(b, "]");
    if (a->suspended)
        bad |= gp_ebuf_adds(b, ",\"suspended\":true");
    if (a->stop) {
        bad |= gp_ebuf_adds(b, ",\"schema\":2,\"stop\":true");
        if (a->stop_grace_s >= 0)
            bad |= gp_ebuf_addf(b, ",\"stop_grace_s\":%d", a->stop_grace_s);
    }
    bad |= gp_ebuf_adds(b, "}");
    return bad ? -1 : 0;
}
