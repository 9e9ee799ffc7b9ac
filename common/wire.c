#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "log.h"
#include "util.h"

#include "banned.h"

static const char *const s_type_names[] = {
    [GP_MSG_NONE] = "NONE", [GP_MSG_HELLO] = "HELLO", [GP_MSG_WELCOME] = "WELCOME", [GP_MSG_CFB] = "CFB",
    [GP_MSG_BIDS] = "BIDS", [GP_MSG_AWARD] = "AWARD", [GP_MSG_LOGS] = "LOGS",
    [GP_MSG_LOGDATA] = "LOGDATA",
};

const char *gp_msg_type_name(gp_msg_type_t type)
{
    if ((unsigned)type < GP_ARRAY_LEN(s_type_names))
        return s_type_names[type];
    return "?";
}

void gp_wire_msg_clear(gp_wire_msg_t *msg)
{
    json_decref(msg->body);
    free(msg->text);
    memset(msg, 0, sizeof *msg);
}

/* A body's text judged: a JSON object without a repeated key. */
static json_t *s_body(gp_msg_type_t type, const char *text, size_t len, gp_err_t *err)
{
    json_error_t jerr;
    json_t *body = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (body == NULL || !json_is_object(body)) {
        gp_err_set(err, GP_ERR_PROTOCOL, "%s body is not a JSON object%s%s",
                   s_type_names[type], body ? "" : ": ", body ? "" : jerr.text);
        json_decref(body);
        return NULL;
    }
    return body;
}

json_t *gp_wire_msg_body(gp_wire_msg_t *msg, gp_err_t *err)
{
    if (msg->body == NULL && msg->text)
        msg->body = s_body(msg->type, msg->text, msg->text_len, err);
    else if (msg->body == NULL)
        gp_err_set(err, GP_ERR_PROTOCOL, "no body");
    return msg->body;
}

int gp_wire_version_parse(const char *s)
{
    if (s == NULL || strncmp(s, "gpupool/", 8) != 0)
        return -1;
    int64_t v;
    if (gp_parse_int64(s + 8, 1, 999, &v) < 0 || s[8] == '0' || s[8] == '+' || s[8] == '-')
        return -1;
    return (int)v;
}

int gp_wire_versions_spoken(const char *list, int *out, int max, gp_err_t *err)
{
    int n = 0;
    if (list == NULL || *list == '\0') {
        for (int v = GP_WIRE_PROTO; v >= GP_WIRE_PROTO_MIN && n < max; v--)
            out[n++] = v;
        return n;
    }
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        char one[32];
        snprintf(one, sizeof one, "%.*s", (int)(len < sizeof one ? len : 0), p);
        int v = gp_wire_version_parse(one);
        if (v < 0 || n == max)
            return gp_err_set(err, GP_ERR_INVALID, "protocol versions \"%s\": expected "
                                                   "gpupool/N[,gpupool/M...]", list);
        /* newest first */
        int k = n++;
        while (k > 0 && out[k - 1] < v) {
            out[k] = out[k - 1];
            k--;
        }
        out[k] = v;
        p += len;
        if (*p == ',')
            p++;
    }
    return n > 0 ? n : gp_err_set(err, GP_ERR_INVALID, "no protocol version");
}

int gp_wire_send(void *sock, const void *identity, size_t identity_len, gp_msg_type_t type,
                 const json_t *body, gp_err_t *err)
{
    return gp_wire_send_v(sock, identity, identity_len, GP_WIRE_PROTO, type, body, err);
}

