/* The configuration parser (gp_config_load) on a config file with every
 * kind of option; the first line of the input, when it starts with "--",
 * is passed as command-line flags (split at spaces) as well. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

#include "banned.h"

typedef struct {
    char *name, *endpoints;
    int64_t count, mem, ttl;
    int on;
    double ratio;
} s_cfg_t;

static const gp_opt_t s_opts[] = {
    { "name", GP_OPT_STRING, offsetof(s_cfg_t, name), "", 0, 0, "a string" },
    { "etcd-endpoints", GP_OPT_STRING, offsetof(s_cfg_t, endpoints), "http://127.0.0.1:2379", 0, 0,
      "a string with a default" },
    { "count", GP_OPT_INT, offsetof(s_cfg_t, count), "3", 1, 100000, "an integer" },
    { "mem", GP_OPT_MIB, offsetof(s_cfg_t, mem), "4", 1, 1048576, "MiB" },
    { "lease-ttl", GP_OPT_DURATION, offsetof(s_cfg_t, ttl), "5s", 1000, 600000, "a duration" },
    { "enabled", GP_OPT_BOOL, offsetof(s_cfg_t, on), "yes", 0, 0, "a boolean" },
    { "ratio", GP_OPT_DOUBLE, offsetof(s_cfg_t, ratio), "0.5", 0, 1, "a number" },
    { NULL, 0, 0, NULL, 0, 0, NULL },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *argv[24] = { "fuzz", "-c", NULL };
    int argc = 3;
    char *flags = NULL;
    size_t skip = 0;
    if (size > 2 && data[0] == '-' && data[1] == '-') {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t n = nl ? (size_t)(nl - data) : size;
        flags = malloc(n + 1);
        if (flags == NULL)
            return 0;
        memcpy(flags, data, n);
        flags[n] = '\0';
        skip = nl ? n + 1 : n;
        char *save = NULL;
        for (char *t = strtok_r(flags, " ", &save); t && argc < 23; t = strtok_r(NULL, " ", &save))
            argv[argc++] = t;
    }
    const char *path = fuzz_memfile(data + skip, size - skip);
    if (path) {
        argv[2] = (char *)path;
        argv[argc] = NULL;
        s_cfg_t cfg;
        memset(&cfg, 0, sizeof cfg);
        gp_config_cli_t cli;
        gp_err_t err;
        if (gp_config_load(s_opts, &cfg, argc, argv, &cli, &err) == 0)
            gp_config_free(s_opts, &cfg);
    }
    free(flags);
    return 0;
}
