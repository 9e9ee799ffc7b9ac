/*
 * accounts.c - team -> Unix account, for jobs (accounts.h).
 */
#include "accounts.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#include "banned.h"

#define S_MAX_TEAMS 256

struct gp_accounts {
    struct {
        char team[128];
        char account[64];
    } map[S_MAX_TEAMS];
    int nmap;
    char fallback[64];
    char *root_teams;             /* ",a,b," */
    gp_run_user_t limits;         /* only the rlimits */
    int can_switch;               /* the agent is root */
};

static const struct {
    const char *name;
    int resource;
} s_rlimits[] = {
    { "as", RLIMIT_AS },       { "core", RLIMIT_CORE },       { "cpu", RLIMIT_CPU },
    { "data", RLIMIT_DATA },   { "fsize", RLIMIT_FSIZE },     { "memlock", RLIMIT_MEMLOCK },
    { "nofile", RLIMIT_NOFILE }, { "nproc", RLIMIT_NPROC },   { "stack", RLIMIT_STACK },
};

static int s_parse_rlimits(gp_accounts_t *self, const char *text, gp_err_t *err)
{
    char buf[1024];
    gp_strlcpy(buf, text, sizeof buf);
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (eq == NULL)
            return gp_err_set(err, GP_ERR_INVALID, "job-rlimits: expected NAME=VALUE, got \"%s\"",
                              item);
        *eq = '\0';
        size_t k;
        for (k = 0; k < GP_ARRAY_LEN(s_rlimits); k++)
            if (!strcmp(s_rlimits[k].name, item))
                break;
        if (k == GP_ARRAY_LEN(s_rlimits))
            return gp_err_set(err, GP_ERR_INVALID, "job-rlimits: unknown limit \"%s\"", item);
        int64_t v = 0;
        unsigned long long value;
        if (!strcmp(eq + 1, "unlimited"))
            value = (unsigned long long)RLIM_INFINITY;
        else if (gp_parse_int64(eq + 1, 0, INT64_MAX, &v) == 0)
            value = (unsigned long long)v;
        else
            return gp_err_set(err, GP_ERR_INVALID, "job-rlimits: %s: expected a number or "
                                                   "unlimited, got \"%s\"", item, eq + 1);
        if (self->limits.nrlimits == GP_RUN_MAX_RLIMITS)
            return gp_err_set(err, GP_ERR_INVALID, "job-rlimits: a limit given twice");
        self->limits.rlimits[self->limits.nrlimits].resource = s_rlimits[k].resource;
        self->limits.rlimits[self->limits.nrlimits].value = value;
        self->limits.nrlimits++;
    }
    return 0;
}

/* Resolve an account: a passwd name (with its groups) or uid[:gid]. */
static int s_resolve(const char *account, gp_run_user_t *out, gp_err_t *err)
{
    memset(out, 0, sizeof *out);
    gp_strlcpy(out->name, account, sizeof out->name);
    if (account[0] >= '0' && account[0] <= '9') {
        char *end;
        errno = 0;
        unsigned long uid = strtoul(account, &end, 10), gid = uid;
        if (*end == ':')
            gid = strtoul(end + 1, &end, 10);
        if (errno || *end || uid > 0x7fffffffUL || gid > 0x7fffffffUL)
            return gp_err_set(err, GP_ERR_INVALID, "account \"%s\": expected a name or uid[:gid]",
                              account);
        out->uid = (uid_t)uid;
        out->gid = (gid_t)gid;
        out->groups[0] = out->gid;
        out->ngroups = 1;
        return 0;
    }
    struct passwd pw, *res = NULL;
    char buf[16384];
    int rc = getpwnam_r(account, &pw, buf, sizeof buf, &res);
    if (res == NULL)
        return gp_err_set(err, GP_ERR_NOTFOUND, "account \"%s\" does not exist%s%s", account,
                          rc ? ": " : "", rc ? strerror(rc) : "");
    out->uid = pw.pw_uid;
    out->gid = pw.pw_gid;
    int n = GP_RUN_MAX_GROUPS;
    if (getgrouplist(account, pw.pw_gid, out->groups, &n) < 0) {
        /* More groups than we keep: the primary group only. */
        out->groups[0] = pw.pw_gid;
        n = 1;
    }
    out->ngroups = n;
    return 0;
}

