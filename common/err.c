#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "banned.h"

int gp_err_setv(gp_err_t *err, gp_errcode_t code, const char *fmt, va_list ap)
{
    if (err == NULL)
        return -1;
    err->code = code;
    err->status = 0;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return -1;
}

int gp_err_set(gp_err_t *err, gp_errcode_t code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gp_err_setv(err, code, fmt, ap);
    va_end(ap);
    return -1;
}

int gp_err_errno(gp_err_t *err, const char *fmt, ...)
{
    int saved = errno;
    if (err == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    gp_err_setv(err, GP_ERR_IO, fmt, ap);
    va_end(ap);
    size_t n = strlen(err->msg);
    snprintf(err->msg + n, sizeof err->msg - n, ": %s", strerror(saved));
    errno = saved;
    return -1;
}

void gp_err_clear(gp_err_t *err)
{
    if (err == NULL)
        return;
    err->code = GP_OK;
    err->status = 0;
    err->msg[0] = '\0';
}

const char *gp_err_name(gp_errcode_t code)
{
    static const char *const names[] = {
        [GP_OK] = "ok",
        [GP_ERR_INVALID] = "invalid",
        [GP_ERR_NOMEM] = "nomem",
        [GP_ERR_IO] = "io",
        [GP_ERR_TRANSPORT] = "transport",
        [GP_ERR_TIMEOUT] = "timeout",
        [GP_ERR_SERVER] = "server",
        [GP_ERR_PROTOCOL] = "protocol",
        [GP_ERR_NOTFOUND] = "notfound",
        [GP_ERR_CONFLICT] = "conflict",
        [GP_ERR_COMPACTED] = "compacted",
        [GP_ERR_AUTH] = "auth",
        [GP_ERR_LOST] = "lost",
        [GP_ERR_NOSPACE] = "nospace",
    };
    if ((unsigned)code < sizeof names / sizeof names[0] && names[code])
        return names[code];
    return "unknown";
}
