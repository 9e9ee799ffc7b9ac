#include "jobrec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keys.h"
#include "rightsize.h"
#include "util.h"

#include "banned.h"

#define S_HISTORY_MAX 32

static const char *const s_states[] = {
    [GP_JOB_PENDING] = "pending",     [GP_JOB_PLACED] = "placed",
    [GP_JOB_RUNNING] = "running",     [GP_JOB_SUSPENDED] = "suspended",
    [GP_JOB_PREEMPTED] = "preempted", [GP_JOB_SUCCEEDED] = "succeeded",
    [GP_JOB_FAILED] = "failed",       [GP_JOB_CANCELLED] = "cancelled",
    [GP_JOB_LOST] = "lost",
};
static const char *const s_restarts[] = { "never", "on-failure", "always" };

const char *gp_job_state_name(gp_job_state_t s)
{
    return (unsigned)s < GP_ARRAY_LEN(s_states) ? s_states[s] : "unknown";
}

int gp_job_state_parse(const char *name, gp_job_state_t *out)
{
    for (size_t i = 0; i < GP_ARRAY_LEN(s_states); i++)
        if (strcmp(name, s_states[i]) == 0) {
            *out = (gp_job_state_t)i;
            return 0;
        }
    return -1;
}

int gp_job_state_final(gp_job_state_t s)
{
    return s == GP_JOB_SUCCEEDED || s == GP_JOB_FAILED || s == GP_JOB_CANCELLED;
}

void gp_jobrec_init(gp_jobrec_t *rec)
{
    memset(rec, 0, sizeof *rec);
    gp_job_init(&rec->spec);
    rec->max_restarts = 3;
    rec->ttl_after_finished_s = -1;
    rec->grace_s = -1;
}

int gp_jobrec_grace_s(const gp_jobrec_t *rec)
{
    return rec->grace_s >= 0 ? rec->grace_s : GP_JOB_GRACE_S;
}

static void s_free_strv(char **v)
{
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
}

void gp_jobrec_clear(gp_jobrec_t *rec)
{
    s_free_strv(rec->argv);
    s_free_strv(rec->env);
    s_free_strv(rec->mounts);
    json_decref(rec->history);
    gp_jobrec_init(rec);
}

/* An absolute path without "..", ",", ":" or control characters (the
 * container runtimes' -v syntax has no quoting). */
static int s_path_ok(const char *p, size_t len)
{
    if (len == 0 || len >= 256 || p[0] != '/')
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7f || c == ',' || c == ':')
            return 0;
        if (c == '.' && i > 0 && p[i - 1] == '/' && i + 1 <= len &&
            (i + 1 == len || p[i + 1] == '/' ||
             (p[i + 1] == '.' && (i + 2 == len || p[i + 2] == '/'))))
            return 0;   /* "/./" or "/../" */
    }
    return 1;
}

/* An image reference that names its registry: the first component has a
 * '.' or a ':' (a host, a port) or is "localhost", and a name follows. */
static int s_image_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= 256)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("._/:@-", *p)))
            return 0;
    const char *slash = strchr(s, '/');
    if (slash == NULL || slash == s || slash[1] == '\0')
        return 0;
    size_t hl = (size_t)(slash - s);
    return memchr(s, '.', hl) || memchr(s, ':', hl) || (hl == 9 && !strncmp(s, "localhost", 9));
}

/* "name", "uid" or "uid:gid"; not root. */
static int s_user_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= 64)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("._-:", *p)))
            return 0;
    const char *colon = strchr(s, ':');
    size_t ul = colon ? (size_t)(colon - s) : n;
    if (ul == 0 || (colon && (colon[1] == '\0' || strchr(colon + 1, ':'))))
        return 0;
    if ((ul == 4 && !strncmp(s, "root", 4)) || strspn(s, "0") == ul)
        return 0;
    return 1;
}

