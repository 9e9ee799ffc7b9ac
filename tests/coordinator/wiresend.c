/*
 * wiresend - send one raw multi-frame ZeroMQ message to a coordinator.
 *
 *   wiresend ENDPOINT FRAME...
 *
 * Connects a DEALER socket (as an agent does) to ENDPOINT, sends the
 * frames as one message, waits until it has left (linger), exits 0.  Tests
 * use it to send what no agent would: a wrong version, an unknown type, a
 * body that is not JSON.
 */
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "banned.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: wiresend ENDPOINT FRAME...\n");
        return 64;
    }
    void *ctx = zmq_ctx_new();
    void *s = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    int linger = 2000, rc = 1;
    if (s == NULL || zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) < 0 ||
        zmq_setsockopt(s, ZMQ_ROUTING_ID, "wiresend", 8) < 0 || zmq_connect(s, argv[1]) < 0) {
        fprintf(stderr, "wiresend: %s\n", zmq_strerror(zmq_errno()));
        goto cleanup;
    }
    rc = 0;
    for (int i = 2; i < argc; i++) {
        if (zmq_send(s, argv[i], strlen(argv[i]), i + 1 < argc ? ZMQ_SNDMORE : 0) < 0) {
            fprintf(stderr, "wiresend: %s\n", zmq_strerror(zmq_errno()));
            rc = 1;
            break;
        }
    }
cleanup:
    if (s)
        zmq_close(s);
    if (ctx)
        zmq_ctx_term(ctx);
    return rc;
}
