/* A watch stream's message (common/etcd_watch.c, etcd's WatchResponse in
 * protobuf): whatever bytes a member sends, gp_etcd_watch_msg_parse takes
 * them or refuses them, and what it takes holds only kvs whose key and value
 * are NUL-terminated at their lengths. */
#include <assert.h>
#include <string.h>

#include "etcd_internal.h"
#include "fuzz.h"

#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gp_etcd_watch_msg_t m;
    gp_err_t err;
    if (gp_etcd_watch_msg_parse(data, size, &m, &err) < 0) {
        assert(m.events == NULL && m.n_events == 0 && err.msg[0] != '\0');
        return 0;
    }
    assert((m.events == NULL) == (m.n_events == 0));
    assert(memchr(m.cancel_reason, '\0', sizeof(m.cancel_reason)) != NULL);
    for (size_t i = 0; i < m.n_events; i++) {
        const gp_etcd_event_t *e = &m.events[i];
        assert(e->type == GP_ETCD_EVENT_PUT || e->type == GP_ETCD_EVENT_DELETE);
        assert(e->kv.key && e->kv.key[e->kv.key_len] == '\0');
        assert(e->kv.value && e->kv.value[e->kv.value_len] == '\0');
        assert(!e->has_prev_kv || (e->prev_kv.key && e->prev_kv.value));
    }
    gp_etcd_watch_msg_free(&m);
    return 0;
}
