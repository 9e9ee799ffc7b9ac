/* The placement engine on small hand-made clusters where the right answer
 * is known: every filter, every policy, accounting, gangs, preemption, and
 * the index against a plain scan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "placement.h"
#include "tap.h"
#include "util.h"

static gp_err_t err;

/* A node of ndev devices of one model (memory mib each). */
static void mk(gp_node_t *n, const char *name, int64_t cpu, int64_t mem, int ndev,
               const char *model, int64_t dmem)
{
    gp_node_init(n);
    gp_strlcpy(n->name, name, sizeof n->name);
    n->cpu_milli = cpu;
    n->mem_mib = mem;
    n->ndevices = ndev;
    for (int i = 0; i < ndev; i++) {
        gp_device_init(&n->devices[i]);
        snprintf(n->devices[i].uuid, sizeof n->devices[i].uuid, "%s-g%d", name, i);
        gp_strlcpy(n->devices[i].model, model, sizeof n->devices[i].model);
        n->devices[i].mem_mib = dmem;
    }
}

static gp_placement_t *engine(const char *policy)
{
    gp_placement_opts_t o = GP_PLACEMENT_OPTS_DEFAULT;
    o.policy = policy;
    o.seed = 7;
    gp_placement_t *pl = gp_placement_new(&o, &err);
    if (pl == NULL)
        bail_out("engine: %s", err.msg);
    return pl;
}

static void add(gp_placement_t *pl, const gp_node_t *n)
{
    if (gp_placement_add_node(pl, n, &err) < 0)
        bail_out("add node %s: %s", n->name, err.msg);
}

/* A job: devices, per-device share in permille (0 = whole), CPU. */
static gp_job_t job(const char *id, int devices, int permille, int64_t cpu)
{
    gp_job_t j;
    gp_job_init(&j);
    gp_strlcpy(j.id, id, sizeof j.id);
    j.devices = devices;
    j.cpu_milli = cpu;
    if (devices > 0 && permille == 0)
        j.whole = true;
    else if (devices > 0) {
        j.mem_permille = permille;
        j.compute_permille = permille;
    }
    return j;
}

/* Place and commit; returns the node name (static buffer) or "-". */
static const char *put(gp_placement_t *pl, const gp_job_t *j, gp_alloc_t *out)
{
    static char node[GP_NAME_LEN];
    gp_alloc_t a;
    if (gp_placement_place(pl, j, &a, &err) < 0)
        return "-";
    if (gp_placement_add_alloc(pl, &a, &err) < 0)
        return "commit-failed";
    if (out)
        *out = a;
    gp_strlcpy(node, a.node, sizeof node);
    return node;
}

static const char *where(gp_placement_t *pl, const gp_job_t *j, gp_alloc_t *out)
{
    static char node[GP_NAME_LEN];
    gp_alloc_t a;
    if (gp_placement_place(pl, j, &a, &err) < 0)
        return "-";
    if (out)
        *out = a;
    gp_strlcpy(node, a.node, sizeof node);
    return node;
}

static void test_filters(void)
{
    gp_placement_t *pl = engine("binpack");
    gp_node_t n;
    mk(&n, "a100", 64000, 256000, 2, "A100", 81920);
    gp_strlcpy(n.region, "eu", sizeof n.region);
    gp_strlcpy(n.zone, "eu-1", sizeof n.zone);
    gp_node_add_label(&n, "tier", "gold");
    add(pl, &n);
    mk(&n, "t4", 16000, 64000, 2, "T4", 15360);
    gp_strlcpy(n.region, "us", sizeof n.region);
    gp_strlcpy(n.devices[0].vendor, "nvidia", sizeof n.devices[0].vendor);
    add(pl, &n);
    mk(&n, "ascend", 32000, 128000, 1, "910B", 65536);
    gp_strlcpy(n.devices[0].vendor, "huawei", sizeof n.devices[0].vendor);
    add(pl, &n);

    gp_job_t j = job("j", 1, 0, 1000);
    gp_strlist_add(&j.models, "T4");
    is_str(where(pl, &j, NULL), "t4", "model allow list");
    j = job("j", 1, 0, 1000);
    gp_strlist_add(&j.exclude_models, "A100");
    gp_strlist_add(&j.exclude_models, "T4");
    is_str(where(pl, &j, NULL), "ascend", "model deny list");
    j = job("j", 1, 0, 1000);
    gp_strlist_add(&j.vendors, "huawei");
    is_str(where(pl, &j, NULL), "ascend", "vendor allow list");
    j = job("j", 1, 0, 1000);
    gp_strlist_add(&j.exclude_vendors, "nvidia");
    is_str(where(pl, &j, NULL), "ascend", "vendor deny list");
    j = job("j", 1, 0, 1000);
    gp_strlist_add(&j.uuids, "t4-g1");
    gp_alloc_t a;
    is_str(where(pl, &j, &a), "t4", "uuid allow list picks the node");
    is_str(a.devices[0].uuid, "t4-g1", "and the device");
    j = job("j", 2, 0, 1000);
    gp_strlist_add(&j.models, "T4");
    gp_strlist_add(&j.exclude_uuids, "t4-g0");
    is_str(where(pl, &j, NULL), "-", "uuid deny list leaves too few devices");
    j = job("j", 1, 0, 1000);
    gp_strlist_add(&j.regions, "eu");
    is_str(where(pl, &j, NULL), "a100", "region pin");
    j = job("j", 1, 0, 1000);
    gp_strlist_add(&j.zones, "nowhere");
    is_str(where(pl, &j, NULL), "-", "a pin no node matches");
    j = job("j", 1, 0, 1000);
    gp_strlcpy(j.labels[0].key, "tier", sizeof j.labels[0].key);
    gp_strlcpy(j.labels[0].value, "gold", sizeof j.labels[0].value);
    j.nlabels = 1;
    is_str(where(pl, &j, NULL), "a100", "required label");
    j = job("j", 1, 0, 20000);
    gp_strlist_add(&j.models, "T4");
    is_str(where(pl, &j, NULL), "-", "CPU filter");
    j = job("j", 0, 0, 1000);
    j.host_mem_mib = 200000;
    is_str(where(pl, &j, NULL), "a100", "host memory filter");
    j = job("j", 3, 0, 1000);
    is_str(where(pl, &j, NULL), "-", "no node has 3 devices");
    j = job("j", 1, 0, 1000);
    gp_strlist_add(&j.prefer_regions, "us");
    is_str(where(pl, &j, NULL), "t4", "a preference wins over the policy");

    /* fractional capacity: memory MiB and compute */
    j = job("f1", 1, 0, 0);
    j.whole = false;
    j.mem_mib = 10000;
    j.compute_permille = 600;
    gp_strlist_add(&j.models, "T4");
    gp_alloc_t f1;
    is_str(put(pl, &j, &f1), "t4", "a 10000 MiB, 60%% slice on a T4");
    gp_strlcpy(j.id, "f2", sizeof j.id);
    is_str(put(pl, &j, NULL), "t4", "a second one goes to the other T4 device");
    gp_strlcpy(j.id, "f3", sizeof j.id);
    is_str(where(pl, &j, NULL), "-", "a third does not fit (compute and memory)");
    j.mem_mib = 5000;
    j.compute_permille = 400;
    is_str(where(pl, &j, NULL), "t4", "a 5000 MiB, 40%% slice still fits");
    j = job("w", 1, 0, 0);
    gp_strlist_add(&j.models, "T4");
    is_str(where(pl, &j, NULL), "-", "no whole T4 left: sharing blocks whole devices");
    gp_placement_remove_alloc(pl, "f1", NULL);
    gp_placement_remove_alloc(pl, "f2", NULL);
    is_str(where(pl, &j, NULL), "t4", "after removal a whole T4 is free again");
    gp_placement_destroy(&pl);
    ok(pl == NULL, "destroy clears the pointer");
}

