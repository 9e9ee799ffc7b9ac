#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "util.h"

#include "banned.h"

/* Parse one value for opt into the scratch struct. */
static int s_set(const gp_opt_t *opt, void *cfg, const char *val, const char *where,
                 gp_err_t *err)
{
    char *field = (char *)cfg + opt->offset;
    int64_t i64;
    uint64_t u64;
    double d;
    int bounded = !(opt->min == 0 && opt->max == 0);

    switch (opt->type) {
    case GP_OPT_STRING: {
        char *copy = strdup(val);
        if (copy == NULL)
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    case GP_OPT_BOOL:
        if (!strcasecmp(val, "yes") || !strcasecmp(val, "true") || !strcmp(val, "1") ||
            !strcasecmp(val, "on")) {
            *(int *)field = 1;
            return 0;
        }
        if (!strcasecmp(val, "no") || !strcasecmp(val, "false") || !strcmp(val, "0") ||
            !strcasecmp(val, "off")) {
            *(int *)field = 0;
            return 0;
        }
        return gp_err_set(err, GP_ERR_INVALID, "%s: %s: expected yes or no, got \"%s\"", where,
                          opt->name, val);
    case GP_OPT_INT:
        if (gp_parse_int64(val, bounded ? opt->min : INT64_MIN, bounded ? opt->max : INT64_MAX,
                           &i64) < 0)
            goto range;
        *(int64_t *)field = i64;
        return 0;
    case GP_OPT_MIB:
        if (gp_parse_mib(val, &u64) < 0 || u64 > INT64_MAX ||
            (bounded && ((int64_t)u64 < opt->min || (int64_t)u64 > opt->max)))
            goto range;
        *(int64_t *)field = (int64_t)u64;
        return 0;
    case GP_OPT_DURATION:
        if (gp_parse_duration_ms(val, &i64) < 0 ||
            (bounded && (i64 < opt->min || i64 > opt->max)))
            goto range;
        *(int64_t *)field = i64;
        return 0;
    case GP_OPT_DOUBLE:
        if (gp_parse_double(val, bounded ? (double)opt->min : -1e300,
                            bounded ? (double)opt->max : 1e300, &d) < 0)
            goto range;
        *(double *)field = d;
        return 0;
    }
    return gp_err_set(err, GP_ERR_INVALID, "%s: %s: unknown option type", where, opt->name);

range:;
    static const char *const kinds[] = {
        [GP_OPT_INT] = "an integer", [GP_OPT_MIB] = "a size (512, 4G, 1T)",
        [GP_OPT_DURATION] = "a duration (250ms, 5s, 2m)", [GP_OPT_DOUBLE] = "a number",
        [GP_OPT_STRING] = "", [GP_OPT_BOOL] = "",
    };
    if (bounded)
        return gp_err_set(err, GP_ERR_INVALID, "%s: %s: expected %s in [%lld, %lld], got \"%s\"",
                          where, opt->name, kinds[opt->type], (long long)opt->min,
                          (long long)opt->max, val);
    return gp_err_set(err, GP_ERR_INVALID, "%s: %s: expected %s, got \"%s\"", where, opt->name,
                      kinds[opt->type], val);
}

static const gp_opt_t *s_find(const gp_opt_t *opts, const char *name, size_t len)
{
    for (const gp_opt_t *o = opts; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

static size_t s_struct_size(const gp_opt_t *opts)
{
    size_t end = 0;
    for (const gp_opt_t *o = opts; o->name; o++) {
        size_t sz = o->type == GP_OPT_STRING ? sizeof(char *)
                    : o->type == GP_OPT_BOOL ? sizeof(int)
                    : o->type == GP_OPT_DOUBLE ? sizeof(double) : sizeof(int64_t);
        if (o->offset + sz > end)
            end = o->offset + sz;
    }
    return end;
}

static char *s_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

static int s_load_file(const gp_opt_t *opts, void *cfg, const char *path, gp_err_t *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return gp_err_errno(err, "cannot open config file %s", path);
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char where[512];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        char *s = s_trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            rc = gp_err_set(err, GP_ERR_INVALID, "%s: expected \"name = value\"", where);
            break;
        }
        *eq = '\0';
        char *name = s_trim(s), *val = s_trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
            val[vl - 1] = '\0';
            val++;
        }
        const gp_opt_t *opt = s_find(opts, name, strlen(name));
        if (opt == NULL) {
            rc = gp_err_set(err, GP_ERR_INVALID, "%s: unknown option \"%s\"", where, name);
            break;
        }
        if ((rc = s_set(opt, cfg, val, where, err)) < 0)
            break;
    }
    if (rc == 0 && ferror(f))
        rc = gp_err_errno(err, "cannot read config file %s", path);
    free(line);
    fclose(f);
    return rc;
}

