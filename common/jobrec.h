/*
 * jobrec.h - the job record: what a submitter asked for, how to run it,
 * and where it stands.  Stored as JSON at P jobs/<id> (keys.h).
 *
 * A submission (REST body, `gpupool submit FILE`) is a job spec (model.h:
 * devices, memory, compute, filters, pins, priority, gang, HAMi aliases)
 * with these fields besides:
 *
 *   "command"       [string]: the program and its arguments (optional: a
 *                   job without one is a reservation, "running" until it is
 *                   cancelled or its duration passes)
 *   "env"           {"NAME": "value"}: added to the job's environment; a
 *                   value written {"secret": "value"} is a secret: stored
 *                   and given to the job like the others, but never shown
 *                   by the API (gp_jobrec_redact_json) nor logged
 *   "compute_mode"  "cap" or "share" (default: the pool's, see the shim's
 *                   GP_SLICE_COMPUTE_MODE): compute_percent as a ceiling,
 *                   or as a guarantee that lends idle time
 *   "restart"       "never" (default), "on-failure", "always"
 *   "max_restarts"  int 0..1000 (default 3): for on-failure; always
 *                   restarts without limit (Kubernetes' restartPolicy)
 *   "duration_s"    number >= 0: for jobs without a command, how long they
 *                   "run" (0 = until cancelled)
 *   "grace_s"       int 0..3600 (default 30; store schema 2): how long a
 *                   stop (cancel, preemption, drain) waits between SIGTERM
 *                   and SIGKILL
 *   "ttl_after_finished_s"  number >= 0: how long the record of the ended
 *                   job stays in the store (default: the coordinators'
 *                   job-retention), as Kubernetes' Job field
 *   "image"         string: run the command in a container of this image
 *                   (without "command", the image's own); the reference
 *                   names its registry ("registry.example.com/team/app:1",
 *                   "localhost/app:1"), so that no search list of the node
 *                   chooses where it comes from; 1..255 of [a-z0-9._/:@-]
 *   "workdir"       absolute path: the container's working directory
 *   "user"          "name", "uid" or "uid:gid" inside the container; never
 *                   root (0)
 *   "mounts"        ["HOST:CONTAINER", "HOST:CONTAINER:ro"]: host folders
 *                   in the container (at most 16; absolute paths without
 *                   ".." or ","; the node's agent allows only the host
 *                   paths under its container-mount-paths); workdir, user
 *                   and mounts need an image
 *   "class"         name: the job class whose use is learned together
 *                   (rightsize.h; default: the id without a trailing "-N"
 *                   or digits); scoped to the owner
 *   "rightsize"     "off" (default), "recommend" (learn and show), "auto"
 *                   (learn, and place each run with the class's
 *                   recommendation: rightsize.h, gp_rightsize_apply)
 *   "owner"         string: the team that owns the job (quotas)
 *   "region"        string: the region the job is submitted to (default:
 *                   the coordinator's); it becomes the owner region
 *
 * The stored record adds the state (below), the reason of the last change,
 * the node it runs on, its exit code, the number of placements (attempts),
 * times in ms since the epoch, and a history of state changes; a job
 * restarted by its policy also "restarts" (how many times), and the
 * backoff of the last restart: "restart_delay_ms" and "restart_at_ms" (not
 * placed again before; both written by the agent, see nodeagent/jobs.c);
 * for a right-sized job the slice its last run was given ("applied":
 * {"mem_mib", "compute_percent"}, from its allocation, written by the agent
 * with "running") and, after a run that died of OOM in its slice, the
 * memory its next run gets at least ("rightsize_floor_mib").
 *
 * States:  pending -> placed -> running -> succeeded | failed
 *          any live state -> cancelled (by a user) | preempted (requeued
 *          as pending) | lost (its node vanished; requeued by policy)
 *          running <-> suspended (compute preemption on a shared GPU)
 *
 * Ownership: a gp_jobrec_t owns its strings, arrays and JSON; release with
 * gp_jobrec_clear().  Decoders assign their output only on success.
 */
#ifndef GP_JOBREC_H
#define GP_JOBREC_H

#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "jscan.h"
#include "model.h"

typedef enum {
    GP_JOB_PENDING = 0,
    GP_JOB_PLACED,
    GP_JOB_RUNNING,
    GP_JOB_SUSPENDED,
    GP_JOB_PREEMPTED,
    GP_JOB_SUCCEEDED,
    GP_JOB_FAILED,
    GP_JOB_CANCELLED,
    GP_JOB_LOST,
} gp_job_state_t;

typedef enum { GP_RESTART_NEVER = 0, GP_RESTART_ON_FAILURE, GP_RESTART_ALWAYS } gp_restart_t;

#define GP_JOB_MAX_ARGS 256
#define GP_JOB_MAX_ENV  256
#define GP_JOB_MAX_MOUNTS 16
#define GP_JOB_GRACE_S 30     /* SIGTERM to SIGKILL when a job names no grace_s */

