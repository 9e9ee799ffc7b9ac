/*
 * inventory.c - what the node has: its devices, found through NVML, or
 * declared in a file (other vendors, or nodes without NVML), or generated
 * for virtual nodes (--simulate N).
 *
 * NVML is loaded with dlopen at run time, so the agent runs on nodes
 * without NVIDIA libraries (it then has no NVIDIA devices).  Only a few
 * entry points are required (init, count, handle, uuid, name, memory);
 * the others (NUMA node, NVLink peers, core count, utilization) are used
 * when the library has them.  Link topology: two devices are linked when
 * NVML reports NVLink peer-to-peer between them (NVML_P2P_CAPS_INDEX_NVLINK).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "util.h"

#include "banned.h"

typedef int nvml_ret_t;
typedef void *nvml_dev_t;
typedef struct { unsigned long long total, free, used; } nvml_memory_t;
typedef struct { unsigned int gpu, memory; } nvml_util_t;
typedef struct {
    char bus_id_legacy[16];
    unsigned int domain, bus, device, pci_device_id, pci_subsystem_id;
    char bus_id[32];
} nvml_pci_t;

#define NVML_P2P_CAPS_INDEX_NVLINK 2
#define NVML_P2P_STATUS_OK 0

typedef struct {
    void *lib;
    nvml_ret_t (*init)(void);
    nvml_ret_t (*shutdown)(void);
    nvml_ret_t (*count)(unsigned int *);
    nvml_ret_t (*handle)(unsigned int, nvml_dev_t *);
    nvml_ret_t (*uuid)(nvml_dev_t, char *, unsigned int);
    nvml_ret_t (*name)(nvml_dev_t, char *, unsigned int);
    nvml_ret_t (*memory)(nvml_dev_t, nvml_memory_t *);
    nvml_ret_t (*utilization)(nvml_dev_t, nvml_util_t *);
    nvml_ret_t (*p2p)(nvml_dev_t, nvml_dev_t, int, int *);
    nvml_ret_t (*numa)(nvml_dev_t, unsigned int *);
    nvml_ret_t (*cores)(nvml_dev_t, unsigned int *);
    nvml_ret_t (*pci)(nvml_dev_t, nvml_pci_t *);
    nvml_dev_t dev[GP_MAX_DEVICES];
    unsigned ndev;
} s_nvml_t;

static void *s_sym(void *lib, const char *a, const char *b)
{
    void *p = dlsym(lib, a);
    return p == NULL && b ? dlsym(lib, b) : p;
}

/* NUMA node of a PCI device from sysfs; -1 when unknown. */
static int s_sysfs_numa(const nvml_pci_t *pci)
{
    char path[128];
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%04x:%02x:%02x.0/numa_node", pci->domain,
             pci->bus, pci->device);
    FILE *f = fopen(path, "r");
    int n = -1;
    if (f) {
        if (fscanf(f, "%d", &n) != 1)
            n = -1;
        fclose(f);
    }
    return n;
}

static s_nvml_t *s_nvml_open(const char *path)
{
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        gp_log_info("no NVML library, no NVIDIA devices lib=%s", path);
        return NULL;
    }
    s_nvml_t *n = calloc(1, sizeof *n);
    if (n == NULL) {
        dlclose(lib);
        return NULL;
    }
    n->lib = lib;
    *(void **)&n->init = s_sym(lib, "nvmlInit_v2", "nvmlInit");
    *(void **)&n->shutdown = s_sym(lib, "nvmlShutdown", NULL);
    *(void **)&n->count = s_sym(lib, "nvmlDeviceGetCount_v2", "nvmlDeviceGetCount");
    *(void **)&n->handle = s_sym(lib, "nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex");
    *(void **)&n->uuid = s_sym(lib, "nvmlDeviceGetUUID", NULL);
    *(void **)&n->name = s_sym(lib, "nvmlDeviceGetName", NULL);
    *(void **)&n->memory = s_sym(lib, "nvmlDeviceGetMemoryInfo", NULL);
    *(void **)&n->utilization = s_sym(lib, "nvmlDeviceGetUtilizationRates", NULL);
    *(void **)&n->p2p = s_sym(lib, "nvmlDeviceGetP2PStatus", NULL);
    *(void **)&n->numa = s_sym(lib, "nvmlDeviceGetNumaNodeId", NULL);
    *(void **)&n->cores = s_sym(lib, "nvmlDeviceGetNumGpuCores", NULL);
    *(void **)&n->pci = s_sym(lib, "nvmlDeviceGetPciInfo_v3", NULL);
    unsigned count = 0;
    if (!n->init || !n->shutdown || !n->count || !n->handle || !n->uuid || !n->name ||
        !n->memory || n->init() != 0 || n->count(&count) != 0) {
        gp_log_warn("NVML unusable (missing entry points or init failed), no NVIDIA devices lib=%s",
                    path);
        dlclose(lib);
        free(n);
        return NULL;
    }
    if (count > GP_MAX_DEVICES) {
        gp_log_warn("node has more devices than supported count=%u max=%d", count, GP_MAX_DEVICES);
        count = GP_MAX_DEVICES;
    }
    for (unsigned i = 0; i < count; i++)
        if (n->handle(i, &n->dev[n->ndev]) == 0)
            n->ndev++;
    return n;
}

