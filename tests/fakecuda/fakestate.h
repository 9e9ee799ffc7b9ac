/*
 * fakestate.h - the simulated GPUs behind the fake CUDA driver
 * (libcuda.so.1) and the fake NVML (libnvidia-ml.so.1) that the tests build.
 *
 * The devices live in a file shared by every process of a test (path in
 * FAKECUDA_STATE; without it each process has private devices), so that
 * memory used by one process is seen by the others and by NVML, as on a
 * real GPU.  Configuration, read by the process that creates the file:
 *
 *   FAKECUDA_DEVICES   number of devices, 1..8 (default 1)
 *   FAKECUDA_MEM_MIB   memory per device in MiB, comma list or one value
 *                      (default 16384)
 *
 * The simulated device clock is CLOCK_MONOTONIC.  Each device runs the
 * kernels launched on it one after the other (FIFO across processes and
 * streams): a kernel of duration d launched at t starts at
 * max(t, busy_until) and ends d later.  Its duration comes from the launch
 * parameters: a function named "gp_spin" runs for the number of
 * nanoseconds in its first kernel parameter (a uint64_t); any other
 * function runs for 0 ns.  Busy time is the sum of the durations launched
 * minus what is still queued after now, exact at any instant.
 *
 * A process's memory is given back when it has exited (checked at cuInit
 * and at every memory query), as the real driver does.
 *
 * Device memory as a real driver hands it out (fakecuda.c):
 *
 *   - granularity: every allocation occupies a whole number of 2 MiB pages
 *     (FAKE_GRANULARITY), what cuMemGetAllocationGranularity reports;
 *     cuMemCreate refuses a size that is not a multiple of it;
 *   - VMM: cuMemCreate's physical memory (a "phys" entry here, shared by
 *     the processes, so that a handle exported by one process and imported
 *     by another is the same memory) lives while any handle to it or any
 *     mapping of it remains; it is charged to the process that created it;
 *   - memory pools keep what cuMemFreeAsync gave back reserved, and give
 *     the part above their release threshold back to the device at the
 *     next synchronisation (or cuMemPoolTrimTo);
 *   - contexts: FAKECUDA_CTX_MIB per process and device while it has a
 *     context there (default 0), and cuCtxSetLimit's heap, printf FIFO and
 *     stack (per thread, x FAKE_SMS x FAKE_THREADS_PER_SM) above their
 *     defaults.
 *
 * Every device keeps its exact usage and its peak (fakecuda_mem_used,
 * fakecuda_mem_peak): the tests' independent witness of what the device
 * really held.  (Not modelled: the memory of a process that died while
 * another process still holds an imported handle to it is given back with
 * the dead process's.)
 */
#ifndef GP_FAKESTATE_H
#define GP_FAKESTATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define FAKE_MAX_DEVICES 8
#define FAKE_MAX_PROCS 128
#define FAKE_MAX_PHYS 4096
#define FAKE_GRANULARITY ((uint64_t)2 << 20)
#define FAKE_SMS 16
#define FAKE_THREADS_PER_SM 2048

typedef struct {
    uint64_t total;
    pthread_mutex_t lock;          /* robust, process-shared: the timeline */
    int64_t busy_until_ns;
    uint64_t enqueued_ns;
    _Atomic uint64_t launches;
    /* on a cache line of their own, written by every allocation */
    _Alignas(64) _Atomic uint64_t used_now;   /* exact: what every process holds */
    _Atomic uint64_t peak;         /* the most used_now has ever been */
    char pad[64 - 2 * sizeof(uint64_t)];
} fake_device_t;

/* Physical memory of cuMemCreate: refs counts handles and mappings, in
 * every process; the entry is free when refs is 0. */
typedef struct {
    _Atomic int32_t refs;
    int32_t slot;                  /* charged to this process slot */
    int32_t pid;                   /* ... while this process holds it */
    int32_t dev;
    uint64_t size;
} fake_phys_t;

typedef struct {
    _Atomic int32_t pid;
    _Atomic uint64_t used[FAKE_MAX_DEVICES];
} fake_proc_t;

typedef struct {
    _Atomic uint64_t magic;
    int ndevices;
    _Atomic int proc_hi;           /* slots in use are below this */
    fake_device_t dev[FAKE_MAX_DEVICES];
    fake_proc_t proc[FAKE_MAX_PROCS];
    fake_phys_t phys[FAKE_MAX_PHYS];
} fake_state_t;

/* Map the state (creating it when missing); NULL when the configuration is
 * bad (a message is printed). */
fake_state_t *fake_state_get(void);
int64_t fake_now_ns(void);
void fake_sleep_until(int64_t t_ns);
/* Count bytes on dev for this process: 0, or -1 when the device is full. */
int fake_mem_take(fake_state_t *s, int dev, uint64_t bytes);
void fake_mem_give(fake_state_t *s, int dev, uint64_t bytes);
uint64_t fake_mem_used(fake_state_t *s, int dev);
/* The device's exact usage and its peak, from its own counters. */
uint64_t fake_mem_now(fake_state_t *s, int dev);
uint64_t fake_mem_peak(fake_state_t *s, int dev);
/* Physical memory: a new entry of size bytes on dev charged to this
 * process, refs 1 (index, or -1 when the device is full); take or drop a
 * reference (the memory goes back to the device with the last). */
int fake_phys_new(fake_state_t *s, int dev, uint64_t size);
int fake_phys_ref(fake_state_t *s, int idx);
void fake_phys_unref(fake_state_t *s, int idx);
/* Give back the memory of exited processes. */
void fake_reclaim(fake_state_t *s);
/* Queue a kernel of d ns on dev; returns its end time. */
int64_t fake_enqueue(fake_state_t *s, int dev, int64_t d);
/* Busy ns of dev up to now. */
uint64_t fake_busy_ns(fake_state_t *s, int dev, int64_t now);
/* The device's 16-byte UUID. */
void fake_uuid(int dev, char out[16]);

#endif
