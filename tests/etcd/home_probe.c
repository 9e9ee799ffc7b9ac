/*
 * home_probe - an etcd client with local endpoints, writing and watching,
 * for tests/etcd/local_endpoints.t.
 *
 *   home_probe PREFIX       (ETCD_ENDPOINTS, ETCD_LOCAL: the client's config)
 *
 * Every 50 ms it puts PREFIX/k with the next counter value (the same value
 * again after a failed put) and steps the client's loop; a watch on PREFIX
 * checks what comes back: values never skip one (no event lost) and
 * revisions only grow (none delivered twice).  Whenever the endpoint it
 * uses changes, and once a second, it prints
 *   state endpoint=URL local=0|1 failbacks=N puts=N events=N gaps=N dups=N
 * and on SIGTERM the same line as "final ..." before exiting 0.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "log.h"
#include "util.h"

#include "banned.h"

static volatile sig_atomic_t s_stop;
static int64_t s_last_value, s_last_rev, s_events, s_gaps, s_dups;

static void s_on_term(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_on_watch(gp_etcd_watch_t *w, const gp_etcd_watch_resp_t *r, void *arg)
{
    (void)w;
    (void)arg;
    for (size_t i = 0; i < r->n_events; i++) {
        const gp_etcd_kv_t *kv = &r->events[i].kv;
        if (r->events[i].type != GP_ETCD_EVENT_PUT)
            continue;
        int64_t v = strtoll(kv->value, NULL, 10);
        if (kv->mod_revision <= s_last_rev)
            s_dups++;
        else if (v != s_last_value && v != s_last_value + 1) {
            s_gaps++;
            fprintf(stderr, "home_probe: gap: value %" PRId64 " at revision %" PRId64
                    " after value %" PRId64 " at revision %" PRId64 "\n",
                    v, kv->mod_revision, s_last_value, s_last_rev);
        }
        s_last_rev = kv->mod_revision;
        s_last_value = v;
        s_events++;
    }
}

static void s_print(gp_etcd_t *etcd, const char *what, int64_t puts)
{
    printf("%s endpoint=%s local=%d failbacks=%d puts=%" PRId64 " events=%" PRId64
           " gaps=%" PRId64 " dups=%" PRId64 "\n",
           what, gp_etcd_endpoint(etcd), gp_etcd_endpoint_local(etcd), gp_etcd_failbacks(etcd),
           puts, s_events, s_gaps, s_dups);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: home_probe PREFIX\n");
        return 64;
    }
    gp_log_init("home_probe", GP_LOG_INFO);
    gp_etcd_config_t cfg = GP_ETCD_CONFIG_INIT;
    cfg.endpoints = getenv("ETCD_ENDPOINTS");
    cfg.local_endpoints = getenv("ETCD_LOCAL");
    cfg.request_timeout_ms = 2000;
    cfg.dial_timeout_ms = 500;
    gp_err_t err;
    gp_etcd_t *etcd = gp_etcd_new(&cfg, &err);
    if (!etcd) {
        fprintf(stderr, "home_probe: %s\n", err.msg);
        return 78;
    }
    char key[256];
    snprintf(key, sizeof key, "%s/k", argv[1]);
    gp_etcd_watch_opts_t wo = { .key = argv[1], .prefix = true, .start_revision = 1,
                                .cb = s_on_watch };
    gp_etcd_watch_t *w = gp_etcd_watch_new(etcd, &wo, &err);
    if (!w) {
        fprintf(stderr, "home_probe: watch: %s\n", err.msg);
        return 69;
    }
    struct sigaction sa = { .sa_handler = s_on_term };
    sigaction(SIGTERM, &sa, NULL);
    int64_t value = 1, puts = 0, next_print = 0;
    char last_ep[512] = "";
    s_print(etcd, "state", puts);
    while (!s_stop) {
        char v[32];
        snprintf(v, sizeof v, "%" PRId64, value);
        if (gp_etcd_put(etcd, key, v, strlen(v), 0, NULL, &err) == 0) {
            value++;
            puts++;
        }
        gp_etcd_step(etcd, 50, &err);
        int64_t now = gp_mono_ms();
        if (strcmp(last_ep, gp_etcd_endpoint(etcd)) != 0 || now >= next_print) {
            gp_strlcpy(last_ep, gp_etcd_endpoint(etcd), sizeof last_ep);
            s_print(etcd, "state", puts);
            next_print = now + 1000;
        }
    }
    /* the watch catches up with the last put */
    for (int i = 0; i < 40 && s_last_value < value - 1; i++)
        gp_etcd_step(etcd, 50, &err);
    s_print(etcd, "final", puts);
    gp_etcd_watch_destroy(&w);
    gp_etcd_destroy(&etcd);
    return 0;
}