int gp_config_load(const gp_opt_t *opts, void *cfg, int argc, char **argv,
                   gp_config_cli_t *cli, gp_err_t *err)
{
    size_t size = s_struct_size(opts);
    void *scratch = calloc(1, size ? size : 1);
    if (scratch == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    gp_config_cli_t c = { NULL, 0, GP_CONFIG_RUN };
    int rc = -1;

    for (const gp_opt_t *o = opts; o->name; o++) {
        const char *def = o->defval ? o->defval : (o->type == GP_OPT_STRING ? "" : "0");
        if (s_set(o, scratch, def, "default", err) < 0)
            goto cleanup;
    }

    /* First pass: the fixed flags (to find the file); second: table flags. */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 1; i < argc; i++) {
            const char *a = argv[i];
            const char *next = i + 1 < argc ? argv[i + 1] : NULL;
            if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
                if (next == NULL) {
                    gp_err_set(err, GP_ERR_INVALID, "%s needs a file name", a);
                    goto cleanup;
                }
                c.config_path = next;
                i++;
                continue;
            }
            if (!strncmp(a, "--config=", 9)) {
                c.config_path = a + 9;
                continue;
            }
            if (!strcmp(a, "-n") || !strcmp(a, "--check-config")) {
                if (c.action == GP_CONFIG_RUN)
                    c.action = GP_CONFIG_CHECK;
                continue;
            }
            if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
                c.verbose += pass == 0;
                continue;
            }
            if (!strcmp(a, "--version")) {
                c.action = GP_CONFIG_VERSION;
                continue;
            }
            if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
                c.action = GP_CONFIG_HELP;
                continue;
            }
            if (strncmp(a, "--", 2) != 0) {
                gp_err_set(err, GP_ERR_INVALID, "unexpected argument \"%s\" (see --help)", a);
                goto cleanup;
            }
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            const gp_opt_t *opt = s_find(opts, name, len);
            if (opt == NULL) {
                gp_err_set(err, GP_ERR_INVALID, "unknown option \"--%.*s\" (see --help)",
                           (int)len, name);
                goto cleanup;
            }
            const char *val = eq ? eq + 1 : next;
            if (!eq)
                i++;
            if (val == NULL) {
                gp_err_set(err, GP_ERR_INVALID, "--%s needs a value", opt->name);
                goto cleanup;
            }
            if (pass == 1 && s_set(opt, scratch, val, "command line", err) < 0)
                goto cleanup;
        }
        if (pass == 0 && c.config_path && c.action != GP_CONFIG_HELP &&
            c.action != GP_CONFIG_VERSION && s_load_file(opts, scratch, c.config_path, err) < 0) {
            if (err)
                err->status = GP_CONFIG_IN_FILE;
            goto cleanup;
        }
    }

    gp_config_free(opts, cfg);
    memcpy(cfg, scratch, size);
    memset(scratch, 0, size);
    if (cli)
        *cli = c;
    rc = 0;

cleanup:
    gp_config_free(opts, scratch);
    free(scratch);
    return rc;
}

