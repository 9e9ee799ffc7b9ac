/*
 * output.c - how the gpupool CLI speaks: its one-line errors (cli_error,
 * held back while another API endpoint may still answer), growable buffers
 * and files read whole, aligned tables, and the formatting of sizes, times,
 * requests and allocations that the tables share.  JSON answers are printed
 * indented with an RFC 3339 time beside every "_ms" time field.
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli.h"
#include "jobrec.h"
#include "util.h"

#include "banned.h"

/* ------------------------------------------------------------- messages */

/* While s_hold is set, errors are kept in s_held instead of printed: a
 * request that another API endpoint may still answer decides later whether
 * its failure is the command's (cli_request). */
static bool s_hold;
static char s_held[1024];

static void s_say(const char *fmt, va_list ap)
{
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    if (s_hold)
        gp_strlcpy(s_held, line, sizeof s_held);
    else
        fprintf(stderr, CLI_PROG ": %s\n", line);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_say(fmt, ap);
    va_end(ap);
}

int cli_fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_say(fmt, ap);
    va_end(ap);
    return status;
}

void cli_hold_errors(bool hold)
{
    s_hold = hold;
    s_held[0] = '\0';
}

const char *cli_release_errors(void)
{
    s_hold = false;
    return s_held;
}

/* ------------------------------------------------------------- strings */


int cli_buf_add(cli_buf_t *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->buf, cap);
        if (p == NULL)
            return -1;
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return 0;
}

void cli_buf_free(cli_buf_t *b)
{
    free(b->buf);
    memset(b, 0, sizeof *b);
}

/* Read a whole file ("-" is stdin).  Returns 0, or an exit status with the
 * message printed. */
int cli_read_file(const char *path, cli_buf_t *out)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        cli_error("cannot open %s: %s", path, strerror(errno));
        return errno == EACCES ? EX_NOPERM : EX_NOINPUT;
    }
    cli_buf_t b = { 0 };
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > CLI_MAX_INPUT) {
            cli_error("%s: larger than %u MiB", path, CLI_MAX_INPUT >> 20);
            rc = EX_DATAERR;
            break;
        }
        if (cli_buf_add(&b, chunk, n) < 0) {
            cli_error("out of memory");
            rc = EX_OSERR;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        cli_error("cannot read %s: %s", path, strerror(errno));
        rc = EX_IOERR;
    }
    if (f != stdin)
        fclose(f);
    if (rc != 0) {
        cli_buf_free(&b);
        return rc;
    }
    if (b.buf == NULL && cli_buf_add(&b, "", 0) < 0)
        return EX_OSERR;
    *out = b;
    return 0;
}

/* 1536 -> "1.5G", 81920 -> "80G", 512 -> "512M". */
void cli_fmt_mib(char *out, size_t size, int64_t mib)
{
    if (mib == 0)
        gp_strlcpy(out, "0", size);
    else if (mib >= 1024 * 1024 && mib % (1024 * 1024) == 0)
        snprintf(out, size, "%" PRId64 "T", mib / (1024 * 1024));
    else if (mib >= 1024 && mib % 1024 == 0)
        snprintf(out, size, "%" PRId64 "G", mib / 1024);
    else if (mib >= 1024)
        snprintf(out, size, "%.1fG", (double)mib / 1024.0);
    else
        snprintf(out, size, "%" PRId64 "M", mib);
}

/* A duration in ms as "45s", "12m", "3h", "2d". */
void cli_fmt_age(char *out, size_t size, int64_t ms)
{
    int64_t s = ms < 0 ? 0 : ms / 1000;
    if (s < 120)
        snprintf(out, size, "%" PRId64 "s", s);
    else if (s < 2 * 3600)
        snprintf(out, size, "%" PRId64 "m", s / 60);
    else if (s < 2 * 86400)
        snprintf(out, size, "%" PRId64 "h", s / 3600);
    else
        snprintf(out, size, "%" PRId64 "d", s / 86400);
}

