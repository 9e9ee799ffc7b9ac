/*
 * tap.h - Test Anything Protocol for gpupool's C unit tests.
 *
 * A test program prints a plan and one line per check; prove reads them.
 *
 *     int main(void) {
 *         plan(2);                         // or done_testing() at the end
 *         ok(1 + 1 == 2, "arithmetic");
 *         is_int(gp_parse_mib("4G"), 4096, "4G is 4096 MiB");
 *         return done_testing();
 *     }
 *
 * A failing check prints, as TAP diagnostics, where it is (file:line) and
 * what it got and expected.  done_testing() prints the plan when none was
 * given and returns the exit status (0 only when every check passed and the
 * plan was kept).  Checks are not thread-safe: make them from one thread.
 */
#ifndef GP_TAP_H
#define GP_TAP_H

#include <stdint.h>

void tap_plan(int n);
int tap_ok(int pass, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int tap_is_int(int64_t got, int64_t expected, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int tap_is_str(const char *got, const char *expected, const char *file, int line,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tap_skip(int n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tap_bail_out(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
int tap_done_testing(void);
int tap_failures(void);

#define plan(n)                 tap_plan(n)
#define ok(cond, ...)           tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, exp, ...)   tap_is_int((int64_t)(got), (int64_t)(exp), __FILE__, __LINE__, __VA_ARGS__)
#define is_str(got, exp, ...)   tap_is_str((got), (exp), __FILE__, __LINE__, __VA_ARGS__)
#define diag(...)               tap_diag(__VA_ARGS__)
#define skip(n, ...)            tap_skip((n), __VA_ARGS__)
#define bail_out(...)           tap_bail_out(__VA_ARGS__)
#define done_testing()          tap_done_testing()

#endif
