/*
 * sim_output.c - what gpupool-sim prints: a table for people, one JSON
 * object per policy per line for programs, CSV series, gnuplot plots, and a
 * progress bar on stderr when stderr is a terminal.
 */
#include "sim.h"

#include <sys/resource.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "util.h"

#include "banned.h"

double sim_max_rss_mib(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0;
    return (double)ru.ru_maxrss / 1024.0;     /* KiB on Linux */
}

double sim_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

void sim_progress(int done, int total, const char *what)
{
    if (!isatty(2) || total <= 1)
        return;
    int width = 30, fill = total ? done * width / total : width;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %d/%d %s", bar, done, total, what);
    if (done == total)
        fprintf(stderr, "\n");
    fflush(stderr);
}

static void s_group_name(const sim_data_t *d, const sim_group_t *g, char *buf, size_t len)
{
    if (!g->team)
        snprintf(buf, len, "priority %d", g->key);
    else
        snprintf(buf, len, "team %s", g->key >= 0 ? d->teams[g->key] : "-");
}

/* The queueing of one policy: per priority, per team. */
static void s_print_groups(FILE *out, const sim_data_t *d, const sim_result_t *m)
{
    fprintf(out, "\nqueueing, policy %s (waits in seconds; never placed: fits no node / "
            "dropped after --max-wait / still waiting at the end)\n", m->policy);
    fprintf(out, "%-22s %9s %10s %10s %10s %10s %9s %8s %9s\n", "group", "placed", "wait.mean",
            "wait.p50", "wait.p95", "wait.p99", "never.fit", "dropped", "waiting");
    for (int g = 0; g < m->ngroups; g++) {
        const sim_group_t *x = &m->groups[g];
        char name[GP_SHORT_LEN + 16];
        s_group_name(d, x, name, sizeof name);
        fprintf(out, "%-22.22s %9.0f %10.1f %10.1f %10.1f %10.1f %9.0f %8.0f %9.0f\n", name,
                x->placed, x->wait_mean, x->wait_p50, x->wait_p95, x->wait_p99, x->never_fit,
                x->dropped, x->queued_end);
    }
}

void sim_print_table(FILE *out, const sim_data_t *d, const sim_result_t *m, int n,
                     bool time_mode)
{
    if (time_mode) {
        fprintf(out, "%-14s %8s %9s %9s %9s %10s %10s %10s %10s %8s %8s\n", "policy", "pods",
                "util.mean", "util.peak", "queue.max", "wait.mean", "wait.p50", "wait.p95",
                "wait.p99", "failed", "unplaced");
        for (int i = 0; i < n; i++)
            fprintf(out, "%-14s %8.0f %8.2f%% %8.2f%% %9.0f %9.1fs %9.1fs %9.1fs %9.1fs %8.1f "
                    "%8.1f\n", m[i].policy, m[i].pods, m[i].util_mean, m[i].util_peak,
                    m[i].queue_peak, m[i].wait_mean, m[i].wait_p50, m[i].wait_p95,
                    m[i].wait_p99, m[i].failed, m[i].unplaced);
        for (int i = 0; i < n; i++)
            s_print_groups(out, d, &m[i]);
        if (n > 0 && m[0].rs.runs > 0)
            sim_rs_print(out, m, n);
        return;
    }
    fprintf(out, "%-14s %9s %10s %10s %17s %11s %12s %11s\n", "policy", "alloc@90%",
            "alloc@100%", "alloc@130%", "unalloc.GPUs@130%", "frag@100%", "frag.GPUs",
            "failed.pods");
    for (int i = 0; i < n; i++)
        fprintf(out, "%-14s %8.2f%% %9.2f%% %9.2f%% %17.1f %10.2f%% %12.1f %11.1f\n",
                m[i].policy, m[i].alloc_pct_90, m[i].alloc_pct_100, m[i].alloc_pct_130,
                m[i].unalloc_gpus_130, m[i].frag_pct_100, m[i].frag_gpus_100, m[i].failed);
    if (n > 0)
        fprintf(out, "(arrived GPU request at the end: %.2f%% of capacity; allocation then "
                "%.2f%%)\n", m[0].final_arrived_pct, m[0].alloc_pct_final);
}

static double s_r(double v, int digits)
{
    double p = pow(10, digits);
    return round(v * p) / p;
}

/* Counts are means over seeds: whole numbers print as integers. */
static json_t *s_count(double v)
{
    double r = round(v * 10) / 10;
    if (r == floor(r) && fabs(r) < 1e15)
        return json_integer((json_int_t)r);
    return json_real(r);
}

