/* The simulator's readers (simulations/sim_input.c): the openb CSV node
 * and pod lists and the JSON-lines node and pod files.  The first byte
 * picks the reader, the rest is the file. */
#include <string.h>

#include "fuzz.h"
#include "sim.h"

#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *path = fuzz_memfile(data + 1, size - 1);
    if (path == NULL)
        return 0;
    sim_data_t d;
    memset(&d, 0, sizeof d);
    gp_err_t err;
    const char *format = data[0] & 1 ? "jsonl" : "openb";
    if (data[0] & 2) {
        /* pods need the nodes' models: a fixed two-node cluster first */
        static const char nodes[] = "{\"name\":\"n1\",\"devices\":[{\"model\":\"A10\",\"mem_mib\":24576}]}\n";
        const char *np = fuzz_memfile((const uint8_t *)nodes, sizeof nodes - 1);
        if (np && sim_load_nodes(&d, np, "jsonl", &err) == 0) {
            path = fuzz_memfile(data + 1, size - 1);
            if (path)
                (void)sim_load_pods(&d, path, format, &err);
        }
    } else {
        (void)sim_load_nodes(&d, path, format, &err);
    }
    sim_data_free(&d);
    return 0;
}