static int s_take_container(json_t *obj, gp_jobrec_t *rec, gp_err_t *err)
{
    json_t *v;
    if ((v = json_object_get(obj, "image")) != NULL) {
        const char *s = json_string_value(v);
        if (s == NULL || !s_image_ok(s))
            return gp_err_set(err, GP_ERR_INVALID,
                              "image: expected a reference that names its registry "
                              "(\"registry.example.com/app:1\", \"localhost/app:1\"), "
                              "1..255 of [a-z0-9._/:@-]");
        gp_strlcpy(rec->image, s, sizeof rec->image);
        json_object_del(obj, "image");
    }
    if ((v = json_object_get(obj, "workdir")) != NULL) {
        const char *s = json_string_value(v);
        if (s == NULL || !s_path_ok(s, strlen(s)))
            return gp_err_set(err, GP_ERR_INVALID,
                              "workdir: expected an absolute path without \"..\", \",\" or \":\"");
        gp_strlcpy(rec->workdir, s, sizeof rec->workdir);
        json_object_del(obj, "workdir");
    }
    if ((v = json_object_get(obj, "user")) != NULL) {
        const char *s = json_string_value(v);
        if (s == NULL || !s_user_ok(s))
            return gp_err_set(err, GP_ERR_INVALID,
                              "user: expected \"name\", \"uid\" or \"uid:gid\", not root");
        gp_strlcpy(rec->user, s, sizeof rec->user);
        json_object_del(obj, "user");
    }
    if ((v = json_object_get(obj, "mounts")) != NULL) {
        if (!json_is_array(v) || json_array_size(v) > GP_JOB_MAX_MOUNTS)
            return gp_err_set(err, GP_ERR_INVALID,
                              "mounts: expected an array of at most %d \"HOST:CONTAINER[:ro]\"",
                              GP_JOB_MAX_MOUNTS);
        size_t n = json_array_size(v);
        rec->mounts = calloc(n + 1, sizeof(char *));
        if (rec->mounts == NULL)
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            const char *s = json_string_value(json_array_get(v, i));
            const char *c1 = s ? strchr(s, ':') : NULL;
            const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
            const char *mode = c2 ? c2 + 1 : "rw";
            size_t tl = c1 ? (c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1)) : 0;
            if (c1 == NULL || !s_path_ok(s, (size_t)(c1 - s)) || !s_path_ok(c1 + 1, tl) ||
                (strcmp(mode, "ro") && strcmp(mode, "rw")) ||
                (tl >= 8 && !strncmp(c1 + 1, "/gpupool", 8) && (tl == 8 || c1[9] == '/')) ||
                tl == 1)
                return gp_err_set(err, GP_ERR_INVALID,
                                  "mounts[%zu]: expected \"HOST:CONTAINER\" or "
                                  "\"HOST:CONTAINER:ro\" (absolute paths without \"..\" or "
                                  "\",\"; not onto / or /gpupool)", i);
            if (asprintf(&rec->mounts[i], "%.*s:%.*s:%s", (int)(c1 - s), s, (int)tl, c1 + 1,
                         mode) < 0) {
                rec->mounts[i] = NULL;
                return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
            }
        }
        json_object_del(obj, "mounts");
    }
    if (rec->image[0] == '\0' && (rec->workdir[0] || rec->user[0] || rec->mounts))
        return gp_err_set(err, GP_ERR_INVALID, "workdir, user and mounts need an image");
    return 0;
}

/* The run fields and the state fields, parsed from obj into rec; the keys
 * consumed are deleted from obj, so that what remains is the spec. */
static int s_take_run(json_t *obj, gp_jobrec_t *rec, gp_err_t *err)
{
    json_t *v;
    if ((v = json_object_get(obj, "command")) != NULL) {
        if (!json_is_array(v) || json_array_size(v) == 0 ||
            json_array_size(v) > GP_JOB_MAX_ARGS)
            return gp_err_set(err, GP_ERR_INVALID,
                              "command: expected a non-empty array of at most %d strings",
                              GP_JOB_MAX_ARGS);
        size_t n = json_array_size(v);
        rec->argv = calloc(n + 1, sizeof(char *));
        if (rec->argv == NULL)
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            const char *s = json_string_value(json_array_get(v, i));
            if (s == NULL || (i == 0 && *s == '\0'))
                return gp_err_set(err, GP_ERR_INVALID, "command[%zu]: expected a string", i);
            if ((rec->argv[i] = strdup(s)) == NULL)
                return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        }
        json_object_del(obj, "command");
    }
    if ((v = json_object_get(obj, "env")) != NULL) {
        if (!json_is_object(v) || json_object_size(v) > GP_JOB_MAX_ENV)
            return gp_err_set(err, GP_ERR_INVALID,
                              "env: expected an object of at most %d strings", GP_JOB_MAX_ENV);
        rec->env = calloc(json_object_size(v) + 1, sizeof(char *));
        if (rec->env == NULL)
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        const char *k;
        json_t *val;
        size_t i = 0;
        json_object_foreach(v, k, val) {
            const char *s = json_string_value(val);
            if (json_is_object(val) && json_object_size(val) == 1 &&
                (s = json_string_value(json_object_get(val, "secret"))) != NULL)
                rec->env_secret[i] = 1;
            if (s == NULL)
                return gp_err_set(err, GP_ERR_INVALID,
                                  "env.%s: expected a string or {\"secret\": \"value\"}", k);
            if (*k == '\0' || strchr(k, '=') != NULL)
                return gp_err_set(err, GP_ERR_INVALID, "env: bad variable name \"%s\"", k);
            if (asprintf(&rec->env[i++], "%s=%s", k, s) < 0) {
                rec->env[i - 1] = NULL;
                return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
            }
        }
        json_object_del(obj, "env");
    }
    if ((v = json_object_get(obj, "compute_mode")) != NULL) {
        const char *s = json_string_value(v);
        if (s == NULL || (strcmp(s, "cap") != 0 && strcmp(s, "share") != 0))
            return gp_err_set(err, GP_ERR_INVALID, "compute_mode: expected \"cap\" or \"share\"");
        gp_strlcpy(rec->compute_mode, s, sizeof rec->compute_mode);
        json_object_del(obj, "compute_mode");
    }
    if ((v = json_object_get(obj, "restart")) != NULL) {
        const char *s = json_string_value(v);
        size_t i;
        for (i = 0; s && i < GP_ARRAY_LEN(s_restarts); i++)
            if (strcmp(s, s_restarts[i]) == 0)
                break;
        if (s == NULL || i == GP_ARRAY_LEN(s_restarts))
            return gp_err_set(err, GP_ERR_INVALID,
                              "restart: expected \"never\", \"on-failure\" or \"always\"");
        rec->restart = (gp_restart_t)i;
        json_object_del(obj, "restart");
    }
    if ((v = json_object_get(obj, "max_restarts")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000)
            return gp_err_set(err, GP_ERR_INVALID, "max_restarts: expected an integer 0..1000");
        rec->max_restarts = (int)json_integer_value(v);
        json_object_del(obj, "max_restarts");
    }
    if ((v = json_object_get(obj, "duration_s")) != NULL) {
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1e9)
            return gp_err_set(err, GP_ERR_INVALID, "duration_s: expected a number >= 0");
        rec->duration_s = json_number_value(v);
        json_object_del(obj, "duration_s");
    }
    if ((v = json_object_get(obj, "grace_s")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 3600)
            return gp_err_set(err, GP_ERR_INVALID, "grace_s: expected an integer 0..3600");
        rec->grace_s = (int)json_integer_value(v);
        json_object_del(obj, "grace_s");
    }
    if ((v = json_object_get(obj, "ttl_after_finished_s")) != NULL) {
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1e9)
            return gp_err_set(err, GP_ERR_INVALID, "ttl_after_finished_s: expected a number >= 0");
        rec->ttl_after_finished_s = json_number_value(v);
        json_object_del(obj, "ttl_after_finished_s");
    }
    if ((v = json_object_get(obj, "class")) != NULL) {
        const char *cs = json_string_value(v);
        if (cs == NULL || !gp_name_valid(cs))
            return gp_err_set(err, GP_ERR_INVALID,
                              "class: expected 1..127 of [A-Za-z0-9._-], not starting with '.'");
        gp_strlcpy(rec->cls, cs, sizeof rec->cls);
        json_object_del(obj, "class");
    }
    if ((v = json_object_get(obj, "rightsize")) != NULL) {
        int okm = 0;
        gp_rightsize_mode_t m = gp_rightsize_mode_parse(json_string_value(v), &okm);
        if (!okm)
            return gp_err_set(err, GP_ERR_INVALID,
                              "rightsize: expected \"off\", \"recommend\" or \"auto\"");
        rec->rightsize = (int)m;
        json_object_del(obj, "rightsize");
    }
    static const struct { const char *name; size_t off; } strs[] = {
        { "owner", offsetof(gp_jobrec_t, owner) },
        { "region", offsetof(gp_jobrec_t, region) },
    };
    for (size_t i = 0; i < GP_ARRAY_LEN(strs); i++) {
        if ((v = json_object_get(obj, strs[i].name)) == NULL)
            continue;
        const char *s = json_string_value(v);
        if (s == NULL || *s == '\0' || strlen(s) >= GP_SHORT_LEN)
            return gp_err_set(err, GP_ERR_INVALID, "%s: expected a string of 1..%d characters",
                              strs[i].name, GP_SHORT_LEN - 1);
        gp_strlcpy((char *)rec + strs[i].off, s, GP_SHORT_LEN);
        json_object_del(obj, strs[i].name);
    }
    return s_take_container(obj, rec, err);
}

