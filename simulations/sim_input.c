/* sim_input.c - inventories and workloads for gpupool-sim (see sim.h). */
#include "sim.h"

#include <sys/stat.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "keys.h"
#include "util.h"

#include "banned.h"

/* Device memory by model, for inventories that give only a model name (the
 * openb node list).  The openb models G1..G3 are undisclosed; their size
 * does not matter there, as openb pods ask for shares of a device. */
static const struct { const char *name; int64_t mem; } s_known[] = {
    {"G1", 32768}, {"G2", 32768}, {"G3", 16384}, {"T4", 15360}, {"P100", 16384},
    {"V100M16", 16384}, {"V100M32", 32768}, {"A10", 24576}, {"A30", 24576},
    {"A100", 40960}, {"A100-40G", 40960}, {"A100-80G", 81920}, {"A800", 81920},
    {"H100", 81920}, {"H800", 81920}, {"H20", 98304}, {"H200", 144384}, {"L4", 23034},
    {"L20", 46068}, {"L40", 46068}, {"L40S", 46068}, {"V100", 16384}, {"K80", 12288},
    {"RTX4090", 24576}, {"RTX3090", 24576}, {"910B", 65536}, {"P800", 98304},
    {"A10G", 23028},
};

uint64_t sim_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

double sim_rand01(uint64_t *state)
{
    return (double)(sim_rand(state) >> 11) / 9007199254740992.0;
}

int sim_model_find(sim_data_t *d, const char *name, bool create)
{
    for (int i = 0; i < d->nmodels; i++)
        if (strcmp(d->models[i].name, name) == 0)
            return i;
    if (!create)
        return -1;
    for (size_t k = 0; k < GP_ARRAY_LEN(s_known); k++)
        if (strcmp(s_known[k].name, name) == 0 && d->nmodels < 256) {
            sim_model_t *m = &d->models[d->nmodels];
            gp_strlcpy(m->name, name, sizeof m->name);
            gp_strlcpy(m->vendor, "nvidia", sizeof m->vendor);
            m->mem_mib = s_known[k].mem;
            return d->nmodels++;
        }
    return -1;
}

int sim_add_node(sim_data_t *d, const sim_node_t *n)
{
    if (d->nnodes == d->nodes_cap) {
        int ncap = d->nodes_cap ? d->nodes_cap * 2 : 1024;
        sim_node_t *nn = realloc(d->nodes, sizeof *nn * (size_t)ncap);
        if (nn == NULL)
            return -1;
        d->nodes = nn;
        d->nodes_cap = ncap;
    }
    d->nodes[d->nnodes++] = *n;
    d->gpu_total += n->ngpu;
    return 0;
}

static bool s_same_record(const gp_node_t *a, const gp_node_t *b)
{
    gp_node_t x = *a, y = *b;
    memset(x.name, 0, sizeof x.name);
    memset(y.name, 0, sizeof y.name);
    for (int i = 0; i < x.ndevices && i < y.ndevices; i++) {
        memset(x.devices[i].uuid, 0, sizeof x.devices[i].uuid);
        memset(y.devices[i].uuid, 0, sizeof y.devices[i].uuid);
    }
    return memcmp(&x, &y, sizeof x) == 0;
}

bool sim_node_same_kind(const sim_node_t *a, const sim_node_t *b)
{
    return a->model == b->model && a->ngpu == b->ngpu && a->cpu == b->cpu &&
           a->mem == b->mem && (a->full == NULL) == (b->full == NULL) &&
           (a->full == NULL || s_same_record(a->full, b->full));
}

static int s_add_pod(sim_data_t *d, const sim_pod_t *p)
{
    if (d->npods == d->pods_cap) {
        int ncap = d->pods_cap ? d->pods_cap * 2 : 4096;
        sim_pod_t *np = realloc(d->pods, sizeof *np * (size_t)ncap);
        if (np == NULL)
            return -1;
        d->pods = np;
        d->pods_cap = ncap;
    }
    d->pods[d->npods++] = *p;
    return 0;
}

static int s_add_spec(sim_data_t *d, const gp_strlist_t *l)
{
    for (int i = 0; i < d->nspecs; i++)
        if (memcmp(&d->specs[i], l, sizeof *l) == 0)
            return i;
    if (d->nspecs == d->specs_cap) {
        int ncap = d->specs_cap ? d->specs_cap * 2 : 16;
        gp_strlist_t *ns = realloc(d->specs, sizeof *ns * (size_t)ncap);
        if (ns == NULL)
            return -1;
        d->specs = ns;
        d->specs_cap = ncap;
    }
    memset(&d->specs[d->nspecs], 0, sizeof *l);
    d->specs[d->nspecs] = *l;
    return d->nspecs++;
}

