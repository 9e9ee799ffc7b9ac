/*
 * keys.h - the etcd keyspace of a pool, in one place.
 *
 * Every key lives under the pool's prefix P (default "/gpupool/"):
 *
 *   P nodes/<region>/<node>        node record (model.h), written by the
 *                                  node's agent, bound to the agent's lease
 *   P usage/<region>/<node>        live usage of the node (free memory and
 *                                  utilization per device, per-slice usage),
 *                                  agent's lease; rewritten only on change
 *   P jobs/<job>                   job record (jobrec.h): spec, run section,
 *                                  state, owner region, attempts, history.
 *                                  A pending record without an allocation
 *                                  waits in its owner region's queue: the
 *                                  queue is derived from the records, no key
 *                                  of its own
 *   P alloc/<node>/<job>           an allocation (model.h): devices, memory
 *                                  and compute of each.  It is the record of
 *                                  the placement: the commit writes it and
 *                                  nothing else; a pending record with an
 *                                  allocation is "placed".  A commit on a
 *                                  node checks that no allocation under
 *                                  alloc/<node>/ was created after the
 *                                  revision its plan saw (a range compare of
 *                                  create revisions)
 *   P notready/<region>/<node>     a node whose agent is gone: its last
 *                                  record and since when (NotReady), written
 *                                  by the region's leader, removed when the
 *                                  node returns or after node-retention
 *   P leader/<region>              the region's leader election key (the
 *                                  leader's id, bound to its lease)
 *   P coordinators/<region>/<id>   a coordinator's endpoints and CURVE public
 *                                  key, bound to its lease (agents find their
 *                                  coordinators here)
 *   P agents/<region>/<agent>      an agent's release, protocol versions,
 *                                  store schema and nodes, on its lease
 *   P cordons/<node>               the node takes no new placements: reason,
 *                                  who, since when (no lease: survives
 *                                  restarts of everything)
 *   P drains/<node>                a drain the node's region leader carries
 *                                  out: options, progress, outcome
 *   P schema                       the store schema the pool writes (absent:
 *                                  1); raised by a leader once every daemon
 *                                  reads the next one
 *   P rightsize/<class>            a job class's usage summary (rightsize.h):
 *                                  written by agents, one compare-and-put per
 *                                  run end (and per minute of a long run)
 *
 * Names (regions, nodes, jobs) are [A-Za-z0-9._-], 1..127 characters, not
 * starting with '.', so that a key never splits differently than it was
 * built.  gp_name_valid() checks that.
 */
#ifndef GP_KEYS_H
#define GP_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#define GP_DEFAULT_PREFIX "/gpupool/"
#define GP_KEY_MAX 512

bool gp_name_valid(const char *name);
/* A prefix must start and end with '/'. */
bool gp_prefix_valid(const char *prefix);

/* Each writes the key into buf (GP_KEY_MAX bytes) and returns buf.  A
 * NULL last part gives the folder: "P nodes/<region>/" or "P nodes/". */
char *gp_key_node(char *buf, const char *prefix, const char *region, const char *node);
char *gp_key_notready(char *buf, const char *prefix, const char *region, const char *node);
char *gp_key_usage(char *buf, const char *prefix, const char *region, const char *node);
char *gp_key_job(char *buf, const char *prefix, const char *job);
char *gp_key_alloc(char *buf, const char *prefix, const char *node, const char *job);
char *gp_key_leader(char *buf, const char *prefix, const char *region);
char *gp_key_coordinator(char *buf, const char *prefix, const char *region, const char *id);
char *gp_key_agent(char *buf, const char *prefix, const char *region, const char *agent);
char *gp_key_cordon(char *buf, const char *prefix, const char *node);
char *gp_key_drain(char *buf, const char *prefix, const char *node);
char *gp_key_schema(char *buf, const char *prefix);
char *gp_key_rightsize(char *buf, const char *prefix, const char *cls);

/* The end of the range that a coordinator's cache watches: every key of
 * the pool but the usage reports (P usage/ sorts after every other kind). */
char *gp_key_cache_end(char *buf, const char *prefix);

/* The last path element of key (after the final '/'), or key. */
const char *gp_key_base(const char *key, size_t key_len, size_t *base_len);

#endif
