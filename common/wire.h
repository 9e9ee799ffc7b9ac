/*
 * wire.h - the coordinator <-> agent protocol over ZeroMQ, versions 2 and 3.
 *
 * Sockets.  Each coordinator binds one ROUTER socket (its "bid endpoint").
 * Each agent connects one DEALER socket to every coordinator of its region
 * (leader and standbys).  Both sides use CURVE: the coordinator is the
 * CURVE server, agents are CURVE clients that know the coordinator's
 * public key; the coordinator admits only agents whose public keys are
 * listed in its authorized-keys file (checked by the ZAP handler below).
 *
 * Messages.  A message is three frames (a ROUTER adds the peer's identity
 * frame in front, as ZeroMQ does):
 *
 *     frame 1  "gpupool/N"        protocol and version, exact bytes
 *     frame 2  type               "HELLO", "WELCOME", "CFB", "BIDS", "AWARD", "LOGS"
 *                                 or "LOGDATA"
 *     frame 3  body               one JSON object, UTF-8, at most
 *                                 GP_WIRE_MAX_BYTES bytes
 *
 * Versions.  This release speaks gpupool/3 and gpupool/2 (the previous
 * release's); the messages are the same in both but for WELCOME, which
 * only gpupool/3 has.  An agent says in its HELLO which versions it speaks
 * ("versions"; a gpupool/2 agent says nothing: it speaks its envelope's)
 * and sends it in the oldest of them, so that a coordinator of the
 * previous release reads it too; a coordinator of this release answers
 * WELCOME with the newest version both speak, or with an error when they
 * share none, and both then speak that version (README "Versions and
 * upgrades").  HELLO and WELCOME are therefore read in any "gpupool/N"
 * envelope (msg->version says which), so that a peer outside the policy
 * is refused with words rather than silence; every other message must
 * come in a version this release speaks.
 *
 * A message with another frame count, an unknown version or type, a body
 * that is not a JSON object, or a body over the limit is dropped and
 * counted by the receiver (gp_wire_recv returns -1 with the reason); it
 * never ends the connection or the process.  The bodies are described in
 * README.md ("Protocol reference") and validated by their readers.
 *
 * Keys.  A key pair is stored as two files: NAME.key (mode 0600; the
 * public and the secret key) and NAME.pub (the public key), each line
 * "public-key = <40 Z85 chars>" / "secret-key = <40 Z85 chars>".  An
 * authorized-keys file lists one Z85 public key per line (a .pub file's
 * line, or the bare key); '#' starts a comment.
 */
#ifndef GP_WIRE_H
#define GP_WIRE_H

#include <stddef.h>

#include <jansson.h>

#include "err.h"

#define GP_WIRE_VERSION "gpupool/3"   /* the newest version spoken */
#define GP_WIRE_PROTO 3                /* its number */
#define GP_WIRE_PROTO_MIN 2            /* the oldest version spoken (the previous release's) */
#define GP_WIRE_MAX_BYTES (8u << 20)

typedef enum {
    GP_MSG_NONE = 0,
    GP_MSG_HELLO,   /* agent -> coordinator: who I am, which nodes I host  */
    GP_MSG_CFB,     /* coordinator -> agent: a batch call for bids          */
    GP_MSG_BIDS,    /* agent -> coordinator: bids and refusals for a call   */
    GP_MSG_AWARD,   /* coordinator -> agent: committed awards (a hint; etcd is the truth) */
    GP_MSG_WELCOME, /* coordinator -> agent (gpupool/3): the version chosen, or why none */
    GP_MSG_LOGS,    /* coordinator -> agent: a request for a job's stdout/stderr */
    GP_MSG_LOGDATA, /* agent -> coordinator: the answer                     */
} gp_msg_type_t;

#define GP_MSG_LAST GP_MSG_LOGDATA

const char *gp_msg_type_name(gp_msg_type_t type);

/* A received message.  Owns body (json_decref'd by gp_wire_msg_clear)
 * and text (freed by it).  A message received by gp_wire_recv_text in the
 * type asked for has its body as text alone (body NULL until
 * gp_wire_msg_body builds it); every other one has body and no text. */
typedef struct {
    char identity[256];      /* ROUTER only: the peer's routing id */
    size_t identity_len;
    char peer_key[41];       /* the peer's CURVE public key (Z85) when known, else "" */
    gp_msg_type_t type;
    int version;             /* N of the "gpupool/N" envelope */
    json_t *body;
    char *text;              /* gp_wire_recv_text: the body as received, NUL-terminated */
    size_t text_len;
} gp_wire_msg_t;

void gp_wire_msg_clear(gp_wire_msg_t *msg);

