/*
 * auth.h - who calls the REST API, and what each caller may do (README
 * "Security model").
 *
 * A caller is a principal: a name, its roles and its teams.
 *
 *   submitter   submits jobs owned by one of its teams; cancels, suspends
 *               and resumes its teams' jobs; reads everything, but other
 *               teams' jobs without their command, env or logs
 *   operator    everything: any job, quotas, nodes, the audit log
 *   reader      reads, like a submitter of its teams (none: sees every job
 *               without command, env or logs); changes nothing
 *
 * The principals come from the coordinator's api-tokens file, one
 * credential a line, fields separated by blanks, '#' starting a comment:
 *
 *   sha256:<64 hex>  PRINCIPAL  ROLES  TEAMS
 *   cert:<CN>        PRINCIPAL  ROLES  TEAMS
 *
 * ROLES and TEAMS are comma-separated lists ("-" for no team).  A sha256
 * line holds the SHA-256 of a bearer token (the token itself is never
 * stored: `gpupool keys token --principal P --role R --team T --file F`
 * makes a token, prints it once and appends its line); a cert line maps a
 * client certificate's common name, verified against api-tls-client-ca,
 * to a principal.  A line of one field is an older file's plain token: it
 * is still honoured, as an operator named "token-<line>", with a warning
 * at every load.
 *
 * Comparisons are constant-time: a presented token is hashed and compared
 * with every entry, whatever matches, so that timing tells nothing of the
 * stored hashes.  The file is re-read on SIGHUP (main.c); a bad file keeps
 * the old table, and a removed line is refused from the next request on.
 *
 * The request hooks (coord_auth_*) answer the request themselves when they
 * refuse it (401 or 403, with a JSON error saying why) and return -1; the
 * handler then returns at once.  c->caller is the authenticated principal
 * while a request's handler runs (synchronously); it is NULL otherwise.
 */
#ifndef GP_COORD_AUTH_H
#define GP_COORD_AUTH_H

#include <stddef.h>

#include <jansson.h>

#include "err.h"
#include "httpd.h"

typedef struct coord coord_t;

enum {
    COORD_ROLE_SUBMITTER = 1,
    COORD_ROLE_OPERATOR = 2,
    COORD_ROLE_READER = 4,
};

typedef struct {
    char name[128];
    unsigned roles;          /* COORD_ROLE_* */
    char **teams;            /* NULL-terminated */
    int nteams;
} coord_principal_t;

typedef struct coord_auth coord_auth_t;

/* Parse the api-tokens file; caller owns the table.  Every error names the
 * file and the line. */
coord_auth_t *coord_auth_load(const char *path, gp_err_t *err);
void coord_auth_destroy(coord_auth_t **self_p);
/* Principals in the table (for the log). */
int coord_auth_count(const coord_auth_t *self);

/* The principal of a bearer token or a certificate's common name, or NULL
 * (borrowed from the table). */
const coord_principal_t *coord_auth_by_token(const coord_auth_t *self, const char *token);
const coord_principal_t *coord_auth_by_cert(const coord_auth_t *self, const char *cn);
int coord_principal_has_team(const coord_principal_t *p, const char *team);

/* The hex SHA-256 of a token (65 bytes with the NUL). */
void coord_auth_hash(const char *token, char hex[65]);

/* ---- request hooks (intake.c) */

/* Authenticate the request (bearer token, else a verified client
 * certificate) and check its method and path against the caller's roles;
 * sets c->caller.  -1: answered (401/403). */
int coord_auth_request(coord_t *c, gp_http_req_t *req);
/* A new job's owner: defaults to the caller's team when it has one, and
 * must be one of its teams (operators submit for any team).  -1 with *status
 * (400 or 403) and msg. */
int coord_auth_owner(coord_t *c, char *owner, size_t size, int *status, char *msg, size_t msize);
/* Changing job (cancel, suspend, resume) or reading it whole: operators,
 * and callers of the owning team.  -1: answered 403. */
int coord_auth_job(coord_t *c, gp_http_req_t *req, const char *id, const char *owner,
                   const char *what);
/* May the caller see this job's command, env and logs? */
int coord_auth_sees(const coord_t *c, const char *owner);
/* Strip what the caller may not see from a record (in place). */
void coord_auth_redact(const coord_t *c, json_t *record);

#endif