void sim_data_free(sim_data_t *d)
{
    for (int i = 0; i < d->nnodes; i++)
        free(d->nodes[i].full);
    for (int i = 0; i < d->nfulls; i++)
        free(d->fulls[i]);
    free(d->fulls);
    free(d->teams);
    free(d->uses);
    free(d->classes);
    free(d->nodes);
    free(d->pods);
    free(d->specs);
    memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------------------ CSV */

/* Split a CSV line in place (no quoting in the openb files). */
static int s_split(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max)
            return -1;
        f[n++] = p;
        char *c = strchr(p, ',');
        if (c == NULL)
            break;
        *c = '\0';
        p = c + 1;
    }
    return n;
}

static int s_col(char **hdr, int nh, const char *name)
{
    for (int i = 0; i < nh; i++)
        if (strcmp(hdr[i], name) == 0)
            return i;
    return -1;
}

static void s_chomp(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

static int s_num(const char *path, int line, const char *col, const char *s, int64_t max,
                 int64_t *out, gp_err_t *err)
{
    if (gp_parse_int64(s, INT64_MIN, INT64_MAX, out) < 0)
        return gp_err_set(err, GP_ERR_INVALID, "%s:%d: column %s: \"%s\" is not a whole number",
                          path, line, col, s);
    if (*out < 0)
        return gp_err_set(err, GP_ERR_INVALID, "%s:%d: column %s: negative value %s", path,
                          line, col, s);
    if (*out > max)
        return gp_err_set(err, GP_ERR_INVALID, "%s:%d: column %s: %s is more than %lld", path,
                          line, col, s, (long long)max);
    return 0;
}

static int s_time(const char *path, int line, const char *col, const char *s, double *out,
                  gp_err_t *err)
{
    if (*s == '\0') {
        *out = -1;
        return 0;
    }
    if (gp_parse_double(s, 0, 1e15, out) < 0)
        return gp_err_set(err, GP_ERR_INVALID, "%s:%d: column %s: bad time \"%s\"", path, line,
                          col, s);
    return 0;
}

static int s_open(const char *path, FILE **f, gp_err_t *err)
{
    *f = fopen(path, "r");
    if (*f == NULL)
        return gp_err_errno(err, "%s", path);
    struct stat st;
    if (fstat(fileno(*f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(*f);
        *f = NULL;
        errno = EISDIR;      /* glibc opens a directory for reading; reading it fails */
        return gp_err_errno(err, "%s", path);
    }
    return 0;
}

static int s_openb_nodes(sim_data_t *d, const char *path, gp_err_t *err)
{
    const char *what = "nodes";
    FILE *f;
    if (s_open(path, &f, err) < 0)
        return -1;
    char *line = NULL, *hdr = NULL, *hf[32], *fl[32];
    size_t cap = 0;
    int rc = -1, lineno = 0, nh = 0;
    ssize_t len;
    int c_sn = -1, c_cpu = -1, c_mem = -1, c_gpu = -1, c_model = -1;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        s_chomp(line);
        if (lineno == 1) {
            if (line[0] == '{' || line[0] == '#') {
                gp_err_set(err, GP_ERR_INVALID, "%s:1: a JSON object where the CSV header "
                           "was expected (JSON lines? then say so with --%s-format jsonl)",
                           path, what);
                goto cleanup;
            }
            hdr = strdup(line);
            if (hdr == NULL || (nh = s_split(hdr, hf, 32)) < 0) {
                gp_err_set(err, GP_ERR_INVALID, "%s:1: bad header", path);
                goto cleanup;
            }
            c_sn = s_col(hf, nh, "sn");
            c_cpu = s_col(hf, nh, "cpu_milli");
            c_mem = s_col(hf, nh, "memory_mib");
            c_gpu = s_col(hf, nh, "gpu");
            c_model = s_col(hf, nh, "model");
            const char *need[] = {"sn", "cpu_milli", "memory_mib", "gpu", "model"};
            int have[] = {c_sn, c_cpu, c_mem, c_gpu, c_model};
            for (int i = 0; i < 5; i++)
                if (have[i] < 0) {
                    gp_err_set(err, GP_ERR_INVALID, "%s:1: missing column %s", path, need[i]);
                    goto cleanup;
                }
            continue;
        }
        if (line[0] == '\0')
            continue;
        int nf = s_split(line, fl, 32);
        if (nf != nh) {
            gp_err_set(err, GP_ERR_INVALID, "%s:%d: %d columns, the header has %d", path,
                       lineno, nf < 0 ? 32 : nf, nh);
            goto cleanup;
        }
        sim_node_t n;
        memset(&n, 0, sizeof n);
        int64_t v;
        if (strlen(fl[c_sn]) == 0 || strlen(fl[c_sn]) >= sizeof n.name) {
            gp_err_set(err, GP_ERR_INVALID, "%s:%d: column sn: empty or too long", path, lineno);
            goto cleanup;
        }
        gp_strlcpy(n.name, fl[c_sn], sizeof n.name);
        n.line = lineno;
        if (s_num(path, lineno, "cpu_milli", fl[c_cpu], INT64_C(1) << 40, &n.cpu, err) < 0 ||
            s_num(path, lineno, "memory_mib", fl[c_mem], INT64_C(1) << 40, &n.mem, err) < 0 ||
            s_num(path, lineno, "gpu", fl[c_gpu], GP_MAX_DEVICES, &v, err) < 0)
            goto cleanup;
        n.ngpu = (int)v;
        n.model = -1;
        if (n.ngpu > 0) {
            n.model = sim_model_find(d, fl[c_model], true);
            if (n.model < 0) {
                gp_err_set(err, GP_ERR_INVALID, "%s:%d: unknown GPU model \"%s\"", path, lineno,
                           fl[c_model]);
                goto cleanup;
            }
        }
        if (sim_add_node(d, &n) < 0) {
            gp_err_set(err, GP_ERR_NOMEM, "out of memory");
            goto cleanup;
        }
    }
    if (lineno == 0) {
        gp_err_set(err, GP_ERR_INVALID, "%s: empty file", path);
        goto cleanup;
    }
    rc = 0;
cleanup:
    free(line);
    free(hdr);
    fclose(f);
    return rc;
}

static int s_openb_pods(sim_data_t *d, const char *path, gp_err_t *err)
{
    const char *what = "pods";
    FILE *f;
    if (s_open(path, &f, err) < 0)
        return -1;
    char *line = NULL, *hdr = NULL, *hf[32], *fl[32];
    size_t cap = 0;
    int rc = -1, lineno = 0, nh = 0;
    int c_cpu = -1, c_mem = -1, c_n = -1, c_milli = -1, c_spec = -1, c_ct = -1, c_dt = -1;
    int c_qos = -1;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        s_chomp(line);
        if (lineno == 1) {
            if (line[0] == '{' || line[0] == '#') {
                gp_err_set(err, GP_ERR_INVALID, "%s:1: a JSON object where the CSV header "
                           "was expected (JSON lines? then say so with --%s-format jsonl)",
                           path, what);
                goto cleanup;
            }
            hdr = strdup(line);
            if (hdr == NULL || (nh = s_split(hdr, hf, 32)) < 0) {
                gp_err_set(err, GP_ERR_INVALID, "%s:1: bad header", path);
                goto cleanup;
            }
            c_cpu = s_col(hf, nh, "cpu_milli");
            c_mem = s_col(hf, nh, "memory_mib");
            c_n = s_col(hf, nh, "num_gpu");
            c_milli = s_col(hf, nh, "gpu_milli");
            c_spec = s_col(hf, nh, "gpu_spec");
            c_ct = s_col(hf, nh, "creation_time");
            c_dt = s_col(hf, nh, "deletion_time");
            c_qos = s_col(hf, nh, "qos");
            const char *need[] = {"cpu_milli", "memory_mib", "num_gpu", "gpu_milli"};
            int have[] = {c_cpu, c_mem, c_n, c_milli};
            for (int i = 0; i < 4; i++)
                if (have[i] < 0) {
                    gp_err_set(err, GP_ERR_INVALID, "%s:1: missing column %s", path, need[i]);
                    goto cleanup;
                }
            continue;
        }
        if (line[0] == '\0')
            continue;
        int nf = s_split(line, fl, 32);
        if (nf != nh) {
            gp_err_set(err, GP_ERR_INVALID, "%s:%d: %d columns, the header has %d", path,
                       lineno, nf < 0 ? 32 : nf, nh);
            goto cleanup;
        }
        sim_pod_t p;
        memset(&p, 0, sizeof p);
        int64_t n, milli;
        if (s_num(path, lineno, "cpu_milli", fl[c_cpu], INT64_C(1) << 40, &p.cpu, err) < 0 ||
            s_num(path, lineno, "memory_mib", fl[c_mem], INT64_C(1) << 40, &p.mem, err) < 0 ||
            s_num(path, lineno, "num_gpu", fl[c_n], GP_MAX_DEVICES, &n, err) < 0 ||
            s_num(path, lineno, "gpu_milli", fl[c_milli], 1000, &milli, err) < 0)
            goto cleanup;
        if (n > 0 && milli == 0) {
            gp_err_set(err, GP_ERR_INVALID, "%s:%d: num_gpu %lld with gpu_milli 0", path,
                       lineno, (long long)n);
            goto cleanup;
        }
        if (n == 0 && p.cpu == 0 && p.mem == 0) {
            gp_err_set(err, GP_ERR_INVALID, "%s:%d: the pod asks for nothing", path, lineno);
            goto cleanup;
        }
        p.n = n > 0 ? (int)n : 0;
        p.milli = p.n ? (int)milli : 0;
        p.whole = p.n > 0 && milli == 1000;
        if (p.n && !p.whole)
            p.mem_pm = p.comp_pm = (int)milli;
        p.spec = -1;
        p.team = -1;
        p.use = -1;
        p.priority = 0;
        if (c_qos >= 0 && strcmp(fl[c_qos], "LS") == 0)
            p.priority = 10;
        p.line = lineno;
        p.arrival = p.duration = -1;
        if (c_ct >= 0 && c_dt >= 0) {
            double ct, dt;
            if (s_time(path, lineno, "creation_time", fl[c_ct], &ct, err) < 0 ||
                s_time(path, lineno, "deletion_time", fl[c_dt], &dt, err) < 0)
                goto cleanup;
            p.arrival = ct;
            if (ct >= 0 && dt >= ct)
                p.duration = dt - ct;
        }
        if (c_spec >= 0 && fl[c_spec][0] && p.n > 0) {
            gp_strlist_t l;
            memset(&l, 0, sizeof l);
            char *save = NULL;
            for (char *t = strtok_r(fl[c_spec], "|", &save); t; t = strtok_r(NULL, "|", &save)) {
                if (sim_model_find(d, t, true) < 0) {
                    gp_err_set(err, GP_ERR_INVALID, "%s:%d: gpu_spec: unknown GPU model \"%s\"",
                               path, lineno, t);
                    goto cleanup;
                }
                if (gp_strlist_add(&l, t) < 0) {
                    gp_err_set(err, GP_ERR_INVALID, "%s:%d: gpu_spec: too many models", path,
                               lineno);
                    goto cleanup;
                }
            }
            if ((p.spec = s_add_spec(d, &l)) < 0) {
                gp_err_set(err, GP_ERR_NOMEM, "out of memory");
                goto cleanup;
            }
        }
        if (s_add_pod(d, &p) < 0) {
            gp_err_set(err, GP_ERR_NOMEM, "out of memory");
            goto cleanup;
        }
    }
    if (lineno == 0) {
        gp_err_set(err, GP_ERR_INVALID, "%s: empty file", path);
        goto cleanup;
    }
    rc = 0;
cleanup:
    free(line);
    free(hdr);
    fclose(f);
    return rc;
}

/* ---------------------------------------------------------------- JSONL */

/* A model a job names: one of the inventory's, a known one, or else a name
 * alone (no node has it: the job fits nowhere, as in a pool without it). */
static int s_model_ref(sim_data_t *d, const char *name)
{
    int m = sim_model_find(d, name, true);
    if (m >= 0 || d->nmodels >= 256)
        return m;
    m = d->nmodels++;
    gp_strlcpy(d->models[m].name, name, sizeof d->models[m].name);
    gp_strlcpy(d->models[m].vendor, "nvidia", sizeof d->models[m].vendor);
    d->models[m].mem_mib = 0;
    return m;
}

static int s_jsonl_nodes(sim_data_t *d, const char *path, gp_err_t *err)
{
    FILE *f;
    if (s_open(path, &f, err) < 0)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    int rc = -1, lineno = 0;
    gp_node_t *rec = malloc(sizeof *rec);
    if (rec == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        s_chomp(line);
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        gp_err_t e;
        if (*p != '{') {
            gp_err_set(err, GP_ERR_INVALID, "%s:%d: not a JSON object (a CSV node list? then "
                       "say so with --nodes-format openb)", path, lineno);
            goto cleanup;
        }
        if (gp_node_from_json_str(p, rec, &e) < 0) {
            gp_err_set(err, GP_ERR_INVALID, "%s:%d: %s", path, lineno, e.msg);
            goto cleanup;
        }
        sim_node_t n;
        memset(&n, 0, sizeof n);
        n.line = lineno;
        gp_strlcpy(n.name, rec->name, sizeof n.name);
        n.cpu = rec->cpu_milli;
        n.mem = rec->mem_mib;
        n.ngpu = rec->ndevices;
        n.model = -1;
        for (int i = 0; i < rec->ndevices; i++) {
            int m = sim_model_find(d, rec->devices[i].model, false);
            if (m < 0 && d->nmodels < 256) {
                m = d->nmodels++;
                gp_strlcpy(d->models[m].name, rec->devices[i].model, sizeof d->models[m].name);
                gp_strlcpy(d->models[m].vendor, rec->devices[i].vendor,
                           sizeof d->models[m].vendor);
                d->models[m].mem_mib = rec->devices[i].mem_mib;
            }
            if (i == 0)
                n.model = m;
        }
        n.full = malloc(sizeof *n.full);
        if (n.full == NULL || sim_add_node(d, &n) < 0) {
            free(n.full);
            gp_err_set(err, GP_ERR_NOMEM, "out of memory");
            goto cleanup;
        }
        *n.full = *rec;
    }
    rc = 0;
cleanup:
    free(rec);
    free(line);
    fclose(f);
    return rc;
}

static bool s_job_is_simple(const gp_job_t *j)
{
    return j->vendors.n == 0 && j->exclude_vendors.n == 0 && j->exclude_models.n == 0 &&
           j->uuids.n == 0 && j->exclude_uuids.n == 0 && j->regions.n == 0 &&
           j->clouds.n == 0 && j->zones.n == 0 && j->prefer_regions.n == 0 &&
           j->prefer_clouds.n == 0 && j->prefer_zones.n == 0 && j->nlabels == 0 &&
           j->policy[0] == '\0';
}

static int s_team(sim_data_t *d, const char *name)
{
    for (int i = 0; i < d->nteams; i++)
        if (strcmp(d->teams[i], name) == 0)
            return i;
    if (d->nteams == d->teams_cap) {
        int ncap = d->teams_cap ? d->teams_cap * 2 : 16;
        char (*nt)[GP_SHORT_LEN] = realloc(d->teams, sizeof *nt * (size_t)ncap);
        if (nt == NULL)
            return -1;
        d->teams = nt;
        d->teams_cap = ncap;
    }
    gp_strlcpy(d->teams[d->nteams], name, sizeof d->teams[0]);
    return d->nteams++;
}

static gp_job_t *s_keep_job(sim_data_t *d, const gp_job_t *job)
{
    if (d->nfulls == d->fulls_cap) {
        int ncap = d->fulls_cap ? d->fulls_cap * 2 : 64;
        gp_job_t **nf = realloc(d->fulls, sizeof *nf * (size_t)ncap);
        if (nf == NULL)
            return NULL;
        d->fulls = nf;
        d->fulls_cap = ncap;
    }
    gp_job_t *j = malloc(sizeof *j);
    if (j == NULL)
        return NULL;
    *j = *job;
    d->fulls[d->nfulls++] = j;
    return j;
}

static int s_sim_team(sim_data_t *d, json_t *o, const char *path, int lineno, sim_pod_t *p,
                      gp_err_t *err);

/* The simulator's own fields of a workload line ("arrival", "duration",
 * "team", "use", "class"), checked; the caller takes them out of o (s_take)
 * so that the rest is a job spec. */
static int s_sim_fields(sim_data_t *d, json_t *o, const char *path, int lineno, sim_pod_t *p,
                        gp_err_t *err)
{
    const char *times[] = {"arrival", "duration"};
    double *dst[] = {&p->arrival, &p->duration};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(o, times[i]);
        if (v == NULL)
            continue;
        if (!json_is_number(v) || json_number_value(v) < 0)
            return gp_err_set(err, GP_ERR_INVALID, "%s:%d: field \"%s\": expected seconds >= 0",
                              path, lineno, times[i]);
        *dst[i] = json_number_value(v);
        json_object_del(o, times[i]);
    }
    json_t *u = json_object_get(o, "use"), *um = json_object_get(u, "mem_mib"),
           *uc = json_object_get(u, "compute_percent");
    if (u != NULL) {
        if (!json_is_object(u) || json_object_size(u) != (size_t)(!!um + !!uc) ||
            json_object_size(u) == 0 ||
            (um && (!json_is_integer(um) || json_integer_value(um) < 0)) ||
            (uc && (!json_is_number(uc) || json_number_value(uc) < 0 ||
                    json_number_value(uc) > 100)))
            return gp_err_set(err, GP_ERR_INVALID, "%s:%d: field \"use\": expected "
                              "{\"mem_mib\": MiB >= 0, \"compute_percent\": 0..100} (one or "
                              "both)", path, lineno);
    }
    return s_sim_team(d, o, path, lineno, p, err);
}

