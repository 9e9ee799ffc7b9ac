#include "uri.h"

#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define S_MAX_PARAMS 64

struct gp_uri {
    char *path;
    int nparams;
    char *names[S_MAX_PARAMS], *values[S_MAX_PARAMS];
};

bool gp_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        size_t n;
        unsigned cp, min;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if ((size_t)(end - p) < n + 1)
            return false;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n + 1;
    }
    return true;
}

static int s_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode src[0..len) into dst (room for len + 1), NUL-terminated; *out_len
 * is the decoded length.  plus: '+' means a space (queries). */
static int s_decode(const char *src, size_t len, int plus, char *dst, size_t *out_len,
                    const char *what, gp_err_t *err)
{
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            int hi = i + 1 < len ? s_hex(src[i + 1]) : -1;
            int lo = hi >= 0 && i + 2 < len ? s_hex(src[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return gp_err_set(err, GP_ERR_INVALID,
                                  "bad percent-escape in the %s (%% needs two hex digits)", what);
            c = (char)(hi * 16 + lo);
            i += 2;
            if (c == '\0')
                return gp_err_set(err, GP_ERR_INVALID, "%%00 (NUL) in the %s", what);
        } else if (plus && c == '+') {
            c = ' ';
        }
        dst[k++] = c;
    }
    dst[k] = '\0';
    if (!gp_utf8_valid(dst, k))
        return gp_err_set(err, GP_ERR_INVALID, "the %s does not decode to UTF-8", what);
    *out_len = k;
    return 0;
}

static int s_parse_path(gp_uri_t *u, const char *raw, size_t len, gp_err_t *err)
{
    u->path = malloc(len + 1);
    if (u->path == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        /* raw[i] == '/': one segment up to the next raw '/' */
        size_t j = i + 1;
        while (j < len && raw[j] != '/')
            j++;
        size_t n;
        u->path[k++] = '/';
        if (s_decode(raw + i + 1, j - i - 1, 0, u->path + k, &n, "path", err) < 0)
            return -1;
        if (memchr(u->path + k, '/', n))
            return gp_err_set(err, GP_ERR_INVALID, "%%2F (an escaped /) in a path segment");
        if ((n == 1 && u->path[k] == '.') || (n == 2 && !memcmp(u->path + k, "..", 2)))
            return gp_err_set(err, GP_ERR_INVALID, "a . or .. segment in the path");
        k += n;
        i = j;
    }
    u->path[k] = '\0';
    return 0;
}

static int s_parse_query(gp_uri_t *u, const char *raw, gp_err_t *err)
{
    while (*raw) {
        size_t len = strcspn(raw, "&");
        if (len > 0) {
            if (u->nparams == S_MAX_PARAMS)
                return gp_err_set(err, GP_ERR_INVALID, "more than %d query parameters",
                                  S_MAX_PARAMS);
            const char *eq = memchr(raw, '=', len);
            size_t nlen = eq ? (size_t)(eq - raw) : len, vlen = eq ? len - nlen - 1 : 0, n;
            char *name = malloc(nlen + 1), *value = malloc(vlen + 1);
            u->names[u->nparams] = name;
            u->values[u->nparams] = value;
            if (name == NULL || value == NULL) {
                u->nparams++;
                return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
            }
            u->nparams++;
            if (s_decode(raw, nlen, 1, name, &n, "query", err) < 0 ||
                s_decode(eq ? eq + 1 : "", vlen, 1, value, &n, "query", err) < 0)
                return -1;
            for (int i = 0; i + 1 < u->nparams; i++)
                if (!strcmp(u->names[i], name))
                    return gp_err_set(err, GP_ERR_INVALID,
                                      "query parameter \"%.64s\" given twice", name);
        }
        raw += len;
        if (*raw == '&')
            raw++;
    }
    return 0;
}

int gp_uri_parse(const char *target, gp_uri_t **out, gp_err_t *err)
{
    gp_uri_t *u = NULL;
    int rc = -1;
    if (target == NULL || target[0] != '/') {
        gp_err_set(err, GP_ERR_INVALID, "the request target must be a path starting with /");
        goto cleanup;
    }
    for (const unsigned char *p = (const unsigned char *)target; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '#') {
            gp_err_set(err, GP_ERR_INVALID,
                       "byte 0x%02x in the request target must be percent-escaped", *p);
            goto cleanup;
        }
    }
    u = calloc(1, sizeof *u);
    if (u == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    const char *q = strchr(target, '?');
    size_t plen = q ? (size_t)(q - target) : strlen(target);
    if (s_parse_path(u, target, plen, err) < 0 || (q && s_parse_query(u, q + 1, err) < 0))
        goto cleanup;
    *out = u;
    u = NULL;
    rc = 0;
cleanup:
    gp_uri_destroy(&u);
    return rc;
}

void gp_uri_destroy(gp_uri_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    gp_uri_t *u = *self_p;
    for (int i = 0; i < u->nparams; i++) {
        free(u->names[i]);
        free(u->values[i]);
    }
    free(u->path);
    free(u);
    *self_p = NULL;
}

const char *gp_uri_path(const gp_uri_t *self) { return self->path; }

const char *gp_uri_query(const gp_uri_t *self, const char *name)
{
    for (int i = 0; i < self->nparams; i++)
        if (!strcmp(self->names[i], name))
            return self->values[i];
    return NULL;
}
