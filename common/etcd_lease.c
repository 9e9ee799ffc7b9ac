/*
 * etcd_lease.c - lease keep-alives on a thread of their own.
 *
 * A lease must outlive whatever its holder's loop is doing: a long
 * synchronous batch against a slow member, a CPU-bound stretch (ranking a
 * huge queue), a burst of watch events.  So keep-alives do not run on the
 * caller's loop.  The first keep-alive of a client starts one thread with a
 * client of its own (the same endpoints, local ones first, TLS and
 * credentials; its own connections): the thread sends each lease's
 * refreshes as short synchronous calls on that client, on its own timer.
 *
 * What the thread touches: its own client, and the keep-alive records under
 * the thread's mutex.  Nothing of the caller's client, no user callback.
 * How the caller learns of a lost lease: the thread marks the record lost
 * and writes to an eventfd that gp_etcd_pollfds() hands out with the loop's
 * sockets; the next gp_etcd_step() (a loop task, the "reporter") calls each
 * lost lease's on_lost, once, on the caller's thread.
 *
 * A record's memory belongs to the thread once started: gp_etcd_keepalive_stop
 * marks it stopped and the thread frees it at its next pass (after a refresh
 * it may have had in flight).  Client destroy stops and joins the thread,
 * then frees what is left.
 *
 * Timing, per lease: a refresh every ttl/3 (counted from etcd's answer), so
 * two refreshes can fail before the lease is at risk.  Each refresh gets a
 * deadline of ttl/5 (at least 250 ms, at most the client's request timeout)
 * within which the client's engine fails over to other members; a refresh
 * that timed out or found no member is sent again at once (the engine moved
 * on), one that got an error answer after 500 ms.  The lease is lost, once,
 * when etcd answers that it does not exist (expired or revoked: its keys are
 * gone), or when ttl has passed since the sending time of the last refresh
 * etcd confirmed (etcd may have expired it; the holder must act as if).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "etcd_internal.h"
#include "log.h"
#include "util.h"
#include "banned.h"

#define RETRY_MS 500
#define MIN_DEADLINE_MS 250
#define STEP_AWAY_MS 50      /* steps of the thread's client while away from its local members */

struct gp_etcd_keepalive {
    gp_etcd_keepalive_t *next;
    gp_etcd_kathread_t *thread;
    int64_t lease_id;
    int64_t ttl_ms;
    gp_etcd_lease_lost_fn *on_lost;   /* read on the caller's thread only */
    void *arg;
    /* under the thread's mutex */
    int64_t last_ok_ms;     /* the sending time of the last refresh etcd confirmed */
    int64_t next_due_ms;    /* next refresh */
    bool lost;              /* the thread found it lost (why says how) */
    char why[64];
    bool reported;          /* on_lost called */
    bool stopped;           /* the caller let go; the thread frees it */
    bool in_call;           /* the thread is refreshing it right now */
};

struct gp_etcd_kathread {
    gp_etcd_t *etcd;        /* the caller's client (for the reporter task) */
    gp_etcd_t *own;         /* the thread's client */
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cond;    /* CLOCK_MONOTONIC */
    bool quit;
    gp_etcd_keepalive_t *list;
    int efd;                /* eventfd: a lease was lost */
    atomic_bool pending;    /* the same, for the reporter's cheap check */
};

/* ------------------------------------------------------------ the thread */

static void s_wait_until(gp_etcd_kathread_t *t, int64_t until_ms)
{
    if (until_ms < 0) {
        pthread_cond_wait(&t->cond, &t->mu);
        return;
    }
    struct timespec ts;
    ts.tv_sec = (time_t)(until_ms / 1000);
    ts.tv_nsec = (long)(until_ms % 1000) * 1000000L;
    pthread_cond_timedwait(&t->cond, &t->mu, &ts);
}

static void s_mark_lost(gp_etcd_kathread_t *t, gp_etcd_keepalive_t *ka, const char *why)
{
    ka->lost = true;
    gp_strlcpy(ka->why, why, sizeof(ka->why));
    atomic_store(&t->pending, true);
    uint64_t one = 1;
    ssize_t w = write(t->efd, &one, sizeof(one));
    (void)w;   /* a full counter still wakes the loop */
}

/* One refresh of ka, with the mutex released during the call.  Returns
 * with the mutex held. */