/* Milliseconds since the epoch as "2026-11-21T15:04:05Z". */
void cli_fmt_time(char *out, size_t size, int64_t ms)
{
    if (ms <= 0) {
        gp_strlcpy(out, "-", size);
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        gp_strlcpy(out, "-", size);
}

/* Milliseconds since the epoch in local time, "2026-11-21 16:04:05". */
void cli_fmt_local(char *out, size_t size, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || localtime_r(&t, &tm) == NULL || strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        gp_strlcpy(out, "-", size);
}

/* How long before now (ms since the epoch) a time was: "3m ago". */
void cli_fmt_ago(char *out, size_t size, int64_t now, int64_t ms)
{
    if (ms <= 0) {
        gp_strlcpy(out, "-", size);
        return;
    }
    char age[24];
    cli_fmt_age(age, sizeof age, now - ms);
    snprintf(out, size, "%s ago", age);
}

/* ------------------------------------------------------------- JSON fields */

const char *cli_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && *s ? s : "-";
}

int64_t cli_int(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    return 0;
}

double cli_num(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : 0.0;
}

/* ------------------------------------------------------------- tables */


void cli_table_init(cli_table_t *t, int ncols, const char *const *heads)
{
    memset(t, 0, sizeof *t);
    if (ncols < 1 || ncols > TABLE_MAX_COLS) {
        cli_error("internal error: a table of %d columns", ncols);
        exit(EX_SOFTWARE);
    }
    t->ncols = ncols;
    t->cap = 16;
    t->cells = calloc(t->cap * (size_t)ncols, sizeof *t->cells);
    if (t->cells == NULL) {
        cli_error("out of memory");
        exit(EX_OSERR);
    }
    for (int c = 0; c < ncols; c++)
        t->cells[c] = strdup(heads[c]);
    t->nrows = 1;
}

/* Add a row of ncols strings (copied). */
void cli_table_row(cli_table_t *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        char **p = realloc(t->cells, t->cap * 2 * (size_t)t->ncols * sizeof *p);
        if (p == NULL) {
            cli_error("out of memory");
            exit(EX_OSERR);
        }
        t->cells = p;
        t->cap *= 2;
    }
    for (int c = 0; c < t->ncols; c++)
        t->cells[t->nrows * (size_t)t->ncols + (size_t)c] = strdup(cells[c] ? cells[c] : "-");
    t->nrows++;
}

/* Print with two spaces between columns; the last column is not padded. */
void cli_table_print(cli_table_t *t, FILE *out)
{
    size_t width[TABLE_MAX_COLS] = { 0 };
    for (size_t r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
            size_t n = s ? strlen(s) : 0;
            if (n > width[c])
                width[c] = n;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
            s = s ? s : "";
            bool last = c == t->ncols - 1;
            if (t->right[c])
                fprintf(out, "%*s%s", (int)width[c], s, last ? "" : "  ");
            else if (last)
                fputs(s, out);
            else
                fprintf(out, "%-*s  ", (int)width[c], s);
        }
        fputc('\n', out);
    }
}

void cli_table_free(cli_table_t *t)
{
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}


/* Print a JSON value, indented, on stdout, times in RFC 3339 beside
 * the "_ms" ones (gp_json_add_times). */
int cli_print_json(const json_t *j)
{
    json_t *copy = json_deep_copy(j);
    if (copy)
        gp_json_add_times(copy);
    char *s = copy ? json_dumps(copy, JSON_INDENT(2) | JSON_ENCODE_ANY) : NULL;
    json_decref(copy);
    if (s == NULL) {
        cli_error("out of memory");
        return EX_OSERR;
    }
    puts(s);
    free(s);
    return 0;
}

/* A response that must carry an array under key. */
json_t *cli_array(const json_t *j, const char *key)
{
    json_t *a = json_object_get(j, key);
    if (!json_is_array(a)) {
        cli_error("the answer has no \"%s\" array", key);
        return NULL;
    }
    return a;
}

/* ------------------------------------------------------------- jobs and allocations */

/* A slice's compute share: "25%", or "no cap" for a memory-only slice
 * (compute 0: it may use whatever GPU time the others leave). */
