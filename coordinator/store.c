/*
 * store.c - keeping etcd bounded for months: compaction of its history,
 * retention of ended jobs, defragmentation, and the store-full (NOSPACE)
 * alarm.
 *
 * Compaction.  etcd keeps every revision of every key until told to forget
 * them.  The leader of the region whose name sorts first among the regions
 * that have a leader samples etcd's current revision every 10 s (a quarter
 * of the retention when that is shorter, 1/32 of it when that is longer)
 * and compacts the history to the newest sample taken at least
 * `compaction-retention` ago (default 5 min), at most once per sampling
 * period, and never past the revision its own cache reflects (the queue's
 * reconciliation reads at that revision).  So history younger than the
 * retention is always there: a watcher that fell behind by less resumes,
 * one that fell behind by more gets COMPACTED and re-lists (both daemons
 * do).  Two leaders that briefly both think they sort first compact twice;
 * compaction to a revision already compacted fails harmlessly.
 * `compaction-retention = 0` leaves it to etcd's own --auto-compaction-*
 * flags.
 *
 * Retention.  Every second, the leader of a region deletes the records of
 * that region's jobs that ended (succeeded, failed, cancelled, lost) longer
 * ago than their `ttl_after_finished_s` or, without one, `job-retention`
 * (default 1 h); and when more than `job-retention-max` ended jobs of the
 * region remain, the oldest beyond it.  Each deletion is a fenced
 * transaction (the leader key, the record's mod revision), at most 256 a
 * pass.  A pass runs in the background (the records read, then deleted:
 * the loop waits for neither); the next pass waits for it to end.  With `job-archive FILE`, each deleted record is first read and,
 * once deleted, appended to FILE as one JSON line (rotated to FILE.1 past
 * 64 MiB); `GET /v1/jobs/<id>` of a job no longer in etcd answers from the
 * archive with "archived": true.  A resubmission of a deleted job's id is
 * a new job.
 *
 * Defragmentation (off unless `defrag-threshold` is set).  Compaction and
 * deletions free pages inside etcd's backend file but never shrink it.
 * Every 10 s the leader that compacts asks each member, through a client of
 * that member alone, for its backend size and the part in use; when every
 * member answered (none is down) and one of them has more than
 * `defrag-threshold` of its backend unused (and at least 1 MiB), it
 * defragments that one member -- followers before the raft leader, never
 * two in one pass -- so that the cluster always has a quorum serving.
 *
 * The store-full alarm.  When etcd's backend reaches its quota, etcd raises
 * NOSPACE and refuses every write but deletions.  A write refused so marks
 * the store full: the coordinator logs it (once a minute while it lasts),
 * sets gpupool_coordinator_store_full, refuses submissions with 507, and
 * its leader opens no rounds.  Every 2 s it asks etcd whether the alarm is
 * still raised; once an operator cleared it (compact, defragment, disarm)
 * everything resumes by itself: rounds reopen and the queue is reconciled
 * at once.  Every 30 s, full or not, the backend's size and the part in use
 * are published as gauges.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "keys.h"
#include "log.h"
#include "txn.h"
#include "util.h"

#include "banned.h"

#define S_SAMPLE_MS      10000
#define S_SAMPLES        64          /* they cover twice compaction-retention */
#define S_RETAIN_EVERY   1000
#define S_RETAIN_BATCH   256
#define S_PROBE_MS       2000
#define S_STATUS_MS      30000
#define S_ARCHIVE_ROTATE (64LL << 20)

typedef struct {
    int64_t at_ms, revision;
} s_sample_t;

/* store.c's own state (coord_store_start .. coord_store_stop). */
struct coord_store {
    s_sample_t samples[S_SAMPLES];
    int nsamples;
    int64_t next_sample_ms, compacted_rev;
    int64_t next_retain_ms;
    /* a retention pass in flight: the records read, then the fenced deletions */
    gp_etcd_batch_t *reads, *dels;
    char (*ids)[GP_NAME_LEN];
    int nids;
    int *idx;                     /* ids[i] -> its deletion in dels, or -1 */
    coord_t *c;
    int full;
    int64_t full_logged_ms, next_probe_ms, next_status_ms;
    int64_t next_defrag_ms;
    int have_status;              /* the member's sizes below were read */
    int64_t db_bytes, db_in_use_bytes;
};

