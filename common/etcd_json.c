/*
 * etcd_json.c - the wire format of etcd's v3 JSON gateway.
 *
 * Request bodies are written directly into a buffer (no JSON tree): keys and
 * values base64-encoded, int64 as JSON numbers, enums as their names.
 *
 * The usual answers are scanned in place, without a JSON tree (the fast
 * path at the end: it was a large part of a daemon's CPU under load);
 * whatever it does not recognize is parsed again with jansson, which checks
 * it as described here.  (Watches do not use the gateway: etcd_watch.c.)
 *
 * Responses are parsed with jansson and checked strictly: every field the
 * client uses must have the type the gateway gives it (int64 fields arrive
 * as strings, and numbers are accepted too; absent means 0/false/empty as in
 * proto3), byte fields must be valid base64, and anything else - truncated
 * bodies, trailing data, a number where an object belongs - is
 * GP_ERR_PROTOCOL, never a crash.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_internal.h"
#include "jscan.h"
#include "util.h"
#include "banned.h"

/* ------------------------------------------------------------ base64 */

static const char s_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int gp_etcd_b64_encode(gp_ebuf_t *b, const void *data, size_t len)
{
    const unsigned char *in = data;
    if (gp_ebuf_reserve(b, (len + 2) / 3 * 4) < 0)
        return -1;
    char *o = b->p + b->len;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = s_b64[v >> 18];
        *o++ = s_b64[(v >> 12) & 63];
        *o++ = s_b64[(v >> 6) & 63];
        *o++ = s_b64[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *o++ = s_b64[v >> 18];
        *o++ = s_b64[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *o++ = s_b64[v >> 18];
        *o++ = s_b64[(v >> 12) & 63];
        *o++ = s_b64[(v >> 6) & 63];
        *o++ = '=';
    }
    b->len = (size_t)(o - b->p);
    b->p[b->len] = '\0';
    return 0;
}

static int s_b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int gp_etcd_b64_decode(const char *s, size_t slen, char **out, size_t *out_len)
{
    if (slen % 4 != 0)
        return -1;
    size_t pad = 0;
    if (slen >= 1 && s[slen - 1] == '=') pad++;
    if (slen >= 2 && s[slen - 2] == '=') pad++;
    size_t n = slen / 4 * 3 - pad;
    char *buf = malloc(n + 1);
    if (!buf)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < slen; i += 4) {
        int v[4];
        for (int j = 0; j < 4; j++) {
            unsigned char c = (unsigned char)s[i + j];
            if (c == '=' && i + 4 == slen && j >= 4 - (int)pad) {
                v[j] = 0;
                continue;
            }
            v[j] = s_b64_val(c);
            if (v[j] < 0) {
                free(buf);
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        unsigned char bytes[3] = { (unsigned char)(w >> 16), (unsigned char)(w >> 8), (unsigned char)w };
        for (int j = 0; j < 3 && o < n; j++)
            buf[o++] = (char)bytes[j];
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
}

/* ------------------------------------------------------------ requests */

const char *gp_etcd_op_path(gp_etcd_op_type_t type)
{
    switch (type) {
    case GP_ETCD_OP_RANGE: return "/v3/kv/range";
    case GP_ETCD_OP_PUT: return "/v3/kv/put";
    case GP_ETCD_OP_DELETE: return "/v3/kv/deleterange";
    case GP_ETCD_OP_TXN: return "/v3/kv/txn";
    }
    return NULL;
}

size_t gp_etcd_prefix_end(const char *prefix, size_t prefix_len, char *out)
{
    size_t n = prefix_len;
    while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
        n--;
    if (n == 0) {
        out[0] = '\0';
        return 1;
    }
    memcpy(out, prefix, n);
    out[n - 1] = (char)((unsigned char)out[n - 1] + 1);
    return n;
}

static int s_add_bytes_field(gp_ebuf_t *b, const char *name, const void *data, size_t len)
{
    if (gp_ebuf_addf(b, "\"%s\":\"", name) < 0 || gp_etcd_b64_encode(b, data, len) < 0 ||
        gp_ebuf_add(b, "\"", 1) < 0)
        return -1;
    return 0;
}

/* key, and range_end from an explicit end, a prefix or FROM_KEY. */
static int s_add_key_range(gp_ebuf_t *b, const char *key, size_t key_len, const char *range_end,
                           size_t range_end_len, unsigned flags, bool ranged)
{
    if (s_add_bytes_field(b, "key", key, key_len) < 0)
        return -1;
    if (!ranged)
        return 0;
    if (range_end) {
        if (!range_end_len)
            range_end_len = strlen(range_end);
        return gp_ebuf_add(b, ",", 1) < 0 ? -1 : s_add_bytes_field(b, "range_end", range_end, range_end_len);
    }
    if (flags & GP_ETCD_FROM_KEY)
        return gp_ebuf_adds(b, ",\"range_end\":\"AA==\"");
    if (flags & GP_ETCD_PREFIX) {
        char *end = malloc(key_len + 1);
        if (!end)
            return -1;
        size_t n = gp_etcd_prefix_end(key, key_len, end);
        int rc = gp_ebuf_add(b, ",", 1) < 0 ? -1 : s_add_bytes_field(b, "range_end", end, n);
        free(end);
        return rc;
    }
    return 0;
}

static const char *const s_sort_order[] = { "NONE", "ASCEND", "DESCEND" };
static const char *const s_sort_target[] = { "KEY", "VERSION", "CREATE", "MOD", "VALUE" };
static const char *const s_cmp_target[] = { "VERSION", "CREATE", "MOD", "VALUE", "LEASE" };
static const char *const s_cmp_result[] = { "EQUAL", "GREATER", "LESS", "NOT_EQUAL" };

int gp_etcd_json_op(gp_ebuf_t *b, const gp_etcd_op_t *op, gp_err_t *err)
{
    if (!op->key)
        return gp_err_set(err, GP_ERR_INVALID, "etcd op without a key");
    size_t key_len = op->key_len ? op->key_len : strlen(op->key);
    if (key_len == 0)
        return gp_err_set(err, GP_ERR_INVALID, "etcd op with an empty key");
    if ((unsigned)op->sort_order > GP_ETCD_SORT_DESCEND || (unsigned)op->sort_target > GP_ETCD_SORT_VALUE)
        return gp_err_set(err, GP_ERR_INVALID, "etcd range with a bad sort");
    int rc = gp_ebuf_add(b, "{", 1);
    switch (op->type) {
    case GP_ETCD_OP_PUT:
        if (op->value_len && !op->value)
            return gp_err_set(err, GP_ERR_INVALID, "etcd put with a NULL value");
        rc = rc < 0 ? -1 : s_add_key_range(b, op->key, key_len, NULL, 0, 0, false);
        rc = rc < 0 ? -1 : gp_ebuf_add(b, ",", 1);
        rc = rc < 0 ? -1 : s_add_bytes_field(b, "value", op->value ? op->value : "", op->value_len);
        if (rc == 0 && op->lease)
            rc = gp_ebuf_addf(b, ",\"lease\":%" PRId64, op->lease);
        if (rc == 0 && (op->flags & GP_ETCD_PREV_KV))
            rc = gp_ebuf_adds(b, ",\"prev_kv\":true");
        break;
    case GP_ETCD_OP_RANGE:
        rc = rc < 0 ? -1 : s_add_key_range(b, op->key, key_len, op->range_end, op->range_end_len, op->flags, true);
        if (rc == 0 && op->limit)
            rc = gp_ebuf_addf(b, ",\"limit\":%" PRId64, op->limit);
        if (rc == 0 && op->revision)
            rc = gp_ebuf_addf(b, ",\"revision\":%" PRId64, op->revision);
        if (rc == 0 && op->sort_order != GP_ETCD_SORT_NONE)
            rc = gp_ebuf_addf(b, ",\"sort_order\":\"%s\",\"sort_target\":\"%s\"",
                              s_sort_order[op->sort_order], s_sort_target[op->sort_target]);
        if (rc == 0 && (op->flags & GP_ETCD_KEYS_ONLY))
            rc = gp_ebuf_adds(b, ",\"keys_only\":true");
        if (rc == 0 && (op->flags & GP_ETCD_COUNT_ONLY))
            rc = gp_ebuf_adds(b, ",\"count_only\":true");
        if (rc == 0 && (op->flags & GP_ETCD_SERIALIZABLE))
            rc = gp_ebuf_adds(b, ",\"serializable\":true");
        break;
    case GP_ETCD_OP_DELETE:
        rc = rc < 0 ? -1 : s_add_key_range(b, op->key, key_len, op->range_end, op->range_end_len, op->flags, true);
        if (rc == 0 && (op->flags & GP_ETCD_PREV_KV))
            rc = gp_ebuf_adds(b, ",\"prev_kv\":true");
        break;
    default:
        return gp_err_set(err, GP_ERR_INVALID, "etcd op of unknown type %d", (int)op->type);
    }
    rc = rc < 0 ? -1 : gp_ebuf_add(b, "}", 1);
    if (rc < 0)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory encoding an etcd request");
    return 0;
}

static int s_json_ops(gp_ebuf_t *b, const char *name, const gp_etcd_op_t *ops, size_t n, gp_err_t *err)
{
    static const char *const wrap[] = { "request_range", "request_put", "request_delete_range" };
    if (n && !ops)
        return gp_err_set(err, GP_ERR_INVALID, "etcd txn with NULL %s ops", name);
    if (gp_ebuf_addf(b, ",\"%s\":[", name) < 0)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory encoding an etcd request");
    for (size_t i = 0; i < n; i++) {
        if ((unsigned)ops[i].type > GP_ETCD_OP_DELETE)
            return gp_err_set(err, GP_ERR_INVALID, "etcd txn op %zu is not a put, range or delete", i);
        if (gp_ebuf_addf(b, "%s{\"%s\":", i ? "," : "", wrap[ops[i].type]) < 0)
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory encoding an etcd request");
        if (gp_etcd_json_op(b, &ops[i], err) < 0)
            return -1;
        if (gp_ebuf_add(b, "}", 1) < 0)
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory encoding an etcd request");
    }
    if (gp_ebuf_add(b, "]", 1) < 0)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory encoding an etcd request");
    return 0;
}

int gp_etcd_json_txn(gp_ebuf_t *b, const gp_etcd_txn_t *txn, gp_err_t *err)
{
    if (txn->n_compare && !txn->compare)
        return gp_err_set(err, GP_ERR_INVALID, "etcd txn with NULL compares");
    int rc = gp_ebuf_adds(b, "{\"compare\":[");
    for (size_t i = 0; rc == 0 && i < txn->n_compare; i++) {
        const gp_etcd_cmp_t *c = &txn->compare[i];
        if (!c->key)
            return gp_err_set(err, GP_ERR_INVALID, "etcd compare without a key");
        if ((unsigned)c->target > GP_ETCD_CMP_LEASE || (unsigned)c->result > GP_ETCD_CMP_NOT_EQUAL)
            return gp_err_set(err, GP_ERR_INVALID, "etcd compare with a bad target or result");
        size_t key_len = c->key_len ? c->key_len : strlen(c->key);
        rc = gp_ebuf_addf(b, "%s{\"target\":\"%s\",\"result\":\"%s\",", i ? "," : "",
                          s_cmp_target[c->target], s_cmp_result[c->result]);
        rc = rc < 0 ? -1 : s_add_bytes_field(b, "key", c->key, key_len);
        if (rc == 0 && c->range_end) {
            rc = gp_ebuf_add(b, ",", 1);
            rc = rc < 0 ? -1 : s_add_bytes_field(b, "range_end", c->range_end, strlen(c->range_end));
        }
        if (rc < 0)
            break;
        switch (c->target) {
        case GP_ETCD_CMP_VERSION: rc = gp_ebuf_addf(b, ",\"version\":%" PRId64, c->number); break;
        case GP_ETCD_CMP_CREATE: rc = gp_ebuf_addf(b, ",\"create_revision\":%" PRId64, c->number); break;
        case GP_ETCD_CMP_MOD: rc = gp_ebuf_addf(b, ",\"mod_revision\":%" PRId64, c->number); break;
        case GP_ETCD_CMP_LEASE: rc = gp_ebuf_addf(b, ",\"lease\":%" PRId64, c->number); break;
        case GP_ETCD_CMP_VALUE:
            if (c->value_len && !c->value)
                return gp_err_set(err, GP_ERR_INVALID, "etcd value compare with a NULL value");
            rc = gp_ebuf_add(b, ",", 1);
            rc = rc < 0 ? -1 : s_add_bytes_field(b, "value", c->value ? c->value : "", c->value_len);
            break;
        }
        rc = rc < 0 ? -1 : gp_ebuf_add(b, "}", 1);
    }
    rc = rc < 0 ? -1 : gp_ebuf_add(b, "]", 1);
    if (rc < 0)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory encoding an etcd request");
    if (s_json_ops(b, "success", txn->success, txn->n_success, err) < 0 ||
        s_json_ops(b, "failure", txn->failure, txn->n_failure, err) < 0)
        return -1;
    if (gp_ebuf_add(b, "}", 1) < 0)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory encoding an etcd request");
    return 0;
}

/* ------------------------------------------------------------ responses */

json_t *gp_etcd_json_load(const char *body, size_t len, gp_err_t *err)
{
    json_error_t jerr;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        gp_err_set(err, GP_ERR_PROTOCOL, "etcd response is not JSON: %s (%zu bytes)", jerr.text, len);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        gp_err_set(err, GP_ERR_PROTOCOL, "etcd response is not a JSON object");
        return NULL;
    }
    return j;
}

int gp_etcd_json_int64(const json_t *obj, const char *field, int64_t *out, gp_err_t *err)
{
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v)) {
        *out = 0;
        return 0;
    }
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        int64_t x;
        if (gp_parse_int64(json_string_value(v), INT64_MIN, INT64_MAX, &x) == 0) {
            *out = x;
            return 0;
        }
    }
    return gp_err_set(err, GP_ERR_PROTOCOL, "etcd response field %s is not an int64", field);
}