static json_t *s_load(const char *text, size_t len, gp_err_t *err)
{
    json_error_t jerr;
    json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL) {
        gp_err_set(err, GP_ERR_INVALID, "not valid JSON: %s (line %d, column %d)", jerr.text,
                   jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(obj)) {
        json_decref(obj);
        gp_err_set(err, GP_ERR_INVALID, "expected a JSON object");
        return NULL;
    }
    return obj;
}

int gp_jobrec_from_submission(const char *text, size_t len, const char *default_region,
                              int64_t now_ms, gp_jobrec_t *out, gp_err_t *err)
{
    json_t *obj = s_load(text, len, err);
    if (obj == NULL)
        return -1;
    gp_jobrec_t rec;
    gp_jobrec_init(&rec);
    int rc = -1;
    if (s_take_run(obj, &rec, err) < 0 || gp_job_from_json(obj, &rec.spec, err) < 0)
        goto cleanup;
    if (rec.spec.id[0] == '\0') {
        gp_err_set(err, GP_ERR_INVALID, "id: required");
        goto cleanup;
    }
    if (!gp_name_valid(rec.spec.id)) {
        gp_err_set(err, GP_ERR_INVALID,
                   "id: \"%s\" must be 1..127 of [A-Za-z0-9._-], not starting with '.'",
                   rec.spec.id);
        goto cleanup;
    }
    if (rec.region[0] == '\0' && default_region)
        gp_strlcpy(rec.region, default_region, sizeof rec.region);
    rec.history = json_array();
    if (rec.history == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    rec.submitted_ms = now_ms;
    gp_jobrec_set_state(&rec, GP_JOB_PENDING, NULL, "submitted", now_ms);
    *out = rec;
    gp_jobrec_init(&rec);
    rc = 0;
cleanup:
    gp_jobrec_clear(&rec);
    json_decref(obj);
    return rc;
}

int gp_jobrec_from_json_str(const char *text, size_t len, gp_jobrec_t *out, gp_err_t *err)
{
    json_t *obj = s_load(text, len, err);
    if (obj == NULL)
        return -1;
    gp_jobrec_t rec;
    gp_jobrec_init(&rec);
    int rc = -1;
    json_t *spec = json_object_get(obj, "spec"), *v;
    if (spec == NULL || !json_is_object(spec)) {
        gp_err_set(err, GP_ERR_INVALID, "spec: required object");
        goto cleanup;
    }
    if (gp_job_from_json(spec, &rec.spec, err) < 0)
        goto cleanup;
    json_object_del(obj, "spec");
    const char *state = json_string_value(json_object_get(obj, "state"));
    if (state == NULL || gp_job_state_parse(state, &rec.state) < 0) {
        gp_err_set(err, GP_ERR_INVALID, "state: unknown \"%s\"", state ? state : "(missing)");
        goto cleanup;
    }
    json_object_del(obj, "state");
    static const struct { const char *name; size_t off, size; } strs[] = {
        { "reason", offsetof(gp_jobrec_t, reason), sizeof(((gp_jobrec_t *)0)->reason) },
        { "node", offsetof(gp_jobrec_t, node), GP_NAME_LEN },
    };
    for (size_t i = 0; i < GP_ARRAY_LEN(strs); i++) {
        if ((v = json_object_get(obj, strs[i].name)) == NULL)
            continue;
        if (!json_is_string(v)) {
            gp_err_set(err, GP_ERR_INVALID, "%s: expected a string", strs[i].name);
            goto cleanup;
        }
        gp_strlcpy((char *)&rec + strs[i].off, json_string_value(v), strs[i].size);
        json_object_del(obj, strs[i].name);
    }
    static const struct { const char *name; size_t off; int is64; } nums[] = {
        { "exit_code", offsetof(gp_jobrec_t, exit_code), 0 },
        { "attempts", offsetof(gp_jobrec_t, attempts), 0 },
        { "restarts", offsetof(gp_jobrec_t, restarts), 0 },
        { "restart_delay_ms", offsetof(gp_jobrec_t, restart_delay_ms), 1 },
        { "restart_at_ms", offsetof(gp_jobrec_t, restart_at_ms), 1 },
        { "submitted_ms", offsetof(gp_jobrec_t, submitted_ms), 1 },
        { "updated_ms", offsetof(gp_jobrec_t, updated_ms), 1 },
    };
    for (size_t i = 0; i < GP_ARRAY_LEN(nums); i++) {
        if ((v = json_object_get(obj, nums[i].name)) == NULL)
            continue;
        if (!json_is_integer(v)) {
            gp_err_set(err, GP_ERR_INVALID, "%s: expected an integer", nums[i].name);
            goto cleanup;
        }
        if (nums[i].is64)
            *(int64_t *)((char *)&rec + nums[i].off) = json_integer_value(v);
        else
            *(int *)((char *)&rec + nums[i].off) = (int)json_integer_value(v);
        json_object_del(obj, nums[i].name);
    }
    if ((v = json_object_get(obj, "applied")) != NULL) {
        json_t *am = json_object_get(v, "mem_mib"), *ac = json_object_get(v, "compute_percent");
        if (!json_is_object(v) || !json_is_integer(am) || json_integer_value(am) < 0 ||
            !json_is_integer(ac) || json_integer_value(ac) < 0 || json_integer_value(ac) > 100) {
            gp_err_set(err, GP_ERR_INVALID, "applied: expected {\"mem_mib\", \"compute_percent\"}");
            goto cleanup;
        }
        rec.applied_mem_mib = json_integer_value(am);
        rec.applied_compute_pct = (int)json_integer_value(ac);
        json_object_del(obj, "applied");
    }
    if ((v = json_object_get(obj, "rightsize_floor_mib")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            gp_err_set(err, GP_ERR_INVALID, "rightsize_floor_mib: expected an integer >= 0");
            goto cleanup;
        }
        rec.rightsize_floor_mib = json_integer_value(v);
        json_object_del(obj, "rightsize_floor_mib");
    }
    v = json_object_get(obj, "history");
    rec.history = v && json_is_array(v) ? json_incref(v) : json_array();
    json_object_del(obj, "history");
    json_object_del(obj, "id");
    if (gp_schema_check(json_object_get(obj, "schema"), err) < 0)
        goto cleanup;
    json_object_del(obj, "schema");
    if (s_take_run(obj, &rec, err) < 0)
        goto cleanup;
    if (json_object_size(obj) > 0) {
        gp_err_set(err, GP_ERR_INVALID, "%s: unknown field", json_object_iter_key(json_object_iter(obj)));
        goto cleanup;
    }
    *out = rec;
    gp_jobrec_init(&rec);
    rc = 0;
cleanup:
    gp_jobrec_clear(&rec);
    json_decref(obj);
    return rc;
}

json_t *gp_jobrec_to_json(const gp_jobrec_t *r)
{
    json_t *o = json_object();
    json_t *spec = gp_job_to_json(&r->spec);
    if (o == NULL || spec == NULL) {
        json_decref(o);
        json_decref(spec);
        return NULL;
    }
    json_object_set_new(o, "id", json_string(r->spec.id));
    json_object_set_new(o, "spec", spec);
    if (r->argv) {
        json_t *a = json_array();
        for (char **p = r->argv; *p; p++)
            json_array_append_new(a, json_string(*p));
        json_object_set_new(o, "command", a);
    }
    if (r->env) {
        json_t *e = json_object();
        for (char **p = r->env; *p; p++) {
            const char *eq = strchr(*p, '=');
            char name[256];
            size_t nl = eq ? (size_t)(eq - *p) : strlen(*p);
            if (nl >= sizeof name)
                nl = sizeof name - 1;
            memcpy(name, *p, nl);
            name[nl] = '\0';
            json_t *value = json_string(eq ? eq + 1 : "");
            if (r->env_secret[p - r->env])
                value = json_pack("{s:o}", "secret", value);
            json_object_set_new(e, name, value);
        }
        json_object_set_new(o, "env", e);
    }
    if (r->compute_mode[0] != '\0')
        json_object_set_new(o, "compute_mode", json_string(r->compute_mode));
    json_object_set_new(o, "restart", json_string(s_restarts[r->restart]));
    json_object_set_new(o, "max_restarts", json_integer(r->max_restarts));
    if (r->duration_s > 0)
        json_object_set_new(o, "duration_s", json_real(r->duration_s));
    if (r->ttl_after_finished_s >= 0)
        json_object_set_new(o, "ttl_after_finished_s", json_real(r->ttl_after_finished_s));
    if (r->grace_s >= 0)
        json_object_set_new(o, "grace_s", json_integer(r->grace_s));
    if (r->cls[0])
        json_object_set_new(o, "class", json_string(r->cls));
    if (r->rightsize != GP_RIGHTSIZE_OFF)
        json_object_set_new(o, "rightsize", json_string(gp_rightsize_mode_name(r->rightsize)));
    if (r->owner[0])
        json_object_set_new(o, "owner", json_string(r->owner));
    if (r->region[0])
        json_object_set_new(o, "region", json_string(r->region));
    if (r->image[0])
        json_object_set_new(o, "image", json_string(r->image));
    if (r->workdir[0])
        json_object_set_new(o, "workdir", json_string(r->workdir));
    if (r->user[0])
        json_object_set_new(o, "user", json_string(r->user));
    if (r->mounts) {
        json_t *m = json_array();
        for (char **p = r->mounts; *p; p++) {
            size_t l = strlen(*p);
            /* "rw" is the default: stored as submitted */
            json_array_append_new(m, l > 3 && !strcmp(*p + l - 3, ":rw")
                                         ? json_stringn(*p, l - 3) : json_string(*p));
        }
        json_object_set_new(o, "mounts", m);
    }
    json_object_set_new(o, "state", json_string(gp_job_state_name(r->state)));
    json_object_set_new(o, "reason", json_string(r->reason));
    if (r->node[0])
        json_object_set_new(o, "node", json_string(r->node));
    json_object_set_new(o, "exit_code", json_integer(r->exit_code));
    json_object_set_new(o, "attempts", json_integer(r->attempts));
    if (r->restarts > 0) {   /* only then: records of jobs never restarted stay as they were */
        json_object_set_new(o, "restarts", json_integer(r->restarts));
        json_object_set_new(o, "restart_delay_ms", json_integer(r->restart_delay_ms));
        json_object_set_new(o, "restart_at_ms", json_integer(r->restart_at_ms));
    }
    if (r->applied_mem_mib > 0 || r->applied_compute_pct > 0)
        json_object_set_new(o, "applied", json_pack("{s:I,s:i}", "mem_mib",
                                                    (json_int_t)r->applied_mem_mib,
                                                    "compute_percent", r->applied_compute_pct));
    if (r->rightsize_floor_mib > 0)
        json_object_set_new(o, "rightsize_floor_mib", json_integer(r->rightsize_floor_mib));
    json_object_set_new(o, "submitted_ms", json_integer(r->submitted_ms));
    json_object_set_new(o, "updated_ms", json_integer(r->updated_ms));
    json_object_set(o, "history", r->history ? r->history : json_array());
    /* Schema 2's fields: a reader of schema 1 refuses them (README
     * "Versions and upgrades"). */
    if (r->grace_s >= 0 || r->cls[0] || r->rightsize != GP_RIGHTSIZE_OFF || r->restarts > 0 ||
        r->applied_mem_mib > 0 || r->applied_compute_pct > 0 || r->rightsize_floor_mib > 0)
        json_object_set_new(o, "schema", json_integer(2));
    return o;
}

/* Any JSON value as json_dumps(JSON_COMPACT) writes it (objects in their
 * order); -1 when out of memory or a string is not UTF-8. */
static int s_json_text(const json_t *v, gp_ebuf_t *b)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *m;
        int bad = gp_ebuf_adds(b, "{"), first = 1;
        json_object_foreach((json_t *)v, k, m) {
            bad |= gp_ebuf_adds(b, first ? "" : ",") | gp_ebuf_json_str(b, k) |
                   gp_ebuf_adds(b, ":") | s_json_text(m, b);
            first = 0;
        }
        return bad | gp_ebuf_adds(b, "}") ? -1 : 0;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *m;
        int bad = gp_ebuf_adds(b, "[");
        json_array_foreach(v, i, m)
            bad |= gp_ebuf_adds(b, i ? "," : "") | s_json_text(m, b);
        return bad | gp_ebuf_adds(b, "]") ? -1 : 0;
    }
    case JSON_STRING:
        /* jansson's strings may hold NULs (json_stringn): those, the tree */
        if (strlen(json_string_value(v)) != json_string_length(v))
            return -1;
        return gp_ebuf_json_str(b, json_string_value(v));
    case JSON_INTEGER:
        return gp_ebuf_addf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        return gp_ebuf_json_real(b, json_real_value(v));
    case JSON_TRUE:
        return gp_ebuf_adds(b, "true");
    case JSON_FALSE:
        return gp_ebuf_adds(b, "false");
    default:
        return gp_ebuf_adds(b, "null");
    }
}

