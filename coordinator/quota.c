/*
 * quota.c - per-team limits.
 *
 * A team is a job's `owner`.  Its quota is P quotas/<team>:
 * {"gpus": 4.5, "mem_mib": 65536, "compute_percent": 300} (each optional;
 * a missing one is no limit), set through PUT /v1/quotas/<team> or
 * `gpupool quota set`.  What a team uses is what its allocations hold,
 * committed or held by the round in progress: GPUs as GPU shares (a whole
 * device is 1; a slice the larger of its memory and compute shares), GPU
 * memory in MiB, compute in percent of a GPU (a whole device is 100).
 * Before a job is offered for bids, the leader adds its plan to its team's
 * usage; a job that would pass any limit is not placed and waits with a
 * reason naming the limit, and is retried as the team's jobs end.
 *
 * The same record holds the team's disruption budgets, which drains respect
 * (drain.c): "disruption_budget": N (at most N of the team's jobs being
 * stopped at once) and "gang_disruption_budget": N (at most N members of
 * each of its gangs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "keys.h"
#include "log.h"
#include "util.h"

#include "banned.h"

typedef struct {
    int64_t milli, mem_mib, compute_pct;
} s_use_t;

struct coord_usage {
    gp_strmap_t *teams;   /* team -> s_use_t* */
};

static s_use_t *s_team(coord_usage_t *u, const char *team)
{
    s_use_t *t = gp_strmap_get(u->teams, team);
    if (t == NULL && (t = calloc(1, sizeof *t)) != NULL)
        gp_strmap_put(u->teams, team, t);
    return t;
}

static void s_charge(coord_t *c, coord_usage_t *u, const char *team, const gp_alloc_t *al)
{
    s_use_t *t = team && *team ? s_team(u, team) : NULL;
    if (t == NULL)
        return;
    int64_t mem = 0, cpt = 0;
    t->milli += coord_alloc_milli(c, al, &mem, &cpt, NULL);
    t->mem_mib += mem;
    t->compute_pct += cpt;
}

typedef struct {
    coord_t *c;
    coord_usage_t *u;
} s_usage_arg_t;

/* Charge a committed or held allocation to its job's team. */
static void s_charge_plan(const gp_alloc_t *al, void *arg)
{
    s_usage_arg_t *a = arg;
    coord_job_t *j = coord_cache_job(a->c, al->job);
    if (j)
        s_charge(a->c, a->u, j->owner, al);
}

coord_usage_t *coord_quota_usage(coord_t *c)
{
    coord_usage_t *u = calloc(1, sizeof *u);
    if (u == NULL || (u->teams = gp_strmap_new()) == NULL) {
        free(u);
        return NULL;
    }
    if (coord_cache_count(c, COORD_QUOTAS) == 0)
        return u;   /* nothing to check: skip the accounting */
    s_usage_arg_t arg = { c, u };
    coord_cache_each_plan(c, s_charge_plan, &arg);
    return u;
}

void coord_quota_usage_free(coord_usage_t **u_p)
{
    if (u_p == NULL || *u_p == NULL)
        return;
    for (gp_strmap_iter_t it = gp_strmap_first((*u_p)->teams); it.key;
         it = gp_strmap_next((*u_p)->teams, it))
        free(it.value);
    gp_strmap_destroy(&(*u_p)->teams);
    free(*u_p);
    *u_p = NULL;
}

int coord_quota_exceeded(coord_t *c, coord_usage_t *u, const char *team, const gp_alloc_t *plan,
                         char *why, size_t wsize)
{
    const coord_quota_t *q = team && *team ? coord_cache_quota(c, team) : NULL;
    if (q == NULL || u == NULL)
        return 0;
    s_use_t *t = s_team(u, team);
    if (t == NULL)
        return 0;
    int64_t mem = 0, cpt = 0;
    int64_t milli = coord_alloc_milli(c, plan, &mem, &cpt, NULL);
    if (q->gpus >= 0 && (double)(t->milli + milli) > q->gpus * 1000.0 + 0.5) {
        snprintf(why, wsize, "over the quota of team %.60s: GPUs %.2f in use + %.2f > %.2f", team,
                 (double)t->milli / 1000.0, (double)milli / 1000.0, q->gpus);
        return 1;
    }
    if (q->mem_mib >= 0 && t->mem_mib + mem > q->mem_mib) {
        snprintf(why, wsize, "over the quota of team %.60s: GPU memory %lld MiB in use + %lld > %lld",
                 team, (long long)t->mem_mib, (long long)mem, (long long)q->mem_mib);
        return 1;
    }
    if (q->compute_percent >= 0 && t->compute_pct + cpt > q->compute_percent) {
        snprintf(why, wsize, "over the quota of team %.60s: compute %lld%% in use + %lld%% > %lld%%",
                 team, (long long)t->compute_pct, (long long)cpt, (long long)q->compute_percent);
        return 1;
    }
    return 0;
}