static int s_json_bool(const json_t *obj, const char *field, bool *out, gp_err_t *err)
{
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v)) {
        *out = false;
        return 0;
    }
    if (!json_is_boolean(v))
        return gp_err_set(err, GP_ERR_PROTOCOL, "etcd response field %s is not a boolean", field);
    *out = json_is_true(v);
    return 0;
}

static int s_json_bytes(const json_t *obj, const char *field, char **out, size_t *out_len, gp_err_t *err)
{
    json_t *v = json_object_get(obj, field);
    const char *s = "";
    size_t n = 0;
    if (v && !json_is_null(v)) {
        if (!json_is_string(v))
            return gp_err_set(err, GP_ERR_PROTOCOL, "etcd response field %s is not a string", field);
        s = json_string_value(v);
        n = json_string_length(v);
    }
    if (gp_etcd_b64_decode(s, n, out, out_len) < 0)
        return gp_err_set(err, GP_ERR_PROTOCOL, "etcd response field %s is not base64", field);
    return 0;
}

/* Field that must be an object when present; NULL when absent. */
static int s_json_object(const json_t *obj, const char *field, json_t **out, gp_err_t *err)
{
    json_t *v = json_object_get(obj, field);
    if (v && json_is_null(v))
        v = NULL;
    if (v && !json_is_object(v))
        return gp_err_set(err, GP_ERR_PROTOCOL, "etcd response field %s is not an object", field);
    *out = v;
    return 0;
}

