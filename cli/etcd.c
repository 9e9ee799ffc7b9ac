/*
 * etcd.c - what the CLI's commands that talk to etcd directly (backup,
 * plan) share: their etcd options, from flags or the environment (cli.h).
 */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"

#include "banned.h"

static const char *s_env(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

void cli_etcd_opts_init(cli_etcd_opts_t *o)
{
    o->endpoints = s_env("GPUPOOL_ETCD_ENDPOINTS", "http://127.0.0.1:2379");
    o->ca = s_env("GPUPOOL_ETCD_CA", "");
    o->cert = s_env("GPUPOOL_ETCD_CERT", "");
    o->key = s_env("GPUPOOL_ETCD_KEY", "");
    o->user = s_env("GPUPOOL_ETCD_USER", "");
    o->password = s_env("GPUPOOL_ETCD_PASSWORD", "");
    o->prefix = "/gpupool/";
}

void cli_etcd_opts_from(cli_etcd_opts_t *o, const cli_etcd_flags_t *f)
{
    cli_etcd_opts_init(o);
    const char *given[] = { f->endpoints, f->ca, f->cert, f->key, f->user, f->prefix };
    const char **slot[] = { &o->endpoints, &o->ca, &o->cert, &o->key, &o->user, &o->prefix };
    for (size_t k = 0; k < sizeof given / sizeof given[0]; k++)
        if (given[k] && *given[k])
            *slot[k] = given[k];
}

gp_etcd_t *cli_etcd_open(const cli_etcd_opts_t *o, gp_err_t *err)
{
    if (!gp_prefix_valid(o->prefix)) {
        gp_err_set(err, GP_ERR_INVALID, "--prefix \"%s\" must start and end with '/'", o->prefix);
        return NULL;
    }
    gp_etcd_config_t cfg = GP_ETCD_CONFIG_INIT;
    gp_etcd_config_from(&cfg, o->endpoints, o->ca, o->cert, o->key, o->user, o->password);
    return gp_etcd_new(&cfg, err);
}
