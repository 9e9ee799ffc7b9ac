/*
 * audit.c - the audit log (audit.h).
 */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "coord.h"
#include "jscan.h"
#include "log.h"
#include "util.h"

#include "banned.h"

#define S_KEEP 3            /* rotated files kept */

struct coord_audit {
    char *path;
    int64_t max_bytes;
};

coord_audit_t *coord_audit_new(const char *path, int64_t max_bytes, gp_err_t *err)
{
    coord_audit_t *self = calloc(1, sizeof *self);
    if (self == NULL || (self->path = strdup(path)) == NULL) {
        free(self);
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    self->max_bytes = max_bytes > 0 ? max_bytes : (int64_t)64 << 20;
    if (*path) {
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            gp_err_errno(err, "cannot open audit-log %s", path);
            coord_audit_destroy(&self);
            return NULL;
        }
        close(fd);
    }
    return self;
}

void coord_audit_destroy(coord_audit_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    free((*self_p)->path);
    free(*self_p);
    *self_p = NULL;
}

static void s_rotate(coord_audit_t *self)
{
    char from[4200], to[4200];
    for (int k = S_KEEP; k >= 1; k--) {
        snprintf(to, sizeof to, "%s.%d", self->path, k);
        if (k == 1)
            snprintf(from, sizeof from, "%s", self->path);
        else
            snprintf(from, sizeof from, "%s.%d", self->path, k - 1);
        if (rename(from, to) < 0 && errno != ENOENT)
            gp_log_warn("cannot rotate the audit log from=%s err=\"%s\"", from, strerror(errno));
    }
}

static void s_write(coord_t *c, coord_audit_t *self, const char *line, size_t len)
{
    if (self->path[0] == '\0') {
        gp_log_info("audit %.*s", (int)len - 1, line);
        return;
    }
    struct stat st;
    if (stat(self->path, &st) == 0 && st.st_size + (off_t)len > (off_t)self->max_bytes)
        s_rotate(self);
    int fd = open(self->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    ssize_t w = fd >= 0 ? write(fd, line, len) : -1;
    if (fd >= 0)
        close(fd);
    if (w != (ssize_t)len) {
        gp_metric_inc(c->m.audit_errors);
        gp_log_error("cannot write the audit log path=%s err=\"%s\"", self->path, strerror(errno));
    }
}

/* What an answer says of the outcome, read in place: a submission's
 * answer is its whole record, parsed only for these. */
typedef struct {
    gp_jscan_span_t error, id;   /* strings (p NULL: absent or not a string) */
    int has_results;             /* "results" is an array */
    json_int_t jobs, accepted;   /* its slots, those with "status" < 300 */
} s_outcome_t;

/* false: the scanner refused the text (an escape in a string, say); the
 * caller parses it instead. */
static bool s_outcome_scan(const char *body, size_t len, s_outcome_t *o)
{
    gp_jscan_t s = GP_JSCAN_INIT(body, len);
    bool first = true, ok = gp_jscan_lit(&s, '{');
    const char *k;
    size_t kn;
    while (ok && gp_jscan_obj_next(&s, &k, &kn, &first, &ok)) {
        gp_jscan_span_t *str = gp_jscan_key_is(k, kn, "error") ? &o->error
                               : gp_jscan_key_is(k, kn, "id") ? &o->id : NULL;
        gp_jscan_ws(&s);
        if (str && s.p < s.end && *s.p == '"') {
            ok = gp_jscan_str(&s, &str->p, &str->n);
        } else if (gp_jscan_key_is(k, kn, "results") && gp_jscan_lit(&s, '[')) {
            o->has_results = 1;
            if (gp_jscan_lit(&s, ']'))
                continue;
            do {   /* a slot's "status", an integer (anything else: as 0) */
                int64_t status = 0;
                bool sfirst = true;
                o->jobs++;
                gp_jscan_ws(&s);
                if (s.p < s.end && *s.p != '{') {
                    ok = gp_jscan_skip(&s);
                } else if ((ok = gp_jscan_lit(&s, '{'))) {
                    while (ok && gp_jscan_obj_next(&s, &k, &kn, &sfirst, &ok))
                        ok = gp_jscan_key_is(k, kn, "status") && s.p < s.end && *s.p >= '0' &&
                                     *s.p <= '9'
                                 ? gp_jscan_i64(&s, &status)
                                 : gp_jscan_skip(&s);
                }
                o->accepted += status < 300;
            } while (ok && gp_jscan_lit(&s, ','));
            ok = ok && gp_jscan_lit(&s, ']');
        } else {
            ok = gp_jscan_skip(&s);
        }
    }
    gp_jscan_ws(&s);
    return ok && s.p == s.end;
}

/* The same, from jansson's tree. */
static void s_outcome_parse(const char *body, size_t len, s_outcome_t *o, json_t **keep)
{
    json_t *ans = json_loadb(body, len, 0, NULL), *v;
    if ((v = json_object_get(ans, "error")) && json_is_string(v))
        o->error = (gp_jscan_span_t){ json_string_value(v), json_string_length(v) };
    if ((v = json_object_get(ans, "id")) && json_is_string(v))
        o->id = (gp_jscan_span_t){ json_string_value(v), json_string_length(v) };
    if ((v = json_object_get(ans, "results")) && json_is_array(v)) {
        size_t i;
        json_t *r;
        o->has_results = 1;
        json_array_foreach(v, i, r) {
            o->jobs++;
            o->accepted += json_integer_value(json_object_get(r, "status")) < 300;
        }
    }
    *keep = ans;   /* the spans point into it */
}

void coord_audit_observe(void *arg, gp_http_req_t *req, int status, const char *body, size_t len)
{
    coord_t *c = arg;
    const char *method = gp_http_req_method(req);
    if (c->audit == NULL || method == NULL || !strcmp(method, "GET") || !strcmp(method, "HEAD"))
        return;
    if (c->audit->path[0] == '\0' && gp_log_get_level() > GP_LOG_INFO)
        return;   /* the line would go to the log at info level: nowhere */
    char when[40];
    int64_t now = gp_wall_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t wl = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + wl, sizeof when - wl, ".%03dZ", (int)(now % 1000));
    const char *path = gp_http_req_path(req);
    json_t *e = json_pack("{s:s,s:s,s:s,s:s?,s:s,s:s,s:s?,s:i}", "time", when, "coordinator",
                          c->cfg.id, "region", c->cfg.region, "principal",
                          gp_http_req_principal(req), "peer", gp_http_req_peer(req), "method",
                          method, "path", path, "status", status);
    /* What the answer says of the outcome: its error, or which jobs. */
    s_outcome_t o = { 0 };
    json_t *ans = NULL;
    if (e && body && len && !s_outcome_scan(body, len, &o)) {
        memset(&o, 0, sizeof o);
        s_outcome_parse(body, len, &o, &ans);
    }
    if (e && o.error.p)
        json_object_set_new(e, "error", json_stringn(o.error.p, o.error.n));
    if (e && o.id.p && path && !strcmp(path, "/v1/jobs"))
        json_object_set_new(e, "id", json_stringn(o.id.p, o.id.n));
    if (e && o.has_results) {
        json_object_set_new(e, "jobs", json_integer(o.jobs));
        json_object_set_new(e, "jobs_accepted", json_integer(o.accepted));
    }
    json_decref(ans);
    char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    if (text == NULL) {
        gp_metric_inc(c->m.audit_errors);
        return;
    }
    size_t tl = strlen(text);
    char *line = realloc(text, tl + 2);
    if (line == NULL) {
        free(text);
        return;
    }
    line[tl] = '\n';
    line[tl + 1] = '\0';
    s_write(c, c->audit, line, tl + 1);
    free(line);
}