static int s_json_array(const json_t *obj, const char *field, json_t **out, gp_err_t *err)
{
    json_t *v = json_object_get(obj, field);
    if (v && json_is_null(v))
        v = NULL;
    if (v && !json_is_array(v))
        return gp_err_set(err, GP_ERR_PROTOCOL, "etcd response field %s is not an array", field);
    *out = v;
    return 0;
}

int gp_etcd_parse_header_rev(const json_t *obj, int64_t *rev, gp_err_t *err)
{
    json_t *h = NULL;
    if (s_json_object(obj, "header", &h, err) < 0)
        return -1;
    if (!h)
        return gp_err_set(err, GP_ERR_PROTOCOL, "etcd response without a header");
    return gp_etcd_json_int64(h, "revision", rev, err);
}

void gp_etcd_kv_free(gp_etcd_kv_t *kv)
{
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof(*kv));
}

static int s_parse_kv(const json_t *jkv, gp_etcd_kv_t *kv, gp_err_t *err)
{
    gp_etcd_kv_t k;
    memset(&k, 0, sizeof(k));
    if (!json_is_object(jkv))
        return gp_err_set(err, GP_ERR_PROTOCOL, "etcd kv is not an object");
    if (!json_is_string(json_object_get(jkv, "key")))
        return gp_err_set(err, GP_ERR_PROTOCOL, "etcd kv without a key");
    if (gp_etcd_json_int64(jkv, "create_revision", &k.create_revision, err) < 0 ||
        gp_etcd_json_int64(jkv, "mod_revision", &k.mod_revision, err) < 0 ||
        gp_etcd_json_int64(jkv, "version", &k.version, err) < 0 ||
        gp_etcd_json_int64(jkv, "lease", &k.lease, err) < 0)
        return -1;
    if (s_json_bytes(jkv, "key", &k.key, &k.key_len, err) < 0)
        return -1;
    if (s_json_bytes(jkv, "value", &k.value, &k.value_len, err) < 0) {
        gp_etcd_kv_free(&k);
        return -1;
    }
    *kv = k;
    return 0;
}

