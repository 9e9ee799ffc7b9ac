/*
 * doctor.c - `gpupool doctor`: how far this host is from each etcd member, and whether
 * etcd's raft timing and the daemons' settings fit those distances.
 *
 * Run it on a daemon's host with the daemon's configuration (-c FILE reads
 * its etcd-* options and lease-ttl; flags override them): it measures, per
 * member, the round trip of a serializable read (the network and the
 * member), of a linearizable read (plus the member's round trip to the raft
 * leader), the member's role, the round trip it measures to its peers, and
 * the --heartbeat-interval / --election-timeout it runs with
 * (gp_etcd_member_report).  Then it warns, one line each, when
 *   - a member cannot be reached;
 *   - etcd-local-endpoints is empty while the members are at very different
 *     distances, or names a member that is not the nearest;
 *   - the heartbeat interval is under half the round trip between members
 *     (etcd's guidance: about the round trip, 0.5 to 1.5 times it), or the
 *     election timeout under ten round trips or five heartbeats;
 *   - the members do not all run with the same timing;
 *   - lease-ttl is under three election timeouts (an election could
 *     outlast a lease).
 * and suggests a heartbeat and an election timeout for the distances seen.
 * Exit status: 0 nothing to report, 1 warnings, 64 usage, 66 no such file,
 * 69 no member could be reached.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <jansson.h>

#include "cli.h"
#include "config.h"
#include "etcd.h"
#include "util.h"

#include "banned.h"

typedef struct {
    char *endpoints, *local, *ca, *cert, *key, *user, *password;
    int64_t lease_ttl_ms;       /* -1: unknown */
} doctor_cfg_t;

static void s_doctor_set(char **slot, const char *v)
{
    free(*slot);
    *slot = strdup(v);
}

/* The etcd-* options and lease-ttl of a daemon's configuration file (the
 * rest is the daemon's business). */
static int s_doctor_read_conf(const char *path, doctor_cfg_t *dc)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_error("cannot read %s: %s", path, strerror(errno));
        return EX_NOINPUT;
    }
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *s = line, *eq, *v, *e;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '#' || !(eq = strchr(s, '=')))
            continue;
        e = eq;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *e = '\0';
        v = eq + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t n = strcspn(v, "#\r\n");
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
            v++;
            n -= 2;
        }
        v[n] = '\0';
        static const char *const names[] = { "etcd-endpoints", "etcd-local-endpoints", "etcd-ca",
                                              "etcd-cert", "etcd-key", "etcd-user", "etcd-password" };
        char **slots[] = { &dc->endpoints, &dc->local, &dc->ca, &dc->cert, &dc->key, &dc->user,
                           &dc->password };
        for (size_t i = 0; i < GP_ARRAY_LEN(names); i++)
            if (!strcmp(s, names[i]))
                s_doctor_set(slots[i], v);
        if (!strcmp(s, "lease-ttl") && gp_parse_duration_ms(v, &dc->lease_ttl_ms) < 0)
            dc->lease_ttl_ms = -1;
    }
    fclose(f);
    return 0;
}

