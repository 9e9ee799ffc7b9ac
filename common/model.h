/*
 * model.h - the in-memory model of a pool (nodes, devices, allocations,
 * job requests) and its JSON codecs.
 *
 * These records are what etcd stores (nodes/<region>/<node>, jobs/<id>,
 * alloc/<node>/<job>), what the REST API takes, and what gpupool-sim reads
 * as JSON lines.  They are plain fixed-size structs: a caller owns them,
 * copies them by assignment and frees nothing.  The placement engine
 * (placement.h) copies what it needs out of them; it never keeps pointers.
 *
 * Calling sequence:
 *
 *     gp_job_t job;
 *     if (gp_job_from_json_str(body, &job, &err) < 0)    // 400 + err.msg
 *         ...;
 *     gp_node_t node;
 *     gp_node_from_json(json, &node, &err);              // a node record
 *     json_t *j = gp_alloc_to_json(&alloc);              // caller decrefs
 *
 * Every decoder rejects unknown fields with a message naming the field,
 * rejects values of the wrong type or out of range with a message naming the
 * field and the value, and assigns its output only on success.
 *
 * ---------------------------------------------------------------------------
 * Job spec (JSON object; every field optional unless stated):
 *
 *   "id"              string, <= 127 chars
 *   "devices"         int 0..16: number of devices            alias "nvidia.com/gpu"
 *   "whole"           bool: whole devices, exclusively (default: true when
 *                     devices > 0 and none of mem/compute is given)
 *   "mem_mib"         int > 0: memory per device, MiB          alias "nvidia.com/gpumem"
 *   "mem_percent"     number 0 < x <= 100: memory per device, % of the device
 *                                                              alias "nvidia.com/gpumem-percentage"
 *   "compute_percent" number 0 <= x <= 100: compute share per device (0 =
 *                     no reservation, best effort)             alias "nvidia.com/gpucores"
 *   "cpu_milli"       int >= 0: host CPU, thousandths of a core
 *   "host_mem_mib"    int >= 0: host memory, MiB
 *   "vendors" / "exclude_vendors"   [string] or "a,b"
 *   "models" / "exclude_models"     [string] or "a,b"  aliases "nvidia.com/use-gputype" /
 *                                                      "nvidia.com/nouse-gputype"
 *   "uuids" / "exclude_uuids"       [string] or "a,b"  aliases "nvidia.com/use-gpuuuid" /
 *                                                      "nvidia.com/nouse-gpuuuid"
 *   "regions", "clouds", "zones"    [string]: pins (the node must be in one)
 *   "prefer_regions", "prefer_clouds", "prefer_zones"  [string]: preferences
 *   "labels"          {"key": "value"}: required node labels
 *   "priority"        int -1000..1000, higher wins (default 0)
 *                     alias "nvidia.com/priority": HAMi's 0 (high) maps to
 *                     100 and 1 (low) to 0
 *   "gang"            string: gang name; "gang_size" int 1..1024: its members
 *   "policy"          string: a policy name (placement.h) for this job
 * HAMi aliases take numbers or numeric strings ("3000").  mem_mib and
 * mem_percent are exclusive; a fractional request (mem or compute given)
 * needs devices >= 1; whole with mem or compute is rejected.
 * Unset memory on a fractional request means the whole device memory, as in
 * HAMi.
 *
 * Node record:
 *   {"name": "n1", "cloud": "volc", "cluster": "c1", "region": "cn-bj",
 *    "zone": "cn-bj-a", "labels": {"k": "v"}, "cpu_milli": 64000,
 *    "mem_mib": 262144, "oversub": 1.0, "healthy": true,
 *    "devices": [{"uuid": "GPU-0", "vendor": "nvidia", "model": "A100",
 *                 "mem_mib": 81920, "compute_units": 108, "numa": 0,
 *                 "links": [1, 2, 3], "healthy": true}]}
 *   name, cpu_milli, mem_mib required; devices[].uuid, model, mem_mib
 *   required; vendor defaults to "nvidia"; links are the indices (in this
 *   devices array) of the devices joined to this one by NVLink or a like
 *   fabric; oversub >= 1 multiplies device memory offered to slices.
 *
 * Allocation record:
 *   {"job": "j1", "node": "n1", "priority": 0, "cpu_milli": 4000,
 *    "host_mem_mib": 8192,
 *    "devices": [{"uuid": "GPU-0", "index": 0, "mem_mib": 8192,
 *                 "compute_percent": 30, "whole": false}],
 *    "suspended": true}
 *   "suspended" (default false): the job's kernel launches are held by its
 *   shim while its memory stays in place (set by a suspend, cleared by a
 *   resume); the node's agent applies it to the slice.
 */
#ifndef GP_MODEL_H
#define GP_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "util.h"

#include "err.h"

#define GP_MAX_DEVICES    16     /* devices per node */
#define GP_MAX_LABELS     16     /* labels per node or job */
#define GP_MAX_LIST       16     /* entries in an allow/deny/pin list */
#define GP_NAME_LEN       128    /* names, ids */
#define GP_SHORT_LEN      64     /* regions, models, vendors, uuids, label parts */
#define GP_PRIORITY_MIN   (-1000)
#define GP_PRIORITY_MAX   1000

typedef struct {
    char key[GP_SHORT_LEN];
    char value[GP_SHORT_LEN];
} gp_label_t;

typedef struct {
    int n;
    char v[GP_MAX_LIST][GP_SHORT_LEN];
} gp_strlist_t;

typedef struct {
    char uuid[GP_SHORT_LEN];
    char vendor[GP_SHORT_LEN];
    char model[GP_SHORT_LEN];
    int64_t mem_mib;
    int compute_units;
    int numa;
    uint32_t links;          /* bit i: joined to device i of the same node */
    bool healthy;
} gp_device_t;

