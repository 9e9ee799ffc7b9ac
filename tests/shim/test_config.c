/*
 * The slice contract's parser: every variable, its units and default, and
 * garbage refused with a message that names the variable.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "shim_config.h"
#include "tap.h"

static const char *const *s_env;

static const char *s_get(const char *name)
{
    size_t n = strlen(name);
    for (const char *const *e = s_env; *e != NULL; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

static int s_parse(gp_shim_config_t *cfg, gp_err_t *err, const char *const *env)
{
    s_env = env;
    return gp_shim_config_parse(cfg, s_get, err);
}

#define MiB ((uint64_t)1 << 20)

int main(void)
{
    gp_shim_config_t c;
    gp_err_t err;

    const char *none[] = { NULL };
    is_int(s_parse(&c, &err, none), 0, "an empty environment is valid");
    is_int(c.enabled, 0, "  and enforces nothing (no GP_SLICE_REGION)");

    const char *dflt[] = { "GP_SLICE_REGION=/run/gp/s1", NULL };
    is_int(s_parse(&c, &err, dflt), 0, "a region alone is valid");
    is_int(c.enabled, 1, "  and enforces the slice");
    is_int(c.ndevices, 1, "  default: one device");
    ok(c.mem_limit[0] == UINT64_MAX, "  default: no memory limit");
    is_int(c.compute_pct[0], 100, "  default: no compute cap");
    is_int(c.priority, GP_SLICE_PRIO_NORMAL, "  default: normal priority");
    is_int(c.priority_idle_ns, 500 * 1000000LL, "  default: 500 ms idle before resuming");
    is_int(c.oversubscribe, 0, "  default: no oversubscription");
    is_int(c.ctx_overhead, 0, "  default: no context overhead counted");
    is_int(c.compute_share, 0, "  default: the compute percent is a cap");

    const char *full[] = { "GP_SLICE_REGION=/r", "GP_SLICE_MEM_LIMIT=512,4G", "GP_SLICE_COMPUTE=30",
                           "GP_SLICE_PRIORITY=low", "GP_SLICE_PRIORITY_IDLE_MS=2s",
                           "GP_SLICE_OVERSUBSCRIBE=1", "GP_SLICE_CTX_OVERHEAD_MIB=300",
                           "GP_SLICE_COMPUTE_MODE=share", NULL };
    is_int(s_parse(&c, &err, full), 0, "a full configuration is valid");
    is_int(c.ndevices, 2, "  the device count comes from the longest list");
    is_int(c.mem_limit[0], 512 * MiB, "  512 is MiB");
    is_int(c.mem_limit[1], 4096 * MiB, "  4G is 4096 MiB");
    is_int(c.compute_pct[1], 30, "  a single value applies to every device");
    is_int(c.priority, GP_SLICE_PRIO_LOW, "  priority low");
    is_int(c.priority_idle_ns, 2000 * 1000000LL, "  2s idle");
    is_int(c.oversubscribe, 1, "  oversubscription on");
    is_int(c.ctx_overhead, 300 * MiB, "  300 MiB per context");
    is_int(c.compute_share, 1, "  the compute percent is a share");

    static const struct { const char *var, *value; } bad[] = {
        { "GP_SLICE_MEM_LIMIT", "abc" }, { "GP_SLICE_MEM_LIMIT", "" }, { "GP_SLICE_MEM_LIMIT", "0" },
        { "GP_SLICE_MEM_LIMIT", "1G," }, { "GP_SLICE_MEM_LIMIT", " 1G" },
        { "GP_SLICE_COMPUTE", "0" }, { "GP_SLICE_COMPUTE", "101" }, { "GP_SLICE_COMPUTE", "5.5" },
        { "GP_SLICE_PRIORITY", "HIGH" }, { "GP_SLICE_PRIORITY_IDLE_MS", "-1" },
        { "GP_SLICE_OVERSUBSCRIBE", "true" }, { "GP_SLICE_CTX_OVERHEAD_MIB", "x" },
        { "GP_SLICE_DEVICES", "17" }, { "GP_SHIM_LOG", "loud" }, { "GP_SLICE_REGION", "" },
        { "GP_SLICE_COMPUTE_MODE", "shared" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char kv[128];
        snprintf(kv, sizeof kv, "%s=%s", bad[i].var, bad[i].value);
        const char *env[] = { kv, "GP_SLICE_REGION=/r", NULL };
        memset(&err, 0, sizeof err);
        is_int(s_parse(&c, &err, env), -1, "%s refused", kv);
        ok(strstr(err.msg, bad[i].var) != NULL, "  the message names %s: %s", bad[i].var, err.msg);
    }
    const char *mismatch[] = { "GP_SLICE_REGION=/r", "GP_SLICE_MEM_LIMIT=1G,2G",
                               "GP_SLICE_COMPUTE=10,20,30", NULL };
    is_int(s_parse(&c, &err, mismatch), -1, "lists of different lengths are refused");
    const char *devs[] = { "GP_SLICE_REGION=/r", "GP_SLICE_DEVICES=3", "GP_SLICE_MEM_LIMIT=1G,2G", NULL };
    is_int(s_parse(&c, &err, devs), -1, "a list that does not match GP_SLICE_DEVICES is refused");
    return done_testing();
}