void sim_print_json(FILE *out, const sim_data_t *d, const sim_result_t *m,
                    const uint64_t *seeds, int nseeds, const sim_run_opts_t *o)
{
    json_t *j = json_object();
    json_t *sa = json_array();
    for (int i = 0; i < nseeds; i++)
        json_array_append_new(sa, json_integer((json_int_t)seeds[i]));
    json_object_set_new(j, "policy", json_string(m->policy));
    json_object_set_new(j, "seeds", sa);
    json_object_set_new(j, "mode", json_string(o->time_mode ? "time" : "inflate"));
    json_object_set_new(j, "gpus", json_real(m->cap_gpus));
    json_object_set_new(j, "pods", s_count(m->pods));
    json_object_set_new(j, "placed", s_count(m->placed));
    json_object_set_new(j, "failed_pods", s_count(m->failed));
    json_object_set_new(j, "failed_gpu_pods", s_count(m->failed_gpu));
    if (o->time_mode) {
        json_object_set_new(j, "util_mean_pct", json_real(s_r(m->util_mean, 3)));
        json_object_set_new(j, "util_peak_pct", json_real(s_r(m->util_peak, 3)));
        if (o->rightsize)
            sim_rs_json(j, &m->rs);
        json_object_set_new(j, "queue_peak", s_count(m->queue_peak));
        json_object_set_new(j, "wait_mean_s", json_real(s_r(m->wait_mean, 3)));
        json_object_set_new(j, "wait_p95_s", json_real(s_r(m->wait_p95, 3)));
        json_object_set_new(j, "unplaced", s_count(m->unplaced));
        json_object_set_new(j, "wait_p50_s", json_real(s_r(m->wait_p50, 3)));
        json_object_set_new(j, "wait_p99_s", json_real(s_r(m->wait_p99, 3)));
        json_object_set_new(j, "never_fit", s_count(m->never_fit));
        json_object_set_new(j, "dropped", s_count(m->dropped));
        json_t *ga = json_array();
        for (int g = 0; g < m->ngroups; g++) {
            const sim_group_t *x = &m->groups[g];
            json_t *o2 = json_object();
            if (x->team)
                json_object_set_new(o2, "team", x->key >= 0 ? json_string(d->teams[x->key])
                                                            : json_null());
            else
                json_object_set_new(o2, "priority", json_integer(x->key));
            json_object_set_new(o2, "placed", s_count(x->placed));
            json_object_set_new(o2, "wait_mean_s", json_real(s_r(x->wait_mean, 3)));
            json_object_set_new(o2, "wait_p50_s", json_real(s_r(x->wait_p50, 3)));
            json_object_set_new(o2, "wait_p95_s", json_real(s_r(x->wait_p95, 3)));
            json_object_set_new(o2, "wait_p99_s", json_real(s_r(x->wait_p99, 3)));
            json_object_set_new(o2, "never_fit", s_count(x->never_fit));
            json_object_set_new(o2, "dropped", s_count(x->dropped));
            json_object_set_new(o2, "waiting_at_end", s_count(x->queued_end));
            json_array_append_new(ga, o2);
        }
        json_object_set_new(j, "groups", ga);
    } else {
        json_object_set_new(j, "alloc_pct_90", json_real(s_r(m->alloc_pct_90, 3)));
        json_object_set_new(j, "alloc_pct_100", json_real(s_r(m->alloc_pct_100, 3)));
        json_object_set_new(j, "alloc_pct_130", json_real(s_r(m->alloc_pct_130, 3)));
        json_object_set_new(j, "unallocated_gpus_130", json_real(s_r(m->unalloc_gpus_130, 2)));
        json_object_set_new(j, "alloc_pct_final", json_real(s_r(m->alloc_pct_final, 3)));
        json_object_set_new(j, "unallocated_gpus_final",
                            json_real(s_r(m->unalloc_gpus_final, 2)));
        json_object_set_new(j, "arrived_pct_final", json_real(s_r(m->final_arrived_pct, 3)));
        json_object_set_new(j, "frag_pct_100", json_real(s_r(m->frag_pct_100, 3)));
        json_object_set_new(j, "frag_gpus_100", json_real(s_r(m->frag_gpus_100, 2)));
    }
    json_object_set_new(j, "wall_s", json_real(s_r(m->wall_s, 4)));
    json_object_set_new(j, "max_rss_mib", json_real(s_r(sim_max_rss_mib(), 1)));
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    if (s) {
        fprintf(out, "%s\n", s);
        free(s);
    }
    json_decref(j);
}

