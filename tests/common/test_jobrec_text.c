/* A job record written as text (gp_jobrec_dump) is the text json_dumps
 * writes for gp_jobrec_to_json, byte for byte: records of every field,
 * through their state changes, with strings that need escapes, reals of
 * every form, and the cases the text writer leaves to the tree (a string
 * that is not UTF-8, a repeated env name). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobrec.h"
#include "tap.h"

static int s_same(const gp_jobrec_t *rec, char **mine_out)
{
    json_t *o = gp_jobrec_to_json(rec);
    char *theirs = o ? json_dumps(o, JSON_COMPACT) : NULL;
    char *mine = gp_jobrec_dump(rec);
    int r = theirs && mine && !strcmp(theirs, mine);
    if (!r)
        diag("tree: %s\ntext: %s", theirs ? theirs : "(none)", mine ? mine : "(none)");
    json_decref(o);
    free(theirs);
    *mine_out = mine;
    return r;
}

int main(void)
{
    static const char *const subs[] = {
        "{\"id\":\"j-1\",\"devices\":1,\"mem_mib\":8192,\"compute_percent\":10}",
        "{\"id\":\"cpu\",\"devices\":0,\"cpu_milli\":500,\"host_mem_mib\":64}",
        "{\"id\":\"train-7\",\"devices\":2,\"priority\":-40,\"owner\":\"team-a\",\"class\":\"train\","
        "\"rightsize\":\"auto\",\"ttl_after_finished_s\":30,\"command\":[\"sh\",\"-c\",\"echo \\\"hi\\\"\\n\"],"
        "\"env\":{\"A\":\"b\",\"S\":{\"secret\":\"x\\u0001\"},\"E\":\"\"},\"restart\":\"on-failure\","
        "\"max_restarts\":9,\"grace_s\":0,\"compute_mode\":\"share\"}",
        "{\"id\":\"g-1\",\"devices\":1,\"gang\":\"g\",\"gang_size\":4,\"priority\":900,\"policy\":\"binpack\","
        "\"ttl_after_finished_s\":2.5,\"labels\":{\"k\":\"v\",\"z\":\"caf\\u00e9\"},\"models\":[\"A100\",\"H100\"],"
        "\"exclude_vendors\":[\"amd\"],\"regions\":[\"r1\"],\"prefer_zones\":[\"z1\",\"z2\"],\"mem_percent\":33.3}",
        "{\"id\":\"d\",\"duration_s\":0.00001,\"devices\":1,\"whole\":true,\"restart\":\"always\"}",
        "{\"id\":\"c\",\"devices\":1,\"mem_mib\":1024,\"image\":\"localhost/app:1\",\"workdir\":\"/w\","
        "\"user\":\"1000:1000\",\"mounts\":[\"/data:/data:ro\",\"/tmp/x:/x\",\"/y:/y:rw\"],\"duration_s\":86400.5}",
    };
    int n = 0, same = 0;
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        gp_jobrec_t rec;
        gp_err_t err;
        if (gp_jobrec_from_submission(subs[i], strlen(subs[i]), "r1", 1796300000000LL, &rec, &err) < 0) {
            diag("submission %zu refused: %s", i, err.msg);
            n++;
            continue;
        }
        char *mine;
        for (int step = 0; step < 4; step++) {
            if (step == 1) {
                rec.attempts++;
                gp_jobrec_set_state(&rec, GP_JOB_PLACED, "n-0001", "attempt 1", 1796300000100LL);
                gp_jobrec_set_state(&rec, GP_JOB_RUNNING, "n-0001", "started \"now\"\t\x7f", 1796300000101LL);
                rec.applied_mem_mib = 4096;
                rec.applied_compute_pct = 25;
            } else if (step == 2) {
                rec.exit_code = 137;
                rec.restarts = 2;
                rec.restart_delay_ms = 20000;
                rec.restart_at_ms = 1796300020000LL;
                rec.rightsize_floor_mib = 9000;
                gp_jobrec_set_state(&rec, GP_JOB_PENDING, "", "killed by signal 9; restarting",
                                    1796300000200LL);
            } else if (step == 3) {
                gp_jobrec_set_state(&rec, GP_JOB_FAILED, "n-2", "caf\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80",
                                    1796300000300LL);
            }
            n++;
            same += s_same(&rec, &mine);
            free(mine);
        }
        gp_jobrec_clear(&rec);
    }
    is_int(same, n, "records of every field, through their state changes: jansson's bytes (%d)", n);

    /* What the text writer leaves to the tree: the same bytes still. */
    gp_jobrec_t rec;
    gp_err_t err;
    const char *sub = "{\"id\":\"t\",\"devices\":1,\"env\":{\"A\":\"1\",\"B\":\"2\"}}";
    int ok_sub = gp_jobrec_from_submission(sub, strlen(sub), "r1", 1, &rec, &err) == 0;
    ok(ok_sub, "a submission with env");
    char *mine = NULL;
    if (ok_sub) {
        gp_strlcpy(rec.reason, "bad \xc3\x28 utf-8", sizeof rec.reason);
        int r = s_same(&rec, &mine);
        ok(r, "a reason that is not UTF-8: %s", mine ? mine : "");
        free(mine);
        gp_strlcpy(rec.reason, "ok", sizeof rec.reason);
        char *dup = strdup("A=3");
        char *old = rec.env[1];
        rec.env[1] = dup;
        r = s_same(&rec, &mine);
        ok(r, "a repeated env name: %s", mine ? mine : "");
        free(mine);
        rec.env[1] = old;
        free(dup);
        gp_jobrec_clear(&rec);
    }
    return done_testing();
}