typedef struct {
    char name[GP_NAME_LEN];
    char cloud[GP_SHORT_LEN];
    char cluster[GP_SHORT_LEN];
    char region[GP_SHORT_LEN];
    char zone[GP_SHORT_LEN];
    int nlabels;
    gp_label_t labels[GP_MAX_LABELS];
    int64_t cpu_milli;
    int64_t mem_mib;
    double oversub;          /* >= 1 */
    bool healthy;
    int ndevices;
    gp_device_t devices[GP_MAX_DEVICES];
} gp_node_t;

typedef struct {
    char uuid[GP_SHORT_LEN];
    int index;               /* index of the device on its node */
    int64_t mem_mib;
    int compute_permille;    /* 0..1000 */
    bool whole;
} gp_alloc_dev_t;

typedef struct {
    char job[GP_NAME_LEN];
    char node[GP_NAME_LEN];
    int priority;
    int64_t cpu_milli;
    int64_t host_mem_mib;
    bool suspended;          /* the job's kernel launches are held (its memory stays) */
    bool stop;               /* schema 2: a drain asks the agent to stop the job and
                              * requeue it ("stop": true) */
    int stop_grace_s;        /* SIGTERM, then SIGKILL after this many seconds; -1:
                              * the job's own grace */
    int ndevices;
    gp_alloc_dev_t devices[GP_MAX_DEVICES];
} gp_alloc_t;

typedef struct {
    char id[GP_NAME_LEN];
    int devices;             /* 0 = CPU-only */
    bool whole;
    int64_t mem_mib;         /* per device; 0 = unset */
    int mem_permille;        /* per device, of the device's memory; 0 = unset */
    int compute_permille;    /* per device 0..1000 */
    int64_t cpu_milli;
    int64_t host_mem_mib;
    gp_strlist_t vendors, exclude_vendors;
    gp_strlist_t models, exclude_models;
    gp_strlist_t uuids, exclude_uuids;
    gp_strlist_t regions, clouds, zones;
    gp_strlist_t prefer_regions, prefer_clouds, prefer_zones;
    int nlabels;
    gp_label_t labels[GP_MAX_LABELS];
    int priority;
    char gang[GP_NAME_LEN];
    int gang_size;
    char policy[GP_SHORT_LEN];
} gp_job_t;

/* Zero a record and set its defaults (healthy, oversub 1, vendor nvidia). */
void gp_node_init(gp_node_t *node);
void gp_device_init(gp_device_t *dev);
void gp_job_init(gp_job_t *job);
void gp_alloc_init(gp_alloc_t *alloc);

/* The store schema (see README "Versions and upgrades").  Records carry
 * "schema": N when they use a field of schema N > 1; a record without it
 * is schema 1.  Readers accept every schema from GP_SCHEMA_MIN to
 * GP_SCHEMA_VERSION and refuse a newer one by name; writers write schema-2
 * fields only once the pool's P schema key says 2 (every daemon reads it). */
#define GP_SCHEMA_MIN 1
#define GP_SCHEMA_VERSION 2
/* Check a record's "schema" field (absent: 1). */
int gp_schema_check(const json_t *v, gp_err_t *err);

/* Check the invariants of a record built in code (the decoders check them
 * too): ranges, exclusive fields, unique uuids, links within range. */
int gp_job_validate(const gp_job_t *job, gp_err_t *err);
int gp_node_validate(const gp_node_t *node, gp_err_t *err);

/* Decoders: output assigned only on success. */
int gp_job_from_json(const json_t *obj, gp_job_t *out, gp_err_t *err);
int gp_job_from_json_str(const char *text, gp_job_t *out, gp_err_t *err);
int gp_node_from_json(const json_t *obj, gp_node_t *out, gp_err_t *err);
int gp_node_from_json_str(const char *text, gp_node_t *out, gp_err_t *err);
int gp_alloc_from_json(const json_t *obj, gp_alloc_t *out, gp_err_t *err);
/* Allocations are read in place first (gp_alloc_scan, no tree), the tree
 * judging whatever that does not take: the result is the same. */
int gp_alloc_from_json_str(const char *text, gp_alloc_t *out, gp_err_t *err);
/* The in-place reader alone: true when it took the text (the plain shape
 * gp_alloc_dump_buf writes, every value in range), false otherwise (then
 * *out is untouched and gp_alloc_from_json decides). */
bool gp_alloc_scan(const char *text, size_t len, gp_alloc_t *out);

/* Encoders: new references, the caller owns them (json_decref).  NULL only
 * when out of memory.  Fields at their defaults are left out of job specs. */
json_t *gp_job_to_json(const gp_job_t *job);
/* The same object as text, appended to b: the bytes json_dumps writes for
 * gp_job_to_json (JSON_COMPACT); -1 when out of memory, for a string that
 * is not UTF-8 or a repeated label (the tree writes those its own way):
 * then b may hold part of it. */
int gp_job_dump_buf(const gp_job_t *job, gp_ebuf_t *b);
json_t *gp_node_to_json(const gp_node_t *node);
json_t *gp_alloc_to_json(const gp_alloc_t *alloc);
/* The same object as text, appended to b (util.h): what json_dumps of
 * gp_alloc_to_json writes, member for member, without the tree (a commit
 * of a burst writes hundreds, an agent bids with one per node asked);
 * -1 when out of memory. */
int gp_alloc_dump_buf(const gp_alloc_t *alloc, gp_ebuf_t *b);

/* Helpers for records built in code.  -1 when the list is full or the
 * string too long. */
int gp_strlist_add(gp_strlist_t *list, const char *s);
bool gp_strlist_has(const gp_strlist_t *list, const char *s);
int gp_node_add_label(gp_node_t *node, const char *key, const char *value);

#endif