/* ---------------------------------------------------------------- compaction */

static void s_compact(coord_t *c, int64_t now)
{
    coord_store_t *self = c->store;
    if (now < self->next_sample_ms || c->cfg.compaction_retention_ms <= 0)
        return;
    /* Short retentions sample faster; long ones slower, so that the samples
     * always reach twice the retention back. */
    int64_t r = c->cfg.compaction_retention_ms, period = r / 4 < S_SAMPLE_MS ? r / 4 : S_SAMPLE_MS;
    if (period < r / (S_SAMPLES / 2))
        period = r / (S_SAMPLES / 2);
    self->next_sample_ms = now + (period > 0 ? period : 1);
    if (!coord_is_first_leader(c))
        return;
    /* etcd's current revision: what the cluster wrote, in the pool's keys or not. */
    char key[GP_KEY_MAX];
    gp_etcd_result_t res;
    gp_err_t err;
    if (gp_etcd_get(c->etcd, gp_key_leader(key, c->cfg.prefix, c->cfg.region), GP_ETCD_KEYS_ONLY,
                    &res, &err) < 0) {
        coord_metrics_etcd_error(&c->m, "compact", &err);
        return;
    }
    int64_t current = res.revision;
    gp_etcd_result_free(&res);
    if (self->nsamples == S_SAMPLES) {
        memmove(&self->samples[0], &self->samples[1], sizeof self->samples[0] * (S_SAMPLES - 1));
        self->nsamples--;
    }
    self->samples[self->nsamples++] = (s_sample_t){ now, current };
    int64_t target = 0;
    for (int i = 0; i < self->nsamples; i++)
        if (now - self->samples[i].at_ms >= c->cfg.compaction_retention_ms)
            target = self->samples[i].revision;
    if (target > coord_cache_revision(c))
        target = coord_cache_revision(c);   /* never past what our own cache (and its re-reads) needs */
    if (target <= self->compacted_rev)
        return;
    if (gp_etcd_compact(c->etcd, target, &err) < 0 && err.code != GP_ERR_COMPACTED) {
        coord_metrics_etcd_error(&c->m, "compact", &err);
        gp_log_warn("compaction failed revision=%lld err=\"%s\"", (long long)target, err.msg);
        return;
    }
    self->compacted_rev = target;
    gp_log_info("compacted etcd's history revision=%lld", (long long)target);
    gp_metric_inc(c->m.compactions);
}

/* ---------------------------------------------------------------- retention */

typedef struct {
    coord_job_t *j;
    int64_t ended_ms;
} s_ended_t;

static int s_cmp_ended(const void *a, const void *b)
{
    const s_ended_t *x = a, *y = b;
    return (x->ended_ms > y->ended_ms) - (x->ended_ms < y->ended_ms);
}

void coord_store_archive(coord_t *c, const char *text, size_t len)
{
    const char *path = c->cfg.job_archive;
    struct stat sb;
    if (stat(path, &sb) == 0 && sb.st_size > S_ARCHIVE_ROTATE) {
        char old[4096];
        snprintf(old, sizeof old, "%s.1", path);
        if (rename(path, old) < 0)
            gp_log_warn("cannot rotate the job archive %s: %s", path, strerror(errno));
    }
    FILE *f = fopen(path, "a");
    if (f == NULL || fwrite(text, 1, len, f) != len || fputc('\n', f) == EOF) {
        gp_log_warn("cannot append to the job archive %s: %s", path, strerror(errno));
        gp_metric_inc(c->m.archive_errors);
    }
    if (f)
        fclose(f);
}

/* The end of a retention pass (or its cancellation at stop): what it
 * holds is released; a write in flight may still land. */
static void s_retain_end(coord_store_t *self)
{
    gp_etcd_batch_destroy(&self->reads);
    gp_etcd_batch_destroy(&self->dels);
    free(self->ids);
    free(self->idx);
    self->ids = NULL;
    self->idx = NULL;
    self->nids = 0;
}