typedef struct {
    gp_job_t spec;
    char **argv;              /* NULL-terminated, or NULL without a command */
    char **env;               /* NULL-terminated "NAME=value", or NULL */
    unsigned char env_secret[GP_JOB_MAX_ENV];   /* 1: env[i]'s value is a secret */
    char compute_mode[8];     /* "cap", "share", or "" = the pool's default */
    gp_restart_t restart;
    int max_restarts;
    double duration_s;
    double ttl_after_finished_s;   /* < 0: the pool's job-retention */
    int grace_s;              /* < 0: GP_JOB_GRACE_S (not stored: schema 1) */
    char owner[GP_SHORT_LEN];
    char region[GP_SHORT_LEN];
    char cls[GP_NAME_LEN];    /* "class": "" = derived (rightsize.h) */
    int rightsize;            /* gp_rightsize_mode_t */
    char image[256];          /* "" = the command runs on the host */
    char workdir[256];        /* "" = the image's */
    char user[64];            /* "" = the image's */
    char **mounts;            /* NULL-terminated "HOST:CONTAINER:ro|rw", or NULL */

    gp_job_state_t state;
    char reason[256];
    char node[GP_NAME_LEN];
    int exit_code;
    int attempts;
    int restarts;             /* restarts by the policy so far */
    int64_t restart_delay_ms; /* the backoff of the last one (0: none yet) */
    int64_t restart_at_ms;    /* not placed again before (0: at once) */
    int64_t applied_mem_mib;  /* the slice the last run was given; 0 = not right-sized */
    int applied_compute_pct;
    int64_t rightsize_floor_mib;   /* after an OOM in the slice: the next run's least memory */
    int64_t submitted_ms;
    int64_t updated_ms;
    json_t *history;          /* array of {"state","node","reason","at_ms"}, owned */
} gp_jobrec_t;

const char *gp_job_state_name(gp_job_state_t s);
int gp_job_state_parse(const char *name, gp_job_state_t *out);
/* Ended for good: succeeded, failed, cancelled. */
int gp_job_state_final(gp_job_state_t s);

void gp_jobrec_init(gp_jobrec_t *rec);
void gp_jobrec_clear(gp_jobrec_t *rec);

/* Parse a submission (spec + run fields; no state fields allowed).  The
 * record comes out pending, with submitted_ms = now_ms.  default_region is
 * used when the submission names none. */
int gp_jobrec_from_submission(const char *text, size_t len, const char *default_region,
                              int64_t now_ms, gp_jobrec_t *out, gp_err_t *err);
/* The job's grace in seconds (its grace_s, else GP_JOB_GRACE_S). */
int gp_jobrec_grace_s(const gp_jobrec_t *rec);
/* Parse a stored record (schema GP_SCHEMA_MIN..GP_SCHEMA_VERSION). */
int gp_jobrec_from_json_str(const char *text, size_t len, gp_jobrec_t *out, gp_err_t *err);
/* Encode a record (new reference, caller decrefs); NULL when out of memory.
 * A record that uses a schema-2 field (grace_s, class, rightsize, applied,
 * rightsize_floor_mib, restarts and its backoff) says "schema": 2. */
json_t *gp_jobrec_to_json(const gp_jobrec_t *rec);
/* Encode to a compact string (caller frees). */
char *gp_jobrec_dump(const gp_jobrec_t *rec);

/* The fields of a stored record that an index of jobs keeps (the
 * coordinators' cache), read without building the record: strings as
 * spans (absent: p NULL; the text's, or the tree's), numbers as
 * json_integer_value gives them (absent or not an integer: 0), the
 * spec's priority, devices, gang and gang_size. */
typedef struct {
    gp_jscan_span_t state, region, owner, node, reason, rightsize, cls, gang;
    int64_t attempts, floor_mib, submitted_ms, restart_at_ms, updated_ms;
    int64_t priority, devices, gang_size;
    int64_t ttl_ms;                  /* ttl_after_finished_s in ms; -1: none */
} gp_jobrec_sum_t;

/* From a parsed record (spans into its strings, valid while it lives). */
void gp_jobrec_sum_json(const json_t *record, gp_jobrec_sum_t *out);
/* From the record's text, in place (spans into text): false when the text
 * is not the plain shape gpupool writes (a string with an escape or
 * beyond ASCII, a field of another type than written, a malformed text):
 * the caller parses it whole then, and that parse judges it.  When true,
 * out equals what gp_jobrec_sum_json gives for the parsed text. */
bool gp_jobrec_sum_scan(const char *text, size_t len, gp_jobrec_sum_t *out);

/* Hide the values of secret env variables in an encoded record (in place):
 * each {"secret": "value"} becomes {"secret": true}.  Records inside
 * {"jobs": [...]} and arrays of records are handled too. */
void gp_jobrec_redact_json(json_t *doc);
/* Beside every time field "X_ms" (ms since the epoch, between the years
 * 2000 and 3000) of doc, at any depth, add "X": the same time in RFC 3339,
 * UTC, with milliseconds ("2026-11-21T15:04:05.123Z"), unless doc has an
 * X already.  The API's answers and the CLI's -o json carry them. */
void gp_json_add_times(json_t *doc);

/* Does the restart policy run the job again after this end?  (failed:
 * the attempt failed; always restarts without limit, on-failure within
 * max_restarts.) */
int gp_jobrec_restarts_again(const gp_jobrec_t *rec, int failed);

/* Change the state, record reason/node, stamp updated_ms and append to the
 * history (the history keeps its last 32 entries). */
void gp_jobrec_set_state(gp_jobrec_t *rec, gp_job_state_t state, const char *node,
                         const char *reason, int64_t now_ms);

#endif
