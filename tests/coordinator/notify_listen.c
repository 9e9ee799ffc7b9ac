/*
 * notify_listen - what systemd's $NOTIFY_SOCKET end sees, for tests.
 *
 *   notify_listen PATH
 *
 * Binds a unix datagram socket at PATH, prints "notify_listen ready", then
 * prints every datagram it receives as one line ("READY=1", "STOPPING=1",
 * ...), flushed at once, until it is killed.  Nothing is answered, as
 * systemd answers nothing.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "banned.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: notify_listen PATH\n");
        return 64;
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(argv[1]) >= sizeof sa.sun_path) {
        fprintf(stderr, "notify_listen: path too long\n");
        return 64;
    }
    memcpy(sa.sun_path, argv[1], strlen(argv[1]));
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror("notify_listen: bind");
        return 71;
    }
    printf("notify_listen ready\n");
    fflush(stdout);
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n < 0)
            continue;
        buf[n] = '\0';
        printf("%s\n", buf);
        fflush(stdout);
    }
}
