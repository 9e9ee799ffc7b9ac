/* Request targets, decoded strictly: what is refused and why, what a
 * handler gets for the rest. */
#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "uri.h"

typedef struct {
    const char *target;
    const char *path;    /* NULL: refused */
    const char *q;       /* value of q, or NULL */
    const char *why;     /* part of the message when refused */
} s_case_t;

static const s_case_t s_cases[] = {
    { "/", "/", NULL, NULL },
    { "/v1/jobs", "/v1/jobs", NULL, NULL },
    { "/v1/jobs/a-b_c.d", "/v1/jobs/a-b_c.d", NULL, NULL },
    { "/v1/jobs//", "/v1/jobs//", NULL, NULL },
    { "/v1/jobs/%61bc", "/v1/jobs/abc", NULL, NULL },
    { "/caf%C3%A9", "/caf\xc3\xa9", NULL, NULL },
    { "/v1/jobs?q=a+b%20c&r", "/v1/jobs", "a b c", NULL },
    { "/x?q=%2F%3F%26", "/x", "/?&", NULL },
    { "/x?q=", "/x", "", NULL },
    { "/x?&&q=1&", "/x", "1", NULL },
    { "/x?q", "/x", "", NULL },
    { "v1/jobs", NULL, NULL, "starting with /" },
    { "*", NULL, NULL, "starting with /" },
    { "http://h/x", NULL, NULL, "starting with /" },
    { "/a b", NULL, NULL, "0x20" },
    { "/a#b", NULL, NULL, "0x23" },
    { "/a\x7f", NULL, NULL, "0x7f" },
    { "/caf\xc3\xa9", NULL, NULL, "0xc3" },
    { "/v1/jobs/nultest%00x", NULL, NULL, "%00 (NUL) in the path" },
    { "/v1/jobs/a%2fb", NULL, NULL, "escaped /" },
    { "/v1/jobs/a%2Fb/suspend", NULL, NULL, "escaped /" },
    { "/v1/jobs/%ff", NULL, NULL, "UTF-8" },
    { "/v1/jobs/%c0%af", NULL, NULL, "UTF-8" },          /* overlong '/' */
    { "/v1/jobs/%ed%a0%80", NULL, NULL, "UTF-8" },       /* a surrogate */
    { "/v1/jobs/%f4%90%80%80", NULL, NULL, "UTF-8" },    /* above U+10FFFF */
    { "/v1/jobs/%e2%82", NULL, NULL, "UTF-8" },          /* cut short */
    { "/v1/jobs/../x", NULL, NULL, ". or .." },
    { "/v1/jobs/./x", NULL, NULL, ". or .." },
    { "/v1/jobs/%2e%2E", NULL, NULL, ". or .." },
    { "/v1/jobs/..", NULL, NULL, ". or .." },
    { "/a%", NULL, NULL, "percent-escape" },
    { "/a%4", NULL, NULL, "percent-escape" },
    { "/a%zz", NULL, NULL, "percent-escape" },
    { "/x?q=%00", NULL, NULL, "%00 (NUL) in the query" },
    { "/x?q=%fe", NULL, NULL, "UTF-8" },
    { "/x?q=1&q=2", NULL, NULL, "given twice" },
    { "/x?%71=1&q=2", NULL, NULL, "given twice" },
};

int main(void)
{
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        const s_case_t *c = &s_cases[i];
        gp_uri_t *u = NULL;
        gp_err_t err = { 0 };
        int rc = gp_uri_parse(c->target, &u, &err);
        if (c->path) {
            is_int(rc, 0, "%s is accepted", c->target);
            is_str(u ? gp_uri_path(u) : "(refused)", c->path, "%s: its path", c->target);
            is_str(u ? gp_uri_query(u, "q") : NULL, c->q, "%s: its q", c->target);
        } else {
            is_int(rc, -1, "%s is refused", c->target);
            ok(u == NULL && strstr(err.msg, c->why) != NULL, "%s: %s", c->target, err.msg);
        }
        gp_uri_destroy(&u);
    }
    /* Sixty-five parameters are too many. */
    char many[1024] = "/x?";
    for (int i = 0; i < 65; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "p%d=1&", i);
    gp_uri_t *u = NULL;
    gp_err_t err;
    is_int(gp_uri_parse(many, &u, &err), -1, "65 query parameters are refused");
    ok(gp_utf8_valid("", 0) && gp_utf8_valid("\xf0\x9f\x98\x80", 4) && !gp_utf8_valid("\x80", 1),
       "gp_utf8_valid: empty, a 4-byte character, a lone continuation byte");
    return done_testing();
}
