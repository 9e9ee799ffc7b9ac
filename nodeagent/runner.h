/*
 * runner.h - start, watch, signal and adopt job processes on a node.
 *
 * Each job runs under its own small supervisor, so that the job outlives
 * the agent and its exit status is never lost:
 *
 *     agent ──fork──> supervisor (setsid; closes the agent's descriptors)
 *                        └──fork──> job (own process group; stdout/stderr to
 *                                   files; exec of the command or of the
 *                                   runner template through /bin/sh)
 *
 * The supervisor waits for the job and writes its exit status to the job's
 * state folder (<state-dir>/jobs/<job>/exit, written to a temporary file and
 * renamed, so that it is complete or absent) and exits.  The state folder
 * also holds `pid` ("<supervisor pid> <job pid> <job start time>"), `stdout`
 * and `stderr`.  Once the job's end is reported the folder moves to
 * <state-dir>/done/, where it is kept for the log retention time.
 *
 * Exactly once: gp_runner_start refuses a job whose state folder exists.
 * After an agent restart, gp_runner_adopt reads the folder: an exit file
 * means the job ended while the agent was away (its status is reported);
 * a live job process (pid and start time both match, so a recycled pid is
 * not mistaken for it) is adopted; otherwise the job is reported lost.
 *
 * The agent's loop calls gp_runner_poll() periodically (and on SIGCHLD) to
 * collect exits.  Stopping a job: gp_runner_signal(job, SIGTERM), then
 * SIGKILL after the grace period (gp_runner_stop does both, driven by poll).
 * Signals go to the job's process group, so a job that forks is stopped
 * whole.
 *
 * Containers.  A job started with gp_runner_start_container runs the same
 * way (its supervised process is the runtime's attached `run`, container.h)
 * and its folder also holds `container` (the container's name) and `env`
 * (the variables given to the container, mode 0600).  For such a job, stop
 * asks the runtime to stop the container (SIGKILL of the `run` process
 * after the grace and 10 s more, should the runtime not answer); forget
 * also removes the container; and adopt finds the container by name when
 * its supervisor is gone: still running, a new supervisor waits for it
 * (`<rt> wait`); ended, its exit status is the runtime's record of it.
 *
 * Jobs as unprivileged accounts.  gp_runner_start_as runs the job as the
 * given account: the supervisor stays the agent's (it writes `pid` and
 * `exit`), and the job's process, after it forked, sets its resource
 * limits, its supplementary groups, gid and uid (in that order, each
 * checked; getting root back must then fail), PR_SET_NO_NEW_PRIVS (no
 * setuid program or file capability can raise it again), closes every
 * descriptor but 0-2, and starts in its own working folder
 * <state-dir>/jobs/<job>/work, owned by the account, mode 0700, which is
 * also its HOME and TMPDIR.  The state folder and the job's folder are the
 * agent's, mode 0711 (a job reaches its own work folder by name, lists
 * nothing), and the job's logs, `pid` and `exit` are mode 0600: a job reads
 * neither another job's folder nor the agent's files.
 *
 * Ownership: the runner owns its job table; strings passed in are copied;
 * the container handle given to gp_runner_set_containers is borrowed and
 * must outlive the runner.
 */
#ifndef GP_RUNNER_H
#define GP_RUNNER_H

#include <stdint.h>
#include <sys/types.h>

#include "container.h"
#include "err.h"

typedef struct gp_runner gp_runner_t;

typedef enum {
    GP_RUN_RUNNING = 0,
    GP_RUN_EXITED,     /* exit_code valid */
    GP_RUN_KILLED,     /* term_signal valid */
    GP_RUN_LOST,       /* gone without a recorded status (e.g. supervisor killed) */
} gp_run_state_t;

typedef struct {
    char job[128];
    gp_run_state_t state;
    int exit_code;
    int term_signal;
    pid_t pid;         /* the job's process (and process group) */
    int stopping;      /* a stop was asked for */
} gp_run_status_t;