#define S_STRF(b, name, value) (gp_ebuf_adds(b, ",\"" name "\":") | gp_ebuf_json_str(b, value))

/* gp_jobrec_to_json's object as text, member for member; -1 where the
 * tree would write something else (a string that is not UTF-8, a repeated
 * env name) or out of memory. */
static int s_jobrec_text(const gp_jobrec_t *r, gp_ebuf_t *b)
{
    int bad = gp_ebuf_adds(b, "{\"id\":") | gp_ebuf_json_str(b, r->spec.id) |
              gp_ebuf_adds(b, ",\"spec\":") | gp_job_dump_buf(&r->spec, b);
    if (r->argv) {
        bad |= gp_ebuf_adds(b, ",\"command\":[");
        for (char **p = r->argv; *p; p++)
            bad |= gp_ebuf_adds(b, p == r->argv ? "" : ",") | gp_ebuf_json_str(b, *p);
        bad |= gp_ebuf_adds(b, "]");
    }
    if (r->env) {
        bad |= gp_ebuf_adds(b, ",\"env\":{");
        for (char **p = r->env; *p; p++) {
            const char *eq = strchr(*p, '=');
            char name[256];
            size_t nl = eq ? (size_t)(eq - *p) : strlen(*p);
            if (nl >= sizeof name - 1)
                return -1;   /* cut as the tree cuts it, it may repeat another */
            memcpy(name, *p, nl);
            name[nl] = '\0';
            for (char **q = r->env; q < p; q++)   /* a repeated name: the tree keeps one */
                if (!strncmp(*q, name, nl) && ((*q)[nl] == '=' || (*q)[nl] == '\0'))
                    return -1;
            bad |= gp_ebuf_adds(b, p == r->env ? "" : ",") | gp_ebuf_json_str(b, name) |
                   gp_ebuf_adds(b, r->env_secret[p - r->env] ? ":{\"secret\":" : ":") |
                   gp_ebuf_json_str(b, eq ? eq + 1 : "") |
                   gp_ebuf_adds(b, r->env_secret[p - r->env] ? "}" : "");
        }
        bad |= gp_ebuf_adds(b, "}");
    }
    if (r->compute_mode[0] != '\0')
        bad |= S_STRF(b, "compute_mode", r->compute_mode);
    bad |= S_STRF(b, "restart", s_restarts[r->restart]) |
           gp_ebuf_addf(b, ",\"max_restarts\":%d", r->max_restarts);
    if (r->duration_s > 0)
        bad |= gp_ebuf_adds(b, ",\"duration_s\":") | gp_ebuf_json_real(b, r->duration_s);
    if (r->ttl_after_finished_s >= 0)
        bad |= gp_ebuf_adds(b, ",\"ttl_after_finished_s\":") |
               gp_ebuf_json_real(b, r->ttl_after_finished_s);
    if (r->grace_s >= 0)
        bad |= gp_ebuf_addf(b, ",\"grace_s\":%d", r->grace_s);
    if (r->cls[0])
        bad |= S_STRF(b, "class", r->cls);
    if (r->rightsize != GP_RIGHTSIZE_OFF)
        bad |= S_STRF(b, "rightsize", gp_rightsize_mode_name(r->rightsize));
    if (r->owner[0])
        bad |= S_STRF(b, "owner", r->owner);
    if (r->region[0])
        bad |= S_STRF(b, "region", r->region);
    if (r->image[0])
        bad |= S_STRF(b, "image", r->image);
    if (r->workdir[0])
        bad |= S_STRF(b, "workdir", r->workdir);
    if (r->user[0])
        bad |= S_STRF(b, "user", r->user);
    if (r->mounts) {
        bad |= gp_ebuf_adds(b, ",\"mounts\":[");
        for (char **p = r->mounts; *p; p++) {
            size_t l = strlen(*p);
            char m[4096];
            if (l >= sizeof m)
                return -1;
            memcpy(m, *p, l + 1);
            if (l > 3 && !strcmp(m + l - 3, ":rw"))
                m[l - 3] = '\0';   /* "rw" is the default: stored as submitted */
            bad |= gp_ebuf_adds(b, p == r->mounts ? "" : ",") | gp_ebuf_json_str(b, m);
        }
        bad |= gp_ebuf_adds(b, "]");
    }
    bad |= S_STRF(b, "state", gp_job_state_name(r->state)) | S_STRF(b, "reason", r->reason);
    if (r->node[0])
        bad |= S_STRF(b, "node", r->node);
    bad |= gp_ebuf_addf(b, ",\"exit_code\":%d,\"attempts\":%d", r->exit_code, r->attempts);
    if (r->restarts > 0)
        bad |= gp_ebuf_addf(b, ",\"restarts\":%d,\"restart_delay_ms\":%lld,\"restart_at_ms\":%lld",
                            r->restarts, (long long)r->restart_delay_ms,
                            (long long)r->restart_at_ms);
    if (r->applied_mem_mib > 0 || r->applied_compute_pct > 0)
        bad |= gp_ebuf_addf(b, ",\"applied\":{\"mem_mib\":%lld,\"compute_percent\":%d}",
                            (long long)r->applied_mem_mib, r->applied_compute_pct);
    if (r->rightsize_floor_mib > 0)
        bad |= gp_ebuf_addf(b, ",\"rightsize_floor_mib\":%lld", (long long)r->rightsize_floor_mib);
    bad |= gp_ebuf_addf(b, ",\"submitted_ms\":%lld,\"updated_ms\":%lld,\"history\":",
                        (long long)r->submitted_ms, (long long)r->updated_ms);
    bad |= r->history ? s_json_text(r->history, b) : gp_ebuf_adds(b, "[]");
    if (r->grace_s >= 0 || r->cls[0] || r->rightsize != GP_RIGHTSIZE_OFF || r->restarts > 0 ||
        r->applied_mem_mib > 0 || r->applied_compute_pct > 0 || r->rightsize_floor_mib > 0)
        bad |= gp_ebuf_adds(b, ",\"schema\":2");
    return bad | gp_ebuf_adds(b, "}") ? -1 : 0;
}

