/*
 * container.h - the command lines that run a job in a container.
 *
 * A job with an "image" (jobrec.h) runs in a container of the node's
 * container runtime (podman or docker: their CLIs differ only in the few
 * places of the table in container.c).  Everything the agent asks of the
 * runtime is built here, as argv arrays, so that the whole contract is in
 * one place and unit-tested (tests/agent/test_container.c):
 *
 *   launch   /bin/sh -c SCRIPT: is the image on the node?  If not, pull it
 *            (its registry is on the allow-list: checked before) or fail
 *            with the reason written to the job's folder; then exec `run`.
 *            The runner supervises this process as it does a host job's:
 *            `run` stays attached, so the container's stdout and stderr are
 *            the job's files and its exit status is run's.
 *   run      <rt> [global flags] run --name gpupool-<job>-r<rev> --pull never
 *            --pid host --cap-drop all --security-opt no-new-privileges
 *            --env-file <job folder>/env [--ulimit ...] [--network N]
 *            [--user U] [--workdir W] -v <shim>:/gpupool/libgpupool-shim.so:ro
 *            -v <file>:<file> (the slice's accounting region and the per-GPU
 *            state files, at the same paths as on the host) [-v mounts]
 *            [--device ...] IMAGE [command...]
 *   stop     <rt> stop --time S NAME
 *   state    <rt> inspect --format '{{.State.Status}} {{.State.ExitCode}}' NAME
 *   wait     /bin/sh -c: the exit status of `<rt> wait NAME` (re-supervising
 *            a container found by name after its first supervisor died)
 *   remove   <rt> rm -f NAME
 *
 * Why --pid host: the accounting region keys each process's slot (and its
 * lock word) by pid, and the agent gives back the usage of processes that
 * are gone by checking their pids; pids from a private namespace would name
 * other processes on the host.  The container still has its own mount,
 * network, IPC and UTS namespaces, no capabilities and no new privileges.
 *
 * Devices: "cdi" (NVIDIA nodes: --device nvidia.com/gpu=<uuid> per device of
 * the slice, the Container Device Interface names of the NVIDIA container
 * toolkit), "none" (nothing; e.g. the tests' fake driver, which needs only
 * its state file mounted), or a template naming a device node per slice
 * device with {index} (the device's index on the node) and {uuid}, e.g.
 * "/dev/davinci{index}".
 *
 * The variables of the slice contract and the job's env go to an env file
 * (mode 0600, in the job's folder), not to argv: a host's `ps` shows argv to
 * every user.
 *
 * Ownership: gp_container_t copies its options.  Every argv returned is
 * owned by the caller and released with gp_container_argv_free().
 */
#ifndef GP_CONTAINER_H
#define GP_CONTAINER_H

#include <stddef.h>

#include "err.h"

typedef struct gp_container gp_container_t;

/* Where the shim is mounted (read-only) in every container. */
#define GP_CONTAINER_SHIM "/gpupool/libgpupool-shim.so"

/* The agent's container options (agent.conf: container-*). */
typedef struct {
    const char *runtime;          /* "podman" or "docker" */
    const char *program;          /* the runtime's executable; "" = its name, from PATH */
    const char *oci_runtime;      /* "" = the runtime's default; e.g. "runc" */
    const char *cgroup_manager;   /* "" = default; podman only: "cgroupfs", "systemd" */
    const char *ulimits;          /* "nofile=1024:1024,nproc=4096:4096"; "" = the runtime's */
    const char *network;          /* "" = the runtime's default; e.g. "host", "none" */
    const char *registries;       /* allow-list: "localhost,registry.example.com" */
    const char *mount_paths;      /* host folders jobs may mount: "/data,/models" */
    const char *devices;          /* "cdi", "none" or a template ({index}, {uuid}) */
    const char *shim;             /* host path of the shim; "" = none */
} gp_container_opts_t;

/* Validates the options (unknown runtime, an option the runtime has no
 * flag for, a malformed ulimit, a relative mount path): NULL and err. */
gp_container_t *gp_container_new(const gp_container_opts_t *opts, gp_err_t *err);
void gp_container_destroy(gp_container_t **self_p);

/* What one job's container is made of (strings borrowed for the call). */
typedef struct {
    const char *name;             /* gpupool-<job>-r<rev> (gp_container_name) */
    const char *image, *workdir, *user;   /* workdir, user: "" = the image's */
    char *const *mounts;          /* "HOST:CONTAINER:ro|rw", NULL-terminated, or NULL */
    char *const *argv;            /* the command, or NULL for the image's own */
    const char *env_file;         /* path of the env file (gp_container_write_env) */
    char *const *files;           /* host files mounted read-write at their own path */
    int ndevices;
    const char *uuids[16];        /* the slice's devices */
    int indexes[16];              /* their indexes on the node */
} gp_container_job_t;

/* "gpupool-<job>-r<rev>" into buf. */
void gp_container_name(char *buf, size_t size, const char *job, long long rev);

/* The node's policy: the image's registry is on the allow-list, every
 * mount's host path is under an allowed folder.  -1 with the reason. */
int gp_container_check(const gp_container_t *self, const gp_container_job_t *job, gp_err_t *err);

/* Write "NAME=value" lines (mode 0600).  A value with a newline cannot be
 * passed this way: -1 naming the variable. */
int gp_container_write_env(const char *path, char *const env[], gp_err_t *err);

/* The command lines (NULL when out of memory).  reason_path: where the
 * launch writes why it could not start the container (a missing image, a
 * failed pull); it then exits with status 125, as the runtimes do. */
char **gp_container_launch_argv(const gp_container_t *self, const gp_container_job_t *job,
                                const char *reason_path);
char **gp_container_run_argv(const gp_container_t *self, const gp_container_job_t *job);
char **gp_container_stop_argv(const gp_container_t *self, const char *name, int grace_s);
char **gp_container_state_argv(const gp_container_t *self, const char *name);
char **gp_container_wait_argv(const gp_container_t *self, const char *name);
char **gp_container_remove_argv(const gp_container_t *self, const char *name);
void gp_container_argv_free(char **argv);

#endif