json_t *coord_audit_read(const coord_audit_t *self, const char *principal, int limit,
                         gp_err_t *err)
{
    if (self == NULL || self->path[0] == '\0') {
        gp_err_set(err, GP_ERR_NOTFOUND,
                   "this coordinator has no audit-log file (its audit lines are in its log)");
        return NULL;
    }
    json_t *all = json_array();
    for (int k = 1; all && k >= 0; k--) {
        char path[4200];
        snprintf(path, sizeof path, k ? "%s.%d" : "%s", self->path, k);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, f)) > 0) {
            json_t *e = json_loadb(line, (size_t)n, 0, NULL);
            const char *p = json_string_value(json_object_get(e, "principal"));
            if (e && (principal == NULL || (p && !strcmp(p, principal))))
                json_array_append(all, e);
            json_decref(e);
            /* Keep the last `limit` (at most twice over before trimming). */
            if (limit > 0 && json_array_size(all) >= (size_t)limit * 2) {
                json_t *tail = json_array();
                for (size_t i = json_array_size(all) - (size_t)limit; i < json_array_size(all); i++)
                    json_array_append(tail, json_array_get(all, i));
                json_decref(all);
                all = tail;
            }
        }
        free(line);
        fclose(f);
    }
    if (all && limit > 0 && json_array_size(all) > (size_t)limit) {
        json_t *tail = json_array();
        for (size_t i = json_array_size(all) - (size_t)limit; i < json_array_size(all); i++)
            json_array_append(tail, json_array_get(all, i));
        json_decref(all);
        all = tail;
    }
    if (all == NULL)
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    return all;
}

void coord_audit_http(coord_t *c, gp_http_req_t *req)
{
    if (strcmp(gp_http_req_method(req), "GET") != 0) {
        gp_http_respond_error(req, 405, "%s not allowed on /v1/audit", gp_http_req_method(req));
        return;
    }
    const char *lim = gp_http_req_query(req, "limit");
    int64_t limit = 100;
    if (lim && gp_parse_int64(lim, 1, 100000, &limit) < 0) {
        gp_http_respond_error(req, 400, "limit: expected 1..100000, got \"%s\"", lim);
        return;
    }
    gp_err_t err;
    json_t *entries = coord_audit_read(c->audit, gp_http_req_query(req, "principal"), (int)limit,
                                       &err);
    if (entries == NULL) {
        gp_http_respond_error(req, err.code == GP_ERR_NOTFOUND ? 404 : 500, "%s", err.msg);
        return;
    }
    json_t *doc = json_pack("{s:o}", "entries", entries);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) {
        gp_http_respond_error(req, 500, "out of memory");
        return;
    }
    gp_http_respond(req, 200, "application/json", text, strlen(text));
}