static int s_nvml_devices(s_nvml_t *n, agent_node_t *an)
{
    gp_node_t *node = &an->node;
    for (unsigned i = 0; i < n->ndev; i++) {
        gp_device_t *d = &node->devices[node->ndevices];
        gp_device_init(d);
        char buf[96];
        nvml_memory_t mem;
        if (n->uuid(n->dev[i], buf, sizeof buf) != 0 || n->memory(n->dev[i], &mem) != 0) {
            gp_log_warn("device does not answer NVML, left out index=%u", i);
            continue;
        }
        gp_strlcpy(d->uuid, buf, sizeof d->uuid);
        if (n->name(n->dev[i], buf, sizeof buf) == 0)
            gp_strlcpy(d->model, buf, sizeof d->model);
        gp_strlcpy(d->vendor, "nvidia", sizeof d->vendor);
        d->mem_mib = (int64_t)(mem.total >> 20);
        unsigned v;
        d->compute_units = n->cores && n->cores(n->dev[i], &v) == 0 ? (int)v : 0;
        nvml_pci_t pci;
        if (n->numa && n->numa(n->dev[i], &v) == 0)
            d->numa = (int)v;
        else if (n->pci && n->pci(n->dev[i], &pci) == 0)
            d->numa = s_sysfs_numa(&pci) < 0 ? 0 : s_sysfs_numa(&pci);
        d->healthy = true;
        an->nvml_index[node->ndevices] = (int)i;
        node->ndevices++;
    }
    /* NVLink peers. */
    for (int a = 0; n->p2p && a < node->ndevices; a++) {
        for (int b = 0; b < node->ndevices; b++) {
            int st = -1;
            if (a != b && n->p2p(n->dev[an->nvml_index[a]], n->dev[an->nvml_index[b]],
                                 NVML_P2P_CAPS_INDEX_NVLINK, &st) == 0 &&
                st == NVML_P2P_STATUS_OK)
                node->devices[a].links |= 1u << b;
        }
    }
    return 0;
}

/* "k=v,k2=v2" into the node's labels. */
static int s_labels(gp_node_t *node, const char *text, gp_err_t *err)
{
    if (text == NULL || *text == '\0')
        return 0;
    char *copy = strdup(text), *save = NULL;
    int rc = 0;
    if (copy == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (eq == NULL || eq == kv) {
            rc = gp_err_set(err, GP_ERR_INVALID, "labels: expected key=value, got \"%s\"", kv);
            break;
        }
        *eq = '\0';
        if (gp_node_add_label(node, kv, eq + 1) < 0) {
            rc = gp_err_set(err, GP_ERR_INVALID, "labels: too many or too long at \"%s\"", kv);
            break;
        }
    }
    free(copy);
    return rc;
}

/* The simulated device mix: "8xA100:81920,4xT4:15360" (count x model :
 * memory MiB), one entry per node in turn. */
typedef struct {
    int count;
    char model[GP_SHORT_LEN];
    int64_t mem_mib;
} s_sim_kind_t;

static int s_parse_sim(const char *spec, s_sim_kind_t *kinds, int max, gp_err_t *err)
{
    char *copy = strdup(spec), *save = NULL;
    int n = 0;
    if (copy == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char model[GP_SHORT_LEN];
        int count;
        long long mem;
        char tail;
        if (n == max || sscanf(t, "%dx%63[^:]:%lld%c", &count, model, &mem, &tail) != 3 ||
            count < 0 || count > GP_MAX_DEVICES || mem <= 0) {
            free(copy);
            return gp_err_set(err, GP_ERR_INVALID,
                              "simulate-devices: expected COUNTxMODEL:MIB[,...] with COUNT "
                              "0..%d, got \"%s\"", GP_MAX_DEVICES, t);
        }
        kinds[n].count = count;
        gp_strlcpy(kinds[n].model, model, sizeof kinds[n].model);
        kinds[n].mem_mib = mem;
        n++;
    }
    free(copy);
    if (n == 0)
        return gp_err_set(err, GP_ERR_INVALID, "simulate-devices is empty");
    return n;
}

static int s_base_node(agent_t *a, agent_node_t *an, const char *name, gp_err_t *err)
{
    gp_node_t *node = &an->node;
    gp_node_init(node);
    gp_strlcpy(node->name, name, sizeof node->name);
    gp_strlcpy(node->region, a->cfg.region, sizeof node->region);
    gp_strlcpy(node->zone, a->cfg.zone, sizeof node->zone);
    gp_strlcpy(node->cloud, a->cfg.cloud, sizeof node->cloud);
    gp_strlcpy(node->cluster, a->cfg.cluster, sizeof node->cluster);
    node->cpu_milli = a->cfg.cpu_milli ? a->cfg.cpu_milli : sysconf(_SC_NPROCESSORS_ONLN) * 1000;
    node->mem_mib = a->cfg.mem_mib ? a->cfg.mem_mib
                                   : (int64_t)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE) >> 20;
    node->oversub = a->cfg.oversub;
    node->healthy = true;
    for (int i = 0; i < GP_MAX_DEVICES; i++) {
        an->nvml_index[i] = -1;
        an->free_mib[i] = -1;
        an->util[i] = -1;
    }
    return s_labels(node, a->cfg.labels, err);
}