int gp_wire_send_text_v(void *sock, const void *identity, size_t identity_len, int version,
                        gp_msg_type_t type, const char *text, size_t len, gp_err_t *err)
{
    if (type <= GP_MSG_NONE || type > GP_MSG_LAST)
        return gp_err_set(err, GP_ERR_INVALID, "bad message type %d", (int)type);
    if (version < 1 || version > 999)
        return gp_err_set(err, GP_ERR_INVALID, "bad protocol version %d", version);
    if (len > GP_WIRE_MAX_BYTES)
        return gp_err_set(err, GP_ERR_INVALID, "%s message of %zu bytes exceeds the limit",
                          gp_msg_type_name(type), len);
    char envelope[16];
    snprintf(envelope, sizeof envelope, "gpupool/%d", version);
    const char *tname = s_type_names[type];
    if ((identity && zmq_send(sock, identity, identity_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) ||
        zmq_send(sock, envelope, strlen(envelope), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(sock, tname, strlen(tname), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(sock, text, len, ZMQ_DONTWAIT) < 0)
        return gp_err_set(err, GP_ERR_TRANSPORT, "send %s: %s", tname, zmq_strerror(zmq_errno()));
    return 0;
}

int gp_wire_send_v(void *sock, const void *identity, size_t identity_len, int version,
                   gp_msg_type_t type, const json_t *body, gp_err_t *err)
{
    if (type <= GP_MSG_NONE || type > GP_MSG_LAST)
        return gp_err_set(err, GP_ERR_INVALID, "bad message type %d", (int)type);
    char *text = json_dumps(body, JSON_COMPACT);
    if (text == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "cannot encode message body");
    int rc = gp_wire_send_text_v(sock, identity, identity_len, version, type, text, strlen(text),
                                 err);
    free(text);
    return rc;
}

/* Read the rest of a multipart message and throw it away. */
static void s_drain(void *sock, zmq_msg_t *part)
{
    while (zmq_msg_more(part)) {
        zmq_msg_close(part);
        zmq_msg_init(part);
        if (zmq_msg_recv(part, sock, ZMQ_DONTWAIT) < 0)
            break;
    }
}

int gp_wire_recv(void *sock, gp_wire_msg_t *msg, gp_err_t *err)
{
    return gp_wire_recv_text(sock, msg, GP_MSG_NONE, err);
}

int gp_wire_recv_text(void *sock, gp_wire_msg_t *msg, gp_msg_type_t text_type, gp_err_t *err)
{
    int type = 0;
    size_t tsz = sizeof type;
    zmq_getsockopt(sock, ZMQ_TYPE, &type, &tsz);
    memset(msg, 0, sizeof *msg);

    zmq_msg_t parts[4];
    int n = 0, rc = -1;
    int want = type == ZMQ_ROUTER ? 4 : 3;
    for (;;) {
        if (n == 4) {
            s_drain(sock, &parts[3]);
            gp_err_set(err, GP_ERR_PROTOCOL, "too many frames");
            goto cleanup;
        }
        zmq_msg_init(&parts[n]);
        if (zmq_msg_recv(&parts[n], sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&parts[n]);
            if (n == 0 && zmq_errno() == EAGAIN)
                return 0;
            gp_err_set(err, GP_ERR_TRANSPORT, "recv: %s", zmq_strerror(zmq_errno()));
            goto cleanup;
        }
        n++;
        if (!zmq_msg_more(&parts[n - 1]))
            break;
    }
    if (n != want) {
        gp_err_set(err, GP_ERR_PROTOCOL, "%d frames, expected %d", n, want);
        goto cleanup;
    }
    zmq_msg_t *f = parts;
    if (type == ZMQ_ROUTER) {
        size_t il = zmq_msg_size(&f[0]);
        if (il > sizeof msg->identity) {
            gp_err_set(err, GP_ERR_PROTOCOL, "routing id too long");
            goto cleanup;
        }
        memcpy(msg->identity, zmq_msg_data(&f[0]), il);
        msg->identity_len = il;
        f++;
    }
    const char *uid = zmq_msg_gets(&f[0], "User-Id");
    if (uid)
        gp_strlcpy(msg->peer_key, uid, sizeof msg->peer_key);
    char envelope[16];
    size_t vl = zmq_msg_size(&f[0]);
    snprintf(envelope, sizeof envelope, "%.*s", (int)(vl < sizeof envelope ? vl : 0),
             (const char *)zmq_msg_data(&f[0]));
    msg->version = vl < sizeof envelope && !memchr(zmq_msg_data(&f[0]), '\0', vl)
                       ? gp_wire_version_parse(envelope) : -1;
    if (msg->version < 0) {
        gp_err_set(err, GP_ERR_PROTOCOL, "unknown protocol");
        goto cleanup;
    }
    size_t tl = zmq_msg_size(&f[1]);
    for (int t = GP_MSG_HELLO; t <= GP_MSG_LAST; t++) {
        if (tl == strlen(s_type_names[t]) && memcmp(zmq_msg_data(&f[1]), s_type_names[t], tl) == 0)
            msg->type = (gp_msg_type_t)t;
    }
    /* HELLO and WELCOME negotiate: read in any version, so that a peer
     * outside the policy hears why (wire.h). */
    int negotiation = msg->type == GP_MSG_HELLO || msg->type == GP_MSG_WELCOME;
    if (!negotiation && (msg->version < GP_WIRE_PROTO_MIN || msg->version > GP_WIRE_PROTO)) {
        gp_err_set(err, GP_ERR_PROTOCOL, "unknown protocol version gpupool/%d", msg->version);
        goto cleanup;
    }
    if (msg->type == GP_MSG_NONE) {
        gp_err_set(err, GP_ERR_PROTOCOL, "unknown message type");
        goto cleanup;
    }
    size_t bl = zmq_msg_size(&f[2]);
    if (bl > GP_WIRE_MAX_BYTES) {
        gp_err_set(err, GP_ERR_PROTOCOL, "%s body of %zu bytes exceeds the limit",
                   s_type_names[msg->type], bl);
        goto cleanup;
    }
    if (text_type != GP_MSG_NONE && msg->type == text_type) {
        if ((msg->text = malloc(bl + 1)) == NULL) {
            gp_err_set(err, GP_ERR_NOMEM, "out of memory");
            goto cleanup;
        }
        memcpy(msg->text, zmq_msg_data(&f[2]), bl);
        msg->text[bl] = '\0';
        msg->text_len = bl;
    } else if ((msg->body = s_body(msg->type, zmq_msg_data(&f[2]), bl, err)) == NULL) {
        goto cleanup;
    }
    rc = 1;
cleanup:
    if (rc < 0) {
        /* A message dropped still names its sender (the caller logs it). */
        gp_wire_msg_clear(msg);
        if (type == ZMQ_ROUTER && n > 0) {
            size_t il = zmq_msg_size(&parts[0]);
            msg->identity_len = il < sizeof msg->identity ? il : sizeof msg->identity;
            memcpy(msg->identity, zmq_msg_data(&parts[0]), msg->identity_len);
        }
    }
    for (int i = 0; i < n; i++)
        zmq_msg_close(&parts[i]);
    return rc;
}

char *gp_wire_printable(const void *data, size_t len, char *buf, size_t size)
{
    const unsigned char *p = data;
    size_t o = 0;
    if (size == 0)
        return buf;
    for (size_t i = 0; i < len && o + 1 < size; i++)
        buf[o++] = (p[i] > ' ' && p[i] < 0x7f && p[i] != '"' && p[i] != '\\') ? (char)p[i] : '?';
    if (o == 0 && size > 1)
        buf[o++] = '-';
    buf[o] = '\0';
    return buf;
}

/* ---------------------------------------------------------------- keys */

int gp_curve_generate(gp_curve_keys_t *keys, gp_err_t *err)
{
    if (zmq_curve_keypair(keys->public_key, keys->secret_key) != 0)
        return gp_err_set(err, GP_ERR_IO, "zmq_curve_keypair: %s", zmq_strerror(zmq_errno()));
    return 0;
}

static int s_write_file(const char *path, mode_t mode, const char *text, gp_err_t *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return gp_err_errno(err, "cannot create %s", path);
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    if (w != (ssize_t)len || fsync(fd) < 0) {
        gp_err_errno(err, "cannot write %s", path);
        close(fd);
        unlink(path);
        return -1;
    }
    close(fd);
    return 0;
}

int gp_curve_save(const char *prefix, const gp_curve_keys_t *keys, gp_err_t *err)
{
    char kpath[4096], ppath[4096], text[256];
    snprintf(kpath, sizeof kpath, "%s.key", prefix);
    snprintf(ppath, sizeof ppath, "%s.pub", prefix);
    snprintf(text, sizeof text,
             "# gpupool CURVE key pair: keep this file secret\npublic-key = %s\nsecret-key = %s\n",
             keys->public_key, keys->secret_key);
    if (s_write_file(kpath, 0600, text, err) < 0)
        return -1;
    snprintf(text, sizeof text, "# gpupool CURVE public key\npublic-key = %s\n", keys->public_key);
    if (s_write_file(ppath, 0644, text, err) < 0) {
        unlink(kpath);
        return -1;
    }
    return 0;
}

/* A Z85-encoded 32-byte key: 40 characters of the Z85 alphabet. */
static int s_valid_z85_key(const char *s)
{
    uint8_t raw[32];
    return strlen(s) == 40 && zmq_z85_decode(raw, s) != NULL;
}

int gp_curve_load(const char *path, gp_curve_keys_t *keys, gp_err_t *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return gp_err_errno(err, "cannot open key file %s", path);
    gp_curve_keys_t k;
    memset(&k, 0, sizeof k);
    char line[512];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char name[32], val[128];
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (sscanf(line, " %31[a-z-] = %127s", name, val) != 2 || !s_valid_z85_key(val)) {
            rc = gp_err_set(err, GP_ERR_INVALID, "%s:%d: expected \"public-key = <40 Z85 chars>\"",
                            path, lineno);
            break;
        }
        if (!strcmp(name, "public-key"))
            gp_strlcpy(k.public_key, val, sizeof k.public_key);
        else if (!strcmp(name, "secret-key"))
            gp_strlcpy(k.secret_key, val, sizeof k.secret_key);
        else {
            rc = gp_err_set(err, GP_ERR_INVALID, "%s:%d: unknown field %s", path, lineno, name);
            break;
        }
    }
    fclose(f);
    if (rc == 0 && k.public_key[0] == '\0')
        rc = gp_err_set(err, GP_ERR_INVALID, "%s: no public-key line", path);
    if (rc == 0 && k.secret_key[0]) {
        /* The secret must match the public key. */
        char derived[41];
        if (zmq_curve_public(derived, k.secret_key) != 0 || strcmp(derived, k.public_key) != 0)
            rc = gp_err_set(err, GP_ERR_INVALID, "%s: secret-key does not match public-key", path);
    }
    if (rc == 0)
        *keys = k;
    return rc;
}

int gp_curve_server(void *sock, const gp_curve_keys_t *keys, gp_err_t *err)
{
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, keys->secret_key, 40) < 0 ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, "gpupool", 7) < 0)
        return gp_err_set(err, GP_ERR_INVALID, "CURVE server setup: %s",
                          zmq_strerror(zmq_errno()));
    return 0;
}

