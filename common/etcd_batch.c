/*
 * etcd_batch.c - many independent operations in flight at once.
 *
 * Each queued op is encoded into its request body when it is added, so that
 * the run itself only moves bytes: gp_etcd_batch_run hands the requests to
 * the engine's fg multi with up to max_inflight attached at a time, and each
 * answer is parsed (strictly) as it completes, which overlaps parsing with
 * the server's work on the others.  A batch keeps its request buffers across
 * gp_etcd_batch_reset(), so a coordinator that commits batch after batch
 * does not allocate per op in the steady state.
 *
 * A batch also runs in the background (gp_etcd_batch_start): its requests
 * go to the loop's bg multi, max_inflight at a time (each completion
 * attaches the next queued one), and the owner's callback runs from
 * gp_etcd_step once the last one has its outcome, so that a daemon's loop
 * keeps serving while many writes are in flight.  Destroying a running
 * batch cancels what is still in flight (no callback).
 */
#include <stdlib.h>
#include <string.h>

#include "etcd_internal.h"
#include "util.h"
#include "banned.h"

enum { S_QUEUED = 0, S_OK, S_FAILED };

typedef struct {
    gp_etcd_op_type_t type;
    int state;
    gp_err_t err;
    gp_etcd_result_t res;
    /* txn: the op types of both branches, to check the responses */
    unsigned char *types;
    size_t n_success, n_failure, cap_types;
} s_slot_t;

struct gp_etcd_batch {
    gp_etcd_t *etcd;
    gp_etcd_req_t *reqs;
    s_slot_t *slots;
    size_t n, cap;
    size_t n_run;            /* ops [0, n_run) have been run */
    size_t cap_init;         /* reqs [0, cap_init) are initialised */
    /* background run */
    bool running;
    size_t bg_next;          /* next op to attach */
    size_t bg_left;          /* ops without an outcome yet */
    int bg_inflight, bg_max;
    gp_etcd_batch_done_fn *bg_done;
    void *bg_arg;
};

gp_etcd_batch_t *gp_etcd_batch_new(gp_etcd_t *etcd)
{
    gp_etcd_batch_t *b = calloc(1, sizeof(*b));
    if (b)
        b->etcd = etcd;
    return b;
}

static int s_grow(gp_etcd_batch_t *b, gp_err_t *err)
{
    if (b->n < b->cap)
        return 0;
    size_t cap = b->cap ? b->cap * 2 : 64;
    gp_etcd_req_t *r = realloc(b->reqs, sizeof(*r) * cap);
    if (!r)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    b->reqs = r;
    s_slot_t *s = realloc(b->slots, sizeof(*s) * cap);
    if (!s)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    memset(s + b->cap, 0, sizeof(*s) * (cap - b->cap));
    b->slots = s;
    b->cap = cap;
    return 0;
}

static void s_done(gp_etcd_req_t *req);

/* Start slot n (returns its request, body emptied but buffer kept). */
static gp_etcd_req_t *s_slot_begin(gp_etcd_batch_t *b, gp_etcd_op_type_t type, gp_err_t *err)
{
    if (b->running) {   /* its requests are in flight: they must not move */
        gp_err_set(err, GP_ERR_INVALID, "etcd batch is running in the background");
        return NULL;
    }
    if (s_grow(b, err) < 0)
        return NULL;
    gp_etcd_req_t *req = &b->reqs[b->n];
    if (b->n >= b->cap_init) {
        gp_etcd_req_init(req, b->etcd, NULL);
        b->cap_init = b->n + 1;
    }
    gp_ebuf_t body = req->body, resp = req->resp;
    gp_etcd_req_init(req, b->etcd, gp_etcd_op_path(type));
    req->body = body;
    req->resp = resp;
    req->body.len = 0;
    req->resp.len = 0;
    req->idempotent = type == GP_ETCD_OP_RANGE || type == GP_ETCD_OP_PUT;   /* as in etcd.c */
    req->owner = b;
    req->index = b->n;
    req->done = s_done;
    s_slot_t *s = &b->slots[b->n];
    s->type = type;
    s->state = S_QUEUED;
    s->n_success = s->n_failure = 0;
    memset(&s->res, 0, sizeof(s->res));
    gp_err_clear(&s->err);
    return req;
}

