/*
 * load.h - what the benchmarks' load generators (placement_load.c,
 * wan_load.c) share: one step of their event loop, which drives a curl
 * multi handle and an etcd client from one poll, and the percentiles of a
 * set of latencies.
 *
 *     for (;;) {
 *         bench_step(etcd, multi, 50, s_reap);   (s_reap: the caller's finished requests)
 *         ...
 *     }
 *     bench_sort(lat, n);
 *     printf("p50_ms %.2f\n", bench_pct(lat, n, 50) / 1e6);
 */
#ifndef GP_BENCH_LOAD_H
#define GP_BENCH_LOAD_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd.h"

/* Wait up to ms (less when the etcd client has a timer due) for the
 * sockets of multi and etcd, let curl work, call reap (the caller reads
 * curl's finished transfers), then let the etcd client work. */
void bench_step(gp_etcd_t *etcd, CURLM *multi, int ms, void (*reap)(void));

/* Sort v[0..n) ascending. */
void bench_sort(int64_t *v, size_t n);

/* The pct-th percentile of sorted v[0..n): v[n * pct / 100], the last for
 * 100; 0 when n is 0. */
double bench_pct(const int64_t *v, size_t n, int pct);

#endif
