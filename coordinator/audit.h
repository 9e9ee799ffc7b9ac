/*
 * audit.h - the coordinator's audit log: one JSON line per mutating API
 * request (every method but GET and HEAD), written when it is answered.
 *
 *   {"time":"2026-01-02T03:04:05.678Z","coordinator":"c1","region":"r1",
 *    "principal":"alice","peer":"10.0.0.7","method":"DELETE",
 *    "path":"/v1/jobs/train-1","status":403,"error":"alice may not ..."}
 *
 * "principal" is null when the request was not authenticated (a 401 is
 * recorded too); "id" names the job of a single submission, "jobs" counts
 * the jobs of an array.  Bodies are never written (a job's env may hold
 * secrets).
 *
 * The file (audit-log) is opened for each line with O_APPEND, mode 0600, so
 * that an outside rotation is safe; past max_bytes it is rotated here:
 * FILE -> FILE.1 -> FILE.2 -> FILE.3, the oldest dropped.  Without a file
 * each line goes to the daemon's log at info level, prefixed "audit".
 * A line that cannot be written is counted and logged; the request's
 * answer is not held back.
 *
 * Ownership: the log copies its path; coord_audit_read's result belongs to
 * the caller.
 */
#ifndef GP_COORD_AUDIT_H
#define GP_COORD_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "httpd.h"

typedef struct coord coord_t;
typedef struct coord_audit coord_audit_t;

/* path "" logs to the daemon's log. */
coord_audit_t *coord_audit_new(const char *path, int64_t max_bytes, gp_err_t *err);
void coord_audit_destroy(coord_audit_t **self_p);

/* The httpd observer (gp_httpd_set_observer, arg: the coordinator). */
void coord_audit_observe(void *arg, gp_http_req_t *req, int status, const char *body, size_t len);

/* The last `limit` entries (of principal, when not NULL), oldest first,
 * from FILE.1 and FILE; NULL with err when there is no file. */
json_t *coord_audit_read(const coord_audit_t *self, const char *principal, int limit,
                         gp_err_t *err);

/* GET /v1/audit?principal=&limit= (operators; auth.c checks the role). */
void coord_audit_http(coord_t *c, gp_http_req_t *req);

#endif
