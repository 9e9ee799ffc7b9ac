/* Jobs in containers: the job fields (image, workdir, user, mounts) are
 * validated and stored; the agent's container options are validated; the
 * command lines given to podman and docker are exactly the contract
 * (container.h), per runtime; the node's policy refuses registries and
 * host paths it does not allow. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "container.h"
#include "jobrec.h"
#include "tap.h"

/* argv joined by spaces (the script of a launch is replaced by "SCRIPT"). */
static const char *s_join(char **argv)
{
    static char buf[8192];
    size_t o = 0;
    buf[0] = '\0';
    for (char **p = argv; p && *p && o < sizeof buf; p++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", p == argv ? "" : " ",
                              strchr(*p, '\n') ? "SCRIPT" : *p);
    return buf;
}

static int s_submit(const char *json, gp_jobrec_t *rec, gp_err_t *err)
{
    return gp_jobrec_from_submission(json, strlen(json), "r1", 1000, rec, err);
}

static void s_fields(void)
{
    gp_jobrec_t rec;
    gp_err_t err;
    const char *ok_job = "{\"id\":\"c1\",\"devices\":1,\"image\":\"localhost/app:1\","
                         "\"workdir\":\"/work\",\"user\":\"1000:1000\","
                         "\"mounts\":[\"/data/in:/in:ro\",\"/data/out:/out\"],"
                         "\"command\":[\"run\"]}";
    is_int(s_submit(ok_job, &rec, &err), 0, "a job with image, workdir, user and mounts is accepted");
    is_str(rec.image, "localhost/app:1", "its image");
    is_str(rec.workdir, "/work", "its workdir");
    is_str(rec.user, "1000:1000", "its user");
    is_str(rec.mounts[0], "/data/in:/in:ro", "a read-only mount");
    is_str(rec.mounts[1], "/data/out:/out:rw", "a mount is read-write by default");
    char *text = gp_jobrec_dump(&rec);
    gp_jobrec_t back;
    is_int(gp_jobrec_from_json_str(text, strlen(text), &back, &err), 0, "the stored record reads back");
    is_str(back.image, "localhost/app:1", "with its image");
    is_str(back.mounts[1], "/data/out:/out:rw", "and its mounts");
    ok(strstr(text, "\"/data/out:/out\"") != NULL, "stored as submitted");
    free(text);
    gp_jobrec_clear(&back);
    gp_jobrec_clear(&rec);

    static const struct { const char *json, *why; } bad[] = {
        { "{\"id\":\"b\",\"image\":\"app:1\"}", "image: expected a reference that names" },
        { "{\"id\":\"b\",\"image\":\"docker.io\"}", "image: expected" },
        { "{\"id\":\"b\",\"image\":\"localhost/App\"}", "image: expected" },
        { "{\"id\":\"b\",\"image\":\"localhost/a;rm\"}", "image: expected" },
        { "{\"id\":\"b\",\"image\":\"localhost/a\",\"user\":\"root\"}", "user: expected" },
        { "{\"id\":\"b\",\"image\":\"localhost/a\",\"user\":\"0:0\"}", "user: expected" },
        { "{\"id\":\"b\",\"image\":\"localhost/a\",\"user\":\"000\"}", "user: expected" },
        { "{\"id\":\"b\",\"image\":\"localhost/a\",\"user\":\"1:2:3\"}", "user: expected" },
        { "{\"id\":\"b\",\"image\":\"localhost/a\",\"workdir\":\"rel\"}", "workdir: expected" },
        { "{\"id\":\"b\",\"image\":\"localhost/a\",\"workdir\":\"/a/../b\"}", "workdir: expected" },
        { "{\"id\":\"b\",\"image\":\"localhost/a\",\"mounts\":[\"/x\"]}", "mounts[0]: expected" },
        { "{\"id\":\"b\",\"image\":\"localhost/a\",\"mounts\":[\"/x/..:/y\"]}", "mounts[0]" },
        { "{\"id\":\"b\",\"image\":\"localhost/a\",\"mounts\":[\"/x:/y:rx\"]}", "mounts[0]" },
        { "{\"id\":\"b\",\"image\":\"localhost/a\",\"mounts\":[\"/x:/\"]}", "mounts[0]" },
        { "{\"id\":\"b\",\"image\":\"localhost/a\",\"mounts\":[\"/x:/gpupool/s\"]}", "mounts[0]" },
        { "{\"id\":\"b\",\"image\":\"localhost/a\",\"mounts\":[\"/x,y:/y\"]}", "mounts[0]" },
        { "{\"id\":\"b\",\"mounts\":[\"/x:/y\"]}", "workdir, user and mounts need an image" },
        { "{\"id\":\"b\",\"user\":\"1000\"}", "workdir, user and mounts need an image" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = s_submit(bad[i].json, &rec, &err);
        ok(rc < 0 && strstr(err.msg, bad[i].why) != NULL, "refused: %s (%s)", bad[i].json,
           rc < 0 ? err.msg : "accepted");
        if (rc == 0)
            gp_jobrec_clear(&rec);
    }
    is_int(s_submit("{\"id\":\"g\",\"devices\":1,\"image\":\"registry.example.com:5000/t/app@sha256:ab12\","
                    "\"user\":\"app\",\"mounts\":[\"/gpupoolx:/gpupoolx\"]}", &rec, &err), 0,
           "a registry with a port, a digest, a user name, /gpupoolx are fine (%s)", err.msg);
    gp_jobrec_clear(&rec);
}

static void s_options(void)
{
    gp_err_t err;
    gp_container_opts_t o = { .runtime = "podman" };
    gp_container_t *c = gp_container_new(&o, &err);
    ok(c != NULL, "podman with defaults");
    gp_container_destroy(&c);
    ok(c == NULL, "destroy clears the pointer");
    static const struct { gp_container_opts_t o; const char *why; } bad[] = {
        { { .runtime = "lxc" }, "container-runtime: expected podman or docker" },
        { { .runtime = "docker", .cgroup_manager = "cgroupfs" }, "container-cgroup-manager: docker" },
        { { .runtime = "podman", .ulimits = "nofile" }, "container-ulimits" },
        { { .runtime = "podman", .ulimits = "nofile=1:2,NPROC=1" }, "container-ulimits" },
        { { .runtime = "podman", .mount_paths = "data" }, "container-mount-paths" },
        { { .runtime = "podman", .mount_paths = "/data/../etc" }, "container-mount-paths" },
        { { .runtime = "podman", .devices = "/dev/gpu0" }, "container-devices" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = gp_container_new(&bad[i].o, &err);
        ok(c == NULL && strstr(err.msg, bad[i].why) != NULL, "refused: %s", c ? "accepted" : err.msg);
        gp_container_destroy(&c);
    }
}

static void s_command_lines(void)
{
    gp_err_t err;
    char name[128];
    gp_container_name(name, sizeof name, "train-7", 4242);
    is_str(name, "gpupool-train-7-r4242", "the container is named after the job and its allocation");

    char *files[] = { "/st/slices/train-7.r4242.region", "/st/slices/gpu-GPU-aa.state", NULL };
    char *mounts[] = { "/data/in:/in:ro", NULL };
    char *argv[] = { "python3", "train.py", "--lr", "0.1 x", NULL };
    gp_container_job_t job = { .name = name, .image = "localhost/app:1", .workdir = "/work",
                               .user = "1000", .mounts = mounts, .argv = argv,
                               .env_file = "/st/jobs/train-7.r4242/env", .files = files,
                               .ndevices = 2, .uuids = { "GPU-aa", "GPU-bb" },
                               .indexes = { 3, 5 } };
    gp_container_opts_t po = { .runtime = "podman", .oci_runtime = "runc",
                               .cgroup_manager = "cgroupfs",
                               .ulimits = "nofile=1024:1024,nproc=4096:4096",
                               .network = "host", .registries = "localhost",
                               .mount_paths = "/data", .shim = "/usr/lib/gpupool/libgpupool-shim.so" };
    gp_container_t *pod = gp_container_new(&po, &err);
    if (pod == NULL)
        bail_out("podman options: %s", err.msg);
    char **v = gp_container_run_argv(pod, &job);
    is_str(s_join(v),
           "podman --runtime runc --cgroup-manager cgroupfs run --name gpupool-train-7-r4242 "
           "--pull never --pid host --cap-drop all --security-opt no-new-privileges "
           "--env-file /st/jobs/train-7.r4242/env --ulimit nofile=1024:1024 "
           "--ulimit nproc=4096:4096 --network host --user 1000 --workdir /work "
           "-v /usr/lib/gpupool/libgpupool-shim.so:/gpupool/libgpupool-shim.so:ro "
           "-v /st/slices/train-7.r4242.region:/st/slices/train-7.r4242.region "
           "-v /st/slices/gpu-GPU-aa.state:/st/slices/gpu-GPU-aa.state "
           "-v /data/in:/in:ro --device nvidia.com/gpu=GPU-aa --device nvidia.com/gpu=GPU-bb "
           "localhost/app:1 python3 train.py --lr 0.1 x",
           "podman run: global flags first, the slice's files, the shim read-only, CDI devices");
    int last = 0;
    while (v && v[last + 1])
        last++;
    is_str(v ? v[last] : "", "0.1 x", "an argument with a space stays one argument");
    gp_container_argv_free(v);

    v = gp_container_launch_argv(pod, &job, "/st/jobs/train-7.r4242/reason");
    ok(v && !strcmp(v[0], "/bin/sh") && !strcmp(v[1], "-c") && !strcmp(v[4], "podman") &&
           !strcmp(v[5], "exists") && !strcmp(v[6], "localhost/app:1") &&
           !strcmp(v[7], "/st/jobs/train-7.r4242/reason") && !strcmp(v[8], "0") &&
           !strcmp(v[9], "podman") && !strcmp(v[14], "run"),
       "the launch asks podman whether the image exists, never pulls localhost, then runs");
    gp_container_argv_free(v);
    is_str(s_join(v = gp_container_stop_argv(pod, name, 10)),
           "podman --runtime runc --cgroup-manager cgroupfs stop --time 10 gpupool-train-7-r4242",
           "stop");
    gp_container_argv_free(v);
    is_str(s_join(v = gp_container_state_argv(pod, name)),
           "podman --runtime runc --cgroup-manager cgroupfs inspect --format "
           "{{.State.Status}} {{.State.ExitCode}} gpupool-train-7-r4242", "state");
    gp_container_argv_free(v);
    is_str(s_join(v = gp_container_remove_argv(pod, name)),
           "podman --runtime runc --cgroup-manager cgroupfs rm -f gpupool-train-7-r4242", "remove");
    gp_container_argv_free(v);
    v = gp_container_wait_argv(pod, name);
    ok(v && !strcmp(v[0], "/bin/sh") && !strcmp(v[3], "gpupool-wait") &&
           !strcmp(s_join(v + 4), "podman --runtime runc --cgroup-manager cgroupfs wait "
                                  "gpupool-train-7-r4242"),
       "wait: the exit status of `podman wait`'s answer");
    gp_container_argv_free(v);

    /* docker: --runtime is a run flag, no --cgroup-manager, image inspect */
    gp_container_opts_t dop = { .runtime = "docker", .oci_runtime = "runc",
                                .registries = "localhost", .devices = "/dev/davinci{index}" };
    gp_container_t *dock = gp_container_new(&dop, &err);
    if (dock == NULL)
        bail_out("docker options: %s", err.msg);
    job.mounts = NULL;
    job.files = NULL;
    job.user = "";
    job.workdir = "";
    job.argv = NULL;
    is_str(s_join(v = gp_container_run_argv(dock, &job)),
           "docker run --name gpupool-train-7-r4242 --runtime runc --pull never --pid host "
           "--cap-drop all --security-opt no-new-privileges --env-file "
           "/st/jobs/train-7.r4242/env --device /dev/davinci3 --device /dev/davinci5 "
           "localhost/app:1",
           "docker run: --runtime after run, declared device nodes, the image's own command");
    gp_container_argv_free(v);
    v = gp_container_launch_argv(dock, &job, "/r");
    ok(v && !strcmp(v[5], "inspect"), "docker's launch asks `docker image inspect`");
    gp_container_argv_free(v);
    is_str(s_join(v = gp_container_stop_argv(dock, name, 3)),
           "docker stop --time 3 gpupool-train-7-r4242", "docker stop");
    gp_container_argv_free(v);

    /* devices "none": nothing passed */
    gp_container_opts_t nop = { .runtime = "podman", .devices = "none", .registries = "localhost" };
    gp_container_t *none = gp_container_new(&nop, &err);
    v = gp_container_run_argv(none, &job);
    ok(v && strstr(s_join(v), "--device") == NULL, "devices none: no --device");
    gp_container_argv_free(v);
    gp_container_destroy(&none);

    /* the node's policy */
    ok(gp_container_check(pod, &job, &err) == 0, "a localhost image is allowed with localhost listed");
    job.image = "registry.example.com/app:1";
    ok(gp_container_check(pod, &job, &err) < 0 &&
           strstr(err.msg, "registry registry.example.com is not allowed on this node"),
       "another registry is refused: %s", err.msg);
    job.image = "localhostx/app:1";
    ok(gp_container_check(pod, &job, &err) < 0, "a registry that only starts like one is refused");
    job.image = "localhost/app:1";
    char *m_ok[] = { "/data:/d:rw", "/data/x/y:/y:ro", NULL };
    job.mounts = m_ok;
    ok(gp_container_check(pod, &job, &err) == 0, "mounts under an allowed folder are allowed");
    char *m_bad[] = { "/database:/d:rw", NULL };
    job.mounts = m_bad;
    ok(gp_container_check(pod, &job, &err) < 0 &&
           strstr(err.msg, "mount /database: the host path is not allowed"),
       "a sibling that only starts like the folder is refused: %s", err.msg);
    char *m_etc[] = { "/etc:/e:ro", NULL };
    job.mounts = m_etc;
    ok(gp_container_check(dock, &job, &err) < 0 && strstr(err.msg, "container-mount-paths: none"),
       "without container-mount-paths no mount is allowed");
    gp_container_destroy(&pod);
    gp_container_destroy(&dock);
}

static void s_env_file(void)
{
    char dir[] = "/tmp/gpupool-test-container.XXXXXX";
    if (mkdtemp(dir) == NULL)
        bail_out("mkdtemp");
    char path[256];
    snprintf(path, sizeof path, "%s/env", dir);
    gp_err_t err;
    char *env[] = { "A=1", "GP_SLICE_MEM_LIMIT=1024", "SPACED= two words ", NULL };
    is_int(gp_container_write_env(path, env, &err), 0, "the env file is written");
    char buf[256] = "";
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    is_str(buf, "A=1\nGP_SLICE_MEM_LIMIT=1024\nSPACED= two words \n", "one NAME=value a line");
    struct stat sb;
    is_int(stat(path, &sb) == 0 ? (int)(sb.st_mode & 0777) : -1, 0600, "readable by its owner only");
    char *bad[] = { "B=x\ny", NULL };
    ok(gp_container_write_env(path, bad, &err) < 0 && strstr(err.msg, "env B: a value with a newline"),
       "a value with a newline is refused: %s", err.msg);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    s_fields();
    s_options();
    s_command_lines();
    s_env_file();
    return done_testing();
}