static int s_parse_kvs(const json_t *obj, const char *field, gp_etcd_result_t *r, gp_err_t *err)
{
    json_t *arr = NULL;
    if (s_json_array(obj, field, &arr, err) < 0)
        return -1;
    size_t n = arr ? json_array_size(arr) : 0;
    if (n == 0)
        return 0;
    r->kvs = calloc(n, sizeof(*r->kvs));
    if (!r->kvs)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory parsing an etcd response");
    for (size_t i = 0; i < n; i++) {
        if (s_parse_kv(json_array_get(arr, i), &r->kvs[i], err) < 0)
            return -1;
        r->n_kvs = i + 1;
    }
    return 0;
}

void gp_etcd_result_free(gp_etcd_result_t *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->n_kvs; i++)
        gp_etcd_kv_free(&res->kvs[i]);
    free(res->kvs);
    for (size_t i = 0; i < res->n_responses; i++)
        gp_etcd_result_free(&res->responses[i]);
    free(res->responses);
    memset(res, 0, sizeof(*res));
}

/* Fill r (zeroed by the caller) from a response object; on failure r holds
 * what was parsed so far and the caller frees it. */
static int s_parse_obj(const json_t *obj, gp_etcd_op_type_t type, gp_etcd_result_t *r, gp_err_t *err)
{
    r->type = type;
    if (gp_etcd_parse_header_rev(obj, &r->revision, err) < 0)
        return -1;
    switch (type) {
    case GP_ETCD_OP_RANGE:
        if (gp_etcd_json_int64(obj, "count", &r->count, err) < 0 ||
            s_json_bool(obj, "more", &r->more, err) < 0)
            return -1;
        return s_parse_kvs(obj, "kvs", r, err);
    case GP_ETCD_OP_PUT: {
        json_t *prev = NULL;
        if (s_json_object(obj, "prev_kv", &prev, err) < 0)
            return -1;
        if (!prev)
            return 0;
        r->kvs = calloc(1, sizeof(*r->kvs));
        if (!r->kvs)
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory parsing an etcd response");
        if (s_parse_kv(prev, &r->kvs[0], err) < 0)
            return -1;
        r->n_kvs = 1;
        return 0;
    }
    case GP_ETCD_OP_DELETE:
        if (gp_etcd_json_int64(obj, "deleted", &r->deleted, err) < 0)
            return -1;
        return s_parse_kvs(obj, "prev_kvs", r, err);
    case GP_ETCD_OP_TXN: {
        json_t *arr = NULL;
        if (s_json_bool(obj, "succeeded", &r->succeeded, err) < 0 ||
            s_json_array(obj, "responses", &arr, err) < 0)
            return -1;
        size_t n = arr ? json_array_size(arr) : 0;
        if (n == 0)
            return 0;
        r->responses = calloc(n, sizeof(*r->responses));
        if (!r->responses)
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory parsing an etcd response");
        for (size_t i = 0; i < n; i++) {
            json_t *op = json_array_get(arr, i), *inner = NULL;
            gp_etcd_op_type_t t = GP_ETCD_OP_RANGE;
            if (!json_is_object(op) || json_object_size(op) != 1)
                return gp_err_set(err, GP_ERR_PROTOCOL, "etcd txn response %zu is not an op response", i);
            if ((inner = json_object_get(op, "response_range")))
                t = GP_ETCD_OP_RANGE;
            else if ((inner = json_object_get(op, "response_put")))
                t = GP_ETCD_OP_PUT;
            else if ((inner = json_object_get(op, "response_delete_range")))
                t = GP_ETCD_OP_DELETE;
            if (!inner || !json_is_object(inner))
                return gp_err_set(err, GP_ERR_PROTOCOL, "etcd txn response %zu is not a range, put or delete", i);
            r->n_responses = i + 1;
            if (s_parse_obj(inner, t, &r->responses[i], err) < 0)
                return -1;
        }
        return 0;
    }
    }
    return gp_err_set(err, GP_ERR_INVALID, "unknown etcd op type");
}

