/*
 * load.h - what the benchmarks' load generators (placement_load.c,
 * wan_load.c) share: their event loop, which drives a curl multi handle
 * (through its socket interface) and an etcd client from one poll, and
 * the percentiles of a set of latencies.
 *
 *     bench_loop_t *loop = bench_loop_new(multi);   (before any transfer starts)
 *     for (;;) {
 *         bench_step(loop, etcd, 50, s_reap);   (s_reap: the caller's finished requests)
 *         ...
 *     }
 *     bench_loop_destroy(&loop);                  (before curl_multi_cleanup)
 *     bench_sort(lat, n);
 *     printf("p50_ms %.2f\n", bench_pct(lat, n, 50) / 1e6);
 */
#ifndef GP_BENCH_LOAD_H
#define GP_BENCH_LOAD_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd.h"

typedef struct bench_loop bench_loop_t;

/* The loop of multi (borrowed: it must outlive the loop), which it sets
 * up to report its sockets and timer; NULL when out of descriptors or
 * memory. */
bench_loop_t *bench_loop_new(CURLM *multi);
void bench_loop_destroy(bench_loop_t **self_p);

/* Wait up to ms (less when curl's or the etcd client's timer is due) for
 * the sockets of the loop's multi and of etcd, let curl work on those
 * ready, call reap (the caller reads curl's finished transfers), then let
 * the etcd client work. */
void bench_step(bench_loop_t *self, gp_etcd_t *etcd, int ms, void (*reap)(void));

/* Sort v[0..n) ascending. */
void bench_sort(int64_t *v, size_t n);

/* The pct-th percentile of sorted v[0..n): v[n * pct / 100], the last for
 * 100; 0 when n is 0. */
double bench_pct(const int64_t *v, size_t n, int pct);

#endif