/* Declared devices: a JSON array of device objects in the node record's
 * format (model.h), checked by the same decoder as node records. */
static int s_declared(agent_t *a, agent_node_t *an, gp_err_t *err)
{
    json_error_t jerr;
    json_t *devs = json_load_file(a->cfg.devices_file, JSON_REJECT_DUPLICATES, &jerr);
    if (devs == NULL)
        return gp_err_set(err, GP_ERR_INVALID, "%s:%d: %s", a->cfg.devices_file, jerr.line,
                          jerr.text);
    json_t *node = gp_node_to_json(&an->node);
    int rc = -1;
    if (node == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    } else if (!json_is_array(devs)) {
        gp_err_set(err, GP_ERR_INVALID, "%s: expected a JSON array of devices",
                   a->cfg.devices_file);
    } else {
        json_object_set(node, "devices", devs);
        gp_node_t parsed;
        if (gp_node_from_json(node, &parsed, err) == 0) {
            an->node = parsed;
            rc = 0;
        } else {
            char msg[sizeof err->msg];
            gp_strlcpy(msg, err->msg, sizeof msg);
            gp_err_set(err, GP_ERR_INVALID, "%s: %s", a->cfg.devices_file, msg);
        }
    }
    json_decref(node);
    json_decref(devs);
    return rc;
}

int agent_inventory_load(agent_t *a, gp_err_t *err)
{
    int n = a->cfg.simulate > 0 ? (int)a->cfg.simulate : 1;
    a->nodes = calloc((size_t)n, sizeof *a->nodes);
    if (a->nodes == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    a->nnodes = n;

    if (a->cfg.simulate > 0) {
        s_sim_kind_t kinds[16];
        int nk = s_parse_sim(a->cfg.simulate_devices, kinds, 16, err);
        if (nk < 0)
            return -1;
        for (int i = 0; i < n; i++) {
            agent_node_t *an = &a->nodes[i];
            char name[GP_NAME_LEN];
            snprintf(name, sizeof name, "%.100s-%04d", a->cfg.name, i);
            if (s_base_node(a, an, name, err) < 0)
                return -1;
            gp_node_add_label(&an->node, "gpupool.io/simulated", "true");
            const s_sim_kind_t *k = &kinds[i % nk];
            for (int d = 0; d < k->count; d++) {
                gp_device_t *dev = &an->node.devices[d];
                gp_device_init(dev);
                snprintf(dev->uuid, sizeof dev->uuid, "GPU-%.40s-%d", name, d);
                gp_strlcpy(dev->model, k->model, sizeof dev->model);
                dev->mem_mib = k->mem_mib;
                dev->compute_units = 100;
                dev->numa = d < k->count / 2 || k->count < 2 ? 0 : 1;
                int peer = d ^ 1;
                if (!strcmp(a->cfg.simulate_nvlink, "pairs") && peer < k->count)
                    dev->links = 1u << peer;
                else if (!strcmp(a->cfg.simulate_nvlink, "all"))
                    dev->links = ((1u << k->count) - 1) & ~(1u << d);
            }
            an->node.ndevices = k->count;
        }
        return 0;
    }

    agent_node_t *an = &a->nodes[0];
    if (s_base_node(a, an, a->cfg.name, err) < 0)
        return -1;
    if (a->cfg.devices_file && *a->cfg.devices_file)
        return s_declared(a, an, err);
    s_nvml_t *nvml = s_nvml_open(a->cfg.nvml);
    if (nvml) {
        a->nvml = nvml;
        s_nvml_devices(nvml, an);
        agent_inventory_refresh(a);
    }
    return 0;
}

void agent_inventory_refresh(agent_t *a)
{
    s_nvml_t *n = a->nvml;
    if (n == NULL)
        return;
    agent_node_t *an = &a->nodes[0];
    for (int i = 0; i < an->node.ndevices; i++) {
        if (an->nvml_index[i] < 0)
            continue;
        nvml_dev_t dev = n->dev[an->nvml_index[i]];
        nvml_memory_t mem;
        nvml_util_t u;
        bool healthy = n->memory(dev, &mem) == 0;
        an->free_mib[i] = healthy ? (int64_t)(mem.free >> 20) : -1;
        an->util[i] = n->utilization && n->utilization(dev, &u) == 0 ? (int)u.gpu : -1;
        if (healthy != an->node.devices[i].healthy)
            gp_log_warn("device health changed device=%s healthy=%s", an->node.devices[i].uuid,
                        healthy ? "yes" : "no");
        an->node.devices[i].healthy = healthy;
    }
}

void agent_inventory_close(agent_t *a)
{
    s_nvml_t *n = a->nvml;
    if (n) {
        n->shutdown();
        dlclose(n->lib);
        free(n);
        a->nvml = NULL;
    }
    free(a->nodes);
    a->nodes = NULL;
    a->nnodes = 0;
}