int gp_curve_client(void *sock, const gp_curve_keys_t *keys, const char *server_public,
                    gp_err_t *err)
{
    if (!s_valid_z85_key(server_public))
        return gp_err_set(err, GP_ERR_INVALID, "bad coordinator public key");
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_public, 40) < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, keys->public_key, 40) < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, keys->secret_key, 40) < 0)
        return gp_err_set(err, GP_ERR_INVALID, "CURVE client setup: %s",
                          zmq_strerror(zmq_errno()));
    return 0;
}

/* ---------------------------------------------------------------- ZAP */

/* The ZAP handler (RFC 27): libzmq sends each CURVE handshake's client key
 * to inproc://zeromq.zap.01 and waits for "200" (admit) or "400" (refuse).
 * The authorized set is a sorted array of raw 32-byte keys, searched with
 * bsearch. */
struct gp_zap {
    void *sock;
    uint8_t (*keys)[32];
    size_t nkeys;
    unsigned long accepted, denied;
};

static int s_keycmp(const void *a, const void *b) { return memcmp(a, b, 32); }

static int s_load_authorized(const char *path, uint8_t (**out)[32], size_t *nout, gp_err_t *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return gp_err_errno(err, "cannot open authorized keys %s", path);
    uint8_t (*keys)[32] = NULL;
    size_t n = 0, cap = 0;
    char line[512];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '#' || *s == '\n' || *s == '\0')
            continue;
        char val[128];
        if (sscanf(s, "public-key = %127s", val) != 1 && sscanf(s, "%127s", val) != 1) {
            rc = -1;
        } else if (n == cap) {
            cap = cap ? cap * 2 : 16;
            void *p = realloc(keys, cap * 32);
            if (p == NULL) {
                rc = gp_err_set(err, GP_ERR_NOMEM, "out of memory");
                break;
            }
            keys = p;
        }
        if (rc < 0 || strlen(val) != 40 || zmq_z85_decode(keys[n], val) == NULL) {
            rc = gp_err_set(err, GP_ERR_INVALID, "%s:%d: not a Z85 public key", path, lineno);
            break;
        }
        n++;
    }
    fclose(f);
    if (rc < 0) {
        free(keys);
        return -1;
    }
    if (n > 1)
        qsort(keys, n, 32, s_keycmp);
    *out = keys;
    *nout = n;
    return 0;
}

