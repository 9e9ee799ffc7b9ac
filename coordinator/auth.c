/*
 * auth.c - principals, roles and the API's permission checks (auth.h).
 */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "coord.h"
#include "keys.h"
#include "log.h"
#include "util.h"

#include "banned.h"

typedef struct {
    int is_cert;
    unsigned char hash[32];      /* token entries */
    char cn[256];                /* cert entries */
    coord_principal_t p;
} s_entry_t;

struct coord_auth {
    s_entry_t *entries;
    int n;
};

static void s_principal_clear(coord_principal_t *p)
{
    for (char **t = p->teams; t && *t; t++)
        free(*t);
    free(p->teams);
    p->teams = NULL;
    p->nteams = 0;
}

void coord_auth_destroy(coord_auth_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    coord_auth_t *self = *self_p;
    for (int i = 0; i < self->n; i++)
        s_principal_clear(&self->entries[i].p);
    OPENSSL_cleanse(self->entries, sizeof *self->entries * (size_t)self->n);
    free(self->entries);
    free(self);
    *self_p = NULL;
}

int coord_auth_count(const coord_auth_t *self) { return self ? self->n : 0; }

static void s_sha256(const char *text, unsigned char out[32])
{
    unsigned len = 32;
    EVP_Digest(text, strlen(text), out, &len, EVP_sha256(), NULL);
}

void coord_auth_hash(const char *token, char hex[65])
{
    unsigned char h[32];
    s_sha256(token, h);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
}

static int s_hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* A principal's name: 1..127 of [A-Za-z0-9._@-]. */
static int s_principal_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 127)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '@' || *s == '-'))
            return 0;
    return 1;
}