/* The deletions landed: count them, archive what they removed. */
static void s_retain_deleted(gp_etcd_batch_t *b, void *arg)
{
    (void)b;
    coord_store_t *self = arg;
    coord_t *c = self->c;
    int deleted = 0;
    for (int i = 0; i < self->nids; i++) {
        const gp_etcd_result_t *res, *rd;
        gp_err_t err;
        if (self->idx[i] < 0 || gp_etcd_batch_result(self->dels, (size_t)self->idx[i], &res, &err) < 0 ||
            !res->succeeded)
            continue;
        deleted++;
        if (c->cfg.job_archive[0] &&
            gp_etcd_batch_result(self->reads, (size_t)i, &rd, NULL) == 0 && rd->n_kvs == 1)
            coord_store_archive(c, rd->kvs[0].value, rd->kvs[0].value_len);
    }
    if (deleted > 0) {
        gp_log_info("ended jobs removed from the store count=%d archived=%s", deleted,
                    c->cfg.job_archive[0] ? "yes" : "no");
        gp_metric_add(c->m.jobs_removed, deleted);
    }
    s_retain_end(self);
}

/* The records were read: delete each, fenced on the leader key and on the
 * record's revision as read (a record rewritten meanwhile stays). */
static void s_retain_read(gp_etcd_batch_t *b, void *arg)
{
    coord_store_t *self = arg;
    coord_t *c = self->c;
    char key[GP_KEY_MAX];
    gp_err_t err;
    if (!coord_is_leader(c) || (self->idx = calloc(S_RETAIN_BATCH, sizeof *self->idx)) == NULL ||
        (self->dels = gp_etcd_batch_new(c->etcd)) == NULL) {
        s_retain_end(self);
        return;
    }
    bool failed = false;
    for (int i = 0; i < self->nids; i++) {
        const gp_etcd_result_t *res;
        self->idx[i] = -1;
        if (gp_etcd_batch_result(b, (size_t)i, &res, &err) < 0) {
            failed = true;
            continue;
        }
        if (res->n_kvs != 1)
            continue;
        gp_txnb_t *t = gp_txnb_new();
        if (t == NULL)
            break;
        coord_txn_fence(t, c);
        gp_txnb_cmp(t, gp_key_job(key, c->cfg.prefix, self->ids[i]), GP_ETCD_CMP_MOD,
                    res->kvs[0].mod_revision);
        gp_txnb_del(t, key);
        self->idx[i] = gp_txnb_add(t, self->dels, NULL);
        gp_txnb_destroy(&t);
    }
    if (failed)
        coord_metrics_etcd_error(&c->m, "retention", &err);
    if (gp_etcd_batch_size(self->dels) == 0 ||
        gp_etcd_batch_start(self->dels, 64, s_retain_deleted, self, &err) < 0)
        s_retain_end(self);
}

static void s_retain(coord_t *c, int64_t now)
{
    coord_store_t *self = c->store;
    if (now < self->next_retain_ms || !coord_is_leader(c) || self->full || self->ids)
        return;   /* (a pass still in flight: the next one waits for it) */
    self->next_retain_ms = now + S_RETAIN_EVERY;
    size_t cap = coord_cache_count(c, COORD_ENDED) + 1, n = 0;
    s_ended_t *ended = malloc(cap * sizeof *ended);
    if (ended == NULL)
        return;
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_ENDED); it.key;
         it = coord_cache_next(c, it)) {
        coord_job_t *j = it.value;
        ended[n++] = (s_ended_t){ j, j->updated_ms };
    }
    qsort(ended, n, sizeof *ended, s_cmp_ended);
    int64_t wall = gp_wall_ms();
    size_t over = n > (size_t)c->cfg.job_retention_max ? n - (size_t)c->cfg.job_retention_max : 0;
    char (*ids)[GP_NAME_LEN] = calloc(S_RETAIN_BATCH, GP_NAME_LEN);
    int nids = 0;
    for (size_t i = 0; ids && i < n && nids < S_RETAIN_BATCH; i++) {
        coord_job_t *j = ended[i].j;
        int64_t keep = j->ttl_after_finished_ms >= 0 ? j->ttl_after_finished_ms
                                                     : c->cfg.job_retention_ms;
        if (i >= over && wall - ended[i].ended_ms < keep)
            continue;
        gp_strlcpy(ids[nids++], j->id, GP_NAME_LEN);
    }
    free(ended);
    if (nids == 0) {
        free(ids);
        return;
    }
    self->ids = ids;
    self->nids = nids;
    self->c = c;
    if ((self->reads = gp_etcd_batch_new(c->etcd)) == NULL) {
        s_retain_end(self);
        return;
    }
    char key[GP_KEY_MAX];
    for (int i = 0; i < nids; i++) {
        gp_etcd_op_t op = { .type = GP_ETCD_OP_RANGE, .key = gp_key_job(key, c->cfg.prefix, ids[i]) };
        gp_etcd_batch_add(self->reads, &op, NULL);
    }
    gp_err_t err;
    if (gp_etcd_batch_start(self->reads, 64, s_retain_read, self, &err) < 0) {
        coord_metrics_etcd_error(&c->m, "retention", &err);
        s_retain_end(self);
    }
}

