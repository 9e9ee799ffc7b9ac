/*
 * util.h - small helpers every part needs: bounded string copy, strict
 * number parsing, clocks.
 *
 * The parsers accept the whole string or nothing: "12x", "", " 12" and
 * out-of-range values are errors (return -1, *out untouched).
 */
#ifndef GP_UTIL_H
#define GP_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define GP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Copy src into dst (size dstsize), always NUL-terminated; returns
 * strlen(src), so truncation is `gp_strlcpy(...) >= dstsize`. */
size_t gp_strlcpy(char *dst, const char *src, size_t dstsize);

int gp_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);
int gp_parse_uint64(const char *s, uint64_t max, uint64_t *out);
int gp_parse_double(const char *s, double min, double max, double *out);
/* A size in MiB: "512", "512M", "512MiB", "4G", "4GiB", "1T". */
int gp_parse_mib(const char *s, uint64_t *out_mib);
/* A duration in milliseconds: "250ms", "5s", "2m", "1h", or a bare number of ms. */
int gp_parse_duration_ms(const char *s, int64_t *out_ms);

/* From /proc/<pid>/stat: the process's start time (clock ticks since boot;
 * with the pid it names one process across pid reuse) and its state letter
 * ('R', 'S', 'Z', ...).  -1 when there is no such process. */
int gp_proc_stat(int pid, uint64_t *start_time, char *state);

/* "ADDRESS:PORT" (port 0..65535) into addr (size bytes) and *port. */
int gp_parse_hostport(const char *s, char *addr, size_t size, int *port);

/* FNV-1a of a string, of n bytes: "did this text change" checks without
 * keeping it, and the seed of hash tables (mix the high bits in). */
uint64_t gp_hash_str(const char *s);
uint64_t gp_hash_mem(const void *p, size_t n);

/* A growing text buffer, always NUL-terminated once anything was added
 * (p NULL before); -1 when out of memory (the buffer is left as it was).
 * Requests, messages and records written as text directly, where building
 * a jansson tree to dump it would cost more than the text. */
typedef struct {
    char *p;
    size_t len;
    size_t cap;
} gp_ebuf_t;

int gp_ebuf_reserve(gp_ebuf_t *b, size_t extra);
int gp_ebuf_add(gp_ebuf_t *b, const void *data, size_t len);
int gp_ebuf_adds(gp_ebuf_t *b, const char *s);
int gp_ebuf_addf(gp_ebuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gp_ebuf_free(gp_ebuf_t *b);
/* JSON values: a string, quoted and escaped (UTF-8 passes as it is); a
 * real as jansson writes one (17 digits: it reads back exactly; ".0" on
 * whole numbers), -1 for infinities and NaN, which JSON has not. */
int gp_ebuf_json_str(gp_ebuf_t *b, const char *s);
int gp_ebuf_json_real(gp_ebuf_t *b, double v);

/* CLOCK_MONOTONIC and CLOCK_REALTIME in nanoseconds / milliseconds. */
int64_t gp_mono_ns(void);
int64_t gp_mono_ms(void);
/* Stop the whole process, every thread, for ms milliseconds, as a stopped
 * VM would (SIGSTOP; a child sends SIGCONT).  For fault injection only.
 * 0, or -1 with errno when the child could not be started. */
int gp_stop_self_ms(int64_t ms);
int64_t gp_wall_ms(void);

#endif
