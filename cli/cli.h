/*
 * cli.h - what the files of the gpupool CLI share.
 *
 * The CLI is one program, `gpupool`, in small files: main.c (global
 * options and the command table), http.c (the REST transport with failover
 * across endpoints), output.c (errors, tables, formatting), jobs.c, logs.c and pool.c
 * (the commands that talk to a coordinator), keys.c (offline), and the
 * commands that talk to etcd itself: backup.c, plan.c and doctor.c (etcd.c
 * holds their shared etcd options).
 *
 * Errors: every function that fails prints its one line through cli_error
 * (or cli_fail, which also returns the status) and returns a <sysexits.h>
 * status (0: success), which main returns.  While a request may still be
 * answered by another endpoint, cli_hold_errors(true) keeps the line back;
 * cli_release_errors() stops holding and returns the line kept ("" if none).
 *
 * Ownership: strings passed in are borrowed; cli_buf_t and cli_table_t own
 * what they hold until cli_buf_free / cli_table_free; JSON answers returned
 * through a json_t ** belong to the caller (json_decref).
 *
 * cli_flag_value: "--name VALUE" or "--name=VALUE" at argv[*i] (advancing
 * *i past a separate value), or NULL when argv[*i] is not that flag.
 *
 * cli_etcd_* (etcd.c): the etcd options of the commands that talk to
 * etcd directly (backup, plan): --etcd-endpoints, --etcd-ca, --etcd-cert,
 * --etcd-key, --etcd-user and --prefix, their defaults from
 * GPUPOOL_ETCD_ENDPOINTS (else http://127.0.0.1:2379), GPUPOOL_ETCD_CA,
 * _CERT, _KEY, _USER and GPUPOOL_ETCD_PASSWORD (the password only there,
 * never on a command line).  cli_fail prints "gpupool: MESSAGE" on stderr
 * and returns status.
 *
 * cli_backup, cli_restore_check (backup.c): `gpupool backup` and
 * `gpupool restore-check`.  Both talk to etcd (backup) or read files (restore-check), never to a
 * coordinator's API, so they work while every coordinator is down:
 *
 *   gpupool backup FILE [--etcd-endpoints URLS] [--etcd-ca F] [--etcd-cert F]
 *                       [--etcd-key F] [--etcd-user U] [--prefix P]
 *       FILE       the member's snapshot as etcd's maintenance API streams it
 *                  (restorable as is: `etcdctl snapshot restore FILE`),
 *                  checked against its SHA-256 trailer before it is kept;
 *       FILE.meta  JSON: gpupool's version, the time, the etcd revisions
 *                  read just before and after the snapshot, the pool's keys
 *                  by kind and its jobs by state at the first of them.
 *   Neither file exists until both are complete (written to temporary
 *   names, renamed); an existing FILE is never overwritten.
 *
 *   gpupool restore-check FILE
 *       checks the snapshot's SHA-256 trailer and, where FILE.meta exists,
 *       that it describes this snapshot, and prints what it holds.
 *
 * Each returns a <sysexits.h> status and prints its own errors.
 */
#ifndef GP_CLI_H
#define GP_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <curl/curl.h>
#include <jansson.h>

#include "config.h"
#include "etcd.h"

#define CLI_PROG "gpupool"
#define CLI_DEFAULT_API "http://127.0.0.1:8080"
#define CLI_MAX_INPUT (64u << 20)       /* largest submission file read */
#define CLI_MAX_ANSWER (256u << 20)     /* largest answer accepted from the server */

typedef enum { OUT_TABLE = 0, OUT_JSON, OUT_WIDE } out_fmt_t;   /* wide: a table with more columns */

typedef struct {
    char **apis;             /* the API endpoints, base URLs without a trailing '/' (owned) */
    size_t napis;            /* how many: at least one */
    size_t cur;              /* the one in use: the first, or the one failed over to */
    const char *api;         /* apis[cur] */
    bool post_idempotent;    /* the next POST may be repeated: a submission naming its ids */
    char *token;             /* bearer token or NULL (owned) */
    const char *cacert;      /* CA bundle the API's certificate is checked against, or NULL */
    const char *cert, *key;  /* client certificate and key, or NULL */
    out_fmt_t out;
    CURL *curl;
    const char *what;        /* names the object of the next request in errors, or NULL */
} cli_t;