json_t *coord_store_archived(coord_t *c, const char *id)
{
    if (c->cfg.job_archive[0] == '\0')
        return NULL;
    char want[GP_NAME_LEN + 16];
    snprintf(want, sizeof want, "\"id\":\"%s\"", id);
    json_t *found = NULL;
    for (int k = 0; k < 2 && found == NULL; k++) {
        char path[4096];
        snprintf(path, sizeof path, k == 0 ? "%s" : "%s.1", c->cfg.job_archive);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, f) > 0) {
            if (strstr(line, want) == NULL)
                continue;
            json_t *rec = json_loads(line, 0, NULL);
            const char *rid = rec ? json_string_value(json_object_get(rec, "id")) : NULL;
            if (rid && !strcmp(rid, id)) {
                json_decref(found);   /* the last line wins: a later life of the id */
                found = rec;
            } else {
                json_decref(rec);
            }
        }
        free(line);
        fclose(f);
    }
    if (found)
        json_object_set_new(found, "archived", json_true());
    return found;
}

/* ---------------------------------------------------------------- defragmentation */

#define S_DEFRAG_EVERY_MS 10000
#define S_DEFRAG_MIN_FREE (1LL << 20)
#define S_MAX_MEMBERS     16

static void s_defrag(coord_t *c, int64_t now)
{
    coord_store_t *self = c->store;
    if (c->cfg.defrag_threshold <= 0 || now < self->next_defrag_ms || !coord_is_first_leader(c))
        return;
    self->next_defrag_ms = now + S_DEFRAG_EVERY_MS;
    char *list = strdup(c->cfg.etcd_endpoints), *save = NULL;
    gp_etcd_t *member[S_MAX_MEMBERS] = { 0 };
    gp_etcd_store_status_t st[S_MAX_MEMBERS];
    char name[S_MAX_MEMBERS][256];
    int n = 0, answered = 0, pick = -1;
    for (char *ep = list ? strtok_r(list, ",", &save) : NULL; ep && n < S_MAX_MEMBERS;
         ep = strtok_r(NULL, ",", &save)) {
        gp_strlcpy(name[n], ep, sizeof name[n]);
        member[n] = coord_etcd_new(c, ep, NULL);
        answered += member[n] && gp_etcd_store_status(member[n], &st[n], NULL) == 0;
        n++;
    }
    free(list);
    if (answered == n) {
        /* The member with the most unused space, followers before the leader. */
        double best = c->cfg.defrag_threshold;
        for (int pass = 0; pass < 2 && pick < 0; pass++) {
            for (int i = 0; i < n; i++) {
                int64_t unused = st[i].db_bytes - st[i].db_in_use_bytes;
                double frac = st[i].db_bytes > 0 ? (double)unused / (double)st[i].db_bytes : 0;
                if (st[i].is_leader != (pass == 1) || unused < S_DEFRAG_MIN_FREE || frac <= best)
                    continue;
                best = frac;
                pick = i;
            }
        }
    }
    if (pick >= 0) {
        gp_err_t err;
        int64_t t0 = gp_mono_ms();
        if (gp_etcd_defragment(member[pick], &err) < 0) {
            coord_metrics_etcd_error(&c->m, "defragment", &err);
            gp_log_warn("defragmentation failed member=%s err=\"%s\"", name[pick], err.msg);
        } else {
            gp_log_info("defragmented an etcd member member=%s before_bytes=%lld in_use_bytes=%lld "
                        "took_ms=%lld", name[pick], (long long)st[pick].db_bytes,
                        (long long)st[pick].db_in_use_bytes, (long long)(gp_mono_ms() - t0));
            gp_metric_inc(c->m.defragmentations);
        }
    }
    for (int i = 0; i < n; i++)
        gp_etcd_destroy(&member[i]);
}

