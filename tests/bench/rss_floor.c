/*
 * rss_floor - the resident memory any program pays for the libraries the
 * node agent is built on, before it does any work of its own.
 *
 * It links exactly the agent's libraries (libcurl, jansson, OpenSSL,
 * libzmq, libmicrohttpd), initialises each the way the agent does (libcurl's
 * global init, a ZeroMQ context with one DEALER socket, an HTTP daemon on a
 * loopback port) and prints its own resident set:
 *
 *   rss_kib N
 *
 * The agent benchmark prints it beside the agent's idle RSS: the difference
 * is what the agent itself adds.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "banned.h"

static enum MHD_Result s_answer(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *data,
                                size_t *size, void **state)
{
    (void)cls, (void)conn, (void)url, (void)method, (void)version, (void)data, (void)size,
        (void)state;
    return MHD_NO;
}

int main(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "rss_floor: curl_global_init failed\n");
        return 1;
    }
    CURL *easy = curl_easy_init();
    json_t *obj = json_pack("{s:i}", "nodes", 1);
    void *ctx = zmq_ctx_new();
    void *sock = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    struct sockaddr_in lo = { .sin_family = AF_INET, .sin_port = 0,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                                            s_answer, NULL, MHD_OPTION_SOCK_ADDR, &lo,
                                            MHD_OPTION_END);
    if (easy == NULL || obj == NULL || sock == NULL || d == NULL) {
        fprintf(stderr, "rss_floor: a library did not initialise\n");
        return 1;
    }
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long rss = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &rss) == 1)
            break;
    if (f)
        fclose(f);
    printf("rss_kib %ld\n", rss);
    json_decref(obj);
    MHD_stop_daemon(d);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    curl_easy_cleanup(easy);
    curl_global_cleanup();
    return rss > 0 ? 0 : 1;
}
