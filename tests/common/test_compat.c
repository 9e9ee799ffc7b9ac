/*
 * test_compat - what the previous release wrote and sent, read by this one.
 *
 * tests/compat/ holds records of store schema 1 and message bodies of
 * protocol gpupool/2, recorded from a running pool of release 0.1.0 (see
 * tests/compat/README.md).  This release must read every one of them as
 * that release meant it (README "Versions and upgrades": readers accept
 * every schema they may meet), and must write a record that uses no
 * schema-2 field exactly as schema 1, so that daemons of the previous
 * release still read what it writes during a roll.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jobrec.h"
#include "model.h"
#include "placement.h"
#include "placement_shapes.h"
#include "tap.h"
#include "wire.h"

#include "banned.h"

static const char *s_dir(void)
{
    const char *d = getenv("GP_COMPAT_DIR");
    return d ? d : "tests/compat";
}

static char *s_text(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", s_dir(), name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        tap_bail_out("cannot open %s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static json_t *s_json(const char *name)
{
    char *t = s_text(name);
    json_t *j = json_loads(t, 0, NULL);
    free(t);
    if (j == NULL)
        tap_bail_out("%s is not JSON", name);
    return j;
}

/* Parse a stored job record, write it again: the same JSON (schema 1). */
static void s_job(const char *name, gp_jobrec_t *rec)
{
    char *text = s_text(name);
    gp_err_t err = { 0 };
    ok(gp_jobrec_from_json_str(text, strlen(text), rec, &err) == 0, "%s is read (%s)", name,
       err.msg);
    json_t *again = gp_jobrec_to_json(rec), *orig = json_loads(text, 0, NULL);
    ok(json_equal(again, orig), "%s is written back as it was: schema 1, no new field", name);
    json_decref(again);
    json_decref(orig);
    free(text);
}