/* Fill e->p's roles and teams from the ROLES and TEAMS fields. */
static int s_parse_roles_teams(s_entry_t *e, char *roles, char *teams, const char *where,
                               gp_err_t *err)
{
    for (char *save = NULL, *r = strtok_r(roles, ",", &save); r; r = strtok_r(NULL, ",", &save)) {
        if (!strcmp(r, "submitter"))
            e->p.roles |= COORD_ROLE_SUBMITTER;
        else if (!strcmp(r, "operator"))
            e->p.roles |= COORD_ROLE_OPERATOR;
        else if (!strcmp(r, "reader"))
            e->p.roles |= COORD_ROLE_READER;
        else
            return gp_err_set(err, GP_ERR_INVALID,
                              "%s: unknown role \"%s\" (submitter, operator or reader)", where, r);
    }
    if (e->p.roles == 0)
        return gp_err_set(err, GP_ERR_INVALID, "%s: no role", where);
    e->p.teams = calloc(1, sizeof(char *));
    if (e->p.teams == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    if (strcmp(teams, "-") != 0) {
        for (char *save = NULL, *t = strtok_r(teams, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (!gp_name_valid(t) || strlen(t) >= GP_SHORT_LEN)
                return gp_err_set(err, GP_ERR_INVALID, "%s: bad team name \"%s\"", where, t);
            char **p = realloc(e->p.teams, sizeof *p * (size_t)(e->p.nteams + 2));
            if (p == NULL)
                return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
            e->p.teams = p;
            if ((p[e->p.nteams] = strdup(t)) == NULL)
                return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
            p[++e->p.nteams] = NULL;
        }
    }
    if ((e->p.roles & COORD_ROLE_SUBMITTER) && e->p.nteams == 0)
        return gp_err_set(err, GP_ERR_INVALID, "%s: a submitter needs at least one team", where);
    return 0;
}

/* One line of the file into e; 1 when it held an entry, 0 when blank. */
static int s_parse_line(char *line, int lineno, const char *path, s_entry_t *e, gp_err_t *err)
{
    char where[600];
    snprintf(where, sizeof where, "%s:%d", path, lineno);
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *f[5] = { NULL };
    int nf = 0;
    for (char *save = NULL, *t = strtok_r(line, " \t\r\n", &save); t;
         t = strtok_r(NULL, " \t\r\n", &save)) {
        if (nf == 4)
            return gp_err_set(err, GP_ERR_INVALID, "%s: more than 4 fields", where);
        f[nf++] = t;
    }
    if (nf == 0)
        return 0;
    memset(e, 0, sizeof *e);
    if (nf == 1) {
        /* An older file's plain token. */
        if (strlen(f[0]) < 16)
            return gp_err_set(err, GP_ERR_INVALID, "%s: tokens must be at least 16 characters",
                              where);
        s_sha256(f[0], e->hash);
        snprintf(e->p.name, sizeof e->p.name, "token-%d", lineno);
        char roles[] = "operator", teams[] = "-";
        gp_log_warn("api-tokens holds a token in the clear; replace it with a hashed entry "
                    "(gpupool keys token --principal ...) file=%s line=%d",
                    path, lineno);
        return s_parse_roles_teams(e, roles, teams, where, err) < 0 ? -1 : 1;
    }
    if (nf != 4)
        return gp_err_set(err, GP_ERR_INVALID,
                          "%s: expected CREDENTIAL PRINCIPAL ROLES TEAMS (sha256:<hex> or cert:<CN>)",
                          where);
    if (!strncmp(f[0], "sha256:", 7)) {
        const char *h = f[0] + 7;
        if (strlen(h) != 64)
            return gp_err_set(err, GP_ERR_INVALID, "%s: sha256: needs 64 hex digits", where);
        for (int i = 0; i < 32; i++) {
            int hi = s_hexval(h[2 * i]), lo = s_hexval(h[2 * i + 1]);
            if (hi < 0 || lo < 0)
                return gp_err_set(err, GP_ERR_INVALID, "%s: sha256: needs 64 hex digits", where);
            e->hash[i] = (unsigned char)(hi << 4 | lo);
        }
    } else if (!strncmp(f[0], "cert:", 5) && f[0][5] && strlen(f[0] + 5) < sizeof e->cn) {
        e->is_cert = 1;
        gp_strlcpy(e->cn, f[0] + 5, sizeof e->cn);
    } else {
        return gp_err_set(err, GP_ERR_INVALID,
                          "%s: the credential must be sha256:<hex> or cert:<common name>", where);
    }
    if (!s_principal_valid(f[1]))
        return gp_err_set(err, GP_ERR_INVALID, "%s: principal \"%s\": 1..127 of [A-Za-z0-9._@-]",
                          where, f[1]);
    gp_strlcpy(e->p.name, f[1], sizeof e->p.name);
    return s_parse_roles_teams(e, f[2], f[3], where, err) < 0 ? -1 : 1;
}

coord_auth_t *coord_auth_load(const char *path, gp_err_t *err)
{
    coord_auth_t *self = calloc(1, sizeof *self);
    FILE *f = fopen(path, "r");
    char line[1024];
    int lineno = 0, cap = 0;
    if (self == NULL || f == NULL) {
        if (self == NULL)
            gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        else
            gp_err_errno(err, "cannot open api-tokens %s", path);
        goto fail;
    }
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            gp_err_set(err, GP_ERR_INVALID, "%s:%d: line too long", path, lineno);
            goto fail;
        }
        if (self->n == cap) {
            cap = cap ? cap * 2 : 16;
            s_entry_t *p = realloc(self->entries, sizeof *p * (size_t)cap);
            if (p == NULL) {
                gp_err_set(err, GP_ERR_NOMEM, "out of memory");
                goto fail;
            }
            self->entries = p;
        }
        s_entry_t *e = &self->entries[self->n];
        int rc = s_parse_line(line, lineno, path, e, err);
        if (rc < 0) {
            s_principal_clear(&e->p);
            goto fail;
        }
        self->n += rc;
    }
    OPENSSL_cleanse(line, sizeof line);
    fclose(f);
    if (self->n == 0) {
        gp_err_set(err, GP_ERR_INVALID, "%s: no token in it", path);
        coord_auth_destroy(&self);
        return NULL;
    }
    return self;
fail:
    OPENSSL_cleanse(line, sizeof line);
    if (f)
        fclose(f);
    coord_auth_destroy(&self);
    return NULL;
}

const coord_principal_t *coord_auth_by_token(const coord_auth_t *self, const char *token)
{
    unsigned char h[32];
    s_sha256(token, h);
    const coord_principal_t *found = NULL;
    /* Every entry is compared, matched or not. */
    for (int i = 0; self && i < self->n; i++) {
        int same = CRYPTO_memcmp(h, self->entries[i].hash, sizeof h) == 0;
        if (same && !self->entries[i].is_cert && found == NULL)
            found = &self->entries[i].p;
    }
    return found;
}

const coord_principal_t *coord_auth_by_cert(const coord_auth_t *self, const char *cn)
{
    for (int i = 0; self && i < self->n; i++)
        if (self->entries[i].is_cert && !strcmp(self->entries[i].cn, cn))
            return &self->entries[i].p;
    return NULL;
}

int coord_principal_has_team(const coord_principal_t *p, const char *team)
{
    for (int i = 0; p && team && i < p->nteams; i++)
        if (!strcmp(p->teams[i], team))
            return 1;
    return 0;
}

/* ---------------------------------------------------------- request hooks */

