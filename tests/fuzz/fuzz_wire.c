/* The wire-message parser (gp_wire_recv) on a real ZeroMQ pair over inproc:
 * the input is split into frames at each NUL byte and sent as one
 * multipart message; then the records a body may carry go through the
 * model's decoders (gp_node_from_json, gp_job_from_json, gp_alloc_from_json),
 * the body itself and every object inside its arrays. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "fuzz.h"
#include "model.h"
#include "wire.h"

#include "banned.h"

static void *s_ctx, *s_tx, *s_rx;

static void s_decode(const json_t *o)
{
    gp_err_t err;
    gp_node_t *node = malloc(sizeof *node);
    gp_job_t *job = malloc(sizeof *job);
    gp_alloc_t *al = malloc(sizeof *al);
    if (node && job && al) {
        (void)gp_node_from_json(o, node, &err);
        (void)gp_job_from_json(o, job, &err);
        (void)gp_alloc_from_json(o, al, &err);
    }
    free(node);
    free(job);
    free(al);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (s_ctx == NULL) {
        s_ctx = zmq_ctx_new();
        s_tx = zmq_socket(s_ctx, ZMQ_PAIR);
        s_rx = zmq_socket(s_ctx, ZMQ_PAIR);
        int hwm = 0;
        zmq_setsockopt(s_tx, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(s_rx, ZMQ_RCVHWM, &hwm, sizeof hwm);
        if (zmq_bind(s_rx, "inproc://fuzz-wire") < 0 || zmq_connect(s_tx, "inproc://fuzz-wire") < 0)
            abort();
    }
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i == size || data[i] == 0) {
            int more = i < size ? ZMQ_SNDMORE : 0;
            if (zmq_send(s_tx, data + start, i - start, more) < 0)
                abort();
            start = i + 1;
        }
    }
    gp_wire_msg_t msg;
    gp_err_t err;
    int rc = gp_wire_recv(s_rx, &msg, &err);
    assert(rc != 0);   /* a message was sent: it is read or dropped */
    if (rc == 1) {
        assert(json_is_object(msg.body));
        s_decode(msg.body);
        const char *key;
        json_t *v;
        json_object_foreach(msg.body, key, v) {
            size_t k;
            json_t *item;
            if (json_is_array(v))
                json_array_foreach(v, k, item) s_decode(item);
        }
        gp_wire_msg_clear(&msg);
    }
    return 0;
}
