/*
 * config.h - one declarative table of options per program: defaults, then
 * the config file, then command-line flags, each overriding the one before.
 *
 * A program describes its settings once:
 *
 *     typedef struct { char *etcd_endpoints; int64_t lease_ttl_ms; int metrics; } cfg_t;
 *     static const gp_opt_t opts[] = {
 *         { "etcd-endpoints", GP_OPT_STRING, offsetof(cfg_t, etcd_endpoints),
 *           "http://127.0.0.1:2379", 0, 0, "etcd client URLs, comma-separated" },
 *         { "lease-ttl", GP_OPT_DURATION, offsetof(cfg_t, lease_ttl_ms), "10s",
 *           1000, 3600000, "lease of the node record" },
 *         { NULL }
 *     };
 *
 * and gp_config_load() fills the struct.  The file format is one
 * `name = value` per line, `#` starts a comment, blank lines are ignored,
 * values may be double-quoted; the same names are flags: `--lease-ttl 5s`
 * or `--lease-ttl=5s`.  Unknown names, bad values and values outside
 * [min, max] are errors naming the file and line (or the flag).  Nothing is
 * assigned to the caller's struct unless the whole load succeeds, so a
 * failed SIGHUP reload leaves the running configuration as it was.
 *
 * The fixed flags every daemon has are handled here too:
 *   -c/--config FILE, -n/--check-config, -v/--verbose, --version, -h/--help.
 * The caller looks at the returned gp_config_action_t to print the version,
 * the help (gp_config_usage) or "configuration OK".
 *
 * Ownership: strings in the struct are heap copies owned by the struct;
 * release them with gp_config_free().
 */
#ifndef GP_CONFIG_H
#define GP_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

typedef enum {
    GP_OPT_STRING,    /* char *                        */
    GP_OPT_INT,       /* int64_t, within [min, max]    */
    GP_OPT_BOOL,      /* int: yes/no, true/false, 1/0, on/off */
    GP_OPT_MIB,       /* int64_t MiB: "512", "4G", "1T" */
    GP_OPT_DURATION,  /* int64_t ms: "250ms", "5s", "2m" */
    GP_OPT_DOUBLE,    /* double, within [min, max]     */
} gp_opt_type_t;

typedef struct {
    const char *name;     /* NULL ends the table */
    gp_opt_type_t type;
    size_t offset;        /* offsetof(struct, field) */
    const char *defval;   /* NULL: empty string / 0 */
    int64_t min, max;     /* for INT, MIB, DURATION, DOUBLE; min == max == 0: unbounded */
    const char *help;
} gp_opt_t;

typedef enum {
    GP_CONFIG_RUN = 0,    /* start normally */
    GP_CONFIG_CHECK,      /* -n: configuration is valid; print OK and exit 0 */
    GP_CONFIG_VERSION,    /* --version */
    GP_CONFIG_HELP,       /* -h */
} gp_config_action_t;

#define GP_CONFIG_IN_FILE 1

typedef struct {
    const char *config_path;  /* -c FILE, or NULL; points into argv */
    int verbose;              /* count of -v */
    gp_config_action_t action;
} gp_config_cli_t;

/* Parse argv (fixed flags and table flags), read the config file when one
 * was named, and fill cfg (a struct described by opts).  On error returns -1
 * with err naming the flag or file:line, and cfg is untouched; err->status
 * is GP_CONFIG_IN_FILE when the fault is in the config file (a daemon then
 * exits EX_CONFIG) and 0 when it is on the command line (EX_USAGE).  A cfg filled
 * before is released and replaced only on success. */
int gp_config_load(const gp_opt_t *opts, void *cfg, int argc, char **argv,
                   gp_config_cli_t *cli, gp_err_t *err);

/* The flags of a program's command (`gpupool ls --state pending -q`): the
 * options of opts as `--name VALUE` or `--name=VALUE`, and as `-x VALUE`
 * for a one-letter name; a GP_OPT_BOOL flag takes no value (its presence
 * sets it; `--name=no` clears it).  There is no file and no fixed flag.
 * argv[0] (the command's name) and the operands stay at the front of argv
 * in their order (argv[*argc] = NULL) and *argc becomes their count; `--` ends the flags, and
 * "-" alone is an operand (standard input).  A repeated flag: the last one
 * wins.  cfg is zeroed or filled before (its strings are released on
 * success).  Defaults are applied first; on error returns -1 with err naming
 * the flag, and cfg and argv are untouched. */
int gp_config_args(const gp_opt_t *opts, void *cfg, int *argc, char **argv, gp_err_t *err);

/* Reload: the same flags as at start-up, the file read again (for SIGHUP). */
#define gp_config_reload gp_config_load

/* For a reload: the string options named in names[] (NULL-terminated) take
 * effect only at restart; where next differs from running, keep the
 * running value in next (and log that). */
void gp_config_keep(const gp_opt_t *opts, void *running, void *next, const char *const *names);

/* Release the strings of a struct filled by gp_config_load. */
void gp_config_free(const gp_opt_t *opts, void *cfg);

/* Print "usage: PROG [options]" and one line per option with its default. */
void gp_config_usage(FILE *out, const char *prog, const char *summary, const gp_opt_t *opts);

/* Write a fully commented example config file (every option, its help, its
 * default) — deploy/ example configs are generated with this. */
void gp_config_write_example(FILE *out, const char *prog, const gp_opt_t *opts);

#endif
