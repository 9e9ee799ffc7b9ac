/*
 * lockorder - the shim never holds its own lock while it waits for the
 * dynamic loader's (tests/shim/lockorder.t).
 *
 *   lockorder CTORLIB
 *
 * The main thread opens CTORLIB, whose constructor calls lockorder_in_ctor
 * below with the loader's lock held.  There a second thread makes the
 * process's first driver call, so the shim starts loading the driver -- and
 * waits for the loader's lock; once that thread is seen blocked, the main
 * thread (still holding the loader's lock) makes a driver call too.  A shim
 * that held its own lock while waiting for the loader's would deadlock here
 * (the test then ends by its timeout); one that does not lets both calls
 * return.  Prints TAP.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cuda_api.h"
#include "tap.h"

#include "banned.h"

static _Atomic long s_tid;
static _Atomic int s_done;

static void *s_thread(void *arg)
{
    (void)arg;
    s_tid = (long)syscall(SYS_gettid);
    size_t f, t;
    cuMemGetInfo_v2(&f, &t);       /* the process's first driver call: the shim loads */
    s_done = 1;
    return NULL;
}

/* The thread's state from /proc: 'S' once it sleeps (waits for a lock). */
static char s_state(long tid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return '?';
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p != NULL && p[1] == ' ' ? p[2] : '?';
}

void lockorder_in_ctor(void);
void lockorder_in_ctor(void)
{
    pthread_t th;
    if (pthread_create(&th, NULL, s_thread, NULL) != 0)
        bail_out("pthread_create");
    while (s_tid == 0)
        sched_yield();
    /* wait for the event: the thread blocked (on the loader's lock) */
    while (!s_done && s_state(s_tid) != 'S' && s_state(s_tid) != 'D')
        sched_yield();
    ok(!s_done, "the other thread's first driver call waits for the loader");
    size_t f, t;
    cuMemGetInfo_v2(&f, &t);
    ok(1, "a driver call from a library constructor, with the loader's lock held, returns");
    pthread_detach(th);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: lockorder CTORLIB\n");
        return 64;
    }
    void *h = dlopen(argv[1], RTLD_NOW);
    ok(h != NULL, "the library opens: %s", h != NULL ? argv[1] : dlerror());
    while (!s_done)
        sched_yield();
    ok(1, "the other thread's driver call returned too");
    return done_testing();
}
