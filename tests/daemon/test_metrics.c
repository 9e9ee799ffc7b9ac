/* The Prometheus registry renders the text format correctly. */
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "tap.h"

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
    char esc[64];
    is_str(gp_metrics_escape("a\"b\\c\nd", esc, sizeof esc), "a\\\"b\\\\c\\nd", "label escaping");
    gp_metrics_destroy(&reg);
    ok(reg == NULL, "destroy clears the pointer");
    return done_testing();
}