static void test_accounting(void)
{
    gp_placement_t *pl = engine("binpack");
    gp_node_t n;
    mk(&n, "n", 8000, 16000, 1, "A10", 24576);
    uint64_t gen = gp_placement_generation(pl);
    add(pl, &n);
    ok(gp_placement_generation(pl) != gen, "a node added: the engine's generation changes");
    gen = gp_placement_generation(pl);
    gp_alloc_t a;
    gp_alloc_init(&a);
    gp_strlcpy(a.job, "x", sizeof a.job);
    gp_strlcpy(a.node, "n", sizeof a.node);
    a.ndevices = 1;
    gp_strlcpy(a.devices[0].uuid, "n-g0", sizeof a.devices[0].uuid);
    a.devices[0].mem_mib = 20000;
    a.devices[0].compute_permille = 500;
    is_int(gp_placement_add_alloc(pl, &a, &err), 0, "an allocation commits");
    ok(gp_placement_generation(pl) == gen, "...and the generation does not (nodes only)");
    ok(gp_placement_add_alloc(pl, &a, &err) < 0 && err.code == GP_ERR_CONFLICT,
       "the same job twice is refused");
    gp_strlcpy(a.job, "y", sizeof a.job);
    ok(gp_placement_add_alloc(pl, &a, &err) < 0 && err.code == GP_ERR_CONFLICT,
       "memory beyond the device is refused (no double booking)");
    a.devices[0].mem_mib = 1000;
    a.devices[0].compute_permille = 600;
    ok(gp_placement_add_alloc(pl, &a, &err) < 0, "compute beyond 100%% is refused");
    a.devices[0].compute_permille = 0;
    a.devices[0].whole = true;
    ok(gp_placement_add_alloc(pl, &a, &err) < 0, "a whole device on a shared one is refused");
    a.devices[0].whole = false;
    gp_strlcpy(a.devices[0].uuid, "nope", sizeof a.devices[0].uuid);
    ok(gp_placement_add_alloc(pl, &a, &err) < 0 && err.code == GP_ERR_INVALID,
       "an unknown device is refused");
    gp_placement_stats_t st;
    gp_placement_stats(pl, &st);
    /* the larger of its memory (20000 of 24576 MiB: 813.8, rounded) and
     * compute (500) shares */
    is_int(st.gpu_milli_used, 814, "stats count the one allocation's share of the device");
    is_int(st.allocs, 1, "stats count one allocation");

    /* oversubscription: factor 2 doubles the memory offered */
    mk(&n, "over", 8000, 16000, 1, "A10", 10000);
    n.oversub = 2.0;
    add(pl, &n);
    gp_job_t j = job("o1", 1, 0, 0);
    j.whole = false;
    j.mem_mib = 15000;
    gp_strlist_add(&j.uuids, "over-g0");
    is_str(put(pl, &j, NULL), "over", "15000 MiB fits a 10000 MiB device oversubscribed 2x");

    /* node update keeps allocations, node removal drops them */
    mk(&n, "n", 16000, 32000, 1, "A10", 24576);
    gen = gp_placement_generation(pl);
    is_int(gp_placement_add_node(pl, &n, &err), 0, "a node update with the same devices");
    ok(gp_placement_generation(pl) != gen, "...changes the generation");
    gen = gp_placement_generation(pl);
    gp_alloc_t got;
    is_int(gp_placement_get_alloc(pl, "x", &got), 0, "keeps its allocation");
    mk(&n, "n", 16000, 32000, 1, "A10", 24576);
    gp_strlcpy(n.devices[0].uuid, "other", sizeof n.devices[0].uuid);
    ok(gp_placement_add_node(pl, &n, &err) < 0 && err.code == GP_ERR_CONFLICT,
       "an update dropping a used device is refused");
    ok(gp_placement_generation(pl) == gen, "...and leaves the generation as it was");
    is_int(gp_placement_remove_node(pl, "n", &err), 0, "a node is removed");
    ok(gp_placement_get_alloc(pl, "x", &got) < 0, "with its allocations");
    ok(gp_placement_remove_alloc(pl, "x", &err) < 0 && err.code == GP_ERR_NOTFOUND,
       "removing it again: not found");
    ok(gp_placement_generation(pl) != gen, "the removal changed the generation");
    gen = gp_placement_generation(pl);
    is_int(gp_placement_set_policy(pl, "spread", &err), 0, "the policy is set");
    ok(gp_placement_generation(pl) != gen, "...changing it too");
    /* Two engines given the same changes: never the same generation, so
     * an engine rebuilt from scratch does not pass for the one before. */
    gp_placement_t *e1 = engine("binpack"), *e2 = engine("binpack");
    ok(gp_placement_generation(e1) != gp_placement_generation(e2),
       "two new engines: two generations");
    add(e1, &n);
    add(e2, &n);
    ok(gp_placement_generation(e1) != gp_placement_generation(e2), "...and after the same node");
    gp_placement_destroy(&e1);
    gp_placement_destroy(&e2);
    gp_placement_destroy(&pl);
}

static void test_binpack_spread(void)
{
    const char *pols[] = {"binpack", "spread"};
    for (int p = 0; p < 2; p++) {
        gp_placement_t *pl = engine(pols[p]);
        gp_node_t n;
        mk(&n, "a", 32000, 64000, 2, "A10", 24576);
        add(pl, &n);
        mk(&n, "b", 32000, 64000, 2, "A10", 24576);
        add(pl, &n);
        gp_job_t j = job("first", 1, 500, 1000);
        gp_strlist_add(&j.uuids, "a-g0");
        is_str(put(pl, &j, NULL), "a", "%s: seed a job on a/g0", pols[p]);
        j = job("second", 1, 300, 1000);
        gp_alloc_t a;
        const char *node = put(pl, &j, &a);
        if (p == 0) {
            is_str(node, "a", "binpack: the used node");
            is_str(a.devices[0].uuid, "a-g0", "binpack: the used device");
        } else {
            is_str(node, "b", "spread: the empty node");
        }
        j = job("third", 1, 200, 1000);
        gp_strlist_add(&j.uuids, "a-g0");
        gp_strlist_add(&j.uuids, "a-g1");
        node = put(pl, &j, &a);
        if (p == 1)
            is_str(a.devices[0].uuid, "a-g1", "spread: the emptiest device of the node");
        else
            is_str(a.devices[0].uuid, "a-g0", "binpack: the fullest device that fits");
        gp_placement_destroy(&pl);
    }
}

