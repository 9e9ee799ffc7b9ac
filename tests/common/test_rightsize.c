/* Right-sizing: classes, decaying summaries, recommendations, the OOM bump,
 * what `auto` applies, and stored summaries that are garbage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rightsize.h"
#include "tap.h"

static gp_rightsize_run_t s_run(int64_t peak, int oom, int64_t asked, int cpt_busy)
{
    gp_rightsize_run_t r;
    memset(&r, 0, sizeof r);
    r.mem_peak_mib = peak;
    r.oom = oom;
    r.asked_mem_mib = asked;
    r.asked_compute_pct = 50;
    r.end = 1;
    if (cpt_busy >= 0)
        gp_rightsize_run_busy(&r, cpt_busy);
    return r;
}

int main(void)
{
    gp_rightsize_opts_t o = GP_RIGHTSIZE_OPTS_DEFAULT;
    char cls[128];

    /* Classes */
    ok(gp_rightsize_class("team-a", NULL, "train-42", cls, sizeof cls) == 0, "class of train-42");
    is_str(cls, "team-a.train", "owner and the id without its -N suffix");
    gp_rightsize_class("team-a", "", "eval17", cls, sizeof cls);
    is_str(cls, "team-a.eval", "a numeric suffix is removed too");
    gp_rightsize_class("", "bert-large", "x-1", cls, sizeof cls);
    is_str(cls, "bert-large", "the class field wins; no owner, no prefix");
    gp_rightsize_class("t", NULL, "123", cls, sizeof cls);
    is_str(cls, "t.123", "an id of digits alone is its own class");
    ok(gp_rightsize_class("a/b", NULL, "x", cls, sizeof cls) < 0,
       "an owner that cannot be part of a key has no class");

    /* No history: as requested */
    gp_rightsize_rec_t rec;
    gp_rightsize_t *s = gp_rightsize_new("team-a.train", "team-a");
    gp_rightsize_recommend(s, &o, &rec);
    ok(!rec.have, "a class without runs has no recommendation");
    int64_t mem;
    int cpt;
    gp_rightsize_apply(&rec, 8192, 50, 0, 0, &mem, &cpt);
    ok(mem == 8192 && cpt == 50, "and is placed as requested (got %lld MiB %d%%)", (long long)mem, cpt);

    /* Convergence: runs peaking at 2.8-3 GiB of an 8 GiB request */
    int64_t peaks[] = { 2900, 3072, 2800, 3010, 3072 };
    for (int i = 0; i < 5; i++) {
        gp_rightsize_run_t r = s_run(peaks[i], 0, 8192, 30 + i);
        gp_rightsize_add_run(s, &r, 1000000 + i * 60000, &o);
    }
    gp_rightsize_recommend(s, &o, &rec);
    ok(rec.have && rec.runs == 5, "five runs learned");
    ok(rec.mem_mib >= 3072 && rec.mem_mib <= 3072 * 1.10,
       "memory within 10%% above the true p95 (3072): %lld", (long long)rec.mem_mib);
    is_int(rec.mem_mib % 128, 0, "rounded to the 128 MiB granularity");
    is_int(rec.mem_max, 3072, "observed max");
    ok(rec.mem_p50 >= 2900 && rec.mem_p50 <= 3072, "p50 among the peaks: %lld", (long long)rec.mem_p50);
    is_int(rec.compute_max, 34, "compute max of the busy windows");
    is_int(rec.compute_pct, 40, "compute: p90 of 30..34 (34) plus 15%%, rounded up");
    gp_rightsize_apply(&rec, 8192, 50, 0, 0, &mem, &cpt);
    is_int(mem, rec.mem_mib, "auto applies the recommendation below the request");
    is_int(cpt, 40, "and its compute");
    gp_rightsize_rec_t r3 = rec;
    r3.compute_pct = 20;
    gp_rightsize_apply(&r3, 8192, 50, 0, 0, &mem, &cpt);
    is_int(cpt, 34, "compute never below its max either");

    /* Never above the request, never below the max */
    gp_rightsize_apply(&rec, 2048, 20, 0, 0, &mem, &cpt);
    is_int(mem, 3072, "a request under the observed max is raised to the max");
    gp_rightsize_rec_t r2 = rec;
    r2.mem_mib = 2048;   /* a recommendation under the max (a lower percentile) */
    gp_rightsize_apply(&r2, 8192, 50, 0, 0, &mem, &cpt);
    is_int(mem, 3072, "auto never goes below the observed max");
    r2 = rec;
    r2.mem_mib = 9000;
    r2.mem_max = 3000;
    gp_rightsize_apply(&r2, 8192, 50, 0, 0, &mem, &cpt);
    is_int(mem, 8192, "never above the request without an OOM");

    /* OOM bump */
    is_int(gp_rightsize_oom_bump(1000, &o), 1256, "bump: peak + 256 for small peaks");
    is_int(gp_rightsize_oom_bump(4096, &o), 4916, "bump: peak x 1.2 for large ones");
    gp_rightsize_run_t r = s_run(3328, 1, 8192, -1);
    gp_rightsize_add_run(s, &r, 1000000 + 6 * 60000, &o);
    gp_rightsize_recommend(s, &o, &rec);
    ok(rec.mem_mib >= 3993, "after an OOM at 3328 the next recommendation is >= 3328 x 1.2: %lld",
       (long long)rec.mem_mib);
    is_int(rec.ooms, 1, "the OOM is counted");
    gp_rightsize_apply(&rec, 3328, 50, 0, 0, &mem, &cpt);
    ok(mem >= 3993, "the bump may go above the request: %lld", (long long)mem);
    gp_rightsize_apply(NULL, 3328, 50, 4000, 0, &mem, &cpt);
    is_int(mem, 4000, "a record's bump floor applies even without history");
    gp_rightsize_apply(&rec, 3328, 50, 0, 3600, &mem, &cpt);
    is_int(mem, 3600, "a bump above the request is held to the largest device");
    gp_rightsize_apply(&rec, 3328, 50, 0, 3000, &mem, &cpt);
    is_int(mem, 3328, "and never below the request for it");

    /* Decay: old runs fade */
    gp_rightsize_t *d = gp_rightsize_new("c", NULL);
    for (int i = 0; i < 20; i++) {
        gp_rightsize_run_t big = s_run(16000, 0, 20000, -1);
        gp_rightsize_add_run(d, &big, 1000, &o);
    }
    for (int i = 0; i < 3; i++) {
        gp_rightsize_run_t small = s_run(1000, 0, 20000, -1);
        gp_rightsize_add_run(d, &small, 1000 + 10 * o.half_life_ms, &o);
    }
    gp_rightsize_recommend(d, &o, &rec);
    ok(rec.mem_p50 <= 1100, "after ten half-lives three new runs outweigh twenty old ones: p50 %lld",
       (long long)rec.mem_p50);
    is_int(rec.mem_max, 16000, "the max does not decay");

    /* Codec round trip, fixed size */
    for (int i = 0; i < 5000; i++) {
        gp_rightsize_run_t many = s_run(100 + i * 37 % 70000, 0, 80000, i % 100);
        gp_rightsize_add_run(d, &many, 2000000000 + i, &o);
    }
    char *text = gp_rightsize_dump(d);
    ok(text && strlen(text) < 12000, "5,023 runs fit in a fixed-size summary (%zu bytes)",
       text ? strlen(text) : 0);
    gp_err_t err;
    gp_rightsize_t *back = gp_rightsize_from_json_str(text, strlen(text), &err);
    ok(back != NULL, "the summary reads back");
    char *text2 = back ? gp_rightsize_dump(back) : NULL;
    ok(text2 && !strcmp(text, text2), "identically");
    free(text);
    free(text2);
    gp_rightsize_destroy(&back);
    ok(back == NULL, "destroy clears the pointer");

    /* Garbage is refused, naming what is wrong */
    static const char *const bad[] = {
        "not json",
        "[]",
        "{\"v\":2,\"class\":\"c\",\"updated_ms\":1,\"runs\":1,\"ends\":1,\"ooms\":0,\"mem\":{\"max_mib\":1,\"buckets\":[]},\"compute\":{\"max_pct\":-1,\"buckets\":[]},\"asked\":{\"mem_mib\":0,\"compute_percent\":0}}",
        "{\"v\":1,\"class\":\"a/b\",\"updated_ms\":1,\"runs\":1,\"ends\":1,\"ooms\":0,\"mem\":{\"max_mib\":1,\"buckets\":[]},\"compute\":{\"max_pct\":-1,\"buckets\":[]},\"asked\":{\"mem_mib\":0,\"compute_percent\":0}}",
        "{\"v\":1,\"class\":\"c\",\"updated_ms\":1,\"runs\":1,\"ends\":1,\"ooms\":0,\"mem\":{\"max_mib\":1,\"buckets\":[[900,1]]},\"compute\":{\"max_pct\":-1,\"buckets\":[]},\"asked\":{\"mem_mib\":0,\"compute_percent\":0}}",
        "{\"v\":1,\"class\":\"c\",\"updated_ms\":1,\"runs\":1,\"ends\":1,\"ooms\":0,\"mem\":{\"max_mib\":1,\"buckets\":[[0,-1]]},\"compute\":{\"max_pct\":-1,\"buckets\":[]},\"asked\":{\"mem_mib\":0,\"compute_percent\":0}}",
        "{\"v\":1,\"class\":\"c\",\"updated_ms\":1,\"runs\":1,\"ends\":1,\"ooms\":0,\"mem\":{\"max_mib\":40,\"buckets\":[[100,1]]},\"compute\":{\"max_pct\":-1,\"buckets\":[]},\"asked\":{\"mem_mib\":0,\"compute_percent\":0}}",
        "{\"v\":1,\"class\":\"c\",\"updated_ms\":1,\"runs\":1,\"ends\":1,\"ooms\":2,\"mem\":{\"max_mib\":1,\"buckets\":[]},\"compute\":{\"max_pct\":-1,\"buckets\":[]},\"asked\":{\"mem_mib\":0,\"compute_percent\":0}}",
        "{\"v\":1,\"class\":\"c\",\"updated_ms\":1,\"runs\":1,\"ends\":1,\"ooms\":0,\"mem\":{\"max_mib\":1,\"buckets\":[]},\"compute\":{\"max_pct\":101,\"buckets\":[]},\"asked\":{\"mem_mib\":0,\"compute_percent\":0}}",
        "{\"v\":1,\"class\":\"c\",\"updated_ms\":1,\"runs\":1,\"ends\":1,\"ooms\":0,\"mem\":{\"max_mib\":1,\"buckets\":[[0,1],[0,1]]},\"compute\":{\"max_pct\":-1,\"buckets\":[]},\"asked\":{\"mem_mib\":0,\"compute_percent\":0}}",
        "{\"v\":1,\"class\":\"c\",\"updated_ms\":1,\"runs\":1,\"ends\":1,\"ooms\":0,\"mem\":{\"max_mib\":1,\"buckets\":[]},\"compute\":{\"max_pct\":-1,\"buckets\":[]}}",
    };
    int refused = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gp_err_clear(&err);
        gp_rightsize_t *g = gp_rightsize_from_json_str(bad[i], strlen(bad[i]), &err);
        if (g == NULL && err.code == GP_ERR_INVALID && err.msg[0])
            refused++;
        else
            diag("accepted garbage #%zu: %s", i, bad[i]);
        gp_rightsize_destroy(&g);
    }
    is_int(refused, (int)(sizeof bad / sizeof bad[0]), "every malformed summary is refused with a reason");

    /* Modes */
    int okm;
    ok(gp_rightsize_mode_parse("auto", &okm) == GP_RIGHTSIZE_AUTO && okm, "mode auto");
    gp_rightsize_mode_parse("sometimes", &okm);
    ok(!okm, "an unknown mode is refused");

    gp_rightsize_destroy(&s);
    gp_rightsize_destroy(&d);
    return done_testing();
}
