/*
 * uri.h - the request target of an HTTP request, decoded strictly.
 *
 * The HTTP server (httpd.c) hands the raw request target ("/v1/jobs/a%2Db?
 * state=pending") to gp_uri_parse() before any handler sees it, so that a
 * handler never meets a path or a query value that percent-decoding made
 * ambiguous.  The rules, each a 400 with the message in err:
 *
 *   - the target is origin-form: it starts with '/', and holds no control
 *     character, space, '#' or byte above 0x7e (those must be escaped);
 *   - every '%' starts an escape of two hex digits;
 *   - a path segment may not decode to a NUL, a '/' (%2F: a segment would
 *     turn into two) or bytes that are not UTF-8, and may not be "." or
 *     ".." (escaped or not): the server does not resolve dot segments, so
 *     it refuses them;
 *   - a query is "name=value" pairs joined by '&' ('+' is a space); names
 *     and values may not decode to NUL or bytes that are not UTF-8, and a
 *     name may not appear twice.
 *
 * Empty segments ("/v1/jobs//") are kept: what they mean is the router's
 * business (no endpoint has one).
 *
 * Ownership: gp_uri_parse() returns a new object the caller releases with
 * gp_uri_destroy(), which clears the caller's pointer; the strings it
 * returns live as long as the object.  No global state; thread-safe.
 */
#ifndef GP_URI_H
#define GP_URI_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

typedef struct gp_uri gp_uri_t;

/* Decode target (NUL-terminated, as received).  0 and *out, or -1 with
 * err (GP_ERR_INVALID for a bad target, GP_ERR_NOMEM). */
int gp_uri_parse(const char *target, gp_uri_t **out, gp_err_t *err);
void gp_uri_destroy(gp_uri_t **self_p);

/* The decoded path, without the query: no NUL inside, valid UTF-8. */
const char *gp_uri_path(const gp_uri_t *self);
/* The decoded value of query parameter name ("" for "?name"), or NULL. */
const char *gp_uri_query(const gp_uri_t *self, const char *name);

/* Whether s[0..len) is well-formed UTF-8 (no overlong forms, surrogates or
 * code points above U+10FFFF). */
bool gp_utf8_valid(const char *s, size_t len);

#endif