/* ------------------------------------------------------------- output.c */

void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_hold_errors(bool hold);
const char *cli_release_errors(void);

typedef struct {
    char *buf;
    size_t len, cap;
    bool too_big;
} cli_buf_t;

#define TABLE_MAX_COLS 16

typedef struct {
    int ncols;
    size_t nrows, cap;
    char **cells;            /* nrows * ncols strings, row-major, owned */
    bool right[TABLE_MAX_COLS];
} cli_table_t;

int cli_buf_add(cli_buf_t *b, const void *data, size_t n);
void cli_buf_free(cli_buf_t *b);
/* A whole file ("-": stdin), at most CLI_MAX_INPUT bytes. */
int cli_read_file(const char *path, cli_buf_t *out);

void cli_fmt_mib(char *out, size_t size, int64_t mib);         /* "40G", "512M" */
void cli_fmt_age(char *out, size_t size, int64_t ms);          /* "3m", "2h" */
void cli_fmt_time(char *out, size_t size, int64_t ms);         /* RFC 3339, UTC */
void cli_fmt_local(char *out, size_t size, int64_t ms);        /* local time for tables */
void cli_fmt_ago(char *out, size_t size, int64_t now, int64_t ms);
void cli_fmt_compute(char *out, size_t size, double pct);      /* "25%" or "no cap" */
void cli_fmt_request(char *out, size_t size, const json_t *spec);
void cli_fmt_alloc(char *out, size_t size, const json_t *alloc);

/* Fields read defensively: "" / 0 when absent or of another type. */
const char *cli_str(const json_t *obj, const char *key);
int64_t cli_int(const json_t *obj, const char *key);
double cli_num(const json_t *obj, const char *key);

void cli_table_init(cli_table_t *t, int ncols, const char *const *heads);
void cli_table_row(cli_table_t *t, const char *const *cells);
void cli_table_print(cli_table_t *t, FILE *out);
void cli_table_free(cli_table_t *t);

/* Print a JSON value on stdout, indented, with RFC 3339 beside "_ms" times. */
int cli_print_json(const json_t *j);
/* The array under key in an answer, or NULL (printed). */
json_t *cli_array(const json_t *j, const char *key);
/* The elements of array sorted by one or two string fields (a view: the
 * array owns them); the caller frees the returned vector. */
json_t **cli_sorted(const json_t *array, const char *k1, const char *k2, size_t *n);
/* qsort order of jobs: by second of submission, then id. */
int cli_cmp_jobs(const void *a, const void *b);

/* ------------------------------------------------------------- http.c */

/* An HTTP status as an exit status (0 for 2xx). */
int cli_status_exit(long status);
/* One request to the pool's API, failing over where it may be repeated;
 * *out (if not NULL) receives the parsed answer.  Returns an exit status. */
int cli_request(cli_t *cli, const char *method, const char *path, const char *body,
                size_t body_len, json_t **out);
int cli_get(cli_t *cli, const char *path, json_t **out);
/* "/v1/jobs/" + the escaped id in out; -1 when it does not fit. */
int cli_job_path(cli_t *cli, const char *id, char *out, size_t size);
/* GET a list (path answers {key: [...]}): with -o json print the answer and
 * return 1 with *rc = 0; on error return 1 with *rc the exit code; else
 * return 0 with *ans (the caller decrefs) and *list (borrowed from it). */
int cli_get_list(cli_t *cli, const char *path, const char *key, json_t **ans, json_t **list,
                 int *rc);
/* The token in a file: its first line that is neither blank nor a comment. */
int cli_read_token(const char *path, char **out);

/* ------------------------------------------------------------- commands */

