/*
 * load.c - the load generators' shared event loop and percentiles
 * (load.h).
 *
 * The loop drives curl through its socket interface: curl says which of
 * its sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to come back
 * (CURLMOPT_TIMERFUNCTION); the sockets live in an epoll set, and a step
 * hands curl only the sockets that are ready.  curl_multi_perform and
 * curl_multi_poll would instead look at every connection at every step: a
 * generator offering a thousand one-job requests a second over 64
 * keep-alive connections spent a third of its CPU in poll() so, on the
 * same cores as the pool it measures.  The etcd client's few sockets are
 * polled beside the epoll set's own descriptor, so that a socket number
 * that passes from one to the other is never confused.
 */
#include "bench/load.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "util.h"

#include "banned.h"

#define S_MAX_FDS 64
#define S_EVENTS 64

struct bench_loop {
    CURLM *multi;
    int ep;                    /* epoll set of curl's sockets */
    int64_t due_ms;            /* curl's timer (monotonic ms), -1: none */
};

static int s_socket_cb(CURL *e, curl_socket_t fd, int what, void *arg, void *sockp)
{
    (void)e;
    (void)sockp;
    bench_loop_t *self = arg;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(self->ep, EPOLL_CTL_DEL, fd, NULL);   /* fails when curl closed it first: fine */
        return 0;
    }
    struct epoll_event ev = { .events = (what & CURL_POLL_IN ? EPOLLIN : 0u) |
                                        (what & CURL_POLL_OUT ? EPOLLOUT : 0u),
                              .data.fd = fd };
    if (epoll_ctl(self->ep, EPOLL_CTL_MOD, fd, &ev) < 0 && errno == ENOENT)
        epoll_ctl(self->ep, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

static int s_timer_cb(CURLM *multi, long ms, void *arg)
{
    (void)multi;
    bench_loop_t *self = arg;
    self->due_ms = ms < 0 ? -1 : gp_mono_ms() + ms;
    return 0;
}

bench_loop_t *bench_loop_new(CURLM *multi)
{
    bench_loop_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return NULL;
    self->multi = multi;
    self->due_ms = -1;
    self->ep = epoll_create1(EPOLL_CLOEXEC);
    if (self->ep < 0) {
        free(self);
        return NULL;
    }
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, s_socket_cb);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, self);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, s_timer_cb);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, self);
    return self;
}

void bench_loop_destroy(bench_loop_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    bench_loop_t *self = *self_p;
    curl_multi_setopt(self->multi, CURLMOPT_SOCKETFUNCTION, NULL);
    curl_multi_setopt(self->multi, CURLMOPT_TIMERFUNCTION, NULL);
    close(self->ep);
    free(self);
    *self_p = NULL;
}

void bench_step(bench_loop_t *self, gp_etcd_t *etcd, int ms, void (*reap)(void))
{
    struct pollfd pf[S_MAX_FDS + 1];
    int to = -1;
    int n = gp_etcd_pollfds(etcd, pf + 1, S_MAX_FDS, &to);
    if (n > S_MAX_FDS)
        n = S_MAX_FDS;
    pf[0] = (struct pollfd){ .fd = self->ep, .events = POLLIN };
    if (to >= 0 && to < ms)
        ms = to;
    int64_t now = gp_mono_ms();
    if (self->due_ms >= 0 && self->due_ms - now < ms)
        ms = self->due_ms > now ? (int)(self->due_ms - now) : 0;
    poll(pf, (nfds_t)n + 1, ms);
    int running;
    if (pf[0].revents) {
        struct epoll_event ev[S_EVENTS];
        int k = epoll_wait(self->ep, ev, S_EVENTS, 0);
        for (int i = 0; i < k; i++)
            curl_multi_socket_action(self->multi, ev[i].data.fd,
                                     (ev[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                                         (ev[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                                         (ev[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0),
                                     &running);
    }
    if (self->due_ms >= 0 && gp_mono_ms() >= self->due_ms) {
        self->due_ms = -1;   /* curl sets it again if it wants */
        curl_multi_socket_action(self->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    reap();
    gp_etcd_step(etcd, 0, NULL);
}

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

void bench_sort(int64_t *v, size_t n)
{
    if (n > 0)
        qsort(v, n, sizeof *v, s_cmp_i64);
}

double bench_pct(const int64_t *v, size_t n, int pct)
{
    if (n == 0)
        return 0;
    size_t i = n * (size_t)pct / 100;
    return (double)v[i < n ? i : n - 1];
}
