/*
 * tcpproxy - a TCP relay for partition tests and for distance.
 *
 *   tcpproxy [-d DELAY_MS] [-f DELAY_FILE] LISTEN_PORT TARGET_PORT   (127.0.0.1)
 *
 * Prints "tcpproxy ready" once listening.  Every connection accepted is
 * relayed to the target, byte for byte, in both directions.
 *
 * Partition: stopping it (SIGSTOP) cuts whoever talks through it off
 * without resetting anything, as a network partition does; SIGCONT heals it.
 *
 * Distance: with -d, whatever arrives in either direction is passed on
 * DELAY_MS later (order kept), so a request and its answer through the relay
 * take 2 x DELAY_MS more: a round trip between clouds, in user space, with
 * no netem or privilege.  With -f the delay is read from DELAY_FILE (one
 * number of milliseconds) at start and again on SIGHUP, so one pool can be
 * measured at several distances; bytes already queued keep their time.
 * The connection's own handshake is not delayed (peers and clients keep
 * their connections open; what they send over them is).
 *
 * One thread, poll, non-blocking sockets.  A side that closes is closed on
 * the other side (shutdown for writing) once what it sent has been passed
 * on; a reset or a failed write closes both at once.  A direction holding
 * more than 64 MiB not yet due stops reading until it drains.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define MAXC 1024
#define QUEUE_MAX ((size_t)64 << 20)

typedef struct chunk {
    struct chunk *next;
    int64_t due_ms;
    size_t len, off;
    char data[];
} chunk_t;

/* One direction: bytes read from fd[from] wait in the queue for fd[1-from]. */
typedef struct {
    chunk_t *head, *tail;
    size_t queued;
    int eof;                    /* the reading side closed */
    int shut;                   /* the writing side was shut down */
} dir_t;

typedef struct {
    int fd[2];                  /* 0: the accepted client, 1: the target */
    dir_t dir[2];               /* dir[s]: from fd[s] to fd[1-s] */
} pair_t;

static volatile sig_atomic_t s_reload;
static int64_t s_delay_ms;