void coord_quota_charge(coord_t *c, coord_usage_t *u, const char *team, const gp_alloc_t *plan)
{
    if (u && team && *team && coord_cache_quota(c, team))
        s_charge(c, u, team, plan);
}

void coord_quota_http(coord_t *c, gp_http_req_t *req, const char *team)
{
    const char *method = gp_http_req_method(req);
    gp_err_t err;
    if (team == NULL) {
        if (strcmp(method, "GET") != 0) {
            gp_http_respond_error(req, 405, "%s not allowed on /v1/quotas", method);
            return;
        }
        coord_usage_t *u = coord_quota_usage(c);
        json_t *out = json_array();
        for (coord_cache_iter_t it = coord_cache_first(c, COORD_QUOTAS); it.key;
             it = coord_cache_next(c, it)) {
            const coord_quota_t *q = it.value;
            s_use_t *t = u ? s_team(u, it.key) : NULL;
            json_t *o = json_pack("{s:s,s:{s:f,s:I,s:I}}", "team", it.key, "used", "gpus",
                                  t ? (double)t->milli / 1000.0 : 0.0, "mem_mib",
                                  (json_int_t)(t ? t->mem_mib : 0), "compute_percent",
                                  (json_int_t)(t ? t->compute_pct : 0));
            if (q->gpus >= 0)
                json_object_set_new(o, "gpus", json_real(q->gpus));
            if (q->mem_mib >= 0)
                json_object_set_new(o, "mem_mib", json_integer(q->mem_mib));
            if (q->compute_percent >= 0)
                json_object_set_new(o, "compute_percent", json_integer(q->compute_percent));
            if (q->disruption_budget > 0)
                json_object_set_new(o, "disruption_budget", json_integer(q->disruption_budget));
            if (q->gang_disruption_budget > 0)
                json_object_set_new(o, "gang_disruption_budget",
                                    json_integer(q->gang_disruption_budget));
            json_array_append_new(out, o);
        }
        coord_quota_usage_free(&u);
        coord_respond_json(req, 200, json_pack("{s:o}", "quotas", out));
        return;
    }
    if (!gp_name_valid(team)) {
        gp_http_respond_error(req, 400, "bad team name \"%s\"", team);
        return;
    }
    char key[GP_KEY_MAX];
    snprintf(key, sizeof key, "%squotas/%s", c->cfg.prefix, team);
    if (!strcmp(method, "DELETE")) {
        int64_t deleted = 0;
        if (gp_etcd_delete(c->etcd, key, 0, &deleted, &err) < 0)
            gp_http_respond_error(req, 503, "etcd: %s", err.msg);
        else if (deleted == 0)
            gp_http_respond_error(req, 404, "no quota for team %s", team);
        else
            coord_respond_json(req, 200, json_pack("{s:s,s:b}", "team", team, "deleted", 1));
        return;
    }
    if (strcmp(method, "PUT") != 0) {
        gp_http_respond_error(req, 405, "%s not allowed on a quota", method);
        return;
    }
    size_t len;
    const char *body = gp_http_req_body(req, &len);
    json_error_t jerr;
    json_t *q = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (q == NULL || !json_is_object(q) || json_object_size(q) == 0) {
        json_decref(q);
        gp_http_respond_error(req, 400, "expected {\"gpus\": N, \"mem_mib\": N, \"compute_percent\": N}");
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(q, k, v) {
        int budget = !strcmp(k, "disruption_budget") || !strcmp(k, "gang_disruption_budget");
        int good = (!strcmp(k, "gpus") && json_is_number(v) && json_number_value(v) >= 0) ||
                   ((!strcmp(k, "mem_mib") || !strcmp(k, "compute_percent")) &&
                    json_is_integer(v) && json_integer_value(v) >= 0) ||
                   (budget && json_is_integer(v) && json_integer_value(v) >= 1);
        if (!good) {
            gp_http_respond_error(req, 400, "%s: %s", k,
                                  budget ? "expected an integer >= 1"
                                  : !strcmp(k, "gpus") || !strcmp(k, "mem_mib") ||
                                          !strcmp(k, "compute_percent")
                                      ? "expected a number >= 0 (mem_mib and compute_percent: integers)"
                                      : "unknown field (gpus, mem_mib, compute_percent, "
                                        "disruption_budget, gang_disruption_budget)");
            json_decref(q);
            return;
        }
    }
    char *text = json_dumps(q, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL || gp_etcd_put(c->etcd, key, text, strlen(text), 0, NULL, &err) < 0) {
        gp_http_respond_error(req, 503, "etcd: %s", text ? err.msg : "out of memory");
    } else {
        json_object_set_new(q, "team", json_string(team));
        gp_log_info("quota set team=%s quota=%s", team, text);
        coord_respond_json(req, 200, json_incref(q));
    }
    free(text);
    json_decref(q);
}
