#include "keys.h"

#include <stdio.h>
#include <string.h>

#include "banned.h"

bool gp_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 127 || name[0] == '.')
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return false;
    return true;
}

bool gp_prefix_valid(const char *prefix)
{
    size_t n = prefix ? strlen(prefix) : 0;
    return n >= 1 && n < 200 && prefix[0] == '/' && prefix[n - 1] == '/';
}

static char *s_key(char *buf, const char *prefix, const char *kind, const char *a, const char *b)
{
    if (a == NULL)
        snprintf(buf, GP_KEY_MAX, "%s%s/", prefix, kind);
    else if (b == NULL)
        snprintf(buf, GP_KEY_MAX, "%s%s/%s%s", prefix, kind, a, "/");
    else
        snprintf(buf, GP_KEY_MAX, "%s%s/%s/%s", prefix, kind, a, b);
    return buf;
}

/* Two-level keys (kind/<a>/<b>): with b NULL the folder of a. */
char *gp_key_node(char *buf, const char *prefix, const char *region, const char *node)
{
    return s_key(buf, prefix, "nodes", region, node);
}

char *gp_key_notready(char *buf, const char *prefix, const char *region, const char *node)
{
    return s_key(buf, prefix, "notready", region, node);
}

char *gp_key_usage(char *buf, const char *prefix, const char *region, const char *node)
{
    return s_key(buf, prefix, "usage", region, node);
}

char *gp_key_alloc(char *buf, const char *prefix, const char *node, const char *job)
{
    return s_key(buf, prefix, "alloc", node, job);
}

char *gp_key_coordinator(char *buf, const char *prefix, const char *region, const char *id)
{
    return s_key(buf, prefix, "coordinators", region, id);
}

char *gp_key_agent(char *buf, const char *prefix, const char *region, const char *agent)
{
    return s_key(buf, prefix, "agents", region, agent);
}

/* One-level keys (kind/<a>): with a NULL the folder. */
static char *s_key1(char *buf, const char *prefix, const char *kind, const char *a)
{
    if (a == NULL)
        snprintf(buf, GP_KEY_MAX, "%s%s/", prefix, kind);
    else
        snprintf(buf, GP_KEY_MAX, "%s%s/%s", prefix, kind, a);
    return buf;
}

char *gp_key_job(char *buf, const char *prefix, const char *job)
{
    return s_key1(buf, prefix, "jobs", job);
}

char *gp_key_cordon(char *buf, const char *prefix, const char *node)
{
    return s_key1(buf, prefix, "cordons", node);
}

char *gp_key_drain(char *buf, const char *prefix, const char *node)
{
    return s_key1(buf, prefix, "drains", node);
}

char *gp_key_schema(char *buf, const char *prefix)
{
    snprintf(buf, GP_KEY_MAX, "%sschema", prefix);
    return buf;
}

char *gp_key_rightsize(char *buf, const char *prefix, const char *cls)
{
    return s_key1(buf, prefix, "rightsize", cls);
}

char *gp_key_cache_end(char *buf, const char *prefix)
{
    snprintf(buf, GP_KEY_MAX, "%susage/", prefix);
    return buf;
}

char *gp_key_leader(char *buf, const char *prefix, const char *region)
{
    return s_key1(buf, prefix, "leader", region);
}

const char *gp_key_base(const char *key, size_t key_len, size_t *base_len)
{
    size_t i = key_len;
    while (i > 0 && key[i - 1] != '/')
        i--;
    if (base_len)
        *base_len = key_len - i;
    return key + i;
}
