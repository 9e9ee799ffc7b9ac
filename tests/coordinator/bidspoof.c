/*
 * bidspoof - an agent that bids for what it was not asked.
 *
 *   bidspoof ENDPOINT REGION NODE
 *
 * Connects a DEALER socket (routing id "bidspoof") to a coordinator's bid
 * endpoint, says HELLO for NODE every 300 ms, and answers the first call
 * for bids with a BIDS of that round for a job the call did not name
 * ("not-asked").  Exits 0 once that answer has left, 1 when no call came
 * within 30 s.  metrics.t checks that the coordinator counts and logs it.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <zmq.h>

#include "util.h"
#include "wire.h"

#include "banned.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bidspoof ENDPOINT REGION NODE\n");
        return 64;
    }
    void *ctx = zmq_ctx_new();
    void *s = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    int linger = 2000, rc = 1;
    gp_err_t err;
    if (s == NULL || zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) < 0 ||
        zmq_setsockopt(s, ZMQ_ROUTING_ID, "bidspoof", 8) < 0 || zmq_connect(s, argv[1]) < 0) {
        fprintf(stderr, "bidspoof: %s\n", zmq_strerror(zmq_errno()));
        goto cleanup;
    }
    json_t *hello = json_pack("{s:s,s:[s]}", "region", argv[2], "nodes", argv[3]);
    int64_t deadline = gp_mono_ms() + 30000, next_hello = 0;
    while (rc != 0 && gp_mono_ms() < deadline) {
        if (gp_mono_ms() >= next_hello) {
            gp_wire_send(s, NULL, 0, GP_MSG_HELLO, hello, &err);
            next_hello = gp_mono_ms() + 300;
        }
        zmq_pollitem_t item = { s, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&item, 1, 100) <= 0)
            continue;
        gp_wire_msg_t msg;
        if (gp_wire_recv(s, &msg, &err) != 1)
            continue;
        if (msg.type == GP_MSG_CFB) {
            json_t *bids = json_pack("{s:O,s:[{s:s,s:s,s:f,s:{}}]}", "round",
                                     json_object_get(msg.body, "round"), "bids", "job", "not-asked",
                                     "node", argv[3], "score", 1.0, "alloc");
            if (bids && gp_wire_send(s, NULL, 0, GP_MSG_BIDS, bids, &err) == 0)
                rc = 0;
            json_decref(bids);
        }
        gp_wire_msg_clear(&msg);
    }
    json_decref(hello);
    if (rc != 0)
        fprintf(stderr, "bidspoof: no call for bids came\n");
cleanup:
    if (s)
        zmq_close(s);
    if (ctx)
        zmq_ctx_term(ctx);
    return rc;
}