/* Send one message.  identity is the ROUTER destination (NULL on a DEALER).
 * Does not take ownership of body.  Non-blocking: a full queue is an error
 * (GP_ERR_TRANSPORT), never a stall of the caller's loop. */
int gp_wire_send(void *sock, const void *identity, size_t identity_len, gp_msg_type_t type,
                 const json_t *body, gp_err_t *err);
/* The same in the envelope of protocol version (1..999). */
int gp_wire_send_v(void *sock, const void *identity, size_t identity_len, int version,
                   gp_msg_type_t type, const json_t *body, gp_err_t *err);
/* The same with the body as JSON text already (len bytes; the caller
 * wrote one JSON object), for messages built as text (util.h's gp_ebuf). */
int gp_wire_send_text_v(void *sock, const void *identity, size_t identity_len, int version,
                        gp_msg_type_t type, const char *text, size_t len, gp_err_t *err);

/* "gpupool/N" -> N, or -1. */
int gp_wire_version_parse(const char *s);
/* The versions a daemon speaks, newest first: those of list (a test hook:
 * "gpupool/2" or "gpupool/1,gpupool/2", as GPUPOOL_FAULT_PROTOCOLS gives
 * it, so that a test runs a daemon as one of another release would
 * speak), or when list is NULL this release's (GP_WIRE_PROTO down to
 * GP_WIRE_PROTO_MIN).  Returns how many, or -1 (err) for a bad list. */
int gp_wire_versions_spoken(const char *list, int *out, int max, gp_err_t *err);

/* Receive one message without blocking.  Returns 1 and fills msg, 0 when
 * nothing is waiting, -1 when a malformed message was read and dropped
 * (err says why; the caller counts it; on a ROUTER, msg->identity still
 * names the sender, and msg holds nothing else). */
int gp_wire_recv(void *sock, gp_wire_msg_t *msg, gp_err_t *err);
/* The same, but a message of type text_type keeps its body as text, not
 * yet judged: for a hot reader that reads it in place (jscan.h).  Such a
 * reader falls back to gp_wire_msg_body for what it does not take, which
 * judges the text as gp_wire_recv would have: NULL (err says why; the
 * caller drops and counts the message) when it is not a JSON object, or
 * repeats a key. */
int gp_wire_recv_text(void *sock, gp_wire_msg_t *msg, gp_msg_type_t text_type, gp_err_t *err);
/* msg's body, parsed from its text when it was received as text (and
 * kept); borrowed, NULL when the text is not a valid body. */
json_t *gp_wire_msg_body(gp_wire_msg_t *msg, gp_err_t *err);

/* data (a routing id, a name from a peer) made safe for a log line's
 * key=value field: printable ASCII but space, quote and backslash, others
 * shown as '?', truncated to size - 1, "-" when empty.  Returns buf. */
char *gp_wire_printable(const void *data, size_t len, char *buf, size_t size);

/* ---- CURVE keys ---- */

typedef struct {
    char public_key[41];
    char secret_key[41];
} gp_curve_keys_t;

int gp_curve_generate(gp_curve_keys_t *keys, gp_err_t *err);
/* Write PREFIX.key (0600) and PREFIX.pub; refuses to overwrite. */
int gp_curve_save(const char *prefix, const gp_curve_keys_t *keys, gp_err_t *err);
/* Read a .key file (both keys) or a .pub file (public only; secret "").*/
int gp_curve_load(const char *path, gp_curve_keys_t *keys, gp_err_t *err);

/* Make sock a CURVE server (coordinator) / client (agent). */
int gp_curve_server(void *sock, const gp_curve_keys_t *keys, gp_err_t *err);
int gp_curve_client(void *sock, const gp_curve_keys_t *keys, const char *server_public,
                    gp_err_t *err);

/* ---- ZAP: who may connect ---- */

typedef struct gp_zap gp_zap_t;

/* Bind the ZAP handler in ctx (one per context) and load the authorized
 * keys.  Poll gp_zap_socket() for input and call gp_zap_handle(). */
gp_zap_t *gp_zap_new(void *ctx, const char *authorized_keys_path, gp_err_t *err);
void gp_zap_destroy(gp_zap_t **self_p);
void *gp_zap_socket(gp_zap_t *self);
/* Answer every pending authentication request. */
void gp_zap_handle(gp_zap_t *self);
/* Re-read the authorized keys (SIGHUP); on error the old set stays. */
int gp_zap_reload(gp_zap_t *self, const char *authorized_keys_path, gp_err_t *err);
/* Handshakes accepted / refused so far. */
unsigned long gp_zap_accepted(const gp_zap_t *self);
unsigned long gp_zap_denied(const gp_zap_t *self);

#endif