int sim_write_csv(const char *path, const sim_result_t *m, int n, bool time_mode, gp_err_t *err)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return gp_err_errno(err, "%s", path);
    if (time_mode) {
        fprintf(f, "policy,t_s,util_pct,running,queued\n");
        for (int i = 0; i < n; i++)
            for (int k = 0; k < m[i].nsamples; k++)
                fprintf(f, "%s,%.3f,%.4f,%.0f,%.0f\n", m[i].policy, m[i].samples[k].t,
                        m[i].samples[k].util_pct, m[i].samples[k].running,
                        m[i].samples[k].queued);
    } else {
        fprintf(f, "policy,arrived_pct,alloc_pct\n");
        for (int i = 0; i < n; i++)
            for (int k = 0; k < SIM_SERIES; k++)
                if (!isnan(m[i].series[k]))
                    fprintf(f, "%s,%d,%.4f\n", m[i].policy, k, m[i].series[k]);
    }
    if (fclose(f) != 0)
        return gp_err_errno(err, "%s", path);
    return 0;
}

int sim_gnuplot(const char *path, sim_plot_fn *write_data, sim_plot_fn *write_script, void *arg,
                gp_err_t *err)
{
    size_t len = strlen(path);
    bool svg = len > 4 && strcmp(path + len - 4, ".svg") == 0;
    if (strchr(path, '\'') || strchr(path, '\\'))
        return gp_err_set(err, GP_ERR_INVALID, "%s: quote characters in the path", path);
    char data[] = "/tmp/gpupool-sim-plot.XXXXXX";
    int fd = mkstemp(data);
    if (fd < 0)
        return gp_err_errno(err, "mkstemp");
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        unlink(data);
        return gp_err_errno(err, "fdopen");
    }
    write_data(f, data, arg);
    fclose(f);
    FILE *g = popen("gnuplot 2>&1", "w");
    if (g == NULL) {
        unlink(data);
        return gp_err_errno(err, "gnuplot");
    }
    fprintf(g, "set terminal %s size 900,560\nset output '%s'\n", svg ? "svg" : "png", path);
    write_script(g, data, arg);
    int rc = pclose(g);
    unlink(data);
    if (rc != 0)
        return gp_err_set(err, GP_ERR_IO, "gnuplot failed (status %d) writing %s", rc, path);
    return 0;
}

typedef struct {
    const sim_result_t *m;
    int n;
    bool time_mode;
} s_plot_t;

/* One data block per policy. */
static void s_plot_data(FILE *f, const char *data, void *arg)
{
    (void)data;
    const s_plot_t *p = arg;
    for (int i = 0; i < p->n; i++) {
        fprintf(f, "# %s\n", p->m[i].policy);
        if (p->time_mode) {
            for (int k = 0; k < p->m[i].nsamples; k++)
                fprintf(f, "%.3f %.4f\n", p->m[i].samples[k].t / 3600.0, p->m[i].samples[k].util_pct);
        } else {
            for (int k = 0; k < SIM_SERIES; k++)
                if (!isnan(p->m[i].series[k]))
                    fprintf(f, "%d %.4f\n", k, p->m[i].series[k]);
        }
        fprintf(f, "\n\n");
    }
}

static void s_plot_script(FILE *g, const char *data, void *arg)
{
    const s_plot_t *p = arg;
    fprintf(g, "set grid\nset key left top\n");
    if (p->time_mode)
        fprintf(g, "set title 'GPU utilization over time'\nset xlabel 'time (h)'\n"
                   "set ylabel 'allocated GPU (%%)'\n");
    else
        fprintf(g, "set title 'GPU allocation ratio against arrived workload'\n"
                   "set xlabel 'arrived GPU request (%% of capacity)'\n"
                   "set ylabel 'GPU allocation ratio (%%)'\n"
                   "plot (x < 100 ? x : 100) title 'ideal' with lines dashtype 2 lc rgb 'gray', \\\n");
    if (p->time_mode)
        fprintf(g, "plot \\\n");
    for (int i = 0; i < p->n; i++)
        fprintf(g, "  '%s' index %d using 1:2 with lines lw 2 title '%s'%s\n", data, i,
                p->m[i].policy, i + 1 < p->n ? ", \\" : "");
}

/* Plot with gnuplot: one data block per policy, PNG or SVG by extension. */
int sim_write_plot(const char *path, const sim_result_t *m, int n, bool time_mode,
                   gp_err_t *err)
{
    size_t len = strlen(path);
    bool svg = len > 4 && strcmp(path + len - 4, ".svg") == 0;
    bool png = len > 4 && strcmp(path + len - 4, ".png") == 0;
    if (!svg && !png)
        return gp_err_set(err, GP_ERR_INVALID, "%s: the plot must be .png or .svg", path);
    s_plot_t p = { m, n, time_mode };
    return sim_gnuplot(path, s_plot_data, s_plot_script, &p, err);
}