int gp_etcd_parse_result(const char *body, size_t len, gp_etcd_op_type_t type,
                         gp_etcd_result_t *res, gp_err_t *err)
{
    if (gp_etcd_parse_result_fast(body, len, type, res) == 1)
        return 0;   /* the usual answer; anything else is checked below */
    json_t *j = gp_etcd_json_load(body, len, err);
    if (!j)
        return -1;
    gp_etcd_result_t r;
    memset(&r, 0, sizeof(r));
    int rc = s_parse_obj(j, type, &r, err);
    json_decref(j);
    if (rc < 0) {
        gp_etcd_result_free(&r);
        return -1;
    }
    *res = r;
    return 0;
}

/* gRPC codes the gateway reports (google.golang.org/grpc/codes). */
enum { GRPC_INVALID_ARGUMENT = 3, GRPC_NOT_FOUND = 5, GRPC_PERMISSION_DENIED = 7,
       GRPC_OUT_OF_RANGE = 11, GRPC_UNAUTHENTICATED = 16 };

int gp_etcd_parse_error(const char *body, size_t len, long http_status, gp_err_t *err)
{
    json_error_t jerr;
    json_t *j = json_loadb(body, len, 0, &jerr);
    json_t *msg = j ? json_object_get(j, "message") : NULL;
    json_t *code = j ? json_object_get(j, "code") : NULL;
    if (!msg || !json_is_string(msg))
        msg = j ? json_object_get(j, "error") : NULL;
    if (!j || !json_is_object(j) || !msg || !json_is_string(msg) || !code || !json_is_integer(code)) {
        json_decref(j);
        gp_err_set(err, http_status == 200 ? GP_ERR_PROTOCOL : GP_ERR_SERVER,
                   "etcd answered HTTP %ld without a gateway error body", http_status);
        if (err)
            err->status = (int)http_status;
        return -1;
    }
    gp_etcd_grpc_error((int)json_integer_value(code), json_string_value(msg), err);
    json_decref(j);
    return -1;
}

