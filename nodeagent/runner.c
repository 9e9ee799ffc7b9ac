#include "runner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#include "banned.h"

extern char **environ;

typedef struct {
    gp_run_status_t st;
    pid_t supervisor;
    unsigned long long start_time;   /* the job's, from /proc/<pid>/stat */
    int64_t kill_at_ms;              /* SIGKILL deadline while stopping; 0 = none */
    char container[192];             /* the container's name; "" for a host job */
} s_job_t;

/* Time the container runtime gets beyond the grace to stop a container. */
#define S_CONTAINER_STOP_SLACK_MS 10000
/* Deadline of a synchronous runtime query (adoption by name). */
#define S_CONTAINER_QUERY_MS 10000

struct gp_runner {
    char *state_dir;
    char *template;
    const gp_container_t *containers;
    s_job_t *jobs;
    int njobs, cap;
    char dirbuf[4096];
};

/* Job ids name folders: letters, digits, '.', '_', '-', not starting with '.'. */
static int s_valid_id(const char *job)
{
    size_t n = strlen(job);
    if (n == 0 || n >= sizeof(((gp_run_status_t *)0)->job) || job[0] == '.')
        return 0;
    for (const char *p = job; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

const char *gp_runner_dir(gp_runner_t *self, const char *job)
{
    snprintf(self->dirbuf, sizeof self->dirbuf, "%s/jobs/%s", self->state_dir, job);
    return self->dirbuf;
}

static int s_mkdirs(const char *path)
{
    char buf[4096];
    gp_strlcpy(buf, path, sizeof buf);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

gp_runner_t *gp_runner_new(const char *state_dir, const char *runner_template, gp_err_t *err)
{
    gp_runner_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    self->state_dir = strdup(state_dir);
    self->template = runner_template && *runner_template ? strdup(runner_template) : NULL;
    char jobs[4096];
    snprintf(jobs, sizeof jobs, "%s/jobs", state_dir);
    if (self->state_dir == NULL || (runner_template && *runner_template && !self->template)) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        gp_runner_destroy(&self);
        return NULL;
    }
    /* Jobs reach their own work folders through these by name; they list
     * nothing and read nothing of the agent's. */
    if (s_mkdirs(jobs) < 0 || chmod(state_dir, 0711) < 0 || chmod(jobs, 0711) < 0) {
        gp_err_errno(err, "cannot create state folder %s", jobs);
        gp_runner_destroy(&self);
        return NULL;
    }
    return self;
}

void gp_runner_destroy(gp_runner_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    free((*self_p)->state_dir);
    free((*self_p)->template);
    free((*self_p)->jobs);
    free(*self_p);
    *self_p = NULL;
}

static s_job_t *s_find(const gp_runner_t *self, const char *job)
{
    for (int i = 0; i < self->njobs; i++)
        if (strcmp(self->jobs[i].st.job, job) == 0)
            return &self->jobs[i];
    return NULL;
}

static s_job_t *s_add(gp_runner_t *self, const char *job)
{
    if (self->njobs == self->cap) {
        int cap = self->cap ? self->cap * 2 : 16;
        s_job_t *p = realloc(self->jobs, sizeof *p * (size_t)cap);
        if (p == NULL)
            return NULL;
        self->jobs = p;
        self->cap = cap;
    }
    s_job_t *j = &self->jobs[self->njobs++];
    memset(j, 0, sizeof *j);
    gp_strlcpy(j->st.job, job, sizeof j->st.job);
    return j;
}

static unsigned long long s_start_time(pid_t pid)
{
    uint64_t t;
    return gp_proc_stat((int)pid, &t, NULL) == 0 ? t : 0;
}

/* The process is the one started (same start time) and not a zombie. */
static int s_alive(pid_t pid, unsigned long long start_time)
{
    uint64_t t;
    char state;
    return pid > 0 && gp_proc_stat((int)pid, &t, &state) == 0 && t == start_time && state != 'Z';
}

static int s_write_atomic(const char *dir, const char *name, const char *text)
{
    char tmp[4200], path[4200];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Append s to the buffer, single-quoted for /bin/sh. */
static int s_shell_quote(FILE *out, const char *s)
{
    fputc('\'', out);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", out);
        else
            fputc(*s, out);
    }
    return fputc('\'', out) == EOF ? -1 : 0;
}

/* Expand the runner template: {command}, {job}, {dir}. */
static char *s_expand(const char *tmpl, char *const argv[], const char *job, const char *dir)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (out == NULL)
        return NULL;
    for (const char *p = tmpl; *p;) {
        if (!strncmp(p, "{command}", 9)) {
            for (int i = 0; argv[i]; i++) {
                if (i)
                    fputc(' ', out);
                s_shell_quote(out, argv[i]);
            }
            p += 9;
        } else if (!strncmp(p, "{job}", 5)) {
            s_shell_quote(out, job);
            p += 5;
        } else if (!strncmp(p, "{dir}", 5)) {
            s_shell_quote(out, dir);
            p += 5;
        } else {
            fputc(*p++, out);
        }
    }
    if (fclose(out) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* The environment of the job: the agent's, with env's entries replacing
 * variables of the same name. */
static char **s_build_env(char *const env[])
{
    size_t n = 0, extra = 0;
    while (environ && environ[n])
        n++;
    while (env && env[extra])
        extra++;
    char **out = calloc(n + extra + 1, sizeof *out);
    if (out == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int replaced = 0;
        for (size_t j = 0; j < extra && !replaced; j++)
            replaced = !strncmp(env[j], environ[i], nl) && env[j][nl] == '=';
        /* systemd's socket is the agent's, not its jobs'. */
        if (!replaced && strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0)
            out[k++] = environ[i];
    }
    for (size_t j = 0; j < extra; j++)
        out[k++] = env[j];
    out[k] = NULL;
    return out;
}

/* The supervisor: runs in the forked child, never returns. */
/* In the job's process, before exec: become user (see runner.h).  Returns
 * only on success; on failure it says why on stderr (the job's log) and
 * exits 126. */
static void s_become(const gp_run_user_t *user, const char *workdir)
{
    const char *what = "chdir";
    if (chdir(workdir) < 0)
        goto fail;
    what = "setrlimit";
    for (int i = 0; i < user->nrlimits; i++) {
        struct rlimit rl = { (rlim_t)user->rlimits[i].value, (rlim_t)user->rlimits[i].value };
        if (setrlimit(user->rlimits[i].resource, &rl) < 0)
            goto fail;
    }
    what = "setgroups";
    if (setgroups((size_t)user->ngroups, user->groups) < 0)
        goto fail;
    what = "setgid";
    if (setresgid(user->gid, user->gid, user->gid) < 0)
        goto fail;
    what = "setuid";
    if (setresuid(user->uid, user->uid, user->uid) < 0)
        goto fail;
    what = "root could be regained";
    if (user->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
        goto fail;
    return;
fail:
    dprintf(2, "gpupool: cannot start the job as %s (uid %u): %s: %s\n", user->name,
            (unsigned)user->uid, what, strerror(errno));
    _exit(126);
}

static void s_supervise(const char *dir, int report_fd, int out_fd, int err_fd, char *const argv[],
                        const char *shell_cmd, char **envp, const gp_run_user_t *user)
{
    setsid();
    /* Orphans of the job become ours, so that we can reap them (below). */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    for (int s = 1; s < 32; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* A job signalled before it read its "go" byte closes the pipe's read
     * end: the supervisor's write must fail with EPIPE, not kill it. */
    signal(SIGPIPE, SIG_IGN);
    /* Close everything of the agent's but what the job needs. */
    for (int fd = 3; fd < 1024; fd++)
        if (fd != report_fd && fd != out_fd && fd != err_fd)
            close(fd);

    int go[2];
    if (pipe(go) < 0)
        _exit(120);
    pid_t job = fork();
    if (job < 0)
        _exit(121);
    if (job == 0) {
        signal(SIGPIPE, SIG_DFL);
        setpgid(0, 0);
        close(go[1]);
        char c;
        /* Wait until the supervisor has recorded our pid: a job that runs
         * always has a pid file, which is what makes adoption exact. */
        if (read(go[0], &c, 1) != 1)
            _exit(122);
        close(go[0]);
        close(report_fd);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        if (devnull > 2)
            close(devnull);
        close(out_fd);
        close(err_fd);
        if (user) {
            char work[4200];
            snprintf(work, sizeof work, "%s/work", dir);
            s_become(user, work);
        }
        /* No setuid program or file capability raises the job again, and
         * it inherits nothing of the agent's but its three streams. */
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        if (shell_cmd) {
            char *sh[] = { "/bin/sh", "-c", (char *)shell_cmd, NULL };
            execve("/bin/sh", sh, envp);
        } else {
            environ = envp;
            execvp(argv[0], argv);
        }
        dprintf(2, "gpupool: cannot run %s: %s\n", shell_cmd ? "/bin/sh" : argv[0],
                strerror(errno));
        _exit(127);
    }
    setpgid(job, job);
    close(go[0]);
    char text[128];
    snprintf(text, sizeof text, "%d %d %llu\n", (int)getpid(), (int)job, s_start_time(job));
    int ok = s_write_atomic(dir, "pid", text) == 0;
    ssize_t w = write(report_fd, &job, sizeof job);
    (void)w;
    close(report_fd);
    if (!ok) {
        kill(job, SIGKILL);
        _exit(123);
    }
    w = write(go[1], "g", 1);
    close(go[1]);
    close(out_fd);
    close(err_fd);

    int status = 0;
    while (waitpid(job, &status, 0) < 0 && errno == EINTR)
        ;
    /* The job is its main process: what it leaves behind in its process
     * group is killed and reaped (for at most a second) before the end is
     * recorded, so that an ended job holds no GPU memory. */
    kill(-job, SIGKILL);
    for (int i = 0; i < 100; i++) {
        pid_t r = waitpid(-1, NULL, WNOHANG);
        if (r < 0 && errno == ECHILD)
            break;
        if (r <= 0)
            usleep(10000);
    }
    if (WIFEXITED(status))
        snprintf(text, sizeof text, "exit %d\n", WEXITSTATUS(status));
    else
        snprintf(text, sizeof text, "signal %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    s_write_atomic(dir, "exit", text);
    _exit(0);
}

/* Start argv (through the template when use_template) under a new
 * supervisor in the job's existing folder dir; the job enters the table. */
static s_job_t *s_launch(gp_runner_t *self, const char *job, const char *dir, char *const argv[],
                         char *const env[], int use_template, const gp_run_user_t *user,
                         gp_err_t *err)
{
    s_job_t *added = NULL;
    int rc = -1, out_fd = -1, err_fd = -1, rep[2] = { -1, -1 };
    char **envp = NULL, *shell_cmd = NULL, **env2 = NULL;
    size_t env2_own = 0;       /* env2[env2_own...] are ours to free */
    char path[4200];
    if (user) {
        /* The job's own folder, the only place of the node it owns. */
        snprintf(path, sizeof path, "%s/work", dir);
        if ((mkdir(path, 0700) < 0 && errno != EEXIST) || chown(path, user->uid, user->gid) < 0 ||
            chmod(path, 0700) < 0) {
            gp_err_errno(err, "cannot make the work folder of job %s", job);
            goto cleanup;
        }
        size_t n = 0;
        while (env && env[n])
            n++;
        env2 = calloc(n + 5, sizeof *env2);
        if (env2 == NULL) {
            gp_err_set(err, GP_ERR_NOMEM, "out of memory");
            goto cleanup;
        }
        /* The account's variables, unless the job's own env sets them (the
         * first of two equal names wins: the job's come first). */
        for (size_t i = 0; i < n; i++)
            env2[i] = env[i];
        static const char *const names[] = { "HOME", "TMPDIR", "USER", "LOGNAME" };
        const char *values[] = { path, path, user->name, user->name };
        size_t k = n;
        for (size_t v = 0; v < 4; v++) {
            size_t nl = strlen(names[v]);
            int set = 0;
            for (size_t i = 0; i < n && !set; i++)
                set = !strncmp(env[i], names[v], nl) && env[i][nl] == '=';
            if (!set && asprintf(&env2[k], "%s=%s", names[v], values[v]) >= 0)
                k++;
        }
        env2_own = n;
        env = env2;
    }
    snprintf(path, sizeof path, "%s/stdout", dir);
    out_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    snprintf(path, sizeof path, "%s/stderr", dir);
    err_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (out_fd < 0 || err_fd < 0) {
        gp_err_errno(err, "cannot create the log files of job %s", job);
        goto cleanup;
    }
    /* The log fds must survive exec: clear CLOEXEC (they are dup2'ed anyway). */
    if (pipe2(rep, O_CLOEXEC) < 0) {
        gp_err_errno(err, "pipe");
        goto cleanup;
    }
    envp = s_build_env(env);
    if (use_template) {
        char *const empty[] = { NULL };
        shell_cmd = s_expand(self->template, argv ? argv : empty, job, dir);
    }
    if (envp == NULL || (use_template && shell_cmd == NULL)) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    pid_t sup = fork();
    if (sup < 0) {
        gp_err_errno(err, "fork");
        goto cleanup;
    }
    if (sup == 0) {
        close(rep[0]);
        s_supervise(dir, rep[1], out_fd, err_fd, argv, shell_cmd, envp, user);
    }
    close(rep[1]);
    rep[1] = -1;
    pid_t jobpid = 0;
    ssize_t n;
    while ((n = read(rep[0], &jobpid, sizeof jobpid)) < 0 && errno == EINTR)
        ;
    if (n != (ssize_t)sizeof jobpid) {
        gp_err_set(err, GP_ERR_IO, "the supervisor of job %s failed to start it", job);
        waitpid(sup, NULL, 0);
        goto cleanup;
    }
    s_job_t *j = s_add(self, job);
    if (j == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;   /* the job runs; it will be adopted after a restart */
    }
    j->st.state = GP_RUN_RUNNING;
    j->st.pid = jobpid;
    j->supervisor = sup;
    j->start_time = s_start_time(jobpid);
    added = j;
    rc = 0;

cleanup:
    if (out_fd >= 0)
        close(out_fd);
    if (err_fd >= 0)
        close(err_fd);
    if (rep[0] >= 0)
        close(rep[0]);
    if (rep[1] >= 0)
        close(rep[1]);
    free(envp);
    free(shell_cmd);
    if (env2) {
        for (size_t i = env2_own; env2[i]; i++)
            free(env2[i]);
        free(env2);
    }
    return rc == 0 ? added : NULL;
}

/* Create the job's folder; it must not exist (exactly once). */
static int s_new_folder(gp_runner_t *self, const char *job, char *dir, size_t size, gp_err_t *err)
{
    if (!s_valid_id(job))
        return gp_err_set(err, GP_ERR_INVALID, "bad job id \"%s\"", job);
    gp_strlcpy(dir, gp_runner_dir(self, job), size);
    if (mkdir(dir, 0711) < 0) {
        if (errno == EEXIST)
            return gp_err_set(err, GP_ERR_CONFLICT, "job %s was already started here", job);
        return gp_err_errno(err, "cannot create %s", dir);
    }
    return chmod(dir, 0711) < 0 ? gp_err_errno(err, "cannot chmod %s", dir) : 0;
}

int gp_runner_start_as(gp_runner_t *self, const char *job, char *const argv[], char *const env[],
                       const gp_run_user_t *user, gp_err_t *err)
{
    if (!self->template && (argv == NULL || argv[0] == NULL))
        return gp_err_set(err, GP_ERR_INVALID, "job %s has no command", job);
    char dir[4096];
    if (s_new_folder(self, job, dir, sizeof dir, err) < 0)
        return -1;
    return s_launch(self, job, dir, argv, env, self->template != NULL, user, err) ? 0 : -1;
}

int gp_runner_start(gp_runner_t *self, const char *job, char *const argv[], char *const env[],
                    gp_err_t *err)
{
    return gp_runner_start_as(self, job, argv, env, NULL, err);
}

void gp_runner_set_containers(gp_runner_t *self, const gp_container_t *containers)
{
    self->containers = containers;
}

int gp_runner_start_container(gp_runner_t *self, const char *job, const char *container,
                              char *const argv[], char *const container_env[], gp_err_t *err)
{
    if (self->containers == NULL)
        return gp_err_set(err, GP_ERR_INVALID, "no container runtime configured");
    if (argv == NULL || argv[0] == NULL || strlen(container) >= sizeof(((s_job_t *)0)->container))
        return gp_err_set(err, GP_ERR_INVALID, "job %s: bad container launch", job);
    char dir[4096], path[4200];
    if (s_new_folder(self, job, dir, sizeof dir, err) < 0)
        return -1;
    char text[256];
    snprintf(text, sizeof text, "%s\n", container);
    snprintf(path, sizeof path, "%s/env", dir);
    if (s_write_atomic(dir, "container", text) < 0)
        return gp_err_errno(err, "cannot write the container name of job %s", job);
    if (gp_container_write_env(path, container_env, err) < 0)
        return -1;
    s_job_t *j = s_launch(self, job, dir, argv, NULL, 0, NULL, err);
    if (j == NULL)
        return -1;
    gp_strlcpy(j->container, container, sizeof j->container);
    return 0;
}

/* The container name recorded in a job's folder, into buf; 0 when none. */
static int s_read_container(const char *dir, char *buf, size_t size)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/container", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    int ok = fgets(buf, (int)size, f) != NULL;
    fclose(f);
    buf[ok ? strcspn(buf, "\n") : 0] = '\0';
    return buf[0] != '\0';
}

/* Run a runtime command in the background, detached, its output appended
 * to the job's stderr (or dropped); reaped by gp_runner_poll. */
static void s_spawn(char **argv, const char *dir)
{
    if (argv == NULL)
        return;
    pid_t pid = fork();
    if (pid != 0)
        return;
    setsid();
    char path[4200];
    snprintf(path, sizeof path, "%s/stderr", dir ? dir : "/dev");
    int out = dir ? open(path, O_WRONLY | O_APPEND) : -1;
    if (out < 0)
        out = open("/dev/null", O_WRONLY);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    execvp(argv[0], argv);
    _exit(127);
}

/* Run a runtime command and read its output (at most size-1 bytes),
 * waiting at most S_CONTAINER_QUERY_MS; its exit status, or -1. */
static int s_capture(char **argv, char *buf, size_t size)
{
    int p[2];
    buf[0] = '\0';
    if (argv == NULL || pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 0);
        dup2(p[1], 1);
        dup2(nul, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    int64_t deadline = gp_mono_ms() + S_CONTAINER_QUERY_MS;
    for (;;) {
        int64_t left = deadline - gp_mono_ms();
        struct pollfd pfd = { p[0], POLLIN, 0 };
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        ssize_t n = read(p[0], buf + len, size - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == size - 1)
            break;
    }
    buf[len] = '\0';
    close(p[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A container job whose supervisor is gone: find the container by name.
 * Running: a new supervisor waits for it; ended: its exit status is
 * recorded.  Returns 1 (st filled) or 0 (no such container: lost). */
static int s_adopt_by_name(gp_runner_t *self, const char *job, const char *dir, const char *name,
                           gp_run_status_t *st)
{
    char out[256];
    char **q = gp_container_state_argv(self->containers, name);
    int rc = s_capture(q, out, sizeof out);
    gp_container_argv_free(q);
    char status[64];
    int code = 0;
    if (rc != 0 || sscanf(out, "%63s %d", status, &code) != 2)
        return 0;
    if (!strcmp(status, "running") || !strcmp(status, "paused")) {
        char **w = gp_container_wait_argv(self->containers, name);
        gp_err_t err;
        s_job_t *j = w ? s_launch(self, job, dir, w, NULL, 0, NULL, &err) : NULL;
        gp_container_argv_free(w);
        if (j == NULL)
            return 0;
        gp_strlcpy(j->container, name, sizeof j->container);
        gp_log_info("container found by name, adopted job=%s container=%s", job, name);
        *st = j->st;
        return 1;
    }
    if (!strcmp(status, "exited") || !strcmp(status, "stopped")) {
        char text[64];
        snprintf(text, sizeof text, "exit %d\n", code);
        s_write_atomic(dir, "exit", text);
        st->state = GP_RUN_EXITED;
        st->exit_code = code;
        return 1;
    }
    return 0;
}

/* Remove a job folder: its files, then itself (job folders hold no
 * subfolders). */
/* Remove what is inside the folder open as dfd, never following a link: a
 * job's work folder is the job's, and a link it left there (or swapped in
 * meanwhile) must not lead the agent out of it. */
static void s_empty_at(int dfd, int depth)
{
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0 || (errno != EISDIR && errno != EPERM))
            continue;
        int sub = depth < 64 ? openat(dirfd(d), e->d_name,
                                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
        if (sub >= 0) {
            s_empty_at(sub, depth + 1);
            unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
        }
    }
    closedir(d);
}

static int s_remove_tree(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return errno == ENOENT ? 0 : -1;
    s_empty_at(dfd, 0);
    return rmdir(dir);
}

/* Read "exit N" / "signal N" into st; 1 when the job has ended. */
static int s_read_exit(const char *dir, gp_run_status_t *st)
{
    char path[4200], buf[64];
    snprintf(path, sizeof path, "%s/exit", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    int v = 0, ended = 0;
    if (fgets(buf, sizeof buf, f)) {
        if (sscanf(buf, "exit %d", &v) == 1) {
            st->state = GP_RUN_EXITED;
            st->exit_code = v;
            ended = 1;
        } else if (sscanf(buf, "signal %d", &v) == 1) {
            st->state = GP_RUN_KILLED;
            st->term_signal = v;
            ended = 1;
        }
    }
    fclose(f);
    return ended;
}

int gp_runner_adopt(gp_runner_t *self, const char *job, gp_run_status_t *st, gp_err_t *err)
{
    if (!s_valid_id(job))
        return gp_err_set(err, GP_ERR_INVALID, "bad job id \"%s\"", job);
    char dir[4096];
    gp_strlcpy(dir, gp_runner_dir(self, job), sizeof dir);
    gp_run_status_t s;
    memset(&s, 0, sizeof s);
    gp_strlcpy(s.job, job, sizeof s.job);
    struct stat sb;
    if (stat(dir, &sb) < 0) {
        /* Ended and reported, its folder kept in done/ for the log
         * retention: a store restored from a backup can hold its allocation
         * again, and the job must not start twice for it. */
        char done[4200];
        snprintf(done, sizeof done, "%s/done/%s", self->state_dir, job);
        if (stat(done, &sb) < 0)
            return 0;
        if (!s_read_exit(done, &s))
            s.state = GP_RUN_LOST;
        *st = s;
        return 1;
    }
    s_job_t *known = s_find(self, job);
    if (known) {
        *st = known->st;
        return 1;
    }
    if (s_read_exit(dir, &s)) {
        *st = s;
        return 1;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/pid", dir);
    FILE *f = fopen(path, "r");
    int sup = 0, pid = 0;
    unsigned long long start = 0;
    int have = f && fscanf(f, "%d %d %llu", &sup, &pid, &start) == 3;
    if (f)
        fclose(f);
    char container[192];
    int is_container = s_read_container(dir, container, sizeof container);
    if (have && (s_alive(pid, start) || kill(sup, 0) == 0)) {
        /* Running (or its supervisor is writing the exit file right now). */
        s_job_t *j = s_add(self, job);
        if (j == NULL)
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        j->st.state = GP_RUN_RUNNING;
        j->st.pid = pid;
        j->supervisor = sup;
        j->start_time = start;
        if (is_container)
            gp_strlcpy(j->container, container, sizeof j->container);
        *st = j->st;
        return 1;
    }
    /* The supervisor is gone, the exit unrecorded: a container may still be
     * there (the runtime keeps it apart from the process that started it). */
    if (is_container && self->containers && s_adopt_by_name(self, job, dir, container, &s)) {
        *st = s;
        return 1;
    }
    s.state = GP_RUN_LOST;
    s.pid = pid;
    *st = s;
    return 1;
}

int gp_runner_scan(gp_runner_t *self, void (*fn)(const char *job, void *arg), void *arg,
                   gp_err_t *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/jobs", self->state_dir);
    DIR *d = opendir(path);
    if (d == NULL)
        return gp_err_errno(err, "cannot read %s", path);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (s_valid_id(e->d_name))
            fn(e->d_name, arg);
    closedir(d);
    return 0;
}

void gp_runner_poll(gp_runner_t *self, void (*fn)(const gp_run_status_t *st, void *arg), void *arg)
{
    /* Reap our supervisors (their status is in the exit files). */
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    int64_t now = gp_mono_ms();
    for (int i = 0; i < self->njobs;) {
        s_job_t *j = &self->jobs[i];
        gp_run_status_t st = j->st;
        const char *dir = gp_runner_dir(self, j->st.job);
        int ended = s_read_exit(dir, &st);
        if (!ended && !s_alive(j->st.pid, j->start_time) && kill(j->supervisor, 0) < 0) {
            st.state = GP_RUN_LOST;   /* the supervisor died without a record */
            ended = 1;
        }
        if (ended) {
            /* Out of the table first: the callback may forget the job. */
            self->jobs[i] = self->jobs[--self->njobs];
            fn(&st, arg);
            continue;
        }
        if (j->kill_at_ms && now >= j->kill_at_ms) {
            gp_log_info("job did not stop in time, killing job=%s pid=%d", j->st.job,
                        (int)j->st.pid);
            kill(-j->st.pid, SIGKILL);
            j->kill_at_ms = 0;
        }
        i++;
    }
}

int gp_runner_signal(gp_runner_t *self, const char *job, int sig, gp_err_t *err)
{
    s_job_t *j = s_find(self, job);
    if (j == NULL)
        return gp_err_set(err, GP_ERR_NOTFOUND, "job %s is not running here", job);
    if (!s_alive(j->st.pid, j->start_time))
        return 0;   /* already gone: poll will report it */
    if (kill(-j->st.pid, sig) < 0 && errno != ESRCH)
        return gp_err_errno(err, "kill job %s", job);
    return 0;
}

int gp_runner_stop(gp_runner_t *self, const char *job, int64_t grace_ms, gp_err_t *err)
{
    s_job_t *j = s_find(self, job);
    if (j == NULL)
        return gp_err_set(err, GP_ERR_NOTFOUND, "job %s is not running here", job);
    if (j->container[0] && self->containers) {
        /* The runtime stops the container: SIGTERM, SIGKILL after the
         * grace; its `run` process then exits with the container. */
        char **v = gp_container_stop_argv(self->containers, j->container,
                                          (int)((grace_ms + 999) / 1000));
        s_spawn(v, gp_runner_dir(self, job));
        gp_container_argv_free(v);
        j->st.stopping = 1;
        j->kill_at_ms = gp_mono_ms() + (grace_ms > 0 ? grace_ms : 0) + S_CONTAINER_STOP_SLACK_MS;
        return 0;
    }
    if (gp_runner_signal(self, job, SIGTERM, err) < 0)
        return -1;
    j->st.stopping = 1;
    j->kill_at_ms = gp_mono_ms() + (grace_ms > 0 ? grace_ms : 0);
    return 0;
}

int gp_runner_status(const gp_runner_t *self, const char *job, gp_run_status_t *st)
{
    s_job_t *j = s_find(self, job);
    if (j == NULL)
        return -1;
    *st = j->st;
    return 0;
}

int gp_runner_count(const gp_runner_t *self) { return self->njobs; }

int gp_runner_forget(gp_runner_t *self, const char *job, gp_err_t *err)
{
    if (!s_valid_id(job))
        return gp_err_set(err, GP_ERR_INVALID, "bad job id \"%s\"", job);
    if (s_find(self, job))
        return gp_err_set(err, GP_ERR_CONFLICT, "job %s is still running", job);
    struct stat sb;
    if (stat(gp_runner_dir(self, job), &sb) < 0)
        return 0;       /* in done/ already (adopted from there): keep it */
    char done[4200], to[4400];
    snprintf(done, sizeof done, "%s/done", self->state_dir);
    snprintf(to, sizeof to, "%s/%s", done, job);
    if (mkdir(done, 0700) < 0 && errno != EEXIST)
        return gp_err_errno(err, "cannot create %s", done);
    s_remove_tree(to);   /* an older run of the same id */
    char container[192];
    if (self->containers && s_read_container(gp_runner_dir(self, job), container, sizeof container)) {
        char **v = gp_container_remove_argv(self->containers, container);
        s_spawn(v, NULL);
        gp_container_argv_free(v);
    }
    if (rename(gp_runner_dir(self, job), to) < 0 && errno != ENOENT)
        return gp_err_errno(err, "cannot move the folder of job %s to %s", job, done);
    return 0;
}

int gp_runner_prune(gp_runner_t *self, int64_t max_age_s)
{
    char done[4200];
    snprintf(done, sizeof done, "%s/done", self->state_dir);
    DIR *d = opendir(done);
    if (d == NULL)
        return 0;
    int n = 0;
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!s_valid_id(e->d_name))
            continue;
        char path[4500];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", done, e->d_name);
        if (stat(path, &sb) == 0 && now - sb.st_mtime > max_age_s && s_remove_tree(path) == 0)
            n++;
    }
    closedir(d);
    return n;
}