static int s_forbid(coord_t *c, gp_http_req_t *req, const char *msg)
{
    gp_metric_inc(c->m.forbidden);
    gp_log_info("request forbidden principal=%s method=%s path=%s why=\"%s\"",
                c->caller ? c->caller->name : "-", gp_http_req_method(req), gp_http_req_path(req),
                msg);
    gp_http_respond_error(req, 403, "%s", msg);
    return -1;
}

static int s_unauthorized(coord_t *c, gp_http_req_t *req, const char *msg)
{
    gp_metric_inc(c->m.unauthorized);
    gp_http_respond_error(req, 401, "%s", msg);
    return -1;
}

int coord_auth_request(coord_t *c, gp_http_req_t *req)
{
    c->caller = NULL;
    const char *h = gp_http_req_header(req, "Authorization");
    const char *cn = NULL;
    gp_http_cert_t cert = gp_http_req_client_cert(req, &cn);
    if (cert == GP_HTTP_CERT_REFUSED) {
        char msg[400];
        snprintf(msg, sizeof msg, "client certificate refused: %s", cn);
        return s_unauthorized(c, req, msg);
    }
    if (h && !strncmp(h, "Bearer ", 7)) {
        c->caller = coord_auth_by_token(c->auth, h + 7);
        if (c->caller == NULL)
            return s_unauthorized(c, req, "API token refused (unknown or revoked)");
    } else if (cert == GP_HTTP_CERT_VERIFIED) {
        c->caller = coord_auth_by_cert(c->auth, cn);
        if (c->caller == NULL) {
            char msg[400];
            snprintf(msg, sizeof msg, "client certificate CN=%s is no principal of this pool", cn);
            return s_unauthorized(c, req, msg);
        }
    } else {
        return s_unauthorized(c, req, "missing or wrong API token (Authorization: Bearer ...)");
    }
    gp_http_req_set_principal(req, c->caller->name);

    /* What the roles allow, by method and path; what depends on the job
     * (its owner) is checked by the handlers. */
    const char *method = gp_http_req_method(req), *path = gp_http_req_path(req);
    unsigned roles = c->caller->roles;
    int reads = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (roles & COORD_ROLE_OPERATOR)
        return 0;
    char msg[400];
    const char *who = c->caller->name;
    if (!strcmp(path, "/v1/audit") || !strncmp(path, "/v1/audit/", 10)) {
        snprintf(msg, sizeof msg, "the audit log is for operators (%s is not one)", who);
        return s_forbid(c, req, msg);
    }
    if (reads)
        return 0;
    int job_write = !strcmp(path, "/v1/jobs") || !strncmp(path, "/v1/jobs/", 9);
    if (job_write && (roles & COORD_ROLE_SUBMITTER))
        return 0;
    if (!strncmp(path, "/v1/quotas", 10))
        snprintf(msg, sizeof msg, "changing quotas takes the operator role (%s is not one)", who);
    else if (job_write)
        snprintf(msg, sizeof msg, "%s may only read (submitting and changing jobs take the "
                                  "submitter or operator role)", who);
    else
        snprintf(msg, sizeof msg, "%s %s takes the operator role (%s is not one)", method, path,
                 who);
    return s_forbid(c, req, msg);
}

int coord_auth_owner(coord_t *c, char *owner, size_t size, int *status, char *msg, size_t msize)
{
    const coord_principal_t *p = c->caller;
    if (p == NULL || (p->roles & COORD_ROLE_OPERATOR))
        return 0;
    if (owner[0] == '\0') {
        if (p->nteams == 1) {
            gp_strlcpy(owner, p->teams[0], size);
            return 0;
        }
        *status = 400;
        snprintf(msg, msize, "owner: required (%s submits for several teams)", p->name);
        return -1;
    }
    if (!coord_principal_has_team(p, owner)) {
        *status = 403;
        snprintf(msg, msize, "owner: %s may not submit jobs for team %s", p->name, owner);
        return -1;
    }
    return 0;
}

int coord_auth_sees(const coord_t *c, const char *owner)
{
    return c->caller == NULL || (c->caller->roles & COORD_ROLE_OPERATOR) ||
           coord_principal_has_team(c->caller, owner);
}

int coord_auth_job(coord_t *c, gp_http_req_t *req, const char *id, const char *owner,
                   const char *what)
{
    if (coord_auth_sees(c, owner))
        return 0;
    char msg[400];
    snprintf(msg, sizeof msg, "%s may not %s job %s of team %s", c->caller->name, what, id,
             owner && *owner ? owner : "(none)");
    return s_forbid(c, req, msg);
}

void coord_auth_redact(const coord_t *c, json_t *record)
{
    const char *owner = json_string_value(json_object_get(record, "owner"));
    if (coord_auth_sees(c, owner))
        return;
    json_object_del(record, "command");
    json_object_del(record, "env");
    json_object_set_new(record, "redacted", json_true());
}