int cli_cmd_doctor(int argc, char **argv, out_fmt_t out)
{
    typedef struct {
        char *config, *endpoints, *local, *ca, *cert, *key, *user, *password;
        int64_t lease_ttl_ms, samples;
    } doctor_args_t;
    static const gp_opt_t opts[] = {
        { "c", GP_OPT_STRING, offsetof(doctor_args_t, config), NULL, 0, 0, "a daemon's config" },
        { "config", GP_OPT_STRING, offsetof(doctor_args_t, config), NULL, 0, 0, "the same" },
        { "etcd-endpoints", GP_OPT_STRING, offsetof(doctor_args_t, endpoints), NULL, 0, 0, "" },
        { "etcd-local-endpoints", GP_OPT_STRING, offsetof(doctor_args_t, local), NULL, 0, 0, "" },
        { "etcd-ca", GP_OPT_STRING, offsetof(doctor_args_t, ca), NULL, 0, 0, "" },
        { "etcd-cert", GP_OPT_STRING, offsetof(doctor_args_t, cert), NULL, 0, 0, "" },
        { "etcd-key", GP_OPT_STRING, offsetof(doctor_args_t, key), NULL, 0, 0, "" },
        { "etcd-user", GP_OPT_STRING, offsetof(doctor_args_t, user), NULL, 0, 0, "" },
        { "etcd-password", GP_OPT_STRING, offsetof(doctor_args_t, password), NULL, 0, 0, "" },
        { "lease-ttl", GP_OPT_DURATION, offsetof(doctor_args_t, lease_ttl_ms), "0", 0, 0,
          "the daemons' lease (0: from -c, else unknown)" },
        { "samples", GP_OPT_INT, offsetof(doctor_args_t, samples), "5", 1, 1000, "per member" },
        { NULL, 0, 0, NULL, 0, 0, NULL },
    };
    static const char usage[] = "gpupool doctor [-c FILE] [--etcd-endpoints URLS] "
                                "[--etcd-local-endpoints URLS] [--lease-ttl D] [--samples N]";
    doctor_cfg_t dc = { .lease_ttl_ms = -1 };
    doctor_args_t da = { 0 };
    int rc = cli_args(opts, &da, &argc, argv, usage);
    if (rc == 0 && argc > 1)
        rc = cli_fail(EX_USAGE, "doctor: unknown argument %s (usage: %s)", argv[1], usage);
    if (rc == 0 && *da.config)
        rc = s_doctor_read_conf(da.config, &dc);
    int64_t samples = da.samples;
    if (rc == 0) {      /* flags override the daemon's file */
        const char *given[] = { da.endpoints, da.local, da.ca, da.cert, da.key, da.user,
                                da.password };
        char **slots[] = { &dc.endpoints, &dc.local, &dc.ca, &dc.cert, &dc.key, &dc.user,
                           &dc.password };
        for (size_t k = 0; k < GP_ARRAY_LEN(given); k++)
            if (*given[k])
                s_doctor_set(slots[k], given[k]);
        if (da.lease_ttl_ms > 0)
            dc.lease_ttl_ms = da.lease_ttl_ms;
    }
    gp_config_free(opts, &da);
    if (rc != 0)
        goto cleanup;
    if (!dc.endpoints || !*dc.endpoints) {
        cli_error("doctor: no etcd endpoints (-c a daemon's configuration, or --etcd-endpoints)");
        rc = EX_USAGE;
        goto cleanup;
    }

    /* every member, the local ones first (the client's own order) */
    gp_etcd_config_t all = GP_ETCD_CONFIG_INIT;
    gp_etcd_config_from(&all, dc.endpoints, dc.ca, dc.cert, dc.key, dc.user, dc.password);
    all.local_endpoints = dc.local;
    gp_err_t err;
    gp_etcd_t *list = gp_etcd_new(&all, &err);
    if (!list) {
        cli_error("doctor: %s", err.msg);
        rc = EX_USAGE;
        goto cleanup;
    }
    int n = 0, n_local = 0;
    const char *const *eps = gp_etcd_endpoints(list, &n, &n_local);
    gp_etcd_member_report_t *rep = calloc((size_t)n, sizeof *rep);
    char (*why)[256] = calloc((size_t)n, sizeof *why);
    bool *okm = calloc((size_t)n, sizeof *okm);
    json_t *warnings = json_array(), *members = json_array();
    char w[512];
    int reached = 0, hb = -1, el = -1;
    bool mixed = false;
    double peer = -1, nearest = -1, far_rtt = -1;
    int nearest_i = -1;
    for (int i = 0; rep && why && okm && i < n; i++) {
        gp_etcd_config_t one = all;
        one.endpoints = eps[i];
        one.local_endpoints = NULL;
        one.request_timeout_ms = 3000;
        one.dial_timeout_ms = 2000;
        gp_err_t merr;
        if (gp_etcd_member_report(&one, (int)samples, &rep[i], &merr) < 0) {
            snprintf(why[i], sizeof why[i], "%s", merr.msg);
            snprintf(w, sizeof w, "member %s cannot be reached: %s", eps[i], merr.msg);
            json_array_append_new(warnings, json_string(w));
            continue;
        }
        okm[i] = true;
        reached++;
        if (rep[i].peer_rtt_ms > peer)
            peer = rep[i].peer_rtt_ms;
        if (nearest < 0 || rep[i].rtt_min_ms < nearest) {
            nearest = rep[i].rtt_min_ms;
            nearest_i = i;
        }
        if (rep[i].rtt_min_ms > far_rtt)
            far_rtt = rep[i].rtt_min_ms;
        int h = rep[i].heartbeat_ms < 0 ? 100 : rep[i].heartbeat_ms;
        int e = rep[i].election_ms < 0 ? 1000 : rep[i].election_ms;
        if ((hb >= 0 && h != hb) || (el >= 0 && e != el))
            mixed = true;
        hb = hb < 0 || h < hb ? h : hb;
        el = el < 0 || e < el ? e : el;
    }
    if (reached == 0) {
        cli_error("doctor: no etcd member could be reached");
        rc = EX_UNAVAILABLE;
    } else {
        /* The round trip between members: a linearizable read at the raft
         * leader waits for one heartbeat round to a quorum of followers,
         * so its time less the round trip to the leader is the leader's
         * round trip to its nearer followers, now.  Without the leader:
         * the members' own means since they started (their /metrics), or
         * else this host's farthest member. */
        const char *how = "the members' mean since they started";
        double rtt = peer;
        for (int i = 0; i < n; i++)
            if (okm[i] && rep[i].is_leader) {
                rtt = rep[i].read_ms - rep[i].rtt_ms;
                how = "the raft leader's quorum round, now";
            }
        if (rtt < 0) {
            rtt = far_rtt;
            how = "this host's farthest member";
        }
        if (n_local == 0 && n > 1 && far_rtt > 3 * nearest && far_rtt - nearest > 5) {
            snprintf(w, sizeof w, "the members are at %.1f to %.1f ms from here and no etcd-local-endpoints "
                     "is set: name the nearest (%s) so that requests start there",
                     nearest, far_rtt, eps[nearest_i]);
            json_array_append_new(warnings, json_string(w));
        }
        if (n_local > 0 && nearest_i >= n_local && okm[nearest_i]) {
            double local_min = -1;
            for (int i = 0; i < n_local; i++)
                if (okm[i] && (local_min < 0 || rep[i].rtt_min_ms < local_min))
                    local_min = rep[i].rtt_min_ms;
            if (local_min < 0 || (local_min > 2 * nearest && local_min - nearest > 2)) {
                snprintf(w, sizeof w, "etcd-local-endpoints names %s, but %s is nearer (%.1f ms against %.1f)",
                         eps[0], eps[nearest_i], nearest, local_min);
                json_array_append_new(warnings, json_string(w));
            }
        }
        if (mixed) {
            snprintf(w, sizeof w, "the members do not all run with the same heartbeat and election timeout");
            json_array_append_new(warnings, json_string(w));
        }
        if (hb < 0.5 * rtt) {
            snprintf(w, sizeof w, "heartbeat-interval %d ms is under half the round trip between members "
                     "(%.1f ms, %s): followers hear from the leader late and may start elections",
                     hb, rtt, how);
            json_array_append_new(warnings, json_string(w));
        }
        if (el < 10 * rtt || el < 5 * hb) {
            snprintf(w, sizeof w, "election-timeout %d ms is under %s (%.0f ms): one slow round trip can "
                     "start an election", el, el < 5 * hb ? "five heartbeats" : "ten round trips between members",
                     el < 5 * hb ? 5.0 * hb : 10 * rtt);
            json_array_append_new(warnings, json_string(w));
        }
        if (dc.lease_ttl_ms >= 0 && dc.lease_ttl_ms < 3 * (int64_t)el) {
            snprintf(w, sizeof w, "lease-ttl %lld ms is under three election timeouts (%d ms): an etcd "
                     "election can outlast the daemon's lease", (long long)dc.lease_ttl_ms, 3 * el);
            json_array_append_new(warnings, json_string(w));
        }
        /* suggestions: a heartbeat of about the round trip (never under
         * etcd's default 100 ms), ten of them for the election, and at
         * least ten round trips */
        int s_hb = rtt > 100 ? ((int)rtt + 9) / 10 * 10 : 100;
        int s_el = 10 * s_hb;
        if (s_el < 10 * rtt)
            s_el = ((int)(10 * rtt) + 99) / 100 * 100;
        for (int i = 0; i < n; i++) {
            json_t *m = json_pack("{s:s,s:b,s:b}", "endpoint", eps[i], "local", i < n_local, "reachable", okm[i]);
            if (okm[i]) {
                json_object_set_new(m, "role", json_string(rep[i].is_leader ? "leader" : "follower"));
                json_object_set_new(m, "rtt_ms", json_real(rep[i].rtt_ms));
                json_object_set_new(m, "rtt_min_ms", json_real(rep[i].rtt_min_ms));
                json_object_set_new(m, "linearizable_read_ms", json_real(rep[i].read_ms));
                if (rep[i].peer_rtt_ms >= 0)
                    json_object_set_new(m, "peer_rtt_ms", json_real(rep[i].peer_rtt_ms));
                if (rep[i].heartbeat_ms > 0)
                    json_object_set_new(m, "heartbeat_ms", json_integer(rep[i].heartbeat_ms));
                if (rep[i].election_ms > 0)
                    json_object_set_new(m, "election_ms", json_integer(rep[i].election_ms));
            } else {
                json_object_set_new(m, "error", json_string(why[i]));
            }
            json_array_append_new(members, m);
        }
        if (out == OUT_JSON) {
            json_t *doc = json_pack("{s:O,s:O,s:f,s:{s:i,s:i},s:{s:i,s:i}}", "members", members, "warnings",
                                    warnings, "member_rtt_ms", rtt, "etcd_timing", "heartbeat_ms", hb, "election_ms", el,
                                    "suggested", "heartbeat_ms", s_hb, "election_ms", s_el);
            char *s = json_dumps(doc, JSON_INDENT(2));
            if (s)
                puts(s);
            free(s);
            json_decref(doc);
        } else {
            printf("%-32s %-5s %-9s %9s %9s %9s %9s %9s\n", "MEMBER", "LOCAL", "ROLE", "RTT_MS",
                   "READ_MS", "PEERS_MS", "HEARTBEAT", "ELECTION");
            /* RTT_MS: serializable read (network + member); READ_MS:
             * linearizable; PEERS_MS: the member's mean round trip to its
             * peers since it started */
            for (int i = 0; i < n; i++) {
                if (!okm[i]) {
                    printf("%-32s %-5s %-9s %s\n", eps[i], i < n_local ? "yes" : "no", "-", why[i]);
                    continue;
                }
                char p[32] = "-", h[32] = "-", e[32] = "-";
                if (rep[i].peer_rtt_ms >= 0)
                    snprintf(p, sizeof p, "%.1f", rep[i].peer_rtt_ms);
                if (rep[i].heartbeat_ms > 0)
                    snprintf(h, sizeof h, "%d", rep[i].heartbeat_ms);
                if (rep[i].election_ms > 0)
                    snprintf(e, sizeof e, "%d", rep[i].election_ms);
                printf("%-32s %-5s %-9s %9.1f %9.1f %9s %9s %9s\n", eps[i], i < n_local ? "yes" : "no",
                       rep[i].is_leader ? "leader" : "follower", rep[i].rtt_ms, rep[i].read_ms, p, h, e);
            }
            printf("\nround trip between members: %.1f ms (%s); etcd timing: heartbeat %d ms, election %d ms%s\n",
                   rtt, how, hb, el,
                   rep && (rep[0].heartbeat_ms < 0 || rep[0].election_ms < 0) ? " (etcd's defaults where a member's command line does not say)" : "");
            printf("suggested for these distances: --heartbeat-interval %d --election-timeout %d\n", s_hb, s_el);
            size_t k;
            json_t *x;
            json_array_foreach(warnings, k, x)
                printf("warning: %s\n", json_string_value(x));
            if (json_array_size(warnings) == 0)
                printf("ok: nothing to report\n");
        }
        rc = json_array_size(warnings) > 0 ? 1 : 0;
    }
    json_decref(warnings);
    json_decref(members);
    free(rep);
    free(why);
    free(okm);
    gp_etcd_destroy(&list);
cleanup:
    free(dc.endpoints);
    free(dc.local);
    free(dc.ca);
    free(dc.cert);
    free(dc.key);
    free(dc.user);
    if (dc.password) {
        explicit_bzero(dc.password, strlen(dc.password));
        free(dc.password);
    }
    return rc;
}

