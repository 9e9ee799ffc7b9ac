/*
 * backup.c - `gpupool backup` and `gpupool restore-check` (see
 * cli.h for what they write and check).
 *
 * The metadata's counts come from one read of the pool's prefix at the
 * revision read just before the snapshot (a consistent view of the pool at
 * that revision); the snapshot itself is taken at a revision between
 * revision_before and revision_after, so when the two are equal the counts
 * are exactly the snapshot's, and otherwise they describe the pool a few
 * writes earlier.  `etcdctl snapshot status FILE` tells the snapshot's own
 * revision.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "daemon.h"
#include "etcd.h"
#include "keys.h"
#include "util.h"

#include "banned.h"

#define META_FORMAT "gpupool-backup/1"

/* Count the pool's keys by their first component under prefix ("jobs",
 * "nodes", "alloc", ...) and its jobs by state, at revision rev. */
static int s_census(gp_etcd_t *etcd, const char *prefix, int64_t rev, json_t *keys, json_t *states,
                    gp_err_t *err)
{
    gp_etcd_op_t op = { .type = GP_ETCD_OP_RANGE, .key = prefix, .key_len = strlen(prefix),
                        .flags = GP_ETCD_PREFIX, .revision = rev };
    gp_etcd_result_t res = { 0 };
    if (gp_etcd_do(etcd, &op, &res, err) < 0)
        return -1;
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < res.n_kvs; i++) {
        const gp_etcd_kv_t *kv = &res.kvs[i];
        const char *rest = kv->key + plen;
        size_t restlen = kv->key_len - plen;
        const char *slash = memchr(rest, '/', restlen);
        char kind[64];
        snprintf(kind, sizeof kind, "%.*s", (int)(slash ? (size_t)(slash - rest) : restlen), rest);
        json_object_set_new(keys, kind, json_integer(json_integer_value(json_object_get(keys, kind)) + 1));
        if (strcmp(kind, "jobs") != 0 || !slash)
            continue;
        json_t *job = json_loadb(kv->value, kv->value_len, 0, NULL);
        const char *state = json_string_value(json_object_get(job, "state"));
        if (state)
            json_object_set_new(states, state,
                                json_integer(json_integer_value(json_object_get(states, state)) + 1));
        json_decref(job);
    }
    gp_etcd_result_free(&res);
    return 0;
}

static int s_current_revision(gp_etcd_t *etcd, const char *prefix, int64_t *rev, gp_err_t *err)
{
    gp_etcd_result_t res = { 0 };
    if (gp_etcd_get(etcd, prefix, GP_ETCD_PREFIX | GP_ETCD_COUNT_ONLY, &res, err) < 0)
        return -1;
    *rev = res.revision;
    gp_etcd_result_free(&res);
    return 0;
}

/* The snapshot's last 32 bytes (the SHA-256 of the database) in hex. */
static int s_trailer_hex(const char *path, char hex[65])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    unsigned char t[32];
    off_t end = lseek(fd, 0, SEEK_END);
    ssize_t n = end >= 32 ? pread(fd, t, sizeof t, end - 32) : -1;
    close(fd);
    if (n != (ssize_t)sizeof t)
        return -1;
    for (size_t i = 0; i < sizeof t; i++)
        snprintf(hex + 2 * i, 3, "%02x", t[i]);
    return 0;
}

