/*
 * graph.c - graph memory: the allocations of CUDA graphs' memory nodes.
 *
 * A memory allocation node (cuGraphAddMemAllocNode, or a cuMemAllocAsync
 * captured from a stream) allocates nothing when the graph is built or
 * captured: its memory comes from the device's graph memory pool each time
 * the graph is launched, and the pool keeps what it reserved until
 * cuDeviceGraphMemTrim.  So the slice counts the device's graph memory
 * reserved (CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT), charged when a graph
 * runs, like a memory pool (pools.c):
 *
 *   - the bytes of a graph's allocation nodes (whole pages) are summed per
 *     device as they are added or captured, and carried to its
 *     instantiations;
 *   - once a graph of the process allocates, a launch reserves its graph's
 *     sum in the slice first (refused with CUDA_ERROR_OUT_OF_MEMORY over
 *     the limit, after trimming), then sets the slice's count to what the
 *     driver reports reserved for graphs on each device (what a graph frees
 *     goes back to that pool and is reused); an instantiation made by an
 *     entry point the shim does not wrap (cuGraphInstantiateWithParams)
 *     reserves nothing first and is counted after its launch;
 *   - cuDeviceGraphMemTrim, cuMemGetInfo and the slice's refusals
 *     (gp_graph_trim) recount it.
 *
 * Graphs, instantiations and capturing streams are in small arrays under
 * one mutex, never held across a driver call; the device's count has its
 * own mutex, held while it is recounted.
 */
#include "shim.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

typedef struct {
    void *key;                       /* CUgraph, CUgraphExec or capturing CUstream */
    uint64_t bytes[GP_SLICE_MAX_DEVICES];
} gp_graph_rec_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static gp_graph_rec_t *s_recs;
static size_t s_n, s_cap;
_Atomic int gp_graph_mem_used;       /* some graph of this process allocates */

static pthread_mutex_t s_count_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t s_counted[GP_SLICE_MAX_DEVICES];

static gp_graph_rec_t *s_find_locked(const void *key)
{
    for (size_t i = 0; i < s_n; i++)
        if (s_recs[i].key == key)
            return &s_recs[i];
    return NULL;
}

static gp_graph_rec_t *s_get_locked(void *key)
{
    gp_graph_rec_t *r = s_find_locked(key);
    if (r != NULL)
        return r;
    if (s_n == s_cap) {
        size_t ncap = s_cap ? s_cap * 2 : 32;
        gp_graph_rec_t *n = realloc(s_recs, ncap * sizeof *n);
        if (n == NULL)
            return NULL;
        s_recs = n;
        s_cap = ncap;
    }
    r = &s_recs[s_n++];
    memset(r, 0, sizeof *r);
    r->key = key;
    return r;
}

/* 0, or -1 when it cannot be recorded (the caller refuses). */
static int s_add(void *key, int dev, uint64_t bytes)
{
    pthread_mutex_lock(&s_lock);
    gp_graph_rec_t *r = s_get_locked(key);
    if (r != NULL)
        r->bytes[dev] += bytes;
    pthread_mutex_unlock(&s_lock);
    return r != NULL ? 0 : -1;
}

static void s_drop(const void *key)
{
    pthread_mutex_lock(&s_lock);
    gp_graph_rec_t *r = s_find_locked(key);
    if (r != NULL)
        *r = s_recs[--s_n];
    pthread_mutex_unlock(&s_lock);
}

/* Set the slice's count of dev's graph memory to what the driver reserves,
 * held being what the caller reserved already.  0, or -1 when the slice
 * could not count all of it. */
static int s_settle(int dev, uint64_t held)
{
    cuuint64_t now = 0;
    int rc = 0;
    pthread_mutex_lock(&s_count_lock);
    if (gp_real.cuDeviceGetGraphMemAttribute == NULL ||
        gp_real.cuDeviceGetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &now) !=
            CUDA_SUCCESS) {
        s_counted[dev] += held;
        pthread_mutex_unlock(&s_count_lock);
        return 0;
    }
    now = gp_shim_pages(dev, now);
    uint64_t have = s_counted[dev] + held;
    if (now <= have) {
        s_counted[dev] = now;
        pthread_mutex_unlock(&s_count_lock);
        if (have > now)
            gp_shim_release(dev, have - now, 0);
        return 0;
    }
    if (gp_shim_reserve_now(dev, now - have, 0) == 0) {
        s_counted[dev] = now;
    } else {
        s_counted[dev] = have;
        rc = -1;
    }
    pthread_mutex_unlock(&s_count_lock);
    return rc;
}

uint64_t gp_graph_trim(int dev)
{
    if (gp_real.cuDeviceGraphMemTrim == NULL || !atomic_load(&gp_graph_mem_used))
        return 0;
    pthread_mutex_lock(&s_count_lock);
    uint64_t before = s_counted[dev];
    pthread_mutex_unlock(&s_count_lock);
    if (before == 0 || gp_real.cuDeviceGraphMemTrim(dev) != CUDA_SUCCESS)
        return 0;
    s_settle(dev, 0);
    pthread_mutex_lock(&s_count_lock);
    uint64_t after = s_counted[dev];
    pthread_mutex_unlock(&s_count_lock);
    return before > after ? before - after : 0;
}

void gp_graph_settle_dev(int dev)
{
    if (atomic_load(&gp_graph_mem_used))
        s_settle(dev, 0);
}

/* ------------------------------------------------------------ building graphs */

