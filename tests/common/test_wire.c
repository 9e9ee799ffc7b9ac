/* The wire protocol: CURVE with an authorized-keys list, the three-frame
 * envelope, and malformed messages dropped with a reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "tap.h"
#include "util.h"
#include "wire.h"

static void *s_ctx;
static gp_zap_t *s_zap;

/* Poll the server and the ZAP handler until a message arrives or ms pass. */
static int s_recv_as(void *server, gp_wire_msg_t *msg, gp_err_t *err, int ms,
                     gp_msg_type_t text_type)
{
    int64_t end = gp_mono_ms() + ms;
    while (gp_mono_ms() < end) {
        zmq_pollitem_t items[] = { { server, 0, ZMQ_POLLIN, 0 },
                                   { gp_zap_socket(s_zap), 0, ZMQ_POLLIN, 0 } };
        zmq_poll(items, 2, 20);
        gp_zap_handle(s_zap);
        int rc = gp_wire_recv_text(server, msg, text_type, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int s_recv(void *server, gp_wire_msg_t *msg, gp_err_t *err, int ms)
{
    return s_recv_as(server, msg, err, ms, GP_MSG_NONE);
}

static void *s_client(const gp_curve_keys_t *keys, const char *server_pub, const char *ep)
{
    void *s = zmq_socket(s_ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    gp_curve_client(s, keys, server_pub, NULL);
    zmq_connect(s, ep);
    return s;
}

int main(void)
{
    char dir[] = "/tmp/gpupool-test-wire.XXXXXX";
    if (mkdtemp(dir) == NULL)
        bail_out("mkdtemp");
    char prefix[128], path[160], auth[160];
    gp_err_t err;
    gp_curve_keys_t server_keys, agent_keys, rogue_keys, loaded;
    ok(gp_curve_generate(&server_keys, &err) == 0 && gp_curve_generate(&agent_keys, &err) == 0 &&
       gp_curve_generate(&rogue_keys, &err) == 0, "key pairs generate");
    snprintf(prefix, sizeof prefix, "%s/agent", dir);
    is_int(gp_curve_save(prefix, &agent_keys, &err), 0, "a key pair saves");
    is_int(gp_curve_save(prefix, &agent_keys, &err), -1, "saving refuses to overwrite");
    snprintf(path, sizeof path, "%s.key", prefix);
    is_int(gp_curve_load(path, &loaded, &err), 0, "the .key file loads");
    ok(!strcmp(loaded.public_key, agent_keys.public_key) &&
       !strcmp(loaded.secret_key, agent_keys.secret_key), "with both keys");
    snprintf(path, sizeof path, "%s.pub", prefix);
    ok(gp_curve_load(path, &loaded, &err) == 0 && loaded.secret_key[0] == '\0',
       "the .pub file loads the public key only");
    snprintf(path, sizeof path, "%s/bad.key", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "public-key = %s\nsecret-key = %s\n", agent_keys.public_key,
            rogue_keys.secret_key);
    fclose(f);
    is_int(gp_curve_load(path, &loaded, &err), -1, "a secret that does not match is refused");

    snprintf(auth, sizeof auth, "%s/authorized", dir);
    f = fopen(auth, "w");
    fprintf(f, "# agents\npublic-key = %s\n", agent_keys.public_key);
    fclose(f);

    s_ctx = zmq_ctx_new();
    s_zap = gp_zap_new(s_ctx, auth, &err);
    ok(s_zap != NULL, "the ZAP handler starts");
    void *server = zmq_socket(s_ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(server, ZMQ_LINGER, &zero, sizeof zero);
    gp_curve_server(server, &server_keys, &err);
    is_int(zmq_bind(server, "tcp://127.0.0.1:*"), 0, "server binds a free port");
    char ep[256];
    size_t epl = sizeof ep;
    zmq_getsockopt(server, ZMQ_LAST_ENDPOINT, ep, &epl);

    void *agent = s_client(&agent_keys, server_keys.public_key, ep);
    void *rogue = s_client(&rogue_keys, server_keys.public_key, ep);
    json_t *hello = json_pack("{s:s,s:[s,s]}", "agent", "a1", "nodes", "n1", "n2");
    is_int(gp_wire_send(agent, NULL, 0, GP_MSG_HELLO, hello, &err), 0, "agent sends HELLO");
    gp_wire_send(rogue, NULL, 0, GP_MSG_HELLO, hello, &err);

    gp_wire_msg_t msg;
    is_int(s_recv(server, &msg, &err, 3000), 1, "server receives a message");
    is_int(msg.type, GP_MSG_HELLO, "of type HELLO");
    is_str(json_string_value(json_object_get(msg.body, "agent")), "a1", "from the authorized agent");
    is_str(msg.peer_key, agent_keys.public_key, "and knows its CURVE key");
    char agent_id[256];
    size_t agent_idl = msg.identity_len;
    memcpy(agent_id, msg.identity, agent_idl);
    json_t *reply = json_pack("{s:i}", "round", 1);
    is_int(gp_wire_send(server, msg.identity, msg.identity_len, GP_MSG_CFB, reply, &err), 0,
           "server answers through the routing id");
    gp_wire_msg_clear(&msg);
    is_int(s_recv(server, &msg, &err, 500), 0, "nothing arrives from the unauthorized key");
    ok(gp_zap_denied(s_zap) >= 1, "its handshake was refused and counted");

    gp_wire_msg_t got;
    int rc = 0;
    for (int i = 0; i < 100 && (rc = gp_wire_recv(agent, &got, &err)) == 0; i++)
        usleep(20000);
    is_int(rc, 1, "agent receives the answer");
    is_int(got.type, GP_MSG_CFB, "of type CFB");
    gp_wire_msg_clear(&got);

    char pr[8];
    is_str(gp_wire_printable("\0ab\"c d\\", 8, pr, sizeof pr), "?ab?c?d", "printable: "
           "control bytes, quote, space and backslash shown as ?, truncated");
    is_str(gp_wire_printable("", 0, pr, sizeof pr), "-", "printable: empty is -");

    /* Malformed messages from an authorized peer: each dropped with a reason. */
    struct { const char *frames[4]; int n; const char *why; } bad[] = {
        { { "gpupool/9", "BIDS", "{}" }, 3, "unknown protocol version gpupool/9" },
        { { "gpupool/1", "CFB", "{}" }, 3, "unknown protocol version gpupool/1" },
        { { "gpupool/02", "HELLO", "{}" }, 3, "unknown protocol" },
        { { "pool/2", "HELLO", "{}" }, 3, "unknown protocol" },
        { { "gpupool/2", "SHOUT", "{}" }, 3, "unknown message type" },
        { { "gpupool/2", "HELLO", "[1,2" }, 3, "not a JSON object" },
        { { "gpupool/2", "HELLO", "[1]" }, 3, "not a JSON object" },
        { { "gpupool/2", "HELLO" }, 2, "frames" },
        { { "gpupool/2", "HELLO", "{}", "{}" }, 4, "frames" },
    };
    for (size_t i = 0; i < GP_ARRAY_LEN(bad); i++) {
        for (int j = 0; j < bad[i].n; j++)
            zmq_send(agent, bad[i].frames[j], strlen(bad[i].frames[j]),
                     j + 1 < bad[i].n ? ZMQ_SNDMORE : 0);
        rc = s_recv(server, &msg, &err, 3000);
        ok(rc == -1 && strstr(err.msg, bad[i].why), "malformed message %zu dropped: %s", i,
           err.msg);
        ok(rc == -1 && msg.identity_len == agent_idl && !memcmp(msg.identity, agent_id, agent_idl) &&
               msg.body == NULL,
           "and the dropped message still names its sender (nothing else)");
    }
    size_t big = GP_WIRE_MAX_BYTES + 10;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    zmq_send(agent, "gpupool/3", 9, ZMQ_SNDMORE);
    zmq_send(agent, "BIDS", 4, ZMQ_SNDMORE);
    zmq_send(agent, huge, big, 0);
    free(huge);
    rc = s_recv(server, &msg, &err, 5000);
    ok(rc == -1 && strstr(err.msg, "exceeds the limit"), "an oversized body is dropped: %s",
       err.msg);
    gp_wire_send(agent, NULL, 0, GP_MSG_HELLO, hello, &err);
    is_int(s_recv(server, &msg, &err, 3000), 1, "a good message after bad ones still arrives");
    is_int(msg.version, GP_WIRE_PROTO, "in this release's newest version");
    gp_wire_msg_clear(&msg);

    /* A type received as text: its body is not parsed until asked, and
     * then judged as gp_wire_recv judges it. */
    const char *bids = "{\"round\":7,\"bids\":[]}";
    zmq_send(agent, "gpupool/3", 9, ZMQ_SNDMORE);
    zmq_send(agent, "BIDS", 4, ZMQ_SNDMORE);
    zmq_send(agent, bids, strlen(bids), 0);
    is_int(s_recv_as(server, &msg, &err, 3000, GP_MSG_BIDS), 1, "a BIDS received as text");
    ok(msg.body == NULL && msg.text && msg.text_len == strlen(bids) && !strcmp(msg.text, bids),
       "...holds its body's text, not parsed");
    json_t *tree = gp_wire_msg_body(&msg, &err);
    is_int(json_integer_value(json_object_get(tree, "round")), 7, "...and the tree when asked");
    gp_wire_msg_clear(&msg);
    const char *twice = "{\"round\":7,\"round\":8,\"bids\":[]}";
    zmq_send(agent, "gpupool/3", 9, ZMQ_SNDMORE);
    zmq_send(agent, "BIDS", 4, ZMQ_SNDMORE);
    zmq_send(agent, twice, strlen(twice), 0);
    is_int(s_recv_as(server, &msg, &err, 3000, GP_MSG_BIDS), 1, "a BIDS repeating a key, as text");
    ok(gp_wire_msg_body(&msg, &err) == NULL && strstr(err.msg, "not a JSON object"),
       "...is judged as gp_wire_recv judges it when its tree is asked: %s", err.msg);
    gp_wire_msg_clear(&msg);
    gp_wire_send(agent, NULL, 0, GP_MSG_HELLO, hello, &err);
    is_int(s_recv_as(server, &msg, &err, 3000, GP_MSG_BIDS), 1, "another type is parsed as before");
    ok(msg.body && msg.text == NULL, "...with its tree and no text");
    gp_wire_msg_clear(&msg);

    /* Negotiation: HELLO (and WELCOME) are read in any version, so that a
     * peer outside the policy can be told why; the envelope says which. */
    gp_wire_send_v(agent, NULL, 0, 9, GP_MSG_HELLO, hello, &err);
    is_int(s_recv(server, &msg, &err, 3000), 1, "a HELLO in gpupool/9 is read");
    is_int(msg.version, 9, "...and says it came in gpupool/9");
    gp_wire_msg_clear(&msg);
    gp_wire_send_v(agent, NULL, 0, GP_WIRE_PROTO_MIN, GP_MSG_BIDS, reply, &err);
    is_int(s_recv(server, &msg, &err, 3000), 1, "a BIDS in the previous version is read");
    is_int(msg.version, GP_WIRE_PROTO_MIN, "...as that version");
    gp_wire_msg_clear(&msg);
    int vs[8];
    is_int(gp_wire_versions_spoken(NULL, vs, 8, &err), 2, "this release speaks two versions");
    ok(vs[0] == GP_WIRE_PROTO && vs[1] == GP_WIRE_PROTO_MIN, "...newest first");
    is_int(gp_wire_versions_spoken("gpupool/1,gpupool/2", vs, 8, &err), 2, "a test list of two");
    ok(vs[0] == 2 && vs[1] == 1, "...sorted newest first");
    is_int(gp_wire_versions_spoken("gpupool/2,2", vs, 8, &err), -1, "a bad list is refused");
    is_int(gp_wire_version_parse("gpupool/3"), 3, "gpupool/3 is version 3");
    is_int(gp_wire_version_parse("gpupool/3x"), -1, "gpupool/3x is none");

    json_decref(hello);
    json_decref(reply);
    zmq_close(agent);
    zmq_close(rogue);
    zmq_close(server);
    gp_zap_destroy(&s_zap);
    zmq_ctx_term(s_ctx);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        diag("could not remove %s", dir);
    return done_testing();
}
