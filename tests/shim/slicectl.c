/*
 * slicectl - the agent's side of a slice region, for the tests: what the
 * node agent does through common/slice_region.h.
 *
 *   slicectl usage PATH [DEV]     print the device's usage as key=value
 *   slicectl reclaim PATH         give back the usage of exited processes
 *   slicectl suspend PATH 0|1     resume / suspend the slice's launches
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "slice_region.h"
#include "util.h"

#include "banned.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: slicectl usage|reclaim|suspend PATH [ARG]\n");
        return 64;
    }
    gp_err_t err;
    gp_slice_region_t *r = gp_slice_region_open(argv[2], NULL, &err);
    if (r == NULL) {
        fprintf(stderr, "slicectl: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (strcmp(argv[1], "usage") == 0) {
        int64_t dev = 0;
        if (argc > 3 && gp_parse_int64(argv[3], 0, GP_SLICE_MAX_DEVICES - 1, &dev) < 0)
            return 64;
        gp_slice_usage_t u;
        if (gp_slice_region_usage(r, (int)dev, &u) < 0) {
            fprintf(stderr, "slicectl: no device %d\n", (int)dev);
            rc = 1;
        } else {
            printf("mem_limit=%" PRIu64 " mem_used=%" PRIu64 " host_used=%" PRIu64
                   " mem_peak=%" PRIu64 " nprocs=%d charged_ns=%" PRIu64 " launches=%" PRIu64
                   " throttled_ns=%" PRIu64 " suspended_ns=%" PRIu64 " oom=%" PRIu64 "\n",
                   u.mem_limit, u.mem_used, u.host_used, u.mem_peak, u.nprocs, u.charged_ns,
                   u.launches, u.throttled_ns, u.suspended_ns, u.oom_count);
        }
    } else if (strcmp(argv[1], "reclaim") == 0) {
        printf("reclaimed=%d\n", gp_slice_region_reclaim(r));
    } else if (strcmp(argv[1], "suspend") == 0 && argc > 3) {
        rc = gp_slice_region_set_suspended(r, -1, strcmp(argv[3], "1") == 0) < 0;
    } else {
        rc = 64;
    }
    gp_slice_region_close(&r);
    return rc;
}