static void test_topology(void)
{
    gp_placement_t *pl = engine("topology");
    gp_node_t n;
    mk(&n, "nv", 64000, 256000, 4, "A100", 81920);
    /* 0-2 and 1-3 are NVLink pairs; 0,1 on NUMA 0, 2,3 on NUMA 1 */
    n.devices[0].links = 1u << 2;
    n.devices[2].links = 1u << 0;
    n.devices[1].links = 1u << 3;
    n.devices[3].links = 1u << 1;
    n.devices[2].numa = n.devices[3].numa = 1;
    add(pl, &n);
    mk(&n, "pcie", 64000, 256000, 4, "A100", 81920);
    add(pl, &n);
    gp_job_t j = job("pair", 2, 0, 1000);
    gp_alloc_t a;
    is_str(where(pl, &j, &a), "nv", "a 2-device job goes where an NVLink pair is free");
    int d0 = a.devices[0].index, d1 = a.devices[1].index;
    ok((d0 == 0 && d1 == 2) || (d0 == 2 && d1 == 0) || (d0 == 1 && d1 == 3) ||
       (d0 == 3 && d1 == 1), "and gets a linked pair (%d,%d)", d0, d1);
    gp_placement_destroy(&pl);

    pl = engine("topology");
    mk(&n, "numa", 64000, 256000, 4, "A100", 81920);
    n.devices[2].numa = n.devices[3].numa = 1;
    add(pl, &n);
    j = job("pair", 2, 0, 1000);
    gp_strlist_add(&j.exclude_uuids, "numa-g0");
    is_str(where(pl, &j, &a), "numa", "without links");
    ok(a.devices[0].index >= 2 && a.devices[1].index >= 2,
       "the pair shares a NUMA node (%d,%d)", a.devices[0].index, a.devices[1].index);
    gp_placement_destroy(&pl);
}

static void test_fgd(void)
{
    /* The workload is all 600-thousandth jobs.  Node a has one device with
     * 700 free, node b one entirely free device.  A 400 job on a would leave
     * 300, which no 600 job can use (fragment); on b it leaves 600, which
     * one can.  FGD picks b; best fit picks the fuller a. */
    const char *pols[] = {"fgd", "bestfit"};
    const char *want[] = {"b", "a"};
    for (int p = 0; p < 2; p++) {
        gp_placement_t *pl = engine(pols[p]);
        gp_shape_t sh;
        memset(&sh, 0, sizeof sh);
        sh.milli = 600;
        sh.devices = 1;
        double w = 1;
        is_int(gp_placement_set_typical(pl, &sh, &w, 1, &err), 0, "typical shapes set");
        gp_node_t n;
        mk(&n, "a", 32000, 64000, 1, "A10", 24000);
        add(pl, &n);
        mk(&n, "b", 32000, 64000, 1, "A10", 24000);
        add(pl, &n);
        gp_job_t j = job("seed", 1, 300, 0);
        gp_strlist_add(&j.uuids, "a-g0");
        is_str(put(pl, &j, NULL), "a", "%s: a is 300 used", pols[p]);
        double fr, idle;
        gp_placement_frag(pl, &fr, &idle);
        ok(idle == 1700 && fr == 0, "%s: 1700 idle, no fragment yet (%g)", pols[p], fr);
        j = job("x", 1, 400, 0);
        is_str(where(pl, &j, NULL), want[p], "%s places the 400 job on %s", pols[p], want[p]);
        is_str(put(pl, &j, NULL), want[p], "%s commits it", pols[p]);
        gp_placement_frag(pl, &fr, &idle);
        ok(p == 0 ? fr == 0 : fr == 300, "%s: fragmentation after is %g", pols[p], fr);
        gp_placement_destroy(&pl);
    }

    /* FGD without a distribution learns one from the jobs it places. */
    gp_placement_t *pl = engine("fgd");
    gp_node_t n;
    mk(&n, "a", 32000, 64000, 2, "A10", 24000);
    add(pl, &n);
    gp_job_t j = job("l", 1, 500, 0);
    is_str(put(pl, &j, NULL), "a", "FGD with learned shapes places");
    gp_placement_destroy(&pl);
}

static void test_baselines(void)
{
    gp_node_t small, big;
    mk(&small, "small", 8000, 64000, 1, "A10", 24000);
    mk(&big, "big", 64000, 64000, 1, "A10", 24000);

    gp_placement_t *pl = engine("bestfit");
    add(pl, &small);
    add(pl, &big);
    gp_job_t j = job("j", 1, 0, 4000);
    is_str(where(pl, &j, NULL), "small", "bestfit: the node left with least");
    gp_placement_destroy(&pl);

    pl = engine("dotprod");
    add(pl, &small);
    add(pl, &big);
    is_str(where(pl, &j, NULL), "small", "dotprod: the smallest alignment");
    gp_placement_destroy(&pl);

    gp_node_t a, b;
    mk(&a, "a", 32000, 64000, 2, "A10", 24000);
    mk(&b, "b", 32000, 64000, 2, "A10", 24000);
    pl = engine("gpupacking");
    add(pl, &a);
    add(pl, &b);
    j = job("s", 1, 500, 0);
    gp_strlist_add(&j.uuids, "b-g1");
    put(pl, &j, NULL);
    j = job("t", 1, 300, 0);
    gp_alloc_t al;
    is_str(where(pl, &j, &al), "b", "gpupacking: a shared device first");
    is_str(al.devices[0].uuid, "b-g1", "gpupacking: that device");
    gp_placement_destroy(&pl);

    pl = engine("gpuclustering");
    add(pl, &a);
    add(pl, &b);
    j = job("q", 1, 250, 0);
    gp_strlist_add(&j.uuids, "a-g0");
    put(pl, &j, NULL);
    j = job("h", 1, 0, 0);
    gp_strlist_add(&j.uuids, "b-g0");
    put(pl, &j, NULL);
    j = job("q2", 1, 500, 0);
    is_str(where(pl, &j, NULL), "a", "gpuclustering: a shared slice joins the shared slices "
           "(whatever their share)");
    j = job("h2", 1, 0, 0);
    is_str(where(pl, &j, NULL), "b", "gpuclustering: a whole device joins the whole devices");
    gp_placement_destroy(&pl);

    /* random: deterministic for a seed, and it does spread */
    int seen_a = 0, seen_b = 0;
    char first[8][GP_NAME_LEN], again[8][GP_NAME_LEN];
    for (int run = 0; run < 2; run++) {
        pl = engine("random");
        add(pl, &a);
        add(pl, &b);
        for (int i = 0; i < 8; i++) {
            j = job("r", 1, 100, 0);
            const char *w = where(pl, &j, NULL);
            gp_strlcpy(run ? again[i] : first[i], w, GP_NAME_LEN);
            seen_a += strcmp(w, "a") == 0;
            seen_b += strcmp(w, "b") == 0;
        }
        gp_placement_destroy(&pl);
    }
    ok(seen_a > 0 && seen_b > 0, "random: both nodes drawn (%d, %d)", seen_a, seen_b);
    int same = 1;
    for (int i = 0; i < 8; i++)
        same &= strcmp(first[i], again[i]) == 0;
    ok(same, "random: the same seed gives the same draws");
}

