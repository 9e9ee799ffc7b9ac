/* The Prometheus registry renders the text format correctly. */
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "tap.h"

static int s_keep_a(const char *job, void *arg)
{
    (void)arg;
    return strcmp(job, "a") == 0;
}

int main(void)
{
    gp_metrics_t *reg = gp_metrics_new();
    gp_metric_t *won = gp_metrics_counter(reg, "gp_bids_total", "Bids sent", "result=\"won\"");
    gp_metric_inc(won);
    gp_metric_add(gp_metrics_counter(reg, "gp_bids_total", "Bids sent", "result=\"won\""), 2);
    gp_metric_set(gp_metrics_gauge(reg, "gp_queue_depth", "Jobs waiting", NULL), 7);
    ok(gp_metrics_gauge(reg, "gp_bids_total", "x", NULL) == NULL, "a name keeps its type");
    double b[] = { 0.01, 0.1 };
    gp_metric_t *h = gp_metrics_histogram(reg, "gp_commit_seconds", "Commit latency", "", b, 2);
    gp_metric_observe(h, 0.005);
    gp_metric_observe(h, 0.05);
    gp_metric_observe(h, 5);
    gp_metric_inc(NULL);   /* a failed lookup is harmless */

    char *text = NULL;
    is_int(gp_metrics_render(reg, &text, NULL), 0, "renders");
    ok(strstr(text, "# TYPE gp_bids_total counter\ngp_bids_total{result=\"won\"} 3\n") != NULL,
       "counter with labels, same series found again");
    ok(strstr(text, "gp_queue_depth 7\n") != NULL, "gauge without labels");
    ok(strstr(text, "gp_commit_seconds_bucket{le=\"0.01\"} 1\n") &&
       strstr(text, "gp_commit_seconds_bucket{le=\"0.1\"} 2\n") &&
       strstr(text, "gp_commit_seconds_bucket{le=\"+Inf\"} 3\n") &&
       strstr(text, "gp_commit_seconds_count 3\n"),
       "histogram buckets are cumulative");
    free(text);
    gp_metrics_reset_family(reg, "gp_queue_depth");
    gp_metrics_render(reg, &text, NULL);
    ok(strstr(text, "gp_queue_depth") == NULL, "a reset family disappears");
    free(text);
    /* Prometheus' conventions are kept: promtool check metrics and sum()
     * over a family must never see them broken. */
    ok(gp_metrics_gauge(reg, "gp_milli_total", "x", NULL) == NULL, "a gauge may not end in _total");
    ok(gp_metrics_counter(reg, "gp_bids", "x", NULL) == NULL, "a counter must end in _total");
    ok(gp_metrics_gauge(reg, "gp_thing_count", "x", NULL) == NULL,
       "only a histogram's series end in _count");
    ok(gp_metrics_counter(reg, "gp_bids_total", "Bids sent", "node=\"n1\"") == NULL,
       "a family keeps its label names (result, not node)");
    ok(gp_metrics_counter(reg, "gp_bids_total", "Bids sent", NULL) == NULL,
       "nor may a series of it have no labels");
    ok(gp_metrics_counter(reg, "gp_bids_total", "Bids sent", "result=\"lost\"") != NULL,
       "another value of the same label is a new series");
    ok(gp_metrics_gauge(reg, "gp_alloc", "x", "region=\"r1\",model=\"A10\"") != NULL &&
           gp_metrics_gauge(reg, "gp_alloc", "x", "region=\"r1\",model=\"A100\"") != NULL,
       "two labels");
    ok(gp_metrics_gauge(reg, "gp_alloc", "x", "model=\"A10\"") == NULL,
       "a subset of the family's labels is refused");
    ok(gp_metrics_gauge(reg, "gp_bad", "x", "region=r1") == NULL, "an unquoted value is refused");
    ok(gp_metrics_gauge(reg, "gp_bad", "x", "__name__=\"x\"") == NULL, "a reserved name is refused");
    ok(gp_metrics_histogram(reg, "gp_h_seconds", "x", "le=\"1\"", NULL, 0) == NULL,
       "a histogram may not use le");
    ok(gp_metrics_gauge(reg, "gp_esc", "x", "path=\"a\\\"b,c\"") != NULL,
       "an escaped quote and a comma inside a value");

    /* Series of something that ended are swept away. */
    gp_metric_set(gp_metrics_gauge(reg, "gp_slice_bytes", "Slice memory", "job=\"a\",device=\"d0\""), 1);
    gp_metric_set(gp_metrics_gauge(reg, "gp_slice_bytes", "Slice memory", "job=\"b\",device=\"d0\""), 2);
    gp_metric_set(gp_metrics_gauge(reg, "gp_slice_percent", "Slice compute", "job=\"b\",device=\"d0\""), 3);
    is_int(gp_metrics_sweep(reg, "job", s_keep_a, NULL), 2, "the sweep drops b's two series");
    gp_metrics_render(reg, &text, NULL);
    ok(strstr(text, "gp_slice_bytes{job=\"a\",device=\"d0\"} 1\n") != NULL, "a's series stays");
    ok(strstr(text, "job=\"b\"") == NULL, "no series of b is left");
    ok(strstr(text, "gp_slice_percent") == NULL, "an emptied family is not rendered");
    ok(strstr(text, "gp_bids_total{result=\"won\"} 3\n") != NULL, "series without the label stay");
    free(text);
    gp_metric_set(gp_metrics_gauge(reg, "gp_slice_bytes", "Slice memory", "job=\"c\",device=\"d0\""), 4);
    gp_metrics_render(reg, &text, NULL);
    ok(strstr(text, "gp_slice_bytes{job=\"a\",device=\"d0\"} 1\ngp_slice_bytes{job=\"c\",device=\"d0\"} 4\n") != NULL,
       "a series added after a sweep follows the ones kept");
    free(text);

    gp_metrics_counter(reg, "gp_help_total", "two\nlines \\ here", NULL);
    gp_metrics_render(reg, &text, NULL);
    ok(strstr(text, "# HELP gp_help_total two\\nlines \\\\ here\n") != NULL, "HELP is escaped");
    free(text);

    char esc[64];
    is_str(gp_metrics_escape("a\"b\\c\nd", esc, sizeof esc), "a\\\"b\\\\c\\nd", "label escaping");
    gp_metrics_destroy(&reg);
    ok(reg == NULL, "destroy clears the pointer");
    return done_testing();
}