int cli_cmd_submit(cli_t *cli, int argc, char **argv);
int cli_cmd_get(cli_t *cli, int argc, char **argv);
int cli_cmd_ls(cli_t *cli, int argc, char **argv);
int cli_cmd_cancel(cli_t *cli, int argc, char **argv);
int cli_cmd_delete(cli_t *cli, int argc, char **argv);
int cli_cmd_purge(cli_t *cli, int argc, char **argv);
int cli_cmd_logs(cli_t *cli, int argc, char **argv);     /* logs.c */
int cli_cmd_suspend(cli_t *cli, int argc, char **argv);
int cli_cmd_resume(cli_t *cli, int argc, char **argv);
int cli_cmd_quota(cli_t *cli, int argc, char **argv);
int cli_cmd_nodes(cli_t *cli, int argc, char **argv);
int cli_cmd_regions(cli_t *cli, int argc, char **argv);
int cli_cmd_top(cli_t *cli, int argc, char **argv);
int cli_cmd_audit(cli_t *cli, int argc, char **argv);
int cli_cmd_cordon(cli_t *cli, int argc, char **argv);   /* cordon and uncordon (maint.c) */
int cli_cmd_drain(cli_t *cli, int argc, char **argv);
int cli_cmd_rightsize(cli_t *cli, int argc, char **argv);   /* rightsize.c */
int cli_cmd_keys(int argc, char **argv);
int cli_cmd_doctor(int argc, char **argv, out_fmt_t out);

/* ------------------------------------------------------------- main.c, etcd.c */

const char *cli_flag_value(int argc, char **argv, int *i, const char *name);
/* A command's flags from its option table (gp_config_args: operands stay
 * at the front of argv, *argc their count with the command's name); on a
 * bad flag prints the error and "usage: USAGE" and returns EX_USAGE. */
int cli_args(const gp_opt_t *opts, void *cfg, int *argc, char **argv, const char *usage);

typedef struct {
    const char *endpoints, *ca, *cert, *key, *user, *password, *prefix;   /* borrowed */
} cli_etcd_opts_t;
/* The etcd options as flags: a command's option table holds them with
 * CLI_ETCD_OPTIONS(its struct, the cli_etcd_flags_t member). */
typedef struct {
    char *endpoints, *ca, *cert, *key, *user, *prefix;
} cli_etcd_flags_t;
#define CLI_ETCD_OPTIONS(T, M)                                                                   \
    { "etcd-endpoints", GP_OPT_STRING, offsetof(T, M.endpoints), NULL, 0, 0, "etcd client URLs" }, \
    { "etcd-ca", GP_OPT_STRING, offsetof(T, M.ca), NULL, 0, 0, "etcd CA bundle" },                 \
    { "etcd-cert", GP_OPT_STRING, offsetof(T, M.cert), NULL, 0, 0, "etcd client certificate" },    \
    { "etcd-key", GP_OPT_STRING, offsetof(T, M.key), NULL, 0, 0, "etcd client key" },              \
    { "etcd-user", GP_OPT_STRING, offsetof(T, M.user), NULL, 0, 0, "etcd user" },                  \
    { "prefix", GP_OPT_STRING, offsetof(T, M.prefix), NULL, 0, 0, "the pool's key prefix" }
/* The environment's values and defaults (cli_etcd_opts_init), then the
 * flags given; o borrows from f. */
void cli_etcd_opts_init(cli_etcd_opts_t *o);
void cli_etcd_opts_from(cli_etcd_opts_t *o, const cli_etcd_flags_t *f);
/* A client of o's endpoints (caller destroys it); NULL with err, also for a
 * bad --prefix. */
gp_etcd_t *cli_etcd_open(const cli_etcd_opts_t *o, gp_err_t *err);

int cli_backup(int argc, char **argv);
int cli_restore_check(int argc, char **argv);
/* plan.c: `gpupool plan --drain NODE[,NODE] | --drain-candidates
 * [--prices FILE] | --add [--prices FILE --catalog INVENTORY]`, read-only what-if questions
 * on the live pool from one etcd range read (the etcd options as backup's,
 * and --policy, default gpupool).  Exit 0: the drain can be done / the
 * pending jobs place (on the added nodes); 1: some job places nowhere. */
int cli_plan(int argc, char **argv);

#endif