/* The line's "use" and "class" into d->uses (after "use" was checked). */
static int s_use_add(sim_data_t *d, json_t *o, const gp_job_t *job, const sim_pod_t *p,
                     const char *path, int lineno, int *out, gp_err_t *err)
{
    json_t *u = json_object_get(o, "use"), *c = json_object_get(o, "class");
    *out = -1;
    if (json_is_null(u))
        u = NULL;
    if (json_is_null(c))
        c = NULL;
    if (c && (!json_is_string(c) || !gp_name_valid(json_string_value(c))))
        return gp_err_set(err, GP_ERR_INVALID, "%s:%d: field \"class\": expected 1..127 of "
                          "[A-Za-z0-9._-]", path, lineno);
    if (u == NULL)
        return 0;
    char cls[GP_RIGHTSIZE_CLASS_LEN], line[32];
    snprintf(line, sizeof line, "line-%d", lineno);
    if (gp_rightsize_class(p->team >= 0 ? d->teams[p->team] : "", json_string_value(c),
                           job->id[0] ? job->id : line, cls, sizeof cls) < 0)
        snprintf(cls, sizeof cls, "%s", line);
    int ci;
    for (ci = 0; ci < d->nclasses; ci++)
        if (!strcmp(d->classes[ci], cls))
            break;
    if (ci == d->nclasses) {
        if (d->nclasses == d->classes_cap) {
            int ncap = d->classes_cap ? 2 * d->classes_cap : 64;
            void *nc = realloc(d->classes, sizeof *d->classes * (size_t)ncap);
            if (nc == NULL)
                return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
            d->classes = nc;
            d->classes_cap = ncap;
        }
        gp_strlcpy(d->classes[d->nclasses++], cls, GP_RIGHTSIZE_CLASS_LEN);
    }
    if (d->nuses == d->uses_cap) {
        int ncap = d->uses_cap ? 2 * d->uses_cap : 1024;
        sim_use_t *nu = realloc(d->uses, sizeof *nu * (size_t)ncap);
        if (nu == NULL)
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        d->uses = nu;
        d->uses_cap = ncap;
    }
    json_t *um = json_object_get(u, "mem_mib"), *uc = json_object_get(u, "compute_percent");
    sim_use_t *e = &d->uses[d->nuses];
    e->mem_mib = um ? json_integer_value(um) : -1;
    e->compute_pct = uc ? json_number_value(uc) : -1;
    e->cls = ci;
    *out = d->nuses++;
    return 0;
}

