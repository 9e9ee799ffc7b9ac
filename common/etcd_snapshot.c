/*
 * etcd_snapshot.c - a member's backend streamed to a file, checked.
 *
 * etcd's maintenance API answers POST /v3/maintenance/snapshot with a stream
 * of JSON objects, one per line, each {"result": {"remaining_bytes": N,
 * "blob": base64}}: the member's bbolt database in chunks, followed by the
 * SHA-256 of the database as the last 32 bytes (what `etcdctl snapshot
 * restore` verifies).  The stream ends when the server closes it; etcd
 * 3.4's gateway omits remaining_bytes (newer ones count down to 0, which
 * JSON omits), so the end is judged by the trailer: the stream is whole
 * when the server closed it, no partial line is left, the last message
 * did not announce more bytes, and the digest matches.  Each complete line is decoded as it arrives and its bytes are
 * written through; the digest runs over everything but the newest 32 bytes,
 * held back until more arrive, so the trailer is known when the stream ends.
 * A stream that ends before its last message, a line that is not a
 * snapshot message, or a digest that does not match is an error: the caller
 * removes what was written.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "etcd_internal.h"
#include "util.h"
#include "banned.h"

#define S_MAX_LINE ((size_t)64 << 20)   /* one message: etcd sends 32 KiB chunks */

/* A SHA-256 over a stream but its newest 32 bytes, which are held back:
 * when the stream ends, they are the trailer to compare the digest with. */
typedef struct {
    EVP_MD_CTX *md;
    unsigned char tail[32];
    size_t tail_len;
} s_tailsum_t;

