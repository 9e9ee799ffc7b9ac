/*
 * tcpproxy - a TCP relay for partition tests.
 *
 *   tcpproxy LISTEN_PORT TARGET_PORT      (both on 127.0.0.1)
 *
 * Prints "tcpproxy ready" once listening.  Stopping it (SIGSTOP) cuts
 * whoever talks through it off without resetting anything, as a network
 * partition does; SIGCONT heals it.  One thread, poll, at most 256
 * connections.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "banned.h"

#define MAXC 256

static int s_listen(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0)
        return -1;
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

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: tcpproxy LISTEN_PORT TARGET_PORT\n");
        return 64;
    }
    int lport = (int)strtol(argv[1], NULL, 10), tport = (int)strtol(argv[2], NULL, 10);
    int lfd = s_listen(lport);
    if (lfd < 0) {
        perror("tcpproxy: listen");
        return 69;
    }
    printf("tcpproxy ready\n");
    fflush(stdout);
    int pair[MAXC][2];
    int n = 0;
    char buf[65536];
    for (;;) {
        struct pollfd p[1 + 2 * MAXC];
        p[0] = (struct pollfd){ lfd, POLLIN, 0 };
        for (int i = 0; i < n; i++) {
            p[1 + 2 * i] = (struct pollfd){ pair[i][0], POLLIN, 0 };
            p[2 + 2 * i] = (struct pollfd){ pair[i][1], POLLIN, 0 };
        }
        if (poll(p, (nfds_t)(1 + 2 * n), -1) < 0 && errno != EINTR)
            return 1;
        for (int i = n - 1; i >= 0; i--) {
            for (int side = 0; side < 2; side++) {
                if (!(p[1 + 2 * i + side].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                ssize_t r = read(pair[i][side], buf, sizeof buf);
                if (r <= 0 || write(pair[i][1 - side], buf, (size_t)r) != r) {
                    close(pair[i][0]);
                    close(pair[i][1]);
                    pair[i][0] = pair[n - 1][0];
                    pair[i][1] = pair[n - 1][1];
                    n--;
                    break;
                }
            }
        }
        if (p[0].revents & POLLIN) {
            int c = accept(lfd, NULL, NULL);
            int t = c >= 0 ? s_connect(tport) : -1;
            if (c >= 0 && (t < 0 || n == MAXC)) {
                close(c);
                if (t >= 0)
                    close(t);
            } else if (c >= 0) {
                pair[n][0] = c;
                pair[n][1] = t;
                n++;
            }
        }
    }
}