int gp_etcd_grpc_error(int code, const char *m, gp_err_t *err)
{
    gp_errcode_t ec = GP_ERR_SERVER;
    if (code == GRPC_UNAUTHENTICATED || code == GRPC_PERMISSION_DENIED ||
        strstr(m, "authentication failed") || strstr(m, "user name is empty") ||
        strstr(m, "invalid auth token"))
        ec = GP_ERR_AUTH;
    else if (strstr(m, "required revision has been compacted"))
        ec = GP_ERR_COMPACTED;
    else if (code == GRPC_NOT_FOUND && strstr(m, "lease not found"))
        ec = GP_ERR_NOTFOUND;
    else if (strstr(m, "database space exceeded"))
        ec = GP_ERR_NOSPACE;   /* the NOSPACE alarm is raised: only reads and deletes pass */
    gp_err_set(err, ec, "etcd: %s (code %d)", m, code);
    if (err)
        err->status = code;
    return -1;
}

/* ------------------------------------------------------------ results, fast path */

static bool s_b64_field(gp_jscan_t *s, char **out, size_t *out_len)
{
    const char *v;
    size_t n;
    if (!gp_jscan_str(s, &v, &n))
        return false;
    free(*out);
    *out = NULL;
    return gp_etcd_b64_decode(v, n, out, out_len) == 0;
}

