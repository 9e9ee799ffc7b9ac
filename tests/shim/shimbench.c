/*
 * shimbench - the shim's overhead, measured by tests/bench/shim.sh with and
 * without LD_PRELOAD in the same run.
 *
 *   shimbench launch N              ns per cuLaunchKernel of an empty kernel
 *   shimbench allocfree N MIB [START_NS]   ns per cuMemAlloc+cuMemFree pair
 *
 * Each prints "ns_per_op=<best of 5 rounds> ns_mean=<mean of the 5>
 * cpu_ns_per_op=<best> cpu_ns_mean=<mean>": wall-clock time per operation,
 * and the process's CPU time per operation (CLOCK_PROCESS_CPUTIME_ID: the
 * time it ran, not the time it waited for a core -- what an oversubscribed
 * machine does not distort).  START_NS (CLOCK_MONOTONIC) lines up
 * concurrent processes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cuda_api.h"
#include "util.h"

#include "banned.h"

static int64_t s_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t s_now(void) { return s_clock(CLOCK_MONOTONIC); }
static int64_t s_cpu(void) { return s_clock(CLOCK_PROCESS_CPUTIME_ID); }

/* One round's figures into the best and the sums. */
typedef struct { double best, sum, cpu_best, cpu_sum; } s_stats_t;

static void s_round(s_stats_t *st, int64_t t0, int64_t c0, int64_t n)
{
    double ns = (double)(s_now() - t0) / (double)n, cpu = (double)(s_cpu() - c0) / (double)n;
    st->best = ns < st->best ? ns : st->best;
    st->cpu_best = cpu < st->cpu_best ? cpu : st->cpu_best;
    st->sum += ns;
    st->cpu_sum += cpu;
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
    s_stats_t st = { 1e18, 0, 1e18, 0 };
    if (strcmp(argv[1], "launch") == 0) {
        CUmodule mod;
        CUfunction f;
        CK(cuModuleLoadData(&mod, "empty"));
        CK(cuModuleGetFunction(&f, mod, "gp_empty"));
        for (int round = 0; round < 5; round++) {
            int64_t t0 = s_now(), c0 = s_cpu();
            for (int64_t i = 0; i < n; i++)
                CK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL));
            s_round(&st, t0, c0, n);
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
            int64_t t0 = s_now(), c0 = s_cpu();
            for (int64_t i = 0; i < n; i++) {
                CUdeviceptr p;
                CK(cuMemAlloc_v2(&p, bytes));
                CK(cuMemFree_v2(p));
            }
            s_round(&st, t0, c0, n);
        }
    } else {
        return 64;
    }
    printf("ns_per_op=%.1f ns_mean=%.1f cpu_ns_per_op=%.1f cpu_ns_mean=%.1f\n", st.best, st.sum / 5,
           st.cpu_best, st.cpu_sum / 5);
    return 0;
}
