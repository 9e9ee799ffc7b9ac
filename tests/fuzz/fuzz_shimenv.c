/* The shim's environment parser (gp_shim_config_parse): the input is the
 * environment, "NAME=value" lines. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "shim_config.h"

#include "banned.h"

static char *s_env;
static size_t s_len;

static const char *s_get(const char *name)
{
    size_t nl = strlen(name);
    for (char *line = s_env; line && line < s_env + s_len;) {
        char *end = memchr(line, '\0', (size_t)(s_env + s_len - line));
        if (!strncmp(line, name, nl) && line[nl] == '=')
            return line + nl + 1;
        line = end ? end + 1 : NULL;
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_env = malloc(size + 1);
    if (s_env == NULL)
        return 0;
    memcpy(s_env, data, size);
    s_env[size] = '\0';
    for (size_t i = 0; i < size; i++)
        if (s_env[i] == '\n')
            s_env[i] = '\0';   /* each value ends at its line's end */
    s_len = size;
    gp_shim_config_t cfg;
    gp_err_t err;
    if (gp_shim_config_parse(&cfg, s_get, &err) == 0) {
        gp_slice_config_t sc;
        gp_shim_config_to_slice(&cfg, &sc);
    }
    free(s_env);
    s_env = NULL;
    return 0;
}