static bool s_kv_fast(gp_jscan_t *s, gp_etcd_kv_t *kv)
{
    if (!gp_jscan_lit(s, '{'))
        return false;
    bool first = true, ok = true, has_key = false;
    const char *k;
    size_t kn;
    while (ok && gp_jscan_obj_next(s, &k, &kn, &first, &ok)) {
        if (gp_jscan_key_is(k, kn, "key"))
            ok = has_key = s_b64_field(s, &kv->key, &kv->key_len);
        else if (gp_jscan_key_is(k, kn, "value"))
            ok = s_b64_field(s, &kv->value, &kv->value_len);
        else if (gp_jscan_key_is(k, kn, "create_revision"))
            ok = gp_jscan_i64(s, &kv->create_revision);
        else if (gp_jscan_key_is(k, kn, "mod_revision"))
            ok = gp_jscan_i64(s, &kv->mod_revision);
        else if (gp_jscan_key_is(k, kn, "version"))
            ok = gp_jscan_i64(s, &kv->version);
        else if (gp_jscan_key_is(k, kn, "lease"))
            ok = gp_jscan_i64(s, &kv->lease);
        else
            ok = gp_jscan_skip(s);
    }
    if (ok && !kv->value) {   /* absent: empty, as the general parser gives it */
        ok = (kv->value = malloc(1)) != NULL;
        if (ok)
            kv->value[0] = '\0';
    }
    return ok && has_key;
}

/* kvs: an array of kvs appended to r->kvs. */
static bool s_kvs_fast(gp_jscan_t *s, gp_etcd_result_t *r)
{
    if (!gp_jscan_lit(s, '['))
        return false;
    if (gp_jscan_lit(s, ']'))
        return true;
    size_t cap = r->n_kvs;
    do {
        if (r->n_kvs == cap) {
            size_t grown = cap ? cap * 2 : 4;
            gp_etcd_kv_t *p = realloc(r->kvs, grown * sizeof(*p));
            if (!p)
                return false;
            r->kvs = p;
            cap = grown;
        }
        gp_etcd_kv_t *kv = &r->kvs[r->n_kvs++];
        memset(kv, 0, sizeof(*kv));
        if (!s_kv_fast(s, kv))
            return false;
    } while (gp_jscan_lit(s, ','));
    return gp_jscan_lit(s, ']');
}

static bool s_obj_fast(gp_jscan_t *s, gp_etcd_op_type_t type, gp_etcd_result_t *r);

