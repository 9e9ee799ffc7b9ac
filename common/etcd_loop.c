/*
 * etcd_loop.c - the background half of the client: the bg multi handle that
 * carries watch streams and background batches, and its integration into the
 * caller's event loop.
 *
 * libcurl tells us which sockets it wants watched (CURLMOPT_SOCKETFUNCTION)
 * and when it wants to be called back (CURLMOPT_TIMERFUNCTION); the loop
 * keeps both, so gp_etcd_pollfds() can hand them to the caller's poll or
 * zmq_poll, and gp_etcd_step() can hand readiness back with
 * curl_multi_socket_action().  Nothing of the loop runs between steps.
 *
 * One step:
 *   1. poll the tracked sockets (up to the caller's timeout, shortened by
 *      curl's timer, request retries and the tasks' own deadlines);
 *   2. feed readiness and expired timers to curl (streaming data is only
 *      buffered by the tasks here: no user callback runs inside curl);
 *   3. finished requests: retried on the next endpoint when the engine says
 *      so (after their backoff), else handed to their done();
 *   4. tick every task: watches parse what arrived and call back, the keep-alive
 *      reporter calls on_lost for leases the keep-alive thread found lost;
 *   5. free the tasks removed during the step.
 *
 * Keep-alives run on a thread of their own (etcd_lease.c): its eventfd
 * is polled with the sockets, and its reporter, the task that calls
 * on_lost for a lease the thread found lost, is ticked like the others.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_internal.h"
#include "log.h"
#include "util.h"
#include "banned.h"

typedef struct {
    curl_socket_t fd;
    short events;
} s_sock_t;

typedef struct {
    void *obj;
    gp_etcd_tick_fn *tick;
    gp_etcd_free_fn *free_fn;
    bool removed;
} s_task_t;

struct gp_etcd_loop {
    gp_etcd_t *etcd;
    CURLM *bg;
    s_sock_t *socks;
    int n_socks, cap_socks;
    int64_t curl_deadline;      /* absolute ms, -1 = none */
    s_task_t *tasks;
    int n_tasks, cap_tasks;
    gp_etcd_req_t **retry;      /* requests waiting to be sent again */
    int n_retry, cap_retry;
    int64_t next_tick;          /* absolute ms, -1 = none */
    bool wake;
    bool in_step;
};

/* Make room for one more element in a growing array (*arr of n, *cap). */
static int s_reserve(void *arr, int n, int *cap, size_t size)
{
    void **a = arr;
    if (n < *cap)
        return 0;
    int grown = *cap ? *cap * 2 : 8;
    void *p = realloc(*a, size * (size_t)grown);
    if (!p)
        return -1;
    *a = p;
    *cap = grown;
    return 0;
}

static int s_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    gp_etcd_loop_t *loop = userp;
    int i;
    for (i = 0; i < loop->n_socks; i++)
        if (loop->socks[i].fd == fd)
            break;
    if (what == CURL_POLL_REMOVE) {
        if (i < loop->n_socks)
            loop->socks[i] = loop->socks[--loop->n_socks];
        return 0;
    }
    if (i == loop->n_socks) {
        if (s_reserve(&loop->socks, loop->n_socks, &loop->cap_socks, sizeof(*loop->socks)) < 0)
            return -1;
        loop->socks[loop->n_socks++].fd = fd;
    }
    short ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev |= POLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev |= POLLOUT;
    loop->socks[i].events = ev;
    return 0;
}

static int s_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    gp_etcd_loop_t *loop = userp;
    loop->curl_deadline = timeout_ms < 0 ? -1 : gp_mono_ms() + timeout_ms;
    return 0;
}