static void test_rank_score(void)
{
    gp_placement_t *pl = engine("binpack");
    gp_node_t n;
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "n%d", i);
        mk(&n, name, 32000, 64000, 4, "A10", 24000);
        add(pl, &n);
        for (int k = 0; k < i && k < 4; k++) {
            char id[32];
            snprintf(id, sizeof id, "fill%d-%d", i, k);
            gp_job_t f = job(id, 1, 0, 0);
            gp_strlist_add(&f.uuids, n.devices[k].uuid);
            put(pl, &f, NULL);
        }
    }
    gp_job_t j = job("r", 1, 0, 1000);
    gp_candidate_t c[3];
    int got = 0;
    is_int(gp_placement_rank(pl, &j, c, 3, &got, &err), 0, "rank");
    is_int(got, 3, "three candidates");
    ok(strcmp(c[0].plan.node, "n3") == 0 && strcmp(c[1].plan.node, "n2") == 0 &&
       c[0].score >= c[1].score && c[1].score >= c[2].score,
       "best first: %s %s %s", c[0].plan.node, c[1].plan.node, c[2].plan.node);
    double s;
    gp_alloc_t plan;
    is_int(gp_placement_score_node(pl, "n3", &j, &s, &plan, &err), 0, "a node's own score");
    ok(s == c[0].score && strcmp(plan.node, "n3") == 0, "equals its rank score");
    ok(!gp_placement_fits(pl, "n4", &j), "the full node does not fit");
    ok(gp_placement_score_node(pl, "zz", &j, &s, NULL, &err) < 0 && err.code == GP_ERR_NOTFOUND,
       "an unknown node");
    gp_placement_destroy(&pl);
}

static void test_gang(void)
{
    gp_placement_t *pl = engine("binpack");
    gp_node_t n;
    mk(&n, "a", 32000, 64000, 1, "A10", 24000);
    add(pl, &n);
    mk(&n, "b", 32000, 64000, 1, "A10", 24000);
    add(pl, &n);
    gp_job_t m[3] = {job("m0", 1, 0, 0), job("m1", 1, 0, 0), job("m2", 1, 0, 0)};
    gp_alloc_t out[3];
    ok(gp_placement_place_gang(pl, m, 3, true, out, &err) < 0 && err.code == GP_ERR_NOTFOUND,
       "a gang of 3 does not fit 2 devices: %s", err.msg);
    gp_placement_stats_t st;
    gp_placement_stats(pl, &st);
    is_int(st.allocs, 0, "and nothing of it stays");
    is_int(gp_placement_place_gang(pl, m, 2, false, out, &err), 0, "a gang of 2 is planned");
    ok(strcmp(out[0].node, out[1].node) != 0 && strcmp(out[1].job, "m1") == 0,
       "on both nodes, with the members' ids");
    gp_placement_stats(pl, &st);
    is_int(st.allocs, 0, "a plan commits nothing");
    is_int(gp_placement_place_gang(pl, m, 2, true, out, &err), 0, "committed");
    gp_placement_stats(pl, &st);
    is_int(st.allocs, 2, "both allocations are there");
    gp_placement_destroy(&pl);
}


/* Why a job fits no node: each node counted once, under the first filter it
 * fails, causes most frequent first, with what the job wants and the most
 * any node offers. */
static void test_explain(void)
{
    gp_placement_t *pl = engine("binpack");
    gp_node_t n;
    mk(&n, "a1", 32000, 64000, 4, "A100", 81920);
    add(pl, &n);
    mk(&n, "a2", 32000, 64000, 4, "A100", 81920);
    add(pl, &n);
    mk(&n, "t1", 32000, 64000, 1, "T4", 15360);
    add(pl, &n);
    mk(&n, "sick", 32000, 64000, 8, "A100", 81920);
    n.healthy = false;
    add(pl, &n);
    char why[256];
    gp_job_t j = job("b200", 1, 0, 0);
    gp_strlist_add(&j.models, "B200");
    is_int(gp_placement_explain(pl, &j, why, sizeof why, &err), 0, "a model no node has: 0 fit");
    is_str(why, "0/4 nodes: 3 wrong model (want B200), 1 unhealthy", "counted by cause, most first");
    gp_job_t h = job("h200", 1, 0, 0);
    gp_strlist_add(&h.models, "H200");
    gp_placement_explain(pl, &h, why, sizeof why, &err);
    is_str(why, "0/4 nodes: 3 wrong model (want H200), 1 unhealthy",
           "the same shape with another model list: its own explanation, not the last one's");
    j = job("mem", 1, 0, 0);
    j.whole = false;
    j.mem_mib = 200000;
    gp_placement_explain(pl, &j, why, sizeof why, &err);
    is_str(why, "0/4 nodes: 3 insufficient GPU memory (want 200000 MiB on 1 GPU, most free 81920), "
                "1 unhealthy", "memory: what it wants, the most a device has");
    j = job("eight", 8, 0, 0);
    gp_placement_explain(pl, &j, why, sizeof why, &err);
    is_str(why, "0/4 nodes: 3 too few GPUs (want 8, most 4), 1 unhealthy",
           "too few devices: the most a node has");
    j = job("cpu", 1, 0, 64000);
    gp_placement_explain(pl, &j, why, sizeof why, &err);
    is_str(why, "0/4 nodes: 3 insufficient CPU (want 64000 milli, most free 32000), 1 unhealthy",
           "CPU before devices");
    j = job("pinned", 1, 0, 0);
    gp_strlist_add(&j.zones, "nowhere");
    gp_placement_explain(pl, &j, why, sizeof why, &err);
    is_str(why, "0/4 nodes: 3 other zone (want nowhere), 1 unhealthy", "a pin no node matches");
    gp_alloc_t a;
    gp_job_t w = job("fill", 4, 0, 0);
    ok(strcmp(put(pl, &w, &a), "-") != 0, "a whole-node job fills one A100 node");
    w = job("fill2", 4, 0, 0);
    ok(strcmp(put(pl, &w, &a), "-") != 0, "and another the other");
    j = job("one", 1, 0, 0);
    gp_strlist_add(&j.models, "A100");
    gp_placement_explain(pl, &j, why, sizeof why, &err);
    is_str(why, "0/4 nodes: 2 too few free whole GPUs (want 1, most free 0), 1 unhealthy, "
                "1 wrong model (want A100)", "busy nodes, then the others, ties in the engine's order");
    j = job("t4", 1, 0, 0);
    is_int(gp_placement_explain(pl, &j, why, sizeof why, &err), 1, "a job that fits: 1 node");
    is_str(why, "1/4 nodes can hold it", "...and says so, without causes");
    gp_placement_destroy(&pl);
}

