/* A job record's summary read in place (gp_jobrec_sum_scan) is what the
 * parsed record gives (gp_jobrec_sum_json), field by field, for the
 * records gpupool writes and for hand-written variants; the scan refuses
 * what it cannot read exactly (escapes, text beyond ASCII, numbers of
 * another type, JSON that jansson refuses), never reading it otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobrec.h"
#include "tap.h"

static int s_span_eq(gp_jscan_span_t a, gp_jscan_span_t b)
{
    if (a.p == NULL || b.p == NULL)
        return a.p == b.p;
    return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

/* Which field differs, or NULL. */
static const char *s_diff(const gp_jobrec_sum_t *a, const gp_jobrec_sum_t *b)
{
#define S_SPAN(f) if (!s_span_eq(a->f, b->f)) return #f
#define S_INT(f) if (a->f != b->f) return #f
    S_SPAN(state); S_SPAN(region); S_SPAN(owner); S_SPAN(node); S_SPAN(reason);
    S_SPAN(rightsize); S_SPAN(cls); S_SPAN(gang);
    S_INT(attempts); S_INT(floor_mib); S_INT(submitted_ms); S_INT(restart_at_ms);
    S_INT(updated_ms); S_INT(priority); S_INT(devices); S_INT(gang_size); S_INT(ttl_ms);
#undef S_SPAN
#undef S_INT
    return NULL;
}

/* The scan's answer for text: 1 read (and equal to the tree's), 0 refused,
 * -1 read but different from the tree's, or read where jansson refuses. */
static int s_check(const char *text, const char **field)
{
    gp_jobrec_sum_t scanned, parsed;
    *field = "";
    bool took = gp_jobrec_sum_scan(text, strlen(text), &scanned);
    json_t *o = json_loads(text, 0, NULL);
    if (!took) {
        json_decref(o);
        return 0;
    }
    if (o == NULL) {
        *field = "(jansson refuses it)";
        return -1;
    }
    gp_jobrec_sum_json(o, &parsed);
    const char *d = s_diff(&scanned, &parsed);
    int r = d ? -1 : 1;
    if (d)
        *field = d;
    json_decref(o);
    return r;
}

static char *s_written(const char *submission, int steps)
{
    gp_jobrec_t rec;
    gp_err_t err;
    if (gp_jobrec_from_submission(submission, strlen(submission), "r1", 1796300000000LL, &rec,
                                  &err) < 0) {
        diag("submission refused: %s: %s", submission, err.msg);
        return NULL;
    }
    if (steps >= 1) {
        rec.attempts++;
        gp_jobrec_set_state(&rec, GP_JOB_PLACED, "n-0001", "attempt 1", 1796300000100LL);
        gp_jobrec_set_state(&rec, GP_JOB_RUNNING, "n-0001", "started", 1796300000101LL);
    }
    if (steps >= 2) {
        rec.exit_code = 1;
        rec.restarts = 2;
        rec.restart_delay_ms = 20000;
        rec.restart_at_ms = 1796300020000LL;
        rec.rightsize_floor_mib = 9000;
        gp_jobrec_set_state(&rec, GP_JOB_PENDING, "", "exited with code 1; restarting",
                            1796300000200LL);
    }
    char *text = gp_jobrec_dump(&rec);
    gp_jobrec_clear(&rec);
    return text;
}

