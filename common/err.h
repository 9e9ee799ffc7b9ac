/*
 * err.h - the one error idiom of gpupool.
 *
 * Every fallible call returns 0 on success and -1 on failure, and when the
 * caller passes a gp_err_t it is filled with a category and a one-line
 * message fit for a log or an HTTP body.  Outputs are assigned only on
 * success.  Passing NULL for the error is allowed and discards the details.
 *
 *     gp_err_t err;
 *     if (gp_etcd_put(etcd, key, val, NULL, &err) < 0)
 *         gp_log_warn("etcd put failed key=%s err=\"%s\"", key, err.msg);
 *
 * assert() is kept for programmer errors; never for bad input, a failed
 * server or a network fault.
 */
#ifndef GP_ERR_H
#define GP_ERR_H

#include <stdarg.h>

typedef enum {
    GP_OK = 0,
    GP_ERR_INVALID,     /* bad input: a caller, a file or a request is wrong */
    GP_ERR_NOMEM,       /* out of memory */
    GP_ERR_IO,          /* a local system call failed (errno in msg) */
    GP_ERR_TRANSPORT,   /* could not reach a server: refused, reset, TLS */
    GP_ERR_TIMEOUT,     /* a deadline passed before an answer came */
    GP_ERR_SERVER,      /* the server answered with an error status */
    GP_ERR_PROTOCOL,    /* the answer was malformed: truncated, not JSON, wrong types */
    GP_ERR_NOTFOUND,    /* the named thing does not exist */
    GP_ERR_CONFLICT,    /* a compare or a precondition failed */
    GP_ERR_COMPACTED,   /* a requested revision has been compacted away */
    GP_ERR_AUTH,        /* authentication or permission refused */
    GP_ERR_LOST,        /* a lease or a leadership was lost */
    GP_ERR_NOSPACE,     /* the store is full (etcd's NOSPACE alarm): writes are refused */
} gp_errcode_t;

typedef struct {
    gp_errcode_t code;
    int status;          /* server status (HTTP or gRPC code) where one applies, else 0 */
    char msg[256];
} gp_err_t;

/* Fill err (when not NULL) and return -1, so that callers can write
 * `return gp_err_set(err, GP_ERR_INVALID, "bad port %s", s);`. */
int gp_err_set(gp_err_t *err, gp_errcode_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int gp_err_setv(gp_err_t *err, gp_errcode_t code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* Like gp_err_set, with ": strerror(errno)" appended and code GP_ERR_IO. */
int gp_err_errno(gp_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void gp_err_clear(gp_err_t *err);
/* A short name for a code ("timeout", "conflict", ...). */
const char *gp_err_name(gp_errcode_t code);

#endif