static void test_preemption(void)
{
    gp_placement_t *pl = engine("binpack");
    gp_node_t n;
    mk(&n, "a", 32000, 64000, 1, "A10", 24000);
    add(pl, &n);
    mk(&n, "b", 32000, 64000, 1, "A10", 24000);
    add(pl, &n);
    /* a: two halves at priority 0 and 1; b: one whole device at priority 2 */
    gp_job_t j = job("a-lo", 1, 500, 0);
    j.priority = 0;
    gp_strlist_add(&j.uuids, "a-g0");
    put(pl, &j, NULL);
    j = job("a-mid", 1, 500, 0);
    j.priority = 1;
    gp_strlist_add(&j.uuids, "a-g0");
    put(pl, &j, NULL);
    j = job("b-hi", 1, 0, 0);
    j.priority = 2;
    put(pl, &j, NULL);

    char v[8][GP_NAME_LEN];
    int nv = 0;
    gp_alloc_t plan;
    j = job("urgent", 1, 0, 0);
    j.priority = 10;
    is_int(gp_placement_plan_preemption(pl, &j, v, 8, &nv, &plan, &err), 0,
           "a whole device for priority 10");
    ok(nv == 1 && strcmp(v[0], "b-hi") == 0 && strcmp(plan.node, "b") == 0,
       "fewest victims first: one job on b (%d, %s)", nv, nv ? v[0] : "");
    j = job("half", 1, 500, 0);
    j.priority = 10;
    is_int(gp_placement_plan_preemption(pl, &j, v, 8, &nv, &plan, &err), 0, "half a device");
    ok(nv == 1 && strcmp(v[0], "a-lo") == 0, "the lowest priority of the single victims (%s)",
       nv ? v[0] : "");
    j = job("mid", 1, 0, 0);
    j.priority = 2;
    is_int(gp_placement_plan_preemption(pl, &j, v, 8, &nv, &plan, &err), 0,
           "priority 2 may only take lower ones");
    ok(nv == 2 && strcmp(plan.node, "a") == 0, "both jobs on a (%d victims)", nv);
    j = job("low", 1, 0, 0);
    j.priority = 0;
    ok(gp_placement_plan_preemption(pl, &j, v, 8, &nv, &plan, &err) < 0 &&
       err.code == GP_ERR_NOTFOUND, "nothing lower than priority 0 to take");
    gp_alloc_t still;
    is_int(gp_placement_get_alloc(pl, "a-lo", &still), 0, "planning changed nothing");
    gp_placement_destroy(&pl);
}

/* The per-shape index (place) against a plain scan (rank) after random
 * commits and releases, for every policy that uses the index. */
static void test_index_matches_scan(void)
{
    const char *pols[] = {"fgd", "gpupool", "bestfit", "binpack", "spread", "dotprod",
                          "gpupacking", "gpuclustering", "topology"};
    for (size_t p = 0; p < GP_ARRAY_LEN(pols); p++) {
        gp_placement_t *pl = engine(pols[p]);
        gp_node_t n;
        for (int i = 0; i < 40; i++) {
            char name[32];
            snprintf(name, sizeof name, "n%d", i);
            mk(&n, name, 16000 + 8000 * (i % 4), 128000, 1 + i % 8, i % 3 ? "A10" : "T4", 24000);
            add(pl, &n);
        }
        if (strcmp(pols[p], "fgd") == 0 || strcmp(pols[p], "gpupool") == 0) {
            /* a fixed distribution: learning it from the jobs would change
             * the tables between the place() and rank() being compared */
            gp_shape_t ts[3] = {{2000, 300, 1, ""}, {0, 1000, 1, ""}, {2000, 0, 0, ""}};
            double tw[3] = {3, 2, 1};
            gp_placement_set_typical(pl, ts, tw, 3, &err);
        }
        uint64_t r = 12345;
        int mismatches = 0, placed = 0, live = 0;
        char ids[400][32];
        int64_t milli[400], sum = 0;
        for (int step = 0; step < 400; step++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            int kind = (int)(r >> 33) % 10;
            if (kind < 3 && live > 0) {
                int k = (int)((r >> 20) % (uint64_t)live);
                gp_placement_remove_alloc(pl, ids[k], NULL);
                sum -= milli[k];
                live--;
                memcpy(ids[k], ids[live], sizeof ids[k]);
                milli[k] = milli[live];
                continue;
            }
            char id[32];
            snprintf(id, sizeof id, "j%d", step);
            int dev = kind == 9 ? 2 : kind == 8 ? 0 : 1;
            int share = kind < 6 ? 100 * (1 + (int)((r >> 40) % 9)) : 0;
            gp_job_t j = job(id, dev, dev == 1 ? share : 0, 1000 * (int64_t)((r >> 50) % 4));
            if (dev == 0)
                j.cpu_milli = 2000;
            gp_alloc_t a;
            gp_candidate_t c;
            int got = 0;
            int rp = gp_placement_place(pl, &j, &a, &err);
            int rr = gp_placement_rank(pl, &j, &c, 1, &got, &err);
            if ((rp == 0) != (rr == 0)) {
                mismatches++;
                continue;
            }
            if (rp < 0)
                continue;
            double s;
            gp_placement_score_node(pl, a.node, &j, &s, NULL, NULL);
            if ((float)s != (float)c.score)
                mismatches++;
            if (gp_placement_add_alloc(pl, &a, &err) == 0) {
                placed++;
                milli[live] = (int64_t)dev * (j.whole ? 1000 : share);
                sum += milli[live];
                memcpy(ids[live++], id, sizeof ids[0]);
            }
        }
        gp_placement_stats_t st;
        gp_placement_stats(pl, &st);
        ok(st.gpu_milli_used == sum && st.gpu_milli_used <= st.gpu_milli_total &&
           st.allocs == live, "%s: the devices' used share is what the live jobs asked for "
           "(%lld = %lld)", pols[p], (long long)st.gpu_milli_used, (long long)sum);
        ok(mismatches == 0 && placed > 50, "%s: the index finds the best node (%d placed, "
           "%d mismatches)", pols[p], placed, mismatches);
        gp_placement_destroy(&pl);
    }
}

/* The index against the scan, node for node (ties included), while host
 * memory runs out on some nodes (whole-score indexes leave it out of their
 * bytes and check it at the top) and nodes leave and others take their
 * slots at other places in the tie order. */