/* ---------------------------------------------------------------- the alarm */

static void s_set_full(coord_t *c, int full)
{
    coord_store_t *self = c->store;
    self->full = full;
    gp_metric_set(c->m.store_full, full);
}

void coord_store_write_failed(coord_t *c, const gp_err_t *err)
{
    coord_store_t *self = c->store;
    if (self == NULL || err == NULL || err->code != GP_ERR_NOSPACE || self->full)
        return;
    s_set_full(c, 1);
    self->full_logged_ms = gp_mono_ms();
    self->next_probe_ms = self->full_logged_ms + S_PROBE_MS;
    gp_log_warn("store full: etcd refuses writes (NOSPACE alarm); submissions are refused and "
                "no round opens until it clears err=\"%s\"", err->msg);
}

int coord_store_full(coord_t *c)
{
    return c->store && c->store->full;
}

int coord_store_start(coord_t *c, gp_err_t *err)
{
    if (c->store == NULL && (c->store = calloc(1, sizeof *c->store)) == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    return 0;
}

void coord_store_stop(coord_t *c)
{
    if (c->store)
        s_retain_end(c->store);
    free(c->store);
    c->store = NULL;
}

static void s_status(coord_t *c, int64_t now)
{
    coord_store_t *self = c->store;
    if (now < self->next_status_ms && !(self->full && now >= self->next_probe_ms))
        return;
    gp_etcd_store_status_t st;
    gp_err_t err;
    if (gp_etcd_store_status(c->etcd, &st, &err) < 0) {
        coord_metrics_etcd_error(&c->m, "status", &err);
        self->next_probe_ms = now + S_PROBE_MS;
        return;
    }
    self->next_status_ms = now + S_STATUS_MS;
    self->next_probe_ms = now + S_PROBE_MS;
    self->have_status = 1;
    self->db_bytes = st.db_bytes;
    self->db_in_use_bytes = st.db_in_use_bytes;
    if (self->full && !st.nospace) {
        s_set_full(c, 0);
        gp_log_info("store writable again: etcd's NOSPACE alarm is cleared");
        coord_round_kick(c);
        coord_recovery_reconcile_soon(c);
    } else if (self->full && now - self->full_logged_ms >= 60000) {
        self->full_logged_ms = now;
        gp_log_warn("store still full: etcd's NOSPACE alarm is raised (compact, defragment, "
                    "then `etcdctl alarm disarm`)");
    }
}

void coord_store_metrics(coord_t *c)
{
    coord_store_t *self = c->store;
    if (self && self->have_status && coord_is_first_leader(c)) {
        gp_metric_set(coord_metrics_gauge(&c->m, COORD_GAUGE_DB_BYTES, NULL),
                      (double)self->db_bytes);
        gp_metric_set(coord_metrics_gauge(&c->m, COORD_GAUGE_DB_IN_USE_BYTES, NULL),
                      (double)self->db_in_use_bytes);
    } else {
        coord_metrics_drop(&c->m, COORD_GAUGE_DB_BYTES);
        coord_metrics_drop(&c->m, COORD_GAUGE_DB_IN_USE_BYTES);
    }
}

void coord_store_tick(coord_t *c)
{
    if (c->store == NULL)
        return;
    int64_t now = gp_mono_ms();
    s_status(c, now);
    s_compact(c, now);
    s_defrag(c, now);
    s_retain(c, now);
}
