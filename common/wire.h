/*
 * wire.h - the coordinator <-> agent protocol over ZeroMQ, gpupool/2.
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
 *     frame 1  "gpupool/2"        protocol and version, exact bytes
 *     frame 2  type               "HELLO", "CFB", "BIDS" or "AWARD"
 *     frame 3  body               one JSON object, UTF-8, at most
 *                                 GP_WIRE_MAX_BYTES bytes
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

#define GP_WIRE_VERSION "gpupool/2"
#define GP_WIRE_MAX_BYTES (8u << 20)

typedef enum {
    GP_MSG_NONE = 0,
    GP_MSG_HELLO,   /* agent -> coordinator: who I am, which nodes I host  */
    GP_MSG_CFB,     /* coordinator -> agent: a batch call for bids          */
    GP_MSG_BIDS,    /* agent -> coordinator: bids and refusals for a call   */
    GP_MSG_AWARD,   /* coordinator -> agent: committed awards (a hint; etcd is the truth) */
} gp_msg_type_t;

const char *gp_msg_type_name(gp_msg_type_t type);

/* A received message.  Owns body (json_decref'd by gp_wire_msg_clear). */
typedef struct {
    char identity[256];      /* ROUTER only: the peer's routing id */
    size_t identity_len;
    char peer_key[41];       /* the peer's CURVE public key (Z85) when known, else "" */
    gp_msg_type_t type;
    json_t *body;
} gp_wire_msg_t;

void gp_wire_msg_clear(gp_wire_msg_t *msg);

/* Send one message.  identity is the ROUTER destination (NULL on a DEALER).
 * Does not take ownership of body.  Non-blocking: a full queue is an error
 * (GP_ERR_TRANSPORT), never a stall of the caller's loop. */
int gp_wire_send(void *sock, const void *identity, size_t identity_len, gp_msg_type_t type,
                 const json_t *body, gp_err_t *err);

/* Receive one message without blocking.  Returns 1 and fills msg, 0 when
 * nothing is waiting, -1 when a malformed message was read and dropped
 * (err says why; the caller counts it; on a ROUTER, msg->identity still
 * names the sender, and msg holds nothing else). */
int gp_wire_recv(void *sock, gp_wire_msg_t *msg, gp_err_t *err);

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