int gp_config_args(const gp_opt_t *opts, void *cfg, int *argc, char **argv, gp_err_t *err)
{
    size_t size = s_struct_size(opts);
    void *scratch = calloc(1, size ? size : 1);
    char **operands = calloc((size_t)*argc + 1, sizeof *operands);
    int n = 0, rc = -1;
    if (scratch == NULL || operands == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    for (const gp_opt_t *o = opts; o->name; o++) {
        const char *def = o->defval ? o->defval : (o->type == GP_OPT_STRING ? "" : "0");
        if (s_set(o, scratch, def, "default", err) < 0)
            goto cleanup;
    }
    if (*argc > 0)
        operands[n++] = argv[0];
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            while (++i < *argc)
                operands[n++] = argv[i];
            break;
        }
        if (a[0] != '-' || a[1] == '\0') {
            operands[n++] = argv[i];
            continue;
        }
        /* "--name[=value]", or "-x" for a one-letter name */
        bool lng = a[1] == '-';
        const char *name = a + (lng ? 2 : 1), *eq = lng ? strchr(name, '=') : NULL;
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const gp_opt_t *opt = (lng && len > 1) || (!lng && len == 1) ? s_find(opts, name, len)
                                                                    : NULL;
        if (opt == NULL) {
            gp_err_set(err, GP_ERR_INVALID, "unknown option \"%s\"", a);
            goto cleanup;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (val == NULL && opt->type == GP_OPT_BOOL)
            val = "yes";
        else if (val == NULL && i + 1 < *argc)
            val = argv[++i];
        if (val == NULL) {
            gp_err_set(err, GP_ERR_INVALID, "%s needs a value", a);
            goto cleanup;
        }
        if (s_set(opt, scratch, val, "command line", err) < 0)
            goto cleanup;
    }
    gp_config_free(opts, cfg);
    memcpy(cfg, scratch, size);
    memset(scratch, 0, size);
    memcpy(argv, operands, (size_t)n * sizeof *argv);
    argv[n] = NULL;
    *argc = n;
    rc = 0;

cleanup:
    if (scratch)
        gp_config_free(opts, scratch);
    free(scratch);
    free(operands);
    return rc;
}

void gp_config_keep(const gp_opt_t *opts, void *running, void *next, const char *const *names)
{
    for (const char *const *n = names; *n; n++) {
        for (const gp_opt_t *o = opts; o->name; o++) {
            if (strcmp(o->name, *n) || o->type != GP_OPT_STRING)
                continue;
            char **old = (char **)((char *)running + o->offset);
            char **new = (char **)((char *)next + o->offset);
            if (strcmp(*old, *new) != 0) {
                gp_log_warn("reload: %s changes only at restart, keeping \"%s\"", o->name, *old);
                char *t = *new;
                *new = *old;
                *old = t;
            }
        }
    }
}

void gp_config_free(const gp_opt_t *opts, void *cfg)
{
    for (const gp_opt_t *o = opts; o->name; o++) {
        if (o->type == GP_OPT_STRING) {
            char **p = (char **)((char *)cfg + o->offset);
            free(*p);
            *p = NULL;
        }
    }
}

static const char *s_typename(gp_opt_type_t t)
{
    switch (t) {
    case GP_OPT_STRING: return "STRING";
    case GP_OPT_INT: return "N";
    case GP_OPT_BOOL: return "yes|no";
    case GP_OPT_MIB: return "SIZE";
    case GP_OPT_DURATION: return "DURATION";
    case GP_OPT_DOUBLE: return "X";
    }
    return "?";
}

void gp_config_usage(FILE *out, const char *prog, const char *summary, const gp_opt_t *opts)
{
    fprintf(out, "usage: %s [options]\n%s\n\n", prog, summary);
    fprintf(out, "  -c, --config FILE        read options from FILE (name = value lines)\n"
                 "  -n, --check-config       validate the configuration, print OK, exit\n"
                 "  -v, --verbose            log at debug level\n"
                 "      --version            print the version and exit\n"
                 "  -h, --help               this help\n\n"
                 "Options (in the config file or as --name VALUE; flags override the file):\n");
    for (const gp_opt_t *o = opts; o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s %s", o->name, s_typename(o->type));
        fprintf(out, "  %-30s %s", left, o->help ? o->help : "");
        if (o->defval && *o->defval)
            fprintf(out, " (default %s)", o->defval);
        fputc('\n', out);
    }
}

void gp_config_write_example(FILE *out, const char *prog, const gp_opt_t *opts)
{
    fprintf(out, "# %s configuration.  One \"name = value\" per line; '#' starts a comment.\n"
                 "# Every option is shown with its default; command-line flags\n"
                 "# (--name value) override this file.\n",
            prog);
    for (const gp_opt_t *o = opts; o->name; o++) {
        fprintf(out, "\n# %s (%s)\n", o->help ? o->help : "", s_typename(o->type));
        fprintf(out, "%s = %s\n", o->name, o->defval ? o->defval : "");
    }
}
