/*
 * The slice accounting region, as the shim and the agent use it: creation,
 * the reservation protocol, never below zero, host-backed bytes, reclaim of
 * a dead process, suspension.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "slice_region.h"
#include "tap.h"

#define MiB ((uint64_t)1 << 20)

static uint64_t s_used(gp_slice_region_t *r, int dev)
{
    gp_slice_usage_t u;
    gp_slice_region_usage(r, dev, &u);
    return u.mem_used;
}

int main(void)
{
    char dir[] = "/tmp/gp-region-XXXXXX";
    if (mkdtemp(dir) == NULL)
        bail_out("mkdtemp failed");
    char path[256];
    snprintf(path, sizeof path, "%s/slice", dir);
    gp_err_t err;

    ok(gp_slice_region_open(path, NULL, &err) == NULL, "opening a missing region without a config fails");
    gp_slice_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.ndevices = 2;
    cfg.priority = GP_SLICE_PRIO_HIGH;
    cfg.dev[0].mem_limit = 100 * MiB;
    cfg.dev[0].compute_pct = 40;
    cfg.dev[1].mem_limit = 50 * MiB;
    cfg.dev[1].compute_pct = 100;
    gp_slice_region_t *r = gp_slice_region_open(path, &cfg, &err);
    ok(r != NULL, "the agent creates a region");
    is_int(gp_slice_region_ndevices(r), 2, "  with its devices");
    is_int(gp_slice_region_priority(r), GP_SLICE_PRIO_HIGH, "  and priority");
    cfg.dev[0].mem_limit = 1;
    gp_slice_region_t *r2 = gp_slice_region_open(path, &cfg, &err);
    ok(r2 != NULL, "a second opener with a config uses the existing region");
    gp_slice_usage_t u;
    gp_slice_region_usage(r2, 0, &u);
    is_int(u.mem_limit, 100 * MiB, "  unchanged by its config");
    is_int(u.compute_pct, 40, "  compute cap recorded");

    int a = gp_slice_region_attach(r, (int)getpid());
    ok(a >= 0, "a process claims a slot");
    is_int(gp_slice_region_reserve(r, a, 0, 60 * MiB, 0), 0, "60 of 100 MiB reserved");
    is_int(gp_slice_region_reserve(r2, a, 0, 41 * MiB, 0), -1, "41 more refused: over the limit");
    is_int(s_used(r, 0), 60 * MiB, "  and nothing counted for it");
    is_int(gp_slice_region_reserve(r, a, 0, 40 * MiB, 0), 0, "exactly up to the limit is granted");
    gp_slice_region_usage(r, 0, &u);
    is_int(u.oom_count, 1, "the refusal is counted");
    is_int(u.mem_peak, 100 * MiB, "the peak is recorded");
    gp_slice_region_release(r, a, 0, 100 * MiB, 0);
    is_int(s_used(r, 0), 0, "released back to zero");
    gp_slice_region_release(r, a, 0, 5 * MiB, 0);
    is_int(s_used(r, 0), 0, "releasing more than held never goes below zero");
    is_int(gp_slice_region_reserve(r, a, 1, 51 * MiB, 0), -1, "device 1 has its own limit");
    is_int(gp_slice_region_reserve(r, a, 1, 30 * MiB, GP_SLICE_HOST), 0, "host-backed bytes reserve like any");
    gp_slice_region_usage(r, 1, &u);
    is_int(u.host_used, 30 * MiB, "  and are reported as host-backed");
    gp_slice_region_release(r, a, 1, 30 * MiB, GP_SLICE_HOST);
    gp_slice_region_usage(r, 1, &u);
    is_int(u.mem_used + u.host_used, 0, "  and released");

    /* a child reserves and dies without releasing */
    pid_t pid = fork();
    if (pid == 0) {
        gp_slice_region_t *c = gp_slice_region_open(path, NULL, NULL);
        int s = gp_slice_region_attach(c, (int)getpid());
        gp_slice_region_reserve(c, s, 0, 70 * MiB, 0);
        gp_slice_region_reserve(c, s, 1, 10 * MiB, GP_SLICE_HOST);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    is_int(s_used(r, 0), 70 * MiB, "a dead process's usage stays until reclaim");
    is_int(gp_slice_region_reclaim(r), 1, "reclaim finds the dead process");
    is_int(s_used(r, 0), 0, "  and gives its usage back");
    gp_slice_region_usage(r, 1, &u);
    is_int(u.host_used, 0, "  host-backed included");
    is_int(gp_slice_region_reclaim(r), 0, "a live process is never reclaimed");
    gp_slice_region_usage(r, 0, &u);
    is_int(u.nprocs, 1, "only this process holds a slot");

    gp_slice_region_set_suspended(r, -1, 1);
    gp_slice_region_usage(r2, 1, &u);
    is_int(u.suspended, 1, "the agent suspends a slice's launches");
    gp_slice_region_set_suspended(r, -1, 0);
    gp_slice_region_usage(r2, 1, &u);
    is_int(u.suspended, 0, "and resumes them");

    is_int(gp_slice_region_set_uuid(r, 1, "GPU-abc"), 0, "a device's UUID is recorded");
    is_int(gp_slice_region_find_uuid(r2, "GPU-abc"), 1, "  and found by it");
    is_int(gp_slice_region_find_uuid(r2, "GPU-zzz"), -1, "  an unknown UUID is no device");

    /* a job's priority as the slice runs it: the default 0 is normal */
    is_int(gp_slice_priority_of(0), GP_SLICE_PRIO_NORMAL, "job priority 0 (the default) runs normal");
    is_int(gp_slice_priority_of(50), GP_SLICE_PRIO_NORMAL, "  50 runs normal");
    is_int(gp_slice_priority_of(99), GP_SLICE_PRIO_NORMAL, "  99 runs normal");
    is_int(gp_slice_priority_of(100), GP_SLICE_PRIO_HIGH, "  100 runs high");
    is_int(gp_slice_priority_of(1000), GP_SLICE_PRIO_HIGH, "  1000 runs high");
    is_int(gp_slice_priority_of(-1), GP_SLICE_PRIO_LOW, "  -1 runs low");
    is_int(gp_slice_priority_of(-1000), GP_SLICE_PRIO_LOW, "  -1000 runs low");
    is_str(gp_slice_priority_name(gp_slice_priority_of(0)), "normal", "  GP_SLICE_PRIORITY=normal for 0");
    is_str(gp_slice_priority_name(GP_SLICE_PRIO_LOW), "low", "  low");
    is_str(gp_slice_priority_name(GP_SLICE_PRIO_HIGH), "high", "  high");

    gp_gpu_state_t *g = gp_gpu_state_open(dir, "GPU-abc", &err);
    ok(g != NULL, "the GPU's priority state opens");
    gp_gpu_state_t *g2 = gp_gpu_state_open(dir, "GPU-abc", &err);
    atomic_store(&g->hp_last_active_ns, 12345);
    is_int(atomic_load(&g2->hp_last_active_ns), 12345, "  and is shared by its openers");
    gp_gpu_state_close(&g);
    gp_gpu_state_close(&g2);

    /* after an exec the same pid attaches again: the old image's memory is gone */
    gp_slice_region_reserve(r, a, 0, 20 * MiB, 0);
    int again = gp_slice_region_attach(r, (int)getpid());
    ok(again >= 0, "a process attaching again after an exec gets a slot");
    is_int(s_used(r, 0), 0, "  and the usage of its previous image is given back");
    gp_slice_region_usage(r, 0, &u);
    is_int(u.nprocs, 1, "  one slot per process");
    a = again;

    gp_slice_region_detach(r, a);
    gp_slice_region_usage(r, 0, &u);
    is_int(u.nprocs, 0, "detach frees the slot");
    gp_slice_region_close(&r);
    ok(r == NULL, "close clears the caller's pointer");
    gp_slice_region_close(&r2);

    FILE *f = fopen(path, "w");
    fputs("garbage", f);
    fclose(f);
    ok(gp_slice_region_open(path, NULL, &err) == NULL, "a file that is not a region is refused: %s", err.msg);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        diag("could not remove %s", dir);
    return done_testing();
}
