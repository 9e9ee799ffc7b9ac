/* The job-spec parsers: a REST submission (gp_jobrec_from_submission), a
 * stored record (gp_jobrec_from_json_str), a bare spec (gp_job_from_json_str).
 * What one accepts must survive a dump and a re-read. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "jobrec.h"
#include "model.h"

#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    gp_jobrec_t rec, again;
    gp_err_t err;
    if (gp_jobrec_from_submission(text, size, "r1", 1000, &rec, &err) == 0) {
        char *dump = gp_jobrec_dump(&rec);
        if (dump) {
            int rc = gp_jobrec_from_json_str(dump, strlen(dump), &again, &err);
            assert(rc == 0);
            if (rc == 0)
                gp_jobrec_clear(&again);
            free(dump);
        }
        gp_jobrec_clear(&rec);
    }
    if (gp_jobrec_from_json_str(text, size, &rec, &err) == 0)
        gp_jobrec_clear(&rec);
    char *z = malloc(size + 1);
    if (z) {
        memcpy(z, data, size);
        z[size] = '\0';
        gp_job_t job;
        (void)gp_job_from_json_str(z, &job, &err);   /* a fixed-size record: nothing to free */
        free(z);
    }
    return 0;
}