gp_zap_t *gp_zap_new(void *ctx, const char *authorized_keys_path, gp_err_t *err)
{
    gp_zap_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (s_load_authorized(authorized_keys_path, &self->keys, &self->nkeys, err) < 0)
        goto fail;
    self->sock = zmq_socket(ctx, ZMQ_REP);
    if (self->sock == NULL || zmq_bind(self->sock, "inproc://zeromq.zap.01") < 0) {
        gp_err_set(err, GP_ERR_IO, "ZAP handler: %s", zmq_strerror(zmq_errno()));
        goto fail;
    }
    return self;
fail:
    gp_zap_destroy(&self);
    return NULL;
}

void gp_zap_destroy(gp_zap_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    gp_zap_t *self = *self_p;
    if (self->sock) {
        int zero = 0;
        zmq_setsockopt(self->sock, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(self->sock);
    }
    free(self->keys);
    free(self);
    *self_p = NULL;
}

void *gp_zap_socket(gp_zap_t *self) { return self->sock; }
unsigned long gp_zap_accepted(const gp_zap_t *self) { return self->accepted; }
unsigned long gp_zap_denied(const gp_zap_t *self) { return self->denied; }

int gp_zap_reload(gp_zap_t *self, const char *authorized_keys_path, gp_err_t *err)
{
    uint8_t (*keys)[32];
    size_t n;
    if (s_load_authorized(authorized_keys_path, &keys, &n, err) < 0)
        return -1;
    free(self->keys);
    self->keys = keys;
    self->nkeys = n;
    return 0;
}

void gp_zap_handle(gp_zap_t *self)
{
    for (;;) {
        /* Request frames: version, request id, domain, address, identity,
         * mechanism, then the mechanism's credentials (CURVE: the key). */
        zmq_msg_t f[8];
        int n = 0;
        for (;;) {
            zmq_msg_init(&f[n < 7 ? n : 7]);
            if (zmq_msg_recv(&f[n < 7 ? n : 7], self->sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&f[n < 7 ? n : 7]);
                if (n == 0)
                    return;
                break;
            }
            int more = zmq_msg_more(&f[n < 7 ? n : 7]);
            if (n >= 7)
                zmq_msg_close(&f[7]);
            else
                n++;
            if (!more)
                break;
        }
        int admit = 0;
        char user[41] = "";
        if (n >= 7 && zmq_msg_size(&f[5]) == 5 && memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0 &&
            zmq_msg_size(&f[6]) == 32) {
            admit = self->nkeys && bsearch(zmq_msg_data(&f[6]), self->keys, self->nkeys, 32,
                                           s_keycmp) != NULL;
            zmq_z85_encode(user, zmq_msg_data(&f[6]), 32);
        }
        if (admit)
            self->accepted++;
        else {
            self->denied++;
            gp_log_warn("connection refused: unknown CURVE key key=%s", user[0] ? user : "-");
        }
        const char *status = admit ? "200" : "400", *text = admit ? "OK" : "unknown key";
        /* Reply: version, request id, status code, status text, user id, metadata. */
        /* A REP socket must answer every request, even a malformed one. */
        zmq_send(self->sock, "1.0", 3, ZMQ_SNDMORE);
        if (n >= 2)
            zmq_send(self->sock, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE);
        else
            zmq_send(self->sock, "", 0, ZMQ_SNDMORE);
        zmq_send(self->sock, status, 3, ZMQ_SNDMORE);
        zmq_send(self->sock, text, strlen(text), ZMQ_SNDMORE);
        zmq_send(self->sock, admit ? user : "", admit ? 40 : 0, ZMQ_SNDMORE);
        zmq_send(self->sock, "", 0, 0);
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
    }
}
