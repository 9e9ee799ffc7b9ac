#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

static const char *s_progname = "gpupool";
static volatile int s_level = GP_LOG_INFO;

static const char *const s_level_names[] = { "debug", "info", "warn", "error" };

void gp_log_init(const char *progname, gp_log_level_t level)
{
    if (progname != NULL) {
        const char *slash = strrchr(progname, '/');
        s_progname = slash ? slash + 1 : progname;
    }
    s_level = level;
}

void gp_log_set_level(gp_log_level_t level) { s_level = level; }
gp_log_level_t gp_log_get_level(void) { return (gp_log_level_t)s_level; }

int gp_log_parse_level(const char *name, gp_log_level_t *level)
{
    for (int i = 0; i <= GP_LOG_ERROR; i++) {
        if (strcmp(name, s_level_names[i]) == 0) {
            *level = (gp_log_level_t)i;
            return 0;
        }
    }
    if (strcmp(name, "warning") == 0) {
        *level = GP_LOG_WARN;
        return 0;
    }
    return -1;
}

void gp_logv(gp_log_level_t level, int with_errno, const char *fmt, va_list ap)
{
    int saved = errno;
    if ((int)level < s_level)
        return;

    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000L, s_progname, (int)getpid(),
                     s_level_names[level]);
    if (n < 0)
        return;
    size_t len = (size_t)n;
    int m = vsnprintf(line + len, sizeof line - len, fmt, ap);
    if (m > 0)
        len += (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    if (with_errno) {
        m = snprintf(line + len, sizeof line - len, ": %s", strerror(saved));
        if (m > 0)
            len += (size_t)m;
        if (len > sizeof line - 2)
            len = sizeof line - 2;
    }
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
    errno = saved;
}

void gp_log(gp_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gp_logv(level, 0, fmt, ap);
    va_end(ap);
}

void gp_log_warn_errno(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gp_logv(GP_LOG_WARN, 1, fmt, ap);
    va_end(ap);
}

void gp_log_error_errno(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gp_logv(GP_LOG_ERROR, 1, fmt, ap);
    va_end(ap);
}

void gp_log_fatal(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gp_logv(GP_LOG_ERROR, 0, fmt, ap);
    va_end(ap);
    exit(code);
}

void gp_log_fatal_errno(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gp_logv(GP_LOG_ERROR, 1, fmt, ap);
    va_end(ap);
    exit(code);
}
