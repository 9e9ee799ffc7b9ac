#include "tap.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static int s_planned = -1;
static int s_run;
static int s_failed;

void tap_plan(int n)
{
    s_planned = n;
    printf("1..%d\n", n);
    fflush(stdout);
}

static void s_vline(int pass, const char *fmt, va_list ap)
{
    s_run++;
    if (!pass)
        s_failed++;
    printf("%sok %d - ", pass ? "" : "not ", s_run);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
}

int tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vline(pass, fmt, ap);
    va_end(ap);
    if (!pass)
        tap_diag("  Failed test at %s:%d", file, line);
    return pass;
}

int tap_is_int(int64_t got, int64_t expected, const char *file, int line, const char *fmt, ...)
{
    int pass = got == expected;
    va_list ap;
    va_start(ap, fmt);
    s_vline(pass, fmt, ap);
    va_end(ap);
    if (!pass) {
        tap_diag("  Failed test at %s:%d", file, line);
        tap_diag("         got: %" PRId64, got);
        tap_diag("    expected: %" PRId64, expected);
    }
    return pass;
}

int tap_is_str(const char *got, const char *expected, const char *file, int line,
               const char *fmt, ...)
{
    int pass = (got == NULL && expected == NULL) ||
               (got != NULL && expected != NULL && strcmp(got, expected) == 0);
    va_list ap;
    va_start(ap, fmt);
    s_vline(pass, fmt, ap);
    va_end(ap);
    if (!pass) {
        tap_diag("  Failed test at %s:%d", file, line);
        tap_diag("         got: %s%s%s", got ? "'" : "", got ? got : "NULL", got ? "'" : "");
        tap_diag("    expected: %s%s%s", expected ? "'" : "", expected ? expected : "NULL",
                 expected ? "'" : "");
    }
    return pass;
}

void tap_diag(const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* One "# " per line, so that multi-line messages stay diagnostics. */
    char *save = NULL;
    for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        fprintf(stdout, "# %s\n", l);
    fflush(stdout);
}

void tap_skip(int n, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    for (int i = 0; i < n; i++)
        printf("ok %d # skip %s\n", ++s_run, why);
    fflush(stdout);
}

void tap_bail_out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("Bail out! ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    exit(255);
}

int tap_failures(void) { return s_failed; }

int tap_done_testing(void)
{
    if (s_planned < 0) {
        printf("1..%d\n", s_run);
    } else if (s_planned != s_run) {
        tap_diag("Looks like you planned %d tests but ran %d.", s_planned, s_run);
        fflush(stdout);
        return 255;
    }
    if (s_failed)
        tap_diag("Looks like you failed %d test%s of %d.", s_failed, s_failed == 1 ? "" : "s",
                 s_run);
    fflush(stdout);
    return s_failed > 254 ? 254 : s_failed;
}