gp_etcd_loop_t *gp_etcd_loop_new(gp_etcd_t *etcd)
{
    gp_etcd_loop_t *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return NULL;
    loop->etcd = etcd;
    loop->curl_deadline = -1;
    loop->next_tick = -1;
    if (!(loop->bg = curl_multi_init())) {
        free(loop);
        return NULL;
    }
    curl_multi_setopt(loop->bg, CURLMOPT_SOCKETFUNCTION, s_socket_cb);
    curl_multi_setopt(loop->bg, CURLMOPT_SOCKETDATA, loop);
    curl_multi_setopt(loop->bg, CURLMOPT_TIMERFUNCTION, s_timer_cb);
    curl_multi_setopt(loop->bg, CURLMOPT_TIMERDATA, loop);
    curl_multi_setopt(loop->bg, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
    return loop;
}

void gp_etcd_loop_destroy(gp_etcd_loop_t **loop_p)
{
    gp_etcd_loop_t *loop = *loop_p;
    if (!loop)
        return;
    /* tasks cancel their own requests in free_fn */
    loop->in_step = true;
    for (int i = 0; i < loop->n_tasks; i++)
        if (!loop->tasks[i].removed)
            loop->tasks[i].free_fn(loop->tasks[i].obj);
    free(loop->tasks);
    free(loop->retry);
    curl_multi_cleanup(loop->bg);
    free(loop->socks);
    free(loop);
    *loop_p = NULL;
}

bool gp_etcd_loop_in_step(const gp_etcd_t *etcd)
{
    return etcd->loop && etcd->loop->in_step;
}

int gp_etcd_loop_add(gp_etcd_t *etcd, void *obj, gp_etcd_tick_fn *tick, gp_etcd_free_fn *free_fn)
{
    gp_etcd_loop_t *loop = etcd->loop;
    if (s_reserve(&loop->tasks, loop->n_tasks, &loop->cap_tasks, sizeof(*loop->tasks)) < 0)
        return -1;
    loop->tasks[loop->n_tasks++] = (s_task_t){ obj, tick, free_fn, false };
    loop->wake = true;
    return 0;
}

void gp_etcd_loop_remove(gp_etcd_t *etcd, void *obj)
{
    gp_etcd_loop_t *loop = etcd->loop;
    for (int i = 0; i < loop->n_tasks; i++) {
        if (loop->tasks[i].obj != obj || loop->tasks[i].removed)
            continue;
        if (loop->in_step) {
            loop->tasks[i].removed = true;   /* freed at the end of the step */
        } else {
            s_task_t t = loop->tasks[i];
            memmove(&loop->tasks[i], &loop->tasks[i + 1], sizeof(t) * (size_t)(loop->n_tasks - i - 1));
            loop->n_tasks--;
            t.free_fn(t.obj);
        }
        return;
    }
}

void gp_etcd_loop_wake(gp_etcd_t *etcd)
{
    etcd->loop->wake = true;
}

int gp_etcd_bg_start(gp_etcd_t *etcd, gp_etcd_req_t *req, gp_err_t *err)
{
    if (gp_etcd_authenticate(etcd, false, err) < 0)
        return -1;
    return gp_etcd_req_attach(etcd, req, etcd->loop->bg, err);
}

void gp_etcd_bg_cancel(gp_etcd_t *etcd, gp_etcd_req_t *req)
{
    gp_etcd_loop_t *loop = etcd->loop;
    for (int i = 0; i < loop->n_retry; i++) {
        if (loop->retry[i] == req) {
            loop->retry[i] = loop->retry[--loop->n_retry];
            break;
        }
    }
    if (req->easy) {
        /* removing a handle mid-transfer closes its connection */
        curl_multi_remove_handle(loop->bg, req->easy);
        gp_etcd_req_release_easy(req);
    }
}

/*
 * Draining a stream.  libcurl 7.88 (Debian 12's) over HTTP/2 can keep part
 * of what one read of the socket brought: when a read holds more of a
 * stream's DATA than the transfer's buffer (16 KiB), curl hands over the
 * buffer and the frame that overflowed it, and leaves the frames after it
 * in its connection buffer until the socket is readable again.  For a
 * watch that is the next write to the watched range, however long that
 * takes: the last events of a burst (seen: the release of the last 1-12
 * of a vanished node's 600 allocations) waited for it, indefinitely.  A
 * stream's task therefore hands its socket back to curl as readable after
 * every delivery, until one brings nothing: curl then processes what it
 * holds, and finding the kernel's buffer empty costs one recv.  (And a
 * stream's buffer is larger than what curl reads at once, etcd.c: the
 * overflow should not happen at all.  The drain stays for the libcurl
 * that reads more.)
 */
void gp_etcd_bg_drain(gp_etcd_t *etcd, gp_etcd_req_t *req)
{
    curl_socket_t fd = CURL_SOCKET_BAD;
    if (req->easy == NULL || curl_easy_getinfo(req->easy, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK ||
        fd == CURL_SOCKET_BAD)
        return;
    int running;
    curl_multi_socket_action(etcd->loop->bg, fd, CURL_CSELECT_IN, &running);
}

static int64_t s_min_deadline(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

/* The earliest absolute time the loop needs to run, or -1. */
static int64_t s_deadline(const gp_etcd_loop_t *loop, int64_t now)
{
    int64_t d = loop->wake ? now : -1;
    d = s_min_deadline(d, loop->curl_deadline);
    d = s_min_deadline(d, loop->next_tick);
    for (int i = 0; i < loop->n_retry; i++)
        d = s_min_deadline(d, loop->retry[i]->not_before_ms);
    return d;
}

int gp_etcd_pollfds(gp_etcd_t *etcd, struct pollfd *fds, int max, int *timeout_ms)
{
    gp_etcd_loop_t *loop = etcd->loop;
    for (int i = 0; i < loop->n_socks && i < max; i++) {
        fds[i].fd = loop->socks[i].fd;
        fds[i].events = loop->socks[i].events;
        fds[i].revents = 0;
    }
    int kfd = gp_etcd_kathread_fd(etcd);
    if (kfd >= 0 && loop->n_socks < max) {
        fds[loop->n_socks].fd = kfd;
        fds[loop->n_socks].events = POLLIN;
        fds[loop->n_socks].revents = 0;
    }
    if (timeout_ms) {
        int64_t now = gp_mono_ms();
        int64_t d = s_deadline(loop, now);
        *timeout_ms = d < 0 ? -1 : d <= now ? 0 : (int)(d - now > 3600000 ? 3600000 : d - now);
    }
    return loop->n_socks + (kfd >= 0);
}

/* Hand a finished request to its owner, or to the retry list when the
 * engine says to send it again. */
static void s_finish(gp_etcd_loop_t *loop, gp_etcd_req_t *r, CURLcode res)
{
    if (gp_etcd_req_finish(r, res)) {
        if (s_reserve(&loop->retry, loop->n_retry, &loop->cap_retry, sizeof(*loop->retry)) == 0) {
            loop->retry[loop->n_retry++] = r;
            return;
        }
        r->failed = 1;
        gp_err_set(&r->err, GP_ERR_NOMEM, "out of memory");
    }
    gp_etcd_req_release_easy(r);
    if (r->done)
        r->done(r);
}

/* Steps 2 to 4 after the poll (fds[0..n) with their revents). */
static void s_run(gp_etcd_t *etcd, struct pollfd *fds, int n, int pr)
{
    gp_etcd_loop_t *loop = etcd->loop;
    int kfd = gp_etcd_kathread_fd(etcd);

    /* 2. readiness and timers to curl (the keep-alive thread's eventfd is
     * the reporter's, drained by its tick) */
    int running;
    for (int i = 0; pr > 0 && i < n; i++) {
        if (!fds[i].revents || fds[i].fd == kfd)
            continue;
        int mask = 0;
        if (fds[i].revents & (POLLIN | POLLHUP))
            mask |= CURL_CSELECT_IN;
        if (fds[i].revents & POLLOUT)
            mask |= CURL_CSELECT_OUT;
        if (fds[i].revents & (POLLERR | POLLNVAL))
            mask |= CURL_CSELECT_ERR;
        curl_multi_socket_action(loop->bg, fds[i].fd, mask, &running);
    }
    int64_t now = gp_mono_ms();
    if (loop->curl_deadline >= 0 && loop->curl_deadline <= now) {
        loop->curl_deadline = -1;
        curl_multi_socket_action(loop->bg, CURL_SOCKET_TIMEOUT, 0, &running);
    }

    /* 3. finished requests */
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(loop->bg, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        gp_etcd_req_t *r = NULL;
        CURL *e = msg->easy_handle;
        CURLcode res = msg->data.result;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
        curl_multi_remove_handle(loop->bg, e);
        s_finish(loop, r, res);
    }
    now = gp_mono_ms();
    for (int i = 0; i < loop->n_retry;) {
        gp_etcd_req_t *r = loop->retry[i];
        if (r->not_before_ms > now) {
            i++;
            continue;
        }
        loop->retry[i] = loop->retry[--loop->n_retry];
        if (gp_etcd_req_attach(etcd, r, loop->bg, &r->err) < 0) {
            r->failed = 1;
            gp_etcd_req_release_easy(r);
            if (r->done)
                r->done(r);
        }
    }

    /* 4. tasks (the array may grow while we iterate: index, not pointer) */
    loop->next_tick = -1;
    for (int i = 0; i < loop->n_tasks; i++) {
        if (loop->tasks[i].removed)
            continue;
        int64_t t = loop->tasks[i].tick(loop->tasks[i].obj, gp_mono_ms());
        loop->next_tick = s_min_deadline(loop->next_tick, t);
    }
}

int gp_etcd_step(gp_etcd_t *etcd, int timeout_ms, gp_err_t *err)
{
    gp_etcd_loop_t *loop = etcd->loop;
    if (loop->in_step)
        return gp_err_set(err, GP_ERR_INVALID, "gp_etcd_step called from a callback");
    int64_t now = gp_mono_ms();
    int64_t d = s_deadline(loop, now);
    int wait = timeout_ms < 0 ? -1 : timeout_ms;
    if (d >= 0) {
        int64_t until = d <= now ? 0 : d - now;
        if (wait < 0 || until < wait)
            wait = (int)(until > 3600000 ? 3600000 : until);
    }

    /* 1. poll */
    struct pollfd stackfds[32];
    struct pollfd *fds = stackfds;
    int n = loop->n_socks + (gp_etcd_kathread_fd(etcd) >= 0);
    if (n > (int)GP_ARRAY_LEN(stackfds) && !(fds = malloc(sizeof(*fds) * (size_t)n)))
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    gp_etcd_pollfds(etcd, fds, n, NULL);
    int pr = poll(fds, (nfds_t)n, wait);
    if (pr < 0 && errno != EINTR) {
        if (fds != stackfds)
            free(fds);
        return gp_err_errno(err, "poll");
    }
    loop->in_step = true;
    loop->wake = false;
    s_run(etcd, fds, n, pr);
    if (fds != stackfds)
        free(fds);

    /* 5. removed tasks */
    loop->in_step = false;
    for (int i = 0; i < loop->n_tasks;) {
        if (!loop->tasks[i].removed) {
            i++;
            continue;
        }
        s_task_t t = loop->tasks[i];
        memmove(&loop->tasks[i], &loop->tasks[i + 1], sizeof(t) * (size_t)(loop->n_tasks - i - 1));
        loop->n_tasks--;
        t.free_fn(t.obj);
    }
    return 0;
}