int gp_etcd_batch_add(gp_etcd_batch_t *b, const gp_etcd_op_t *op, gp_err_t *err)
{
    if (!op || (unsigned)op->type > GP_ETCD_OP_DELETE)
        return gp_err_set(err, GP_ERR_INVALID, "etcd batch op must be a put, range or delete");
    gp_etcd_req_t *req = s_slot_begin(b, op->type, err);
    if (!req || gp_etcd_json_op(&req->body, op, err) < 0)
        return -1;
    return (int)b->n++;
}

int gp_etcd_batch_add_txn(gp_etcd_batch_t *b, const gp_etcd_txn_t *txn, gp_err_t *err)
{
    if (!txn)
        return gp_err_set(err, GP_ERR_INVALID, "NULL etcd txn");
    gp_etcd_req_t *req = s_slot_begin(b, GP_ETCD_OP_TXN, err);
    if (!req || gp_etcd_json_txn(&req->body, txn, err) < 0)
        return -1;
    s_slot_t *s = &b->slots[b->n];
    size_t need = txn->n_success + txn->n_failure;
    if (need > s->cap_types) {
        unsigned char *t = realloc(s->types, need);
        if (!t)
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        s->types = t;
        s->cap_types = need;
    }
    for (size_t i = 0; i < txn->n_success; i++)
        s->types[i] = (unsigned char)txn->success[i].type;
    for (size_t i = 0; i < txn->n_failure; i++)
        s->types[txn->n_success + i] = (unsigned char)txn->failure[i].type;
    s->n_success = txn->n_success;
    s->n_failure = txn->n_failure;
    return (int)b->n++;
}

size_t gp_etcd_batch_size(const gp_etcd_batch_t *b)
{
    return b->n;
}

static int s_check_txn(const s_slot_t *s, const gp_etcd_result_t *r, gp_err_t *err)
{
    size_t n = r->succeeded ? s->n_success : s->n_failure;
    const unsigned char *t = s->types + (r->succeeded ? 0 : s->n_success);
    if (r->n_responses != n)
        return gp_err_set(err, GP_ERR_PROTOCOL, "etcd txn answered %zu responses for %zu ops",
                          r->n_responses, n);
    for (size_t i = 0; i < n; i++)
        if ((unsigned)r->responses[i].type != t[i])
            return gp_err_set(err, GP_ERR_PROTOCOL, "etcd txn response %zu does not match its op", i);
    return 0;
}

static void s_done(gp_etcd_req_t *req)
{
    gp_etcd_batch_t *b = req->owner;
    s_slot_t *s = &b->slots[req->index];
    if (req->failed) {
        s->err = req->err;
        s->state = S_FAILED;
        return;
    }
    gp_etcd_result_t r;
    if (gp_etcd_parse_result(req->resp.p, req->resp.len, s->type, &r, &s->err) < 0) {
        s->state = S_FAILED;
        return;
    }
    if (s->type == GP_ETCD_OP_TXN && s_check_txn(s, &r, &s->err) < 0) {
        gp_etcd_result_free(&r);
        s->state = S_FAILED;
        return;
    }
    s->res = r;
    s->state = S_OK;
}

/* Background: attach queued ops while the window has room; an op that
 * cannot be attached fails at once.  Returns whether the batch finished. */
static bool s_bg_fill(gp_etcd_batch_t *b)
{
    while (b->bg_inflight < b->bg_max && b->bg_next < b->n) {
        size_t i = b->bg_next++;
        gp_etcd_req_t *req = &b->reqs[i];
        gp_err_t err;
        if (gp_etcd_bg_start(b->etcd, req, &err) < 0) {
            gp_etcd_req_release_easy(req);
            b->slots[i].err = err;
            b->slots[i].state = S_FAILED;
            b->bg_left--;
            continue;
        }
        b->bg_inflight++;
    }
    return b->bg_left == 0;
}

static void s_bg_req_done(gp_etcd_req_t *req)
{
    gp_etcd_batch_t *b = req->owner;
    s_done(req);
    b->bg_inflight--;
    b->bg_left--;
    if (!s_bg_fill(b))
        return;
    b->running = false;
    b->n_run = b->n;
    b->bg_done(b, b->bg_arg);   /* last: it may destroy the batch */
}

