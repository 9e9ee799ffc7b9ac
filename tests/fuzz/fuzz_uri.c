/* The HTTP request target parser (common/uri.c): whatever bytes arrive as
 * a target, it answers or refuses, and an answer holds no NUL and is UTF-8. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "uri.h"

#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *target = malloc(size + 1);
    if (target == NULL)
        return 0;
    memcpy(target, data, size);
    target[size] = '\0';
    gp_uri_t *u = NULL;
    gp_err_t err;
    if (gp_uri_parse(target, &u, &err) == 0) {
        const char *p = gp_uri_path(u);
        assert(p[0] == '/' && gp_utf8_valid(p, strlen(p)));
        assert(strstr(p, "/../") == NULL && strstr(p, "/./") == NULL);
        const char *q = gp_uri_query(u, "q");
        assert(q == NULL || gp_utf8_valid(q, strlen(q)));
    }
    gp_uri_destroy(&u);
    free(target);
    return 0;
}
