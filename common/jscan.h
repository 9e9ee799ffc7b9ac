/*
 * jscan.h - reading JSON text in place, without building a tree.
 *
 * For the few hot paths where a daemon reads many small JSON documents of
 * a known shape and needs a handful of their fields (etcd's watch lines,
 * the job records they carry): a cursor over the text, with readers of a
 * literal, a string, an integer, a number, a boolean, and a skip of any
 * value.
 * Strings are returned as they stand in the text, so a string holding an
 * escape, a control character or a byte outside ASCII is refused (false):
 * callers then fall back to a full parser (jansson), which also judges
 * and reports malformed text.  What the scanner accepts, jansson accepts
 * too, with the same values.  It allocates nothing and never reads past
 * end.
 *
 *     gp_jscan_t s = GP_JSCAN_INIT(text, len);
 *     bool first = true, ok = gp_jscan_lit(&s, '{');
 *     const char *k;
 *     size_t kn;
 *     while (ok && gp_jscan_obj_next(&s, &k, &kn, &first, &ok))
 *         ok = gp_jscan_key_is(k, kn, "rev") ? gp_jscan_i64(&s, &rev) : gp_jscan_skip(&s);
 */
#ifndef GP_JSCAN_H
#define GP_JSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *p, *end;   /* the cursor and the end of the text */
    int depth;             /* nesting, bounded by gp_jscan_skip */
} gp_jscan_t;

#define GP_JSCAN_INIT(text, len) { (text), (text) + (len), 0 }

/* A string as it stands in the text (not NUL-terminated); p NULL: absent. */
typedef struct {
    const char *p;
    size_t n;
} gp_jscan_span_t;

/* Skip white space; then: the character c (consumed)? */
void gp_jscan_ws(gp_jscan_t *s);
bool gp_jscan_lit(gp_jscan_t *s, char c);
/* A string of printable ASCII without escapes: [*start, *start + *n). */
bool gp_jscan_str(gp_jscan_t *s, const char **start, size_t *n);
/* An integer, bare or quoted (etcd's gateway writes int64s as strings). */
bool gp_jscan_i64(gp_jscan_t *s, int64_t *v);
bool gp_jscan_bool(gp_jscan_t *s, bool *v);
/* A bare number as jansson reads one (json_number_value): an integer
 * (within int64, as jansson requires) or a real (strtod, finite). */
bool gp_jscan_num(gp_jscan_t *s, double *v);
/* Any value: objects and arrays (32 levels at most), strings without
 * escapes, numbers (fractions and exponents too), true, false, null. */
bool gp_jscan_skip(gp_jscan_t *s);
bool gp_jscan_key_is(const char *k, size_t kn, const char *want);
/* The next member of an object whose '{' was read: its key, the cursor on
 * its value.  false at the end (*ok: whether the object closed well). */
bool gp_jscan_obj_next(gp_jscan_t *s, const char **k, size_t *kn, bool *first, bool *ok);

#endif
