/* The runner: jobs start once, in their own process group, with their
 * environment and log files; exits, stops and kills are reported; a new
 * runner on the same state folder (an agent restart) adopts what runs and
 * reports what ended meanwhile. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "tap.h"
#include "util.h"

static gp_run_status_t s_last;
static int s_ended;

static void s_on_end(const gp_run_status_t *st, void *arg)
{
    (void)arg;
    s_last = *st;
    s_ended++;
}

/* Poll until a job ends or 10 s pass. */
static int s_wait_end(gp_runner_t *r)
{
    s_ended = 0;
    for (int i = 0; i < 1000 && !s_ended; i++) {
        gp_runner_poll(r, s_on_end, NULL);
        if (!s_ended)
            usleep(10000);
    }
    return s_ended;
}

/* Poll until COND holds or 10 s pass; 1 when it holds. */
#define S_WAIT(cond) ({ int ok_ = 0;                        \
        for (int i_ = 0; i_ < 1000 && !(ok_ = (cond)); i_++) \
            usleep(10000);                                  \
        ok_; })

static char *s_slurp(const char *dir, const char *name)
{
    static char buf[4096];
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    buf[0] = '\0';
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    return buf;
}

int main(void)
{
    char dir[] = "/tmp/gpupool-test-runner.XXXXXX";
    if (mkdtemp(dir) == NULL)
        bail_out("mkdtemp");
    gp_err_t err;
    gp_runner_t *r = gp_runner_new(dir, NULL, &err);
    gp_run_status_t st;
    ok(r != NULL, "a runner opens its state folder");

    char *a1[] = { "sh", "-c", "echo out $SLICE; echo err >&2; exit 3", NULL };
    char *e1[] = { "SLICE=s-1", NULL };
    is_int(gp_runner_start(r, "job-1", a1, e1, &err), 0, "a job starts");
    is_int(gp_runner_start(r, "job-1", a1, e1, &err), -1, "the same job does not start twice");
    is_int(err.code, GP_ERR_CONFLICT, "... it is a conflict");
    ok(s_wait_end(r), "its end is reported");
    is_str(s_last.job, "job-1", "for the right job");
    is_int(s_last.state, GP_RUN_EXITED, "as an exit");
    is_int(s_last.exit_code, 3, "with its exit code");
    is_str(s_slurp(gp_runner_dir(r, "job-1"), "stdout"), "out s-1\n",
           "stdout is captured, with the slice environment");
    is_str(s_slurp(gp_runner_dir(r, "job-1"), "stderr"), "err\n", "stderr is captured");
    is_int(gp_runner_forget(r, "job-1", &err), 0, "an ended job is forgotten");
    char done[200];
    snprintf(done, sizeof done, "%s/done/job-1", dir);
    is_str(s_slurp(done, "stdout"), "out s-1\n", "its logs are kept in done/");
    /* A store restored from a backup can hand the same allocation back:
     * within the log retention it is known to have ended, not started again. */
    is_int(gp_runner_adopt(r, "job-1", &st, &err), 1, "an ended job is still found in done/");
    is_int(st.state, GP_RUN_EXITED, "...as ended");
    is_int(st.exit_code, 3, "...with its exit code");
    is_int(gp_runner_forget(r, "job-1", &err), 0, "forgetting it again succeeds");
    is_str(s_slurp(done, "stdout"), "out s-1\n", "...and keeps its logs");
    is_int(gp_runner_prune(r, 3600), 0, "prune keeps recent logs");
    is_int(gp_runner_prune(r, -1), 1, "and removes old ones");
    is_int(gp_runner_adopt(r, "job-1", &st, &err), 0, "then it is no longer this node's job");
    is_int(gp_runner_start(r, "../x", a1, NULL, &err), -1, "a job id cannot name another folder");

    /* Stop: SIGTERM to the whole group, SIGKILL after the grace period. */
    char *a2[] = { "sh", "-c", "sleep 100 & sleep 100", NULL };
    gp_runner_start(r, "job-2", a2, NULL, &err);
    ok(gp_runner_status(r, "job-2", &st) == 0 && st.state == GP_RUN_RUNNING, "job-2 runs");
    pid_t pgid = st.pid;
    gp_runner_stop(r, "job-2", 5000, &err);
    s_wait_end(r);
    ok(s_ended && s_last.state == GP_RUN_KILLED && s_last.term_signal == SIGTERM,
       "a stopped job ends by SIGTERM (state %d signal %d)", s_last.state, s_last.term_signal);
    ok(S_WAIT(kill(-pgid, 0) < 0), "its forked children are gone too");

    /* The job says when its trap is installed. */
    char ready3[300], cmd3[400];
    snprintf(ready3, sizeof ready3, "%s/job-3.ready", dir);
    snprintf(cmd3, sizeof cmd3, "trap '' TERM; : > %s; while :; do sleep 0.05; done", ready3);
    char *a3[] = { "sh", "-c", cmd3, NULL };
    gp_runner_start(r, "job-3", a3, NULL, &err);
    ok(S_WAIT(access(ready3, F_OK) == 0), "job-3 ignores SIGTERM");
    gp_runner_stop(r, "job-3", 200, &err);
    s_wait_end(r);
    ok(s_ended && s_last.state == GP_RUN_KILLED && s_last.term_signal == SIGKILL,
       "a job that ignores SIGTERM is killed after the grace (signal %d)", s_last.term_signal);

    /* Restart: a new runner on the same folder. */
    char *a4[] = { "sleep", "100", NULL };
    /* job-5 ends when told to, after its agent went away. */
    char end5[300], cmd5[400], exit5[600];
    snprintf(end5, sizeof end5, "%s/job-5.end", dir);
    snprintf(cmd5, sizeof cmd5, "while [ ! -e %s ]; do sleep 0.02; done; exit 7", end5);
    char *a5[] = { "sh", "-c", cmd5, NULL };
    gp_runner_start(r, "job-4", a4, NULL, &err);
    gp_runner_start(r, "job-5", a5, NULL, &err);
    snprintf(exit5, sizeof exit5, "%s/exit", gp_runner_dir(r, "job-5"));
    gp_runner_status(r, "job-4", &st);
    pid_t job4 = st.pid;
    gp_runner_destroy(&r);   /* the agent goes away; jobs keep running */
    FILE *f5 = fopen(end5, "w");
    if (f5)
        fclose(f5);
    ok(S_WAIT(access(exit5, F_OK) == 0), "job-5 ends while no agent runs (its exit is recorded)");
    ok(kill(job4, 0) == 0, "a job outlives its agent");
    r = gp_runner_new(dir, NULL, &err);
    is_int(gp_runner_adopt(r, "job-4", &st, &err), 1, "job-4 is found after the restart");
    ok(st.state == GP_RUN_RUNNING && st.pid == job4, "and adopted, not started again");
    is_int(gp_runner_start(r, "job-4", a4, NULL, &err), -1, "starting it again is refused");
    is_int(gp_runner_adopt(r, "job-5", &st, &err), 1, "job-5 is found after the restart");
    ok(st.state == GP_RUN_EXITED && st.exit_code == 7, "its exit while the agent was away is known");
    is_int(gp_runner_adopt(r, "job-9", &st, &err), 0, "a job never started here is not found");
    gp_runner_stop(r, "job-4", 2000, &err);
    ok(s_wait_end(r) && s_last.state == GP_RUN_KILLED, "an adopted job can be stopped");

    /* A runner template (a container runtime, a cluster launcher). */
    gp_runner_destroy(&r);
    r = gp_runner_new(dir, "echo runner {job}: {command}", &err);
    char *a6[] = { "printf", "%s", "it's quoted", NULL };
    gp_runner_start(r, "job-6", a6, NULL, &err);
    s_wait_end(r);
    is_str(s_slurp(gp_runner_dir(r, "job-6"), "stdout"), "runner job-6: printf %s it's quoted\n",
           "the template gets the command, each argument quoted");
    char *a7[] = { "/nonexistent/program", NULL };
    gp_runner_destroy(&r);
    r = gp_runner_new(dir, NULL, &err);
    gp_runner_start(r, "job-7", a7, NULL, &err);
    ok(s_wait_end(r) && s_last.state == GP_RUN_EXITED && s_last.exit_code == 127,
       "a missing program exits 127");
    ok(strstr(s_slurp(gp_runner_dir(r, "job-7"), "stderr"), "cannot run") != NULL,
       "and says why in its stderr");
    gp_runner_destroy(&r);

    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        diag("cannot remove %s", dir);
    return done_testing();
}
