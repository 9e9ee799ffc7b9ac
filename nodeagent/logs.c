/*
 * logs.c - a job's stdout and stderr, read for `gpupool logs` (README
 * "Wire protocol": LOGS and LOGDATA).
 *
 * The agent serves logs only to its coordinators, over the channel they
 * already share (CURVE-authenticated when configured); the coordinator
 * checks the API principal (intake's rules: the job's team or an
 * operator) before it asks.  So the agent opens no port of its own and
 * holds no user credentials.
 *
 * A run of a job is one allocation: its folder is <state-dir>/jobs/<job>.r<rev>
 * while it runs and <state-dir>/done/<job>.r<rev> after, until
 * log-retention (runner.h).  A request names the job, optionally the run
 * (else the latest: the highest revision, live or done), and per stream
 * either an offset to read from or a number of lines to tail; the answer
 * carries at most `max` bytes per stream from there, the offset after
 * them, and whether the run is still going (the CLI's -f stops once it is
 * not and nothing more came).  Logs are text: the answer ends on a whole
 * UTF-8 character, and bytes that are not UTF-8 become U+FFFD.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "keys.h"
#include "log.h"
#include "util.h"

#include "banned.h"

#define S_MAX_CHUNK (256 * 1024)     /* bytes per stream and answer at most */
#define S_TAIL_SCAN (1024 * 1024)    /* --tail looks this far back at most */

/* The length of the valid UTF-8 character at p (1..4), 0 when it is not
 * one, -1 when it may be one that n bytes cut short. */
static int s_utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    int len;
    unsigned int cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n)
            return -1;
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

/* buf[0..n) as a JSON string of valid UTF-8; *used: the bytes taken (a
 * character cut short at the end is left for the next read, unless final). */
static json_t *s_text(const unsigned char *buf, size_t n, int final, size_t *used)
{
    char *out = malloc(n * 3 + 1);
    if (out == NULL)
        return NULL;
    size_t i = 0, o = 0;
    while (i < n) {
        int l = s_utf8_len(buf + i, n - i);
        if (l < 0 && !final)
            break;
        if (l <= 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);   /* U+FFFD */
            o += 3;
            i++;
            continue;
        }
        memcpy(out + o, buf + i, (size_t)l);
        o += (size_t)l;
        i += (size_t)l;
    }
    *used = i;
    json_t *s = json_stringn(out, o);
    free(out);
    return s;
}

/* Where to start for the last `tail` lines of fd (size bytes). */
static off_t s_tail_start(int fd, off_t size, int64_t tail)
{
    off_t from = size > S_TAIL_SCAN ? size - S_TAIL_SCAN : 0;
    size_t n = (size_t)(size - from);
    char *buf = malloc(n ? n : 1);
    if (buf == NULL || pread(fd, buf, n, from) != (ssize_t)n) {
        free(buf);
        return from;
    }
    off_t start = from;
    int64_t lines = 0;
    for (size_t i = n; i > 0; i--) {
        if (buf[i - 1] != '\n' || i == n)
            continue;   /* the file's last newline ends its last line */
        if (++lines == tail) {
            start = from + (off_t)i;
            break;
        }
    }
    free(buf);
    return tail == 0 ? size : start;
}

/* One stream of a run's folder: {"data", "offset"}, or NULL with *why. */
static json_t *s_stream(const char *dir, const char *name, int64_t offset, int64_t tail,
                        int64_t max, int final, char *why, size_t wsize)
{
    char path[4500];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return json_pack("{s:s,s:I}", "data", "", "offset", (json_int_t)0);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0) {
        snprintf(why, wsize, "cannot read %s: %s", name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    off_t start = tail >= 0 ? s_tail_start(fd, sb.st_size, tail)
                  : offset < sb.st_size ? (off_t)offset : sb.st_size;
    size_t n = (size_t)(sb.st_size - start);
    if ((int64_t)n > max)
        n = (size_t)max;
    unsigned char *buf = malloc(n ? n : 1);
    ssize_t got = buf ? pread(fd, buf, n, start) : -1;
    close(fd);
    size_t used = 0;
    json_t *text = got >= 0 ? s_text(buf, (size_t)got, final && (size_t)got == n, &used) : NULL;
    free(buf);
    if (text == NULL) {
        snprintf(why, wsize, "cannot read %s", name);
        return NULL;
    }
    return json_pack("{s:o,s:I}", "data", text, "offset", (json_int_t)(start + (off_t)used));
}

/* The latest run of job in folder parent ("<job>.r<rev>"), its revision. */
static int64_t s_latest(const char *parent, const char *job, char *run, size_t size)
{
    DIR *d = opendir(parent);
    int64_t best = -1;
    size_t jl = strlen(job);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, job, jl) != 0 || strncmp(e->d_name + jl, ".r", 2) != 0)
            continue;
        char *end;
        long long rev = strtoll(e->d_name + jl + 2, &end, 10);
        if (*end == '\0' && end != e->d_name + jl + 2 && rev > best) {
            best = rev;
            gp_strlcpy(run, e->d_name, size);
        }
    }
    if (d)
        closedir(d);
    return best;
}