static bool s_responses_fast(gp_jscan_t *s, gp_etcd_result_t *r)
{
    if (!gp_jscan_lit(s, '['))
        return false;
    if (gp_jscan_lit(s, ']'))
        return true;
    size_t cap = 0;
    do {
        if (r->n_responses == cap) {
            size_t grown = cap ? cap * 2 : 8;
            gp_etcd_result_t *p = realloc(r->responses, grown * sizeof(*p));
            if (!p)
                return false;
            r->responses = p;
            cap = grown;
        }
        gp_etcd_result_t *sub = &r->responses[r->n_responses++];
        memset(sub, 0, sizeof(*sub));
        const char *k;
        size_t kn;
        if (!gp_jscan_lit(s, '{') || !gp_jscan_str(s, &k, &kn) || !gp_jscan_lit(s, ':'))
            return false;
        gp_etcd_op_type_t t;
        if (gp_jscan_key_is(k, kn, "response_range"))
            t = GP_ETCD_OP_RANGE;
        else if (gp_jscan_key_is(k, kn, "response_put"))
            t = GP_ETCD_OP_PUT;
        else if (gp_jscan_key_is(k, kn, "response_delete_range"))
            t = GP_ETCD_OP_DELETE;
        else
            return false;
        if (!s_obj_fast(s, t, sub) || !gp_jscan_lit(s, '}'))   /* exactly one member */
            return false;
    } while (gp_jscan_lit(s, ','));
    return gp_jscan_lit(s, ']');
}

/* One response object of an op of the given type (the general parser's
 * s_parse_obj, for the usual answers). */
static bool s_obj_fast(gp_jscan_t *s, gp_etcd_op_type_t type, gp_etcd_result_t *r)
{
    r->type = type;
    if (!gp_jscan_lit(s, '{'))
        return false;
    bool first = true, ok = true, has_header = false, has_prev = false;
    const char *k;
    size_t kn;
    while (ok && gp_jscan_obj_next(s, &k, &kn, &first, &ok)) {
        if (gp_jscan_key_is(k, kn, "header") && !has_header) {
            bool hfirst = true;
            const char *hk;
            size_t hkn;
            ok = has_header = gp_jscan_lit(s, '{');
            while (ok && gp_jscan_obj_next(s, &hk, &hkn, &hfirst, &ok))
                ok = gp_jscan_key_is(hk, hkn, "revision") ? gp_jscan_i64(s, &r->revision) : gp_jscan_skip(s);
        } else if (type == GP_ETCD_OP_RANGE && gp_jscan_key_is(k, kn, "count")) {
            ok = gp_jscan_i64(s, &r->count);
        } else if (type == GP_ETCD_OP_RANGE && gp_jscan_key_is(k, kn, "more")) {
            ok = gp_jscan_bool(s, &r->more);
        } else if ((type == GP_ETCD_OP_RANGE && gp_jscan_key_is(k, kn, "kvs")) ||
                   (type == GP_ETCD_OP_DELETE && gp_jscan_key_is(k, kn, "prev_kvs")) ||
                   (type == GP_ETCD_OP_PUT && gp_jscan_key_is(k, kn, "prev_kv"))) {
            if (has_prev)
                return false;
            has_prev = true;
            if (type != GP_ETCD_OP_PUT) {
                ok = s_kvs_fast(s, r);
            } else {
                ok = (r->kvs = calloc(1, sizeof(*r->kvs))) != NULL;
                r->n_kvs = ok;
                ok = ok && s_kv_fast(s, &r->kvs[0]);
            }
        } else if (type == GP_ETCD_OP_DELETE && gp_jscan_key_is(k, kn, "deleted")) {
            ok = gp_jscan_i64(s, &r->deleted);
        } else if (type == GP_ETCD_OP_TXN && gp_jscan_key_is(k, kn, "succeeded")) {
            ok = gp_jscan_bool(s, &r->succeeded);
        } else if (type == GP_ETCD_OP_TXN && gp_jscan_key_is(k, kn, "responses")) {
            if (has_prev)
                return false;
            has_prev = true;
            ok = s_responses_fast(s, r);
        } else {
            ok = gp_jscan_skip(s);
        }
    }
    return ok && has_header;
}

int gp_etcd_parse_result_fast(const char *body, size_t len, gp_etcd_op_type_t type, gp_etcd_result_t *res)
{
    gp_etcd_result_t r;
    memset(&r, 0, sizeof(r));
    gp_jscan_t s = GP_JSCAN_INIT(body, len);
    bool ok = s_obj_fast(&s, type, &r);
    gp_jscan_ws(&s);
    if (ok && s.p == s.end) {
        *res = r;
        return 1;
    }
    gp_etcd_result_free(&r);
    return 0;
}