int gp_etcd_batch_start(gp_etcd_batch_t *b, int max_inflight, gp_etcd_batch_done_fn *done,
                        void *arg, gp_err_t *err)
{
    if (b->running || done == NULL)
        return gp_err_set(err, GP_ERR_INVALID, "etcd batch already running, or no callback");
    if (b->n == b->n_run)
        return gp_err_set(err, GP_ERR_INVALID, "etcd batch has nothing to run");
    if (gp_etcd_authenticate(b->etcd, false, err) < 0)
        return -1;
    b->bg_next = b->n_run;
    b->bg_left = b->n - b->n_run;
    b->bg_inflight = 0;
    b->bg_max = max_inflight < 1 ? 1 : max_inflight;
    b->bg_done = done;
    b->bg_arg = arg;
    for (size_t i = b->n_run; i < b->n; i++)
        b->reqs[i].done = s_bg_req_done;
    if (s_bg_fill(b)) {
        /* nothing could be attached: fail here, not from a callback */
        b->n_run = b->n;
        for (size_t i = 0; i < b->n; i++)
            b->reqs[i].done = s_done;
        if (err)
            *err = b->slots[b->n - 1].err;
        return -1;
    }
    b->running = true;
    gp_etcd_loop_wake(b->etcd);
    return 0;
}

bool gp_etcd_batch_running(const gp_etcd_batch_t *b)
{
    return b && b->running;
}

int gp_etcd_batch_run(gp_etcd_batch_t *b, int max_inflight, gp_err_t *err)
{
    if (b->running)
        return gp_err_set(err, GP_ERR_INVALID, "etcd batch is running in the background");
    size_t n = b->n - b->n_run;
    if (n == 0)
        return 0;
    if (gp_etcd_authenticate(b->etcd, false, err) < 0) {
        for (size_t i = b->n_run; i < b->n; i++) {
            b->slots[i].state = S_FAILED;
            b->slots[i].err = err ? *err : b->slots[i].err;
        }
        b->n_run = b->n;
        return -1;
    }
    gp_etcd_req_t **ptrs = malloc(sizeof(*ptrs) * n);
    if (!ptrs)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &b->reqs[b->n_run + i];
    int rc = gp_etcd_run_fg(b->etcd, ptrs, n, max_inflight, err);
    free(ptrs);
    size_t first = b->n_run;
    b->n_run = b->n;
    if (rc < 0)
        return -1;
    for (size_t i = first; i < b->n; i++) {
        if (b->slots[i].state != S_OK) {
            if (err)
                *err = b->slots[i].err;
            return -1;
        }
    }
    return 0;
}

int gp_etcd_batch_result(gp_etcd_batch_t *b, size_t i, const gp_etcd_result_t **res_p, gp_err_t *err)
{
    if (i >= b->n)
        return gp_err_set(err, GP_ERR_INVALID, "etcd batch has no op %zu", i);
    s_slot_t *s = &b->slots[i];
    if (s->state == S_QUEUED || b->running)
        return gp_err_set(err, GP_ERR_INVALID, "etcd batch op %zu has not run", i);
    if (s->state == S_FAILED) {
        if (err)
            *err = s->err;
        return -1;
    }
    *res_p = &s->res;
    return 0;
}

/* Cancel what a background run still has in flight (no callback). */
static void s_bg_cancel(gp_etcd_batch_t *b)
{
    if (!b->running)
        return;
    for (size_t i = b->n_run; i < b->bg_next; i++)
        gp_etcd_bg_cancel(b->etcd, &b->reqs[i]);
    b->running = false;
}

void gp_etcd_batch_reset(gp_etcd_batch_t *b)
{
    s_bg_cancel(b);
    for (size_t i = 0; i < b->n; i++)
        gp_etcd_result_free(&b->slots[i].res);
    b->n = 0;
    b->n_run = 0;
}

void gp_etcd_batch_destroy(gp_etcd_batch_t **b_p)
{
    gp_etcd_batch_t *b = b_p ? *b_p : NULL;
    if (!b)
        return;
    gp_etcd_batch_reset(b);
    for (size_t i = 0; i < b->cap_init; i++)
        gp_etcd_req_release(&b->reqs[i]);
    for (size_t i = 0; i < b->cap; i++)
        free(b->slots[i].types);
    free(b->reqs);
    free(b->slots);
    free(b);
    *b_p = NULL;
}
