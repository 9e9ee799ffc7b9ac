/* The model records and their JSON codecs: job specs (with HAMi's
 * resource names), node records, allocations. */
#include <string.h>

#include "model.h"
#include "tap.h"

static int parse_job(const char *text, gp_job_t *j, gp_err_t *err)
{
    return gp_job_from_json_str(text, j, err);
}

int main(void)
{
    gp_err_t err;
    gp_job_t j;

    /* --- job specs */
    is_int(parse_job("{\"id\":\"a\",\"devices\":2,\"cpu_milli\":4000,\"host_mem_mib\":8192}",
                     &j, &err), 0, "a whole-device job parses");
    ok(j.devices == 2 && j.whole && j.cpu_milli == 4000 && j.host_mem_mib == 8192,
       "devices without a share means whole devices");
    is_int(parse_job("{\"devices\":1,\"mem_mib\":4096,\"compute_percent\":25.5}", &j, &err), 0,
           "a fractional job parses");
    ok(!j.whole && j.mem_mib == 4096 && j.compute_permille == 255, "share kept in permille");
    is_int(parse_job("{\"devices\":1,\"compute_percent\":30}", &j, &err), 0,
           "compute only parses");
    is_int(j.mem_permille, 1000, "unset memory of a fractional job is the whole device (HAMi)");

    is_int(parse_job("{\"nvidia.com/gpu\":\"1\",\"nvidia.com/gpumem\":\"3000\","
                     "\"nvidia.com/gpucores\":30,\"nvidia.com/use-gputype\":\"A100,H100\","
                     "\"nvidia.com/nouse-gpuuuid\":[\"GPU-x\"],\"nvidia.com/priority\":\"0\"}",
                     &j, &err), 0, "HAMi resource names are accepted");
    ok(j.devices == 1 && j.mem_mib == 3000 && j.compute_permille == 300, "HAMi amounts");
    ok(j.models.n == 2 && strcmp(j.models.v[1], "H100") == 0, "HAMi comma list of models");
    ok(j.exclude_uuids.n == 1 && j.priority == 100, "HAMi uuid deny list, priority 0 is high");
    is_int(parse_job("{\"nvidia.com/gpu\":1,\"nvidia.com/gpumem-percentage\":50,"
                     "\"nvidia.com/nouse-gputype\":\"T4\",\"nvidia.com/use-gpuuuid\":\"GPU-1\","
                     "\"nvidia.com/priority\":1}", &j, &err), 0, "more HAMi names");
    ok(j.mem_permille == 500 && j.exclude_models.n == 1 && j.uuids.n == 1 && j.priority == -100,
       "percentage, deny list, HAMi priority 1 is low (-100)");

    ok(parse_job("{\"devices\":1,\"gpus\":2}", &j, &err) < 0 &&
       strstr(err.msg, "\"gpus\"") != NULL, "an unknown field is rejected by name: %s", err.msg);
    ok(parse_job("{\"devices\":1,\"mem_mib\":10,\"mem_percent\":10}", &j, &err) < 0,
       "mem_mib and mem_percent are exclusive");
    ok(parse_job("{\"cpu_milli\":-1}", &j, &err) < 0 && strstr(err.msg, "cpu_milli"),
       "negative CPU rejected: %s", err.msg);
    ok(parse_job("{\"devices\":1,\"compute_percent\":101}", &j, &err) < 0,
       "compute over 100%% rejected");
    ok(parse_job("{\"devices\":17}", &j, &err) < 0, "more devices than a node holds rejected");
    ok(parse_job("{\"mem_mib\":100}", &j, &err) < 0, "a share without devices rejected");
    ok(parse_job("{\"devices\":1,\"whole\":true,\"mem_mib\":100}", &j, &err) < 0,
       "whole with a share rejected");
    ok(parse_job("{}", &j, &err) < 0, "a job asking for nothing rejected");
    ok(parse_job("{\"devices\":1.5}", &j, &err) < 0, "a fractional device count rejected");
    ok(parse_job("{\"devices\":\"1\"}", &j, &err) < 0, "strings only for HAMi names");
    ok(parse_job("{\"models\":[\"A\"],\"exclude_models\":[\"A\"],\"devices\":1}", &j, &err) < 0,
       "a model both allowed and excluded rejected");
    ok(parse_job("[1]", &j, &err) < 0, "not an object rejected");
    ok(parse_job("{\"devices\":1,", &j, &err) < 0 && strstr(err.msg, "line"),
       "bad JSON names the position: %s", err.msg);

    is_int(parse_job("{\"id\":\"r\",\"devices\":1,\"mem_percent\":25,\"compute_percent\":10,"
                     "\"cpu_milli\":1,\"models\":[\"A100\"],\"regions\":[\"eu\"],"
                     "\"prefer_zones\":[\"z1\"],\"labels\":{\"tier\":\"gold\"},\"priority\":7,"
                     "\"gang\":\"g\",\"gang_size\":4,\"policy\":\"fgd\"}", &j, &err), 0,
           "a full spec parses");
    json_t *enc = gp_job_to_json(&j);
    gp_job_t j2;
    is_int(gp_job_from_json(enc, &j2, &err), 0, "its encoding parses back");
    ok(memcmp(&j, &j2, sizeof j) == 0, "and is the same job");
    json_decref(enc);

    /* --- node records */
    const char *node_text =
        "{\"name\":\"n1\",\"cloud\":\"volc\",\"cluster\":\"c1\",\"region\":\"cn\",\"zone\":\"z1\","
        "\"labels\":{\"tier\":\"gold\"},\"cpu_milli\":64000,\"mem_mib\":262144,\"oversub\":1.5,"
        "\"healthy\":true,\"devices\":[{\"uuid\":\"GPU-0\",\"vendor\":\"nvidia\",\"model\":\"A100\","
        "\"mem_mib\":81920,\"compute_units\":108,\"numa\":0,\"links\":[1]},"
        "{\"uuid\":\"GPU-1\",\"model\":\"A100\",\"mem_mib\":81920,\"links\":[0],\"numa\":1}]}";
    gp_node_t n, n2;
    is_int(gp_node_from_json_str(node_text, &n, &err), 0, "a node record parses");
    ok(n.ndevices == 2 && n.devices[0].links == 2u && n.devices[1].numa == 1 &&
       strcmp(n.devices[1].vendor, "nvidia") == 0 && n.oversub == 1.5, "its fields");
    enc = gp_node_to_json(&n);
    is_int(gp_node_from_json(enc, &n2, &err), 0, "its encoding parses back");
    ok(memcmp(&n, &n2, sizeof n) == 0, "and is the same node");
    json_decref(enc);
    ok(gp_node_from_json_str("{\"name\":\"n\",\"cpu_milli\":1,\"mem_mib\":1,\"devices\":"
                             "[{\"uuid\":\"a\",\"model\":\"m\"}]}", &n, &err) < 0,
       "a device without memory rejected: %s", err.msg);
    ok(gp_node_from_json_str("{\"name\":\"n\",\"cpu_milli\":1,\"mem_mib\":1,\"devices\":"
                             "[{\"uuid\":\"a\",\"model\":\"m\",\"mem_mib\":1},"
                             "{\"uuid\":\"a\",\"model\":\"m\",\"mem_mib\":1}]}", &n, &err) < 0,
       "duplicate uuids rejected");
    ok(gp_node_from_json_str("{\"name\":\"n\",\"cpu_milli\":1,\"mem_mib\":1,\"devices\":"
                             "[{\"uuid\":\"a\",\"model\":\"m\",\"mem_mib\":1,\"links\":[3]}]}",
                             &n, &err) < 0, "a link to a missing device rejected");
    ok(gp_node_from_json_str("{\"name\":\"n\",\"cpu_milli\":1,\"mem_mib\":1,\"gpu\":2}", &n,
                             &err) < 0 && strstr(err.msg, "\"gpu\""),
       "unknown node field rejected by name");
    ok(gp_node_from_json_str("{\"name\":\"n\",\"mem_mib\":1}", &n, &err) < 0,
       "cpu_milli is required");

    /* --- allocations */
    gp_alloc_t a, a2;
    is_int(gp_alloc_from_json_str("{\"job\":\"j\",\"node\":\"n1\",\"priority\":3,\"cpu_milli\":2,"
                                  "\"host_mem_mib\":4,\"devices\":[{\"uuid\":\"GPU-0\","
                                  "\"index\":0,\"mem_mib\":100,\"compute_percent\":12.5,"
                                  "\"whole\":false}]}", &a, &err), 0, "an allocation parses");
    ok(a.ndevices == 1 && a.devices[0].compute_permille == 125 && a.priority == 3,
       "its fields");
    enc = gp_alloc_to_json(&a);
    is_int(gp_alloc_from_json(enc, &a2, &err), 0, "its encoding parses back");
    ok(memcmp(&a, &a2, sizeof a) == 0, "and is the same allocation");
    json_decref(enc);
    ok(gp_alloc_from_json_str("{\"job\":\"j\",\"node\":\"n\",\"devices\":[{\"uuid\":\"u\","
                              "\"share\":1}]}", &a, &err) < 0 && strstr(err.msg, "share"),
       "unknown allocation field rejected by name");
    return done_testing();
}
