/* An allocation written as text (gp_alloc_dump_buf) is the text jansson
 * writes for gp_alloc_to_json, byte for byte, over every compute share and
 * every optional member; names that need escapes read back equal; the
 * JSON value writers of util.h escape what JSON requires and keep reals
 * reals.  Read back, the in-place reader (gp_alloc_scan) takes what
 * gpupool writes and gives what the tree gives; what it does not take,
 * gp_alloc_from_json_str still reads (or refuses) as the tree does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "tap.h"
#include "util.h"

/* The tree's reading of text: 0 read (into *out), -1 refused. */
static int s_tree(const char *text, gp_alloc_t *out)
{
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    gp_alloc_init(out);
    int r = j && gp_alloc_from_json(j, out, NULL) == 0 ? 0 : -1;
    json_decref(j);
    return r;
}

/* 1: the scan took text and read what the tree reads; 0: it left text to
 * the tree, and gp_alloc_from_json_str agrees with the tree; -1: a
 * difference. */
static int s_read_back(const char *text)
{
    gp_alloc_t tree, scanned, any;
    int tr = s_tree(text, &tree);
    gp_alloc_init(&scanned);
    bool took = gp_alloc_scan(text, strlen(text), &scanned);
    gp_alloc_init(&any);
    int ar = gp_alloc_from_json_str(text, &any, NULL);
    if (took)
        return tr == 0 && ar == 0 && !memcmp(&scanned, &tree, sizeof tree) &&
               !memcmp(&any, &tree, sizeof tree) ? 1 : -1;
    return ar == tr && (tr < 0 || !memcmp(&any, &tree, sizeof tree)) ? 0 : -1;
}

/* 1: same bytes as jansson's; 2: different bytes, equal JSON; 0: differs. */
static int s_compare(const gp_alloc_t *a, char **mine_out)
{
    gp_ebuf_t b = { 0 };
    json_t *j = gp_alloc_to_json(a);
    char *theirs = json_dumps(j, JSON_COMPACT);
    int r = 0;
    if (gp_alloc_dump_buf(a, &b) == 0 && theirs) {
        json_t *back = json_loads(b.p, 0, NULL);
        if (!strcmp(b.p, theirs))
            r = 1;
        else if (back && json_equal(back, j))
            r = 2;
        json_decref(back);
    }
    *mine_out = b.p;
    free(theirs);
    json_decref(j);
    return r;
}

static void s_fill(gp_alloc_t *a, int ndev, int permille0)
{
    gp_alloc_init(a);
    snprintf(a->job, sizeof a->job, "job-%d", permille0);
    snprintf(a->node, sizeof a->node, "node-%d.zone_a", ndev);
    a->priority = permille0 % 2 ? -1000 : 1000;
    a->cpu_milli = 1500;
    a->host_mem_mib = (int64_t)1 << 39;
    a->ndevices = ndev;
    for (int i = 0; i < ndev; i++) {
        snprintf(a->devices[i].uuid, sizeof a->devices[i].uuid, "GPU-%08x-%d", 0xabcdef01u + i, i);
        a->devices[i].index = i;
        a->devices[i].mem_mib = 81920 - i;
        a->devices[i].compute_permille = (permille0 + i) % 1001;
        a->devices[i].whole = (permille0 + i) % 3 == 0;
    }
}