int main(void)
{
    /* What gpupool writes: read in place, equal to the tree. */
    static const char *const subs[] = {
        "{\"id\":\"j-1\",\"devices\":1,\"mem_mib\":8192,\"compute_percent\":10}",
        "{\"id\":\"train-7\",\"devices\":2,\"priority\":-40,\"owner\":\"team-a\",\"class\":\"train\","
        "\"rightsize\":\"recommend\",\"ttl_after_finished_s\":30,\"command\":[\"sleep\",\"1\"],"
        "\"env\":{\"A\":\"b\",\"S\":{\"secret\":\"x\"}},\"restart\":\"on-failure\"}",
        "{\"id\":\"g-1\",\"devices\":1,\"gang\":\"g\",\"gang_size\":4,\"priority\":900,"
        "\"ttl_after_finished_s\":2.5,\"labels\":{\"k\":\"v\"},\"models\":[\"A100\"]}",
        "{\"id\":\"cpu-1\",\"devices\":0,\"cpu_milli\":500,\"duration_s\":1.25,\"grace_s\":5}",
    };
    int n = 0, took = 0, same = 0;
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        for (int steps = 0; steps <= 2; steps++) {
            char *text = s_written(subs[i], steps);
            const char *field;
            int r = text ? s_check(text, &field) : -2;
            n++;
            took += r != 0;
            same += r == 1;
            if (r != 1)
                diag("record %zu step %d: %d %s: %s", i, steps, r, field, text ? text : "");
            free(text);
        }
    is_int(took, n, "every record gpupool writes is read in place (%d)", n);
    is_int(same, n, "and gives what the parsed record gives, field by field");

    /* Hand-written: read, and equal. */
    static const char *const plain[] = {
        "{}",
        " {\n \"state\" : \"running\" ,\"node\":\"n-1\",\n\t\"attempts\": 3 } \n",
        "{\"state\":\"failed\",\"reason\":\"\",\"spec\":{},\"attempts\":-2,\"x\":null,\"y\":true,"
        "\"z\":[1,-2.5e3,{\"a\":[[]]},\"s\",false],\"history\":[{\"at_ms\":1,\"node\":\"\"}]}",
        "{\"ttl_after_finished_s\":30,\"updated_ms\":0,\"submitted_ms\":1796300000000}",
        "{\"ttl_after_finished_s\":1.5e1,\"spec\":{\"gang\":\"g\",\"gang_size\":2,\"x\":{\"y\":0}}}",
        "{\"attempts\":1,\"attempts\":2,\"state\":\"lost\",\"state\":\"failed\"}",   /* the last wins */
        "{\"spec\":{\"priority\":-1000,\"devices\":16},\"rightsize\":\"auto\",\"class\":\"c\","
        "\"owner\":\"o\",\"region\":\"r2\",\"restart_at_ms\":5,\"rightsize_floor_mib\":7}",
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        const char *field;
        int r = s_check(plain[i], &field);
        is_int(r, 1, "read in place and equal: %s %s", plain[i], field);
    }

    /* Refused: what the scan cannot read exactly, or what is not JSON. */
    static const char *const refused[] = {
        "{\"reason\":\"say \\\"hi\\\"\"}",            /* an escape */
        "{\"reason\":\"caf\xc3\xa9\"}",               /* beyond ASCII: jansson checks UTF-8 */
        "{\"reason\":\"a\tb\"}",                      /* a raw control character */
        "{\"attempts\":\"3\"}",                       /* json_integer_value of a string is 0 */
        "{\"attempts\":1.5}",                         /* and of a real */
        "{\"attempts\":1e2}",
        "{\"attempts\":01}",                          /* not JSON */
        "{\"x\":01.5}",
        "{\"spec\":{\"priority\":\"9\"}}",
        "{\"node\":null}",                            /* absent for the tree, not a string */
        "{\"ttl_after_finished_s\":\"30\"}",
        "{\"state\":\"running\"} x",                  /* trailing text */
        "{\"state\":\"running\"",                     /* cut */
        "{\"state\":\"running\",}",
        "[]",
        "",
        "{\"attempts\":99999999999999999999}",        /* beyond int64: jansson refuses */
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const char *field;
        int r = s_check(refused[i], &field);
        is_int(r, 0, "refused: %s %s", refused[i], field);
    }

    /* The nesting the scan follows is bounded (its stack is not). */
    gp_jobrec_sum_t m;
    const char *deep = "{\"z\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}";
    ok(!gp_jobrec_sum_scan(deep, strlen(deep), &m), "nesting beyond 32 levels is refused");
    /* Numbers as jansson reads them (json_number_value), or not taken. */
    static const char *const nums[] = { "0", "-0", "7", "-12", "0.5", "1e3", "-2.5E-3",
                                        "0.30000000000000004", "9223372036854775807",
                                        "123456789.123456789e-5" };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        gp_jscan_t sc = GP_JSCAN_INIT(nums[i], strlen(nums[i]));
        double v = -1;
        json_t *t = json_loads(nums[i], JSON_DECODE_ANY, NULL);
        ok(gp_jscan_num(&sc, &v) && sc.p == sc.end && t && v == json_number_value(t),
           "number %s read as jansson reads it", nums[i]);
        json_decref(t);
    }
    static const char *const notnums[] = { "9223372036854775808", "1e999", "01", "1.", "-",
                                           "\"3\"", "true", ".5" };
    for (size_t i = 0; i < sizeof notnums / sizeof notnums[0]; i++) {
        gp_jscan_t sc = GP_JSCAN_INIT(notnums[i], strlen(notnums[i]));
        double v;
        json_t *t = json_loads(notnums[i], JSON_DECODE_ANY, NULL);
        ok(!(gp_jscan_num(&sc, &v) && sc.p == sc.end) && !json_is_number(t),
           "%s: no number for jansson, none taken", notnums[i]);
        json_decref(t);
    }
    return done_testing();
}