static int s_sim_team(sim_data_t *d, json_t *o, const char *path, int lineno, sim_pod_t *p,
                      gp_err_t *err)
{
    json_t *t = json_object_get(o, "team");
    if (t != NULL) {
        const char *name = json_string_value(t);
        if (name == NULL || name[0] == '\0' || strlen(name) >= GP_SHORT_LEN)
            return gp_err_set(err, GP_ERR_INVALID, "%s:%d: field \"team\": expected a name of "
                              "1..%d characters", path, lineno, GP_SHORT_LEN - 1);
        if ((p->team = s_team(d, name)) < 0)
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        json_object_del(o, "team");
    }
    return 0;
}

/* A count line, {"shape": {...}, "count": N, "team": T}: its shape (a new
 * reference, the team moved into it) and N.  Plain lines: o itself, 1. */
static json_t *s_unwrap(json_t *o, const char *path, int lineno, long *count, gp_err_t *err)
{
    json_t *shape = json_object_get(o, "shape");
    if (shape == NULL) {
        *count = 1;
        return json_incref(o);
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        if (strcmp(key, "shape") && strcmp(key, "count") && strcmp(key, "team") &&
            strcmp(key, "use") && strcmp(key, "class")) {
            gp_err_set(err, GP_ERR_INVALID, "%s:%d: unknown field \"%s\" (a count line has "
                       "\"shape\", \"count\", \"team\", \"use\" and \"class\")", path,
                       lineno, key);
            return NULL;
        }
    }
    if (!json_is_object(shape)) {
        gp_err_set(err, GP_ERR_INVALID, "%s:%d: field \"shape\": expected a job spec (object)",
                   path, lineno);
        return NULL;
    }
    json_t *c = json_object_get(o, "count");
    if (c == NULL || !json_is_integer(c) || json_integer_value(c) < 1 ||
        json_integer_value(c) > 10000000) {
        gp_err_set(err, GP_ERR_INVALID, "%s:%d: field \"count\": expected a whole number "
                   "1..10000000", path, lineno);
        return NULL;
    }
    *count = (long)json_integer_value(c);
    json_t *s = json_deep_copy(shape);
    json_t *team = json_object_get(o, "team"), *use = json_object_get(o, "use"),
           *cls = json_object_get(o, "class");
    if (s == NULL || (team && json_object_set(s, "team", team) < 0) ||
        (use && json_object_set(s, "use", use) < 0) || (cls && json_object_set(s, "class", cls) < 0)) {
        json_decref(s);
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return s;
}

static int s_jsonl_pods(sim_data_t *d, const char *path, gp_err_t *err)
{
    FILE *f;
    if (s_open(path, &f, err) < 0)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    int rc = -1, lineno = 0;
    json_t *o = NULL, *spec = NULL;
    gp_job_t *job = malloc(sizeof *job);
    if (job == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        s_chomp(line);
        const char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0' || *s == '#')
            continue;
        if (*s != '{') {
            gp_err_set(err, GP_ERR_INVALID, "%s:%d: not a JSON object (a CSV pod list? then "
                       "say so with --pods-format openb)", path, lineno);
            goto cleanup;
        }
        json_error_t je;
        o = json_loads(s, JSON_REJECT_DUPLICATES, &je);
        if (o == NULL || !json_is_object(o)) {
            gp_err_set(err, GP_ERR_INVALID, "%s:%d: %s", path, lineno,
                       o ? "expected a JSON object" : je.text);
            goto cleanup;
        }
        long count;
        if ((spec = s_unwrap(o, path, lineno, &count, err)) == NULL)
            goto cleanup;
        sim_pod_t p;
        memset(&p, 0, sizeof p);
        p.arrival = p.duration = -1;
        p.team = -1;
        p.use = -1;
        if (s_sim_fields(d, spec, path, lineno, &p, err) < 0)
            goto cleanup;
        json_t *use = json_incref(json_object_get(spec, "use"));
        json_t *cls = json_incref(json_object_get(spec, "class"));
        json_object_del(spec, "use");
        json_object_del(spec, "class");
        gp_err_t e;
        if (gp_job_from_json(spec, job, &e) < 0) {
            json_decref(use);
            json_decref(cls);
            gp_err_set(err, GP_ERR_INVALID, "%s:%d: %s", path, lineno, e.msg);
            goto cleanup;
        }
        json_t *uc = json_pack("{s:O?,s:O?}", "use", use, "class", cls);
        json_decref(use);
        json_decref(cls);
        int urc = uc ? s_use_add(d, uc, job, &p, path, lineno, &p.use, err)
                     : gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        json_decref(uc);
        if (urc < 0)
            goto cleanup;
        json_decref(spec);
        json_decref(o);
        spec = o = NULL;
        p.cpu = job->cpu_milli;
        p.mem = job->host_mem_mib;
        p.n = job->devices;
        p.whole = job->whole;
        p.mem_mib = job->mem_mib;
        p.mem_pm = job->mem_permille;
        p.comp_pm = job->compute_permille;
        p.milli = p.whole ? 1000 : (p.comp_pm > p.mem_pm ? p.comp_pm : p.mem_pm);
        if (p.n && p.milli == 0)
            p.milli = 1000;
        p.priority = job->priority;
        p.line = lineno;
        p.spec = -1;
        for (int i = 0; i < job->models.n; i++)
            if (s_model_ref(d, job->models.v[i]) < 0) {
                gp_err_set(err, GP_ERR_INVALID, "%s:%d: too many GPU models", path, lineno);
                goto cleanup;
            }
        if (job->models.n && (p.spec = s_add_spec(d, &job->models)) < 0) {
            gp_err_set(err, GP_ERR_NOMEM, "out of memory");
            goto cleanup;
        }
        if (!s_job_is_simple(job) && (p.full = s_keep_job(d, job)) == NULL) {
            gp_err_set(err, GP_ERR_NOMEM, "out of memory");
            goto cleanup;
        }
        for (long i = 0; i < count; i++)
            if (s_add_pod(d, &p) < 0) {
                gp_err_set(err, GP_ERR_NOMEM, "out of memory");
                goto cleanup;
            }
    }
    rc = 0;
cleanup:
    json_decref(spec);
    json_decref(o);
    free(job);
    free(line);
    fclose(f);
    return rc;
}

static bool s_ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int sim_detect_format(const char *path, const char **format, gp_err_t *err)
{
    if (s_ends_with(path, ".csv")) {
        *format = "openb";
        return 0;
    }
    if (s_ends_with(path, ".jsonl") || s_ends_with(path, ".ndjson") ||
        s_ends_with(path, ".json")) {
        *format = "jsonl";
        return 0;
    }
    FILE *f;
    if (s_open(path, &f, err) < 0)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    const char *fmt = "openb";
    while (getline(&line, &cap, f) >= 0) {
        const char *s = line;
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
            s++;
        if (*s == '\0')
            continue;
        if (*s == '{' || *s == '#')     /* CSV has no comments */
            fmt = "jsonl";
        break;
    }
    free(line);
    fclose(f);
    *format = fmt;
    return 0;
}

int sim_load_nodes(sim_data_t *d, const char *path, const char *format, gp_err_t *err)
{
    if (format == NULL && sim_detect_format(path, &format, err) < 0)
        return -1;
    d->nodes_path = path;
    int rc = strcmp(format, "openb") == 0 ? s_openb_nodes(d, path, err)
                                           : s_jsonl_nodes(d, path, err);
    if (rc == 0 && d->nnodes == 0)
        return gp_err_set(err, GP_ERR_INVALID, "%s: no nodes", path);
    return rc;
}

int sim_load_pods(sim_data_t *d, const char *path, const char *format, gp_err_t *err)
{
    if (format == NULL && sim_detect_format(path, &format, err) < 0)
        return -1;
    d->pods_path = path;
    int rc = strcmp(format, "openb") == 0 ? s_openb_pods(d, path, err)
                                           : s_jsonl_pods(d, path, err);
    if (rc == 0 && d->npods == 0)
        return gp_err_set(err, GP_ERR_INVALID, "%s: no pods", path);
    return rc;
}

void sim_pod_job(const sim_data_t *d, const sim_pod_t *p, gp_job_t *job)
{
    if (p->full) {
        char id[GP_NAME_LEN];
        memcpy(id, job->id, sizeof id);
        *job = *p->full;
        memcpy(job->id, id, sizeof id);
        return;
    }
    job->devices = p->n;
    job->whole = p->whole;
    job->mem_mib = p->mem_mib;
    job->mem_permille = p->mem_pm;
    job->compute_permille = p->comp_pm;
    job->cpu_milli = p->cpu;
    job->host_mem_mib = p->mem;
    job->priority = p->priority;
    if (p->spec >= 0) {         /* the names in use, not the whole list */
        const gp_strlist_t *m = &d->specs[p->spec];
        job->models.n = m->n;
        memcpy(job->models.v, m->v, sizeof m->v[0] * (size_t)m->n);
    } else {
        job->models.n = 0;
    }
}

void sim_node_record(const sim_data_t *d, const sim_node_t *n, int copy, gp_node_t *out)
{
    if (n->full) {
        *out = *n->full;
        gp_strlcpy(out->name, n->name, sizeof out->name);   /* plan renames copies */
    } else {
        gp_node_init(out);
        gp_strlcpy(out->name, n->name, sizeof out->name);
        out->cpu_milli = n->cpu;
        out->mem_mib = n->mem;
        out->ndevices = n->ngpu;
        for (int i = 0; i < n->ngpu; i++) {
            gp_device_t *dev = &out->devices[i];
            gp_device_init(dev);
            snprintf(dev->uuid, sizeof dev->uuid, "g%d", i);
            gp_strlcpy(dev->model, d->models[n->model].name, sizeof dev->model);
            gp_strlcpy(dev->vendor, d->models[n->model].vendor, sizeof dev->vendor);
            dev->mem_mib = d->models[n->model].mem_mib;
        }
    }
    if (copy > 0) {
        char base[GP_NAME_LEN];
        gp_strlcpy(base, out->name, sizeof base);
        snprintf(out->name, sizeof out->name, "%.100s#%d", base, copy);
    }
}

/* Typical shapes: the distinct (CPU, share, devices, models) of the trace's
 * own pods (CPU-only ones included; a multi-model spec is one shape that
 * any of its models can serve), weighted by count.  The engine keeps the
 * most popular 95% (FGD), as the published simulator does. */
int sim_typical(const sim_data_t *d, gp_shape_t **shapes, double **weights, int *n)
{
    int cap = 64, ns = 0;
    gp_shape_t *s = malloc(sizeof *s * (size_t)cap);
    double *w = malloc(sizeof *w * (size_t)cap);
    if (s == NULL || w == NULL)
        goto nomem;
    for (int i = 0; i < d->npods; i++) {
        const sim_pod_t *p = &d->pods[i];
        gp_shape_t sh;
        memset(&sh, 0, sizeof sh);
        sh.cpu_milli = p->cpu;
        sh.devices = p->n;
        sh.milli = p->n ? p->milli : 0;
        if (p->spec >= 0) {     /* "A|B": any of them (the trace's own spelling) */
            const gp_strlist_t *l = &d->specs[p->spec];
            size_t len = 0;
            for (int k = 0; k < l->n && len < sizeof sh.model; k++)
                len += (size_t)snprintf(sh.model + len, sizeof sh.model - len, "%s%s",
                                        k ? "|" : "", l->v[k]);
        }
        int k;
        for (k = 0; k < ns; k++)
            if (memcmp(&s[k], &sh, sizeof sh) == 0)
                break;
        if (k == ns) {
            if (ns == cap) {
                cap *= 2;
                gp_shape_t *s2 = realloc(s, sizeof *s * (size_t)cap);
                if (s2 == NULL)
                    goto nomem;
                s = s2;
                double *w2 = realloc(w, sizeof *w * (size_t)cap);
                if (w2 == NULL)
                    goto nomem;
                w = w2;
            }
            s[ns] = sh;
            w[ns] = 0;
            ns++;
        }
        w[k] += 1;
    }
    *shapes = s;
    *weights = w;
    *n = ns;
    return 0;
nomem:
    free(s);
    free(w);
    return -1;
}
