#include "shim_config.h"

#include <string.h>

#include "util.h"

#include "banned.h"

/* Parse a comma-separated list of values with parse_one into out[], at most
 * GP_SLICE_MAX_DEVICES; returns the count, or -1. */
static int s_list(const char *s, int (*parse_one)(const char *, uint64_t *), uint64_t *out)
{
    char buf[1024];
    if (gp_strlcpy(buf, s, sizeof buf) >= sizeof buf)
        return -1;
    int n = 0;
    char *save = NULL;
    if (buf[0] == '\0' || buf[strlen(buf) - 1] == ',' || strstr(buf, ",,") != NULL)
        return -1;
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        if (n == GP_SLICE_MAX_DEVICES || parse_one(tok, &out[n]) < 0)
            return -1;
        n++;
    }
    return n;
}

static int s_parse_mib_bytes(const char *s, uint64_t *out)
{
    uint64_t mib;
    if (gp_parse_mib(s, &mib) < 0 || mib == 0 || mib > (UINT64_MAX >> 21))
        return -1;
    *out = mib << 20;
    return 0;
}

static int s_parse_pct(const char *s, uint64_t *out)
{
    uint64_t v;
    if (gp_parse_uint64(s, 100, &v) < 0 || v < 1)
        return -1;
    *out = v;
    return 0;
}

