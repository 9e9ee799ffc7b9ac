/*
 * keys.c - `gpupool keys`: CURVE key pairs and API tokens, made offline.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cli.h"
#include "keys.h"
#include "util.h"
#include "wire.h"

#include "banned.h"

int cli_cmd_keys(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "curve")) {
        const char *prefix = argv[2];
        char path[4096];
        static const char *const exts[] = { ".key", ".pub" };
        for (size_t i = 0; i < 2; i++) {
            struct stat st;
            snprintf(path, sizeof path, "%s%s", prefix, exts[i]);
            if (lstat(path, &st) == 0) {
                cli_error("%s exists; not overwriting it (remove it first)", path);
                return EX_CANTCREAT;
            }
        }
        gp_curve_keys_t keys;
        gp_err_t err;
        if (gp_curve_generate(&keys, &err) < 0) {
            cli_error("%s", err.msg);
            return EX_SOFTWARE;
        }
        if (gp_curve_save(prefix, &keys, &err) < 0) {
            cli_error("%s", err.msg);
            return EX_CANTCREAT;
        }
        explicit_bzero(keys.secret_key, sizeof keys.secret_key);
        printf("%s.key %s.pub public-key=%s\n", prefix, prefix, keys.public_key);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "token")) {
        /* --principal P --role R [--role R2] [--team T]... [--file F]: an
         * entry of the coordinators' api-tokens file (coordinator/auth.h). */
        const char *principal = NULL, *file = NULL;
        char roles[256] = "", teams[1024] = "";
        for (int i = 2; i < argc; i++) {
            const char *v;
            char *list = NULL;
            size_t lsize = 0;
            if ((v = cli_flag_value(argc, argv, &i, "--principal"))) {
                principal = v;
                continue;
            } else if ((v = cli_flag_value(argc, argv, &i, "--file"))) {
                file = v;
                continue;
            } else if ((v = cli_flag_value(argc, argv, &i, "--role"))) {
                list = roles;
                lsize = sizeof roles;
                if (strcmp(v, "submitter") && strcmp(v, "operator") && strcmp(v, "reader")) {
                    cli_error("--role: submitter, operator or reader, not \"%s\"", v);
                    return EX_USAGE;
                }
            } else if ((v = cli_flag_value(argc, argv, &i, "--team"))) {
                list = teams;
                lsize = sizeof teams;
                if (!gp_name_valid(v)) {
                    cli_error("--team: \"%s\" must be 1..127 of [A-Za-z0-9._-]", v);
                    return EX_USAGE;
                }
            } else {
                cli_error("keys token: unknown argument %s", argv[i]);
                return EX_USAGE;
            }
            size_t l = strlen(list);
            snprintf(list + l, lsize - l, "%s%s", l ? "," : "", v);
        }
        if ((principal || file || roles[0] || teams[0]) && (principal == NULL || roles[0] == '\0')) {
            cli_error("keys token: an entry needs --principal and --role (and --team for a "
                   "submitter)");
            return EX_USAGE;
        }
        if (principal && strpbrk(principal, " \t#\r\n")) {
            cli_error("--principal: no blanks or '#'");
            return EX_USAGE;
        }
        if (strstr(roles, "submitter") && teams[0] == '\0') {
            cli_error("keys token: a submitter needs --team");
            return EX_USAGE;
        }
        unsigned char raw[32];
        size_t got = 0;
        while (got < sizeof raw) {
            ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                cli_error("getrandom: %s", strerror(errno));
                return EX_OSERR;
            }
            got += (size_t)n;
        }
        char hex[2 * sizeof raw + 1];
        for (size_t i = 0; i < sizeof raw; i++)
            snprintf(hex + 2 * i, 3, "%02x", raw[i]);
        explicit_bzero(raw, sizeof raw);
        if (principal) {
            unsigned char h[32];
            unsigned hl = sizeof h;
            char line[2048];
            int ll = snprintf(line, sizeof line, "sha256:");
            EVP_Digest(hex, strlen(hex), h, &hl, EVP_sha256(), NULL);
            for (size_t i = 0; i < sizeof h; i++)
                ll += snprintf(line + ll, sizeof line - (size_t)ll, "%02x", h[i]);
            snprintf(line + ll, sizeof line - (size_t)ll, " %s %s %s\n", principal, roles,
                     teams[0] ? teams : "-");
            if (file) {
                int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
                size_t len = strlen(line);
                if (fd < 0 || write(fd, line, len) != (ssize_t)len) {
                    cli_error("cannot append to %s: %s", file, strerror(errno));
                    if (fd >= 0)
                        close(fd);
                    return EX_CANTCREAT;
                }
                close(fd);
            } else {
                fputs(line, stderr);   /* the entry, for the operator to place */
            }
        }
        puts(hex);
        return 0;
    }
    cli_error("usage: gpupool keys curve PREFIX | gpupool keys token [--principal P --role R "
           "[--team T]... [--file F]]");
    return EX_USAGE;
}