/* An account to run a job as (accounts.h builds it). */
#define GP_RUN_MAX_GROUPS 64
#define GP_RUN_MAX_RLIMITS 9
typedef struct {
    char name[64];
    uid_t uid;
    gid_t gid;
    gid_t groups[GP_RUN_MAX_GROUPS];
    int ngroups;
    struct {
        int resource;
        unsigned long long value;   /* RLIM_INFINITY for "unlimited" */
    } rlimits[GP_RUN_MAX_RLIMITS];
    int nrlimits;
} gp_run_user_t;

/* state_dir is created if missing.  runner_template may be NULL or "" (run
 * the command directly); otherwise it is a /bin/sh command line in which
 * {command} is replaced by the job's command, each argument shell-quoted,
 * {job} by the job id and {dir} by the job's state folder. */
gp_runner_t *gp_runner_new(const char *state_dir, const char *runner_template, gp_err_t *err);
/* Forget the table; the jobs keep running (they are adopted on restart). */
void gp_runner_destroy(gp_runner_t **self_p);

/* Start a job.  argv is the command (argv[0] searched in PATH); env is a
 * NULL-terminated list of "NAME=value" added to the agent's environment.
 * Fails with GP_ERR_CONFLICT when the job already has a state folder. */
int gp_runner_start(gp_runner_t *self, const char *job, char *const argv[], char *const env[],
                    gp_err_t *err);

/* gp_runner_start, as user (NULL: as the agent, the same as gp_runner_start). */
int gp_runner_start_as(gp_runner_t *self, const char *job, char *const argv[], char *const env[],
                       const gp_run_user_t *user, gp_err_t *err);

/* The container runtime for container jobs (borrowed; NULL: none). */
void gp_runner_set_containers(gp_runner_t *self, const gp_container_t *containers);

/* Start a job in a container: argv is the launch (gp_container_launch_argv),
 * run directly (never through the runner template); container names the
 * container; container_env (NULL-terminated "NAME=value") is written to
 * the folder's `env` file before the launch.  Exactly once, as
 * gp_runner_start. */
int gp_runner_start_container(gp_runner_t *self, const char *job, const char *container,
                              char *const argv[], char *const container_env[], gp_err_t *err);

/* After a restart: look for a job's state folder.  Returns 1 and fills st
 * (RUNNING: adopted; EXITED/KILLED/LOST: ended while the agent was away),
 * or 0 when the job was never started here. */
int gp_runner_adopt(gp_runner_t *self, const char *job, gp_run_status_t *st, gp_err_t *err);

/* The ids of jobs with a state folder (for adoption at start-up).  Calls
 * fn(job, arg) for each. */
int gp_runner_scan(gp_runner_t *self, void (*fn)(const char *job, void *arg), void *arg,
                   gp_err_t *err);

/* Collect ended jobs: calls fn once for each job that ended since the last
 * poll (it is then forgotten by the table; its folder stays until
 * gp_runner_forget), and sends SIGKILL to stopping jobs past their grace. */
void gp_runner_poll(gp_runner_t *self, void (*fn)(const gp_run_status_t *st, void *arg),
                    void *arg);

/* Signal the job's process group. */
int gp_runner_signal(gp_runner_t *self, const char *job, int sig, gp_err_t *err);
/* SIGTERM now, SIGKILL after grace_ms if it is still running. */
int gp_runner_stop(gp_runner_t *self, const char *job, int64_t grace_ms, gp_err_t *err);

/* Status of a job the table knows; -1 when unknown. */
int gp_runner_status(const gp_runner_t *self, const char *job, gp_run_status_t *st);
/* Jobs the table tracks (running or stopping). */
int gp_runner_count(const gp_runner_t *self);
/* Move an ended job's state folder, logs included, to <state-dir>/done/
 * (after its end has been reported): it no longer counts as this node's,
 * and its logs stay readable until gp_runner_prune removes them. */
int gp_runner_forget(gp_runner_t *self, const char *job, gp_err_t *err);
/* Remove folders in done/ older than max_age_s; returns how many. */
int gp_runner_prune(gp_runner_t *self, int64_t max_age_s);
/* The job's state folder (borrowed until the next call). */
const char *gp_runner_dir(gp_runner_t *self, const char *job);

#endif
