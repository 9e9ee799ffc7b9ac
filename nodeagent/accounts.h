/*
 * accounts.h - the Unix account each job runs as (README "Security model").
 *
 * A job never runs with the agent's privileges.  The agent maps the job's
 * team (its owner) to an account:
 *
 *   job-users       "team-a=alice,team-b=1200:1200": a team's account, by
 *                   name (looked up in the passwd database, with its
 *                   supplementary groups) or as uid[:gid]
 *   job-user        the account of every other team and of jobs without an
 *                   owner (default "nobody")
 *   job-root-teams  teams allowed to run as root ("team-ops,team-infra").
 *                   An account of uid 0 is refused for any other team: a
 *                   mapping to root is a configuration error unless its team
 *                   is listed here, and the job is failed, never started as
 *                   root, should it be reached anyway.
 *   job-rlimits     resource limits set in every job before it starts,
 *                   "core=0,nofile=65536" (names: as, core, cpu, data,
 *                   fsize, memlock, nofile, nproc, stack; "unlimited")
 *
 * The agent resolves the account when it starts the job (a renamed or
 * removed account is seen then); the runner switches to it in the job's
 * process after everything that needs root (runner.h).  An agent that is
 * not root cannot switch: its jobs run as its own user, which it says once
 * at start.
 *
 * Ownership: gp_accounts_t owns its copies of the configuration.
 */
#ifndef GP_ACCOUNTS_H
#define GP_ACCOUNTS_H

#include "err.h"
#include "runner.h"

typedef struct gp_accounts gp_accounts_t;

/* Parse and check the options (every named account must exist; a mapping to
 * root needs its team in root_teams). */
gp_accounts_t *gp_accounts_new(const char *job_users, const char *job_user,
                               const char *root_teams, const char *rlimits, gp_err_t *err);
void gp_accounts_destroy(gp_accounts_t **self_p);

/* The account of team's jobs (team may be "" or NULL): 1 with *out filled,
 * 0 when the agent cannot switch users (not root: run as the agent), -1
 * with err when the account is missing or would be root for a team not
 * allowed it. */
int gp_accounts_for(const gp_accounts_t *self, const char *team, gp_run_user_t *out, gp_err_t *err);

#endif