static const char *s_account_of(const gp_accounts_t *self, const char *team)
{
    for (int i = 0; team && *team && i < self->nmap; i++)
        if (!strcmp(self->map[i].team, team))
            return self->map[i].account;
    return self->fallback;
}

static int s_root_allowed(const gp_accounts_t *self, const char *team)
{
    char needle[160];
    if (team == NULL || *team == '\0')
        return 0;
    snprintf(needle, sizeof needle, ",%s,", team);
    return strstr(self->root_teams, needle) != NULL;
}

gp_accounts_t *gp_accounts_new(const char *job_users, const char *job_user,
                               const char *root_teams, const char *rlimits, gp_err_t *err)
{
    gp_accounts_t *self = calloc(1, sizeof *self);
    size_t rl = strlen(root_teams ? root_teams : "");
    if (self == NULL || (self->root_teams = malloc(rl + 3)) == NULL) {
        free(self);
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    snprintf(self->root_teams, rl + 3, ",%s,", root_teams ? root_teams : "");
    for (char *p = self->root_teams; *p; p++)
        if (*p == ' ')
            *p = ',';
    self->can_switch = geteuid() == 0;
    gp_strlcpy(self->fallback, job_user && *job_user ? job_user : "nobody", sizeof self->fallback);
    char buf[8192];
    gp_strlcpy(buf, job_users ? job_users : "", sizeof buf);
    for (char *save = NULL, *item = strtok_r(buf, ", ", &save); item;
         item = strtok_r(NULL, ", ", &save)) {
        char *eq = strchr(item, '=');
        if (eq == NULL || eq == item || eq[1] == '\0' || strlen(eq + 1) >= 64 ||
            (size_t)(eq - item) >= sizeof self->map[0].team) {
            gp_err_set(err, GP_ERR_INVALID, "job-users: expected TEAM=ACCOUNT, got \"%s\"", item);
            goto fail;
        }
        if (self->nmap == S_MAX_TEAMS) {
            gp_err_set(err, GP_ERR_INVALID, "job-users: at most %d teams", S_MAX_TEAMS);
            goto fail;
        }
        *eq = '\0';
        gp_strlcpy(self->map[self->nmap].team, item, sizeof self->map[0].team);
        gp_strlcpy(self->map[self->nmap].account, eq + 1, sizeof self->map[0].account);
        self->nmap++;
    }
    if (s_parse_rlimits(self, rlimits ? rlimits : "", err) < 0)
        goto fail;
    /* Check every account now: a typo is a configuration error, not a
     * failed job later. */
    gp_run_user_t u;
    gp_err_t e;
    if (s_resolve(self->fallback, &u, &e) < 0) {
        gp_err_set(err, GP_ERR_INVALID, "job-user: %s", e.msg);
        goto fail;
    }
    if (u.uid == 0) {
        gp_err_set(err, GP_ERR_INVALID, "job-user: %s is root; jobs never run as root by default "
                                        "(map a team to it in job-users and list the team in "
                                        "job-root-teams)", self->fallback);
        goto fail;
    }
    for (int i = 0; i < self->nmap; i++) {
        if (s_resolve(self->map[i].account, &u, &e) < 0) {
            gp_err_set(err, GP_ERR_INVALID, "job-users: team %s: %s", self->map[i].team, e.msg);
            goto fail;
        }
        if (u.uid == 0 && !s_root_allowed(self, self->map[i].team)) {
            gp_err_set(err, GP_ERR_INVALID, "job-users: team %s maps to root (%s), which only "
                                            "teams in job-root-teams may", self->map[i].team,
                       self->map[i].account);
            goto fail;
        }
    }
    return self;
fail:
    gp_accounts_destroy(&self);
    return NULL;
}

void gp_accounts_destroy(gp_accounts_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    free((*self_p)->root_teams);
    free(*self_p);
    *self_p = NULL;
}

int gp_accounts_for(const gp_accounts_t *self, const char *team, gp_run_user_t *out, gp_err_t *err)
{
    if (!self->can_switch)
        return 0;
    const char *account = s_account_of(self, team);
    if (s_resolve(account, out, err) < 0)
        return -1;
    if (out->uid == 0 && !s_root_allowed(self, team))
        return gp_err_set(err, GP_ERR_AUTH, "team %s may not run jobs as root (job-root-teams)",
                          team && *team ? team : "(none)");
    out->nrlimits = self->limits.nrlimits;
    memcpy(out->rlimits, self->limits.rlimits, sizeof out->rlimits);
    return 1;
}
