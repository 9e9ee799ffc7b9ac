/* The shared basics: the error idiom, strict parsers, the logger's format. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "tap.h"
#include "util.h"

int main(void)
{
    gp_err_t err;
    is_int(gp_err_set(&err, GP_ERR_TIMEOUT, "no answer from %s", "m1"), -1, "gp_err_set returns -1");
    is_str(err.msg, "no answer from m1", "the message is formatted");
    is_str(gp_err_name(err.code), "timeout", "the code has a name");
    is_int(gp_err_set(NULL, GP_ERR_IO, "x"), -1, "a NULL error is allowed");

    int64_t i = 7;
    is_int(gp_parse_int64("-42", -100, 100, &i), 0, "parse -42");
    is_int(i, -42, "-42 parsed");
    i = 7;
    ok(gp_parse_int64("12x", 0, 100, &i) < 0 && i == 7, "trailing garbage rejected, output untouched");
    ok(gp_parse_int64("", 0, 100, &i) < 0, "empty string rejected");
    ok(gp_parse_int64("101", 0, 100, &i) < 0, "out of range rejected");
    ok(gp_parse_int64("99999999999999999999", INT64_MIN, INT64_MAX, &i) < 0, "overflow rejected");
    uint64_t u;
    ok(gp_parse_uint64("-1", UINT64_MAX, &u) < 0, "negative unsigned rejected");
    uint64_t mib = 0;
    ok(gp_parse_mib("4GiB", &mib) == 0 && mib == 4096, "4GiB is 4096 MiB");
    ok(gp_parse_mib("512", &mib) == 0 && mib == 512, "a bare number is MiB");
    ok(gp_parse_mib("4 G", &mib) < 0 && gp_parse_mib("4X", &mib) < 0, "bad units rejected");
    int64_t ms = 0;
    ok(gp_parse_duration_ms("2s", &ms) == 0 && ms == 2000, "2s is 2000 ms");
    ok(gp_parse_duration_ms("250ms", &ms) == 0 && ms == 250, "250ms");
    ok(gp_parse_duration_ms("1.5s", &ms) < 0, "fractions rejected");
    double d;
    ok(gp_parse_double("nan", 0, 1, &d) < 0, "NaN rejected");

    char buf[8];
    is_int(gp_strlcpy(buf, "abcdefghij", sizeof buf), 10, "strlcpy returns the source length");
    is_str(buf, "abcdefg", "strlcpy truncates and terminates");

    /* The logger writes one line with level and key=value fields. */
    int fds[2];
    if (pipe(fds) < 0)
        bail_out("pipe");
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    gp_log_init("test_common", GP_LOG_INFO);
    gp_log_debug("hidden");
    gp_log_warn("disk low free_mib=%d", 12);
    dup2(saved, STDERR_FILENO);
    close(fds[1]);
    char line[512] = { 0 };
    ssize_t n = read(fds[0], line, sizeof line - 1);
    ok(n > 0 && strstr(line, "test_common[") && strstr(line, "] warn: disk low free_mib=12\n"),
       "a log line carries program, pid, level and fields");
    ok(strstr(line, "hidden") == NULL, "levels below the configured one are not printed");
    gp_log_level_t lv;
    ok(gp_log_parse_level("debug", &lv) == 0 && lv == GP_LOG_DEBUG, "level names parse");
    ok(gp_log_parse_level("loud", &lv) < 0, "unknown level names are rejected");
    return done_testing();
}
