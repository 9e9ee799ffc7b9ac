#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

#include "banned.h"

static int s_pipe[2] = { -1, -1 };
static volatile sig_atomic_t s_pending;

static void s_handler(int sig)
{
    int saved = errno;
    s_pending |= (sig == SIGHUP) ? GP_SIG_RELOAD : GP_SIG_STOP;
    if (s_pipe[1] >= 0) {
        ssize_t w = write(s_pipe[1], "s", 1);
        (void)w;
    }
    errno = saved;
}

int gp_daemon_signals_init(gp_err_t *err)
{
    if (s_pipe[0] < 0 && pipe2(s_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
        return gp_err_errno(err, "pipe2");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
        sigaction(SIGHUP, &sa, NULL) < 0)
        return gp_err_errno(err, "sigaction");
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int gp_daemon_signal_fd(void) { return s_pipe[0]; }

unsigned gp_daemon_take_signals(void)
{
    char buf[64];
    while (s_pipe[0] >= 0 && read(s_pipe[0], buf, sizeof buf) > 0)
        ;
    unsigned got = (unsigned)s_pending;
    s_pending = 0;
    return got;
}

int gp_daemon_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || *path == '\0')
        return 0;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof sa.sun_path)
        return -1;
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0';   /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
                       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
    close(fd);
    return n < 0 ? -1 : 0;
}

void gp_daemon_ready(const char *prog, const char *fmt, ...)
{
    char details[512] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(details, sizeof details, fmt, ap);
    va_end(ap);
    printf("%s ready%s%s\n", prog, *details ? " " : "", details);
    fflush(stdout);
    gp_daemon_notify("READY=1");
}

/*
 * Memory of a daemon that runs for months.
 *
 * glibc's malloc serves a request of at least M_MMAP_THRESHOLD bytes (128
 * KiB at start) with its own mapping, unmapped when freed: its pages leave
 * the process at once.  But the threshold is dynamic: each time such a
 * mapped block is freed, glibc raises the threshold to that block's size (up
 * to 32 MiB) and the heap's trim threshold to twice it.  A daemon whose
 * bursts allocate one large transient block -- a bid round's entries for a
 * few hundred jobs are several MiB, a watch stream's buffer after a burst
 * is MiBs -- thereby moves every later block of that size into the heap:
 * calloc zeroes it there (touching every page), the allocations that follow
 * it land above it and pin it, and the heap stays several MiB larger than
 * what is live, in steps of one such block, until a trim.  The soak test saw
 * the coordinator's RSS move between 25 and 38 MiB while its live heap was
 * 3.5-6.6 MiB; its threshold had been raised to 8.4 MiB by one round.
 *
 * Setting the thresholds explicitly turns the adjustment off: large blocks
 * stay mapped (and a fresh mapping needs no zeroing, so calloc touches only
 * what is used), and the heap gives its top back past S_TRIM_THRESHOLD.
 * Freed chunks inside the heap that the top cannot release are handed back
 * by gp_daemon_trim_memory.
 */
#define S_MMAP_THRESHOLD (128 * 1024)
#define S_TRIM_THRESHOLD (512 * 1024)

void gp_daemon_memory_init(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, S_MMAP_THRESHOLD);
    mallopt(M_TRIM_THRESHOLD, S_TRIM_THRESHOLD);
#endif
}

