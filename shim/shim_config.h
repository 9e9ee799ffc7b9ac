/*
 * shim_config.h - the shim's configuration: the slice contract's environment
 * variables (listed in common/slice_region.h and the README), parsed
 * strictly at start-up.
 *
 * gp_shim_config_parse takes the lookup function (getenv in the shim, a
 * table in the tests) and fills cfg only when every variable is valid;
 * otherwise err names the variable and what is wrong with it, and the shim
 * stops the process with that message rather than run with undefined
 * limits.
 */
#ifndef GP_SHIM_CONFIG_H
#define GP_SHIM_CONFIG_H

#include <stdint.h>

#include "err.h"
#include "log.h"
#include "slice_region.h"

typedef struct {
    int enabled;                                  /* GP_SLICE_REGION is set */
    char region_path[4096];
    int ndevices;
    uint64_t mem_limit[GP_SLICE_MAX_DEVICES];     /* bytes; UINT64_MAX: none */
    unsigned compute_pct[GP_SLICE_MAX_DEVICES];   /* 1..100 */
    int compute_share;                            /* GP_SLICE_COMPUTE_MODE=share */
    gp_slice_priority_t priority;
    int64_t priority_idle_ns;
    int oversubscribe;
    uint64_t ctx_overhead;                        /* bytes per process and device */
    gp_log_level_t log_level;
} gp_shim_config_t;

typedef const char *gp_shim_getenv_fn(const char *name);

int gp_shim_config_parse(gp_shim_config_t *cfg, gp_shim_getenv_fn *get, gp_err_t *err);

/* The region configuration that the shim creates a missing region with. */
void gp_shim_config_to_slice(const gp_shim_config_t *cfg, gp_slice_config_t *out);

#endif