int main(void)
{
    gp_alloc_t a;
    char *mine;
    int same = 0, n = 0, r, back = 0;
    for (int p = 0; p <= 1000; p++) {   /* every compute share, one device each */
        s_fill(&a, 1 + p % GP_MAX_DEVICES, p);
        a.suspended = p % 7 == 0;
        a.stop = p % 11 == 0;
        a.stop_grace_s = p % 13 == 0 ? p % 3600 : -1;
        n++;
        if (s_compare(&a, &mine) == 1)
            same++;
        else if (same + 1 == n)
            diag("differs at permille %d: %s", p, mine ? mine : "(none)");
        if (mine && s_read_back(mine) == (a.stop ? 0 : 1))   /* "schema": the tree's */
            back++;
        else if (back + 1 == n)
            diag("not read back in place at permille %d: %s", p, mine ? mine : "(none)");
        free(mine);
    }
    is_int(same, n, "every compute share and member: the same bytes as jansson's (%d)", n);
    is_int(back, n, "and each is read back as the tree reads it, in place but for a drain's stop");

    /* Read by the tree alone (the scan leaves them), or refused by both. */
    static const char *const other[] = {
        "{\"job\":\"j\",\"node\":\"n\",\"schema\":2,\"stop\":true,\"devices\":[]}",
        "{\"job\":\"j\",\"node\":\"n\",\"priority\":5.0,\"devices\":[]}",
        "{\"job\":\"j\\u0041\",\"node\":\"n\"}",
        "{\"job\":\"j\",\"node\":\"n\",\"job\":\"k\"}",
        "{\"job\":\"j\",\"node\":\"n\",\"devices\":[{\"uuid\":\"u\",\"uuid\":\"v\"}]}",
        "{\"job\":\"j\",\"node\":\"n\",\"priority\":1001}",
        "{\"job\":\"j\",\"node\":\"n\",\"devices\":[{\"uuid\":\"u\",\"compute_percent\":100.04}]}",
        "{\"job\":\"j\",\"node\":\"n\",\"devices\":[{\"uuid\":\"u\",\"compute_percent\":100.06}]}",
        "{\"job\":\"j\",\"node\":\"n\",\"devices\":[{\"uuid\":\"\"}]}",
        "{\"job\":\"j\",\"node\":\"n\",\"devices\":[{\"index\":16,\"uuid\":\"u\"}]}",
        "{\"job\":\"j\",\"node\":\"n\",\"extra\":1}",
        "{\"job\":\"j\",\"node\":\"n\",\"stop_grace_s\":3601}",
        "{\"job\":\"j\",\"node\":\"\"}",
        "{\"job\":\"j\",\"node\":\"n\",\"cpu_milli\":01}",
        "{\"job\":\"j\",\"node\":\"n\"} {}",
        "{\"job\":\"j\",\"node\":\"n\",\"devices\":[]",
        "[]",
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        r = s_read_back(other[i]);
        ok(r == 0, "left to the tree, read alike: %s", other[i]);
    }
    r = s_read_back("{\"node\":\"n\",\"devices\":[{\"whole\":true,\"compute_percent\":0,"
                    "\"uuid\":\"u\",\"index\":15,\"mem_mib\":0}],\"job\":\"j\"}");
    ok(r == 1, "members in another order are read in place");

    s_fill(&a, 0, 7);
    r = s_compare(&a, &mine);
    ok(r == 1, "no devices: %s", mine);
    free(mine);
    s_fill(&a, GP_MAX_DEVICES, 333);
    r = s_compare(&a, &mine);
    ok(r == 1, "%d devices", GP_MAX_DEVICES);
    free(mine);
    s_fill(&a, 2, 500);
    a.suspended = true;
    r = s_compare(&a, &mine);
    ok(r == 1, "suspended: %s", mine);
    free(mine);
    a.stop = true;
    a.stop_grace_s = 45;
    r = s_compare(&a, &mine);
    ok(r == 1, "a drain's stop with its grace: %s", mine);
    free(mine);
    a.stop_grace_s = -1;
    r = s_compare(&a, &mine);
    ok(r == 1, "a stop without grace: %s", mine);
    free(mine);

    /* Strings needing escapes: equal JSON (jansson writes \b and \f where
     * these write \u0008, \u000c: the same string). */
    s_fill(&a, 1, 10);
    snprintf(a.job, sizeof a.job, "q\"b\\s/\t\n\r\b\f\x01 caf\xc3\xa9");
    r = s_compare(&a, &mine);
    ok(r == 1 || r == 2, "escapes and UTF-8 read back equal: %s", mine);
    free(mine);

    gp_ebuf_t b = { 0 };
    r = gp_ebuf_json_real(&b, 12.0);
    ok(r == 0 && b.p && !strcmp(b.p, "12.0"), "a whole real keeps its .0: %s", b.p ? b.p : "");
    b.len = 0;
    r = gp_ebuf_json_real(&b, 0.1);
    ok(r == 0 && b.p && strtod(b.p, NULL) == 0.1, "17 digits read back exactly: %s", b.p ? b.p : "");
    b.len = 0;
    r = gp_ebuf_json_real(&b, 1e300);
    json_t *big = r == 0 && b.p ? json_loads(b.p, JSON_DECODE_ANY, NULL) : NULL;
    ok(big && json_real_value(big) == 1e300, "an exponent is valid JSON, read back exactly: %s",
       b.p ? b.p : "");
    json_decref(big);
    b.len = 0;
    ok(gp_ebuf_json_real(&b, 1.0 / 0.0) < 0 && gp_ebuf_json_real(&b, 0.0 / 0.0) < 0,
       "infinities and NaN are refused");
    gp_ebuf_free(&b);
    return done_testing();
}
