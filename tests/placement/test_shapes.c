/* The learned typical shapes: the decayed histogram (weights by submission
 * time, whatever the order it learns them in; taken back exactly), a job's
 * shape as the engine sees it, and the wire form into an engine. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model.h"
#include "placement.h"
#include "placement_shapes.h"
#include "tap.h"
#include "util.h"

static gp_shape_t s_shape(int64_t cpu, int milli, int devices, const char *model)
{
    gp_shape_t s;
    memset(&s, 0, sizeof s);
    s.cpu_milli = cpu;
    s.milli = milli;
    s.devices = devices;
    gp_strlcpy(s.model, model, sizeof s.model);
    return s;
}

static bool s_near(double a, double b)
{
    return fabs(a - b) < 1e-9;
}

int main(void)
{
    gp_err_t err;
    const int64_t H = 1000;                     /* half-life, ms */
    gp_shape_t a = s_shape(4000, 500, 1, ""), b = s_shape(8000, 1000, 2, "A100|H100");
    gp_shape_t top[8];
    double w[8];

    /* decay: a job one half-life newer weighs twice as much */
    gp_shape_hist_t *h = gp_shape_hist_new(H);
    ok(h != NULL, "histogram made");
    int ia = gp_shape_hist_add(h, &a, 0);
    int ib = gp_shape_hist_add(h, &b, H);
    ok(ia >= 0 && ib >= 0 && ia != ib, "two shapes, two indexes");
    is_int(gp_shape_hist_top(h, top, w, 8), 2, "two shapes in the top");
    ok(!memcmp(&top[0], &b, sizeof b) && s_near(w[0], 2.0 / 3) && s_near(w[1], 1.0 / 3),
       "the newer job weighs 2/3 (got %.6f, %.6f)", w[0], w[1]);
    is_int(gp_shape_hist_jobs(h), 2, "two jobs counted");

    /* order independence: the same jobs learned the other way round */
    gp_shape_hist_t *h2 = gp_shape_hist_new(H);
    gp_shape_hist_add(h2, &b, H);
    gp_shape_hist_add(h2, &a, 0);
    double w2[8];
    gp_shape_t top2[8];
    is_int(gp_shape_hist_top(h2, top2, w2, 8), 2, "rebuilt in another order: two shapes");
    ok(!memcmp(top, top2, sizeof top[0] * 2) && s_near(w[0], w2[0]) && s_near(w[1], w2[1]),
       "the same weights whatever the order");

    /* remove takes back exactly what add put in */
    uint64_t g = gp_shape_hist_generation(h);
    gp_shape_hist_remove(h, ib, H);
    ok(gp_shape_hist_generation(h) != g, "a removal changes the generation");
    is_int(gp_shape_hist_top(h, top, w, 8), 1, "the removed job's shape is gone");
    ok(!memcmp(&top[0], &a, sizeof a) && s_near(w[0], 1.0), "what is left weighs all");
    gp_shape_hist_remove(h, ia, 0);
    is_int(gp_shape_hist_top(h, top, w, 8), 0, "empty again");
    is_int(gp_shape_hist_jobs(h), 0, "no jobs counted");

    /* far in the future: rebased, proportions kept, nothing overflows */
    gp_shape_hist_clear(h);
    int64_t t0 = 1700000000000LL;
    gp_shape_hist_add(h, &a, t0);
    int64_t far = t0 + 2000 * H;                 /* 2^2000 without rebasing */
    gp_shape_hist_add(h, &b, far);
    int ia2 = gp_shape_hist_add(h, &a, far);
    gp_shape_hist_top(h, top, w, 8);
    ok(isfinite(w[0]) && s_near(w[0], 0.5) && s_near(w[1], 0.5),
       "2000 half-lives later: the old job weighs nothing, the new ones half each (%.6f %.6f)",
       w[0], w[1]);
    gp_shape_hist_remove(h, ia2, far);
    gp_shape_hist_top(h, top, w, 8);
    ok(!memcmp(&top[0], &b, sizeof b) && s_near(w[0], 1.0), "after a rebase, remove still exact");

    /* wire form */
    double ws[2] = {0.75, 0.25};
    gp_shape_t ss[2] = {a, b}, back[2];
    json_t *j = gp_shapes_to_json(ss, ws, 2);
    int n = 0;
    int rc = j ? gp_shapes_from_json(j, back, w, 2, &n, &err) : -1;
    ok(rc == 0 && n == 2 &&
           !memcmp(back, ss, sizeof ss) && s_near(w[0], 0.75),
       "wire form round trip");
    json_t *bad = json_loads("[{\"cpu_milli\": 1, \"gpu_milli\": 2000, \"gpus\": 1, "
                             "\"model\": \"\", \"weight\": 1}]", 0, NULL);
    n = -7;
    ok(gp_shapes_from_json(bad, back, w, 2, &n, &err) < 0 && err.code == GP_ERR_INVALID &&
           n == -7 && strstr(err.msg, "shapes[0]"),
       "a share over 1000 is refused, naming the entry (%s)", err.msg);
    json_decref(bad);

    /* a job's shape, as the engine counts it */
    gp_placement_opts_t o = GP_PLACEMENT_OPTS_DEFAULT;
    o.policy = "gpupool";
    gp_placement_t *pl = gp_placement_new(&o, &err);
    gp_node_t node;
    gp_node_init(&node);
    gp_strlcpy(node.name, "n1", sizeof node.name);
    node.cpu_milli = 32000;
    node.mem_mib = 65536;
    node.ndevices = 2;
    for (int i = 0; i < 2; i++) {
        gp_device_init(&node.devices[i]);
        snprintf(node.devices[i].uuid, sizeof node.devices[i].uuid, "n1-g%d", i);
        gp_strlcpy(node.devices[i].model, "A100", sizeof node.devices[i].model);
        node.devices[i].mem_mib = 40960;
    }
    gp_placement_add_node(pl, &node, &err);
    gp_job_t job;
    gp_job_init(&job);
    gp_strlcpy(job.id, "j", sizeof job.id);
    job.devices = 1;
    job.cpu_milli = 3000;
    job.mem_mib = 10240;                           /* a quarter of an A100 (40 GiB) */
    job.compute_permille = 100;
    gp_strlist_add(&job.models, "A100");
    gp_strlist_add(&job.models, "H100");
    gp_shape_t js;
    rc = gp_placement_job_shape(pl, &job, &js, &err);
    ok(rc == 0 && js.cpu_milli == 3000 &&
           js.milli == 250 && js.devices == 1 && !strcmp(js.model, "A100|H100"),
       "a slice's shape: its larger share, models as a list (%lld %d %d %s)",
       (long long)js.cpu_milli, js.milli, js.devices, js.model);

    /* the engine: set from the wire form */
    ok(gp_placement_set_typical_json(pl, j, &err) == 0, "shapes set from the wire form");
    gp_alloc_t plan;
    ok(gp_placement_place(pl, &job, &plan, &err) == 0, "placed with the learned shapes");
    ok(gp_placement_set_typical_json(pl, j, &err) == 0 && gp_placement_set_typical_json(pl, NULL, &err) == 0,
       "the same shapes again, and none, are accepted");
    json_decref(j);
    gp_placement_destroy(&pl);
    gp_shape_hist_destroy(&h);
    gp_shape_hist_destroy(&h2);
    ok(h == NULL, "destroy clears the pointer");
    return done_testing();
}