void cli_fmt_compute(char *out, size_t size, double pct)
{
    if (pct <= 0)
        gp_strlcpy(out, "no cap", size);
    else
        snprintf(out, size, "%g%%", pct);
}

/* What a job asked for: "2 whole", "1x 10G 25%", "1x 40% mem". */
void cli_fmt_request(char *out, size_t size, const json_t *spec)
{
    int64_t n = cli_int(spec, "devices");
    if (n == 0)
        n = cli_int(spec, "nvidia.com/gpu");
    int64_t mem = cli_int(spec, "mem_mib");
    double memp = cli_num(spec, "mem_percent");
    double comp = cli_num(spec, "compute_percent");
    bool whole = json_is_true(json_object_get(spec, "whole")) ||
                 (n > 0 && mem == 0 && memp == 0 && comp == 0);
    if (n == 0) {
        gp_strlcpy(out, "cpu", size);
    } else if (whole) {
        snprintf(out, size, "%" PRId64 " whole", n);
    } else {
        char m[32] = "";
        if (mem > 0)
            cli_fmt_mib(m, sizeof m, mem);
        else if (memp > 0)
            snprintf(m, sizeof m, "%g%%mem", memp);
        else
            gp_strlcpy(m, "all-mem", sizeof m);
        char c[16];
        cli_fmt_compute(c, sizeof c, comp);
        snprintf(out, size, "%" PRId64 "x %s %s", n, m, c);
    }
}

/* Where a job runs: "gpu0 10G 25%", "gpu0,1 whole". */
void cli_fmt_alloc(char *out, size_t size, const json_t *alloc)
{
    json_t *devs = json_object_get(alloc, "devices");
    size_t n = json_array_size(devs);
    if (n == 0) {
        gp_strlcpy(out, "cpu", size);
        return;
    }
    char idx[64] = "gpu";
    size_t k = 3;
    for (size_t i = 0; i < n && k + 8 < sizeof idx; i++)
        k += (size_t)snprintf(idx + k, sizeof idx - k, "%s%" PRId64, i ? "," : "",
                              cli_int(json_array_get(devs, i), "index"));
    const json_t *d0 = json_array_get(devs, 0);
    if (json_is_true(json_object_get(d0, "whole"))) {
        snprintf(out, size, "%s whole", idx);
        return;
    }
    char m[32];
    cli_fmt_mib(m, sizeof m, cli_int(d0, "mem_mib"));
    double pct = json_object_get(d0, "compute_percent") ? cli_num(d0, "compute_percent")
                                                         : cli_num(d0, "compute_permille") / 10.0;
    char c[16];
    cli_fmt_compute(c, sizeof c, pct);
    snprintf(out, size, "%s %s %s", idx, m, c);
}

/* The elements of a JSON array sorted by one or two string fields (a view:
 * the array owns them).  Caller frees the returned array. */
static const char *s_sort_k1, *s_sort_k2;

static int s_cmp_fields(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(cli_str(x, s_sort_k1), cli_str(y, s_sort_k1));
    if (c == 0 && s_sort_k2)
        c = strcmp(cli_str(x, s_sort_k2), cli_str(y, s_sort_k2));
    return c;
}

json_t **cli_sorted(const json_t *array, const char *k1, const char *k2, size_t *n)
{
    *n = json_array_size(array);
    json_t **v = calloc(*n ? *n : 1, sizeof *v);
    if (v == NULL) {
        cli_error("out of memory");
        exit(EX_OSERR);
    }
    for (size_t i = 0; i < *n; i++)
        v[i] = json_array_get(array, i);
    s_sort_k1 = k1;
    s_sort_k2 = k2;
    qsort(v, *n, sizeof *v, s_cmp_fields);
    return v;
}

int cli_cmp_jobs(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    /* by the second of submission, then by id: a batch reads in order */
    int64_t tx = cli_int(x, "submitted_ms") / 1000, ty = cli_int(y, "submitted_ms") / 1000;
    if (tx != ty)
        return tx < ty ? -1 : 1;
    return strcmp(cli_str(x, "id"), cli_str(y, "id"));
}

