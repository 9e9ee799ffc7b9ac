/* The option table: defaults < config file < flags; errors name file:line;
 * a failed load leaves the previous configuration untouched. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tap.h"

typedef struct {
    char *name;
    int64_t port;
    int64_t ttl_ms;
    int64_t mem_mib;
    int enabled;
    double factor;
} cfg_t;

static const gp_opt_t opts[] = {
    { "name", GP_OPT_STRING, offsetof(cfg_t, name), "node-a", 0, 0, "node name" },
    { "port", GP_OPT_INT, offsetof(cfg_t, port), "7000", 1, 65535, "port" },
    { "lease-ttl", GP_OPT_DURATION, offsetof(cfg_t, ttl_ms), "10s", 1000, 60000, "lease" },
    { "memory", GP_OPT_MIB, offsetof(cfg_t, mem_mib), "1G", 0, 0, "memory" },
    { "enabled", GP_OPT_BOOL, offsetof(cfg_t, enabled), "yes", 0, 0, "on or off" },
    { "oversubscription", GP_OPT_DOUBLE, offsetof(cfg_t, factor), "1.0", 1, 4, "factor" },
    { NULL, 0, 0, NULL, 0, 0, NULL },
};

static char *s_file(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/gpupool-test-config.%d", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

int main(void)
{
    cfg_t c;
    memset(&c, 0, sizeof c);
    gp_config_cli_t cli;
    gp_err_t err;
    char *argv0[] = { "prog", NULL };
    is_int(gp_config_load(opts, &c, 1, argv0, &cli, &err), 0, "defaults load");
    is_str(c.name, "node-a", "string default");
    is_int(c.port, 7000, "int default");
    is_int(c.ttl_ms, 10000, "duration default in ms");
    is_int(c.mem_mib, 1024, "size default in MiB");
    is_int(c.enabled, 1, "bool default");
    ok(c.factor == 1.0, "double default");
    is_int(cli.action, GP_CONFIG_RUN, "no action flag: run");

    char *path = s_file("# comment\n\nname = \"node b\"\nport=7100\nlease-ttl = 2s\n"
                        "memory = 2G\nenabled = no\n");
    char *argv1[] = { "prog", "-c", path, "--port", "7200", "-n", NULL };
    is_int(gp_config_load(opts, &c, 6, argv1, &cli, &err), 0, "file and flags load");
    is_str(c.name, "node b", "the file overrides the default (quotes removed)");
    is_int(c.port, 7200, "a flag overrides the file");
    is_int(c.ttl_ms, 2000, "duration from the file");
    is_int(c.enabled, 0, "bool from the file");
    is_int(cli.action, GP_CONFIG_CHECK, "-n asks for a check");
    is_str(cli.config_path, path, "-c names the file");

    path = s_file("name = x\nport = 99999\n");
    char *argv2[] = { "prog", "-c", path, NULL };
    is_int(gp_config_load(opts, &c, 3, argv2, &cli, &err), -1, "out-of-range value fails");
    ok(strstr(err.msg, ":2:") && strstr(err.msg, "port"), "error names line and option: %s", err.msg);
    is_int(err.status, GP_CONFIG_IN_FILE, "and says the fault is in the file");
    is_str(c.name, "node b", "a failed load leaves the old configuration");
    is_int(c.port, 7200, "... all of it");

    path = s_file("colour = blue\n");
    is_int(gp_config_load(opts, &c, 3, argv2, &cli, &err), -1, "unknown option in file fails");
    ok(strstr(err.msg, "unknown option \"colour\"") != NULL, "and says which: %s", err.msg);

    path = s_file("just words\n");
    is_int(gp_config_load(opts, &c, 3, argv2, &cli, &err), -1, "a line without '=' fails");

    char *argv3[] = { "prog", "--lease-ttl=5", NULL };
    is_int(gp_config_load(opts, &c, 2, argv3, &cli, &err), -1, "a duration below min fails");
    is_int(err.status, 0, "on the command line, not in a file");
    char *argv4[] = { "prog", "--bogus", "1", NULL };
    is_int(gp_config_load(opts, &c, 3, argv4, &cli, &err), -1, "an unknown flag fails");
    ok(strstr(err.msg, "--bogus") != NULL, "and names it: %s", err.msg);
    char *argv5[] = { "prog", "--port", NULL };
    is_int(gp_config_load(opts, &c, 2, argv5, &cli, &err), -1, "a flag without a value fails");
    char *argv6[] = { "prog", "-c", "/nonexistent/gpupool.conf", NULL };
    is_int(gp_config_load(opts, &c, 3, argv6, &cli, &err), -1, "a missing file fails");
    ok(strstr(err.msg, "/nonexistent/gpupool.conf") != NULL, "and names it: %s", err.msg);
    char *argv7[] = { "prog", "--memory", "3X", "--enabled", "maybe", NULL };
    is_int(gp_config_load(opts, &c, 5, argv7, &cli, &err), -1, "a bad size fails");
    char *argv8[] = { "prog", "--version", "-v", "-v", NULL };
    is_int(gp_config_load(opts, &c, 4, argv8, &cli, &err), 0, "--version loads");
    is_int(cli.action, GP_CONFIG_VERSION, "--version asks for the version");
    is_int(cli.verbose, 2, "-v counts");

    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    gp_config_write_example(mem, "prog", opts);
    fclose(mem);
    ok(strstr(buf, "lease-ttl = 10s") && strstr(buf, "# lease"), "the example config lists options");
    free(buf);

    /* A command's flags (gp_config_args): operands kept in order at the
     * front, a bool flag without a value, one-letter names as -x. */
    typedef struct {
        char *state;
        int quiet;
        int64_t limit;
    } args_t;
    static const gp_opt_t aopts[] = {
        { "state", GP_OPT_STRING, offsetof(args_t, state), NULL, 0, 0, "state" },
        { "q", GP_OPT_BOOL, offsetof(args_t, quiet), "no", 0, 0, "quiet" },
        { "quiet", GP_OPT_BOOL, offsetof(args_t, quiet), "no", 0, 0, "quiet" },
        { "limit", GP_OPT_INT, offsetof(args_t, limit), "10", 1, 100, "limit" },
        { NULL, 0, 0, NULL, 0, 0, NULL },
    };
    args_t a = { 0 };
    char *av1[] = { "ls", "x1", "--state", "pending", "-q", "-", "--limit=7", "--", "--state",
                    NULL };
    int ac = 9;
    is_int(gp_config_args(aopts, &a, &ac, av1, &err), 0, "a command's flags parse");
    ok(a.state && !strcmp(a.state, "pending"), "--state VALUE");
    is_int(a.quiet, 1, "-q without a value sets a bool");
    is_int(a.limit, 7, "--limit=7");
    is_int(ac, 4, "four words remain: the command and three operands");
    ok(!strcmp(av1[0], "ls") && !strcmp(av1[1], "x1") && !strcmp(av1[2], "-") &&
           !strcmp(av1[3], "--state") && av1[4] == NULL,
       "in order, \"-\" and everything after \"--\" as operands");
    char *av2[] = { "ls", "--quiet=no", NULL };
    ac = 2;
    is_int(gp_config_args(aopts, &a, &ac, av2, &err), 0, "--quiet=no parses");
    is_int(a.quiet, 0, "and clears the bool");
    ok(a.state && !strcmp(a.state, ""), "an option not given takes its default again");
    char *av3[] = { "ls", "--limit", "1000", "y", NULL };
    ac = 4;
    is_int(gp_config_args(aopts, &a, &ac, av3, &err), -1, "a value out of range fails");
    ok(strstr(err.msg, "limit") != NULL, "and names the flag: %s", err.msg);
    is_int(ac, 4, "argv untouched on failure");
    ok(!strcmp(av3[1], "--limit"), "argv's words in place");
    char *av4[] = { "ls", "--colour", NULL };
    ac = 2;
    is_int(gp_config_args(aopts, &a, &ac, av4, &err), -1, "an unknown flag fails");
    ok(strstr(err.msg, "--colour") != NULL, "and says which: %s", err.msg);
    char *av5[] = { "ls", "--state", NULL };
    ac = 2;
    is_int(gp_config_args(aopts, &a, &ac, av5, &err), -1, "a flag without its value fails");
    char *av6[] = { "ls", "--q", NULL };
    ac = 2;
    is_int(gp_config_args(aopts, &a, &ac, av6, &err), -1, "a one-letter name is not a --flag");
    gp_config_free(aopts, &a);

    unlink(path);
    gp_config_free(opts, &c);
    ok(c.name == NULL, "gp_config_free clears strings");
    return done_testing();
}