/*
 * Free pages inside the heap.  The heap's top is given back by free() past
 * S_TRIM_THRESHOLD, but a burst (an etcd watch response of a few hundred
 * events parsed into a JSON tree, a batch of state reports) spreads its
 * small blocks over MiBs of heap, and one block that outlives the burst
 * pins everything below it: the agent's heap was seen at 11 MiB with
 * 2.8 MiB in use and 8.7 MiB free in 537 chunks, most of it resident.
 * glibc's malloc_trim() hands the free pages inside the heap back
 * (madvise), but walks every free chunk; so, like jemalloc's decay-based
 * purging, check now and then what is free (mallinfo2) and trim when the
 * free part passes S_TRIM_FREE and a quarter of what is in use.  mallinfo2
 * walks every free chunk too: 5-15 ms of a coordinator holding 20,000 jobs,
 * a stall of its loop that every submission then waiting saw once a
 * second.  So the check runs once a second only when the resident size
 * (/proc/self/statm, one read) grew since the last check by S_TRIM_FREE
 * and an eighth (a process growing with what it holds, as a coordinator's
 * cache of jobs, is checked now and then, not every second), and
 * otherwise once every S_TRIM_ANYWAY_MS (what was freed without the
 * process growing, such as ended jobs removed from a cache).  A burst's
 * pages are then resident for about a second after it, not until the next
 * burst that happens to reuse them.
 *
 * While large bursts follow each other (bid rounds of hundreds of jobs,
 * back to back), neither check nor trim: mallinfo2 walks the fast bins,
 * malloc_trim consolidates and walks the whole heap, and the pages it
 * hands back are faulted in again by the next burst a few ms later (a
 * burst of placements spent ~10% of the agent's CPU so).  The caller says
 * when it ended a large one (gp_daemon_trim_memory_after_burst); the trim
 * comes once S_TRIM_QUIET_MS pass without another, and at least every
 * S_TRIM_BUSY_EVERY_MS while they never stop.
 */
#define S_TRIM_EVERY_MS      1000
#define S_TRIM_ANYWAY_MS     60000
#define S_TRIM_FREE          (1024 * 1024)
#define S_TRIM_QUIET_MS      200
#define S_TRIM_BUSY_EVERY_MS 10000

static int64_t s_trim_next_ms;
static int64_t s_trim_anyway_ms;  /* the next check whatever the resident size */
static size_t s_trim_rss;         /* the resident size after the last check */
static int64_t s_burst_ms;        /* the last large burst's end; 0: none since the last check */
static int64_t s_busy_since_ms;   /* bursts back to back since then (0: none) */

/* The process's resident bytes, or 0 when /proc cannot tell. */
static size_t s_resident(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *sp = strchr(buf, ' ');   /* "size resident shared ..." in pages */
    long page = sysconf(_SC_PAGESIZE);
    unsigned long long pages = sp ? strtoull(sp + 1, NULL, 10) : 0;
    return page > 0 ? (size_t)pages * (size_t)page : 0;
}

static void s_trim_check(int64_t now)
{
    s_trim_next_ms = now + S_TRIM_EVERY_MS;
    s_trim_anyway_ms = now + S_TRIM_ANYWAY_MS;
    s_burst_ms = 0;
    s_busy_since_ms = 0;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    size_t free_inside = mi.fordblks > mi.keepcost ? mi.fordblks - mi.keepcost : 0;
    if (free_inside > S_TRIM_FREE && free_inside > mi.uordblks / 4)
        malloc_trim(0);
#elif defined(__GLIBC__)
    static int64_t next_full_ms;
    if (now >= next_full_ms) {
        next_full_ms = now + 60000;
        malloc_trim(0);
    }
#endif
    s_trim_rss = s_resident();
}

void gp_daemon_trim_memory_after_burst(void)
{
    int64_t now = gp_mono_ms();
    if (s_busy_since_ms == 0)
        s_busy_since_ms = now;
    s_burst_ms = now;
}

void gp_daemon_trim_memory(void)
{
    int64_t now = gp_mono_ms();
    if (s_burst_ms) {
        /* Right after the bursts stop (not a second later: the next
         * ones would spread over the pages), or now and then during
         * them. */
        if (now - s_burst_ms >= S_TRIM_QUIET_MS || now - s_busy_since_ms >= S_TRIM_BUSY_EVERY_MS)
            s_trim_check(now);
        return;
    }
    if (now < s_trim_next_ms)
        return;
    s_trim_next_ms = now + S_TRIM_EVERY_MS;
    size_t rss = s_resident();
    if (rss == 0 || rss > s_trim_rss + S_TRIM_FREE + s_trim_rss / 8 || now >= s_trim_anyway_ms)
        s_trim_check(now);
}
