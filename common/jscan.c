/*
 * jscan.c - reading JSON text in place (jscan.h).
 *
 * Written for etcd's watch lines (a few thousand events per second, where
 * a jansson tree per line was the largest part of a daemon's CPU) and the
 * job records inside them.  Only what those need: strings of printable
 * ASCII without escapes (the caller's full parser takes the others, and
 * checks their UTF-8), integers exactly, other numbers as jansson reads
 * them (the scores of bids).
 */
#include "jscan.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

void gp_jscan_ws(gp_jscan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

bool gp_jscan_lit(gp_jscan_t *s, char c)
{
    gp_jscan_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

bool gp_jscan_str(gp_jscan_t *s, const char **start, size_t *n)
{
    if (!gp_jscan_lit(s, '"'))
        return false;
    const char *q = s->p;
    while (q < s->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20 &&
           (unsigned char)*q < 0x80)
        q++;
    if (q >= s->end || *q != '"')
        return false;
    *start = s->p;
    *n = (size_t)(q - s->p);
    s->p = q + 1;
    return true;
}

bool gp_jscan_i64(gp_jscan_t *s, int64_t *v)
{
    gp_jscan_ws(s);
    bool quoted = s->p < s->end && *s->p == '"';
    if (quoted)
        s->p++;
    bool neg = s->p < s->end && *s->p == '-';
    if (neg)
        s->p++;
    const char *d = s->p;
    uint64_t x = 0;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9' && s->p - d < 19)
        x = x * 10 + (uint64_t)(*s->p++ - '0');
    if (s->p == d || (s->p < s->end && *s->p >= '0' && *s->p <= '9'))
        return false;   /* no digit, or more than 19 */
    if (s->p - d > 1 && *d == '0')
        return false;   /* JSON has no leading zeros */
    if (quoted && !(s->p < s->end && *s->p++ == '"'))
        return false;
    if (x > (uint64_t)INT64_MAX)
        return false;
    *v = neg ? -(int64_t)x : (int64_t)x;
    return true;
}

bool gp_jscan_bool(gp_jscan_t *s, bool *v)
{
    gp_jscan_ws(s);
    if (s->end - s->p >= 4 && !memcmp(s->p, "true", 4)) {
        s->p += 4;
        *v = true;
        return true;
    }
    if (s->end - s->p >= 5 && !memcmp(s->p, "false", 5)) {
        s->p += 5;
        *v = false;
        return true;
    }
    return false;
}

static int s_digits(gp_jscan_t *s)
{
    const char *d = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > d;
}

/* An integer part: 0, or digits not starting with 0. */
static int s_int_part(gp_jscan_t *s)
{
    const char *d = s->p;
    return s_digits(s) && !(s->p - d > 1 && *d == '0');
}

/* A JSON number: -?digits(.digits)?([eE][+-]?digits)? */
static bool s_number(gp_jscan_t *s)
{
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (!s_int_part(s))
        return false;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!s_digits(s))
            return false;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!s_digits(s))
            return false;
    }
    return true;
}

/* The members of an object or the elements of an array after its opening
 * bracket, up to and including close. */
static bool s_skip_seq(gp_jscan_t *s, char close, bool members)
{
    if (++s->depth > 32)
        return false;
    if (gp_jscan_lit(s, close)) {
        s->depth--;
        return true;
    }
    do {
        const char *k;
        size_t kn;
        if (members && (!gp_jscan_str(s, &k, &kn) || !gp_jscan_lit(s, ':')))
            return false;
        if (!gp_jscan_skip(s))
            return false;
    } while (gp_jscan_lit(s, ','));
    s->depth--;
    return gp_jscan_lit(s, close);
}

bool gp_jscan_skip(gp_jscan_t *s)
{
    gp_jscan_ws(s);
    if (s->p >= s->end)
        return false;
    const char *k;
    size_t kn;
    bool b;
    switch (*s->p) {
    case '"': return gp_jscan_str(s, &k, &kn);
    case '{': s->p++; return s_skip_seq(s, '}', true);
    case '[': s->p++; return s_skip_seq(s, ']', false);
    case 't': case 'f': return gp_jscan_bool(s, &b);
    case 'n':
        if (s->end - s->p >= 4 && !memcmp(s->p, "null", 4)) {
            s->p += 4;
            return true;
        }
        return false;
    default:
        return s_number(s);
    }
}

bool gp_jscan_num(gp_jscan_t *s, double *v)
{
    gp_jscan_ws(s);
    const char *num = s->p;
    if (!s_number(s) || s->p - num >= 64)
        return false;
    char buf[64];
    memcpy(buf, num, (size_t)(s->p - num));
    buf[s->p - num] = '\0';
    errno = 0;
    if (strpbrk(buf, ".eE") == NULL) {   /* jansson: an integer, within int64 */
        long long x = strtoll(buf, NULL, 10);
        if (errno == ERANGE)
            return false;
        *v = (double)x;
        return true;
    }
    double d = strtod(buf, NULL);        /* jansson: a real, finite */
    if (isinf(d) || isnan(d))
        return false;
    *v = d;
    return true;
}

bool gp_jscan_key_is(const char *k, size_t kn, const char *want)
{
    return kn == strlen(want) && !memcmp(k, want, kn);
}

bool gp_jscan_obj_next(gp_jscan_t *s, const char **k, size_t *kn, bool *first, bool *ok)
{
    if (*first) {
        *first = false;
        if (gp_jscan_lit(s, '}'))
            return false;
    } else if (!gp_jscan_lit(s, ',')) {
        *ok = gp_jscan_lit(s, '}');
        return false;
    }
    if (!gp_jscan_str(s, k, kn) || !gp_jscan_lit(s, ':')) {
        *ok = false;
        return false;
    }
    return true;
}
