/*
 * load.c - the load generators' shared event-loop step and percentiles
 * (load.h).
 */
#include "bench/load.h"

#include <poll.h>
#include <stdlib.h>

#include "banned.h"

#define S_MAX_FDS 64

void bench_step(gp_etcd_t *etcd, CURLM *multi, int ms, void (*reap)(void))
{
    struct pollfd pf[S_MAX_FDS];
    int to = -1;
    int n = gp_etcd_pollfds(etcd, pf, S_MAX_FDS, &to);
    struct curl_waitfd wf[S_MAX_FDS];
    for (int i = 0; i < n && i < S_MAX_FDS; i++) {
        wf[i].fd = pf[i].fd;
        wf[i].events = (short)((pf[i].events & POLLIN ? CURL_WAIT_POLLIN : 0) |
                               (pf[i].events & POLLOUT ? CURL_WAIT_POLLOUT : 0));
        wf[i].revents = 0;
    }
    if (to >= 0 && to < ms)
        ms = to;
    curl_multi_poll(multi, wf, (unsigned)(n < S_MAX_FDS ? n : S_MAX_FDS), ms, NULL);
    int running;
    curl_multi_perform(multi, &running);
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