static void s_on_hup(int sig)
{
    (void)sig;
    s_reload = 1;
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int s_read_delay(const char *path)
{
    FILE *f = fopen(path, "r");
    long long v = -1;
    if (!f)
        return -1;
    if (fscanf(f, "%lld", &v) != 1 || v < 0 || v > 600000)
        v = -1;
    fclose(f);
    if (v < 0)
        return -1;
    s_delay_ms = v;
    return 0;
}

static int s_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int s_listen(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int s_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void s_pair_close(pair_t *p)
{
    for (int s = 0; s < 2; s++) {
        close(p->fd[s]);
        chunk_t *c = p->dir[s].head;
        while (c) {
            chunk_t *n = c->next;
            free(c);
            c = n;
        }
    }
    memset(p, 0, sizeof *p);
}

/* Read what fd[s] has into its direction's queue.  -1: close the pair. */
static int s_read_side(pair_t *p, int s, int64_t now)
{
    char buf[65536];
    dir_t *d = &p->dir[s];
    ssize_t r = read(p->fd[s], buf, sizeof buf);
    if (r < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (r == 0) {
        d->eof = 1;
        return 0;
    }
    chunk_t *c = malloc(sizeof *c + (size_t)r);
    if (!c)
        return -1;
    c->next = NULL;
    c->due_ms = now + s_delay_ms;
    c->len = (size_t)r;
    c->off = 0;
    memcpy(c->data, buf, (size_t)r);
    if (d->tail)
        d->tail->next = c;
    else
        d->head = c;
    d->tail = c;
    d->queued += (size_t)r;
    return 0;
}

/* Write what is due of direction s to fd[1-s].  -1: close the pair. */
static int s_write_due(pair_t *p, int s, int64_t now)
{
    dir_t *d = &p->dir[s];
    int to = p->fd[1 - s];
    while (d->head && d->head->due_ms <= now) {
        chunk_t *c = d->head;
        ssize_t w = write(to, c->data + c->off, c->len - c->off);
        if (w < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        c->off += (size_t)w;
        d->queued -= (size_t)w;
        if (c->off < c->len)
            return 0;
        d->head = c->next;
        if (!d->head)
            d->tail = NULL;
        free(c);
    }
    if (d->eof && !d->head && !d->shut) {
        shutdown(to, SHUT_WR);
        d->shut = 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *delay_file = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "d:f:")) != -1) {
        if (opt == 'd')
            s_delay_ms = strtol(optarg, NULL, 10);
        else if (opt == 'f')
            delay_file = optarg;
        else
            goto usage;
    }
    if (argc - optind != 2 || s_delay_ms < 0)
        goto usage;
    if (delay_file && s_read_delay(delay_file) < 0) {
        fprintf(stderr, "tcpproxy: %s: expected a number of milliseconds\n", delay_file);
        return 65;
    }
    int lport = (int)strtol(argv[optind], NULL, 10), tport = (int)strtol(argv[optind + 1], NULL, 10);
    int lfd = s_listen(lport);
    if (lfd < 0) {
        perror("tcpproxy: listen");
        return 69;
    }
    struct sigaction sa = { .sa_handler = s_on_hup };
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    printf("tcpproxy ready delay_ms=%lld\n", (long long)s_delay_ms);
    fflush(stdout);

    static pair_t pair[MAXC];
    static struct pollfd p[1 + 2 * MAXC];
    int n = 0;
    for (;;) {
        if (s_reload) {
            s_reload = 0;
            if (delay_file && s_read_delay(delay_file) == 0)
                printf("tcpproxy delay_ms=%lld\n", (long long)s_delay_ms);
            fflush(stdout);
        }
        int64_t now = s_now_ms(), next_due = -1;
        p[0] = (struct pollfd){ lfd, POLLIN, 0 };
        for (int i = 0; i < n; i++) {
            for (int s = 0; s < 2; s++) {
                dir_t *in = &pair[i].dir[s], *out = &pair[i].dir[1 - s];
                short ev = 0;
                if (!in->eof && in->queued < QUEUE_MAX)
                    ev |= POLLIN;
                if (out->head && out->head->due_ms <= now)
                    ev |= POLLOUT;   /* fd[s] has due bytes waiting to be written */
                else if (out->head && (next_due < 0 || out->head->due_ms < next_due))
                    next_due = out->head->due_ms;
                p[1 + 2 * i + s] = (struct pollfd){ pair[i].fd[s], ev, 0 };
            }
        }
        int timeout = next_due < 0 ? -1 : (int)(next_due > now ? next_due - now : 0);
        if (poll(p, (nfds_t)(1 + 2 * n), timeout) < 0 && errno != EINTR)
            return 1;
        now = s_now_ms();
        for (int i = n - 1; i >= 0; i--) {
            pair_t *pp = &pair[i];
            int bad = 0;
            for (int s = 0; s < 2 && !bad; s++) {
                short re = p[1 + 2 * i + s].revents;
                if (re & (POLLIN | POLLHUP | POLLERR))
                    bad = s_read_side(pp, s, now) < 0 || (re & POLLERR);
            }
            for (int s = 0; s < 2 && !bad; s++)
                bad = s_write_due(pp, s, now) < 0;
            if (!bad && pp->dir[0].shut && pp->dir[1].shut)
                bad = 1;   /* both sides closed and everything passed on */
            if (bad) {
                s_pair_close(pp);
                pair[i] = pair[n - 1];
                memset(&pair[n - 1], 0, sizeof pair[n - 1]);
                n--;
            }
        }
        if (p[0].revents & POLLIN) {
            int c = accept(lfd, NULL, NULL);
            int t = c >= 0 ? s_connect(tport) : -1;
            if (c >= 0 && (t < 0 || n == MAXC || s_nonblock(c) < 0 || s_nonblock(t) < 0)) {
                close(c);
                if (t >= 0)
                    close(t);
            } else if (c >= 0) {
                memset(&pair[n], 0, sizeof pair[n]);
                pair[n].fd[0] = c;
                pair[n].fd[1] = t;
                n++;
            }
        }
    }
usage:
    fprintf(stderr, "usage: tcpproxy [-d DELAY_MS] [-f DELAY_FILE] LISTEN_PORT TARGET_PORT\n");
    return 64;
}