static int s_tailsum_init(s_tailsum_t *t)
{
    t->tail_len = 0;
    t->md = EVP_MD_CTX_new();
    return t->md && EVP_DigestInit_ex(t->md, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

static int s_tailsum_add(s_tailsum_t *t, const unsigned char *data, size_t len)
{
    size_t total = t->tail_len + len;
    if (total <= sizeof(t->tail)) {
        memcpy(t->tail + t->tail_len, data, len);
        t->tail_len = total;
        return 0;
    }
    /* digest the first total - 32 bytes of tail ++ data, keep the rest */
    size_t digest = total - sizeof(t->tail);
    size_t from_tail = digest < t->tail_len ? digest : t->tail_len;
    if (EVP_DigestUpdate(t->md, t->tail, from_tail) != 1 ||
        EVP_DigestUpdate(t->md, data, digest - from_tail) != 1)
        return -1;
    unsigned char keep[32];
    size_t kept = t->tail_len - from_tail;
    memcpy(keep, t->tail + from_tail, kept);
    memcpy(keep + kept, data + (digest - from_tail), sizeof(keep) - kept);
    memcpy(t->tail, keep, sizeof(keep));
    t->tail_len = sizeof(keep);
    return 0;
}

/* 0 when the digest of everything before the trailer is the trailer. */
static int s_tailsum_check(s_tailsum_t *t)
{
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (t->tail_len != 32 || EVP_DigestFinal_ex(t->md, sum, &len) != 1 || len != 32)
        return -1;
    return memcmp(sum, t->tail, 32) == 0 ? 0 : -1;
}

typedef struct {
    int fd;
    s_tailsum_t sum;
    gp_ebuf_t in;                  /* bytes of the current, incomplete line */
    int64_t bytes;
    int64_t remaining;             /* the last message's remaining_bytes */
    bool failed;
    gp_err_t err;
} s_snap_t;

static bool s_fail(s_snap_t *s, int code, const char *what)
{
    if (!s->failed)
        gp_err_set(&s->err, code, "snapshot: %s", what);
    s->failed = true;
    return false;
}

/* Write data through and digest it. */
static bool s_emit(s_snap_t *s, const unsigned char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(s->fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return s_fail(s, GP_ERR_IO, strerror(errno));
        off += (size_t)w;
    }
    s->bytes += (int64_t)len;
    if (s_tailsum_add(&s->sum, data, len) < 0)
        return s_fail(s, GP_ERR_IO, "SHA-256 failed");
    return true;
}

static bool s_line(s_snap_t *s, const char *line, size_t len)
{
    if (len == 0)
        return true;
    gp_err_t err;
    json_t *j = gp_etcd_json_load(line, len, &err);
    if (j == NULL)
        return s_fail(s, GP_ERR_PROTOCOL, err.msg);
    json_t *res = json_object_get(j, "result");
    json_t *error = json_object_get(j, "error");
    bool ok = false;
    int64_t remaining = 0;
    const char *blob = json_string_value(json_object_get(res, "blob"));
    char *raw = NULL;
    size_t raw_len = 0;
    if (error || !json_is_object(res)) {
        const char *msg = json_string_value(json_object_get(error, "message"));
        s_fail(s, GP_ERR_SERVER, msg ? msg : "a message that is not a snapshot chunk");
    } else if (gp_etcd_json_int64(res, "remaining_bytes", &remaining, &err) < 0 || remaining < 0) {
        s_fail(s, GP_ERR_PROTOCOL, "bad remaining_bytes");
    } else if (blob && gp_etcd_b64_decode(blob, strlen(blob), &raw, &raw_len) < 0) {
        s_fail(s, GP_ERR_PROTOCOL, "a chunk that is not base64");
    } else {
        ok = s_emit(s, (const unsigned char *)raw, raw_len);
        s->remaining = remaining;
    }
    free(raw);
    json_decref(j);
    return ok;
}

static bool s_on_data(gp_etcd_req_t *req, const char *data, size_t len)
{
    s_snap_t *s = req->owner;
    if (s->failed)
        return false;
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t part = nl ? (size_t)(nl - data) : len;
        if (s->in.len + part > S_MAX_LINE)
            return s_fail(s, GP_ERR_PROTOCOL, "a message over 64 MiB");
        if (gp_ebuf_add(&s->in, data, part) < 0)
            return s_fail(s, GP_ERR_NOMEM, "out of memory");
        if (!nl)
            break;
        bool ok = s_line(s, s->in.p, s->in.len);
        s->in.len = 0;
        if (!ok)
            return false;
        data += part + 1;
        len -= part + 1;
    }
    return true;
}

int gp_etcd_snapshot(gp_etcd_t *etcd, int fd, int64_t *bytes, gp_err_t *err)
{
    s_snap_t s = { .fd = fd };
    gp_etcd_req_t req;
    gp_etcd_req_init(&req, etcd, "/v3/maintenance/snapshot");
    int rc = -1;
    if (s_tailsum_init(&s.sum) < 0) {
        gp_err_set(err, GP_ERR_NOMEM, "snapshot: cannot start SHA-256");
        goto cleanup;
    }
    if (gp_ebuf_adds(&req.body, "{}") < 0) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if (gp_etcd_authenticate(etcd, false, err) < 0)
        goto cleanup;
    req.streaming = true;
    req.on_data = s_on_data;
    req.owner = &s;
    gp_etcd_req_t *rp = &req;
    if (gp_etcd_run_fg(etcd, &rp, 1, 1, err) < 0)
        goto cleanup;
    if (s.failed) {
        *err = s.err;
        goto cleanup;
    }
    /* The stream always "fails" when it ends; it succeeded when its last
     * message came and the digest matches. */
    if (!req.streamed_ok) {
        *err = req.err;
        goto cleanup;
    }
    if (s.remaining > 0 || s.in.len > 0) {
        gp_err_set(err, GP_ERR_TRANSPORT, "snapshot: the stream ended early after %lld bytes (%s)",
                   (long long)s.bytes, req.err.msg);
        goto cleanup;
    }
    if (s_tailsum_check(&s.sum) < 0) {
        gp_err_set(err, GP_ERR_PROTOCOL, "snapshot: its SHA-256 does not match (%lld bytes)",
                   (long long)s.bytes);
        goto cleanup;
    }
    if (bytes)
        *bytes = s.bytes;
    rc = 0;
cleanup:
    EVP_MD_CTX_free(s.sum.md);
    gp_ebuf_free(&s.in);
    gp_etcd_req_release(&req);
    return rc;
}

int gp_etcd_snapshot_verify(int fd, int64_t *bytes, gp_err_t *err)
{
    s_tailsum_t sum;
    unsigned char buf[65536];
    int64_t total = 0;
    int rc = -1;
    if (s_tailsum_init(&sum) < 0) {
        gp_err_set(err, GP_ERR_NOMEM, "cannot start SHA-256");
        goto cleanup;
    }
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            gp_err_errno(err, "read");
            goto cleanup;
        }
        if (n == 0)
            break;
        total += n;
        if (s_tailsum_add(&sum, buf, (size_t)n) < 0) {
            gp_err_set(err, GP_ERR_IO, "SHA-256 failed");
            goto cleanup;
        }
    }
    if (s_tailsum_check(&sum) < 0) {
        gp_err_set(err, GP_ERR_INVALID, "not an etcd snapshot, or a damaged one: its SHA-256 "
                   "trailer does not match its %lld bytes", (long long)total);
        goto cleanup;
    }
    if (bytes)
        *bytes = total;
    rc = 0;
cleanup:
    EVP_MD_CTX_free(sum.md);
    return rc;
}