int gp_shim_config_parse(gp_shim_config_t *cfg, gp_shim_getenv_fn *get, gp_err_t *err)
{
    gp_shim_config_t c;
    memset(&c, 0, sizeof c);
    c.priority = GP_SLICE_PRIO_NORMAL;
    c.priority_idle_ns = 500LL * 1000000;
    c.log_level = GP_LOG_WARN;
    for (int d = 0; d < GP_SLICE_MAX_DEVICES; d++) {
        c.mem_limit[d] = UINT64_MAX;
        c.compute_pct[d] = 100;
    }
    const char *v;

    if ((v = get("GP_SHIM_LOG")) != NULL && gp_log_parse_level(v, &c.log_level) < 0)
        return gp_err_set(err, GP_ERR_INVALID,
                          "GP_SHIM_LOG=%s: want debug, info, warn or error", v);

    v = get("GP_SLICE_REGION");
    if (v == NULL)
        goto done;
    if (*v == '\0' || gp_strlcpy(c.region_path, v, sizeof c.region_path) >= sizeof c.region_path)
        return gp_err_set(err, GP_ERR_INVALID, "GP_SLICE_REGION: empty or too long a path");
    c.enabled = 1;

    int n_mem = 0, n_cpt = 0, ndev = 0;
    uint64_t vals[GP_SLICE_MAX_DEVICES];
    if ((v = get("GP_SLICE_MEM_LIMIT")) != NULL) {
        n_mem = s_list(v, s_parse_mib_bytes, vals);
        if (n_mem < 0)
            return gp_err_set(err, GP_ERR_INVALID,
                              "GP_SLICE_MEM_LIMIT=%s: want a size in MiB per device "
                              "(\"512\", \"4G\"), comma-separated, at most %d",
                              v, GP_SLICE_MAX_DEVICES);
        for (int d = 0; d < GP_SLICE_MAX_DEVICES; d++)
            c.mem_limit[d] = vals[d < n_mem ? d : n_mem - 1];
    }
    if ((v = get("GP_SLICE_COMPUTE")) != NULL) {
        n_cpt = s_list(v, s_parse_pct, vals);
        if (n_cpt < 0)
            return gp_err_set(err, GP_ERR_INVALID,
                              "GP_SLICE_COMPUTE=%s: want a percentage 1..100 per device, "
                              "comma-separated, at most %d", v, GP_SLICE_MAX_DEVICES);
        for (int d = 0; d < GP_SLICE_MAX_DEVICES; d++)
            c.compute_pct[d] = (unsigned)vals[d < n_cpt ? d : n_cpt - 1];
    }
    if ((v = get("GP_SLICE_DEVICES")) != NULL) {
        int64_t n;
        if (gp_parse_int64(v, 1, GP_SLICE_MAX_DEVICES, &n) < 0)
            return gp_err_set(err, GP_ERR_INVALID, "GP_SLICE_DEVICES=%s: want 1..%d", v,
                              GP_SLICE_MAX_DEVICES);
        ndev = (int)n;
        if ((n_mem > 1 && n_mem != ndev) || (n_cpt > 1 && n_cpt != ndev))
            return gp_err_set(err, GP_ERR_INVALID,
                              "GP_SLICE_DEVICES=%d but GP_SLICE_MEM_LIMIT or GP_SLICE_COMPUTE "
                              "lists another number of devices", ndev);
    } else {
        if (n_mem > 1 && n_cpt > 1 && n_mem != n_cpt)
            return gp_err_set(err, GP_ERR_INVALID,
                              "GP_SLICE_MEM_LIMIT lists %d devices, GP_SLICE_COMPUTE %d",
                              n_mem, n_cpt);
        ndev = n_mem > n_cpt ? n_mem : n_cpt;
        if (ndev < 1)
            ndev = 1;
    }
    c.ndevices = ndev;

    if ((v = get("GP_SLICE_PRIORITY")) != NULL) {
        if (strcmp(v, "low") == 0)
            c.priority = GP_SLICE_PRIO_LOW;
        else if (strcmp(v, "normal") == 0)
            c.priority = GP_SLICE_PRIO_NORMAL;
        else if (strcmp(v, "high") == 0)
            c.priority = GP_SLICE_PRIO_HIGH;
        else
            return gp_err_set(err, GP_ERR_INVALID,
                              "GP_SLICE_PRIORITY=%s: want low, normal or high", v);
    }
    if ((v = get("GP_SLICE_PRIORITY_IDLE_MS")) != NULL) {
        int64_t ms;
        if (gp_parse_duration_ms(v, &ms) < 0 || ms < 0 || ms > 3600 * 1000)
            return gp_err_set(err, GP_ERR_INVALID,
                              "GP_SLICE_PRIORITY_IDLE_MS=%s: want a duration (\"500ms\", "
                              "\"2s\", or ms) up to 1h", v);
        c.priority_idle_ns = ms * 1000000;
    }
    if ((v = get("GP_SLICE_COMPUTE_MODE")) != NULL) {
        if (strcmp(v, "share") == 0)
            c.compute_share = 1;
        else if (strcmp(v, "cap") != 0)
            return gp_err_set(err, GP_ERR_INVALID, "GP_SLICE_COMPUTE_MODE=%s: want cap or share", v);
    }
    if ((v = get("GP_SLICE_OVERSUBSCRIBE")) != NULL) {
        if (strcmp(v, "1") == 0)
            c.oversubscribe = 1;
        else if (strcmp(v, "0") != 0)
            return gp_err_set(err, GP_ERR_INVALID, "GP_SLICE_OVERSUBSCRIBE=%s: want 0 or 1", v);
    }
    if ((v = get("GP_SLICE_CTX_OVERHEAD_MIB")) != NULL) {
        uint64_t mib;
        if (gp_parse_mib(v, &mib) < 0 || mib > (1u << 20))
            return gp_err_set(err, GP_ERR_INVALID,
                              "GP_SLICE_CTX_OVERHEAD_MIB=%s: want a size in MiB", v);
        c.ctx_overhead = mib << 20;
    }
done:
    *cfg = c;
    return 0;
}

void gp_shim_config_to_slice(const gp_shim_config_t *cfg, gp_slice_config_t *out)
{
    memset(out, 0, sizeof *out);
    out->ndevices = cfg->ndevices;
    out->priority = cfg->priority;
    out->oversubscribe = cfg->oversubscribe;
    for (int d = 0; d < cfg->ndevices; d++) {
        out->dev[d].mem_limit = cfg->mem_limit[d];
        out->dev[d].compute_pct = cfg->compute_pct[d];
    }
}