static void s_rfc3339(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int s_backup(const char *file, const cli_etcd_flags_t *flags);

int cli_backup(int argc, char **argv)
{
    typedef struct {
        cli_etcd_flags_t etcd;
    } backup_args_t;
    static const gp_opt_t opts[] = { CLI_ETCD_OPTIONS(backup_args_t, etcd),
                                     { NULL, 0, 0, NULL, 0, 0, NULL } };
    static const char usage[] = "gpupool backup FILE [--etcd-endpoints URLS] [--etcd-ca F] "
                                "[--etcd-cert F] [--etcd-key F] [--etcd-user U] [--prefix P]";
    backup_args_t ba = { 0 };
    int rc = cli_args(opts, &ba, &argc, argv, usage);
    if (rc == 0 && argc != 2)
        rc = cli_fail(EX_USAGE, "usage: %s", usage);
    if (rc == 0)
        rc = s_backup(argv[1], &ba.etcd);
    gp_config_free(opts, &ba);
    return rc;
}

static int s_backup(const char *file, const cli_etcd_flags_t *flags)
{
    cli_etcd_opts_t eo;
    cli_etcd_opts_from(&eo, flags);
    if (!gp_prefix_valid(eo.prefix))
        return cli_fail(EX_USAGE, "backup: --prefix \"%s\" must start and end with '/'", eo.prefix);

    char tmp[4096], meta[4096], metatmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", file) >= (int)sizeof tmp ||
        snprintf(meta, sizeof meta, "%s.meta", file) >= (int)sizeof meta ||
        snprintf(metatmp, sizeof metatmp, "%s.meta.tmp", file) >= (int)sizeof metatmp)
        return cli_fail(EX_USAGE, "backup: the file name is too long");
    struct stat st;
    if (lstat(file, &st) == 0 || lstat(meta, &st) == 0)
        return cli_fail(EX_CANTCREAT, "backup: %s or %s exists; not overwriting it", file, meta);

    int rc = EX_UNAVAILABLE;
    int fd = -1;
    bool made_tmp = false;
    json_t *m = NULL, *keys = json_object(), *states = json_object();
    gp_err_t err;
    gp_etcd_t *etcd = cli_etcd_open(&eo, &err);
    int64_t before = 0, after = 0, bytes = 0;
    if (!etcd) {
        rc = cli_fail(EX_USAGE, "backup: %s", err.msg);
        goto cleanup;
    }
    if (s_current_revision(etcd, eo.prefix, &before, &err) < 0) {
        rc = cli_fail(EX_UNAVAILABLE, "backup: etcd: %s", err.msg);
        goto cleanup;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = cli_fail(EX_CANTCREAT, "backup: %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    made_tmp = true;
    if (gp_etcd_snapshot(etcd, fd, &bytes, &err) < 0) {
        rc = cli_fail(err.code == GP_ERR_IO ? EX_IOERR : EX_UNAVAILABLE, "backup: %s", err.msg);
        goto cleanup;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        fd = -1;
        rc = cli_fail(EX_IOERR, "backup: %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    fd = -1;
    if (s_current_revision(etcd, eo.prefix, &after, &err) < 0 ||
        s_census(etcd, eo.prefix, before, keys, states, &err) < 0) {
        rc = cli_fail(EX_UNAVAILABLE, "backup: etcd: %s", err.msg);
        goto cleanup;
    }
    char hex[65], when[32];
    int64_t now = gp_wall_ms();
    s_rfc3339(now, when, sizeof when);
    if (s_trailer_hex(tmp, hex) < 0) {
        rc = cli_fail(EX_IOERR, "backup: cannot read back %s", tmp);
        goto cleanup;
    }
    m = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:I, s:s, s:O, s:O}",
                  "format", META_FORMAT, "gpupool_version", GP_VERSION, "prefix", eo.prefix,
                  "time_ms", (json_int_t)now, "time", when, "endpoints", eo.endpoints,
                  "revision_before", (json_int_t)before, "revision_after", (json_int_t)after,
                  "bytes", (json_int_t)bytes, "db_sha256", hex, "keys", keys, "jobs_by_state", states);
    if (!m || json_dump_file(m, metatmp, JSON_INDENT(2) | JSON_SORT_KEYS) < 0) {
        unlink(metatmp);
        rc = cli_fail(EX_IOERR, "backup: cannot write %s", metatmp);
        goto cleanup;
    }
    /* the snapshot first: a FILE.meta never describes a missing FILE */
    if (link(tmp, file) < 0) {
        unlink(metatmp);
        rc = cli_fail(EX_CANTCREAT, "backup: %s: %s", file, strerror(errno));
        goto cleanup;
    }
    if (rename(metatmp, meta) < 0) {
        unlink(metatmp);
        unlink(file);
        rc = cli_fail(EX_CANTCREAT, "backup: %s: %s", meta, strerror(errno));
        goto cleanup;
    }
    printf("%s %" PRId64 " bytes, revision %" PRId64 "%s, %" PRId64 " jobs, %" PRId64
           " nodes, sha256 %s\n", file, bytes, before,
           after == before ? "" : " (writes went on during the snapshot)",
           (int64_t)json_integer_value(json_object_get(keys, "jobs")),
           (int64_t)json_integer_value(json_object_get(keys, "nodes")), hex);
    rc = 0;
cleanup:
    if (fd >= 0)
        close(fd);
    if (made_tmp)
        unlink(tmp);
    json_decref(m);
    json_decref(keys);
    json_decref(states);
    gp_etcd_destroy(&etcd);
    return rc;
}

static void s_print_counts(const char *title, json_t *obj)
{
    const char *k;
    json_t *v;
    printf("%-16s", title);
    if (json_object_size(obj) == 0)
        printf(" -");
    json_object_foreach(obj, k, v)
        printf(" %s=%" JSON_INTEGER_FORMAT, k, json_integer_value(v));
    putchar('\n');
}

int cli_restore_check(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-')
        return cli_fail(EX_USAGE, "usage: gpupool restore-check FILE");
    const char *file = argv[1];
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cli_fail(errno == ENOENT ? EX_NOINPUT : EX_IOERR, "restore-check: %s: %s", file,
                      strerror(errno));
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        close(fd);
        return cli_fail(EX_DATAERR, "restore-check: %s is not a regular file", file);
    }
    gp_err_t err;
    int64_t bytes = 0;
    int v = gp_etcd_snapshot_verify(fd, &bytes, &err);
    close(fd);
    if (v < 0)
        return cli_fail(EX_DATAERR, "restore-check: %s: %s", file, err.msg);
    char hex[65];
    if (s_trailer_hex(file, hex) < 0)
        return cli_fail(EX_IOERR, "restore-check: cannot read %s", file);

    char meta[4096];
    snprintf(meta, sizeof meta, "%s.meta", file);
    json_error_t jerr;
    json_t *m = json_load_file(meta, JSON_REJECT_DUPLICATES, &jerr);
    printf("snapshot         %s: %" PRId64 " bytes, SHA-256 trailer matches (%s)\n", file, bytes, hex);
    if (!m) {
        if (access(meta, F_OK) == 0)
            return cli_fail(EX_DATAERR, "restore-check: %s: %s (line %d)", meta, jerr.text, jerr.line);
        printf("metadata         none (%s missing): an etcd snapshot not made by gpupool backup\n",
               meta);
        return 0;
    }
    int rc = 0;
    const char *fmt = json_string_value(json_object_get(m, "format"));
    const char *sum = json_string_value(json_object_get(m, "db_sha256"));
    json_int_t mbytes = json_integer_value(json_object_get(m, "bytes"));
    if (!fmt || strcmp(fmt, META_FORMAT) != 0) {
        rc = cli_fail(EX_DATAERR, "restore-check: %s: format \"%s\", expected " META_FORMAT, meta,
                    fmt ? fmt : "");
    } else if (!sum || strcmp(sum, hex) != 0 || mbytes != bytes) {
        rc = cli_fail(EX_DATAERR, "restore-check: %s describes another snapshot (%" JSON_INTEGER_FORMAT
                    " bytes, sha256 %s)", meta, mbytes, sum ? sum : "none");
    } else {
        printf("taken            %s by gpupool %s from %s\n",
               json_string_value(json_object_get(m, "time")),
               json_string_value(json_object_get(m, "gpupool_version")),
               json_string_value(json_object_get(m, "endpoints")));
        json_int_t b = json_integer_value(json_object_get(m, "revision_before"));
        json_int_t a = json_integer_value(json_object_get(m, "revision_after"));
        printf("revision         %" JSON_INTEGER_FORMAT "%s\n", b,
               a == b ? "" : " (more writes came during the snapshot; counts are at this revision)");
        printf("prefix           %s\n", json_string_value(json_object_get(m, "prefix")));
        s_print_counts("keys", json_object_get(m, "keys"));
        s_print_counts("jobs by state", json_object_get(m, "jobs_by_state"));
    }
    json_decref(m);
    return rc;
}