GP_EXPORT CUresult cuGraphAddMemAllocNode(CUgraphNode *node, CUgraph g, const CUgraphNode *deps,
                                          size_t ndeps, CUDA_MEM_ALLOC_NODE_PARAMS *params)
{
    GP_ENTER();
    if (gp_real.cuGraphAddMemAllocNode == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = gp_real.cuGraphAddMemAllocNode(node, g, deps, ndeps, params);
    if (rc != CUDA_SUCCESS || !gp_shim.active || params == NULL)
        return rc;
    int dev = params->poolProps.location.id;
    if (dev < 0 || dev >= gp_shim.ndev || s_add(g, dev, gp_shim_pages(dev, params->bytesize)) < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;   /* outside the slice, or not countable */
    atomic_store(&gp_graph_mem_used, 1);
    return rc;
}

int gp_graph_captured(CUstream s, int dev, uint64_t bytes)
{
    CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
    if (s == NULL || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD ||
        gp_real.cuStreamIsCapturing == NULL || gp_real.cuStreamIsCapturing(s, &st) != CUDA_SUCCESS ||
        st != CU_STREAM_CAPTURE_STATUS_ACTIVE)
        return 0;
    if (s_add(s, dev, gp_shim_pages(dev, bytes)) < 0)
        return -1;
    atomic_store(&gp_graph_mem_used, 1);
    return 1;
}

GP_EXPORT CUresult cuStreamEndCapture(CUstream s, CUgraph *g)
{
    GP_ENTER();
    if (gp_real.cuStreamEndCapture == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = gp_real.cuStreamEndCapture(s, g);
    if (!gp_shim.active)
        return rc;
    pthread_mutex_lock(&s_lock);
    gp_graph_rec_t *r = s_find_locked(s);
    if (r != NULL) {
        if (rc == CUDA_SUCCESS && g != NULL && *g != NULL)
            r->key = *g;               /* the stream's captured allocations are the graph's */
        else
            *r = s_recs[--s_n];
    }
    pthread_mutex_unlock(&s_lock);
    return rc;
}

GP_EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec *exec, CUgraph g, unsigned long long flags)
{
    GP_ENTER();
    if (gp_real.cuGraphInstantiateWithFlags == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = gp_real.cuGraphInstantiateWithFlags(exec, g, flags);
    if (rc != CUDA_SUCCESS || !gp_shim.active || exec == NULL)
        return rc;
    int failed = 0;
    pthread_mutex_lock(&s_lock);
    gp_graph_rec_t *r = s_find_locked(g);
    if (r != NULL) {
        gp_graph_rec_t copy = *r;
        gp_graph_rec_t *e = s_get_locked(*exec);
        if (e != NULL) {
            memcpy(e->bytes, copy.bytes, sizeof e->bytes);
        } else {
            failed = 1;
        }
    }
    pthread_mutex_unlock(&s_lock);
    if (failed) {
        gp_real.cuGraphExecDestroy(*exec);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return rc;
}

GP_EXPORT CUresult cuGraphDestroy(CUgraph g)
{
    GP_ENTER();
    if (gp_real.cuGraphDestroy == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = gp_real.cuGraphDestroy(g);
    if (rc == CUDA_SUCCESS && gp_shim.active)
        s_drop(g);
    return rc;
}

GP_EXPORT CUresult cuGraphExecDestroy(CUgraphExec exec)
{
    GP_ENTER();
    if (gp_real.cuGraphExecDestroy == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = gp_real.cuGraphExecDestroy(exec);
    if (rc == CUDA_SUCCESS && gp_shim.active)
        s_drop(exec);
    return rc;
}

GP_EXPORT CUresult cuDeviceGraphMemTrim(CUdevice dev)
{
    GP_ENTER();
    if (gp_real.cuDeviceGraphMemTrim == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = gp_real.cuDeviceGraphMemTrim(dev);
    if (rc == CUDA_SUCCESS && gp_shim.active && dev >= 0 && dev < gp_shim.ndev)
        s_settle(dev, 0);
    return rc;
}

/* ------------------------------------------------------------ launches */

int gp_graph_launch_begin(CUgraphExec exec, uint64_t held[GP_SLICE_MAX_DEVICES])
{
    memset(held, 0, sizeof(uint64_t) * GP_SLICE_MAX_DEVICES);
    pthread_mutex_lock(&s_lock);
    gp_graph_rec_t *r = s_find_locked(exec);
    if (r != NULL)
        for (int d = 0; d < gp_shim.ndev; d++)
            held[d] = r->bytes[d];
    pthread_mutex_unlock(&s_lock);
    for (int d = 0; d < gp_shim.ndev; d++) {
        if (held[d] > 0 && gp_shim_reserve(d, held[d], 0) < 0) {
            while (d-- > 0)
                if (held[d] > 0)
                    gp_shim_release(d, held[d], 0);
            return -1;
        }
    }
    /* an instantiation not seen here (made by an entry point the shim does
     * not wrap) reserves nothing first, and is counted after its launch */
    return 1;
}

void gp_graph_launch_end(const uint64_t held[GP_SLICE_MAX_DEVICES], CUresult rc)
{
    for (int d = 0; d < gp_shim.ndev; d++) {
        if (rc == CUDA_SUCCESS)
            s_settle(d, held[d]);
        else if (held[d] > 0)
            gp_shim_release(d, held[d], 0);
    }
}

void gp_graph_fork_child(void)
{
    pthread_mutex_init(&s_lock, NULL);
    pthread_mutex_init(&s_count_lock, NULL);
    s_n = 0;
    memset(s_counted, 0, sizeof s_counted);
}
