#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>

#include "banned.h"

size_t gp_strlcpy(char *dst, const char *src, size_t dstsize)
{
    size_t len = strlen(src);
    if (dstsize > 0) {
        size_t n = len < dstsize - 1 ? len : dstsize - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}

int gp_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (s == NULL || *s == '\0' || *s == ' ' || *s == '\t')
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int gp_parse_uint64(const char *s, uint64_t max, uint64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

int gp_parse_double(const char *s, double min, double max, double *out)
{
    if (s == NULL || *s == '\0' || *s == ' ' || *s == '\t')
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Split "123unit" into its number and unit; the number must be a plain
 * non-negative integer. */
static int s_number_unit(const char *s, uint64_t *num, const char **unit)
{
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return -1;
    *num = v;
    *unit = end;
    return 0;
}

int gp_parse_mib(const char *s, uint64_t *out_mib)
{
    static const struct { const char *unit; uint64_t mul; } units[] = {
        { "", 1 }, { "M", 1 }, { "MiB", 1 }, { "Mi", 1 },
        { "G", 1024 }, { "GiB", 1024 }, { "Gi", 1024 },
        { "T", 1024 * 1024 }, { "TiB", 1024 * 1024 }, { "Ti", 1024 * 1024 },
    };
    uint64_t v;
    const char *unit;
    if (s_number_unit(s, &v, &unit) < 0)
        return -1;
    for (size_t i = 0; i < GP_ARRAY_LEN(units); i++) {
        if (strcmp(unit, units[i].unit) == 0) {
            if (v > UINT64_MAX / units[i].mul)
                return -1;
            *out_mib = v * units[i].mul;
            return 0;
        }
    }
    return -1;
}

int gp_parse_duration_ms(const char *s, int64_t *out_ms)
{
    static const struct { const char *unit; uint64_t mul; } units[] = {
        { "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
    };
    uint64_t v;
    const char *unit;
    if (s_number_unit(s, &v, &unit) < 0)
        return -1;
    for (size_t i = 0; i < GP_ARRAY_LEN(units); i++) {
        if (strcmp(unit, units[i].unit) == 0) {
            if (v > (uint64_t)INT64_MAX / units[i].mul)
                return -1;
            *out_ms = (int64_t)(v * units[i].mul);
            return 0;
        }
    }
    return -1;
}

int gp_proc_stat(int pid, uint64_t *start_time, char *state)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');   /* the command name may hold spaces and ')' */
    if (p == NULL || p[1] != ' ')
        return -1;
    if (state)
        *state = p[2];
    /* after ") " come fields 3..; the start time is field 22 */
    p++;
    for (int field = 3; field <= 22 && p != NULL; field++) {
        while (*p == ' ')
            p++;
        if (field == 22) {
            if (start_time)
                *start_time = strtoull(p, NULL, 10);
            return 0;
        }
        p = strchr(p, ' ');
    }
    return -1;
}

int gp_parse_hostport(const char *s, char *addr, size_t size, int *port)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    int64_t p;
    if (colon == NULL || colon == s || (size_t)(colon - s) >= size ||
        gp_parse_int64(colon + 1, 0, 65535, &p) < 0)
        return -1;
    memcpy(addr, s, (size_t)(colon - s));
    addr[colon - s] = '\0';
    *port = (int)p;
    return 0;
}

static int64_t s_clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t gp_mono_ns(void) { return s_clock_ns(CLOCK_MONOTONIC); }
int64_t gp_mono_ms(void) { return s_clock_ns(CLOCK_MONOTONIC) / 1000000LL; }
int64_t gp_wall_ms(void) { return s_clock_ns(CLOCK_REALTIME) / 1000000LL; }

int gp_stop_self_ms(int64_t ms)
{
    pid_t self = getpid();
    pid_t child = fork();
    if (child < 0)
        return -1;
    if (child == 0) {   /* async-signal-safe calls only: the parent may have threads */
        struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        kill(self, SIGCONT);
        _exit(0);
    }
    kill(self, SIGSTOP);
    while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
        ;
    return 0;
}

uint64_t gp_hash_mem(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t gp_hash_str(const char *s) { return gp_hash_mem(s, strlen(s)); }

/* ------------------------------------------------------------ text buffers */


int gp_ebuf_reserve(gp_ebuf_t *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int gp_ebuf_add(gp_ebuf_t *b, const void *data, size_t len)
{
    if (gp_ebuf_reserve(b, len) < 0)
        return -1;
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

int gp_ebuf_adds(gp_ebuf_t *b, const char *s)
{
    return gp_ebuf_add(b, s, strlen(s));
}

int gp_ebuf_addf(gp_ebuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || gp_ebuf_reserve(b, (size_t)n) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void gp_ebuf_free(gp_ebuf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* The length of the UTF-8 sequence at p (as jansson accepts it: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t s_utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n <= 1)
        return n;
    unsigned v = c & (0x7fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))) || (n == 4 && (v < 0x10000 || v > 0x10ffff)))
        return 0;
    return n;
}

int gp_ebuf_json_str(gp_ebuf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t len0 = b->len;
    if (gp_ebuf_reserve(b, strlen(s) + 2) < 0 || gp_ebuf_add(b, "\"", 1) < 0)
        return -1;
    const char *run = s;
    for (const char *p = s;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x80) {
            size_t n = s_utf8_len((const unsigned char *)p);
            if (n == 0) {
                b->len = len0;   /* not UTF-8: nothing written */
                if (b->p)
                    b->p[len0] = '\0';
                return -1;
            }
            p += n - 1;
            continue;
        }
        if (c != '\0' && c != '"' && c != '\\' && c >= 0x20)
            continue;
        if (gp_ebuf_add(b, run, (size_t)(p - run)) < 0)
            return -1;
        if (c == '\0')
            break;
        /* jansson's escapes, so that the text is the one it writes */
        char esc[7] = { '\\', (char)c, 0 };
        if (c == '\b')
            esc[1] = 'b';
        else if (c == '\f')
            esc[1] = 'f';
        else if (c == '\n')
            esc[1] = 'n';
        else if (c == '\r')
            esc[1] = 'r';
        else if (c == '\t')
            esc[1] = 't';
        else if (c < 0x20)
            memcpy(esc, (char[]){ '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] }, 6);
        if (gp_ebuf_add(b, esc, strlen(esc)) < 0)
            return -1;
        run = p + 1;
    }
    return gp_ebuf_add(b, "\"", 1);
}

int gp_ebuf_json_real(gp_ebuf_t *b, double v)
{
    if (!isfinite(v))
        return -1;
    char num[40];
    int n = snprintf(num, sizeof num, "%.17g", v);
    if (n <= 0 || (size_t)n + 2 >= sizeof num)
        return -1;
    if (strpbrk(num, ".e") == NULL)
        memcpy(num + n, ".0", 3);   /* a real stays a real */
    char *e = strchr(num, 'e');
    if (e) {   /* as jansson: no '+' and no leading zeros in the exponent */
        char *start = e + 1, *end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (*start == '+' || *start == '0')
            memmove(start, end, strlen(end) + 1);
    }
    return gp_ebuf_adds(b, num);
}