static void test_index_churn(void)
{
    const char *pols[] = {"fgd", "bestfit", "dotprod", "gpupacking", "binpack"};
    for (size_t p = 0; p < GP_ARRAY_LEN(pols); p++) {
        gp_placement_t *pl = engine(pols[p]);
        gp_node_t n;
        int next_node = 0;
        for (; next_node < 60; next_node++) {
            char name[32];
            snprintf(name, sizeof name, "n%d", next_node);
            mk(&n, name, 64000, 20000 + 4000 * (next_node % 5), 1 + next_node % 4,
               next_node % 3 ? "A10" : "T4", 24000);
            add(pl, &n);
        }
        if (strcmp(pols[p], "fgd") == 0) {
            gp_shape_t ts[3] = {{2000, 300, 1, ""}, {0, 1000, 1, ""}, {2000, 0, 0, ""}};
            double tw[3] = {3, 2, 1};
            gp_placement_set_typical(pl, ts, tw, 3, &err);
        }
        uint64_t r = 777;
        int same = 0, differ = 0, neither = 0, lacked = 0, moved = 0, live = 0;
        char ids[900][32];
        for (int step = 0; step < 900; step++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            int kind = (int)(r >> 33) % 20;
            if (kind < 5 && live > 0) {
                int k = (int)((r >> 20) % (uint64_t)live);
                gp_placement_remove_alloc(pl, ids[k], NULL);
                memcpy(ids[k], ids[--live], sizeof ids[k]);
                continue;
            }
            if (kind == 5) {
                /* a node leaves (its jobs with it), a new one takes its slot */
                char name[32];
                snprintf(name, sizeof name, "n%d", (int)((r >> 24) % (uint64_t)next_node));
                if (gp_placement_remove_node(pl, name, NULL) == 0) {
                    snprintf(name, sizeof name, "n%d", next_node++);
                    mk(&n, name, 64000, 24000, 2, "A10", 24000);
                    add(pl, &n);
                    moved++;
                }
                for (int k = 0; k < live; k++) {
                    gp_alloc_t a;
                    if (gp_placement_get_alloc(pl, ids[k], &a) < 0)
                        memcpy(ids[k--], ids[--live], sizeof ids[0]);
                }
                continue;
            }
            char id[32];
            snprintf(id, sizeof id, "j%d", step);
            int share = 100 * (1 + (int)((r >> 40) % 9));
            gp_job_t j = job(id, kind == 19 ? 2 : 1, kind >= 17 ? 0 : share, 1000);
            /* host memory: a few sizes, so that shapes share an index */
            j.host_mem_mib = 1000 * (int64_t)(1 + (r >> 50) % 4) * ((r >> 45) % 3 ? 1 : 4);
            gp_alloc_t a;
            gp_candidate_t c;
            int got = 0;
            int rp = gp_placement_place(pl, &j, &a, &err);
            int rr = gp_placement_rank(pl, &j, &c, 1, &got, &err);
            if (rp < 0 && (rr < 0 || got == 0)) {
                neither++;
                continue;
            }
            if (rp < 0 || rr < 0 || got == 0 || strcmp(a.node, c.plan.node) != 0) {
                differ++;
                continue;
            }
            same++;
            /* did host memory rule out a node the job's devices would take? */
            gp_job_t j0 = j;
            j0.host_mem_mib = 0;
            gp_alloc_t a0;
            if (gp_placement_place(pl, &j0, &a0, &err) == 0 && strcmp(a0.node, a.node) != 0)
                lacked++;
            if (gp_placement_add_alloc(pl, &a, &err) == 0)
                memcpy(ids[live++], id, sizeof ids[0]);
        }
        ok(differ == 0 && same > 300 && neither > 0 && lacked > 20 && moved > 10,
           "%s: place() picks the scan's node (%d same, %d differ, %d fit nowhere, %d where "
           "host memory ruled out the best, %d nodes replaced)", pols[p], same, differ,
           neither, lacked, moved);
        gp_placement_destroy(&pl);
    }
}

/* More shapes than the engine keeps indexes for (256): the least recently
 * used are dropped and rebuilt when asked again, and an index moved into
 * a dropped one's place keeps answering as the scan does. */
static void test_index_many_shapes(void)
{
    const char *pols[] = {"fgd", "bestfit"};
    for (size_t p = 0; p < GP_ARRAY_LEN(pols); p++) {
        gp_placement_t *pl = engine(pols[p]);
        gp_node_t n;
        for (int i = 0; i < 60; i++) {
            char name[32];
            snprintf(name, sizeof name, "n%d", i);
            mk(&n, name, 400000, 256000, 1 + i % 4, i % 3 ? "A10" : "T4", 24000);
            add(pl, &n);
        }
        if (strcmp(pols[p], "fgd") == 0) {
            gp_shape_t ts[3] = {{2000, 300, 1, ""}, {0, 1000, 1, ""}, {2000, 0, 0, ""}};
            double tw[3] = {3, 2, 1};
            gp_placement_set_typical(pl, ts, tw, 3, &err);
        }
        uint64_t r = 4242;
        int same = 0, differ = 0, live = 0;
        char ids[64][32];
        for (int step = 0; step < 4000; step++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            if (live == 64 || (live > 0 && (r >> 33) % 3 == 0)) {
                int k = (int)((r >> 20) % (uint64_t)live);
                gp_placement_remove_alloc(pl, ids[k], NULL);
                memcpy(ids[k], ids[--live], sizeof ids[k]);
                continue;
            }
            char id[32];
            snprintf(id, sizeof id, "j%d", step);
            /* 300 CPU demands x 3 shares: up to 900 shapes, asked in turn */
            int64_t cpu = 100 * (int64_t)(1 + (r >> 40) % 300);
            gp_job_t j = job(id, 1, 100 * (1 + (int)((r >> 50) % 3)), cpu);
            gp_alloc_t a;
            gp_candidate_t c;
            int got = 0;
            int rp = gp_placement_place(pl, &j, &a, &err);
            int rr = gp_placement_rank(pl, &j, &c, 1, &got, &err);
            if ((rp == 0) != (rr == 0 && got > 0) || (rp == 0 && strcmp(a.node, c.plan.node))) {
                differ++;
                continue;
            }
            if (rp < 0)
                continue;
            same++;
            if (gp_placement_add_alloc(pl, &a, &err) == 0)
                memcpy(ids[live++], id, sizeof ids[0]);
        }
        ok(differ == 0 && same > 2000, "%s, over 256 shapes: place() picks the scan's node "
           "(%d same, %d differ)", pols[p], same, differ);
        gp_placement_destroy(&pl);
    }
}

/* Allocations by reference, with and without the index by job id. */
static void test_refs(void)
{
    for (int noix = 0; noix <= 1; noix++) {
        gp_placement_opts_t o = GP_PLACEMENT_OPTS_DEFAULT;
        o.policy = "binpack";
        o.no_job_index = noix;
        gp_placement_t *pl = gp_placement_new(&o, &err);
        gp_node_t n;
        mk(&n, "a", 64000, 256000, 2, "A10", 24000);
        add(pl, &n);
        gp_job_t j = job("j1", 1, 500, 1000);
        gp_alloc_t a, got;
        gp_placement_ref_t *r1 = NULL, *r2 = NULL;
        int rc1 = gp_placement_place(pl, &j, &a, &err) == 0 &&
                  gp_placement_add_alloc_ref(pl, &a, &r1, &err) == 0;
        int rc2 = gp_placement_place(pl, &j, &a, &err) == 0 &&
                  gp_placement_add_alloc_ref(pl, &a, &r2, &err) == 0;
        gp_placement_stats_t st;
        gp_placement_stats(pl, &st);
        ok(rc1 && r1 != NULL && st.allocs == 1 + (noix ? rc2 : 0) && rc2 == noix,
           "%s: a second allocation of one id is %s", noix ? "no job index" : "job index",
           noix ? "taken (nothing looks ids up)" : "refused");
        int found = gp_placement_get_alloc(pl, "j1", &got) == 0;
        is_int(found, !noix, "%s: get_alloc %s the job", noix ? "no job index" : "job index",
               noix ? "does not find" : "finds");
        gp_placement_remove_ref(pl, r1);
        if (noix)
            gp_placement_remove_ref(pl, r2);
        gp_placement_stats(pl, &st);
        ok(st.allocs == 0 && st.gpu_milli_used == 0 && st.cpu_used == 0,
           "%s: removed by reference, the node is free again", noix ? "no job index" : "job index");
        ok(gp_placement_get_alloc(pl, "j1", &got) < 0 &&
           gp_placement_remove_alloc(pl, "j1", &err) < 0 && err.code == GP_ERR_NOTFOUND,
           "%s: the id is gone", noix ? "no job index" : "job index");
        if (!noix)
            ok(gp_placement_place(pl, &j, &a, &err) == 0 && gp_placement_add_alloc(pl, &a, &err) == 0,
               "job index: the id can be allocated again");
        gp_placement_destroy(&pl);
    }
}

