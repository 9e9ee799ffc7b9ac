/*
 * log.h - the one logging module.
 *
 * One line per event on stderr (or syslog-free: daemons run under systemd or a
 * supervisor that captures stderr):
 *
 *   2026-11-21T14:51:11.123Z gpupool-agent[4242] warn: bid dropped peer=node-7 reason=stale
 *
 * The message is printf-formatted and by convention is a short phrase
 * followed by key=value fields.  Each line is built in a buffer and written
 * with one write(2), so lines from several threads or processes never
 * interleave.  Levels below the configured one cost a comparison.
 *
 * gp_log_fatal() logs and exits with the given sysexits(3) code; it never
 * returns.  The *_errno variants append ": strerror(errno)".
 *
 * Not for hot paths: the shim logs only at start-up and on errors.
 */
#ifndef GP_LOG_H
#define GP_LOG_H

#include <stdarg.h>

typedef enum {
    GP_LOG_DEBUG = 0,
    GP_LOG_INFO,
    GP_LOG_WARN,
    GP_LOG_ERROR,
} gp_log_level_t;

/* Set the program name shown on each line (not copied: pass a literal or a
 * string that outlives logging) and the lowest level printed. */
void gp_log_init(const char *progname, gp_log_level_t level);
void gp_log_set_level(gp_log_level_t level);
gp_log_level_t gp_log_get_level(void);
/* Parse "debug", "info", "warn" or "error"; -1 when unknown. */
int gp_log_parse_level(const char *name, gp_log_level_t *level);

void gp_log(gp_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void gp_logv(gp_log_level_t level, int with_errno, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define gp_log_debug(...) gp_log(GP_LOG_DEBUG, __VA_ARGS__)
#define gp_log_info(...)  gp_log(GP_LOG_INFO, __VA_ARGS__)
#define gp_log_warn(...)  gp_log(GP_LOG_WARN, __VA_ARGS__)
#define gp_log_error(...) gp_log(GP_LOG_ERROR, __VA_ARGS__)

void gp_log_warn_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void gp_log_error_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Log at error level and exit(code).  Never returns. */
void gp_log_fatal(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
void gp_log_fatal_errno(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

#endif