/* Written as text directly (a burst writes thousands of records: the
 * coordinator at intake, the agents' reports), the tree only for what the
 * text writer leaves to it; the bytes are json_dumps's either way. */
char *gp_jobrec_dump(const gp_jobrec_t *rec)
{
    gp_ebuf_t b = { 0 };
    if (s_jobrec_text(rec, &b) == 0 && b.p)
        return b.p;
    gp_ebuf_free(&b);
    json_t *o = gp_jobrec_to_json(rec);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

void gp_jobrec_set_state(gp_jobrec_t *rec, gp_job_state_t state, const char *node,
                         const char *reason, int64_t now_ms)
{
    rec->state = state;
    if (node)
        gp_strlcpy(rec->node, node, sizeof rec->node);
    gp_strlcpy(rec->reason, reason ? reason : "", sizeof rec->reason);
    rec->updated_ms = now_ms;
    if (rec->history == NULL)
        rec->history = json_array();
    if (rec->history == NULL)
        return;
    json_t *h = json_pack("{s:s,s:s,s:s,s:I}", "state", gp_job_state_name(state), "node",
                          rec->node, "reason", rec->reason, "at_ms", (json_int_t)now_ms);
    if (h)
        json_array_append_new(rec->history, h);
    while (json_array_size(rec->history) > S_HISTORY_MAX)
        json_array_remove(rec->history, 0);
}

static gp_jscan_span_t s_span_json(const json_t *o, const char *name)
{
    const char *v = json_string_value(json_object_get(o, name));
    return (gp_jscan_span_t){ v, v ? strlen(v) : 0 };
}

void gp_jobrec_sum_json(const json_t *o, gp_jobrec_sum_t *m)
{
    json_t *spec = json_object_get(o, "spec");
    m->state = s_span_json(o, "state");
    m->region = s_span_json(o, "region");
    m->owner = s_span_json(o, "owner");
    m->node = s_span_json(o, "node");
    m->reason = s_span_json(o, "reason");
    m->rightsize = s_span_json(o, "rightsize");
    m->cls = s_span_json(o, "class");
    m->gang = s_span_json(spec, "gang");
    m->attempts = json_integer_value(json_object_get(o, "attempts"));
    m->floor_mib = json_integer_value(json_object_get(o, "rightsize_floor_mib"));
    m->submitted_ms = json_integer_value(json_object_get(o, "submitted_ms"));
    m->restart_at_ms = json_integer_value(json_object_get(o, "restart_at_ms"));
    m->updated_ms = json_integer_value(json_object_get(o, "updated_ms"));
    m->priority = json_integer_value(json_object_get(spec, "priority"));
    m->devices = json_integer_value(json_object_get(spec, "devices"));
    m->gang_size = json_integer_value(json_object_get(spec, "gang_size"));
    json_t *ttl = json_object_get(o, "ttl_after_finished_s");
    m->ttl_ms = json_is_number(ttl) ? (int64_t)(json_number_value(ttl) * 1000) : -1;
}

/* A bare integer (json_integer_value's: a quoted one is not). */
static bool s_scan_int(gp_jscan_t *s, int64_t *v)
{
    gp_jscan_ws(s);
    return s->p < s->end && *s->p != '"' && gp_jscan_i64(s, v);
}

/* Any number, as a double (ttl_after_finished_s is written 30.0). */
static bool s_scan_number(gp_jscan_t *s, double *v)
{
    gp_jscan_ws(s);
    const char *start = s->p;
    if (start >= s->end || *start == '"' || *start == '{' || *start == '[' || *start == 't' ||
        *start == 'f' || *start == 'n' || !gp_jscan_skip(s) || s->p - start >= 64)
        return false;
    char buf[64];
    memcpy(buf, start, (size_t)(s->p - start));
    buf[s->p - start] = '\0';
    *v = strtod(buf, NULL);
    return true;
}

static bool s_scan_span(gp_jscan_t *s, gp_jscan_span_t *v)
{
    return gp_jscan_str(s, &v->p, &v->n);
}

bool gp_jobrec_sum_scan(const char *text, size_t len, gp_jobrec_sum_t *m)
{
    memset(m, 0, sizeof *m);
    m->ttl_ms = -1;
    gp_jscan_t s = GP_JSCAN_INIT(text, len);
    bool first = true, ok = gp_jscan_lit(&s, '{');
    const char *k;
    size_t kn;
    while (ok && gp_jscan_obj_next(&s, &k, &kn, &first, &ok)) {
        double ttl = -0.001;
        switch (kn ? k[0] : 0) {   /* most members are none of these: one compare */
        case 's': case 'r': case 'o': case 'n': case 'c': case 'a': case 'u': case 't':
            break;
        default:
            ok = gp_jscan_skip(&s);
            continue;
        }
        if (gp_jscan_key_is(k, kn, "state")) {
            ok = s_scan_span(&s, &m->state);
        } else if (gp_jscan_key_is(k, kn, "region")) {
            ok = s_scan_span(&s, &m->region);
        } else if (gp_jscan_key_is(k, kn, "owner")) {
            ok = s_scan_span(&s, &m->owner);
        } else if (gp_jscan_key_is(k, kn, "node")) {
            ok = s_scan_span(&s, &m->node);
        } else if (gp_jscan_key_is(k, kn, "reason")) {
            ok = s_scan_span(&s, &m->reason);
        } else if (gp_jscan_key_is(k, kn, "rightsize")) {
            ok = s_scan_span(&s, &m->rightsize);
        } else if (gp_jscan_key_is(k, kn, "class")) {
            ok = s_scan_span(&s, &m->cls);
        } else if (gp_jscan_key_is(k, kn, "attempts")) {
            ok = s_scan_int(&s, &m->attempts);
        } else if (gp_jscan_key_is(k, kn, "rightsize_floor_mib")) {
            ok = s_scan_int(&s, &m->floor_mib);
        } else if (gp_jscan_key_is(k, kn, "submitted_ms")) {
            ok = s_scan_int(&s, &m->submitted_ms);
        } else if (gp_jscan_key_is(k, kn, "restart_at_ms")) {
            ok = s_scan_int(&s, &m->restart_at_ms);
        } else if (gp_jscan_key_is(k, kn, "updated_ms")) {
            ok = s_scan_int(&s, &m->updated_ms);
        } else if (gp_jscan_key_is(k, kn, "ttl_after_finished_s")) {
            ok = s_scan_number(&s, &ttl);
            m->ttl_ms = (int64_t)(ttl * 1000);
        } else if (gp_jscan_key_is(k, kn, "spec")) {
            bool sfirst = true;
            const char *sk;
            size_t skn;
            ok = gp_jscan_lit(&s, '{');
            while (ok && gp_jscan_obj_next(&s, &sk, &skn, &sfirst, &ok)) {
                if (gp_jscan_key_is(sk, skn, "priority"))
                    ok = s_scan_int(&s, &m->priority);
                else if (gp_jscan_key_is(sk, skn, "devices"))
                    ok = s_scan_int(&s, &m->devices);
                else if (gp_jscan_key_is(sk, skn, "gang_size"))
                    ok = s_scan_int(&s, &m->gang_size);
                else if (gp_jscan_key_is(sk, skn, "gang"))
                    ok = s_scan_span(&s, &m->gang);
                else
                    ok = gp_jscan_skip(&s);
            }
        } else {
            ok = gp_jscan_skip(&s);
        }
    }
    gp_jscan_ws(&s);
    return ok && s.p == s.end;
}

static void s_redact_env(json_t *record)
{
    json_t *env = json_object_get(record, "env"), *v;
    const char *k;
    json_object_foreach(env, k, v)
        if (json_is_object(v) && json_object_get(v, "secret"))
            json_object_set_new(v, "secret", json_true());
}

void gp_jobrec_redact_json(json_t *doc)
{
    size_t i;
    json_t *v;
    if (json_is_array(doc)) {
        json_array_foreach(doc, i, v)
            gp_jobrec_redact_json(v);
    } else if (json_is_object(doc)) {
        s_redact_env(doc);
        gp_jobrec_redact_json(json_object_get(doc, "jobs"));
    }
}

/*
 * Beside every time field "X_ms" (milliseconds since the epoch) of the
 * API's JSON, at any depth, add "X": the same time in RFC 3339, UTC, with
 * milliseconds ("2026-11-21T15:04:05.123Z"), unless the record has an X
 * already.  A "_ms" field is a time when it lies between 2000 and 3000;
 * durations in ms (timeouts, ages) are far below.
 */
#define S_MS_2000 946684800000LL
#define S_MS_3000 32503680000000LL

void gp_json_add_times(json_t *j)
{
    if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) gp_json_add_times(v);
        return;
    }
    if (!json_is_object(j))
        return;
    const char *k;
    json_t *v;
    void *tmp;
    json_t *add = json_object();
    json_object_foreach_safe(j, tmp, k, v) {
        size_t len = strlen(k);
        gp_json_add_times(v);
        if (len < 4 || strcmp(k + len - 3, "_ms") || !json_is_integer(v) || add == NULL)
            continue;
        json_int_t ms = json_integer_value(v);
        char name[128], t[40], text[48];
        if (ms < S_MS_2000 || ms >= S_MS_3000 || len - 3 >= sizeof name)
            continue;
        memcpy(name, k, len - 3);
        name[len - 3] = '\0';
        if (json_object_get(j, name))
            continue;
        time_t sec = (time_t)(ms / 1000);
        struct tm tm;
        if (gmtime_r(&sec, &tm) == NULL || strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
            continue;
        snprintf(text, sizeof text, "%s.%03dZ", t, (int)(ms % 1000));
        json_object_set_new(add, name, json_string(text));
    }
    json_object_update(j, add);
    json_decref(add);
}

int gp_jobrec_restarts_again(const gp_jobrec_t *rec, int failed)
{
    if (rec->restart == GP_RESTART_ALWAYS)
        return 1;
    return rec->restart == GP_RESTART_ON_FAILURE && failed && rec->attempts <= rec->max_restarts;
}