/* Is run "<job>.r<digits>", a run of this job and of no other? */
static int s_is_run_of(const char *run, const char *job)
{
    size_t jl = strlen(job);
    if (strncmp(run, job, jl) != 0 || strncmp(run + jl, ".r", 2) != 0 || run[jl + 2] == '\0')
        return 0;
    for (const char *p = run + jl + 2; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

/* The answer to one LOGS body (caller decrefs). */
static json_t *s_answer(agent_t *a, const json_t *q)
{
    const char *job = json_string_value(json_object_get(q, "job"));
    const char *want = json_string_value(json_object_get(q, "run"));
    json_t *ans = json_pack("{s:O?,s:s?}", "req", json_object_get(q, "req"), "job", job);
    if (ans == NULL)
        return NULL;
    if (job == NULL || !gp_name_valid(job) || (want && !s_is_run_of(want, job))) {
        json_object_set_new(ans, "error", json_string("bad request"));
        return ans;
    }
    char live[3200], done[3200], run[GP_NAME_LEN + 32] = "", dir[4400];
    snprintf(live, sizeof live, "%s/jobs", a->cfg.state_dir);
    snprintf(done, sizeof done, "%s/done", a->cfg.state_dir);
    int running = 0;
    struct stat sb;
    if (want) {
        gp_strlcpy(run, want, sizeof run);
        snprintf(dir, sizeof dir, "%s/%s", live, run);
        running = stat(dir, &sb) == 0;
        if (!running)
            snprintf(dir, sizeof dir, "%s/%s", done, run);
    } else {
        char r2[sizeof run];
        int64_t lr = s_latest(live, job, run, sizeof run), dr = s_latest(done, job, r2, sizeof r2);
        running = lr >= 0 && lr >= dr;
        if (!running)
            gp_strlcpy(run, r2, sizeof run);
        snprintf(dir, sizeof dir, "%s/%s", running ? live : done, run);
    }
    if (run[0] == '\0' || stat(dir, &sb) < 0) {
        json_object_set_new(ans, "error", json_string("no logs of this job on its node (never "
                                                      "started here, or older than its "
                                                      "log-retention)"));
        return ans;
    }
    int64_t tail = json_is_integer(json_object_get(q, "tail"))
                       ? json_integer_value(json_object_get(q, "tail")) : -1;
    int64_t max = json_integer_value(json_object_get(q, "max"));
    if (max <= 0 || max > S_MAX_CHUNK)
        max = S_MAX_CHUNK;
    static const char *const streams[] = { "stdout", "stderr" };
    for (int i = 0; i < 2; i++) {
        char why[300];
        json_t *off = json_object_get(q, streams[i]);
        if (off == NULL)
            continue;   /* not asked */
        json_t *s = s_stream(dir, streams[i], json_integer_value(off), tail, max, !running, why,
                             sizeof why);
        if (s == NULL) {
            json_object_set_new(ans, "error", json_string(why));
            return ans;
        }
        json_object_set_new(ans, streams[i], s);
    }
    json_object_set_new(ans, "run", json_string(run));
    json_object_set_new(ans, "running", json_boolean(running));
    return ans;
}

void agent_logs_answer(agent_t *a, void *sock, const json_t *body)
{
    json_t *ans = s_answer(a, body);
    gp_err_t err;
    if (ans == NULL || gp_wire_send(sock, NULL, 0, GP_MSG_LOGDATA, ans, &err) < 0)
        gp_log_warn("LOGDATA not sent job=%s err=\"%s\"",
                    json_string_value(json_object_get(body, "job")) ? json_string_value(
                        json_object_get(body, "job")) : "-", ans ? err.msg : "out of memory");
    json_decref(ans);
}