static void test_big(void)
{
    /* 10,000 nodes, 80,000 devices: placements work and stay consistent. */
    gp_placement_t *pl = engine("fgd");
    gp_node_t n;
    for (int i = 0; i < 10000; i++) {
        char name[32];
        snprintf(name, sizeof name, "n%05d", i);
        mk(&n, name, 96000, 393216, 8, "G2", 32768);
        add(pl, &n);
    }
    int placed = 0;
    for (int i = 0; i < 2000; i++) {
        char id[32];
        snprintf(id, sizeof id, "j%d", i);
        gp_job_t j = job(id, 1, i % 3 ? 500 : 0, 4000);
        if (strcmp(put(pl, &j, NULL), "-") != 0)
            placed++;
    }
    is_int(placed, 2000, "2000 jobs on a 10,000-node cluster");
    gp_placement_stats_t st;
    gp_placement_stats(pl, &st);
    ok(st.nodes == 10000 && st.devices == 80000 && st.allocs == 2000, "stats agree");
    gp_placement_destroy(&pl);
}

/* Tie order: a node order fixed per seed, first fit among equal scores. */
static void test_tie_order(void)
{
    gp_node_t n;
    char first[8][GP_NAME_LEN];
    int differ = 0;
    for (int seed = 1; seed <= 8; seed++) {
        gp_placement_opts_t o = GP_PLACEMENT_OPTS_DEFAULT;
        o.policy = "gpupacking";
        o.seed = (uint64_t)seed;
        gp_placement_t *pl = gp_placement_new(&o, &err);
        for (int i = 0; i < 6; i++) {
            char name[16];
            snprintf(name, sizeof name, "e%d", i);
            mk(&n, name, 32000, 64000, 4, "A10", 24000);
            add(pl, &n);
        }
        /* CPU-only jobs score 0 everywhere under gpupacking: the seed's
         * first node wins, again and again (first fit), until it is full */
        gp_job_t j = job("a", 0, 0, 1000);
        gp_strlcpy(first[seed - 1], put(pl, &j, NULL), GP_NAME_LEN);
        const char *again = first[seed - 1];
        int same = 1;
        for (int k = 0; k < 3; k++) {
            char id[16];
            snprintf(id, sizeof id, "b%d", k);
            j = job(id, 0, 0, 1000);
            same &= strcmp(put(pl, &j, NULL), again) == 0;
        }
        ok(same, "seed %d: equal scores go to one node first (first fit)", seed);
        if (seed > 1 && strcmp(first[seed - 1], first[0]) != 0)
            differ = 1;
        gp_placement_destroy(&pl);
    }
    ok(differ, "the first node depends on the seed");
}

/* gpupool: a node whose CPU cannot feed its free GPUs counts them as lost. */
static void test_gpupool(void)
{
    gp_node_t poor, rich;
    mk(&poor, "poor", 16000, 128000, 8, "A10", 24000);   /* 2 cores per GPU */
    mk(&rich, "rich", 64000, 128000, 8, "A10", 24000);   /* 8 cores per GPU */
    gp_shape_t ts[1] = {{2000, 1000, 1, ""}};             /* 2 cores per GPU asked */
    double tw[1] = {1};
    int fgd_poor = 0, gpupool_poor = 0;
    for (int seed = 1; seed <= 8; seed++) {
        const char *pols[2] = {"fgd", "gpupool"};
        for (int p = 0; p < 2; p++) {
            gp_placement_opts_t o = GP_PLACEMENT_OPTS_DEFAULT;
            o.policy = pols[p];
            o.seed = (uint64_t)seed;
            gp_placement_t *pl = gp_placement_new(&o, &err);
            add(pl, &poor);
            add(pl, &rich);
            gp_placement_set_typical(pl, ts, tw, 1, &err);
            /* a CPU-only job of 8 cores: on "poor" it leaves 8 cores for 8
             * GPUs, 4 GPUs' worth of CPU short; FGD's shapes still fit */
            gp_job_t j = job("cpu", 0, 0, 8000);
            if (strcmp(where(pl, &j, NULL), "poor") == 0) {
                if (p == 0)
                    fgd_poor++;
                else
                    gpupool_poor++;
            }
            gp_placement_destroy(&pl);
        }
    }
    is_int(gpupool_poor, 0, "gpupool never strands GPUs by taking a CPU-poor node's cores");
    ok(fgd_poor > 0, "fgd does for some seeds (%d of 8): it only sees the typical shapes",
       fgd_poor);
}

/* gpupool: a share goes where its device's leftover can still be filled by
 * the common shares; FGD puts a 320 next to a 470 (leaving 210, which no
 * common share fills) rather than open an empty device. */
static void test_gpupool_leftover(void)
{
    gp_node_t n;
    mk(&n, "n", 64000, 256000, 2, "A10", 24000);
    gp_shape_t ts[5] = {{4000, 1000, 1, ""}, {3000, 810, 1, ""}, {4000, 470, 1, ""},
                        {4000, 320, 1, ""}, {4000, 650, 1, ""}};
    double tw[5] = {56, 15, 11, 5, 4};
    int same[2] = {0, 0};
    const char *pols[2] = {"fgd", "gpupool"};
    for (int p = 0; p < 2; p++) {
        gp_placement_t *pl = engine(pols[p]);
        add(pl, &n);
        is_int(gp_placement_set_typical(pl, ts, tw, 5, &err), 0, "%s: typical shapes set",
               pols[p]);
        gp_alloc_t a, b;
        gp_job_t j = job("a470", 1, 470, 4000);
        is_str(put(pl, &j, &a), "n", "%s: the 470 is placed", pols[p]);
        j = job("b320", 1, 320, 4000);
        is_str(where(pl, &j, &b), "n", "%s: the 320 fits", pols[p]);
        same[p] = a.devices[0].index == b.devices[0].index;
        gp_placement_destroy(&pl);
    }
    ok(same[0], "fgd puts the 320 next to the 470 (210 left, which nothing common fills)");
    ok(!same[1], "gpupool opens the other device for it (680 left: a 650 fills it to 30)");
}

/* A proposal (an agent's plan) is checked against the node and the job,
 * not against what else the node holds. */
/* The order of a batch placed together: gpupool's key puts whole jobs first
 * (most GPUs first), then shares (all alike: they keep arrival order), then
 * CPU-only jobs; fgd (as every published policy) gives every job the same
 * key, and a job naming its own policy gets that policy's. */