static void s_refresh(gp_etcd_kathread_t *t, gp_etcd_keepalive_t *ka, int64_t now)
{
    int64_t limit = ka->ttl_ms / 5;
    if (limit < MIN_DEADLINE_MS)
        limit = MIN_DEADLINE_MS;
    if (limit > gp_etcd_request_timeout_ms(t->etcd))
        limit = gp_etcd_request_timeout_ms(t->etcd);
    int64_t id = ka->lease_id;
    ka->in_call = true;
    pthread_mutex_unlock(&t->mu);

    t->own->request_timeout_ms = (int)limit;
    gp_err_t err;
    int64_t ttl = 0;
    int rc = gp_etcd_lease_keepalive_once(t->own, id, &ttl, &err);
    int64_t after = gp_mono_ms();
    if (rc < 0 && err.code != GP_ERR_NOTFOUND)
        gp_log_warn("etcd keep-alive failed lease=%" PRId64 " err=\"%s\"", id, err.msg);

    pthread_mutex_lock(&t->mu);
    ka->in_call = false;
    if (ka->stopped)
        return;
    if (rc == 0) {
        /* good for ttl from etcd's answer; count from the sending time */
        ka->last_ok_ms = now;
        ka->next_due_ms = after + ttl * 1000 / 3;
    } else if (err.code == GP_ERR_NOTFOUND) {
        gp_log_warn("etcd lease lost lease=%" PRId64 " reason=\"expired or revoked\"", id);
        s_mark_lost(t, ka, "expired or revoked");
    } else {
        ka->next_due_ms = err.code == GP_ERR_TIMEOUT || err.code == GP_ERR_TRANSPORT ? after
                                                                                   : after + RETRY_MS;
    }
}

/* Whether the thread's client works on a member other than its local
 * ones: then its probes of them (etcd_home.c) need steps, between refreshes
 * too, to bring it back. */
static bool s_away(const gp_etcd_kathread_t *t)
{
    return t->own->n_local > 0 && t->own->cur_ep >= t->own->n_local;
}

static void *s_thread(void *arg)
{
    gp_etcd_kathread_t *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->quit) {
        /* the client's own background work: its probes of local members */
        pthread_mutex_unlock(&t->mu);
        gp_etcd_step(t->own, 0, NULL);
        pthread_mutex_lock(&t->mu);
        int64_t now = gp_mono_ms();
        int64_t wake = s_away(t) ? now + STEP_AWAY_MS : -1;
        gp_etcd_keepalive_t **pp = &t->list;
        while (*pp) {
            gp_etcd_keepalive_t *ka = *pp;
            if (ka->stopped) {
                *pp = ka->next;
                free(ka);
                continue;
            }
            pp = &ka->next;
            if (ka->lost)
                continue;
            if (now - ka->last_ok_ms >= ka->ttl_ms) {
                gp_log_warn("etcd lease lost lease=%" PRId64 " reason=\"etcd unreachable for longer than the TTL\"",
                            ka->lease_id);
                s_mark_lost(t, ka, "etcd unreachable for longer than the TTL");
                continue;
            }
            if (now >= ka->next_due_ms) {
                s_refresh(t, ka, now);
                wake = 0;   /* the list may have changed meanwhile: look again */
                break;
            }
            int64_t d = ka->next_due_ms < ka->last_ok_ms + ka->ttl_ms ? ka->next_due_ms
                                                                        : ka->last_ok_ms + ka->ttl_ms;
            if (wake < 0 || d < wake)
                wake = d;
        }
        if (wake == 0 || t->quit)
            continue;
        s_wait_until(t, wake);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* ------------------------------------------------------------ the reporter (caller's loop) */

/* At every step of the caller's loop: drain the eventfd and call on_lost
 * for each lease found lost, once, without holding the mutex (on_lost may
 * stop keep-alives). */
static int64_t s_report(void *obj, int64_t now)
{
    (void)now;
    gp_etcd_kathread_t *t = obj;
    if (!atomic_exchange(&t->pending, false))
        return -1;
    uint64_t v;
    while (read(t->efd, &v, sizeof(v)) > 0)
        ;
    for (;;) {
        pthread_mutex_lock(&t->mu);
        gp_etcd_keepalive_t *ka = t->list;
        while (ka && !(ka->lost && !ka->reported && !ka->stopped))
            ka = ka->next;
        if (!ka) {
            pthread_mutex_unlock(&t->mu);
            return -1;
        }
        ka->reported = true;
        int64_t id = ka->lease_id;
        gp_etcd_lease_lost_fn *fn = ka->on_lost;
        void *arg = ka->arg;
        gp_err_t err;
        gp_err_set(&err, GP_ERR_LOST, "etcd lease %" PRId64 " lost: %s", id, ka->why);
        pthread_mutex_unlock(&t->mu);
        if (fn)
            fn(t->etcd, id, &err, arg);
    }
}

static void s_free(void *obj)
{
    gp_etcd_kathread_t *t = obj;
    if (t->started) {
        pthread_mutex_lock(&t->mu);
        t->quit = true;
        pthread_cond_signal(&t->cond);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->thread, NULL);
    }
    while (t->list) {
        gp_etcd_keepalive_t *ka = t->list;
        t->list = ka->next;
        free(ka);
    }
    gp_etcd_destroy(&t->own);
    if (t->efd >= 0)
        close(t->efd);
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->mu);
    t->etcd->kat = NULL;
    free(t);
}

