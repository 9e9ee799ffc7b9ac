/*
 * cli.h - what the files of the gpupool CLI share.
 *
 * cli_flag_value: "--name VALUE" or "--name=VALUE" at argv[*i] (advancing
 * *i past a separate value), or NULL when argv[*i] is not that flag.
 *
 * cli_etcd_* (cli_etcd.c): the etcd options of the commands that talk to
 * etcd directly (backup, plan): --etcd-endpoints, --etcd-ca, --etcd-cert,
 * --etcd-key, --etcd-user and --prefix, their defaults from
 * GPUPOOL_ETCD_ENDPOINTS (else http://127.0.0.1:2379), GPUPOOL_ETCD_CA,
 * _CERT, _KEY, _USER and GPUPOOL_ETCD_PASSWORD (the password only there,
 * never on a command line).  cli_fail prints "gpupool: MESSAGE" on stderr
 * and returns status.
 *
 * cli_backup, cli_restore_check (cli_backup.c): `gpupool backup` and
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

#include "etcd.h"

const char *cli_flag_value(int argc, char **argv, int *i, const char *name);

typedef struct {
    const char *endpoints, *ca, *cert, *key, *user, *password, *prefix;   /* borrowed */
} cli_etcd_opts_t;
void cli_etcd_opts_init(cli_etcd_opts_t *o);
/* 1 when argv[*i] is one of the etcd options (taken into o), else 0. */
int cli_etcd_opt(cli_etcd_opts_t *o, int argc, char **argv, int *i);
/* A client of o's endpoints (caller destroys it); NULL with err, also for a
 * bad --prefix. */
gp_etcd_t *cli_etcd_open(const cli_etcd_opts_t *o, gp_err_t *err);
int cli_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int cli_backup(int argc, char **argv);
int cli_restore_check(int argc, char **argv);
/* cli_plan.c: `gpupool plan --drain NODE[,NODE] | --drain-candidates
 * [--prices FILE] | --add [--prices FILE --catalog INVENTORY]`, read-only what-if questions
 * on the live pool from one etcd range read (the etcd options as backup's,
 * and --policy, default gpupool).  Exit 0: the drain can be done / the
 * pending jobs place (on the added nodes); 1: some job places nowhere. */
int cli_plan(int argc, char **argv);

#endif
