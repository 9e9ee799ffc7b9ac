/*
 * shimbench - the shim's overhead, measured by tests/bench/shim.sh with and
 * without LD_PRELOAD in the same run.
 *
 *   shimbench launch N              ns per cuLaunchKernel of an empty kernel
 *   shimbench allocfree N MIB [START_NS]   ns per cuMemAlloc+cuMemFree pair
 *
 * Each prints "ns_per_op=<best of 5 rounds> ns_mean=<mean of the 5>".  START_NS (CLOCK_MONOTONIC)
 * lines up concurrent processes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cuda_api.h"
#include "util.h"

#include "banned.h"

static int64_t s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define CK(call) do { CUresult rc_ = (call); if (rc_ != CUDA_SUCCESS) { \
        fprintf(stderr, "shimbench: %s: %d\n", #call, (int)rc_); return 2; } } while (0)

int main(int argc, char **argv)
{
    int64_t n;
    if (argc < 3 || gp_parse_int64(argv[2], 1, INT64_MAX, &n) < 0) {
        fprintf(stderr, "usage: shimbench launch|allocfree N [MIB [START_NS]]\n");
        return 64;
    }
    CUdevice dev;
    CUcontext ctx;
    CK(cuInit(0));
    CK(cuDeviceGet(&dev, 0));
    CK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CK(cuCtxSetCurrent(ctx));
    double best = 1e18, sum = 0;
    if (strcmp(argv[1], "launch") == 0) {
        CUmodule mod;
        CUfunction f;
        CK(cuModuleLoadData(&mod, "empty"));
        CK(cuModuleGetFunction(&f, mod, "gp_empty"));
        for (int round = 0; round < 5; round++) {
            int64_t t0 = s_now();
            for (int64_t i = 0; i < n; i++)
                CK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL));
            double ns = (double)(s_now() - t0) / (double)n;
            best = ns < best ? ns : best;
            sum += ns;
        }
    } else if (strcmp(argv[1], "allocfree") == 0 && argc >= 4) {
        int64_t mib, start = 0;
        if (gp_parse_int64(argv[3], 1, 1 << 20, &mib) < 0 ||
            (argc >= 5 && gp_parse_int64(argv[4], 0, INT64_MAX, &start) < 0))
            return 64;
        if (start > 0) {
            struct timespec ts = { .tv_sec = start / 1000000000, .tv_nsec = start % 1000000000 };
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
        }
        size_t bytes = (size_t)mib << 20;
        for (int round = 0; round < 5; round++) {
            int64_t t0 = s_now();
            for (int64_t i = 0; i < n; i++) {
                CUdeviceptr p;
                CK(cuMemAlloc_v2(&p, bytes));
                CK(cuMemFree_v2(p));
            }
            double ns = (double)(s_now() - t0) / (double)n;
            best = ns < best ? ns : best;
            sum += ns;
        }
    } else {
        return 64;
    }
    printf("ns_per_op=%.1f ns_mean=%.1f\n", best, sum / 5);
    return 0;
}