/* Join endpoints[from, to) with commas into a malloc'd string. */
static char *s_join(char *const *eps, int from, int to)
{
    gp_ebuf_t b = { 0 };
    for (int i = from; i < to; i++) {
        if (gp_ebuf_addf(&b, "%s%s", i > from ? "," : "", eps[i]) < 0) {
            gp_ebuf_free(&b);
            return NULL;
        }
    }
    if (gp_ebuf_add(&b, "", 1) < 0) {
        gp_ebuf_free(&b);
        return NULL;
    }
    return b.p;
}

/* The thread's client: the caller's endpoints (local ones first), TLS and
 * credentials, two connections. */
static gp_etcd_t *s_own_client(gp_etcd_t *etcd, gp_err_t *err)
{
    char *all = s_join(etcd->endpoints, 0, etcd->n_endpoints);
    char *local = etcd->n_local > 0 ? s_join(etcd->endpoints, 0, etcd->n_local) : NULL;
    gp_etcd_t *own = NULL;
    if (!all || (etcd->n_local > 0 && !local)) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    } else {
        gp_etcd_config_t cfg = GP_ETCD_CONFIG_INIT;
        cfg.endpoints = all;
        cfg.local_endpoints = local;
        cfg.request_timeout_ms = etcd->request_timeout_ms;
        cfg.dial_timeout_ms = etcd->dial_timeout_ms;
        cfg.ca_file = etcd->ca_file;
        cfg.cert_file = etcd->cert_file;
        cfg.key_file = etcd->key_file;
        cfg.username = etcd->username;
        cfg.password = etcd->password;
        cfg.max_connections = 2;
        own = gp_etcd_new(&cfg, err);
    }
    free(all);
    free(local);
    return own;
}

static gp_etcd_kathread_t *s_thread_get(gp_etcd_t *etcd, gp_err_t *err)
{
    if (etcd->kat)
        return etcd->kat;
    gp_etcd_kathread_t *t = calloc(1, sizeof(*t));
    if (!t) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    t->etcd = etcd;
    t->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
    etcd->kat = t;
    if (t->efd < 0) {
        gp_err_errno(err, "eventfd");
        s_free(t);
        return NULL;
    }
    if (!(t->own = s_own_client(etcd, err))) {
        s_free(t);
        return NULL;
    }
    /* The thread takes no signals: they stay the caller's. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&t->thread, NULL, s_thread, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errno = rc;
        gp_err_errno(err, "pthread_create");
        s_free(t);
        return NULL;
    }
    t->started = true;
    if (gp_etcd_loop_add(etcd, t, s_report, s_free) < 0) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        s_free(t);
        return NULL;
    }
    return t;
}

int gp_etcd_kathread_fd(const gp_etcd_t *etcd)
{
    return etcd->kat ? etcd->kat->efd : -1;
}

/* ------------------------------------------------------------ API */

gp_etcd_keepalive_t *gp_etcd_keepalive_start(gp_etcd_t *etcd, int64_t lease_id, int64_t ttl_s,
                                             gp_etcd_lease_lost_fn *on_lost, void *arg,
                                             gp_err_t *err)
{
    if (lease_id == 0 || ttl_s <= 0) {
        gp_err_set(err, GP_ERR_INVALID, "etcd keep-alive needs a lease id and a positive TTL");
        return NULL;
    }
    gp_etcd_kathread_t *t = s_thread_get(etcd, err);
    if (!t)
        return NULL;
    gp_etcd_keepalive_t *ka = calloc(1, sizeof(*ka));
    if (!ka) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ka->thread = t;
    ka->lease_id = lease_id;
    ka->ttl_ms = ttl_s * 1000;
    ka->on_lost = on_lost;
    ka->arg = arg;
    pthread_mutex_lock(&t->mu);
    ka->last_ok_ms = gp_mono_ms();
    ka->next_due_ms = ka->last_ok_ms;   /* refresh (and check) right away */
    ka->next = t->list;
    t->list = ka;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->mu);
    return ka;
}

void gp_etcd_keepalive_stop(gp_etcd_keepalive_t **ka_p)
{
    gp_etcd_keepalive_t *ka = ka_p ? *ka_p : NULL;
    if (!ka)
        return;
    *ka_p = NULL;
    /* The record is on the thread of the client that started it; find it
     * through the list it is on. */
    gp_etcd_kathread_t *t = ka->thread;
    pthread_mutex_lock(&t->mu);
    ka->stopped = true;   /* freed by the thread (or at destroy) */
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->mu);
}
