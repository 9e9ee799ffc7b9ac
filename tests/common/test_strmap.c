/* The string map keeps every key through growth, deletion and reuse. */
#include <stdio.h>
#include <string.h>

#include "strmap.h"
#include "tap.h"

int main(void)
{
    gp_strmap_t *m = gp_strmap_new();
    static int vals[5000];
    char key[32];
    int bad = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "job-%d", i);
        if (gp_strmap_put(m, key, &vals[i]) < 0)
            bad++;
    }
    is_int(bad, 0, "5000 inserts succeed");
    is_int(gp_strmap_size(m), 5000, "size counts them");
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "job-%d", i);
        if (gp_strmap_get(m, key) != &vals[i])
            bad++;
    }
    is_int(bad, 0, "every key finds its value");
    for (int i = 0; i < 5000; i += 2) {
        snprintf(key, sizeof key, "job-%d", i);
        if (gp_strmap_del(m, key) != &vals[i])
            bad++;
    }
    is_int(bad, 0, "deletes return the values");
    ok(gp_strmap_get(m, "job-0") == NULL && gp_strmap_get(m, "job-1") == &vals[1],
       "deleted keys are gone, others stay");
    ok(gp_strmap_del(m, "job-0") == NULL, "deleting twice returns NULL");
    for (int round = 0; round < 20; round++) {   /* churn: tombstones get reused */
        for (int i = 0; i < 5000; i += 2) {
            snprintf(key, sizeof key, "job-%d", i);
            gp_strmap_put(m, key, &vals[i]);
            gp_strmap_del(m, key);
        }
    }
    is_int(gp_strmap_size(m), 2500, "churn keeps the size right");
    gp_strmap_put(m, "job-1", &vals[2]);
    ok(gp_strmap_get(m, "job-1") == &vals[2], "put replaces a value");
    size_t n = 0;
    for (gp_strmap_iter_t it = gp_strmap_first(m); it.key; it = gp_strmap_next(m, it)) {
        if (strncmp(it.key, "job-", 4) == 0)
            n++;
        if (n % 2)
            gp_strmap_del(m, it.key);   /* deleting the current entry is allowed */
    }
    is_int(n, 2500, "iteration visits every key once");
    is_int(gp_strmap_size(m), 1250, "deletion during iteration");
    gp_strmap_destroy(&m);
    ok(m == NULL, "destroy clears the pointer");
    return done_testing();
}