static void test_batch_key(void)
{
    gp_job_t js[5] = {job("w8", 8, 0, 8000), job("w1", 1, 0, 4000), job("s810", 1, 810, 4000),
                      job("s160", 1, 160, 4000), job("cpu", 0, 0, 4000)};
    double k[2][5];
    const char *pols[2] = {"gpupool", "fgd"};
    for (int p = 0; p < 2; p++) {
        gp_placement_t *pl = engine(pols[p]);
        for (int i = 0; i < 5; i++)
            is_int(gp_placement_batch_key(pl, &js[i], &k[p][i], &err), 0, "%s: key of %s",
                   pols[p], js[i].id);
        gp_placement_destroy(&pl);
    }
    ok(k[0][0] > k[0][1] && k[0][1] > k[0][2], "gpupool: 8 whole GPUs, then 1, then a share");
    ok(k[0][2] == k[0][3], "gpupool: an 810 and a 160 alike (shares keep arrival order)");
    ok(k[0][3] > k[0][4], "gpupool: CPU-only jobs last");
    ok(k[1][0] == k[1][2] && k[1][1] == k[1][4] && k[1][0] == k[1][4],
       "fgd: every job alike (arrival order)");
    gp_placement_t *pl = engine("fgd");
    gp_job_t j = job("own", 1, 0, 4000);
    gp_strlcpy(j.policy, "gpupool", sizeof j.policy);
    double kj;
    is_int(gp_placement_batch_key(pl, &j, &kj, &err), 0, "a job naming gpupool on an fgd engine");
    ok(kj == k[0][1], "gets gpupool's key");
    gp_strlcpy(j.policy, "nope", sizeof j.policy);
    ok(gp_placement_batch_key(pl, &j, &kj, &err) < 0 && err.code == GP_ERR_INVALID,
       "a job naming an unknown policy is refused");
    gp_placement_destroy(&pl);
}

static void test_check_plan(void)
{
    gp_placement_t *pl = engine("binpack");
    gp_node_t n;
    mk(&n, "p0", 8000, 16000, 2, "T4", 16384);
    n.oversub = 1.5;
    add(pl, &n);
    gp_job_t share = job("s", 1, 0, 1000);
    share.whole = false;
    share.mem_mib = 4096;
    share.compute_permille = 250;
    double sc;
    gp_alloc_t good, p;
    is_int(gp_placement_score_node(pl, "p0", &share, &sc, &good, &err), 0, "a plan of the engine's own");
    is_int(gp_placement_check_plan(pl, &share, &good, &err), 0, "passes the check");
    gp_alloc_t other = good;   /* the other device: still a valid proposal */
    other.devices[0].index = 1 - good.devices[0].index;
    gp_strlcpy(other.devices[0].uuid, n.devices[other.devices[0].index].uuid, sizeof other.devices[0].uuid);
    is_int(gp_placement_check_plan(pl, &share, &other, &err), 0, "so does the other device");
    p = good; p.devices[0].index = 5;
    ok(gp_placement_check_plan(pl, &share, &p, &err) < 0 && strstr(err.msg, "device index 5"),
       "refused: a device index out of range (%s)", err.msg);
    p = good; p.devices[0].index = 1 - good.devices[0].index;
    ok(gp_placement_check_plan(pl, &share, &p, &err) < 0 && strstr(err.msg, "the plan names another"),
       "refused: an index that is not the uuid's device (%s)", err.msg);
    p = good; p.devices[0].mem_mib = 16384 * 4;
    ok(gp_placement_check_plan(pl, &share, &p, &err) < 0 && strstr(err.msg, "the device offers 24576"),
       "refused: more memory than the device offers with oversub (%s)", err.msg);
    p = good; p.devices[0].mem_mib = 24576;
    is_int(gp_placement_check_plan(pl, &share, &p, &err), 0, "memory up to mem_mib x oversub is fine");
    p = good; p.devices[0].mem_mib = 4095;
    ok(gp_placement_check_plan(pl, &share, &p, &err) < 0 && strstr(err.msg, "the job asks 4096"),
       "refused: less memory than the job asks (%s)", err.msg);
    p = good; p.devices[0].compute_permille = 200;
    ok(gp_placement_check_plan(pl, &share, &p, &err) < 0 && strstr(err.msg, "compute"),
       "refused: less compute than the job asks (%s)", err.msg);
    p = good; p.devices[0].whole = true;
    ok(gp_placement_check_plan(pl, &share, &p, &err) < 0 && strstr(err.msg, "whole"),
       "refused: whole for a share (%s)", err.msg);
    p = good; p.ndevices = 2; p.devices[1] = p.devices[0];
    ok(gp_placement_check_plan(pl, &share, &p, &err) < 0 && strstr(err.msg, "2 devices"),
       "refused: more devices than the job asks (%s)", err.msg);
    p = good; p.cpu_milli = 9000;
    ok(gp_placement_check_plan(pl, &share, &p, &err) < 0 && strstr(err.msg, "cpu_milli"),
       "refused: more CPU than the node has (%s)", err.msg);
    p = good; p.cpu_milli = 0;
    ok(gp_placement_check_plan(pl, &share, &p, &err) < 0 && strstr(err.msg, "cpu_milli"),
       "refused: less CPU than the job asks (%s)", err.msg);
    gp_job_t two = job("w", 2, 0, 0);
    is_int(gp_placement_score_node(pl, "p0", &two, &sc, &p, &err), 0, "a whole two-device plan");
    is_int(gp_placement_check_plan(pl, &two, &p, &err), 0, "passes");
    p.devices[1] = p.devices[0];
    ok(gp_placement_check_plan(pl, &two, &p, &err) < 0 && strstr(err.msg, "twice"),
       "refused: one device named twice (%s)", err.msg);
    gp_strlcpy(p.node, "zz", sizeof p.node);
    ok(gp_placement_check_plan(pl, &two, &p, &err) < 0 && err.code == GP_ERR_NOTFOUND,
       "an unknown node");
    gp_placement_destroy(&pl);
}

int main(void)
{
    test_filters();
    test_accounting();
    test_binpack_spread();
    test_topology();
    test_fgd();
    test_baselines();
    test_rank_score();
    test_gang();
    test_explain();
    test_preemption();
    test_index_matches_scan();
    test_index_churn();
    test_index_many_shapes();
    test_refs();
    test_big();
    test_tie_order();
    test_gpupool();
    test_gpupool_leftover();
    test_batch_key();
    test_check_plan();
    ok(gp_policy_doc("fgd") != NULL && gp_policy_doc("nope") == NULL, "policy docs");
    int named = 0, listed = 0;
    for (const char *const *p = gp_policy_names(); *p; p++, listed++) {
        gp_placement_opts_t po = GP_PLACEMENT_OPTS_DEFAULT;
        po.policy = *p;
        gp_placement_t *pl = gp_placement_new(&po, &err);
        named += pl != NULL && gp_policy_doc(*p) != NULL;
        gp_placement_destroy(&pl);
    }
    ok(listed >= 10 && named == listed, "every listed policy is in the table (%d of %d)", named,
       listed);
    gp_placement_opts_t o = GP_PLACEMENT_OPTS_DEFAULT;
    o.policy = "nope";
    ok(gp_placement_new(&o, &err) == NULL && err.code == GP_ERR_INVALID, "unknown policy");
    return done_testing();
}
