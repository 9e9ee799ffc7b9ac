/*
 * ctorlib - a library whose constructor calls back into the program that
 * opens it (the function "lockorder_in_ctor", looked up in the program),
 * for tests/shim/lockorder.c: the callback runs while the dynamic loader's
 * lock is held.
 */
#include <dlfcn.h>
#include <stddef.h>

#include "banned.h"

__attribute__((constructor)) static void s_ctor(void)
{
    void (*cb)(void);
    *(void **)&cb = dlsym(RTLD_DEFAULT, "lockorder_in_ctor");
    if (cb != NULL)
        cb();
}