int main(void)
{
    gp_err_t err = { 0 };

    /* ---- records of store schema 1 */
    gp_jobrec_t rec;
    s_job("schema1-job-running.json", &rec);
    is_int(rec.state, GP_JOB_RUNNING, "running");
    is_str(rec.node, "a1-0000", "on its node");
    is_int(rec.attempts, 1, "one attempt");
    is_int(rec.restart, GP_RESTART_ON_FAILURE, "restart on-failure");
    is_int(rec.spec.mem_mib, 4096, "its slice's memory");
    is_int(rec.spec.compute_permille, 250, "and compute");
    is_int(rec.spec.priority, 10, "its priority");
    is_str(rec.owner, "team-a", "its owner");
    ok(rec.env && rec.env[0] && rec.env[1] && !rec.env[2], "two env variables");
    ok(rec.env_secret[0] + rec.env_secret[1] == 1, "one of them secret");
    is_int(rec.grace_s, -1, "no grace_s (schema 1): the agent's stop-grace applies");
    is_int(gp_jobrec_grace_s(&rec), GP_JOB_GRACE_S, "whose default is 30 s");
    ok(json_array_size(rec.history) >= 3, "its history (pending, placed, running)");
    gp_jobrec_clear(&rec);

    s_job("schema1-job-pending.json", &rec);
    is_int(rec.state, GP_JOB_PENDING, "a pending job");
    ok(strstr(rec.reason, "waiting") != NULL, "with its reason");
    is_int(rec.max_restarts, 5, "max_restarts");
    ok(rec.ttl_after_finished_s == 60, "ttl_after_finished_s");
    ok(rec.spec.whole && rec.spec.devices == 2, "two whole devices");
    gp_jobrec_clear(&rec);

    s_job("schema1-job-succeeded.json", &rec);
    is_int(rec.state, GP_JOB_SUCCEEDED, "an ended job");
    is_int(rec.exit_code, 0, "its exit code");
    gp_jobrec_clear(&rec);

    char *text = s_text("schema1-alloc.json");
    gp_alloc_t al;
    ok(gp_alloc_from_json_str(text, &al, &err) == 0, "an allocation is read (%s)", err.msg);
    ok(!al.stop && !al.suspended, "neither stopped nor suspended");
    is_int(al.ndevices, 1, "one device");
    is_int(al.devices[0].compute_permille, 250, "25%% of it");
    json_t *again = gp_alloc_to_json(&al), *orig = json_loads(text, 0, NULL);
    ok(json_equal(again, orig), "an allocation is written back as it was (schema 1)");
    json_decref(again);
    json_decref(orig);
    free(text);

    text = s_text("schema1-node.json");
    gp_node_t node;
    ok(gp_node_from_json_str(text, &node, &err) == 0, "a node record is read (%s)", err.msg);
    is_int(node.ndevices, 2, "two devices");
    is_str(node.devices[0].model, "A10", "their model");
    free(text);

    json_t *coord = s_json("schema1-coordinator.json");
    ok(json_string_value(json_object_get(coord, "bid")) != NULL, "a coordinator record has its "
       "bid endpoint");
    ok(json_object_get(coord, "version") == NULL && json_object_get(coord, "schema") == NULL,
       "...and no release or schema: the previous release, which reads schema 1 only");
    json_decref(coord);

    /* ---- messages of gpupool/2 */
    json_t *hello = s_json("gpupool2-hello.json");
    ok(json_is_array(json_object_get(hello, "nodes")) &&
           json_is_string(json_object_get(hello, "region")),
       "HELLO: nodes and region");
    ok(json_object_get(hello, "versions") == NULL,
       "HELLO of gpupool/2 lists no versions: it speaks its envelope's");
    json_decref(hello);

    json_t *cfb = s_json("gpupool2-cfb.json");
    json_t *entry = json_array_get(json_object_get(cfb, "jobs"), 0);
    gp_job_t job;
    ok(gp_job_from_json(json_object_get(entry, "spec"), &job, &err) == 0,
       "CFB: a job's spec is read (%s)", err.msg);
    gp_placement_opts_t po = GP_PLACEMENT_OPTS_DEFAULT;
    gp_placement_t *pl = gp_placement_new(&po, &err);
    ok(pl && gp_placement_set_typical_json(pl, json_object_get(cfb, "shapes"), &err) == 0,
       "CFB: its learned shapes are read (%s)", err.msg);
    gp_placement_destroy(&pl);
    json_decref(cfb);

    json_t *bids = s_json("gpupool2-bids.json");
    json_t *bid = json_array_get(json_object_get(bids, "bids"), 0);
    ok(json_is_number(json_object_get(bid, "score")) &&
           gp_alloc_from_json(json_object_get(bid, "alloc"), &al, &err) == 0,
       "BIDS: a bid's score and allocation are read (%s)", err.msg);
    json_decref(bids);

    json_t *award = s_json("gpupool2-award.json");
    ok(json_is_string(json_object_get(json_array_get(json_object_get(award, "jobs"), 0), "job")),
       "AWARD: the jobs");
    json_decref(award);

    /* ---- schema 2, and a schema this release does not know */
    text = s_text("schema1-job-running.json");
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    json_object_set_new(j, "schema", json_integer(2));
    json_object_set_new(j, "grace_s", json_integer(5));
    char *s2 = json_dumps(j, JSON_COMPACT);
    ok(gp_jobrec_from_json_str(s2, strlen(s2), &rec, &err) == 0 && rec.grace_s == 5,
       "a schema-2 record with grace_s is read (%s)", err.msg);
    char *w = gp_jobrec_dump(&rec);
    ok(w && strstr(w, "\"schema\":2"), "and written back saying schema 2");
    free(w);
    gp_jobrec_clear(&rec);
    free(s2);
    json_object_set_new(j, "schema", json_integer(3));
    s2 = json_dumps(j, JSON_COMPACT);
    ok(gp_jobrec_from_json_str(s2, strlen(s2), &rec, &err) < 0 &&
           strstr(err.msg, "newer release"),
       "a schema-3 record is refused by name: %s", err.msg);
    free(s2);
    json_decref(j);
    return tap_done_testing();
}
